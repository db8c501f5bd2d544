"""Putting numbers measured on a page into its prose (chapter 1 onward).

Every measured quantity the prose of a chapter quotes is *glued* from the
variable that holds it: ``glue("name", value)`` in a code cell, then
``{glue:text}`name:.2f``` in the markdown. The book build (myst-nb) replaces
the role with the value the page just computed, so prose and measurement
cannot drift apart. Where myst-nb is not installed (Colab, a bare Jupyter),
``glue`` does nothing: the printed outputs carry the same numbers.
"""
from __future__ import annotations

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
