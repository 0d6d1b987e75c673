"""Writes a preset (`electra_tf/pretrained/presets/NAME/`) from a finished `electra-tf pretrain` run: the
encoder, vocabulary and settings, and `preset.json` saying how it was trained. A build tool of
this repository (it records the git commit), used by `tools/make_preset.py` and the tests; the
installed package only reads presets (`electra_tf.presets`)."""

from __future__ import annotations

import datetime
import json
import os
import shutil
import subprocess

from electra_tf.errors import ConfigError
from electra_tf.pretrained.presets import MANIFEST, PRESET_FILES


def write_preset(run_dir: str, out_dir: str, *, description: str, data: str,
                 extra: dict | None = None) -> dict:
    """Copies a finished pretraining run's encoder, vocabulary and settings into `out_dir` and
    records how it was trained in `preset.json` (returned)."""
    from electra_tf.config import load_config
    from electra_tf.training.flops import pretraining_flops_per_sequence

    missing = [name for name in (*PRESET_FILES, "metrics.json")
               if not os.path.isfile(os.path.join(run_dir, name))]
    if missing:
        raise ConfigError(f"{run_dir} is not a finished pretraining run (no {missing[0]}).")
    os.makedirs(out_dir, exist_ok=True)
    for name in PRESET_FILES:
        shutil.copyfile(os.path.join(run_dir, name), os.path.join(out_dir, name))
    with open(os.path.join(run_dir, "metrics.json"), encoding="utf-8") as f:
        metrics = json.load(f)
    config = load_config(os.path.join(run_dir, "config.yaml"))
    manifest = {
        "name": os.path.basename(os.path.normpath(out_dir)),
        "description": description,
        "data": data,
        "steps": metrics["steps"],
        "batch_size": metrics["batch_size"],
        "max_seq_length": metrics["max_seq_length"],
        "train_flops": pretraining_flops_per_sequence(config) * metrics["steps"]
        * metrics["batch_size"],
        "train_time_s": metrics["train_time_s"],
        "final_metrics": metrics["final"],
        "discriminator_parameters": _parameter_count(os.path.join(out_dir, PRESET_FILES[0])),
        "commit": _git_commit(),
        "created": datetime.date.today().isoformat(),
        **(extra or {}),
    }
    with open(os.path.join(out_dir, MANIFEST), "w", encoding="utf-8") as f:
        json.dump(manifest, f, indent=2)
        f.write("\n")
    return manifest


def _parameter_count(keras_path: str) -> int:
    from electra_tf.runs.keras_files import load_keras_model

    return int(load_keras_model(keras_path).count_params())


def _git_commit() -> str | None:
    """The source tree's commit, when the package runs from a git checkout."""
    try:
        result = subprocess.run(["git", "rev-parse", "HEAD"], capture_output=True, text=True,
                                cwd=os.path.dirname(os.path.abspath(__file__)), timeout=10, check=True)
    except (OSError, subprocess.SubprocessError):
        return None
    return result.stdout.strip() or None
