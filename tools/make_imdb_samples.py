"""Writes the labelled IMDB samples shipped in the package (used by `electra-tf quickstart`):

    electra_tf/data/samples/imdb_sample_train.csv   400 reviews, 200 negative + 200 positive
    electra_tf/data/samples/imdb_sample_test.csv    200 reviews, 100 + 100

Reviews come from aclImdb's train/ and test/ folders in archive order, keeping those under
1,200 characters (short reviews keep the package small and the quickstart fast).

    .venv/bin/python tools/make_imdb_samples.py [../shared/data/aclImdb_v1-text.tar.gz]
"""

import csv
import os
import sys

from electra_tf.data.corpus import ImdbCorpus

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
SAMPLES = os.path.join(ROOT, "electra_tf", "data", "samples")
PER_CLASS = {"train": 200, "test": 100}
MAX_CHARS = 1200


def main(archive):
    wanted = {f"{split}/{label}": n for split, n in PER_CLASS.items() for label in ("neg", "pos")}
    chosen = {subset: [] for subset in wanted}
    for subset, text in ImdbCorpus(archive, subsets=tuple(wanted)).labelled_documents():
        if len(text) < MAX_CHARS and len(chosen[subset]) < wanted[subset]:
            chosen[subset].append(text.strip())
    for split in PER_CLASS:
        path = os.path.join(SAMPLES, f"imdb_sample_{split}.csv")
        # Alternate the classes so that any head of the file holds both.
        rows = [row for pair in zip(*(
            [(label, text) for text in chosen[f"{split}/{label}"]] for label in ("neg", "pos")))
            for row in pair]
        with open(path, "w", encoding="utf-8", newline="") as f:
            writer = csv.writer(f)
            writer.writerow(["label", "text"])
            writer.writerows(rows)
        print(f"wrote {path}: {len(rows)} reviews")


if __name__ == "__main__":
    main(sys.argv[1] if len(sys.argv) > 1 else
         os.path.join(os.path.dirname(ROOT), "shared", "data", "aclImdb_v1-text.tar.gz"))
