"""Token classification: a tag for every word (named entities, IOB2).

The authors' tagging head (`TokenClassifier`) with softmax cross-entropy on each word's first
piece (the other pieces, [CLS] and [SEP] are ignored: label -1); training logs the token
accuracy on those pieces, and scoring reports the CoNLL evaluation's entity-level precision,
recall and F1 (`tagging_metrics`).
"""

from __future__ import annotations

import keras
import numpy as np
from keras import ops

from electra_tf.data.tagging import TaggedSentences, load_tagged_sentences
from electra_tf.data.tagging_features import IGNORED, TaggingPreprocessor
from electra_tf.models.token_classifier import TokenClassifier
from electra_tf.tasks.base import WindowedTask
from electra_tf.tasks.tagging_metrics import tagging_metrics
from electra_tf.tasks.tagging_serving import TaggerServing


class TokenClassification(WindowedTask):
    """Examples are `TaggedSentences`; the model is a `TokenClassifier`."""

    type = "token_classification"
    monitor = "val_accuracy"  # token accuracy at first pieces

    def __init__(self, config):
        super().__init__(config)
        self.tag_names: list[str] | None = None

    def load_examples(self, split, data=None, run=None) -> TaggedSentences:
        task = self.config
        if run is not None:
            self.tag_names = list(run["tag_names"])
        return load_tagged_sentences(task.name, data or task.data, split,
                                     tag_column=task.tag_column, scheme=task.tag_scheme)

    def train_and_validation(self, examples=None):
        train, validation = super().train_and_validation(examples)
        self.tag_names = train.tag_names()
        return train, validation

    def _hold_out(self, sentences):
        order = np.random.default_rng(self.config.split_seed).permutation(len(sentences))
        held = max(1, round(len(sentences) * self.config.validation_fraction))
        return sentences.subset(sorted(order[held:])), sentences.subset(sorted(order[:held]))

    def _describe(self, train) -> str:
        return f", entities {train.entity_counts()},"

    def preprocessor(self, tokenizer, preprocessing) -> TaggingPreprocessor:
        return TaggingPreprocessor(tokenizer, preprocessing.max_seq_length)

    def dataset(self, examples, preprocessor, batch_size, *, training, seed=0):
        windows = preprocessor.windows(examples, self.tag_names, strict=training)
        self._remember(examples, preprocessor, windows)
        return preprocessor.dataset(windows, batch_size, shuffle=training, seed=seed,
                                    repeat=training)

    def build_model(self, encoder, train_examples, training) -> TokenClassifier:
        return TokenClassifier(encoder, self.tag_names, dropout=training.dropout)

    def loss(self):
        return keras.losses.SparseCategoricalCrossentropy(from_logits=True,
                                                          ignore_class=IGNORED)

    def metrics(self):
        return [MaskedTokenAccuracy(name="accuracy")]

    def score(self, model, dataset, examples) -> dict:
        preprocessor, windows = self._windows_of(examples)
        predictions = []
        for inputs, _ in dataset:
            tags = np.argmax(model(inputs, training=False).numpy(), axis=-1)  # [batch, len]
            predictions.extend(tags)
        words = preprocessor.word_predictions(examples, windows, predictions, model.tag_names)
        return tagging_metrics(examples.tags, words)

    def run_record(self, train_examples) -> dict:
        return {"tag_names": list(self.tag_names)}

    def serving_module(self, model, preprocessor, vocab_path) -> TaggerServing:
        return TaggerServing(model, preprocessor, vocab_path)

    def export_summary(self, model) -> dict:
        return {"kind": "tagger", "inputs": ["text"], "signatures": ["serving_default"],
                "tag_names": list(model.tag_names)}


class MaskedTokenAccuracy(keras.metrics.Metric):
    """Accuracy over the positions whose label is not `IGNORED` (each word's first piece)."""

    def __init__(self, name="accuracy", **kwargs):
        super().__init__(name=name, **kwargs)
        self.correct = self.add_variable((), initializer="zeros", name="correct")
        self.total = self.add_variable((), initializer="zeros", name="total")

    def update_state(self, y_true, y_pred, sample_weight=None):
        y_true = ops.cast(y_true, "int32")  # [batch, len]
        counted = ops.cast(ops.not_equal(y_true, IGNORED), "float32")
        hits = ops.cast(ops.equal(ops.cast(ops.argmax(y_pred, axis=-1), "int32"), y_true),
                        "float32")
        self.correct.assign_add(ops.sum(hits * counted))
        self.total.assign_add(ops.sum(counted))

    def result(self):
        return self.correct / ops.maximum(self.total, 1.0)

    def reset_state(self):
        self.correct.assign(0.0)
        self.total.assign(0.0)
