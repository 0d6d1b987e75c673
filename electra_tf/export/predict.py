"""Classify raw texts with an exported SavedModel or a fine-tuning output directory."""

from __future__ import annotations

import importlib
import logging
import os
import sys
from typing import Iterable, Iterator

import numpy as np
import tensorflow as tf

from electra_tf.errors import CheckpointError, DataError

logger = logging.getLogger(__name__)


class Predictor:
    """`predictor(texts)` -> `{"label": [n] str, "label_id": [n] int, "probabilities": [n, L]}`.

    Wraps either a SavedModel written by `electra-tf export` (its `serving_default` signature,
    tokenizer inside) or a fine-tuning output directory (the Keras classifier and its
    preprocessor). Both give the same numbers.
    """

    def __init__(self, classify, label_names, source: str):
        self._classify = classify
        self.label_names = list(label_names)
        self.source = source

    def __call__(self, texts) -> dict:
        outputs = self._classify(tf.constant(list(texts), dtype=tf.string))
        return {"label": [s.decode("utf-8") for s in outputs["label"].numpy()],
                "label_id": outputs["label_id"].numpy().astype(int),
                "probabilities": outputs["probabilities"].numpy()}

    def predict_batches(self, texts: Iterable[str], batch_size: int = 32,
                        sort_window: int = 8) -> Iterator[dict]:
        """Yields one result dict per batch of at most `batch_size` texts, in input order.

        Each run of `sort_window` batches is classified in order of text length and put back in
        input order: a batch then pads only to texts of similar length, which on mixed-length
        input (reviews of 10 to 2,000 pieces) saves most of the padding work. Results do not
        depend on the batching (the encoder masks padding). `sort_window=1` keeps arrival order.
        """
        if batch_size < 1 or sort_window < 1:
            raise ValueError(f"batch_size and sort_window must be at least 1, got {batch_size} "
                             f"and {sort_window}.")
        window = []
        for text in texts:
            window.append(text)
            if len(window) == batch_size * sort_window:
                yield from self._classify_window(window, batch_size)
                window = []
        if window:
            yield from self._classify_window(window, batch_size)

    def _classify_window(self, texts: list, batch_size: int) -> Iterator[dict]:
        """`texts` classified in batches of similar length; yields per input-order batch."""
        order = sorted(range(len(texts)), key=lambda i: len(texts[i]))
        parts = [self([texts[i] for i in order[start:start + batch_size]])
                 for start in range(0, len(order), batch_size)]
        # Back to input order: position order[k] holds the k-th sorted result.
        restore = np.empty(len(order), dtype=np.int64)
        restore[order] = np.arange(len(order))
        merged = {"label": [label for part in parts for label in part["label"]],
                  "label_id": np.concatenate([part["label_id"] for part in parts]),
                  "probabilities": np.concatenate([part["probabilities"] for part in parts])}
        for start in range(0, len(texts), batch_size):
            rows = restore[start:start + batch_size]
            yield {"label": [merged["label"][k] for k in rows],
                   "label_id": merged["label_id"][rows],
                   "probabilities": merged["probabilities"][rows]}


def load_predictor(path: str, trust_saved_model: bool = False) -> Predictor:
    """A `Predictor` for an export directory (`saved_model.pb`) or a finetune `--out-dir`.

    A SavedModel is checked before it is loaded (`electra_tf.export.op_check`): one holding ops
    an `electra-tf export` never contains (file I/O, Python callbacks, ...) is refused unless
    `trust_saved_model`.
    """
    from electra_tf.export.op_check import check_saved_model_ops
    from electra_tf.export.saved_model import is_saved_model

    if not os.path.exists(path):
        raise CheckpointError(f"Model path {path!r} does not exist: give the directory written "
                              "by 'electra-tf export' or the --out-dir of 'electra-tf finetune'.")
    if is_saved_model(path):
        check_saved_model_ops(path, trust=trust_saved_model)
        importlib.import_module("tensorflow_text")  # registers the tokenizer ops in the graph

        loaded = tf.saved_model.load(path)
        if "classify_ids" not in loaded.signatures:
            raise CheckpointError(f"{path} is an encoder export (feature extraction), not a "
                                  "classifier; export a fine-tuned model to predict labels.")
        signature = loaded.signatures["serving_default"]
        label_names = [s.decode("utf-8") for s in loaded.label_names.numpy()]
        return Predictor(lambda texts: signature(text=texts), label_names, path)
    from electra_tf.pretrained.finetuned import load_finetuned
    from electra_tf.runs.layouts import FinetunePaths

    if FinetunePaths(path).has_classifier():
        from electra_tf.tasks import get_task

        classifier, preprocessor, _, config = load_finetuned(path)
        module = get_task(config.task).serving_module(classifier, preprocessor,
                                                      os.path.join(path, "vocab.txt"))
        # A closure, not the bound tf.function: that holds only a weak reference to `module`.
        return Predictor(lambda texts: module.classify_text(texts), classifier.label_names, path)
    raise CheckpointError(f"{path} is neither an 'electra-tf export' directory (saved_model.pb) "
                          "nor a finished 'electra-tf finetune' run (classifier.keras).")


def read_texts(file=None, stream=None) -> tuple[list[str], int]:
    """Texts, one per line, from `file` (a path) or `stream` (binary, e.g. stdin).

    Bytes that are not UTF-8 are replaced by U+FFFD rather than failing the whole file; the
    number of lines that needed it is returned so the caller can report it.

    Returns:
        `(texts, lines_with_invalid_utf8)`.
    """
    if file is not None:
        if not os.path.isfile(file):
            raise DataError(f"Input file {file!r} does not exist.")
        with open(file, "rb") as f:
            raw = f.read()
    else:
        raw = (stream or sys.stdin.buffer).read()
    texts, invalid = [], 0
    for line in raw.splitlines():
        try:
            texts.append(line.decode("utf-8"))
        except UnicodeDecodeError:
            invalid += 1
            texts.append(line.decode("utf-8", errors="replace"))
    return texts, invalid


def format_prediction(text: str, label: str, probabilities: np.ndarray, label_names,
                      as_json: bool) -> str:
    """One output line: `label<TAB>probability<TAB>text` or a JSON object."""
    label_id = label_names.index(label)
    if as_json:
        import json

        return json.dumps({"text": text, "label": label,
                           "probability": round(float(probabilities[label_id]), 6),
                           "probabilities": {name: round(float(p), 6)
                                             for name, p in zip(label_names, probabilities)}},
                          ensure_ascii=False)
    preview = " ".join(text.split())
    preview = preview if len(preview) <= 80 else preview[:77] + "..."
    return f"{label}\t{probabilities[label_id]:.4f}\t{preview}"
