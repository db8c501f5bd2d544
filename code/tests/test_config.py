import os
import random
import subprocess
import sys

import pytest
import torch

import seqlab
from seqlab.config import current_scale, get_device, progress_enabled, scale, seed_everything


def test_scale_follows_the_environment(monkeypatch):
    monkeypatch.setenv("SEQLAB_SCALE", "full")
    cfg = scale(quick=dict(steps=10, d=8), full=dict(steps=1000, d=64))
    assert cfg.scale == "full" and cfg.steps == 1000 and cfg.d == 64
    monkeypatch.setenv("SEQLAB_SCALE", "quick")
    assert scale(quick=dict(steps=10), full=dict(steps=1000)).steps == 10


def test_default_scale_depends_on_the_device(monkeypatch):
    monkeypatch.delenv("SEQLAB_SCALE", raising=False)
    assert current_scale() == ("full" if torch.cuda.is_available() else "quick")


def test_scale_errors(monkeypatch):
    with pytest.raises(ValueError, match="same keys"):
        scale(quick=dict(steps=1), full=dict(steps=2, d=3))
    with pytest.raises(TypeError, match="must be dicts"):
        scale(quick=[1], full={})
    with pytest.raises(ValueError, match="reserved"):
        scale(quick=dict(scale=1), full=dict(scale=2))
    monkeypatch.setenv("SEQLAB_SCALE", "huge")
    with pytest.raises(ValueError, match="SEQLAB_SCALE must be one of"):
        current_scale()


def test_seeding_makes_runs_repeat():
    g1 = seed_everything(7)
    a = (random.random(), torch.rand(3), torch.rand(2, generator=g1))
    g2 = seed_everything(7)
    b = (random.random(), torch.rand(3), torch.rand(2, generator=g2))
    assert a[0] == b[0] and torch.equal(a[1], b[1]) and torch.equal(a[2], b[2])
    with pytest.raises(TypeError, match="seed must be an int"):
        seed_everything("7")


def test_device(monkeypatch):
    monkeypatch.delenv("SEQLAB_DEVICE", raising=False)
    assert get_device().type == ("cuda" if torch.cuda.is_available() else "cpu")
    assert get_device("cpu").type == "cpu"
    with pytest.raises(ValueError, match="must be 'cpu' or 'cuda'"):
        get_device("tpu")
    if not torch.cuda.is_available():
        with pytest.raises(ValueError, match="is_available"):
            get_device("cuda")


def test_progress_switch(monkeypatch):
    monkeypatch.setenv("SEQLAB_PROGRESS", "0")
    assert not progress_enabled()
    monkeypatch.setenv("SEQLAB_PROGRESS", "1")
    assert progress_enabled()


def test_public_objects_have_docstrings():
    import inspect

    for module in (seqlab.config, seqlab.data, seqlab.train, seqlab.measure, seqlab.plot, seqlab.check, seqlab.models):
        for name in getattr(module, "__all__", [n for n in dir(module) if not n.startswith("_")]):
            obj = getattr(module, name)
            if (inspect.isfunction(obj) or inspect.isclass(obj)) and obj.__module__.startswith("seqlab"):
                assert obj.__doc__, f"{module.__name__}.{name} has no docstring"


def test_seed_offset_shifts_every_seed(monkeypatch):
    monkeypatch.setenv("SEQLAB_SEED_OFFSET", "3")
    assert seqlab.seed_offset() == 3
    seed_everything(4)
    shifted = torch.rand(3)
    monkeypatch.delenv("SEQLAB_SEED_OFFSET")
    seed_everything(7)
    assert torch.equal(shifted, torch.rand(3))
    seed_everything(4)
    assert not torch.equal(shifted, torch.rand(3))
    monkeypatch.setenv("SEQLAB_SEED_OFFSET", "two")
    with pytest.raises(ValueError, match="SEQLAB_SEED_OFFSET must be an integer"):
        seed_everything(0)


def test_threads(monkeypatch):
    before = torch.get_num_threads()
    try:
        monkeypatch.setenv("SEQLAB_THREADS", "2")
        assert seqlab.configure_threads() == 2 and torch.get_num_threads() == 2
        monkeypatch.delenv("SEQLAB_THREADS")
        assert seqlab.configure_threads() == seqlab.config.DEFAULT_THREADS == torch.get_num_threads()
        n = seqlab.configure_threads("auto")
        assert 1 <= n <= (os.cpu_count() or 1) and n == seqlab.config.cpu_quota()
        for bad, err in (("0", ValueError), ("many", ValueError), (0, ValueError), (1.5, TypeError)):
            with pytest.raises(err, match="positive"):
                seqlab.configure_threads(bad)
    finally:
        torch.set_num_threads(before)


