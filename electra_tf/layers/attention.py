"""Multi-head self-attention with a padding mask and an optional ALiBi distance bias."""

from __future__ import annotations

import math

import keras
import numpy as np
from keras import ops

from electra_tf.layers import fused
from electra_tf.layers.dropout import HalfBitsDropout
from electra_tf.layers.matmul import (
    MatmulEinsumDense,
    ReloadsDTypePolicy,
    einsum,
    einsum_product,
    matmul_dtype,
)

ATTENTION_BIASES = ("none", "alibi")


def alibi_slopes(num_heads: int) -> np.ndarray:
    """Per-head slopes of ALiBi (Press et al. 2022, arXiv 2108.12409): a geometric sequence
    starting at `2^(-8/n)` with ratio `2^(-8/n)` for `n` heads; for an `n` that is not a power of
    two, the slopes of the power of two below it plus every other slope of the one above.

    Returns:
        float32 `[num_heads]`, largest (most local head) first.
    """
    def geometric(n):
        start = 2.0 ** (-8.0 / n)
        return [start ** (i + 1) for i in range(n)]

    base = 2 ** int(math.floor(math.log2(num_heads)))
    slopes = geometric(base)
    if base < num_heads:
        slopes += geometric(2 * base)[0::2][: num_heads - base]
    return np.asarray(slopes, dtype="float32")


def alibi_bias(num_heads: int, seq_len):
    """`-slope_h * |i - j|` as a float32 `[1, num_heads, seq_len, seq_len]` logit bias: each head
    prefers nearby tokens from the first step, at its own rate. Symmetric in `i - j` because the
    encoder is bidirectional (as in MosaicBERT); there are no position embeddings to learn."""
    positions = ops.cast(ops.arange(seq_len), "float32")
    distance = ops.abs(positions[:, None] - positions[None, :])  # [T, S]
    slopes = ops.convert_to_tensor(alibi_slopes(num_heads))[:, None, None]
    return -(slopes * distance)[None]


