"""Sentence pairs and regression on real labels that need no download (issue 51): two tasks made
from the IMDB archive, fine-tuned from the shipped preset, from scratch, and with a TF-IDF
baseline.

    .venv/bin/pip install -e ".[benchmark]"       # scikit-learn, for the TF-IDF arm
    .venv/bin/python benchmarks/pairs_and_regression.py [--arms preset scratch tfidf] [--seeds 0 1 2]

The archive names every labelled review `ID_RATING.txt` (ratings 1-4 negative, 7-10 positive)
and lists each review's movie in `urls_{pos,neg}.txt` (line ID). Two tasks:
- `rating` (regression): a review's star rating from its text; Pearson, Spearman, MAE.
- `higher` (a sentence-pair task): two reviews of the same movie with different ratings, "does
  B rate it higher than A?" (labels `no` / `yes`); accuracy, F1 of `yes`.
Splits are by movie. IMDB's own train and test halves already hold disjoint movies, so the
reported split comes from `test/` (which the preset never read: it was pretrained on `train/`
only); validation is 10% of the movies of `train/` (seeded), training the rest. Each split is a
seeded sample (`SIZES`) so that a fine-tune takes minutes on two cores. Every choice (the
learning rate of each fine-tuned arm, the TF-IDF regularisation) is made on validation; the test
split is read once per finished model. Fine-tunes are `electra-tf finetune` runs in
`--work-dir` (finished ones are kept: re-running resumes); results go to
`benchmarks/results/pairs_and_regression.{json,md}`.
"""

from __future__ import annotations

import argparse
import json
import os
import re
import statistics
import subprocess
import sys
import tarfile
from collections import defaultdict

import numpy as np

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(HERE)
sys.path.insert(0, ROOT)
sys.path.insert(0, HERE)
RESULTS = os.path.join(HERE, "results")
ARCHIVE = os.path.join(os.path.dirname(ROOT), "shared", "data", "aclImdb_v1-text.tar.gz")
WORK_DIR = os.path.join(ROOT, "runs", "pairs_and_regression")
CLI = [sys.executable, "-m", "electra_tf.cli"]

SIZES = {"train": 4000, "valid": 1000, "test": 2000}  # examples per split, for each task
VALIDATION_MOVIES = 0.1  # of the movies of IMDB's train/
# task: (electra-tf finetune settings, the metrics reported, the one that makes choices)
TASKS = {
    "rating": (["task.type=regression", "task.label_column=rating"],
               ("pearson", "spearman", "mae"), "pearson"),
    "higher": (["task.type=sequence_classification", "task.text_column=text_a",
                "task.text_b_column=text_b", "task.label_column=label"],
               ("accuracy", "f1"), "accuracy"),
}
# The library's IMDB recipe (configs/finetune/imdb.yaml: 256 pieces, 3 epochs, batch 32, 10%
# warm-up, layer-wise decay 0.8); a pair's two reviews share the 256 pieces, longest first.
BASE = ["task.validation_split=valid", "training.epochs=3", "training.batch_size=32",
        "preprocessing.max_seq_length=256"]
ARMS = {
    "preset": (["--pretrained", "electra_cpu_imdb_long"], "training.learning_rate"),
    "scratch": (["--pretrained", "electra_cpu_imdb_long", "--from-scratch"],
                "from_scratch.learning_rate"),
}
LEARNING_RATES = (3e-4, 1e-3)  # chosen per task and arm on validation with seed 0
ALPHAS = (0.3, 1.0, 3.0, 10.0, 30.0)  # ridge, chosen on validation
C_VALUES = (0.3, 1.0, 3.0, 10.0, 30.0)  # logistic regression, chosen on validation
_FILE = re.compile(r"aclImdb/(train|test)/(pos|neg)/(\d+)_(\d+)\.txt$")
_MOVIE = re.compile(r"tt\d+")


# ---------------------------------------------------------------------------------------- data

