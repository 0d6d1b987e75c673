"""The GLUE benchmark's tasks: their files' column layouts, label sets and metrics, reading a
task's folder (the layout of GLUE's `download_glue_data.py`) or `tfds:glue/NAME`, and writing
test-set predictions in the format gluebenchmark.com accepts.

    glue_data/CoLA/{train,dev,test}.tsv          glue_data/MNLI/{train,dev_matched,dev_mismatched,
    glue_data/SST-2/...  MRPC/  STS-B/  QQP/                     test_matched,test_mismatched}.tsv
    glue_data/QNLI/...   RTE/   WNLI/

GLUE's TSV files are read as plain tab-separated text (no CSV quoting: QQP and MNLI hold
unbalanced quotes), as the GLUE baselines and the ELECTRA authors read them.
"""

from __future__ import annotations

import dataclasses
import os
from typing import Optional, Union

from electra_tf.data.classification import LabelledTexts
from electra_tf.data.corpus import CorpusStats, decode_line
from electra_tf.data.regression import ScoredTexts, parse_score
from electra_tf.data.text_tables import read_decoded_text, text_lines
from electra_tf.errors import DataError

Column = Union[str, int]  # a header name, or a position for a file without a header


@dataclasses.dataclass(frozen=True)
class GlueTask:
    """One GLUE task.

    Attributes:
        name: GLUE's name (`CoLA`, `SST-2`, ...), also the folder's and the submission file's.
        text_a, text_b, label: the columns of the labelled files (`text_b` None: single texts).
        label_names: the label values as the files write them; () for regression (STS-B).
        metrics: what GLUE reports, in `electra_tf.tasks.glue_metrics` names.
        epochs: the ELECTRA paper's fine-tuning epochs (3; 10 for RTE and STS-B).
        dev_splits, test_splits: the file names (without `.tsv`) of the development and test
            sets; each test split's submission file name is in `submission_names`.
        tfds_name: the `tfds` GLUE config (`glue/cola`, ...); `tfds_text_a/b` its features.
        header: whether the labelled files start with a header row (CoLA's do not).
        test_id: the test files' id column.
    """

    name: str
    text_a: Column
    text_b: Optional[Column]
    label: Column
    label_names: tuple
    metrics: tuple
    tfds_name: str
    tfds_text_a: str
    tfds_text_b: Optional[str] = None
    epochs: int = 3
    dev_splits: tuple = ("dev",)
    test_splits: tuple = ("test",)
    submission_names: tuple = ()
    header: bool = True
    test_text_a: Optional[str] = None  # when the test file names the column differently
    test_id: str = "index"

    @property
    def regression(self) -> bool:
        return not self.label_names

    @property
    def task_type(self) -> str:
        return "regression" if self.regression else "sequence_classification"

    def submission_name(self, test_split: str) -> str:
        names = self.submission_names or (self.name,)
        return names[self.test_splits.index(test_split)]


_BINARY = ("0", "1")
_NLI = ("entailment", "not_entailment")

GLUE_TASKS = {task.name: task for task in (
    GlueTask("CoLA", 3, None, 1, _BINARY, ("mcc",), "cola", "sentence", header=False,
             test_text_a="sentence"),
    GlueTask("SST-2", "sentence", None, "label", _BINARY, ("accuracy",), "sst2", "sentence"),
    GlueTask("MRPC", "#1 String", "#2 String", "Quality", _BINARY, ("accuracy", "f1"), "mrpc",
             "sentence1", "sentence2"),
    GlueTask("STS-B", "sentence1", "sentence2", "score", (), ("pearson", "spearman"), "stsb",
             "sentence1", "sentence2", epochs=10),
    GlueTask("QQP", "question1", "question2", "is_duplicate", _BINARY, ("accuracy", "f1"), "qqp",
             "question1", "question2", test_id="id"),
    GlueTask("MNLI", "sentence1", "sentence2", "gold_label",
             ("contradiction", "entailment", "neutral"), ("accuracy",), "mnli", "premise",
             "hypothesis", dev_splits=("dev_matched", "dev_mismatched"),
             test_splits=("test_matched", "test_mismatched"),
             submission_names=("MNLI-m", "MNLI-mm")),
    GlueTask("QNLI", "question", "sentence", "label", _NLI, ("accuracy",), "qnli", "question",
             "sentence"),
    GlueTask("RTE", "sentence1", "sentence2", "label", _NLI, ("accuracy",), "rte", "sentence1",
             "sentence2", epochs=10),
    GlueTask("WNLI", "sentence1", "sentence2", "label", _BINARY, ("accuracy",), "wnli",
             "sentence1", "sentence2"),
)}

