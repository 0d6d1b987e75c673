"""TensorFlow's C++ log lines stay out of what a user reads (electra_tf/native_logs.py).

The filter works on file descriptor 2, which pytest captures, so each case runs in a child
process. The unit cases load the module from its file: it must not need TensorFlow.
"""

import os
import re
import subprocess
import sys

from conftest import REPO_ROOT

MODULE = os.path.join(REPO_ROOT, "electra_tf", "native_logs.py")

WRITER = r"""
import importlib.util, os, sys
spec = importlib.util.spec_from_file_location("native_logs", sys.argv[1])
native_logs = importlib.util.module_from_spec(spec)
spec.loader.exec_module(native_logs)
os.write(2, b"before\n")
with native_logs.hidden_native_logs():
    os.write(2, b"I0000 00:00:1796161959.426050   16672 port.cc:153] oneDNN custom operations "
                b"are on. You may see slightly different numerical results.\n")
    os.write(2, b"kept: a line of our own\n")
    print("kept: a Python warning", file=sys.stderr, flush=True)
    os.write(2, b"E0000 00:00:1796161968.502772   16672 cuda_platform.cc:52] failed call to "
                b"cuInit: INTERNAL: CUDA error\nW0000 00:00:17 42 dataset.cc:1] cache\n")
    os.write(2, b"WARNING: All log messages before absl::InitializeLog() is called are "
                b"written to STDERR\n")
    os.write(2, b"E1201 22:10:01.000001 7 util.cc:131] oneDNN supports DT_INT64 only on")
    os.write(2, b" platforms with AVX-512.\n")
    os.write(2, b"step 1/3\rstep 2/3\r")  # a progress bar: no newline, passed on as it comes
    os.write(2, b"I0000 00:00:1 1 a.cc:1] unfinished record")
os.write(2, b"after\n")
"""


def _run(env=None):
    return subprocess.run([sys.executable, "-c", WRITER, MODULE], capture_output=True,
                          env=dict(os.environ, **(env or {})), timeout=60)


def test_native_records_are_dropped_and_everything_else_passes_in_order():
    result = _run({"ELECTRA_TF_NATIVE_LOGS": ""})
    assert result.returncode == 0, result.stderr
    assert result.stderr == (b"before\nkept: a line of our own\nkept: a Python warning\n"
                             b"step 1/3\rstep 2/3\rafter\n")


def test_asking_to_see_them_keeps_every_line():
    result = _run({"ELECTRA_TF_NATIVE_LOGS": "show"})
    assert result.returncode == 0, result.stderr
    assert b"port.cc:153] oneDNN" in result.stderr and b"dataset.cc:1]" in result.stderr
    assert b"absl::InitializeLog" in result.stderr and b"unfinished record" in result.stderr


def test_a_real_command_prints_no_native_records():
    """`electra-tf summary` imports TensorFlow and builds both models; on a CPU-only host
    TensorFlow's import alone prints five such records (oneDNN, CUDA stubs, cuInit)."""
    native = re.compile(rb"^[IWEF]\d{4} [\d:.]+ +\d+ [\w./-]+:\d+\] |absl::Init")
    env = dict(os.environ, PYTHONPATH=REPO_ROOT)
    env.pop("ELECTRA_TF_NATIVE_LOGS", None)
    env.pop("TF_CPP_MIN_LOG_LEVEL", None)  # as a user's shell has it
    result = subprocess.run([sys.executable, "-m", "electra_tf.cli", "summary", "--config",
                             "electra_tiny"], capture_output=True, env=env, timeout=300)
    assert result.returncode == 0, result.stderr[-3000:]
    assert b"discriminator" in result.stdout.lower()
    leaked = [line for line in result.stderr.splitlines() if native.search(line)]
    assert not leaked, leaked
