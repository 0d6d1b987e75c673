"""Predict with an exported SavedModel or a fine-tuning output directory: labels of texts or
text pairs (classifiers), or scores (regressors)."""

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
    """`predictor(texts)` -> `{"label": [n] str, "label_id": [n] int, "probabilities": [n, L]}`
    for a classifier, `{"score": [n] float}` for a regressor, and for a tagger (named
    entities) `{"entities": [n] lists of {"text", "type", "start", "end", "score"} (character
    offsets), "words": [n] lists, "tags": [n] lists}`; for a reader (question answering),
    given `(question, context)` pairs, `{"answer": [n] str ("" for none), "answer_start",
    "answer_end": [n] character offsets (-1), "score", "no_answer_score", "has_answer"}`.

    Wraps either a SavedModel written by `electra-tf export` (its `serving_default` signature,
    tokenizer inside) or a fine-tuning output directory (the Keras model and its preprocessor).
    Both give the same numbers. A pair model (`pairs`) takes `(text_a, text_b)` tuples.
    """

    def __init__(self, classify, label_names, source: str, pairs: bool = False,
                 regression: bool = False, tagger: bool = False, reader: bool = False):
        self._classify = classify  # (text_a [, text_b]) string tensors -> output dict
        self.label_names = list(label_names)  # a tagger's: its tags
        self.source = source
        self.pairs = pairs
        self.regression = regression
        self.tagger = tagger
        self.reader = reader  # question answering: (question, context) pairs

    def __call__(self, texts) -> dict:
        texts = list(texts)
        columns = list(zip(*texts)) if self.pairs else [texts]
        if self.pairs and not texts:
            columns = [[], []]
        outputs = self._classify(*(tf.constant(list(c), dtype=tf.string) for c in columns))
        if self.regression:
            return {"score": outputs["score"].numpy()}
        if self.tagger:
            return _tagger_results(outputs)
        if self.reader:
            return {"answer": [a.decode("utf-8") for a in outputs["answer"].numpy()],
                    **{key: outputs[key].numpy() for key in (
                        "answer_start", "answer_end", "score", "no_answer_score",
                        "has_answer")}}
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
        size = (lambda i: len(texts[i][0]) + len(texts[i][1])) if self.pairs else (
            lambda i: len(texts[i]))
        order = sorted(range(len(texts)), key=size)
        parts = [self([texts[i] for i in order[start:start + batch_size]])
                 for start in range(0, len(order), batch_size)]
        # Back to input order: position order[k] holds the k-th sorted result.
        restore = np.empty(len(order), dtype=np.int64)
        restore[order] = np.arange(len(order))
        merged = {key: np.concatenate([_column(part[key]) for part in parts])
                  for key in parts[0]}
        for start in range(0, len(texts), batch_size):
            rows = restore[start:start + batch_size]
            yield {key: (list(values[rows]) if values.dtype == object else values[rows])
                   for key, values in merged.items()}


def _column(values) -> np.ndarray:
    """One result key of a batch as an array with one row per text: lists (labels, a tagger's
    entities) as a 1-D object array, whatever their lengths."""
    if isinstance(values, np.ndarray):
        return values
    column = np.empty(len(values), dtype=object)
    for i, value in enumerate(values):
        column[i] = value
    return column


def _tagger_results(outputs) -> dict:
    """A tagger signature's padded outputs -> per text lists of words, tags and entities."""
    def strings(key):
        return [[s.decode("utf-8") for s in row] for row in outputs[key].numpy()]

    words, tags = strings("words"), strings("tags")
    texts, types = strings("entity_text"), strings("entity_type")
    starts, ends = outputs["entity_start"].numpy(), outputs["entity_end"].numpy()
    scores = outputs["entity_score"].numpy()
    results = {"entities": [], "words": [], "tags": []}
    for i, (count, found) in enumerate(zip(outputs["word_count"].numpy(),
                                           outputs["entity_count"].numpy())):
        results["words"].append(words[i][:count])
        results["tags"].append(tags[i][:count])
        results["entities"].append([{"text": texts[i][k], "type": types[i][k],
                                     "start": int(starts[i][k]), "end": int(ends[i][k]),
                                     "score": round(float(scores[i][k]), 6)}
                                    for k in range(found)])
    return results


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
        if "encode_ids" in loaded.signatures or "serving_default" not in loaded.signatures:
            raise CheckpointError(f"{path} is an encoder export (feature extraction), not a "
                                  "classifier; export a fine-tuned model to predict labels.")
        signature = loaded.signatures["serving_default"]
        inputs = sorted(signature.structured_input_signature[1])  # ["text"] or text_a, text_b
        reader = "answer" in signature.structured_outputs
        regression = "score" in signature.structured_outputs and not reader
        tagger = "entity_text" in signature.structured_outputs
        if reader:
            inputs = ["question", "context"]
        names = loaded.tag_names if tagger else None if regression or reader \
            else loaded.label_names
        label_names = [] if names is None else [s.decode("utf-8") for s in names.numpy()]
        return Predictor(lambda *columns: signature(**dict(zip(inputs, columns))), label_names,
                         path, pairs=len(inputs) == 2, regression=regression, tagger=tagger,
                         reader=reader)
    from electra_tf.pretrained.finetuned import load_finetuned
    from electra_tf.runs.layouts import FinetunePaths

    if FinetunePaths(path).has_classifier():
        from electra_tf.tasks import get_task

        classifier, preprocessor, _, config = load_finetuned(path)
        task = get_task(config.task)
        module = task.serving_module(classifier, preprocessor, os.path.join(path, "vocab.txt"))
        serve = module.signatures()["serving_default"]
        regression, tagger = task.type == "regression", task.type == "token_classification"
        reader = task.type == "question_answering"
        names = [] if regression or reader else classifier.tag_names if tagger \
            else classifier.label_names
        # A closure, not the bound tf.function: that holds only a weak reference to `module`.
        return Predictor(lambda *columns: (module, serve(*columns))[1], names, path,
                         pairs=reader or getattr(task, "pairs", False),
                         regression=regression, tagger=tagger, reader=reader)
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


