"""The kernel-level changes to the pretraining step, each timed against what it replaced.

    .venv/bin/python benchmarks/investigations/step_kernels.py

- generator sampling over `[32, 20, 30522]` logits: one `Cumsum` over the vocabulary (the old
  inverse-CDF search) vs `electra_tf.models.objective.sample_tokens` (two-level, blocks of 128);
- dropout of `[32, 4, 128, 128]` attention probabilities: Keras' `Dropout` vs `HalfBitsDropout`;
- forward + backward of the exact GELU on a `[4096, 1024]` FFN activation: autodiff through
  Keras' GELU on a float32 copy (the old `exact_gelu`) vs `exact_gelu` with its written gradient;
- forward + backward of LayerNorm on a `[32, 128, 256]` hidden state: Keras'
  `LayerNormalization` (autodiff) vs `electra_tf.layers.normalization.LayerNorm` (written
  gradient);
- forward + backward of the attention logits -> probabilities of ELECTRA-Small
  (`[32, 128, 4, 64]` queries and keys, 16 padded keys per sequence): scale on the logits and
  padding as a select (the old `MultiHeadSelfAttention`) vs scale on the queries and padding as a
  bias, with `Q K^T` in float32 and in bfloat16 (the bfloat16_matmul precision).

Medians of 20 calls of compiled `tf.function`s, in float32 and bfloat16 where it applies.
Writes benchmarks/investigations/results/step_kernels.{json,md}.
"""

from __future__ import annotations

import os
import sys

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
HERE = os.path.dirname(os.path.abspath(__file__))  # benchmarks/investigations
RESULTS = os.path.join(HERE, "results")
sys.path.insert(0, os.path.dirname(HERE))  # kernel_timing

import keras  # noqa: E402
import tensorflow as tf  # noqa: E402
from kernel_timing import median_ms, write_timings  # noqa: E402

from electra_tf.layers.activations import exact_gelu  # noqa: E402
from electra_tf.layers.dropout import HalfBitsDropout  # noqa: E402
from electra_tf.layers.matmul import BFloat16MatmulPolicy, einsum  # noqa: E402
from electra_tf.layers.normalization import LayerNorm  # noqa: E402
from electra_tf.models.objective import sample_tokens  # noqa: E402


def cumsum_sampler(logits, uniform):
    """The replaced search: CDF over the whole vocabulary, then one searchsorted."""
    unnormalised = tf.exp(logits - tf.reduce_max(logits, axis=-1, keepdims=True))
    cdf = tf.cumsum(unnormalised, axis=-1)
    vocab = tf.shape(logits)[-1]
    index = tf.searchsorted(tf.reshape(cdf, [-1, vocab]),
                            tf.reshape(uniform * cdf[..., -1], [-1, 1]), side="right")
    return tf.reshape(tf.minimum(index, vocab - 1), tf.shape(uniform))


def gelu_forward_backward(gelu):
    @tf.function
    def run(x):
        with tf.GradientTape() as tape:
            tape.watch(x)
            y = gelu(x)
            loss = tf.reduce_sum(tf.cast(y, tf.float32))
        return y, tape.gradient(loss, x)
    return run


def old_exact_gelu(x):
    """The replaced exact_gelu: Keras' GELU on a float32 copy, differentiated by autodiff."""
    return tf.cast(keras.activations.gelu(tf.cast(x, tf.float32), approximate=False), x.dtype)


def layer_norm_forward_backward(layer):
    @tf.function
    def run(x):
        with tf.GradientTape() as tape:
            tape.watch(x)
            y = layer(x)
            loss = tf.reduce_sum(tf.cast(y, tf.float32))
        return y, tape.gradient(loss, [x, layer.gamma, layer.beta])
    return run


