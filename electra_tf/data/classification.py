"""Labelled texts (or text pairs) for sequence classification: loading (IMDB, folder-per-class,
CSV/TSV/JSONL, GLUE) and a stratified train/validation split. The in-graph text ->
`[CLS] a [SEP] (b [SEP])` preprocessing is in `electra_tf.data.preprocessor`."""

from __future__ import annotations

import dataclasses
import logging
import os
from typing import Optional, Sequence

import keras
import numpy as np

from electra_tf.data.corpus import CorpusStats, ImdbCorpus, decode_line
from electra_tf.data.text_tables import read_table, report_invalid_utf8
from electra_tf.errors import DataError

logger = logging.getLogger(__name__)

IMDB_LABELS = ("neg", "pos")  # tfds imdb_reviews: 0 = negative, 1 = positive


@dataclasses.dataclass
class LabelledTexts:
    """Texts (or text pairs) with integer labels.

    Attributes:
        texts: list of N strings (the first text of each pair).
        labels: int32 `[N]`, indices into `label_names`.
        label_names: the class names (index = label id).
        source: where the examples came from (for logs and metrics.json).
        texts_b: None, or the N second texts of a pair task (entailment, paraphrase).
        ids: None, or N example ids (a GLUE test file's `index`, for the submission file).
    """

    texts: list
    labels: np.ndarray
    label_names: list
    source: str = ""
    texts_b: Optional[list] = None
    ids: Optional[list] = None

    def __post_init__(self):
        self.labels = np.asarray(self.labels, dtype=np.int32)
        check_lengths(self, self.labels, "labels")

    def __len__(self):
        return len(self.texts)

    @property
    def targets(self) -> np.ndarray:
        """What the model is trained to output: the label ids."""
        return self.labels

    def subset(self, indices) -> "LabelledTexts":
        indices = np.asarray(indices, dtype=np.int64)
        return LabelledTexts(pick(self.texts, indices), self.labels[indices], self.label_names,
                             self.source, pick(self.texts_b, indices), pick(self.ids, indices))

    def class_counts(self) -> dict:
        counts = np.bincount(self.labels, minlength=len(self.label_names))
        return {name: int(c) for name, c in zip(self.label_names, counts)}


def pick(values: Optional[list], indices) -> Optional[list]:
    """`values[i]` for each of `indices` (None stays None)."""
    return None if values is None else [values[i] for i in indices]


def check_lengths(examples, targets, name: str) -> None:
    """The texts, second texts, ids and targets of `examples` are equally many."""
    for other, what in ((targets, name), (examples.texts_b, "second texts"),
                        (examples.ids, "ids")):
        if other is not None and len(other) != len(examples.texts):
            raise ValueError(f"{len(examples.texts)} texts but {len(other)} {what}.")


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
                        label_column="label", text_b_column: Optional[str] = None,
                        label_names: Optional[Sequence[str]] = None) -> LabelledTexts:
    """Loads one split of a text-classification task.

    Args:
        task: `imdb`, `folder`, `csv` or `jsonl` (see `TaskConfig`; GLUE's own files are read
            by `electra_tf.data.glue.load_glue`).
        data: path (`{split}` is replaced by the split name), or None for IMDB from tfds.
        split: `train` or `test` (any name for folders, tables and GLUE's own splits).
        text_b_column: for `csv`/`jsonl`, the column of each pair's second text (None: single
            texts).
        label_names: the classes a trained model knows; labels are then mapped onto them (and an
            unknown label is an error). Otherwise the classes are read from the data, sorted.
    """
    if data is not None:
        data = data.replace("{split}", split)
    if task == "imdb":
        result = _load_imdb(data, split)
    elif task == "folder":
        result = _load_folder(data, split)
    elif task in ("csv", "jsonl"):
        result = _load_table(data, text_column, label_column, text_b_column)
    else:
        raise DataError(f"Unknown task {task!r}: use imdb, folder, csv or jsonl.")
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
    report_invalid_utf8(root, stats, "file(s)")
    return LabelledTexts(texts, labels, list(dataset.class_names), f"{root}")


def _load_table(path, text_column, label_column, text_b_column) -> LabelledTexts:
    columns = [text_column, label_column] + ([text_b_column] if text_b_column else [])
    settings = ["task.text_column", "task.label_column", "task.text_b_column"]
    rows = read_table(path, columns, settings, what="labelled-text file")
    raw_labels = [row[1] for row in rows]
    names = sorted(set(raw_labels), key=lambda v: (not v.lstrip("-").isdigit(),
                                                   int(v) if v.lstrip("-").isdigit() else 0, v))
    labels = [names.index(v) for v in raw_labels]
    return LabelledTexts([row[0] for row in rows], labels, names, path,
                         [row[2] for row in rows] if text_b_column else None)


def _relabel(data: LabelledTexts, names: list) -> LabelledTexts:
    if data.label_names == names:
        return data
    unknown = sorted(set(data.label_names) - set(names))
    if unknown:
        raise DataError(f"{data.source} has labels {unknown} that the model does not know "
                        f"(it was trained on {names}).")
    mapping = np.array([names.index(n) for n in data.label_names], dtype=np.int32)
    return dataclasses.replace(data, labels=mapping[data.labels], label_names=names)
