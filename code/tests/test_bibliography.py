"""book/references.bib parses (the book build fails on a syntax error) and names each key once."""
from pathlib import Path

import pytest

pybtex = pytest.importorskip("pybtex.database")

BIB = Path(__file__).resolve().parents[2] / "book" / "references.bib"


def test_the_bibliography_parses_with_unique_keys():
    text = BIB.read_text(encoding="utf-8")
    db = pybtex.parse_string(text, "bibtex")            # raises on a missing brace
    keys = [line.split("{", 1)[1].split(",", 1)[0].strip() for line in text.splitlines() if line.startswith("@")]
    assert len(keys) == len(set(keys)), f"keys given twice: {sorted(k for k in set(keys) if keys.count(k) > 1)}"
    assert len(db.entries) == len(keys)
