"""Setting up a pretraining run before any model is built: the checkpoint grid, the corpus, the
vocabulary (the run's own, the one given, or one learned from the corpus) and the effective
config (special-token ids and vocabulary size from the vocabulary)."""

from __future__ import annotations

import itertools
import logging
import math
import os

from electra_tf.config import ElectraConfig
from electra_tf.data.corpus import Corpus, open_corpus
from electra_tf.data.vocab import (
    load_vocabulary,
    save_vocabulary,
    special_token_ids,
    vocabulary_fingerprint,
    wait_for_vocabulary,
)
from electra_tf.data.vocab_learning import learn_vocabulary
from electra_tf.distribute import Runtime
from electra_tf.errors import CheckpointError, ConfigError

logger = logging.getLogger(__name__)


def checkpoint_grid(config: ElectraConfig) -> ElectraConfig:
    """`config`, its `run.log_every` shrunk to a divisor of `run.save_every` if need be (a
    warning says so): checkpoints are written at the end of a logging interval, so that they
    land exactly where asked (a crash must not lose more than `save_every` steps)."""
    run = config.run
    if run.save_every % run.log_every == 0:
        return config
    interval = math.gcd(run.save_every, run.log_every)
    logger.warning("--save-every %d is not a multiple of --log-every %d: logging every %d "
                   "steps, so that checkpoints land every %d steps.", run.save_every,
                   run.log_every, interval, run.save_every)
    return config.with_settings({"run.log_every": interval})


def checked_corpus(corpus: str | Corpus, doc_format: str) -> Corpus:
    """The corpus a `--corpus` spec names, checked to hold text (before minutes of vocabulary
    learning)."""
    if isinstance(corpus, str):
        corpus = open_corpus(corpus, doc_format=doc_format)
    corpus.check()
    return corpus


def run_vocabulary(paths, vocab, corpus, run, config: ElectraConfig, write=True) -> list[str]:
    """The run's own vocabulary (resuming), the one given, or one learned from the corpus (as
    `config.corpus` says). Records in `run` whether it was learned, and its fingerprint; saves
    it into the run unless `write` is False (the non-chief workers of a multi-worker run, which
    read the vocabulary the chief learns, or the one given)."""
    settings = config.corpus
    if os.path.exists(paths.vocab):
        vocabulary = load_vocabulary(paths.vocab)
        if vocab and vocabulary_fingerprint(load_vocabulary(vocab)) != \
                vocabulary_fingerprint(vocabulary):
            raise CheckpointError(
                f"{paths.vocab} (the vocabulary this run was trained with) differs from {vocab}. "
                f"Resume without --vocab, or start a new --out-dir for the new vocabulary.")
        learned = bool(run.get("vocab_learned", False))
    elif vocab:
        vocabulary, learned = load_vocabulary(vocab), False
        if write:
            save_vocabulary(vocabulary, paths.vocab)
    elif not write:  # a worker: the chief's, not one of its own (see wait_for_vocabulary)
        vocabulary, learned = wait_for_vocabulary(paths.vocab), True
    else:
        logger.info("No --vocab given: learning a %d-piece WordPiece vocabulary from the first "
                    "%d documents of %s ...", config.model.vocab_size, settings.vocab_documents,
                    corpus.name)
        vocabulary = learn_vocabulary(
            itertools.islice(corpus.documents(), settings.vocab_documents),
            config.model.vocab_size, lower_case=settings.lower_case,
            learner=settings.vocab_learner)
        learned = True
        # learn_vocabulary has logged the pieces, documents and seconds.
        if write:
            save_vocabulary(vocabulary, paths.vocab)
            logger.info("Vocabulary from %s saved to %s.", corpus.stats.summary(), paths.vocab)
    run.setdefault("vocab_learned", learned)
    run.setdefault("vocab_fingerprint", vocabulary_fingerprint(vocabulary))
    return vocabulary


