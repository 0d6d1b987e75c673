"""Setting up a fine-tuning run before training: the checked arguments, the vocabulary and the
task's model on a pretrained or new encoder."""

from __future__ import annotations

import dataclasses
import logging
import os

import keras

from electra_tf.config import ModelConfig
from electra_tf.config.finetuning import FinetuneConfig
from electra_tf.data.vocab import load_vocabulary, wait_for_vocabulary
from electra_tf.data.vocab_learning import learn_vocabulary
from electra_tf.distribute import Runtime, with_precision
from electra_tf.errors import ConfigError
from electra_tf.files import read_json
from electra_tf.models.task import fine_tuning_encoder, new_encoder
from electra_tf.pretrained.resolve import PretrainedSource, resolve
from electra_tf.tasks import FinetuningTask

logger = logging.getLogger(__name__)


def checked_arguments(config: FinetuneConfig, pretrained, from_scratch, model_config,
                      runtime: Runtime):
    """`(source, config)`: `pretrained` resolved (`electra_tf.pretrained.resolve`: a hub id to
    its local snapshot, a preset's name to its folder; None without one), the config with the
    from-scratch overrides applied, both checked."""
    if pretrained is None and not (from_scratch and model_config is not None):
        raise ConfigError("Give --pretrained DIR (a pretraining output), or --from-scratch with "
                          "--model-config (an architecture such as electra_tiny).")
    source = None if pretrained is None else resolve(pretrained)
    if from_scratch:
        config = config.for_scratch_training()
    config.validate()
    if config.training.batch_size % runtime.replicas:
        raise ConfigError(f"training.batch_size={config.training.batch_size} does not split "
                          f"evenly over {runtime.replicas} replicas.")
    return source, config


def run_vocabulary(paths, resuming, source, vocab, preprocessing, train, model_config,
                   chief=True):
    """`(vocabulary, lower_case, model_config)`: the resumed run's own vocabulary, else the one
    `_given_vocabulary` finds; a from-scratch `model_config` sized to it. A non-`chief` worker
    reads a vocabulary learned from the training texts from the chief's `paths.vocab` (see
    `wait_for_vocabulary`)."""
    if resuming and os.path.isfile(paths.vocab):  # not learned again: the run's own
        vocabulary, lower_case = load_vocabulary(paths.vocab), read_json(paths.run)["lower_case"]
    elif not chief and source is None and vocab is None:
        vocabulary, lower_case = wait_for_vocabulary(paths.vocab), preprocessing.lower_case
    else:
        vocabulary, lower_case = _given_vocabulary(source, vocab, preprocessing, train,
                                                   model_config)
    if source is None and model_config.vocab_size != len(vocabulary):
        # No weights to match: the from-scratch encoder takes the vocabulary's size, as
        # `pretrain` does (a learned vocabulary can be a few pieces short of the target).
        logger.info("model.vocab_size = %d, the size of the %s vocabulary.", len(vocabulary),
                    "given" if vocab is not None else "learned")
        model_config = dataclasses.replace(model_config, vocab_size=len(vocabulary))
    return vocabulary, lower_case, model_config


def build_classifier(source, from_scratch, model_config: ModelConfig | None,
                     config: FinetuneConfig, task: FinetuningTask, train, vocabulary,
                     runtime: Runtime):
    """The task's model on a pretrained or new encoder, computing in the runtime's precision,
    its variables placed by the strategy; checked against the vocabulary and the sequence
    length."""
    keras.utils.set_random_seed(config.training.seed)
    with runtime.scope():
        encoder = _encoder(source, from_scratch, model_config, config)
        model = with_precision(task.build_model(encoder, train, config.training),
                               runtime.precision)
    prep = config.preprocessing
    if encoder.vocab_size != len(vocabulary):
        raise ConfigError(f"The encoder has vocab_size={encoder.vocab_size} but the vocabulary "
                          f"has {len(vocabulary)} tokens; use the vocabulary it was pretrained "
                          "with (its run's vocab.txt).")
    if prep.max_seq_length > encoder.max_position_embeddings:
        raise ConfigError(f"preprocessing.max_seq_length={prep.max_seq_length} exceeds the "
                          f"encoder's max_position_embeddings={encoder.max_position_embeddings}.")
    return model


def _given_vocabulary(source: PretrainedSource | None, vocab, preprocessing, train,
                      model_config):
    """`(vocabulary, lower_case)`: the pretrained model's own, the one given, or one learned
    from the training texts."""
    if source is not None and source.vocab_path is not None:
        return source.vocabulary(), source.lower_case
    lower_case = preprocessing.lower_case
    if vocab is not None:
        return load_vocabulary(vocab), lower_case
    if source is not None:
        source.vocabulary()  # a model file without its vocabulary: says to give --vocab
    logger.info("Learning a %d-piece vocabulary from the training texts ...",
                model_config.vocab_size)
    return learn_vocabulary(train.texts, model_config.vocab_size, lower_case=lower_case,
                            learner=preprocessing.vocab_learner), lower_case


def _encoder(source: PretrainedSource | None, from_scratch, model_config, config):
    """The pretrained encoder (with the recipe's dropout and re-initialised top layers), or a
    new one of `model_config`'s (else the source's) architecture."""
    training = config.training
    if not from_scratch:
        return fine_tuning_encoder(source.encoder(), training.encoder_dropout,
                                   training.reinitialise_top_layers)
    if model_config is None:
        model_config = source.model_config()
        if model_config is None:
            raise ConfigError(f"{source.spec} has no electra_tf config.yaml to take the "
                              "architecture from; give --model-config with --from-scratch.")
    position = config.from_scratch.position_embedding
    return new_encoder(model_config, training.encoder_dropout,
                       **({} if position is None else {"position_embedding": position}))
