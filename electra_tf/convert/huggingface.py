"""HuggingFace `transformers` ELECTRA checkpoints <-> electra_tf models, without PyTorch.

A HuggingFace checkpoint folder holds `config.json`, `model.safetensors` (or the older
`pytorch_model.bin`) and usually `vocab.txt`. Weights are matched by name:

    ours (Keras)                                  HuggingFace (PyTorch layout)
    embeddings/word_embeddings [V, E]             electra.embeddings.word_embeddings.weight [V, E]
    embedding_projection/kernel [E, H]            electra.embeddings_project.weight [H, E]
    attention/query/kernel [H, N, d]              encoder.layer.i.attention.self.query.weight [H, H]
    attention/attention_output/kernel [N, d, H]   encoder.layer.i.attention.output.dense.weight
    Dense kernels [in, out]                       Linear weights [out, in]
    LayerNorm gamma / beta                        LayerNorm weight / bias

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

from electra_tf.errors import CheckpointError, first_line

HF_PREFIX = "electra."

logger = logging.getLogger("electra_tf")


# ------------------------------------------------------------------ name and layout mapping


def _dense(layer, hf_name):
    return [(layer.kernel, f"{hf_name}.weight", "transpose"), (layer.bias, f"{hf_name}.bias", "copy")]


def _layer_norm(layer, hf_name):
    return [(layer.gamma, f"{hf_name}.weight", "copy"), (layer.beta, f"{hf_name}.bias", "copy")]


def _check_expressible(encoder) -> None:
    """Refuses an encoder that HuggingFace's ELECTRA would silently run as a different model."""
    reasons = []
    if encoder.embeddings.position_embeddings is None:
        reasons.append(f"position_embedding={encoder.position_embedding!r} (it has learned "
                       "position embeddings only)")
    if encoder.attention_bias != "none":
        reasons.append(f"attention_bias={encoder.attention_bias!r} (it has no attention bias)")
    if encoder.ffn_convolution_kernel:
        reasons.append(f"ffn_convolution_kernel={encoder.ffn_convolution_kernel} (it has no "
                       "convolutions)")
    if encoder.layer_norm_position != "post":
        reasons.append(f"layer_norm_position={encoder.layer_norm_position!r} (it is post-LN)")
    if reasons:
        raise CheckpointError(
            "HuggingFace ELECTRA cannot express this encoder: " + "; ".join(reasons) + ". Export "
            "it as a SavedModel (electra-tf export --format savedmodel) or keep the .keras file.")


def encoder_mapping(encoder, prefix=HF_PREFIX):
    """`[(keras_variable, hf_name, layout)]` for an `ElectraEncoder`; layout is `copy`,
    `transpose` (Dense kernel), `heads_in` (Q/K/V kernel or bias) or `heads_out`."""
    _check_expressible(encoder)
    emb = encoder.embeddings
    pairs = [(emb.word_embeddings.embeddings, f"{prefix}embeddings.word_embeddings.weight", "copy"),
             (emb.position_embeddings.embeddings,
              f"{prefix}embeddings.position_embeddings.weight", "copy"),
             (emb.token_type_embeddings.embeddings,
              f"{prefix}embeddings.token_type_embeddings.weight", "copy")]
    pairs += _layer_norm(emb.layer_norm, f"{prefix}embeddings.LayerNorm")
    if encoder.embedding_projection is not None:
        pairs += _dense(encoder.embedding_projection, f"{prefix}embeddings_project")
    for i, block in enumerate(encoder.transformer_layers):
        base = f"{prefix}encoder.layer.{i}."
        attention = block.attention
        for name, dense in (("query", attention.query_dense), ("key", attention.key_dense),
                            ("value", attention.value_dense)):
            pairs += [(dense.kernel, f"{base}attention.self.{name}.weight", "heads_in"),
                      (dense.bias, f"{base}attention.self.{name}.bias", "heads_in")]
        pairs += [(attention.output_dense.kernel, f"{base}attention.output.dense.weight",
                   "heads_out"),
                  (attention.output_dense.bias, f"{base}attention.output.dense.bias", "copy")]
        pairs += _layer_norm(block.attention_layer_norm, f"{base}attention.output.LayerNorm")
        pairs += _dense(block.intermediate_dense, f"{base}intermediate.dense")
        pairs += _dense(block.output_dense, f"{base}output.dense")
        pairs += _layer_norm(block.output_layer_norm, f"{base}output.LayerNorm")
    return pairs


def model_mapping(model):
    """Mapping for a `Discriminator` (ElectraForPreTraining) or `Generator`
    (ElectraForMaskedLM)."""
    from electra_tf.models.discriminator import Discriminator
    from electra_tf.models.generator import Generator

    pairs = encoder_mapping(model.encoder)
    if isinstance(model, Discriminator):
        head = model.rtd_head
        pairs += _dense(head.dense, "discriminator_predictions.dense")
        pairs += _dense(head.prediction, "discriminator_predictions.dense_prediction")
    elif isinstance(model, Generator):
        head = model.mlm_head
        pairs += _dense(head.dense, "generator_predictions.dense")
        pairs += _layer_norm(head.layer_norm, "generator_predictions.LayerNorm")
        pairs += [(head.bias, "generator_lm_head.bias", "copy")]
    else:
        raise CheckpointError(f"Cannot convert a {type(model).__name__}; give a Discriminator "
                              "or a Generator.")
    return pairs


