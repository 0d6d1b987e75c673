"""Sentence pairs and regression (issue 51): packing `[CLS] a [SEP] b [SEP]` with the authors'
truncation, the metrics GLUE reports against scikit-learn/scipy, the streaming Pearson metric,
the table readers' one-line errors, and pair / regression models trained, exported and served
without electra_tf."""

from __future__ import annotations

import csv
import json

import numpy as np
import pytest
import tensorflow as tf
from serving_helpers import serve_without_electra_tf

from electra_tf.cli import main
from electra_tf.data import SAMPLE_LABELLED
from electra_tf.data.preprocessor import ClassificationPreprocessor, truncate_pair
from electra_tf.data.tokenizer import WordPieceTokenizer
from electra_tf.tasks.regression import PearsonCorrelation
from electra_tf.tasks.scoring import classification_metrics, regression_metrics

WORDS = ["[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]", "a", "b", "c", "d", "e", "the", "film",
         "was", "good", "bad", "sep", "[", "]"]


def _authors_truncation(length_a, length_b, budget):
    """google-research/electra's `_truncate_seq_pair`, on lengths."""
    while length_a + length_b > budget:
        if length_a > length_b:
            length_a -= 1
        else:
            length_b -= 1
    return length_a, length_b


def test_pair_truncation_is_the_authors_longest_first_loop():
    rng = np.random.default_rng(0)
    lengths_a, lengths_b = rng.integers(0, 40, 300), rng.integers(0, 40, 300)
    for budget in (1, 7, 8, 29):
        a = tf.ragged.range(lengths_a)
        b = tf.ragged.range(lengths_b)
        cut_a, cut_b = truncate_pair(a, b, budget)
        got = list(zip(cut_a.row_lengths().numpy(), cut_b.row_lengths().numpy()))
        assert got == [_authors_truncation(x, y, budget) for x, y in zip(lengths_a, lengths_b)]
        # Pieces come off the end: what is kept is each text's beginning.
        assert all(list(row) == list(range(len(row))) for row in cut_a.to_list())


def test_a_pair_is_packed_with_segment_ids_and_a_literal_sep_stays_text():
    tokenizer = WordPieceTokenizer(WORDS, lower_case=True)
    preprocessor = ClassificationPreprocessor(tokenizer, max_seq_length=9)
    ids = preprocessor(tf.constant(["the film [SEP]", "a"]),
                       tf.constant(["was good", "b c d e a b c d e"]))
    # 5 + 2 pieces for a budget of 6: the longer first text loses its last piece ("]"); the
    # literal "[SEP]" is the pieces "[", "sep", "]", not the separator.
    assert ids.to_list() == [[2, 10, 11, 16, 15, 3, 12, 13, 3],
                             [2, 5, 3, 6, 7, 8, 9, 5, 3]]  # a is short: b takes the rest
    inputs = preprocessor.pad_and_mask(ids)
    np.testing.assert_array_equal(inputs["segment_ids"].numpy(),
                                  [[0, 0, 0, 0, 0, 0, 1, 1, 1], [0, 0, 0, 1, 1, 1, 1, 1, 1]])
    single = preprocessor.pad_and_mask(preprocessor(tf.constant(["a b", "the film was good"])))
    assert not single["segment_ids"].numpy().any()  # one text: segment 0 throughout


def test_classification_metrics_match_scikit_learn():
    import sklearn.metrics as sklearn_metrics

    rng = np.random.default_rng(1)
    for classes in (2, 3):
        labels = rng.integers(0, classes, 200)
        predictions = np.where(rng.random(200) < 0.6, labels, rng.integers(0, classes, 200))
        got = classification_metrics(labels, predictions, [str(i) for i in range(classes)])
        assert got["mcc"] == pytest.approx(sklearn_metrics.matthews_corrcoef(labels, predictions))
        assert got["accuracy"] == pytest.approx(
            sklearn_metrics.accuracy_score(labels, predictions))
        if classes == 2:  # MRPC and QQP report the F1 of class 1
            assert got["per_class"]["1"]["f1"] == pytest.approx(
                sklearn_metrics.f1_score(labels, predictions))
    # One class predicted for everything: MCC is 0, as scikit-learn gives it.
    assert classification_metrics([0, 1, 1], [1, 1, 1], ["0", "1"])["mcc"] == 0.0


