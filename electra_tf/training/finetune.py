"""`finetune`: a pretrained ELECTRA (or a from-scratch Transformer) on a text-classification
task, with everything a run leaves behind (`evaluate`, in `electra_tf.training.evaluation`,
scores it on a test split).

    OUT/classifier.keras       the fine-tuned `SequenceClassifier` (best validation checkpoint)
    OUT/finetune.yaml          the fine-tuning config used
    OUT/vocab.txt, run.json    vocabulary; task, data, initialisation, label names, lower-casing
    OUT/history.jsonl          one record per evaluation: step, loss, accuracy, val_loss, ...
    OUT/metrics.json           {"validation": ..., "test": ... (after `evaluate`), timings}
    OUT/curves.png, OUT/confusion_<split>.png, OUT/logs/ (TensorBoard)

While it runs, the directory also holds checkpoints/ and the best weights so far: re-running the
same command resumes an interrupted run (see `electra_tf.runs.resume`), and `evaluate`/`export` use
an unfinished run's best checkpoint.
"""

from __future__ import annotations

import contextlib
import dataclasses
import logging
import math
import os
import shutil
import tempfile
import time

from electra_tf.config import ModelConfig
from electra_tf.config.base import with_shortcuts
from electra_tf.config.finetuning import FinetuneConfig, TrainingConfig
from electra_tf.data.classification import LabelledTexts
from electra_tf.data.tokenizer import WordPieceTokenizer
from electra_tf.data.vocab import save_vocabulary
from electra_tf.distribute import Runtime, serialized_in_precision, with_precision
from electra_tf.files import ensure_writable_directory, write_json
from electra_tf.runs.keras_files import save_keras_atomically
from electra_tf.runs.layouts import FinetunePaths, refuse_another_kind_of_run, run_lock
from electra_tf.runs.resume import (
    check_resumable_finetuning,
    finished_finetuning_metrics,
    resumed_best,
)
from electra_tf.tasks import FinetuningTask, get_task
from electra_tf.training.callbacks import (
    BestCheckpoint,
    IntervalLogger,
    PeriodicCheckpoint,
    read_history,
)
from electra_tf.training.checkpoints import TrainingCheckpointer
from electra_tf.training.evaluation import plot_results
from electra_tf.training.finetune_setup import build_classifier, checked_arguments, run_vocabulary
from electra_tf.training.optimizer import create_finetuning_optimizer

__all__ = ["finetune"]

logger = logging.getLogger(__name__)


# The keyword arguments of `finetune` that are shortcuts for config fields (the command line's
# flags are too).
SHORTCUTS = {"lower_case": "preprocessing.lower_case",
             "vocab_learner": "preprocessing.vocab_learner", "strategy": "runtime.strategy",
             "tpu": "runtime.tpu", "precision": "runtime.precision",
             "jit_compile": "runtime.jit_compile",
             "steps_per_execution": "runtime.steps_per_execution",
             "deterministic": "runtime.deterministic"}


