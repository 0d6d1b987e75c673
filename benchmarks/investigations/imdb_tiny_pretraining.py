"""Pretrain `electra_tiny` on the IMDB texts for a fixed budget and record the curves.

    .venv/bin/python benchmarks/investigations/imdb_tiny_pretraining.py [--out-dir runs/imdb_tiny] \\
        [--steps 5000]

Runs (or resumes: it is the ordinary `electra-tf pretrain` run directory)

    electra-tf pretrain --config configs/electra_tiny.yaml \\
        --corpus ../shared/data/aclImdb_v1-text.tar.gz --out-dir OUT --steps 5000 \\
        --save-every 500 --log-every 100

(train/unsup + train/pos + train/neg texts; test/ is never read), then writes
benchmarks/investigations/results/imdb_tiny_pretraining.{json,md,png} from OUT/history.jsonl.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys

HERE = os.path.dirname(os.path.abspath(__file__))  # benchmarks/investigations
ROOT = os.path.dirname(os.path.dirname(HERE))
RESULTS = os.path.join(HERE, "results")
CORPUS = os.path.join(os.path.dirname(ROOT), "shared", "data", "aclImdb_v1-text.tar.gz")


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--out-dir", default=os.path.join(ROOT, "runs", "imdb_tiny"))
    parser.add_argument("--steps", type=int, default=5000)
    parser.add_argument("--corpus", default=CORPUS)
    parser.add_argument("--name", default="imdb_tiny_pretraining",
                        help="results file name (benchmarks/investigations/results/NAME.{json,md,png})")
    parser.add_argument("--summarize-only", action="store_true",
                        help="only write the results from an existing run directory")
    args = parser.parse_args()
    command = [sys.executable, "-m", "electra_tf.cli", "pretrain", "--config",
               os.path.join(ROOT, "configs", "electra_tiny.yaml"), "--corpus", args.corpus,
               "--out-dir", args.out_dir, "--steps", str(args.steps), "--save-every", "500",
               "--log-every", "100", "--quiet"]
    if not args.summarize_only:
        subprocess.run(command, check=True)

    from electra_tf.training.plots import plot_pretraining_curves

    with open(os.path.join(args.out_dir, "history.jsonl"), encoding="utf-8") as f:
        history = [json.loads(line) for line in f]
    with open(os.path.join(args.out_dir, "metrics.json"), encoding="utf-8") as f:
        metrics = json.load(f)
    os.makedirs(RESULTS, exist_ok=True)
    plot_pretraining_curves(history, os.path.join(RESULTS, f"{args.name}.png"),
                            title=f"electra_tiny on IMDB texts, {metrics['steps']} steps")
    keep = ("step", "learning_rate", "mlm_loss", "disc_loss", "mlm_accuracy", "disc_accuracy",
            "disc_precision", "disc_recall", "disc_auc", "sequences_per_s")
    this_command = f"python benchmarks/investigations/imdb_tiny_pretraining.py --steps {args.steps}"
    if os.path.abspath(args.out_dir) != os.path.join(ROOT, "runs", "imdb_tiny"):
        this_command += f" --out-dir {os.path.relpath(args.out_dir, ROOT)}"
    if args.name != "imdb_tiny_pretraining":
        this_command += f" --name {args.name}"
    result = {"command": this_command,
              "equivalent_cli": " ".join(command[3:]).replace(ROOT + "/", ""),
              "metrics": metrics, "curve": [{k: r[k] for k in keep if k in r} for r in history]}
    with open(os.path.join(RESULTS, f"{args.name}.json"), "w") as f:
        json.dump(result, f, indent=2)
    # The early phase in detail (the discriminator's peak and fall), then ten evenly spaced rows.
    shown = {100, 200, 300, 500, 1000} | {round(args.steps * k / 10) for k in range(1, 11)}
    rows = [r for r in history if r["step"] in shown or r is history[-1]]
    table = "\n".join(
        f"| {r['step']} | {r['mlm_loss']:.3f} | {r['mlm_accuracy']:.3f} | {r['disc_loss']:.3f} | "
        f"{r['disc_accuracy']:.3f} | {r['disc_precision']:.3f} | {r['disc_recall']:.3f} | "
        f"{r['disc_auc']:.3f} |"
        for r in rows)
    summary = describe_curve(history) + "\n\n"
    with open(os.path.join(RESULTS, f"{args.name}.md"), "w") as f:
        f.write(
            f"# electra_tiny pretrained on the IMDB texts ({metrics['steps']} steps)\n\n"
            f"`{result['command']}` (= `electra-tf {result['equivalent_cli']}`), 2 CPU cores. "
            f"Batch {metrics['batch_size']} x {metrics['max_seq_length']} tokens, "
            f"vocabulary of {metrics['vocab_size']} WordPiece tokens learned from the first 20,000 "
            f"training reviews. {metrics['train_time_s'] / 60:.0f} min of training, "
            f"{metrics['sequences_per_s']:.1f} sequences/s ({metrics['tokens_per_s']:,.0f} "
            f"tokens/s) on average.\n\n"
            "Metrics are means over the 100 steps that end at `step`; precision and recall are the "
            "discriminator's on replaced tokens, at probability 0.5; disc_auc is the ROC AUC of its "
            "scores for replaced vs original tokens (0.5 = chance, threshold-free).\n\n"
            "| step | mlm_loss | mlm_acc | disc_loss | disc_acc | disc_precision | disc_recall "
            "| disc_auc |\n|---|---|---|---|---|---|---|---|\n" + table + "\n\n" + summary +
            f"![curves]({args.name}.png)\n")
    print(open(os.path.join(RESULTS, f"{args.name}.md")).read())


def describe_curve(history):
    """One paragraph of what the curve did, read from the numbers: the losses' start and end,
    the discriminator's early AUC peak (the first tenth of the run, while the young generator's
    samples are easy to spot), its lowest point after that peak, and where AUC and recall end."""
    first, last = history[0], history[-1]
    early = [r for r in history if r["step"] <= max(first["step"], last["step"] // 10)]
    peak = max(early, key=lambda r: r["disc_auc"])
    after_peak = [r for r in history if r["step"] > peak["step"]] or [last]
    trough = min(after_peak, key=lambda r: r["disc_auc"])
    after_trough = [r for r in history if r["step"] >= trough["step"]]
    auc_note = _best_since(after_trough, "disc_auc", last)
    recall_note = _best_since(after_trough, "disc_recall", last)
    return (
        f"Over the run mlm_loss went {first['mlm_loss']:.2f} -> {last['mlm_loss']:.2f} and "
        f"disc_loss {first['disc_loss']:.3f} -> {last['disc_loss']:.3f}. disc_auc reached "
        f"{peak['disc_auc']:.3f} at step {peak['step']}, fell to {trough['disc_auc']:.3f} at "
        f"step {trough['step']} as the generator learned (mlm_acc "
        f"{trough['mlm_accuracy']:.3f} there), and is {last['disc_auc']:.3f} at the end"
        f"{auc_note}; mlm_acc ends at {last['mlm_accuracy']:.3f}. Recall at probability 0.5 is "
        f"{last['disc_recall']:.3f} at the end{recall_note}.")


def _best_since(records, key, last):
    """' (highest since the low point: X at step N)' when some record beats the last one at the
    printed precision (3 decimals), else ''."""
    best = max(records, key=lambda r: r[key])
    if round(best[key], 3) <= round(last[key], 3):
        return ""
    return f" (highest since the low point: {best[key]:.3f} at step {best['step']})"


if __name__ == "__main__":
    main()
