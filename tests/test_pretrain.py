"""`electra-tf pretrain`: outputs, kill -9 + resume, damaged checkpoints, user mistakes."""

import json
import logging
import os
import subprocess
import sys

import keras
import numpy as np
import pytest
import tensorflow as tf

from conftest import run_cli_until_then_sigkill
from electra_tf.cli import main
from electra_tf.data import SAMPLE_CORPUS
from electra_tf.data.tokenizer import WordPieceTokenizer
from electra_tf.data.vocab import SPECIAL_TOKENS, save_vocabulary
from electra_tf.data.vocab_learning import learn_vocabulary

# A model of a few thousand parameters: the point here is the run's bookkeeping, not learning.
SMALL = ["model.num_layers=1", "model.hidden_size=32", "model.embedding_size=32",
         "model.intermediate_size=64", "model.num_heads=1", "pretraining.max_seq_length=32"]


@pytest.fixture(scope="module")
def corpus_and_vocab(tmp_path_factory):
    root = tmp_path_factory.mktemp("pretrain")
    with open(SAMPLE_CORPUS, encoding="utf-8") as f:
        texts = [next(f) for _ in range(80)]
    corpus = root / "reviews.txt"
    corpus.write_text("".join(texts), encoding="utf-8")
    vocab = learn_vocabulary(texts, vocab_size=1200)
    save_vocabulary(vocab, str(root / "vocab.txt"))
    return str(corpus), str(root / "vocab.txt"), len(vocab)


def pretrain_args(corpus, vocab, vocab_size, out_dir, steps=40, extra=()):
    args = ["pretrain", "--config", "electra_tiny", "--corpus", corpus, "--vocab", vocab,
            "--out-dir", str(out_dir), "--steps", str(steps), "--batch-size", "4",
            "--save-every", "10", "--log-every", "5", "--quiet"]
    for item in SMALL + [f"model.vocab_size={vocab_size}"]:
        args += ["--set", item]
    return args + list(extra)


def discriminator_weights(out_dir):
    model = keras.saving.load_model(os.path.join(out_dir, "discriminator.keras"))
    return model.get_weights()


@pytest.mark.slow(seconds=20)
def test_pretrain_writes_the_documented_outputs(corpus_and_vocab, tmp_path):
    corpus, vocab, size = corpus_and_vocab
    assert main(pretrain_args(corpus, vocab, size, tmp_path, steps=20)) == 0
    for name in ("config.yaml", "vocab.txt", "run.json", "history.jsonl", "metrics.json",
                 "discriminator.keras", "generator.keras", "curves.png"):
        assert os.path.exists(tmp_path / name), name
    metrics = json.loads((tmp_path / "metrics.json").read_text())
    assert metrics["steps"] == 20 and metrics["final"]["step"] == 20
    assert metrics["sequences_per_s"] > 0 and metrics["tokens_per_s"] > 0
    assert np.isfinite(metrics["final"]["disc_loss"]) and metrics["corpus"]["documents"] > 0
    history = [json.loads(line) for line in open(tmp_path / "history.jsonl")]
    assert [r["step"] for r in history] == [5, 10, 15, 20]
    assert sorted(os.listdir(tmp_path / "checkpoints")) == [
        "checkpoint", "ckpt-10.data-00000-of-00001", "ckpt-10.index",
        "ckpt-20.data-00000-of-00001", "ckpt-20.index"]
    assert any(name.startswith("events") for name in os.listdir(tmp_path / "logs"))
    # The discriminator reloads on its own (what fine-tuning does) and runs.
    model = keras.saving.load_model(str(tmp_path / "discriminator.keras"))
    assert model({"token_ids": np.array([[2, 10, 11, 3]])}).shape == (1, 4)
    # Running again on a finished run trains nothing and keeps the weights and the record,
    # even with another --batch-size (which once rewrote metrics.json with its figures).
    before = discriminator_weights(tmp_path)
    record = (tmp_path / "metrics.json").read_bytes()
    again = pretrain_args(corpus, vocab, size, tmp_path, steps=20)
    again[again.index("--batch-size") + 1] = "16"
    assert main(again) == 0
    for a, b in zip(before, discriminator_weights(tmp_path)):
        np.testing.assert_array_equal(a, b)
    assert (tmp_path / "metrics.json").read_bytes() == record


