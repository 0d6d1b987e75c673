"""`electra-tf`: the command-line interface.

Sub-commands:
    quickstart       pretrain -> fine-tune -> evaluate a tiny ELECTRA on embedded IMDB reviews
    pretrain         pretrain on your corpus, with checkpoints, resume and TensorBoard logs
    finetune         fine-tune a pretrained discriminator (or a from-scratch Transformer) on a
                     text-classification task (IMDB, folder-per-class, CSV/TSV)
    evaluate         accuracy, precision, recall, F1 and confusion matrix on a split
    train-tokenizer  learn a WordPiece vocabulary from a corpus
    summary          parameter counts of the generator and discriminator a config builds
    demo             pretrain on a synthetic corpus for a minute and show the losses fall

Every mistake a user can fix (missing file, empty corpus, config/vocabulary mismatch, ...) ends
with a one-line message and exit status 2; a NaN loss ends with status 3 and keeps the checkpoints.
"""

from __future__ import annotations

import argparse
import contextlib
import logging
import os
import sys
import time

os.environ.setdefault("KERAS_BACKEND", "tensorflow")
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

from electra_tf.config import resolve_config_path  # noqa: E402
from electra_tf.native_logs import hidden_native_logs  # noqa: E402


class _OneLineErrorParser(argparse.ArgumentParser):
    """argparse, but a usage mistake is one line (and exit status 2) like every other user
    error, pointing at --help instead of printing the usage block."""

    def error(self, message):
        self.exit(2, f"{self.prog}: {message} (see {self.prog} --help)\n")


def _positive_int(text: str) -> int:
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a whole number, got {text!r}") from None
    if value < 1:
        raise argparse.ArgumentTypeError(f"must be at least 1, got {value}")
    return value


