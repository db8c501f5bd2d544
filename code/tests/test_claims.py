"""seqlab.claim and the evidence box: a claim fails the run when its rule does not hold, and the table shows each one."""
import json

import numpy as np
import pytest
import torch

import seqlab
from seqlab import claims


@pytest.fixture(autouse=True)
def fresh():
    claims.reset()
    yield
    claims.reset()


@pytest.mark.parametrize("value, rule, holds", [
    (0.6, "> 0.5", True), (0.5, "> 0.5", False), (0.5, ">= 0.5", True), (0.04, "< 0.05", True),
    (0.05, "< 0.05", False), (1.0, "<= 1", True), (0, "== 0", True), (1, "!= 0", True),
    (1.0, "in [0.9, 1.2]", True), (1.2, "in [0.9, 1.2]", True), (1.2, "in [0.9, 1.2)", False), (0.9, "in (0.9, 1.2]", False),
    (1.90, "within 0.05 of 1.88", True), (1.95, "within 0.05 of 1.88", False), (3e-8, "< 1e-6", True),
    (float("nan"), "> 0", False), (float("nan"), "< 0", False), (-2.5, ">= -3", True), (0.7, "≥ 0.7", True),
])
def test_rules(value, rule, holds):
    assert claims.check_rule(value, rule) is holds


def test_a_claim_that_holds_is_recorded_and_glued(monkeypatch):
    glued = {}
    monkeypatch.setattr(claims, "glue", lambda name, value, display=False: glued.update({name: value}))
    c = seqlab.claim("most", "most of the weight is on position 0", torch.tensor(0.62), "> 0.5")
    assert c.holds and c.value == pytest.approx(0.62) and isinstance(c.value, float)
    assert glued == {"most": pytest.approx(0.62)}
    assert "✓ most" in repr(c) and "> 0.5" in repr(c)


def test_a_claim_that_fails_raises_with_name_value_and_rule():
    with pytest.raises(claims.ClaimError, match=r"'most' does not hold.*measured 0\.39, rule > 0\.5"):
        seqlab.claim("most", "most of the weight", 0.39, "> 0.5")
    assert isinstance(claims.ClaimError("x"), AssertionError)        # it replaces an assert


def test_a_bool_claim_needs_its_rule_in_words():
    c = seqlab.claim("rise", "add-k rises much more", 0.698, bool(0.698 > 3 * 0.096), rule="> 3 × Witten–Bell's rise")
    assert c.rule == "> 3 × Witten–Bell's rise"
    assert seqlab.claim("np_bool", "numpy's bool", 1.0, np.bool_(True), rule="it holds").holds
    with pytest.raises(ValueError, match="rule=..."):
        seqlab.claim("rise", "add-k rises", 0.698, True)
    with pytest.raises(claims.ClaimError):
        seqlab.claim("rise", "add-k rises", 0.698, False, rule="> 3 × WB")
    with pytest.raises(ValueError, match="give the rule once"):
        seqlab.claim("rise", "add-k rises", 0.698, "> 0.5", rule="> 0.5")


def test_a_sequence_must_hold_for_every_element():
    c = seqlab.claim("seeds", "every seed solves it", [0.99, 1.0, 0.97], "> 0.95")
    assert c.rule == "> 0.95 for each" and c.shown == "0.99, 1, 0.97"
    with pytest.raises(claims.ClaimError):
        seqlab.claim("seeds", "every seed solves it", torch.tensor([0.99, 0.9]), "> 0.95")


@pytest.mark.parametrize("kwargs, error, words", [
    (dict(name="two words"), ValueError, "identifier"),
    (dict(name=""), ValueError, "identifier"),
    (dict(text=""), TypeError, "in words"),
    (dict(value="high"), TypeError, "must be a number"),
    (dict(value=torch.zeros(2, 2)), ValueError, "1-D sequence"),
    (dict(value=[]), ValueError, "empty"),
    (dict(holds="more than half"), ValueError, "is not one of the forms"),
    (dict(holds="in [2, 1]"), ValueError, "lower end"),
    (dict(holds=0.5), TypeError, "a rule str"),
    (dict(holds=None), TypeError, "a rule str"),
    (dict(fmt=2), TypeError, "format spec"),
    (dict(fmt=".2q"), ValueError, "format code"),
])
def test_bad_arguments_name_expected_and_got(kwargs, error, words):
    args = dict(name="acc", text="it learns", value=0.9, holds="> 0.5") | kwargs
    with pytest.raises(error, match=words):
        seqlab.claim(args.pop("name"), args.pop("text"), args.pop("value"), args.pop("holds"), **args)


