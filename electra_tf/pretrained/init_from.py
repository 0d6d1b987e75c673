"""Continued (domain-adaptive) pretraining: a new pretraining run that starts from networks that
exist -- a finished `electra-tf pretrain` run, an installed preset, an `electra-tf import`
folder, Google's TF1 pretraining checkpoint, or a HuggingFace discriminator with its generator.

`read_initial_networks(spec, generator=None)` reads the source (through `resolve`, the one reader
of pretrained sources): its discriminator and generator, its architecture as a `ModelConfig`, its
vocabulary and casing. `load_initial_weights(pretrainer, networks)` copies them block by block
into a built `ElectraPretrainer`, so that at step 0 both networks compute exactly what the
source's compute. The optimizer and the learning-rate schedule start fresh.

The pretrainer keeps one word-embedding table for both networks (the paper's tying): it takes the
discriminator's. Google's checkpoints tie them too, so both come back exactly; a source whose
generator has embeddings of its own (rare) is warned about.
"""

from __future__ import annotations

import dataclasses
import logging
import os
from typing import Any

import keras
import numpy as np

from electra_tf.errors import CheckpointError, ConfigError
from electra_tf.pretrained.resolve import PretrainedSource, resolve
from electra_tf.runs.layouts import PretrainPaths

logger = logging.getLogger(__name__)

_CONTINUABLE = ("pretraining run", "preset", "import", "huggingface", "tf1")


@dataclasses.dataclass
class InitialNetworks:
    """What a continued run starts from.

    Attributes:
        discriminator: a `Discriminator`, or None (an MLM run's source has none).
        generator: a `Generator`, or None (the source has none: a fresh one is built).
        model_config: the source's architecture (`ModelConfig`), which the new run takes.
        vocab_path: the source's vocab.txt; lower_case: its casing.
        record: what the new run's run.json records about its source.
    """

    discriminator: Any
    generator: Any
    model_config: Any
    vocab_path: str
    lower_case: bool
    record: dict


def read_initial_networks(spec, generator: str | None = None) -> InitialNetworks:
    """Reads `spec` (and `generator`, a second source holding the generator: a HuggingFace
    `ElectraForMaskedLM` folder or hub id beside its discriminator).

    Raises:
        ConfigError: a source that cannot be continued (a fine-tuned classifier, a bare model
            file), or a generator whose shape the pretrainer cannot hold.
        CheckpointError: as `resolve` and the loaders raise them.
    """
    source = resolve(spec)
    if source.kind not in _CONTINUABLE:
        raise ConfigError(f"--init-from {spec}: a {source.kind} cannot be pretrained further; give "
                          "a pretraining run, a preset, an 'electra-tf import' folder, a TF1 "
                          "pretraining checkpoint or a HuggingFace discriminator.")
    discriminator, own_generator = _networks(source)
    generator_source = None
    if generator is not None:
        generator_source = resolve(generator)
        own_generator = _generator_of(generator_source)
    if own_generator is None and discriminator is not None:
        logger.warning("%s holds no generator: the run starts with a fresh generator of the "
                       "configured size (it catches up within the first thousand steps).", spec)
    model_config = source.model_config() or _model_config(discriminator, own_generator)
    if discriminator is not None:  # an MLM source's generator is full-size: nothing to check
        _check_generator(own_generator, model_config, generator or spec)
    record = {"spec": str(spec), "kind": source.kind, "path": source.path}
    if generator_source is not None:
        record["generator"] = {"spec": str(generator), "kind": generator_source.kind,
                               "path": generator_source.path}
    return InitialNetworks(discriminator, own_generator, model_config,
                           source.vocab_path, bool(source.lower_case), record)


def load_initial_weights(pretrainer, networks: InitialNetworks) -> None:
    """Copies `networks` into the built `pretrainer` (whose architecture is
    `networks.model_config`): the shared embeddings, each encoder's other blocks and each head.
    A network the source lacks keeps the pretrainer's fresh initialisation."""
    source_disc, source_gen = networks.discriminator, networks.generator
    if pretrainer.discriminator is None:  # MLM: the full-size generator is the model
        if source_gen is None:
            raise ConfigError("The source holds no masked-LM network to continue with the MLM "
                              "objective; continue it with ELECTRA's.")
        _copy_blocks(source_gen.encoder.weight_blocks(), pretrainer.generator.encoder
                     .weight_blocks())
        _copy_layer(source_gen.mlm_head, pretrainer.generator.mlm_head)
        return
    if source_disc is None:
        raise ConfigError("The source is a masked-LM run (no discriminator); continue it with "
                          "pretraining.electra_objective=false.")
    embeddings = source_disc.encoder.embeddings
    target_embeddings = pretrainer.discriminator.encoder.embeddings
    shared = getattr(target_embeddings, "shared", None)  # gradient-disentangled sharing
    if shared is not None:  # shared table + a residual that starts at zero: the same vectors
        _copy_layer(embeddings, shared)
        for own, copy in ((embeddings.position_embeddings, target_embeddings.position_embeddings),
                          (embeddings.token_type_embeddings,
                           target_embeddings.token_type_embeddings),
                          (embeddings.layer_norm, target_embeddings.layer_norm)):
            if own is not None:
                copy.set_weights(own.get_weights())
    first = int(shared is not None)  # tied: the embedding block too (it is the shared one)
    _copy_blocks(source_disc.encoder.weight_blocks()[first:],
                 pretrainer.discriminator.encoder.weight_blocks()[first:])
    _copy_layer(source_disc.rtd_head, pretrainer.discriminator.rtd_head)
    if source_gen is None:
        return
    if not np.array_equal(keras.ops.convert_to_numpy(source_gen.encoder.embeddings
                                                     .embedding_matrix),
                          keras.ops.convert_to_numpy(embeddings.embedding_matrix)):
        logger.warning("The source's generator has word embeddings of its own; the pretrainer "
                       "ties one table for both networks and takes the discriminator's.")
    # The generator's embedding block is the shared one (copied above); the rest is its own.
    _copy_blocks(source_gen.encoder.weight_blocks()[1:],
                 pretrainer.generator.encoder.weight_blocks()[1:])
    _copy_layer(source_gen.mlm_head, pretrainer.generator.mlm_head)


