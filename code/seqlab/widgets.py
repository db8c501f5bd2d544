"""Interactive explorers for the chapters (ipywidgets), each with a static stand-in.

A static page has no kernel: a widget shows its first state and its
callbacks never run. So every explorer in the book follows one convention:
the chapter first draws a *static figure* that shows what the explorer shows
(a grid of settings), and then offers the explorer, "launch the chapter to
interact". ``explorer`` builds the widget; without ipywidgets it says how to
get it instead of failing.
"""
from __future__ import annotations

from typing import Callable


def explorer(plot: Callable[..., None], **controls):
    """An ``ipywidgets.interactive`` that calls ``plot(**values)`` whenever a control changes (chapter 3).

    Controls are ipywidgets abbreviations (``rho=(0.1, 2.0, 0.1)``,
    ``nonlinearity=["tanh", "relu"]``) or widgets. Returns the widget, or a
    message string when ipywidgets is not installed.
    """
    if not callable(plot):
        raise TypeError(f"plot must be callable, got {type(plot).__name__}")
    if not controls:
        raise ValueError("explorer needs at least one control, e.g. rho=(0.1, 2.0, 0.1)")
    try:
        import ipywidgets
    except ImportError:
        return "ipywidgets is not installed: `pip install ipywidgets` to use this explorer (the static figure above shows the same)."
    return ipywidgets.interactive(plot, **controls)