def _build_parser() -> argparse.ArgumentParser:
    from electra_tf import __version__

    parser = _OneLineErrorParser(
        prog="electra-tf", description="ELECTRA pretraining and fine-tuning for TensorFlow/Keras.")
    parser.add_argument("--version", action="version", version=f"electra_tf {__version__}")
    parser.add_argument("--verbose", action="store_true",
                        help="also show TensorFlow's C++ log lines (set ELECTRA_TF_NATIVE_LOGS=show "
                             "to see those printed while TensorFlow is imported)")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")

    summary = sub.add_parser("summary", help="parameter counts of the models a config builds")
    summary.add_argument("--config", default="electra_small",
                         help="YAML path or shipped name (electra_tiny/small/base/large)")
    summary.add_argument("--set", dest="overrides", action="append", default=[],
                         metavar="KEY=VALUE", help="override a config value, e.g. model.num_layers=4")

    tokenizer = sub.add_parser("train-tokenizer", help="learn a WordPiece vocabulary from a corpus")
    _add_corpus_arguments(tokenizer)
    tokenizer.add_argument("--vocab-size", type=_positive_int, default=30522,
                           help="upper bound of the vocabulary size (default: BERT's 30522)")
    tokenizer.add_argument("--out", required=True, help="vocab.txt to write")
    tokenizer.add_argument("--max-documents", type=_positive_int, default=None,
                           help="learn from the first N documents only (faster on big corpora)")
    _add_learner_argument(tokenizer)

    pretrain = sub.add_parser(
        "pretrain", help="pretrain ELECTRA on a corpus (resumes when --out-dir holds a run)")
    pretrain.add_argument("--config", default="electra_tiny",
                          help="YAML path or shipped name (electra_tiny/small/base/large)")
    _add_corpus_arguments(pretrain)
    pretrain.add_argument("--vocab", default=None,
                          help="vocab.txt (e.g. BERT-uncased); default: learn one from the corpus")
    pretrain.add_argument("--out-dir", required=True, help="run directory (re-use it to resume)")
    _add_learner_argument(pretrain)
    _add_training_arguments(pretrain)
    _add_distribution_arguments(pretrain)
    pretrain.add_argument("--set", dest="overrides", action="append", default=[],
                          metavar="KEY=VALUE", help="override a config value")

    finetune = sub.add_parser(
        "finetune", help="fine-tune a pretrained ELECTRA (or a from-scratch Transformer)")
    finetune.add_argument("--task", choices=("imdb", "folder", "csv"), default=None,
                          help="default: the config's task.name")
    finetune.add_argument("--pretrained", default=None,
                          help="an 'electra-tf pretrain' --out-dir, a discriminator .keras, a "
                               "HuggingFace ELECTRA folder or hf:ORG/NAME (hub id)")
    finetune.add_argument("--out-dir", required=True)
    finetune.add_argument("--data", default=None,
                          help="IMDB archive/folder, class folder, or CSV/TSV ({split} allowed); "
                               "default for imdb: tfds imdb_reviews")
    finetune.add_argument("--from-scratch", action="store_true",
                          help="random initialisation (the baseline); --pretrained then only "
                               "gives the architecture and vocabulary")
    finetune.add_argument("--model-config", default=None,
                          help="architecture for --from-scratch without --pretrained "
                               "(e.g. electra_tiny)")
    finetune.add_argument("--vocab", default=None,
                          help="vocab.txt for --from-scratch without --pretrained "
                               "(default: learned from the training texts)")
    _add_learner_argument(finetune)
    finetune.add_argument("--config", default="finetune/imdb",
                          help="YAML path or shipped name (finetune/imdb)")
    finetune.add_argument("--set", dest="overrides", action="append", default=[],
                          metavar="KEY=VALUE", help="override a config value, e.g. "
                                                    "training.epochs=2")
    finetune.add_argument("--quiet", action="store_true", help="one line per evaluation, no bar")
    _add_distribution_arguments(finetune)

    evaluate = sub.add_parser("evaluate", help="evaluate a fine-tuned classifier on a split")
    evaluate.add_argument("--model", required=True, help="an 'electra-tf finetune' --out-dir")
    evaluate.add_argument("--split", default="test",
                          help="test (default), train, validation (the held-out part of the "
                               "training data) or a split the data names with {split}")
    evaluate.add_argument("--data", default=None, help="default: the data the model was tuned on")
    evaluate.add_argument("--batch-size", type=_positive_int, default=64)

    export = sub.add_parser(
        "export", help="write a SavedModel that takes raw text (tokenizer inside)")
    export.add_argument("--model", required=True,
                        help="an 'electra-tf finetune' --out-dir (classifier) or an 'electra-tf "
                             "pretrain' --out-dir (encoder, for feature extraction)")
    export.add_argument("--out", required=True, help="export directory (new or empty)")
    export.add_argument("--precision", choices=("float32", "mixed_bfloat16", "mixed_float16"),
                        default="float32",
                        help="compute precision of the SavedModel (weights stay float32); "
                             "mixed_bfloat16 is faster on CPUs with AVX512-BF16/AMX and on TPUs")
    export.add_argument("--format", choices=("savedmodel", "huggingface"), default="savedmodel",
                        help="huggingface: config.json + model.safetensors + vocab.txt of the "
                             "discriminator and generator of a pretraining run, for "
                             "transformers' ElectraForPreTraining / ElectraForMaskedLM")

    imp = sub.add_parser(
        "import", help="convert Google's TF1 or a HuggingFace ELECTRA checkpoint for fine-tuning")
    imp.add_argument("--source", required=True,
                     help="model.ckpt-N (or its folder), a HuggingFace folder, or hf:ORG/NAME")
    imp.add_argument("--out-dir", required=True, help="gets discriminator.keras, vocab.txt, ...")
    imp.add_argument("--vocab", default=None, help="default: vocab.txt beside the checkpoint")
    imp.add_argument("--num-heads", type=_positive_int, default=None,
                     help="TF1 only: attention heads (default hidden // 64, as in ELECTRA)")
    imp.add_argument("--generator-num-heads", type=_positive_int, default=None)
    imp.add_argument("--cased", action="store_true",
                     help="the vocabulary is cased (default: a HuggingFace folder's "
                          "tokenizer_config.json says; otherwise uncased)")

    predict = sub.add_parser("predict", help="classify texts with an exported or fine-tuned model")
    predict.add_argument("--model", required=True,
                         help="an 'electra-tf export' directory or an 'electra-tf finetune' "
                              "--out-dir")
    predict.add_argument("texts", nargs="*", metavar="TEXT",
                         help="texts to classify; without them: --file, or one text per line "
                              "on stdin")
    predict.add_argument("--file", default=None, help="one text per line (UTF-8)")
    predict.add_argument("--jsonl", action="store_true", help="one JSON object per line")
    predict.add_argument("--batch-size", type=_positive_int, default=32)
    predict.add_argument("--quiet", action="store_true", help="no progress bar")

    quickstart = sub.add_parser(
        "quickstart", help="pretrain -> fine-tune -> evaluate a tiny ELECTRA on embedded reviews")
    quickstart.add_argument("--out-dir", default="electra-quickstart")
    quickstart.add_argument("--steps", type=_positive_int, default=300,
                            help="pretraining steps")
    quickstart.add_argument("--finetune-epochs", type=_positive_int, default=3)
    quickstart.add_argument("--seed", type=int, default=0)

    demo = sub.add_parser(
        "demo", help="pretrain a small ELECTRA on a synthetic corpus and show the losses fall")
    demo.add_argument("--steps", type=_positive_int, default=600)
    demo.add_argument("--batch-size", type=_positive_int, default=32)
    demo.add_argument("--seed", type=int, default=0)
    for command in sub.choices.values():  # `electra-tf pretrain --verbose` works too
        command.add_argument("--verbose", action="store_true", default=argparse.SUPPRESS,
                             help="also show TensorFlow's C++ log lines")
    return parser


