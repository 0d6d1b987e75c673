"""How our models' weights map onto HuggingFace `transformers` ELECTRA checkpoints, by name and
layout, and how the two configs translate:

    ours (Keras)                                  HuggingFace (PyTorch layout)
    embeddings/word_embeddings [V, E]             electra.embeddings.word_embeddings.weight [V, E]
    embedding_projection/kernel [E, H]            electra.embeddings_project.weight [H, E]
    attention/query/kernel [H, N, d]              encoder.layer.i.attention.self.query.weight [H, H]
    attention/attention_output/kernel [N, d, H]   encoder.layer.i.attention.output.dense.weight
    Dense kernels [in, out]                       Linear weights [out, in]
    LayerNorm gamma / beta                        LayerNorm weight / bias

Reading and writing the files is `electra_tf.convert.huggingface`.
"""

from __future__ import annotations

import os

import numpy as np

from electra_tf.errors import CheckpointError, first_line

HF_PREFIX = "electra."


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


def to_hf(value: np.ndarray, layout: str) -> np.ndarray:
    if layout == "transpose":
        return value.T
    if layout == "heads_in":  # kernel [H, N, d] -> [N*d, H]; bias [N, d] -> [N*d]
        return value.reshape(value.shape[0], -1).T if value.ndim == 3 else value.reshape(-1)
    if layout == "heads_out":  # [N, d, H] -> [H, N*d]
        return value.reshape(-1, value.shape[-1]).T
    return value


def from_hf(value: np.ndarray, layout: str, shape) -> np.ndarray:
    if layout in ("transpose", "heads_in", "heads_out") and value.ndim == 2:
        value = value.T
    return value.reshape(shape)


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


def encoder_from_hf_config(config: dict, folder: str = ""):
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