def test_regression_metrics_match_scipy_with_ties():
    import scipy.stats as stats

    rng = np.random.default_rng(2)
    targets = rng.integers(0, 6, 300).astype(float)  # STS-B-like scores with many ties
    predictions = np.round(targets + rng.normal(0, 1.2, 300), 1)
    got = regression_metrics(targets, predictions)
    assert got["pearson"] == pytest.approx(stats.pearsonr(targets, predictions)[0], abs=1e-12)
    assert got["spearman"] == pytest.approx(stats.spearmanr(targets, predictions)[0], abs=1e-12)
    assert got["mae"] == pytest.approx(np.mean(np.abs(targets - predictions)))
    assert regression_metrics([1.0, 1.0, 1.0], [0.0, 1.0, 2.0])["pearson"] == 0.0


def test_streaming_pearson_is_the_correlation_of_all_batches():
    rng = np.random.default_rng(3)
    x = rng.normal(size=90)
    y = 0.5 * x + rng.normal(size=90)
    metric = PearsonCorrelation()
    for start in (0, 7, 50):  # uneven batches: Keras' own metric would average per batch
        end = {0: 7, 7: 50, 50: 90}[start]
        metric.update_state(x[start:end], y[start:end])
    assert float(metric.result()) == pytest.approx(np.corrcoef(x, y)[0, 1], abs=1e-6)
    metric.reset_state()
    assert float(metric.result()) == 0.0


def _write_csv(path, header, rows):
    with open(path, "w", newline="", encoding="utf-8") as f:
        writer = csv.writer(f)
        writer.writerow(header)
        writer.writerows(rows)


