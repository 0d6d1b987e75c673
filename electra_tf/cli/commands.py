"""The `electra-tf` sub-commands: each turns parsed arguments into one library call and prints
what a person needs next. The work itself is in the library (`electra_tf.training`, `.export`,
`.convert`, `electra_tf.quickstart`); errors a user can fix are raised as `ElectraError` and
turned into one line by `electra_tf.cli.main`.
"""

from __future__ import annotations

import contextlib
import os
import sys
import time

from electra_tf.cli.parser import distribution_kwargs
from electra_tf.config import resolve_config_path
from electra_tf.reports import finetuning_report, pretraining_report


def cmd_train_tokenizer(args) -> int:
    import itertools

    from electra_tf.data.corpus import open_corpus
    from electra_tf.data.vocab import save_vocabulary
    from electra_tf.data.vocab_learning import DEFAULT_LEARNER, learn_vocabulary
    from electra_tf.errors import DataError
    from electra_tf.files import ensure_writable_directory

    if os.path.isdir(args.out):
        raise DataError(f"--out {args.out} is a directory; give the path of the vocab.txt to "
                        "write.")
    ensure_writable_directory(os.path.dirname(os.path.abspath(args.out)), "--out's folder")
    corpus = open_corpus(args.corpus, doc_format=args.doc_format or "auto")
    corpus.check()
    documents = corpus.documents()
    if args.max_documents:
        documents = itertools.islice(documents, args.max_documents)
    started = time.time()
    vocabulary = learn_vocabulary(documents, args.vocab_size, lower_case=not args.cased,
                                  learner=args.learner or DEFAULT_LEARNER)
    save_vocabulary(vocabulary, args.out)
    print(f"Learned {len(vocabulary):,d} WordPiece tokens in {time.time() - started:.0f} s from "
          f"{corpus.stats.summary()}; wrote {args.out}.")
    return 0


def cmd_pretrain(args) -> int:
    from electra_tf import load_config
    from electra_tf.training.pretrain import pretrain

    config = load_config(resolve_config_path(args.config), args.overrides)
    metrics = pretrain(
        config, args.corpus, args.out_dir, vocab=args.vocab, init_from=args.init_from,
        init_generator=args.init_generator, steps=args.steps,
        batch_size=args.batch_size, save_every=args.save_every,
        keep_checkpoints=args.keep_checkpoints, log_every=args.log_every, seed=args.seed,
        lower_case=None if args.cased is None else not args.cased, doc_format=args.doc_format,
        vocab_documents=args.vocab_documents, vocab_learner=args.learner,
        verbose=2 if args.quiet else 1, prepare_only=args.prepare_only,
        **distribution_kwargs(args))
    if metrics is None:
        print(f"Prepared {args.out_dir}: vocab.txt, config.yaml and run.json, no training. The "
              f"same command without --prepare-only trains it.")
        return 0
    print(pretraining_report(metrics, args.out_dir))
    return 0


def cmd_finetune(args) -> int:
    from electra_tf import load_config
    from electra_tf.config.finetuning import load_finetune_config
    from electra_tf.training.finetune import finetune

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
                       **distribution_kwargs(args))
    from electra_tf.training.evaluation import split_exists

    print(finetuning_report(metrics, args.out_dir,
                            split_exists(config.task.name, config.task.data, "test")))
    return 0


def cmd_glue(args) -> int:
    from electra_tf import load_config
    from electra_tf.training.glue import run_glue

    model_config = None
    if args.model_config:
        model_config = load_config(resolve_config_path(args.model_config)).model
    run_glue([t.strip() for t in args.tasks.split(",") if t.strip()], args.out_dir,
             pretrained=args.pretrained, data_dir=args.data_dir, seeds=args.seeds,
             config=resolve_config_path(args.config), overrides=args.overrides,
             from_scratch=args.from_scratch, model_config=model_config,
             predict_test=args.predict_test, verbose=2 if args.quiet else 1,
             **distribution_kwargs(args))
    with open(os.path.join(args.out_dir, "glue_results.md"), encoding="utf-8") as f:
        print(f.read().rstrip())
    print(f"Written to {os.path.join(args.out_dir, 'glue_results.json')} (and .md)"
          + (f"; test predictions in {os.path.join(args.out_dir, 'submission')}"
             if args.predict_test and args.data_dir else "") + ".")
    return 0


