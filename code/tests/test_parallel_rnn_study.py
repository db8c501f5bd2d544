"""Section 13.10's recorded study: each arch's learning rate chosen on validation windows, reported on test windows."""
import json

import pytest

from seqlab import experiments
from seqlab.experiments import parallel_rnn as pr


def run(arch, lr, seed, val, test=None):
    return {"arch": arch, "lr": lr, "seed": seed, "val_loss": val, "test_loss": val if test is None else test}


def test_best_rates_picks_the_lowest_mean_validation_loss_and_reports_test_losses_there():
    lrs = [1e-3, 1e-2, 1e-1]
    runs = [run("A", 1e-3, 0, 2.0), run("A", 1e-3, 1, 1.6),             # mean 1.8
            run("A", 1e-2, 1, 1.9, test=1.95), run("A", 1e-2, 0, 1.5, test=1.55),   # mean 1.7: A's best
            run("A", 1e-1, 0, 3.0), run("A", 1e-1, 1, 3.0),
            run("B", 1e-3, 0, 3.0), run("B", 1e-2, 0, 2.0), run("B", 1e-1, 0, 1.0)]  # B's best at the edge
    best = pr.best_rates(runs, lrs)
    assert best["A"]["lr"] == 1e-2 and best["A"]["bracketed"]
    assert best["A"]["seeds"] == [0, 1] and best["A"]["test_loss"] == [1.55, 1.95]       # in seed order
    assert best["A"]["mean_val"] == [[1e-3, pytest.approx(1.8)], [1e-2, pytest.approx(1.7)], [1e-1, pytest.approx(3.0)]]
    assert best["B"]["lr"] == 1e-1 and not best["B"]["bracketed"]


def test_matched_widths_finds_the_width_nearest_the_target_count():
    """The search stops past twice the target; the width it returns is the nearest one over the whole range."""
    from seqlab.measure import count_parameters
    V, target, layers = 40, 20_000, 2
    widths = pr.matched_widths(V, target, layers)
    for arch, d in widths.items():
        full = {w: count_parameters(pr.build(arch, V, w, layers)) for w in range(16, 129, 8)}
        assert d == min(full, key=lambda w: abs(full[w] - target)), arch


def test_the_committed_study_ran_every_arch_rate_and_seed_and_chose_the_rates_its_runs_give():
    record = json.loads((experiments.results_dir() / "parallel_rnn.json").read_text())
    results, s = record["results"], record["results"]["settings"]
    assert s == pr.SWEEP[record["scale"]]
    assert sorted((r["arch"], r["lr"], r["seed"]) for r in results["runs"]) == sorted(
        (a, lr, sd) for a in pr.ARCHS for lr in s["lrs"] for sd in record["seeds"])
    best = pr.best_rates(results["runs"], s["lrs"])
    assert results["best"] == [[a, b["lr"], b["bracketed"]] for a, b in best.items()]


def test_hillis_steele_scan_equals_the_loop_and_its_depth_grows_per_doubling():
    """Section 13b: the log-depth scan gives the loop's states, from any h0, and its chain grows by a constant per doubling."""
    import torch
    from seqlab.experiments import parallel_rnn as pr
    g = torch.Generator().manual_seed(1)
    for T in (1, 5, 16, 37):
        a = torch.rand(2, T, 3, generator=g, dtype=torch.float64)
        b = torch.randn(2, T, 3, generator=g, dtype=torch.float64)
        h0 = -1 - torch.rand(2, 3, generator=g, dtype=torch.float64)
        assert torch.allclose(pr.hillis_steele_scan(a, b, h0), pr.loop_scan(a, b, h0), atol=1e-12)
        assert torch.allclose(pr.hillis_steele_scan(a, b), pr.loop_scan(a, b), atol=1e-12)
    d = pr.scan_depths([8, 16, 32, 64])
    steps = {y - x for x, y in zip(d["scan"], d["scan"][1:])}
    assert len(steps) == 1 and steps.pop() > 0                 # the same few operations per round
    assert d["loop"][-1] - d["loop"][-2] == 2 * (64 - 32)       # a multiply and an add per token
    import pytest
    with pytest.raises(ValueError, match="must both be"):
        pr.hillis_steele_scan(torch.ones(1, 3, 2), torch.ones(1, 4, 2))


def test_tree_sum_equals_the_sum_and_its_depth_grows_per_doubling():
    """Chapter 15: the pairwise tree gives the sum at any length, and its chain grows by a constant per doubling."""
    import pytest
    import torch
    from seqlab.experiments import parallel_rnn as pr
    g = torch.Generator().manual_seed(2)
    for T in (1, 2, 3, 7, 16, 37):
        x = torch.randn(2, T, 3, generator=g, dtype=torch.float64)
        assert torch.allclose(pr.tree_sum(x), x.sum(1), atol=1e-12)
    d = pr.tree_depths([8, 16, 32, 64, 128])
    steps = {y - x for x, y in zip(d, d[1:])}
    assert len(steps) == 1 and steps.pop() > 0                 # the same few operations per round
    assert pr.tree_depths([64])[0] < 64                          # far shorter than a running sum's chain
    with pytest.raises(ValueError, match="T >= 1"):
        pr.tree_sum(torch.ones(1, 0, 2))
    with pytest.raises(ValueError, match="T >= 1"):
        pr.tree_sum(torch.ones(4, 2))
