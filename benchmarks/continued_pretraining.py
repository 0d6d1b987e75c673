"""Continued (domain-adaptive) pretraining (issue 53): the shipped preset `electra_cpu_imdb_long`
(pretrained on movie reviews) pretrained further on the text of the CoNLL-2003 training split
(Reuters news, labels unused), against the preset as it is, both fine-tuned for named entities
with exactly the recipe of `benchmarks/ner_conll2003.py`.

    .venv/bin/python benchmarks/continued_pretraining.py [--steps 1000] [--seeds 0 1 2]

The continued run: `electra-tf pretrain --init-from electra_cpu_imdb_long --config electra_cpu`
(the preset's own recipe: batch 32 x 128 pieces, its objective) on the 14,041 training sentences
(one line each), `--steps` steps at a peak learning rate of 3e-4 (a third of the preset's) after
100 warm-up steps. The preset ships no generator, so the run starts a fresh one (warned). The
fine-tuning: the preset arm's learning rate as `ner_conll2003.py` chose it on the validation
half (its runs are reused from `runs/ner_conll2003` when present), the same for the continued
encoder; entity F1 on the held-out half of the development split, read once per model.
Results: `benchmarks/results/continued_pretraining.{json,md}`.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(HERE)
sys.path.insert(0, ROOT)
sys.path.insert(0, HERE)

import ner_conll2003 as ner  # noqa: E402  (the NER recipe, data and runs)

RESULTS = os.path.join(HERE, "results")
WORK_DIR = os.path.join(ROOT, "runs", "continued_pretraining")
CLI = [sys.executable, "-m", "electra_tf.cli"]
PRESET = "electra_cpu_imdb_long"
LEARNING_RATE, WARMUP_STEPS = 3e-4, 100


def domain_corpus(work_dir: str) -> str:
    """The CoNLL-2003 training split as plain text, one sentence per line (the words joined by
    spaces; this copy marks no document boundaries)."""
    from electra_tf.data.tagging import load_tagged_sentences

    path = os.path.join(work_dir, "conll2003_train_text.txt")
    if not os.path.exists(path):
        sentences = load_tagged_sentences("conll", ner.DATA, "train", tag_column=1)
        os.makedirs(work_dir, exist_ok=True)
        with open(path + ".tmp", "w", encoding="utf-8") as f:
            f.writelines(" ".join(words) + "\n" for words in sentences.words)
        os.replace(path + ".tmp", path)
    return path


def continued_encoder(steps: int, work_dir: str) -> str:
    """The run folder of the preset continued `steps` steps on the news text (trained, or
    resumed, if unfinished)."""
    out = os.path.join(work_dir, f"{PRESET}_conll_{steps}")
    if not os.path.exists(os.path.join(out, "discriminator.keras")):
        subprocess.run([*CLI, "pretrain", "--init-from", PRESET, "--config", "electra_cpu",
                        "--corpus", domain_corpus(work_dir), "--doc-format", "line",
                        "--out-dir", out, "--steps", str(steps), "--save-every", "100",
                        "--log-every", "50", "--quiet",
                        "--set", f"optimizer.learning_rate={LEARNING_RATE}",
                        "--set", f"optimizer.warmup_steps={WARMUP_STEPS}"], check=True)
    return out


def row(encoder: str, steps: int, runs: list[dict]) -> dict:
    scores = [run[ner.HELD_OUT]["f1"] for run in runs]
    return {"encoder": encoder, "continued_steps": steps, "task": "conll2003_ner",
            "metric": "entity_f1", "median": statistics.median(scores), "per_seed": scores,
            "validation_f1": [run["validation"]["f1"] for run in runs]}


def markdown(result: dict) -> str:
    host = result["host"]
    lines = ["# Continued pretraining: the preset on news text, then CoNLL-2003 NER", "",
             f"`{result['command']}` on {host['cpu_model']} ({host['cpu_cores']} cores).", "",
             "| encoder | continued steps | entity F1 (median, held-out half) | per seed | "
             "validation F1 |", "|---|---|---|---|---|"]
    for r in result["rows"]:
        lines.append(f"| {r['encoder']} | {r['continued_steps']} | {r['median']:.4f} | "
                     + ", ".join(f"{v:.4f}" for v in r["per_seed"]) + " | "
                     + ", ".join(f"{v:.4f}" for v in r["validation_f1"]) + " |")
    lines += ["", result["recipe"]]
    return "\n".join(lines) + "\n"


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--steps", type=int, default=1000)
    parser.add_argument("--seeds", nargs="+", type=int, default=[0, 1, 2])
    parser.add_argument("--work-dir", default=WORK_DIR)
    parser.add_argument("--ner-work-dir", default=ner.WORK_DIR,
                        help="where the preset's NER fine-tunes are (reused)")
    args = parser.parse_args()
    from host_info import host_summary

    lr = ner.chosen_learning_rate("preset", args.ner_work_dir)
    rows = [row(PRESET, 0, [ner.finetuned("preset", seed, args.ner_work_dir, lr)
                            for seed in args.seeds])]
    encoder = continued_encoder(args.steps, args.work_dir)
    ner.ARMS["continued"] = (["--pretrained", encoder], "training.learning_rate")
    rows.append(row(f"{PRESET} + CoNLL text", args.steps,
                    [ner.finetuned("continued", seed, args.work_dir, lr)
                     for seed in args.seeds]))
    pretraining = json.load(open(os.path.join(encoder, "metrics.json"), encoding="utf-8"))
    result = {
        "command": "benchmarks/continued_pretraining.py " + " ".join(sys.argv[1:]),
        "host": host_summary(), "rows": rows,
        "continued_pretraining": {"steps": args.steps, "learning_rate": LEARNING_RATE,
                                  "warmup_steps": WARMUP_STEPS,
                                  "train_time_s": pretraining["train_time_s"],
                                  "final": pretraining["final"]},
        "recipe": (f"Continued: `electra-tf pretrain --init-from {PRESET} --config electra_cpu` "
                   f"on the CoNLL-2003 training text, {args.steps} steps, peak lr "
                   f"{LEARNING_RATE:g}, {WARMUP_STEPS} warm-up steps, a fresh generator (the "
                   f"preset ships none); {pretraining['train_time_s']:.0f} s of training. "
                   f"Fine-tuning: `benchmarks/ner_conll2003.py`'s recipe at lr {lr:g} (chosen "
                   f"for the preset on the validation half), seeds {args.seeds}; reported on "
                   f"{ner.HELD_OUT} of the development split.")}
    os.makedirs(RESULTS, exist_ok=True)
    with open(os.path.join(RESULTS, "continued_pretraining.json"), "w", encoding="utf-8") as f:
        json.dump(result, f, indent=2)
    with open(os.path.join(RESULTS, "continued_pretraining.md"), "w", encoding="utf-8") as f:
        f.write(markdown(result))
    return 0


if __name__ == "__main__":
    sys.exit(main())
