"""Named-entity recognition on CoNLL-2003 (issue 52): the shipped preset, the same architecture
from scratch, and a classical baseline (a CRF on word features), scored by entity-level F1 as
the CoNLL evaluation does.

    .venv/bin/pip install -e ".[benchmark]"    # sklearn-crfsuite, for the CRF arm
    .venv/bin/python benchmarks/ner_conll2003.py [--arms preset scratch crf] [--seeds 0 1 2]

Data: the English CoNLL-2003 training split (14,041 sentences) for training; the development
split (3,250 sentences; the test split is not available here) cut in two, in file order: its
first half (`valid[:50%]`, 1,625 sentences) is the validation data every choice is made on,
its second half (`valid[50%:]`, 1,625 sentences) is read once per finished model and reported.
Fine-tunes are `electra-tf finetune --task conll` runs in `--work-dir` (finished ones are kept
and skipped: re-running the command resumes); results go to
`benchmarks/results/ner_conll2003.{json,md}`.
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
RESULTS = os.path.join(HERE, "results")
DATA = os.path.join(os.path.dirname(ROOT), "shared", "data", "conll2003", "{split}.txt")
WORK_DIR = os.path.join(ROOT, "runs", "ner_conll2003")
CLI = [sys.executable, "-m", "electra_tf.cli"]
VALIDATION, HELD_OUT = "valid[:50%]", "valid[50%:]"

# The authors' tagging recipe (ELECTRA appendix: lr 3e-4 for Small, layer-wise decay 0.8,
# batch 32, 10% warm-up), 3 epochs, 128 pieces (CoNLL sentences average 14 words).
BASE = ["task.tag_column=1", f"task.validation_split={VALIDATION}",
        "preprocessing.max_seq_length=128", "training.epochs=3", "training.batch_size=32"]
# arm: (electra-tf finetune arguments, the setting that holds its learning rate). From scratch
# the config's `from_scratch` section applies (its learning rate, no layer-wise decay).
ARMS = {
    "preset": (["--pretrained", "electra_cpu_imdb_long"], "training.learning_rate"),
    "scratch": (["--pretrained", "electra_cpu_imdb_long", "--from-scratch"],
                "from_scratch.learning_rate"),
}


# Chosen per arm on the validation half with seed 0; the other seeds use the choice.
LEARNING_RATES = (3e-4, 1e-3)


def chosen_learning_rate(arm: str, work_dir: str) -> float:
    """The learning rate whose seed-0 fine-tune has the best validation entity F1."""
    scores = {lr: finetuned(arm, 0, work_dir, lr, held_out=False)["validation"]["f1"]
              for lr in LEARNING_RATES}
    return max(scores, key=scores.get)


def finetuned(arm: str, seed: int, work_dir: str, learning_rate: float,
              held_out: bool = True) -> dict:
    """The metrics.json of one finished fine-tune, with its held-out score when `held_out`
    (trained, and the held-out part read once, if missing)."""
    from electra_tf.files import read_json

    out = os.path.join(work_dir, f"{arm}_lr{learning_rate:g}_seed{seed}")
    metrics = read_json(os.path.join(out, "metrics.json"))
    if "validation" not in metrics:
        arguments, learning_rate_key = ARMS[arm]
        settings = [*BASE, f"training.seed={seed}", f"{learning_rate_key}={learning_rate}"]
        subprocess.run([*CLI, "finetune", "--task", "conll", "--data", DATA, *arguments,
                        "--out-dir", out, "--quiet",
                        *[x for s in settings for x in ("--set", s)]], check=True)
    if held_out and HELD_OUT not in read_json(os.path.join(out, "metrics.json")):
        subprocess.run([*CLI, "evaluate", "--model", out, "--split", HELD_OUT], check=True)
    return read_json(os.path.join(out, "metrics.json"))


def crf_scores(work_dir: str) -> dict:
    """The classical baseline a user tries first: a linear-chain CRF (sklearn-crfsuite, L-BFGS,
    c1/c2 0.1) on hand-made word features -- the word, its case and shape, prefixes and
    suffixes, and the same of its neighbours. Deterministic: one run. Cached in `work_dir`."""
    from electra_tf.data.tagging import load_tagged_sentences
    from electra_tf.files import read_json, write_json
    from electra_tf.tasks.tagging_metrics import tagging_metrics

    cache = os.path.join(work_dir, "crf.json")
    if read_json(cache):
        return read_json(cache)
    import sklearn_crfsuite

    def load(split):
        return load_tagged_sentences("conll", DATA, split, tag_column=1)

    train, validation, held_out = load("train"), load(VALIDATION), load(HELD_OUT)
    model = sklearn_crfsuite.CRF(algorithm="lbfgs", c1=0.1, c2=0.1, max_iterations=100)
    model.fit([_crf_features(words) for words in train.words], train.tags)
    scores = {split: tagging_metrics(data.tags, model.predict([_crf_features(words)
                                                               for words in data.words]))
              for split, data in (("validation", validation), (HELD_OUT, held_out))}
    os.makedirs(work_dir, exist_ok=True)
    write_json(cache, dict(scores, train_time_s=None))
    return read_json(cache)


def _crf_features(words: list[str]) -> list[dict]:
    def of(word, prefix):
        return {f"{prefix}lower": word.lower(), f"{prefix}title": word.istitle(),
                f"{prefix}upper": word.isupper(), f"{prefix}digit": word.isdigit(),
                f"{prefix}suffix3": word[-3:], f"{prefix}prefix3": word[:3]}

    features = []
    for i, word in enumerate(words):
        feature = {"bias": 1.0, "suffix2": word[-2:], **of(word, "")}
        feature.update(of(words[i - 1], "-1:") if i else {"BOS": True})
        feature.update(of(words[i + 1], "+1:") if i + 1 < len(words) else {"EOS": True})
        features.append(feature)
    return features


def row(arm: str, runs: list[dict]) -> dict:
    held = [run[HELD_OUT] for run in runs]
    types = sorted(held[0]["per_type"])
    return {"arm": arm,
            "entity_f1": {"median": statistics.median(h["f1"] for h in held),
                          "per_seed": [h["f1"] for h in held]},
            "per_type_f1": {kind: statistics.median(h["per_type"][kind]["f1"] for h in held)
                            for kind in types},
            "validation_f1": [run["validation"]["f1"] for run in runs],
            "train_time_s": [run["train_time_s"] for run in runs]}


def markdown(result: dict) -> str:
    host = result["host"]
    lines = ["# Named entities: CoNLL-2003", "",
             f"`{result['command']}` on {host['cpu_model']} ({host['cpu_cores']} cores).", "",
             result["split"], "",
             "| arm | entity F1 (median) | per seed | " + " | ".join(result["types"]) + " |",
             "|---|---|---|" + "---|" * len(result["types"])]
    for r in result["rows"]:
        lines.append(f"| {r['arm']} | {r['entity_f1']['median']:.4f} | "
                     + ", ".join(f"{f:.4f}" for f in r["entity_f1"]["per_seed"]) + " | "
                     + " | ".join(f"{r['per_type_f1'].get(t, 0):.3f}" for t in result["types"])
                     + " |")
    lines += ["", "Recipe: " + " ".join(f"`--set {s}`" for s in BASE) + "; the learning rate "
              f"of each fine-tuned arm chosen among {list(LEARNING_RATES)} on the validation "
              "half with seed 0 (" + ", ".join(f"{r['arm']} {r['learning_rate']:g}" for r in
                                                  result["rows"] if "learning_rate" in r) + ")."
              " The CRF: sklearn-crfsuite, word/case/affix features of the word and its "
              "neighbours, c1 = c2 = 0.1, 100 L-BFGS iterations (one deterministic run)."]
    return "\n".join(lines) + "\n"


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--arms", nargs="+", default=[*ARMS, "crf"], choices=[*ARMS, "crf"])
    parser.add_argument("--seeds", nargs="+", type=int, default=[0, 1, 2])
    parser.add_argument("--work-dir", default=WORK_DIR)
    args = parser.parse_args()
    from host_info import host_summary

    rows = []
    for arm in args.arms:
        if arm == "crf":
            rows.append(row(arm, [crf_scores(args.work_dir)]))
        else:
            lr = chosen_learning_rate(arm, args.work_dir)
            rows.append(dict(row(arm, [finetuned(arm, seed, args.work_dir, lr)
                                       for seed in args.seeds]), learning_rate=lr))
        print(json.dumps(rows[-1]), flush=True)
    types = sorted({t for r in rows for t in r["per_type_f1"]})
    result = {"command": "benchmarks/ner_conll2003.py " + " ".join(sys.argv[1:]),
              "host": host_summary(), "rows": rows, "types": types,
              "split": (f"Train: CoNLL-2003 train (14,041 sentences). Validation (choices): "
                        f"{VALIDATION} of the development split (its first 1,625 sentences). "
                        f"Reported: {HELD_OUT} (its last 1,625), read once per model.")}
    os.makedirs(RESULTS, exist_ok=True)
    with open(os.path.join(RESULTS, "ner_conll2003.json"), "w", encoding="utf-8") as f:
        json.dump(result, f, indent=2)
    with open(os.path.join(RESULTS, "ner_conll2003.md"), "w", encoding="utf-8") as f:
        f.write(markdown(result))
    return 0


if __name__ == "__main__":
    sys.exit(main())
