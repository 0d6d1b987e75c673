"""Presets: a pretraining run packaged with how it was made, loadable by name."""

import importlib.util
import json
import os
import sys

import numpy as np
import pytest

import electra_tf.pretrained.presets as presets
from electra_tf.cli import main
from electra_tf.data import SAMPLE_LABELLED
from electra_tf.errors import ConfigError
from electra_tf.models.classifier import SequenceClassifier
from electra_tf.runs.keras_files import load_keras_model

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, os.path.join(ROOT, "tools"))
from preset_writer import write_preset  # noqa: E402  (a build tool, not in the package)


@pytest.fixture
def installed_preset(tiny_pretrained_run, tmp_path, monkeypatch):
    """`tiny_pretrained_run` written as preset "tiny_test" into a presets folder that stands in
    for the installed one."""
    root = tmp_path / "presets"
    manifest = write_preset(tiny_pretrained_run, str(root / "tiny_test"),
                                    description="a 30-step test run", data="80 sample reviews")
    monkeypatch.setattr(presets, "PRESETS_DIR", str(root))
    return manifest


def test_a_preset_records_how_it_was_trained(installed_preset, tiny_pretrained_run):
    folder = os.path.join(presets.PRESETS_DIR, "tiny_test")
    assert sorted(os.listdir(folder)) == sorted([*presets.PRESET_FILES, presets.MANIFEST])
    run_metrics = json.load(open(os.path.join(tiny_pretrained_run, "metrics.json")))
    assert installed_preset["steps"] == 30 and installed_preset["batch_size"] == 8
    assert installed_preset["final_metrics"] == run_metrics["final"]
    discriminator = load_keras_model(os.path.join(tiny_pretrained_run, "discriminator.keras"))
    assert installed_preset["discriminator_parameters"] == discriminator.count_params()
    # 30 steps x 8 sequences of a 1-layer, width-64 model: ~1e10 FLOPs, not 0 and not 1e15.
    assert 1e9 < installed_preset["train_flops"] < 1e12
    assert presets.available_presets() == {"tiny_test": installed_preset}


def test_from_preset_loads_the_pretrained_encoder(installed_preset, tiny_pretrained_run):
    by_name = SequenceClassifier.from_preset("tiny_test", num_labels=2)
    discriminator = load_keras_model(os.path.join(tiny_pretrained_run, "discriminator.keras"))
    for ours, theirs in zip(by_name.encoder.weights, discriminator.encoder.weights):
        np.testing.assert_array_equal(ours.numpy(), theirs.numpy())
    by_folder = SequenceClassifier.from_preset(os.path.join(presets.PRESETS_DIR, "tiny_test"),
                                               pooling="mean", encoder_dropout=0.1)
    for ours, theirs in zip(by_folder.encoder.weights, discriminator.encoder.weights):
        np.testing.assert_array_equal(ours.numpy(), theirs.numpy())
    assert (by_name.pooling, by_folder.pooling) == ("cls", "mean")
    # The encoder's own dropout: as pretrained unless the fine-tuning recipe sets it.
    assert by_name.encoder.dropout == discriminator.encoder.dropout
    assert by_folder.encoder.dropout == by_folder.encoder.attention_dropout == 0.1
    # The few-sample lever reaches the preset path too: the top block starts afresh, the rest not.
    reinitialised = SequenceClassifier.from_preset("tiny_test", reinitialise_top_layers=1)
    top = reinitialised.encoder.transformer_layers[-1].weights
    below = reinitialised.encoder.embeddings.weights
    assert any(not np.array_equal(ours.numpy(), theirs.numpy()) for ours, theirs in
               zip(top, discriminator.encoder.transformer_layers[-1].weights))
    for ours, theirs in zip(below, discriminator.encoder.embeddings.weights):
        np.testing.assert_array_equal(ours.numpy(), theirs.numpy())


def test_names_resolve_only_when_no_path_of_that_name_exists(installed_preset, tmp_path,
                                                             monkeypatch):
    folder = os.path.join(presets.PRESETS_DIR, "tiny_test")
    assert presets.resolve_pretrained("tiny_test") == folder
    assert presets.resolve_pretrained("runs/elsewhere") == "runs/elsewhere"
    monkeypatch.chdir(tmp_path)
    os.mkdir("tiny_test")  # a local run directory of the same name is what the user meant
    assert presets.resolve_pretrained("tiny_test") == "tiny_test"


def test_an_unknown_preset_names_the_installed_ones(installed_preset):
    with pytest.raises(ConfigError, match=r"Unknown preset 'electra_huge'.*installed: tiny_test"):
        SequenceClassifier.from_preset("electra_huge")


def test_presets_command_lists_them(installed_preset, capsys):
    assert main(["presets"]) == 0
    out = capsys.readouterr().out
    assert "tiny_test: a 30-step test run (30 steps on 80 sample reviews" in out
    assert "electra-tf finetune --pretrained tiny_test" in out