def read_pairs(texts: list[str], source: str,
               keys: tuple[str, str] = ("text_a", "text_b")) -> list[tuple[str, str]]:
    """`(text_a, text_b)` from lines `TEXT_A<TAB>TEXT_B`, or JSON objects with `text_a` and
    `text_b` (a line starting with `{`; a reader's: `keys` = question, context); a line that
    is neither is a one-line error."""
    import json

    first, second = keys
    pairs = []
    for number, line in enumerate(texts, start=1):
        record = None
        if line.lstrip().startswith("{"):
            try:
                record = json.loads(line)
            except json.JSONDecodeError:
                record = None
            if not isinstance(record, dict) or not {first, second} <= set(record):
                raise DataError(f"{source} line {number}: a JSON line needs \"{first}\" and "
                                f"\"{second}\".")
            pairs.append((str(record[first]), str(record[second])))
        elif "\t" in line:
            text_a, text_b = line.split("\t", 1)
            pairs.append((text_a, text_b))
        else:
            raise DataError(f"{source} line {number}: this model reads pairs; give each as "
                            f"{first.upper()}<TAB>{second.upper()} or {{\"{first}\": ..., "
                            f"\"{second}\": ...}}.")
    return pairs


def format_answer(pair: tuple[str, str], result: dict, row: int, as_json: bool) -> str:
    """A reader's output line: `answer<TAB>[start:end]<TAB>score<TAB>question` ("(no answer)"
    when there is none), or a JSON object."""
    question, _ = pair
    answer, start, end = result["answer"][row], int(result["answer_start"][row]), \
        int(result["answer_end"][row])
    if as_json:
        import json

        return json.dumps({"question": question, "answer": answer, "start": start, "end": end,
                           "score": round(float(result["score"][row]), 6),
                           "no_answer_score": round(float(result["no_answer_score"][row]), 6)},
                          ensure_ascii=False)
    shown = f"{answer}\t[{start}:{end}]" if result["has_answer"][row] else "(no answer)\t-"
    return f"{shown}\t{float(result['score'][row]):.3f}\t{' '.join(question.split())}"


def format_entities(text: str, entities: list[dict], as_json: bool) -> str:
    """A tagger's output line: `TYPE "entity" [start:end]` for each entity, `;`-separated,
    `<TAB>text` (or a JSON object with the entities' character offsets)."""
    if as_json:
        import json

        return json.dumps({"text": text, "entities": entities}, ensure_ascii=False)
    found = "; ".join(f"{e['type']} {e['text']!r} [{e['start']}:{e['end']}]" for e in entities)
    preview = " ".join(text.split())
    preview = preview if len(preview) <= 80 else preview[:77] + "..."
    return f"{found or '(no entities)'}\t{preview}"


def format_prediction(text, label: str | None, probabilities, label_names, as_json: bool,
                      score: float | None = None) -> str:
    """One output line: `label<TAB>probability<TAB>text` (a regressor: `score<TAB>text`) or a
    JSON object. `text` is a string or a pair of strings."""
    shown = {"text_a": text[0], "text_b": text[1]} if isinstance(text, tuple) else {"text": text}
    if as_json:
        import json

        if score is not None:
            return json.dumps({**shown, "score": round(float(score), 6)}, ensure_ascii=False)
        label_id = label_names.index(label)
        return json.dumps({**shown, "label": label,
                           "probability": round(float(probabilities[label_id]), 6),
                           "probabilities": {name: round(float(p), 6)
                                             for name, p in zip(label_names, probabilities)}},
                          ensure_ascii=False)
    preview = " ".join(" | ".join(text).split() if isinstance(text, tuple) else text.split())
    preview = preview if len(preview) <= 80 else preview[:77] + "..."
    if score is not None:
        return f"{score:.4f}\t{preview}"
    return f"{label}\t{probabilities[label_names.index(label)]:.4f}\t{preview}"
