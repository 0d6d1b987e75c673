"""Google's official TF1 ELECTRA checkpoints (`model.ckpt-*` + `vocab.txt`) -> electra_tf.

The authors' code names its variables BERT-style under `electra/` (the discriminator and the
shared embeddings), `generator/` (the generator's own Transformer), `discriminator_predictions/`
and `generator_predictions/`. Kernels are `[in, out]` as in Keras; only the attention kernels
need reshaping to our per-head `[hidden, heads, head_size]` layout. The checkpoint does not
record the number of heads: ELECTRA uses 64-wide heads (`hidden // 64`), overridable.
"""

from __future__ import annotations

import logging
import os
import re

import numpy as np
import tensorflow as tf

from electra_tf.errors import CheckpointError

logger = logging.getLogger(__name__)


def _encoder_names(scope: str, num_layers: int, has_projection: bool, embeddings="electra"):
    """`[(our_path_suffix, tf1_name)]` for one encoder (paths relative to the encoder)."""
    pairs = [(f"embeddings/{name}/embeddings", f"{embeddings}/embeddings/{name}")
             for name in ("word_embeddings", "position_embeddings", "token_type_embeddings")]
    pairs += [("embeddings/layer_norm/gamma", f"{embeddings}/embeddings/LayerNorm/gamma"),
              ("embeddings/layer_norm/beta", f"{embeddings}/embeddings/LayerNorm/beta")]
    if has_projection:
        pairs += [("embedding_projection/kernel", f"{scope}/embeddings_project/kernel"),
                  ("embedding_projection/bias", f"{scope}/embeddings_project/bias")]
    for i in range(num_layers):
        ours, theirs = f"transformer_layer_{i}/", f"{scope}/encoder/layer_{i}/"
        for name in ("query", "key", "value"):
            for part in ("kernel", "bias"):
                pairs.append((f"{ours}attention/{name}/{part}",
                              f"{theirs}attention/self/{name}/{part}"))
        pairs += [(f"{ours}attention/attention_output/kernel", f"{theirs}attention/output/dense/kernel"),
                  (f"{ours}attention/attention_output/bias", f"{theirs}attention/output/dense/bias")]
        for ln_ours, ln_theirs in (("attention_layer_norm", "attention/output/LayerNorm"),
                                   ("output_layer_norm", "output/LayerNorm")):
            pairs += [(f"{ours}{ln_ours}/gamma", f"{theirs}{ln_theirs}/gamma"),
                      (f"{ours}{ln_ours}/beta", f"{theirs}{ln_theirs}/beta")]
        for dense_ours, dense_theirs in (("intermediate", "intermediate/dense"),
                                         ("output", "output/dense")):
            pairs += [(f"{ours}{dense_ours}/kernel", f"{theirs}{dense_theirs}/kernel"),
                      (f"{ours}{dense_ours}/bias", f"{theirs}{dense_theirs}/bias")]
    return pairs


def _checkpoint_reader(path: str):
    if os.path.isdir(path):
        latest = tf.train.latest_checkpoint(path)
        if latest is None:
            candidates = sorted({f.split(".index")[0] for f in os.listdir(path)
                                 if f.endswith(".index")})
            if not candidates:
                raise CheckpointError(f"{path} holds no TF checkpoint (model.ckpt-*.index).")
            latest = os.path.join(path, candidates[-1])
        path = latest
    try:
        return tf.train.load_checkpoint(path), path
    except tf.errors.NotFoundError as err:
        raise CheckpointError(f"Cannot read TF checkpoint {path!r}: {err}. Give the "
                              "model.ckpt-N prefix or its folder.") from err
    except (tf.errors.OpError, RuntimeError, ValueError, IndexError) as err:
        raise _damaged(f"The TF checkpoint {path!r}", err) from err


def _damaged(what: str, err: Exception) -> CheckpointError:
    """The one-line error for a checkpoint whose files are cut short or corrupted (TensorFlow
    says "not an sstable", "Checksum does not match", or "Read less bytes than requested")."""
    reason = str(getattr(err, "message", err)).strip().splitlines()[0][:120]
    return CheckpointError(f"{what} is damaged ({reason}); download or copy the checkpoint "
                           "again (its .index and .data-* files together).")


