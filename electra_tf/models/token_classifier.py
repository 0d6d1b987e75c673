"""`TokenClassifier`: an ELECTRA encoder with a per-token classification head (tagging)."""

from __future__ import annotations

import keras
from keras import ops

from electra_tf.layers.matmul import MatmulDense
from electra_tf.models.task import EncoderTask


@keras.saving.register_keras_serializable(package="electra_tf")
class TokenClassifier(EncoderTask):
    """Encoder -> each token's hidden state -> dropout -> dense(num_tags), the authors' tagging
    head (`finetune/tagging/tagging_tasks.py`): one tag per token, read at each word's first
    piece.

    Args:
        encoder: an `ElectraEncoder` (or its config dict).
        tag_names: the label set (index = tag id), kept in the saved model.
        dropout: dropout rate on the hidden states (0.1 in the paper).

    Call args:
        inputs: dict of `token_ids`, `segment_ids`, `padding_mask`, each int `[batch, seq_len]`.

    Returns:
        float32 logits `[batch, seq_len, num_tags]`.

    Example:
    >>> encoder = ElectraEncoder(vocab_size=100, embedding_size=16, hidden_size=16,
    ...                          num_layers=1, num_heads=1, intermediate_size=32)
    >>> TokenClassifier(encoder, ["O", "B-PER", "I-PER"])({"token_ids": np.array([[2, 5, 3]])}).shape
    TensorShape([1, 3, 3])
    """

    def __init__(self, encoder, tag_names, dropout=0.1, **kwargs):
        super().__init__(encoder, **kwargs)
        if len(tag_names) < 2:
            raise ValueError(f"TokenClassifier needs at least 2 tags, got {tag_names!r}.")
        self.tag_names = [str(name) for name in tag_names]
        self.dropout_rate = dropout
        self.head_dropout = keras.layers.Dropout(dropout, dtype=self.dtype_policy,
                                                 name="head_dropout")
        self.tagging_head = MatmulDense(
            len(self.tag_names), kernel_initializer=keras.initializers.TruncatedNormal(
                stddev=self.encoder.initializer_range),
            dtype=self.dtype_policy, name="tagging_head")

    def build_head(self, hidden_size):
        self.tagging_head.build((None, None, hidden_size))

    def call(self, inputs, training=None):
        hidden = self.encoder(inputs, training=training)  # [batch, seq_len, hidden]
        logits = self.tagging_head(self.head_dropout(hidden, training=training))
        return ops.cast(logits, "float32")  # the loss stays float32 under mixed precision

    def get_config(self):
        config = super().get_config()
        config.update(tag_names=list(self.tag_names), dropout=self.dropout_rate)
        return config
