"""The committed results files are what the code computes: one cheap recorded run of each study, run again.

``test_every_committed_results_file_was_made_with_the_settings_in_the_code`` pins a study's *settings*; these tests
pin the code between the settings and the numbers (a training option, a probe's sample size, a metric's definition):
each reruns recorded runs with the recorded settings and seed, on one thread as recorded, and compares every number
it stores. The tolerances allow another machine's float rounding (an accuracy may move by a few predictions), not a
change in what is computed.
"""
import json
import math

import pytest
import torch

from seqlab import experiments


@pytest.fixture
def one_thread():
    """The recorded runs used one PyTorch thread; so does their rerun (the sum order of a reduction can depend on it)."""
    before = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(before)


def record(name: str) -> dict:
    return json.loads((experiments.results_dir() / f"{name}.json").read_text())


def assert_same(recorded, rerun, *, rel: float = 1e-3, abs_: float = 2e-3, where: str = "run"):
    """Every number in ``recorded`` equals the rerun's (within ``rel``/``abs_``); every key and list length agrees."""
    if isinstance(recorded, dict):
        assert isinstance(rerun, dict) and set(rerun) == set(recorded), f"{where}: keys {sorted(rerun)} != {sorted(recorded)}"
        for key in recorded:
            assert_same(recorded[key], rerun[key], rel=rel, abs_=abs_, where=f"{where}[{key!r}]")
    elif isinstance(recorded, (list, tuple)):
        assert isinstance(rerun, (list, tuple)) and len(rerun) == len(recorded), f"{where}: length {len(rerun)} != {len(recorded)}"
        for i, (a, b) in enumerate(zip(recorded, rerun)):
            assert_same(a, b, rel=rel, abs_=abs_, where=f"{where}[{i}]")
    elif isinstance(recorded, float) or isinstance(rerun, float):
        assert math.isclose(rerun, recorded, rel_tol=rel, abs_tol=abs_), f"{where}: rerun {rerun!r}, recorded {recorded!r}"
    else:
        assert rerun == recorded, f"{where}: rerun {rerun!r}, recorded {recorded!r}"


def test_assert_same_notices_a_changed_number_key_or_length():
    assert_same({"a": [1.0, 2], "b": "x"}, {"a": [1.0 + 1e-6, 2], "b": "x"})
    for changed in ({"a": [1.1, 2], "b": "x"}, {"a": [1.0, 3], "b": "x"}, {"a": [1.0], "b": "x"}, {"a": [1.0, 2]}):
        with pytest.raises(AssertionError):
            assert_same({"a": [1.0, 2], "b": "x"}, changed)


# Chapter 13's copying study: a run that stops early (S4D), one whose clipped steps diverge (the selective layer at
# the grid's top rate), and a selective-copying run with its longer-noise accuracies and the selectivity probe.
COPYING_RUNS = [("copying", "S4D (time-invariant)", 0.03, 0, 400),
                ("copying", "selective scan", 0.1, 0, 400),
                ("selective copying", "selective scan", 0.01, 0, 400)]


@pytest.mark.parametrize("task,layer,lr,seed,budget", COPYING_RUNS)
def test_recorded_copying_runs_are_reproduced(task, layer, lr, seed, budget, one_thread):
    from seqlab.data.tasks import CopyTask, SelectiveCopy
    from seqlab.experiments import ssm
    rec = record("copying")
    s = rec["results"]["settings"]
    (want,) = [r for r in rec["results"]["runs"]
               if (r["task"], r["layer"], r["lr"], r["seed"], r["budget"]) == (task, layer, lr, seed, budget)]
    steps = budget if want["steps"] < budget or task != "copying" else 100  # a run that stops early runs whole
    tasks = {"copying": CopyTask(**s["copy"]), ssm.SELECTIVE_COPYING: SelectiveCopy(**s["sel"])}
    got = ssm.copier_run(task, layer, lr, seed, steps, s, tasks)
    if steps < budget:  # a run cut short: its curve so far
        n = len(got["curve"]["accuracy"])
        assert n == steps // 50 and got["steps"] == steps
        assert_same(want["curve"]["accuracy"][:n], got["curve"]["accuracy"], where=f"{task}/{layer}/{lr}")
    else:
        assert_same(want, got, where=f"{task}/{layer}/{lr}")