def read_reviews(archive: str) -> dict:
    """`{imdb_split: [(text, rating, movie)]}` for IMDB's labelled reviews, in ID order."""
    from electra_tf.data.corpus.base import CorpusStats, decode_line
    from electra_tf.data.corpus.imdb import clean_review

    texts, urls = {}, {}
    with tarfile.open(archive, "r:*") as tar:
        for member in tar:
            name = member.name
            match = _FILE.search(name)
            if match:
                raw = tar.extractfile(member).read()
                texts[match.groups()] = clean_review(decode_line(raw, CorpusStats())).strip()
            elif re.search(r"/(train|test)/urls_(pos|neg)\.txt$", name):
                split, label = re.search(r"/(train|test)/urls_(pos|neg)", name).groups()
                lines = tar.extractfile(member).read().decode("utf-8").splitlines()
                urls[split, label] = [_MOVIE.search(line).group(0) for line in lines]
    reviews = defaultdict(list)
    for (split, label, review_id, rating), text in sorted(
            texts.items(), key=lambda item: (item[0][0], item[0][1], int(item[0][2]))):
        reviews[split].append((text, int(rating), urls[split, label][int(review_id)]))
    return reviews


def by_movie(reviews):
    movies = defaultdict(list)
    for review in reviews:
        movies[review[2]].append(review)
    return movies


def make_splits(reviews: dict, seed: int = 0) -> dict:
    """`{split: {movie: [reviews]}}`: train/valid from IMDB's train/ by movie, test from test/."""
    rng = np.random.default_rng(seed)
    train_movies = by_movie(reviews["train"])
    names = sorted(train_movies)
    order = rng.permutation(len(names))
    held = round(len(names) * VALIDATION_MOVIES)
    valid = {names[i] for i in order[:held]}
    return {"train": {m: r for m, r in train_movies.items() if m not in valid},
            "valid": {m: r for m, r in train_movies.items() if m in valid},
            "test": by_movie(reviews["test"])}


def rating_examples(movies: dict, size: int, rng) -> list[dict]:
    pool = [review for movie in sorted(movies) for review in movies[movie]]
    chosen = sorted(rng.choice(len(pool), size=min(size, len(pool)), replace=False))
    return [{"text": pool[i][0], "rating": pool[i][1]} for i in chosen]


def higher_examples(movies: dict, size: int, rng) -> list[dict]:
    """Pairs of reviews of one movie with different ratings; each review in at most one pair,
    A and B in random order (so `yes` and `no` are about equally common)."""
    pool = []
    for movie in sorted(movies):
        reviews = [movies[movie][i] for i in rng.permutation(len(movies[movie]))]
        for a, b in zip(reviews[0::2], reviews[1::2]):
            if a[1] != b[1]:
                pool.append({"text_a": a[0], "text_b": b[0],
                             "label": "yes" if b[1] > a[1] else "no"})
    chosen = sorted(rng.choice(len(pool), size=min(size, len(pool)), replace=False))
    return [pool[i] for i in chosen]


def write_tasks(archive: str, work_dir: str) -> dict:
    """Writes `work_dir/data/TASK/{train,valid,test}.jsonl` once (seeded: the same files every
    time) and returns `{task: path with {split}}`."""
    paths = {task: os.path.join(work_dir, "data", task, "{split}.jsonl") for task in TASKS}
    if all(os.path.exists(path.format(split="test")) for path in paths.values()):
        return paths
    splits = make_splits(read_reviews(archive))
    for task, make in (("rating", rating_examples), ("higher", higher_examples)):
        rng = np.random.default_rng(1 if task == "rating" else 2)
        for split in ("train", "valid", "test"):
            examples = make(splits[split], SIZES[split], rng)
            path = paths[task].format(split=split)
            os.makedirs(os.path.dirname(path), exist_ok=True)
            with open(path + ".tmp", "w", encoding="utf-8") as f:
                f.writelines(json.dumps(example, ensure_ascii=False) + "\n"
                             for example in examples)
            os.replace(path + ".tmp", path)
    return paths


def load(path: str, split: str) -> list[dict]:
    with open(path.format(split=split), encoding="utf-8") as f:
        return [json.loads(line) for line in f]


