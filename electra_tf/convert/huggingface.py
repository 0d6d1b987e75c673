"""HuggingFace `transformers` ELECTRA checkpoints <-> electra_tf models, without PyTorch.

A HuggingFace checkpoint folder holds `config.json`, `model.safetensors` (or the older
`pytorch_model.bin`) and usually `vocab.txt`. Weights are matched by name
(`electra_tf.convert.hf_mapping` has the table).

`model.safetensors` is read and written with the `safetensors` package's NumPy API, so neither
direction needs PyTorch; only `pytorch_model.bin` (a pickle) needs it, and is then opened with
`torch.load(weights_only=True)`, which refuses arbitrary objects.
"""

from __future__ import annotations

import json
import logging
import os
import shutil

import numpy as np

from electra_tf.convert.hf_mapping import (
    HF_PREFIX,
    encoder_from_hf_config,
    from_hf,
    hf_config,
    model_mapping,
    to_hf,
)
from electra_tf.errors import CheckpointError, first_line

logger = logging.getLogger(__name__)


def tokenizer_config(lower_case: bool) -> dict:
    """`tokenizer_config.json` for transformers' `ElectraTokenizer` that splits text as our
    `WordPieceTokenizer(lower_case=...)` does: cased runs keep case and accents."""
    return {"tokenizer_class": "ElectraTokenizer", "do_lower_case": bool(lower_case),
            "strip_accents": None, "tokenize_chinese_chars": True}


def save_huggingface(model, out_dir: str, vocab_path: str | None = None,
                     lower_case: bool = True) -> str:
    """Writes `model` (Discriminator or Generator) as a HuggingFace folder: `config.json`,
    `model.safetensors` and, when given, `vocab.txt` with the tokenizer config for
    `lower_case` (see `tokenizer_config`)."""
    from safetensors.numpy import save_file

    # The mapping first: a model HuggingFace cannot express is refused before anything is written.
    tensors = {name: np.ascontiguousarray(to_hf(np.asarray(var.numpy(), np.float32), layout))
               for var, name, layout in model_mapping(model)}
    os.makedirs(out_dir, exist_ok=True)
    if "generator_lm_head.bias" in tensors:  # tied output layer: stored for loaders that
        tensors["generator_lm_head.weight"] = tensors[  # do not tie on their own
            f"{HF_PREFIX}embeddings.word_embeddings.weight"].copy()
    save_file(tensors, os.path.join(out_dir, "model.safetensors"), metadata={"format": "pt"})
    with open(os.path.join(out_dir, "config.json"), "w", encoding="utf-8") as f:
        json.dump(hf_config(model), f, indent=2)
    if vocab_path:
        shutil.copyfile(vocab_path, os.path.join(out_dir, "vocab.txt"))
        with open(os.path.join(out_dir, "tokenizer_config.json"), "w", encoding="utf-8") as f:
            json.dump(tokenizer_config(lower_case), f, indent=2)
    return out_dir


def _read_hf_tensors(folder: str) -> dict:
    safetensors_path = os.path.join(folder, "model.safetensors")
    if os.path.isfile(safetensors_path):
        from safetensors.numpy import load_file

        try:
            return load_file(safetensors_path)
        except Exception as err:  # SafetensorError, OSError, ...: a truncated or foreign file
            raise CheckpointError(f"{safetensors_path} cannot be read ({type(err).__name__}: "
                                  f"{first_line(err)}); it is probably truncated: download it "
                                  "again.") from None
    bin_path = os.path.join(folder, "pytorch_model.bin")
    if os.path.isfile(bin_path):
        try:
            import torch
        except ImportError as err:
            raise CheckpointError(
                f"{bin_path} is a PyTorch pickle, which needs PyTorch to read; install torch or "
                "convert it to model.safetensors.") from err
        try:
            state = torch.load(bin_path, map_location="cpu", weights_only=True)
        except Exception as err:  # UnpicklingError (refused objects), truncated zip, ...
            raise CheckpointError(
                f"{bin_path} cannot be loaded as plain tensors ({type(err).__name__}: "
                f"{first_line(err)}). A pickle holding anything but tensors is refused, because "
                "loading it could run code; use model.safetensors instead.") from None
        if not isinstance(state, dict) or not all(hasattr(v, "numpy") for v in state.values()):
            raise CheckpointError(f"{bin_path} does not hold a state dict of tensors.")
        return {k: v.float().numpy() for k, v in state.items()}
    raise CheckpointError(f"{folder} has neither model.safetensors nor pytorch_model.bin.")


