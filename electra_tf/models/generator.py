"""The ELECTRA generator: a small masked language model."""

from __future__ import annotations

import keras

from electra_tf.layers.heads import MaskedLMHead
from electra_tf.models.objective import gather_positions
from electra_tf.models.task import EncoderTask


@keras.saving.register_keras_serializable(package="electra_tf")
class Generator(EncoderTask):
    """Encoder + masked-LM head whose output layer is the encoder's word-embedding matrix.

    Args:
        encoder: an `ElectraEncoder` (or its config dict). In pretraining its embedding block is
            the one shared with the discriminator.

    Call args:
        inputs: dict of `token_ids`, `segment_ids`, `padding_mask`, each `[batch, seq_len]`.
        masked_positions: optional int `[batch, P]`. When given, vocabulary logits are computed
            only there (what the authors do: it saves most of the output layer's compute).

    Returns:
        float32 logits `[batch, P, vocab_size]`, or `[batch, seq_len, vocab_size]` without
        `masked_positions`.

    Example:
    >>> encoder = ElectraEncoder(vocab_size=100, embedding_size=16, hidden_size=16,
    ...                          num_layers=1, num_heads=1, intermediate_size=32)
    >>> generator = Generator(encoder)
    >>> generator({"token_ids": np.array([[2, 5, 7]])}).shape
    TensorShape([1, 3, 100])
    """

    def __init__(self, encoder, **kwargs):
        super().__init__(encoder, **kwargs)
        self.mlm_head = MaskedLMHead(
            encoder.vocab_size, encoder.embedding_size,
            layer_norm_epsilon=encoder.layer_norm_epsilon,
            initializer_range=encoder.initializer_range, dtype=self.dtype_policy, name="mlm_head")

    def build(self, inputs_shape, masked_positions_shape=None):
        if not self.encoder.built:  # a deserialised encoder arrives built
            self.encoder.build(inputs_shape)
        self.mlm_head.build((None, None, self.encoder.hidden_size))
        self.built = True

    def call(self, inputs, masked_positions=None, training=None):
        hidden = self.encoder(inputs, training=training)
        if masked_positions is not None:
            hidden = gather_positions(hidden, masked_positions)
        return self.mlm_head(hidden, self.encoder.embeddings.embedding_matrix)
