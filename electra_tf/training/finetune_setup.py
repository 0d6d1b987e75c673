"""Setting up a fine-tuning run before training: the checked arguments, the labelled data
(train, and validation carved from it), the vocabulary and the classifier."""

from __future__ import annotations

import dataclasses
import logging
import os

import keras

from electra_tf.config import ModelConfig, load_config
from electra_tf.data.classification import LabelledTexts, load_labelled_texts, stratified_split
from electra_tf.data.vocab import load_vocabulary, wait_for_vocabulary
from electra_tf.data.vocab_learning import learn_vocabulary
from electra_tf.distribute import Runtime, with_precision
from electra_tf.errors import CheckpointError, ConfigError
from electra_tf.finetune_config import FinetuneConfig, TaskConfig
from electra_tf.models.classifier import SequenceClassifier
from electra_tf.presets import resolve_pretrained
from electra_tf.run_dir import read_json

logger = logging.getLogger(__name__)


def checked_arguments(config: FinetuneConfig, pretrained, from_scratch, model_config,
                      runtime: Runtime):
    """`(pretrained, config)`: a hub id resolved to its local snapshot and a preset's name to
    its folder, the config with the from-scratch overrides applied, both checked."""
    if pretrained is None and not (from_scratch and model_config is not None):
        raise ConfigError("Give --pretrained DIR (a pretraining output), or --from-scratch with "
                          "--model-config (an architecture such as electra_tiny).")
    if pretrained is not None and pretrained.startswith("hf:"):
        from electra_tf.convert.huggingface import resolve_hf_path

        pretrained = resolve_hf_path(pretrained)  # a local snapshot folder from now on
    pretrained = resolve_pretrained(pretrained)
    if from_scratch:
        config = config.for_scratch_training()
    config.validate()
    if config.training.batch_size % runtime.replicas:
        raise ConfigError(f"training.batch_size={config.training.batch_size} does not split "
                          f"evenly over {runtime.replicas} replicas.")
    return pretrained, config


def train_and_validation(task: TaskConfig, train_data: LabelledTexts | None):
    if train_data is None:
        train_data = load_labelled_texts(task.name, task.data, "train",
                                         text_column=task.text_column,
                                         label_column=task.label_column)
    train, validation = stratified_split(train_data, task.validation_fraction, task.split_seed)
    if task.max_train_examples and len(train) > task.max_train_examples:
        train, _ = stratified_split(train, 1 - task.max_train_examples / len(train),
                                    task.split_seed)
    logger.info("Task %s: %d training and %d validation examples %s from %s.", task.name,
                len(train), len(validation), train.class_counts(), train_data.source)
    return train, validation


def run_vocabulary(paths, resuming, pretrained, vocab, lower_case, train, model_config,
                   learner, chief=True):
    """`(vocabulary, lower_case, model_config)`: the resumed run's own vocabulary, else the one
    `_given_vocabulary` finds; a from-scratch `model_config` sized to it. A non-`chief` worker
    reads a vocabulary learned from the training texts from the chief's `paths.vocab` (see
    `wait_for_vocabulary`)."""
    if resuming and os.path.isfile(paths.vocab):  # not learned again: the run's own
        vocabulary, lower_case = load_vocabulary(paths.vocab), read_json(paths.run)["lower_case"]
    elif not chief and pretrained is None and vocab is None:
        vocabulary = wait_for_vocabulary(paths.vocab)
    else:
        vocabulary, lower_case = _given_vocabulary(pretrained, vocab, lower_case, train,
                                                   model_config, learner)
    if pretrained is None and model_config.vocab_size != len(vocabulary):
        # No weights to match: the from-scratch encoder takes the vocabulary's size, as
        # `pretrain` does (a learned vocabulary can be a few pieces short of the target).
        logger.info("model.vocab_size = %d, the size of the %s vocabulary.", len(vocabulary),
                    "given" if vocab is not None else "learned")
        model_config = dataclasses.replace(model_config, vocab_size=len(vocabulary))
    return vocabulary, lower_case, model_config


def build_classifier(pretrained, from_scratch, model_config: ModelConfig | None,
                     config: FinetuneConfig, train, vocabulary, runtime: Runtime):
    """The classifier, pretrained or new, computing in the runtime's precision, its variables
    placed by the strategy; checked against the vocabulary and the sequence length."""
    keras.utils.set_random_seed(config.training.seed)
    with runtime.scope():
        classifier = with_precision(
            _new_classifier(pretrained, from_scratch, model_config, config, train),
            runtime.precision)
    encoder, prep = classifier.encoder, config.preprocessing
    if encoder.vocab_size != len(vocabulary):
        raise ConfigError(f"The encoder has vocab_size={encoder.vocab_size} but the vocabulary "
                          f"has {len(vocabulary)} tokens; use the vocabulary it was pretrained "
                          "with (its run's vocab.txt).")
    if prep.max_seq_length > encoder.max_position_embeddings:
        raise ConfigError(f"preprocessing.max_seq_length={prep.max_seq_length} exceeds the "
                          f"encoder's max_position_embeddings={encoder.max_position_embeddings}.")
    return classifier


def _given_vocabulary(pretrained, vocab, lower_case, train, model_config, learner):
    """`(vocabulary, lower_case)`: the pretrained model's, the one given, or one learned from
    the training texts."""
    if pretrained is not None and not os.path.exists(pretrained):
        raise CheckpointError(f"Pretrained model {pretrained!r} does not exist; give the "
                              "--out-dir of an 'electra-tf pretrain' run.")
    if pretrained is not None and os.path.isdir(pretrained):
        vocab_path = os.path.join(pretrained, "vocab.txt")
        if not os.path.isfile(vocab_path):
            raise CheckpointError(f"{pretrained} has no vocab.txt; is it an 'electra-tf "
                                  "pretrain' output directory?")
        run = read_json(os.path.join(pretrained, "run.json"))
        # A HuggingFace folder has no run.json; its tokenizer_config.json says the casing.
        hf_tokenizer = read_json(os.path.join(pretrained, "tokenizer_config.json"))
        return load_vocabulary(vocab_path), bool(
            run.get("lower_case", hf_tokenizer.get("do_lower_case", True)))
    if vocab is not None:
        return load_vocabulary(vocab), lower_case
    if pretrained is not None:
        raise ConfigError(f"{pretrained} is a model file: also give --vocab (the vocabulary it "
                          "was pretrained with).")
    logger.info("Learning a %d-piece vocabulary from the training texts ...",
                model_config.vocab_size)
    return learn_vocabulary(train.texts, model_config.vocab_size, lower_case=lower_case,
                            learner=learner), \
        lower_case


def _new_classifier(pretrained, from_scratch, model_config, config, train):
    num_labels, names = len(train.label_names), train.label_names
    dropout, pooling = config.training.dropout, config.training.pooling
    if not from_scratch:
        return SequenceClassifier.from_pretrained(pretrained, num_labels, names, dropout,
                                                  pooling, config.training.encoder_dropout,
                                                  config.training.reinitialise_top_layers)
    if model_config is None:
        if not os.path.isfile(os.path.join(pretrained, "config.yaml")):
            raise ConfigError(f"{pretrained} has no electra_tf config.yaml to take the "
                              "architecture from; give --model-config with --from-scratch.")
        model_config = load_config(os.path.join(pretrained, "config.yaml")).model
    position = config.from_scratch.position_embedding
    return SequenceClassifier.from_scratch(
        model_config, num_labels, names, dropout=dropout, pooling=pooling,
        encoder_dropout=config.training.encoder_dropout,
        **({} if position is None else {"position_embedding": position}))