def test_the_evidence_box_lists_every_claim_in_order_as_a_table():
    seqlab.claim("acc", "it learns the task", 0.97, "> 0.9", fmt=".0%")
    seqlab.claim("gap", "a | in words", 12, ">= 3")
    seqlab.claim("acc", "it learns the task", 0.98, "> 0.9", fmt=".0%")   # a re-run cell replaces its claim
    box = seqlab.evidence_box()
    assert [c.name for c in box.claims] == ["gap", "acc"] and len(box) == 2
    md = box._repr_markdown_().splitlines()
    assert md[0].startswith("| claim |") and len(md) == 6 and md[4] == ""
    assert md[5] == seqlab.claims.ROUNDING   # under the table: why a bound in the prose can differ in its last digit
    assert md[2] == '| <span id="claim-gap"></span>`gap` | a \\| in words | 12 | >= 3 | ✓ |'
    assert "| 98% | > 0.9 | ✓ |" in md[3]
    assert "2 claims" in repr(box)


def test_the_rounding_note_under_the_box_states_what_bound_does():
    assert seqlab.bound(0.1485, "at least", 3) == 0.148 and seqlab.bound(0.1485, "at most", 3) == 0.149
    assert '0.1485 is written "at least 0.148" and "at most 0.149"' in seqlab.claims.ROUNDING


def test_the_evidence_box_follows_the_page_it_is_given(tmp_path):
    """A claim sits where the prose first cites it before the summary; one cited only in the summary (or nowhere) sits
    where its code cell makes it; claims not on the page at all come last."""
    md = lambda *t: {"cell_type": "markdown", "source": list(t)}
    code = lambda *t: {"cell_type": "code", "source": list(t)}
    page = tmp_path / "99_page.ipynb"
    page.write_text(json.dumps({"cells": [
        md("## One\n", "In short: {claim}`late` first."),                      # 0
        code('seqlab.claim("early", "w", 1, "> 0")'),                         # 1
        code('seqlab.claim("summary_only", "w", 1, "> 0")'),                  # 2
        code('seqlab.claim("late", "w", 1, "> 0")\n', "{claim}`early` in code is not prose"),   # 3
        md("Here {claim}`early` is read."),                                   # 4
        md("## Summary\n", "- {claim}`summary_only` and {claim}`early`")]}))  # 5
    for name in ("early", "summary_only", "late", "elsewhere"):              # the order the cells made them
        seqlab.claim(name, "words", 1, "> 0")
    assert claims.page_places(page) == {"late": 0, "summary_only": 2, "early": 4}
    box = seqlab.evidence_box(page)
    assert [c.name for c in box.claims] == ["late", "summary_only", "early", "elsewhere"] and not box.note
    assert [c.name for c in seqlab.evidence_box().claims] == ["early", "summary_only", "late", "elsewhere"]  # as made


def test_an_evidence_box_whose_page_is_not_here_keeps_the_order_made_and_says_so(tmp_path):
    seqlab.claim("b", "words", 1, "> 0")
    seqlab.claim("a", "words", 1, "> 0")
    box = seqlab.evidence_box(tmp_path / "absent.ipynb")
    assert [c.name for c in box.claims] == ["b", "a"]
    assert "absent.ipynb is not in this folder" in box._repr_markdown_().splitlines()[0]
    with pytest.raises(TypeError, match="page must be the notebook's file name.*got int"):
        seqlab.evidence_box(10)


def test_an_empty_box_fails():
    with pytest.raises(claims.ClaimError, match="no claim"):
        seqlab.evidence_box()


def test_a_cell_that_ends_with_a_claim_shows_nothing(monkeypatch):
    """IPython shows a cell's last value; a claim's goes to the evidence box instead, so it displays as nothing."""
    from IPython.core.formatters import DisplayFormatter
    monkeypatch.setattr(seqlab.claims, "glue", lambda *a, **k: None)
    c = seqlab.claim("shown_nowhere", "a claim", 0.7, "> 0.5")
    assert DisplayFormatter().format(c) == ({}, {})
    assert "✓ shown_nowhere" in repr(c)                              # printed on purpose, it still says what it is
