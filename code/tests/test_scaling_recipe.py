"""The scaling study's recipe (chapter 10): schedule, betas, bracketed lr grid, windows, paired bootstrap, resuming."""
import math
import statistics

import pytest
import torch

from seqlab import measure
from seqlab.experiments import scaling
from seqlab.train import train


def test_train_takes_betas_and_a_schedule():
    model = torch.nn.Linear(3, 2)
    x, y = torch.randn(8, 3), torch.randint(0, 2, (8,))
    lr_at = scaling.cosine_schedule(1e-2, steps=10, warmup=2, final=0.1)
    opt = torch.optim.AdamW(model.parameters(), lr=1.0, betas=(0.9, 0.99))
    h = train(model, lambda: (x, y), steps=10, lr_at=lr_at, optimizer=opt, progress=False)
    assert h.lr == pytest.approx([lr_at(t) for t in range(10)])
    h = train(torch.nn.Linear(3, 2), lambda: (x, y), steps=2, betas=(0.8, 0.95), progress=False)
    with pytest.raises(ValueError, match="betas"):
        train(model, lambda: (x, y), steps=1, betas=(0.9, 1.5))
    with pytest.raises(TypeError, match="lr_at"):
        train(model, lambda: (x, y), steps=1, lr_at=0.1)


def test_betas_reach_adamw(monkeypatch):
    seen = {}
    real = torch.optim.AdamW

    def spy(params, **kw):
        seen.update(kw)
        return real(params, **kw)

    monkeypatch.setattr(torch.optim, "AdamW", spy)
    train(torch.nn.Linear(3, 2), lambda: (torch.randn(4, 3), torch.randint(0, 2, (4,))), steps=1, betas=(0.9, 0.99),
          progress=False)
    assert seen["betas"] == (0.9, 0.99)


def test_cosine_schedule_warms_up_then_decays_to_its_floor():
    f = scaling.cosine_schedule(1.0, steps=101, warmup=10, final=0.1)
    assert f(0) == pytest.approx(0.1) and f(9) == pytest.approx(1.0)
    assert f(100) == pytest.approx(0.1) and f(55) == pytest.approx(0.55)
    assert all(f(t) >= f(t + 1) for t in range(10, 100))
    with pytest.raises(ValueError, match="warmup"):
        scaling.cosine_schedule(1.0, steps=5, warmup=5)


def test_lr_choice_must_bracket():
    c = scaling.choose_lr([1e-3, 2e-3, 4e-3, 8e-3], [2.0, 1.8, 1.7, 1.9])
    assert c["lr"] == 4e-3 and c["bracketed"] and c["edge"] is None
    with pytest.raises(ValueError, match=r"does not bracket.*largest value; widen the grid upwards"):
        scaling.choose_lr([1e-3, 2e-3, 4e-3, 8e-3], [2.0, 1.9, 1.8, 1.7], where=" of the lstm of width 24")
    c = scaling.choose_lr([1e-3, 2e-3, 4e-3], [1.5, math.inf, math.inf], require_bracket=False)
    assert c["edge"] == "low" and not c["bracketed"]
    assert scaling.widen([1e-3, 2e-3], "low") == pytest.approx([5e-4, 1e-3, 2e-3])
    assert scaling.widen([1e-3, 2e-3], "high") == pytest.approx([1e-3, 2e-3, 4e-3])
    with pytest.raises(ValueError, match="every run diverged"):
        scaling.choose_lr([1e-3, 2e-3], [math.inf, math.nan])
    for lrs in ([2e-3, 1e-3, 4e-3], [1e-3, 4e-3, 2e-3], [1e-3, 2e-3, 4e-3, 4e-3]):  # out of order at each place, or tied
        with pytest.raises(ValueError, match="must increase"):
            scaling.choose_lr(lrs, [2.0, 1.8, 1.9][: len(lrs)] + [2.0] * (len(lrs) - 3))


