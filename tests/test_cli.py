"""The `electra-tf` command line and the package metadata."""

import json
import shutil
import subprocess
import sys

import pytest

import electra_tf
from electra_tf.cli import main
from electra_tf.pretrained.presets import preset_path


def test_version_and_help_list_subcommands():
    out = subprocess.run([sys.executable, "-m", "electra_tf.cli", "--help"],
                         capture_output=True, text=True, check=True).stdout
    for command in ("summary", "demo"):
        assert command in out
    assert electra_tf.__version__.count(".") == 2


def test_summary_prints_counts(capsys):
    assert main(["summary", "--config", "electra_small"]) == 0
    out = capsys.readouterr().out
    assert "13,549,057" in out  # the discriminator of ELECTRA-Small


def test_bad_override_is_a_clean_error(capsys):
    assert main(["summary", "--config", "electra_small", "--set", "model.hiden_size=3"]) == 2
    assert "Unknown config key 'model.hiden_size'" in capsys.readouterr().err


@pytest.mark.slow(seconds=200)
def test_quickstart_pretrains_finetunes_and_evaluates_the_embedded_sample(tmp_path, capsys):
    out_dir = tmp_path / "quickstart"
    assert main(["quickstart", "--out-dir", str(out_dir), "--steps", "50",
                 "--finetune-epochs", "1"]) == 0
    printed = capsys.readouterr().out
    assert "Both losses fell" in printed and "from scratch (200 reviews never seen" in printed
    assert (out_dir / "pretrained" / "discriminator.keras").exists()
    metrics = json.loads((out_dir / "sentiment" / "metrics.json").read_text())
    assert metrics["validation"]["examples"] == 40 and metrics["test"]["examples"] == 200
    # Pretrained vs the same Transformer from scratch, both scored on the 200 test reviews.
    scratch = json.loads((out_dir / "sentiment_scratch" / "metrics.json").read_text())
    assert json.loads((out_dir / "sentiment_scratch" / "run.json").read_text())["from_scratch"]
    summary = json.loads((out_dir / "summary.json").read_text())
    assert summary == {"test_accuracy": {"pretrained": metrics["test"]["accuracy"],
                                         "scratch": scratch["test"]["accuracy"]},
                       "test_examples": 200, "preset": "electra_cpu_imdb_long"}
    # The installed preset is what gets fine-tuned; the tour's own pretraining only shows the
    # losses fall. Both arms train with the sample recipe (dropout inside the encoder too); the
    # preset as LP-FT (its encoder frozen for the first 30% of the epochs), from scratch not.
    tuned = json.loads((out_dir / "sentiment" / "run.json").read_text())
    assert tuned["pretrained"] == preset_path("electra_cpu_imdb_long")
    assert not tuned["from_scratch"]
    tuned_yaml = (out_dir / "sentiment" / "finetune.yaml").read_text()
    assert "frozen_encoder_epochs: 0.3" in tuned_yaml
    finetune_yaml = (out_dir / "sentiment_scratch" / "finetune.yaml").read_text()
    assert "encoder_dropout: 0.1" in finetune_yaml
    assert "frozen_encoder_epochs: 0.0" in finetune_yaml
    assert f"{summary['test_accuracy']['scratch']:.3f} from random initialisation" in printed
    # Step 5: the export answers for both example reviews with a label and a probability.
    assert (out_dir / "export" / "saved_model.pb").exists()
    answers = printed.split("5. exported")[1].strip().splitlines()[1:3]
    assert all(line.split()[0] in ("neg", "pos") for line in answers), answers

    # Re-run with another encoder into the same folder: the finished fine-tune is not evaluated
    # under the wrong name, nor overwritten; one line says what to do.
    capsys.readouterr()
    assert main(["quickstart", "--out-dir", str(out_dir), "--steps", "50",
                 "--finetune-epochs", "1", "--preset", "none"]) == 2
    error = capsys.readouterr().err.strip()
    assert "was fine-tuned from" in error and "--out-dir" in error and "\n" not in error
    assert json.loads((out_dir / "sentiment" / "metrics.json").read_text()) == metrics

    # --preset none fine-tunes the tour's own discriminator (resuming its finished pretraining).
    for folder in ("sentiment", "sentiment_scratch", "export"):
        shutil.rmtree(out_dir / folder)
    assert main(["quickstart", "--out-dir", str(out_dir), "--steps", "50",
                 "--finetune-epochs", "1", "--preset", "none"]) == 0
    summary = json.loads((out_dir / "summary.json").read_text())
    assert summary["preset"] == "none: pretrained 50 steps on the sample"
    tuned = json.loads((out_dir / "sentiment" / "run.json").read_text())
    assert tuned["pretrained"] == str(out_dir / "pretrained")
    assert "frozen_encoder_epochs: 0.0" in (out_dir / "sentiment" / "finetune.yaml").read_text()
