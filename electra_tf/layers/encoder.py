"""The ELECTRA encoder: embeddings -> (E->H projection) -> N Transformer blocks (post-LN as in
the paper, or pre-LN with a final LayerNorm)."""

from __future__ import annotations

import keras
from keras import ops

from electra_tf.layers.embeddings import ElectraEmbeddings
from electra_tf.layers.matmul import MatmulDense, ReloadsDTypePolicy
from electra_tf.layers.normalization import LayerNorm
from electra_tf.layers.transformer import TransformerEncoderBlock

INPUT_KEYS = ("token_ids", "segment_ids", "padding_mask")


def standardize_inputs(inputs):
    """Accepts a dict with `token_ids` (+ optional `segment_ids`, `padding_mask`) or a bare
    `token_ids` tensor, and returns the three tensors, each `[batch, seq_len]`.

    A missing padding mask is derived as `token_ids != 0` ([PAD] is id 0 in BERT vocabularies).
    """
    if not isinstance(inputs, dict):
        inputs = {"token_ids": inputs}
    unknown = set(inputs) - set(INPUT_KEYS)
    if unknown or "token_ids" not in inputs:
        raise ValueError(f"Encoder inputs must be a dict with keys {INPUT_KEYS} (segment_ids and "
                         f"padding_mask optional); got keys {sorted(inputs)}.")
    token_ids = inputs["token_ids"]
    segment_ids = inputs.get("segment_ids")
    if segment_ids is None:
        segment_ids = ops.zeros_like(token_ids)
    padding_mask = inputs.get("padding_mask")
    if padding_mask is None:
        padding_mask = ops.not_equal(token_ids, 0)
    return token_ids, segment_ids, padding_mask


