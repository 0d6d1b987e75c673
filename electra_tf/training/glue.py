"""`run_glue`: fine-tune one pretrained model on GLUE tasks with several seeds, score every
model on the development sets, and report per-seed and median scores with the GLUE score.

    OUT/<TASK>/seed_<S>/      one `finetune` run each (re-running resumes or skips it)
    OUT/glue_results.json     {"tasks": {TASK: {"metrics": {METRIC: {"per_seed", "median"}},
                               "score"}}, "glue_score", "glue_score_without_wnli", ...}
    OUT/glue_results.md       the same as a table
    OUT/submission/*.tsv      with `predict_test`: each task's test predictions, from its best
                              seed on dev, in the GLUE server's format

The recipe is the config's (`configs/finetune/glue_small.yaml`: the ELECTRA paper's settings for
Small); each task trains for the paper's epochs (3; 10 for RTE and STS-B) unless the overrides
set `training.epochs`. The checkpoint of each run is chosen on a held-out tenth of the task's
training set (`task.validation_fraction`), so the development set is read once per model, when
it is scored -- the way a test set is.

The GLUE score is GLUE's: the mean over tasks of each task's score, which is the mean of its
metrics (MRPC and QQP: F1 and accuracy; STS-B: Pearson and Spearman; MNLI: matched and
mismatched accuracy), here of their medians over seeds. BERT and ELECTRA report it without WNLI
(`glue_score_without_wnli`).
"""

from __future__ import annotations

import logging
import os
import statistics

from electra_tf.config.finetuning import load_finetune_config
from electra_tf.data.glue import GLUE_TASKS, GlueTask, glue_task, load_glue_test, write_submission
from electra_tf.errors import ConfigError
from electra_tf.files import read_json, write_json, write_text_atomically
from electra_tf.runs.layouts import FinetunePaths
from electra_tf.training.evaluation import evaluate
from electra_tf.training.finetune import finetune

logger = logging.getLogger(__name__)

__all__ = ["run_glue", "task_metric_values", "glue_scores"]


def run_glue(tasks, out_dir: str, *, pretrained: str | None = None, data_dir: str | None = None,
             seeds: int = 3, config: str = "finetune/glue_small", overrides=(),
             from_scratch: bool = False, model_config=None, predict_test: bool = False,
             verbose="auto", **settings) -> dict:
    """Fine-tunes and scores `pretrained` on each of `tasks` with seeds 0 .. `seeds` - 1.

    Args:
        tasks: GLUE task names (`CoLA`, `SST-2`, `MRPC`, `STS-B`, `QQP`, `MNLI`, `QNLI`, `RTE`,
            `WNLI`; case and dashes ignored), or ["all"].
        out_dir: the results folder (see the module docstring); re-running continues it.
        pretrained: what `finetune` accepts as `pretrained`.
        data_dir: GLUE's data folder (one sub-folder per task, as `download_glue_data.py`
            writes it); None reads `tfds:glue/NAME`.
        seeds: fine-tuning seeds per task (the paper reports the median of 10).
        config: the fine-tuning config (path or shipped name).
        overrides: `section.key=value` settings applied to it.
        from_scratch, model_config, verbose, **settings: as for `finetune`.
        predict_test: also write each task's test predictions for the GLUE server.

    Returns:
        the dict written to `glue_results.json`.
    """
    chosen = list(GLUE_TASKS.values()) if list(tasks) == ["all"] else [glue_task(t) for t in tasks]
    if seeds < 1:
        raise ConfigError("--seeds must be at least 1.")
    overrides = list(overrides)
    sets_epochs = any(o.split("=", 1)[0].strip() == "training.epochs" for o in overrides)
    results = {"pretrained": pretrained, "from_scratch": from_scratch, "config": config,
               "seeds": seeds, "tasks": {}}
    for task in chosen:
        runs = []
        for seed in range(seeds):
            run_dir = os.path.join(out_dir, task.name, f"seed_{seed}")
            task_config = load_finetune_config(config, [
                "task.name=glue", f"task.glue_task={task.name}",
                f"task.data={os.path.join(data_dir, task.name) if data_dir else 'null'}",
                *([] if sets_epochs else [f"training.epochs={task.epochs}"]),
                f"training.seed={seed}", *overrides])
            logger.info("GLUE %s, seed %d: %s", task.name, seed, run_dir)
            finetune(task_config, run_dir, pretrained=pretrained, from_scratch=from_scratch,
                     model_config=model_config, verbose=verbose, **settings)
            runs.append(_dev_metrics(task, run_dir))
        results["tasks"][task.name] = _task_summary(task, runs)
        if predict_test and data_dir:
            best = max(range(seeds), key=lambda s: _task_score(task, runs[s]))
            results["tasks"][task.name]["submission"] = _predict_test(
                task, os.path.join(out_dir, task.name, f"seed_{best}"),
                os.path.join(data_dir, task.name), os.path.join(out_dir, "submission"))
    results.update(glue_scores({name: summary["score"]
                                for name, summary in results["tasks"].items()}))
    write_json(os.path.join(out_dir, "glue_results.json"), results)
    write_text_atomically(os.path.join(out_dir, "glue_results.md"), results_table(results))
    return results


