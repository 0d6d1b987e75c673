"""The bag-of-words baseline for IMDB: TF-IDF of words and word pairs -> logistic regression.

    .venv/bin/pip install -e ".[benchmark]"      # scikit-learn
    .venv/bin/python benchmarks/bow_baseline.py [--corpus ../shared/data/aclImdb_v1-text.tar.gz]

Where Transformers stand on IMDB needs a floor that costs seconds: Maas et al. (2011) report
88.9% for bag-of-words features with a linear classifier, NBSVM 91.2% (Wang & Manning 2012).
This baseline reads the same splits as `electra-tf finetune --task imdb`: the 2,500-review
validation split carved from train (10%, split_seed 0) for every choice (n-gram range and the
regularisation C), the other 22,500 to fit, the 25,000 test reviews scored once with the chosen
settings. `imdb_experiment.py` calls `run_bow_baseline`; run alone, it prints the result.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import time

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(HERE)
sys.path.insert(0, ROOT)
CORPUS = os.path.join(os.path.dirname(ROOT), "shared", "data", "aclImdb_v1-text.tar.gz")

NGRAM_RANGES = ((1, 1), (1, 2))
C_VALUES = (1.0, 4.0, 16.0, 64.0, 256.0)


def imdb_splits(corpus: str, validation_fraction: float = 0.1, split_seed: int = 0):
    """(train, validation, test) `LabelledTexts`, split exactly as `electra-tf finetune` does."""
    from electra_tf.data.classification import load_labelled_texts, stratified_split

    train = load_labelled_texts("imdb", corpus, "train")
    train, validation = stratified_split(train, validation_fraction, split_seed)
    test = load_labelled_texts("imdb", corpus, "test", label_names=train.label_names)
    return train, validation, test


def run_bow_baseline(corpus: str, seeds=(0,)) -> dict:
    """Chooses the n-gram range and C on validation, then scores test once per seed.

    Returns {"choice": {...}, "validation_grid": [...], "runs": [{seed, validation_accuracy,
    test_accuracy, finetune_train_time_s}], "source": str}. The solver is deterministic, so
    seeds only show that (they give identical numbers); they keep the experiment's table shape.
    """
    from sklearn.feature_extraction.text import TfidfVectorizer
    from sklearn.linear_model import LogisticRegression

    train, validation, test = imdb_splits(corpus)
    grid, features = [], {}
    for ngrams in NGRAM_RANGES:
        began = time.time()
        vectorizer = TfidfVectorizer(ngram_range=ngrams, min_df=2, max_df=0.95,
                                     sublinear_tf=True, strip_accents="unicode")
        train_features = vectorizer.fit_transform(train.texts)
        vectorize_s = time.time() - began
        validation_features = vectorizer.transform(validation.texts)
        # Kept for the chosen setting's seeds: they reuse the features instead of refitting.
        features[ngrams] = (vectorizer, train_features, validation_features, vectorize_s)
        for c in C_VALUES:
            model = LogisticRegression(C=c, max_iter=1000, solver="liblinear")
            model.fit(train_features, train.labels)
            accuracy = float(model.score(validation_features, validation.labels))
            grid.append({"ngram_range": list(ngrams), "C": c, "validation_accuracy": accuracy,
                         "features": int(train_features.shape[1])})
            print(f"bag of words {ngrams} C={c}: validation {accuracy:.4f}", flush=True)
    best = max(grid, key=lambda row: row["validation_accuracy"])
    ngrams, c = tuple(best["ngram_range"]), best["C"]
    vectorizer, train_features, validation_features, vectorize_s = features[ngrams]
    test_features = vectorizer.transform(test.texts)
    runs = []
    for seed in seeds:
        began = time.time()
        model = LogisticRegression(C=c, max_iter=1000, solver="liblinear", random_state=seed)
        model.fit(train_features, train.labels)
        runs.append({
            "seed": seed,
            "validation_accuracy": float(model.score(validation_features, validation.labels)),
            "test_accuracy": float(model.score(test_features, test.labels)),
            # what training this model costs: the TF-IDF fit on train + the regression
            "finetune_train_time_s": round(vectorize_s + time.time() - began, 1)})
    return {"choice": {"ngram_range": list(ngrams), "C": c}, "validation_grid": grid,
            "runs": runs, "source": train.source}


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--corpus", default=CORPUS, help="the aclImdb archive or folder")
    args = parser.parse_args()
    print(json.dumps(run_bow_baseline(args.corpus), indent=2))


if __name__ == "__main__":
    main()