def is_huggingface_source(spec: str) -> bool:
    """True for `hf:ORG/NAME` (a hub id) or a local folder with a HuggingFace `config.json`
    (ELECTRA or not, damaged or not: `load_huggingface` then says what is wrong with it)."""
    return spec.startswith("hf:") or os.path.isfile(os.path.join(spec, "config.json"))


def resolve_hf_path(name_or_path: str) -> str:
    """A local folder, or a hub id (`hf:ORG/NAME` or `ORG/NAME`, e.g.
    `google/electra-small-discriminator`) downloaded with `huggingface_hub` when it is
    installed and the network allows."""
    name_or_path = name_or_path.removeprefix("hf:")
    if os.path.isdir(name_or_path):
        return name_or_path
    if os.path.exists(name_or_path):
        raise CheckpointError(f"{name_or_path} is a file; give the folder holding config.json.")
    try:
        from huggingface_hub import snapshot_download
    except ImportError as err:
        raise CheckpointError(f"{name_or_path!r} is not a local folder, and huggingface_hub is "
                              "not installed to fetch it from the hub.") from err
    try:
        return snapshot_download(name_or_path, allow_patterns=[
            "config.json", "*.safetensors", "vocab.txt", "tokenizer_config.json"])
    except Exception as err:  # network, unknown id, ...: one clear message
        raise CheckpointError(f"Could not fetch {name_or_path!r} from the HuggingFace hub "
                              f"({type(err).__name__}: {err}); offline, give a local folder.") \
            from err


def load_huggingface(name_or_path: str, kind: str | None = None):
    """Builds our `Discriminator` (from ElectraForPreTraining weights) or `Generator` (from
    ElectraForMaskedLM) from a HuggingFace folder or hub id. `kind`: `discriminator` or
    `generator`; by default read from `config.json`'s `architectures`.

    A bare `ElectraModel` checkpoint (no head) gives a Discriminator whose head is freshly
    initialised; a warning lists what was missing."""
    from electra_tf.models.discriminator import Discriminator
    from electra_tf.models.generator import Generator

    folder = resolve_hf_path(name_or_path)
    config_path = os.path.join(folder, "config.json")
    if not os.path.isfile(config_path):
        raise CheckpointError(f"{folder} has no config.json; is it a HuggingFace checkpoint?")
    try:
        with open(config_path, encoding="utf-8") as f:
            config = json.load(f)
    except (ValueError, UnicodeDecodeError) as err:
        raise CheckpointError(f"{config_path} is damaged ({first_line(err)}); download the "
                              "checkpoint again.") from None
    if not isinstance(config, dict):
        raise CheckpointError(f"{config_path} does not hold a config object.")
    if config.get("model_type") not in (None, "electra"):
        raise CheckpointError(f"{folder} holds a {config['model_type']!r} model, not ELECTRA.")
    if kind is None:
        kind = "generator" if "ElectraForMaskedLM" in config.get("architectures", []) \
            else "discriminator"
    encoder = encoder_from_hf_config(config, folder)
    tensors = _read_hf_tensors(folder)
    if not any(name.startswith(HF_PREFIX) for name in tensors):  # saved from ElectraModel
        tensors = {HF_PREFIX + name: value for name, value in tensors.items()}
    model = (Generator if kind == "generator" else Discriminator)(encoder)
    model({"token_ids": np.array([[0, 0]], np.int32)})
    missing, used = [], set()
    for var, name, layout in model_mapping(model):
        if name not in tensors:
            missing.append(name)
            continue
        value = np.asarray(tensors[name], np.float32)
        try:
            var.assign(from_hf(value, layout, var.shape))
        except ValueError as err:
            raise CheckpointError(f"{name} has shape {value.shape} in {folder}, which does not "
                                  f"fit {var.path} {tuple(var.shape)}: config.json and the "
                                  "weights disagree.") from err
        used.add(name)
    encoder_missing = [n for n in missing if n.startswith(HF_PREFIX)]
    if encoder_missing:
        raise CheckpointError(f"{folder} lacks encoder weights, e.g. {encoder_missing[:3]}.")
    if kind == "generator":
        used |= _check_tied_output_layer(tensors, config, folder)
    _account_for_every_tensor(tensors, used, folder, kind)
    if missing:
        logger.warning(
            "%s has no %s head weights (%s); they are newly initialised.", folder, kind,
            ", ".join(missing))
    return model


