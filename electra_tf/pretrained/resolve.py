"""`resolve(spec)`: the one reader of `--pretrained` and `from_pretrained`.

Every kind of source a user may name resolves to a `PretrainedSource`, which says what it is and
gives what a caller needs -- the encoder, the vocabulary and its casing, the architecture --
each read only when asked (a `--from-scratch` baseline needs the vocabulary and architecture of
a run, never its weights):

    kind             spec                                 encoder from
    pretraining run  an `electra-tf pretrain` folder      discriminator.keras (MLM: generator)
    preset           an installed preset's name/folder    discriminator.keras
    import           an `electra-tf import` folder        discriminator.keras (else generator)
    fine-tuned run   an `electra-tf finetune` folder      classifier.keras (else best weights)
    huggingface      a HuggingFace folder, `hf:ORG/NAME`  config.json + safetensors / .bin
    tf1              Google's TF1 checkpoint, its folder  model.ckpt-N
    keras file       a `.keras` file of an electra_tf model (its vocabulary given beside it)
    model            a Keras model with an `encoder`, or an `ElectraEncoder`
"""

from __future__ import annotations

import dataclasses
import os
from typing import Any

from electra_tf.errors import CheckpointError, ConfigError
from electra_tf.files import read_json
from electra_tf.pretrained.presets import MANIFEST, is_preset_name, preset_path
from electra_tf.runs.layouts import FinetunePaths, PretrainPaths, run_kind

SOURCE_KINDS = ("pretraining run", "preset", "import", "fine-tuned run", "huggingface", "tf1",
                "keras file", "model")

_WHAT_TO_GIVE = ("give the --out-dir of an 'electra-tf pretrain' or 'finetune' run, an installed "
                 "preset's name ('electra-tf presets'), a HuggingFace folder or hf:ORG/NAME, a "
                 "TF1 checkpoint, or a .keras file")


@dataclasses.dataclass
class PretrainedSource:
    """A resolved `--pretrained`: what it is, where it is, how to read it.

    Attributes:
        spec: as the user gave it.
        kind: one of `SOURCE_KINDS`.
        path: the local file or folder it resolved to (a hub id's snapshot, a preset's folder);
            None for a model object. This is what a fine-tuning run records as its origin.
        lower_case: whether its vocabulary is uncased (None: unknown, a bare model file).
        vocab_path: its vocab.txt (None: a bare model file or object; give one).
    """

    spec: Any
    kind: str
    path: str | None
    lower_case: bool | None = True
    vocab_path: str | None = None
    model: Any = dataclasses.field(default=None, repr=False)  # a model object given as such

    # ------------------------------------------------------------------ what callers read

    def vocabulary(self) -> list[str]:
        """The vocabulary the encoder was pretrained with.

        Raises:
            ConfigError: the source has none of its own (a model file or object): give one.
            CheckpointError: its folder lacks the vocab.txt it should hold.
        """
        from electra_tf.data.vocab import load_vocabulary

        if self.vocab_path is None:
            raise ConfigError(f"{self.spec} is a model {'file' if self.path else 'object'}: also "
                              "give --vocab (the vocabulary it was pretrained with).")
        if not os.path.isfile(self.vocab_path):
            raise CheckpointError(f"{self.path} has no vocab.txt; is it the folder of an "
                                  "'electra-tf pretrain' run?")
        return load_vocabulary(self.vocab_path)

    def model_config(self):
        """The encoder's architecture as a `ModelConfig` when the source records one (an
        electra_tf run or preset: its config.yaml), else None."""
        from electra_tf.config.pretraining import load_config

        config_path = self._join("config.yaml")
        return load_config(config_path).model if config_path and os.path.isfile(config_path) \
            else None

    def load_model(self):
        """The Keras model that holds the encoder (a discriminator, a generator, a classifier).

        Raises:
            CheckpointError: the model file is missing (an unfinished pretraining run), damaged,
                or not a model electra_tf can read; the message says what to do.
        """
        from electra_tf.runs.keras_files import load_keras_model

        if self.kind == "model":
            return self.model
        if self.kind == "huggingface":
            from electra_tf.convert.huggingface import load_huggingface

            return load_huggingface(self.path, kind="discriminator")
        if self.kind == "tf1":
            from electra_tf.convert.tf1 import load_tf1_checkpoint

            return load_tf1_checkpoint(self.path)["discriminator"]
        if self.kind == "fine-tuned run":
            from electra_tf.pretrained.finetuned import load_classifier

            return load_classifier(FinetunePaths(self.path))
        if self.kind == "keras file":
            return load_keras_model(self.path)
        return load_keras_model(_run_model_file(self.path))

    def encoder(self):
        """The pretrained `ElectraEncoder` (with its pretrained weights).

        Raises:
            CheckpointError: the model holds no ELECTRA encoder, or cannot be loaded.
        """
        from electra_tf.layers.encoder import ElectraEncoder

        model = self.load_model()
        encoder = model if isinstance(model, ElectraEncoder) else getattr(model, "encoder", None)
        if not isinstance(encoder, ElectraEncoder):
            raise CheckpointError(f"{self.spec!r} holds a {type(model).__name__}, which has no "
                                  "ELECTRA encoder to fine-tune.")
        return encoder

    def _join(self, name: str) -> str | None:
        return os.path.join(self.path, name) if self.path and os.path.isdir(self.path) else None


