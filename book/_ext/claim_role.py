"""Sphinx extension: the role {claim}`name` links a sentence to its row in the page's evidence box.

Each chapter ends with the table "What this page measured" (``seqlab.evidence_box()``), one row per
``seqlab.claim(name, ...)``, each row carrying the anchor ``claim-<name>``. A summary bullet names the
claims behind it with this role, shown as the claim's name in code type, linked to its row; the course
lint (``code/tests/course_lint.py``) fails a summary bullet that names none, or a name no claim has.
"""
from __future__ import annotations

import re

from docutils import nodes

NAME = re.compile(r"^[A-Za-z][A-Za-z0-9_]*$")
TITLE = "a claim: its row in “What this page measured”, at the end of the page, gives the measured value and its rule"


def claim_role(name, rawtext, text, lineno, inliner, options=None, content=None):
    text = text.strip()
    if not NAME.match(text):
        msg = inliner.reporter.error(f"{{claim}} takes a claim's name (an identifier), got {text!r}", line=lineno)
        return [inliner.problematic(rawtext, rawtext, msg)], [msg]
    ref = nodes.reference(rawtext, "", refuri=f"#claim-{text}", classes=["claim-ref"],
                          reftitle=TITLE)   # the tooltip says what the name is, on its first use as on every other
    ref += nodes.literal(text, text)
    return [ref], []


def setup(app):
    app.add_role("claim", claim_role)
    return {"version": "1.0", "parallel_read_safe": True, "parallel_write_safe": True}
