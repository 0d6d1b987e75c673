"""The tutorials in `notebooks/` run from top to bottom (CI executes every one of them).

Each notebook's first code cell is tagged `parameters` and holds the reader's settings. Here a
cell with tiny settings is inserted after it (papermill's convention), and the notebook runs in a
fresh kernel in its own empty directory, so it must also run without the others' outputs. The
notebooks assert their own claims (layer == hand computation, losses fall, SavedModel == Keras,
no gradient from the discriminator into the generator), so running them is a real test.
"""

import ast
import glob
import os

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
    for name in NOTEBOOKS:
        cell = _parameters_cell(_read(name))
        assert cell is not None and "parameters" in cell.metadata.get("tags", []), name
        unknown = set(CI_PARAMETERS[name]) - _assigned_names(cell.source)
        assert not unknown, f"{name}: CI sets {unknown}, which its parameters cell does not define"
        nbformat.validate(_read(name))


@pytest.mark.slow
@pytest.mark.parametrize("name", NOTEBOOKS)
def test_notebook_runs(name, tmp_path):
    notebook = _read(name)
    overrides = "".join(f"{key} = {value!r}\n" for key, value in CI_PARAMETERS[name].items())
    if overrides:
        injected = nbformat.v4.new_code_cell("# Parameters set by CI\n" + overrides)
        injected.metadata["tags"] = ["injected-parameters"]
        position = notebook.cells.index(_parameters_cell(notebook)) + 1
        notebook.cells.insert(position, injected)
    client = nbclient.NotebookClient(notebook, timeout=600, kernel_name="python3",
                                     resources={"metadata": {"path": str(tmp_path)}})
    try:
        client.execute()
    except nbclient.exceptions.CellExecutionError as err:
        # Keep the executed notebook for a human to open; the error names the failing cell.
        nbformat.write(notebook, str(tmp_path / name))
        raise AssertionError(f"{name} failed; executed copy in {tmp_path / name}\n{err}") from None
