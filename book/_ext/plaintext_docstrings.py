"""Sphinx extension: render seqlab's indented docstring blocks as preformatted text.

seqlab's docstrings are written to be read as plain text (``help()``, an
editor): a paragraph ending in ``:`` followed by an indented block holds a
glossary, an equation or an example, aligned in columns. reStructuredText
would read that block as a block quote, run its lines together and, where a
line is indented further, fail ("Unexpected indentation"). This hook turns
each such block into a plain-text code block (``.. code-block:: text``: no
Python colouring of a glossary) when autodoc reads a docstring. Blocks
already introduced by ``::``, doctest blocks (``>>>``) and blocks under
directives or list items are left alone. A list that starts on the line right
after a paragraph (fine in plain text, a run-on paragraph in reST) gets the
blank line reST needs before it.
"""
from __future__ import annotations

import re

LIST_ITEM = re.compile(r"^\s*(?:[-*+]|\d+[.)]|#\.)\s")


def _indent(line: str) -> int:
    return len(line) - len(line.lstrip())


QUOTED = re.compile(r"``([^`]+)``( {2,})?")


def unquote(line: str) -> str:
    """A preformatted line without reST's inline-code quotes, which a code block shows as they are ("``x``" becomes
    "x"); a quoted name followed by a column gap keeps the line's columns where they were."""
    return QUOTED.sub(lambda m: m.group(1) + (m.group(2) + "    " if m.group(2) else ""), line)


def literal_blocks(lines: list[str]) -> list[str]:
    """``lines`` with a ``.. code-block:: text`` inserted before every plain indented block; the lines of those blocks
    and of ``::`` literal blocks are unquoted (both are shown as written)."""
    out: list[str] = []
    block = None  # the indentation of the paragraph that opened the indented block we are in
    para = ""     # the last non-blank line outside any indented block
    plain = preformatted = False
    for i, line in enumerate(lines):
        if not line.strip():
            out.append(line)
            continue
        if block is not None and _indent(line) > block:
            out.append(unquote(line) if preformatted else line)  # still inside the block
            continue
        block = None
        if (
            i >= 1 and not lines[i - 1].strip()
            and para.strip()
            and _indent(line) > _indent(para)
        ):
            block = _indent(para)  # an indented block opens here
            plain = not (
                para.rstrip().endswith("::")
                or para.lstrip().startswith("..")
                or LIST_ITEM.match(para)
                or line.lstrip().startswith(">>>")
            )
            if plain:
                out += [" " * block + ".. code-block:: text", ""]
            # shown as written: a plain block (now a code block) and a "::" literal block, not a doctest
            preformatted = plain or (para.rstrip().endswith("::") and not para.lstrip().startswith("..")
                                     and not line.lstrip().startswith(">>>"))
            out.append(unquote(line) if preformatted else line)
            continue
        para = line
        out.append(line)
    return out


def list_breaks(lines: list[str]) -> list[str]:
    """``lines`` with a blank line between a paragraph and a list that follows it directly."""
    out: list[str] = []
    in_literal = None  # indentation of the paragraph that opened a literal block we are in
    for i, line in enumerate(lines):
        if line.strip() and in_literal is not None and _indent(line) <= in_literal:
            in_literal = None
        prev = lines[i - 1] if i else ""
        if (
            in_literal is None
            and LIST_ITEM.match(line)
            and prev.strip()
            and not LIST_ITEM.match(prev)
            and _indent(prev) == _indent(line)
            and not prev.rstrip().endswith("::")
        ):
            out.append("")
        if line.strip() and line.rstrip().endswith("::") and in_literal is None:
            in_literal = _indent(line)
        out.append(line)
    return out


def _process(app, what, name, obj, options, lines):
    lines[:] = literal_blocks(list_breaks(lines))


def setup(app):
    app.connect("autodoc-process-docstring", _process)
    return {"version": "1.0", "parallel_read_safe": True, "parallel_write_safe": True}