_TFDS_SPLITS = {"dev": "validation", "dev_matched": "validation_matched",
                "dev_mismatched": "validation_mismatched"}


def glue_task(name: Optional[str]) -> GlueTask:
    """The task called `name` (case and dashes ignored: `sst2`, `SST-2`, `sts-b` all work)."""
    key = (name or "").replace("-", "").lower()
    for task in GLUE_TASKS.values():
        if task.name.replace("-", "").lower() == key:
            return task
    raise DataError(f"task.glue_task {name!r} is not a GLUE task; choose one of "
                    f"{', '.join(GLUE_TASKS)}.")


def load_glue(name: str, data: Optional[str], split: str):
    """One labelled split (`train`, `dev`, MNLI's `dev_matched`/`dev_mismatched`) of a GLUE task,
    from its folder `data` or, when `data` is None or `tfds:...`, from tfds.

    Returns:
        `LabelledTexts` (label names as the task defines them, in its order) or, for STS-B,
        `ScoredTexts`.
    """
    task = glue_task(name)
    if split in task.test_splits:
        raise DataError(f"GLUE's {split} split has no labels to score; 'electra-tf glue "
                        "--predict-test' writes its predictions for the GLUE server.")
    if data is None or data.startswith("tfds:"):
        rows = _tfds_rows(task, data, split)
        source = f"tfds:glue/{task.tfds_name} [{split}]"
    else:
        path = _split_file(task, data, split)
        rows = [(r[task.text_a], r[task.text_b] if task.text_b is not None else None,
                 r[task.label]) for _, r in _tsv_rows(path, task.header, [
                     task.text_a, task.label] + ([task.text_b] if task.text_b is not None
                                                 else []))]
        source = path
    return _examples(task, rows, source)


def load_glue_test(name: str, data: str, split: str = "test") -> tuple[list, list, list | None]:
    """`(ids, texts, texts_b)` of a GLUE test split (no labels) read from the task's folder."""
    task = glue_task(name)
    if split not in task.test_splits:
        raise DataError(f"GLUE {task.name} has the test split(s) {list(task.test_splits)}, not "
                        f"{split!r}.")
    text_a = task.test_text_a or task.text_a
    columns = [task.test_id, text_a] + ([task.text_b] if task.text_b is not None else [])
    rows = [r for _, r in _tsv_rows(_split_file(task, data, split), True, columns)]
    return ([r[task.test_id] for r in rows], [r[text_a] for r in rows],
            [r[task.text_b] for r in rows] if task.text_b is not None else None)


def write_submission(task_name: str, test_split: str, ids, predictions, out_dir: str) -> str:
    """Writes `OUT_DIR/<submission name>.tsv` (`index<TAB>prediction`, the GLUE server's format:
    label values as the task's files write them, STS-B scores clipped to [0, 5]); returns the
    path."""
    from electra_tf.files import write_text_atomically

    task = glue_task(task_name)
    lines = ["index\tprediction"]
    for example_id, prediction in zip(ids, predictions):
        if task.regression:
            prediction = f"{min(5.0, max(0.0, float(prediction))):.3f}"
        lines.append(f"{example_id}\t{prediction}")
    os.makedirs(out_dir, exist_ok=True)
    path = os.path.join(out_dir, f"{task.submission_name(test_split)}.tsv")
    write_text_atomically(path, "\n".join(lines) + "\n")
    return path


