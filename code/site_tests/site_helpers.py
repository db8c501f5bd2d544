"""Helpers shared by the tests of the built website: where it is, its pages, the book's configuration."""
from __future__ import annotations

import os
import re
import shutil
from pathlib import Path

import yaml

ROOT = Path(__file__).resolve().parents[2]
SITE = Path(os.environ.get("SEQLAB_SITE", ROOT / "_build" / "html"))
SCREENSHOTS = Path(os.environ.get("SEQLAB_SCREENSHOTS", ROOT / "_build" / "screenshots"))
# the whole length of every page as *.full.png too (make screenshots): about half the browser test's time
FULL_SCREENSHOTS = os.environ.get("SEQLAB_FULL_SCREENSHOTS", "0") not in ("", "0")
CHROMIUM_NAMES = ("chromium", "chromium-browser", "google-chrome", "google-chrome-stable")
CHROMIUM_ARGS = [
    "--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
    "--disable-background-networking", "--disable-component-update", "--disable-sync",
]


def config() -> dict:
    return yaml.safe_load((ROOT / "_config.yml").read_text(encoding="utf-8"))


def toc_files() -> list[str]:
    """The pages of the book, as in _toc.yml (``root`` first)."""
    toc = yaml.safe_load((ROOT / "_toc.yml").read_text(encoding="utf-8"))
    files = [toc["root"]]

    def walk(entries):
        for entry in entries or []:
            if "file" in entry:
                files.append(entry["file"])
            walk(entry.get("sections"))

    for part in toc.get("parts", []):
        walk(part.get("chapters"))
    return files


def chapter_pages() -> list[str]:
    """``chapters/NN_name`` (and sections ``chapters/NNb_name``) for every chapter in the table of contents."""
    return [f for f in toc_files() if re.fullmatch(r"chapters/\d\d[a-z]?_[a-z0-9_]+", f)]


def site_pages() -> list[str]:
    """Every HTML page of the built site, relative to it (the redirecting index.html aside)."""
    if not SITE.is_dir():
        return []
    pages = sorted(p.relative_to(SITE).as_posix() for p in SITE.rglob("*.html"))
    return [p for p in pages if p != "index.html" and not p.startswith(("_static/", "_sources/"))]


def widget_pages() -> list[str]:
    return [p for p in site_pages() if "application/vnd.jupyter.widget-state+json" in (SITE / p).read_text(encoding="utf-8")]


def vendored() -> bool:
    """Whether `make vendor` put require.js and the widget manager into the site."""
    return all((SITE / "_static" / "widgets" / name).is_file() for name in ("require.js", "embed-amd.js"))


def find_chromium() -> str | None:
    explicit = os.environ.get("SEQLAB_CHROMIUM")
    if explicit:
        return explicit if Path(explicit).is_file() else None
    for name in CHROMIUM_NAMES:
        if path := shutil.which(name):
            return path
    return None
