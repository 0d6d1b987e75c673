"""Regression: one text, or a pair of texts, -> one number (a review's star rating, GLUE STS-B's
similarity).

The authors' STS-B head (`SequenceRegressor`: the [CLS] vector -> dropout -> dense(1), no
softmax) trained with squared error; the best checkpoint is the one of highest validation
Pearson correlation, computed over the whole validation set (`PearsonCorrelation` below: Keras'
own metric of that name averages per-batch correlations, which is not the correlation).
"""

from __future__ import annotations

import keras
import tensorflow as tf

from electra_tf.data.glue import load_glue
from electra_tf.data.regression import ScoredTexts, load_scored_texts, random_split
from electra_tf.models.regressor import SequenceRegressor
from electra_tf.tasks.base import FinetuningTask
from electra_tf.tasks.classification import SequenceClassification
from electra_tf.tasks.scoring import model_outputs, regression_metrics
from electra_tf.tasks.serving import (
    IDS_SPEC,
    MASK_SPEC,
    SEGMENT_SPEC,
    TEXT_A_SPEC,
    TEXT_B_SPEC,
    TEXT_SPEC,
    ServingModule,
)


class TextRegression(SequenceClassification):
    """Examples are `ScoredTexts`; the model is a `SequenceRegressor`. The texts (or pairs) are
    read, packed and batched as for sequence classification; the targets are numbers."""

    type = "regression"
    monitor = "val_pearson"

    def load_examples(self, split, data=None, run=None) -> ScoredTexts:
        task = self.config
        if task.name == "glue":  # STS-B
            return load_glue(task.glue_task, data or task.data, split)
        return load_scored_texts(task.name, data or task.data, split,
                                 text_column=task.text_column, label_column=task.label_column,
                                 text_b_column=task.text_b_column)

    def _hold_out(self, examples):
        """`(train, validation)`: a seeded random split (scores have no classes to stratify)."""
        return random_split(examples, self.config.validation_fraction, self.config.split_seed)

    _subset = FinetuningTask._subset  # at random: scores have no classes to stratify

    def _describe(self, train) -> str:
        return f" (scores {train.scores.min():.3g} to {train.scores.max():.3g})"

    def build_model(self, encoder, train_examples, training) -> SequenceRegressor:
        # The output starts at the training scores' mean (see `SequenceRegressor`).
        return SequenceRegressor(encoder, dropout=training.dropout, pooling=training.pooling,
                                 initial_score=float(train_examples.scores.mean()))

    def loss(self):
        return keras.losses.MeanSquaredError()

    def metrics(self):
        return [PearsonCorrelation(name="pearson")]

    def score(self, model, dataset, examples) -> dict:
        targets, predictions = model_outputs(model, dataset)
        return regression_metrics(targets, predictions)

    def run_record(self, train_examples) -> dict:
        return {"pairs": self.pairs, "score_range": [float(train_examples.scores.min()),
                                                     float(train_examples.scores.max())]}

    def serving_module(self, model, preprocessor, vocab_path) -> ServingModule:
        serving = PairRegressorServing if self.pairs else RegressorServing
        return serving(model, preprocessor, vocab_path)

    def export_summary(self, model) -> dict:
        return {"kind": "regressor", "inputs": ["text_a", "text_b"] if self.pairs else ["text"],
                "signatures": ["serving_default", "score_ids"]}


class PearsonCorrelation(keras.metrics.Metric):
    """Pearson's correlation between targets and predictions over everything seen since the
    last reset (running sums, so the batches' sizes and order do not matter).

    `update_state(y_true, y_pred)`: float `[batch]` each (or `[batch, 1]`)."""

    def __init__(self, name="pearson", **kwargs):
        super().__init__(name=name, **kwargs)
        # n, sum x, sum y, sum x^2, sum y^2, sum xy; float64: the sums of squares of thousands
        # of scores lose the correlation's digits in float32.
        self.sums = self.add_variable(shape=(6,), initializer="zeros", dtype="float64",
                                      name="sums")

    def update_state(self, y_true, y_pred, sample_weight=None):
        x = tf.reshape(tf.cast(y_true, tf.float64), [-1])
        y = tf.reshape(tf.cast(y_pred, tf.float64), [-1])
        self.sums.assign_add(tf.stack([tf.cast(tf.size(x), tf.float64), tf.reduce_sum(x),
                                       tf.reduce_sum(y), tf.reduce_sum(x * x),
                                       tf.reduce_sum(y * y), tf.reduce_sum(x * y)]))

    def result(self):
        n, sx, sy, sxx, syy, sxy = tf.unstack(self.sums)
        covariance = n * sxy - sx * sy
        variance = (n * sxx - sx * sx) * (n * syy - sy * sy)
        return tf.cast(tf.math.divide_no_nan(covariance, tf.sqrt(tf.maximum(variance, 0.0))),
                       tf.float32)

    def reset_state(self):
        self.sums.assign(tf.zeros([6], tf.float64))


class RegressorServing(ServingModule):
    """Signatures of an exported regressor:
    `serving_default` (`score_text`): `text` string `[batch]` -> `score` float32 `[batch]`.
    `score_ids`: `token_ids`, `padding_mask` int32 `[batch, seq_len]` -> the same.
    """

    def _outputs(self, inputs):
        return {"score": tf.cast(self.model(inputs, training=False), tf.float32)}

    @tf.function(input_signature=[TEXT_SPEC])
    def score_text(self, text):
        return self._outputs(self.text_inputs(text))

    @tf.function(input_signature=[IDS_SPEC, MASK_SPEC])
    def score_ids(self, token_ids, padding_mask):
        return self._outputs(self.ids_inputs(token_ids, padding_mask))

    def signatures(self):
        return {"serving_default": self.score_text, "score_ids": self.score_ids}


class PairRegressorServing(RegressorServing):
    """Signatures of an exported pair regressor (STS-B):
    `serving_default` (`score_pair`): `text_a`, `text_b` string `[batch]` -> `score` float32
        `[batch]`.
    `score_ids`: `token_ids`, `segment_ids`, `padding_mask` int32 `[batch, seq_len]` -> the same.
    """

    @tf.function(input_signature=[TEXT_A_SPEC, TEXT_B_SPEC])
    def score_pair(self, text_a, text_b):
        return self._outputs(self.text_inputs(text_a, text_b))

    @tf.function(input_signature=[IDS_SPEC, SEGMENT_SPEC, MASK_SPEC])
    def score_pair_ids(self, token_ids, segment_ids, padding_mask):
        return self._outputs(self.ids_inputs(token_ids, padding_mask, segment_ids))

    def signatures(self):
        return {"serving_default": self.score_pair, "score_ids": self.score_pair_ids}