def effective_config(config: ElectraConfig, vocabulary, vocab_learned: bool) -> ElectraConfig:
    """`config` with the vocabulary's special-token ids (and size, for a learned vocabulary),
    and at most 10% of a short run as warm-up."""
    data = config.to_dict()
    ids = special_token_ids(vocabulary)
    changed = {k: v for k, v in ids.as_pretraining_overrides().items()
               if data["pretraining"][k] != v}
    if changed:
        logger.info("Special-token ids from the vocabulary: %s.", changed)
    data["pretraining"].update(ids.as_pretraining_overrides())
    if data["model"]["vocab_size"] != len(vocabulary):
        if not vocab_learned:
            raise ConfigError(
                f"The config says model.vocab_size={data['model']['vocab_size']} but the "
                f"vocabulary has {len(vocabulary)} tokens. Pass --set "
                f"model.vocab_size={len(vocabulary)} to size the model for this vocabulary, or give "
                f"the vocabulary the config was made for.")
        logger.info("model.vocab_size = %d, the size of the learned vocabulary.", len(vocabulary))
        data["model"]["vocab_size"] = len(vocabulary)
    optimizer = data["optimizer"]
    if optimizer["warmup_steps"] >= optimizer["train_steps"]:
        warmup = max(1, optimizer["train_steps"] // 10)
        logger.warning("warmup_steps %d >= train_steps %d: using %d warm-up steps (10%%).",
                       optimizer["warmup_steps"], optimizer["train_steps"], warmup)
        optimizer["warmup_steps"] = warmup
    return ElectraConfig.from_dict(data)


def check_config_fits_runtime(config: ElectraConfig, runtime: Runtime) -> None:
    """Whole `tf.function` calls and an even split of each batch over the replicas."""
    total_steps, batch = config.optimizer.train_steps, config.optimizer.batch_size
    if total_steps % runtime.steps_per_execution:
        raise ConfigError(f"The number of steps ({total_steps}) must be a multiple of "
                          f"--steps-per-execution {runtime.steps_per_execution}.")
    if batch % runtime.replicas:
        raise ConfigError(f"The global batch size {batch} does not split evenly over "
                          f"{runtime.replicas} replicas: pass a multiple of "
                          f"{runtime.replicas} with --batch-size.")


# ------------------------------------------------------------------ continued pretraining

def continued_config(config: ElectraConfig, networks, vocab: str | None, asked_lower_case,
                     source: str) -> tuple[ElectraConfig, str]:
    """`(config, vocab)` of a run continued from `networks` (`read_initial_networks`): the
    source's architecture and casing, and its vocabulary -- its embedding rows are indexed by
    it, so another vocabulary (`vocab`) or casing asked for is refused."""
    import dataclasses

    if vocab is not None and vocabulary_fingerprint(load_vocabulary(vocab)) != \
            vocabulary_fingerprint(load_vocabulary(networks.vocab_path)):
        raise ConfigError(f"--vocab {vocab} is not the vocabulary of {source}, whose embeddings "
                          "are indexed by its own: leave --vocab out (its vocabulary is used).")
    if asked_lower_case is not None and bool(asked_lower_case) != networks.lower_case:
        raise ConfigError(f"{source} is {'un' if networks.lower_case else ''}cased; its "
                          "vocabulary fixes the casing: leave --cased out.")
    if config.model != networks.model_config:
        logger.info("The architecture is %s's (the config's model section is not used).",
                    source)
    config = dataclasses.replace(
        config, model=networks.model_config,
        corpus=dataclasses.replace(config.corpus, lower_case=networks.lower_case))
    return config, networks.vocab_path


def check_same_source(paths, record: dict | None) -> None:
    """A run folder started from another source (`run.json`'s `init_from`; None: a random
    initialisation) is not resumed from this one: one line says so."""
    from electra_tf.files import read_json

    if not os.path.isfile(paths.config):  # nothing started here yet
        return
    stored = read_json(paths.run).get("init_from")
    key = ("spec", "kind", "generator")
    if (stored and {k: stored.get(k) for k in key}) != (record and {k: record.get(k)
                                                                   for k in key}):
        started = f"from {stored['spec']}" if stored else "from a random initialisation"
        asked = f"--init-from {record['spec']}" if record else "no --init-from"
        raise ConfigError(f"{paths.root} holds a run started {started}, not with {asked}; "
                          "resume it with its own command, or give a new --out-dir.")
