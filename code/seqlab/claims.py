"""The evidence box: each claim a page makes, beside the number that licenses it (every chapter).

A sentence such as "most of the weight falls on position 0" is a claim. Where
the prose states it, the page does not write a bare ``assert``; it writes::

    seqlab.claim("weight_on_first", "most of the weight falls on position 0", w0, "> 0.5")

which

1. checks the rule against the measured value and fails the run (``ClaimError``,
   an ``AssertionError``) when it does not hold, naming the claim, the value and
   the rule;
2. glues the value under the claim's name, so the prose quotes it with
   ``{glue:text}`weight_on_first:.2f``` (do not glue the same name again);
3. records it for the page's closing table, ``seqlab.evidence_box()``: "What this
   page measured" -- every claim, its value, its rule, ✓.

The rule is a string the claim evaluates itself, so the threshold shown in the
table is the one checked:

    "> 0.5"   ">= 3"   "< 0.05"   "<= 1"   "== 0"
    "in [0.9, 1.2]"            a closed interval (``in (a, b)`` for an open one)
    "within 0.05 of 1.88"      |value - 1.88| < 0.05

A rule that compares two measurements (``a > 3 * b``) is passed as a bool, with
the rule written out for the table: ``claim(..., a, a > 3 * b, rule="> 3 × Witten–Bell's rise")``.
A value may also be a sequence (one number per seed, say); a string rule must
then hold for every element.

In the summary, each bullet names the claims behind it with the role
``{claim}`weight_on_first``` (a link to the claim's row in the table);
``code/tests/course_lint.py`` fails a summary bullet that names none.
"""
from __future__ import annotations

import json
import math
import os
import re
from dataclasses import dataclass
from numbers import Real
from pathlib import Path
from typing import Any, Sequence

from .pages import glue

__all__ = ["Claim", "ClaimError", "EvidenceBox", "claim", "claims", "evidence_box", "page_places", "reset", "check_rule"]

NAME = re.compile(r"^[A-Za-z][A-Za-z0-9_]*$")
_NUM = r"[-+]?(?:\d+\.?\d*|\.\d+)(?:[eE][-+]?\d+)?"
_COMPARE = re.compile(rf"^\s*(>=|<=|==|!=|>|<|≥|≤)\s*({_NUM})\s*$")
_INTERVAL = re.compile(rf"^\s*in\s*([\[(])\s*({_NUM})\s*,\s*({_NUM})\s*([\])])\s*$")
_WITHIN = re.compile(rf"^\s*within\s+({_NUM})\s+of\s+({_NUM})\s*$")
_OPS = {">": lambda a, b: a > b, ">=": lambda a, b: a >= b, "≥": lambda a, b: a >= b, "<": lambda a, b: a < b,
        "<=": lambda a, b: a <= b, "≤": lambda a, b: a <= b, "==": lambda a, b: a == b, "!=": lambda a, b: a != b}


class ClaimError(AssertionError):
    """A claim the page makes does not hold for what it just measured (chapter 1 on)."""


def _number(value: Any, what: str) -> float | int | bool:
    """A Python number from an int, float, bool, NumPy scalar or one-element tensor."""
    if hasattr(value, "item") and callable(value.item) and getattr(value, "ndim", 0) == 0:
        value = value.item()
    if isinstance(value, bool):
        return value
    if isinstance(value, Real):
        return int(value) if isinstance(value, int) else float(value)
    raise TypeError(f"{what} must be a number (int, float, bool, a 0-d tensor or NumPy scalar), got {type(value).__name__}: {value!r}")


def _values(value: Any) -> tuple[float | int | bool, ...] | float | int | bool:
    if isinstance(value, (list, tuple)) or (hasattr(value, "ndim") and getattr(value, "ndim", 0) == 1):
        values = tuple(_number(v, "each element of value") for v in (value.tolist() if hasattr(value, "tolist") else value))
        if not values:
            raise ValueError("value is an empty sequence: a claim needs at least one measurement")
        return values
    if hasattr(value, "ndim") and getattr(value, "ndim", 0) > 1:
        raise ValueError(f"value must be a number or a 1-D sequence of numbers, got shape {tuple(value.shape)}")
    return _number(value, "value")


def check_rule(value: float, rule: str) -> bool:
    """Whether one number satisfies a rule string (chapter 1 on; the forms are in the module docstring)."""
    if not isinstance(rule, str):
        raise TypeError(f"rule must be a str such as '> 0.5', got {type(rule).__name__}")
    if isinstance(value, float) and math.isnan(value):
        return False
    if m := _COMPARE.match(rule):
        return bool(_OPS[m.group(1)](value, float(m.group(2))))
    if m := _INTERVAL.match(rule):
        lo, hi = float(m.group(2)), float(m.group(3))
        if lo > hi:
            raise ValueError(f"rule {rule!r}: the interval's lower end {lo} is above its upper end {hi}")
        above = value >= lo if m.group(1) == "[" else value > lo
        below = value <= hi if m.group(4) == "]" else value < hi
        return bool(above and below)
    if m := _WITHIN.match(rule):
        tol, target = float(m.group(1)), float(m.group(2))
        if tol < 0:
            raise ValueError(f"rule {rule!r}: the tolerance must be >= 0")
        return bool(abs(value - target) < tol)
    raise ValueError(f"rule {rule!r} is not one of the forms '> x', '>= x', '< x', '<= x', '== x', '!= x', "
                     "'in [a, b]', 'in (a, b)', 'within t of x' (pass a bool and rule=... for anything else)")


