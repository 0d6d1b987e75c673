"""The XLA-fused elementwise kernels of the Transformer block (electra_tf.layers.fused), timed
against the unfused TensorFlow kernels, and the three pieces left outside XLA.

    .venv/bin/python benchmarks/investigations/fused_kernels.py

- forward + backward of one ELECTRA-Small encoder block in training (batch 32 x 128, hidden
  256, 4 heads, FFN 1024, dropout 0.1): the unfused chain (the path a block takes when asked
  for its attention probabilities) vs the fused one, in float32, bfloat16_matmul and
  mixed_bfloat16 (float32 keeps the unfused kernels in the library; it is timed to show why);
- why the random bits and the bias/gamma/beta column sums stay with TensorFlow: 2M uint32
  Philox words drawn by TensorFlow's kernel vs inside an XLA function, and the column sum of a
  float32 `[4096, 1024]` gradient by XLA vs TensorFlow's `BiasAddGrad`.

Compiled `tf.function`s, each new one alternating call by call with the old one (medians of
`--calls` calls each). Writes benchmarks/investigations/results/fused_kernels.{json,md}.
"""

from __future__ import annotations

import argparse
import os
import sys

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
HERE = os.path.dirname(os.path.abspath(__file__))  # benchmarks/investigations
RESULTS = os.path.join(HERE, "results")
sys.path.insert(0, os.path.dirname(HERE))  # kernel_timing
sys.path.insert(0, os.path.dirname(os.path.dirname(HERE)))  # the package, run from anywhere

import keras  # noqa: E402
import tensorflow as tf  # noqa: E402
from kernel_timing import paired_median_ms, write_timings  # noqa: E402

from electra_tf.distribute import precision_policy  # noqa: E402
from electra_tf.layers.transformer import TransformerEncoderBlock  # noqa: E402


def block_step(precision: str, fused: bool):
    """A compiled forward + backward of one training call of an ELECTRA-Small block, returning
    the gradients of its input and weights."""
    keras.utils.set_random_seed(0)
    with precision_policy(precision):
        block = TransformerEncoderBlock(4, 1024, dropout=0.1, attention_dropout=0.1)
        block.build((32, 128, 256))
    mask = tf.ones([32, 128], tf.int32)

    @tf.function
    def step(x):
        with tf.GradientTape() as tape:
            tape.watch(x)
            if fused:
                y = block(x, padding_mask=mask, training=True)
            else:  # asked for the probabilities, the block takes the unfused chain
                y, _ = block(x, padding_mask=mask, training=True, return_attention_scores=True)
            loss = tf.reduce_sum(tf.cast(y, tf.float32))
        return tape.gradient(loss, [x, *block.trainable_variables])

    return step


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--calls", type=int, default=30)
    args = parser.parse_args()
    rows = {}
    x = tf.random.stateless_normal([32, 128, 256], [0, 1])
    for precision in ("float32", "bfloat16_matmul", "mixed_bfloat16"):
        old, new = paired_median_ms(block_step(precision, False), block_step(precision, True),
                                    x, calls=args.calls)
        rows[f"encoder block fwd+bwd, {precision}: unfused"] = old
        rows[f"encoder block fwd+bwd, {precision}: fused (XLA elementwise kernels)"] = new

    seed = tf.constant([1, 2])

    def philox(seed):
        return tf.random.stateless_uniform([2 ** 21], seed, minval=None, maxval=None,
                                           dtype=tf.uint32)

    old, new = paired_median_ms(tf.function(philox), tf.function(philox, jit_compile=True),
                                seed, calls=args.calls)
    rows["2M random uint32 words: TensorFlow kernel"] = old
    rows["2M random uint32 words: inside XLA"] = new

    gradient = tf.random.stateless_normal([4096, 1024], [0, 2])
    old, new = paired_median_ms(
        tf.function(lambda g: tf.raw_ops.BiasAddGrad(out_backprop=g)),
        tf.function(lambda g: tf.reduce_sum(g, axis=0), jit_compile=True), gradient,
        calls=args.calls)
    rows["column sum of [4096, 1024] float32: BiasAddGrad"] = old
    rows["column sum of [4096, 1024] float32: XLA reduce_sum"] = new
    write_timings("fused_kernels", "XLA-fused elementwise kernels of the encoder block",
                  "python benchmarks/investigations/fused_kernels.py", f"medians of "
                  f"{args.calls} calls, each pair alternating call by call.", rows,
                  results_dir=RESULTS)


if __name__ == "__main__":
    main()
