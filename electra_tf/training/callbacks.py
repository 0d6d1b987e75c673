"""Keras callbacks of pretraining and fine-tuning runs.

`pretrain` runs `fit` with one Keras "epoch" per logging interval (`log_every` steps), so the
progress bar and the epoch-mean metrics Keras computes are exactly the per-interval curve points.
Steps are counted by the optimizer (`optimizer.iterations`), which a resumed run restores; that is
why the logger writes its own TensorBoard scalars at the global step instead of using
`keras.callbacks.TensorBoard`, whose batch counter restarts at 0 on every `fit` call.
"""

from __future__ import annotations

import json
import math
import os
import time

import keras
import tensorflow as tf

from electra_tf.errors import TrainingError
from electra_tf.files import write_json, write_text_atomically
from electra_tf.runs.keras_files import save_weights_atomically


def global_step(model) -> int:
    return int(model.optimizer.iterations.numpy())


def _current_learning_rate(model) -> float:
    optimizer = model.optimizer
    rate = optimizer.learning_rate
    return float(rate.numpy() if hasattr(rate, "numpy") else rate)


class StopAtStep(keras.callbacks.Callback):
    """Stops `fit` once the optimizer has taken `last_step` steps (mid-interval if need be)."""

    def __init__(self, last_step: int):
        super().__init__()
        self.last_step = last_step

    def on_train_batch_end(self, batch, logs=None):
        if global_step(self.model) >= self.last_step:
            self.model.stop_training = True


class IntervalLogger(keras.callbacks.Callback):
    """At the end of each interval: checks the loss is finite, then appends the interval's
    metrics to `history_path` (JSON lines) and writes them to TensorBoard at the global step.

    Each record: `step`, `learning_rate`, the Keras metrics (means over the interval),
    `interval_s` (wall seconds of the interval) and `sequences_per_s`.

    Raises:
        TrainingError: the loss became NaN or infinite. Raised before the checkpoint callback
            runs, so the last saved checkpoint stays the last good one.
    """

    def __init__(self, history_path: str | None, tensorboard_dir: str | None, batch_size: int,
                 checkpoint_dir: str = ""):
        super().__init__()
        self.history_path, self.batch_size = history_path, batch_size
        self.checkpoint_dir = checkpoint_dir
        self._writer = tf.summary.create_file_writer(tensorboard_dir) if tensorboard_dir else None
        self._interval_start = None
        self._interval_first_step = 0
        self.records: list[dict] = []

    def on_epoch_begin(self, epoch, logs=None):
        self._interval_start = time.perf_counter()
        self._interval_first_step = global_step(self.model)

    def on_epoch_end(self, epoch, logs=None):
        logs = dict(logs or {})
        step = global_step(self.model)
        if not all(math.isfinite(float(v)) for v in logs.values()):
            raise TrainingError(
                f"The loss became NaN or infinite between steps {self._interval_first_step} and "
                f"{step} ({', '.join(f'{k}={float(v):.4g}' for k, v in logs.items())}). "
                f"Checkpoints up to the last good step are kept in {self.checkpoint_dir}. "
                f"Lower the learning rate (--set optimizer.learning_rate=...) or train in float32, "
                f"then re-run the same command to resume from the last checkpoint.")
        seconds = time.perf_counter() - self._interval_start
        steps = max(1, step - self._interval_first_step)
        record = {"step": step, "learning_rate": _current_learning_rate(self.model)}
        record.update({k: float(v) for k, v in logs.items()})
        record.update(interval_s=round(seconds, 3),
                      sequences_per_s=round(steps * self.batch_size / max(seconds, 1e-9), 2))
        self.records.append(record)
        if self.history_path:
            with open(self.history_path, "a", encoding="utf-8") as f:
                f.write(json.dumps(record) + "\n")
        if self._writer is not None:
            with self._writer.as_default(step=step):
                for key, value in record.items():
                    if key != "step":
                        tf.summary.scalar(key, value)
            self._writer.flush()

    def on_train_end(self, logs=None):
        if self._writer is not None:
            self._writer.close()


class PeriodicCheckpoint(keras.callbacks.Callback):
    """Saves a `TrainingCheckpointer` checkpoint every `every` steps and at `last_step`."""

    def __init__(self, checkpointer, every: int, last_step: int):
        super().__init__()
        self.checkpointer, self.every, self.last_step = checkpointer, every, last_step

    def on_epoch_end(self, epoch, logs=None):
        step = global_step(self.model)
        if step % self.every == 0 or step >= self.last_step:
            self.checkpointer.save()


class BestCheckpoint(keras.callbacks.Callback):
    """After each evaluation: keeps the weights with the highest `monitor` in `weights_path`
    (written atomically, then `record_path` = {"step", monitor}), and stops training after
    `patience` evaluations without improvement (Keras' `EarlyStopping` rule).

    Args:
        best, wait: the state of a resumed run (`resumed_best`); None and 0 for a new one.
    """

    def __init__(self, weights_path: str, record_path: str | None, monitor: str = "val_accuracy",
                 patience: int | None = None, best: dict | None = None, wait: int = 0):
        super().__init__()
        self.weights_path, self.record_path, self.monitor = weights_path, record_path, monitor
        self.patience, self.best, self.wait = patience, best, wait

    @property
    def patience_exhausted(self) -> bool:
        return self.patience is not None and self.wait >= self.patience

    def on_epoch_end(self, epoch, logs=None):
        value = (logs or {}).get(self.monitor)
        if value is None:
            return
        step = global_step(self.model)
        if self.best is not None and self.best["step"] == step:
            return  # this evaluation was recorded before the run was interrupted
        if self.best is None or float(value) > self.best[self.monitor]:
            save_weights_atomically(self.model, self.weights_path)
            self.best, self.wait = {"step": step, self.monitor: float(value)}, 0
            if self.record_path:
                write_json(self.record_path, self.best)
        else:
            self.wait += 1
        if self.patience_exhausted:
            self.model.stop_training = True


def read_history(path: str, up_to_step: int | None = None, rewrite: bool = True) -> list[dict]:
    """Reads a history file; with `up_to_step`, drops records a killed run wrote after the
    checkpoint it is resumed from, and (with `rewrite`) rewrites the file so it matches the
    resumed state."""
    if not os.path.exists(path):
        return []
    records = []
    with open(path, encoding="utf-8") as f:
        for line in f:
            try:
                records.append(json.loads(line))
            except json.JSONDecodeError:
                break  # a line cut short by a kill: everything before it is intact
    if up_to_step is not None:
        records = [r for r in records if r.get("step", 0) <= up_to_step]
    if up_to_step is not None and rewrite:
        write_text_atomically(path, "".join(json.dumps(r) + "\n" for r in records))
    return records
