"""`SpanExtractor`: an ELECTRA encoder with the extractive question-answering head."""

from __future__ import annotations

import keras
from keras import ops

from electra_tf.layers.encoder import standardize_inputs
from electra_tf.layers.matmul import MatmulDense
from electra_tf.models.task import EncoderTask

# Added to the logits of padding: never an answer, no weight in the loss's softmax.
_PADDING_LOGIT = -1e4


@keras.saving.register_keras_serializable(package="electra_tf")
class SpanExtractor(EncoderTask):
    """Encoder -> each token's hidden state -> dense(2): the start and end logits of the answer
    span (the authors' SQuAD head, BERT's). Position 0 ([CLS]) stands for "no answer".

    Args:
        encoder: an `ElectraEncoder` (or its config dict).

    Call args:
        inputs: dict of `token_ids`, `segment_ids`, `padding_mask`, each int `[batch, seq_len]`
            (`[CLS] question [SEP] context [SEP]`, the context in segment 1).

    Returns:
        float32 `[batch, seq_len, 2]`: start logits `[..., 0]`, end logits `[..., 1]`; padding
        positions hold -1e4.

    Example:
    >>> encoder = ElectraEncoder(vocab_size=100, embedding_size=16, hidden_size=16,
    ...                          num_layers=1, num_heads=1, intermediate_size=32)
    >>> SpanExtractor(encoder)({"token_ids": np.array([[2, 5, 3, 7, 3]])}).shape
    TensorShape([1, 5, 2])
    """

    def __init__(self, encoder, **kwargs):
        super().__init__(encoder, **kwargs)
        self.span_head = MatmulDense(
            2, kernel_initializer=keras.initializers.TruncatedNormal(
                stddev=self.encoder.initializer_range),
            dtype=self.dtype_policy, name="span_head")

    def build_head(self, hidden_size):
        self.span_head.build((None, None, hidden_size))

    def call(self, inputs, training=None):
        hidden = self.encoder(inputs, training=training)  # [batch, seq_len, hidden]
        logits = ops.cast(self.span_head(hidden), "float32")  # [batch, seq_len, 2]
        padding_mask = standardize_inputs(inputs)[2]  # [batch, seq_len]
        return ops.where(ops.cast(padding_mask, "bool")[..., None], logits, _PADDING_LOGIT)


def span_loss(positions, logits):
    """Mean cross-entropy of the start and of the end position. `positions`: int `[batch, 2]`;
    `logits`: `[batch, seq_len, 2]`. Returns `[batch]`."""
    positions = ops.cast(positions, "int32")
    losses = [keras.losses.sparse_categorical_crossentropy(positions[:, i], logits[..., i],
                                                           from_logits=True) for i in (0, 1)]
    return (losses[0] + losses[1]) / 2.0
