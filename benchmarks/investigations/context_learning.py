"""Can a small Transformer learn, in a CPU budget, the context that replaced-token detection needs?
Ours, KerasHub's and a convolution, trained on the very same corrupted batches.

    .venv/bin/python benchmarks/investigations/context_learning.py [--steps 1200] \\
        [--learning-rate 1e-3] [--learners electra_tf keras_hub conv] [--log-every 200] \\
        [--name context_learning]

discriminator_alone.py (beside this script) showed our discriminator, trained alone, stuck near
AUC 0.53 when the replacements are drawn by corpus frequency (so the token itself says nothing
and only its context can give it away). That could be a defect of our encoder or a property of small
BERT-style Transformers at this budget. This script separates the two: it corrupts `--steps`
batches of the embedded sample once (15% of the official positions, unigram draws; the quickstart
vocabulary and [16, 128] batches), saves them, and trains three detectors on identical data
with an identical optimizer (see benchmarks/peers/context_learner.py):

- `electra_tf`: the quickstart's discriminator (electra_tiny, 2 layers, hidden 128);
- `keras_hub`: KerasHub's `ElectraBackbone` of the same shape + the same head (its own venv,
  created by benchmarks/pretrain_throughput.py's helper on first use);
- `conv`: embeddings -> two width-5 convolutions -> the same head, which sees its neighbours by
  construction: how much of the task local context can solve at this budget.

ROC AUC is exact (rank statistic) over the predictions of each 200-step interval, made while
training. Writes benchmarks/investigations/results/context_learning.{json,md}.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import tempfile
import time

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
HERE = os.path.dirname(os.path.abspath(__file__))  # benchmarks/investigations
RESULTS = os.path.join(HERE, "results")
sys.path.insert(0, HERE)  # discriminator_alone
sys.path.insert(0, os.path.dirname(HERE))  # pretrain_throughput's peer helpers

import keras  # noqa: E402
import numpy as np  # noqa: E402
from discriminator_alone import corrupt, sample_stream  # noqa: E402
from pretrain_throughput import peer_python, run_peer_script  # noqa: E402

from electra_tf.data import SAMPLE_CORPUS  # noqa: E402
from electra_tf.quickstart import sample_pretraining_config  # noqa: E402

LEARNERS = ("electra_tf", "keras_hub", "conv")


def write_batches(path, steps, batch_size, replacement, seed):
    """Corrupts `steps` batches of the sample stream once and saves them as arrays
    `[steps, batch, 128]` (token_ids, segment_ids, padding_mask, labels) + vocab_size."""
    _, vocabulary, dataset, log_probs, ids = sample_stream(SAMPLE_CORPUS, batch_size, seed)
    objective = sample_pretraining_config(100, [
        f"model.vocab_size={len(vocabulary)}",
        *(f"pretraining.{k}={v}" for k, v in ids.items())]).pretraining
    stream = keras.random.SeedGenerator(seed)
    arrays = {"token_ids": [], "segment_ids": [], "padding_mask": [], "labels": []}
    for batch in dataset.take(steps):
        corrupted, labels = corrupt(batch, objective, replacement, len(vocabulary), log_probs,
                                    stream)
        arrays["token_ids"].append(corrupted.numpy())
        arrays["segment_ids"].append(batch["segment_ids"].numpy())
        arrays["padding_mask"].append(batch["padding_mask"].numpy())
        arrays["labels"].append(labels.numpy())
    stacked = {k: np.stack(v) for k, v in arrays.items()}
    np.savez(path, vocab_size=len(vocabulary), **stacked)
    real = stacked["padding_mask"] > 0
    return len(vocabulary), float(stacked["labels"][real].mean())


def run_learner(learner, path, learning_rate, log_every):
    python = peer_python("keras_hub") if learner == "keras_hub" else sys.executable
    result = run_peer_script(python, "context_learner.py", learner, path, learning_rate,
                             log_every, timeout=4 * 3600)
    print(f"  {learner}: AUC " + " ".join(f"{p['auc']:.3f}" for p in result["curve"]),
          flush=True)
    return result


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--steps", type=int, default=1200)
    parser.add_argument("--batch-size", type=int, default=16)
    parser.add_argument("--learning-rate", type=float, default=1e-3)
    parser.add_argument("--replacement", choices=["unigram", "uniform"], default="unigram")
    parser.add_argument("--learners", nargs="+", choices=LEARNERS, default=list(LEARNERS))
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--log-every", type=int, default=200, help="steps per AUC interval")
    parser.add_argument("--name", default="context_learning",
                        help="results file name (benchmarks/investigations/results/NAME.{json,md})")
    args = parser.parse_args()

    with tempfile.TemporaryDirectory() as scratch:
        path = os.path.join(scratch, "batches.npz")
        vocab_size, replaced = write_batches(path, args.steps, args.batch_size,
                                             args.replacement, args.seed)
        print(f"{args.steps} batches, vocabulary {vocab_size}, {100 * replaced:.1f}% of real "
              "tokens replaced", flush=True)
        runs = [run_learner(learner, path, args.learning_rate, args.log_every)
                for learner in args.learners]

    command = (f"python benchmarks/investigations/context_learning.py --steps {args.steps} "
               f"--learning-rate {args.learning_rate:g}"
               + (f" --replacement {args.replacement}" if args.replacement != "unigram" else "")
               + (f" --learners {' '.join(args.learners)}"
                  if list(args.learners) != list(LEARNERS) else "")
               + (f" --log-every {args.log_every}" if args.log_every != 200 else "")
               + (f" --name {args.name}" if args.name != "context_learning" else ""))
    report = {"command": command, "date": time.strftime("%Y-%m-%d"), "steps": args.steps,
              "batch_size": args.batch_size, "vocab_size": vocab_size,
              "replacement": args.replacement, "replaced_fraction": round(replaced, 4),
              "runs": runs}
    os.makedirs(RESULTS, exist_ok=True)
    with open(os.path.join(RESULTS, f"{args.name}.json"), "w") as f:
        json.dump(report, f, indent=2)
    names = {"electra_tf": "electra_tf discriminator (quickstart: 2 layers, hidden 128)",
             "keras_hub": "KerasHub ElectraBackbone, same shape, same head",
             "conv": "embeddings + two width-5 convolutions, same head"}
    lines = [
        "# Learning the context replaced-token detection needs: "
        + ("three detectors, same batches" if len(runs) == 3 else ", ".join(args.learners)), "",
        f"`{command}` on {os.cpu_count()} CPU cores ({report['date']}): {args.steps} batches of "
        f"[{args.batch_size}, 128] from the embedded 400-review sample (vocabulary {vocab_size}),"
        f" {100 * replaced:.1f}% of real tokens replaced by {args.replacement} draws, corrupted "
        "once and fed to every learner in the same order; Keras AdamW at "
        f"{args.learning_rate:g} with 10% warm-up and linear decay. Exact ROC AUC of replaced "
        "vs original over each interval's predictions (0.5 = chance).", "",
        "| detector | " + " | ".join(f"AUC @ {p['step']}" for p in runs[0]["curve"])
        + " | seconds |",
        "|---|" + "---|" * (len(runs[0]["curve"]) + 1)]
    for run in runs:
        lines.append(f"| {names[run['model']]} | " + " | ".join(
            f"{p['auc']:.3f}" for p in run["curve"]) + f" | {run['seconds']:.0f} |")
    with open(os.path.join(RESULTS, f"{args.name}.md"), "w") as f:
        f.write("\n".join(lines) + "\n")
    print("\n".join(lines))


if __name__ == "__main__":
    main()
