"""Shared plumbing of the models that put a head on an `ElectraEncoder`."""

from __future__ import annotations

import keras

from electra_tf.distribute.replicas import DistributedFitFixes


class EncoderTask(DistributedFitFixes, keras.Model):
    """A model that owns an `ElectraEncoder` (serialised inside its config) plus its own head.

    Subclasses create their head in `__init__` after calling `super().__init__(encoder)`.
    """

    def __init__(self, encoder, **kwargs):
        super().__init__(**kwargs)
        if isinstance(encoder, dict):
            encoder = keras.saving.deserialize_keras_object(encoder)
        self.encoder = encoder

    def get_config(self):
        config = super().get_config()
        config.update(encoder=keras.saving.serialize_keras_object(self.encoder))
        return config

    @classmethod
    def from_config(cls, config):
        config = dict(config)
        config["encoder"] = keras.saving.deserialize_keras_object(config["encoder"])
        return cls(**config)
