"""Exceptions for mistakes a user can fix. Each message says what is wrong and what to do.

The CLI turns any `ElectraError` into a one-line message and exit status 2, never a traceback.
"""

from __future__ import annotations


def first_line(err: BaseException, limit: int | None = 200) -> str:
    """The first line of an exception's message (its type name when it has none), for quoting a
    library's long error inside one of our one-line messages."""
    return (str(err).strip().splitlines() or [type(err).__name__])[0][:limit]


class ElectraError(Exception):
    """Base class of the errors a user can act on."""


class ConfigError(ElectraError, ValueError):
    """A configuration file or override is invalid; the message says what and how to fix it."""


class DataError(ElectraError, ValueError):
    """A corpus, vocabulary or dataset cannot be used as given."""


class CheckpointError(ElectraError, RuntimeError):
    """An output directory or checkpoint does not match the run that asks for it."""


class TrainingError(ElectraError, RuntimeError):
    """Training could not go on (for example the loss became NaN); saved work is kept."""
