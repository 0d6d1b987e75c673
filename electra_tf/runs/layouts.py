"""Run directories: what `pretrain` and `finetune` leave behind, which kind of run a folder
holds, and the lock that keeps one process per run folder.

    pretraining (`PretrainPaths`)              fine-tuning (`FinetunePaths`)
    config.yaml    the effective config        finetune.yaml    the fine-tuning config
    run.json       seed, corpus, settings      run.json         task, data, labels, settings
    vocab.txt, checkpoints/, logs/, history.jsonl, metrics.json, curves.png (both)
    discriminator.keras, generator.keras       classifier.keras (once finished; until then
                                               best.weights.h5 + best.json, architecture.json)

Every file is written atomically (`electra_tf.files`); `electra_tf.runs.resume` holds the rules
for continuing a run, `electra_tf.pretrained` reads finished runs back as models.
"""

from __future__ import annotations

import contextlib
import os

from electra_tf.errors import CheckpointError
from electra_tf.files import read_json

_WITH_ARTICLE = {"pretraining": "a pretraining", "fine-tuning": "a fine-tuning",
                 "import": "an import", "export": "an export"}


def run_kind(path: str) -> str | None:
    """What the folder `path` holds: "pretraining", "fine-tuning", "import" (`electra-tf
    import`) or "export" (a SavedModel), by the files each command writes first; None for a
    missing, empty or other folder."""
    def has(name):
        return os.path.exists(os.path.join(path, name))

    if not os.path.isdir(path):
        return None
    if has("saved_model.pb"):
        return "export"
    if has("finetune.yaml") or has("classifier.keras"):
        return "fine-tuning"
    try:
        run = read_json(os.path.join(path, "run.json"))
    except CheckpointError:  # damaged: the other files still tell
        run = {}
    if "imported_from" in run:
        return "import"
    if has("config.yaml") or "corpus" in run:
        return "pretraining"
    return None


def refuse_another_kind_of_run(path: str, kind: str, option: str = "--out-dir") -> None:
    """Refuses, touching nothing, a folder that holds another kind of run than `kind` (the
    caller's: "pretraining", "fine-tuning", "import"), whose files the caller would overwrite.

    Raises:
        CheckpointError: `path` holds another kind of run (`run_kind`).
    """
    held = run_kind(path)
    if held and held != kind:
        raise CheckpointError(f"{option} {path} holds {_WITH_ARTICLE[held]} run, whose files "
                              f"this command would overwrite: choose a new {option}.")


@contextlib.contextmanager
def run_lock(path: str, held: bool = True, option: str = "--out-dir"):
    """Holds the run folder `path` for this process while the block runs: a second process
    that tries to train or write there meanwhile is refused, instead of both writing every
    history line. The lock is `fcntl.flock` on `path/.lock` (which records the holder's pid and
    is removed when the block ends): the kernel drops the lock when its process ends, however
    it ends, so a killed run's leftover file never blocks its own resume. `held=False` (a
    non-chief worker, which writes nothing there) takes no lock; neither does a platform
    without `fcntl`.

    Raises:
        CheckpointError: another process holds the folder.
    """
    try:
        import fcntl
    except ImportError:  # Windows: no advisory locks of this kind
        fcntl = None
    if not held or fcntl is None:
        yield
        return
    with open(os.path.join(path, ".lock"), "a+", encoding="utf-8") as lock:
        try:
            fcntl.flock(lock, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            lock.seek(0)
            holder = lock.read().strip()
            raise CheckpointError(
                f"{option} {path} is in use by another electra-tf process"
                + (f" (pid {holder})" if holder.isdigit() else "") + f"; wait for it to end, "
                f"or choose another {option}.") from None
        lock.seek(0)
        lock.truncate()
        lock.write(str(os.getpid()))
        lock.flush()
        try:
            yield
        finally:
            # Removed while still held, so a finished run leaves no lock file: a process that
            # opened it before the removal tried its lock while this one held it, and left.
            os.remove(lock.name)
            fcntl.flock(lock, fcntl.LOCK_UN)


class _Paths:
    """The files every run directory has."""

    def __init__(self, root: str):
        self.root = root
        self.vocab, self.run = self.join("vocab.txt"), self.join("run.json")
        self.checkpoints, self.logs = self.join("checkpoints"), self.join("logs")
        self.history, self.metrics = self.join("history.jsonl"), self.join("metrics.json")
        self.curves = self.join("curves.png")

    def join(self, name: str) -> str:
        return os.path.join(self.root, name)


class PretrainPaths(_Paths):
    """File layout of one pretraining output directory (see `electra_tf.training.pretrain`)."""

    def __init__(self, root: str):
        super().__init__(root)
        self.config = self.join("config.yaml")
        self.discriminator = self.join("discriminator.keras")
        self.generator = self.join("generator.keras")


class FinetunePaths(_Paths):
    """File layout of one fine-tuning output directory (see `electra_tf.training.finetune`)."""

    def __init__(self, root: str):
        super().__init__(root)
        self.classifier, self.config = self.join("classifier.keras"), self.join("finetune.yaml")
        self.best_weights, self.best_record = self.join("best.weights.h5"), self.join("best.json")
        self.architecture = self.join("architecture.json")

    def confusion(self, split: str) -> str:
        return self.join(f"confusion_{split}.png")

    def is_finished(self) -> bool:
        return os.path.isfile(self.classifier)

    def is_unfinished_but_usable(self) -> bool:
        """An interrupted run that has evaluated at least once: its best weights can be used."""
        return not self.is_finished() and all(
            os.path.isfile(p) for p in (self.best_weights, self.best_record, self.architecture,
                                        self.run, self.config, self.vocab))

    def has_classifier(self) -> bool:
        return self.is_finished() or self.is_unfinished_but_usable()
