"""Export: SavedModel with raw-text and token-id signatures, served without electra_tf; predict."""

import importlib
import json
import os
import subprocess
import sys

import numpy as np
import pytest
import tensorflow as tf

from conftest import built_once
from electra_tf.cli import main
from electra_tf.data import SAMPLE_LABELLED
from electra_tf.pretrained.finetuned import load_finetuned

# Inputs a server meets: nothing, blanks, broken bytes, a megabyte, emoji and mixed scripts.
ODD_TEXTS = [b"", b"   \t ", b"caf\xe9 \xff\xfe broken bytes", ("great " * 170000).encode(),
             "Loved it \U0001F600\U0001F3AC!!".encode(), "映画 фильм فيلم film".encode(),
             b"A wonderful, moving film.", b"Dull and far too long."]

# Runs in a fresh interpreter that cannot import electra_tf: only tensorflow + tensorflow_text.
SERVE_SCRIPT = r"""
import json, sys
sys.modules["electra_tf"] = None   # any attempt to import it now raises ImportError
import numpy as np, tensorflow as tf, tensorflow_text  # noqa: F401
model = tf.saved_model.load(sys.argv[1])
texts = [bytes.fromhex(h) for h in json.load(open(sys.argv[2]))]
out = model.signatures["serving_default"](text=tf.constant(texts))
ids = model.signatures["classify_ids"](
    token_ids=tf.constant([[2, 10, 11, 3, 0]], tf.int32),
    padding_mask=tf.constant([[1, 1, 1, 1, 0]], tf.int32))
print(json.dumps({"probabilities": out["probabilities"].numpy().tolist(),
                  "label": [s.decode() for s in out["label"].numpy()],
                  "label_id": out["label_id"].numpy().tolist(),
                  "ids_probabilities": ids["probabilities"].numpy().tolist(),
                  "vocab_asset": sorted(__import__("os").listdir(sys.argv[1] + "/assets")),
                  "electra_tf_loaded": any(m.startswith("electra_tf") for m in sys.modules
                                           if sys.modules[m] is not None)}))
"""


@pytest.fixture(scope="module")
def tuned_run(tiny_pretrained_run, tmp_path_factory):
    """A classifier fine-tuned from `tiny_pretrained_run` (built once for all workers:
    read-only)."""
    def build(root):
        assert main(["finetune", "--task", "csv", "--data", SAMPLE_LABELLED, "--pretrained",
                     tiny_pretrained_run, "--out-dir", str(root / "tuned"), "--set",
                     "task.max_train_examples=48", "--set", "preprocessing.max_seq_length=48",
                     "--set", "training.epochs=1", "--set", "training.batch_size=16",
                     "--quiet"]) == 0

    return str(built_once(tmp_path_factory, "tuned_run", build) / "tuned")


@pytest.fixture(scope="module")
def exported(tuned_run, tmp_path_factory):
    """`tuned_run` exported as a SavedModel (built once for all workers: read-only)."""
    def build(root):
        assert main(["export", "--model", tuned_run, "--out", str(root / "saved")]) == 0

    return str(built_once(tmp_path_factory, "exported", build) / "saved")


def keras_probabilities(model_dir, texts):
    classifier, preprocessor, _, _ = load_finetuned(model_dir)
    inputs = preprocessor.pad_and_mask(preprocessor(tf.constant(texts)))
    return tf.nn.softmax(classifier(inputs, training=False)).numpy(), classifier, preprocessor


