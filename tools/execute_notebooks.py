"""Executes the tutorials in `notebooks/` with their own settings and commits-ready outputs.

    .venv/bin/python tools/execute_notebooks.py [NAME ...] [--keep-runs]

The notebooks run in order (02 writes what 03 and 04 read), in `notebooks/` as a reader's
Jupyter would, each in a fresh kernel, and are written back in place. `notebooks/runs/` is
removed first so that nothing of an earlier run leaks into the outputs (`--keep-runs` keeps it).
tests/test_notebooks.py checks the result: no TensorFlow log lines, no absolute paths, the
promised figures.
"""

from __future__ import annotations

import argparse
import glob
import os
import shutil
import sys
import time

import nbclient
import nbformat

NOTEBOOK_DIR = os.path.join(os.path.dirname(os.path.dirname(os.path.abspath(__file__))),
                            "notebooks")


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("names", nargs="*", help="notebooks to run (default: all, in order)")
    parser.add_argument("--keep-runs", action="store_true",
                        help="keep notebooks/runs/ (outputs of an earlier run are reused)")
    args = parser.parse_args()
    names = args.names or sorted(os.path.basename(p)
                                 for p in glob.glob(os.path.join(NOTEBOOK_DIR, "*.ipynb")))
    if not args.keep_runs:
        shutil.rmtree(os.path.join(NOTEBOOK_DIR, "runs"), ignore_errors=True)
    for name in names:
        path = os.path.join(NOTEBOOK_DIR, name)
        notebook = nbformat.read(path, as_version=4)
        began = time.time()
        client = nbclient.NotebookClient(notebook, timeout=3600, kernel_name="python3",
                                         resources={"metadata": {"path": NOTEBOOK_DIR}})
        try:
            client.execute()
        except nbclient.exceptions.CellExecutionError as err:
            print(f"{name} failed (not written):\n{err}", file=sys.stderr)
            return 1
        nbformat.write(notebook, path)
        print(f"{name}: {time.time() - began:.0f} s, {os.path.getsize(path):,} bytes")
    return 0


if __name__ == "__main__":
    sys.exit(main())
