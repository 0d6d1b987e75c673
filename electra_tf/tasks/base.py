"""`FinetuningTask`: everything `finetune`, `evaluate` and `export` need to know about one shape
of task, so that the training loop, the run folder, resuming and distribution are written once.

    stage                       method                  sequence classification
    reading the data            load_examples           texts with one label each
    held-out validation         train_and_validation,   a stratified split of train
                                validation_examples
    examples -> features        preprocessor, dataset   [CLS] text [SEP], padded batches
    the head                    build_model             `SequenceClassifier`
    loss and training metrics   loss, metrics, monitor  cross-entropy, accuracy
    outputs -> predictions      score                   argmax -> accuracy, F1, confusion
    what run.json keeps         run_record              the label names
    the export signature        serving_module          text -> label, probabilities

`docs/design.md` shows a new task plugged in.
"""

from __future__ import annotations

import logging
from typing import Any, ClassVar

import numpy as np

from electra_tf.config.finetuning import PreprocessingConfig, TaskConfig, TrainingConfig

logger = logging.getLogger(__name__)


class FinetuningTask:
    """One task shape. Subclasses set `type` (the config's `task.type`) and implement every
    method; `monitor` names the validation metric (higher is better) that picks the best
    checkpoint, as Keras logs it (`val_` + a metric's name).

    Args:
        config: the config's `task` section (data source, columns, validation split).
    """

    type: ClassVar[str]
    monitor: ClassVar[str] = "val_accuracy"

    def __init__(self, config: TaskConfig):
        self.config = config

    # ------------------------------------------------------------------ data

    def load_examples(self, split: str, data: str | None = None, run: dict | None = None):
        """The examples of `split` of the task's data (or of `data` instead). `run`: a
        finished run's run.json, whose record (`run_record`) fixes label ids and names."""
        raise NotImplementedError

    def train_and_validation(self, examples=None):
        """`(train, validation)`: the training split (or `examples`), with validation either
        `task.validation_split` of the data or held out of train (`_hold_out`) the same way on
        every run of the same config; train cut to `task.max_train_examples` (`_subset`)."""
        train = self.load_examples("train") if examples is None else examples
        if self.config.validation_split:
            validation = self._validation_split(train)
        else:
            train, validation = self._hold_out(train)
        limit = self.config.max_train_examples
        if limit and len(train) > limit:
            train = self._subset(train, limit)
        logger.info("Task %s: %d training and %d validation examples%s from %s.",
                    self.config.name, len(train), len(validation), self._describe(train),
                    getattr(train, "source", ""))
        return train, validation

    def validation_examples(self, examples):
        """The validation part of the training split `examples`, as `train_and_validation`
        holds it out (to score it again after training)."""
        if self.config.validation_split:
            return self._validation_split(examples)
        return self._hold_out(examples)[1]

    def _validation_split(self, train):
        """`task.validation_split` of the task's data."""
        return self.load_examples(self.config.validation_split)

    def _hold_out(self, examples):
        """`(train, validation)` carved from `examples` with `task.split_seed`."""
        raise NotImplementedError

    def _subset(self, train, size: int):
        """`size` training examples, a seeded random choice in their own order."""
        order = np.random.default_rng(self.config.split_seed).permutation(len(train))
        return train.subset(sorted(order[:size]))

    def _describe(self, train) -> str:
        """What the log line says about the training examples (e.g. class counts)."""
        return ""

    def preprocessor(self, tokenizer, preprocessing: PreprocessingConfig):
        """The Keras layer that turns raw inputs into token ids, in training and in serving."""
        raise NotImplementedError

    def dataset(self, examples, preprocessor, batch_size: int, *, training: bool, seed: int = 0):
        """`(model inputs, targets)` batches: shuffled and repeated forever when `training`,
        one ordered pass otherwise."""
        raise NotImplementedError

    # ------------------------------------------------------------------ model

    def build_model(self, encoder, train_examples, training: TrainingConfig):
        """The encoder with this task's head."""
        raise NotImplementedError

    def loss(self):
        raise NotImplementedError

    def metrics(self) -> list:
        """The Keras metrics logged while training (one of them is `monitor`'s)."""
        raise NotImplementedError

    # ------------------------------------------------------------------ results

    def score(self, model, dataset, examples) -> dict[str, Any]:
        """Runs `model` over `dataset` (`dataset(..., training=False)` of `examples`) and scores
        its predictions: the dict stored in metrics.json under the split's name."""
        raise NotImplementedError

    def run_record(self, train_examples) -> dict[str, Any]:
        """What run.json must keep to read this task's data and outputs back later."""
        raise NotImplementedError

    def serving_module(self, model, preprocessor, vocab_path: str):
        """The `electra_tf.tasks.serving.ServingModule` whose signatures an export holds."""
        raise NotImplementedError

    def export_summary(self, model) -> dict[str, Any]:
        """What an export's `assets.extra/electra_tf.json` says about the model's outputs."""
        raise NotImplementedError


class WindowedTask(FinetuningTask):
    """A task whose examples become model windows that are not one per example (a long
    sentence cut in two, a long context in overlapping windows): `dataset` remembers the
    windows it made (`_remember`), so that `score` can map the outputs back (`_windows_of`)."""

    def __init__(self, config: TaskConfig):
        super().__init__(config)
        self._windows = {}  # id(examples) -> (examples, preprocessor, windows)

    def _remember(self, examples, preprocessor, windows) -> None:
        self._windows[id(examples)] = (examples, preprocessor, windows)

    def _windows_of(self, examples):
        """`(preprocessor, windows)` of the dataset made from `examples`."""
        held = self._windows.get(id(examples))
        if held is None or held[0] is not examples:
            raise ValueError("score() takes the examples its dataset was made from.")
        return held[1], held[2]