def _add_corpus_arguments(parser):
    parser.add_argument("--corpus", required=True,
                        help="text file(s), folder or glob (comma-separated), the IMDB archive or "
                             "folder, or tfds:NAME[:SPLIT]")
    parser.add_argument("--doc-format", choices=("auto", "line", "blank"), default="auto",
                        help="line: one document per line; blank: blank lines separate documents")
    parser.add_argument("--cased", action="store_true",
                        help="keep case and accents (default: lower-case like BERT-uncased)")


def _add_learner_argument(parser):
    from electra_tf.data.vocab_learning import DEFAULT_LEARNER, LEARNERS

    parser.add_argument("--learner", choices=LEARNERS, default=DEFAULT_LEARNER,
                        help="WordPiece learner when a vocabulary is learned (default: "
                             f"{DEFAULT_LEARNER}, measured in benchmarks/results/vocab_learning.md)")


def _add_training_arguments(parser):
    parser.add_argument("--steps", type=_positive_int, default=None,
                        help="default: optimizer.train_steps")
    parser.add_argument("--batch-size", type=_positive_int, default=None,
                        help="global batch size; default: optimizer.batch_size")
    parser.add_argument("--save-every", type=_positive_int, default=1000,
                        help="steps between checkpoints (the logging interval shrinks to fit)")
    parser.add_argument("--keep-checkpoints", type=_positive_int, default=3)
    parser.add_argument("--log-every", type=_positive_int, default=100,
                        help="steps per logging interval (one progress bar)")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--vocab-documents", type=_positive_int, default=20000,
                        help="documents to learn the vocabulary from when --vocab is not given")
    parser.add_argument("--quiet", action="store_true", help="one line per interval, no bar")


def _add_distribution_arguments(parser):
    from electra_tf.training.distribute import PRECISIONS, STRATEGIES

    group = parser.add_argument_group("devices and speed")
    group.add_argument("--strategy", choices=STRATEGIES, default="auto",
                       help="tf.distribute strategy: auto = TPU, else all GPUs, else the CPU; "
                            "multi_worker reads the cluster from TF_CONFIG")
    group.add_argument("--tpu", default=None,
                       help="TPU name, grpc://HOST:8470 or 'local' (with --strategy tpu)")
    group.add_argument("--precision", choices=PRECISIONS, default="float32",
                       help="Keras mixed-precision policy (bfloat16 on TPUs and recent CPUs/GPUs)")
    group.add_argument("--jit-compile", action="store_true",
                       help="compile the training step with XLA (measured slower on CPU)")
    group.add_argument("--steps-per-execution", type=_positive_int, default=1,
                       help="training steps per tf.function call")
    group.add_argument("--deterministic", action="store_true",
                       help="deterministic TensorFlow ops: the same seed gives the same weights "
                            "(also after kill -9 and resume), at a speed cost "
                            "(benchmarks/results/determinism.md)")


def _distribution_kwargs(args) -> dict:
    return dict(strategy=args.strategy, tpu=args.tpu, precision=args.precision,
                jit_compile=args.jit_compile, steps_per_execution=args.steps_per_execution,
                deterministic=args.deterministic)