def task_metric_values(task: GlueTask, metrics_by_split: dict) -> dict[str, float]:
    """GLUE's metrics of `task` from its dev splits' `evaluate` dicts, e.g. MRPC ->
    {"accuracy", "f1"} (F1 of class 1), MNLI -> {"accuracy_m", "accuracy_mm"}."""
    values = {}
    for split in task.dev_splits:
        metrics = metrics_by_split[split]
        suffix = {"dev_matched": "_m", "dev_mismatched": "_mm"}.get(split, "")
        for name in task.metrics:
            value = metrics["per_class"]["1"]["f1"] if name == "f1" else metrics[name]
            values[name + suffix] = float(value)
    return values


def glue_scores(task_scores: dict[str, float]) -> dict:
    """The GLUE score of the tasks run (the mean of their scores), and the same without WNLI."""
    without_wnli = [score for name, score in task_scores.items() if name != "WNLI"]
    return {"glue_score": statistics.fmean(task_scores.values()) if task_scores else None,
            "glue_score_without_wnli": statistics.fmean(without_wnli) if without_wnli else None,
            "tasks_in_score": sorted(task_scores)}


def results_table(results: dict) -> str:
    """glue_results.md: one row per task and metric, per-seed and median dev scores x 100."""
    scratch = " (from scratch)" if results["from_scratch"] else ""
    lines = ["# GLUE development-set scores", "",
             f"Pretrained: `{results['pretrained']}`{scratch}; config `{results['config']}`; "
             f"{results['seeds']} seed(s) per task. "
             "Scores x 100; each task's score is the mean of its metrics' medians.", "",
             "| task | metric | median | per seed | task score |", "|---|---|---|---|---|"]
    for name, summary in results["tasks"].items():
        for i, (metric, value) in enumerate(summary["metrics"].items()):
            per_seed = ", ".join(f"{100 * v:.1f}" for v in value["per_seed"])
            score = f"{100 * summary['score']:.1f}" if i == 0 else ""
            lines.append(f"| {name if i == 0 else ''} | {metric} | {100 * value['median']:.1f} "
                         f"| {per_seed} | {score} |")
    for key, label in (("glue_score", "GLUE score"),
                       ("glue_score_without_wnli", "GLUE score without WNLI")):
        if results.get(key) is not None:
            lines.append(f"| **{label}** | | | | **{100 * results[key]:.1f}** |")
    return "\n".join(lines) + "\n"


def _dev_metrics(task: GlueTask, run_dir: str) -> dict[str, float]:
    """The run's GLUE metrics on the task's dev split(s), scoring each split once."""
    stored = read_json(FinetunePaths(run_dir).metrics)
    by_split = {}
    for split in task.dev_splits:
        by_split[split] = stored[split] if split in stored else evaluate(run_dir, split,
                                                                         verbose=0)
    return task_metric_values(task, by_split)


def _task_score(task: GlueTask, values: dict[str, float]) -> float:
    return statistics.fmean(values.values())


def _task_summary(task: GlueTask, runs: list[dict[str, float]]) -> dict:
    metrics = {name: {"per_seed": [run[name] for run in runs],
                      "median": statistics.median(run[name] for run in runs)}
               for name in runs[0]}
    return {"metrics": metrics, "score": statistics.fmean(m["median"] for m in metrics.values()),
            "runs": len(runs)}


def _predict_test(task: GlueTask, run_dir: str, folder: str, out_dir: str) -> list[str]:
    """Writes the run's predictions of each of the task's test splits; returns the files."""
    import numpy as np
    import tensorflow as tf

    from electra_tf.pretrained.finetuned import load_finetuned

    model, preprocessor, _, _ = load_finetuned(run_dir)
    written = []
    for split in task.test_splits:
        ids, texts, texts_b = load_glue_test(task.name, folder, split)
        outputs = []
        for start in range(0, len(texts), 64):
            batch = [tf.constant(texts[start:start + 64])] + (
                [tf.constant(texts_b[start:start + 64])] if texts_b is not None else [])
            outputs.append(np.asarray(model(preprocessor.pad_and_mask(preprocessor(*batch)),
                                            training=False)))
        outputs = np.concatenate(outputs) if outputs else np.zeros((0,))
        predictions = (outputs if task.regression
                       else [task.label_names[i] for i in np.argmax(outputs, axis=-1)])
        written.append(write_submission(task.name, split, ids, predictions, out_dir))
    return written
