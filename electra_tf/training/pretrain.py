"""`pretrain`: text in, a pretrained discriminator out, resumable at any point.

One output directory holds one run:

    OUT/config.yaml          the effective config (special-token ids taken from the vocabulary)
    OUT/vocab.txt            the vocabulary (given with --vocab, or learned from the corpus)
    OUT/run.json             the corpus, the vocabulary's casing, whether it was learned
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
import logging
import math
import os
import shutil
import time

import keras
import numpy as np
import tensorflow as tf

from electra_tf.config import ElectraConfig
from electra_tf.config.base import with_shortcuts
from electra_tf.data.corpus import Corpus
from electra_tf.data.pipeline import pretraining_dataset
from electra_tf.data.tokenizer import WordPieceTokenizer
from electra_tf.distribute import Runtime, with_precision
from electra_tf.errors import ConfigError
from electra_tf.files import ensure_writable_directory, read_json, write_json
from electra_tf.models.pretrainer import ElectraPretrainer
from electra_tf.pretrained.init_from import load_initial_weights, read_initial_networks
from electra_tf.runs.keras_files import save_keras_atomically
from electra_tf.runs.layouts import PretrainPaths, refuse_another_kind_of_run, run_lock
from electra_tf.runs.resume import (
    check_resumable_pretraining,
    finished_pretraining_metrics,
    resumed_pretraining_config,
)
from electra_tf.training.callbacks import (
    IntervalLogger,
    PeriodicCheckpoint,
    StopAtStep,
    read_history,
)
from electra_tf.training.checkpoints import TrainingCheckpointer
from electra_tf.training.optimizer import create_optimizer
from electra_tf.training.pretrain_setup import (
    check_config_fits_runtime,
    check_same_source,
    checked_corpus,
    checkpoint_grid,
    continued_config,
    effective_config,
    run_vocabulary,
)

logger = logging.getLogger(__name__)



# The keyword arguments of `pretrain` that are shortcuts for config fields (the command line's
# flags are too): one configuration, stored whole in config.yaml and checked on resume.
SHORTCUTS = {"steps": "optimizer.train_steps", "batch_size": "optimizer.batch_size",
             "seed": "run.seed", "log_every": "run.log_every", "save_every": "run.save_every",
             "keep_checkpoints": "run.keep_checkpoints", "lower_case": "corpus.lower_case",
             "doc_format": "corpus.doc_format", "vocab_documents": "corpus.vocab_documents",
             "vocab_learner": "corpus.vocab_learner", "strategy": "runtime.strategy",
             "tpu": "runtime.tpu", "precision": "runtime.precision",
             "jit_compile": "runtime.jit_compile",
             "steps_per_execution": "runtime.steps_per_execution",
             "deterministic": "runtime.deterministic"}


def pretrain(config: ElectraConfig, corpus: str | Corpus, out_dir: str, *,
             vocab: str | None = None, init_from=None, init_generator: str | None = None,
             verbose: int | str = "auto", prepare_only: bool = False,
             **settings) -> dict | None:
    """Pretrains ELECTRA on `corpus` into `out_dir` (see the module docstring), resuming if
    `out_dir` holds an unfinished run. Returns the metrics also written to `metrics.json`
    (None with `prepare_only`).

    Args:
        config: what to train and how (`load_config("configs/...")`): model, objective,
            optimizer, and the run's `run` (seed, log/checkpoint intervals), `corpus` (document
            format, casing, vocabulary learning) and `runtime` (strategy, precision, XLA) sections.
        corpus: a `Corpus` or a `--corpus` spec (file, folder, glob, IMDB archive, tfds:NAME).
        out_dir: the run directory.
        vocab: a vocab.txt; without one a WordPiece vocabulary of `config.model.vocab_size`
            pieces is learned from the first `corpus.vocab_documents` documents (see
            `electra_tf.data.vocab_learning`).
        init_from: continued pretraining: a source `electra_tf.pretrained.init_from` reads (a
            finished run, a preset, an import folder, a TF1 pretraining checkpoint, a
            HuggingFace discriminator). The run takes its architecture (`config.model` is
            replaced), vocabulary and casing, and starts from its weights with a fresh
            optimizer and schedule; run.json records the source. `init_generator`: the
            generator when it is a checkpoint of its own (HuggingFace).
        verbose: Keras `fit` verbosity.
        prepare_only: stop once the vocabulary, config.yaml and run.json are written (minutes
            of vocabulary learning, no model): to look at the vocabulary before hours of
            training, or to give `finetune --from-scratch` the architecture and vocabulary of a
            run whose weights are not needed. The same call without it then trains that run.
        **settings: shortcuts for config fields, as the command line's flags are (None leaves
            the config's value): `steps`, `batch_size` (`optimizer.train_steps`, `.batch_size`);
            `seed`, `log_every`, `save_every`, `keep_checkpoints` (`run.*`); `lower_case`,
            `doc_format`, `vocab_documents`, `vocab_learner` (`corpus.*`); `strategy`, `tpu`,
            `precision`, `jit_compile`, `steps_per_execution`, `deterministic` (`runtime.*`).
            `strategy` may also be a `tf.distribute.Strategy` object. In a multi-worker run
            every worker runs this same call; only the chief writes to `out_dir`, which must be
            storage all workers can read (they restore the chief's checkpoints when resuming).
            `runtime.deterministic` makes TensorFlow's ops deterministic for the rest of the
            process: two runs with the same seed, and a run killed and resumed, then end with
            identical weights, at a speed cost.

    Raises:
        ConfigError, DataError, CheckpointError: with a message saying what to change.
        TrainingError: the loss became NaN; the checkpoints written before are kept.
    """
    started = time.time()
    strategy = settings.pop("strategy", None)
    asked_lower_case = settings.get("lower_case")
    config = with_shortcuts(config, SHORTCUTS, settings, strategy, "pretrain")
    # First: a multi-worker strategy must exist before TensorFlow runs any other op.
    runtime = Runtime.from_config(config.runtime, strategy)
    networks = None
    if init_from is not None:
        networks = read_initial_networks(init_from, init_generator)
        config, vocab = continued_config(config, networks, vocab, asked_lower_case, init_from)
    elif init_generator is not None:
        raise ConfigError("--init-generator goes with --init-from (the discriminator's source).")
    paths = PretrainPaths(out_dir)
    refuse_another_kind_of_run(out_dir, "pretraining")
    if runtime.chief:
        ensure_writable_directory(out_dir)
    with run_lock(out_dir, held=runtime.chief):  # one process per run folder
        corpus_spec = corpus if isinstance(corpus, str) else repr(corpus)
        config = checkpoint_grid(resumed_pretraining_config(paths, config, corpus_spec))
        run = {k: v for k, v in read_json(paths.run).items()
               if k in ("vocab_learned", "vocab_fingerprint")}
        run.update(corpus=corpus_spec, lower_case=config.corpus.lower_case)
        check_same_source(paths, networks and networks.record)
        if networks is not None:
            run["init_from"] = networks.record

        # 1. Data: the corpus (checked before minutes of vocabulary learning), the vocabulary.
        corpus = checked_corpus(corpus, config.corpus.doc_format)
        vocabulary = run_vocabulary(paths, vocab, corpus, run, config, write=runtime.chief)
        tokenizer = WordPieceTokenizer(vocabulary, lower_case=config.corpus.lower_case)

        # 2. The effective config, checked against the runtime and the run being resumed.
        config = effective_config(config, vocabulary, run["vocab_learned"])
        check_config_fits_runtime(config, runtime)
        check_resumable_pretraining(paths, config)
        finished = finished_pretraining_metrics(paths, config)
        if finished:  # re-invoked after the end: the run's own record stays as it is
            logger.info("%s is a finished run of %d steps; nothing to train (its metrics.json is "
                        "kept). Pass a larger --steps to train it further.", out_dir,
                        finished["steps"])
            return finished
        if runtime.chief:
            config.to_yaml(paths.config)
            write_json(paths.run, run)
        if prepare_only:  # the caller says so (the CLI prints one line): no second message here
            return None

        # 3. Model, then 4. the newest checkpoint and the history up to it.
        pretrainer = _build_pretrainer(config, runtime)
        checkpointer = TrainingCheckpointer(paths.checkpoints, pretrainer, pretrainer.optimizer,
                                            keep=config.run.keep_checkpoints)
        start_step = _restore(checkpointer, paths, config)
        if networks is not None and start_step == 0:  # resumed runs restore their own weights
            load_initial_weights(pretrainer, networks)
            logger.info("Starting from the weights of %s (%s).", init_from,
                        networks.record["kind"])
        history = read_history(paths.history, up_to_step=start_step, rewrite=runtime.chief)

        # 5. Train, then 6. the products (the chief's; every worker returns the same metrics).
        if start_step < config.optimizer.train_steps:
            history += _fit(pretrainer, corpus, tokenizer, config, start_step, checkpointer,
                            paths, runtime, verbose)
        metrics = _final_metrics(config, history, corpus, vocabulary, start_step, started, runtime,
                                 pretrainer)
        if runtime.chief:
            _write_products(pretrainer, paths, metrics, history)
        return metrics


# ------------------------------------------------------------------------------ the stages


def _build_pretrainer(config: ElectraConfig, runtime: Runtime) -> ElectraPretrainer:
    """The pretrainer and its optimizer, built (so that a checkpoint covers every variable)
    under the runtime's scope (mirrored variables, the training precision)."""
    seed = config.run.seed
    keras.utils.set_random_seed(seed)
    with runtime.scope():
        pretrainer = ElectraPretrainer(config.model, config.pretraining, seed=seed)
        pretrainer.compile(optimizer=create_optimizer(config.optimizer),
                           **runtime.compile_options())
        pretrainer.build({"token_ids": (None, config.pretraining.max_seq_length)})
        pretrainer.optimizer.build(pretrainer.trainable_variables)
    return pretrainer


def _restore(checkpointer: TrainingCheckpointer, paths: PretrainPaths, config) -> int:
    """Restores the newest readable checkpoint; returns its step (0 for a new run)."""
    start_step = checkpointer.restore_latest() or 0
    if start_step:
        logger.info("Resuming %s from step %d of %d.", paths.root, start_step,
                    config.optimizer.train_steps)
    return start_step


def _fit(pretrainer, corpus, tokenizer, config, start_step, checkpointer, paths, runtime,
         verbose) -> list[dict]:
    """Trains from `start_step` to the last step, one Keras epoch per logging interval, the data
    stream continued where `start_step` left it. Returns the new history records."""
    total_steps, batch = config.optimizer.train_steps, config.optimizer.batch_size
    chief, run = runtime.chief, config.run
    dataset = pretraining_dataset(
        corpus, tokenizer, config.pretraining.max_seq_length, batch, seed=run.seed,
        skip_batches=start_step).with_options(_split_batches_over_workers())
    interval_logger = IntervalLogger(paths.history if chief else None,
                                     paths.logs if chief else None, batch,
                                     checkpoint_dir=paths.checkpoints)
    callbacks = [StopAtStep(total_steps), interval_logger]
    if chief:
        callbacks.append(PeriodicCheckpoint(checkpointer, run.save_every, total_steps))
    logger.info("Pretraining %s steps %d -> %d, batch %d x %d tokens; checkpoints every %d "
                "steps in %s.", "ELECTRA" if config.pretraining.electra_objective else "MLM",
                start_step, total_steps, batch, config.pretraining.max_seq_length,
                run.save_every, paths.checkpoints)
    pretrainer.fit(
        dataset, epochs=math.ceil(total_steps / run.log_every),
        initial_epoch=start_step // run.log_every, steps_per_epoch=run.log_every,
        callbacks=callbacks, verbose=verbose if chief else 0, shuffle=False)
    # Finalise the Python-generator pipeline now: left to interpreter shutdown, its
    # iterator's clean-up prints a FAILED_PRECONDITION error line on stderr.
    del dataset
    gc.collect()
    report = corpus.report()
    logger.info("Corpus (%s; %d complete passes read): %s.", report["counted"],
                report["passes_completed"], (corpus.full_pass or corpus.stats).summary())
    return interval_logger.records


def _final_metrics(config, history, corpus, vocabulary, start_step, started, runtime,
                   pretrainer) -> dict:
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
        "wall_time_this_invocation_s": round(time.time() - started, 1),
        "resumed_from_step": start_step,
        "corpus": corpus.report(),
        "distribution": runtime.summary(),
        "weights_sha256": weights_fingerprint(pretrainer),
    }
    return metrics


