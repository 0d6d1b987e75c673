"""`pretrain`: text in, a pretrained discriminator out, resumable at any point.

One output directory holds one run:

    OUT/config.yaml          the effective config (special-token ids taken from the vocabulary)
    OUT/vocab.txt            the vocabulary (given with --vocab, or learned from the corpus)
    OUT/run.json             seed, corpus and settings a resumed run must reuse
    OUT/checkpoints/         the last few training checkpoints (model + optimizer + step)
    OUT/logs/                TensorBoard scalars (`tensorboard --logdir OUT/logs`)
    OUT/history.jsonl        one line of metrics per logging interval
    OUT/discriminator.keras  the pretrained discriminator: what fine-tuning loads
    OUT/generator.keras      the generator (for inspection or continued pretraining)
    OUT/metrics.json         final losses and accuracies, sequences/s, tokens/s, wall time
    OUT/curves.png           the loss / accuracy curves

Running the same call again on the same OUT continues from the newest readable checkpoint with the
same weights, optimizer moments, learning-rate step, random streams and data position, so a run
killed with `kill -9` and resumed ends with the weights an uninterrupted run ends with.
"""

from __future__ import annotations

import gc
import hashlib
import itertools
import logging
import math
import os
import time

import keras
import numpy as np
import tensorflow as tf

from electra_tf.config import ElectraConfig
from electra_tf.data.corpus import Corpus, open_corpus
from electra_tf.data.pipeline import pretraining_dataset
from electra_tf.data.tokenizer import WordPieceTokenizer
from electra_tf.data.vocab import (
    load_vocabulary,
    save_vocabulary,
    special_token_ids,
    vocabulary_fingerprint,
)
from electra_tf.data.vocab_learning import DEFAULT_LEARNER, learn_vocabulary
from electra_tf.errors import CheckpointError, ConfigError, DataError
from electra_tf.models.pretrainer import ElectraPretrainer
from electra_tf.training.callbacks import (
    IntervalLogger,
    PeriodicCheckpoint,
    StopAtStep,
    read_history,
)
from electra_tf.training.checkpoints import TrainingCheckpointer
from electra_tf.training.distribute import (
    compile_options,
    distribution_summary,
    enable_deterministic_ops,
    is_chief,
    precision_policy,
    resolve_strategy,
    with_precision,
)
from electra_tf.training.optimizer import create_optimizer
from electra_tf.training.run_files import (
    ensure_writable_directory,
    read_json,
    save_keras_atomically,
    write_json,
)

logger = logging.getLogger(__name__)

# The settings a resumed run must share with the run it continues.
_RUN_KEYS = ("seed", "lower_case", "doc_format", "log_every", "save_every")


class RunPaths:
    """File layout of one pretraining output directory (see the module docstring)."""

    def __init__(self, root: str):
        self.root = root
        join = lambda name: os.path.join(root, name)  # noqa: E731
        self.config, self.vocab, self.run = join("config.yaml"), join("vocab.txt"), join("run.json")
        self.checkpoints, self.logs, self.history = (join("checkpoints"), join("logs"),
                                                     join("history.jsonl"))
        self.discriminator, self.generator = join("discriminator.keras"), join("generator.keras")
        self.metrics, self.curves = join("metrics.json"), join("curves.png")


