"""The book's figure style and the plots that recur across chapters (chapter 1 on).

Figures have an opaque white background, so they stay readable when the
website is switched to its dark theme, use the Okabe-Ito palette (safe for
colour-blind readers), and always label their axes with units.
"""
from __future__ import annotations

from typing import Mapping, Sequence

import matplotlib as mpl
import matplotlib.pyplot as plt
import numpy as np
import torch

# Okabe & Ito (2008), colour-blind safe
PALETTE = ["#0072B2", "#D55E00", "#009E73", "#CC79A7", "#E69F00", "#56B4E9", "#F0E442", "#000000"]

STYLE = {
    "figure.figsize": (6.4, 3.6),
    "figure.dpi": 100,
    "savefig.dpi": 150,
    "figure.facecolor": "white",
    "axes.facecolor": "white",
    "savefig.facecolor": "white",
    "axes.grid": True,
    "grid.alpha": 0.3,
    "axes.spines.top": False,
    "axes.spines.right": False,
    "axes.prop_cycle": mpl.cycler(color=PALETTE),
    "axes.titlesize": 11,
    "axes.labelsize": 10,
    "legend.frameon": False,
    "font.size": 10,
    "lines.linewidth": 1.6,
}


def use_style() -> None:
    """Apply the book's figure style to matplotlib (chapter 1; every chapter calls it once)."""
    mpl.rcParams.update(STYLE)


def _labelled(ax, xlabel: str, ylabel: str, title: str | None):
    if not xlabel or not ylabel:
        raise ValueError("every figure in the book labels both axes: give xlabel and ylabel")
    ax.set_xlabel(xlabel)
    ax.set_ylabel(ylabel)
    if title:
        ax.set_title(title)
    return ax


def lines(
    series: Mapping[str, tuple[Sequence[float], Sequence[float]]],
    *,
    xlabel: str,
    ylabel: str,
    title: str | None = None,
    logx: bool = False,
    logy: bool = False,
    marker: str | None = None,
    ax=None,
):
    """One line per entry of ``series`` (``name -> (x, y)``), with a legend (chapter 2)."""
    if not series:
        raise ValueError("series is empty: nothing to plot")
    ax = ax or plt.subplots()[1]
    for name, (x, y) in series.items():
        if len(x) != len(y):
            raise ValueError(f"series {name!r}: x has {len(x)} points but y has {len(y)}")
        ax.plot(x, y, label=name, marker=marker)
    if logx:
        ax.set_xscale("log")
    if logy:
        ax.set_yscale("log")
    if len(series) > 1:
        ax.legend()
    return _labelled(ax, xlabel, ylabel, title)


def learning_curves(histories: Mapping[str, object], *, key: str = "loss", window: int = 20, ylabel: str = "training loss (nats)", title: str | None = None, ax=None):
    """Smoothed training loss (``key="loss"``) or an evaluation metric against steps, one line per run (chapter 3)."""
    series = {}
    for name, h in histories.items():
        if key == "loss":
            y = h.smoothed_loss(window)
            series[name] = (list(range(1, len(y) + 1)), y)
        else:
            series[name] = (h.eval_step, h.eval[key])
    return lines(series, xlabel="training step", ylabel=ylabel, title=title, ax=ax, marker=None if key == "loss" else "o")


def heatmap(matrix, *, xlabel: str, ylabel: str, xticklabels=None, yticklabels=None, title: str | None = None, cmap: str = "viridis", colorbar: str | None = None, ax=None):
    """A matrix as an image (e.g. attention weights: rows are queries, columns keys); chapter 5 on.

    ``matrix`` is a 2-D array, nested list or tensor; a tensor that requires grad must be detached first.
    """
    if isinstance(matrix, torch.Tensor):
        if matrix.requires_grad:
            raise TypeError("heatmap takes values, not a tensor that requires grad: pass matrix.detach() "
                            f"(got a {matrix.dtype} tensor of shape {tuple(matrix.shape)} with requires_grad=True)")
        matrix = matrix.cpu()
    m = np.asarray(matrix)
    if not (np.issubdtype(m.dtype, np.number) or m.dtype == bool):
        raise TypeError(f"heatmap takes a numeric matrix, got an array of dtype {m.dtype}")
    if m.ndim != 2:
        raise ValueError(f"heatmap takes a 2-D matrix, got shape {m.shape}")
    ax = ax or plt.subplots()[1]
    im = ax.imshow(m, cmap=cmap, aspect="auto", interpolation="nearest")
    ax.grid(False)
    if xticklabels is not None:
        ax.set_xticks(range(len(xticklabels)), xticklabels)
    if yticklabels is not None:
        ax.set_yticks(range(len(yticklabels)), yticklabels)
    if colorbar is not None:
        ax.figure.colorbar(im, ax=ax, label=colorbar)
    return _labelled(ax, xlabel, ylabel, title)


def power_laws(
    series: Mapping[str, tuple[Sequence[float], Sequence[float]]],
    *,
    xlabel: str,
    ylabel: str,
    fit_last: int | None = 3,
    title: str | None = None,
    ax=None,
):
    """Cost against size on log-log axes (chapter 9): measured points, and a fitted power law per series.

    ``series`` maps a name to ``(x, y)``. With ``fit_last = k`` a straight line is fitted (on log-log
    axes, ``seqlab.measure.fit_power_law``) to the last k points of each series and drawn dashed over
    them; the legend gives its slope. ``fit_last=None`` draws the points only.
    """
    from .measure import fit_power_law

    if not series:
        raise ValueError("series is empty: nothing to plot")
    if fit_last is not None and (isinstance(fit_last, bool) or not isinstance(fit_last, int) or fit_last < 2):
        raise ValueError(f"fit_last must be an int >= 2 (a line needs two points) or None, got {fit_last!r}")
    ax = ax or plt.subplots()[1]
    for i, (name, (x, y)) in enumerate(series.items()):
        if len(x) != len(y):
            raise ValueError(f"series {name!r}: x has {len(x)} points but y has {len(y)}")
        color = PALETTE[i % len(PALETTE)]
        label = name
        if fit_last is not None and len(x) >= 2:
            k = min(fit_last, len(x))
            fit = fit_power_law(x[-k:], y[-k:])
            xs = np.geomspace(x[-k], x[-1], 20)
            ax.plot(xs, fit(xs), color=color, ls="--", lw=1.2, alpha=0.8)
            label = f"{name} (slope {fit.slope:.2f})"
        ax.plot(x, y, marker="o", ms=4, color=color, label=label)
    ax.set_xscale("log")
    ax.set_yscale("log")
    ax.legend()
    return _labelled(ax, xlabel, ylabel, title)
