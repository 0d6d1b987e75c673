"""Output heads: the generator's masked-LM head and the discriminator's per-token RTD head."""

from __future__ import annotations

import keras
from keras import ops

from electra_tf.layers.activations import exact_gelu
from electra_tf.layers.matmul import MatmulDense, ReloadsDTypePolicy, matmul
from electra_tf.layers.normalization import LayerNorm


@keras.saving.register_keras_serializable(package="electra_tf")
class MaskedLMHead(ReloadsDTypePolicy, keras.layers.Layer):
    """`Dense(E, gelu) -> LayerNorm -> x @ word_embeddings^T + bias`: vocabulary logits.

    The output layer is the (shared) word-embedding matrix, passed at call time rather than held
    as a sub-layer so the embedding variables have a single owner; only the bias belongs here.

    Args:
        vocab_size: V.
        embedding_size: E, the width of the word embeddings the logits are tied to.

    Call args:
        hidden: float tensor `[batch, num_positions, hidden]` (typically only the masked positions).
        embedding_matrix: float tensor `[vocab_size, embedding_size]`.

    Returns:
        logits `[batch, num_positions, vocab_size]` in float32 (losses and sampling need it).
    """

    def __init__(self, vocab_size, embedding_size, layer_norm_epsilon=1e-12,
                 initializer_range=0.02, **kwargs):
        super().__init__(**kwargs)
        self.vocab_size = vocab_size
        self.embedding_size = embedding_size
        self.layer_norm_epsilon = layer_norm_epsilon
        self.initializer_range = initializer_range
        self.dense = MatmulDense(  # exact GELU applied in `call`
            embedding_size,
            kernel_initializer=keras.initializers.TruncatedNormal(stddev=initializer_range),
            dtype=self.dtype_policy, name="transform")
        self.layer_norm = LayerNorm(
            epsilon=layer_norm_epsilon, dtype=self.dtype_policy, name="layer_norm")

    def build(self, hidden_shape, embedding_matrix_shape=None):
        self.dense.build(hidden_shape)
        self.layer_norm.build(tuple(hidden_shape[:-1]) + (self.embedding_size,))
        self.bias = self.add_weight(shape=(self.vocab_size,), initializer="zeros", name="bias")
        self.built = True

    def call(self, hidden, embedding_matrix):
        x = self.layer_norm(exact_gelu(self.dense(hidden)))
        logits = matmul(x, ops.transpose(embedding_matrix), self.dtype_policy)
        return ops.cast(logits, "float32") + ops.cast(self.bias, "float32")

    def compute_output_shape(self, hidden_shape, embedding_matrix_shape=None):
        return tuple(hidden_shape[:-1]) + (self.vocab_size,)

    def get_config(self):
        config = super().get_config()
        config.update(vocab_size=self.vocab_size, embedding_size=self.embedding_size,
                      layer_norm_epsilon=self.layer_norm_epsilon,
                      initializer_range=self.initializer_range)
        return config


@keras.saving.register_keras_serializable(package="electra_tf")
class ReplacedTokenDetectionHead(ReloadsDTypePolicy, keras.layers.Layer):
    """`Dense(H, gelu) -> Dense(1)`: one "was this token replaced?" logit per token.

    Initialisation follows the authors' code: the hidden `Dense` uses the truncated normal
    (stddev `initializer_range`), the 1-unit output layer keeps Glorot-uniform (their
    `tf.layers.dense` default). This matters: with a 0.02-stddev output layer the head's GELU
    units are driven into their flat region while the bias learns the base rate of replaced
    tokens, and the discriminator collapses to a constant prediction (ROC AUC 0.5) even on a
    task a bag of words solves. `tests/test_training.py` guards against that.

    Call args:
        hidden: float tensor `[batch, seq_len, hidden]`.

    Returns:
        float32 logits `[batch, seq_len]` (sigmoid > 0.5 means "replaced").
    """

    def __init__(self, initializer_range=0.02, **kwargs):
        super().__init__(**kwargs)
        self.initializer_range = initializer_range
        self.dense = None
        self.prediction = MatmulDense(
            1, kernel_initializer="glorot_uniform", dtype=self.dtype_policy, name="prediction")

    def build(self, hidden_shape):
        hidden = hidden_shape[-1]
        self.dense = MatmulDense(  # exact GELU applied in `call`
            hidden,
            kernel_initializer=keras.initializers.TruncatedNormal(stddev=self.initializer_range),
            dtype=self.dtype_policy, name="transform")
        self.dense.build(hidden_shape)
        self.prediction.build(hidden_shape)
        self.built = True

    def call(self, hidden):
        logits = self.prediction(exact_gelu(self.dense(hidden)))
        return ops.cast(ops.squeeze(logits, axis=-1), "float32")

    def compute_output_shape(self, hidden_shape):
        return tuple(hidden_shape[:-1])

    def get_config(self):
        config = super().get_config()
        config.update(initializer_range=self.initializer_range)
        return config
