"""Labelled texts for sequence classification: loading (IMDB, folder-per-class, CSV/TSV) and a
stratified train/validation split. The in-graph text -> [CLS] ... [SEP] preprocessing is in
`electra_tf.data.preprocessor`."""

from __future__ import annotations

import contextlib
import csv
import dataclasses
import logging
import os
from typing import Optional, Sequence

import keras
import numpy as np

from electra_tf.data.corpus import CorpusStats, ImdbCorpus, decode_line
from electra_tf.errors import DataError

logger = logging.getLogger(__name__)

IMDB_LABELS = ("neg", "pos")  # tfds imdb_reviews: 0 = negative, 1 = positive


@dataclasses.dataclass
class LabelledTexts:
    """Texts with integer labels.

    Attributes:
        texts: list of N strings.
        labels: int32 `[N]`, indices into `label_names`.
        label_names: the class names (index = label id).
        source: where the examples came from (for logs and metrics.json).
    """

    texts: list
    labels: np.ndarray
    label_names: list
    source: str = ""

    def __post_init__(self):
        self.labels = np.asarray(self.labels, dtype=np.int32)
        if len(self.texts) != len(self.labels):
            raise ValueError(f"{len(self.texts)} texts but {len(self.labels)} labels.")

    def __len__(self):
        return len(self.texts)

    def subset(self, indices) -> "LabelledTexts":
        indices = np.asarray(indices, dtype=np.int64)
        return LabelledTexts([self.texts[i] for i in indices], self.labels[indices],
                             self.label_names, self.source)

    def class_counts(self) -> dict:
        counts = np.bincount(self.labels, minlength=len(self.label_names))
        return {name: int(c) for name, c in zip(self.label_names, counts)}


def stratified_split(data: LabelledTexts, fraction: float, seed: int):
    """Splits `data` into `(rest, held_out)` with `fraction` of every class held out, the same
    for the same seed. Returns two `LabelledTexts` (examples in shuffled order)."""
    rng = np.random.default_rng(seed)
    held_out, rest = [], []
    for label in range(len(data.label_names)):
        indices = rng.permutation(np.flatnonzero(data.labels == label))
        n = int(round(fraction * len(indices)))
        held_out.extend(indices[:n])
        rest.extend(indices[n:])
    return data.subset(rng.permutation(rest)), data.subset(rng.permutation(held_out))


def load_labelled_texts(task: str, data: Optional[str], split: str, *, text_column="text",
                        label_column="label", label_names: Optional[Sequence[str]] = None
                        ) -> LabelledTexts:
    """Loads one split of a text-classification task.

    Args:
        task: `imdb`, `folder` or `csv` (see `TaskConfig`).
        data: path (`{split}` is replaced by the split name), or None for IMDB from tfds.
        split: `train` or `test` (any name for folders and CSVs).
        label_names: the classes a trained model knows; labels are then mapped onto them (and an
            unknown label is an error). Otherwise the classes are read from the data, sorted.
    """
    if data is not None:
        data = data.replace("{split}", split)
    if task == "imdb":
        result = _load_imdb(data, split)
    elif task == "folder":
        result = _load_folder(data, split)
    elif task == "csv":
        result = _load_csv(data, text_column, label_column)
    else:
        raise DataError(f"Unknown task {task!r}: use imdb, folder or csv.")
    if label_names is not None:
        result = _relabel(result, list(label_names))
    if not len(result):
        raise DataError(f"{result.source} holds no labelled texts.")
    if len(result.label_names) < 2:
        raise DataError(f"{result.source} has a single class {result.label_names}; "
                        "classification needs at least two.")
    return result


def _load_imdb(data, split) -> LabelledTexts:
    if data is None or data.startswith("tfds:"):
        name = data[len("tfds:"):] if data else "imdb_reviews"
        return _load_tfds(name, split)
    if split not in ("train", "test"):
        raise DataError(f"IMDB has the splits train and test, not {split!r}.")
    corpus = ImdbCorpus(data, subsets=tuple(f"{split}/{label}" for label in IMDB_LABELS))
    texts, labels = [], []
    for subset, text in corpus.labelled_documents():
        texts.append(text.strip())
        labels.append(IMDB_LABELS.index(subset.split("/")[1]))
    return LabelledTexts(texts, labels, list(IMDB_LABELS), f"{data} [{split}]")


