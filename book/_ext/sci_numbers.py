"""Sphinx extension: numbers in Python's exponent notation read as powers of ten in the prose.

A measured value glued into a sentence with a format such as ``.0e`` comes out as ``6e+02`` or ``2.5e-05``: fine
in code and printed output, hard to read in a sentence. This post-transform rewrites such numbers in running text
and in Markdown an output displays (an evidence box, after myst-nb has pasted its glued values) as ``6 × 10²`` and
``2.5 × 10⁻⁵`` (and ``1.4e+00`` as ``1.4``). Code, printed outputs, inline code and mathematics are left as they are, and so is a hand-written
``1e-3`` (Python always writes two exponent digits).
"""
from __future__ import annotations

import re

from docutils import nodes
from sphinx.transforms.post_transforms import SphinxPostTransform

NUMBER = re.compile(r"(?<![\w.])(-?\d+(?:\.\d+)?)e([+-])(\d{2,3})(?![\w])")
SUPERSCRIPT = str.maketrans("0123456789-", "⁰¹²³⁴⁵⁶⁷⁸⁹⁻")
KEEP = (nodes.literal_block, nodes.literal, nodes.math, nodes.math_block, nodes.raw, nodes.FixedTextElement)


def power_of_ten(text: str) -> str:
    """``"6e+02 and 2.5e-05"`` -> ``"6 × 10² and 2.5 × 10⁻⁵"``."""
    def one(m):
        if float(m.group(1)) == 0:
            return "0"                                  # 0e+00: a zero, not a power of ten
        exponent = int(m.group(3)) * (-1 if m.group(2) == "-" else 1)
        if exponent == 0:
            return m.group(1)                           # 1.4e+00: the number itself, not 1.4 × 10⁰
        return f"{m.group(1)} × 10{str(exponent).translate(SUPERSCRIPT)}"
    return NUMBER.sub(one, text)


def _kept(node) -> bool:
    parent = node.parent
    while parent is not None:
        if isinstance(parent, KEEP):
            return True
        parent = parent.parent
    return False


class PowersOfTen(SphinxPostTransform):
    default_priority = 900  # after myst-nb pastes glued values (its own post-transform runs at 5)

    def run(self, **kwargs):
        for text in list(self.document.findall(nodes.Text)):
            if NUMBER.search(text) and not _kept(text):
                text.parent.replace(text, nodes.Text(power_of_ten(str(text))))


def setup(app):
    app.add_post_transform(PowersOfTen)
    return {"version": "1.0", "parallel_read_safe": True, "parallel_write_safe": True}
