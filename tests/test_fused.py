"""The XLA-fused elementwise kernels (electra_tf.layers.fused): each equals the chain of
TensorFlow ops it replaces, values and gradients, in float32 and from bfloat16 inputs, with
dropout drawing exactly `HalfBitsDropout`'s mask; and a Transformer block in 16-bit precision
computes the same function fused (its default) as unfused."""

import math

import numpy as np
import pytest
import tensorflow as tf

from electra_tf.distribute import precision_policy
from electra_tf.layers import fused
from electra_tf.layers.dropout import keep_threshold, random_halves
from electra_tf.layers.transformer import TransformerEncoderBlock

SEED = tf.constant([3, 7])


def _reference_dropout(x32, rate):
    keep = random_halves(SEED, tf.shape(x32)) >= keep_threshold(rate)
    return tf.where(keep, x32 / (1.0 - rate), 0.0) if rate else x32


def _values_and_gradients(function, inputs, upstream):
    with tf.GradientTape() as tape:
        tape.watch(inputs)
        outputs = function(*inputs)
        loss = tf.reduce_sum(tf.cast(outputs, tf.float32) * upstream)
    return [outputs, *tape.gradient(loss, inputs)]


def _assert_close(fused_results, reference_results, tolerance):
    for got, want in zip(fused_results, reference_results):
        assert got.dtype == want.dtype and got.shape == want.shape
        got, want = (tf.cast(t, tf.float32).numpy() for t in (got, want))
        scale = max(1.0, float(np.abs(want).max()))
        np.testing.assert_allclose(got, want, atol=tolerance * scale, rtol=0)


def _random(shape, dtype, seed):
    return tf.cast(tf.random.stateless_normal(shape, [seed, 0]), dtype)


@pytest.mark.parametrize("dtype", ["float32", "bfloat16"])
def test_bias_gelu_is_gelu_of_the_sum(dtype):
    x, bias = _random([2, 5, 8], dtype, 1), _random([8], "float32", 2)
    upstream = _random([2, 5, 8], "float32", 3)

    def reference(x, bias):
        z = tf.cast(x, tf.float32) + bias
        return tf.cast(0.5 * z * tf.math.erfc(-z / math.sqrt(2.0)), dtype)

    _assert_close(_values_and_gradients(lambda x, b: fused.bias_gelu(x, b, dtype), [x, bias],
                                         upstream),
                  _values_and_gradients(reference, [x, bias], upstream), 1e-5)


@pytest.mark.parametrize("dtype,rate", [("float32", 0.0), ("float32", 0.25),
                                        ("bfloat16", 0.25)])
def test_masked_softmax_dropout_is_the_unfused_chain(dtype, rate):
    logits = _random([2, 2, 4, 6], dtype, 4)
    mask_bias = tf.constant([[0.0] * 6, [0.0] * 4 + [-1e9] * 2])[:, None, None, :]
    upstream = _random([2, 2, 4, 6], "float32", 5)

    def reference(logits):
        probs = tf.nn.softmax(tf.cast(logits, tf.float32) + mask_bias, axis=-1)
        return tf.cast(_reference_dropout(probs, rate), dtype)

    got = _values_and_gradients(
        lambda logits: fused.masked_softmax_dropout(logits, mask_bias, SEED, rate, dtype),
        [logits], upstream)
    _assert_close(got, _values_and_gradients(reference, [logits], upstream), 1e-5)
    assert not np.any(got[0].numpy()[1, :, :, 4:]), "padding keys get probability 0"
    if rate:
        assert np.any(got[0].numpy() == 0), "dropout zeroed nothing"


@pytest.mark.parametrize("dtype,rate", [("float32", 0.0), ("float32", 0.25),
                                        ("bfloat16", 0.25)])
