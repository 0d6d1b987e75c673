"""Scoring classifiers and regressors from targets and predictions (plain numpy, no
scikit-learn or scipy; the tests check every number against them): for classes, accuracy,
Matthews correlation, per-class and macro precision/recall/F1 and the confusion matrix; for
scores, Pearson and Spearman correlation, MAE, MSE and R^2."""

from __future__ import annotations

from typing import Sequence

import numpy as np


def classification_metrics(labels, predictions, label_names: Sequence[str]) -> dict:
    """Accuracy, per-class and macro precision/recall/F1, and the confusion matrix.

    Args:
        labels: int `[N]` true class ids.
        predictions: int `[N]` predicted class ids.
        label_names: names of the classes (index = id).

    Returns:
        {"examples", "accuracy", "mcc", "per_class": {name: {precision, recall, f1, support}},
         "macro": {precision, recall, f1}, "confusion_matrix": rows = true class,
         columns = predicted class, "label_names"}. A class that is never predicted has
        precision 0 (and never present, recall 0), as scikit-learn's `zero_division=0`.
        `mcc` is Matthews' correlation (Gorodkin's K-class form for more than two classes, as
        scikit-learn computes it; 0 when all predictions or all labels are one class).
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
        "mcc": matthews_correlation(confusion),
        "per_class": per_class,
        "macro": {"precision": float(precision.mean()), "recall": float(recall.mean()),
                  "f1": float(f1.mean())},
        "confusion_matrix": confusion.tolist(),
        "label_names": list(label_names),
    }


def matthews_correlation(confusion: np.ndarray) -> float:
    """Matthews' correlation coefficient of a K x K confusion matrix (rows = true class)."""
    confusion = np.asarray(confusion, dtype=np.float64)
    total = confusion.sum()
    correct = np.trace(confusion)
    predicted, actual = confusion.sum(axis=0), confusion.sum(axis=1)
    numerator = correct * total - predicted @ actual
    denominator = np.sqrt((total ** 2 - predicted @ predicted) * (total ** 2 - actual @ actual))
    return float(numerator / denominator) if denominator > 0 else 0.0


def regression_metrics(targets, predictions) -> dict:
    """Pearson and Spearman correlation (ties share their mean rank, as scipy ranks them), mean
    absolute and squared error, and R^2 of `predictions` against `targets` (float `[N]` each).

    Returns:
        {"examples", "pearson", "spearman", "mae", "mse", "r2"}; a correlation is 0 when either
        side is constant (undefined otherwise).
    """
    targets = np.asarray(targets, dtype=np.float64)
    predictions = np.asarray(predictions, dtype=np.float64)
    if targets.shape != predictions.shape or targets.ndim != 1:
        raise ValueError(f"targets {targets.shape} and predictions {predictions.shape} must be "
                         "1-D and of the same length.")
    error = predictions - targets
    spread = np.sum((targets - targets.mean()) ** 2) if targets.size else 0.0
    return {"examples": int(targets.size),
            "pearson": _pearson(targets, predictions),
            "spearman": _pearson(_ranks(targets), _ranks(predictions)),
            "mae": float(np.mean(np.abs(error))) if targets.size else 0.0,
            "mse": float(np.mean(error ** 2)) if targets.size else 0.0,
            "r2": float(1.0 - np.sum(error ** 2) / spread) if spread > 0 else 0.0}


def _pearson(x: np.ndarray, y: np.ndarray) -> float:
    x, y = x - x.mean(), y - y.mean()
    denominator = np.sqrt(np.sum(x * x) * np.sum(y * y))
    return float(np.sum(x * y) / denominator) if denominator > 0 else 0.0


def _ranks(values: np.ndarray) -> np.ndarray:
    """Ranks from 1, ties given the mean of the ranks they span (scipy's `rankdata`)."""
    order = np.argsort(values, kind="stable")
    ordered = values[order]
    # Each run of equal values [start, end) shares the rank (start + end + 1) / 2.
    starts = np.flatnonzero(np.r_[True, ordered[1:] != ordered[:-1]])
    ends = np.r_[starts[1:], len(values)]
    ranks = np.empty(len(values))
    ranks[order] = np.repeat((starts + ends + 1) / 2.0, ends - starts)
    return ranks


def format_metrics(metrics: dict) -> str:
    """A few readable lines: accuracy, macro F1, per-class P/R/F1 and the confusion matrix (a
    task whose scores are not a classification's: each number on one line)."""
    if "per_type" in metrics:  # a tagger's entity scores
        from electra_tf.tasks.tagging_metrics import format_tagging_metrics

        return format_tagging_metrics(metrics)
    if "label_names" not in metrics:
        return "  ".join(f"{key} {value:.4f}" if isinstance(value, float) else f"{key} {value}"
                         for key, value in metrics.items() if isinstance(value, (int, float)))
    names = metrics["label_names"]
    width = max(8, *(len(n) for n in names))
    mcc = f"  MCC {metrics['mcc']:.4f}" if "mcc" in metrics else ""
    lines = [f"accuracy {metrics['accuracy']:.4f}  macro F1 {metrics['macro']['f1']:.4f}{mcc}  "
             f"({metrics['examples']} examples)",
             f"{'class':<{width}} precision recall    f1 support"]
    for name in names:
        c = metrics["per_class"][name]
        lines.append(f"{name:<{width}} {c['precision']:9.4f} {c['recall']:6.4f} {c['f1']:6.4f} "
                     f"{c['support']:7d}")
    lines.append("confusion (rows = true, columns = predicted): "
                 + "; ".join(f"{n}: {row}" for n, row in zip(names, metrics["confusion_matrix"])))
    return "\n".join(lines)


def predict_metrics(classifier, dataset, label_names, verbose=0) -> dict:
    """Runs `classifier` over `(inputs, label)` batches and computes `classification_metrics`."""
    labels, outputs = model_outputs(classifier, dataset)
    return classification_metrics(labels, np.argmax(outputs, axis=-1), label_names)


def model_outputs(model, dataset) -> tuple[np.ndarray, np.ndarray]:
    """`(targets, outputs)`: `model`'s outputs over `(inputs, target)` batches, concatenated."""
    targets, outputs = [], []
    for inputs, y in dataset:
        outputs.append(np.asarray(model(inputs, training=False)))
        targets.append(y.numpy())
    return np.concatenate(targets), np.concatenate(outputs)
