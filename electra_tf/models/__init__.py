"""Trainable models: generator, discriminator and the ELECTRA pretrainer that owns both."""

from electra_tf.models.classifier import SequenceClassifier
from electra_tf.models.discriminator import Discriminator
from electra_tf.models.generator import Generator
from electra_tf.models.pretrainer import ElectraPretrainer

__all__ = ["Discriminator", "ElectraPretrainer", "Generator", "SequenceClassifier"]