def cmd_train_tokenizer(args) -> int:
    import itertools

    from electra_tf.data.corpus import open_corpus
    from electra_tf.data.vocab import save_vocabulary
    from electra_tf.data.vocab_learning import learn_vocabulary
    from electra_tf.errors import DataError
    from electra_tf.training.run_files import ensure_writable_directory

    if os.path.isdir(args.out):
        raise DataError(f"--out {args.out} is a directory; give the path of the vocab.txt to "
                        "write.")
    ensure_writable_directory(os.path.dirname(os.path.abspath(args.out)), "--out's folder")
    corpus = open_corpus(args.corpus, doc_format=args.doc_format)
    corpus.check()
    documents = corpus.documents()
    if args.max_documents:
        documents = itertools.islice(documents, args.max_documents)
    started = time.time()
    vocabulary = learn_vocabulary(documents, args.vocab_size, lower_case=not args.cased,
                                  learner=args.learner)
    save_vocabulary(vocabulary, args.out)
    print(f"Learned {len(vocabulary):,d} WordPiece tokens in {time.time() - started:.0f} s from "
          f"{corpus.stats.summary()}; wrote {args.out}.")
    return 0


def cmd_pretrain(args) -> int:
    from electra_tf import load_config
    from electra_tf.training.pretrain import pretrain

    config = load_config(resolve_config_path(args.config), args.overrides)
    metrics = pretrain(
        config, args.corpus, args.out_dir, vocab=args.vocab, steps=args.steps,
        batch_size=args.batch_size, save_every=args.save_every,
        keep_checkpoints=args.keep_checkpoints, log_every=args.log_every, seed=args.seed,
        lower_case=not args.cased, doc_format=args.doc_format,
        vocab_documents=args.vocab_documents, vocab_learner=args.learner,
        verbose=2 if args.quiet else 1,
        **_distribution_kwargs(args))
    _print_pretraining_summary(metrics, args.out_dir)
    return 0


def _print_pretraining_summary(metrics: dict, out_dir: str) -> None:
    first, final = metrics["first_interval"], metrics["final"]
    print(f"\nPretrained {metrics['steps']:,d} steps (batch {metrics['batch_size']} x "
          f"{metrics['max_seq_length']} tokens) in {metrics['train_time_s']:.0f} s of training, "
          f"{metrics['sequences_per_s'] or 0:.1f} sequences/s.")
    if first and final:
        print(f"First interval (step {first['step']}) -> last (step {final['step']}):")
        for key in ("mlm_loss", "disc_loss", "mlm_accuracy", "disc_auc", "disc_recall",
                    "disc_precision"):
            if key in final:
                print(f"  {key:<15} {first[key]:.3f} -> {final[key]:.3f}")
    print(f"Discriminator: {os.path.join(out_dir, 'discriminator.keras')}  (vocab.txt, "
          f"config.yaml, metrics.json, curves.png beside it; TensorBoard: "
          f"tensorboard --logdir {os.path.join(out_dir, 'logs')})")


def cmd_finetune(args) -> int:
    from electra_tf import load_config
    from electra_tf.training.finetune import finetune
    from electra_tf.training.finetune_config import load_finetune_config

    overrides = list(args.overrides)
    if args.task:
        overrides.insert(0, f"task.name={args.task}")
    if args.data:
        overrides.insert(0, f"task.data={args.data}")
    config = load_finetune_config(resolve_config_path(args.config), overrides)
    model_config = None
    if args.model_config:
        model_config = load_config(resolve_config_path(args.model_config)).model
    metrics = finetune(config, args.out_dir, pretrained=args.pretrained,
                       from_scratch=args.from_scratch, model_config=model_config,
                       vocab=args.vocab, vocab_learner=args.learner,
                       verbose=2 if args.quiet else 1,
                       **_distribution_kwargs(args))
    _print_finetuning_summary(metrics, args.out_dir)
    return 0


def _print_finetuning_summary(metrics: dict, out_dir: str) -> None:
    from electra_tf.training.evaluation import format_metrics

    print(f"\nFine-tuned {metrics['steps']:,d} steps in {metrics['train_time_s']:.0f} s; best "
          f"validation checkpoint at step {metrics['best_step']}:")
    print(format_metrics(metrics["validation"]))
    print(f"Classifier: {os.path.join(out_dir, 'classifier.keras')} (metrics.json, curves.png, "
          f"confusion_validation.png beside it). Test it with: electra-tf evaluate --model "
          f"{out_dir} --split test")