def test_a_flat_side_up_to_the_grid_edge_is_not_a_bracket():
    lrs = [1e-3, 2e-3, 4e-3, 8e-3]
    c = scaling.choose_lr(lrs, [2.0, 1.8, 1.700, 1.705], require_bracket=False, flat=0.01)  # the top rate 0.005 worse
    assert c["lr"] == 4e-3 and c["edge"] is None and c["widen"] == ["high"] and not c["bracketed"]
    with pytest.raises(ValueError, match=r"does not bracket.*every rate above it within 0.01 nats.*widen the grid upwards"):
        scaling.choose_lr(lrs, [2.0, 1.8, 1.700, 1.705], flat=0.01)
    c = scaling.choose_lr(lrs, [1.705, 1.700, 1.8, 2.0], require_bracket=False, flat=0.01)  # flat below, to the edge
    assert c["widen"] == ["low"] and not c["bracketed"]
    assert scaling.choose_lr(lrs, [1.705, 1.700, 1.704, 2.0], require_bracket=False, flat=0.01)["widen"] == ["low"]
    assert scaling.choose_lr([1e-3, 2e-3, 4e-3], [1.704, 1.700, 1.703], require_bracket=False, flat=0.01)["widen"] \
        == ["low", "high"]
    # a side is bracketed by any rate worse by more than flat, however near its neighbour; a diverged run is worse
    c = scaling.choose_lr(lrs + [1.6e-2], [2.0, 1.8, 1.700, 1.705, 1.9], flat=0.01)
    assert c["bracketed"] and c["widen"] == []
    assert scaling.choose_lr(lrs, [2.0, 1.8, 1.700, math.inf], flat=0.01)["bracketed"]
    assert scaling.choose_lr(lrs, [2.0, 1.8, 1.700, 1.711], flat=0.01)["bracketed"]  # 0.011 > 0.01
    # without the tolerance the old rule: a near-equal neighbour brackets
    assert scaling.choose_lr(lrs, [2.0, 1.8, 1.700, 1.705])["bracketed"]
    # the best at the edge is named as before, and widen takes the edges choose_lr returns
    c = scaling.choose_lr(lrs, [2.0, 1.9, 1.8, 1.7], require_bracket=False, flat=0.01)
    assert c["edge"] == "high" and c["widen"] == ["high"]
    assert scaling.widen([1e-3, 2e-3, 4e-3], ["low", "high"]) == pytest.approx([5e-4, 1e-3, 2e-3, 4e-3, 8e-3])
    assert scaling.widen([1e-3, 2e-3], []) == pytest.approx([1e-3, 2e-3])
    for bad in (-0.01, math.nan, "0.01", True):
        with pytest.raises(ValueError, match="flat must be"):
            scaling.choose_lr(lrs, [2.0, 1.8, 1.7, 1.9], flat=bad)
    with pytest.raises(ValueError, match="edge must be"):
        scaling.widen(lrs, "up")


def test_the_recorded_sweeps_settings_use_the_flat_rule_and_keep_it_out_of_the_run_hash():
    for scale in ("cpu", "full"):
        s = scaling.SETTINGS[scale]
        assert s["bracket"] and s["flat"] == 0.01 and s["max_widen"] >= 2
    assert not {"lrs", "bracket", "flat", "max_widen"} & set(scaling.HASHED)  # the cached runs stay valid


def test_the_sweep_widens_a_flat_grid(monkeypatch):
    """The main and the IsoFLOP grid loops widen a grid whose side is flat up to its edge (tiny scale, fake runs)."""
    def fake(family, width, lr, *, seed=0, steps=1, **_):  # a tune loss flat (0.005 nats) from 6e-3 to 1.2e-2, then worse
        tune = 2.0 - 0.1 * min(lr, 6e-3) / 3e-3 + (0.005 if lr > 8e-3 else 0.0) + (0.5 if lr > 0.02 else 0.0)
        return {"family": family, "width": width, "lr": lr, "seed": seed, "params": 10 * width,
                "params_nonemb": 8 * width, "steps": steps, "tokens": steps * 128, "passes": 0.1, "flops": 1e6 * width,
                "flops_6N": 1e6 * width, "val_loss": tune, "tune_loss": tune, "diverged": False,
                "window_losses": [tune + 0.01 * k for k in range(8)], "by_position": [tune] * 32, "curve": [],
                "window_buckets": [[tune] * len(scaling.position_buckets(32))] * 8, "seconds": 1.0, "cpu_seconds": 1.0}

    monkeypatch.setattr(scaling, "train_one", fake)
    s = {**scaling.SETTINGS["tiny"], "lrs": {"lstm": [1.5e-3, 3e-3, 6e-3, 1.2e-2], "transformer": [1.5e-3, 3e-3, 6e-3, 1.2e-2]},
         "bracket": True, "max_widen": 3, "flat": 0.01}
    monkeypatch.setitem(scaling.SETTINGS, "tiny", s)
    res = scaling.scaling("tiny", seeds=[0])
    for c in res["lr_choice"]:  # 1.2e-2 is within 0.01 nats of 6e-3: the grid grows to 2.4e-2, worse by 0.5
        assert c["grid"] == pytest.approx([1.5e-3, 3e-3, 6e-3, 1.2e-2, 2.4e-2]) and c["bracketed"], c
    assert all(r["bracketed"] and max(r["lr_grid"]) > 0.02 for r in res["isoflop"])
    s["flat"] = 0.0  # without the tolerance the near-equal neighbour brackets: no widening
    res = scaling.scaling("tiny", seeds=[0])
    assert all(len(c["grid"]) == 4 and c["bracketed"] for c in res["lr_choice"])
    assert all(len(r["lr_grid"]) == 3 for r in res["isoflop"])
    s["flat"], s["max_widen"] = 0.01, 0  # the same flat grid, no widening allowed: an error, not a grid taken as it is
    with pytest.raises(ValueError, match="after widening it 0 times"):
        scaling.scaling("tiny", seeds=[0])
    s["max_widen"] = 1  # one widening is all this grid needs
    assert all(c["bracketed"] for c in scaling.scaling("tiny", seeds=[0])["lr_choice"])


