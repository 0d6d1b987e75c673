"""Setting up a pretraining run before any model is built: the checked step counts, the corpus,
the vocabulary (the run's own, the one given, or one learned from the corpus) and the effective
config (special-token ids and vocabulary size from the vocabulary, the command line's steps and
batch size)."""

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


def logging_interval(steps, batch_size, log_every, save_every, keep_checkpoints,
                     steps_per_execution) -> int:
    """Checks the step counts; returns `log_every`, shrunk to a divisor of `save_every` if
    need be (a warning says so)."""
    if steps is not None and steps < 1 or batch_size is not None and batch_size < 1:
        raise ConfigError("--steps and --batch-size must be >= 1.")
    if log_every < 1 or save_every < 1 or keep_checkpoints < 1:
        raise ConfigError("--log-every, --save-every and --keep-checkpoints must be >= 1.")
    if log_every % steps_per_execution:
        raise ConfigError(f"--log-every {log_every} must be a multiple of --steps-per-execution "
                          f"{steps_per_execution} (callbacks only see every "
                          f"{steps_per_execution}-th step).")
    if save_every % log_every:
        # Checkpoints are written at the end of a logging interval: shrink the interval so
        # that they land exactly where asked (a crash must not lose more than --save-every).
        interval = math.gcd(save_every, log_every)
        logger.warning("--save-every %d is not a multiple of --log-every %d: logging every %d "
                       "steps, so that checkpoints land every %d steps.", save_every, log_every,
                       interval, save_every)
        log_every = interval
        if log_every % steps_per_execution:
            raise ConfigError(f"--save-every {save_every} must be a multiple of "
                              f"--steps-per-execution {steps_per_execution}.")
    return log_every


def checked_corpus(corpus: str | Corpus, doc_format: str) -> Corpus:
    """The corpus a `--corpus` spec names, checked to hold text (before minutes of vocabulary
    learning)."""
    if isinstance(corpus, str):
        corpus = open_corpus(corpus, doc_format=doc_format)
    corpus.check()
    return corpus


def run_vocabulary(paths, vocab, corpus, run, vocab_size, vocab_documents, learner,
                   write=True) -> list[str]:
    """The run's own vocabulary (resuming), the one given, or one learned from the corpus.
    Records in `run` whether it was learned, and its fingerprint; saves it into the run unless
    `write` is False (the non-chief workers of a multi-worker run, which read the vocabulary
    the chief learns, or the one given)."""
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
                    "%d documents of %s ...", vocab_size, vocab_documents, corpus.name)
        vocabulary = learn_vocabulary(itertools.islice(corpus.documents(), vocab_documents),
                                      vocab_size, lower_case=run["lower_case"], learner=learner)
        learned = True
        # learn_vocabulary has logged the pieces, documents and seconds.
        if write:
            save_vocabulary(vocabulary, paths.vocab)
            logger.info("Vocabulary from %s saved to %s.", corpus.stats.summary(), paths.vocab)
    run.setdefault("vocab_learned", learned)
    run.setdefault("vocab_fingerprint", vocabulary_fingerprint(vocabulary))
    return vocabulary


def effective_config(config: ElectraConfig, vocabulary, vocab_learned: bool, steps, batch_size):
    """`config` with the vocabulary's special-token ids (and size, for a learned vocabulary),
    `steps` and `batch_size` when given, and at most 10% of a short run as warm-up."""
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
    if steps is not None:
        optimizer["train_steps"] = steps
    if batch_size is not None:
        optimizer["batch_size"] = batch_size
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
