"""Activations shared by the layers."""

from __future__ import annotations

import math

import tensorflow as tf


def exact_gelu(x):
    """The exact (erf) GELU of ELECTRA/BERT, evaluated in float32 whatever `x`'s dtype.

    Every GELU of the models goes through here (the Transformer blocks' FFN and both heads), so
    the Dense layers before it carry no activation of their own.

    Under mixed precision the FFN's `[batch, seq_len, 4 * hidden]` activations are bfloat16 or
    float16, and TensorFlow's 16-bit `erf` is slow on CPUs (a `[32, 256, 1024]` tensor: 29-36 ms
    against 17 ms cast to float32 and back); float32 is also the more accurate choice.
    The gradient is written out, `dy * (Phi(x) + x * phi(x))`, reusing the forward pass's
    `Phi(x)`: autodiff through erf would rebuild it from several elementwise ops, each a pass
    over the tensor (docs/devices_and_precision.md has the measurements).
    Returns a tensor of `x`'s dtype.
    """
    with tf.name_scope("gelu"):  # names the kernels in profiles
        return _exact_gelu(x)


@tf.custom_gradient
def _exact_gelu(x):
    x32 = tf.cast(x, tf.float32)
    cdf = 0.5 * tf.math.erfc(x32 * -_SQRT_HALF)  # Phi(x), as tf.nn.gelu computes it

    def gradient(upstream):
        # The backward pass runs outside the caller's scope: name its kernels for profiles.
        with tf.name_scope("gelu_gradient"):
            pdf = tf.exp(-0.5 * tf.square(x32)) * _INV_SQRT_2PI  # phi(x)
            return tf.cast(tf.cast(upstream, tf.float32) * (cdf + x32 * pdf), x.dtype)

    return tf.cast(x32 * cdf, x.dtype), gradient


_SQRT_HALF = math.sqrt(0.5)
_INV_SQRT_2PI = 1.0 / math.sqrt(2.0 * math.pi)
