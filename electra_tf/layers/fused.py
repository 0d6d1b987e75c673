"""XLA-fused elementwise kernels of the Transformer block, with hand-written gradients.

Between its matmuls an encoder block does only elementwise and row-wise work: bias adds,
GELU, the attention mask and softmax, dropout, residual sums, LayerNorm, and casts between the
matmul dtype and the compute dtype. TensorFlow runs each of those as its own kernel, one pass
over memory each, and under bfloat16 they cost several times what the matmuls do on a CPU with
native bfloat16 (AMX, AVX512-BF16): `benchmarks/investigations/results/
pretrain_step_profile_before_fusion.md`.
Each function here compiles such a chain with XLA (`tf.function(jit_compile=True)`) into one
kernel forward and one backward that read their inputs in whatever dtype the matmul produced,
compute in float32 and write the dtype the next op wants, so casts cost no pass of their own.

Three things stay outside the kernels (measured: `benchmarks/investigations/results/
fused_kernels.md`): the matmuls (oneDNN's, faster than XLA's on CPU); the random bits of dropout
(XLA's Philox is ~40x slower than TensorFlow's kernel; the bits come from `random_halves`,
exactly as `HalfBitsDropout` draws them, so a seed gives the same mask fused or not); and the
column sums of the bias, gamma and beta gradients, which XLA would fuse into the elementwise
loop and then run several times slower than the loop alone (`BiasAddGrad` beside it).

The kernels are used where they pay: under 16-bit matmuls (`applies_to`). In float32 the
unfused TensorFlow kernels are as fast, and the models keep them and their exact numbers.

Every function computes what the unfused layers compute, to float rounding (tested in
`tests/test_fused.py`).
"""

from __future__ import annotations

import math

import tensorflow as tf

from electra_tf.layers.dropout import drop, random_halves
from electra_tf.layers.matmul import matmul_dtype

_SQRT_HALF = math.sqrt(0.5)
_INV_SQRT_2PI = 1.0 / math.sqrt(2.0 * math.pi)


def applies_to(policy) -> bool:
    """Whether layers under the dtype `policy` use these kernels: when their matmuls run in
    bfloat16 or float16 (mixed_bfloat16, mixed_float16, bfloat16_matmul)."""
    return matmul_dtype(policy) in ("bfloat16", "float16")


def _dropout_bits(seed, shape, rate: float):
    """The dropout's random bits (`random_halves`), or a scalar stand-in when the rate is 0.
    (Made here, not at import: a tensor made at import would start TensorFlow's runtime before
    a multi-worker strategy can configure it.)"""
    return random_halves(seed, shape) if rate > 0.0 else tf.zeros([], tf.uint16)


def _dropout(x32, bits, rate: float):
    """`dropout.drop` inside the XLA kernels; nothing at rate 0 (where `bits` is a stand-in)."""
    return drop(x32, bits, rate) if rate > 0.0 else x32


def dropout_in_use(layer, training):
    """`(seed, rate)` for a fused kernel doing the work of the dropout `layer`: the layer's next
    seed and its rate when training with a rate above 0 (one seed per call, as the layer itself
    draws), else a stand-in seed and rate 0."""
    if bool(training) and layer.rate > 0:
        return layer.seed_generator.next(), layer.rate
    return [0, 0], 0.0


def _tensors(*values):
    """Reads Keras variables (biases, gamma, beta) before a custom gradient sees them: a
    variable read inside `tf.custom_gradient` would make it expect a `variables` argument."""
    return [tf.convert_to_tensor(value) for value in values]


def _column_sum(x32):
    """Sum over every axis but the last, `[..., n]` -> `[n]`, with TensorFlow's BiasAddGrad."""
    return tf.raw_ops.BiasAddGrad(out_backprop=tf.reshape(x32, [-1, tf.shape(x32)[-1]]))


# ---------------------------------------------------------------------------------------------
# bias + exact GELU


def bias_gelu(x, bias, out_dtype):
    """`gelu(x + bias)` (exact, erf) computed in float32, returned as `out_dtype`.

    Args:
        x: float `[..., width]` (a matmul's product, any float dtype).
        bias: float `[width]`.
        out_dtype: the dtype of the result (the next matmul's input dtype).

    Returns:
        `out_dtype` tensor of `x`'s shape.
    """
    out_dtype = tf.as_dtype(out_dtype)

    @tf.custom_gradient
    def fused(x, bias):
        def gradient(upstream):
            with tf.name_scope("gelu_gradient"):  # names the kernels in profiles
                dx, dx32 = _bias_gelu_backward(x, bias, upstream)
                return dx, tf.cast(_column_sum(dx32), bias.dtype)

        return _bias_gelu_forward(x, bias, out_dtype), gradient

    with tf.name_scope("gelu"):
        return fused(*_tensors(x, bias))


@tf.function(jit_compile=True)
def _bias_gelu_forward(x, bias, out_dtype):
    z = tf.cast(x, tf.float32) + tf.cast(bias, tf.float32)
    return tf.cast(z * (0.5 * tf.math.erfc(z * -_SQRT_HALF)), out_dtype)


@tf.function(jit_compile=True)
def _bias_gelu_backward(x, bias, upstream):
    z = tf.cast(x, tf.float32) + tf.cast(bias, tf.float32)
    cdf = 0.5 * tf.math.erfc(z * -_SQRT_HALF)  # Phi(z), recomputed: cheaper than storing it
    pdf = tf.exp(-0.5 * tf.square(z)) * _INV_SQRT_2PI  # phi(z)
    dz = tf.cast(upstream, tf.float32) * (cdf + z * pdf)
    return tf.cast(dz, x.dtype), dz


