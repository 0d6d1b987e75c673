"""Behaviour of the layers beyond the shared harness."""

import numpy as np
import pytest

from conftest import TINY_ENCODER
from electra_tf.layers import (
    ElectraEmbeddings,
    ElectraEncoder,
    MultiHeadSelfAttention,
    sinusoidal_position_encoding,
)


def test_sinusoidal_formula_interleaves_sin_and_cos():
    encoding = sinusoidal_position_encoding(8, 128)
    pos, i = 5, 10  # dimension pair (2i, 2i+1) = (20, 21)
    angle = pos / 10000 ** (2 * i / 128)
    np.testing.assert_allclose(encoding[pos, 2 * i], np.sin(angle), rtol=1e-6)
    np.testing.assert_allclose(encoding[pos, 2 * i + 1], np.cos(angle), rtol=1e-6)
    np.testing.assert_allclose(encoding[0, 0::2], 0.0)
    np.testing.assert_allclose(encoding[0, 1::2], 1.0)


def test_sinusoidal_embeddings_have_no_position_weights():
    learned = ElectraEmbeddings(50, 16, max_position_embeddings=32)
    fixed = ElectraEmbeddings(50, 16, max_position_embeddings=32, position_embedding="sinusoidal")
    ids = np.array([[1, 2, 3]])
    learned(ids), fixed(ids)
    assert learned.count_params() - fixed.count_params() == 32 * 16
    # What each adds per position: the formula's table, or the learned weight matrix.
    np.testing.assert_allclose(np.asarray(fixed.position_vectors(10)),
                               sinusoidal_position_encoding(10, 16), atol=1e-7)
    np.testing.assert_allclose(np.asarray(learned.position_vectors()),
                               np.asarray(learned.position_embeddings.embeddings), atol=0)


def test_fused_and_explicit_attention_paths_agree():
    rng = np.random.default_rng(1)
    x = rng.normal(size=(2, 6, 16)).astype("float32")
    mask = np.array([[1] * 6, [1] * 4 + [0] * 2])
    layer = MultiHeadSelfAttention(num_heads=4, key_dim=4)
    fused = layer(x, padding_mask=mask)  # keras.ops.dot_product_attention
    explicit, scores = layer(x, padding_mask=mask, return_attention_scores=True)
    np.testing.assert_allclose(np.asarray(fused), np.asarray(explicit), atol=1e-5)
    scores = np.asarray(scores)
    assert scores.shape == (2, 4, 6, 6)
    np.testing.assert_allclose(scores.sum(-1), 1.0, atol=1e-5)
    assert np.all(scores[1, :, :, 4:] < 1e-6), "padding keys must get no attention"


def test_padding_does_not_change_real_token_outputs():
    encoder = ElectraEncoder(**TINY_ENCODER)
    ids = np.array([[2, 7, 8, 9, 3, 0, 0, 0]])
    mask = (ids != 0).astype("int32")
    other_padding = ids.copy()
    other_padding[0, 5:] = [11, 12, 13]  # garbage in padded slots
    a = encoder({"token_ids": ids, "padding_mask": mask})
    b = encoder({"token_ids": other_padding, "padding_mask": mask})
    np.testing.assert_allclose(np.asarray(a)[0, :5], np.asarray(b)[0, :5], atol=1e-5)


def test_encoder_returns_attention_per_layer():
    encoder = ElectraEncoder(**TINY_ENCODER)
    output, scores = encoder({"token_ids": np.array([[2, 7, 8, 3]])},
                             return_attention_scores=True)
    assert output.shape == (1, 4, 24)
    assert len(scores) == TINY_ENCODER["num_layers"]
    assert scores[0].shape == (1, 2, 4, 4)


def test_projection_only_when_sizes_differ():
    same = ElectraEncoder(**dict(TINY_ENCODER, embedding_size=24))
    assert same.embedding_projection is None
    assert ElectraEncoder(**TINY_ENCODER).embedding_projection is not None


