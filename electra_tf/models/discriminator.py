"""The ELECTRA discriminator: the encoder that is fine-tuned, with a replaced-token head."""

from __future__ import annotations

import keras

from electra_tf.layers.heads import ReplacedTokenDetectionHead
from electra_tf.models.task import EncoderTask


@keras.saving.register_keras_serializable(package="electra_tf")
class Discriminator(EncoderTask):
    """Encoder + per-token replaced-token-detection (RTD) head.

    After pretraining, `discriminator.encoder` is the network to fine-tune.

    Args:
        encoder: an `ElectraEncoder` (or its config dict).

    Call args:
        inputs: dict of `token_ids`, `segment_ids`, `padding_mask`, each `[batch, seq_len]`.

    Returns:
        float32 logits `[batch, seq_len]`; `sigmoid(logit) > 0.5` means "this token was replaced".

    Example:
    >>> encoder = ElectraEncoder(vocab_size=100, embedding_size=16, hidden_size=16,
    ...                          num_layers=1, num_heads=1, intermediate_size=32)
    >>> Discriminator(encoder)({"token_ids": np.array([[2, 5, 7]])}).shape
    TensorShape([1, 3])
    """

    def __init__(self, encoder, **kwargs):
        super().__init__(encoder, **kwargs)
        self.rtd_head = ReplacedTokenDetectionHead(
            initializer_range=encoder.initializer_range, dtype=self.dtype_policy, name="rtd_head")

    def build(self, inputs_shape):
        if not self.encoder.built:  # a deserialised encoder arrives built
            self.encoder.build(inputs_shape)
        self.rtd_head.build((None, None, self.encoder.hidden_size))
        self.built = True

    def call(self, inputs, training=None):
        return self.rtd_head(self.encoder(inputs, training=training))
