"""Extractive question answering (SQuAD 1.1 / 2.0): a question and a context -> the span of the
context that answers it, or no answer.

Examples are `QuestionsAndContexts` (`electra_tf.data.squad`); features are windows over long
contexts (`electra_tf.data.qa_features`); the model is a `SpanExtractor` trained on the mean
cross-entropy of the start and end positions; scores are SQuAD's official exact match and F1
(`qa_metrics`), with the HasAns / NoAns breakdown. A question is answered "" (no answer) where
the no-answer score (the [CLS] score minus the best span's) exceeds `task.no_answer_threshold`
(BERT's rule, default 0); `metrics.json` also reports the best threshold on that split
(`best_f1_threshold`), to set it from validation. "Epochs" count questions (a long context
gives more windows than one).
"""

from __future__ import annotations

import keras
import numpy as np
from keras import ops

from electra_tf.data.qa_features import QAPreprocessor, best_answers
from electra_tf.data.squad import QuestionsAndContexts, load_squad
from electra_tf.models.span_extractor import SpanExtractor, span_loss
from electra_tf.tasks.base import WindowedTask
from electra_tf.tasks.qa_metrics import squad_metrics
from electra_tf.tasks.qa_serving import ReaderServing


class QuestionAnswering(WindowedTask):
    """Examples are `QuestionsAndContexts`; the model is a `SpanExtractor`."""

    type = "question_answering"
    monitor = "val_span_accuracy"  # windows whose start and end are both right

    def load_examples(self, split, data=None, run=None) -> QuestionsAndContexts:
        return load_squad(data or self.config.data, split)

    def _hold_out(self, data):
        """Held out by context: every question about a paragraph lands on the same side."""
        contexts = sorted(set(data.contexts))
        order = np.random.default_rng(self.config.split_seed).permutation(len(contexts))
        held = {contexts[i] for i in order[:max(1, round(len(contexts)
                                                         * self.config.validation_fraction))]}
        inside = [i for i, context in enumerate(data.contexts) if context in held]
        outside = [i for i, context in enumerate(data.contexts) if context not in held]
        return data.subset(outside), data.subset(inside)

    def _describe(self, train) -> str:
        return f" ({sum(train.answerable)} answerable)"

    def preprocessor(self, tokenizer, preprocessing) -> QAPreprocessor:
        return QAPreprocessor(tokenizer, preprocessing.max_seq_length,
                              preprocessing.max_question_pieces, preprocessing.doc_stride)

    def dataset(self, examples, preprocessor, batch_size, *, training, seed=0):
        windows = preprocessor.windows(examples)
        self._remember(examples, preprocessor, windows)
        return preprocessor.dataset(windows, batch_size, shuffle=training, seed=seed,
                                    repeat=training)

    def build_model(self, encoder, train_examples, training) -> SpanExtractor:
        return SpanExtractor(encoder)

    def loss(self):
        return span_loss

    def metrics(self):
        return [SpanAccuracy(name="span_accuracy")]

    def score(self, model, dataset, examples) -> dict:
        _, windows = self._windows_of(examples)
        logits = []
        for inputs, _ in dataset:
            lengths = np.asarray(inputs["padding_mask"]).sum(axis=1)
            logits += [row[:n] for row, n in zip(np.asarray(model(inputs, training=False)),
                                                 lengths)]
        answers, no_answer = best_answers(examples, windows, logits)
        threshold = self.config.no_answer_threshold
        predictions = {qid: ("" if no_answer[qid] > threshold else text)
                       for qid, text in answers.items()}
        metrics = squad_metrics(examples.references(), predictions, no_answer)
        metrics.update(examples=len(examples), windows=len(windows.token_ids),
                       no_answer_threshold=threshold)
        return metrics

    def run_record(self, train_examples) -> dict:
        return {"answerable_fraction": float(np.mean(train_examples.answerable))}

    def serving_module(self, model, preprocessor, vocab_path) -> ReaderServing:
        return ReaderServing(model, preprocessor, vocab_path, self.config.no_answer_threshold)

    def export_summary(self, model) -> dict:
        return {"kind": "reader", "inputs": ["question", "context"],
                "signatures": ["serving_default"],
                "no_answer_threshold": self.config.no_answer_threshold}


class SpanAccuracy(keras.metrics.Metric):
    """The fraction of windows whose predicted start and end are both the labelled ones."""

    def __init__(self, name="span_accuracy", **kwargs):
        super().__init__(name=name, **kwargs)
        self.correct = self.add_variable((), initializer="zeros", name="correct")
        self.total = self.add_variable((), initializer="zeros", name="total")

    def update_state(self, y_true, y_pred, sample_weight=None):
        y_true = ops.cast(y_true, "int32")  # [batch, 2]
        predicted = ops.cast(ops.argmax(y_pred, axis=1), "int32")  # [batch, 2]
        both = ops.all(ops.equal(predicted, y_true), axis=-1)
        self.correct.assign_add(ops.sum(ops.cast(both, "float32")))
        self.total.assign_add(ops.cast(ops.shape(y_true)[0], "float32"))

    def result(self):
        return self.correct / ops.maximum(self.total, 1.0)

    def reset_state(self):
        self.correct.assign(0.0)
        self.total.assign(0.0)
