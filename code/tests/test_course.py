"""Course lint: every chapter follows the template, is in the table of contents, and is stripped."""
import copy
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
