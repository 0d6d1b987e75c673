"""Shared plumbing of the models that put a head on an `ElectraEncoder`."""

from __future__ import annotations

import keras

from electra_tf.distribute.replicas import DistributedFitFixes
from electra_tf.layers.encoder import ElectraEncoder


class EncoderTask(DistributedFitFixes, keras.Model):
    """A model that owns an `ElectraEncoder` (serialised inside its config) plus its own head.

    Subclasses create their head in `__init__` after calling `super().__init__(encoder)` and
    build it in `build_head` (so that every variable exists before the optimizer and a checkpoint
    are built); they inherit `from_pretrained` and `from_preset`, which put a new head on a
    pretrained encoder.
    """

    def __init__(self, encoder, **kwargs):
        super().__init__(**kwargs)
        if isinstance(encoder, dict):
            encoder = keras.saving.deserialize_keras_object(encoder)
        self.encoder = encoder

    def build(self, inputs_shape):
        if not self.encoder.built:  # a deserialised or pretrained encoder arrives built
            self.encoder.build(inputs_shape)
        self.build_head(self.encoder.hidden_size)
        self.built = True

    def build_head(self, hidden_size: int) -> None:
        """Builds the head's layers for encoder outputs `[batch, seq_len, hidden_size]`."""
        raise NotImplementedError(f"{type(self).__name__} must build its head in build_head.")

    def get_config(self):
        config = super().get_config()
        config.update(encoder=keras.saving.serialize_keras_object(self.encoder))
        return config

    @classmethod
    def from_config(cls, config):
        config = dict(config)
        config["encoder"] = keras.saving.deserialize_keras_object(config["encoder"])
        return cls(**config)

    # ------------------------------------------------------------------ constructors

    @classmethod
    def from_pretrained(cls, pretrained, *args, encoder_dropout=None, reinitialise_top_layers=0,
                        **kwargs):
        """This model with a new head on the encoder of `pretrained`.

        Args:
            pretrained: anything `electra_tf.pretrained.resolve` reads: an `electra-tf
                pretrain` (or `finetune`) output directory, an installed preset's name, a
                HuggingFace folder or `hf:ORG/NAME`, a TF1 checkpoint, a `.keras` file, a
                model object, or a `PretrainedSource`. (An MLM-objective run's full-size
                generator is its encoder.)
            *args, **kwargs: the head's arguments (`SequenceClassifier`: `num_labels`,
                `label_names`, `dropout`, `pooling`).
            encoder_dropout: the encoder's hidden and attention dropout while fine-tuning;
                None keeps the rates it was pretrained with.
            reinitialise_top_layers: how many of the top Transformer blocks start from a fresh
                initialisation instead of their pretrained weights.
        """
        # Loading is the resolver's job (KerasHub-style): a model class reads no files itself.
        from electra_tf.pretrained.resolve import resolve

        encoder = fine_tuning_encoder(resolve(pretrained).encoder(), encoder_dropout,
                                      reinitialise_top_layers)
        return cls(encoder, *args, **kwargs)

    @classmethod
    def from_preset(cls, preset: str, *args, **kwargs):
        """`from_pretrained` for an installed preset (`electra-tf presets` lists them, e.g.
        `"electra_cpu_imdb"`) or a preset folder; its vocabulary is
        `electra_tf.pretrained.resolve_preset(preset).vocabulary()`. Anything else is refused."""
        from electra_tf.pretrained.resolve import resolve_preset

        return cls.from_pretrained(resolve_preset(preset), *args, **kwargs)


def fine_tuning_encoder(encoder, encoder_dropout=None, reinitialise_top_layers=0):
    """A pretrained `encoder` as a fine-tuning recipe wants it: its top
    `reinitialise_top_layers` blocks started afresh, its hidden and attention dropout set to
    `encoder_dropout` (None keeps the rates it was pretrained with)."""
    if reinitialise_top_layers:
        encoder = encoder.with_reinitialised_top_layers(reinitialise_top_layers)
    if encoder_dropout is not None:
        encoder = encoder.with_dropout(encoder_dropout, encoder_dropout)
    return encoder


def new_encoder(model_config, encoder_dropout=None, **encoder_overrides) -> ElectraEncoder:
    """A randomly initialised encoder of `model_config`'s (a `ModelConfig`) architecture:
    `encoder_dropout` (None: the config's) sets its hidden and attention dropout;
    `encoder_overrides` replace other encoder arguments (`position_embedding="sinusoidal"`)."""
    kwargs = dict(model_config.encoder_kwargs(), **encoder_overrides)
    if encoder_dropout is not None:
        kwargs.update(dropout=encoder_dropout, attention_dropout=encoder_dropout)
    return ElectraEncoder(**kwargs, name="encoder")
