"""LayerNorm with a hand-written gradient: every LayerNorm of the models."""

from __future__ import annotations

import keras
import tensorflow as tf

from electra_tf.layers.matmul import ReloadsDTypePolicy


@keras.saving.register_keras_serializable(package="electra_tf")
class LayerNorm(ReloadsDTypePolicy, keras.layers.LayerNormalization):
    """`keras.layers.LayerNormalization` over the last axis whose gradient is written out.

    Keras computes LayerNorm from `moments` and leaves the gradient to autodiff, which walks
    back through every op of the forward pass: about twenty passes over the `[batch, seq_len,
    hidden]` tensor on TensorFlow's CPU kernels (grappler does not fuse this graph into oneDNN's
    LayerNorm). With `x_hat = (x - mean) * inv_std` kept from the forward pass, the gradient is

        dx = inv_std * (g - mean(g) - x_hat * mean(g * x_hat)),   g = dy * gamma,

    eleven passes. Forward values are Keras' to float rounding, computed in float32 whatever
    the input dtype (as Keras does) and returned in the compute dtype.

    Same arguments, config and weights (`gamma`, `beta`) as Keras' layer; for any other axis,
    without `center` or `scale`, or with `rms_scaling` it simply is Keras' layer.

    Call args:
        inputs: float tensor `[..., hidden]`.

    Returns:
        tensor of `inputs`' shape in the compute dtype.
    """

    def call(self, inputs):
        last_axis_only = list(self.axis) in ([-1], [len(inputs.shape) - 1])
        if not (last_axis_only and self.center and self.scale) or self.rms_scaling:
            return super().call(inputs)
        with tf.name_scope("layer_norm"):  # names the kernels in profiles
            outputs = _layer_norm(inputs, tf.cast(self.gamma, tf.float32),
                                  tf.cast(self.beta, tf.float32), self.epsilon)
        return tf.cast(outputs, self.compute_dtype)


def _layer_norm(x, gamma, beta, epsilon):
    """`(x - mean) / sqrt(var + epsilon) * gamma + beta` over the last axis, in float32.

    Args:
        x: float `[..., hidden]`; gamma, beta: float32 `[hidden]`; epsilon: python float.

    Returns:
        float32 `[..., hidden]`.
    """

    @tf.custom_gradient
    def layer_norm(x, gamma, beta):
        x32 = tf.cast(x, tf.float32)
        centred = x32 - tf.reduce_mean(x32, axis=-1, keepdims=True)
        inv_std = tf.math.rsqrt(
            tf.reduce_mean(tf.square(centred), axis=-1, keepdims=True) + epsilon)
        x_hat = centred * inv_std

        def gradient(upstream):
            # The backward pass runs outside the layer's scope: name its kernels for profiles.
            with tf.name_scope("layer_norm_gradient"):
                dy = tf.cast(upstream, tf.float32)
                outer_axes = tf.range(tf.rank(dy) - 1)  # every axis but the normalised one
                g = dy * gamma
                dx = inv_std * (g - tf.reduce_mean(g, axis=-1, keepdims=True)
                                - x_hat * tf.reduce_mean(g * x_hat, axis=-1, keepdims=True))
                return (tf.cast(dx, x.dtype), tf.reduce_sum(dy * x_hat, axis=outer_axes),
                        tf.reduce_sum(dy, axis=outer_axes))

        return x_hat * gamma + beta, gradient

    return layer_norm(x, gamma, beta)
