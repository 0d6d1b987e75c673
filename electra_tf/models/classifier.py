"""`SequenceClassifier`: an ELECTRA encoder with the paper's classification head."""

from __future__ import annotations

import typing

import keras
from keras import ops

from electra_tf.config import ModelConfig
from electra_tf.config.finetuning import Pooling
from electra_tf.layers.encoder import standardize_inputs
from electra_tf.layers.matmul import MatmulDense
from electra_tf.models.task import EncoderTask, new_encoder

POOLINGS = typing.get_args(Pooling)  # ("cls", "mean")


@keras.saving.register_keras_serializable(package="electra_tf")
class SequenceClassifier(EncoderTask):
    """Encoder -> hidden state of [CLS] -> dropout -> dense(num_labels), as in ELECTRA fine-tuning.

    ELECTRA has no pooler: the [CLS] vector goes straight into dropout and the output layer.
    `pooling="mean"` averages the last layer over the real tokens instead. That is not the
    paper's head; it suits encoders whose [CLS] sees mostly its neighbours (an ALiBi bias, as in
    `electra_cpu.yaml`) and little labelled data: on the quickstart's 400 reviews it was worth
    ~10 points of validation accuracy from scratch (benchmarks/results/sample_finetune.md).

    Args:
        encoder: an `ElectraEncoder` (or its config dict): a pretrained discriminator's encoder
            (`SequenceClassifier.from_pretrained`) or a fresh one (`SequenceClassifier.from_scratch`).
        num_labels: number of classes (2 unless given).
        label_names: optional class names (index = label id); kept in the saved model so that
            predictions can be reported by name. Defaults to "0", "1", ...
        dropout: dropout rate on the pooled vector (0.1 in the paper).
        pooling: "cls" (the paper's) or "mean" (over the tokens where `padding_mask` is set).

    Call args:
        inputs: dict of `token_ids`, `segment_ids`, `padding_mask`, each int `[batch, seq_len]`.

    Returns:
        float32 logits `[batch, num_labels]` (use `from_logits=True` losses).

    Example:
    >>> encoder = ElectraEncoder(vocab_size=100, embedding_size=16, hidden_size=16,
    ...                          num_layers=1, num_heads=1, intermediate_size=32)
    >>> SequenceClassifier(encoder, num_labels=2)({"token_ids": np.array([[2, 5, 3]])}).shape
    TensorShape([1, 2])
    """

    min_labels = 2  # outputs the head must have (`SequenceRegressor`: 1)

    def __init__(self, encoder, num_labels=2, label_names=None, dropout=0.1, pooling="cls",
                 **kwargs):
        super().__init__(encoder, **kwargs)
        if num_labels < self.min_labels:
            raise ValueError(f"num_labels must be >= {self.min_labels}, got {num_labels}.")
        if pooling not in POOLINGS:
            raise ValueError(f"pooling must be one of {POOLINGS}, got {pooling!r}.")
        label_names = [str(n) for n in label_names] if label_names else [
            str(i) for i in range(num_labels)]
        if len(label_names) != num_labels:
            raise ValueError(f"{len(label_names)} label_names for num_labels={num_labels}.")
        self.num_labels = num_labels
        self.label_names = label_names
        self.dropout_rate = dropout
        self.pooling = pooling
        self.head_dropout = keras.layers.Dropout(dropout, dtype=self.dtype_policy,
                                                 name="head_dropout")
        self.classifier_head = MatmulDense(
            num_labels, kernel_initializer=keras.initializers.TruncatedNormal(
                stddev=self.encoder.initializer_range),
            dtype=self.dtype_policy, name="classifier_head")

    def build_head(self, hidden_size):
        self.classifier_head.build((None, hidden_size))

    def call(self, inputs, training=None):
        hidden = self.encoder(inputs, training=training)  # [batch, seq_len, hidden]
        if self.pooling == "cls":
            pooled = hidden[:, 0]  # [batch, hidden]
        else:
            # Summed in float32: a bfloat16 sum over hundreds of tokens would lose the mean.
            mask = ops.cast(standardize_inputs(inputs)[2], "float32")[..., None]  # [b, s, 1]
            pooled = ops.sum(ops.cast(hidden, "float32") * mask, axis=1) / ops.maximum(
                ops.sum(mask, axis=1), 1.0)  # [batch, hidden]
        logits = self.classifier_head(self.head_dropout(pooled, training=training))
        return ops.cast(logits, "float32")  # the loss stays float32 under mixed precision

    def get_config(self):
        config = super().get_config()
        config.update(num_labels=self.num_labels, label_names=list(self.label_names),
                      dropout=self.dropout_rate, pooling=self.pooling)
        return config

    # ------------------------------------------------------------------ constructors

    @classmethod
    def from_scratch(cls, model_config: ModelConfig, num_labels, label_names=None,
                     dropout=None, pooling="cls", encoder_dropout=None, **encoder_overrides):
        """A randomly initialised encoder of `model_config`'s size with a classification head:
        the "Transformer model" baseline. `encoder_dropout` (None: `model_config`'s) sets the
        encoder's hidden and attention dropout; `encoder_overrides` replace other encoder
        arguments, e.g. `position_embedding="sinusoidal"` as in the popular articles."""
        encoder = new_encoder(model_config, encoder_dropout, **encoder_overrides)
        return cls(encoder, num_labels, label_names=label_names,
                   dropout=model_config.dropout if dropout is None else dropout, pooling=pooling)