# ---------------------------------------------------------------------------------- fine-tunes

def finetuned(task: str, arm: str, seed: int, learning_rate: float, data: str, work_dir: str,
              held_out: bool = True) -> dict:
    """The metrics.json of one finished fine-tune, with its test score when `held_out`
    (trained, and the test split read once, if missing)."""
    from electra_tf.files import read_json

    out = os.path.join(work_dir, f"{task}_{arm}_lr{learning_rate:g}_seed{seed}")
    if "validation" not in read_json(os.path.join(out, "metrics.json")):
        arguments, learning_rate_key = ARMS[arm]
        settings = [*BASE, *TASKS[task][0], f"training.seed={seed}",
                    f"{learning_rate_key}={learning_rate}"]
        subprocess.run([*CLI, "finetune", "--task", "jsonl", "--data", data, *arguments,
                        "--out-dir", out, "--quiet",
                        *[x for s in settings for x in ("--set", s)]], check=True)
    if held_out and "test" not in read_json(os.path.join(out, "metrics.json")):
        subprocess.run([*CLI, "evaluate", "--model", out, "--split", "test"], check=True)
    return read_json(os.path.join(out, "metrics.json"))


def chosen_learning_rate(task: str, arm: str, data: str, work_dir: str) -> float:
    key = TASKS[task][2]
    scores = {lr: value(finetuned(task, arm, 0, lr, data, work_dir,
                                  held_out=False)["validation"], key)
              for lr in LEARNING_RATES}
    return max(scores, key=scores.get)


# ------------------------------------------------------------------------------------- TF-IDF

def tfidf_scores(task: str, data: str) -> tuple[dict, float]:
    """The baseline a user tries first: TF-IDF of words and word pairs (sublinear tf, words seen
    at least twice), ridge regression on the review for `rating`, logistic regression on the
    difference of the two reviews' vectors for `higher` (the question is antisymmetric). The
    regularisation is chosen on validation. Deterministic: one run. Returns (test metrics, the
    chosen regularisation)."""
    from sklearn.feature_extraction.text import TfidfVectorizer
    from sklearn.linear_model import LogisticRegression, Ridge

    from electra_tf.tasks.scoring import classification_metrics, regression_metrics

    splits = {split: load(data, split) for split in ("train", "valid", "test")}
    vectorizer = TfidfVectorizer(ngram_range=(1, 2), min_df=2, sublinear_tf=True)
    if task == "rating":
        vectorizer.fit([e["text"] for e in splits["train"]])
        features = {s: vectorizer.transform([e["text"] for e in x]) for s, x in splits.items()}
        targets = {s: np.array([e["rating"] for e in x], float) for s, x in splits.items()}

        def fitted(alpha):
            return Ridge(alpha=alpha).fit(features["train"], targets["train"])

        def metrics(model, split):
            return regression_metrics(targets[split], model.predict(features[split]))

        choices = ALPHAS
    else:
        vectorizer.fit([e[k] for e in splits["train"] for k in ("text_a", "text_b")])
        features = {s: vectorizer.transform([e["text_b"] for e in x])
                    - vectorizer.transform([e["text_a"] for e in x]) for s, x in splits.items()}
        targets = {s: np.array([e["label"] == "yes" for e in x], int)
                   for s, x in splits.items()}

        def fitted(c):
            return LogisticRegression(C=c, max_iter=2000).fit(features["train"],
                                                              targets["train"])

        def metrics(model, split):
            return classification_metrics(targets[split], model.predict(features[split]),
                                          ["no", "yes"])

        choices = C_VALUES
    key = TASKS[task][2]
    validation = {choice: value(metrics(fitted(choice), "valid"), key) for choice in choices}
    best = max(validation, key=validation.get)
    return metrics(fitted(best), "test"), best


# ------------------------------------------------------------------------------------ results

def value(metrics: dict, metric: str) -> float:
    """One number of a metrics.json section; `f1` is the F1 of the class `yes`."""
    return metrics["per_class"]["yes"]["f1"] if metric == "f1" else metrics[metric]


