"""A fine-tuning output directory: its files, resuming an interrupted run, and loading the
classifier of a finished or an unfinished one.

    OUT/classifier.keras       the fine-tuned classifier (written when the run finishes)
    OUT/checkpoints/           model + optimizer state after each evaluation (resume; removed
                               when the run finishes)
    OUT/best.weights.h5        the weights with the best validation accuracy so far, and
    OUT/best.json              their step and accuracy (until the run finishes)
    OUT/architecture.json      the classifier's Keras config: rebuilds an unfinished run's model
    OUT/finetune.yaml, vocab.txt, run.json, history.jsonl, metrics.json, logs/, *.png

An interrupted run resumes from its last checkpoint when the same command is re-run: weights,
optimizer moments and step (so the learning-rate schedule), dropout's random stream, the best
result so far, early stopping's patience, and the position in the (seeded) data stream.
"""

from __future__ import annotations

import json
import logging
import os

import keras

from electra_tf.errors import CheckpointError
from electra_tf.training.callbacks import global_step
from electra_tf.training.run_files import load_keras_model, read_json, write_json

logger = logging.getLogger("electra_tf")

# What a resumed run must share with the run it continues (besides finetune.yaml).
RUN_IDENTITY = ("task", "data", "pretrained", "from_scratch")


class FinetunePaths:
    def __init__(self, root: str):
        self.root = root
        join = lambda name: os.path.join(root, name)  # noqa: E731
        self.classifier, self.config, self.vocab = (join("classifier.keras"),
                                                    join("finetune.yaml"), join("vocab.txt"))
        self.run, self.history, self.metrics = join("run.json"), join("history.jsonl"), \
            join("metrics.json")
        self.best_weights, self.best_record = join("best.weights.h5"), join("best.json")
        self.checkpoints, self.architecture = join("checkpoints"), join("architecture.json")
        self.logs, self.curves = join("logs"), join("curves.png")

    def confusion(self, split: str) -> str:
        return os.path.join(self.root, f"confusion_{split}.png")

    def is_finished(self) -> bool:
        return os.path.isfile(self.classifier)

    def is_unfinished_but_usable(self) -> bool:
        """An interrupted run that has evaluated at least once: its best weights can be used."""
        return not self.is_finished() and all(
            os.path.isfile(p) for p in (self.best_weights, self.best_record, self.architecture,
                                        self.run, self.config, self.vocab))

    def has_classifier(self) -> bool:
        return self.is_finished() or self.is_unfinished_but_usable()


def check_resumable(paths: FinetunePaths, config_dict: dict, run: dict) -> bool:
    """True when `paths` holds an interrupted run this one continues (False: a fresh run).

    Raises:
        CheckpointError: a finished run is there, or one with another config or model.
    """
    if paths.is_finished():
        raise CheckpointError(f"{paths.root} already holds a fine-tuned classifier; choose a new "
                              "--out-dir (or delete that one) to train again.")
    if not os.path.exists(paths.config):
        return False
    from electra_tf.training.finetune_config import load_finetune_config

    previous = load_finetune_config(paths.config).to_dict()
    differences = [f"{section}.{key}: {previous[section].get(key)!r} -> {value!r}"
                   for section, values in config_dict.items() if isinstance(values, dict)
                   for key, value in values.items() if previous[section].get(key) != value]
    previous_run = read_json(paths.run)
    differences += [f"{key}: {previous_run.get(key)!r} -> {run.get(key)!r}"
                    for key in RUN_IDENTITY if previous_run.get(key) != run.get(key)]
    if differences:
        raise CheckpointError(
            f"{paths.root} holds an unfinished fine-tuning run with other settings ("
            + "; ".join(differences) + "). Re-run it with its own settings to resume it, or "
            "use a new --out-dir.")
    return True


def resumed_best(paths: FinetunePaths, history: list[dict], start_step: int):
    """`(best, wait)` for `BestCheckpoint`: the best record so far and how many evaluations
    since it, from `best.json` and the history kept up to `start_step`."""
    best = read_json(paths.best_record) or None
    if best is None or not os.path.isfile(paths.best_weights):
        return None, 0
    if best["step"] > start_step:
        # Killed in the moment between saving a new best and the checkpoint of that step: the
        # resumed run re-evaluates that step, and `BestCheckpoint` recognises it.
        return best, 0
    return best, sum(1 for record in history if record["step"] > best["step"])


def load_classifier(paths: FinetunePaths):
    """The finished run's classifier.keras, or an unfinished run's best weights in the
    architecture it recorded (with a warning saying so)."""
    if paths.is_finished():
        return load_keras_model(paths.classifier)
    if not paths.is_unfinished_but_usable():
        raise CheckpointError(f"{paths.root} has no classifier.keras and no evaluated checkpoint: "
                              "give the --out-dir of an 'electra-tf finetune' run.")
    with open(paths.architecture, encoding="utf-8") as f:
        classifier = keras.saving.deserialize_keras_object(json.load(f), safe_mode=True)
    if not classifier.built:  # the recorded build config usually builds it already
        classifier.build({"token_ids": (None, None)})
    classifier.load_weights(paths.best_weights)
    best, run = read_json(paths.best_record), read_json(paths.run)
    logger.warning("%s is an unfinished fine-tuning run: using its best checkpoint so far (step "
                   "%d of %d, validation accuracy %.4f). Re-run its finetune command to finish it.",
                   paths.root, best["step"], run.get("total_steps", -1), best["val_accuracy"])
    return classifier


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
            tmp = f"{self.weights_path[:-len('.weights.h5')]}.tmp.weights.h5"
            self.model.save_weights(tmp)
            os.replace(tmp, self.weights_path)
            self.best, self.wait = {"step": step, self.monitor: float(value)}, 0
            if self.record_path:
                write_json(self.record_path, self.best)
        else:
            self.wait += 1
        if self.patience_exhausted:
            self.model.stop_training = True
