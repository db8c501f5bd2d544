"""The website's plumbing that needs no build: the Colab install cell, the API page's
coverage of seqlab, the Binder environment, and the build helpers in book/.

The built site itself is tested by ``code/site_tests`` (``make test-site``).
"""
from __future__ import annotations

import importlib.util
import json
import os
import pkgutil
import re
import subprocess
import sys
from pathlib import Path

import pytest

import seqlab

ROOT = Path(__file__).resolve().parents[2]
CHAPTERS = sorted((ROOT / "chapters").glob("[0-9][0-9]*_*.ipynb"))  # NN_name and sections NNb_name


def repository_url() -> str:
    text = (ROOT / "_config.yml").read_text(encoding="utf-8")
    block = re.search(r"^repository:\n((?:[ \t]+.*\n)+)", text, flags=re.M).group(1)
    return re.search(r"^\s+url:\s*(\S+)", block, flags=re.M).group(1).rstrip("/")


def load_module(path: Path):
    spec = importlib.util.spec_from_file_location(path.stem, path)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


# --- the Colab cell -------------------------------------------------------------


def colab_cell(path: Path) -> str:
    nb = json.loads(path.read_text(encoding="utf-8"))
    cell = next(c for c in nb["cells"] if c["cell_type"] == "code")
    return "".join(cell["source"]) if isinstance(cell["source"], list) else cell["source"]


class Shell:
    """Stands in for IPython's shell: records the magics and shell commands the cell runs."""

    def __init__(self, on_install=lambda: None):
        self.calls: list[tuple[str, str]] = []
        self.on_install = on_install

    def run_line_magic(self, name, line, *args, **kwargs):
        self.calls.append((name, line))
        self.on_install()

    def run_cell_magic(self, name, line, cell, *args, **kwargs):
        self.calls.append((name, line + "\n" + cell))
        self.on_install()

    def system(self, cmd, *args, **kwargs):
        self.calls.append(("!", cmd))
        self.on_install()

    getoutput = system


def run_cell(source: str, shell: Shell) -> dict:
    """Run a notebook cell's source as IPython would (magics included) against ``shell``."""
    from IPython.core.inputtransformer2 import TransformerManager

    python = TransformerManager().transform_cell(source)
    namespace = {"get_ipython": lambda: shell, "__name__": "__colab_cell__"}
    exec(compile(python, "<colab cell>", "exec"), namespace)
    return namespace


@pytest.mark.parametrize("path", CHAPTERS, ids=lambda p: p.name)
def test_colab_cell_is_a_no_op_where_seqlab_imports(path):
    shell = Shell()
    namespace = run_cell(colab_cell(path), shell)
    assert shell.calls == [], f"{path.name}: the first cell ran {shell.calls} although seqlab imports"
    assert namespace["seqlab"] is seqlab


@pytest.mark.parametrize("path", CHAPTERS, ids=lambda p: p.name)
def test_colab_cell_installs_seqlab_from_this_repository_where_it_is_missing(path, monkeypatch):
    real = sys.modules["seqlab"]
    monkeypatch.setitem(sys.modules, "seqlab", None)  # `import seqlab` now raises ImportError, as on Colab
    shell = Shell(on_install=lambda: sys.modules.__setitem__("seqlab", real))  # "pip" makes it importable
    namespace = run_cell(colab_cell(path), shell)
    assert namespace["seqlab"] is real
    assert len(shell.calls) == 1, shell.calls
    magic, line = shell.calls[0]
    assert magic == "pip", f"{path.name}: install with %pip (the kernel's own environment), not {magic!r}"
    requirement = re.fullmatch(r'install(?: --quiet| -q)* "?seqlab @ ([^"\s]+)"?', line)
    assert requirement, f"{path.name}: unexpected install line {line!r}"
    # forks change one URL: the cell must install from the repository of _config.yml
    assert requirement.group(1) == f"git+{repository_url()}#subdirectory=code", requirement.group(1)
    # never pin what Colab ships (DESIGN.md): the cell installs seqlab and nothing else
    assert not re.search(r"\b(torch|numpy|matplotlib)\s*==", line)


# --- the API page ---------------------------------------------------------------


def public_modules() -> list[str]:
    names = ["seqlab"] + [m.name for m in pkgutil.walk_packages(seqlab.__path__, "seqlab.")]
    return [n for n in names if not any(part.startswith("_") for part in n.split("."))]


