"""The fine-tuning task seam: the task `docs/design.md` shows plugging in really does train,
resume, evaluate and export through the unchanged `finetune`/`evaluate`/`export`."""

from __future__ import annotations

import csv
import json
import os
import re

import numpy as np
import pytest

from electra_tf.cli import main
from electra_tf.config import FinetuneConfig
from electra_tf.data import SAMPLE_LABELLED
from electra_tf.errors import ConfigError
from electra_tf.tasks import TASKS, FinetuningTask, SequenceClassification, get_task

DESIGN = os.path.join(os.path.dirname(os.path.dirname(os.path.abspath(__file__))), "docs",
                      "design.md")


def design_example() -> dict:
    """The namespace of the Python block under "Fine-tuning tasks" in docs/design.md."""
    with open(DESIGN, encoding="utf-8") as f:
        section = f.read().split("## Fine-tuning tasks", 1)[1]
    (code,) = re.findall(r"```python\n(.*?)```", section, re.S)
    namespace = {}
    exec(compile(code, DESIGN, "exec"), namespace)  # noqa: S102 (our own documentation)
    return namespace


def _abstract_methods() -> list[str]:
    """The methods `FinetuningTask` leaves to each task (their body raises NotImplementedError)."""
    import inspect

    return [name for name, value in vars(FinetuningTask).items() if callable(value)
            and "raise NotImplementedError" in inspect.getsource(value)]


def test_every_task_implements_the_whole_seam():
    """Each method the base leaves abstract (it raises NotImplementedError) is implemented by
    every registered task; the base's own methods (train/validation splitting) build on them."""
    task = get_task(FinetuneConfig().task)
    assert isinstance(task, SequenceClassification) and task.monitor == "val_accuracy"
    abstract = _abstract_methods()
    assert len(abstract) >= 11 and "_hold_out" in abstract
    for kind, cls in TASKS.items():
        missing = [name for name in abstract
                   if getattr(cls, name) is getattr(FinetuningTask, name)]
        assert missing == [], kind


def test_an_unknown_task_type_is_one_clear_error_before_anything_is_written(tmp_path):
    config = FinetuneConfig.from_dict({"task": {"type": "token_tagging"}})
    with pytest.raises(ConfigError, match="task.type 'token_tagging' .* one of"):
        get_task(config.task)
    out = tmp_path / "run"
    assert main(["finetune", "--task", "csv", "--data", SAMPLE_LABELLED, "--from-scratch",
                 "--model-config", "electra_tiny", "--out-dir", str(out), "--set",
                 "task.type=token_tagging", "--quiet"]) == 2
    assert not out.exists()


@pytest.mark.slow(seconds=25)
def test_the_design_notes_regression_task_trains_resumes_evaluates_and_exports(
        tiny_pretrained_run, tmp_path, monkeypatch):
    example = design_example()
    monkeypatch.setitem(TASKS, "text_regression", example["TextRegression"])
    assert [name for name in _abstract_methods()
            if name not in vars(example["TextRegression"])] == []

    # Ratings to learn: 1 for a positive review, 0 for a negative one.
    for split, rows in (("train", 100), ("test", 20)):
        with open(SAMPLE_LABELLED.format(split=split), encoding="utf-8") as f:
            reviews = list(csv.DictReader(f))[:rows]
        with open(tmp_path / f"ratings_{split}.csv", "w", newline="", encoding="utf-8") as f:
            writer = csv.writer(f)
            writer.writerow(["text", "rating"])
            writer.writerows([r["text"], float(r["label"] == "pos")] for r in reviews)
    out = tmp_path / "regression"
    command = ["finetune", "--task", "csv", "--data", str(tmp_path / "ratings_{split}.csv"),
               "--pretrained", tiny_pretrained_run, "--out-dir", str(out), "--quiet"]
    for setting in ("task.type=text_regression", "task.label_column=rating",
                    "preprocessing.max_seq_length=48", "training.epochs=2",
                    "training.batch_size=12", "training.learning_rate=1e-3"):
        command += ["--set", setting]
    assert main(command) == 0

    metrics = json.loads((out / "metrics.json").read_text())
    validation = metrics["validation"]
    assert validation["examples"] == 10 and set(validation) >= {"r2", "mse"}
    history = [json.loads(line) for line in open(out / "history.jsonl")]
    assert all("val_r2" in record for record in history)
    # The best checkpoint is the one of highest validation R^2, and the head learned: the
    # training loss fell from the first interval (predictions near 0 against 0/1 targets).
    assert metrics["best_step"] == max(history, key=lambda r: r["val_r2"])["step"]
    assert history[-1]["loss"] < history[0]["loss"]
    # Run again: a finished run is left as it is.
    assert main(command) == 0
    assert json.loads((out / "metrics.json").read_text()) == metrics

    assert main(["evaluate", "--model", str(out), "--split", "test"]) == 0
    test = json.loads((out / "metrics.json").read_text())["test"]
    assert test["examples"] == 20 and np.isfinite(test["mse"])

    # The export serves the task's own signature, with the Keras model's numbers.
    import tensorflow as tf

    from electra_tf.pretrained import load_finetuned

    assert main(["export", "--model", str(out), "--out", str(tmp_path / "export")]) == 0
    summary = json.loads((tmp_path / "export" / "assets.extra" / "electra_tf.json").read_text())
    assert summary["kind"] == "regressor"
    texts = ["A wonderful, moving film.", "Dull and far too long."]
    served = tf.saved_model.load(str(tmp_path / "export")).signatures["serving_default"](
        text=tf.constant(texts))["score"].numpy()
    model, preprocessor, _, _ = load_finetuned(str(out))
    keras_scores = model(preprocessor.pad_and_mask(preprocessor(tf.constant(texts))),
                         training=False).numpy()[:, 0]
    np.testing.assert_allclose(served, keras_scores, atol=1e-5)
