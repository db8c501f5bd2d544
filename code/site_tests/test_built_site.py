"""The built website, read as files: launch and download buttons, the API page, self-containment.

Runs after the book build (``make test-site``); needs no browser.
"""
from __future__ import annotations

import html
import importlib
import inspect
import pkgutil
import re
from html.parser import HTMLParser
from pathlib import Path
from urllib.parse import urlsplit

import pytest

from site_helpers import ROOT, chapter_pages, config, site_pages, vendored, widget_pages

import seqlab


class Tags(HTMLParser):
    """The start tags of a page, as (tag, attributes) pairs."""

    def __init__(self, text: str):
        super().__init__(convert_charrefs=True)
        self.tags: list[tuple[str, dict]] = []
        self.feed(text)

    def handle_starttag(self, tag, attrs):
        self.tags.append((tag, {k: v or "" for k, v in attrs}))


def tags(site: Path, page: str) -> list[tuple[str, dict]]:
    return Tags((site / page).read_text(encoding="utf-8")).tags


def repository():
    cfg = config()
    url = cfg["repository"]["url"].rstrip("/")
    owner, repo = urlsplit(url).path.strip("/").split("/")[:2]
    return cfg, url, owner, repo, cfg["repository"].get("branch", "master")


# --- launch, download and source buttons ------------------------------------


@pytest.mark.parametrize("chapter", chapter_pages())
def test_chapter_page_has_launch_download_and_source_buttons(site, chapter):
    cfg, url, owner, repo, branch = repository()
    notebook = f"{chapter}.ipynb"
    assert (ROOT / notebook).is_file()
    links = {a.get("title"): a.get("href") for tag, a in tags(site, f"{chapter}.html") if tag == "a" and a.get("title")}
    binder = cfg["launch_buttons"]["binderhub_url"].rstrip("/")
    ui = "lab/tree" if cfg["launch_buttons"].get("notebook_interface") == "jupyterlab" else "tree"
    assert links.get("Launch on Binder") == f"{binder}/v2/gh/{owner}/{repo}/{branch}?urlpath={ui}/{notebook}", links
    colab = cfg["launch_buttons"]["colab_url"].rstrip("/")
    assert links.get("Launch on Colab") == f"{colab}/github/{owner}/{repo}/blob/{branch}/{notebook}", links
    assert links.get("Source repository") == url
    # the download button gives the notebook as committed (stripped: Colab and Binder open the same file)
    download = links.get("Download source file")
    assert download == f"../_sources/{notebook}", links
    assert (site / "_sources" / notebook).read_bytes() == (ROOT / notebook).read_bytes()


@pytest.mark.parametrize("chapter", chapter_pages())
def test_chapter_page_links_its_exercise_notebook_on_binder_and_colab(site, chapter):
    # "Try the exercises" (book/_ext/exercise_links.py) opens exercises/NN_name.ipynb, generated
    # from the chapter (make exercises), the way the launch buttons open the chapter
    cfg, url, owner, repo, branch = repository()
    notebook = "exercises/" + chapter.split("/", 1)[1] + ".ipynb"
    assert (ROOT / notebook).is_file(), f"{notebook} is missing: run make exercises"
    links = {a.get("title"): a.get("href") for tag, a in tags(site, f"{chapter}.html") if tag == "a" and a.get("title")}
    binder = cfg["launch_buttons"]["binderhub_url"].rstrip("/")
    ui = "lab/tree" if cfg["launch_buttons"].get("notebook_interface") == "jupyterlab" else "tree"
    assert links.get("Try the exercises on Binder") == f"{binder}/v2/gh/{owner}/{repo}/{branch}?urlpath={ui}/{notebook}", links
    colab = cfg["launch_buttons"]["colab_url"].rstrip("/")
    assert links.get("Try the exercises on Colab") == f"{colab}/github/{owner}/{repo}/blob/{branch}/{notebook}", links
    # and they sit in the page's Exercises section
    text = (site / f"{chapter}.html").read_text(encoding="utf-8")
    assert text.index("Try the exercises on Binder") > text.index('id="exercises"'), "the links belong under Exercises"


def test_repository_branch_is_set():
    # Jupyter Book's default branch is `master`: every launch button would 404
    _, _, _, _, branch = repository()
    assert "branch" in config()["repository"] and branch == "main"