def _write_products(pretrainer, paths: PretrainPaths, metrics: dict, history) -> None:
    # Saved in float32 whatever the training precision: fine-tuning and export choose their own.
    save_keras_atomically(with_precision(pretrainer.generator, "float32"), paths.generator)
    if pretrainer.discriminator is not None:
        save_keras_atomically(pretrainer.standalone_discriminator(), paths.discriminator)
    write_json(paths.metrics, metrics)
    try:
        from electra_tf.training.plots import plot_pretraining_curves

        plot_pretraining_curves(history, paths.curves,
                                title=f"ELECTRA pretraining: {paths.root}")
    except ImportError:  # matplotlib is optional for the library, required by the CLI extra
        logger.info("matplotlib is not installed; skipped %s.", paths.curves)


def export_checkpoint(run_dir: str, step: int, out_dir: str) -> str:
    """Writes the discriminator of checkpoint `step` of the pretraining run in `run_dir` (0: its
    initialisation, before any training) to `out_dir`, with the run's vocab.txt, config.yaml and
    run.json: a folder that fine-tuning loads like a finished run (`finetune --pretrained
    out_dir`). For fine-tuning from points along a run, as the paper's Table 8 does; note that a
    checkpoint before the last step was taken mid-schedule, at a learning rate not yet decayed.

    Returns the path of the written discriminator.keras.
    """
    paths = PretrainPaths(run_dir)
    if not os.path.isfile(paths.config):
        raise ConfigError(f"{run_dir} is not a pretraining run (no config.yaml).")
    config = ElectraConfig.from_yaml(paths.config)
    if not config.pretraining.electra_objective:
        raise ConfigError(f"{run_dir} is an MLM run: it has no discriminator to export.")
    pretrainer = _build_pretrainer(config.with_settings({"run.seed": 0}),
                                   Runtime.create("one_device"))
    if step:
        TrainingCheckpointer(paths.checkpoints, pretrainer, pretrainer.optimizer,
                             keep=1).restore_step(step)
    out = PretrainPaths(out_dir)
    ensure_writable_directory(out_dir, option="out_dir")
    save_keras_atomically(pretrainer.standalone_discriminator(), out.discriminator)
    for source, target in ((paths.vocab, out.vocab), (paths.config, out.config),
                           (paths.run, out.run)):
        shutil.copyfile(source, target)
    return out.discriminator


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