def rows_of(task: str, arm: str, test_metrics: list[dict]) -> list[dict]:
    rows = []
    for metric in TASKS[task][1]:
        per_seed = [value(m, metric) for m in test_metrics]
        rows.append({"task": task, "arm": arm, "metric": metric,
                     "median": statistics.median(per_seed), "per_seed": per_seed})
    return rows


def markdown(result: dict) -> str:
    host = result["host"]
    lines = ["# Sentence pairs and regression: two tasks from the IMDB archive", "",
             f"`{result['command']}` on {host['cpu_model']} ({host['cpu_cores']} cores, "
             f"flags {', '.join(host['cpu_flags'])}).", "", result["data"], "",
             "| task | arm | metric | median (test) | per seed | choice (on validation) |",
             "|---|---|---|---|---|---|"]
    for row in result["rows"]:
        lines.append(f"| {row['task']} | {row['arm']} | {row['metric']} | {row['median']:.4f} | "
                     + ", ".join(f"{v:.4f}" for v in row["per_seed"]) + " | "
                     + result["choices"][f"{row['task']}/{row['arm']}"] + " |")
    lines += ["", "Recipe of the fine-tuned arms: `--task jsonl` with "
              + " ".join(f"`--set {s}`" for s in BASE) + f", seeds {result['seeds']}; from "
              "scratch uses the config's `from_scratch` section (no layer-wise decay). MAE is "
              "in stars (lower is better)."]
    return "\n".join(lines) + "\n"


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--arms", nargs="+", default=[*ARMS, "tfidf"], choices=[*ARMS, "tfidf"])
    parser.add_argument("--tasks", nargs="+", default=list(TASKS), choices=list(TASKS))
    parser.add_argument("--seeds", nargs="+", type=int, default=[0, 1, 2])
    parser.add_argument("--archive", default=ARCHIVE)
    parser.add_argument("--work-dir", default=WORK_DIR)
    args = parser.parse_args()
    from host_info import host_summary

    paths = write_tasks(args.archive, args.work_dir)
    rows, choices = [], {}
    for task in args.tasks:
        for arm in args.arms:
            if arm == "tfidf":
                test, choice = tfidf_scores(task, paths[task])
                rows += rows_of(task, arm, [test])
                choices[f"{task}/{arm}"] = (f"alpha {choice:g}" if task == "rating"
                                            else f"C {choice:g}")
            else:
                lr = chosen_learning_rate(task, arm, paths[task], args.work_dir)
                runs = [finetuned(task, arm, seed, lr, paths[task], args.work_dir)
                        for seed in args.seeds]
                rows += rows_of(task, arm, [run["test"] for run in runs])
                choices[f"{task}/{arm}"] = f"lr {lr:g}"
            print(json.dumps(rows[-1]), flush=True)
    counts = {task: {split: len(load(paths[task], split)) for split in ("train", "valid", "test")}
              for task in args.tasks}
    result = {"command": "benchmarks/pairs_and_regression.py " + " ".join(sys.argv[1:]),
              "host": host_summary(), "rows": rows, "choices": choices, "seeds": args.seeds,
              "examples": counts,
              "data": ("Train: a seeded sample of the reviews of 90% of the movies of IMDB's "
                       "train/; validation (every choice): the other 10% of its movies; test "
                       "(read once per model): IMDB's test/, whose movies are disjoint from "
                       "train/'s and which the preset never saw in pretraining. Examples per "
                       "split: " + "; ".join(f"{t} {c}" for t, c in counts.items()) + ".")}
    os.makedirs(RESULTS, exist_ok=True)
    with open(os.path.join(RESULTS, "pairs_and_regression.json"), "w", encoding="utf-8") as f:
        json.dump(result, f, indent=2)
    with open(os.path.join(RESULTS, "pairs_and_regression.md"), "w", encoding="utf-8") as f:
        f.write(markdown(result))
    return 0


if __name__ == "__main__":
    sys.exit(main())
