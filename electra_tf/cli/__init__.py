"""`electra-tf`: the command-line interface.

Sub-commands:
    quickstart       pretrain -> fine-tune -> evaluate a tiny ELECTRA on embedded IMDB reviews
    pretrain         pretrain on your corpus, with checkpoints, resume and TensorBoard logs
    finetune         fine-tune a pretrained discriminator (or a from-scratch Transformer) on a
                     text-classification task (IMDB, folder-per-class, CSV/TSV)
    evaluate         accuracy, precision, recall, F1 and confusion matrix on a split
    export, predict  a SavedModel with the tokenizer inside, and classifying texts with it
    import           Google's TF1 or a HuggingFace ELECTRA checkpoint
    train-tokenizer  learn a WordPiece vocabulary from a corpus
    summary          parameter counts of the generator and discriminator a config builds
    demo             pretrain on a synthetic corpus for a minute and show the losses fall

`parser.py` holds the options, `commands.py` one thin handler per sub-command; `main` (here)
turns every mistake a user can fix (missing file, empty corpus, config/vocabulary mismatch, ...)
into a one-line message and exit status 2; a NaN loss ends with status 3 and keeps the
checkpoints.
"""

from __future__ import annotations

import contextlib
import errno
import logging
import os
import re
import sys

os.environ.setdefault("KERAS_BACKEND", "tensorflow")
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

from electra_tf.cli.parser import build_parser  # noqa: E402
from electra_tf.native_logs import hidden_native_logs  # noqa: E402

__all__ = ["build_parser", "main"]


def _configure_logging() -> None:
    logging.basicConfig(level=logging.INFO, format="electra-tf: %(message)s")
    logging.getLogger("absl").setLevel(logging.WARNING)  # checkpoint sharding chatter
    # TensorFlow's own handler already prints its INFO lines ("Assets written to ..." on every
    # SavedModel save); through the root handler they appeared twice.
    logging.getLogger("tensorflow").setLevel(logging.WARNING)


# What the operating system says when a write fails for lack of room (errno ENOSPC, EDQUOT,
# EFBIG): in an OSError, or inside the message of a TensorFlow op (SaveV2, a SavedModel write),
# which TensorFlow files under RESOURCE_EXHAUSTED or OUT_OF_RANGE.
_DISK_FULL = ("No space left on device", "Disk quota exceeded")
_FILE_TOO_LARGE = ("File too large",)


def _describe_write_failure(err: BaseException, args) -> str | None:
    """One line for a write that found no room, naming the folder; None for anything else."""
    if isinstance(err, OSError) and err.errno in (errno.ENOSPC, errno.EDQUOT, errno.EFBIG):
        text = os.strerror(err.errno)
    else:
        tf = sys.modules.get("tensorflow")
        if tf is None or not isinstance(err, tf.errors.OpError):
            return None
        text = err.message
    reason = next((r for r in _DISK_FULL + _FILE_TOO_LARGE if r in text), None)
    if reason is None:
        return None
    folder = getattr(args, "out_dir", None) or getattr(args, "out", None)
    if not folder:
        path = getattr(err, "filename", None) or next(
            (word for word in re.split(r"[\s;,'\"]+", text) if word.startswith(os.sep)), None)
        folder = os.path.dirname(path) if path else "the output folder"
    if reason in _FILE_TOO_LARGE:
        return (f"a file written into {folder} passed the file-size limit ({reason}: see "
                "`ulimit -f`). Raise the limit and re-run the same command; what was saved "
                "before is kept.")
    return (f"the disk holding {folder} is full ({reason}). Free some space (or choose a folder "
            "on another disk) and re-run the same command; what was saved before is kept.")


def _describe_environment_error(err: BaseException, args=None) -> str | None:
    """One line for an error of the machine rather than of the library (which file, what
    happened, what to check); None for anything else."""
    written = _describe_write_failure(err, args)
    if written:
        return written
    tf = sys.modules.get("tensorflow")
    if isinstance(err, MemoryError) or (
            tf is not None and isinstance(err, tf.errors.ResourceExhaustedError)):
        if hasattr(args, "batch_size"):
            return ("out of memory; lower --batch-size (or the sequence length) and re-run; "
                    "checkpoints written so far are kept.")
        return "out of memory; close other programs (or use a larger machine) and re-run."
    if tf is not None and isinstance(err, (tf.errors.NotFoundError,
                                           tf.errors.PermissionDeniedError)):
        return f"{err.message.splitlines()[0]}. Check the path and its permissions."
    if not isinstance(err, OSError):
        return None
    detail = err.strerror or str(err) or type(err).__name__
    where = f" ({err.filename})" if err.filename else ""
    return (f"{detail}{where}. Check the path, its permissions and the free disk space; "
            "checkpoints written so far are kept.")


def main(argv=None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    if not args.command:
        parser.print_help()
        return 0
    _configure_logging()
    from electra_tf.errors import ElectraError, TrainingError

    # --verbose keeps the filter off for this call only (no environment variable left behind).
    quiet = contextlib.nullcontext() if args.verbose else hidden_native_logs()
    try:
        with quiet:
            from electra_tf.cli.commands import COMMANDS

            return COMMANDS[args.command](args)
    except TrainingError as err:
        print(f"electra-tf {args.command}: {err}", file=sys.stderr)
        return 3
    except ElectraError as err:
        print(f"electra-tf {args.command}: {err}", file=sys.stderr)
        return 2
    except Exception as err:  # a path, permission, full-disk or memory problem is the user's
        message = _describe_environment_error(err, args)
        if message is None:
            raise  # a bug: the traceback is what a report needs
        print(f"electra-tf {args.command}: {message}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print(f"\nelectra-tf {args.command}: interrupted. Checkpoints written so far are kept; "
              "re-run the same command to resume.", file=sys.stderr)
        return 130
