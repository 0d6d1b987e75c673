"""Files written so that a reader never sees half of one: every write goes to a temporary name
beside its target and is renamed onto it, and a damaged JSON record is one `CheckpointError`
that says how to recover. A leaf module (it imports only `electra_tf.errors`), so that the
configs, the vocabulary and the run folders all write files the same way.
"""

from __future__ import annotations

import json
import os
import tempfile
from typing import Callable

from electra_tf.errors import CheckpointError


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