def cmd_evaluate(args) -> int:
    from electra_tf.tasks.scoring import format_metrics
    from electra_tf.training.evaluation import evaluate

    metrics = evaluate(args.model, args.split, data=args.data, batch_size=args.batch_size)
    print(f"{args.split} ({metrics['source']}, {metrics['seconds']:.0f} s):")
    print(format_metrics(metrics))
    written = [os.path.join(args.model, "metrics.json")]
    if "confusion_matrix" in metrics:  # a classifier's
        written.append(os.path.join(args.model, f"confusion_{args.split}.png"))
    print(f"Written to {' and '.join(written)}.")
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
    encoder = ("" if "discriminator" in summary["models"] else
               " (the generator's encoder, as there is no discriminator)")
    print(f"Imported {', '.join(summary['models'])} ({summary['format']}) into {args.out_dir}. "
          f"Fine-tune it{encoder}: electra-tf finetune --pretrained {args.out_dir} "
          "--out-dir OUT ...")
    return 0


def cmd_predict(args) -> int:
    import keras

    from electra_tf.errors import DataError
    from electra_tf.export.predict import (
        format_answer,
        format_entities,
        format_prediction,
        load_predictor,
        read_pairs,
        read_texts,
    )

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
    predictor = load_predictor(args.model, trust_saved_model=args.trust_saved_model)
    if predictor.pairs:
        texts = read_pairs(texts, args.file or "input",
                           ("question", "context") if predictor.reader else ("text_a", "text_b"))
    progress = None
    if args.file and not args.quiet and len(texts) > args.batch_size:
        progress = keras.utils.Progbar(len(texts), unit_name="text", stateful_metrics=())
    done = 0
    for result in predictor.predict_batches(texts, args.batch_size):
        for row in range(len(next(iter(result.values())))):
            if predictor.reader:
                line = format_answer(texts[done], result, row, args.jsonl)
            elif predictor.tagger:
                line = format_entities(texts[done], result["entities"][row], args.jsonl)
            elif predictor.regression:
                line = format_prediction(texts[done], None, None, [], args.jsonl,
                                         score=float(result["score"][row]))
            else:
                line = format_prediction(texts[done], result["label"][row],
                                         result["probabilities"][row], predictor.label_names,
                                         args.jsonl)
            print(line)
            done += 1
        if progress is not None:  # on stderr, so stdout stays pure predictions for pipes
            with contextlib.redirect_stdout(sys.stderr):
                progress.update(done)
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


def cmd_presets(args) -> int:
    from electra_tf.pretrained.presets import PRESETS_DIR, available_presets

    presets = available_presets()
    if not presets:
        print(f"No presets are installed (in {PRESETS_DIR}).")
    for name, manifest in presets.items():
        print(f"{name}: {manifest['description']} ({manifest['steps']:,d} steps on "
              f"{manifest['data']}; {manifest.get('discriminator_parameters', 0) / 1e6:.1f} M "
              f"parameters)\n    electra-tf finetune --pretrained {name} ...")
    return 0


def cmd_quickstart(args) -> int:
    from electra_tf.quickstart import run_quickstart

    return run_quickstart(args.out_dir, steps=args.steps, finetune_epochs=args.finetune_epochs,
                          seed=args.seed, preset=None if args.preset == "none" else args.preset)


def cmd_demo(args) -> int:
    from electra_tf.demo import run_demo

    return run_demo(steps=args.steps, batch_size=args.batch_size, seed=args.seed)


COMMANDS = {"summary": cmd_summary, "demo": cmd_demo, "train-tokenizer": cmd_train_tokenizer,
            "pretrain": cmd_pretrain, "quickstart": cmd_quickstart, "finetune": cmd_finetune,
            "evaluate": cmd_evaluate, "export": cmd_export, "predict": cmd_predict,
            "import": cmd_import, "presets": cmd_presets, "glue": cmd_glue}
