"""Which chapter uses what, computed from the chapters' own code (chapter 1's task table).

A cross-reference kept by hand ("used in chapters 3 and 4") goes stale as soon as
a chapter changes. This module reads it off the notebooks instead: it parses each
chapter's code cells, follows every name the chapter takes from ``seqlab`` into the
package's source (a function, the functions and constants it refers to, the
modules it imports from, and so on), and reports which of the names asked about
it reaches. A chapter that calls ``recall.train_one`` uses ``AssociativeRecall``
if ``train_one`` (or anything it calls inside ``seqlab``) refers to it.

    tasks_used_in(["CopyTask", "DelayedRecall"])   # {"CopyTask": ["13_state_space_models"], ...}

The analysis is static (``ast``): it sees names, not values, so a name that is
only reached through ``getattr`` or a string is not found.
"""
from __future__ import annotations

import ast
import importlib.util
import json
from functools import lru_cache
from pathlib import Path
from typing import Iterable

__all__ = ["chapters_dir", "reached", "tasks_used_in"]

Symbol = tuple  # (module name, top-level name), or (module name, None) for a module itself


def chapters_dir() -> Path | None:
    """The repository's ``chapters/`` folder (next to ``code/``), or None where only the package is installed (chapter 1)."""
    here = Path(__file__).resolve().parents[2] / "chapters"
    if here.is_dir():
        return here
    cwd = Path.cwd()
    for candidate in (cwd, cwd.parent / "chapters", cwd / "chapters"):
        if candidate.is_dir() and any(candidate.glob("01_*.ipynb")):
            return candidate
    return None


def _is_module(name: str) -> bool:
    try:
        return importlib.util.find_spec(name) is not None
    except (ImportError, ValueError):
        return False


@lru_cache(maxsize=None)
def _module(name: str) -> tuple[dict, dict]:
    """(top-level definitions: name -> node, imports: local name -> Symbol) of one seqlab module."""
    spec = importlib.util.find_spec(name)
    if spec is None or not spec.origin or not spec.origin.endswith(".py"):
        return {}, {}
    tree = ast.parse(Path(spec.origin).read_text(encoding="utf-8"))
    package = name if spec.submodule_search_locations else name.rpartition(".")[0]
    defs, imports = {}, {}
    for node in tree.body:
        if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef, ast.ClassDef)):
            defs[node.name] = node
        elif isinstance(node, (ast.Assign, ast.AnnAssign)):
            targets = node.targets if isinstance(node, ast.Assign) else [node.target]
            for t in targets:
                for n in ast.walk(t):
                    if isinstance(n, ast.Name):
                        defs[n.id] = node
        imports.update(_imports(node, package))
    return defs, imports


def _imports(node, package: str) -> dict:
    """local name -> Symbol for the seqlab imports of one statement (relative ones resolved against package)."""
    out = {}
    for n in ast.walk(node) if isinstance(node, (ast.If, ast.Try)) else [node]:
        if isinstance(n, ast.ImportFrom):
            base = n.module or ""
            if n.level:
                parts = package.split(".")
                parts = parts[: len(parts) - (n.level - 1)] if n.level > 1 else parts
                base = ".".join(parts + ([base] if base else []))
            if not base.startswith("seqlab"):
                continue
            for a in n.names:
                full = f"{base}.{a.name}"
                out[a.asname or a.name] = (full, None) if _is_module(full) else (base, a.name)
        elif isinstance(n, ast.Import):
            for a in n.names:
                if a.name.startswith("seqlab"):
                    out[a.asname or a.name.split(".")[0]] = (a.name if a.asname else "seqlab", None)
    return out


def _chain(node) -> list[str] | None:
    """``a.b.c`` -> ["a", "b", "c"]; None for anything else."""
    parts = []
    while isinstance(node, ast.Attribute):
        parts.append(node.attr)
        node = node.value
    if isinstance(node, ast.Name):
        return [node.id] + parts[::-1]
    return None


def _refs(tree, scope_imports: dict, module: str | None, defs: dict) -> set:
    """The Symbols a piece of code refers to: imported seqlab names, attribute chains on seqlab modules, local definitions."""
    out = set()
    for n in ast.walk(tree):
        chain = _chain(n) if isinstance(n, (ast.Attribute, ast.Name)) else None
        if not chain:
            continue
        head = chain[0]
        if head in scope_imports:
            sym = scope_imports[head]
            rest = chain[1:]
            while sym[1] is None and rest:               # a module: walk into it
                full = f"{sym[0]}.{rest[0]}"
                sym = (full, None) if _is_module(full) else (sym[0], rest[0])
                rest = rest[1:]
            out.add(sym)
        elif module is not None and head in defs:
            out.add((module, head))
    return out


def reached(code: str | Iterable[str]) -> set:
    """Every (module, name) of seqlab that this code reaches, directly or through the package's own code (chapter 1)."""
    cells = [code] if isinstance(code, str) else list(code)
    imports, start = {}, set()
    trees = []
    for src in cells:
        lines = [ln for ln in src.splitlines() if not ln.lstrip().startswith(("%", "!"))]
        try:
            tree = ast.parse("\n".join(lines))
        except SyntaxError:
            continue
        trees.append(tree)
        for node in ast.walk(tree):
            imports.update(_imports(node, "seqlab") if isinstance(node, (ast.Import, ast.ImportFrom)) else {})
    for tree in trees:
        start |= _refs(tree, imports, None, {})
    seen, todo = set(), list(start)
    while todo:
        sym = todo.pop()
        if sym in seen:
            continue
        seen.add(sym)
        module, name = sym
        if name is None:
            continue
        todo += [s for s in _symbol_refs(module, name) if s not in seen]
    return seen


@lru_cache(maxsize=None)
def _symbol_refs(module: str, name: str) -> frozenset:
    """What one top-level name of a seqlab module refers to (a re-export: where it comes from)."""
    defs, mod_imports = _module(module)
    if name in defs:
        return frozenset(_refs(defs[name], mod_imports, module, defs))
    if name in mod_imports:
        return frozenset([mod_imports[name]])
    return frozenset()


def _code_cells(path: Path) -> list[str]:
    nb = json.loads(Path(path).read_text(encoding="utf-8"))
    return ["".join(c["source"]) if isinstance(c["source"], list) else c["source"]
            for c in nb.get("cells", []) if c.get("cell_type") == "code"]


def tasks_used_in(names: Iterable[str], folder: Path | None = None, exclude: Iterable[str] = ()) -> dict[str, list[str]]:
    """For each name (a class of ``seqlab.data``, say), the chapters whose code reaches it, in chapter order (chapter 1).

    ``folder`` is the chapters' folder (default: ``chapters_dir()``); ``exclude`` lists notebook stems to skip
    (a chapter that only shows the tasks). Raises FileNotFoundError when there is no chapters folder.
    """
    names = list(names)
    folder = Path(folder) if folder is not None else chapters_dir()
    if folder is None or not folder.is_dir():
        raise FileNotFoundError("no chapters/ folder beside the package: the table can only be computed in the repository")
    out = {n: [] for n in names}
    skip = set(exclude)
    for path in sorted(folder.glob("*.ipynb")):
        if path.stem in skip:
            continue
        found = {name for _, name in reached(_code_cells(path))}
        for n in names:
            if n in found:
                out[n].append(path.stem)
    return out
