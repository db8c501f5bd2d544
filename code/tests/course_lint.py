"""The course lint: does a chapter notebook follow the template of DESIGN.md?

``problems(nb)`` lists what a notebook lacks; an empty list means it passes.
"""
from __future__ import annotations

import json
import re
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
CHAPTER_NAME = re.compile(r"^\d\d_[a-z0-9_]+\.ipynb$")
EXERCISE = re.compile(r"```\{exercise\}[^\n]*\n:label: *([\w-]+)")
SOLUTION = re.compile(r"```\{solution(?:-start)?\} *([\w-]+)")


def load(path: Path) -> dict:
    return json.loads(Path(path).read_text(encoding="utf-8"))


def toc_files(root: Path = ROOT) -> list[str]:
    """The ``file:`` entries of ``_toc.yml`` (parsed as text, to need no YAML library)."""
    text = (root / "_toc.yml").read_text(encoding="utf-8")
    return re.findall(r"^\s*-?\s*file:\s*(\S+)\s*$", text, flags=re.M)


def problems(nb: dict) -> list[str]:
    """What this chapter notebook lacks of the template."""
    out = []
    cells = nb.get("cells", [])
    code = [c for c in cells if c.get("cell_type") == "code"]
    md = "\n".join("".join(c["source"]) if isinstance(c["source"], list) else c["source"] for c in cells if c.get("cell_type") == "markdown")
    src = lambda c: "".join(c["source"]) if isinstance(c["source"], list) else c["source"]
    for c in code:
        if c.get("outputs") or c.get("execution_count") is not None:
            out.append("committed with outputs or execution counts (strip them)")
            break
    if not cells or cells[0].get("cell_type") != "markdown" or not src(cells[0]).lstrip().startswith("# "):
        out.append("the first cell must be markdown starting with the title ('# ...')")
    for part in ("Learning objectives", "Prerequisites", "## Summary", "## Exercises", "## References"):
        if part not in md:
            out.append(f"missing the template part {part!r}")
    if not code or "except ImportError" not in src(code[0]) or "seqlab" not in src(code[0]):
        out.append("the first code cell must install seqlab when it is missing (the Colab cell)")
    all_code = "\n".join(src(c) for c in code)
    if "seed_everything(" not in all_code:
        out.append("no seqlab.seed_everything(...) call: the notebook is not seeded")
    if "scale(" not in all_code:
        out.append("no seqlab.scale(quick=..., full=...) call")
    if not re.search(r"^\s*assert\b", all_code, flags=re.M):
        out.append("no assert: the chapter checks none of its claims")
    exercises = EXERCISE.findall(md)
    solutions = set(SOLUTION.findall(md))
    if len(exercises) < 3:
        out.append(f"needs at least 3 exercises, has {len(exercises)}")
    for label in exercises:
        if label not in solutions:
            out.append(f"exercise {label!r} has no solution")
    if "check." not in all_code:
        out.append("no exercise is checked by a seqlab.check helper")
    return out


def exercise_labels(nb: dict) -> list[str]:
    md = "\n".join("".join(c["source"]) for c in nb["cells"] if c["cell_type"] == "markdown")
    return EXERCISE.findall(md)