def _split_file(task: GlueTask, folder: str, split: str) -> str:
    if not os.path.isdir(folder):
        raise DataError(f"GLUE {task.name}: {folder!r} is not a folder; give the task's folder "
                        f"of GLUE's data (e.g. glue_data/{task.name}), or tfds:glue/"
                        f"{task.tfds_name} online.")
    path = os.path.join(folder, f"{split}.tsv")
    if not os.path.isfile(path):
        known = ["train", *task.dev_splits, *task.test_splits]
        raise DataError(f"GLUE {task.name}: no {split}.tsv in {folder}; the task's splits are "
                        f"{', '.join(known)}.")
    return path


def _tsv_rows(path: str, header: bool, columns: list):
    """`(line number, {column: value})` for every row of a GLUE TSV file, the values stripped.
    A row too short for a column, or a header without one, is a one-line error."""
    lines = [(number, line) for number, line in
             enumerate(text_lines(read_decoded_text(path)), 1) if line.strip()]
    names = None
    if header:
        if not lines:
            raise DataError(f"{path} is empty; give GLUE's file with its header row.")
        names = lines[0][1].split("\t")
        missing = [c for c in columns if isinstance(c, str) and c not in names]
        if missing:
            raise DataError(f"{path}: the header has no column(s) {missing}; is this GLUE's own "
                            "file for the task?")
        lines = lines[1:]
    rows = []
    for number, line in lines:
        fields = line.split("\t")
        row = {}
        for column in columns:
            index = names.index(column) if isinstance(column, str) else column
            if index >= len(fields):
                raise DataError(f"{path}:{number}: {len(fields)} tab-separated fields, too few "
                                f"for the column {column!r}; is the file cut or not GLUE's?")
            row[column] = fields[index].strip()
        rows.append((number, row))
    return rows


def _tfds_rows(task: GlueTask, data: Optional[str], split: str):
    import tensorflow_datasets as tfds

    name = data[len("tfds:"):] if data else f"glue/{task.tfds_name}"
    tfds_split = _TFDS_SPLITS.get(split, split)
    try:
        dataset, info = tfds.load(name, split=tfds_split, with_info=True)
    except Exception as err:  # tfds raises many types: offline, unknown name, unknown split
        raise DataError(f"Cannot load tfds:{name} split {tfds_split!r} ({type(err).__name__}: "
                        f"{err}). Offline? Give the task's GLUE folder as task.data.") from None
    tfds_names = None if task.regression else info.features["label"].names
    stats, rows = CorpusStats(), []
    for example in dataset.as_numpy_iterator():
        text_b = (decode_line(example[task.tfds_text_b], stats)
                  if task.tfds_text_b is not None else None)
        label = example["label"]
        if tfds_names is not None:  # tfds's label names where the files use them, else ids
            label = (tfds_names[label] if tfds_names[label] in task.label_names
                     else str(int(label)))
        rows.append((decode_line(example[task.tfds_text_a], stats), text_b, str(label)))
    return rows


def _examples(task: GlueTask, rows, source: str):
    if not rows:
        raise DataError(f"{source} holds no examples.")
    texts = [row[0] for row in rows]
    texts_b = [row[1] for row in rows] if task.text_b is not None else None
    if task.regression:
        return ScoredTexts(texts, [parse_score(row[2], f"{source} example {i}", "score")
                                   for i, row in enumerate(rows, 1)], source, texts_b)
    labels = []
    for i, row in enumerate(rows, 1):
        if row[2] not in task.label_names:
            raise DataError(f"{source} example {i}: label {row[2]!r} is not one of GLUE "
                            f"{task.name}'s {list(task.label_names)}.")
        labels.append(task.label_names.index(row[2]))
    return LabelledTexts(texts, labels, list(task.label_names), source, texts_b)