@keras.saving.register_keras_serializable(package="electra_tf")
class ElectraEncoder(ReloadsDTypePolicy, keras.layers.Layer):
    """Transformer encoder used by both the ELECTRA generator and discriminator.

    Args:
        vocab_size, embedding_size, max_position_embeddings, type_vocab_size,
        position_embedding: see `ElectraEmbeddings`.
        hidden_size: Transformer width H. When `H != embedding_size` a dense E->H projection
            follows the embeddings (each network has its own projection, even when the
            embedding block is shared).
        num_layers, num_heads, intermediate_size: Transformer depth, heads and FFN width.
        dropout, attention_dropout, layer_norm_epsilon, initializer_range: as in BERT.
        layer_norm_position: "post" (the paper) or "pre"; "pre" adds a final LayerNorm after
            the last block (`final_layer_norm`) so the output is normalised either way.
        attention_bias, query_key_initializer_range: see `MultiHeadSelfAttention`.
        ffn_convolution_kernel: see `TransformerEncoderBlock` (0 = none, the paper).
        embeddings: optional existing `ElectraEmbeddings` to use instead of creating one. This is
            how the pretrainer ties the generator's and discriminator's embeddings. It is not part
            of `get_config()`: a saved encoder reloads with its own copy of the weights.

    Call args:
        inputs: dict of `token_ids`, `segment_ids`, `padding_mask`, each `[batch, seq_len]`
            (a bare `token_ids` tensor also works).
        return_attention_scores: also return a list (one per layer) of attention probabilities
            `[batch, num_heads, seq_len, seq_len]`.

    Returns:
        sequence output `[batch, seq_len, hidden_size]`; the [CLS] vector is `output[:, 0]`.
    """

    def __init__(self, vocab_size, embedding_size, hidden_size, num_layers, num_heads,
                 intermediate_size, max_position_embeddings=512, type_vocab_size=2,
                 dropout=0.1, attention_dropout=0.1, layer_norm_epsilon=1e-12,
                 initializer_range=0.02, position_embedding="learned",
                 layer_norm_position="post", attention_bias="none",
                 query_key_initializer_range=None, ffn_convolution_kernel=0, embeddings=None,
                 **kwargs):
        super().__init__(**kwargs)
        if hidden_size % num_heads:
            raise ValueError(f"hidden_size ({hidden_size}) must be divisible by num_heads "
                             f"({num_heads}).")
        self.vocab_size = vocab_size
        self.embedding_size = embedding_size
        self.hidden_size = hidden_size
        self.num_layers = num_layers
        self.num_heads = num_heads
        self.intermediate_size = intermediate_size
        self.max_position_embeddings = max_position_embeddings
        self.type_vocab_size = type_vocab_size
        self.dropout = dropout
        self.attention_dropout = attention_dropout
        self.layer_norm_epsilon = layer_norm_epsilon
        self.initializer_range = initializer_range
        self.position_embedding = position_embedding
        self.layer_norm_position = layer_norm_position
        self.attention_bias = attention_bias
        self.query_key_initializer_range = query_key_initializer_range
        self.ffn_convolution_kernel = ffn_convolution_kernel

        if embeddings is None:
            embeddings = ElectraEmbeddings(
                vocab_size, embedding_size, max_position_embeddings=max_position_embeddings,
                type_vocab_size=type_vocab_size, position_embedding=position_embedding,
                dropout=dropout, layer_norm_epsilon=layer_norm_epsilon,
                initializer_range=initializer_range, dtype=self.dtype_policy, name="embeddings")
        elif (embeddings.vocab_size, embeddings.embedding_size) != (vocab_size, embedding_size):
            raise ValueError(
                f"Shared embeddings have vocab_size={embeddings.vocab_size}, embedding_size="
                f"{embeddings.embedding_size}; this encoder expects {vocab_size}, {embedding_size}.")
        self.embeddings = embeddings
        init = keras.initializers.TruncatedNormal(stddev=initializer_range)
        self.embedding_projection = None
        if embedding_size != hidden_size:
            self.embedding_projection = MatmulDense(
                hidden_size, kernel_initializer=init, dtype=self.dtype_policy,
                name="embedding_projection")
        self.transformer_layers = [
            TransformerEncoderBlock(
                num_heads, intermediate_size, dropout=dropout,
                attention_dropout=attention_dropout, layer_norm_epsilon=layer_norm_epsilon,
                initializer_range=initializer_range, layer_norm_position=layer_norm_position,
                attention_bias=attention_bias,
                query_key_initializer_range=query_key_initializer_range,
                ffn_convolution_kernel=ffn_convolution_kernel,
                dtype=self.dtype_policy, name=f"transformer_layer_{i}")
            for i in range(num_layers)
        ]
        self.final_layer_norm = None
        if layer_norm_position == "pre":
            self.final_layer_norm = LayerNorm(
                epsilon=layer_norm_epsilon, dtype=self.dtype_policy, name="final_layer_norm")

    def build(self, inputs_shape):
        token_shape = inputs_shape["token_ids"] if isinstance(inputs_shape, dict) else inputs_shape
        token_shape = tuple(token_shape)
        if not self.embeddings.built:
            self.embeddings.build(token_shape)
        if self.embedding_projection is not None:
            self.embedding_projection.build(token_shape + (self.embedding_size,))
        for layer in self.transformer_layers:
            layer.build(token_shape + (self.hidden_size,))
        if self.final_layer_norm is not None:
            self.final_layer_norm.build(token_shape + (self.hidden_size,))
        self.built = True

    def call(self, inputs, training=None, return_attention_scores=False):
        states, all_scores = self._forward(inputs, training, return_attention_scores)
        if return_attention_scores:
            return states[-1], all_scores
        return states[-1]

    def hidden_states(self, inputs, training=None) -> list:
        """Every layer's output, for feature extraction and probing (HF's
        `output_hidden_states`): `num_layers + 1` tensors `[batch, seq_len, hidden_size]`, the
        embeddings (after the E->H projection) and then each Transformer block's output; with
        pre-LN the last one has the final LayerNorm applied, so it equals `call`'s output."""
        if not self.built:  # building goes through Keras' __call__, which this method skips
            self(inputs)
        return self._forward(inputs, training, False)[0]

    def _forward(self, inputs, training, return_attention_scores):
        """(list of the layers' outputs as `hidden_states` returns it, list of attention
        probabilities per layer: empty unless `return_attention_scores`)."""
        token_ids, segment_ids, padding_mask = standardize_inputs(inputs)
        x = self.embeddings(token_ids, segment_ids, training=training)
        if self.embedding_projection is not None:
            x = self.embedding_projection(x)
        states, all_scores = [x], []
        for layer in self.transformer_layers:
            x = layer(x, padding_mask=padding_mask, training=training,
                      return_attention_scores=return_attention_scores)
            if return_attention_scores:
                x, scores = x
                all_scores.append(scores)
            states.append(x)
        if self.final_layer_norm is not None:
            states[-1] = self.final_layer_norm(x)
        return states, all_scores

    def with_dropout(self, dropout: float, attention_dropout: float) -> "ElectraEncoder":
        """A copy of this (built) encoder with other dropout rates and the same weights: a model
        pretrained without dropout is fine-tuned with it (Cramming; the paper uses 0.1)."""
        return self._copy(0, dropout=dropout, attention_dropout=attention_dropout)

    def with_reinitialised_top_layers(self, count: int) -> "ElectraEncoder":
        """A copy of this (built) encoder whose top `count` Transformer blocks (and final
        LayerNorm, if any) are freshly initialised and the rest keep their weights: the few-sample
        fine-tuning trick of Zhang et al. (2021), whose top layers are most specific to the
        pretraining task."""
        if not 0 <= count <= self.num_layers:
            raise ValueError(f"Cannot re-initialise {count} of {self.num_layers} layers.")
        return self._copy(count)

    def _copy(self, fresh_top_layers: int, **config_changes) -> "ElectraEncoder":
        """A new encoder of this one's config with `config_changes`, holding this one's weights
        except in the top `fresh_top_layers` blocks (and the final LayerNorm when any are)."""
        if not self.built:
            raise ValueError("Copying an encoder needs a built one (call it on inputs first).")
        copy = type(self).from_config(dict(self.get_config(), **config_changes))
        copy.build((None, None))
        # Blocks in order: embeddings, projection, Transformer blocks, final LayerNorm; the
        # fresh ones are the last `fresh_top_layers` blocks and, when any are, the LayerNorm.
        kept = 2 + self.num_layers - fresh_top_layers
        pairs = list(zip(self.weight_blocks(), copy.weight_blocks()))
        pairs = pairs if fresh_top_layers == 0 else pairs[:kept]
        for source, target in pairs:
            if source is not None:
                target.set_weights(source.get_weights())
        return copy

    def weight_blocks(self) -> list:
        """The sub-layers that hold this encoder's weights, input to output: the embedding
        block, the E->H projection (None when E = H), the Transformer blocks and the final
        LayerNorm (None with post-LN). Two encoders of one config pair up block by block."""
        return [self.embeddings, self.embedding_projection, *self.transformer_layers,
                self.final_layer_norm]

    def compute_output_shape(self, inputs_shape):
        token_shape = inputs_shape["token_ids"] if isinstance(inputs_shape, dict) else inputs_shape
        return tuple(token_shape) + (self.hidden_size,)

    def get_config(self):
        config = super().get_config()
        config.update(
            vocab_size=self.vocab_size,
            embedding_size=self.embedding_size,
            hidden_size=self.hidden_size,
            num_layers=self.num_layers,
            num_heads=self.num_heads,
            intermediate_size=self.intermediate_size,
            max_position_embeddings=self.max_position_embeddings,
            type_vocab_size=self.type_vocab_size,
            dropout=self.dropout,
            attention_dropout=self.attention_dropout,
            layer_norm_epsilon=self.layer_norm_epsilon,
            initializer_range=self.initializer_range,
            position_embedding=self.position_embedding,
            layer_norm_position=self.layer_norm_position,
            attention_bias=self.attention_bias,
            query_key_initializer_range=self.query_key_initializer_range,
            ffn_convolution_kernel=self.ffn_convolution_kernel,
        )
        return config
