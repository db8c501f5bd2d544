"""Sphinx extension: each page loads each script once.

Sphinx 7.4 registers an inline script that an extension adds after the
builder started (``app.add_js_file(None, body=...)``, as sphinx-thebe does)
twice: once with the file name ``None`` and once with ``''``. Every page of a
Jupyter Book 1 site then declares sphinx-thebe's ``const THEBE_JS_URL`` twice,
and the browser reports "Identifier 'THEBE_JS_URL' has already been declared"
on every page. This hook drops such exact duplicates from each page's scripts
(same file or body, priority and attributes), keeping the first.
"""
from __future__ import annotations


def _key(js):
    filename = getattr(js, "filename", js) or ""
    attributes = getattr(js, "attributes", {}) or {}
    return filename, getattr(js, "priority", 500), tuple(sorted((k, str(v)) for k, v in attributes.items()))


def _dedupe(app, pagename, templatename, context, doctree):
    scripts = context.get("script_files")
    if not isinstance(scripts, list):
        return
    seen, unique = set(), []
    for js in scripts:
        key = _key(js)
        if key not in seen:
            seen.add(key)
            unique.append(js)
    scripts[:] = unique


def setup(app):
    app.connect("html-page-context", _dedupe, priority=900)  # after the per-page scripts of myst-nb
    return {"version": "1.0", "parallel_read_safe": True, "parallel_write_safe": True}