@pytest.mark.slow(seconds=25)
def test_finetune_takes_a_preset_name(installed_preset, tmp_path):
    out = tmp_path / "tuned"
    assert main(["finetune", "--task", "csv", "--data", SAMPLE_LABELLED, "--pretrained",
                 "tiny_test", "--out-dir", str(out), "--set", "task.max_train_examples=32",
                 "--set", "preprocessing.max_seq_length=32", "--set", "training.epochs=1",
                 "--set", "training.batch_size=16", "--quiet"]) == 0
    run = json.loads((out / "run.json").read_text())
    assert run["pretrained"] == os.path.join(presets.PRESETS_DIR, "tiny_test")


def _make_preset_tool():
    spec = importlib.util.spec_from_file_location(
        "make_preset", os.path.join(ROOT, "tools", "make_preset.py"))
    make_preset = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(make_preset)
    return make_preset


def test_the_preset_tool_packages_a_finished_run_with_its_command(tiny_pretrained_run, tmp_path):
    """tools/make_preset.py on a finished run: no retraining, and the manifest says how to
    reproduce the preset with repository-relative paths."""
    make_preset = _make_preset_tool()
    out = tmp_path / "electra_cpu_imdb"
    before = os.path.getmtime(os.path.join(tiny_pretrained_run, "metrics.json"))
    vocab = os.path.join(os.path.dirname(tiny_pretrained_run), "vocab.txt")  # the run's own
    assert make_preset.main(["--run-dir", tiny_pretrained_run, "--out-dir", str(out),
                             "--corpus", "/data/aclImdb_v1.tar.gz", "--vocab", vocab,
                             "--save-every", "30", "--keep-checkpoints", "30"]) == 0
    assert os.path.getmtime(os.path.join(tiny_pretrained_run, "metrics.json")) == before
    manifest = json.loads((out / "preset.json").read_text())
    assert manifest["pretraining_command"].startswith("electra-tf pretrain --out-dir ")
    assert "--config configs/electra_cpu.yaml --corpus aclImdb_v1.tar.gz" in \
        manifest["pretraining_command"]
    assert manifest["pretraining_command"].endswith(
        f"--save-every 30 --log-every 100 --quiet --vocab {os.path.relpath(vocab, ROOT)} "
        "--keep-checkpoints 30")
    assert manifest["steps"] == 30 and "never test/" in manifest["data"]


@pytest.mark.parametrize("options, says", [
    (["--vocab", os.path.join(ROOT, "electra_tf", "pretrained", "presets", "electra_cpu_imdb",
                               "vocab.txt"),
      "--save-every", "30"], "another vocabulary"),
    (["--save-every", "30"], "pass it with --vocab"),
    (["--vocab", "RUN_VOCAB", "--save-every", "1000"], "--save-every 30"),
])
def test_the_preset_tool_refuses_options_the_finished_run_was_not_made_with(
        tiny_pretrained_run, tmp_path, capsys, options, says):
    """The manifest would misstate the run's command: one line saying which option to fix,
    nothing written."""
    run_vocab = os.path.join(os.path.dirname(tiny_pretrained_run), "vocab.txt")
    options = [run_vocab if option == "RUN_VOCAB" else option for option in options]
    out = tmp_path / "electra_cpu_imdb"
    assert _make_preset_tool().main(["--run-dir", tiny_pretrained_run, "--out-dir", str(out),
                                     *options]) == 2
    error = capsys.readouterr().err.strip()
    assert says in error and "\n" not in error
    assert not out.exists()


@pytest.mark.parametrize("name, steps", [("electra_cpu_imdb", 8000),
                                         ("electra_cpu_imdb_long", 24000)])
def test_the_shipped_presets_say_how_they_were_trained_and_load(name, steps):
    """The presets installed with the package: their files, a manifest that says how to
    reproduce each, and an encoder of the size the manifest states."""
    manifest = presets.available_presets()[name]
    folder = presets.preset_path(name)
    assert manifest["name"] == name and manifest["steps"] == steps
    assert f"--steps {steps} " in manifest["pretraining_command"]
    assert sorted(os.listdir(folder)) == sorted([*presets.PRESET_FILES, presets.MANIFEST])
    assert manifest["pretraining_command"].startswith("electra-tf pretrain ")
    assert "never test/" in manifest["data"] and len(manifest["commit"]) == 40
    assert manifest["steps"] * manifest["batch_size"] > 0 and manifest["train_flops"] > 1e14
    classifier = SequenceClassifier.from_preset(name, pooling="mean")
    discriminator = load_keras_model(os.path.join(folder, "discriminator.keras"))
    assert discriminator.count_params() == manifest["discriminator_parameters"]
    assert classifier.encoder.vocab_size == len(open(os.path.join(folder, "vocab.txt")).read()
                                                .splitlines())