def _encoder_kwargs(shapes: dict, scope: str, num_heads: int | None, embeddings="electra"):
    layers = {int(m.group(1)) for name in shapes
              if (m := re.match(rf"{scope}/encoder/layer_(\d+)/", name))}
    if not layers:
        raise CheckpointError(f"No '{scope}/encoder/layer_*' variables: not an official ELECTRA "
                              "checkpoint.")
    vocab_size, embedding_size = shapes[f"{embeddings}/embeddings/word_embeddings"]
    hidden = shapes[f"{scope}/encoder/layer_0/attention/self/query/kernel"][1]
    if num_heads and hidden % num_heads:
        raise CheckpointError(f"{scope}: hidden size {hidden} is not divisible by "
                              f"num_heads={num_heads}; ELECTRA uses hidden // 64 heads.")
    return dict(vocab_size=vocab_size, embedding_size=embedding_size, hidden_size=hidden,
                num_layers=max(layers) + 1, num_heads=num_heads or max(1, hidden // 64),
                intermediate_size=shapes[f"{scope}/encoder/layer_0/intermediate/dense/kernel"][1],
                max_position_embeddings=shapes[f"{embeddings}/embeddings/position_embeddings"][0],
                type_vocab_size=shapes[f"{embeddings}/embeddings/token_type_embeddings"][0])


def _assign(model, pairs, reader, prefix) -> set:
    """Copies each checkpoint tensor of `pairs` into `model`; returns the names it read."""
    by_path = {v.path.split("/", 1)[1]: v for v in model.weights}  # drop the model's own name
    for ours, theirs in pairs:
        var = by_path.get(prefix + ours)
        if var is None:
            raise CheckpointError(f"internal: no variable {prefix + ours} in {model.name}")
        try:
            value = reader.get_tensor(theirs).astype(np.float32)
        except (tf.errors.OpError, RuntimeError, ValueError, IndexError) as err:
            raise _damaged(f"variable {theirs} of the checkpoint", err) from err
        if value.size != np.prod(var.shape):
            raise CheckpointError(f"{theirs} has shape {value.shape}, {var.path} needs "
                                  f"{tuple(var.shape)}: num_heads or the config disagree.")
        var.assign(value.reshape(var.shape))
    return {theirs for _, theirs in pairs}


# Training state, not weights: the authors' AdamWeightDecay slots and the step counter.
_TRAINING_STATE = re.compile(r"(^global_step$|/adam_[mv]$|/Adam(_1)?$)")


def _account_for_every_variable(shapes: dict, used: set, resolved: str) -> None:
    """Every variable of the checkpoint is imported, training state, or named: an encoder
    variable left over means the checkpoint has more than we rebuilt (refused)."""
    unused = sorted(name for name in set(shapes) - used if not _TRAINING_STATE.search(name))
    encoder = [n for n in unused if re.match(r"(electra|generator)/(encoder|embeddings)", n)]
    if encoder:
        raise CheckpointError(f"{resolved} holds encoder variables that were not imported, e.g. "
                              f"{encoder[:3]}: it is not laid out like the authors' ELECTRA.")
    if unused:
        logger.warning("Not imported from %s: %s (not part of ELECTRA's discriminator or "
                       "generator).", resolved, ", ".join(unused))


def load_tf1_checkpoint(path: str, num_heads: int | None = None,
                        generator_num_heads: int | None = None) -> dict:
    """Reads an official ELECTRA TF1 checkpoint into `{"discriminator": Discriminator,
    "generator": Generator or None}` (the generator exists in pretraining checkpoints, not in
    released fine-tuning ones)."""
    from electra_tf.layers.encoder import ElectraEncoder
    from electra_tf.models.discriminator import Discriminator
    from electra_tf.models.generator import Generator

    reader, resolved = _checkpoint_reader(path)
    shapes = reader.get_variable_to_shape_map()
    if "electra/embeddings/word_embeddings" not in shapes:
        raise CheckpointError(f"{resolved} has no 'electra/embeddings/word_embeddings': not an "
                              "official ELECTRA checkpoint.")
    dummy = {"token_ids": np.array([[0, 0]], np.int32)}
    kwargs = _encoder_kwargs(shapes, "electra", num_heads)
    disc = Discriminator(ElectraEncoder(**kwargs, name="encoder"), name="discriminator")
    disc(dummy)
    enc_prefix = "encoder/"
    has_projection = kwargs["embedding_size"] != kwargs["hidden_size"]
    used = _assign(disc, _encoder_names("electra", kwargs["num_layers"], has_projection), reader,
                   enc_prefix)
    if "discriminator_predictions/dense/kernel" not in shapes:
        logger.warning("%s has no discriminator_predictions head (a fine-tuning checkpoint?); "
                       "the discriminator's head is newly initialised.", resolved)
    else:
        head = [("transform/kernel", "discriminator_predictions/dense/kernel"),
                ("transform/bias", "discriminator_predictions/dense/bias"),
                ("prediction/kernel", "discriminator_predictions/dense_1/kernel"),
                ("prediction/bias", "discriminator_predictions/dense_1/bias")]
        used |= _assign(disc, head, reader, "rtd_head/")
    result = {"discriminator": disc, "generator": None, "checkpoint": resolved}
    if any(name.startswith("generator/encoder/") for name in shapes):
        # Separate generator embeddings exist only when the authors' share_embeddings is off.
        own = "generator/embeddings/word_embeddings" in shapes
        emb_scope = "generator" if own else "electra"
        gen_kwargs = _encoder_kwargs(shapes, "generator", generator_num_heads, emb_scope)
        gen = Generator(ElectraEncoder(**gen_kwargs, name="encoder"), name="generator")
        gen(dummy)
        projection = gen_kwargs["embedding_size"] != gen_kwargs["hidden_size"]
        used |= _assign(gen, _encoder_names("generator", gen_kwargs["num_layers"], projection,
                                            emb_scope), reader, enc_prefix)
        head = [("transform/kernel", "generator_predictions/dense/kernel"),
                ("transform/bias", "generator_predictions/dense/bias"),
                ("layer_norm/gamma", "generator_predictions/LayerNorm/gamma"),
                ("layer_norm/beta", "generator_predictions/LayerNorm/beta"),
                ("bias", "generator_predictions/output_bias")]
        used |= _assign(gen, head, reader, "mlm_head/")
        result["generator"] = gen
    _account_for_every_variable(shapes, used, resolved)
    return result
