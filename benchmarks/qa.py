"""Extractive question answering (issue 54), measured without a download.

    .venv/bin/python benchmarks/qa.py [--arms preset scratch regex] [--seeds 0 1 2]

(a) `squad2_dev_known_predictions`: the official metric on the 1,407 real SQuAD 2.0 development
    questions in ../shared/data, fed known predictions -- the first reference answers, each
    answer's span extended by the context's next word, and "no answer" everywhere -- as a check
    of the metric at scale (tests/test_qa_metrics.py checks the same numbers independently).
(b) `imdb_rating`: "What rating does the reviewer give?" about IMDB reviews. The archive names
    each review `ID_RATING.txt`; a review that states its own rating ("7/10", "8 out of 10",
    "seven out of ten", "rating: 9") is answerable by every such statement, one whose statements
    all match no rating of its file is left out, and one that states none is unanswerable
    (sampled to as many as the answerable ones). Train and validation come from IMDB's
    `train/` (validation: 10% of its movies, seeded), test from `test/` (other movies, never
    seen by the preset's pretraining). Arms: the shipped preset, the same architecture from
    scratch (learning rate of each chosen on validation with seed 0), and the regular
    expression a user writes first (`N/10`), which answers what it matches and nothing else.

Fine-tunes are `electra-tf finetune --task squad` runs in `--work-dir` (finished ones are kept:
re-running resumes); results go to `benchmarks/results/qa.{json,md}`.
"""

from __future__ import annotations

import argparse
import json
import os
import re
import statistics
import subprocess
import sys

import numpy as np

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(HERE)
sys.path.insert(0, ROOT)
sys.path.insert(0, HERE)

from pairs_and_regression import ARCHIVE, VALIDATION_MOVIES, by_movie, read_reviews  # noqa: E402

RESULTS = os.path.join(HERE, "results")
SQUAD_DEV = os.path.join(os.path.dirname(ROOT), "shared", "data", "squad2_dev_5articles.json")
WORK_DIR = os.path.join(ROOT, "runs", "qa")
CLI = [sys.executable, "-m", "electra_tf.cli"]
QUESTION = "What rating does the reviewer give?"
SIZES = {"train": 3000, "valid": 600, "test": 2000}  # questions per split, half answerable

_NUMBER = r"(10|[1-9]|one|two|three|four|five|six|seven|eight|nine|ten)"
_WORDS = {w: i for i, w in enumerate("zero one two three four five six seven eight nine ten"
                                     .split())}
# The ways reviews state a rating out of ten (case-insensitive).
RATING_PATTERNS = [
    re.compile(rf"\b{_NUMBER}\s*/\s*10\b", re.I),
    re.compile(rf"\b{_NUMBER}\s+(?:out\s+)?of\s+(?:10|ten)\b", re.I),
    re.compile(rf"\brating\s*(?:of|:|=|-)?\s*{_NUMBER}\b(?!\s*(?:/|out|of))", re.I),
]
NAIVE_PATTERN = re.compile(r"\b(\d{1,2})\s*/\s*10\b")  # the regex a user writes first
BASE = ["preprocessing.max_seq_length=256", "preprocessing.doc_stride=128",
        "training.epochs=3", "training.batch_size=32", "task.validation_split=valid"]
ARMS = {
    "preset": (["--pretrained", "electra_cpu_imdb_long"], "training.learning_rate"),
    "scratch": (["--pretrained", "electra_cpu_imdb_long", "--from-scratch"],
                "from_scratch.learning_rate"),
}
LEARNING_RATES = (3e-4, 1e-3)


# ---------------------------------------------------------------------------------------- data

def rating_mentions(text: str) -> list[tuple[int, int, int]]:
    """`(start, end, value)` of every statement of a rating out of ten in `text`."""
    found = []
    for pattern in RATING_PATTERNS:
        for match in pattern.finditer(text):
            value = match.group(1).lower()
            found.append((match.start(), match.end(), _WORDS.get(value) or int(value)))
    return sorted(set(found))