def automodules() -> dict[str, str]:
    """``book/api.md``'s automodule directives: module name -> its option lines."""
    text = (ROOT / "book" / "api.md").read_text(encoding="utf-8")
    return {m.group(1): m.group(2) for m in re.finditer(r"^\.\. automodule:: (\S+)\n((?:   :.*\n)*)", text, flags=re.M)}


def test_api_page_documents_every_public_module():
    directives = automodules()
    missing = [m for m in public_modules() if m not in directives]
    assert not missing, f"add these modules to book/api.md: {missing}"
    for name, options in directives.items():
        module = importlib.import_module(name)
        if not hasattr(module, "__path__"):  # a module, not a package that re-exports
            assert ":members:" in options and ":undoc-members:" in options, f"{name}: list every member"


def test_api_page_is_in_the_table_of_contents():
    assert re.search(r"^\s*- file: book/api\s*$", (ROOT / "_toc.yml").read_text(encoding="utf-8"), flags=re.M)


def test_plain_text_docstring_blocks_become_literal_blocks():
    ext = load_module(ROOT / "book" / "_ext" / "plaintext_docstrings.py")
    code = ".. code-block:: text"
    # a glossary after a colon, with a line indented further
    assert ext.literal_blocks(["Glossary:", "", "    x   input", "        (B, T)", "", "Text."]) == [
        "Glossary:", "", code, "", "    x   input", "        (B, T)", "", "Text."]
    # already literal, doctest, and list items: untouched
    for lines in (["Example::", "", "    x = 1"], ["Example:", "", "    >>> 1", "    1"], ["- item", "", "    more"]):
        assert ext.literal_blocks(lines) == lines
    # one marker per block, also across blank lines inside the block
    out = ext.literal_blocks(["Equations:", "", "    a = b", "", "    c = d", "", "After."])
    assert out.count(code) == 1
    # a list right after a paragraph line gets the blank line reST needs
    assert ext.list_breaks(["Two choices:", "- one,", "  more", "- two"]) == ["Two choices:", "", "- one,", "  more", "- two"]
    assert ext.list_breaks(["Code::", "", "    x = 1", "    - y"]) == ["Code::", "", "    x = 1", "    - y"]
    # the glossaries of the real modules
    from sphinx.util.docstrings import prepare_docstring

    out = ext.literal_blocks(prepare_docstring(importlib.import_module("seqlab.models.lstm").__doc__))
    assert out.count(code) >= 2


def test_preformatted_docstring_blocks_show_no_inline_code_quotes():
    ext = load_module(ROOT / "book" / "_ext" / "plaintext_docstrings.py")
    out = ext.literal_blocks(["Glossary:", "", "    x        token ids; ``logits`` (B, T, V)", "    ``y``  next ids",
                              "    z        the rest", "", "See ``x``."])
    assert out[4:7] == ["    x        token ids; logits (B, T, V)", "    y      next ids", "    z        the rest"]
    assert out[-1] == "See ``x``."                                     # reST outside the block renders its quotes
    lit = ext.literal_blocks(["Glossary::", "", "    x   a ``HybridLM``", "", ">>> f(``y``)"])
    assert lit[2] == "    x   a HybridLM"                                # a "::" block is shown as written too


def test_exponent_notation_in_prose_reads_as_powers_of_ten():
    ext = load_module(ROOT / "book" / "_ext" / "sci_numbers.py")
    assert ext.power_of_ten("grew 6e+02 and 2e+06 times; 2.5e-05; -3.1e-10") == \
        "grew 6 × 10² and 2 × 10⁶ times; 2.5 × 10⁻⁵; -3.1 × 10⁻¹⁰"
    assert ext.power_of_ten("lr 1e-3, x1e+05, v2.0e+01b") == "lr 1e-3, x1e+05, v2.0e+01b"   # hand-written or inside a word
    assert ext.power_of_ten("far/near 0e+00") == "far/near 0"
    assert ext.power_of_ten("norm 1.4e+00, ratio 4e+00") == "norm 1.4, ratio 4"                  # exponent 0: the number


