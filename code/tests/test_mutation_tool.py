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


def test_the_harness_inputs_are_its_grid_and_problem_builders_in_ops_only(tmp_path):
    src = ("class Case:\n    B: int = 1\n\n\nGRID = (\n    Case(),\n)\n\n\ndef _make(case, g):\n    return 2.0\n\n\n"
           "def form(x):\n    return x * 2.0\n")
    ops = tmp_path / "seqlab" / "ops"
    ops.mkdir(parents=True)
    (ops / "f.py").write_text(src)
    assert mutation.harness_inputs(ops / "f.py") == {1, 2, 5, 6, 7, 10, 11}    # not the form's lines (14, 15)
    (tmp_path / "g.py").write_text(src)
    assert mutation.harness_inputs(tmp_path / "g.py") == set()               # outside ops/: library code


def test_settings_by_scale_are_found_whatever_the_dicts_name(tmp_path):
    """A dict literal keyed by scale names only is an experiment's settings (``parallel_rnn.SWEEP``), like a
    ``*SETTINGS`` dict; a dict with another key is not."""
    from seqlab import experiments

    assert mutation.SCALES == experiments.SCALES
    f = tmp_path / "m.py"
    f.write_text('SWEEP = {\n    "tiny": dict(a=1),\n    "full": dict(a=2,\n                 b=3),\n}\n'
                 'OTHER = {"tiny": 1, "lr": 2}\nX_SETTINGS = {"quick": dict(c=4)}\n')
    assert mutation.settings_scales(f) == {2: ("SWEEP", "tiny"), 3: ("SWEEP", "full"), 4: ("SWEEP", "full"),
                                           7: ("X_SETTINGS", "quick")}
    scales = mutation.settings_scales(mutation.CODE / "seqlab" / "experiments" / "parallel_rnn.py")
    assert {v for v in scales.values() if v[0] == "SWEEP"} == {("SWEEP", s) for s in ("tiny", "quick", "full")}


def test_every_equivalent_mutant_names_a_line_of_the_code_and_a_change_on_it():
    """Each ``EQUIVALENT`` entry is matched by a line's whole code (comment left out): a line since changed or
    removed would silently stop matching, so every entry must still name a line that holds its old text."""
    code = Path(__file__).resolve().parents[1]
    for f, text, old, new, why in mutation.EQUIVALENT:
        lines = [line.split("  #")[0].strip() for line in (code / f).read_text().splitlines()]
        assert text in lines, f"{f}: no line reads {text!r}"
        assert old in text and old != new and why, (f, text)


def test_a_mutant_runs_the_batteries_that_reach_its_module_through_a_registry():
    """A test that walks ``ops.FAMILIES`` or every layer imports neither the mutated module nor its names, so the
    selection adds those batteries by where the mutant is: ops/, models/, experiments/."""
    ops_sel = set(mutation.tests_for("seqlab/ops/ssd.py"))
    assert {"tests/test_equivalence.py", "tests/test_bad_input.py", "tests/test_mixers.py",
            "tests/test_check_pinned.py"} <= ops_sel
    assert {"tests/test_mixers.py", "tests/test_bad_input.py"} <= set(mutation.tests_for("seqlab/models/ssm.py"))
    assert {"tests/test_experiments.py", "tests/test_replay.py"} <= set(mutation.tests_for("seqlab/experiments/recall.py"))
    assert "tests/test_replay.py" in mutation.tests_for("seqlab/train.py")
    assert mutation.tests_for("seqlab/ops/ssd.py")[0] == "tests/test_definitions.py"     # the quick battery first
