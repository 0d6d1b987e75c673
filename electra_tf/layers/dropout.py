"""Dropout with half the random bits: the encoder's dropout layers."""

from __future__ import annotations

import keras
import tensorflow as tf

from electra_tf.layers.matmul import ReloadsDTypePolicy


@keras.saving.register_keras_serializable(package="electra_tf")
class HalfBitsDropout(ReloadsDTypePolicy, keras.layers.Dropout):
    """`keras.layers.Dropout` that draws 16 random bits per element instead of 32.

    Keras' dropout draws one float32 uniform per element (`tf.nn.experimental.stateless_dropout`):
    a Philox word per element, about 63 million per ELECTRA-Small pretraining step. Here every
    32-bit word serves two elements (its two 16-bit halves): an element is kept when its half is
    >= round(rate * 65536), so the drop probability is the rate to within 1/131072 (0.1 becomes
    0.100006), and kept values are scaled by 1 / (1 - rate) as in Keras. Why: `[32, 4, 128, 128]`
    bfloat16 attention probabilities take 7.7 ms against 10.3 ms (docs/devices_and_precision.md).

    Same arguments and config, seed handling (the layer's `SeedGenerator`) and inference
    behaviour as `keras.layers.Dropout` (no weights, so `.keras` files are unaffected); with a
    `noise_shape` it simply is Keras' dropout.
    """

    def call(self, inputs, training=False):
        if not training or self.rate <= 0 or self.noise_shape is not None:
            return super().call(inputs, training=training)
        return drop(inputs, random_halves(self.seed_generator.next(), tf.shape(inputs)),
                    self.rate)


def drop(x, halves, rate: float):
    """`x` with the elements whose `random_halves` value is below the rate's threshold zeroed
    and the rest scaled by 1 / (1 - rate): `HalfBitsDropout`, and the dropout inside the fused
    kernels (`electra_tf.layers.fused`)."""
    scale = tf.cast(1.0 / (1.0 - rate), x.dtype)
    return tf.where(halves >= keep_threshold(rate), x * scale, tf.zeros_like(x))


def random_halves(seed, shape):
    """Uniform 16-bit random numbers `shape` (uint16) from a stateless seed (int `[2]`): the
    two halves of each 32-bit Philox word, so half the words of one draw per element."""
    count = tf.reduce_prod(shape)
    words = tf.random.stateless_uniform([(count + 1) // 2], tf.cast(seed, tf.int32), minval=None,
                                        maxval=None, dtype=tf.uint32)
    return tf.reshape(tf.reshape(tf.bitcast(words, tf.uint16), [-1])[:count], shape)


def keep_threshold(rate: float):
    """The uint16 an element's `random_halves` value must reach to be kept at dropout `rate`."""
    return tf.constant(min(65535, round(rate * 65536)), tf.uint16)