def test_bias_dropout_residual_layer_norm_is_the_unfused_chain(dtype, rate):
    x, residual = _random([2, 5, 8], dtype, 6), _random([2, 5, 8], "float32", 7)
    bias, gamma, beta = (_random([8], "float32", seed) for seed in (8, 9, 10))
    upstream = _random([2, 5, 8], "float32", 11)

    def reference(x, bias, residual, gamma, beta):
        z = residual + _reference_dropout(tf.cast(x, tf.float32) + bias, rate)
        mean, variance = tf.nn.moments(z, axes=[-1], keepdims=True)
        return (z - mean) * tf.math.rsqrt(variance + 1e-12) * gamma + beta

    got = _values_and_gradients(
        lambda *args: fused.bias_dropout_residual_layer_norm(*args, SEED, rate, 1e-12,
                                                             "float32"),
        [x, bias, residual, gamma, beta], upstream)
    _assert_close(got, _values_and_gradients(reference, [x, bias, residual, gamma, beta],
                                             upstream), 1e-4)


def _block_results(block, x, mask, states, fused_path):
    """Output and gradients (input, every weight) of one training call, dropout seeds set to
    `states`; the unfused path is the one that also returns attention probabilities."""
    for variable, state in zip(_seed_states(block), states):
        variable.assign(state)
    with tf.GradientTape() as tape:
        tape.watch(x)
        if fused_path:
            y = block(x, padding_mask=mask, training=True)
        else:
            y, _ = block(x, padding_mask=mask, training=True, return_attention_scores=True)
        loss = tf.reduce_sum(tf.cast(y, tf.float32) * tf.sin(tf.range(8, dtype=tf.float32)))
    return [y, *tape.gradient(loss, [x, *block.trainable_variables])]


def _seed_states(block):
    return [layer.seed_generator.state for layer in (
        block.attention.dropout_layer, block.attention_dropout_layer,
        block.output_dropout_layer)]


@pytest.mark.parametrize("precision", ["bfloat16_matmul", "mixed_bfloat16"])
def test_a_16_bit_block_computes_the_same_fused_and_unfused(precision):
    """Same weights, same dropout seeds: the fused block (the default in 16 bits) and the
    unfused chain give the same output and gradients, to bfloat16 rounding."""
    with precision_policy(precision):
        block = TransformerEncoderBlock(2, 16, dropout=0.2, attention_dropout=0.2)
        block.build((2, 6, 8))
    assert block._fuses_elementwise_work(False)
    x = _random([2, 6, 8], "float32", 12)
    mask = tf.constant([[1] * 6, [1] * 4 + [0] * 2])
    states = [tf.identity(variable) for variable in _seed_states(block)]
    fused_results = _block_results(block, x, mask, states, True)
    unfused_results = _block_results(block, x, mask, states, False)
    # bfloat16 keeps 8 bits: the two paths round at different places.
    _assert_close(fused_results, unfused_results, 0.03)
    assert np.abs(tf.cast(fused_results[0], tf.float32).numpy()).max() > 0.1


def test_a_float32_block_keeps_the_unfused_kernels():
    with precision_policy("float32"):
        block = TransformerEncoderBlock(2, 16)
        block.build((2, 6, 8))
    assert not block._fuses_elementwise_work(False)
    graph = tf.function(lambda x: block(x, training=True)).get_concrete_function(
        tf.TensorSpec([2, 6, 8])).graph
    assert not [op for op in graph.get_operations() if "PartitionedCall" in op.type]


def test_keras_seed_state_advances_once_per_dropout_call():
    """The fused block draws one seed per dropout per call, as the unfused one does, so a
    training run's seed stream does not depend on the path."""
    with precision_policy("bfloat16_matmul"):
        block = TransformerEncoderBlock(2, 16, dropout=0.1, attention_dropout=0.1)
        block.build((2, 6, 8))
    x = _random([2, 6, 8], "float32", 13)
    before = [variable.numpy().copy() for variable in _seed_states(block)]
    block(x, training=True)
    fused_after = [variable.numpy().copy() for variable in _seed_states(block)]
    for variable, state in zip(_seed_states(block), before):
        variable.assign(state)
    block(x, training=True, return_attention_scores=True)
    unfused_after = [variable.numpy() for variable in _seed_states(block)]
    for a, b, c in zip(before, fused_after, unfused_after):
        assert not np.array_equal(a, b)
        np.testing.assert_array_equal(b, c)
