"""GLUE (issue 51): every task's files in GLUE's own layout are read, and `electra-tf glue`
fine-tunes, scores, reports medians and the GLUE score, resumes, and writes test predictions in
the GLUE server's format -- on small fixture folders."""

from __future__ import annotations

import json
import os

import pytest

from electra_tf.cli import main
from electra_tf.data.glue import GLUE_TASKS, load_glue, load_glue_test, write_submission
from electra_tf.errors import DataError
from electra_tf.training.glue import glue_scores

SENTENCES = ["the film was good .", "a dull and long film", "great acting , weak plot",
             "i would watch it again", "not worth the ticket", "what's \"the best part",
             "an odd , quiet story", "the ending was bad"]

# Each task's header rows as GLUE's download_glue_data.py writes them (None: no header).
HEADERS = {
    "CoLA": (None, "index\tsentence"),
    "SST-2": ("sentence\tlabel", "index\tsentence"),
    "MRPC": ("Quality\t#1 ID\t#2 ID\t#1 String\t#2 String",
             "index\t#1 ID\t#2 ID\t#1 String\t#2 String"),
    "STS-B": ("index\tgenre\tfilename\tyear\told_index\tsource1\tsource2\tsentence1\tsentence2"
              "\tscore", "index\tgenre\tfilename\tyear\told_index\tsource1\tsource2\tsentence1"
                         "\tsentence2"),
    "QQP": ("id\tqid1\tqid2\tquestion1\tquestion2\tis_duplicate", "id\tquestion1\tquestion2"),
    "MNLI": ("index\tpromptID\tpairID\tgenre\tsentence1_binary_parse\tsentence2_binary_parse\t"
             "sentence1_parse\tsentence2_parse\tsentence1\tsentence2\tlabel1\tgold_label",
             "index\tpromptID\tpairID\tgenre\tsentence1_binary_parse\tsentence2_binary_parse\t"
             "sentence1_parse\tsentence2_parse\tsentence1\tsentence2"),
    "QNLI": ("index\tquestion\tsentence\tlabel", "index\tquestion\tsentence"),
    "RTE": ("index\tsentence1\tsentence2\tlabel", "index\tsentence1\tsentence2"),
    "WNLI": ("index\tsentence1\tsentence2\tlabel", "index\tsentence1\tsentence2"),
}


def _row(task, i, a, b, label, test):
    """One line of `task`'s file in GLUE's column order."""
    name = task.name
    if name == "CoLA":
        return f"{i}\t{a}" if test else f"gj04\t{label}\t\t{a}"
    if name == "SST-2":
        return f"{i}\t{a}" if test else f"{a}\t{label}"
    if name == "MRPC":
        return f"{i}\t1{i}\t2{i}\t{a}\t{b}" if test else f"{label}\t1{i}\t2{i}\t{a}\t{b}"
    if name == "STS-B":
        head = f"{i}\tmain-news\tfile\t2012\t{i}\tnone\tnone\t{a}\t{b}"
        return head if test else f"{head}\t{label}"
    if name == "QQP":
        return f"{i}\t{a}\t{b}" if test else f"{i}\t{i}\t{i + 1}\t{a}\t{b}\t{label}"
    if name == "MNLI":
        head = f"{i}\t{i}\t{i}e\tfiction\t( {a} )\t( {b} )\t(ROOT {a})\t(ROOT {b})\t{a}\t{b}"
        return head if test else f"{head}\t{label}\t{label}"
    return f"{i}\t{a}\t{b}" if test else f"{i}\t{a}\t{b}\t{label}"


def write_glue_folder(root, rows=24):
    """A GLUE data folder with every task's train, dev and test files in GLUE's layout."""
    for task in GLUE_TASKS.values():
        folder = root / task.name
        folder.mkdir(parents=True)
        header, test_header = HEADERS[task.name]
        for split, count in (("train", rows), *((s, 8) for s in task.dev_splits),
                             *((s, 6) for s in task.test_splits)):
            test = split in task.test_splits
            lines = [test_header] if test else ([header] if header else [])
            for i in range(count):
                a, b = SENTENCES[i % 8], SENTENCES[(3 * i + 1) % 8]
                label = (f"{(i % 6) * 0.8:.1f}" if task.regression
                         else task.label_names[i % len(task.label_names)])
                lines.append(_row(task, i, a, b, label, test))
            (folder / f"{split}.tsv").write_text("\n".join(lines) + "\n", encoding="utf-8")
    return root


def test_every_task_reads_its_glue_files(tmp_path):
    write_glue_folder(tmp_path)
    for task in GLUE_TASKS.values():
        train = load_glue(task.name, str(tmp_path / task.name), "train")
        assert len(train) == 24 and train.texts[0] == SENTENCES[0], task.name
        assert (train.texts_b is None) == (task.text_b is None), task.name
        if task.regression:
            assert list(train.scores[:3]) == pytest.approx([0.0, 0.8, 1.6])
        else:
            assert train.label_names == list(task.label_names)
            assert list(train.labels[:2]) == [0, 1 % len(task.label_names)]
        for split in task.dev_splits:
            assert len(load_glue(task.name, str(tmp_path / task.name), split)) == 8
        ids, texts, texts_b = load_glue_test(task.name, str(tmp_path / task.name),
                                             task.test_splits[0])
        assert ids == [str(i) for i in range(6)] and texts[5] == SENTENCES[5]
    # GLUE's files are not CSV-quoted: an unbalanced quote is text.
    qqp = load_glue("qqp", str(tmp_path / "QQP"), "train")
    assert qqp.texts[5] == 'what\'s "the best part'


