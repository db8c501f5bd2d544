"""Sphinx extension: bibliography labels that keep a year's letter (2022a, 2022b) whole.

The course cites author–year ("Gu et al., 2022a"), and gives two works of the same first author and
year the years 2022a and 2022b in ``book/references.bib`` so that those citations differ. pybtex's
``alpha`` labels take a year's last two characters, which turns 2022a into "2a" ([GGR2a]); this style
is ``alpha`` with the year's last two digits and its letter ([GGR22a]). Selected with
``bibtex_default_style: alpha_year_letter`` in ``_config.yml``.
"""
from __future__ import annotations

import re

from pybtex.plugin import register_plugin
from pybtex.style.formatting.alpha import Style as AlphaStyle
from pybtex.style.labels.alpha import LabelStyle as AlphaLabelStyle

YEAR = re.compile(r"^(\d{4})([a-z]?)$")


class LabelStyle(AlphaLabelStyle):
    def format_label(self, entry):
        label = super().format_label(entry)
        m = YEAR.match(entry.fields.get("year", ""))
        if m and m.group(2):  # alpha appended year[-2:], "2a": put the two digits and the letter instead
            label = label[:-2] + m.group(1)[-2:] + m.group(2)
        return label


class Style(AlphaStyle):
    default_label_style = "alpha_year_letter"


def setup(app):
    register_plugin("pybtex.style.labels", "alpha_year_letter", LabelStyle)
    register_plugin("pybtex.style.formatting", "alpha_year_letter", Style)
    return {"version": "1.0", "parallel_read_safe": True, "parallel_write_safe": True}
