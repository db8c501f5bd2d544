"""The book's figure style and the plots that recur across chapters (chapter 1 on).

Figures have an opaque white background, so they stay readable when the
website is switched to its dark theme, use the Okabe-Ito palette (safe for
colour-blind readers), and always label their axes with units.
"""
from __future__ import annotations

import warnings
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


def use_style(check: bool = False) -> None:
    """Apply the book's figure style to matplotlib (chapter 1; every chapter calls it once).

    ``check=True`` (in a notebook) also checks every figure at the end of the cell that drew it
    (``check_figure``: title, axis labels, colour bars, tick labels that do not overlap) and fails
    the cell with ``FigureError`` when one lacks something. In a notebook every figure's PNG carries a
    description of what it draws (``describe_figure``), which the website uses as the image's alt text.
    """
    if not isinstance(check, bool):
        raise TypeError(f"check must be a bool, got {type(check).__name__}")
    mpl.rcParams.update(STYLE)
    _install_cell_check(check)
    _install_descriptions()


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
    colors: Mapping[str, str] | None = None,
    ax=None,
):
    """One line per entry of ``series`` (``name -> (x, y)``), with a legend (chapter 2). ``colors`` maps a name to
    its colour, so that a model keeps one colour across the panels of a figure (chapter 9); the others take the
    colour cycle's."""
    if not series:
        raise ValueError("series is empty: nothing to plot")
    unknown = sorted(set(colors or {}) - set(series))
    if unknown:
        raise ValueError(f"colors names series that are not plotted: {unknown} (series: {list(series)})")
    ax = ax or plt.subplots()[1]
    for name, (x, y) in series.items():
        if len(x) != len(y):
            raise ValueError(f"series {name!r}: x has {len(x)} points but y has {len(y)}")
        ax.plot(x, y, label=name, marker=marker, color=(colors or {}).get(name))   # None: the colour cycle's next
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
    them, on top of the measured line and a little (a factor 1.4) past either end, so that it shows where it
    lies on the points; the legend gives its slope. ``fit_last=None`` draws the points only.
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
            xs = np.geomspace(x[-k] / 1.4, x[-1] * 1.4, 20)
            ax.plot(xs, fit(xs), color=color, ls="--", lw=1.2, alpha=0.8, zorder=3)
            slope = 0.0 if round(fit.slope, 2) == 0 else fit.slope          # no "-0.00" in the legend
            label = f"{name} (slope {slope:.2f})"
        ax.plot(x, y, marker="o", ms=4, color=color, label=label)
    ax.set_xscale("log")
    ax.set_yscale("log")
    ax.legend()
    return _labelled(ax, xlabel, ylabel, title)


# --- the figure check: what a finished figure must have ----------------------
#
# Every plot in the book has a title, labelled axes, a colour bar on every
# heatmap, and tick labels that do not overlap (an overlap is how a label such
# as "3×10¹" runs into "2" and reads "3×10¹2"). ``check_figure`` tests what it
# can of that on a finished figure; ``use_style(check=True)`` runs it at the end
# of every notebook cell, so a chapter whose figure lacks one of them fails
# where the figure is drawn. Units cannot be checked; write them in the labels.


class FigureError(ValueError):
    """A finished figure lacks a title, an axis label or a colour bar, or its tick labels overlap (chapter 1 on)."""


def _is_colorbar(ax) -> bool:
    return getattr(ax, "_colorbar", None) is not None


def _has_content(ax) -> bool:
    return bool(ax.lines or ax.images or ax.collections or ax.patches or ax.texts or ax.tables or ax.artists)


def _axis_label(fig, ax, which: str) -> str:
    """A panel's axis label: its own, else that of a panel it shares the axis with (same row or column), else the
    figure's supxlabel / supylabel; "" when none has one."""
    get = (lambda a: a.get_xlabel()) if which == "x" else (lambda a: a.get_ylabel())
    shared = ax.get_shared_x_axes() if which == "x" else ax.get_shared_y_axes()
    for other in [ax] + [a for a in shared.get_siblings(ax) if a is not ax]:
        if get(other).strip():
            return get(other)
    sup = getattr(fig, "_supxlabel" if which == "x" else "_supylabel", None)
    return sup.get_text() if sup is not None and sup.get_text().strip() else ""


def _panels(fig) -> list:
    """The figure's panels: visible axes with something drawn in them, colour bars left out."""
    return [ax for ax in fig.axes if ax.get_visible() and not _is_colorbar(ax) and _has_content(ax)]


def _heatmaps(ax) -> list:
    """A panel's images and meshes, the things a colour bar explains."""
    return list(ax.images) + [c for c in ax.collections if isinstance(c, mpl.collections.QuadMesh)]