def test_windows_are_spread_across_the_split():
    ids = torch.arange(10_000)
    w = scaling.spread_windows(ids, 20, 31)
    assert w.shape == (20, 32) and torch.equal(w[:, 1:] - w[:, :-1], torch.ones(20, 31, dtype=torch.long))
    starts = w[:, 0]
    assert starts[0] < 500 and starts[-1] > 9_000 and (starts[1:] - starts[:-1] >= 32).all()  # no overlap
    assert torch.equal(w, scaling.spread_windows(ids, 20, 31))
    with pytest.raises(ValueError, match="need at least"):
        scaling.spread_windows(ids, 400, 31)
    tight = scaling.spread_windows(torch.arange(64), 2, 31)               # exactly two windows of 32 fit: no error
    assert torch.equal(tight, torch.arange(64).reshape(2, 32))
    with pytest.raises(ValueError, match="need at least 66 ids, got 65"):
        scaling.spread_windows(torch.arange(65), 2, 32)


def test_paired_bootstrap_cancels_shared_content():
    g = torch.Generator().manual_seed(0)
    content = 2.0 * torch.randn(200, generator=g)  # the windows' difficulty, shared by both models
    a = (content + 1.0 + 0.01 * torch.randn(200, generator=g)).tolist()
    b = (content + 1.1 + 0.01 * torch.randn(200, generator=g)).tolist()
    paired = scaling.paired_bootstrap(lambda m: m["b"] - m["a"], {"a": a, "b": b}, n_boot=300)
    assert paired["lo"] < 0.1 < paired["hi"] and paired["hi"] - paired["lo"] < 0.01
    alone = scaling.paired_bootstrap(lambda m: m["a"], {"a": a}, n_boot=300)
    assert alone["hi"] - alone["lo"] > 0.3  # one model's mean carries the content noise


def test_isoflop_plan_is_centred_on_the_predicted_optimum():
    s = scaling.SETTINGS["cpu"]
    plan = scaling.isoflop_plan(s, vocab=98)
    for C in s["iso_budgets"]:
        rows = [p for p in plan if p["budget"] == C]
        N = [scaling.count_parameters(scaling.make_model(p["family"], p["width"], 98, s["context"], s["layers"]))
             ["non_embedding"] for p in rows]
        n_opt = math.sqrt(C / 120)
        assert min(N) < n_opt / 2 and max(N) > 2 * n_opt and len(rows) >= 4
        assert all(p["steps"] >= 20 for p in rows)


def test_cpu_scale_design():
    s = scaling.SETTINGS["cpu"]
    for f in scaling.FAMILIES:
        N = [scaling.count_parameters(scaling.make_model(f, w, 98, s["context"], s["layers"]))["non_embedding"]
             for w in s["widths"][f]]
        assert len(N) >= 5 and N[0] < 15_000 and N[-1] > 850_000
        assert len(s["lrs"][f]) >= 4
    tokens = s["steps"] * s["batch"] * s["context"]
    assert tokens > 2e6 and tokens < 4 * 10_000_000 and s["context"] >= 256


@pytest.fixture(scope="module")
def tiny_study(tmp_path_factory):
    """One tiny study (two seeds), shared by the tests that read a finished sweep: (results, its folder)."""
    root = tmp_path_factory.mktemp("tiny-study")
    return scaling.scaling("tiny", seeds=[0, 1], runs_dir=root / "runs"), root


