"""Activations shared by the layers."""

from __future__ import annotations

import keras
from keras import ops


def exact_gelu(x):
    """The exact (erf) GELU of ELECTRA/BERT, evaluated in float32 whatever `x`'s dtype.

    Every GELU of the models goes through here (the Transformer blocks' FFN and both heads), so
    the Dense layers before it carry no activation of their own.

    Under mixed precision the FFN's `[batch, seq_len, 4 * hidden]` activations are bfloat16 or
    float16, and TensorFlow's 16-bit `erf` is slow on CPUs: for a `[32, 256, 1024]` bfloat16
    tensor it took 29-36 ms against 13 ms in float32 (17 ms including both casts), more than the
    bfloat16 matmul before it (13 ms). Computing it in float32 is also the more accurate choice.
    Returns a tensor of `x`'s dtype.
    """
    if x.dtype == "float32":
        return keras.activations.gelu(x, approximate=False)
    return ops.cast(keras.activations.gelu(ops.cast(x, "float32"), approximate=False), x.dtype)
