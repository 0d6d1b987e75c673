"""`evaluate`: a fine-tuned run scored on one split of its task (the task says how,
`electra_tf.tasks`), and the plots of fine-tuning results."""

from __future__ import annotations

import os
import time

from electra_tf.errors import ConfigError, DataError
from electra_tf.files import ensure_writable_directory, read_json, write_json
from electra_tf.pretrained.finetuned import load_finetuned
from electra_tf.runs.layouts import FinetunePaths
from electra_tf.tasks import get_task


def evaluate(model_dir: str, split: str = "test", data: str | None = None,
             batch_size: int = 64, verbose="auto") -> dict:
    """Evaluates a fine-tuned classifier on one split of its task (or on `data`), adds the
    result to `model_dir/metrics.json` under the split's name, and plots the confusion matrix.

    `split`: `test`, `train`, another split the task's data names (a `{split}` path, a
    folder's sub-folder), or `validation`: the part of the training data held out for model
    selection, carved again exactly as fine-tuning carved it. A task fine-tuned from a single
    file or folder has no test split of its own: give the test data with `data`."""
    paths = FinetunePaths(model_dir)
    model, preprocessor, run, config = load_finetuned(model_dir)
    ensure_writable_directory(model_dir, "--model")  # before the work: no result is lost
    task, stored = get_task(config.task), config.task.data
    if data is None and stored is None and run["task"] not in ("imdb", "conll", "glue", "squad"):
        raise ConfigError("This task has no stored data path; give --data.")
    if data is None and split != "validation":
        _check_split_exists(run["task"], stored, split)
    examples = task.load_examples("train" if split == "validation" else split, data, run)
    if split == "validation":  # carved again exactly as fine-tuning carved it
        examples = task.validation_examples(examples)
    dataset = task.dataset(examples, preprocessor, batch_size, training=False)
    began = time.time()
    metrics = task.score(model, dataset, examples)
    metrics["seconds"] = round(time.time() - began, 1)
    metrics["source"] = examples.source
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
    if split == "train" or task in ("imdb", "glue") or data is None or "{split}" in data:
        return True  # IMDB and GLUE check their split names themselves; a {split} path names
        # its own files
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


def plot_results(paths: FinetunePaths, history, metrics: dict, split: str,
                 metric: str = "accuracy") -> None:
    """The training curves of loss and `metric` (when `history` is given) and the confusion
    matrix of `split` (for a task that reports one), when matplotlib is installed."""
    try:
        from electra_tf.training.plots import plot_confusion_matrix, plot_finetuning_curves
    except ImportError:
        return
    if history:
        plot_finetuning_curves(history, paths.curves, title=f"Fine-tuning: {paths.root}",
                               metric=metric)
    if "confusion_matrix" not in metrics:  # a task whose predictions are not classes
        return
    plot_confusion_matrix(metrics["confusion_matrix"], metrics["label_names"],
                          paths.confusion(split),
                          title=f"{split}: accuracy {metrics['accuracy']:.4f}")