def test_every_isoflop_size_has_a_rate_grid_on_the_first_seed_and_every_seed_at_its_best(tiny_study):
    first, _ = tiny_study
    ratio = {f: lrs[1] / lrs[0] for f, lrs in scaling.SETTINGS["tiny"]["lrs"].items()}
    chosen = {(c["family"], c["width"]): c["lr"] for c in first["lr_choice"]}
    for r in first["isoflop"]:
        lo, mid, hi = r["lr_grid"]
        assert mid / lo == pytest.approx(ratio[r["family"]]) and hi / mid == pytest.approx(ratio[r["family"]])
        assert any(mid == pytest.approx(lr) for (f, _), lr in chosen.items() if f == r["family"])  # a main-grid choice
        assert r["lr"] == r["lr_grid"][min(range(3), key=lambda k: r["tune_losses"][k])]  # the lowest tune loss
        assert r["seeds"] == [0, 1] and len(r["val_losses"]) == 2
        assert r["val_loss"] == pytest.approx(sum(r["val_losses"]) / 2)
    tiny = scaling.SETTINGS["tiny"]                      # one optimum per family and budget: the loop below is not empty
    assert sorted((o["family"], o["budget"]) for o in first["isoflop_optima"]) == sorted(
        (f, C) for f in tiny["iso_families"] for C in tiny["iso_budgets"])
    for o in first["isoflop_optima"]:
        pts = [r for r in first["isoflop"] if r["budget"] == o["budget"] and r["family"] == o["family"]]
        assert pts and o["best_width"] in [r["width"] for r in pts]
        for k in range(2):
            assert o["best_N_by_seed"][k] == min(pts, key=lambda r: r["val_losses"][k])["params_nonemb"]
        assert o["best_N"] == min(pts, key=lambda r: r["val_loss"])["params_nonemb"]


def test_a_sweep_resumes_from_its_saved_runs(tiny_study, monkeypatch):
    first, root = tiny_study
    tmp_path = root / "runs"
    saved = sorted(p.name for p in tmp_path.glob("*.json"))
    assert len([n for n in saved if n.startswith(("lr-", "seed-", "iso-"))]) == 12 + 6 + 4 * len(first["isoflop"])

    def no_training(*a, **k):
        raise AssertionError("a saved run was trained again")

    monkeypatch.setattr(scaling, "train_one", no_training)
    again = scaling.scaling("tiny", seeds=[0, 1], runs_dir=tmp_path)
    assert again["best"] == first["best"] and again["isoflop"] == first["isoflop"]
    for f in scaling.FAMILIES:
        assert [b["width"] for b in first["best"][f]] == scaling.SETTINGS["tiny"]["widths"][f]
        assert all(len(b["val_losses"]) == 2 for b in first["best"][f])
    assert {c["family"] for c in first["checkpoints"]} == set(scaling.FAMILIES)
    # a saved run made with other settings is an error, not silently reused
    other = scaling.Runs(tmp_path, "another-hash")
    with pytest.raises(ValueError, match="other settings"):
        other.get(next(p.stem for p in tmp_path.glob("lr-*.json")))


def test_findings_state_what_a_record_shows_and_pin_it(tiny_study):
    res, _ = tiny_study
    items = {f["name"]: f for f in scaling.findings(res)}
    assert {"design", "lr bracketed", "n-gram levels", "exponents", "crossing", "IsoFLOP"} <= set(items)
    assert not items["design"]["holds"]          # tiny: 3 sizes, 2 seeds: not a study the page may stand on
    assert not items["lr bracketed"]["holds"]    # a 2-value grid brackets nothing
    assert items["n-gram levels"]["holds"] and "unigram" in items["n-gram levels"]["text"]
    assert items["exponents"]["holds"] and "alpha" in items["exponents"]["text"]


