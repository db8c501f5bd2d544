"""Course lint: every chapter follows the template, is in the table of contents, and is stripped."""
import copy
import re
from pathlib import Path

import pytest

from course_lint import (CHAPTER_NAME, NUMBERS_CHECKED, ROOT, exercise_labels, load, number_problems, problems,
                         prose_numbers, toc_files)

CHAPTERS = sorted((ROOT / "chapters").glob("*.ipynb"))


def test_there_are_chapters():
    assert CHAPTERS, "no notebooks in chapters/"


@pytest.mark.parametrize("path", CHAPTERS, ids=lambda p: p.name)
def test_chapter_follows_the_template(path):
    assert CHAPTER_NAME.match(path.name), f"{path.name}: chapters are named NN_name.ipynb (a section: NNb_name.ipynb)"
    assert problems(load(path)) == []


@pytest.mark.parametrize("path", [p for p in CHAPTERS if p.name.split("_")[0] in NUMBERS_CHECKED], ids=lambda p: p.name)
def test_numbers_in_prose_come_from_the_page(path):
    assert number_problems(load(path)) == []


def test_toc_and_chapters_agree():
    listed = toc_files()
    for path in CHAPTERS:
        assert f"chapters/{path.stem}" in listed, f"{path.name} is not in _toc.yml"
    for entry in listed:
        assert (ROOT / f"{entry}.md").exists() or (ROOT / f"{entry}.ipynb").exists(), f"_toc.yml lists {entry}, which does not exist"


def test_exercise_labels_are_unique_across_the_book():
    labels = [label for path in CHAPTERS for label in exercise_labels(load(path))]
    assert len(labels) == len(set(labels))


# --- the lint itself can fail ----------------------------------------------


@pytest.fixture
def good():
    return load(CHAPTERS[0])


def _break(nb, predicate, edit):
    nb = copy.deepcopy(nb)
    for cell in nb["cells"]:
        if predicate(cell):
            edit(cell)
    return nb


def test_lint_catches_outputs(good):
    bad = _break(good, lambda c: c["cell_type"] == "code", lambda c: c.update(execution_count=1))
    assert any("outputs" in p for p in problems(bad))


def test_lint_catches_a_repeated_cell_id(good):
    bad = copy.deepcopy(good)
    bad["cells"][2]["id"] = bad["cells"][1]["id"]
    assert any("cell ids must be unique" in p and bad["cells"][1]["id"] in p for p in problems(bad))


def test_lint_catches_missing_asserts(good):
    def drop_asserts(cell):
        text = "".join(cell["source"])
        cell["source"] = "\n".join(line for line in text.splitlines() if not line.lstrip().startswith("assert"))

    bad = _break(good, lambda c: c["cell_type"] == "code", drop_asserts)
    assert "no assert: the chapter checks none of its claims" in problems(bad)


def test_lint_catches_missing_solutions_and_objectives(good):
    def rename_solutions(cell):
        cell["source"] = "".join(cell["source"]).replace("{solution-start} ch1", "{solution-start} other").replace("{solution} ch1", "{solution} other")

    bad = _break(good, lambda c: c["cell_type"] == "markdown", rename_solutions)
    assert sum("has no solution" in p for p in problems(bad)) >= 3
    bad = _break(good, lambda c: c["cell_type"] == "markdown", lambda c: c.update(source="".join(c["source"]).replace("Learning objectives", "Goals")))
    assert "missing the template part 'Learning objectives'" in problems(bad)


def test_lint_catches_a_missing_colab_cell(good):
    bad = copy.deepcopy(good)
    first_code = next(i for i, c in enumerate(bad["cells"]) if c["cell_type"] == "code")
    del bad["cells"][first_code]
    assert any("Colab" in p for p in problems(bad))



# --- the number lint: flags quoted measurements, not counts, settings or math ---

FLAGGED = {
    "a decimal": ("The model reaches 1.9 bits per character.", "1.9"),
    "a decimal at the end of a sentence": ("Its loss fell to 0.25.", "0.25"),
    "a ratio": ("Streaming is 10× faster here.", "10×"),
    "a ratio with an x": ("It is 3x slower.", "3x"),
    "a ratio in front": ("It multiplies the parameters (×4 for the LSTM).", "×4"),
    "a share": ("About 50 % of the windows were copied.", "50 %"),
    "a share, no space": ("Only 3% of the units saturate.", "3%"),
    "a decimal in a table": ("| model | bits |\n|---|---|\n| RNN | 2.31 |", "2.31"),
    "a decimal in a list": ("- the RNN: about 0.6 per step", "0.6"),
    "a decimal in an exercise": ("```{exercise}\n:label: ex\n\nExplain why 0.63 is close to 0.5.\n```", "0.63"),
    "a decimal after a citation's sentence": ("Shannon estimated one bit {cite:p}`s51`. We measured 1.2 bits.", "1.2"),
}

