"""Scoring classifiers: `evaluate` (a fine-tuned run on one split of its task), and the
classification metrics computed from labels and predictions (plain numpy, no scikit-learn)."""

from __future__ import annotations

import os
import time
from typing import Sequence

import numpy as np

from electra_tf.data.classification import load_labelled_texts, stratified_split
from electra_tf.data.preprocessor import classification_dataset
from electra_tf.errors import ConfigError, DataError
from electra_tf.run_dir import (
    FinetunePaths,
    ensure_writable_directory,
    load_finetuned,
    read_json,
    write_json,
)


def classification_metrics(labels, predictions, label_names: Sequence[str]) -> dict:
    """Accuracy, per-class and macro precision/recall/F1, and the confusion matrix.

    Args:
        labels: int `[N]` true class ids.
        predictions: int `[N]` predicted class ids.
        label_names: names of the classes (index = id).

    Returns:
        {"examples", "accuracy", "per_class": {name: {precision, recall, f1, support}},
         "macro": {precision, recall, f1}, "confusion_matrix": rows = true class,
         columns = predicted class, "label_names"}. A class that is never predicted has
        precision 0 (and never present, recall 0), as scikit-learn's `zero_division=0`.
    """
    labels = np.asarray(labels, dtype=np.int64)
    predictions = np.asarray(predictions, dtype=np.int64)
    if labels.shape != predictions.shape or labels.ndim != 1:
        raise ValueError(f"labels {labels.shape} and predictions {predictions.shape} must be "
                         "1-D and of the same length.")
    k = len(label_names)
    confusion = np.zeros((k, k), dtype=np.int64)
    np.add.at(confusion, (labels, predictions), 1)
    true_positives = np.diag(confusion).astype(np.float64)
    predicted = confusion.sum(axis=0)
    actual = confusion.sum(axis=1)
    precision = np.divide(true_positives, predicted, out=np.zeros(k), where=predicted > 0)
    recall = np.divide(true_positives, actual, out=np.zeros(k), where=actual > 0)
    denominator = precision + recall
    f1 = np.divide(2 * precision * recall, denominator, out=np.zeros(k), where=denominator > 0)
    per_class = {
        name: {"precision": float(precision[i]), "recall": float(recall[i]),
               "f1": float(f1[i]), "support": int(actual[i])}
        for i, name in enumerate(label_names)}
    return {
        "examples": int(labels.size),
        "accuracy": float(true_positives.sum() / labels.size) if labels.size else 0.0,
        "per_class": per_class,
        "macro": {"precision": float(precision.mean()), "recall": float(recall.mean()),
                  "f1": float(f1.mean())},
        "confusion_matrix": confusion.tolist(),
        "label_names": list(label_names),
    }


def format_metrics(metrics: dict) -> str:
    """A few readable lines: accuracy, macro F1, per-class P/R/F1 and the confusion matrix."""
    names = metrics["label_names"]
    width = max(8, *(len(n) for n in names))
    lines = [f"accuracy {metrics['accuracy']:.4f}  macro F1 {metrics['macro']['f1']:.4f}  "
             f"({metrics['examples']} examples)",
             f"{'class':<{width}} precision recall    f1 support"]
    for name in names:
        c = metrics["per_class"][name]
        lines.append(f"{name:<{width}} {c['precision']:9.4f} {c['recall']:6.4f} {c['f1']:6.4f} "
                     f"{c['support']:7d}")
    lines.append("confusion (rows = true, columns = predicted): "
                 + "; ".join(f"{n}: {row}" for n, row in zip(names, metrics["confusion_matrix"])))
    return "\n".join(lines)


def evaluate(model_dir: str, split: str = "test", data: str | None = None,
             batch_size: int = 64, verbose="auto") -> dict:
    """Evaluates a fine-tuned classifier on one split of its task (or on `data`), adds the
    result to `model_dir/metrics.json` under the split's name, and plots the confusion matrix.

    `split`: `test`, `train`, another split the task's data names (a `{split}` path, a
    folder's sub-folder), or `validation`: the part of the training data held out for model
    selection, carved again exactly as fine-tuning carved it. A task fine-tuned from a single
    file or folder has no test split of its own: give the test data with `data`."""
    paths = FinetunePaths(model_dir)
    classifier, preprocessor, run, config = load_finetuned(model_dir)
    ensure_writable_directory(model_dir, "--model")  # before the work: no result is lost
    task = config.task
    source = data or (task.data if task.data else None)
    if source is None and run["task"] != "imdb":
        raise ConfigError("This task has no stored data path; give --data.")
    if data is None and split != "validation":
        _check_split_exists(run["task"], source, split)
    labelled = load_labelled_texts(run["task"], source,
                                   "train" if split == "validation" else split,
                                   text_column=task.text_column, label_column=task.label_column,
                                   label_names=run["label_names"])
    if split == "validation":
        labelled = stratified_split(labelled, task.validation_fraction, task.split_seed)[1]
    dataset = classification_dataset(labelled, preprocessor, batch_size, sort_by_length=True)
    began = time.time()
    metrics = predict_metrics(classifier, dataset, run["label_names"], verbose=verbose)
    metrics["seconds"] = round(time.time() - began, 1)
    metrics["source"] = labelled.source
    if not paths.is_finished():  # say which weights were scored
        metrics["unfinished_run_best_step"] = read_json(paths.best_record)["step"]
    all_metrics = read_json(paths.metrics)
    all_metrics[split] = metrics
    write_json(paths.metrics, all_metrics)
    plot_results(paths, None, metrics, split)
    return metrics


def split_exists(task: str, data: str | None, split: str) -> bool:
    """Whether the task's stored data has `split` (a single CSV or class folder has only the
    texts the model was trained on; IMDB and a `{split}` path name their own splits)."""
    if split == "train" or task == "imdb" or data is None or "{split}" in data:
        return True  # IMDB checks its split names itself; a {split} path names its own files
    return task == "folder" and os.path.isdir(os.path.join(data, split))


def _check_split_exists(task: str, data: str | None, split: str) -> None:
    """Refuses to score a split the stored data does not have: a single CSV or class folder
    would otherwise be scored as "test" with the very texts the model was trained on."""
    if split_exists(task, data, split):
        return
    raise DataError(
        f"{data} is the data this model was fine-tuned on and has no {split!r} split. Give the "
        f"{split} data with --data PATH, or write the task's data path with {{split}} (e.g. "
        "reviews_{split}.csv, or a folder with train/ and test/) when fine-tuning. "
        "'--split validation' re-scores the held-out part of the training data.")


def predict_metrics(classifier, dataset, label_names, verbose=0) -> dict:
    """Runs `classifier` over `(inputs, label)` batches and computes `classification_metrics`."""
    labels, predictions = [], []
    for inputs, y in dataset:
        logits = classifier(inputs, training=False)
        predictions.append(np.argmax(logits.numpy(), axis=-1))
        labels.append(y.numpy())
    return classification_metrics(np.concatenate(labels), np.concatenate(predictions),
                                  label_names)


def plot_results(paths: FinetunePaths, history, metrics: dict, split: str) -> None:
    """The training curves (when `history` is given) and the confusion matrix of `split`, when
    matplotlib is installed."""
    try:
        from electra_tf.training.plots import plot_confusion_matrix, plot_finetuning_curves
    except ImportError:
        return
    if history:
        plot_finetuning_curves(history, paths.curves, title=f"Fine-tuning: {paths.root}")
    plot_confusion_matrix(metrics["confusion_matrix"], metrics["label_names"],
                          paths.confusion(split),
                          title=f"{split}: accuracy {metrics['accuracy']:.4f}")
