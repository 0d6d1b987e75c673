"""The `electra-tf` argument parser: every sub-command and its options, nothing else.

Options shared by several commands (corpus, training, devices, `--set`) are added by one helper
each, so they read and validate the same everywhere.
"""

from __future__ import annotations

import argparse


class _OneLineErrorParser(argparse.ArgumentParser):
    """argparse, but a usage mistake is one line (and exit status 2) like every other user
    error, pointing at --help instead of printing the usage block."""

    def error(self, message):
        self.exit(2, f"{self.prog}: {message} (see {self.prog} --help)\n")


def positive_int(text: str) -> int:
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a whole number, got {text!r}") from None
    if value < 1:
        raise argparse.ArgumentTypeError(f"must be at least 1, got {value}")
    return value


def build_parser() -> argparse.ArgumentParser:
    from electra_tf import __version__
    from electra_tf.distribute import PRECISIONS

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
    add_set_argument(summary, "model.num_layers=4")

    tokenizer = sub.add_parser("train-tokenizer", help="learn a WordPiece vocabulary from a corpus")
    _add_corpus_arguments(tokenizer)
    tokenizer.add_argument("--vocab-size", type=positive_int, default=30522,
                           help="upper bound of the vocabulary size (default: BERT's 30522)")
    tokenizer.add_argument("--out", required=True, help="vocab.txt to write")
    tokenizer.add_argument("--max-documents", type=positive_int, default=None,
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
    pretrain.add_argument("--init-from", default=None, metavar="SOURCE",
                          help="continue pretraining from a finished pretrain run, a preset, an "
                               "'electra-tf import' folder, a TF1 pretraining checkpoint or a "
                               "HuggingFace discriminator (folder or hf:ORG/NAME): its "
                               "architecture, vocabulary, casing and weights; a fresh optimizer "
                               "and schedule (docs/pretraining.md)")
    pretrain.add_argument("--init-generator", default=None, metavar="SOURCE",
                          help="with --init-from: the generator, when it is a separate "
                               "checkpoint (e.g. hf:google/electra-small-generator)")
    _add_learner_argument(pretrain)
    _add_training_arguments(pretrain)
    _add_distribution_arguments(pretrain)
    pretrain.add_argument("--prepare-only", action="store_true",
                          help="write the vocabulary, config.yaml and run.json, then stop (the "
                               "same command without it trains)")
    add_set_argument(pretrain, "optimizer.learning_rate=5e-4")

    finetune = sub.add_parser(
        "finetune", help="fine-tune a pretrained ELECTRA (or a from-scratch Transformer)")
    finetune.add_argument("--task", choices=("imdb", "folder", "csv", "conll", "jsonl", "glue",
                                             "squad"),
                          default=None,
                          help="the data: labelled texts or text pairs (imdb, folder, csv, "
                               "jsonl, glue), tagged sentences for named entities (conll, "
                               "jsonl) or questions about contexts (squad: SQuAD JSON or "
                               ".jsonl); default: the config's task.name")
    finetune.add_argument("--pretrained", default=None,
                          help="an 'electra-tf pretrain' (or finetune) --out-dir, a "
                               "discriminator .keras (with --vocab), a HuggingFace ELECTRA "
                               "folder, hf:ORG/NAME (hub id), a TF1 checkpoint or an installed "
                               "preset's name (electra-tf presets lists them)")
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
    add_set_argument(finetune, "training.epochs=2")
    finetune.add_argument("--quiet", action="store_true", help="one line per evaluation, no bar")
    _add_distribution_arguments(finetune)

    glue = sub.add_parser(
        "glue", help="fine-tune on GLUE tasks with several seeds: per-seed and median dev "
                     "scores and the GLUE score")
    glue.add_argument("--tasks", default="all",
                      help="comma-separated GLUE tasks (CoLA,SST-2,MRPC,STS-B,QQP,MNLI,QNLI,"
                           "RTE,WNLI) or all (default)")
    glue.add_argument("--pretrained", default=None, help="as for finetune")
    glue.add_argument("--data-dir", default=None,
                      help="GLUE's data folder, one sub-folder per task (download_glue_data.py's "
                           "layout); default: tfds glue/NAME")
    glue.add_argument("--out-dir", required=True, help="results folder (re-use it to resume)")
    glue.add_argument("--seeds", type=positive_int, default=3,
                      help="fine-tuning seeds per task; medians are reported (the paper: 10)")
    glue.add_argument("--config", default="finetune/glue_small",
                      help="fine-tuning recipe: finetune/glue_small (default), glue_base, "
                           "glue_large or a YAML path")
    glue.add_argument("--predict-test", action="store_true",
                      help="also write each task's test predictions (best seed on dev) in the "
                           "GLUE server's format, under OUT/submission/")
    glue.add_argument("--from-scratch", action="store_true", help="as for finetune")
    glue.add_argument("--model-config", default=None, help="as for finetune")
    add_set_argument(glue, "training.epochs=1")
    glue.add_argument("--quiet", action="store_true", help="one line per evaluation, no bar")
    _add_distribution_arguments(glue)

    evaluate = sub.add_parser("evaluate", help="evaluate a fine-tuned classifier on a split")
    evaluate.add_argument("--model", required=True, help="an 'electra-tf finetune' --out-dir")
    evaluate.add_argument("--split", default="test",
                          help="test (default), train, validation (the held-out part of the "
                               "training data) or a split the data names with {split}")
    evaluate.add_argument("--data", default=None, help="default: the data the model was tuned on")
    evaluate.add_argument("--batch-size", type=positive_int, default=64)

    export = sub.add_parser(
        "export", help="write a SavedModel that takes raw text (tokenizer inside)")
    export.add_argument("--model", required=True,
                        help="an 'electra-tf finetune' --out-dir (classifier) or an 'electra-tf "
                             "pretrain' --out-dir (encoder, for feature extraction)")
    export.add_argument("--out", required=True, help="export directory (new or empty)")
    export.add_argument("--precision", choices=PRECISIONS, default="float32",
                        help="compute precision of the SavedModel (weights stay float32): "
                             "mixed_bfloat16 computes in bfloat16 (faster on CPUs with "
                             "AVX512-BF16/AMX and on TPUs), bfloat16_matmul only its matrix "
                             "products")
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
    imp.add_argument("--num-heads", type=positive_int, default=None,
                     help="TF1 only: attention heads (default hidden // 64, as in ELECTRA)")
    imp.add_argument("--generator-num-heads", type=positive_int, default=None)
    imp.add_argument("--cased", action="store_true",
                     help="the vocabulary is cased (default: a HuggingFace folder's "
                          "tokenizer_config.json says; otherwise uncased)")

    predict = sub.add_parser("predict", help="classify or score texts, or find their named "
                                              "entities, with an exported or fine-tuned model")
    predict.add_argument("--model", required=True,
                         help="an 'electra-tf export' directory or an 'electra-tf finetune' "
                              "--out-dir")
    predict.add_argument("texts", nargs="*", metavar="TEXT",
                         help="texts to classify; without them: --file, or one text per line "
                              "on stdin")
    predict.add_argument("--file", default=None,
                         help="one text per line (UTF-8); for a pair model TEXT_A<TAB>TEXT_B "
                              "or JSON lines with text_a and text_b")
    predict.add_argument("--jsonl", action="store_true", help="one JSON object per line")
    predict.add_argument("--batch-size", type=positive_int, default=32)
    predict.add_argument("--quiet", action="store_true", help="no progress bar")
    predict.add_argument("--trust-saved-model", action="store_true",
                         help="load a SavedModel even if it holds ops our exports never do "
                              "(file I/O, Python calls); only for models you trust")

    sub.add_parser("presets", help="list the pretrained encoders installed with the package")

    quickstart = sub.add_parser(
        "quickstart", help="pretrain -> fine-tune -> evaluate a tiny ELECTRA on embedded reviews")
    quickstart.add_argument("--out-dir", default="electra-quickstart")
    quickstart.add_argument("--steps", type=positive_int, default=300,
                            help="pretraining steps")
    quickstart.add_argument("--finetune-epochs", type=positive_int, default=10)
    quickstart.add_argument("--seed", type=int, default=0)
    quickstart.add_argument("--preset", default="auto",
                            help="the pretrained encoder to fine-tune: an installed preset, "
                                 "'auto' (the default preset, when installed) or 'none' (the "
                                 "encoder the tour pretrains)")

    demo = sub.add_parser(
        "demo", help="pretrain a small ELECTRA on a synthetic corpus and show the losses fall")
    demo.add_argument("--steps", type=positive_int, default=600)
    demo.add_argument("--batch-size", type=positive_int, default=32)
    demo.add_argument("--seed", type=int, default=0)
    for command in sub.choices.values():  # `electra-tf pretrain --verbose` works too
        command.add_argument("--verbose", action="store_true", default=argparse.SUPPRESS,
                             help="also show TensorFlow's C++ log lines")
    return parser


def add_set_argument(parser, example: str) -> None:
    """`--set SECTION.KEY=VALUE`, repeatable: one config override each (every command with a
    config takes them the same way; `load_config`/`load_finetune_config` validate them)."""
    parser.add_argument("--set", dest="overrides", action="append", default=[],
                        metavar="KEY=VALUE", help=f"override a config value, e.g. {example}")


def _add_corpus_arguments(parser):
    parser.add_argument("--corpus", required=True,
                        help="text file(s), folder or glob (comma-separated), the IMDB archive or "
                             "folder, or tfds:NAME[:SPLIT]")
    parser.add_argument("--doc-format", choices=("auto", "line", "blank"), default=None,
                        help="line: one document per line; blank: blank lines separate documents "
                             "(default: auto)")
    parser.add_argument("--cased", action="store_true", default=None,
                        help="keep case and accents (default: lower-case like BERT-uncased)")


def _add_learner_argument(parser):
    from electra_tf.data.vocab_learning import DEFAULT_LEARNER, LEARNERS

    parser.add_argument("--learner", choices=LEARNERS, default=None,
                        help="WordPiece learner when a vocabulary is learned (default: "
                             f"{DEFAULT_LEARNER}, the faster; docs/pretraining.md compares them)")


def _add_training_arguments(parser):
    parser.add_argument("--steps", type=positive_int, default=None,
                        help="default: optimizer.train_steps")
    parser.add_argument("--batch-size", type=positive_int, default=None,
                        help="global batch size; default: optimizer.batch_size")
    parser.add_argument("--save-every", type=positive_int, default=None,
                        help="steps between checkpoints (the logging interval shrinks to fit); "
                             "default: run.save_every (1000)")
    parser.add_argument("--keep-checkpoints", type=positive_int, default=None,
                        help="default: run.keep_checkpoints (3)")
    parser.add_argument("--log-every", type=positive_int, default=None,
                        help="steps per logging interval (one progress bar); default: "
                             "run.log_every (100)")
    parser.add_argument("--seed", type=int, default=None, help="default: run.seed (0)")
    parser.add_argument("--vocab-documents", type=positive_int, default=None,
                        help="documents to learn the vocabulary from when --vocab is not given; "
                             "default: corpus.vocab_documents (20000)")
    parser.add_argument("--quiet", action="store_true", help="one line per interval, no bar")


def _add_distribution_arguments(parser):
    from electra_tf.distribute import PRECISIONS, STRATEGIES

    group = parser.add_argument_group(
        "devices and speed (shortcuts for the config's runtime section; defaults: its values)")
    group.add_argument("--strategy", choices=STRATEGIES, default=None,
                       help="tf.distribute strategy: auto = TPU, else all GPUs, else the CPU; "
                            "multi_worker reads the cluster from TF_CONFIG")
    group.add_argument("--tpu", default=None,
                       help="TPU name, grpc://HOST:8470 or 'local' (with --strategy tpu)")
    group.add_argument("--precision", choices=PRECISIONS, default=None,
                       help="compute precision (weights stay float32): mixed_bfloat16 computes "
                            "in bfloat16, bfloat16_matmul only its matrix products (TPUs, recent "
                            "CPUs/GPUs); mixed_float16 for GPUs; default float32")
    group.add_argument("--jit-compile", action="store_true", default=None,
                       help="compile the training step with XLA (measured slower on CPU)")
    group.add_argument("--steps-per-execution", type=positive_int, default=None,
                       help="training steps per tf.function call")
    group.add_argument("--deterministic", action="store_true", default=None,
                       help="deterministic TensorFlow ops: the same seed gives the same weights "
                            "(also after kill -9 and resume); its kernels may be slower "
                            "(benchmarks/results/determinism.md)")


def distribution_kwargs(args) -> dict:
    return dict(strategy=args.strategy, tpu=args.tpu, precision=args.precision,
                jit_compile=args.jit_compile, steps_per_execution=args.steps_per_execution,
                deterministic=args.deterministic)
