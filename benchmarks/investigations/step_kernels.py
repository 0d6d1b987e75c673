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

Compiled `tf.function`s, each new one alternating call by call with the old one (medians of 100
calls each), in float32 and bfloat16 where it applies.
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
from kernel_timing import paired_median_ms, write_timings  # noqa: E402

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


def forward_backward(function, weights=()):
    """A compiled forward + backward of `function(x)`: the output and the gradients of its sum
    with respect to `x` and `weights`."""
    @tf.function
    def run(x):
        with tf.GradientTape() as tape:
            tape.watch(x)
            y = function(x)
            loss = tf.reduce_sum(tf.cast(y, tf.float32))
        return y, tape.gradient(loss, [x, *weights])
    return run


def old_exact_gelu(x):
    """The replaced exact_gelu: Keras' GELU on a float32 copy, differentiated by autodiff."""
    return tf.cast(keras.activations.gelu(tf.cast(x, tf.float32), approximate=False), x.dtype)


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


def pairs():
    """(operation, old label, new label, old function, new function, args) of every change."""
    logits = tf.random.normal([32, 20, 30522]) * 3.0
    uniform = tf.random.uniform([32, 20])
    seed = keras.random.SeedGenerator(0)
    yield ("sampling [32,20,30522]", "Cumsum over the vocabulary", "two-level sample_tokens",
           tf.function(cumsum_sampler), tf.function(lambda x, u: sample_tokens(x, 1.0, seed)),
           (logits, uniform))
    probabilities = tf.nn.softmax(tf.random.normal([32, 4, 128, 128]))
    activations = tf.random.normal([4096, 1024])
    hidden = tf.random.normal([32, 128, 256])
    for dtype in ("float32", "bfloat16"):
        keras_dropout, ours = keras.layers.Dropout(0.1, seed=0), HalfBitsDropout(0.1, seed=0)
        yield (f"dropout [32,4,128,128] {dtype}", "keras.layers.Dropout", "HalfBitsDropout",
               tf.function(lambda x, layer=keras_dropout: layer(x, training=True)),
               tf.function(lambda x, layer=ours: layer(x, training=True)),
               (tf.cast(probabilities, dtype),))
        yield (f"GELU fwd+bwd [4096,1024] {dtype}", "autodiff (old exact_gelu)",
               "exact_gelu, written gradient", forward_backward(old_exact_gelu),
               forward_backward(exact_gelu), (tf.cast(activations, dtype),))
        policy = "mixed_bfloat16" if dtype == "bfloat16" else dtype
        keras_norm = keras.layers.LayerNormalization(epsilon=1e-12, dtype=policy)
        ours = LayerNorm(epsilon=1e-12, dtype=policy)
        for layer in (keras_norm, ours):
            layer.build(hidden.shape)
        yield (f"LayerNorm fwd+bwd [32,128,256] {dtype}", "keras.layers.LayerNormalization",
               "LayerNorm, written gradient",
               forward_backward(keras_norm, [keras_norm.gamma, keras_norm.beta]),
               forward_backward(ours, [ours.gamma, ours.beta]), (tf.cast(hidden, dtype),))
    query, key = tf.random.normal([32, 128, 4, 64]), tf.random.normal([32, 128, 4, 64])
    mask = tf.sequence_mask(tf.fill([32], 112), 128)[:, None, None, :]
    for name, policy in (("float32", keras.DTypePolicy("float32")),
                         ("bfloat16_matmul", BFloat16MatmulPolicy())):
        yield (f"attention probs fwd+bwd [32,4,128,128] {name}", "scaled logits, select mask",
               "scaled queries, mask bias", attention_probabilities(False, policy),
               attention_probabilities(True, policy), (query, key, mask))


def main():
    rows = {}
    for operation, old_label, new_label, old, new, args in pairs():
        rows[f"{operation}: {old_label}"], rows[f"{operation}: {new_label}"] = paired_median_ms(
            old, new, *args)
    write_timings("step_kernels",
                  "Pretraining-step kernels: each change against what it replaced",
                  "python benchmarks/investigations/step_kernels.py",
                  "medians of 100 calls each, the old and the new function alternating.", rows,
                  results_dir=RESULTS)


if __name__ == "__main__":
    main()