def _format(value, fmt: str | None) -> str:
    if isinstance(value, tuple):
        return ", ".join(_format(v, fmt) for v in value)
    if isinstance(value, bool):
        return "yes" if value else "no"
    if fmt:
        return format(value, fmt)
    if isinstance(value, int):
        return f"{value:,d}"
    if value != 0 and (abs(value) >= 1e5 or abs(value) < 1e-3):
        return f"{value:.2e}"
    return f"{value:.3g}"


@dataclass(frozen=True)
class Claim:
    """One claim (chapter 1 on): its name (the glue key), what the prose says, the value measured, the rule, and whether it held."""
    name: str
    text: str
    value: Any
    rule: str
    holds: bool
    fmt: str | None = None

    @property
    def shown(self) -> str:
        """The value as the evidence table shows it."""
        return _format(self.value, self.fmt)

    def __repr__(self) -> str:
        mark = "✓" if self.holds else "✗"
        return f"{mark} {self.name} = {self.shown} (rule: {self.rule}): {self.text}"

    def __bool__(self) -> bool:
        return self.holds

    def _ipython_display_(self) -> None:
        """A cell that ends with a claim shows nothing: every claim of the page has its row in the evidence box
        (``evidence_box``), so one echoed line per cell, for its last claim only, would single that one out."""


_CLAIMS: dict[str, Claim] = {}


def claim(name: str, text: str, value: Any, holds: str | bool, *, rule: str | None = None, fmt: str | None = None,
          glue_value: bool = True) -> Claim:
    """Record that the page claims ``text``, measured as ``value``, licensed when ``holds`` (chapter 1 on).

    ``holds`` is a rule string checked against ``value`` ("> 0.5", "in [0.9, 1.2]", "within 0.05 of 1.88";
    for a sequence of values the rule must hold for each), or a bool computed by the page, in which case
    ``rule`` says in words what was checked. ``fmt`` is the format of the value in the table ("`.2f`", "`.0%`").
    The value is glued under ``name`` (``glue_value=False`` skips that, e.g. for a sequence). Raises
    ``ClaimError`` when the claim does not hold. Claiming a name again (re-running a cell) replaces it.
    """
    if not isinstance(name, str) or not NAME.match(name):
        raise ValueError(f"name must be an identifier such as 'rise_addk' (it is the glue key), got {name!r}")
    if not isinstance(text, str) or not text.strip():
        raise TypeError(f"text must be the claim in words (a non-empty str), got {text!r}")
    if fmt is not None:
        if not isinstance(fmt, str):
            raise TypeError(f"fmt must be a format spec str such as '.2f', got {type(fmt).__name__}")
    shown = _values(value)
    many = isinstance(shown, tuple)
    if isinstance(holds, str):
        if rule is not None:
            raise ValueError("give the rule once: either holds='> 0.5' or holds=<bool> with rule='...'")
        ok = all(check_rule(v, holds) for v in shown) if many else check_rule(shown, holds)
        rule = holds if not many else f"{holds.strip()} for each"
    else:
        try:
            ok = _number(holds, "holds")
        except TypeError:
            raise TypeError(f"holds must be a rule str such as '> 0.5' or a bool, got {type(holds).__name__}") from None
        if not isinstance(ok, bool):
            raise TypeError(f"holds must be a rule str such as '> 0.5' or a bool, got {holds!r}")
        if not isinstance(rule, str) or not rule.strip():
            raise ValueError(f"claim {name!r}: holds is a bool, so rule=... must say in words what was checked")
    if fmt is not None:
        _format(shown, fmt)  # a bad format spec fails here, not when the table is drawn
    record = Claim(name, text.strip(), shown, rule.strip(), bool(ok), fmt)
    _CLAIMS.pop(name, None)
    _CLAIMS[name] = record
    if glue_value:
        glue(name, shown, display=False)
    if not ok:
        raise ClaimError(f"claim {name!r} does not hold: {text.strip()!r} -- measured {record.shown}, rule {record.rule}")
    return record


def claims() -> list[Claim]:
    """The claims recorded so far on this page, in the order they were made (chapter 1 on)."""
    return list(_CLAIMS.values())


def reset() -> None:
    """Forget the recorded claims (chapter 1 on; for tests: a page starts with none)."""
    _CLAIMS.clear()