def test_every_test_split_has_its_submission_file(tmp_path):
    """The server's file names (MNLI's two test splits as MNLI-m / MNLI-mm) and values (label
    names as the task's files write them; STS-B clipped to [0, 5])."""
    for task in GLUE_TASKS.values():
        for split in task.test_splits:
            predictions = ([-0.5, 2.25, 7.0] if task.regression
                           else [task.label_names[i % len(task.label_names)] for i in range(3)])
            write_submission(task.name, split, ["4", "5", "6"], predictions, str(tmp_path))
    assert {name[:-4] for name in os.listdir(tmp_path)} == {
        "CoLA", "SST-2", "MRPC", "STS-B", "QQP", "MNLI-m", "MNLI-mm", "QNLI", "RTE", "WNLI"}
    assert (tmp_path / "STS-B.tsv").read_text().splitlines() == [
        "index\tprediction", "4\t0.000", "5\t2.250", "6\t5.000"]
    assert (tmp_path / "RTE.tsv").read_text().splitlines()[1:] == [
        "4\tentailment", "5\tnot_entailment", "6\tentailment"]


def test_glue_errors_are_one_line(tmp_path):
    write_glue_folder(tmp_path)
    with pytest.raises(DataError, match="no dev.tsv .* splits are train, dev_matched"):
        load_glue("MNLI", str(tmp_path / "MNLI"), "dev")
    (tmp_path / "RTE" / "train.tsv").write_text("index\tsentence1\tsentence2\tlabel\n"
                                                "0\ta\tb\tmaybe\n")
    with pytest.raises(DataError, match="label 'maybe' is not one of GLUE RTE's"):
        load_glue("RTE", str(tmp_path / "RTE"), "train")
    with pytest.raises(DataError, match="not a GLUE task"):
        load_glue("SQuAD", str(tmp_path), "train")


def test_glue_score_averages_task_scores_and_leaves_out_wnli():
    scores = glue_scores({"CoLA": 0.5, "MRPC": 0.8, "WNLI": 0.2})
    assert scores["glue_score"] == pytest.approx(0.5)
    assert scores["glue_score_without_wnli"] == pytest.approx(0.65)


@pytest.mark.slow(seconds=150)
def test_glue_runner_scores_every_task_resumes_and_writes_a_submission(tiny_pretrained_run,
                                                                      tmp_path):
    data = write_glue_folder(tmp_path / "glue_data")
    out = tmp_path / "glue"
    tasks = list(GLUE_TASKS)
    command = ["glue", "--tasks", "all", "--data-dir", str(data), "--pretrained",
               tiny_pretrained_run, "--out-dir", str(out), "--seeds", "1", "--predict-test",
               "--quiet"]
    for setting in ("training.epochs=1", "training.evaluations_per_epoch=1",
                    "preprocessing.max_seq_length=24", "training.batch_size=8"):
        command += ["--set", setting]
    assert main(command) == 0
    results = json.loads((out / "glue_results.json").read_text())
    assert list(results["tasks"]) == tasks
    assert set(results["tasks"]["MNLI"]["metrics"]) == {"accuracy_m", "accuracy_mm"}
    assert set(results["tasks"]["MRPC"]["metrics"]) == {"accuracy", "f1"}
    assert set(results["tasks"]["STS-B"]["metrics"]) == {"pearson", "spearman"}
    assert set(results["tasks"]["CoLA"]["metrics"]) == {"mcc"}
    # Each task's score is its metrics' mean; the GLUE score their mean.
    mrpc = results["tasks"]["MRPC"]
    assert mrpc["score"] == pytest.approx(
        (mrpc["metrics"]["accuracy"]["median"] + mrpc["metrics"]["f1"]["median"]) / 2)
    assert results["glue_score"] == pytest.approx(
        sum(t["score"] for t in results["tasks"].values()) / 9)
    # The dev scores are what `evaluate` stored in each run.
    stored = json.loads((out / "CoLA" / "seed_0" / "metrics.json").read_text())
    assert results["tasks"]["CoLA"]["metrics"]["mcc"]["per_seed"] == [stored["dev"]["mcc"]]

    submission = out / "submission"
    expected = {"CoLA", "SST-2", "MRPC", "STS-B", "QQP", "MNLI-m", "MNLI-mm", "QNLI", "RTE",
                "WNLI"}
    assert {name[:-4] for name in os.listdir(submission)} == expected
    rows = (submission / "MNLI-mm.tsv").read_text().splitlines()
    assert rows[0] == "index\tprediction" and len(rows) == 7
    assert all(r.split("\t")[1] in GLUE_TASKS["MNLI"].label_names for r in rows[1:])
    scores = [float(r.split("\t")[1]) for r in (submission / "STS-B.tsv").read_text()
              .splitlines()[1:]]
    assert all(0.0 <= s <= 5.0 for s in scores)

    # Again: every run is finished and scored, so nothing is trained or scored again.
    before = {p: os.path.getmtime(p) for p in out.glob("*/seed_0/metrics.json")}
    assert main(command) == 0
    assert {p: os.path.getmtime(p) for p in out.glob("*/seed_0/metrics.json")} == before