def reading_questions(reviews, rng, size: int) -> list[dict]:
    """SQuAD-style JSON lines: answerable reviews (every mention of the file's rating) and as
    many unanswerable ones, `size` in all (or fewer)."""
    answerable, unanswerable = [], []
    for index, (text, rating, _) in enumerate(reviews):
        mentions = rating_mentions(text)
        if not mentions:
            unanswerable.append(index)
        elif all(value == rating for _, _, value in mentions):
            answerable.append(index)
    half = min(size // 2, len(answerable), len(unanswerable))
    chosen = [(i, True) for i in rng.choice(answerable, half, replace=False)] + \
        [(i, False) for i in rng.choice(unanswerable, half, replace=False)]
    questions = []
    for i, has_answer in sorted(chosen):
        text = reviews[i][0]
        answers = [{"text": text[s:e], "answer_start": s} for s, e, _ in rating_mentions(text)] \
            if has_answer else []
        questions.append({"id": f"r{i}", "question": QUESTION, "context": text,
                          "answers": answers})
    return questions


def write_questions(archive: str, work_dir: str) -> str:
    """`work_dir/data/{split}.jsonl` (written once, seeded); returns the `{split}` path."""
    path = os.path.join(work_dir, "data", "{split}.jsonl")
    if os.path.exists(path.format(split="test")):
        return path
    reviews = read_reviews(archive)
    movies = by_movie(reviews["train"])
    names = sorted(movies)
    order = np.random.default_rng(0).permutation(len(names))
    held = {names[i] for i in order[:round(len(names) * VALIDATION_MOVIES)]}
    splits = {"train": [r for r in reviews["train"] if r[2] not in held],
              "valid": [r for r in reviews["train"] if r[2] in held],
              "test": reviews["test"]}
    rng = np.random.default_rng(3)
    os.makedirs(os.path.dirname(path), exist_ok=True)
    for split, split_reviews in splits.items():
        questions = reading_questions(split_reviews, rng, SIZES[split])
        with open(path.format(split=split) + ".tmp", "w", encoding="utf-8") as f:
            f.writelines(json.dumps(q, ensure_ascii=False) + "\n" for q in questions)
        os.replace(path.format(split=split) + ".tmp", path.format(split=split))
    return path


# ------------------------------------------------------------------------------------- arms

def finetuned(arm: str, seed: int, learning_rate: float, data: str, work_dir: str,
              held_out: bool = True) -> dict:
    from electra_tf.files import read_json

    out = os.path.join(work_dir, f"{arm}_lr{learning_rate:g}_seed{seed}")
    if "validation" not in read_json(os.path.join(out, "metrics.json")):
        arguments, learning_rate_key = ARMS[arm]
        settings = [*BASE, f"training.seed={seed}", f"{learning_rate_key}={learning_rate}"]
        subprocess.run([*CLI, "finetune", "--task", "squad", "--data", data, *arguments,
                        "--out-dir", out, "--quiet",
                        *[x for s in settings for x in ("--set", s)]], check=True)
    if held_out and "test" not in read_json(os.path.join(out, "metrics.json")):
        subprocess.run([*CLI, "evaluate", "--model", out, "--split", "test"], check=True)
    return read_json(os.path.join(out, "metrics.json"))


def chosen_learning_rate(arm: str, data: str, work_dir: str) -> float:
    scores = {lr: finetuned(arm, 0, lr, data, work_dir, held_out=False)["validation"]["f1"]
              for lr in LEARNING_RATES}
    return max(scores, key=scores.get)


def regex_scores(data: str) -> dict:
    from electra_tf.data.squad import load_squad
    from electra_tf.tasks.qa_metrics import squad_metrics

    test = load_squad(data, "test")
    predictions = {}
    for qid, context in zip(test.ids, test.contexts):
        match = NAIVE_PATTERN.search(context)
        predictions[qid] = match.group(0) if match else ""
    return squad_metrics(test.references(), predictions)


def known_prediction_rows() -> list[dict]:
    from electra_tf.data.squad import load_squad
    from electra_tf.tasks.qa_metrics import squad_metrics

    dev = load_squad(SQUAD_DEV)
    references = dev.references()
    first = {q: (a[0] if a else "") for q, a in references.items()}
    extended = {}
    for qid, context, answers in zip(dev.ids, dev.contexts, dev.answers):
        if answers:
            text, start = answers[0]
            following = context[start + len(text):].split()
            extended[qid] = text + (" " + following[0] if following else "")
        else:
            extended[qid] = ""
    rows = []
    for arm, predictions in (("first_reference", first), ("span_plus_next_word", extended),
                             ("no_answer", {q: "" for q in references})):
        m = squad_metrics(references, predictions)
        rows.append(_row("squad2_dev_known_predictions", arm, [m]))
    return rows


def _row(task: str, arm: str, runs: list[dict]) -> dict:
    def median(key):
        return statistics.median(run[key] for run in runs)

    return {"task": task, "arm": arm, "exact_match": median("exact_match"), "f1": median("f1"),
            "has_ans_f1": median("has_ans_f1"), "no_ans_f1": median("no_ans_f1"),
            "per_seed_f1": [run["f1"] for run in runs]}


def markdown(result: dict) -> str:
    host = result["host"]
    lines = ["# Question answering", "",
             f"`{result['command']}` on {host['cpu_model']} ({host['cpu_cores']} cores).", "",
             "| task | arm | exact match | F1 | HasAns F1 | NoAns F1 | F1 per seed |",
             "|---|---|---|---|---|---|---|"]
    for r in result["rows"]:
        lines.append(f"| {r['task']} | {r['arm']} | {r['exact_match']:.2f} | {r['f1']:.2f} | "
                     f"{r['has_ans_f1']:.2f} | {r['no_ans_f1']:.2f} | "
                     + ", ".join(f"{v:.2f}" for v in r["per_seed_f1"]) + " |")
    lines += ["", result["data"], "", result["recipe"]]
    return "\n".join(lines) + "\n"


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--arms", nargs="+", default=[*ARMS, "regex"],
                        choices=[*ARMS, "regex"])
    parser.add_argument("--seeds", nargs="+", type=int, default=[0, 1, 2])
    parser.add_argument("--archive", default=ARCHIVE)
    parser.add_argument("--work-dir", default=WORK_DIR)
    args = parser.parse_args()
    from host_info import host_summary

    rows = known_prediction_rows()
    data = write_questions(args.archive, args.work_dir)
    chosen = {}
    for arm in args.arms:
        if arm == "regex":
            rows.append(_row("imdb_rating", arm, [regex_scores(data)]))
        else:
            chosen[arm] = lr = chosen_learning_rate(arm, data, args.work_dir)
            rows.append(_row("imdb_rating", arm, [
                finetuned(arm, seed, lr, data, args.work_dir)["test"] for seed in args.seeds]))
        print(json.dumps(rows[-1]), flush=True)
    counts = {}
    for split in ("train", "valid", "test"):
        with open(data.format(split=split), encoding="utf-8") as f:
            questions = [json.loads(line) for line in f]
        counts[split] = {"questions": len(questions),
                         "answerable": sum(bool(q["answers"]) for q in questions)}
    result = {
        "command": "benchmarks/qa.py " + " ".join(sys.argv[1:]), "host": host_summary(),
        "rows": rows, "examples": counts, "learning_rates": chosen,
        "data": "imdb_rating questions per split: " + "; ".join(
            f"{s} {c['questions']} ({c['answerable']} answerable)" for s, c in counts.items())
        + ". Train/validation from IMDB's train/ (validation: 10% of its movies), test from "
        "test/ (disjoint movies).",
        "recipe": "Fine-tuned arms: `--task squad` with " + " ".join(f"`--set {s}`"
                                                                     for s in BASE)
        + f", seeds {args.seeds}, learning rates chosen on validation F1 with seed 0: "
        + ", ".join(f"{a} {lr:g}" for a, lr in chosen.items()) + ". No-answer threshold 0 "
        "(BERT's). The regex arm answers the first `N/10` it finds."}
    os.makedirs(RESULTS, exist_ok=True)
    with open(os.path.join(RESULTS, "qa.json"), "w", encoding="utf-8") as f:
        json.dump(result, f, indent=2)
    with open(os.path.join(RESULTS, "qa.md"), "w", encoding="utf-8") as f:
        f.write(markdown(result))
    return 0


if __name__ == "__main__":
    sys.exit(main())
