"""`SequenceRegressor`: an ELECTRA encoder with the regression head of the authors' STS-B
fine-tuning (one real number per text or text pair)."""

from __future__ import annotations

import keras
from keras import ops

from electra_tf.models.classifier import SequenceClassifier


@keras.saving.register_keras_serializable(package="electra_tf")
class SequenceRegressor(SequenceClassifier):
    """Encoder -> [CLS] (or mean) vector -> dropout -> dense(1): the classifier's head with one
    output and no softmax, trained with squared error (the authors' STS-B head; transformers'
    `problem_type="regression"`).

    Args:
        encoder: an `ElectraEncoder` (or its config dict).
        dropout: dropout rate on the pooled vector (0.1 in the paper).
        pooling: "cls" (the paper's) or "mean" (see `SequenceClassifier`).
        score_name: what the output is called in exports and reports ("score").
        initial_score: the output's bias at initialisation. Fine-tuning sets it to the mean of
            the training scores: Adam moves a weight by about the learning rate per step, so a
            bias that starts at 0 would take thousands of steps to reach, say, 5.5 stars, and
            the encoder would be bent to make up the difference meanwhile (measured on IMDB
            ratings: validation Pearson 0.11 after 188 steps from 0, 0.35 from the mean;
            docs/finetuning.md).

    Call args:
        inputs: dict of `token_ids`, `segment_ids`, `padding_mask`, each int `[batch, seq_len]`.

    Returns:
        float32 `[batch]`: the predicted score of each sequence.

    Example:
    >>> encoder = ElectraEncoder(vocab_size=100, embedding_size=16, hidden_size=16,
    ...                          num_layers=1, num_heads=1, intermediate_size=32)
    >>> SequenceRegressor(encoder)({"token_ids": np.array([[2, 5, 3]])}).shape
    TensorShape([1])
    """

    min_labels = 1

    def __init__(self, encoder, dropout=0.1, pooling="cls", score_name="score",
                 initial_score=0.0, **kwargs):
        kwargs.pop("num_labels", None)
        kwargs.pop("label_names", None)
        super().__init__(encoder, num_labels=1, label_names=[score_name], dropout=dropout,
                         pooling=pooling, **kwargs)
        self.score_name = score_name
        self.initial_score = float(initial_score)
        # The head is built later (`build_head`), so its initializer can still change.
        self.classifier_head.bias_initializer = keras.initializers.Constant(self.initial_score)

    def call(self, inputs, training=None):
        return ops.squeeze(super().call(inputs, training=training), axis=-1)  # [batch]

    def get_config(self):
        config = super().get_config()
        config.update(score_name=self.score_name, initial_score=self.initial_score)
        return config

    @classmethod
    def from_scratch(cls, model_config, dropout=None, pooling="cls", encoder_dropout=None,
                     initial_score=0.0, **encoder_overrides):
        """A randomly initialised encoder of `model_config`'s size with the regression head."""
        from electra_tf.models.task import new_encoder

        encoder = new_encoder(model_config, encoder_dropout, **encoder_overrides)
        return cls(encoder, dropout=model_config.dropout if dropout is None else dropout,
                   pooling=pooling, initial_score=initial_score)