def test_token_type_row_takes_a_normal_adam_step_with_a_plain_keras_optimizer():
    """Every token uses token-type row 0. As a gather, its gradient is an IndexedSlices naming
    row 0 once per token, and Keras' Adam applies those row by row: the first step of row 0 was
    2.1x the learning rate here (random per-token gradients) and up to sqrt(batch * seq_len) =
    11x when they agree, swamping the word vectors. As a one-hot matmul the gradient is dense and
    Adam's first step is the usual +-lr per element."""
    import keras
    import tensorflow as tf

    layer = ElectraEmbeddings(50, 16, max_position_embeddings=32, dropout=0.0)
    rng = np.random.default_rng(0)
    ids = rng.integers(5, 50, size=(4, 32)).astype("int32")
    segments = np.zeros_like(ids)
    direction = tf.constant(rng.normal(size=(4, 32, 16)).astype("float32"))
    layer(ids, segments)
    gather = np.asarray(layer.token_type_embeddings(segments))
    np.testing.assert_allclose(np.asarray(layer._token_type_vectors(segments)), gather, atol=1e-7)

    table = layer.token_type_embeddings.embeddings
    before = np.asarray(table).copy()
    optimizer = keras.optimizers.Adam(learning_rate=1e-3)
    with tf.GradientTape() as tape:
        loss = tf.reduce_sum(layer(ids, segments) * direction)
    gradients = tape.gradient(loss, layer.trainable_variables)
    optimizer.apply_gradients(zip(gradients, layer.trainable_variables))
    step = np.abs(np.asarray(table) - before)
    assert step[0].max() <= 1e-3 * 1.001, f"row 0 moved {step[0].max():.2e} for lr 1e-3"
    assert step[0].min() > 0.5e-3 and step[1].max() == 0.0


def test_exact_gelu_is_evaluated_in_float32_for_16_bit_inputs():
    """Every GELU (FFN and heads) runs in float32 under mixed precision (TensorFlow's bfloat16
    erf is slow on CPUs); the result keeps the input's dtype and is the float32 value rounded
    once."""
    import keras
    import tensorflow as tf

    from electra_tf.layers.activations import exact_gelu

    x = tf.constant(np.linspace(-4, 4, 101), tf.float32)
    reference = keras.activations.gelu(x, approximate=False)
    np.testing.assert_array_equal(np.asarray(exact_gelu(x)), np.asarray(reference))
    for dtype in (tf.bfloat16, tf.float16):
        low = tf.cast(x, dtype)
        out = exact_gelu(low)
        assert out.dtype == dtype
        expected = tf.cast(keras.activations.gelu(tf.cast(low, tf.float32), approximate=False),
                           dtype)
        np.testing.assert_array_equal(np.asarray(tf.cast(out, tf.float32)),
                                      np.asarray(tf.cast(expected, tf.float32)))


def test_exact_gelu_gradient_is_the_derivative_of_gelu():
    """exact_gelu's hand-written gradient equals autodiff through Keras' exact GELU (float32), and
    under 16-bit inputs it comes back in the input's dtype."""
    import keras
    import tensorflow as tf

    from electra_tf.layers.activations import exact_gelu

    x = tf.constant(np.linspace(-6, 6, 241), tf.float32)
    upstream = tf.constant(np.random.default_rng(0).normal(size=241), tf.float32)
    with tf.GradientTape(persistent=True) as tape:
        tape.watch(x)
        ours = tf.reduce_sum(exact_gelu(x) * upstream)
        reference = tf.reduce_sum(keras.activations.gelu(x, approximate=False) * upstream)
    np.testing.assert_allclose(tape.gradient(ours, x), tape.gradient(reference, x),
                               rtol=1e-6, atol=1e-7)
    low = tf.cast(x, tf.bfloat16)
    with tf.GradientTape() as tape:
        tape.watch(low)
        out = tf.reduce_sum(tf.cast(exact_gelu(low), tf.float32))
    gradient = tape.gradient(out, low)
    assert gradient.dtype == tf.bfloat16
    # d/dx GELU at bfloat16(x), rounded once to bfloat16: within bfloat16's precision (2^-8).
    with tf.GradientTape() as tape:
        x_rounded = tf.cast(low, tf.float32)
        tape.watch(x_rounded)
        expected = tape.gradient(tf.reduce_sum(keras.activations.gelu(x_rounded, approximate=False)),
                                 x_rounded)
    np.testing.assert_allclose(tf.cast(gradient, tf.float32), expected, rtol=2 ** -8, atol=1e-6)