@pytest.mark.slow(seconds=40)
def test_saved_model_serves_raw_text_without_electra_tf(tuned_run, exported, tmp_path):
    script = tmp_path / "serve.py"
    script.write_text(SERVE_SCRIPT)
    texts = tmp_path / "texts.json"
    texts.write_text(json.dumps([t.hex() for t in ODD_TEXTS]))
    env = dict(os.environ, PYTHONPATH="")
    result = subprocess.run(
        [sys.executable, str(script), exported, str(texts)],
        cwd=tmp_path, env=env, capture_output=True, text=True, timeout=300)
    assert result.returncode == 0, result.stderr[-3000:]
    served = json.loads(result.stdout.strip().splitlines()[-1])
    assert not served["electra_tf_loaded"]
    assert served["vocab_asset"] == ["vocab.txt"]

    expected, classifier, preprocessor = keras_probabilities(tuned_run, ODD_TEXTS)
    probabilities = np.array(served["probabilities"])
    assert probabilities.shape == (len(ODD_TEXTS), 2)
    np.testing.assert_allclose(probabilities, expected, atol=1e-5)
    np.testing.assert_allclose(probabilities.sum(axis=1), 1.0, atol=1e-5)
    assert served["label"] == [classifier.label_names[i] for i in served["label_id"]]
    assert served["label_id"] == list(np.argmax(expected, axis=1))
    # The 1 MB review was truncated to the trained length, not fed whole.
    assert preprocessor(tf.constant([ODD_TEXTS[3]])).row_lengths().numpy()[0] == 48

    ids = {"token_ids": tf.constant([[2, 10, 11, 3, 0]]),
           "padding_mask": tf.constant([[1, 1, 1, 1, 0]])}
    np.testing.assert_allclose(served["ids_probabilities"],
                               tf.nn.softmax(classifier(ids, training=False)).numpy(), atol=1e-5)


def test_saved_model_lists_both_signatures_for_standard_tools(exported):
    """What `saved_model_cli show --all` prints, read from saved_model.pb the way it reads it
    (notebook 04 runs the tool itself; here without a TensorFlow start-up of its own)."""
    from tensorflow.core.protobuf import saved_model_pb2

    saved_model = saved_model_pb2.SavedModel()
    with open(os.path.join(exported, "saved_model.pb"), "rb") as f:
        saved_model.ParseFromString(f.read())
    (meta_graph,) = saved_model.meta_graphs
    assert list(meta_graph.meta_info_def.tags) == ["serve"]
    signatures = meta_graph.signature_def
    assert {"serving_default", "classify_ids"} <= set(signatures)
    assert set(signatures["serving_default"].inputs) == {"text"}
    assert set(signatures["classify_ids"].inputs) == {"token_ids", "padding_mask"}
    for name in ("serving_default", "classify_ids"):
        assert {"probabilities", "label"} <= set(signatures[name].outputs), name


def test_predict_cli_from_arguments_file_and_stdin(tuned_run, exported, tmp_path, capsys,
                                                   monkeypatch):
    texts = ["A wonderful, moving film.", "Dull and far too long."]
    expected, classifier, _ = keras_probabilities(tuned_run, texts)

    assert main(["predict", "--model", exported, "--jsonl"] + texts) == 0
    rows = [json.loads(line) for line in capsys.readouterr().out.strip().splitlines()]
    assert [r["text"] for r in rows] == texts
    for row, probs in zip(rows, expected):
        assert row["label"] == classifier.label_names[int(np.argmax(probs))]
        assert row["probability"] == pytest.approx(float(np.max(probs)), abs=1e-5)
        assert sum(row["probabilities"].values()) == pytest.approx(1.0, abs=1e-5)

    # A file with a non-UTF-8 line and an empty line: every line gets a prediction, the bad
    # bytes are counted. The fine-tuning directory itself predicts the same as its export.
    path = tmp_path / "reviews.txt"
    path.write_bytes(b"A wonderful, moving film.\n\nbad \xff bytes\n")
    assert main(["predict", "--model", tuned_run, "--file", str(path), "--quiet"]) == 0
    captured = capsys.readouterr()
    lines = captured.out.strip("\n").split("\n")
    assert len(lines) == 3 and "1 line(s) were not valid UTF-8" in captured.err
    label, probability, preview = lines[0].split("\t")
    assert label == rows[0]["label"] and float(probability) == pytest.approx(
        rows[0]["probability"], abs=1e-4) and preview == texts[0]

    import io
    monkeypatch.setattr(sys, "stdin", io.TextIOWrapper(io.BytesIO(texts[1].encode() + b"\n")))
    assert main(["predict", "--model", exported, "--jsonl"]) == 0
    assert json.loads(capsys.readouterr().out)["label"] == rows[1]["label"]


