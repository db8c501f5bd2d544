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


class _Recorder(__import__("torch").nn.Module):
    """A language model that records the form it was set to and the batch shape of every call."""

    def __init__(self, vocab, log):
        import torch
        super().__init__()
        self.emb, self.form, self.log = torch.nn.Embedding(vocab, vocab), "unset", log

    def forward(self, x):
        self.log.append((self.form, tuple(x.shape)))
        return self.emb(x)


def test_throughput_sets_each_names_form_before_its_step_uses_tokens_per_length_and_divides_by_the_median(monkeypatch):
    """Section 13.10's throughput: one model under two names runs in each name's form; B = max(1, tokens // T);
    tokens per second = B·T / the median time of that name's step."""
    from seqlab.measure import time_calls as real_time_calls

    class Timing:
        def __init__(self, median):
            self.median = median

    seen = {}

    def fake_time_calls(fns, repeats, clock):
        assert repeats == 2 and clock == "cpu"
        real_time_calls(fns, repeats=1, clock=clock)                       # every step runs
        seen.setdefault("names", []).append(sorted(fns))
        return {name: Timing(0.5 if name == "fast" else 2.0) for name in fns}

    monkeypatch.setattr(pr, "time_calls", fake_time_calls)
    log = []
    model = _Recorder(7, log)
    out = pr.throughput({"fast": (model, "a"), "slow": (model, "b")}, vocab=7, lengths=(16, 128), tokens=64,
                        repeats=2)
    assert seen["names"] == [["fast", "slow"]] * 2
    assert {shape for _, shape in log} == {(4, 16), (1, 128)}               # B = 64 // 16, then max(1, 64 // 128)
    assert sorted(form for form, _ in log) == ["a"] * (len(log) // 2) + ["b"] * (len(log) // 2)
    assert "unset" not in {form for form, _ in log}
    assert out == {"fast": {16: 64 / 0.5, 128: 128 / 0.5}, "slow": {16: 64 / 2.0, 128: 128 / 2.0}}
    model_none = _Recorder(7, log := [])
    pr.throughput({"as built": (model_none, None)}, vocab=7, lengths=(8,), tokens=16, repeats=2)
    assert {form for form, _ in log} == {"unset"}                          # None: the model's own form, untouched


def test_run_one_trains_every_arch_at_its_matched_width_on_the_same_seeded_batches_and_repeats_exactly():
    import math
    from seqlab.data import CharCorpus
    from seqlab.measure import count_parameters
    s, corpus = pr.SETTINGS["tiny"], CharCorpus()
    V = corpus.vocab_size
    a, b = pr.run_one(s, seed=0, corpus=corpus), pr.run_one(s, seed=0, corpus=corpus)
    a_time, b_time = a.pop("seconds"), b.pop("seconds")
    assert a == b                                                           # seeded: every number but the time repeats
    assert a["width"] == pr.matched_widths(V, s["params"], s["n_layers"])
    for arch in pr.ARCHS:
        assert a["params"][arch] == count_parameters(pr.build(arch, V, a["width"][arch], s["n_layers"]))
        assert len(a["loss"][arch]) == s["steps"] and a_time[arch] > 0 and b_time[arch] > 0
        assert 0 < a["val_loss"][arch] < math.log(V) + 1                    # a loss, not a stray number
        assert a["loss"][arch][-1] < a["loss"][arch][0]                      # it trained
    c = pr.run_one(s, seed=1, corpus=corpus)
    assert c["val_loss"] != a["val_loss"]                                   # another seed: other weights and batches
