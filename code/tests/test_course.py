"""Course lint: every chapter follows the template, is in the table of contents, and is stripped."""
import copy
from pathlib import Path

import pytest

from course_lint import CHAPTER_NAME, ROOT, exercise_labels, load, problems, toc_files

CHAPTERS = sorted((ROOT / "chapters").glob("*.ipynb"))


def test_there_are_chapters():
    assert CHAPTERS, "no notebooks in chapters/"


@pytest.mark.parametrize("path", CHAPTERS, ids=lambda p: p.name)
def test_chapter_follows_the_template(path):
    assert CHAPTER_NAME.match(path.name), f"{path.name}: chapters are named NN_name.ipynb"
    assert problems(load(path)) == []


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
