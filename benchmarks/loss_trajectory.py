"""Do the speed changes leave training unchanged? Loss curves of a fixed-seed run, before and after.

    .venv/bin/python benchmarks/loss_trajectory.py [--baseline d20f30d] [--steps 300]
        [--precisions float32 mixed_bfloat16 bfloat16_matmul]

Speed work on the pretraining step (the two-level sampler, `HalfBitsDropout`, the hand-written
GELU gradient) changes which random numbers are drawn and the order of float sums, so runs are no
longer bit-identical to the older code; what must not change is *how training goes*. This script
runs the quickstart's recipe (electra_tiny with 2 layers, the embedded 400 reviews, batch 16,
`--steps` steps, seed 0) as the ordinary `electra-tf pretrain` command

- with the code at `--baseline` (a git revision from before the speed work, checked out into a
  temporary worktree), seed 0 and seed 1 -- the second run says how far two equally valid runs
  drift apart, the yardstick for "unchanged";
- with this checkout, seed 0, in float32, mixed_bfloat16 and bfloat16_matmul;
- all with one vocabulary, the one this checkout learns in its first run;

and compares the per-interval mean losses (`history.jsonl`, every 10 steps): total loss,
mlm_loss and disc_loss. A change is within tolerance when its largest gap to the baseline stays
within the seed-to-seed gap (and in any case within 5% of the loss).

Writes benchmarks/results/loss_trajectory.{json,md}.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
RESULTS = os.path.join(ROOT, "benchmarks", "results")
LOSSES = ("loss", "mlm_loss", "disc_loss")
# This checkout's runs (seed 0); the baseline always runs in float32.
PRECISIONS = ("float32", "mixed_bfloat16", "bfloat16_matmul")


def pretrain(code_root, out_dir, steps, seed, precision, vocab=None):
    """Runs the quickstart recipe with the `electra_tf` found in `code_root` (with `vocab`, a
    vocab.txt, or learning one from the corpus); returns its history."""
    from electra_tf.data import SAMPLE_CORPUS
    from electra_tf.quickstart import sample_pretraining_overrides

    # The recipe comes from this checkout, so both code versions run the very same one.
    command = [sys.executable, "-m", "electra_tf.cli", "pretrain", "--config", "electra_tiny",
               "--corpus", SAMPLE_CORPUS, "--out-dir", out_dir, "--steps", str(steps),
               "--batch-size", "16", "--log-every", "10", "--save-every", str(steps),
               "--seed", str(seed), "--precision", precision, "--quiet",
               *(["--vocab", vocab] if vocab else []),
               *(arg for override in sample_pretraining_overrides(steps)
                 for arg in ("--set", override))]
    began = time.time()
    subprocess.run(command, check=True, cwd=code_root, capture_output=True,
                   env=dict(os.environ, PYTHONPATH=code_root, TF_CPP_MIN_LOG_LEVEL="2"))
    with open(os.path.join(out_dir, "history.jsonl"), encoding="utf-8") as f:
        history = [json.loads(line) for line in f]
    print(f"  {os.path.basename(out_dir)}: {time.time() - began:.0f} s, final loss "
          f"{history[-1]['loss']:.3f}", flush=True)
    return history


def largest_gap(run, reference):
    """Per loss: the largest |run - reference| over the intervals, absolute and relative."""
    gaps = {}
    for name in LOSSES:
        pairs = [(a[name], b[name]) for a, b in zip(run, reference)]
        gaps[name] = {"absolute": max(abs(a - b) for a, b in pairs),
                      "relative": max(abs(a - b) / abs(b) for a, b in pairs)}
    return gaps


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--baseline", default="d20f30d",
                        help="git revision from before the speed changes")
    parser.add_argument("--steps", type=int, default=300)
    parser.add_argument("--precisions", nargs="+", default=list(PRECISIONS),
                        help="this checkout's precisions to compare with the baseline")
    args = parser.parse_args()
    sys.path.insert(0, ROOT)

    with tempfile.TemporaryDirectory() as scratch:
        worktree = os.path.join(scratch, "baseline")
        subprocess.run(["git", "-C", ROOT, "worktree", "add", "--detach", worktree,
                        args.baseline], check=True, capture_output=True)
        # Every run reads one vocabulary, the one this checkout learns in its first run: the
        # learner changed after older baselines (d20f30d learned another vocabulary from the
        # same reviews), and MLM losses over different vocabularies are not comparable.
        vocab = os.path.join(scratch, f"new_{args.precisions[0]}", "vocab.txt")
        runs = {}
        try:
            for precision in args.precisions:
                runs[f"this checkout, {precision}, seed 0"] = pretrain(
                    ROOT, os.path.join(scratch, f"new_{precision}"), args.steps, 0, precision,
                    vocab if runs else None)
            for seed in (0, 1):
                runs[f"baseline, seed {seed}"] = pretrain(
                    worktree, os.path.join(scratch, f"base{seed}"), args.steps, seed, "float32",
                    vocab)
        finally:
            subprocess.run(["git", "-C", ROOT, "worktree", "remove", "--force", worktree],
                           check=False)
        # The baseline first in the tables.
        runs = {name: runs[name] for name in sorted(runs, key=lambda n: not n.startswith("base"))}

    reference = runs["baseline, seed 0"]
    yardstick = largest_gap(runs["baseline, seed 1"], reference)
    comparisons = {}
    for name, run in runs.items():
        if name == "baseline, seed 0":
            continue
        gaps = largest_gap(run, reference)
        comparisons[name] = {
            "gaps": gaps,
            "within_tolerance": all(
                gaps[k]["absolute"] <= max(yardstick[k]["absolute"], 1e-12)
                or gaps[k]["relative"] <= 0.05 for k in LOSSES)
            if name != "baseline, seed 1" else None}

    command = (f"python benchmarks/loss_trajectory.py --baseline {args.baseline} --steps {args.steps}"
               + ("" if tuple(args.precisions) == PRECISIONS
                  else " --precisions " + " ".join(args.precisions)))
    os.makedirs(RESULTS, exist_ok=True)
    with open(os.path.join(RESULTS, "loss_trajectory.json"), "w") as f:
        json.dump({"command": command, "date": time.strftime("%Y-%m-%d"),
                   "comparisons": comparisons,
                   "curves": {name: [{k: r[k] for k in ("step", *LOSSES)} for r in run]
                              for name, run in runs.items()}}, f, indent=2)
    marks = [r["step"] for r in reference if r["step"] in (10, 50, 100, 200, 300)
             or r is reference[-1]]
    lines = [
        "# Loss trajectory before and after the speed changes", "",
        f"`{command}` on {os.cpu_count()} CPU cores ({time.strftime('%Y-%m-%d')}): the "
        f"quickstart recipe (electra_tiny, 2 layers, 400 reviews, batch 16) for {args.steps} "
        f"steps with the code at `{args.baseline}` and with this checkout. Losses are means over "
        "10-step intervals.", "",
        "| run | " + " | ".join(f"loss @ {s}" for s in marks) + " |",
        "|---|" + "---|" * len(marks)]
    for name, run in runs.items():
        by_step = {r["step"]: r for r in run}
        lines.append(f"| {name} | " + " | ".join(f"{by_step[s]['loss']:.3f}" for s in marks)
                     + " |")
    lines += ["", "Largest gap to `baseline, seed 0` over all intervals (absolute / relative):",
              "", "| run | loss | mlm_loss | disc_loss | within tolerance |", "|---|---|---|---|---|"]
    for name, comparison in comparisons.items():
        gaps = comparison["gaps"]
        verdict = {None: "(the yardstick)", True: "yes", False: "**no**"}[
            comparison["within_tolerance"]]
        lines.append(f"| {name} | " + " | ".join(
            f"{gaps[k]['absolute']:.3f} / {100 * gaps[k]['relative']:.1f}%" for k in LOSSES)
            + f" | {verdict} |")
    lines += ["", "Tolerance: a run is unchanged when, for every loss, its largest gap is no larger "
              "than the gap between two seeds of the baseline, or under 5% of the loss."]
    with open(os.path.join(RESULTS, "loss_trajectory.md"), "w") as f:
        f.write("\n".join(lines) + "\n")
    print("\n".join(lines))


if __name__ == "__main__":
    main()
