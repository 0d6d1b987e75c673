"""Trainable models: generator, discriminator and the ELECTRA pretrainer that owns both; the
fine-tuning heads (`SequenceClassifier`, `SequenceRegressor`, `TokenClassifier`,
`SpanExtractor`)."""

from electra_tf.models.classifier import SequenceClassifier
from electra_tf.models.discriminator import Discriminator
from electra_tf.models.generator import Generator
from electra_tf.models.pretrainer import ElectraPretrainer
from electra_tf.models.regressor import SequenceRegressor
from electra_tf.models.span_extractor import SpanExtractor
from electra_tf.models.token_classifier import TokenClassifier

__all__ = ["Discriminator", "ElectraPretrainer", "Generator", "SequenceClassifier",
           "SequenceRegressor", "SpanExtractor", "TokenClassifier"]