@pytest.mark.parametrize("shape", [(3, 8, 16), (5, 12)])
def test_layer_norm_matches_keras_values_and_gradients(shape):
    """LayerNorm's outputs and its hand-written gradients (input, gamma, beta) equal autodiff
    through Keras' LayerNormalization with the same weights, for 3-D and 2-D inputs whose rows
    have a large mean (where a careless variance formula loses precision)."""
    import keras
    import tensorflow as tf

    from electra_tf.layers.normalization import LayerNorm

    rng = np.random.default_rng(0)
    x = tf.constant(rng.normal(size=shape) * 3 + 20, tf.float32)
    upstream = tf.constant(rng.normal(size=shape), tf.float32)
    ours, reference = LayerNorm(epsilon=1e-12), keras.layers.LayerNormalization(epsilon=1e-12)
    for layer in (ours, reference):
        layer.build(shape)
        layer.gamma.assign(np.linspace(0.5, 2, shape[-1]).astype("float32"))
        layer.beta.assign(np.linspace(-1, 1, shape[-1]).astype("float32"))
    results = []
    for layer in (ours, reference):
        with tf.GradientTape() as tape:
            tape.watch(x)
            y = layer(x)
            loss = tf.reduce_sum(y * upstream)
        results.append([y, *tape.gradient(loss, [x, layer.gamma, layer.beta])])
    for name, a, b in zip(("output", "d_input", "d_gamma", "d_beta"), *results):
        np.testing.assert_allclose(a, b, rtol=1e-4, atol=2e-5, err_msg=name)
    assert float(tf.reduce_max(tf.abs(results[0][1]))) > 0.1  # the gradient is not trivially 0


def test_layer_norm_computes_in_float32_and_returns_the_compute_dtype():
    """Under mixed_bfloat16 a bfloat16 input is normalised in float32 (as Keras does) and the
    result, rounded once, comes back in bfloat16, with a bfloat16 input gradient."""
    import keras
    import tensorflow as tf

    from electra_tf.layers.normalization import LayerNorm

    x = tf.constant(np.random.default_rng(1).normal(size=(4, 32)), tf.bfloat16)
    layer = LayerNorm(dtype="mixed_bfloat16")
    reference = keras.layers.LayerNormalization()
    with tf.GradientTape() as tape:
        tape.watch(x)
        y = layer(x)
        total = tf.reduce_sum(tf.cast(y, tf.float32) * tf.range(32, dtype=tf.float32))
    assert y.dtype == tf.bfloat16
    assert tape.gradient(total, x).dtype == tf.bfloat16
    expected = tf.cast(reference(tf.cast(x, tf.float32)), tf.bfloat16)
    np.testing.assert_allclose(tf.cast(y, tf.float32), tf.cast(expected, tf.float32),
                               atol=2 ** -7)