def pretrain(config: ElectraConfig, corpus: str | Corpus, out_dir: str, *,
             vocab: str | None = None, steps: int | None = None, batch_size: int | None = None,
             save_every: int = 1000, keep_checkpoints: int = 3, log_every: int = 100,
             seed: int = 0, lower_case: bool = True, doc_format: str = "auto",
             vocab_documents: int = 20_000, vocab_learner: str = DEFAULT_LEARNER,
             strategy="auto", tpu: str | None = None,
             precision: str = "float32", jit_compile: bool = False,
             steps_per_execution: int = 1, deterministic: bool = False,
             verbose: int | str = "auto") -> dict:
    """Pretrains ELECTRA on `corpus` into `out_dir` (see the module docstring), resuming if
    `out_dir` holds an unfinished run. Returns the metrics also written to `metrics.json`.

    Args:
        config: model, objective and optimizer settings (e.g. `load_config("configs/...")`).
        corpus: a `Corpus` or a `--corpus` spec (file, folder, glob, IMDB archive, tfds:NAME).
        out_dir: the run directory.
        vocab: a vocab.txt; without one a WordPiece vocabulary of `config.model.vocab_size`
            pieces is learned from the first `vocab_documents` documents by `vocab_learner`
            (see `electra_tf.data.vocab_learning`).
        steps, batch_size: override `optimizer.train_steps` / `optimizer.batch_size`.
        save_every: steps between checkpoints; `log_every` shrinks to a divisor of it if
            needed (a warning says so).
        keep_checkpoints: how many recent checkpoints to keep.
        log_every: steps per logging interval (one Keras "epoch" with its progress bar).
        seed: seeds the initial weights, masking, dropout, packing and shuffling.
        lower_case: lower-case and strip accents before WordPiece (BERT uncased). It must match
            how the vocabulary was made (True for BERT-uncased and for learned vocabularies).
        doc_format: "auto", "line" or "blank" (see `TextFileCorpus`).
        strategy: "auto", "one_device", "mirrored", "multi_worker", "tpu" or a
            `tf.distribute.Strategy` (see `electra_tf.training.distribute`). `batch_size` is
            the global batch. In a multi-worker run every worker runs this same call; only the
            chief writes to `out_dir`, which must be storage all workers can read (they restore
            the chief's checkpoints when resuming).
        tpu: the TPU for `strategy="tpu"` (a name, "grpc://HOST:PORT" or "local").
        precision: "float32", "mixed_bfloat16" or "mixed_float16".
        jit_compile: compile the training step with XLA.
        steps_per_execution: training steps per `tf.function` call; `log_every`, `save_every`
            and the number of steps must be multiples of it.
        deterministic: make TensorFlow's ops deterministic (for the rest of the process, see
            `enable_deterministic_ops`): two runs with the same seed, and a run killed and
            resumed, then end with identical weights, at a speed cost.
        verbose: Keras `fit` verbosity.

    Raises:
        ConfigError, DataError, CheckpointError: with a message saying what to change.
        TrainingError: the loss became NaN; the checkpoints written before are kept.
    """
    started = time.time()
    # First: a multi-worker strategy must exist before TensorFlow runs any other op.
    strategy = resolve_strategy(strategy, tpu)
    if deterministic:
        enable_deterministic_ops()
    chief = is_chief(strategy)
    paths = RunPaths(out_dir)
    if steps is not None and steps < 1 or batch_size is not None and batch_size < 1:
        raise ConfigError("--steps and --batch-size must be >= 1.")
    if log_every < 1 or save_every < 1 or keep_checkpoints < 1:
        raise ConfigError("--log-every, --save-every and --keep-checkpoints must be >= 1.")
    compile_kwargs = compile_options(jit_compile, steps_per_execution)
    if log_every % steps_per_execution:
        raise ConfigError(f"--log-every {log_every} must be a multiple of --steps-per-execution "
                          f"{steps_per_execution} (callbacks only see every "
                          f"{steps_per_execution}-th step).")
    if save_every % log_every:
        # Checkpoints are written at the end of a logging interval: shrink the interval so
        # that they land exactly where asked (a crash must not lose more than --save-every).
        interval = math.gcd(save_every, log_every)
        logger.warning("--save-every %d is not a multiple of --log-every %d: logging every %d "
                       "steps, so that checkpoints land every %d steps.", save_every, log_every,
                       interval, save_every)
        log_every = interval
        if log_every % steps_per_execution:
            raise ConfigError(f"--save-every {save_every} must be a multiple of "
                              f"--steps-per-execution {steps_per_execution}.")
    if chief:
        ensure_writable_directory(out_dir)

    run = dict(seed=seed, lower_case=lower_case, doc_format=doc_format, log_every=log_every,
               save_every=save_every, corpus=corpus if isinstance(corpus, str) else repr(corpus))
    previous_run = read_json(paths.run)
    if previous_run:
        run = _merge_previous_run(previous_run, run)

    # 1. The corpus: fail fast, before minutes of vocabulary learning.
    if isinstance(corpus, str):
        corpus = open_corpus(corpus, doc_format=run["doc_format"])
    corpus.check()

    # 2. The vocabulary: the run's own copy, the one given, or one learned from the corpus.
    vocabulary, learned = _resolve_vocabulary(paths, vocab, corpus, config.model.vocab_size,
                                              run, vocab_documents, vocab_learner,
                                              write=chief)
    run.setdefault("vocab_learned", learned)
    run.setdefault("vocab_fingerprint", vocabulary_fingerprint(vocabulary))
    tokenizer = WordPieceTokenizer(vocabulary, lower_case=run["lower_case"])

    # 3. The effective config, checked against the run being resumed.
    config = _effective_config(config, vocabulary, run["vocab_learned"], steps, batch_size)
    total_steps, batch = config.optimizer.train_steps, config.optimizer.batch_size
    if total_steps % steps_per_execution:
        raise ConfigError(f"The number of steps ({total_steps}) must be a multiple of "
                          f"--steps-per-execution {steps_per_execution}.")
    if batch % strategy.num_replicas_in_sync:
        raise ConfigError(f"The global batch size {batch} does not split evenly over "
                          f"{strategy.num_replicas_in_sync} replicas: pass a multiple of "
                          f"{strategy.num_replicas_in_sync} with --batch-size.")
    _check_resumable_config(paths, config)
    finished = _finished_metrics(paths, config)
    if finished:  # re-invoked after the end: the run's own record stays as it is
        logger.info("%s is a finished run of %d steps; nothing to train (its metrics.json is "
                    "kept). Pass a larger --steps to train it further.", out_dir,
                    finished["steps"])
        return finished
    if chief:
        config.to_yaml(paths.config)
        write_json(paths.run, run)

    # 4. Model, optimizer (built, so the checkpoint covers its variables) and checkpoints, all
    #    created under the strategy's scope so that their variables are mirrored.
    keras.utils.set_random_seed(run["seed"])
    with precision_policy(precision), strategy.scope():
        pretrainer = ElectraPretrainer(config.model, config.pretraining, seed=run["seed"])
        pretrainer.compile(optimizer=create_optimizer(config.optimizer), **compile_kwargs)
        pretrainer.build({"token_ids": (None, config.pretraining.max_seq_length)})
        pretrainer.optimizer.build(pretrainer.trainable_variables)
    checkpointer = TrainingCheckpointer(paths.checkpoints, pretrainer, pretrainer.optimizer,
                                        keep=keep_checkpoints)
    start_step = checkpointer.restore_latest() or 0
    history = read_history(paths.history, up_to_step=start_step, rewrite=chief)
    if start_step:
        logger.info("Resuming %s from step %d of %d.", out_dir, start_step, total_steps)

    # 5. Train: one Keras epoch per logging interval.
    if start_step < total_steps:
        dataset = pretraining_dataset(
            corpus, tokenizer, config.pretraining.max_seq_length, batch, seed=run["seed"],
            skip_batches=start_step).with_options(_split_batches_over_workers())
        interval_logger = IntervalLogger(paths.history if chief else None,
                                         paths.logs if chief else None, batch,
                                         checkpoint_dir=paths.checkpoints)
        callbacks = [StopAtStep(total_steps), interval_logger]
        if chief:
            callbacks.append(PeriodicCheckpoint(checkpointer, run["save_every"], total_steps))
        logger.info("Pretraining %s steps %d -> %d, batch %d x %d tokens; checkpoints every %d "
                    "steps in %s.", "ELECTRA" if config.pretraining.electra_objective else "MLM",
                    start_step, total_steps, batch, config.pretraining.max_seq_length,
                    run["save_every"], paths.checkpoints)
        pretrainer.fit(
            dataset, epochs=math.ceil(total_steps / run["log_every"]),
            initial_epoch=start_step // run["log_every"], steps_per_epoch=run["log_every"],
            callbacks=callbacks, verbose=verbose if chief else 0, shuffle=False)
        history += interval_logger.records
        # Finalise the Python-generator pipeline now: left to interpreter shutdown, its
        # iterator's clean-up prints a FAILED_PRECONDITION error line on stderr.
        del dataset
        gc.collect()
        logger.info("Corpus (pass in progress): %s.", corpus.stats.summary())

    # 6. The products (the chief's; every worker returns the same metrics).
    metrics = _final_metrics(config, history, corpus, vocabulary, start_step,
                             time.time() - started)
    metrics["distribution"] = distribution_summary(strategy, precision, jit_compile,
                                                   steps_per_execution)
    metrics["weights_sha256"] = weights_fingerprint(pretrainer)
    if not chief:
        return metrics
    # Saved in float32 whatever the training precision: fine-tuning and export choose their own.
    save_keras_atomically(with_precision(pretrainer.generator, "float32"), paths.generator)
    if pretrainer.discriminator is not None:
        save_keras_atomically(with_precision(pretrainer.discriminator, "float32"),
                               paths.discriminator)
    write_json(paths.metrics, metrics)
    try:
        from electra_tf.training.plots import plot_pretraining_curves

        plot_pretraining_curves(history, paths.curves, title=f"ELECTRA pretraining: {out_dir}")
    except ImportError:  # matplotlib is optional for the library, required by the CLI extra
        logger.info("matplotlib is not installed; skipped %s.", paths.curves)
    return metrics