def test_repeat_probe_and_checkpoints(tiny_study, tmp_path):
    res, root = tiny_study
    entry = res["checkpoints"][0]
    model = scaling.load_checkpoint(entry, root, vocab=res["corpus"]["vocab_size"])
    ids = torch.randint(0, res["corpus"]["vocab_size"], (5000,), generator=torch.Generator().manual_seed(0))
    p = scaling.repeat_probe(model, ids, 6, span=10, context=32)
    assert len(p["first"]) == len(p["repeat"]) == 6 and all(v > 0 for v in p["first"] + p["repeat"])
    with pytest.raises(ValueError, match="do not fit"):
        scaling.repeat_probe(model, ids, 6, span=20, context=32)
    (tmp_path / entry["file"]).parent.mkdir(parents=True, exist_ok=True)   # a tampered copy, not the shared study
    (tmp_path / entry["file"]).write_bytes(b"tampered")
    with pytest.raises(ValueError, match="sha256"):
        scaling.load_checkpoint(entry, tmp_path, vocab=res["corpus"]["vocab_size"])


def test_repeat_probe_sees_a_copy():
    """A model that copies from its context (here: one that predicts the character 100 positions back) gains on the
    repeat and not on the first occurrence; the probe's indices line the two occurrences up."""
    V, span, ctx = 7, 10, 32

    class Lookback(torch.nn.Module):
        def forward(self, x):
            B, T = x.shape
            logits = torch.zeros(B, T, V)
            for t in range(T):  # predict x[t + 1] as x[t + 1 - span], when that exists
                if t + 1 - span >= 0:
                    logits[torch.arange(B), t, x[:, t + 1 - span]] = 10.0
            return logits

    ids = torch.randint(0, V, (3000,), generator=torch.Generator().manual_seed(1))
    p = scaling.repeat_probe(Lookback(), ids, 8, span=span, context=ctx)
    assert max(p["repeat"]) < 0.01 and min(p["first"]) > 1.0


def test_the_cpu_scale_belongs_to_the_scaling_study():
    from seqlab import experiments
    assert "cpu" in experiments.get("scaling").scales and "cpu" not in experiments.get("recall").scales
    with pytest.raises(ValueError, match="runs at the scales"):
        experiments.run("recall", scale="cpu")
    with pytest.raises(ValueError, match="scale must be one of"):
        scaling.scaling("huge")


def test_exponent_cells_give_each_fit_and_the_verdict_its_interval_licenses(tiny_study):
    res, _ = tiny_study
    cells = scaling.exponent_cells(res)
    for f in scaling.FAMILIES:
        p = res["fits"][f]["non_embedding"]["plain"]
        assert (cells[f]["alpha"], cells[f]["lo"], cells[f]["hi"]) == (p["alpha"], p["lo"], p["hi"])
        assert cells[f]["cell"] == f"α = {p['alpha']:.3f} [{p['lo']:.3f}, {p['hi']:.3f}]"
    d = res["alpha_difference"]
    expected = "larger" if d["lo"] > 0 else "smaller" if d["hi"] < 0 else "not distinguishable"
    assert cells["verdict"] == expected and expected in cells["sentence"]
    # the word follows the interval: moved above or below zero, the verdict changes with it
    for shift, word in ((1.0, "larger"), (-1.0, "smaller")):
        moved = {**res, "alpha_difference": {k: d[k] + shift for k in ("value", "lo", "hi")}}
        out = scaling.exponent_cells(moved)
        assert out["verdict"] == word and out["relation"] == f"{word} than the LSTM's" and out["relation"] in out["sentence"]
    straddles = {**res, "alpha_difference": {"value": 0.0, "lo": -0.1, "hi": 0.1}}
    assert "not distinguishable from the LSTM's" in scaling.exponent_cells(straddles)["sentence"]
    with pytest.raises(ValueError, match="not a scaling study"):
        scaling.exponent_cells({"fits": {}})
    with pytest.raises(TypeError, match="results"):
        scaling.exponent_cells(None)


def test_chapter_15s_scalability_row_reads_the_study_for_two_families_only(tiny_study):
    from seqlab.experiments import architectures as A

    res, _ = tiny_study
    gain = {a: 0.1 * i for i, a in enumerate(A.ARCHS)}
    cells = A.scale_cells(gain, scaling.exponent_cells(res), steps=40)
    ex = scaling.exponent_cells(res)
    assert cells["LSTM"] == ex["lstm"]["cell"]
    assert cells["Transformer"].startswith(ex["transformer"]["cell"]) and ex["relation"] in cells["Transformer"]
    for a in A.ARCHS:
        if a not in ("LSTM", "Transformer"):
            assert "not in chapter 10's study" in cells[a] and f"{gain[a]:+.2f} nats after 40 steps" in cells[a]
            assert "not a scaling verdict" in cells[a]
    absent = A.scale_cells(gain, None)
    assert all("absent" in absent[a] for a in ("LSTM", "Transformer"))
    rows = A.table_rows(*[{a: 1.0 for a in A.ARCHS}] * 5, gain, {a: 1.0 for a in A.ARCHS}, exponents=ex, steps=40)
    assert rows["scale"] == cells