NOT_FLAGGED = {
    "chapter numbers": "As chapter 3 showed, and chapters 5–6 will use.",
    "years": "Elman (1990) and Hochreiter and Schmidhuber (1997) introduced them.",
    "counts and sizes": "A 2-layer RNN of width 192 reads 4,000 tokens at lag 40 for 500 steps.",
    "equation and section numbers": "By equation 3.1 (see section 2.4) and Python 3.12, it holds.",
    "a shape": "A $2 \\times 2$ matrix, or a 2×2 one, has two eigenvalues.",
    "inline math": "The forget gate starts at $\\sigma(3) \\approx 0.95$.",
    "display math": "$$\nr \\approx 0.7 \\rho\n$$",
    "inline code": "Call `train(lr=3e-3, clip=0.5)` and `data.batch(0.9)`.",
    "fenced code": "```python\nloss = 0.25 * x  # 10x\n```",
    "an indented code block": "Check it:\n\n    check.bits(0.5)\n",
    "glued numbers": "It reaches {glue:text}`rnn_bits:.2f` bits, {glue:text}`speedup:.0f`× faster.",
    "a cited paper's figure": "Transformers reached 28.4 BLEU on WMT 2014 {cite:p}`vaswani2017attention`.",
    "a named setting": "We train with learning rate 0.05 and temperature 1.5, clipping at 1.",
    "a link target": "See [the docs](https://example.org/v2.1/page.html).",
    "directive options": "```{solution} ex\n:class: dropdown\n\nThe answer.\n```",
}


@pytest.mark.parametrize("name", FLAGGED)
def test_number_lint_flags_quoted_measurements(name):
    markdown, figure = FLAGGED[name]
    assert figure in [f for f, _ in prose_numbers(markdown)], prose_numbers(markdown)


@pytest.mark.parametrize("name", NOT_FLAGGED)
def test_number_lint_leaves_counts_settings_math_and_code_alone(name):
    assert prose_numbers(NOT_FLAGGED[name]) == []


def _with_markdown(nb, text, cell_type="markdown"):
    nb = copy.deepcopy(nb)
    nb["cells"].insert(2, {"cell_type": cell_type, "metadata": {}, "source": text,
                           **({"outputs": [], "execution_count": None} if cell_type == "code" else {})})
    return nb


def test_number_lint_catches_a_chapter_quoting_a_run(good):
    assert number_problems(good) == []
    bad = _with_markdown(good, "In longer runs the RNN reached 1.45 bits per character.")
    assert any("1.45" in p for p in number_problems(bad))


@pytest.mark.parametrize("words", ["the seed material", "The source material says so", "see CALIBRATION.md"])
def test_number_lint_catches_documents_the_reader_cannot_see(good, words):
    for cell_type in ("markdown", "code"):
        text = words if cell_type == "markdown" else f"# {words}\nx = 1"
        assert any("never seen" in p for p in number_problems(_with_markdown(good, text, cell_type))), cell_type


# --- the evidence box: every converted chapter ends with it, and every summary bullet names a claim ---

from course_lint import (EVIDENCE_HEADING, EVIDENCE_TODO, claim_names, evidence_problems, has_evidence_box,  # noqa: E402
                         summary_bullets)


def _prefix(path):
    return path.name.split("_")[0]


def test_evidence_todo_names_real_chapters():
    prefixes = {_prefix(p) for p in CHAPTERS}
    assert set(EVIDENCE_TODO) <= prefixes, set(EVIDENCE_TODO) - prefixes


@pytest.mark.parametrize("path", [p for p in CHAPTERS if _prefix(p) not in EVIDENCE_TODO], ids=lambda p: p.name)
def test_converted_chapters_end_with_an_evidence_box(path):
    assert has_evidence_box(load(path)), f"{path.name} is not in EVIDENCE_TODO, so it must end with seqlab.evidence_box()"


@pytest.mark.parametrize("path", [p for p in CHAPTERS if _prefix(p) not in EVIDENCE_TODO], ids=lambda p: p.name)
def test_the_evidence_box_is_given_its_own_page_so_that_its_rows_follow_the_prose(path):
    """``evidence_box(page)`` orders the rows by where the page cites or makes each claim (``page_places``); another
    page's name would order them by that page."""
    assert "".join(load(path)["cells"][-1]["source"]).strip() == f'seqlab.evidence_box("{path.name}")'


@pytest.mark.parametrize("path", [p for p in CHAPTERS if has_evidence_box(load(p))], ids=lambda p: p.name)
def test_every_summary_bullet_names_a_claim_the_page_makes(path):
    assert evidence_problems(load(path)) == []


def _md(text):
    return {"cell_type": "markdown", "metadata": {}, "source": text}


def _code(text, **metadata):
    return {"cell_type": "code", "metadata": metadata, "source": text, "outputs": [], "execution_count": None}