def pretrainer_from_source(spec, generator: str | None = None, pretraining_config=None,
                           seed=None):
    """A built `ElectraPretrainer` with the source's architecture and weights (see the module
    docstring); `pretraining_config` (a `PretrainingConfig` or dict) sets the objective.
    Returns `(pretrainer, networks)`: `networks.vocab_path` is the vocabulary to tokenize with."""
    from electra_tf.models.pretrainer import ElectraPretrainer

    networks = read_initial_networks(spec, generator)
    pretrainer = ElectraPretrainer(networks.model_config, pretraining_config, seed=seed)
    pretrainer.build({"token_ids": (None, None)})
    load_initial_weights(pretrainer, networks)
    return pretrainer, networks


# ------------------------------------------------------------------ reading the networks

def _networks(source: PretrainedSource):
    """`(discriminator or None, generator or None)` of a continuable source."""
    from electra_tf.runs.keras_files import load_keras_model

    if source.kind == "tf1":
        from electra_tf.convert.tf1 import load_tf1_checkpoint

        loaded = load_tf1_checkpoint(source.path)
        return loaded["discriminator"], loaded["generator"]
    if source.kind == "huggingface":
        from electra_tf.convert.huggingface import load_huggingface
        from electra_tf.models.generator import Generator

        model = load_huggingface(source.path)
        return (None, model) if isinstance(model, Generator) else (model, None)
    paths = PretrainPaths(source.path)
    found = [load_keras_model(path) if os.path.isfile(path) else None
             for path in (paths.discriminator, paths.generator)]
    if found == [None, None]:
        raise CheckpointError(f"{source.path} holds neither discriminator.keras nor "
                              "generator.keras; an unfinished run writes them when it completes "
                              "(re-run its command).")
    return tuple(found)


def _generator_of(source: PretrainedSource):
    _, generator = _networks(source) if source.kind in _CONTINUABLE else (None, None)
    if generator is None:
        raise ConfigError(f"--init-generator {source.spec}: holds no generator (a HuggingFace "
                          "ElectraForMaskedLM, or a run folder with generator.keras).")
    return generator


def _model_config(discriminator, generator):
    """The `ModelConfig` of networks that came without one (TF1, HuggingFace)."""
    from electra_tf.config.pretraining import ModelConfig

    main = discriminator if discriminator is not None else generator
    encoder = main.encoder.get_config()
    fields = {f.name for f in dataclasses.fields(ModelConfig)} - {"generator_hidden_fraction"}
    config = ModelConfig(**{name: encoder[name] for name in fields if name in encoder})
    if discriminator is not None and generator is not None:
        config = dataclasses.replace(config, generator_hidden_fraction=(
            generator.encoder.hidden_size / discriminator.encoder.hidden_size))
    return config


def _check_generator(generator, model_config, spec) -> None:
    """The pretrainer builds its generator from the config (same depth, width
    `generator_hidden_fraction`, heads of 64, FFN 4x): a source generator of another shape
    cannot be held."""
    if generator is None:
        return
    expected = model_config.generator_encoder_kwargs()
    got = generator.encoder.get_config()
    keys = ("hidden_size", "num_layers", "num_heads", "intermediate_size", "embedding_size")
    different = [f"{k} {got[k]} (the pretrainer builds {expected[k]})" for k in keys
                 if got[k] != expected[k]]
    if different:
        raise ConfigError(f"The generator of {spec} has {', '.join(different)}; continue from a "
                          "source whose generator has the authors' shape, or leave the generator "
                          "out to start a fresh one.")


def _copy_blocks(sources, targets) -> None:
    for source, target in zip(sources, targets, strict=True):
        if (source is None) != (target is None):
            raise ConfigError("The source's encoder and the new run's differ in structure "
                              "(an embedding projection or a final LayerNorm).")
        if source is not None:
            _copy_layer(source, target)


def _copy_layer(source, target) -> None:
    weights = source.get_weights()
    shapes = [w.shape for w in weights], [tuple(v.shape) for v in target.weights]
    if len(weights) != len(target.weights) or any(
            tuple(a) != tuple(b) for a, b in zip(*shapes)):
        raise ConfigError(f"{source.name}: the source's weights {shapes[0]} do not fit the new "
                          f"run's {shapes[1]}.")
    target.set_weights(weights)