# ------------------------------------------------------------------------------ the pieces


def _merge_previous_run(previous: dict, requested: dict) -> dict:
    if previous.get("seed") != requested["seed"]:
        raise CheckpointError(
            f"This output directory holds a run with seed {previous.get('seed')}, not "
            f"{requested['seed']}: its data order and random streams cannot be continued with "
            f"another seed. Pass --seed {previous.get('seed')} or use a new --out-dir.")
    for key in _RUN_KEYS:
        if key in previous and previous[key] != requested.get(key):
            logger.warning("Resuming with the run's own %s=%r (asked: %r).", key, previous[key],
                           requested.get(key))
    if previous.get("corpus") != requested["corpus"]:
        logger.warning("The corpus differs from the run's (%s, now %s); resuming anyway: the data "
                       "position is only exact for the same corpus.", previous.get("corpus"),
                       requested["corpus"])
    merged = dict(requested)
    merged.update({k: v for k, v in previous.items() if k != "corpus"})
    return merged


def _resolve_vocabulary(paths, vocab, corpus, vocab_size, run, vocab_documents, learner,
                        write=True):
    """Returns (vocabulary, learned_here); saves it into the run unless `write` is False (the
    non-chief workers of a multi-worker run, which learn the same vocabulary themselves)."""
    if os.path.exists(paths.vocab):
        vocabulary = load_vocabulary(paths.vocab)
        if vocab and vocabulary_fingerprint(load_vocabulary(vocab)) != \
                vocabulary_fingerprint(vocabulary):
            raise CheckpointError(
                f"{paths.vocab} (the vocabulary this run was trained with) differs from {vocab}. "
                f"Resume without --vocab, or start a new --out-dir for the new vocabulary.")
        return vocabulary, bool(run.get("vocab_learned", False))
    if vocab:
        vocabulary = load_vocabulary(vocab)
        if write:
            save_vocabulary(vocabulary, paths.vocab)
        return vocabulary, False
    logger.info("No --vocab given: learning a %d-piece WordPiece vocabulary from the first %d "
                "documents of %s ...", vocab_size, vocab_documents, corpus.name)
    vocabulary = learn_vocabulary(itertools.islice(corpus.documents(), vocab_documents),
                                  vocab_size, lower_case=run["lower_case"], learner=learner)
    # learn_vocabulary has logged the pieces, documents and seconds.
    if write:
        save_vocabulary(vocabulary, paths.vocab)
        logger.info("Vocabulary from %s saved to %s.", corpus.stats.summary(), paths.vocab)
    return vocabulary, True


