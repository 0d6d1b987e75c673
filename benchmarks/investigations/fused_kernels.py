"""The XLA-fused elementwise kernels of the Transformer block (electra_tf.layers.fused), timed
against the unfused TensorFlow kernels, and the three pieces left outside XLA.

    .venv/bin/python benchmarks/investigations/fused_kernels.py

- forward + backward of one ELECTRA-Small encoder block in training (batch 32 x 128, hidden
  256, 4 heads, FFN 1024, dropout 0.1): the unfused chain (the path a block takes when asked
  for its attention probabilities) vs the fused one, in bfloat16_matmul, mixed_bfloat16 and
  float32 (where the library keeps the unfused kernels: the fused one is forced here, to show
  why);
- why the softmax, the random bits and the bias-gradient column sums stay outside the kernels:
  mask + softmax of bfloat16 attention logits (training's `[32, 4, 128, 128]`, serving's
  `[32, 4, 256, 256]`) by XLA vs by oneDNN's softmax in float32; 2M uint32
  Philox words drawn by TensorFlow's kernel vs inside an XLA function; and GELU's backward on a
  bfloat16 `[32, 128, 1024]` FFN activation with its bias gradient summed over the batch and
  sequence axes inside the XLA kernel vs beside it by `BiasAddGrad` (what
  `electra_tf.layers.fused.bias_gelu` does). (On a 2-D `[4096, 1024]` activation XLA's own sum
  is as fast; it is the sum over the leading axes of the 3-D activation, fused into the
  elementwise loop, that is slow.)

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
from electra_tf.layers import fused as fused_kernels  # noqa: E402
from electra_tf.layers.transformer import TransformerEncoderBlock  # noqa: E402


def block_step(precision: str, fused: bool, x):
    """A compiled forward + backward of one training call of an ELECTRA-Small block, returning
    the gradients of its input and weights; traced here, with the fused kernels forced on when
    `fused` (whatever `fused_kernels.applies_to` says of the precision)."""
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

    applies_to = fused_kernels.applies_to
    fused_kernels.applies_to = lambda policy: fused
    try:
        return step.get_concrete_function(x)
    finally:
        fused_kernels.applies_to = applies_to


def gelu_backward_with_bias_gradient(inside_xla: bool):
    """GELU's backward for `[32, 128, 1024]` bfloat16 activations, returning the input
    gradient (bfloat16) and the bias gradient (float32, summed over the first two axes), the sum
    inside the XLA kernel or by `BiasAddGrad` beside it."""
    backward = fused_kernels._bias_gelu_backward.python_function  # the kernel's body

    def summed_inside(x, bias, upstream):
        dx, dx32 = backward(x, bias, upstream)
        return dx, tf.reduce_sum(dx32, axis=[0, 1])

    if inside_xla:
        return tf.function(summed_inside, jit_compile=True)

    @tf.function
    def summed_beside(x, bias, upstream):
        dx, dx32 = fused_kernels._bias_gelu_backward(x, bias, upstream)
        return dx, fused_kernels._column_sum(dx32)

    return summed_beside


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--calls", type=int, default=30)
    args = parser.parse_args()
    rows = {}
    x = tf.random.stateless_normal([32, 128, 256], [0, 1])
    for precision in ("bfloat16_matmul", "mixed_bfloat16", "float32"):
        old, new = paired_median_ms(block_step(precision, False, x),
                                    block_step(precision, True, x), x, calls=args.calls)
        rows[f"encoder block fwd+bwd, {precision}: unfused"] = old
        rows[f"encoder block fwd+bwd, {precision}: fused (XLA elementwise kernels)"] = new

    for shape in ([32, 4, 128, 128], [32, 4, 256, 256]):
        logits = tf.cast(tf.random.stateless_normal(shape, [0, 3]), tf.bfloat16)
        mask_bias = tf.zeros([shape[0], 1, 1, shape[-1]])

        def masked_softmax(logits, mask_bias):
            return tf.nn.softmax(tf.cast(logits, tf.float32) + mask_bias, axis=-1)

        old, new = paired_median_ms(tf.function(masked_softmax, jit_compile=True),
                                    tf.function(masked_softmax), logits, mask_bias,
                                    calls=args.calls)
        rows[f"mask + softmax of {shape} bf16 logits: XLA"] = old
        rows[f"mask + softmax of {shape} bf16 logits: oneDNN (float32)"] = new

    seed = tf.constant([1, 2])

    def philox(seed):
        return tf.random.stateless_uniform([2 ** 21], seed, minval=None, maxval=None,
                                           dtype=tf.uint32)

    old, new = paired_median_ms(tf.function(philox), tf.function(philox, jit_compile=True),
                                seed, calls=args.calls)
    rows["2M random uint32 words: TensorFlow kernel"] = old
    rows["2M random uint32 words: inside XLA"] = new

    activation = tf.cast(tf.random.stateless_normal([32, 128, 1024], [0, 2]), tf.bfloat16)
    bias = tf.zeros([1024])
    old, new = paired_median_ms(gelu_backward_with_bias_gradient(True),
                                gelu_backward_with_bias_gradient(False), activation, bias,
                                activation, calls=args.calls)
    rows["GELU backward [32, 128, 1024] bf16 + bias gradient: sum inside the XLA kernel"] = old
    rows["GELU backward [32, 128, 1024] bf16 + bias gradient: BiasAddGrad beside it"] = new
    write_timings("fused_kernels", "XLA-fused elementwise kernels of the encoder block",
                  "python benchmarks/investigations/fused_kernels.py", f"medians of "
                  f"{args.calls} calls, each pair alternating call by call.", rows,
                  results_dir=RESULTS)


if __name__ == "__main__":
    main()
