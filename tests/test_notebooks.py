"""The tutorials in `notebooks/` run from top to bottom (CI executes every one of them).

Each notebook's first code cell is tagged `parameters` and holds the reader's settings. Here a
cell with tiny settings is inserted after it (papermill's convention), and each notebook runs in
a fresh kernel. 02, 03 and 04 run in that order in one directory, as a reader who goes through
the tutorials in order does: 03 fine-tunes what 02 pretrained and 04 serves what 03 fine-tuned.
01 starts in an empty directory. The fallbacks of 03 and 04 (pretraining or fine-tuning on the
embedded sample when the previous notebook's output is missing) call the same library functions
as `electra-tf quickstart`, tested in test_cli.py. The notebooks assert their own claims
(layer == hand computation, losses fall, SavedModel == Keras, no gradient from the discriminator
into the generator), so running them is a real test.
"""

import ast
import glob
import os
import re

import pytest

from conftest import REPO_ROOT

nbformat = pytest.importorskip("nbformat")
nbclient = pytest.importorskip("nbclient")

NOTEBOOK_DIR = os.path.join(REPO_ROOT, "notebooks")
NOTEBOOKS = sorted(os.path.basename(p) for p in glob.glob(os.path.join(NOTEBOOK_DIR, "*.ipynb")))

# Settings that make each notebook take about a minute on 2 CPU cores.
CI_PARAMETERS = {
    "01_attention_and_positions.ipynb": {},
    "02_pretrain_electra.ipynb": {"steps": 40, "epochs": 4},
    "03_imdb_sentiment.ipynb": {"fallback_pretrain_steps": 30, "epochs": 1},
    "04_export_and_serve.ipynb": {"fallback_pretrain_steps": 30, "fallback_epochs": 1},
}


def _read(name):
    return nbformat.read(os.path.join(NOTEBOOK_DIR, name), as_version=4)


def _parameters_cell(notebook):
    code_cells = [cell for cell in notebook.cells if cell.cell_type == "code"]
    return code_cells[0] if code_cells else None


def _assigned_names(source):
    return {target.id for node in ast.parse(source).body if isinstance(node, ast.Assign)
            for target in node.targets if isinstance(target, ast.Name)}


def test_every_notebook_is_listed_and_opens_with_a_parameters_cell():
    assert NOTEBOOKS == sorted(CI_PARAMETERS), "add new notebooks to CI_PARAMETERS"
    assert set(RUN_AFTER) | set(RUN_AFTER.values()) <= set(NOTEBOOKS)
    for name in NOTEBOOKS:
        cell = _parameters_cell(_read(name))
        assert cell is not None and "parameters" in cell.metadata.get("tags", []), name
        unknown = set(CI_PARAMETERS[name]) - _assigned_names(cell.source)
        assert not unknown, f"{name}: CI sets {unknown}, which its parameters cell does not define"
        nbformat.validate(_read(name))


def _execute(name, directory):
    """Runs notebook `name` with CI's settings in a fresh kernel whose working directory is
    `directory`."""
    notebook = _read(name)
    overrides = "".join(f"{key} = {value!r}\n" for key, value in CI_PARAMETERS[name].items())
    if overrides:
        injected = nbformat.v4.new_code_cell("# Parameters set by CI\n" + overrides)
        injected.metadata["tags"] = ["injected-parameters"]
        position = notebook.cells.index(_parameters_cell(notebook)) + 1
        notebook.cells.insert(position, injected)
    client = nbclient.NotebookClient(notebook, timeout=600, kernel_name="python3",
                                     resources={"metadata": {"path": str(directory)}})
    try:
        client.execute()
    except nbclient.exceptions.CellExecutionError as err:
        # Keep the executed notebook for a human to open; the error names the failing cell.
        nbformat.write(notebook, str(directory / name))
        raise AssertionError(f"{name} failed; executed copy in {directory / name}\n{err}") from None
    return "".join(output.get("text", "") for cell in notebook.cells
                   for output in cell.get("outputs", []))


# Each of these runs after the other in its directory (see the module docstring).
RUN_AFTER = {"03_imdb_sentiment.ipynb": "02_pretrain_electra.ipynb",
             "04_export_and_serve.ipynb": "03_imdb_sentiment.ipynb"}


def _chain(name):
    """`name` and the notebooks that run before it, in order."""
    chain = [name]
    while chain[0] in RUN_AFTER:
        chain.insert(0, RUN_AFTER[chain[0]])
    return chain


# Measured seconds of each case on 2 workers (04 includes running 02 and 03 first): the order of
# the run.
SECONDS = {"01_attention_and_positions.ipynb": 15, "04_export_and_serve.ipynb": 240}


@pytest.mark.parametrize("name", [pytest.param(n, marks=pytest.mark.slow(seconds=SECONDS.get(n, 60)))
                                  for n in NOTEBOOKS if n not in RUN_AFTER.values()])
def test_notebook_runs(name, tmp_path):
    chain = _chain(name)
    for before, notebook in zip([None] + chain, chain):
        printed = _execute(notebook, tmp_path)
        if before is not None:
            assert "no pretrained model" not in printed and "no classifier" not in printed, \
                f"{notebook} did not find what {before} wrote"


# ------------------------------------------------------------------ the committed outputs


NATIVE_LOG = re.compile(r"^(?:[IWEF]\d{4} [\d:.]+ +\d+ [\w./-]+:\d+\] |WARNING: All log messages "
                        r"before absl)", re.MULTILINE)
# A path from the file system's root (/home/..., /work/..., /tmp/...), not part of a URL.
ABSOLUTE_PATH = re.compile(r"(?<![\w.:/~-])/(?:[\w.-]+/)+[\w.{}-]*")
# Figures a reader is promised (docs/notebooks.md, issue 27): notebook -> least number of images.
FIGURES = {"01_attention_and_positions.ipynb": 3, "02_pretrain_electra.ipynb": 1,
           "03_imdb_sentiment.ipynb": 2}


def _output_texts(notebook):
    for cell in notebook.cells:
        for output in cell.get("outputs", []):
            if "text" in output:
                yield output["text"]
            for kind, value in output.get("data", {}).items():
                if kind.startswith("text/"):
                    yield value if isinstance(value, str) else "".join(value)


@pytest.mark.parametrize("name", NOTEBOOKS)
def test_committed_outputs_are_what_a_reader_should_see(name):
    """As read on GitHub: no TensorFlow C++ log lines, no path of the machine that ran it, the
    promised figures as images. (tools/execute_notebooks.py writes these outputs.)"""
    notebook = _read(name)
    texts = list(_output_texts(notebook))
    assert texts, f"{name} has no committed outputs: run tools/execute_notebooks.py"
    logs = [m.group(0) for text in texts for m in NATIVE_LOG.finditer(text)]
    assert not logs, f"{name}: TensorFlow log lines in the outputs: {logs[:3]}"
    paths = [m.group(0) for text in texts for m in ABSOLUTE_PATH.finditer(text)]
    assert not paths, f"{name}: absolute paths in the outputs: {paths[:3]}"
    images = sum("image/png" in output.get("data", {}) for cell in notebook.cells
                 for output in cell.get("outputs", []))
    assert images >= FIGURES.get(name, 0), f"{name}: {images} figure(s), expected {FIGURES[name]}"


def test_committed_notebooks_stay_small():
    total = sum(os.path.getsize(os.path.join(NOTEBOOK_DIR, name)) for name in NOTEBOOKS)
    assert total < 1_000_000, f"notebooks/ holds {total:,} bytes of notebooks"