def _effective_config(config: ElectraConfig, vocabulary, vocab_learned: bool, steps, batch_size):
    data = config.to_dict()
    ids = special_token_ids(vocabulary)
    changed = {k: v for k, v in ids.as_pretraining_overrides().items()
               if data["pretraining"][k] != v}
    if changed:
        logger.info("Special-token ids from the vocabulary: %s.", changed)
    data["pretraining"].update(ids.as_pretraining_overrides())
    if data["model"]["vocab_size"] != len(vocabulary):
        if not vocab_learned:
            raise ConfigError(
                f"The config says model.vocab_size={data['model']['vocab_size']} but the "
                f"vocabulary has {len(vocabulary)} tokens. Pass --set "
                f"model.vocab_size={len(vocabulary)} to size the model for this vocabulary, or give "
                f"the vocabulary the config was made for.")
        logger.info("model.vocab_size = %d, the size of the learned vocabulary.", len(vocabulary))
        data["model"]["vocab_size"] = len(vocabulary)
    optimizer = data["optimizer"]
    if steps is not None:
        optimizer["train_steps"] = steps
    if batch_size is not None:
        optimizer["batch_size"] = batch_size
    if optimizer["warmup_steps"] >= optimizer["train_steps"]:
        warmup = max(1, optimizer["train_steps"] // 10)
        logger.warning("warmup_steps %d >= train_steps %d: using %d warm-up steps (10%%).",
                       optimizer["warmup_steps"], optimizer["train_steps"], warmup)
        optimizer["warmup_steps"] = warmup
    return ElectraConfig.from_dict(data)


def _check_resumable_config(paths, config: ElectraConfig):
    if not os.path.exists(paths.config):
        return
    previous = ElectraConfig.from_yaml(paths.config).to_dict()
    current = config.to_dict()
    differences = [f"{section}.{key}: {previous[section][key]!r} -> {current[section][key]!r}"
                   for section in ("model", "pretraining")
                   for key in current[section] if previous[section].get(key) != current[section][key]]
    if differences:
        raise CheckpointError(
            f"{paths.root} holds a run with a different model or objective ("
            + "; ".join(differences) + "). Its checkpoints cannot continue with this config: "
            "use the same config to resume, or a new --out-dir.")
    changed = [f"optimizer.{key}: {previous['optimizer'].get(key)!r} -> {value!r}"
               for key, value in current["optimizer"].items()
               if previous["optimizer"].get(key) != value]
    if changed:
        logger.warning("Resuming with changed optimizer settings: %s.", "; ".join(changed))


def _finished_metrics(paths: RunPaths, config: ElectraConfig) -> dict:
    """The metrics of a run that has already trained `config`'s steps and written all its
    products (`{}` otherwise: there is work to do)."""
    metrics = read_json(paths.metrics)
    products = [paths.generator] + ([paths.discriminator]
                                    if config.pretraining.electra_objective else [])
    if metrics and all(map(os.path.exists, products)) \
            and metrics.get("steps", 0) >= config.optimizer.train_steps:
        return metrics
    return {}


def _final_metrics(config, history, corpus, vocabulary, start_step, wall_s) -> dict:
    batch, seq_len = config.optimizer.batch_size, config.pretraining.max_seq_length
    train_s = sum(r.get("interval_s", 0.0) for r in history)
    steps = history[-1]["step"] if history else start_step
    sequences = steps * batch
    metrics = {
        "steps": steps,
        "train_steps": config.optimizer.train_steps,
        "batch_size": batch,
        "max_seq_length": seq_len,
        "vocab_size": len(vocabulary),
        "final": {k: v for k, v in (history[-1] if history else {}).items()
                  if k not in ("interval_s", "sequences_per_s")},
        "first_interval": {k: v for k, v in (history[0] if history else {}).items()
                           if k not in ("interval_s", "sequences_per_s")},
        "train_time_s": round(train_s, 1),
        "sequences_per_s": round(sequences / train_s, 2) if train_s else None,
        # Every position of a packed sequence is computed, padding included.
        "tokens_per_s": round(sequences * seq_len / train_s, 1) if train_s else None,
        "wall_time_this_invocation_s": round(wall_s, 1),
        "resumed_from_step": start_step,
        "corpus": {"name": corpus.name, **corpus.stats.as_dict()},
    }
    return metrics


def weights_fingerprint(model) -> str:
    """SHA-256 of every variable's bytes (weights and random-stream states), in creation order:
    equal on all workers of a multi-worker run, and equal for runs that ended in the same state."""
    digest = hashlib.sha256()
    for variable in model.variables:
        digest.update(np.ascontiguousarray(keras.ops.convert_to_numpy(variable.value)).tobytes())
    return digest.hexdigest()


def _split_batches_over_workers() -> tf.data.Options:
    """Multi-worker runs: every worker reads the whole stream and keeps its share of each global
    batch. (The default would first try to give each worker its own *files*, and a one-file
    corpus would leave a worker without data.)"""
    options = tf.data.Options()
    options.experimental_distribute.auto_shard_policy = tf.data.experimental.AutoShardPolicy.DATA
    return options


def load_run_vocabulary(out_dir: str) -> list[str]:
    """The vocabulary a pretraining run used (for fine-tuning its discriminator)."""
    path = RunPaths(out_dir).vocab
    if not os.path.exists(path):
        raise DataError(f"{out_dir} is not a pretraining output directory (no vocab.txt).")
    return load_vocabulary(path)