@pytest.mark.slow(seconds=15)
def test_disentangled_sharing_saves_the_folded_table(corpus_and_vocab, tmp_path):
    # gradient_disentangled: discriminator.keras is an ordinary discriminator whose word table
    # is the generator's (shared) table plus the residual the replaced-token loss trained.
    corpus, vocab, size = corpus_and_vocab
    extra = ["--set", "pretraining.embedding_sharing=gradient_disentangled"]
    assert main(pretrain_args(corpus, vocab, size, tmp_path, steps=10, extra=extra)) == 0
    discriminator = keras.saving.load_model(str(tmp_path / "discriminator.keras"))
    generator = keras.saving.load_model(str(tmp_path / "generator.keras"))
    embeddings = discriminator.encoder.embeddings
    assert type(embeddings).__name__ == "ElectraEmbeddings"
    residual = embeddings.embedding_matrix.numpy() - generator.encoder.embeddings.embedding_matrix
    assert np.abs(residual).max() > 1e-4  # trained, and folded in


@pytest.mark.slow(seconds=20)
def test_export_checkpoint_writes_a_finetunable_folder_of_any_step(corpus_and_vocab, tmp_path):
    from electra_tf.errors import CheckpointError
    from electra_tf.training.pretrain import export_checkpoint

    corpus, vocab, size = corpus_and_vocab
    run = tmp_path / "run"
    assert main(pretrain_args(corpus, vocab, size, run, steps=20)) == 0
    final = discriminator_weights(run)
    # The last checkpoint is the finished run's discriminator; step 10 and step 0 are not.
    export_checkpoint(str(run), 20, str(tmp_path / "at20"))
    assert all(np.array_equal(a, b) for a, b in zip(discriminator_weights(tmp_path / "at20"),
                                                    final))
    for step in (10, 0):
        folder = tmp_path / f"at{step}"
        export_checkpoint(str(run), step, str(folder))
        assert sorted(os.listdir(folder)) == ["config.yaml", "discriminator.keras", "run.json",
                                              "vocab.txt"]
        assert not all(np.array_equal(a, b) for a, b in zip(discriminator_weights(folder), final))
    with pytest.raises(CheckpointError, match=r"no checkpoint of step 15; it has steps \[10, 20\]"):
        export_checkpoint(str(run), 15, str(tmp_path / "at15"))


def test_prepare_only_writes_the_run_setup_and_the_same_command_then_trains_it(tmp_path,
                                                                               capsys):
    """--prepare-only learns the vocabulary and writes config.yaml and run.json, no model; the
    same command without it trains that run with that vocabulary."""
    with open(SAMPLE_CORPUS, encoding="utf-8") as f:
        (tmp_path / "reviews.txt").write_text("".join(next(f) for _ in range(80)),
                                              encoding="utf-8")
    out = tmp_path / "run"
    args = ["pretrain", "--config", "electra_tiny", "--corpus", str(tmp_path / "reviews.txt"),
            "--out-dir", str(out), "--steps", "4", "--batch-size", "4", "--save-every", "2",
            "--log-every", "2", "--quiet", "--set", "model.vocab_size=600"]
    for item in SMALL:
        args += ["--set", item]
    assert main(args + ["--prepare-only"]) == 0
    assert "Prepared" in capsys.readouterr().out
    assert sorted(os.listdir(out)) == ["config.yaml", "run.json", "vocab.txt"]
    vocab = (out / "vocab.txt").read_text(encoding="utf-8")
    run = json.loads((out / "run.json").read_text())
    assert run["vocab_learned"] and len(vocab.splitlines()) <= 600
    assert main(args) == 0
    assert (out / "vocab.txt").read_text(encoding="utf-8") == vocab
    assert json.loads((out / "metrics.json").read_text())["steps"] == 4


def test_checkpoints_land_every_save_every_steps(corpus_and_vocab, tmp_path, caplog):
    """Issue 21 (5): --save-every 2 with the default --log-every 100 once wrote nothing before
    the last step; the logging interval now shrinks so that checkpoints land where asked."""
    corpus, vocab, size = corpus_and_vocab
    args = pretrain_args(corpus, vocab, size, tmp_path, steps=6)
    args[args.index("--save-every") + 1] = "2"
    del args[args.index("--log-every"):args.index("--log-every") + 2]
    with caplog.at_level(logging.WARNING):
        assert main(args + ["--keep-checkpoints", "10"]) == 0
    assert "logging every 2 steps" in caplog.text
    indexes = sorted(p.name for p in (tmp_path / "checkpoints").glob("*.index"))
    assert indexes == ["ckpt-2.index", "ckpt-4.index", "ckpt-6.index"]


