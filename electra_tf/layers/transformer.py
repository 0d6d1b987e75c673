"""Transformer encoder block: post-LayerNorm (BERT/ELECTRA) or pre-LayerNorm."""

from __future__ import annotations

import keras
from keras import ops

from electra_tf.layers import fused
from electra_tf.layers.activations import exact_gelu
from electra_tf.layers.attention import MultiHeadSelfAttention
from electra_tf.layers.dropout import HalfBitsDropout
from electra_tf.layers.matmul import MatmulDense, ReloadsDTypePolicy, matmul_dtype
from electra_tf.layers.normalization import LayerNorm

LAYER_NORM_POSITIONS = ("post", "pre")


@keras.saving.register_keras_serializable(package="electra_tf")
class TransformerEncoderBlock(ReloadsDTypePolicy, keras.layers.Layer):
    """One encoder layer: `x = LN(x + Drop(MHSA(x)))`, then `x = LN(x + Drop(FFN(x)))`.

    Post-LN (normalise *after* each residual sum) as in BERT and ELECTRA; the FFN is
    `Dense(intermediate, exact erf GELU) -> Dense(hidden)`. With `layer_norm_position="pre"`
    the block is `x = x + Drop(MHSA(LN(x)))`, `x = x + Drop(FFN(LN(x)))` (GPT-2, Cramming): the
    residual stream is never normalised, which tolerates larger learning rates and shorter
    warm-up; the encoder then adds one final LayerNorm.

    With `ffn_convolution_kernel=k > 0` the FFN's inner activations also mix with their
    neighbours before the GELU: `h = h + DepthwiseConv1D_k(h)` (padding positions zeroed first,
    so a batch's padding never leaks into real tokens). A cheap locality bias in the spirit of
    ConvBERT (which replaces attention heads with span-based dynamic convolutions; this is the
    simpler static depthwise kind): each token sees its `k - 1` neighbours from the first step.

    Args:
        num_heads: attention heads; `hidden % num_heads == 0`.
        intermediate_size: FFN inner width (4 * hidden in ELECTRA).
        dropout: dropout on the attention output and the FFN output.
        attention_dropout: dropout on the attention probabilities.
        layer_norm_epsilon: LayerNorm epsilon.
        initializer_range: stddev of the truncated-normal kernel initialiser.
        layer_norm_position: "post" (BERT/ELECTRA) or "pre".
        attention_bias, query_key_initializer_range: see `MultiHeadSelfAttention`.
        ffn_convolution_kernel: width of the FFN's depthwise convolution (odd); 0 = none.

    Call args:
        x: float tensor `[batch, seq_len, hidden]`.
        padding_mask: optional `[batch, seq_len]`, 1 for real tokens.
        return_attention_scores: also return `[batch, num_heads, seq_len, seq_len]` probabilities.

    Returns:
        float tensor `[batch, seq_len, hidden]` (and the attention probabilities if asked for).
    """

    def __init__(self, num_heads, intermediate_size, dropout=0.1, attention_dropout=0.1,
                 layer_norm_epsilon=1e-12, initializer_range=0.02, layer_norm_position="post",
                 attention_bias="none", query_key_initializer_range=None,
                 ffn_convolution_kernel=0, **kwargs):
        super().__init__(**kwargs)
        if ffn_convolution_kernel < 0 or (ffn_convolution_kernel and not
                                          ffn_convolution_kernel % 2):
            raise ValueError("ffn_convolution_kernel must be 0 or an odd width (3, 5, ...), got "
                             f"{ffn_convolution_kernel}.")
        if layer_norm_position not in LAYER_NORM_POSITIONS:
            raise ValueError(f"layer_norm_position must be one of {LAYER_NORM_POSITIONS}, got "
                             f"{layer_norm_position!r}.")
        self.num_heads = num_heads
        self.intermediate_size = intermediate_size
        self.dropout = dropout
        self.attention_dropout = attention_dropout
        self.layer_norm_epsilon = layer_norm_epsilon
        self.initializer_range = initializer_range
        self.layer_norm_position = layer_norm_position
        self.attention_bias = attention_bias
        self.query_key_initializer_range = query_key_initializer_range
        self.ffn_convolution_kernel = ffn_convolution_kernel

    def build(self, x_shape, padding_mask_shape=None):
        hidden = x_shape[-1]
        if hidden % self.num_heads:
            raise ValueError(f"hidden size {hidden} is not divisible by num_heads "
                             f"{self.num_heads}.")
        init = keras.initializers.TruncatedNormal(stddev=self.initializer_range)
        policy = self.dtype_policy
        self.attention = MultiHeadSelfAttention(
            self.num_heads, hidden // self.num_heads, attention_dropout=self.attention_dropout,
            initializer_range=self.initializer_range, attention_bias=self.attention_bias,
            query_key_initializer_range=self.query_key_initializer_range, dtype=policy,
            name="attention")
        self.attention.build(x_shape)
        self.attention_dropout_layer = HalfBitsDropout(self.dropout, dtype=policy)
        self.attention_layer_norm = LayerNorm(
            epsilon=self.layer_norm_epsilon, dtype=policy, name="attention_layer_norm")
        self.attention_layer_norm.build(x_shape)
        # The activation (exact GELU, as in ELECTRA) is applied in `call`, in float32.
        self.intermediate_dense = MatmulDense(
            self.intermediate_size, kernel_initializer=init, dtype=policy, name="intermediate")
        self.intermediate_dense.build(x_shape)
        self.ffn_convolution = None
        if self.ffn_convolution_kernel:
            # Keras' default (Glorot) scale, not 0.02: the mixing should act from step 0.
            self.ffn_convolution = keras.layers.DepthwiseConv1D(
                self.ffn_convolution_kernel, padding="same", use_bias=False, dtype=policy,
                name="ffn_convolution")
            self.ffn_convolution.build(tuple(x_shape[:-1]) + (self.intermediate_size,))
        self.output_dense = MatmulDense(
            hidden, kernel_initializer=init, dtype=policy, name="output")
        self.output_dense.build(tuple(x_shape[:-1]) + (self.intermediate_size,))
        self.output_dropout_layer = HalfBitsDropout(self.dropout, dtype=policy)
        self.output_layer_norm = LayerNorm(
            epsilon=self.layer_norm_epsilon, dtype=policy, name="output_layer_norm")
        self.output_layer_norm.build(x_shape)
        self.built = True

    def call(self, x, padding_mask=None, training=None, return_attention_scores=False):
        if self._fuses_elementwise_work(return_attention_scores):
            return self._fused_post_layer_norm(x, padding_mask, training)
        # Pre-LN reuses the two LayerNorms (same names, same weights layout): attention_layer_norm
        # then normalises the attention's input and output_layer_norm the FFN's input.
        pre = self.layer_norm_position == "pre"
        attended = self.attention(self.attention_layer_norm(x) if pre else x,
                                  padding_mask=padding_mask, training=training,
                                  return_attention_scores=return_attention_scores)
        if return_attention_scores:
            attended, scores = attended
        x = x + self.attention_dropout_layer(attended, training=training)
        if not pre:
            x = self.attention_layer_norm(x)
        inner = self.intermediate_dense(self.output_layer_norm(x) if pre else x)
        if self.ffn_convolution is not None:
            if padding_mask is not None:
                inner = inner * ops.cast(padding_mask, inner.dtype)[:, :, None]
            inner = inner + self.ffn_convolution(inner)
        ffn = self.output_dense(exact_gelu(inner))
        x = x + self.output_dropout_layer(ffn, training=training)
        if not pre:
            x = self.output_layer_norm(x)
        if return_attention_scores:
            return x, scores
        return x

    def _fuses_elementwise_work(self, return_attention_scores) -> bool:
        """Whether `call` takes the fused path: a post-LN block without the FFN convolution,
        not asked for its attention probabilities, under a 16-bit policy (`fused.applies_to`:
        in float32 the unfused kernels are as fast, so float32 keeps them and its numbers)."""
        return (self.layer_norm_position == "post" and self.ffn_convolution is None
                and not return_attention_scores and fused.applies_to(self.dtype_policy))

    def _fused_post_layer_norm(self, x, padding_mask, training):
        """The post-LN block with its elementwise work in three XLA kernels
        (`electra_tf.layers.fused`): attention-output bias + dropout + residual + LayerNorm,
        FFN bias + GELU, and FFN-output bias + dropout + residual + LayerNorm; the attention's
        mask + softmax + dropout is the fourth. Same weights, the same dropout masks for the
        same seeds, and the same function as the unfused path (to float rounding; tested)."""
        attended = self.attention.output_product(x, padding_mask=padding_mask, training=training)
        x = self._bias_dropout_residual_norm(attended, self.attention.output_dense.bias, x,
                                             self.attention_dropout_layer,
                                             self.attention_layer_norm, training)
        inner = fused.bias_gelu(self.intermediate_dense.product(x), self.intermediate_dense.bias,
                                matmul_dtype(self.dtype_policy))
        return self._bias_dropout_residual_norm(
            self.output_dense.product(inner), self.output_dense.bias, x,
            self.output_dropout_layer, self.output_layer_norm, training)

    def _bias_dropout_residual_norm(self, product, bias, residual, dropout, norm, training):
        seed, rate = fused.dropout_in_use(dropout, training)
        return fused.bias_dropout_residual_layer_norm(
            product, bias, residual, norm.gamma, norm.beta, seed, rate, norm.epsilon,
            self.compute_dtype)

    def compute_output_shape(self, x_shape, padding_mask_shape=None):
        return tuple(x_shape)

    def get_config(self):
        config = super().get_config()
        config.update(num_heads=self.num_heads, intermediate_size=self.intermediate_size,
                      dropout=self.dropout, attention_dropout=self.attention_dropout,
                      layer_norm_epsilon=self.layer_norm_epsilon,
                      initializer_range=self.initializer_range,
                      layer_norm_position=self.layer_norm_position,
                      attention_bias=self.attention_bias,
                      query_key_initializer_range=self.query_key_initializer_range,
                      ffn_convolution_kernel=self.ffn_convolution_kernel)
        return config