@pytest.mark.parametrize("header, row, message", [
    (["premise", "label"], ["a film", "pos"], "'hypothesis' (task.text_b_column)"),
    (["premise", "hypothesis", "label"], ["a film", "", "pos"], "'hypothesis' column is empty"),
    (["premise", "hypothesis", "label"], ["a film", "b", "five"], "not a number"),
])
def test_a_bad_pair_or_score_file_is_one_line(tmp_path, capsys, header, row, message):
    path = tmp_path / "pairs.csv"
    _write_csv(path, header, [row] * 8)
    regression = message == "not a number"
    command = ["finetune", "--task", "csv", "--data", str(path), "--out-dir",
               str(tmp_path / "out"), "--set", "task.text_column=premise",
               "--set", "task.text_b_column=hypothesis"] + (
        ["--set", "task.type=regression"] if regression else [])
    # The data is read before the pretrained model: a bad file fails first, in one line.
    assert main(command + ["--from-scratch", "--model-config", "electra_tiny"]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and message in err[0] and "Traceback" not in err[0]


def _pair_files(tmp_path, rows=60):
    """Pairs from the sample reviews: "is the second review's label the first one's?" (a
    classification) and a score, 2 if both are positive, 1 if one is, 0 if neither."""
    with open(SAMPLE_LABELLED.format(split="train"), encoding="utf-8") as f:
        reviews = list(csv.DictReader(f))
    reviews = [reviews[i] for i in np.random.default_rng(0).permutation(len(reviews))][:2 * rows]
    pairs = list(zip(reviews[:rows], reviews[rows:]))
    _write_csv(tmp_path / "same.csv", ["first", "second", "same"],
               [[a["text"], b["text"], "yes" if a["label"] == b["label"] else "no"]
                for a, b in pairs])
    with open(tmp_path / "score.jsonl", "w", encoding="utf-8") as f:
        for a, b in pairs:
            score = (a["label"] == "pos") + (b["label"] == "pos")
            f.write(json.dumps({"first": a["text"], "second": b["text"], "score": score}) + "\n")


@pytest.mark.slow(seconds=45)
@pytest.mark.parametrize("kind", ["classification", "regression"])
def test_pair_models_train_export_and_serve_without_electra_tf(tiny_pretrained_run, tmp_path,
                                                              kind, capsys):
    from electra_tf.pretrained import load_finetuned

    _pair_files(tmp_path)
    out = tmp_path / kind
    data = tmp_path / ("same.csv" if kind == "classification" else "score.jsonl")
    command = ["finetune", "--task", "csv" if kind == "classification" else "jsonl",
               "--data", str(data), "--pretrained", tiny_pretrained_run,
               "--out-dir", str(out), "--quiet"]
    classifies = kind == "classification"
    for setting in ("task.text_column=first", "task.text_b_column=second",
                    f"task.label_column={'same' if classifies else 'score'}",
                    f"task.type={'sequence_classification' if classifies else 'regression'}",
                    "preprocessing.max_seq_length=40", "training.epochs=1",
                    "training.batch_size=12"):
        command += ["--set", setting]
    assert main(command) == 0
    metrics = json.loads((out / "metrics.json").read_text())["validation"]
    run = json.loads((out / "run.json").read_text())
    assert run["pairs"] is True and metrics["examples"] == 6
    if kind == "regression":
        assert {"pearson", "spearman", "mae", "mse"} <= set(metrics)
    else:
        assert run["label_names"] == ["no", "yes"] and "mcc" in metrics

    assert main(["export", "--model", str(out), "--out", str(tmp_path / "export")]) == 0
    summary = json.loads((tmp_path / "export" / "assets.extra" / "electra_tf.json").read_text())
    assert summary["inputs"] == ["text_a", "text_b"]
    texts = [["A moving film.", "Dull.", "Odd  spacing\tand émojis 🎬"],
             ["Dull and far too long.", "A moving film, wonderful.", "second"]]
    served = serve_without_electra_tf(tmp_path / "export",
                                      {"text_a": texts[0], "text_b": texts[1]}, tmp_path)

    model, preprocessor, _, _ = load_finetuned(str(out))
    inputs = preprocessor.pad_and_mask(preprocessor(tf.constant(texts[0]),
                                                    tf.constant(texts[1])))
    assert inputs["segment_ids"].numpy().any()  # the second texts are segment 1
    outputs = model(inputs, training=False).numpy()
    if kind == "regression":
        np.testing.assert_allclose(served["score"], outputs, atol=1e-5)
    else:
        np.testing.assert_allclose(served["probabilities"], tf.nn.softmax(outputs).numpy(),
                                   atol=1e-5)
        assert served["label"] == [["no", "yes"][i] for i in np.argmax(outputs, axis=1)]

    # `predict` reads pairs as TEXT_A<TAB>TEXT_B or JSON lines, from the export or the run.
    lines = [f"{a}\t{b}" for a, b in zip(*texts[:2])]
    for i in (1, 2):  # the third first text holds a TAB itself: only JSON can carry it
        lines[i] = json.dumps({"text_a": texts[0][i], "text_b": texts[1][i]},
                              ensure_ascii=False)
    (tmp_path / "pairs.txt").write_text("\n".join(lines) + "\n", encoding="utf-8")
    for model_path in (tmp_path / "export", out):
        capsys.readouterr()
        assert main(["predict", "--model", str(model_path), "--file",
                     str(tmp_path / "pairs.txt"), "--jsonl", "--quiet"]) == 0
        printed = [json.loads(line) for line in capsys.readouterr().out.splitlines()]
        assert [p["text_b"] for p in printed] == texts[1]
        key = "score" if kind == "regression" else "label"
        assert [p[key] for p in printed] == pytest.approx(served[key], abs=1e-4) \
            if kind == "regression" else [p[key] for p in printed] == served[key]
    (tmp_path / "single.txt").write_text("no tab here\n", encoding="utf-8")
    assert main(["predict", "--model", str(out), "--file", str(tmp_path / "single.txt")]) == 2
    assert "this model reads pairs" in capsys.readouterr().err


@pytest.mark.parametrize("task_type", ["sequence_classification", "regression"])
def test_validation_can_come_from_its_own_split(tmp_path, task_type):
    """`task.validation_split` names a file of its own (e.g. split by movie, so that no movie
    is in both); train is then used whole, and the validation labels are train's."""
    from electra_tf.config.finetuning import TaskConfig
    from electra_tf.errors import DataError
    from electra_tf.tasks import get_task

    def write(split, rows):
        with open(tmp_path / f"{split}.csv", "w", newline="", encoding="utf-8") as f:
            csv.writer(f).writerows([["text", "label"], *rows])

    write("train", [[f"train text {i}", str(i % 2 + 3)] for i in range(10)])
    write("valid", [["valid one", "3"], ["valid two", "4"], ["valid three", "4"]])
    config = TaskConfig(name="csv", data=str(tmp_path / "{split}.csv"), type=task_type,
                        validation_split="valid", max_train_examples=8)
    task = get_task(config)
    train, validation = task.train_and_validation()
    assert len(train) == 8 and len(validation) == 3
    assert set(train.texts) < {f"train text {i}" for i in range(10)}
    assert list(validation.texts) == ["valid one", "valid two", "valid three"]
    assert list(task.validation_examples(task.load_examples("train")).texts) == \
        list(validation.texts)
    if task_type == "regression":
        assert list(validation.scores) == [3.0, 4.0, 4.0]
    else:
        assert list(validation.label_names) == list(train.label_names) == ["3", "4"]
        write("valid", [["valid one", "3"], ["an unseen class", "5"]])
        with pytest.raises(DataError, match="5"):
            task.train_and_validation()


@pytest.mark.parametrize("suffix", [".jsonl", ".csv", ".tsv"])
def test_tables_split_rows_only_at_line_breaks(tmp_path, suffix):
    """Reviews hold U+2028, U+0085 and form feeds, which `str.splitlines` treats as line breaks
    and JSON writers leave unescaped; a row is still one row, its text intact."""
    from electra_tf.data.text_tables import read_table

    texts = ["one\u2028two", "three\x85four\x0cfive", "plain"]
    path = tmp_path / f"table{suffix}"
    if suffix == ".jsonl":
        lines = [json.dumps({"text": t, "label": "a"}, ensure_ascii=False) for t in texts]
        path.write_text("\r\n".join(lines) + "\r\n", encoding="utf-8")
    else:
        with open(path, "w", newline="", encoding="utf-8") as f:
            writer = csv.writer(f, delimiter="\t" if suffix == ".tsv" else ",")
            writer.writerows([["text", "label"], *[[t, "a"] for t in texts]])
    rows = read_table(str(path), ["text", "label"], ["task.text_column", "task.label_column"])
    assert rows == [(t, "a") for t in texts]


def test_a_regressor_starts_at_the_mean_score():
    """The output bias starts at `initial_score` (fine-tuning: the training scores' mean), so
    the first steps learn the signal, not the scale."""
    from electra_tf.layers import ElectraEncoder
    from electra_tf.models.regressor import SequenceRegressor

    encoder = ElectraEncoder(vocab_size=30, embedding_size=8, hidden_size=8, num_layers=1,
                             num_heads=1, intermediate_size=16)
    model = SequenceRegressor(encoder, initial_score=5.5)
    scores = model({"token_ids": np.array([[2, 5, 6, 3], [2, 7, 3, 0]])}, training=False)
    np.testing.assert_allclose(scores.numpy(), 5.5, atol=0.2)
    assert model.classifier_head.bias.numpy().tolist() == [5.5]
