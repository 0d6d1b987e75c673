"""The files a run directory is finished with (discriminator.keras, classifier.keras) and its
JSON records (run.json, metrics.json, best.json), shared by pretraining and fine-tuning: written
atomically, and a damaged record is a one-line error."""

from __future__ import annotations

import json
import os
import tempfile
import zipfile

from electra_tf.errors import CheckpointError, first_line


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
    """Writes `data` to a temporary file and renames it: a kill never leaves half a record."""
    tmp = f"{path}.tmp"
    with open(tmp, "w", encoding="utf-8") as f:
        json.dump(data, f, indent=2)
        f.write("\n")
    os.replace(tmp, path)


def save_keras_atomically(model, path: str) -> None:
    """Saves `model` to `path` (a .keras file) via a temporary file and a rename: a kill during
    the save leaves no half-written model where a finished run's product is expected."""
    tmp = f"{path[:-len('.keras')]}.tmp.keras"
    model.save(tmp)
    os.replace(tmp, path)


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
