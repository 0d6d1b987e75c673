"""The README and docs/ are real: every `electra-tf ...` command in a bash block parses with the
CLI's own parser, every Python block compiles and names only things electra_tf has, every
relative link points to a file (and heading) that exists, the README stays a short front door
with a code map of real paths, and CI runs exactly the README's test command."""

import ast
import glob
import json
import os
import re
import shlex
import subprocess

import pytest

import electra_tf
from conftest import REPO_ROOT
from electra_tf.cli import build_parser

README_LIMIT = 10_000  # characters: the front door; details belong in docs/


def _read(relative):
    with open(os.path.join(REPO_ROOT, relative), encoding="utf-8") as f:
        return f.read()


README = _read("README.md")
DOC_PAGES = sorted(os.path.relpath(path, REPO_ROOT)
                   for path in glob.glob(os.path.join(REPO_ROOT, "docs", "*.md")))
CHECKED_FILES = ["README.md", *DOC_PAGES]  # commands and code are checked in these
LINKING_FILES = [*CHECKED_FILES, "CONTRIBUTING.md", "benchmarks/README.md"]
NOTEBOOKS = sorted(os.path.relpath(path, REPO_ROOT)
                   for path in glob.glob(os.path.join(REPO_ROOT, "notebooks", "*.ipynb")))

FENCED = re.compile(r"```(\w*)\n(.*?)```", flags=re.S)
BLOCKS = [(name, language, body) for name in CHECKED_FILES
          for language, body in FENCED.findall(_read(name))]


def _shell_commands():
    for name, language, body in BLOCKS:
        if language != "bash":
            continue
        for line in body.replace("\\\n", " ").splitlines():
            if "electra-tf " in line:
                command = line[line.index("electra-tf "):]
                yield name, shlex.split(command, comments=True)


SHELL_COMMANDS = list(_shell_commands())
PYTHON_BLOCKS = [(name, body) for name, language, body in BLOCKS if language == "python"]


def test_docs_have_commands_and_code_to_check():
    assert len(DOC_PAGES) >= 10, f"docs/ has only {DOC_PAGES}"
    # Counted over README + docs together: moving an example between them keeps the count.
    assert len(SHELL_COMMANDS) >= 32 and len(PYTHON_BLOCKS) >= 4, \
        (len(SHELL_COMMANDS), len(PYTHON_BLOCKS))
    in_readme = [argv[1] for name, argv in SHELL_COMMANDS if name == "README.md"]
    assert {"quickstart", "pretrain", "finetune"} <= set(in_readme), in_readme


@pytest.mark.parametrize("name,argv", SHELL_COMMANDS,
                         ids=lambda value: value if isinstance(value, str)
                         else " ".join(value[:3]))
def test_documented_command_parses(name, argv):
    parser = build_parser()
    try:
        args = parser.parse_args(argv[1:])
    except SystemExit:
        pytest.fail(f"{name}: command does not parse: {' '.join(argv)}")
    assert args.command == argv[1]


@pytest.mark.parametrize("index", range(len(PYTHON_BLOCKS)),
                         ids=[f"{name}-{i}" for i, (name, _) in enumerate(PYTHON_BLOCKS)])
def test_documented_python_compiles_and_uses_real_names(index):
    name, source = PYTHON_BLOCKS[index]
    tree = ast.parse(source, filename=name)
    for node in ast.walk(tree):
        if isinstance(node, ast.Attribute) and isinstance(node.value, ast.Name) \
                and node.value.id == "et":
            assert hasattr(electra_tf, node.attr), f"{name} uses et.{node.attr}, which is missing"
        if isinstance(node, ast.ImportFrom) and node.module and node.module.startswith("electra_tf"):
            module = __import__(node.module, fromlist=[a.name for a in node.names])
            for alias in node.names:
                assert hasattr(module, alias.name), f"{name} imports {node.module}.{alias.name}"


def test_ci_runs_the_readme_test_command():
    with open(os.path.join(REPO_ROOT, ".ci", "run"), encoding="utf-8") as f:
        ci_command = f.read().strip().splitlines()[-1]
    assert f"```bash\n{ci_command}\n```" in README


# ----------------------------------------------------------------------------------- links

LINK = re.compile(r"!?\[[^\]]*\]\(([^)\s]+)\)")


def github_anchors(markdown: str) -> set:
    """The anchors GitHub gives the headings of `markdown`: lower case, punctuation dropped,
    spaces to hyphens, `-1`, `-2`, ... for repeats."""
    anchors, seen = set(), {}
    for heading in re.findall(r"^#{1,6}\s+(.+?)\s*#*$", FENCED.sub("", markdown), flags=re.M):
        slug = re.sub(r"[^\w\- ]", "", heading.lower()).replace(" ", "-")
        anchors.add(slug if slug not in seen else f"{slug}-{seen[slug]}")
        seen[slug] = seen.get(slug, 0) + 1
    return anchors