@pytest.mark.slow(seconds=70)
def test_kill_dash_nine_then_resume_ends_with_the_uninterrupted_weights(corpus_and_vocab,
                                                                         tmp_path):
    corpus, vocab, size = corpus_and_vocab
    steps = 60
    command = [sys.executable, "-m", "electra_tf.cli"]
    env = dict(os.environ, TF_CPP_MIN_LOG_LEVEL="2")

    # The killed run: wait for its second checkpoint, then SIGKILL it mid-training.
    killed = tmp_path / "killed"
    run_cli_until_then_sigkill(pretrain_args(corpus, vocab, size, killed, steps),
                               ready=(killed / "checkpoints" / "ckpt-20.index").exists)
    assert not (killed / "discriminator.keras").exists(), "killed too late: the run had finished"

    resumed = subprocess.run(command + pretrain_args(corpus, vocab, size, killed, steps),
                             env=env, capture_output=True, text=True, timeout=300)
    assert resumed.returncode == 0, resumed.stderr[-2000:]
    assert "Resuming" in resumed.stderr and "from step 20" in resumed.stderr
    # Issue 21 (8): the data pipeline is finalised before exit, not at interpreter shutdown.
    assert "FAILED_PRECONDITION" not in resumed.stderr

    uninterrupted = tmp_path / "uninterrupted"
    assert main(pretrain_args(corpus, vocab, size, uninterrupted, steps)) == 0

    for a, b in zip(discriminator_weights(killed), discriminator_weights(uninterrupted)):
        np.testing.assert_allclose(a, b, rtol=0, atol=1e-5)
    history_killed = [json.loads(line) for line in open(killed / "history.jsonl")]
    history_full = [json.loads(line) for line in open(uninterrupted / "history.jsonl")]
    assert [r["step"] for r in history_killed] == list(range(5, steps + 1, 5))
    for a, b in zip(history_killed, history_full):
        assert a["disc_loss"] == pytest.approx(b["disc_loss"], abs=1e-5)


@pytest.mark.slow(seconds=30)
def test_two_runs_that_learn_their_vocabulary_give_the_same_model(corpus_and_vocab, tmp_path):
    """Issue 55 (1): without --vocab the run learns one; two such runs of one command learned
    different vocabularies (and so different weights) before the learner was made
    deterministic."""
    from tensorflow.python.framework import config as tf_config

    corpus, _, _ = corpus_and_vocab
    runs = [tmp_path / "a", tmp_path / "b"]
    for out in runs:
        args = pretrain_args(corpus, None, 700, out, steps=10, extra=["--deterministic"])
        args.remove("--vocab")
        args.remove(None)
        try:
            assert main(args) == 0
        finally:
            tf_config.disable_op_determinism()  # process-wide: the other tests run without it
    first, second = ((out / "vocab.txt").read_bytes() for out in runs)
    assert first == second and len(first.splitlines()) == 700
    for a, b in zip(discriminator_weights(runs[0]), discriminator_weights(runs[1])):
        np.testing.assert_array_equal(a, b)


@pytest.mark.slow(seconds=45)
def test_damaged_latest_checkpoint_falls_back_to_the_previous(corpus_and_vocab, tmp_path, caplog):
    caplog.set_level(logging.INFO)
    corpus, vocab, size = corpus_and_vocab
    assert main(pretrain_args(corpus, vocab, size, tmp_path, steps=20)) == 0
    data = tmp_path / "checkpoints" / "ckpt-20.data-00000-of-00001"
    data.write_bytes(data.read_bytes()[:100])  # a partial copy / full disk
    (tmp_path / "discriminator.keras").unlink()
    assert main(pretrain_args(corpus, vocab, size, tmp_path, steps=20)) == 0
    assert "ckpt-20 cannot be restored" in caplog.text
    assert "from step 10" in caplog.text
    assert (tmp_path / "discriminator.keras").exists()


