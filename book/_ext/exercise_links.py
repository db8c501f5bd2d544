"""Sphinx extension: "Try the exercises" on every chapter page, opening its exercise notebook on Binder or Colab.

Each chapter ``chapters/NN_name.ipynb`` has a generated exercise notebook ``exercises/NN_name.ipynb``
(``make exercises``; ``seqlab.exercises``). This extension puts, right under the heading
*Exercises* of each chapter page, a line with two links that open that notebook the way the
page's launch buttons open the chapter: the same Binder and Colab addresses, the same repository
and branch (``_config.yml``'s ``repository`` and ``launch_buttons``), with ``exercises/`` in place
of ``chapters/``. A chapter page without an *Exercises* section gets the line at its end.
"""
from __future__ import annotations

import re
from urllib.parse import urlsplit

from docutils import nodes

CHAPTER = re.compile(r"^chapters/(\d+[a-z]?_\w+)$")


def launch_urls(repository_url: str, branch: str, binderhub_url: str, colab_url: str, notebook: str,
                interface: str = "jupyterlab") -> dict[str, str]:
    """``{"Binder": url, "Colab": url}`` for a notebook path of the repository, as the launch buttons build them."""
    owner, repo = urlsplit(repository_url).path.strip("/").split("/")[:2]
    ui = "lab/tree" if interface == "jupyterlab" else "tree"
    return {"Binder": f"{binderhub_url.rstrip('/')}/v2/gh/{owner}/{repo}/{branch}?urlpath={ui}/{notebook}",
            "Colab": f"{colab_url.rstrip('/')}/github/{owner}/{repo}/blob/{branch}/{notebook}"}


def _settings(app) -> dict | None:
    options = getattr(app.config, "html_theme_options", {}) or {}
    launch = options.get("launch_buttons", {}) or {}
    url = options.get("repository_url")
    if not url or not launch.get("binderhub_url") or not launch.get("colab_url"):
        return None
    return dict(repository_url=url, branch=options.get("repository_branch") or "main",
                binderhub_url=launch["binderhub_url"], colab_url=launch["colab_url"],
                interface=launch.get("notebook_interface", "jupyterlab"))


def _line(urls: dict[str, str]) -> nodes.paragraph:
    para = nodes.paragraph(classes=["try-exercises"])
    para += nodes.strong(text="Try the exercises: ")
    para += nodes.Text("this chapter's exercise notebook, with stubs to fill in and checkers that coach, on ")
    for i, (where, url) in enumerate(urls.items()):
        if i:
            para += nodes.Text(" or on ")
        para += nodes.reference("", where, refuri=url, reftitle=f"Try the exercises on {where}",
                                classes=["try-exercises-link"])
    para += nodes.Text(" (locally: make lab).")
    return para


def add_links(app, doctree, docname):
    m = CHAPTER.match(docname)
    settings = _settings(app)
    if not m or settings is None:
        return
    urls = launch_urls(settings["repository_url"], settings["branch"], settings["binderhub_url"],
                       settings["colab_url"], f"exercises/{m.group(1)}.ipynb", settings["interface"])
    for section in doctree.findall(nodes.section):
        title = section.next_node(nodes.title)
        if title is not None and title.astext().strip() == "Exercises":
            section.insert(section.index(title) + 1, _line(urls))
            return
    doctree += _line(urls)


def setup(app):
    app.connect("doctree-resolved", add_links)
    return {"version": "1.0", "parallel_read_safe": True, "parallel_write_safe": True}
