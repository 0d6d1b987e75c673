"""Why `exact_gelu` computes in float32: TensorFlow's 16-bit erf on this CPU.

    .venv/bin/python benchmarks/investigations/gelu_precision.py

Times, on a `[32, 256, 1024]` tensor (the FFN activation of an electra_small-sized model at
batch 32 x 256), the exact GELU computed in bfloat16, in float32, and bfloat16 -> float32 ->
bfloat16 (what `electra_tf.layers.activations.exact_gelu` does), next to the bfloat16 and float32
matmul that produces the tensor. Medians of 15 calls of compiled `tf.function`s. Writes
benchmarks/investigations/results/gelu_precision.{json,md}.
"""

from __future__ import annotations

import functools
import os
import sys

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
HERE = os.path.dirname(os.path.abspath(__file__))  # benchmarks/investigations
RESULTS = os.path.join(HERE, "results")
sys.path.insert(0, os.path.dirname(HERE))  # kernel_timing

import keras  # noqa: E402
import kernel_timing  # noqa: E402
import tensorflow as tf  # noqa: E402
from kernel_timing import write_timings  # noqa: E402

from electra_tf.layers.activations import exact_gelu  # noqa: E402

median_ms = functools.partial(kernel_timing.median_ms, calls=15)


def main():
    hidden = tf.random.normal((32 * 256, 256))
    kernel = tf.random.normal((256, 1024))
    activations = tf.random.normal((32, 256, 1024))
    bf16 = tf.bfloat16
    rows = {
        "matmul [8192,256]x[256,1024], float32": median_ms(tf.function(tf.matmul), hidden, kernel),
        "matmul [8192,256]x[256,1024], bfloat16": median_ms(
            tf.function(tf.matmul), tf.cast(hidden, bf16), tf.cast(kernel, bf16)),
        "GELU in float32": median_ms(tf.function(
            lambda x: keras.activations.gelu(x, approximate=False)), activations),
        "GELU in bfloat16 (Dense(activation='gelu') under mixed_bfloat16)": median_ms(tf.function(
            lambda x: keras.activations.gelu(x, approximate=False)), tf.cast(activations, bf16)),
        "exact_gelu on bfloat16 (cast to float32 and back)": median_ms(
            tf.function(exact_gelu), tf.cast(activations, bf16)),
    }
    write_timings("gelu_precision", "Exact GELU: bfloat16 vs float32 on this CPU",
                  "python benchmarks/investigations/gelu_precision.py",
                  "tensor [32, 256, 1024]; medians of 15 calls.", rows, results_dir=RESULTS)


if __name__ == "__main__":
    main()
