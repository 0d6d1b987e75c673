"""Keras model files of a run: saved atomically, loaded in safe mode with one clear message for
a file that cannot be loaded."""

from __future__ import annotations

import os
import zipfile

from electra_tf.errors import CheckpointError, first_line
from electra_tf.files import write_atomically


def save_keras_atomically(model, path: str) -> None:
    """Saves `model` to `path` (a .keras file) atomically: a kill during the save leaves no
    half-written model where a finished run's product is expected."""
    write_atomically(path, model.save, suffix=".keras")


def save_weights_atomically(model, path: str) -> None:
    """`model.save_weights(path)` (a .weights.h5 file), atomically."""
    write_atomically(path, model.save_weights, suffix=".weights.h5")


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
