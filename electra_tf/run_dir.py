"""Run directories: the files `pretrain` and `finetune` leave behind, written so that a run killed
at any moment can be resumed, and read back by `evaluate`, `export` and the converters.

    pretraining (`PretrainPaths`)              fine-tuning (`FinetunePaths`)
    config.yaml    the effective config        finetune.yaml    the fine-tuning config
    run.json       seed, corpus, settings      run.json         task, data, labels, settings
    vocab.txt, checkpoints/, logs/, history.jsonl, metrics.json, curves.png (both)
    discriminator.keras, generator.keras       classifier.keras (once finished; until then
                                               best.weights.h5 + best.json, architecture.json)

Every file is written to a temporary name and renamed (`write_atomically`): a reader never sees
half a file, and a damaged JSON record is one `CheckpointError` saying how to recover. The resume
checks refuse to continue a run with settings its checkpoints cannot take.

This module imports Keras and TensorFlow only inside the functions that load models; the
package itself (`electra_tf/__init__.py`) imports TensorFlow eagerly, so the CLI's early path
checks gain nothing from it beyond a tidy dependency.
"""

from __future__ import annotations

import contextlib
import json
import logging
import os
import tempfile
import zipfile
from typing import Callable

from electra_tf.errors import CheckpointError, first_line

logger = logging.getLogger(__name__)

# ------------------------------------------------------------------------------ files


def write_atomically(path, write: Callable[[str], None], suffix: str = "") -> None:
    """Calls `write(tmp)` for a temporary file beside `path`, then renames it onto `path`.

    `suffix`: an ending the writer insists on (Keras wants `.keras`, `.weights.h5`); it stays at
    the end of the temporary name.
    """
    path = os.fspath(path)
    tmp = f"{path[:len(path) - len(suffix)]}.tmp{suffix}"
    write(tmp)
    os.replace(tmp, path)


def write_text_atomically(path, text: str) -> None:
    def write(tmp):
        with open(tmp, "w", encoding="utf-8") as f:
            f.write(text)

    write_atomically(path, write)


def read_json(path) -> dict:
    """The file's object, `{}` when it does not exist.

    Raises:
        CheckpointError: the file is not valid JSON (a partial copy, a hand edit).
    """
    if not os.path.exists(path):
        return {}
    try:
        with open(path, encoding="utf-8") as f:
            return json.load(f)
    except json.JSONDecodeError as err:
        raise CheckpointError(f"{path} is damaged ({err}); restore it from a backup, or delete "
                              "the run directory to start a new run there.") from None


def write_json(path, data) -> None:
    """Writes `data` atomically: a kill never leaves half a record."""
    write_text_atomically(path, json.dumps(data, indent=2) + "\n")


def save_keras_atomically(model, path: str) -> None:
    """Saves `model` to `path` (a .keras file) atomically: a kill during the save leaves no
    half-written model where a finished run's product is expected."""
    write_atomically(path, model.save, suffix=".keras")


def save_weights_atomically(model, path: str) -> None:
    """`model.save_weights(path)` (a .weights.h5 file), atomically."""
    write_atomically(path, model.save_weights, suffix=".weights.h5")


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


def ensure_writable_directory(path: str, option: str = "--out-dir") -> None:
    """Creates `path` if needed and proves it takes a file, *before* any work whose results
    would go there (minutes of training must not end in a PermissionError).

    Raises:
        CheckpointError: `path` is a file, or the directory cannot be created or written.
    """
    if os.path.exists(path) and not os.path.isdir(path):
        raise CheckpointError(f"{option} {path} is an existing file, not a directory; give a "
                              "directory path.")
    try:
        os.makedirs(path, exist_ok=True)
        with tempfile.TemporaryFile(dir=path):
            pass
    except OSError as err:
        raise CheckpointError(f"Cannot write to {option} {path} ({err.strerror or err}); choose "
                              "a directory you can write to.") from None


