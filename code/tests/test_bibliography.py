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


def _formatted(db):
    """``db`` formatted by the book's label style, registered by book/_ext/bib_labels.py as the build does."""
    import importlib.util

    from pybtex.plugin import find_plugin

    spec = importlib.util.spec_from_file_location("bib_labels", BIB.parent / "_ext" / "bib_labels.py")
    ext = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(ext)
    ext.setup(None)
    return find_plugin("pybtex.style.formatting", "alpha_year_letter")().format_bibliography(db)


def test_author_year_citations_differ_and_labels_keep_the_year_letter():
    """Two works with the same first author, author count (one, two, "et al.") and year would be cited alike
    ("Gu et al., 2022"): their years carry a letter (2022a, 2022b), and the bibliography's labels keep it whole
    (book/_ext/bib_labels.py: [GGR22a], where pybtex's alpha labels give [GGR2a])."""
    import re
    from collections import defaultdict

    db = pybtex.parse_file(str(BIB))
    cited_as = defaultdict(list)
    for key, e in db.entries.items():
        people = e.persons.get("author", [])
        if people and "year" in e.fields:
            n = min(len(people), 3)
            cited_as[(people[0].last_names[0], n if n < 3 else "et al.", e.fields["year"])].append(key)
    assert not {k: v for k, v in cited_as.items() if len(v) > 1}, "cited alike"
    labels = {e.key: e.label for e in _formatted(db)}
    for key, e in db.entries.items():
        m = re.match(r"^\d\d(\d\d)([a-z]?)$", e.fields.get("year", ""))
        if m and key in labels:
            assert labels[key].endswith(m.group(1) + m.group(2)), (key, labels[key])
    assert labels["gu2022efficiently"] == "GGR22a" and labels["gu2022parameterization"] == "GGGR22b"


def test_the_package_cites_only_labels_the_bibliography_has():
    """A docstring that names a reference by its label ("[YWS+24a] in the References") names one the list shows."""
    import re

    labels = {e.label for e in _formatted(pybtex.parse_file(str(BIB)))}
    cited = {m for path in (BIB.parents[1] / "code" / "seqlab").rglob("*.py")
             for m in re.findall(r"\[([A-Z][A-Za-z+]*\d{2}[a-z]?)\]", path.read_text(encoding="utf-8"))}
    assert cited and cited <= labels, sorted(cited - labels)