def test_each_script_loads_once():
    ext = load_module(ROOT / "book" / "_ext" / "dedupe_scripts.py")
    from sphinx.builders.html._assets import _JavaScript

    thebe = dict(body="const THEBE_JS_URL = 1")
    scripts = [_JavaScript(None, **thebe), _JavaScript("a.js"), _JavaScript("", **thebe), _JavaScript("a.js", defer="defer")]
    context = {"script_files": list(scripts)}
    ext._dedupe(None, "page", "page.html", context, None)
    assert context["script_files"] == [scripts[0], scripts[1], scripts[3]]


# --- Binder (repo2docker) ------------------------------------------------------------


def requirement_names(path: Path) -> dict[str, str]:
    out = {}
    for line in path.read_text(encoding="utf-8").splitlines():
        line = line.split("#", 1)[0].strip()
        if line and not line.startswith("-"):
            name = re.match(r"[A-Za-z0-9_.\-]+", line).group(0).lower().replace("_", "-")
            out[name] = line
    return out


def test_binder_follows_repo2docker_conventions():
    binder = ROOT / "binder"
    # only binder/ is read when it exists: it must install the package itself
    post = (binder / "postBuild").read_text(encoding="utf-8").splitlines()
    assert post[0].startswith("#!/bin/bash") or post[0].startswith("#!/usr/bin/env bash")
    assert "set -e" in [line.strip() for line in post[:5]], "postBuild must stop at the first error"
    assert any(re.search(r"pip install .*\./code\b", line) for line in post)
    assert os.access(binder / "postBuild", os.X_OK), "postBuild must be executable"
    # CPU torch from PyTorch's index, added to PyPI (not replacing it)
    requirements = (binder / "requirements.txt").read_text(encoding="utf-8")
    assert "--index-url" not in requirements.replace("--extra-index-url", "")
    assert re.search(r"^--extra-index-url https://download\.pytorch\.org/whl/cpu\s*$", requirements, flags=re.M)
    binder_reqs, main_reqs = requirement_names(binder / "requirements.txt"), requirement_names(ROOT / "requirements.txt")
    assert binder_reqs["torch"] == main_reqs["torch"], "Binder and the book pin the same torch"
    # everything seqlab needs (its own dependencies) and the widgets of the chapters
    pyproject = (ROOT / "code" / "pyproject.toml").read_text(encoding="utf-8")
    dependencies = re.findall(r'"([^"]+)"', re.search(r"^dependencies\s*=\s*\[(.*?)\]", pyproject, flags=re.M | re.S).group(1))
    for dep in dependencies + ["ipywidgets"]:
        name = re.match(r"[A-Za-z0-9_.\-]+", dep).group(0).lower()
        assert name in binder_reqs, f"binder/requirements.txt lacks {name}"
    # runtime.txt: python-X.Y, a version seqlab supports
    runtime = (binder / "runtime.txt").read_text(encoding="utf-8").strip()
    match = re.fullmatch(r"python-3\.(\d+)", runtime)
    assert match, f"runtime.txt must read python-3.X, not {runtime!r}"
    minimum = int(re.search(r'^requires-python\s*=\s*">=\s*3\.(\d+)', pyproject, flags=re.M).group(1))
    assert int(match.group(1)) >= minimum


# --- the widget scripts, vendored with npm ----------------------------------------------


def test_vendoring_without_npm_says_so_and_lets_the_build_go_on(tmp_path):
    out = tmp_path / "vendor"
    env = {**os.environ, "PATH": str(tmp_path / "no-npm-here")}
    run = subprocess.run([sys.executable, str(ROOT / "book" / "_vendor" / "vendor_js.py"), str(out)],
                         capture_output=True, text=True, env=env, timeout=60)
    assert run.returncode == 0
    assert "npm not found" in run.stderr and "static figures" in run.stderr
    assert out.is_dir()  # html_extra_path must exist for a -W build
    assert not (out / ".vendored").exists() and not (out / "_static" / "widgets" / "require.js").exists()


def test_vendored_fonts_go_beside_every_folder_of_pages():
    vendor = load_module(ROOT / "book" / "_vendor" / "vendor_js.py")
    assert {"book", "chapters"} <= set(vendor.page_folders())
    for name, version, integrity, _ in vendor.PACKAGES:
        assert re.fullmatch(r"\d+\.\d+\.\d+", version) and integrity.startswith("sha512-"), name
