"""Chapter 10's scaling sweep, its small parts against their definitions: run names, the settings hash, the
width search, the position buckets, the corpus record, the summary lines and the step timer (issue 23, §7:
code computed one way only gets a by-hand test)."""
import hashlib
import math
import statistics

import pytest
import torch

from seqlab.experiments import scaling


def test_run_key_names_every_argument_and_tells_runs_apart():
    key = scaling.run_key("lr", "lstm", 24, 0.0123456, 2, 150)
    assert key == "lr-lstm-d24-lr0.0123-s2-n150"
    base = ("lr", "lstm", 24, 0.01, 0, 150)
    others = [("seed", "lstm", 24, 0.01, 0, 150), ("lr", "transformer", 24, 0.01, 0, 150), ("lr", "lstm", 32, 0.01, 0, 150),
              ("lr", "lstm", 24, 0.02, 0, 150), ("lr", "lstm", 24, 0.01, 1, 150), ("lr", "lstm", 24, 0.01, 0, 151)]
    keys = {scaling.run_key(*a) for a in [base, *others]}
    assert len(keys) == 1 + len(others)


def test_settings_hash_changes_with_every_setting_and_the_corpus_only():
    s = {"steps": 100, "batch": 8, "context": 64}
    h = scaling.settings_hash(s, "abc")
    assert len(h) == 16 and int(h, 16) >= 0
    assert scaling.settings_hash(dict(reversed(list(s.items()))), "abc") == h  # key order does not matter
    for k in s:
        assert scaling.settings_hash({**s, k: s[k] + 1}, "abc") != h, k
    assert scaling.settings_hash(s, "abd") != h
    import json
    want = hashlib.sha256(json.dumps({"settings": s, "corpus": "abc", "eval_seed": scaling.EVAL_SEED,
                                      "forget_bias": scaling.FORGET_BIAS}, sort_keys=True).encode()).hexdigest()[:16]
    assert h == want


