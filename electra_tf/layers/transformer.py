"""Post-LayerNorm Transformer encoder block (BERT/ELECTRA)."""

from __future__ import annotations

import keras

from electra_tf.layers.activations import exact_gelu
from electra_tf.layers.attention import MultiHeadSelfAttention
from electra_tf.layers.dropout import HalfBitsDropout


@keras.saving.register_keras_serializable(package="electra_tf")
class TransformerEncoderBlock(keras.layers.Layer):
    """One encoder layer: `x = LN(x + Drop(MHSA(x)))`, then `x = LN(x + Drop(FFN(x)))`.

    Post-LN (normalise *after* each residual sum) as in BERT and ELECTRA; the FFN is
    `Dense(intermediate, exact erf GELU) -> Dense(hidden)`.

    Args:
        num_heads: attention heads; `hidden % num_heads == 0`.
        intermediate_size: FFN inner width (4 * hidden in ELECTRA).
        dropout: dropout on the attention output and the FFN output.
        attention_dropout: dropout on the attention probabilities.
        layer_norm_epsilon: LayerNorm epsilon.
        initializer_range: stddev of the truncated-normal kernel initialiser.

    Call args:
        x: float tensor `[batch, seq_len, hidden]`.
        padding_mask: optional `[batch, seq_len]`, 1 for real tokens.
        return_attention_scores: also return `[batch, num_heads, seq_len, seq_len]` probabilities.

    Returns:
        float tensor `[batch, seq_len, hidden]` (and the attention probabilities if asked for).
    """

    def __init__(self, num_heads, intermediate_size, dropout=0.1, attention_dropout=0.1,
                 layer_norm_epsilon=1e-12, initializer_range=0.02, **kwargs):
        super().__init__(**kwargs)
        self.num_heads = num_heads
        self.intermediate_size = intermediate_size
        self.dropout = dropout
        self.attention_dropout = attention_dropout
        self.layer_norm_epsilon = layer_norm_epsilon
        self.initializer_range = initializer_range

    def build(self, x_shape, padding_mask_shape=None):
        hidden = x_shape[-1]
        if hidden % self.num_heads:
            raise ValueError(f"hidden size {hidden} is not divisible by num_heads "
                             f"{self.num_heads}.")
        init = keras.initializers.TruncatedNormal(stddev=self.initializer_range)
        policy = self.dtype_policy
        self.attention = MultiHeadSelfAttention(
            self.num_heads, hidden // self.num_heads, attention_dropout=self.attention_dropout,
            initializer_range=self.initializer_range, dtype=policy, name="attention")
        self.attention.build(x_shape)
        self.attention_dropout_layer = HalfBitsDropout(self.dropout, dtype=policy)
        self.attention_layer_norm = keras.layers.LayerNormalization(
            epsilon=self.layer_norm_epsilon, dtype=policy, name="attention_layer_norm")
        self.attention_layer_norm.build(x_shape)
        # The activation (exact GELU, as in ELECTRA) is applied in `call`, in float32.
        self.intermediate_dense = keras.layers.Dense(
            self.intermediate_size, kernel_initializer=init, dtype=policy, name="intermediate")
        self.intermediate_dense.build(x_shape)
        self.output_dense = keras.layers.Dense(
            hidden, kernel_initializer=init, dtype=policy, name="output")
        self.output_dense.build(tuple(x_shape[:-1]) + (self.intermediate_size,))
        self.output_dropout_layer = HalfBitsDropout(self.dropout, dtype=policy)
        self.output_layer_norm = keras.layers.LayerNormalization(
            epsilon=self.layer_norm_epsilon, dtype=policy, name="output_layer_norm")
        self.output_layer_norm.build(x_shape)
        self.built = True

    def call(self, x, padding_mask=None, training=None, return_attention_scores=False):
        attended = self.attention(x, padding_mask=padding_mask, training=training,
                                  return_attention_scores=return_attention_scores)
        if return_attention_scores:
            attended, scores = attended
        x = self.attention_layer_norm(
            x + self.attention_dropout_layer(attended, training=training))
        ffn = self.output_dense(exact_gelu(self.intermediate_dense(x)))
        x = self.output_layer_norm(x + self.output_dropout_layer(ffn, training=training))
        if return_attention_scores:
            return x, scores
        return x

    def compute_output_shape(self, x_shape, padding_mask_shape=None):
        return tuple(x_shape)

    def get_config(self):
        config = super().get_config()
        config.update(num_heads=self.num_heads, intermediate_size=self.intermediate_size,
                      dropout=self.dropout, attention_dropout=self.attention_dropout,
                      layer_norm_epsilon=self.layer_norm_epsilon,
                      initializer_range=self.initializer_range)
        return config
