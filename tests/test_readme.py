"""The README's commands and code are real: every `electra-tf ...` command in a bash block parses
with the CLI's own parser, every Python block compiles and names only things electra_tf has, and
CI runs exactly the README's test command."""

import ast
import os
import re
import shlex

import pytest

import electra_tf
from conftest import REPO_ROOT
from electra_tf.cli import _build_parser

with open(os.path.join(REPO_ROOT, "README.md"), encoding="utf-8") as f:
    README = f.read()
BLOCKS = re.findall(r"```(\w*)\n(.*?)```", README, flags=re.S)


def _shell_commands():
    for language, body in BLOCKS:
        if language != "bash":
            continue
        for line in body.replace("\\\n", " ").splitlines():
            if "electra-tf " in line:
                command = line[line.index("electra-tf "):]
                yield shlex.split(command, comments=True)


SHELL_COMMANDS = list(_shell_commands())
PYTHON_BLOCKS = [body for language, body in BLOCKS if language == "python"]


def test_readme_has_commands_and_code_to_check():
    assert len(SHELL_COMMANDS) >= 10 and len(PYTHON_BLOCKS) >= 4


@pytest.mark.parametrize("argv", SHELL_COMMANDS, ids=lambda argv: " ".join(argv[:3]))
def test_readme_command_parses(argv):
    parser = _build_parser()
    try:
        args = parser.parse_args(argv[1:])
    except SystemExit:
        pytest.fail(f"README command does not parse: {' '.join(argv)}")
    assert args.command == argv[1]


@pytest.mark.parametrize("index", range(len(PYTHON_BLOCKS)))
def test_readme_python_compiles_and_uses_real_names(index):
    source = PYTHON_BLOCKS[index]
    tree = ast.parse(source)
    for node in ast.walk(tree):
        if isinstance(node, ast.Attribute) and isinstance(node.value, ast.Name) \
                and node.value.id == "et":
            assert hasattr(electra_tf, node.attr), f"README uses et.{node.attr}, which is missing"
        if isinstance(node, ast.ImportFrom) and node.module and node.module.startswith("electra_tf"):
            module = __import__(node.module, fromlist=[a.name for a in node.names])
            for alias in node.names:
                assert hasattr(module, alias.name), f"README imports {node.module}.{alias.name}"


def test_ci_runs_the_readme_test_command():
    with open(os.path.join(REPO_ROOT, ".ci", "run"), encoding="utf-8") as f:
        ci_command = f.read().strip().splitlines()[-1]
    assert f"```bash\n{ci_command}\n```" in README