def test_resume_with_a_different_model_is_refused(corpus_and_vocab, tmp_path, capsys):
    corpus, vocab, size = corpus_and_vocab
    assert main(pretrain_args(corpus, vocab, size, tmp_path, steps=10)) == 0
    code = main(pretrain_args(corpus, vocab, size, tmp_path, steps=10,
                              extra=["--set", "model.hidden_size=64"]))
    assert code == 2
    assert "model.hidden_size: 32 -> 64" in capsys.readouterr().err


@pytest.mark.parametrize("case", ["missing corpus", "empty corpus", "short lines",
                                  "vocab without specials", "vocab size mismatch",
                                  "missing vocab"])
def test_user_mistakes_are_one_clear_line(corpus_and_vocab, tmp_path, capsys, case):
    corpus, vocab, size = corpus_and_vocab
    expected = {"missing corpus": "Corpus path not found", "empty corpus": "no usable text",
                "short lines": "no usable text", "vocab without specials": "lacks the special",
                "vocab size mismatch": "--set model.vocab_size=", "missing vocab": "not found"}
    vocab_size = size
    if case == "missing corpus":
        corpus = str(tmp_path / "nope.txt")
    elif case == "empty corpus":
        corpus = str(tmp_path / "empty.txt")
        open(corpus, "w").close()
    elif case == "short lines":
        corpus = str(tmp_path / "short.txt")
        open(corpus, "w").write("hi\nok then\n" * 100)
    elif case == "vocab without specials":
        vocab = str(tmp_path / "v.txt")
        open(vocab, "w").write("[PAD]\n[UNK]\nmovie\n")
    elif case == "vocab size mismatch":
        vocab_size = size + 7
    elif case == "missing vocab":
        vocab = str(tmp_path / "missing_vocab.txt")
    code = main(pretrain_args(corpus, vocab, vocab_size, tmp_path / "out", steps=5))
    err = capsys.readouterr().err
    assert code == 2, err
    assert expected[case] in err and "Traceback" not in err
    assert len(err.strip().splitlines()) <= 3


@pytest.mark.parametrize("learner", ["tokenizers", "tensorflow-text"])
def test_train_tokenizer_command(learner, tmp_path, capsys):
    out = tmp_path / "vocab.txt"
    assert main(["train-tokenizer", "--corpus", SAMPLE_CORPUS, "--vocab-size", "1000",
                 "--max-documents", "50", "--out", str(out), "--learner", learner]) == 0
    tokens = out.read_text(encoding="utf-8").splitlines()
    assert tuple(tokens[:5]) == SPECIAL_TOKENS
    if learner == "tokenizers":
        assert len(tokens) == 1000
    else:  # it keeps pieces seen >= 10 times: 50 reviews are too few to reach 1000
        assert 300 < len(tokens) < 1000
    assert "50 documents" in capsys.readouterr().out
    with open(SAMPLE_CORPUS, encoding="utf-8") as f:
        texts = [next(f) for _ in range(50)]
    ids = WordPieceTokenizer(str(out))(tf.constant(texts)).flat_values.numpy()
    assert (ids == 1).mean() < 0.01  # [UNK] is rare in the text it was learned from
    with pytest.raises(SystemExit) as exit_info:  # argparse names the choices
        main(["train-tokenizer", "--corpus", SAMPLE_CORPUS, "--out", str(out), "--learner", "x"])
    assert exit_info.value.code == 2 and "tensorflow-text" in capsys.readouterr().err


def test_deterministic_flag_switches_tensorflow_to_deterministic_ops(corpus_and_vocab, tmp_path):
    """--deterministic reaches TensorFlow and is recorded. (Its effect, identical weights at the
    electra_tiny size, is measured by benchmarks/determinism.py: too slow for a test.)"""
    from tensorflow.python.framework import config as tf_config

    corpus, vocab, size = corpus_and_vocab
    assert not tf_config.is_op_determinism_enabled()
    try:
        assert main(pretrain_args(corpus, vocab, size, tmp_path, steps=5,
                                  extra=["--deterministic"])) == 0
        assert tf_config.is_op_determinism_enabled()
    finally:
        tf_config.disable_op_determinism()  # process-wide: the other tests run without it
    metrics = json.loads((tmp_path / "metrics.json").read_text())
    assert metrics["distribution"]["deterministic_ops"] is True
