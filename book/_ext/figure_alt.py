"""Sphinx extension: a notebook figure's alt text is the description its PNG carries.

`seqlab.plot.use_style` makes every figure a notebook draws carry a description of what it shows (its title,
and each panel's axes, kind and legend: `seqlab.plot.describe_figure`) in the PNG's "Description" text chunk.
myst-nb writes each output image to a file and leaves the image's alt text unset, so the page would say the
file's path; this hook reads the description back and makes it the alt text. Images without one are left alone.
"""
from __future__ import annotations

from pathlib import Path

from docutils import nodes


def _description(path: Path) -> str | None:
    try:
        from PIL import Image
    except ImportError:  # pragma: no cover - Pillow comes with matplotlib
        return None
    try:
        with Image.open(path) as im:
            text = im.text.get("Description") if hasattr(im, "text") else None
    except (OSError, ValueError):
        return None
    return text.strip() if text and text.strip() else None


def _fill_alt(app, doctree):
    srcdir = Path(app.srcdir)
    for image in doctree.findall(nodes.image):
        if image.get("alt"):
            continue
        # Sphinx's image collector (also on doctree-read) may already have made the URI relative to the page and
        # put the path from the source folder in ``candidates``; myst-nb's own URI is "/"-rooted at that folder
        path = (image.get("candidates") or {}).get("*") or image.get("uri", "").lstrip("/")
        if not path.endswith(".png"):
            continue
        text = _description(srcdir / path)
        if text:
            image["alt"] = text


def setup(app):
    app.connect("doctree-read", _fill_alt)
    return {"version": "1.0", "parallel_read_safe": True, "parallel_write_safe": True}
