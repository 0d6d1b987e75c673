"""Pretrained encoders installed with the package, loadable by name, in the style of KerasHub's
presets: `SequenceClassifier.from_preset(NAME)` or `electra-tf finetune --pretrained NAME`.

A preset is a folder under `electra_tf/presets/` laid out like a pretraining run, so everything
that takes a run directory takes it too:

    discriminator.keras   the pretrained encoder (+ its replaced-token-detection head)
    vocab.txt             the WordPiece vocabulary it was pretrained with
    config.yaml, run.json the architecture and the tokenizer settings (case)
    preset.json           how it was made: description, data, steps, FLOPs, commit, final metrics

`write_preset` makes one from a finished `electra-tf pretrain` directory.
"""

from __future__ import annotations

import datetime
import json
import os
import shutil
import subprocess

from electra_tf.errors import ConfigError

PRESETS_DIR = os.path.dirname(os.path.abspath(__file__))
MANIFEST = "preset.json"
PRESET_FILES = ("discriminator.keras", "vocab.txt", "config.yaml", "run.json")


def available_presets(root: str | None = None) -> dict[str, dict]:
    """{name: its preset.json} for every preset folder under `root` (default: the installed
    ones), sorted by name."""
    root = root or PRESETS_DIR
    presets = {}
    for name in sorted(os.listdir(root)):
        manifest = os.path.join(root, name, MANIFEST)
        if os.path.isfile(manifest):
            with open(manifest, encoding="utf-8") as f:
                presets[name] = json.load(f)
    return presets


def is_preset_name(spec, root: str | None = None) -> bool:
    """True when `spec` names an installed preset and is not also an existing path (a local
    folder of the same name wins, as it would for any other `--pretrained` value)."""
    return (isinstance(spec, str) and not os.path.exists(spec)
            and os.path.isfile(os.path.join(root or PRESETS_DIR, spec, MANIFEST)))


def preset_path(spec: str, root: str | None = None) -> str:
    """The folder of preset `spec`: an installed preset's name, or a preset folder's path.
    Raises `ConfigError` (naming the installed presets) for anything else."""
    if os.path.isfile(os.path.join(spec, MANIFEST)):
        return spec
    if is_preset_name(spec, root):
        return os.path.join(root or PRESETS_DIR, spec)
    names = ", ".join(available_presets(root)) or "none are installed"
    raise ConfigError(f"Unknown preset {spec!r} (installed: {names}); give a preset name or "
                      "the folder of one.")


def resolve_pretrained(spec, root: str | None = None):
    """`--pretrained` as given, except that an installed preset's name becomes its folder."""
    return preset_path(spec, root) if is_preset_name(spec, root) else spec


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
    from electra_tf.run_dir import load_keras_model

    return int(load_keras_model(keras_path).count_params())


def _git_commit() -> str | None:
    """The source tree's commit, when the package runs from a git checkout."""
    try:
        result = subprocess.run(["git", "rev-parse", "HEAD"], capture_output=True, text=True,
                                cwd=PRESETS_DIR, timeout=10, check=True)
    except (OSError, subprocess.SubprocessError):
        return None
    return result.stdout.strip() or None
