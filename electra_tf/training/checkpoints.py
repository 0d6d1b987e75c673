"""Training checkpoints that a `kill -9` cannot break.

A checkpoint holds everything a resumed run needs to continue *exactly*: every model variable
(weights and the random-stream states of dropout and masking), every optimizer variable (moments
and the step counter that drives the learning-rate schedule). The position in the data stream is
the step counter itself: the pipeline is a pure function of the seed, so the resumed run skips
that many batches.

TensorFlow writes a checkpoint's files first and the `checkpoint` index file last, so a run killed
mid-save leaves the previous checkpoint as the latest. A checkpoint whose files were damaged
afterwards (disk full, a partial copy) fails to restore; `restore_latest` then warns and falls back
to the one before.
"""

from __future__ import annotations

import glob
import logging
import os
import re

import tensorflow as tf

from electra_tf.errors import CheckpointError, first_line

logger = logging.getLogger(__name__)

_PREFIX = "ckpt"


class TrainingCheckpointer:
    """Keeps the last `keep` checkpoints of a model and its optimizer in `directory`.

    Both must be built (variables created) before this is constructed: a checkpoint is a list of
    variables in creation order, checked against their shapes on restore.

    Args:
        directory: where `ckpt-<step>.index/.data-*` files go.
        model: a built `keras.Model`.
        optimizer: its built optimizer (`optimizer.build(model.trainable_variables)`).
        keep: how many recent checkpoints to keep.
    """

    def __init__(self, directory: str, model, optimizer, keep: int = 3):
        if not optimizer.built:
            raise ValueError("Build the optimizer before checkpointing it.")
        self.directory, self.keep = directory, keep
        self.optimizer = optimizer
        # Plain lists, not `model`: Keras' seed-generator states are not tracked as
        # attributes, and a resumed run must continue the same dropout and masking streams.
        self._checkpoint = tf.train.Checkpoint(
            model_variables=[v.value for v in model.variables],
            optimizer_variables=[v.value for v in optimizer.variables])
        self._manager = self._open_manager()

    def _open_manager(self) -> tf.train.CheckpointManager:
        try:
            return tf.train.CheckpointManager(self._checkpoint, self.directory,
                                              max_to_keep=self.keep, checkpoint_name=_PREFIX)
        except (tf.errors.OpError, ValueError) as err:  # a garbled `checkpoint` state file
            state = os.path.join(self.directory, "checkpoint")
            logger.warning("%s is unreadable (%s); rebuilding it from the checkpoint files.",
                           state, first_line(err))
            os.remove(state)
            return tf.train.CheckpointManager(self._checkpoint, self.directory,
                                              max_to_keep=self.keep, checkpoint_name=_PREFIX)

    @property
    def step(self) -> int:
        return int(self.optimizer.iterations.numpy())

    def save(self) -> str:
        """Writes a checkpoint named after the current optimizer step, then deletes all but the
        newest `keep` on disk (TensorFlow's own retention only knows the checkpoints its state
        file lists, which a damaged or replaced state file empties)."""
        path = self._manager.save(checkpoint_number=self.step)
        for stale in self.checkpoints()[:-self.keep]:
            for name in glob.glob(f"{glob.escape(stale)}.*"):
                os.remove(name)
        return path

    def checkpoints(self) -> list[str]:
        """Checkpoint prefixes on disk, oldest first (from the index file and the files)."""
        found = set(self._manager.checkpoints)
        for index in glob.glob(os.path.join(self.directory, f"{_PREFIX}-*.index")):
            found.add(index[:-len(".index")])
        return sorted(found, key=_step_of)

    def restore_latest(self) -> int | None:
        """Restores the newest readable checkpoint and returns its step (None: none on disk).

        Raises:
            CheckpointError: checkpoints exist but none can be restored into this model (a
                different architecture, or all damaged).
        """
        candidates = self.checkpoints()
        errors = []
        for prefix in reversed(candidates):
            try:
                self._checkpoint.restore(prefix).assert_existing_objects_matched()
            except Exception as err:  # DataLoss, NotFound, shape mismatch, truncated files ...
                reason = first_line(err, limit=None)
                errors.append(f"{os.path.basename(prefix)}: {reason}")
                logger.warning("Checkpoint %s cannot be restored (%s); trying the previous one.",
                               prefix, reason)
                continue
            logger.info("Restored %s (step %d).", prefix, self.step)
            return self.step
        if candidates:
            raise CheckpointError(
                f"None of the {len(candidates)} checkpoint(s) in {self.directory} can be restored "
                "into this model:\n  " + "\n  ".join(errors) + "\nThey were probably written by a "
                "different configuration; use a new --out-dir, or delete the checkpoints to "
                "start over.")
        return None

    def restore_step(self, step: int) -> None:
        """Restores the checkpoint written at `step` (not necessarily the newest).

        Raises:
            CheckpointError: there is no readable checkpoint of that step in `directory`.
        """
        prefixes = {_step_of(prefix): prefix for prefix in self.checkpoints()}
        if step not in prefixes:
            raise CheckpointError(
                f"{self.directory} has no checkpoint of step {step}; it has steps "
                f"{sorted(prefixes) or 'none'} (--keep-checkpoints sets how many are kept).")
        try:
            self._checkpoint.restore(prefixes[step]).assert_existing_objects_matched()
        except Exception as err:
            raise CheckpointError(f"{prefixes[step]} cannot be restored into this model: "
                                  f"{first_line(err)}") from None


def _step_of(prefix: str) -> int:
    match = re.search(rf"{_PREFIX}-(\d+)$", prefix)
    return int(match.group(1)) if match else -1