def _to_hf(value: np.ndarray, layout: str) -> np.ndarray:
    if layout == "transpose":
        return value.T
    if layout == "heads_in":  # kernel [H, N, d] -> [N*d, H]; bias [N, d] -> [N*d]
        return value.reshape(value.shape[0], -1).T if value.ndim == 3 else value.reshape(-1)
    if layout == "heads_out":  # [N, d, H] -> [H, N*d]
        return value.reshape(-1, value.shape[-1]).T
    return value


def _from_hf(value: np.ndarray, layout: str, shape) -> np.ndarray:
    if layout in ("transpose", "heads_in", "heads_out") and value.ndim == 2:
        value = value.T
    return value.reshape(shape)


# ------------------------------------------------------------------ config


def hf_config(model) -> dict:
    """The `config.json` of HuggingFace's `ElectraConfig` for our `model`."""
    from electra_tf.models.discriminator import Discriminator

    encoder = model.encoder
    return {
        "architectures": ["ElectraForPreTraining" if isinstance(model, Discriminator)
                          else "ElectraForMaskedLM"],
        "model_type": "electra", "vocab_size": encoder.vocab_size,
        "embedding_size": encoder.embedding_size, "hidden_size": encoder.hidden_size,
        "num_hidden_layers": encoder.num_layers, "num_attention_heads": encoder.num_heads,
        "intermediate_size": encoder.intermediate_size, "hidden_act": "gelu",
        "hidden_dropout_prob": encoder.dropout,
        "attention_probs_dropout_prob": encoder.attention_dropout,
        "max_position_embeddings": encoder.max_position_embeddings,
        "type_vocab_size": encoder.type_vocab_size,
        "initializer_range": encoder.initializer_range, "layer_norm_eps": encoder.layer_norm_epsilon,
        "position_embedding_type": "absolute", "pad_token_id": 0, "tie_word_embeddings": True,
    }


def _encoder_from_hf_config(config: dict, folder: str = ""):
    from electra_tf.layers.encoder import ElectraEncoder

    where = os.path.join(folder, "config.json")
    required = ("vocab_size", "hidden_size", "num_hidden_layers", "num_attention_heads",
                "intermediate_size")
    missing = [key for key in required if key not in config]
    if missing:
        raise CheckpointError(f"{where} lacks {', '.join(missing)}; it is not a complete "
                              "ELECTRA config.")
    sizes = {key: config[key] for key in required}
    if not all(isinstance(v, int) and not isinstance(v, bool) and v >= 1 for v in sizes.values()):
        raise CheckpointError(f"{where}: the sizes must be whole numbers >= 1, got {sizes}.")
    if sizes["hidden_size"] % sizes["num_attention_heads"]:
        raise CheckpointError(f"{where}: hidden_size {sizes['hidden_size']} is not divisible by "
                              f"num_attention_heads {sizes['num_attention_heads']}; the file is "
                              "not a valid ELECTRA config.")
    act = config.get("hidden_act", "gelu")
    if act != "gelu":
        raise CheckpointError(f"hidden_act {act!r} is not supported (ELECTRA uses exact 'gelu').")
    if config.get("position_embedding_type", "absolute") != "absolute":
        raise CheckpointError("Only absolute position embeddings are supported, got "
                              f"{config['position_embedding_type']!r}.")
    hidden = config["hidden_size"]
    kwargs = dict(
        vocab_size=config["vocab_size"], embedding_size=config.get("embedding_size", hidden),
        hidden_size=hidden, num_layers=config["num_hidden_layers"],
        num_heads=config["num_attention_heads"], intermediate_size=config["intermediate_size"],
        max_position_embeddings=config.get("max_position_embeddings", 512),
        type_vocab_size=config.get("type_vocab_size", 2),
        dropout=config.get("hidden_dropout_prob", 0.1),
        attention_dropout=config.get("attention_probs_dropout_prob", 0.1),
        layer_norm_epsilon=config.get("layer_norm_eps", 1e-12),
        initializer_range=config.get("initializer_range", 0.02))
    try:
        return ElectraEncoder(**kwargs, name="encoder")
    except (ValueError, TypeError) as err:
        raise CheckpointError(f"{where} is not a valid ELECTRA config ({first_line(err)}).") \
            from None


# ------------------------------------------------------------------ save / load


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
    tensors = {name: np.ascontiguousarray(_to_hf(np.asarray(var.numpy(), np.float32), layout))
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
    encoder = _encoder_from_hf_config(config, folder)
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
            var.assign(_from_hf(value, layout, var.shape))
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
    from electra_tf.training.run_files import load_keras_model, read_json

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
