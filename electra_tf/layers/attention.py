"""Multi-head self-attention with a padding mask."""

from __future__ import annotations

import keras
from keras import ops

from electra_tf.layers.dropout import HalfBitsDropout


@keras.saving.register_keras_serializable(package="electra_tf")
class MultiHeadSelfAttention(keras.layers.Layer):
    """Multi-head scaled dot-product self-attention, `softmax(Q K^T / sqrt(d_k)) V` per head.

    Inference uses the fused `keras.ops.dot_product_attention`. Training with attention dropout
    (ELECTRA uses 0.1 on the attention probabilities) and `return_attention_scores=True` need the
    probabilities themselves, which the fused op does not expose, so those take the explicit
    einsum -> softmax -> dropout path. Both paths give the same numbers (tested).

    Q, K and V are separate projections (not one fused QKV matrix) so that checkpoints of the
    reference implementations map onto them one-to-one.

    Args:
        num_heads: number of heads N.
        key_dim: width of each head d_k (hidden_size / num_heads in ELECTRA).
        attention_dropout: dropout rate on the attention probabilities.
        initializer_range: stddev of the truncated-normal kernel initialiser.

    Call args:
        x: float tensor `[batch, seq_len, hidden]`.
        padding_mask: optional bool/int tensor `[batch, seq_len]`, 1/True for real tokens.
            Padding *keys* are never attended to.
        return_attention_scores: also return the probabilities `[batch, num_heads, seq_len, seq_len]`.

    Returns:
        float tensor `[batch, seq_len, hidden]` (and the probabilities if asked for).
    """

    def __init__(self, num_heads, key_dim, attention_dropout=0.0, initializer_range=0.02,
                 **kwargs):
        super().__init__(**kwargs)
        self.num_heads = num_heads
        self.key_dim = key_dim
        self.attention_dropout = attention_dropout
        self.initializer_range = initializer_range
        self.scale = 1.0 / float(key_dim) ** 0.5

        def projection(name):
            return keras.layers.EinsumDense(
                "btd,dnh->btnh", output_shape=(None, num_heads, key_dim), bias_axes="nh",
                kernel_initializer=keras.initializers.TruncatedNormal(stddev=initializer_range),
                dtype=self.dtype_policy, name=name)

        self.query_dense = projection("query")
        self.key_dense = projection("key")
        self.value_dense = projection("value")
        self.output_dense = None  # needs the hidden size: created in build()
        self.dropout_layer = HalfBitsDropout(attention_dropout, dtype=self.dtype_policy)

    def build(self, x_shape, padding_mask_shape=None):
        hidden = x_shape[-1]
        for dense in (self.query_dense, self.key_dense, self.value_dense):
            dense.build(x_shape)
        self.output_dense = keras.layers.EinsumDense(
            "btnh,nhd->btd", output_shape=(None, hidden), bias_axes="d",
            kernel_initializer=keras.initializers.TruncatedNormal(stddev=self.initializer_range),
            dtype=self.dtype_policy, name="attention_output")
        self.output_dense.build(tuple(x_shape[:-1]) + (self.num_heads, self.key_dim))
        self.built = True

    def call(self, x, padding_mask=None, training=None, return_attention_scores=False):
        query = self.query_dense(x)  # [B, T, N, d_k]
        key = self.key_dense(x)
        value = self.value_dense(x)
        mask = None
        if padding_mask is not None:
            # [B, S] -> [B, 1, 1, S]: every query may look at every real key.
            mask = ops.cast(padding_mask, "bool")[:, None, None, :]

        use_dropout = bool(training) and self.attention_dropout > 0
        if not use_dropout and not return_attention_scores:
            context = ops.dot_product_attention(query, key, value, mask=mask, scale=self.scale)
            return self.output_dense(context)

        logits = ops.einsum("btnh,bsnh->bnts", query, key) * ops.cast(self.scale, query.dtype)
        # Softmax in float32 so the masked logits stay finite under float16 mixed precision.
        logits = ops.cast(logits, "float32")
        if mask is not None:
            logits = ops.where(mask, logits, ops.cast(-1e9, "float32"))
        probs = ops.cast(ops.softmax(logits, axis=-1), self.compute_dtype)
        dropped = self.dropout_layer(probs, training=training)
        context = ops.einsum("bnts,bsnh->btnh", dropped, value)
        output = self.output_dense(context)
        if return_attention_scores:
            return output, probs
        return output

    def compute_output_shape(self, x_shape, padding_mask_shape=None):
        return tuple(x_shape)

    def get_config(self):
        config = super().get_config()
        config.update(num_heads=self.num_heads, key_dim=self.key_dim,
                      attention_dropout=self.attention_dropout,
                      initializer_range=self.initializer_range)
        return config