def _overlaps(labels, renderer) -> list[tuple[str, str]]:
    boxes = []
    for t in labels:
        if t.get_visible() and t.get_text().strip():
            boxes.append((t.get_window_extent(renderer), t.get_text()))
    clashes = []
    for i in range(len(boxes)):
        for j in range(i + 1, len(boxes)):
            a, b = boxes[i][0], boxes[j][0]
            w = min(a.x1, b.x1) - max(a.x0, b.x0)
            h = min(a.y1, b.y1) - max(a.y0, b.y0)
            if w > 1 and h > 1:                             # more than a pixel each way: the texts run into each other
                clashes.append((boxes[i][1], boxes[j][1]))
    return clashes


def check_figure(fig, *, draw: bool = True) -> list[str]:
    """What a finished figure lacks (chapter 1 on): an empty list when every panel passes.

    Each visible panel with something drawn in it needs a title (its own, or the figure's suptitle), and,
    unless its axes are switched off (a diagram), both axis labels (its own, the figure's supxlabel /
    supylabel, or a panel it shares that axis with). Every image or mesh (a heatmap) needs a colour bar
    (its own, or one it shares: same colour map and limits), or a legend that says what its colours mean. With ``draw=True`` the figure is drawn and no two tick
    labels of one axis may overlap.
    """
    if not isinstance(fig, mpl.figure.Figure):
        raise TypeError(f"check_figure takes a matplotlib Figure, got {type(fig).__name__}")
    out = []
    suptitle = fig._suptitle is not None and fig._suptitle.get_text().strip()
    panels = _panels(fig)
    # a colour bar shared by several heatmaps: the others use its colour map and its limits
    shared_scales = {(m.get_cmap().name, m.get_clim()) for ax in panels for m in _heatmaps(ax) if m.colorbar is not None}
    renderer = None
    if draw and panels:
        with warnings.catch_warnings(record=True) as caught:
            warnings.simplefilter("always")
            fig.canvas.draw()
        renderer = fig.canvas.get_renderer()
        for message in sorted({str(w.message) for w in caught if "missing from" in str(w.message)}):
            out.append(f"a character the font cannot draw ({message}): write it in mathtext, e.g. r'$\\mathcal{{L}}$'")
    for k, ax in enumerate(panels):
        title = ax.get_title().strip() or ax.get_title("left").strip() or ax.get_title("right").strip()
        name = f"panel {k + 1} of {len(panels)}" + (f" ({title!r})" if title else "")
        if not (title or suptitle):
            out.append(f"{name}: no title (ax.set_title, or fig.suptitle for the whole figure)")
        if ax.axison:
            if not _axis_label(fig, ax, "x"):
                out.append(f"{name}: the x axis has no label (with its unit)")
            if not _axis_label(fig, ax, "y"):
                out.append(f"{name}: the y axis has no label (with its unit)")
        legend = ax.get_legend() is not None or fig.legends
        for m in _heatmaps(ax):
            if m.colorbar is None and not legend and (m.get_cmap().name, m.get_clim()) not in shared_scales:
                out.append(f"{name}: a heatmap without a colour bar (fig.colorbar(im, ax=ax, label=...))")
                break
        if renderer is not None and ax.axison:
            for which, axis in (("x", ax.xaxis), ("y", ax.yaxis)):
                labels = axis.get_ticklabels(which="both")
                clashes = _overlaps(labels, renderer)
                if clashes:
                    a, b = clashes[0]
                    out.append(f"{name}: {which} tick labels overlap ({a!r} runs into {b!r}); use fewer ticks or rotate them")
    return out


def check_open_figures(value=None):
    """Check every figure still open (at the end of a notebook cell: the ones it drew); raise FigureError (chapter 1 on).

    Returns ``value`` unchanged, so that ``use_style(check=True)`` can wrap a cell's last expression in it.
    """
    problems = []
    for num in plt.get_fignums():
        fig = plt.figure(num)
        problems += [f"figure {num}: {p}" for p in check_figure(fig)]
    if problems:
        raise FigureError("this cell's figure is not finished:\n  " + "\n  ".join(problems))
    return value


_TEX = {r"\mathcal{L}": "L", r"\partial": "∂", r"\alpha": "α", r"\beta": "β", r"\gamma": "γ", r"\Delta": "Δ",
        r"\delta": "δ", r"\rho": "ρ", r"\sigma": "σ", r"\phi": "φ", r"\lambda": "λ", r"\theta": "θ", r"\mu": "μ",
        r"\times": "×", r"\cdot": "·", r"\le": "≤", r"\ge": "≥", r"\approx": "≈", r"\log": "log", r"\ln": "ln",
        r"\|": "‖", r"\sqrt": "√", r"\infty": "∞", r"\pi": "π", r"\leq": "≤", r"\geq": "≥", r"\left": "",
        r"\right": "", r"\mathrm": "", r"\operatorname": "", r"\text": "", r"\bar": "", r"\hat": "",
        r"\tilde": "", "^": "", "_": " "}


