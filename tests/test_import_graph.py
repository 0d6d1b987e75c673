"""The package's layering, read from the source: no import circle, and the building blocks
(`layers/`, `models/`, `data/`) import nothing of the packages that read files, run training or
talk to the user -- so that a model class can be read, tested and reused without them."""

from __future__ import annotations

import ast
import os

import pytest

PACKAGE_DIR = os.path.join(os.path.dirname(os.path.dirname(os.path.abspath(__file__))),
                           "electra_tf")

BUILDING_BLOCKS = ("electra_tf.layers", "electra_tf.models", "electra_tf.data")
# Loaders, run folders, training loops, serving and the command line.
HIGHER_LEVELS = ("electra_tf.pretrained", "electra_tf.runs", "electra_tf.convert",
                 "electra_tf.training", "electra_tf.export", "electra_tf.cli",
                 "electra_tf.quickstart", "electra_tf.demo")
# The sanctioned exceptions: `EncoderTask.from_pretrained` / `from_preset` and
# `ElectraPretrainer.from_pretrained`, KerasHub-style conveniences, delegate to the loaders with
# an import inside the method (so importing a model never imports a loader). The circles they
# close at call time are these delegations and no other.
DELEGATION = {("electra_tf.models.task", "electra_tf.pretrained.resolve"),
              ("electra_tf.models.task", "electra_tf.pretrained"),  # the package's __init__
              ("electra_tf.models.pretrainer", "electra_tf.pretrained.init_from"),
              ("electra_tf.models.pretrainer", "electra_tf.pretrained")}


def _modules() -> dict[str, str]:
    """{dotted module name: file path} of every module of the package."""
    modules = {}
    root = os.path.dirname(PACKAGE_DIR)
    for dirpath, _, files in os.walk(PACKAGE_DIR):
        for name in files:
            if name.endswith(".py"):
                path = os.path.join(dirpath, name)
                dotted = os.path.relpath(path, root)[:-3].replace(os.sep, ".")
                modules[dotted.removesuffix(".__init__")] = path
    return modules


MODULES = _modules()


def _module_of(name: str) -> str:
    """The package module that `import name` loads (`a.b.func` -> `a.b`)."""
    while name not in MODULES:
        name = name.rpartition(".")[0]
    return name


def _imports(path: str, module: str, inside_functions: bool) -> set[str]:
    """The package modules `module` imports: at import time, or also inside its functions."""
    found = set()

    def visit(node):
        for child in ast.iter_child_nodes(node):
            if isinstance(child, (ast.FunctionDef, ast.AsyncFunctionDef)) \
                    and not inside_functions:
                continue
            if isinstance(child, ast.Import):
                found.update(_module_of(a.name) for a in child.names
                             if a.name.startswith("electra_tf"))
            elif isinstance(child, ast.ImportFrom) and (child.module or "").startswith(
                    "electra_tf"):
                for alias in child.names:  # `from pkg import submodule` imports the submodule
                    full = f"{child.module}.{alias.name}"
                    found.add(full if full in MODULES else _module_of(child.module))
            else:
                visit(child)

    with open(path, encoding="utf-8") as f:
        visit(ast.parse(f.read()))
    # Importing `a.b.c` first runs the package `a.b`'s __init__ (unless `module` is inside it,
    # when it is already being imported): a circle through a package's __init__ is a circle.
    for target in list(found):
        parts = target.split(".")
        found.update(package for package in (".".join(parts[:i]) for i in range(2, len(parts)))
                     if not (module + ".").startswith(package + "."))
    found.discard(module)
    return found


def _graph(inside_functions: bool) -> dict[str, set[str]]:
    return {m: _imports(p, m, inside_functions) for m, p in MODULES.items()}


def _circles(graph: dict[str, set[str]]) -> list[list[str]]:
    """Every back edge found by a depth-first search, as the path it closes."""
    state, circles = {}, []

    def walk(module, stack):
        state[module] = "open"
        stack.append(module)
        for target in sorted(graph.get(module, ())):
            if state.get(target) == "open":
                circles.append(stack[stack.index(target):] + [target])
            elif target not in state:
                walk(target, stack)
        stack.pop()
        state[module] = "done"

    for module in sorted(graph):
        if module not in state:
            walk(module, [])
    return circles


def test_the_package_is_read_whole():
    # A test that found no modules would pass every check below.
    assert {"electra_tf.models.classifier", "electra_tf.pretrained.resolve",
            "electra_tf.runs.layouts", "electra_tf.config.base", "electra_tf.layers.encoder"} \
        <= set(MODULES)
    assert "electra_tf.pretrained.resolve" in _graph(True)["electra_tf.models.task"]


def test_importing_any_module_follows_no_circle():
    assert _circles(_graph(inside_functions=False)) == []


def test_the_only_circle_at_call_time_is_the_from_pretrained_delegation():
    for circle in _circles(_graph(inside_functions=True)):
        edges = set(zip(circle, circle[1:]))
        assert edges & DELEGATION, " -> ".join(circle)


@pytest.mark.parametrize("package", BUILDING_BLOCKS)
def test_building_blocks_import_no_loader_run_or_cli_code(package):
    offending = [f"{module} -> {target}"
                 for module, targets in _graph(inside_functions=True).items()
                 if module == package or module.startswith(package + ".")
                 for target in sorted(targets)
                 if target.startswith(HIGHER_LEVELS) and (module, target) not in DELEGATION]
    assert offending == []


def test_the_rules_catch_what_they_forbid(tmp_path):
    # The checker itself: a building block importing a loader, and a circle, are both seen.
    path = tmp_path / "bad.py"
    path.write_text("from electra_tf.pretrained.resolve import resolve\n"
                    "def f():\n    import electra_tf.runs.layouts\n")
    assert _imports(str(path), "electra_tf.layers.bad", inside_functions=False) == {
        "electra_tf.pretrained.resolve", "electra_tf.pretrained"}
    assert _imports(str(path), "electra_tf.layers.bad", inside_functions=True) == {
        "electra_tf.pretrained.resolve", "electra_tf.pretrained", "electra_tf.runs.layouts",
        "electra_tf.runs"}
    # Within its own package, a module does not re-enter the package's __init__.
    assert _imports(str(path), "electra_tf.pretrained.other", inside_functions=False) == {
        "electra_tf.pretrained.resolve"}
    assert _circles({"a": {"b"}, "b": {"c"}, "c": {"a"}}) == [["a", "b", "c", "a"]]
