"""Scored texts (or text pairs) for regression: a star rating from a review, a similarity score
from a sentence pair (GLUE STS-B). Loading from CSV/TSV/JSONL tables or GLUE, and a seeded
random train/validation split."""

from __future__ import annotations

import dataclasses
import math
from typing import Optional

import numpy as np

from electra_tf.data.classification import check_lengths, pick
from electra_tf.data.text_tables import read_table
from electra_tf.errors import DataError


@dataclasses.dataclass
class ScoredTexts:
    """Texts (or text pairs) with one real-valued target each.

    Attributes:
        texts: list of N strings (the first text of each pair).
        scores: float32 `[N]`.
        source: where the examples came from (for logs and metrics.json).
        texts_b: None, or the N second texts of a pair task.
        ids: None, or N example ids.
    """

    texts: list
    scores: np.ndarray
    source: str = ""
    texts_b: Optional[list] = None
    ids: Optional[list] = None

    def __post_init__(self):
        self.scores = np.asarray(self.scores, dtype=np.float32)
        check_lengths(self, self.scores, "scores")

    def __len__(self):
        return len(self.texts)

    @property
    def targets(self) -> np.ndarray:
        return self.scores

    def subset(self, indices) -> "ScoredTexts":
        indices = np.asarray(indices, dtype=np.int64)
        return ScoredTexts(pick(self.texts, indices), self.scores[indices], self.source,
                           pick(self.texts_b, indices), pick(self.ids, indices))


def random_split(data: ScoredTexts, fraction: float, seed: int):
    """`(rest, held_out)` with `fraction` of the examples held out at random, the same for the
    same seed (both in shuffled order)."""
    order = np.random.default_rng(seed).permutation(len(data))
    held = int(round(fraction * len(data)))
    return data.subset(order[held:]), data.subset(order[:held])


def load_scored_texts(task: str, data: Optional[str], split: str, *, text_column="text",
                      label_column="label", text_b_column: Optional[str] = None) -> ScoredTexts:
    """Loads one split of a regression task.

    Args:
        task: `csv` or `jsonl` (a table whose `label_column` holds numbers; GLUE STS-B's own
            files are read by `electra_tf.data.glue.load_glue`).
        data: path (`{split}` is replaced by the split name).
        split: the split's name.
        text_b_column: the column of each pair's second text (None: single texts).
    """
    if task not in ("csv", "jsonl"):
        raise DataError(f"Regression reads its scores from a table: task.name csv or jsonl (or "
                        f"glue for STS-B), not {task!r}.")
    path = data.replace("{split}", split) if data else data
    columns = [text_column, label_column] + ([text_b_column] if text_b_column else [])
    settings = ["task.text_column", "task.label_column", "task.text_b_column"]
    rows = read_table(path, columns, settings, what="scored-text file")
    if not rows:
        raise DataError(f"{path} holds no scored texts.")
    scores = [parse_score(row[1], f"{path} row {number}", label_column)
              for number, row in enumerate(rows, start=1)]
    return ScoredTexts([row[0] for row in rows], scores, path,
                       [row[2] for row in rows] if text_b_column else None)


def parse_score(value: str, where: str, column: str) -> float:
    """`value` as a finite float, or a one-line error naming `where`."""
    try:
        score = float(value)
    except ValueError:
        score = math.nan
    if not math.isfinite(score):
        raise DataError(f"{where}: the {column!r} column holds {value!r}, not a number; a "
                        "regression task needs a finite number on every row.")
    return score