def finetune(config: FinetuneConfig, out_dir: str, *, pretrained: str | None = None,
             from_scratch: bool = False, model_config: ModelConfig | None = None,
             vocab: str | None = None, train_data: LabelledTexts = None, verbose="auto",
             **settings) -> dict:
    """Fine-tunes a model for the config's task and writes `out_dir` (see the module docstring).

    Args:
        config: the `FinetuneConfig` (task, preprocessing, training recipe, runtime).
        out_dir: output folder; an existing fine-tuning result there is refused, not overwritten.
        pretrained: anything `electra_tf.pretrained.resolve` reads: an `electra-tf pretrain`
            output directory, an installed preset's name, a fine-tuned run, a HuggingFace folder
            or hub id, a TF1 checkpoint, a `.keras` file. Its encoder is fine-tuned; with
            `from_scratch` only its architecture and vocabulary are used (the fair baseline).
        from_scratch: random initialisation ("the Transformer model" baseline), with the
            `from_scratch` section of the config applied.
        model_config: architecture for `from_scratch` without `pretrained`.
        vocab: vocabulary for `from_scratch` without `pretrained` (learned from the training
            texts when None, by `preprocessing.vocab_learner`). The from-scratch model is sized
            to this vocabulary, as `pretrain` sizes its model.
        train_data: labelled texts to use instead of loading `config.task` (Python API).
        verbose: Keras `fit` verbosity.
        **settings: shortcuts for config fields, as the command line's flags are (None leaves
            the config's value): `lower_case`, `vocab_learner` (`preprocessing.*`, for a given
            or learned vocabulary); `strategy`, `tpu`, `precision`, `jit_compile`,
            `steps_per_execution`, `deterministic` (`runtime.*`, as for `pretrain`;
            `training.batch_size` is the global batch; only the chief of a multi-worker run
            writes `out_dir`). The saved model is float32 whatever the training precision.

    Returns:
        the metrics dict written to `metrics.json`.
    """
    started = time.time()
    strategy = settings.pop("strategy", None)
    config = with_shortcuts(config, SHORTCUTS, settings, strategy, "finetune")
    # First: a multi-worker strategy must exist before TensorFlow runs any other op.
    runtime = Runtime.from_config(config.runtime, strategy)
    paths = FinetunePaths(out_dir)
    # First: nothing below may read or write another kind of run's folder as its own.
    refuse_another_kind_of_run(out_dir, "fine-tuning")
    source, config = checked_arguments(config, pretrained, from_scratch, model_config, runtime)
    task = get_task(config.task)
    identity = {"task": config.task.name, "data": config.task.data_source,
                "pretrained": source and source.path, "from_scratch": from_scratch}
    resuming = check_resumable_finetuning(paths, config, identity)
    finished = finished_finetuning_metrics(paths) if resuming else {}
    if finished:  # re-invoked after the end: the run's own record stays as it is
        logger.info("%s is a finished fine-tuning run of these settings; nothing to train (its "
                    "metrics.json is kept).", out_dir)
        return finished
    if runtime.chief:
        ensure_writable_directory(out_dir)

    with run_lock(out_dir, held=runtime.chief):  # one process per run folder
        # 1. Data: train, and validation carved from it (the test split is never touched here).
        train, validation = task.train_and_validation(train_data)

        # 2. Vocabulary, model and the text preprocessing; the optimizer for the whole schedule.
        vocabulary, lower_case, model_config = run_vocabulary(
            paths, resuming, source, vocab, config.preprocessing, train, model_config,
            chief=runtime.chief)
        if runtime.chief:
            save_vocabulary(vocabulary, paths.vocab)
        classifier = build_classifier(source, from_scratch, model_config, config, task, train,
                                      vocabulary, runtime)
        preprocessor = task.preprocessor(WordPieceTokenizer(vocabulary, lower_case=lower_case),
                                         config.preprocessing)
        schedule = _Schedule.of(len(train), config.training)
        _compile(classifier, task, config.training, schedule, runtime)

        # 3. Restore: the last checkpoint (model, optimizer, step), the history up to it, the best.
        checkpointer = TrainingCheckpointer(paths.checkpoints, classifier, classifier.optimizer,
                                            keep=2)
        start_step = _restore(checkpointer, paths, resuming, runtime.chief)
        history = read_history(paths.history, up_to_step=start_step, rewrite=runtime.chief)
        best, wait = resumed_best(paths, history, start_step) if resuming else (None, 0)
        if runtime.chief:
            write_json(paths.run, dict(identity, lower_case=lower_case, **task.run_record(train),
                                       train_examples=len(train),
                                       validation_examples=len(validation),
                                       total_steps=schedule.total_steps))
            config.to_yaml(paths.config)
            write_json(paths.architecture, serialized_in_precision(classifier, "float32"))

        # 4. Train, then reload the best weights (a non-chief worker keeps its own privately).
        batch_size = config.training.batch_size
        train_ds = task.dataset(train, preprocessor, batch_size, training=True,
                                seed=config.training.seed)
        val_ds = task.dataset(validation, preprocessor, 2 * batch_size, training=False)
        with _best_weights_file(paths, runtime.chief) as best_weights:
            best_checkpoint = BestCheckpoint(
                best_weights, paths.best_record if runtime.chief else None, monitor=task.monitor,
                patience=config.training.early_stopping_patience, best=best, wait=wait)
            history += _fit(classifier, train_ds, val_ds, schedule, start_step, checkpointer,
                            best_checkpoint, paths, runtime, config, verbose,
                            "from scratch" if from_scratch else f"from {source.path}")
            classifier.load_weights(best_weights if os.path.exists(best_weights)
                                    else paths.best_weights)

        # 5. The best checkpoint's validation metrics, and the products.
        metrics = _final_metrics(task, classifier, val_ds, validation, best_checkpoint.best,
                                 history, schedule, start_step, started, runtime, batch_size)
        if runtime.chief:
            _write_products(paths, classifier, metrics, history,
                            task.monitor.removeprefix("val_"))
        return metrics


# ------------------------------------------------------------------------------ the stages


@dataclasses.dataclass(frozen=True)
class _Schedule:
    """`evaluations_per_epoch` Keras "epochs" per pass over the training set."""

    steps_per_pass: int
    evaluations: int
    steps_per_evaluation: int

    @classmethod
    def of(cls, examples: int, training: TrainingConfig) -> "_Schedule":
        steps_per_pass = math.ceil(examples / training.batch_size)
        evaluations = training.epochs * training.evaluations_per_epoch
        return cls(steps_per_pass, evaluations,
                   math.ceil(steps_per_pass * training.epochs / evaluations))

    @property
    def total_steps(self) -> int:
        # `fit` runs whole intervals, so the learning-rate schedule ends where training does (a
        # schedule for the unrounded count would spend the last steps at learning rate 0).
        return self.steps_per_evaluation * self.evaluations