def _boxed_page(summary, code="seqlab.claim('acc', 'it learns', acc, '> 0.9')\nseqlab.claim('gap', 'a gap', g, '> 1')"):
    return {"cells": [
        _md("# A page"), _code(code), _md("## Summary\n\n" + summary + "\n\n## Exercises\n\nnone"),
        _md("## References\n\nnone\n\n" + EVIDENCE_HEADING),
        _code("seqlab.evidence_box()", mystnb={"markdown_format": "myst"}),
    ]}


GOOD_SUMMARY = "- It learns {claim}`acc`, and\n  keeps a gap {claim}`gap`.\n- The gap is real {claim}`gap`."


def test_evidence_lint_passes_a_good_page():
    nb = _boxed_page(GOOD_SUMMARY)
    assert evidence_problems(nb) == []
    assert claim_names(nb) == ["acc", "gap"]
    assert summary_bullets(nb) == ["- It learns {claim}`acc`, and keeps a gap {claim}`gap`.", "- The gap is real {claim}`gap`."]


def test_evidence_lint_fails_a_bullet_with_no_claim():
    problems_ = evidence_problems(_boxed_page(GOOD_SUMMARY + "\n- An unsupported statement."))
    assert any("names no claim" in p and "unsupported" in p for p in problems_), problems_


def test_evidence_lint_fails_a_claim_role_with_no_claim_behind_it():
    problems_ = evidence_problems(_boxed_page("- It learns {claim}`accuracy`."))
    assert any("{claim}`accuracy` names no claim" in p for p in problems_), problems_


@pytest.mark.parametrize("code, words", [
    ("seqlab.claim(f'acc_{n}', 'x', a, '> 1')\nseqlab.claim('acc', 'x', a, '> 1')\nseqlab.claim('gap', 'x', a, '> 1')", "without a literal name"),
    ("seqlab.claim('acc', 'x', a, '> 1')\nclaim('acc', 'x', a, '> 1')\nclaim('gap', 'x', a, '> 1')", "more than one place"),
    ("glue('acc', a)\nseqlab.claim('acc', 'x', a, '> 1')\nseqlab.claim('gap', 'x', a, '> 1')", "glued and also claimed"),
])
def test_evidence_lint_fails_bad_claims(code, words):
    problems_ = evidence_problems(_boxed_page(GOOD_SUMMARY, code))
    assert any(words in p for p in problems_), problems_


def test_evidence_lint_wants_the_box_last_with_its_heading_and_format():
    nb = _boxed_page(GOOD_SUMMARY)
    moved = copy.deepcopy(nb)
    moved["cells"].append(_md("trailing words"))
    assert any("last cell" in p for p in evidence_problems(moved))
    plain = copy.deepcopy(nb)
    plain["cells"][-1]["metadata"] = {}
    assert any("markdown_format" in p for p in evidence_problems(plain))
    headless = copy.deepcopy(nb)
    headless["cells"][-2] = _md("## References\n\nnone")
    assert any(EVIDENCE_HEADING in p for p in evidence_problems(headless))
    boxless = copy.deepcopy(nb)
    del boxless["cells"][-1]
    assert evidence_problems(boxless) and not has_evidence_box(boxless)


# --- figures: gated chapters check every figure they draw (seqlab.plot.check_figure, in the kernel) ---

from course_lint import FIGURES_TODO, checks_its_figures  # noqa: E402


@pytest.mark.parametrize("path", CHAPTERS, ids=lambda p: p.name)
def test_chapter_checks_its_figures(path):
    if _prefix(path) in FIGURES_TODO and not checks_its_figures(load(path)):
        pytest.skip(f"TODO: {path.name} does not check its figures yet (course_lint.FIGURES_TODO)")
    assert checks_its_figures(load(path)), f"{path.name}: call plot.use_style(check=True), or list it in FIGURES_TODO"


def test_figures_todo_names_real_chapters():
    assert set(FIGURES_TODO) <= {_prefix(p) for p in CHAPTERS}


def _chapter_numbers(text: str) -> set[int]:
    return {int(n) for n in re.findall(r"\d+", text)}


def test_front_matter_names_the_chapters_that_read_recorded_results():
    """The introduction and How to run list the chapters that show a recorded results file; the list is the
    chapters whose code loads one (a section such as 07b counts for its chapter)."""
    reading = {int(re.match(r"\d+", p.name).group(0)) for p in CHAPTERS
               if "experiments.load(" in "".join("".join(c["source"]) for c in load(p)["cells"] if c["cell_type"] == "code")}
    intro = (ROOT / "book" / "intro.md").read_text(encoding="utf-8")
    how = (ROOT / "book" / "how_to_run.md").read_text(encoding="utf-8")
    listed_intro = re.search(r"labelled as recorded:\s*chapters ([\d, and]+) do", intro)
    listed_how = re.search(r"Chapters ([\d ,()a-z–-]+?) read their\s+files", how)
    assert listed_intro and listed_how, "the sentences that list the chapters have moved: update this test"
    assert _chapter_numbers(listed_intro.group(1)) == reading, (listed_intro.group(1), sorted(reading))
    assert _chapter_numbers(listed_how.group(1)) == reading, (listed_how.group(1), sorted(reading))