def test_predict_batches_sort_each_window_by_length_and_answer_in_input_order(exported):
    from electra_tf.export.predict import Predictor, load_predictor

    served = load_predictor(exported)
    calls = []

    def recording(texts):
        calls.append([t.decode("utf-8") for t in texts.numpy()])
        return served._classify(texts)

    predictor = Predictor(recording, served.label_names, exported)
    texts = [("great " * n + "film").strip() for n in (30, 2, 17, 0, 9, 40, 5, 12, 1, 25, 3)]
    results = list(predictor.predict_batches(texts, batch_size=2, sort_window=3))
    assert [len(r["label"]) for r in results] == [2, 2, 2, 2, 2, 1]
    assert calls[0] == sorted(texts[:6], key=len)[:2]  # the first window, shortest first
    for call in calls:
        assert [len(t) for t in call] == sorted(len(t) for t in call)
    everything = served(texts)  # one batch, arrival order: the reference
    np.testing.assert_allclose(np.concatenate([r["probabilities"] for r in results]),
                               everything["probabilities"], atol=1e-5)
    assert [label for r in results for label in r["label"]] == everything["label"]
    with pytest.raises(ValueError, match="sort_window"):
        next(predictor.predict_batches(texts, sort_window=0))


def test_encoder_export_gives_the_discriminators_sequence_output(tiny_pretrained_run, tmp_path):
    import keras

    export_dir = str(tmp_path / "encoder")
    assert main(["export", "--model", tiny_pretrained_run, "--out", export_dir]) == 0
    loaded = tf.saved_model.load(export_dir)
    out = loaded.signatures["serving_default"](text=tf.constant(["a fine film", ""]))
    discriminator = keras.saving.load_model(
        os.path.join(tiny_pretrained_run, "discriminator.keras"), safe_mode=True)
    expected = discriminator.encoder(
        {"token_ids": out["token_ids"], "padding_mask": out["padding_mask"]}, training=False)
    assert out["sequence_output"].shape[-1] == discriminator.encoder.hidden_size
    np.testing.assert_allclose(out["sequence_output"].numpy(), expected.numpy(), atol=1e-5)
    assert out["token_ids"].numpy()[1, :2].tolist() == [2, 3]  # "" -> [CLS] [SEP]
    meta = json.load(open(os.path.join(export_dir, "assets.extra", "electra_tf.json")))
    assert meta["kind"] == "encoder"


def test_export_and_predict_mistakes_are_clear(tuned_run, exported, tmp_path, capsys):
    assert main(["export", "--model", str(tmp_path / "missing"), "--out",
                 str(tmp_path / "x")]) == 2
    assert "does not exist" in capsys.readouterr().err
    assert main(["export", "--model", tuned_run, "--out", tuned_run]) == 2
    assert "--out must differ" in capsys.readouterr().err
    busy = tmp_path / "busy"
    busy.mkdir()
    (busy / "notes.txt").write_text("keep me")
    assert main(["export", "--model", tuned_run, "--out", str(busy)]) == 2
    assert "not an earlier export" in capsys.readouterr().err
    assert (busy / "notes.txt").read_text() == "keep me"

    assert main(["predict", "--model", str(tmp_path / "missing"), "hello"]) == 2
    assert "does not exist" in capsys.readouterr().err
    assert main(["predict", "--model", str(tmp_path), "hello"]) == 2
    assert "neither an 'electra-tf export'" in capsys.readouterr().err