def _load_tfds(name, split) -> LabelledTexts:
    import tensorflow_datasets as tfds

    try:
        dataset, info = tfds.load(name, split=split, with_info=True, as_supervised=True)
    except Exception as err:  # tfds raises many types: offline, unknown name, unknown split
        raise DataError(f"Cannot load tfds:{name} split {split!r} ({type(err).__name__}: {err}). "
                        "Offline? Pass the dataset as a local path with --data.") from None
    texts, labels = [], []
    for text, label in dataset.as_numpy_iterator():
        texts.append(decode_line(text, CorpusStats()).replace("<br />", "\n").strip())
        labels.append(int(label))
    names = info.features["label"].names
    return LabelledTexts(texts, labels, list(names), f"tfds:{name} [{split}]")


def _load_folder(data, split) -> LabelledTexts:
    if data is None or not os.path.isdir(data):
        raise DataError(f"Folder task: {data!r} is not a folder. Give a folder with one "
                        "sub-folder of .txt files per class (optionally under train/ and test/).")
    root = os.path.join(data, split) if os.path.isdir(os.path.join(data, split)) else data
    if root == data and split != "train" and os.path.isdir(os.path.join(data, "train")):
        raise DataError(f"{data} has train/ but no {split}/ folder.")
    dataset = keras.utils.text_dataset_from_directory(
        root, labels="inferred", label_mode="int", batch_size=None, shuffle=False,
        verbose=False)
    texts, labels, stats = [], [], CorpusStats()
    for text, label in dataset.as_numpy_iterator():
        texts.append(decode_line(text, stats).strip())
        labels.append(int(label))
    _report_invalid_utf8(root, stats, "file(s)")
    return LabelledTexts(texts, labels, list(dataset.class_names), f"{root}")


def _load_csv(path, text_column, label_column) -> LabelledTexts:
    if path is None or not os.path.isfile(path):
        raise DataError(f"CSV task: file not found: {path!r}.")
    with open(path, "rb") as f:
        raw = f.read()
    stats = CorpusStats()
    text = "".join(decode_line(line, stats) for line in raw.splitlines(keepends=True))
    _report_invalid_utf8(path, stats, "line(s)")
    # Excel's "CSV UTF-8" starts with a byte-order mark, which would become part of the first
    # column's name.
    text = text.removeprefix("\ufeff")
    delimiter = "\t" if path.endswith((".tsv", ".tab")) else ","
    with _any_field_size():
        rows = csv.DictReader(text.splitlines(keepends=True), delimiter=delimiter)
        if rows.fieldnames is None or text_column not in rows.fieldnames \
                or label_column not in rows.fieldnames:
            raise DataError(f"{path}: the header {rows.fieldnames} must name the text column "
                            f"{text_column!r} and the label column {label_column!r} "
                            "(set task.text_column / task.label_column).")
        texts, raw_labels = [], []
        for row in rows:
            if row[text_column] is None or row[label_column] is None:
                raise DataError(f"{path}:{rows.line_num}: missing text or label column.")
            if not row[label_column].strip():
                raise DataError(f"{path}:{rows.line_num}: the {label_column!r} column is "
                                "empty; give the row its label or remove it.")
            texts.append(row[text_column].strip())
            raw_labels.append(row[label_column].strip())
    names = sorted(set(raw_labels), key=lambda v: (not v.lstrip("-").isdigit(),
                                                   int(v) if v.lstrip("-").isdigit() else 0, v))
    labels = [names.index(v) for v in raw_labels]
    return LabelledTexts(texts, labels, names, path)


@contextlib.contextmanager
def _any_field_size():
    """Lifts the csv module's 131,072-character field limit (a long review is a valid field)
    while a file is read, then restores the caller's limit (it is process-wide)."""
    previous = csv.field_size_limit()
    csv.field_size_limit(2 ** 31 - 1)
    try:
        yield
    finally:
        csv.field_size_limit(previous)


def _report_invalid_utf8(source: str, stats: CorpusStats, unit: str) -> None:
    if stats.lines_with_invalid_utf8:
        logger.warning("%s: %d %s had bytes that are not UTF-8; they were replaced by U+FFFD. "
                       "Re-save the data as UTF-8 to keep those characters.", source,
                       stats.lines_with_invalid_utf8, unit)


def _relabel(data: LabelledTexts, names: list) -> LabelledTexts:
    if data.label_names == names:
        return data
    unknown = sorted(set(data.label_names) - set(names))
    if unknown:
        raise DataError(f"{data.source} has labels {unknown} that the model does not know "
                        f"(it was trained on {names}).")
    mapping = np.array([names.index(n) for n in data.label_names], dtype=np.int32)
    return LabelledTexts(data.texts, mapping[data.labels], names, data.source)
