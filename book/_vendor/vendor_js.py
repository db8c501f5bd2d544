#!/usr/bin/env python3
"""Vendor the scripts that embedded ipywidgets need, so the website works offline.

A page whose notebook stored widget state loads require.js and the widget
manager ``@jupyter-widgets/html-manager`` (myst-nb fetches both from CDNs by
default). This script takes them from the npm registry with ``npm pack``
(pinned versions, tarballs checked against pinned sha512 digests) and lays
them out for Sphinx's ``html_extra_path`` (see ``_config.yml``)::

    OUT/_static/widgets/require.js          loaded by pages with widgets
    OUT/_static/widgets/embed-amd.js        (nb_ipywidgets_js in _config.yml)
    OUT/_static/widgets/VERSIONS.json       what was vendored, from where
    OUT/_static/widgets/mathjax2-hub-shim.js  (ours, from this folder) lets the
                                            manager typeset with MathJax 3
    OUT/<dir>/@jupyter-widgets/html-manager/dist/<hash>.woff2|woff
                                            the manager's icon fonts, which it
                                            asks for relative to the page, for
                                            each folder of pages in _toc.yml

``html_extra_path`` rather than ``html_static_path`` on purpose: when a
``_static/`` folder exists, Jupyter Book 1 links every .js file of the
static paths into every page, and require.js on every page breaks them.

Without npm (or without the registry and an empty npm cache) the script
says so and exits 0: the book still builds, and a widget then shows nothing
on the static page while the static figure beside it still does. It runs
only the Python standard library and npm. Usage: ``vendor_js.py [OUT]``.
"""
from __future__ import annotations

import base64
import hashlib
import json
import re
import shutil
import subprocess
import sys
import tarfile
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
# name, version, the registry's sha512 integrity of the tarball, licence
PACKAGES = [
    ("@jupyter-widgets/html-manager", "1.0.15",
     "sha512-5thBIV6ymNgmPVOHvzx+gGy8ZSKmSazhtGw4/c4xJDVzRhG9PTeQsRjF3FUTopvFi//SABeNz1yp47bCrJ3CQA==",
     "BSD-3-Clause"),
    ("requirejs", "2.3.7",
     "sha512-DouTG8T1WanGok6Qjg2SXuCMzszOo0eHeH9hDZ5Y4x8Je+9JB38HdTLT4/VA8OaUhBa0JPVHJ0pyBkM1z+pDsw==",
     "MIT"),
]
FONTS = (".woff2", ".woff")  # what current browsers ask for; the older formats are never requested
STAMP = ".vendored"
SHIM = Path(__file__).with_name("mathjax2-hub-shim.js")


def page_folders() -> list[str]:
    """The folders that hold pages: the manager asks for its fonts relative to the page."""
    toc = (ROOT / "_toc.yml").read_text(encoding="utf-8")
    entries = re.findall(r"^\s*-?\s*(?:file|root):\s*(\S+)\s*$", toc, flags=re.M)
    return sorted({str(Path(e).parent) for e in entries if "/" in e})


def give_up(reason: str) -> int:
    print(f"vendor_js: {reason}", file=sys.stderr)
    print("vendor_js: NOT vendored: pages with ipywidgets will show only their static figures "
          "(the widgets stay blank). Install Node.js/npm and run `make vendor` to fix.", file=sys.stderr)
    return 0


def sri(path: Path) -> str:
    return "sha512-" + base64.b64encode(hashlib.sha512(path.read_bytes()).digest()).decode()


def main(out: Path) -> int:
    out.mkdir(parents=True, exist_ok=True)  # html_extra_path must exist, vendored or not
    shim = out / "_static" / "widgets" / SHIM.name
    shim.parent.mkdir(parents=True, exist_ok=True)
    shutil.copy2(SHIM, shim)  # our own file: in place whether npm works or not
    want = json.dumps([p[:3] for p in PACKAGES] + [page_folders()])
    if (out / STAMP).exists() and (out / STAMP).read_text() == want:
        return 0
    (out / STAMP).unlink(missing_ok=True)
    npm = shutil.which("npm")
    if npm is None:
        return give_up("npm not found")
    with tempfile.TemporaryDirectory() as tmp:
        tmp = Path(tmp)
        specs = [f"{name}@{version}" for name, version, _, _ in PACKAGES]
        # --prefer-offline: after a first download, npm's cache serves a rebuild without the network
        run = subprocess.run([npm, "pack", "--json", "--prefer-offline", "--pack-destination", str(tmp), *specs],
                             capture_output=True, text=True, cwd=tmp)
        if run.returncode != 0:
            return give_up(f"`npm pack {' '.join(specs)}` failed: {run.stderr.strip()[-500:]}")
        packed = {d["name"]: d for d in json.loads(run.stdout)}
        trees = {}
        for name, version, integrity, _ in PACKAGES:
            tgz = tmp / packed[name]["filename"]
            if sri(tgz) != integrity:
                return give_up(f"{name}@{version}: the tarball's digest {sri(tgz)} is not the pinned {integrity}")
            trees[name] = tmp / name.replace("/", "_")
            with tarfile.open(tgz) as tar:
                if hasattr(tarfile, "data_filter"):  # Python >= 3.11.4: refuse unsafe members
                    tar.extractall(trees[name], filter="data")
                else:
                    tar.extractall(trees[name])
        staging = tmp / "out"
        widgets = staging / "_static" / "widgets"
        widgets.mkdir(parents=True)
        shutil.copy2(trees["requirejs"] / "package" / "require.js", widgets / "require.js")
        dist = trees["@jupyter-widgets/html-manager"] / "package" / "dist"
        shutil.copy2(dist / "embed-amd.js", widgets / "embed-amd.js")
        fonts = sorted(p for p in dist.iterdir() if p.suffix in FONTS)
        for folder in page_folders():
            target = staging / folder / "@jupyter-widgets" / "html-manager" / "dist"
            target.mkdir(parents=True)
            for font in fonts:
                shutil.copy2(font, target / font.name)
        (widgets / "VERSIONS.json").write_text(json.dumps(
            [dict(name=n, version=v, integrity=i, license=lic, registry="npm") for n, v, i, lic in PACKAGES],
            indent=2) + "\n")
        shutil.copy2(SHIM, widgets / SHIM.name)
        for child in out.iterdir():
            shutil.rmtree(child) if child.is_dir() else child.unlink()
        for child in staging.iterdir():
            shutil.move(str(child), out / child.name)
    (out / STAMP).write_text(want)
    print(f"vendor_js: require.js and the widget manager vendored into {out}")
    return 0


if __name__ == "__main__":
    sys.exit(main(Path(sys.argv[1]) if len(sys.argv) > 1 else ROOT / "_build" / "_vendor"))