# ---------------------------------------------------------------- chapter 10: how well one power law fits
def test_chi2_sf_equals_its_closed_forms():
    """Even k: e^{-x/2} Σ_{i<k/2} (x/2)^i / i!; k = 1: erfc(sqrt(x/2)) -- two forms independent of the series."""
    import math
    from seqlab.experiments.scaling import chi2_sf
    for x in (0.1, 1.0, 3.84, 9.5, 23.5, 53.9):
        assert chi2_sf(x, 1) == pytest.approx(math.erfc(math.sqrt(x / 2)), rel=1e-9, abs=1e-15)
        for k in (2, 4, 6):
            closed = math.exp(-x / 2) * sum((x / 2) ** i / math.factorial(i) for i in range(k // 2))
            assert chi2_sf(x, k) == pytest.approx(closed, rel=1e-6, abs=1e-15), (x, k)
    assert chi2_sf(0.0, 3) == 1.0
    with pytest.raises(ValueError, match="x must be a number >= 0"):
        chi2_sf(-1.0, 2)


def test_t_table_holds_the_975_points_of_students_t():
    """The density integrated numerically from 0 to each tabled quantile holds 0.475 of the mass."""
    import math
    from seqlab.experiments.scaling import T_975
    assert sorted(T_975) == list(range(1, 11))          # every degree of freedom from 1 to 10, none skipped
    for nu, q in T_975.items():
        t = torch.linspace(0, q, 200_001, dtype=torch.float64)
        c = math.gamma((nu + 1) / 2) / (math.sqrt(nu * math.pi) * math.gamma(nu / 2))
        mass = torch.trapezoid(c * (1 + t ** 2 / nu) ** (-(nu + 1) / 2), t).item()
        assert mass == pytest.approx(0.475, abs=2e-4), nu


def test_power_law_diagnostics_of_an_exact_power_law():
    """On L = 3 N^-0.1 with no noise: the exponent exactly, no residual, chi-square 0 (p = 1), every local exponent α."""
    from seqlab.experiments.scaling import power_law_diagnostics
    sizes = [{"params_nonemb": n, "val_loss": 3 * n ** -0.1, "val_sd": 0.01, "seeds": [0, 1, 2]}
             for n in (1e4, 3e4, 1e5, 3e5, 1e6)]
    d = power_law_diagnostics(sizes)
    assert d["alpha"] == pytest.approx(0.1) and d["interval"] == (pytest.approx(0.1), pytest.approx(0.1))
    assert max(map(abs, d["residual_nats"])) < 1e-12 and d["chi2"] < 1e-12 and d["p"] == 1.0 and d["dof"] == 3
    assert d["local"] == [pytest.approx(0.1)] * 4
    bent = [dict(b, val_loss=b["val_loss"] + (0.05 if i == 2 else 0)) for i, b in enumerate(sizes)]  # one size off the law
    off = power_law_diagnostics(bent)
    assert off["p"] < 0.01 and max(off["residual_nats"]) == off["residual_nats"][2]
    with pytest.raises(ValueError, match="at least 3 sizes"):
        power_law_diagnostics(sizes[:2])


def test_a_rerun_without_the_runs_state_dicts_keeps_the_committed_checkpoints(tiny_study, tmp_path, monkeypatch):
    """A fresh clone has the study's checkpoints (committed) but not its runs' state dicts (not committed): summarising
    the sweep again must keep listing the checkpoints, with their hashes, so the page can load them (chapter 10)."""
    import shutil
    first, root = tiny_study
    copy = tmp_path / "study"
    shutil.copytree(root, copy)
    shutil.rmtree(copy / "runs" / "state")

    def no_training(*a, **k):
        raise AssertionError("a saved run was trained again")

    monkeypatch.setattr(scaling, "train_one", no_training)
    again = scaling.scaling("tiny", seeds=[0, 1], runs_dir=copy / "runs")
    key = lambda c: (c["family"], c["width"], c["sha256"], c["bytes"])
    assert sorted(map(key, again["checkpoints"])) == sorted(map(key, first["checkpoints"])) and again["checkpoints"]


def test_verdict_at_the_interval_edges():
    """An interval that touches 0 at one end licenses neither word, and that word holds (lo <= 0 <= hi, both ends
    inclusive); one strictly above or below 0 licenses 'above' or 'below'."""
    from seqlab.experiments.scaling import verdict

    words = ("above", "below", "neither")
    assert verdict({"lo": 0.0, "hi": 0.3}, *words) == ("neither", True)
    assert verdict({"lo": -0.3, "hi": 0.0}, *words) == ("neither", True)
    assert verdict({"lo": 0.0, "hi": 0.0}, *words) == ("neither", True)
    assert verdict({"lo": 1e-9, "hi": 0.3}, *words) == ("above", True)
    assert verdict({"lo": -0.3, "hi": -1e-9}, *words) == ("below", True)
    assert verdict({"lo": None, "hi": None}, *words) == ("neither", True)


def test_the_design_finding_holds_at_its_bounds_exactly(tiny_study):
    """'design' holds with at least 5 sizes per family, at least 3 seeds and under 4 passes: exactly 5 and 3 pass,
    4 sizes, 2 seeds or 4 passes fail (the bounds chapter 10's sentence states)."""
    import copy

    first, _ = tiny_study

    def design(n_sizes, n_seeds, passes):
        res = copy.deepcopy(first)
        for f in scaling.FAMILIES:
            b = res["best"][f]
            res["best"][f] = [dict(b[i % len(b)], seeds=list(range(n_seeds)), passes=passes) for i in range(n_sizes)]
        return next(o for o in scaling.findings(res) if o["name"] == "design")["holds"]

    assert design(5, 3, 3.9)
    assert not design(4, 3, 3.9) and not design(5, 2, 3.9) and not design(5, 3, 4.0)


def test_the_late_gain_is_the_fall_from_the_second_bucket_to_the_last(tiny_study):
    """The recorded late gain of each family of the matched pair is the fall of its loss relative to the unigram
    reference from positions 8–31 (the second bucket) to the last bucket, averaged over the windows (chapter 10)."""
    res, _ = tiny_study
    fams = res["pair"]["families"]
    assert set(fams) == set(scaling.FAMILIES)
    for f, fam in fams.items():
        rel = fam["relative"]                                   # the windows' mean of loss − reference, per bucket
        assert len(rel) == len(scaling.position_buckets(res["settings"]["context"])) >= 2
        assert fam["late_gain"]["value"] == pytest.approx(rel[1] - rel[-1], abs=1e-9)


def test_the_recorded_scales_keep_their_runs_where_chapter_10s_command_resumes_from():
    """``default_runs_dir``: 'cpu' and 'full' keep each run under results/scaling-<scale>/runs (the committed cpu runs
    are there), the test and page scales keep none, and an unknown scale is refused."""
    from seqlab.experiments import results_dir
    cpu = scaling.default_runs_dir("cpu")
    assert cpu == results_dir() / "scaling-cpu" / "runs" and any(cpu.glob("*.json"))
    assert scaling.default_runs_dir("full") == results_dir() / "scaling-full" / "runs"
    assert scaling.default_runs_dir("tiny") is None and scaling.default_runs_dir("quick") is None
    with pytest.raises(ValueError, match="scale must be one of"):
        scaling.default_runs_dir("huge")


def test_an_isoflop_valley_is_interior_only_when_neither_end_of_the_profile_is_lowest():
    """``isoflop_optima``: the lowest mean loss at the smallest or the largest width is an edge (the grid does not
    bracket it), anywhere between an interior valley; each seed's best size is read from its own losses."""
    def profile(budget, losses, by_seed):
        return [{"family": "transformer", "budget": budget, "width": 8 * (k + 1), "params_nonemb": 100 * (k + 1),
                 "val_loss": v, "val_losses": s_, "seeds": [0, 1], "n_opt_predicted": 150}
                for k, (v, s_) in enumerate(zip(losses, by_seed))]
    iso = (profile(1e9, [1.0, 2.0, 3.0], [[1.0, 2.1], [2.0, 2.0], [3.0, 3.0]])          # lowest at the smallest width
           + profile(1e10, [3.0, 1.0, 2.0], [[3.0, 3.0], [1.0, 1.0], [2.0, 0.5]])       # a valley; seed 1's best is the largest
           + profile(1e11, [3.0, 2.0, 1.0], [[3.0, 3.0], [2.0, 2.0], [1.0, 1.0]]))      # lowest at the largest width
    opt = {o["budget"]: o for o in scaling.isoflop_optima(iso, ["transformer"], [1e9, 1e10, 1e11, 1e12])}
    assert set(opt) == {1e9, 1e10, 1e11}                                               # no profile, no optimum
    assert [opt[C]["interior"] for C in (1e9, 1e10, 1e11)] == [False, True, False]
    assert [opt[C]["best_N"] for C in (1e9, 1e10, 1e11)] == [100, 200, 300]
    assert opt[1e9]["best_N_by_seed"] == [100, 200] and opt[1e10]["best_N_by_seed"] == [200, 300]


def test_a_sweep_keeps_its_runs_in_a_folder_it_makes_whole_and_reads_them_back(tmp_path):
    """``Runs``: the first finished run makes the runs folder, parents included (a fresh clone has no
    results/scaling-cpu/runs), and a rerun reads each run back; a run made with other settings is refused."""
    runs = scaling.Runs(tmp_path / "results" / "scaling-cpu" / "runs", "tag-1")
    assert runs.get("lr-lstm-d8") is None
    runs.put("lr-lstm-d8", {"val_loss": 2.5})
    assert runs.get("lr-lstm-d8") == {"val_loss": 2.5}
    with pytest.raises(ValueError, match="other settings"):
        scaling.Runs(tmp_path / "results" / "scaling-cpu" / "runs", "tag-2").get("lr-lstm-d8")


def test_each_size_summarises_its_own_runs_at_the_chosen_rate(tiny_study):
    """``summarise``: a size's entry is the mean and sample sd of its seeds' runs at the chosen rate, with that
    rate's grid and tune losses, its counts from the runs, and the n-gram level of the mean (chapter 10)."""
    res, _ = tiny_study
    levels = {int(k): v for k, v in res["ngram"]["levels"].items()}
    chosen = {(c["family"], c["width"]): c for c in res["lr_choice"]}
    for f in scaling.FAMILIES:
        widths = [b["width"] for b in res["best"][f]]
        assert widths == sorted(widths) == sorted(scaling.SETTINGS["tiny"]["widths"][f])
        for b in res["best"][f]:
            runs = [r for r in res["runs"] if r["family"] == f and r["width"] == b["width"] and r["lr"] == b["lr"]
                    and r["steps"] == res["settings"]["steps"]]
            runs = {r["seed"]: r for r in runs}                       # one run per seed (the grid's and the seeds')
            assert sorted(runs) == b["seeds"] == [0, 1]
            vals = [runs[s]["val_loss"] for s in b["seeds"]]
            assert b["val_losses"] == vals
            assert b["val_loss"] == pytest.approx(sum(vals) / 2) and b["val_sd"] == pytest.approx(statistics.stdev(vals))
            c = chosen[f, b["width"]]
            assert (b["lr"], b["lr_grid"], b["tune_losses"], b["bracketed"]) == (c["lr"], c["grid"], c["tune_losses"], c["bracketed"])
            for k in ("params", "params_nonemb", "tokens", "flops"):
                assert b[k] == runs[0][k], k
            assert b["ngram_level"] == measure.ngram_level(b["val_loss"], levels)
    # the matched sizes' gaps pair the i-th size of each family, in order
    assert [(g["lstm_width"], g["transformer_width"]) for g in res["gaps"]] == list(
        zip([b["width"] for b in res["best"]["lstm"]], [b["width"] for b in res["best"]["transformer"]]))
    Ns = [b["params_nonemb"] for f in scaling.FAMILIES for b in res["best"][f]]
    cross = res["crossing_N"]
    assert res["crossing_in_range"] == (cross is not None and min(Ns) <= cross <= max(Ns))


def test_the_lr_bracketed_finding_holds_from_a_grid_of_four(tiny_study):
    """'lr bracketed' holds when every size's rate is bracketed by a grid of at least four values (the setting's
    minimum): exactly four pass, three fail, and so does one size left unbracketed."""
    import copy

    first, _ = tiny_study

    def bracketed(n_grid, all_bracketed=True):
        res = copy.deepcopy(first)
        for f in scaling.FAMILIES:
            res["best"][f] = [dict(b, bracketed=all_bracketed or i > 0, lr_grid=[1e-3 * 2 ** k for k in range(n_grid)])
                              for i, b in enumerate(res["best"][f])]
        return next(o for o in scaling.findings(res) if o["name"] == "lr bracketed")["holds"]

    assert bracketed(4)
    assert not bracketed(3) and not bracketed(4, all_bracketed=False)