def resolve(spec, presets_root: str | None = None) -> PretrainedSource:
    """What `spec` names (see the module docstring), checked to exist; nothing is loaded yet.

    Args:
        spec: a path, an installed preset's name, `hf:ORG/NAME`, a model object, or a
            `PretrainedSource` (returned as it is).
        presets_root: where installed presets live (tests; default: the package's).

    Raises:
        CheckpointError: `spec` names nothing that exists, or a folder of no kind we read.
    """
    from electra_tf.convert.huggingface import is_huggingface_source, resolve_hf_path

    if isinstance(spec, PretrainedSource):
        return spec
    if not isinstance(spec, (str, os.PathLike)):
        return PretrainedSource(spec, "model", None, lower_case=None, model=spec)
    given = spec = os.fspath(spec)
    if is_preset_name(spec, presets_root):
        spec = preset_path(spec, presets_root)
    if spec.startswith("hf:") or (os.path.isdir(spec) and is_huggingface_source(spec)):
        folder = resolve_hf_path(spec)  # a local snapshot folder from now on
        tokenizer = read_json(os.path.join(folder, "tokenizer_config.json"))
        return PretrainedSource(given, "huggingface", folder,
                                bool(tokenizer.get("do_lower_case", True)),
                                os.path.join(folder, "vocab.txt"))
    if os.path.isdir(spec):
        return _resolve_folder(given, spec)
    if os.path.isfile(spec):
        if not spec.endswith(".keras"):
            raise CheckpointError(f"Pretrained model {given!r} is a file electra_tf does not read "
                                  f"as a model; {_WHAT_TO_GIVE}.")
        return PretrainedSource(given, "keras file", spec, lower_case=None)
    if os.path.isfile(f"{spec}.index"):  # a TF1 checkpoint prefix, model.ckpt-N
        return _tf1_source(given, spec, os.path.dirname(spec))
    raise CheckpointError(f"Pretrained model {given!r} does not exist; {_WHAT_TO_GIVE}.")


def resolve_preset(spec: str, presets_root: str | None = None) -> PretrainedSource:
    """`resolve` for an installed preset's name or a preset folder only.

    Raises:
        ConfigError: `spec` is neither (the message names the installed presets).
    """
    return resolve(preset_path(spec, presets_root), presets_root)


def _resolve_folder(given: str, folder: str) -> PretrainedSource:
    kind = run_kind(folder)
    if kind == "export":
        raise CheckpointError(f"{given} is an exported SavedModel, which cannot be fine-tuned "
                              "further; give the fine-tuning run it was exported from.")
    if kind == "fine-tuning":
        paths = FinetunePaths(folder)
        return PretrainedSource(given, "fine-tuned run", folder,
                                bool(read_json(paths.run).get("lower_case", True)), paths.vocab)
    if kind is None and _holds_tf1_checkpoint(folder):
        return _tf1_source(given, folder, folder)
    paths = PretrainPaths(folder)
    is_preset = os.path.isfile(paths.join(MANIFEST))
    if kind is None and not is_preset and not any(
            os.path.isfile(paths.join(name))
            for name in ("discriminator.keras", "generator.keras", "vocab.txt")):
        raise CheckpointError(f"{given} holds no pretrained model electra_tf reads; "
                              f"{_WHAT_TO_GIVE}.")
    # Model files without run records are read as a pretraining run's.
    kind = "preset" if is_preset else {None: "pretraining run", "pretraining": "pretraining run",
                                       "import": "import"}[kind]
    return PretrainedSource(given, kind, folder,
                            bool(read_json(paths.run).get("lower_case", True)), paths.vocab)


def _holds_tf1_checkpoint(folder: str) -> bool:
    return any(name.endswith(".index") for name in os.listdir(folder))


def _tf1_source(given: str, path: str, folder: str) -> PretrainedSource:
    # Google's releases are uncased, and their vocab.txt sits beside the checkpoint.
    return PretrainedSource(given, "tf1", path, True, os.path.join(folder, "vocab.txt"))


def _run_model_file(folder: str) -> str:
    """The model file of a pretraining run, preset or import folder whose encoder is fine-tuned.

    An MLM-objective run's generator is full-size and is the encoder to fine-tune; an ELECTRA
    run's generator is the small helper network and never is. A folder with a generator only
    and no config.yaml is an imported ElectraForMaskedLM: its encoder is a masked-LM encoder.
    """
    from electra_tf.config.pretraining import load_config

    paths = PretrainPaths(folder)
    name = "discriminator.keras"
    if os.path.isfile(paths.config) and not load_config(paths.config).pretraining \
            .electra_objective:
        name = "generator.keras"
    if os.path.isfile(paths.join(name)):
        return paths.join(name)
    if os.path.isfile(paths.generator) and not os.path.isfile(paths.config):
        return paths.generator
    raise CheckpointError(f"{folder} has no {name}: give the --out-dir of a finished "
                          "'electra-tf pretrain' run (an unfinished run writes them when it "
                          "completes; re-run its command to finish).")