# Tensors a checkpoint may hold that carry no weights: buffers transformers saves or once saved.
_BUFFERS = (f"{HF_PREFIX}embeddings.position_ids", f"{HF_PREFIX}embeddings.token_type_ids")

# Heads of other transformers ELECTRA classes, named in the message about what is not imported.
_OTHER_HEADS = {"classifier.": "a sequence-classification head (fine-tuning trains a new one)",
                "qa_outputs.": "a question-answering head",
                "discriminator_predictions.": "the replaced-token-detection head",
                "generator_predictions.": "the masked-LM head",
                "generator_lm_head.": "the masked-LM output layer"}


def _check_tied_output_layer(tensors: dict, config: dict, folder: str) -> set:
    """Our generator's output layer *is* the word-embedding table (ELECTRA ties them). Returns
    the names it accounts for; refuses a checkpoint whose output layer is its own matrix, which
    our generator cannot express (its logits would silently differ)."""
    embeddings = np.asarray(tensors[f"{HF_PREFIX}embeddings.word_embeddings.weight"], np.float32)
    output = tensors.get("generator_lm_head.weight")
    tied_by_config = config.get("tie_word_embeddings", True)
    if output is None:
        if tied_by_config:
            return set()
        raise CheckpointError(
            f"{folder} sets tie_word_embeddings=false but holds no generator_lm_head.weight; its "
            "output layer is undefined, so it cannot be imported.")
    output = np.asarray(output, np.float32)
    if output.shape == embeddings.shape and np.allclose(output, embeddings, rtol=0, atol=1e-6):
        return {"generator_lm_head.weight"}
    difference = (np.max(np.abs(output - embeddings)) if output.shape == embeddings.shape
                  else f"shape {output.shape} vs {embeddings.shape}")
    raise CheckpointError(
        f"{folder} has a masked-LM output layer (generator_lm_head.weight) that is not tied to "
        f"the word embeddings (tie_word_embeddings={str(tied_by_config).lower()}, largest "
        f"difference {difference}). electra_tf's generator ties them, as ELECTRA does, so it "
        "cannot reproduce this model; import its discriminator instead, or tie the weights "
        "before converting.")


def _account_for_every_tensor(tensors: dict, used: set, folder: str, kind: str) -> None:
    """Every tensor of the source is imported or named: an unknown encoder tensor means the
    config and the weights disagree (refused); another class's head is named in a warning."""
    unused = sorted(set(tensors) - used - set(_BUFFERS))
    encoder_unused = [name for name in unused if name.startswith(HF_PREFIX)]
    if encoder_unused:
        raise CheckpointError(
            f"{folder} holds encoder weights that its config.json does not describe, e.g. "
            f"{encoder_unused[:3]}: config.json and the weights disagree.")
    if not unused:
        return
    described = []
    for prefix, what in _OTHER_HEADS.items():
        names = [name for name in unused if name.startswith(prefix)]
        if names:
            described.append(f"{what}: {', '.join(names)}")
    others = [name for name in unused if not name.startswith(tuple(_OTHER_HEADS))]
    if others:
        described.append(f"unrecognised tensors: {', '.join(others)}")
    logger.warning(
        "Not imported from %s into the %s: %s.", folder, kind, "; ".join(described))


def export_huggingface(pretrain_dir: str, out_dir: str) -> dict:
    """Converts an `electra-tf pretrain` output directory into `out_dir/discriminator/` and
    `out_dir/generator/` HuggingFace folders (load them with `ElectraForPreTraining` /
    `ElectraForMaskedLM.from_pretrained`)."""
    paths = {name: os.path.join(pretrain_dir, f"{name}.keras")
             for name in ("discriminator", "generator")}
    if not os.path.isfile(paths["discriminator"]):
        raise CheckpointError(f"{pretrain_dir} has no discriminator.keras: give the --out-dir of "
                              "a finished 'electra-tf pretrain' run.")
    vocab = os.path.join(pretrain_dir, "vocab.txt")
    from electra_tf.files import read_json
    from electra_tf.runs.keras_files import load_keras_model

    # The tokenizer settings travel with the weights: a --cased run must not be lower-cased.
    lower_case = read_json(os.path.join(pretrain_dir, "run.json")).get("lower_case", True)
    written = {}
    for name, path in paths.items():
        if os.path.isfile(path):
            model = load_keras_model(path)
            written[name] = save_huggingface(model, os.path.join(out_dir, name),
                                             vocab if os.path.isfile(vocab) else None,
                                             lower_case=lower_case)
    return written