def test_import_seqlab_leaves_the_thread_count_alone():
    """No global side effect at import: a thread count set before ``import seqlab`` survives it."""
    code = ("import torch; torch.set_num_threads(3); import seqlab, seqlab.experiments; "
            "print(torch.get_num_threads())")
    env = {**os.environ, "SEQLAB_THREADS": "1"}  # the policy would say 1: import must not apply it
    out = subprocess.run([sys.executable, "-c", code], env=env, capture_output=True, text=True, check=True)
    assert out.stdout.split() == ["3"]


def test_the_set_up_call_applies_seqlab_threads(monkeypatch):
    before = torch.get_num_threads()
    try:
        torch.set_num_threads(1)
        monkeypatch.setenv("SEQLAB_THREADS", "2")
        scale(quick=dict(steps=1), full=dict(steps=2))
        assert torch.get_num_threads() == 2
        monkeypatch.delenv("SEQLAB_THREADS")
        scale(quick=dict(steps=1), full=dict(steps=2))
        assert torch.get_num_threads() == seqlab.config.DEFAULT_THREADS
    finally:
        torch.set_num_threads(before)


def test_the_command_applies_seqlab_threads(monkeypatch, capsys):
    from seqlab.experiments import __main__ as command

    def refuse(*args, **kwargs):
        raise ValueError("stopped after the set-up")

    before = torch.get_num_threads()
    try:
        torch.set_num_threads(1)
        monkeypatch.setenv("SEQLAB_THREADS", "2")
        monkeypatch.setattr(command, "run", refuse)
        assert command.main(["gating", "--scale", "tiny"]) == 2 and torch.get_num_threads() == 2
        monkeypatch.setenv("SEQLAB_THREADS", "none")
        with pytest.raises(SystemExit):
            command.main(["gating", "--scale", "tiny"])
        assert "SEQLAB_THREADS" in capsys.readouterr().err
    finally:
        torch.set_num_threads(before)


def test_glue_is_a_no_op_without_myst_nb(monkeypatch):
    from seqlab import pages
    monkeypatch.setattr(pages, "_myst_glue", None)
    assert pages.glue("x", 1.5) is None
    seen = []
    monkeypatch.setattr(pages, "_myst_glue", lambda name, value, display: seen.append((name, value, display)))
    pages.glue("x", 2.5)
    assert seen == [("x", 2.5, False)]
    with pytest.raises(TypeError, match="non-empty str"):
        pages.glue("", 1)


@pytest.mark.parametrize("value, side, digits, want", [
    (3.46, "at least", 1, 3.4), (3.46, "at most", 1, 3.5), (0.712, "at most", 2, 0.72), (0.021, "at most", 2, 0.03),
    (1.164, "at most", 2, 1.17), (0.29, "at least", 2, 0.29), (0.29, "at most", 2, 0.29), (-1.25, "at least", 1, -1.3),
    (7, "at least", 0, 7.0), (7.2, "at least", 0, 7.0), (7.2, "at most", 0, 8.0),
])
def test_a_bound_is_rounded_towards_the_side_the_prose_states_so_the_printed_bound_holds(value, side, digits, want):
    from seqlab.pages import bound
    got = bound(value, side, digits)
    assert got == pytest.approx(want)
    assert (got <= value) if side == "at least" else (got >= value)
    assert f"{got:.{digits}f}" == f"{want:.{digits}f}"


def test_a_bound_refuses_an_unknown_side_a_bad_digits_or_a_value_that_is_not_a_finite_number():
    from seqlab.pages import bound
    with pytest.raises(ValueError, match="side must be one of"):
        bound(1.0, "about")
    with pytest.raises(ValueError, match="digits must be an int >= 0, got -1"):
        bound(1.0, "at least", -1)
    with pytest.raises(ValueError, match="digits must be an int >= 0, got 1.5"):
        bound(1.0, "at least", 1.5)
    for bad in (float("nan"), float("inf"), "3", True):
        with pytest.raises(ValueError, match="value must be a finite number"):
            bound(bad, "at most")