def _cell(text: str) -> str:
    return text.replace("|", "\\|").replace("\n", " ")


# Under every box: why a bound in the prose can differ from the measured value in its last digit (seqlab.bound).
ROUNDING = ("*A bound in the prose is rounded towards its safe side, so its last digit can differ from the value shown "
            "here: a measured 0.1485 is written \"at least 0.148\" and \"at most 0.149\".*")


class EvidenceBox:
    """The table "What this page measured" (chapter 1 on), shown as a Markdown table: a real table in the book.

    ``note``: a line shown above the table (where the rows could not be put in the prose's order, it says why)."""

    def __init__(self, items: Sequence[Claim], note: str = ""):
        self.claims = list(items)
        self.note = note

    def _repr_markdown_(self) -> str:
        rows = ([self.note, ""] if self.note else []) + ["| claim | what the page says | measured | rule | holds |",
                                                         "|:--|:--|--:|:--|:-:|"]
        for c in self.claims:
            anchor = f'<span id="claim-{c.name}"></span>'
            rows.append(f"| {anchor}`{c.name}` | {_cell(c.text)} | {_cell(c.shown)} | {_cell(c.rule)} | {'✓' if c.holds else '✗'} |")
        return "\n".join(rows + ["", ROUNDING])

    def __repr__(self) -> str:
        width = max([len(c.name) for c in self.claims] + [5])
        lines = [f"What this page measured: {len(self.claims)} claims"] + ([self.note] if self.note else [])
        lines += [f"{'✓' if c.holds else '✗'} {c.name:<{width}}  {c.shown:>10}  {c.rule:<18} {c.text}" for c in self.claims]
        return "\n".join(lines)

    def __len__(self) -> int:
        return len(self.claims)


# A page's claims as its text writes them (the course lint reads pages with the same two patterns): a citation in the
# prose, {claim}`name`, and a claim made in code, claim("name", ...) with a literal name.
CITED = re.compile(r"\{claim\}`([^`]*)`")
MADE = re.compile(r"\bclaim\(\s*(?:name\s*=\s*)?(?P<q>[\"'])(?P<name>[^\"']*)(?P=q)")


def page_places(page: str | os.PathLike) -> dict[str, int]:
    """Where each claim belongs on a notebook page, as a cell index (chapter 1 on).

    A claim's place is the first Markdown cell before the ``## Summary`` that cites it (``{claim}`name```): where
    the reader first meets it. A claim cited only in the summary, or nowhere, takes the place of the code cell that
    makes it (``claim("name", ...)``): where it is measured.
    """
    cells = json.loads(Path(page).read_text(encoding="utf-8"))["cells"]
    text = ["".join(c.get("source", [])) for c in cells]
    summary = next((i for i, (c, t) in enumerate(zip(cells, text))
                    if c.get("cell_type") == "markdown" and re.search(r"^## Summary", t, flags=re.M)), len(cells))
    places: dict[str, int] = {}
    for i, (c, t) in enumerate(zip(cells, text)):
        if c.get("cell_type") == "markdown" and i < summary:
            for m in CITED.finditer(t):
                places.setdefault(m.group(1), i)
    for i, (c, t) in enumerate(zip(cells, text)):
        if c.get("cell_type") == "code":
            for m in MADE.finditer(t):
                places.setdefault(m.group("name"), i)
    return places


def evidence_box(page: str | os.PathLike | None = None) -> EvidenceBox:
    """The page's closing table, "What this page measured": every claim, its value, its rule, ✓ (chapter 1 on).

    Call it in the last cell of the chapter, with the chapter's file name (``evidence_box("10_scaling_behaviour.ipynb")``):
    the rows then follow the page (``page_places``: each claim where the prose first cites it before the summary, else
    where the code makes it). Without ``page``, or where that file is not beside the running notebook (a copy opened
    elsewhere), the rows are in the order the claims were made, and the box says so. It fails when the page made no
    claim, or when one did not hold (which ``claim`` already refuses, so only a claim recorded with a caught error
    gets here).
    """
    if page is not None and not isinstance(page, (str, os.PathLike)):
        raise TypeError(f"page must be the notebook's file name (a str or path), got {type(page).__name__}")
    items = claims()
    if not items:
        raise ClaimError("the page made no claim: the evidence box would be empty (call seqlab.claim(...) where the prose claims)")
    failed = [c.name for c in items if not c.holds]
    if failed:
        raise ClaimError(f"claims that do not hold: {failed}")
    if page is None:
        return EvidenceBox(items)
    if not Path(page).is_file():
        return EvidenceBox(items, note=f"(In the order the claims were made: {os.fspath(page)} is not in this folder, so "
                                       "the prose's order is not known.)")
    places = page_places(page)
    return EvidenceBox(sorted(items, key=lambda c: places.get(c.name, math.inf)))  # stable: ties, and the unplaced, as made
