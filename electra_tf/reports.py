"""The few lines a person reads after a run: what was trained, how the losses moved, where the
outputs are. Shared by the `electra-tf` commands and the quickstart."""

from __future__ import annotations

import os


def pretraining_report(metrics: dict, out_dir: str) -> str:
    """Steps, speed, first vs last logged interval of each loss/metric, and the outputs of a
    finished `pretrain` (`metrics` is its `metrics.json`)."""
    first, final = metrics["first_interval"], metrics["final"]
    lines = [f"\nPretrained {metrics['steps']:,d} steps (batch {metrics['batch_size']} x "
             f"{metrics['max_seq_length']} tokens) in {metrics['train_time_s']:.0f} s of training, "
             f"{metrics['sequences_per_s'] or 0:.1f} sequences/s."]
    if first and final:
        lines.append(f"First interval (step {first['step']}) -> last (step {final['step']}):")
        for key in ("mlm_loss", "disc_loss", "mlm_accuracy", "disc_auc", "disc_recall",
                    "disc_precision"):
            if key in final:
                lines.append(f"  {key:<15} {first[key]:.3f} -> {final[key]:.3f}")
    lines.append(f"Discriminator: {os.path.join(out_dir, 'discriminator.keras')}  (vocab.txt, "
                 f"config.yaml, metrics.json, curves.png beside it; TensorBoard: "
                 f"tensorboard --logdir {os.path.join(out_dir, 'logs')})")
    return "\n".join(lines)


def finetuning_report(metrics: dict, out_dir: str, has_test_split: bool = True) -> str:
    """Steps, the best validation checkpoint's metrics and the outputs of a finished
    `finetune` (`metrics` is its `metrics.json`). `has_test_split`: whether the task's data has
    a test split `evaluate --split test` can read (a single CSV has not: the command then asks
    for the test data)."""
    from electra_tf.tasks.scoring import format_metrics

    beside = ", ".join(["metrics.json", "curves.png"] + (
        ["confusion_validation.png"] if "confusion_matrix" in metrics["validation"] else []))
    test = f"electra-tf evaluate --model {out_dir} --split test"
    if not has_test_split:
        test += " --data TEST_DATA (the training data has no test split)"
    return "\n".join([
        f"\nFine-tuned {metrics['steps']:,d} steps in {metrics['train_time_s']:.0f} s; best "
        f"validation checkpoint at step {metrics['best_step']}:",
        format_metrics(metrics["validation"]),
        f"Model: {os.path.join(out_dir, 'classifier.keras')} ({beside} beside it). Test it "
        f"with: {test}"])