# --- the API reference --------------------------------------------------------


def public_modules() -> list[str]:
    names = ["seqlab"] + [m.name for m in pkgutil.walk_packages(seqlab.__path__, "seqlab.")]
    return [n for n in names if not any(part.startswith("_") for part in n.split("."))]


def public_objects() -> list[tuple[str, object]]:
    """``module.name`` of every public function and class defined in a public seqlab module."""
    out = []
    for modname in public_modules():
        module = importlib.import_module(modname)
        for name, obj in vars(module).items():
            if name.startswith("_") or not (inspect.isfunction(obj) or inspect.isclass(obj)):
                continue
            if getattr(obj, "__module__", None) == modname:
                out.append((f"{modname}.{name}", obj))
    return out


def plain(text: str) -> str:
    """Text with Sphinx's smart quotes and dashes undone and white space collapsed."""
    for fancy, ascii_ in (("\u2019", "'"), ("\u2018", "'"), ("\u201c", '"'), ("\u201d", '"'), ("\u2013", "--"), ("\u2014", "---"), ("\u2026", "...")):
        text = text.replace(fancy, ascii_)
    return re.sub(r"\s+", " ", text)


def test_api_page_documents_every_public_function_and_class(site):
    page = (site / "book" / "api.html").read_text(encoding="utf-8")
    ids = {a["id"] for _, a in Tags(page).tags if "id" in a}
    missing = [name for name, _ in public_objects() if name not in ids]
    assert not missing, f"not on the API page (add the module to book/api.md): {missing}"
    words = " ".join(re.findall(r"\w+", plain(html.unescape(re.sub(r"<[^>]+>", " ", page)))))
    for name, obj in public_objects():
        doc = obj.__doc__ and inspect.cleandoc(obj.__doc__)  # its own, not an inherited one
        if doc:  # the first words of the docstring are on the page, in order
            first = " ".join(re.findall(r"\w+", plain(doc))[:8])
            assert first in words, f"{name}: its docstring ({first!r}) is not on the API page"
    for modname in public_modules():
        assert f"module-{modname}" in ids, f"module {modname} is not on the API page"


def test_api_page_is_in_the_navigation(site):
    assert 'href="../book/api.html"' in (site / "chapters" / f"{Path(chapter_pages()[0]).name}.html").read_text(encoding="utf-8")


# --- self-contained pages ------------------------------------------------------


@pytest.mark.parametrize("page", site_pages())
def test_page_loads_no_script_style_or_font_from_the_network(site, page):
    for tag, a in tags(site, page):
        if tag == "script" and a.get("src"):
            assert "://" not in a["src"], f"{page}: script from the network: {a['src']}"
        if tag == "link" and a.get("rel") in ("stylesheet", "preload", "modulepreload"):
            assert "://" not in a.get("href", ""), f"{page}: {a['rel']} from the network: {a['href']}"
        if tag == "img":
            assert "://" not in a.get("src", ""), f"{page}: image from the network: {a['src']}"


def test_mathjax_is_served_by_the_site(site):
    # sphinx-mathjax-offline: every page with math loads MathJax from _static
    assert (site / "_static" / "mathjax" / "tex-chtml.js").is_file()
    with_math = [p for p in site_pages() if 'class="math' in (site / p).read_text(encoding="utf-8")]
    assert with_math
    for page in with_math:
        srcs = [a["src"] for tag, a in tags(site, page)
                if tag == "script" and re.search(r"(^|/)(tex-[\w-]+|mathjax|MathJax)(\.min)?\.js", a.get("src", ""))]
        assert srcs and all("_static/mathjax/" in s for s in srcs), (page, srcs)


def test_widget_scripts_are_local_and_only_on_pages_with_widgets(site):
    # require.js on a page without widgets would break the theme's scripts: it must
    # not leak into every page (as it would from a _static/ folder, see _config.yml)
    widgets = set(widget_pages())
    for page in site_pages():
        srcs = [a.get("src", "") for tag, a in tags(site, page) if tag == "script"]
        loads = [s for s in srcs if "require" in s or "embed-amd" in s]
        if page in widgets:
            assert any("_static/widgets/require.js" in s for s in loads) and any("_static/widgets/embed-amd.js" in s for s in loads), (page, loads)
        else:
            assert not loads, f"{page} has no widgets but loads {loads}"