def _plain(text: str) -> str:
    """A label's text without mathtext markup, for a screen reader: "$\\|\\partial \\mathcal{L}\\|$" -> "‖∂ L‖"."""
    text = text.replace("\n", " ")
    if "$" in text:
        for tex in sorted(_TEX, key=len, reverse=True):          # longer first: \leq before \le
            text = text.replace(tex, _TEX[tex])
        text = text.replace("\\", "").replace("{", "").replace("}", "").replace("$", "")
    return " ".join(text.split())


def describe_figure(fig) -> str:
    """A figure's alternative text, read from what it draws (chapter 1 on): its title, and for each panel its
    title, what it plots against what, its kind (lines, points, bars, a heatmap) and its legend's entries.

    ``use_style`` stores it in each figure's PNG (its "Description"), and the book's build gives it to the page's
    image as its alt text (book/_ext/figure_alt.py), so that a reader who cannot see a figure learns what it shows.
    """
    if not isinstance(fig, mpl.figure.Figure):
        raise TypeError(f"describe_figure takes a matplotlib Figure, got {type(fig).__name__}")
    panels = _panels(fig)
    parts = []
    if fig._suptitle is not None and fig._suptitle.get_text().strip():
        parts.append(_plain(fig._suptitle.get_text()) + ".")
    parts.append("A figure of " + ("one panel" if len(panels) == 1 else f"{len(panels)} panels") + ".")
    for k, ax in enumerate(panels):
        title = _plain(ax.get_title() or ax.get_title("left") or ax.get_title("right"))
        kinds = []
        if [ln for ln in ax.lines if ln.get_visible()]:
            kinds.append("lines")
        if [c for c in ax.collections if isinstance(c, mpl.collections.PathCollection)]:
            kinds.append("points")
        if ax.patches and not ax.images:
            kinds.append("bars")
        if _heatmaps(ax):
            cbar = [m.colorbar for m in _heatmaps(ax) if m.colorbar is not None]
            label = _plain(cbar[0].ax.get_ylabel() or cbar[0].ax.get_xlabel()) if cbar else ""
            kinds.append("a heatmap" + (f" of {label}" if label else ""))
        x, y = _plain(_axis_label(fig, ax, "x")), _plain(_axis_label(fig, ax, "y"))
        text = (f"Panel {k + 1}" if len(panels) > 1 else "The panel") + (f", {title!r}" if title else "") + ": "
        text += " and ".join(kinds) or "a diagram"
        if ax.axison and (x or y):
            text += f", {y or 'values'} against {x or 'the horizontal axis'}"
        legend = ax.get_legend()
        if legend is not None:
            names = [_plain(t.get_text()) for t in legend.get_texts() if t.get_text().strip()]
            if names:
                text += "; legend: " + "; ".join(names)
        parts.append(text + ".")
    return " ".join(parts)


def _png_with_description(fig):
    """The inline PNG of ``fig`` (base64, as IPython's own formatter returns it) with its description inside."""
    from IPython.core.pylabtools import print_figure

    return print_figure(fig, "png", base64=True, metadata={"Description": describe_figure(fig)})


def _install_descriptions() -> bool:
    try:
        from IPython import get_ipython
    except ImportError:  # pragma: no cover - IPython is installed with the course
        return False
    ip = get_ipython()
    if ip is None or not hasattr(ip, "display_formatter"):
        return False
    if not plt.get_fignums():
        # load the backend now: the inline backend installs its own figure formatters when it loads, which
        # would replace this one if it loaded later, at the first figure
        plt.switch_backend(mpl.get_backend())
    ip.display_formatter.formatters["image/png"].for_type(mpl.figure.Figure, _png_with_description)
    return True


_CHECK_NAME = "_seqlab_check_open_figures"


class _CheckAtCellEnd:
    """An IPython AST transformer: the cell's last expression becomes ``check(expr)``, else ``check()`` is appended."""

    def visit(self, node):
        import ast

        if not isinstance(node, ast.Module) or not node.body:
            return node
        last = node.body[-1]
        func = ast.Name(id=_CHECK_NAME, ctx=ast.Load())
        if isinstance(last, ast.Expr):
            last.value = ast.Call(func=func, args=[last.value], keywords=[])
        else:
            node.body.append(ast.Expr(ast.Call(func=func, args=[], keywords=[])))
        return ast.fix_missing_locations(node)


def _install_cell_check(on: bool) -> bool:
    try:
        from IPython import get_ipython
    except ImportError:  # pragma: no cover - IPython is installed with the course
        return False
    ip = get_ipython()
    if ip is None:
        return False
    ip.ast_transformers[:] = [t for t in ip.ast_transformers if not isinstance(t, _CheckAtCellEnd)]
    if on:
        ip.user_ns[_CHECK_NAME] = check_open_figures
        ip.ast_transformers.append(_CheckAtCellEnd())
    return on
