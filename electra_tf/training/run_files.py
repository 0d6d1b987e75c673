"""The files a run directory is finished with (discriminator.keras, classifier.keras) and its
JSON records (run.json, metrics.json, best.json), shared by pretraining and fine-tuning: written
atomically, and a damaged record is a one-line error."""

from __future__ import annotations

import json
import os

from electra_tf.errors import CheckpointError


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
