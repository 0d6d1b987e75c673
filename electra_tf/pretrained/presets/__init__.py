"""Pretrained encoders installed with the package, loadable by name, in the style of KerasHub's
presets: `SequenceClassifier.from_preset(NAME)` or `electra-tf finetune --pretrained NAME`.

A preset is a folder under `electra_tf/pretrained/presets/` laid out like a pretraining run,
so everything that takes a run directory takes it too:

    discriminator.keras   the pretrained encoder (+ its replaced-token-detection head)
    vocab.txt             the WordPiece vocabulary it was pretrained with
    config.yaml, run.json the architecture and the tokenizer settings (case)
    preset.json           how it was made: description, data, steps, FLOPs, commit, final metrics

`tools/preset_writer.py` makes one from a finished `electra-tf pretrain` directory (a
build tool of this repository, not part of the installed package).
"""

from __future__ import annotations

import json
import os

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