def test_widget_manager_is_vendored(site):
    if not widget_pages():
        pytest.skip("no page of the built book embeds widget state")
    if not vendored():
        pytest.skip("widget scripts not vendored (no npm when the book was built; see book/_vendor/vendor_js.py): "
                    "widgets on the website stay blank, their static figures still show")
    for page in widget_pages():
        fonts = site / Path(page).parent / "@jupyter-widgets" / "html-manager" / "dist"
        assert list(fonts.glob("*.woff2")), f"the widget manager's fonts are not served beside {page}"


# --- figures ----------------------------------------------------------------------


def figure_cells(notebook: Path) -> int:
    """Code cells that draw a figure at top level (``plt.subplots(``/``plt.figure(`` unindented), widget cells aside."""
    import json

    cells = json.loads(notebook.read_text(encoding="utf-8"))["cells"]
    count = 0
    for cell in cells:
        source = "".join(cell["source"]) if isinstance(cell["source"], list) else cell["source"]
        if cell["cell_type"] == "code" and "NBVAL_SKIP" not in source:
            count += bool(re.search(r"^\S.*\bplt\.(subplots|figure)\(", source, flags=re.M))
    return count


@pytest.mark.parametrize("chapter", chapter_pages())
def test_chapter_page_shows_its_figures(site, chapter):
    # a kernel with MPLBACKEND=Agg draws nothing: the page would have no figures at all
    images = [a["src"] for tag, a in tags(site, f"{chapter}.html") if tag == "img" and "_images/" in a.get("src", "")]
    expected = figure_cells(ROOT / f"{chapter}.ipynb")
    assert len(images) >= expected, f"{chapter}: {len(images)} figures on the page, {expected} cells draw one"
    for src in images:
        assert (site / "chapters" / src).resolve().is_file(), src


@pytest.mark.parametrize("chapter", chapter_pages())
def test_every_figure_has_alt_text_that_says_what_it_draws(site, chapter):
    """A figure's alt text is its description (seqlab.plot.describe_figure, via book/_ext/figure_alt.py), not the
    image file's path, which is what a reader who cannot see the figure would otherwise hear."""
    images = [a for tag, a in tags(site, f"{chapter}.html") if tag == "img" and "_images/" in a.get("src", "")]
    bare = [a["src"] for a in images if not a.get("alt") or a["alt"].endswith(".png")]
    assert not bare, f"{chapter}: {len(bare)} of {len(images)} figures have no description: {bare[:3]}"
    assert all("panel" in a["alt"] for a in images), chapter


@pytest.mark.parametrize("page", widget_pages() or ["(none)"])
def test_every_widget_has_a_static_figure_before_it(site, page):
    if page == "(none)":
        pytest.skip("no page of the built book embeds widgets")
    text = (site / page).read_text(encoding="utf-8")
    first_widget = text.index("application/vnd.jupyter.widget-view+json")
    assert "_images/" in text[:first_widget], f"{page}: a widget with no static figure before it"


@pytest.mark.parametrize("chapter", chapter_pages())
def test_every_evidence_box_follows_its_pages_prose(site, chapter):
    """The build runs each chapter beside its file, so ``evidence_box(page)`` finds the prose's order; where it could
    not, the box would say so (and list the claims in the order they were made)."""
    text = (site / f"{chapter}.html").read_text(encoding="utf-8")
    assert "What this page measured" in text, chapter
    assert "is not in this folder" not in text, f"{chapter}: the evidence box could not read its page"


@pytest.mark.parametrize("chapter", chapter_pages())
def test_every_claim_link_says_what_it_is_and_points_at_a_row_of_the_box(site, chapter):
    """A {claim}`name` in the prose is a link to its row of the evidence box, with a tooltip saying so (a reader
    meets claim names from the first sections on, before the box)."""
    text = (site / f"{chapter}.html").read_text(encoding="utf-8")
    links = re.findall(r'<a class="[^"]*claim-ref[^"]*" href="#claim-(\w+)"( title="[^"]*")?', text)
    assert links, f"{chapter}: no claim link"
    for name, title in links:
        assert 'id="claim-' + name + '"' in text, f"{chapter}: {name} links to no row of the box"
        assert "What this page measured" in html.unescape(title), f"{chapter}: the link to {name} has no tooltip"
