"""Sequence classification: one text, or a pair of texts, -> one of N labels (IMDB sentiment,
topic, intent; entailment, paraphrase, the GLUE classification tasks).

The paper's head (`SequenceClassifier`: the [CLS] vector -> dropout -> dense) with softmax
cross-entropy; the best checkpoint is the one of highest validation accuracy.
"""

from __future__ import annotations

import keras
import tensorflow as tf

from electra_tf.data.classification import LabelledTexts, load_labelled_texts, stratified_split
from electra_tf.data.glue import glue_task, load_glue
from electra_tf.data.preprocessor import ClassificationPreprocessor, classification_dataset
from electra_tf.models.classifier import SequenceClassifier
from electra_tf.tasks.base import FinetuningTask
from electra_tf.tasks.scoring import predict_metrics
from electra_tf.tasks.serving import (
    IDS_SPEC,
    MASK_SPEC,
    SEGMENT_SPEC,
    TEXT_A_SPEC,
    TEXT_B_SPEC,
    TEXT_SPEC,
    ServingModule,
)


class SequenceClassification(FinetuningTask):
    """Examples are `LabelledTexts`; the model is a `SequenceClassifier`."""

    type = "sequence_classification"
    monitor = "val_accuracy"

    def load_examples(self, split, data=None, run=None) -> LabelledTexts:
        task = self.config
        if task.name == "glue":  # GLUE fixes each task's labels and their order
            return load_glue(task.glue_task, data or task.data, split)
        return load_labelled_texts(task.name, data or task.data, split,
                                   text_column=task.text_column, label_column=task.label_column,
                                   text_b_column=task.text_b_column,
                                   label_names=run["label_names"] if run else None)

    @property
    def pairs(self) -> bool:
        """Whether each example is a pair of texts (a `text_b_column`, or a GLUE pair task); its
        export then takes two strings."""
        task = self.config
        if task.name == "glue":
            return glue_task(task.glue_task).text_b is not None
        return task.text_b_column is not None

    def _validation_split(self, train):
        """`task.validation_split` of the data, labelled as `train` is (a class it lacks is
        an error, as for a finished model)."""
        return self.load_examples(self.config.validation_split, run=self.run_record(train))

    def _hold_out(self, examples):
        """`(train, validation)`: a stratified split, the same for every fine-tuning seed."""
        return stratified_split(examples, self.config.validation_fraction,
                                self.config.split_seed)

    def _subset(self, train, size):
        """`size` of the training examples (`task.max_train_examples`), stratified."""
        return stratified_split(train, 1 - size / len(train), self.config.split_seed)[0]

    def _describe(self, train) -> str:
        return f" {train.class_counts()}"

    def preprocessor(self, tokenizer, preprocessing) -> ClassificationPreprocessor:
        return ClassificationPreprocessor(tokenizer, preprocessing.max_seq_length,
                                          preprocessing.truncation, preprocessing.head_fraction)

    def dataset(self, examples, preprocessor, batch_size, *, training, seed=0):
        if training:  # buckets of similar length: little padding compute on CPU
            return classification_dataset(examples, preprocessor, batch_size, shuffle=True,
                                          seed=seed, repeat=True, bucket_by_length=True)
        return classification_dataset(examples, preprocessor, batch_size, sort_by_length=True)

    def build_model(self, encoder, train_examples, training) -> SequenceClassifier:
        return SequenceClassifier(encoder, len(train_examples.label_names),
                                  label_names=train_examples.label_names,
                                  dropout=training.dropout, pooling=training.pooling)

    def loss(self):
        return keras.losses.SparseCategoricalCrossentropy(from_logits=True)

    def metrics(self):
        return [keras.metrics.SparseCategoricalAccuracy(name="accuracy")]

    def score(self, model, dataset, examples) -> dict:
        return predict_metrics(model, dataset, examples.label_names)

    def run_record(self, train_examples) -> dict:
        return {"label_names": list(train_examples.label_names), "pairs": self.pairs}

    def serving_module(self, model, preprocessor, vocab_path) -> ServingModule:
        serving = PairClassifierServing if self.pairs else ClassifierServing
        return serving(model, preprocessor, vocab_path)

    def export_summary(self, model) -> dict:
        return {"kind": "classifier", "inputs": ["text_a", "text_b"] if self.pairs else ["text"],
                "signatures": ["serving_default", "classify_ids"],
                "label_names": list(model.label_names)}


class ClassifierServing(ServingModule):
    """Signatures of an exported classifier:
    `serving_default` (`classify_text`): `text` string `[batch]` -> `logits` and
        `probabilities` float32 `[batch, L]`, `label_id` int32 `[batch]`, `label` string
        `[batch]`.
    `classify_ids`: `token_ids`, `padding_mask` int32 `[batch, seq_len]` (already
        `[CLS] ... [SEP]`, 0 = padding) -> the same dict.
    """

    def __init__(self, model, preprocessor, vocab_path):
        super().__init__(model, preprocessor, vocab_path)
        # A variable, not a constant, so that it is saved: `loaded.label_names.numpy()`.
        self.label_names = tf.Variable(list(model.label_names), trainable=False,
                                       name="label_names")

    def _outputs(self, inputs):
        logits = tf.cast(self.model(inputs, training=False), tf.float32)  # [batch, L]
        label_id = tf.argmax(logits, axis=-1, output_type=tf.int32)
        return {"logits": logits, "probabilities": tf.nn.softmax(logits, axis=-1),
                "label_id": label_id, "label": tf.gather(self.label_names, label_id)}

    @tf.function(input_signature=[TEXT_SPEC])
    def classify_text(self, text):
        return self._outputs(self.text_inputs(text))

    @tf.function(input_signature=[IDS_SPEC, MASK_SPEC])
    def classify_ids(self, token_ids, padding_mask):
        return self._outputs(self.ids_inputs(token_ids, padding_mask))

    def signatures(self):
        return {"serving_default": self.classify_text, "classify_ids": self.classify_ids}


class PairClassifierServing(ClassifierServing):
    """Signatures of an exported pair classifier (entailment, paraphrase):
    `serving_default` (`classify_pair`): `text_a`, `text_b` string `[batch]` -> `logits` and
        `probabilities` float32 `[batch, L]`, `label_id` int32 `[batch]`, `label` string
        `[batch]`; packed `[CLS] a [SEP] b [SEP]`, b in segment 1.
    `classify_ids`: `token_ids`, `segment_ids`, `padding_mask` int32 `[batch, seq_len]` -> the
        same dict.
    """

    @tf.function(input_signature=[TEXT_A_SPEC, TEXT_B_SPEC])
    def classify_pair(self, text_a, text_b):
        return self._outputs(self.text_inputs(text_a, text_b))

    @tf.function(input_signature=[IDS_SPEC, SEGMENT_SPEC, MASK_SPEC])
    def classify_pair_ids(self, token_ids, segment_ids, padding_mask):
        return self._outputs(self.ids_inputs(token_ids, padding_mask, segment_ids))

    def signatures(self):
        return {"serving_default": self.classify_pair, "classify_ids": self.classify_pair_ids}