def load_keras_model(path: str):
    """`keras.saving.load_model` in safe mode (a file cannot run code), with one clear message
    for a file that is refused, truncated or not a Keras model at all.

    Raises:
        CheckpointError: the file cannot be loaded; the message says why.
    """
    import keras

    if not os.path.isfile(path):
        raise CheckpointError(f"{path} does not exist.")
    if path.endswith(".keras") and not zipfile.is_zipfile(path):  # Keras says "File not found"
        raise CheckpointError(f"{path} is not a .keras model (not a zip archive); it may be "
                              "truncated or another kind of file. Give an electra_tf .keras file, "
                              "or re-create it with the command that made it.")
    try:
        return keras.saving.load_model(path, compile=False, safe_mode=True)
    except Exception as err:  # zip, HDF5, JSON and deserialisation errors of many types
        if "safe_mode" in str(err) or "Lambda" in str(err):
            raise CheckpointError(
                f"{path} was refused: it holds code (a Lambda layer or a pickled function) that "
                "loading would run, and electra_tf loads models only in Keras' safe mode. Use "
                "models from 'electra-tf pretrain/finetune/import', or rebuild this one without "
                "custom code.") from None
        raise CheckpointError(
            f"{path} is not a readable Keras model ({type(err).__name__}: {first_line(err)}); it may "
            "be truncated or another kind of file. Give an electra_tf .keras file, or re-create "
            "it with the command that made it.") from None


# ------------------------------------------------------------------------------ layouts


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


# ------------------------------------------------------------------------------ resuming


def config_differences(previous: dict, current: dict, sections) -> list[str]:
    """`section.key: old -> new` for every setting of `sections` (of two `to_dict()` configs)
    that differs."""
    return [f"{section}.{key}: {previous[section].get(key)!r} -> {value!r}"
            for section in sections for key, value in current[section].items()
            if previous[section].get(key) != value]


# The pretraining settings a resumed run takes from the run it continues (a warning says so).
PRETRAINING_RUN_KEYS = ("seed", "lower_case", "doc_format", "log_every", "save_every")


def resumed_pretraining_settings(paths: PretrainPaths, requested: dict) -> dict:
    """The run.json settings of this invocation: `requested`, or, when `paths` holds a run to
    resume, that run's own settings (its seed must be the one requested).

    Raises:
        CheckpointError: the run there has another seed.
    """
    previous = read_json(paths.run)
    if not previous:
        return requested
    if previous.get("seed") != requested["seed"]:
        raise CheckpointError(
            f"This output directory holds a run with seed {previous.get('seed')}, not "
            f"{requested['seed']}: its data order and random streams cannot be continued with "
            f"another seed. Pass --seed {previous.get('seed')} or use a new --out-dir.")
    for key in PRETRAINING_RUN_KEYS:
        if key in previous and previous[key] != requested.get(key):
            logger.warning("Resuming with the run's own %s=%r (asked: %r).", key, previous[key],
                           requested.get(key))
    if previous.get("corpus") != requested["corpus"]:
        logger.warning("The corpus differs from the run's (%s, now %s); resuming anyway: the data "
                       "position is only exact for the same corpus.", previous.get("corpus"),
                       requested["corpus"])
    return dict(requested, **{k: v for k, v in previous.items() if k != "corpus"})


def check_resumable_pretraining(paths: PretrainPaths, config) -> None:
    """Refuses to continue the run in `paths` with another model or objective (its checkpoints
    would not fit); a changed optimizer setting is allowed, with a warning.

    Raises:
        CheckpointError: the model or pretraining section differs from the run's config.yaml.
    """
    if not os.path.exists(paths.config):
        return
    previous, current = type(config).from_yaml(paths.config).to_dict(), config.to_dict()
    differences = config_differences(previous, current, ("model", "pretraining"))
    if differences:
        raise CheckpointError(
            f"{paths.root} holds a run with a different model or objective ("
            + "; ".join(differences) + "). Its checkpoints cannot continue with this config: "
            "use the same config to resume, or a new --out-dir.")
    changed = config_differences(previous, current, ("optimizer",))
    if changed:
        logger.warning("Resuming with changed optimizer settings: %s.", "; ".join(changed))


def finished_pretraining_metrics(paths: PretrainPaths, config) -> dict:
    """The metrics of a run that has already trained `config`'s steps and written all its
    products (`{}` otherwise: there is work to do)."""
    metrics = read_json(paths.metrics)
    products = [paths.generator] + ([paths.discriminator]
                                    if config.pretraining.electra_objective else [])
    if metrics and all(map(os.path.exists, products)) \
            and metrics.get("steps", 0) >= config.optimizer.train_steps:
        return metrics
    return {}