def cmd_evaluate(args) -> int:
    from electra_tf.training.evaluation import format_metrics
    from electra_tf.training.finetune import evaluate

    metrics = evaluate(args.model, args.split, data=args.data, batch_size=args.batch_size)
    print(f"{args.split} ({metrics['source']}, {metrics['seconds']:.0f} s):")
    print(format_metrics(metrics))
    print(f"Written to {os.path.join(args.model, 'metrics.json')} and "
          f"{os.path.join(args.model, f'confusion_{args.split}.png')}.")
    return 0


def cmd_export(args) -> int:
    from electra_tf.export import export_model

    if args.format == "huggingface":
        from electra_tf.convert import export_huggingface
        from electra_tf.errors import ConfigError

        if args.precision != "float32":
            raise ConfigError("--precision applies to SavedModel exports; HuggingFace checkpoints "
                              "hold float32 weights (choose the dtype when loading them).")

        written = export_huggingface(args.model, args.out)
        for name, folder in written.items():
            cls = "ElectraForPreTraining" if name == "discriminator" else "ElectraForMaskedLM"
            print(f"{name}: {folder}  (transformers.{cls}.from_pretrained({folder!r}))")
        return 0

    summary = export_model(args.model, args.out, precision=args.precision)
    print(f"Exported the {summary['kind']} of {args.model} to {args.out} "
          f"(signatures: {', '.join(summary['signatures'])}; raw text in, tokenizer and "
          f"vocabulary inside; computes in {args.precision}).")
    print(f"Inspect it: saved_model_cli show --dir {args.out} --all")
    if summary["kind"] == "classifier":
        print(f"Use it: electra-tf predict --model {args.out} \"A wonderful film.\"")
    return 0


def cmd_import(args) -> int:
    from electra_tf.convert import import_pretrained

    summary = import_pretrained(args.source, args.out_dir, vocab=args.vocab,
                                num_heads=args.num_heads,
                                generator_num_heads=args.generator_num_heads,
                                lower_case=False if args.cased else None)
    print(f"Imported {', '.join(summary['models'])} ({summary['format']}) into {args.out_dir}. "
          f"Fine-tune it: electra-tf finetune --pretrained {args.out_dir} --out-dir OUT ...")
    return 0


def cmd_predict(args) -> int:
    import keras

    from electra_tf.errors import DataError
    from electra_tf.export.predict import format_prediction, load_predictor, read_texts

    if args.batch_size < 1:
        raise DataError("--batch-size must be at least 1.")
    if args.texts and args.file:
        raise DataError("Give texts as arguments or --file, not both.")
    texts, invalid = (args.texts, 0) if args.texts else read_texts(args.file)
    if invalid:
        print(f"electra-tf predict: {invalid} line(s) were not valid UTF-8; the bad bytes were "
              "replaced by U+FFFD.", file=sys.stderr)
    if not texts:
        raise DataError("No texts to classify: give them as arguments, with --file, or on stdin.")
    predictor = load_predictor(args.model)
    progress = None
    if args.file and not args.quiet and len(texts) > args.batch_size:
        progress = keras.utils.Progbar(len(texts), unit_name="text", stateful_metrics=())
    done = 0
    for result in predictor.predict_batches(texts, args.batch_size):
        for label, probabilities in zip(result["label"], result["probabilities"]):
            print(format_prediction(texts[done], label, probabilities, predictor.label_names,
                                    args.jsonl))
            done += 1
        if progress is not None:  # on stderr, so stdout stays pure predictions for pipes
            with contextlib.redirect_stdout(sys.stderr):
                progress.update(done)
    return 0