def _compile(classifier, task: FinetuningTask, training: TrainingConfig, schedule: _Schedule,
             runtime: Runtime):
    with runtime.strategy.scope():
        classifier.build({"token_ids": (None, None)})
        classifier.compile(
            optimizer=create_finetuning_optimizer(
                classifier, training.learning_rate, schedule.total_steps,
                warmup_fraction=training.warmup_fraction,
                layerwise_decay=training.layerwise_decay, weight_decay=training.weight_decay,
                frozen_encoder_steps=round(training.frozen_encoder_epochs
                                           * schedule.steps_per_pass)),
            loss=task.loss(), metrics=task.metrics(),
            **runtime.compile_options())
        classifier.optimizer.build(classifier.trainable_variables)  # so checkpoints cover it


def _restore(checkpointer: TrainingCheckpointer, paths: FinetunePaths, resuming: bool,
             chief: bool) -> int:
    """The step of the checkpoint restored (0 for a new run, whose stale files are removed)."""
    if not resuming:
        if chief:
            shutil.rmtree(paths.checkpoints, ignore_errors=True)  # stale files of no known run
        return 0
    return checkpointer.restore_latest() or 0


@contextlib.contextmanager
def _best_weights_file(paths: FinetunePaths, chief: bool):
    """The chief's best.weights.h5; a non-chief worker's (identical) best weights go to a
    private temporary folder, removed afterwards."""
    if chief:
        yield paths.best_weights
        return
    with tempfile.TemporaryDirectory(prefix="electra_tf_worker_") as scratch:
        yield os.path.join(scratch, "best.weights.h5")


def _fit(classifier, train_ds, val_ds, schedule: _Schedule, start_step, checkpointer,
         best_checkpoint: BestCheckpoint, paths, runtime: Runtime, config: FinetuneConfig,
         verbose, origin: str) -> list[dict]:
    """Trains `schedule.evaluations` Keras epochs from the resumed one; the data stream is a pure
    function of the seed, so skipping the batches already trained on continues it exactly.
    Returns the new history records."""
    training, prep, chief = config.training, config.preprocessing, runtime.chief
    interval_logger = IntervalLogger(paths.history if chief else None,
                                     paths.logs if chief else None, training.batch_size,
                                     checkpoint_dir=paths.checkpoints)
    callbacks = [interval_logger, best_checkpoint]  # in this order: the best, then the state
    if chief:
        callbacks.append(PeriodicCheckpoint(checkpointer, schedule.steps_per_evaluation,
                                            schedule.total_steps))
    encoder_dropout = ("" if training.encoder_dropout is None
                       else f", encoder dropout {training.encoder_dropout:g}")
    logger.info("Fine-tuning %s for %s: %d steps (%d epochs of %d batches, validation every %d "
                "steps), batch %d, lr %g, layer-wise decay %g%s, up to %d tokens per sequence.",
                origin, config.task.task_type.replace("_", " "), schedule.total_steps,
                training.epochs, schedule.steps_per_pass, schedule.steps_per_evaluation,
                training.batch_size, training.learning_rate, training.layerwise_decay,
                encoder_dropout, prep.max_seq_length)
    if start_step >= schedule.total_steps or best_checkpoint.patience_exhausted:
        return []
    if start_step:
        logger.info("Resuming %s from step %d of %d.", paths.root, start_step,
                    schedule.total_steps)
    classifier.fit(train_ds.skip(start_step), epochs=schedule.evaluations,
                   initial_epoch=start_step // schedule.steps_per_evaluation,
                   steps_per_epoch=schedule.steps_per_evaluation, validation_data=val_ds,
                   callbacks=callbacks, verbose=verbose if chief else 0, shuffle=False)
    return interval_logger.records


def _final_metrics(task: FinetuningTask, classifier, val_ds, validation, best, history,
                   schedule, start_step, started, runtime: Runtime, batch_size) -> dict:
    val_metrics = task.score(classifier, val_ds, validation)
    name = task.monitor.removeprefix("val_")
    logger.info("Best validation %s %.4f at step %d.", name,
                val_metrics.get(name, best[task.monitor]), best["step"])
    train_time = sum(record.get("interval_s", 0.0) for record in history)
    return {"validation": val_metrics, "best_step": best["step"], "steps": schedule.total_steps,
            "resumed_from_step": start_step, "train_time_s": round(train_time, 1),
            "wall_time_this_invocation_s": round(time.time() - started, 1),
            "examples_per_s": round(history[-1]["step"] * batch_size /
                                    max(train_time, 1e-9), 2),
            "distribution": runtime.summary()}


def _write_products(paths: FinetunePaths, classifier, metrics: dict, history,
                    metric: str) -> None:
    write_json(paths.metrics, metrics)
    # From here on the run is finished.
    save_keras_atomically(with_precision(classifier, "float32"), paths.classifier)
    for leftover in (paths.best_weights, paths.best_record, paths.architecture):
        if os.path.exists(leftover):
            os.remove(leftover)
    shutil.rmtree(paths.checkpoints, ignore_errors=True)
    plot_results(paths, history, metrics["validation"], "validation", metric)