def check_resumable_finetuning(paths: FinetunePaths, config, identity: dict) -> bool:
    """True when `paths` holds a run of these settings to continue or (finished) to leave as it
    is; False for a fresh run. `identity`: the run.json settings a resumed run must share
    (task, data, initialisation).

    Raises:
        CheckpointError: the folder holds a run (finished or not) with another config or model.
    """
    if not os.path.exists(paths.config):
        if paths.is_finished():  # a classifier without its settings: nothing to compare
            raise CheckpointError(f"{paths.root} already holds a fine-tuned classifier; choose "
                                  "a new --out-dir (or delete that one) to train again.")
        return False
    current = config.to_dict()
    differences = config_differences(type(config).from_yaml(paths.config).to_dict(), current,
                                     [s for s, values in current.items() if isinstance(values, dict)])
    previous_run = read_json(paths.run)
    differences += [f"{key}: {previous_run.get(key)!r} -> {value!r}"
                    for key, value in identity.items() if previous_run.get(key) != value]
    if differences:
        if paths.is_finished():
            held, to_do = "a finished", "Use a new --out-dir to train with these settings."
        else:
            held, to_do = "an unfinished", ("Re-run it with its own settings to resume it, or "
                                            "use a new --out-dir.")
        raise CheckpointError(f"{paths.root} holds {held} fine-tuning run with other settings ("
                              + "; ".join(differences) + f"). {to_do}")
    return True


def finished_finetuning_metrics(paths: FinetunePaths) -> dict:
    """The metrics of a finished fine-tuning run (`{}` when there is work to do). As for
    pretraining, the same command run again after the end changes nothing and succeeds."""
    metrics = read_json(paths.metrics)
    if paths.is_finished() and metrics.get("validation"):
        return metrics
    return {}


def resumed_best(paths: FinetunePaths, history: list[dict], start_step: int):
    """`(best, wait)` for `BestCheckpoint`: the best record so far and how many evaluations
    since it, from `best.json` and the history kept up to `start_step`."""
    best = read_json(paths.best_record) or None
    if best is None or not os.path.isfile(paths.best_weights):
        return None, 0
    if best["step"] > start_step:
        # Killed in the moment between saving a new best and the checkpoint of that step: the
        # resumed run re-evaluates that step, and `BestCheckpoint` recognises it.
        return best, 0
    return best, sum(1 for record in history if record["step"] > best["step"])


# ------------------------------------------------------------------------------ reading back


def load_classifier(paths: FinetunePaths):
    """The finished run's classifier.keras, or an unfinished run's best weights in the
    architecture it recorded (with a warning saying so)."""
    import keras

    if paths.is_finished():
        return load_keras_model(paths.classifier)
    if not paths.is_unfinished_but_usable():
        raise CheckpointError(f"{paths.root} has no classifier.keras and no evaluated checkpoint: "
                              "give the --out-dir of an 'electra-tf finetune' run.")
    classifier = keras.saving.deserialize_keras_object(read_json(paths.architecture),
                                                       safe_mode=True)
    if not classifier.built:  # the recorded build config usually builds it already
        classifier.build({"token_ids": (None, None)})
    classifier.load_weights(paths.best_weights)
    best, run = read_json(paths.best_record), read_json(paths.run)
    logger.warning("%s is an unfinished fine-tuning run: using its best checkpoint so far (step "
                   "%d of %d, validation accuracy %.4f). Re-run its finetune command to finish it.",
                   paths.root, best["step"], run.get("total_steps", -1), best["val_accuracy"])
    return classifier


def load_finetuned(model_dir: str):
    """Returns `(classifier, preprocessor, run, config)` of a fine-tuning output directory
    (finished, or interrupted after its first evaluation: then its best weights so far)."""
    from electra_tf.data.preprocessor import ClassificationPreprocessor
    from electra_tf.data.tokenizer import WordPieceTokenizer
    from electra_tf.data.vocab import load_vocabulary
    from electra_tf.finetune_config import load_finetune_config

    paths = FinetunePaths(model_dir)
    classifier = load_classifier(paths)  # an unfinished run's best checkpoint, with a warning
    run = read_json(paths.run)
    config = load_finetune_config(paths.config)
    prep = config.preprocessing
    tokenizer = WordPieceTokenizer(load_vocabulary(paths.vocab), lower_case=run["lower_case"])
    preprocessor = ClassificationPreprocessor(tokenizer, prep.max_seq_length, prep.truncation,
                                              prep.head_fraction)
    return classifier, preprocessor, run, config