def test_bfloat16_export_computes_in_bfloat16_close_to_float32(tuned_run, tmp_path, capsys):
    export_dir = str(tmp_path / "bf16")
    assert main(["export", "--model", tuned_run, "--out", export_dir,
                 "--precision", "mixed_bfloat16"]) == 0
    importlib.import_module("tensorflow_text")  # registers the tokenizer ops

    served = tf.saved_model.load(export_dir).signatures["serving_default"](
        text=tf.constant(ODD_TEXTS))
    probabilities = served["probabilities"].numpy()
    expected, _, _ = keras_probabilities(tuned_run, ODD_TEXTS)
    difference = np.abs(probabilities - expected).max()
    assert probabilities.dtype == np.float32
    assert 0 < difference < 0.02, difference  # > 0: it really computed in bfloat16
    with open(os.path.join(export_dir, "assets.extra", "electra_tf.json")) as f:
        assert json.load(f)["precision"] == "mixed_bfloat16"
    # HuggingFace checkpoints hold float32 weights: a precision there is a mistake, said clearly.
    assert main(["export", "--model", tuned_run, "--out", str(tmp_path / "hf"), "--format",
                 "huggingface", "--precision", "mixed_bfloat16"]) == 2
    assert "--precision applies to SavedModel exports" in capsys.readouterr().err


@pytest.mark.slow(seconds=60)
def test_every_kind_of_export_holds_only_allowed_ops(tmp_path):
    """The allow-list `predict` checks a SavedModel against covers every architecture, head and
    precision we export (a new op in a layer fails here first, not in a user's `predict`)."""
    from saved_model_variants import VARIANTS, export_variant

    from electra_tf.export.op_check import (
        ALLOWED_OPS,
        CHECKPOINT_OPS,
        saved_model_ops,
        unexpected_ops,
    )

    assert not CHECKPOINT_OPS & ALLOWED_OPS
    for variant in VARIANTS:
        exported = export_variant(str(tmp_path), *variant)
        assert unexpected_ops(exported) == [], variant[0]
        assert CHECKPOINT_OPS <= saved_model_ops(exported)  # present, in their functions only


def _file_writing_saved_model(folder, victim):
    """A SavedModel that looks like a classifier export and writes `victim` when called."""
    class Writer(tf.Module):
        def __init__(self):
            super().__init__()
            self.label_names = tf.Variable(["neg", "pos"])

        def _answer(self, n):
            tf.io.write_file(str(victim), "written by a SavedModel")
            return {"label": tf.fill([n], "pos"), "label_id": tf.ones([n], tf.int32),
                    "probabilities": tf.fill([n, 2], 0.5)}

        @tf.function(input_signature=[tf.TensorSpec([None], tf.string, name="text")])
        def classify_text(self, text):
            return self._answer(tf.shape(text)[0])

        @tf.function(input_signature=[tf.TensorSpec([None, None], tf.int32, name="token_ids"),
                                      tf.TensorSpec([None, None], tf.int32, name="padding_mask")])
        def classify_ids(self, token_ids, padding_mask):
            return self._answer(tf.shape(token_ids)[0])

    module = Writer()
    tf.saved_model.save(module, str(folder), signatures={
        "serving_default": module.classify_text, "classify_ids": module.classify_ids})
    return str(folder)


def test_a_saved_model_that_writes_files_is_refused_unless_trusted(tmp_path, capsys):
    """Issue 55, defect 9: `predict --model <a SavedModel with a WriteFile op>` wrote the file.
    The graph is now checked against what our exports contain before it is loaded."""
    victim = tmp_path / "victim.txt"
    model = _file_writing_saved_model(tmp_path / "model", victim)
    assert main(["predict", "--model", model, "A fine film."]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "WriteFile" in err[0] and "--trust-saved-model" in err[0], err
    assert not victim.exists()
    assert main(["predict", "--model", model, "--trust-saved-model", "A fine film."]) == 0
    assert victim.read_text() == "written by a SavedModel"  # trusted: it runs as written
