"""The mutation tool's choice of chapters for a mutant (code/benchmarks/mutation.py, issue 23 §7)."""
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "benchmarks"))
import mutation  # noqa: E402

SOURCE = "X = dict(\n    a=1)\n\n\ndef f(x=1):\n    return x\n\n\ndef g(y=2):\n    return y\n"
LINES = {"chapters": {"a.ipynb": {"m.py": [6]}, "b.ipynb": {"m.py": [10]}, "c.ipynb": {"other.py": [3]}},
         "imported": {"m.py": [1, 2, 5, 9]}}


def test_a_line_the_chapters_run_goes_to_the_chapters_that_run_it():
    assert mutation.chapters_for(LINES, "m.py", 6, SOURCE) == ["a.ipynb"]
    assert mutation.chapters_for(LINES, "m.py", 10, SOURCE) == ["b.ipynb"]


def test_a_signature_goes_to_the_chapters_that_run_its_body_and_a_module_statement_to_every_user_of_the_module():
    assert mutation.chapters_for(LINES, "m.py", 5, SOURCE) == ["a.ipynb"]   # def f(x=1): f's body ran in a only
    assert mutation.chapters_for(LINES, "m.py", 9, SOURCE) == ["b.ipynb"]
    assert mutation.chapters_for(LINES, "m.py", 2, SOURCE) == ["a.ipynb", "b.ipynb"]  # a settings literal
    assert mutation.chapters_for({}, "m.py", 6, SOURCE) == []               # --package-only