def test_half_bits_dropout_drops_at_the_rate_and_scales_like_keras():
    import keras
    import tensorflow as tf

    from electra_tf.layers.dropout import HalfBitsDropout

    x = tf.ones([64, 4, 63, 65])  # an odd number of elements (1,048,320)
    for rate in (0.1, 0.5):
        layer = HalfBitsDropout(rate, seed=1)
        out = np.asarray(layer(x, training=True))
        dropped = (out == 0).mean()
        assert abs(dropped - rate) < 0.003, dropped  # 1M draws: std 3e-4
        np.testing.assert_allclose(out[out != 0], 1.0 / (1.0 - rate), rtol=1e-6)
        again = np.asarray(layer(x, training=True))
        assert (again != out).mean() > rate  # a fresh mask per call
        np.testing.assert_array_equal(np.asarray(HalfBitsDropout(rate, seed=1)(x, training=True)),
                                      out)  # reproducible from the seed
        np.testing.assert_array_equal(np.asarray(layer(x, training=False)), np.asarray(x))
    low = HalfBitsDropout(0.1, seed=2, dtype="mixed_bfloat16")(tf.cast(x, tf.bfloat16),
                                                               training=True)
    assert low.dtype == tf.bfloat16
    # Masks are independent across positions: neighbouring halves of one word agree no more
    # often than chance (0.9^2 + 0.1^2 = 0.82).
    pairs = (np.asarray(low, np.float32).ravel()[:-1] != 0).reshape(-1)
    agree = (pairs[:-1:2] == pairs[1::2]).mean()
    assert abs(agree - 0.82) < 0.005, agree
    assert isinstance(keras.layers.deserialize(keras.layers.serialize(HalfBitsDropout(0.1))),
                      keras.layers.Dropout)


def test_with_dropout_keeps_the_weights_and_changes_only_training_outputs():
    encoder = ElectraEncoder(**dict(TINY_ENCODER, dropout=0.0, attention_dropout=0.0))
    inputs = {"token_ids": np.array([[2, 7, 8, 9, 10, 11, 3]])}
    plain = np.asarray(encoder(inputs, training=True))
    noisy = encoder.with_dropout(0.3, 0.2)
    assert (noisy.get_config()["dropout"], noisy.get_config()["attention_dropout"]) == (0.3, 0.2)
    assert [layer.dropout for layer in noisy.transformer_layers] == [0.3, 0.3]
    np.testing.assert_allclose(np.asarray(noisy(inputs, training=False)), plain, atol=1e-6)
    assert not np.allclose(np.asarray(noisy(inputs, training=True)), plain, atol=1e-3)
    np.testing.assert_allclose(np.asarray(encoder(inputs, training=True)), plain, atol=0)


def test_reinitialising_the_top_layers_keeps_the_rest():
    encoder = ElectraEncoder(**dict(TINY_ENCODER, layer_norm_position="pre"))
    encoder({"token_ids": np.array([[2, 7, 8, 3]])})
    fresh = encoder.with_reinitialised_top_layers(1)
    same = lambda a, b: all(np.array_equal(x, y) for x, y in zip(a.get_weights(),  # noqa: E731
                                                                   b.get_weights()))
    assert same(fresh.embeddings, encoder.embeddings)
    assert same(fresh.transformer_layers[0], encoder.transformer_layers[0])
    assert not same(fresh.transformer_layers[1], encoder.transformer_layers[1])
    assert len(fresh.weights) == len(encoder.weights)
    assert same(encoder.with_reinitialised_top_layers(0), encoder)


@pytest.mark.parametrize("layer_norm_position", ["post", "pre"])
def test_hidden_states_are_each_layers_output_and_end_with_the_call_output(layer_norm_position):
    encoder = ElectraEncoder(**dict(TINY_ENCODER, layer_norm_position=layer_norm_position))
    inputs = {"token_ids": np.array([[2, 7, 8, 9, 3, 0]])}
    states = encoder.hidden_states(inputs)
    assert len(states) == encoder.num_layers + 1
    assert all(tuple(s.shape) == (1, 6, encoder.hidden_size) for s in states)
    np.testing.assert_allclose(np.asarray(states[-1]), np.asarray(encoder(inputs)), atol=1e-6)
    # Each block's output is the next block's input: re-running block 1 on state 1 gives state 2
    # (before the final LayerNorm, which only the last state has with pre-LN).
    if layer_norm_position == "post":
        mask = np.array([[1, 1, 1, 1, 1, 0]])
        np.testing.assert_allclose(
            np.asarray(encoder.transformer_layers[1](states[1], padding_mask=mask)),
            np.asarray(states[2]), atol=1e-6)
    assert not np.allclose(np.asarray(states[0]), np.asarray(states[1]), atol=1e-3)