def cmd_quickstart(args) -> int:
    from electra_tf.training.evaluation import format_metrics
    from electra_tf.training.finetune import evaluate
    from electra_tf.training.sample_runs import (
        finetune_on_sample,
        has_classifier,
        pretrain_on_sample,
    )

    pretrain_dir = os.path.join(args.out_dir, "pretrained")
    finetune_dir = os.path.join(args.out_dir, "sentiment")
    print("electra-tf quickstart, on IMDB reviews shipped with the package:\n"
          "  1. learn a WordPiece vocabulary (at most 4,000 pieces) from 400 unlabelled reviews\n"
          "  2. pretrain generator + discriminator on them (replaced-token detection, model.fit)\n"
          "  3. fine-tune the discriminator on 400 labelled reviews (positive/negative)\n"
          "  4. evaluate it on 200 held-out test reviews\n"
          "  5. export it as a SavedModel that takes raw text, and classify two reviews\n"
          f"Outputs go to {args.out_dir}/ (re-running resumes the pretraining there).\n")
    metrics = pretrain_on_sample(pretrain_dir, steps=args.steps, seed=args.seed, verbose=2)
    _print_pretraining_summary(metrics, pretrain_dir)
    final, first = metrics["final"], metrics["first_interval"]
    learned = final["disc_loss"] < first["disc_loss"] and final["mlm_loss"] < first["mlm_loss"]
    if not learned:
        print("The losses did not fall; please report this with the log above.")
        return 1
    print("Both losses fell: the generator learns to fill in words.", end=" ")
    if final["disc_recall"] < 0.05:
        # Honest about what minutes on 400 reviews buy: the discriminator first learns the base
        # rate (most tokens are original); spotting replacements comes later in pretraining.
        print(f"The discriminator has learned that ~{100 * (1 - final['disc_accuracy']):.0f}% of "
              f"tokens are replaced but flags few of them yet (recall {final['disc_recall']:.2f}); "
              "detection starts later in a real run (benchmarks/results/"
              "imdb_tiny_pretraining.md).\n")
    else:
        print(f"The discriminator spots {100 * final['disc_recall']:.0f}% of the replaced tokens "
              f"(precision {final['disc_precision']:.2f}).\n")

    if has_classifier(finetune_dir):
        print(f"{finetune_dir} is already fine-tuned; evaluating it again.")
    else:
        _print_finetuning_summary(finetune_on_sample(
            finetune_dir, pretrain_dir, epochs=args.finetune_epochs, seed=args.seed, verbose=2),
            finetune_dir)
    test = evaluate(finetune_dir, "test", verbose=0)
    print(f"\nTest ({test['examples']} reviews never seen in training):")
    print(format_metrics(test))
    export_dir = os.path.join(args.out_dir, "export")
    if not os.path.exists(os.path.join(export_dir, "saved_model.pb")):
        from electra_tf.export import export_model

        export_model(finetune_dir, export_dir)
    from electra_tf.export import load_predictor

    examples = ["One of the best films I have seen in years: moving, funny and beautifully acted.",
                "A dull, lifeless mess. I wanted my two hours back."]
    predictions = load_predictor(export_dir)(examples)
    print(f"\n  5. exported a SavedModel with the tokenizer inside to {export_dir} and asked it:")
    for text, label, probs in zip(examples, predictions["label"], predictions["probabilities"]):
        print(f"     {label:>4} ({probs.max():.2f})  {text}")
    print("\nA tiny model pretrained for minutes on 400 reviews is only a tour of the pipeline; "
          "benchmarks/results/ has the numbers of real runs.\n"
          f"Next: electra-tf predict --model {export_dir} \"your review\"")
    return 0


def cmd_summary(args) -> int:
    from electra_tf import ElectraPretrainer, load_config

    config = load_config(resolve_config_path(args.config), args.overrides)
    pretrainer = ElectraPretrainer(config.model, config.pretraining)
    pretrainer.build({"token_ids": (None, None)})
    model = config.model
    print(f"config: {args.config}")
    if pretrainer.discriminator is not None:
        print(f"discriminator: {pretrainer.discriminator.count_params():>13,d} parameters "
              f"(hidden {model.hidden_size}, {model.num_layers} layers, {model.num_heads} heads)")
    gen_hidden = model.generator_hidden_size if config.pretraining.electra_objective \
        else model.hidden_size
    print(f"generator:     {pretrainer.generator.count_params():>13,d} parameters "
          f"(hidden {gen_hidden}, embeddings shared)")
    print(f"total:         {pretrainer.count_params():>13,d} parameters")
    return 0


