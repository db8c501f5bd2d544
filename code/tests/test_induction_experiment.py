"""Chapter 11's recorded sweep (seqlab.experiments.induction): its learning-rate choice, its circuit tests, resuming."""
import json

import pytest
import torch

from seqlab import interpret
from seqlab.data import RepeatedSpans
from seqlab.experiments import induction


@pytest.fixture(scope="module")
def tiny(tmp_path_factory):
    induction.RUNS_DIR = tmp_path_factory.mktemp("runs")
    try:
        yield induction.induction(scale="tiny", seeds=[0, 1]), induction.RUNS_DIR
    finally:
        induction.RUNS_DIR = None


def test_every_lstm_size_gets_the_rate_with_the_lowest_selection_loss(tiny):
    res, _ = tiny
    s = induction.SETTINGS["tiny"]
    for hd in res["lstm_hidden"]:
        grid = [r for r in res["runs"] if r["kind"] == "lstm" and r["size"] == hd and r["seed"] == 0]
        assert sorted(r["lr"] for r in grid) == sorted(s["lstm_lrs"])
        assert res["lstm_chosen_lr"][hd] == min(grid, key=lambda r: r["select_loss"])["lr"]
        later = [r for r in res["runs"] if r["kind"] == "lstm" and r["size"] == hd and r["seed"] == 1]
        assert [r["lr"] for r in later] == [res["lstm_chosen_lr"][hd]]          # other seeds: the chosen rate only
    depths = sorted({r["size"] for r in res["runs"] if r["kind"] == "attention"})
    assert depths == list(s["depths"])
    for r in res["runs"]:
        assert len(r["icl"]) == len(r["exact"]) == len(r["eval_step"]) and all(0 <= e <= 1 for e in r["exact"])


def test_a_rerun_skips_every_finished_run(tiny, monkeypatch):
    res, runs_dir = tiny
    saved = json.loads((runs_dir / "induction-tiny-runs.json").read_text())
    assert len(saved) == len(res["runs"])
    monkeypatch.setattr(induction, "RUNS_DIR", runs_dir)
    monkeypatch.setattr(induction, "train_on_spans", lambda *a, **k: pytest.fail("a finished run was trained again"))
    again = induction.induction(scale="tiny", seeds=[0, 1])
    assert [r["icl"] for r in again["runs"]] == [r["icl"] for r in res["runs"]]


def test_circuit_tests_match_the_ablations_they_name():
    torch.manual_seed(0)
    task = RepeatedSpans(length=16, vocab=8, span_min=3, span_max=6, gap_max=2)
    model = induction.attention_model(2, 16, vocab=8, n_heads=2, T=16)
    x, y, where = task.sample_with_positions(8, torch.Generator().manual_seed(1))
    out = induction.circuit_tests(model, x, y, where)
    early, late = where.target_masks(16)
    icl = lambda: interpret.icl_score(interpret.token_losses(model, x, y), early, late)
    assert out["icl"] == pytest.approx(icl())
    with interpret.ablate_head(model, 1, 1):
        assert out["zero"]["2.1"] == pytest.approx(icl() / out["icl"])
    mean = interpret.head_outputs(model, x, 0).mean(0)[:, 0]
    with interpret.ablate_path(model, (0, 0), 1, "k", replacement=mean):
        assert out["path k"]["1.0"] == pytest.approx(icl() / out["icl"])
    assert set(out["path q"]) == {"1.0", "1.1"} and "2.0" not in out["path v"]    # paths only from layer 1


def test_best_attention_rates_picks_the_lowest_selection_loss_per_depth():
    from seqlab.experiments.induction import best_attention_rates
    runs = [{"size": 1, "lr": 3e-3, "select_loss": 2.5}, {"size": 1, "lr": 1e-2, "select_loss": 2.4},
            {"size": 1, "lr": 3e-2, "select_loss": 2.6},
            {"size": 2, "lr": 3e-3, "select_loss": 2.0}, {"size": 2, "lr": 1e-2, "select_loss": 2.1},
            {"size": 2, "lr": 3e-2, "select_loss": 2.2}]
    best = best_attention_rates(runs, [3e-3, 1e-2, 3e-2])
    assert best[1]["lr"] == 1e-2 and best[1]["bracketed"] and best[1]["select_loss"][0] == [3e-3, 2.5]
    assert best[2]["lr"] == 3e-3 and not best[2]["bracketed"]