@keras.saving.register_keras_serializable(package="electra_tf")
class MultiHeadSelfAttention(ReloadsDTypePolicy, keras.layers.Layer):
    """Multi-head scaled dot-product self-attention, `softmax(Q K^T / sqrt(d_k)) V` per head.

    In float32, inference uses the fused `keras.ops.dot_product_attention`; training with
    attention dropout (ELECTRA uses 0.1 on the attention probabilities) and
    `return_attention_scores=True` need the probabilities themselves, which that op does not
    expose, so those take the explicit einsum -> softmax -> dropout path. Under the 16-bit
    precisions (`electra_tf.layers.fused.applies_to`) training and inference both run mask +
    softmax + dropout as one XLA kernel between the two einsums: in inference it served 32 x 256
    reviews at 0.80 s per batch where `dot_product_attention`, whose mask, softmax and bias add
    run as bfloat16 TensorFlow kernels, took 0.85 s (benchmarks/results/export_throughput.md,
    before and after). All paths give the same numbers (tested).

    Q, K and V are separate projections (not one fused QKV matrix) so that checkpoints of the
    reference implementations map onto them one-to-one.

    Two options for small pretraining budgets (both off in the paper's configs): an ALiBi
    distance bias on the logits (`attention_bias="alibi"`), and a larger initial scale of the
    query/key kernels (`query_key_initializer_range`): at stddev 0.02 the attention logits of a
    fresh model are nearly flat, so every token starts out averaging over the whole sequence.

    Args:
        num_heads: number of heads N.
        key_dim: width of each head d_k (hidden_size / num_heads in ELECTRA).
        attention_dropout: dropout rate on the attention probabilities.
        initializer_range: stddev of the truncated-normal kernel initialiser.
        attention_bias: "none" or "alibi" (see `alibi_bias`).
        query_key_initializer_range: stddev for the query and key kernels; None ->
            `initializer_range`.

    Call args:
        x: float tensor `[batch, seq_len, hidden]`.
        padding_mask: optional bool/int tensor `[batch, seq_len]`, 1/True for real tokens.
            Padding *keys* are never attended to.
        return_attention_scores: also return the probabilities `[batch, num_heads, seq_len, seq_len]`.

    Returns:
        float tensor `[batch, seq_len, hidden]` (and the probabilities if asked for).
    """

    def __init__(self, num_heads, key_dim, attention_dropout=0.0, initializer_range=0.02,
                 attention_bias="none", query_key_initializer_range=None, **kwargs):
        super().__init__(**kwargs)
        if attention_bias not in ATTENTION_BIASES:
            raise ValueError(f"attention_bias must be one of {ATTENTION_BIASES}, got "
                             f"{attention_bias!r}.")
        self.num_heads = num_heads
        self.key_dim = key_dim
        self.attention_dropout = attention_dropout
        self.initializer_range = initializer_range
        self.attention_bias = attention_bias
        self.query_key_initializer_range = query_key_initializer_range
        self.scale = 1.0 / float(key_dim) ** 0.5

        def projection(name, stddev):
            return MatmulEinsumDense(
                "btd,dnh->btnh", output_shape=(None, num_heads, key_dim), bias_axes="nh",
                kernel_initializer=keras.initializers.TruncatedNormal(stddev=stddev),
                dtype=self.dtype_policy, name=name)

        query_key_range = query_key_initializer_range or initializer_range
        self.query_dense = projection("query", query_key_range)
        self.key_dense = projection("key", query_key_range)
        self.value_dense = projection("value", initializer_range)
        self.output_dense = None  # needs the hidden size: created in build()
        self.dropout_layer = HalfBitsDropout(attention_dropout, dtype=self.dtype_policy)

    def build(self, x_shape, padding_mask_shape=None):
        hidden = x_shape[-1]
        for dense in (self.query_dense, self.key_dense, self.value_dense):
            dense.build(x_shape)
        self.output_dense = MatmulEinsumDense(
            "btnh,nhd->btd", output_shape=(None, hidden), bias_axes="d",
            kernel_initializer=keras.initializers.TruncatedNormal(stddev=self.initializer_range),
            dtype=self.dtype_policy, name="attention_output")
        self.output_dense.build(tuple(x_shape[:-1]) + (self.num_heads, self.key_dim))
        self.built = True

    def call(self, x, padding_mask=None, training=None, return_attention_scores=False):
        if return_attention_scores:
            context, probs = self._context(x, padding_mask, training, return_probs=True)
            return self.output_dense(context), probs
        return self.output_dense(self._context(x, padding_mask, training))

    def output_product(self, x, padding_mask=None, training=None):
        """The output projection's product without its bias, in the matmul dtype: for a block
        that adds the bias in its fused residual LayerNorm (`electra_tf.layers.fused`).

        Returns:
            `[batch, seq_len, hidden]` in the matmul dtype (`matmul_dtype`).
        """
        return self.output_dense.product(self._context(x, padding_mask, training))

    def _context(self, x, padding_mask, training, return_probs=False):
        """The heads' outputs `[B, T, N, d_k]` before the output projection (and, with
        `return_probs`, the probabilities `[B, N, T, S]` in the compute dtype)."""
        query = self.query_dense(x)  # [B, T, N, d_k]
        key = self.key_dense(x)
        value = self.value_dense(x)
        mask = None
        if padding_mask is not None:
            # [B, S] -> [B, 1, 1, S]: every query may look at every real key.
            mask = ops.cast(padding_mask, "bool")[:, None, None, :]

        bias = None
        if self.attention_bias == "alibi":
            bias = alibi_bias(self.num_heads, ops.shape(x)[1])  # [1, N, T, T] float32

        use_dropout = bool(training) and self.attention_dropout > 0
        matmuls_in_compute_dtype = matmul_dtype(self.dtype_policy) == self.compute_dtype
        if (not use_dropout and not return_probs and matmuls_in_compute_dtype
                and not fused.applies_to(self.dtype_policy)):
            return ops.dot_product_attention(
                query, key, value, mask=mask, scale=self.scale,
                bias=None if bias is None else ops.cast(bias, query.dtype))

        # Q K^T and probs @ V are matmuls: bfloat16 under bfloat16_matmul, the rest float32.
        # The scale goes on the queries, [B, T, N, d_k], a quarter of the size of the logits
        # [B, N, T, S] at ELECTRA's shapes (T = S = 128, N * d_k = 256): one smaller pass
        # forward and backward.
        query = query * ops.cast(self.scale, query.dtype)
        if mask is not None:
            # Padding keys as a -1e9 bias [B, 1, 1, S] rather than a select over the logits:
            # the same probabilities (exp underflows to 0 either way), and the add's gradient
            # needs no pass over [B, N, T, S] as the select's does.
            mask_bias = (1.0 - ops.cast(mask, "float32")) * -1e9
            bias = mask_bias if bias is None else bias + mask_bias
        if not return_probs and fused.applies_to(self.dtype_policy):
            # Mask, softmax (in float32, so masked logits stay finite under float16) and
            # dropout in one XLA kernel that reads and writes the matmul dtype.
            logits = einsum_product("btnh,bsnh->bnts", query, key, self.dtype_policy)
            seed, rate = fused.dropout_in_use(self.dropout_layer, training)
            dropped = fused.masked_softmax_dropout(logits, bias, seed, rate,
                                                   matmul_dtype(self.dtype_policy))
            return einsum_product("bnts,bsnh->btnh", dropped, value, self.dtype_policy)

        logits = ops.cast(einsum("btnh,bsnh->bnts", query, key, self.dtype_policy), "float32")
        if bias is not None:
            logits = logits + bias
        probs = ops.cast(ops.softmax(logits, axis=-1), self.compute_dtype)
        dropped = self.dropout_layer(probs, training=training)
        context = einsum("bnts,bsnh->btnh", dropped, value, self.dtype_policy)
        return (context, probs) if return_probs else context

    def compute_output_shape(self, x_shape, padding_mask_shape=None):
        return tuple(x_shape)

    def get_config(self):
        config = super().get_config()
        config.update(num_heads=self.num_heads, key_dim=self.key_dim,
                      attention_dropout=self.attention_dropout,
                      initializer_range=self.initializer_range,
                      attention_bias=self.attention_bias,
                      query_key_initializer_range=self.query_key_initializer_range)
        return config
