"""Small real datasets shipped with the package, for the quickstart, notebooks and tests.

- `SAMPLE_CORPUS`: 400 unlabelled IMDB reviews, one per line (a pretraining corpus).
- `SAMPLE_LABELLED`: 400 labelled training and 200 test reviews as CSV (`label,text`, labels
  `neg`/`pos`); `{split}` stands for `train` or `test`, as the CSV task loader expects.
"""

import os

SAMPLES_DIR = os.path.dirname(os.path.abspath(__file__))
SAMPLE_CORPUS = os.path.join(SAMPLES_DIR, "imdb_unsup_400.txt")
SAMPLE_LABELLED = os.path.join(SAMPLES_DIR, "imdb_sample_{split}.csv")