def _markdown_of(relative):
    """The Markdown of a file, or of a notebook's Markdown cells; code is left out."""
    if relative.endswith(".ipynb"):
        cells = json.loads(_read(relative))["cells"]
        text = "\n".join("".join(c["source"]) for c in cells if c["cell_type"] == "markdown")
    else:
        text = _read(relative)
    return FENCED.sub("", text)


def _relative_links():
    for relative in [*LINKING_FILES, *NOTEBOOKS]:
        for target in LINK.findall(_markdown_of(relative)):
            if re.match(r"[a-zA-Z][a-zA-Z0-9+.-]*:", target):  # https:, mailto:
                continue
            yield relative, target


RELATIVE_LINKS = list(_relative_links())


def test_there_are_links_to_check():
    assert len(RELATIVE_LINKS) >= 100, len(RELATIVE_LINKS)
    assert any(target.startswith("docs/") for name, target in RELATIVE_LINKS
               if name == "README.md")


@pytest.mark.parametrize("name,target", RELATIVE_LINKS,
                         ids=lambda value: value)
def test_relative_link_resolves(name, target):
    path, _, anchor = target.partition("#")
    resolved = os.path.normpath(os.path.join(REPO_ROOT, os.path.dirname(name), path))
    assert resolved == REPO_ROOT or resolved.startswith(REPO_ROOT + os.sep), \
        f"{name}: {target} leaves the repository (a fresh clone does not have it)"
    assert os.path.exists(resolved), f"{name}: {target} points to a missing file"
    if anchor and resolved.endswith(".md"):
        with open(resolved, encoding="utf-8") as f:
            anchors = github_anchors(f.read())
        assert anchor in anchors, f"{name}: {target}: no heading #{anchor} in {path or name}"


def test_github_anchors_follow_githubs_rules():
    text = "# Set-up: two commands\n## Where the step's speed comes from\n## Notes\n## Notes\n"
    assert github_anchors(text) == {"set-up-two-commands", "where-the-steps-speed-comes-from",
                                    "notes", "notes-1"}


def test_every_docs_page_is_in_the_index():
    index = _read(os.path.join("docs", "README.md"))
    linked = {os.path.normpath(os.path.join("docs", target.partition("#")[0]))
              for target in LINK.findall(index)}
    missing = [page for page in DOC_PAGES
               if page != os.path.join("docs", "README.md") and page not in linked]
    assert not missing, f"docs/README.md does not list {missing}"


# --------------------------------------------------------------------------- the front door

def _code_map_paths():
    section = re.search(r"^## Code map\n(.*?)(?=^## |\Z)", README, flags=re.M | re.S)
    assert section, "README.md has no '## Code map' section"
    return re.findall(r"^\| `([^`]+)` \|", section.group(1), flags=re.M)


def test_readme_is_a_short_front_door():
    assert len(README) < README_LIMIT, \
        f"README.md has {len(README)} characters; move details to docs/ (limit {README_LIMIT})"


def test_readme_code_map_names_real_paths_and_covers_the_tree():
    paths = _code_map_paths()
    assert len(paths) >= 10, paths
    missing = [path for path in paths if not os.path.exists(os.path.join(REPO_ROOT, path))]
    assert not missing, f"the README's code map names paths that do not exist: {missing}"
    mapped = {path.rstrip("/") for path in paths}
    subpackages = sorted(
        f"electra_tf/{entry}" for entry in os.listdir(os.path.join(REPO_ROOT, "electra_tf"))
        if os.path.isfile(os.path.join(REPO_ROOT, "electra_tf", entry, "__init__.py")))
    assert subpackages and not set(subpackages) - mapped, \
        f"the code map does not say what {sorted(set(subpackages) - mapped)} hold"
    try:
        tracked = subprocess.run(["git", "ls-files"], cwd=REPO_ROOT, capture_output=True,
                                 text=True, check=True).stdout.split()
    except (OSError, subprocess.CalledProcessError):
        return  # not a git checkout (e.g. an unpacked sdist): the subpackages were checked
    folders = {path.split("/")[0] for path in tracked if "/" in path}
    unmapped = sorted(folder for folder in folders
                      if not any(p == folder or p.startswith(folder + "/") for p in mapped))
    assert not unmapped, f"the code map leaves out the top-level folders {unmapped}"
