"""Keeping TensorFlow's C++ log lines out of what a user reads.

TensorFlow's C++ runtime writes log records such as

    I0000 00:00:1796161959.426050   16672 port.cc:153] oneDNN custom operations are on. ...
    E0000 00:00:1796161968.502772   16672 cuda_platform.cc:52] failed call to cuInit: ...

straight to file descriptor 2, many of them before absl's logging is initialised, where
`TF_CPP_MIN_LOG_LEVEL` does not reach them. Python cannot intercept a write to a file descriptor,
so `hidden_native_logs()` points descriptor 2 at a pipe (a pseudo-terminal when stderr is a
terminal, so that `isatty()` and progress bars behave as before) and a thread copies every line
to the real stderr except those records. Python's own output to stderr (warnings, our errors,
tracebacks) passes through unchanged.

This module does not import TensorFlow: it must run before TensorFlow's import-time records.
Set `ELECTRA_TF_NATIVE_LOGS=show` (or pass `--verbose` to `electra-tf`) to see them.
"""

from __future__ import annotations

import atexit
import contextlib
import os
import re
import sys
import threading

# An absl/TSL record: severity + MMDD, time, thread id, file:line] message. Plus the two
# lines TensorFlow prints around them without that prefix.
NATIVE_LOG_LINE = re.compile(
    rb"^(?:[IWEF]\d{4} [\d:.]+ +\d+ [\w./-]+:\d+\] "
    rb"|WARNING: All log messages before absl::InitializeLog\(\) is called"
    rb"|To enable the following instructions: .* rebuild TensorFlow with the appropriate)")
# Beginnings that may grow into such a line: a partial line that cannot is passed on at once
# (a prompt or a progress bar redrawn with "\r" must not wait for a newline).
_PREFIXES = (b"WARNING: All log messages", b"To enable the following")
_SEVERITY = re.compile(rb"^[IWEF]\d{0,4}$|^[IWEF]\d{4} ")

ENV_SWITCH = "ELECTRA_TF_NATIVE_LOGS"


def native_logs_requested() -> bool:
    """True if the user asked to see TensorFlow's C++ log lines (`ELECTRA_TF_NATIVE_LOGS=show`)."""
    return os.environ.get(ENV_SWITCH, "").strip().lower() in ("show", "1", "true", "yes")


def _could_become_a_record(partial: bytes) -> bool:
    if _SEVERITY.match(partial):
        return True
    return any(p.startswith(partial[:len(p)]) for p in _PREFIXES)


class _StderrFilter:
    """Descriptor 2 -> pipe/pty -> this thread -> the original stderr, minus native records."""

    def __init__(self):
        self._original = os.dup(2)
        if os.isatty(self._original) and hasattr(os, "openpty"):  # not on Windows
            import tty

            self._read_end, write_end = os.openpty()
            tty.setraw(write_end)  # bytes pass unchanged ("\n" stays "\n")
        else:
            self._read_end, write_end = os.pipe()
        _flush_python_stderr()
        os.dup2(write_end, 2)
        os.close(write_end)
        self._thread = threading.Thread(target=self._copy, name="native-log-filter", daemon=True)
        self._thread.start()

    def _copy(self):
        pending = b""
        while True:
            try:
                chunk = os.read(self._read_end, 65536)
            except OSError:  # a pty whose other end is closed reads as EIO
                chunk = b""
            if not chunk:
                break
            pending += chunk
            *lines, pending = re.split(rb"(?<=[\n\r])", pending)
            kept = b"".join(line for line in lines if not NATIVE_LOG_LINE.match(line))
            if pending and not _could_become_a_record(pending):
                kept, pending = kept + pending, b""
            self._write(kept)
        if not NATIVE_LOG_LINE.match(pending):
            self._write(pending)
        os.close(self._read_end)
        os.close(self._original)

    def _write(self, data: bytes):
        while data:
            try:
                data = data[os.write(self._original, data):]
            except OSError:
                return  # the real stderr is gone: nothing left to show it on

    def stop(self, timeout: float = 5.0):
        """Points descriptor 2 back at the original stderr and waits for the thread to pass on
        what it still holds. A child process that outlives this keeps the pipe open; the thread
        then finishes when that child exits."""
        _flush_python_stderr()
        os.dup2(self._original, 2)  # closes our last handle on the pipe's write end
        self._thread.join(timeout)


def _flush_python_stderr():
    with contextlib.suppress(Exception):
        sys.stderr.flush()


_active: _StderrFilter | None = None
_lock = threading.Lock()


@contextlib.contextmanager
def hidden_native_logs():
    """Within this block, TensorFlow's C++ log lines do not reach stderr (everything else does).
    Nested or concurrent uses share one filter; it does nothing if the user asked to see the
    lines or descriptor 2 is not open."""
    global _active
    with _lock:
        owner = _active is None and not native_logs_requested() and _fd_open(2)
        if owner:
            _active = _StderrFilter()
    try:
        yield
    finally:
        if owner:
            with _lock:
                _active.stop()
                _active = None


def hide_native_logs() -> None:
    """Hides TensorFlow's C++ log lines from now until the process exits (for notebooks and
    scripts; `electra-tf` does this itself). Call it before importing TensorFlow to hide the
    import-time lines too."""
    global _active
    with _lock:
        if _active is not None or native_logs_requested() or not _fd_open(2):
            return
        _active = _StderrFilter()
        atexit.register(_active.stop)


def _fd_open(fd: int) -> bool:
    try:
        os.fstat(fd)
    except OSError:
        return False
    return True
