"""Putting numbers measured on a page into its prose (chapter 1 onward).

Every measured quantity the prose of a chapter quotes is *glued* from the
variable that holds it: ``glue("name", value)`` in a code cell, then
``{glue:text}`name:.2f``` in the markdown. The book build (myst-nb) replaces
the role with the value the page just computed, so prose and measurement
cannot drift apart. Where myst-nb is not installed (Colab, a bare Jupyter),
``glue`` does nothing: the printed outputs carry the same numbers.
"""
from __future__ import annotations

import math
from typing import Any

try:  # myst-nb is installed with the book's requirements, not with seqlab
    from myst_nb import glue as _myst_glue
except ImportError:  # pragma: no cover - depends on the environment
    _myst_glue = None


def glue(name: str, value: Any, display: bool = False) -> None:
    """Record ``value`` under ``name`` for the page's prose (chapter 1); a no-op without myst-nb.

    ``display=False`` (the default here) keeps the value out of the cell's
    output; the markdown shows it where ``{glue:text}`` names it.
    """
    if not isinstance(name, str) or not name:
        raise TypeError(f"name must be a non-empty str, got {name!r}")
    if _myst_glue is not None:
        _myst_glue(name, value, display=display)


BOUND_SIDES = ("at least", "at most")


def bound(value: float, side: str, digits: int = 1) -> float:
    """``value`` rounded to ``digits`` decimals *towards the safe side* of a bound the prose states (chapter 1).

    A sentence "at least {glue:text}`x:.1f` times" must not print 3.5 for a measured 3.46: ordinary
    rounding can land the printed bound on the wrong side of the number it bounds. ``side="at least"``
    rounds down (3.46 -> 3.4), ``side="at most"`` (also for "within", "below") rounds up (0.712 -> 0.8 at
    one decimal, 0.72 at two); glue the result and format it with the same ``digits``.
    """
    if side not in BOUND_SIDES:
        raise ValueError(f"side must be one of {BOUND_SIDES}, got {side!r}")
    if isinstance(digits, bool) or not isinstance(digits, int) or digits < 0:
        raise ValueError(f"digits must be an int >= 0, got {digits!r}")
    if isinstance(value, bool) or not isinstance(value, (int, float)) or not math.isfinite(value):
        raise ValueError(f"value must be a finite number, got {value!r}")
    scale = 10 ** digits
    scaled = round(value * scale, 9)  # 0.29 * 100 is 28.999999999999996: not a value below 0.29
    return (math.floor(scaled) if side == "at least" else math.ceil(scaled)) / scale