def cmd_demo(args) -> int:
    import numpy as np

    from electra_tf import ElectraConfig, ElectraPretrainer, create_optimizer
    from electra_tf.data import synthetic_dataset

    # Small enough to show the objective working within a minute or two on 2 CPU cores.
    config = ElectraConfig.from_dict({
        "model": dict(vocab_size=128, embedding_size=64, hidden_size=64, num_layers=2,
                      num_heads=1, intermediate_size=256, generator_hidden_fraction=0.25),
        "pretraining": dict(max_seq_length=32, pad_id=0, cls_id=2, sep_id=3, mask_id=4),
        "optimizer": dict(learning_rate=2e-3, warmup_steps=max(1, args.steps // 12),
                          train_steps=args.steps, batch_size=args.batch_size),
    })
    print("Pretraining ELECTRA (generator hidden 16, discriminator hidden 64, 2 layers) on a "
          "synthetic corpus of topic-wise token progressions ...")
    pretrainer = ElectraPretrainer(config.model, config.pretraining, seed=args.seed)
    pretrainer.compile(optimizer=create_optimizer(config.optimizer))
    dataset = synthetic_dataset(4000, 32, 128, args.batch_size, seed=args.seed)
    epochs = 6
    started = time.time()
    history = pretrainer.fit(dataset, steps_per_epoch=max(1, args.steps // epochs), epochs=epochs,
                             verbose=2)
    logs = history.history
    print(f"\nDone in {time.time() - started:.0f} s. First epoch -> last epoch:")
    for key in ("mlm_loss", "disc_loss", "mlm_accuracy", "disc_recall"):
        print(f"  {key:<13} {logs[key][0]:.3f} -> {logs[key][-1]:.3f}")
    ok = logs["disc_loss"][-1] < logs["disc_loss"][0] and logs["mlm_loss"][-1] < logs["mlm_loss"][0]
    print("Both losses fell: the objective is learning." if ok else
          "The losses did not fall; please report this with the log above.")
    return 0 if ok and np.isfinite(logs["loss"][-1]) else 1


COMMANDS = {"summary": cmd_summary, "demo": cmd_demo, "train-tokenizer": cmd_train_tokenizer,
            "pretrain": cmd_pretrain, "quickstart": cmd_quickstart, "finetune": cmd_finetune,
            "evaluate": cmd_evaluate, "export": cmd_export, "predict": cmd_predict,
            "import": cmd_import}


def _configure_logging() -> None:
    logging.basicConfig(level=logging.INFO, format="electra-tf: %(message)s")
    logging.getLogger("absl").setLevel(logging.WARNING)  # checkpoint sharding chatter


def _describe_environment_error(err: BaseException) -> str | None:
    """One line for an error of the machine rather than of the library (which file, what
    happened, what to check); None for anything else."""
    tf = sys.modules.get("tensorflow")
    if isinstance(err, MemoryError) or (
            tf is not None and isinstance(err, tf.errors.ResourceExhaustedError)):
        return ("out of memory; lower --batch-size (or the sequence length) and re-run; "
                "checkpoints written so far are kept.")
    if tf is not None and isinstance(err, (tf.errors.NotFoundError,
                                           tf.errors.PermissionDeniedError)):
        return f"{err.message.splitlines()[0]}. Check the path and its permissions."
    if not isinstance(err, OSError):
        return None
    detail = err.strerror or str(err) or type(err).__name__
    where = f" ({err.filename})" if err.filename else ""
    return (f"{detail}{where}. Check the path, its permissions and the free disk space; "
            "checkpoints written so far are kept.")


def main(argv=None) -> int:
    parser = _build_parser()
    args = parser.parse_args(argv)
    if not args.command:
        parser.print_help()
        return 0
    _configure_logging()
    from electra_tf.errors import ElectraError, TrainingError

    # --verbose keeps the filter off for this call only (no environment variable left behind).
    quiet = contextlib.nullcontext() if args.verbose else hidden_native_logs()
    try:
        with quiet:
            return COMMANDS[args.command](args)
    except TrainingError as err:
        print(f"electra-tf {args.command}: {err}", file=sys.stderr)
        return 3
    except ElectraError as err:
        print(f"electra-tf {args.command}: {err}", file=sys.stderr)
        return 2
    except Exception as err:  # a path, permission, full-disk or memory problem is the user's
        message = _describe_environment_error(err)
        if message is None:
            raise  # a bug: the traceback is what a report needs
        print(f"electra-tf {args.command}: {message}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print(f"\nelectra-tf {args.command}: interrupted. Checkpoints written so far are kept; "
              "re-run the same command to resume.", file=sys.stderr)
        return 130


if __name__ == "__main__":
    sys.exit(main())
