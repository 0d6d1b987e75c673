"""Why `exact_gelu` computes in float32: TensorFlow's 16-bit erf on this CPU.

    .venv/bin/python benchmarks/gelu_precision.py

Times, on a `[32, 256, 1024]` tensor (the FFN activation of an electra_small-sized model at
batch 32 x 256), the exact GELU computed in bfloat16, in float32, and bfloat16 -> float32 ->
bfloat16 (what `electra_tf.layers.activations.exact_gelu` does), next to the bfloat16 and float32
matmul that produces the tensor. Medians of 15 calls of compiled `tf.function`s. Writes
benchmarks/results/gelu_precision.{json,md}.
"""

from __future__ import annotations

import json
import os
import statistics
import time

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

import keras  # noqa: E402
import tensorflow as tf  # noqa: E402

from electra_tf.layers.activations import exact_gelu  # noqa: E402

RESULTS = os.path.join(os.path.dirname(os.path.dirname(os.path.abspath(__file__))),
                       "benchmarks", "results")


def median_ms(function, *args, calls=15):
    function(*args)  # trace and warm up
    times = []
    for _ in range(calls):
        start = time.perf_counter()
        function(*args)
        times.append(time.perf_counter() - start)
    return round(statistics.median(times) * 1000, 1)


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
    command = "python benchmarks/gelu_precision.py"
    os.makedirs(RESULTS, exist_ok=True)
    with open(os.path.join(RESULTS, "gelu_precision.json"), "w") as f:
        json.dump({"command": command, "cpu_cores": os.cpu_count(),
                   "tensorflow": tf.__version__, "median_ms": rows}, f, indent=2)
    lines = ["# Exact GELU: bfloat16 vs float32 on this CPU", "",
             f"`{command}` on {os.cpu_count()} CPU cores, TensorFlow {tf.__version__}; "
             "tensor [32, 256, 1024]; medians of 15 calls.", "",
             "| operation | median ms |", "|---|---|"]
    lines += [f"| {name} | {ms} |" for name, ms in rows.items()]
    with open(os.path.join(RESULTS, "gelu_precision.md"), "w") as f:
        f.write("\n".join(lines) + "\n")
    print("\n".join(lines))


if __name__ == "__main__":
    main()