def attention_probabilities(scale_queries_mask_as_bias, policy):
    """Forward + backward of `softmax(Q K^T / sqrt(d) masked)` as the attention layer computes
    it now (True) or did before (False); `Q K^T` in `policy`'s matmul dtype."""
    @tf.function
    def run(query, key, mask):
        with tf.GradientTape() as tape:
            tape.watch([query, key])
            if scale_queries_mask_as_bias:
                logits = einsum("btnh,bsnh->bnts", query * 0.125, key, policy)
                logits = logits + (1.0 - tf.cast(mask, tf.float32)) * -1e9
            else:
                logits = einsum("btnh,bsnh->bnts", query, key, policy) * 0.125
                logits = tf.where(mask, logits, -1e9)
            probs = tf.nn.softmax(logits, axis=-1)
            loss = tf.reduce_sum(probs * probs)
        return probs, tape.gradient(loss, [query, key])
    return run


def main():
    logits = tf.random.normal([32, 20, 30522]) * 3.0
    uniform = tf.random.uniform([32, 20])
    seed = keras.random.SeedGenerator(0)
    rows = {
        "sampling [32,20,30522]: Cumsum over the vocabulary": median_ms(
            tf.function(cumsum_sampler), logits, uniform),
        "sampling [32,20,30522]: two-level sample_tokens": median_ms(
            tf.function(lambda x: sample_tokens(x, 1.0, seed)), logits),
    }
    probabilities = tf.nn.softmax(tf.random.normal([32, 4, 128, 128]))
    activations = tf.random.normal([4096, 1024])
    for dtype in ("float32", "bfloat16"):
        probs, acts = tf.cast(probabilities, dtype), tf.cast(activations, dtype)
        keras_dropout, ours = keras.layers.Dropout(0.1, seed=0), HalfBitsDropout(0.1, seed=0)
        rows[f"dropout [32,4,128,128] {dtype}: keras.layers.Dropout"] = median_ms(
            tf.function(lambda x, layer=keras_dropout: layer(x, training=True)), probs)
        rows[f"dropout [32,4,128,128] {dtype}: HalfBitsDropout"] = median_ms(
            tf.function(lambda x, layer=ours: layer(x, training=True)), probs)
        rows[f"GELU fwd+bwd [4096,1024] {dtype}: autodiff (old exact_gelu)"] = median_ms(
            gelu_forward_backward(old_exact_gelu), acts)
        rows[f"GELU fwd+bwd [4096,1024] {dtype}: exact_gelu, written gradient"] = median_ms(
            gelu_forward_backward(exact_gelu), acts)
    hidden = tf.random.normal([32, 128, 256])
    for dtype in ("float32", "bfloat16"):
        x = tf.cast(hidden, dtype)
        keras_norm = keras.layers.LayerNormalization(epsilon=1e-12, dtype=f"mixed_{dtype}"
                                                     if dtype == "bfloat16" else dtype)
        ours = LayerNorm(epsilon=1e-12, dtype=keras_norm.dtype_policy)
        for layer in (keras_norm, ours):
            layer.build(x.shape)
        rows[f"LayerNorm fwd+bwd [32,128,256] {dtype}: keras.layers.LayerNormalization"] = (
            median_ms(layer_norm_forward_backward(keras_norm), x))
        rows[f"LayerNorm fwd+bwd [32,128,256] {dtype}: LayerNorm, written gradient"] = (
            median_ms(layer_norm_forward_backward(ours), x))
    query, key = tf.random.normal([32, 128, 4, 64]), tf.random.normal([32, 128, 4, 64])
    mask = tf.sequence_mask(tf.fill([32], 112), 128)[:, None, None, :]
    for name, policy in (("float32", keras.DTypePolicy("float32")),
                         ("bfloat16_matmul", BFloat16MatmulPolicy())):
        rows[f"attention probs fwd+bwd [32,4,128,128] {name}: scaled logits, select mask"] = (
            median_ms(attention_probabilities(False, policy), query, key, mask))
        rows[f"attention probs fwd+bwd [32,4,128,128] {name}: scaled queries, mask bias"] = (
            median_ms(attention_probabilities(True, policy), query, key, mask))
    write_timings("step_kernels",
                  "Pretraining-step kernels: each change against what it replaced",
                  "python benchmarks/investigations/step_kernels.py", "medians of 20 calls.", rows,
                  results_dir=RESULTS)


if __name__ == "__main__":
    main()