@pytest.mark.parametrize("family", scaling.FAMILIES)
def test_width_for_picks_the_nearest_count_in_log(family):
    vocab, context, layers, target = 20, 16, 1, 3000
    w = scaling.width_for(family, target, vocab, context, layers)
    assert w % 4 == 0 and w >= 8
    count = lambda v: scaling.count_parameters(scaling.make_model(family, v, vocab, context, layers))["non_embedding"]
    allowed = [v for v in range(8, 129, 4) if family != "transformer" or v % max(1, v // 16) == 0]
    nearest = min(allowed, key=lambda v: abs(math.log(count(v) / target)))
    assert w == nearest


def test_bucket_means_average_each_bucket_of_positions():
    g = torch.Generator().manual_seed(0)
    losses = torch.rand(3, 100, generator=g)
    got = scaling.bucket_means(losses, 100)
    edges = scaling.position_buckets(100)
    assert got.shape == (3, len(edges))
    for j, (a, b) in enumerate(edges):
        for i in range(3):
            want = sum(losses[i, t].item() for t in range(a, b)) / (b - a)
            assert got[i, j].item() == pytest.approx(want, rel=1e-6)


def test_sd_is_the_sample_standard_deviation():
    xs = [1.0, 2.5, 4.0, 7.0]
    assert scaling._sd(xs) == pytest.approx(statistics.stdev(xs))
    assert scaling._sd([3.0]) == 0.0
    assert scaling._mean(xs) == pytest.approx(statistics.fmean(xs))


def test_corpus_info_of_a_corpus_without_its_own_record():
    class Plain:
        text = "abcabcabd" * 40
        vocab_size = 4
        train = torch.arange(300)
        val = torch.arange(60)

    info = scaling.corpus_info(Plain())
    assert info["sha256"] == hashlib.sha256(Plain.text.encode("utf-8")).hexdigest()
    assert info["vocab_size"] == 4 and info["chars"] == {"train": 300, "tune": 30, "val": 30}


def test_render_scaling_prints_every_size_and_flags_an_unbracketed_rate():
    best = {f: [{"width": 8 * (k + 1), "params_nonemb": 1000 * (k + 1), "lr": 0.01 * (k + 1), "val_loss": 2.0 - 0.1 * k,
                 "val_sd": 0.01, "ngram_level": 2, "bracketed": k != 1} for k in range(2)] for f in scaling.FAMILIES}
    fit = {"alpha": 0.1, "lo": 0.05, "hi": 0.15, "c": 0.5, "plain": {"alpha": 0.2, "lo": 0.1, "hi": 0.3}}
    res = {"corpus": {"name": "toy", "sha256": "0123456789abcdef"}, "best": best,
           "ngram": {"levels": {"1": 3.0, "2": 2.5}}, "fits": {f: {"non_embedding": fit} for f in scaling.FAMILIES}}
    lines = scaling.render_scaling(res)
    assert lines[0] == "corpus toy (0123456789ab), n-gram levels: 1: 3.000, 2: 2.500"
    rows = [l for l in lines[2:] if "alpha" not in l]
    assert len(rows) == 2 * len(scaling.FAMILIES)
    assert sum("(lr not bracketed)" in l for l in rows) == len(scaling.FAMILIES)
    assert all(("(lr not bracketed)" in l) == (" 16 " in l) for l in rows)
    assert "2.0000" in rows[0] and "1.9000" in rows[1] and "0.0200" in rows[1]
    fits = [l for l in lines if "alpha" in l]
    assert len(fits) == len(scaling.FAMILIES) and "alpha 0.100 [0.05, 0.15] c 0.500; plain alpha 0.200 [0.1, 0.3]" in fits[0]


def test_time_steps_is_a_positive_time_for_each_family():
    s = {"context": 8, "layers": 1, "batch": 2}
    for f in scaling.FAMILIES:
        t = scaling.time_steps(f, 8, s, 10, steps=1)
        assert 0 < t < 60 and math.isfinite(t)


@pytest.mark.parametrize("curve_every", [None, 1, 2, 7])
def test_the_sweeps_estimate_counts_every_run_and_evaluation(monkeypatch, curve_every):
    """``estimate``: one timed step per size times the steps of every planned run, plus the evaluations (a forward pass
    over a window costs about a third of a training step per sequence of the batch)."""
    monkeypatch.setattr(scaling, "time_steps", lambda f, w, s, vocab: 0.5 if f == "lstm" else 2.0)
    s = {**scaling.SETTINGS["tiny"], "curve_every": curve_every}
    plan = [{"family": "transformer", "width": 8, "steps": 5}]
    est = scaling.estimate(s, 20, [0, 1, 2], scaling.Runs(None, "x"), plan)
    curves = s["steps"] // curve_every if curve_every else 0
    evals = (s["eval_windows"] + s["tune_windows"] + s["curve_windows"] * curves) / s["batch"] / 3
    assert est["eval_steps"] == pytest.approx(evals)
    want = sum((0.5 if f == "lstm" else 2.0) * (s["steps"] + evals) * (len(s["lrs"][f]) + 2)
               for f in scaling.FAMILIES for _ in s["widths"][f])
    want += 2.0 * (5 + evals) * (3 + 2)                       # the IsoFLOP size: three rates, then two more seeds
    assert est["total_seconds"] == pytest.approx(want)


def test_the_lstm_family_starts_with_a_forget_gate_bias_of_one():
    """``make_model('lstm')``: every layer's forget gate starts with bias 1 (Jozefowicz et al., 2015), as the docstring
    says: the input and hidden biases of the gate's rows sum to 1, the other gates' to 0 (PyTorch's order i, f, g, o)."""
    model = scaling.make_model("lstm", 8, 11, 16, layers=2)
    cells = list(model.recurrent.cells)
    assert len(cells) == 2
    for cell in cells:
        i, f, g, o = (cell.b_x + cell.b_h).detach().chunk(4)                   # (H,) each
        assert torch.allclose(f, torch.ones_like(f))
        assert not torch.allclose(i, torch.ones_like(i))                       # only the forget gate is set
