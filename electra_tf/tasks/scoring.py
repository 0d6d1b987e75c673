"""Scoring classifiers: accuracy, per-class and macro precision/recall/F1 and the confusion
matrix, computed from labels and predictions (plain numpy, no scikit-learn)."""

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


def predict_metrics(classifier, dataset, label_names, verbose=0) -> dict:
    """Runs `classifier` over `(inputs, label)` batches and computes `classification_metrics`."""
    labels, predictions = [], []
    for inputs, y in dataset:
        logits = classifier(inputs, training=False)
        predictions.append(np.argmax(logits.numpy(), axis=-1))
        labels.append(y.numpy())
    return classification_metrics(np.concatenate(labels), np.concatenate(predictions),
                                  label_names)