# ---------------------------------------------------------------------------------------------
# attention: mask + softmax + dropout


def masked_softmax_dropout(logits, mask_bias, seed, rate: float, out_dtype):
    """`dropout(softmax(logits + mask_bias))` over the last axis, computed in float32.

    Args:
        logits: float `[batch, heads, queries, keys]` (any float dtype).
        mask_bias: float32 broadcastable to `logits` (0 for real keys, -1e9 for padding, plus
            any distance bias), or None.
        seed: int `[2]` stateless seed of the dropout (ignored when `rate` is 0).
        rate: dropout rate on the probabilities.
        out_dtype: the dtype of the result (the probs @ V matmul's input dtype).

    Returns:
        `out_dtype` `[batch, heads, queries, keys]`: the dropped, rescaled probabilities.
    """
    out_dtype, rate = tf.as_dtype(out_dtype), float(rate)
    if mask_bias is None:
        mask_bias = tf.zeros([1, 1, 1, 1], tf.float32)

    @tf.custom_gradient
    def fused(logits):
        bits = _dropout_bits(seed, tf.shape(logits), rate)
        probs, dropped = _softmax_forward(logits, mask_bias, bits, rate, out_dtype)

        def gradient(upstream):
            with tf.name_scope("attention_softmax_gradient"):
                return _softmax_backward(probs, upstream, bits, rate, logits.dtype)

        return dropped, gradient

    with tf.name_scope("attention_softmax"):
        return fused(*_tensors(logits))


@tf.function(jit_compile=True)
def _softmax_forward(logits, mask_bias, bits, rate, out_dtype):
    # XLA's softmax alone is within about 10% of oneDNN's (fused_kernels.md); here it also
    # writes the dropped, cast probabilities in the same pass.
    probs = tf.nn.softmax(tf.cast(logits, tf.float32) + tf.cast(mask_bias, tf.float32), axis=-1)
    return probs, tf.cast(_dropout(probs, bits, rate), out_dtype)


@tf.function(jit_compile=True)
def _softmax_backward(probs, upstream, bits, rate, logits_dtype):
    dprobs = _dropout(tf.cast(upstream, tf.float32), bits, rate)
    dlogits = probs * (dprobs - tf.reduce_sum(dprobs * probs, axis=-1, keepdims=True))
    return tf.cast(dlogits, logits_dtype)


# ---------------------------------------------------------------------------------------------
# bias + dropout + residual + LayerNorm (post-LN)


def bias_dropout_residual_layer_norm(x, bias, residual, gamma, beta, seed, rate: float,
                                     epsilon: float, out_dtype):
    """`LayerNorm(residual + dropout(x + bias))` over the last axis, computed in float32.

    Args:
        x: float `[..., hidden]` (a matmul's product, any float dtype).
        bias: float `[hidden]`.
        residual: float `[..., hidden]` (the block's input).
        gamma, beta: float `[hidden]` LayerNorm scale and offset.
        seed: int `[2]` stateless seed of the dropout (ignored when `rate` is 0).
        rate: dropout rate; epsilon: LayerNorm epsilon.
        out_dtype: dtype of the result.

    Returns:
        `out_dtype` tensor of `x`'s shape.
    """
    out_dtype, rate, epsilon = tf.as_dtype(out_dtype), float(rate), float(epsilon)

    @tf.custom_gradient
    def fused(x, bias, residual, gamma, beta):
        bits = _dropout_bits(seed, tf.shape(x), rate)
        y, x_hat, inv_std = _residual_norm_forward(x, bias, residual, gamma, beta, bits, rate,
                                                   epsilon, out_dtype)

        def gradient(upstream):
            with tf.name_scope("layer_norm_gradient"):
                dx, dx32, dresidual, dy_x_hat, dy = _residual_norm_backward(
                    upstream, x_hat, inv_std, gamma, bits, rate, x.dtype, residual.dtype)
                return (dx, tf.cast(_column_sum(dx32), bias.dtype), dresidual,
                        tf.cast(_column_sum(dy_x_hat), gamma.dtype),
                        tf.cast(_column_sum(dy), beta.dtype))

        return y, gradient

    with tf.name_scope("layer_norm"):
        return fused(*_tensors(x, bias, residual, gamma, beta))


@tf.function(jit_compile=True)
def _residual_norm_forward(x, bias, residual, gamma, beta, bits, rate, epsilon, out_dtype):
    z = tf.cast(residual, tf.float32) + _dropout(
        tf.cast(x, tf.float32) + tf.cast(bias, tf.float32), bits, rate)
    centred = z - tf.reduce_mean(z, axis=-1, keepdims=True)
    inv_std = tf.math.rsqrt(tf.reduce_mean(tf.square(centred), axis=-1, keepdims=True) + epsilon)
    x_hat = centred * inv_std
    y = x_hat * tf.cast(gamma, tf.float32) + tf.cast(beta, tf.float32)
    return tf.cast(y, out_dtype), x_hat, inv_std


@tf.function(jit_compile=True)
def _residual_norm_backward(upstream, x_hat, inv_std, gamma, bits, rate, x_dtype,
                            residual_dtype):
    dy = tf.cast(upstream, tf.float32)
    g = dy * tf.cast(gamma, tf.float32)
    dz = inv_std * (g - tf.reduce_mean(g, axis=-1, keepdims=True)
                    - x_hat * tf.reduce_mean(g * x_hat, axis=-1, keepdims=True))
    dx = _dropout(dz, bits, rate)
    return (tf.cast(dx, x_dtype), dx, tf.cast(dz, residual_dtype), dy * x_hat, dy)
