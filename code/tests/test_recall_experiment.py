"""Chapter 12's recall experiment: the grid through the command, lr chosen on validation, bracketing, resumable logs."""
import json
import os

import pytest
import torch

from seqlab import experiments
from seqlab.experiments import recall, runlog

def test_recall_writes_both_axes_and_keeps_the_lr_best_on_validation(tmp_path, monkeypatch, capsys):
    from seqlab.experiments.__main__ import main
    out_file = tmp_path / "recall.json"
    logs = tmp_path / "runs"
    monkeypatch.setenv("SEQLAB_RUNLOG_DIR", str(logs))
    assert main(["recall", "--scale", "tiny", "--seeds", "0", "1", "2", "--out", str(out_file), "--no-progress"]) == 0
    stdout = capsys.readouterr().out
    record = experiments.load(out_file, "recall")
    res, s = record["results"], record["results"]["settings"]
    assert len(s["lrs"]) >= 4
    # the first seed runs every lr (and one more past an edge where the optimum sits there), the other two the lr it chose
    cells = recall.cells(s)
    first = [r for r in res["runs"] if r["seed"] == 0]
    assert len(cells) * len(s["lrs"]) <= len(first) <= len(cells) * (len(s["lrs"]) + s["max_widen"])
    assert len(res["runs"]) == len(first) + 2 * len(cells)
    n_pairs = sum(c[0] == "pairs" for c in cells) * 2 + sum(r["axis"] == "pairs" for r in first)
    assert sum(r["axis"] == "pairs" for r in res["runs"]) == n_pairs
    for r in res["runs"]:
        assert {"arch", "width", "n_pairs", "lr", "seed", "state_bytes", "accuracy", "val_accuracy", "curve",
                "d_phi", "chance"} <= set(r)
        assert 0.0 <= r["accuracy"] <= 1.0 and r["state_bytes"] > 0
        if r["arch"] == "softmax":  # a KV cache: 2 T d per layer, plus the conv buffer
            assert r["state_bytes"] == 4 * s["layers"] * (2 * r["length"] * r["width"] + 2 * r["width"])
    # the pairs axis keeps the width (so the state) fixed
    assert {r["width"] for r in res["runs"] if r["axis"] == "pairs"} == set(s["pairs_widths"])
    # one lr per cell, chosen by seed 0's VALIDATION recall, and every seed reported at it
    for axis in ("width", "pairs"):
        rs = [r for r in res["runs"] if r["axis"] == axis]
        for row in res[f"table_{axis}"]:
            cell = [r for r in rs if (r["arch"], r["width"], r["n_pairs"]) == (row["arch"], row["width"], row["n_pairs"])]
            val = {r["lr"]: r["val_accuracy"] for r in cell if r["seed"] == 0}
            assert set(s["lrs"]) <= set(val) and all(val[row["lr"]] >= v for v in val.values())
            assert {r["seed"] for r in cell if r["lr"] == row["lr"]} == {0, 1, 2}
            assert {r["lr"] for r in cell if r["seed"] != 0} == {row["lr"]}
            assert row["seeds"] == 3 and row["min"] <= row["mean"] <= row["max"]
    # every run was logged as it finished
    lines = (logs / "recall-tiny.jsonl").read_text().splitlines()
    assert len(lines) == len(res["runs"])
    assert "bracketed" in stdout


def test_best_lr_uses_validation_not_test_and_the_mean_over_seeds():
    runs = [dict(arch="linear", width=8, n_pairs=4, lr=lr, seed=sd, accuracy=acc, val_accuracy=val)
            for lr, sd, acc, val in [(1e-3, 0, 0.9, 0.9), (1e-3, 1, 0.9, 0.1), (1e-2, 0, 0.1, 0.6), (1e-2, 1, 0.1, 0.6)]]
    assert {r["lr"] for r in recall.best_lr(runs)} == {1e-2}  # test recall would pick 1e-3
    with pytest.raises(ValueError, match="arch must be one of"):
        recall.make_model("rnn", 8, vocab=16)


@pytest.mark.parametrize("means, expected", [
    ([0.1, 0.5, 0.9, 0.4], True),     # optimum inside the grid
    ([0.9, 0.5, 0.3, 0.1], False),    # best at the lowest lr, clearly: extend the grid down
    ([0.2, 0.5, 0.7, 0.95], False),   # best at the highest
    ([1.0, 0.995, 0.99, 0.5], True),  # flat top reaching the edge: an inner lr is within tol
])
def test_bracketed_flags_an_optimum_at_the_grid_edge(means, expected):
    runs = [dict(arch="delta", width=8, n_pairs=4, lr=lr, seed=0, accuracy=m, val_accuracy=m)
            for lr, m in zip([1e-3, 3e-3, 1e-2, 3e-2], means)]
    assert recall.bracketed(runs) == {("delta", 8, 4): expected}


def test_best_lr_with_a_tuning_seed_chooses_on_it_and_returns_every_seed_at_that_lr():
    runs = [dict(arch="linear", width=8, n_pairs=4, lr=lr, seed=sd, accuracy=0.5, val_accuracy=val)
            for lr, sd, val in [(1e-3, 0, 0.7), (1e-2, 0, 0.6), (1e-3, 1, 0.1), (1e-3, 2, 0.2)]]
    # the mean over seeds would favour 1e-2 (seen by seed 0 only); the tuning seed chooses 1e-3
    assert {r["lr"] for r in recall.best_lr(runs)} == {1e-2}
    best = recall.best_lr(runs, tune_seed=0)
    assert {r["lr"] for r in best} == {1e-3} and sorted(r["seed"] for r in best) == [0, 1, 2]
    with pytest.raises(ValueError, match="tune_seed=5"):
        recall.best_lr(runs, tune_seed=5)


def test_map_tuned_replicates_each_cell_at_the_lr_its_first_seed_chose_and_resumes(tmp_path):
    path, calls = tmp_path / "t.jsonl", []

    def fn(c):
        calls.append(c)
        cell, lr, seed = c[0], c[1], c[2]
        return {"val": -abs(lr - (2 if cell == "a" else 3)) - 0.01 * seed}

    log = dict(path=path, settings={"s": 1})
    configs, runs = runlog.map_tuned(fn, [("a",), ("b",)], [1, 2, 3], [0, 1, 2], score=lambda r: r["val"], **log)
    assert configs[:6] == [("a", 1, 0), ("a", 2, 0), ("a", 3, 0), ("b", 1, 0), ("b", 2, 0), ("b", 3, 0)]
    assert configs[6:] == [("a", 2, 1), ("b", 3, 1), ("a", 2, 2), ("b", 3, 2)]
    assert len(runs) == len(configs) == len(calls) == 10
    calls.clear()
    assert runlog.map_tuned(fn, [("a",), ("b",)], [1, 2, 3], [0, 1, 2], score=lambda r: r["val"], **log)[1] == runs
    assert calls == []
    with pytest.raises(ValueError, match="at least one seed"):
        runlog.map_tuned(fn, [("a",)], [1], [], score=lambda r: 0.0, **log)


def test_map_tuned_extends_the_grid_past_an_edge_optimum_once():
    calls = []

    def fn(c):
        calls.append(c)
        return {"val": -abs(c[1] - 0.5)}                          # best at lr 0.5, below the grid

    configs, runs = runlog.map_tuned(fn, [("a",)], [1, 2, 4], [0, 1], score=lambda r: r["val"], max_widen=2,
                                     path=None, settings={})
    assert [c[1] for c in configs if c[2] == 0] == [1, 2, 4, 0.5, 0.25]   # widened twice, then bracketed
    assert configs[-1] == ("a", 0.5, 1)


def test_edge_optimum_counts_a_diverged_run_as_the_worst():
    nan = float("nan")
    assert runlog.edge_optimum({1: 0.5, 2: 0.6, 3: 0.55}) is None
    assert runlog.edge_optimum({1: 0.5, 2: 0.52, 3: 0.6}) == "high"
    assert runlog.edge_optimum({1: nan, 2: 0.5, 3: 0.9}) == "high"      # NaN first must not win the argmax
    assert runlog.edge_optimum({1: 0.9, 2: 0.5, 3: nan}) == "low"
    assert runlog.edge_optimum({1: 0.5, 2: 0.9, 3: nan}) is None


def test_crosstalk_law_and_state_of_the_delta_rule():
    assert recall.crosstalk_law(1, 16) == 0.0 and recall.crosstalk_law(17, 16) == pytest.approx(1.0)
    lin, delta = (recall.make_model(a, 32, vocab=16) for a in ("linear", "delta"))
    x48 = torch.randint(0, 16, (1, 48))
    assert delta.state_bytes(delta(x48)[1]) < lin.state_bytes(lin(x48)[1])  # the same S, no normaliser z
    assert recall.d_phi("taylor", 32, 4) == 1 + 8 + 64 and recall.d_phi("delta", 32, 4) == 8
    x = torch.randint(0, 16, (2, 12))
    assert delta(x)[0].shape == (2, 12, 16)


def test_runlog_skips_finished_runs_and_survives_a_torn_line(tmp_path):
    path = tmp_path / "x.jsonl"
    calls = []

    def fn(c):
        calls.append(c)
        return {"c": c, "sq": c * c}

    settings = {"a": 1}
    assert [r["sq"] for r in runlog.map_logged(fn, [1, 2, 3], path=path, settings=settings)] == [1, 4, 9]
    with open(path, "a") as f:
        f.write('{"fingerprint": "trunc')  # a process killed mid-write
    calls.clear()
    assert [r["sq"] for r in runlog.map_logged(fn, [3, 4, 1], path=path, settings=settings)] == [9, 16, 1]
    assert calls == [4]  # only the new configuration ran
    calls.clear()
    runlog.map_logged(fn, [1], path=path, settings={"a": 2})  # other settings: nothing reused
    assert calls == [1]
    assert runlog.log_path("recall", "tiny") is None or os.environ.get("SEQLAB_RUNLOG_DIR")
    with pytest.raises(TypeError, match="settings must be a dict"):
        runlog.fingerprint([1])


def test_each_logged_run_records_the_device_that_made_it_so_a_resumed_sweep_says_which_runs_came_from_where(tmp_path):
    from seqlab.measure import device_name
    path, settings = tmp_path / "x.jsonl", {"a": 1}
    fn = lambda c: {"sq": c * c}
    with open(path, "w") as f:  # a line from before devices were recorded
        f.write(json.dumps({"fingerprint": runlog.fingerprint(settings), "key": "1", "result": {"sq": 1}}) + "\n")
    runlog.map_logged(fn, [1, 2, 3], path=path, settings=settings, device="cpu")
    lines = [json.loads(line) for line in path.read_text().splitlines()]
    assert [line["made"]["device"] for line in lines[1:]] == [device_name("cpu")] * 2
    assert all(line["made"]["date"].endswith("+00:00") for line in lines[1:])
    assert runlog.made_on(path, runlog.fingerprint(settings)) == {"unrecorded": 1, device_name("cpu"): 2}
    assert runlog.made_on(path, "another") == {} and runlog.made_on(None, "x") == {}


def test_the_delta_rule_reads_back_orthonormal_pairs_exactly_where_linear_attention_does_not():
    from seqlab.ops import linear_attention as la
    g = torch.Generator().manual_seed(0)
    d, n = 8, 8
    K = torch.linalg.qr(torch.randn(d, d, generator=g, dtype=torch.float64))[0].T[:n]  # orthonormal rows
    Kr = torch.nn.functional.normalize(torch.randn(n, d, generator=g, dtype=torch.float64), dim=-1)  # random unit
    V = torch.randn(1, n, 3, generator=g, dtype=torch.float64)
    for keys, exact in ((K, True), (Kr, False)):
        _, S = la.delta_rule_loop(keys[None], keys[None], V, torch.ones(1, n, dtype=torch.float64))
        _, S_lin = la.linear_attention_loop(keys[None], keys[None], V, feature_map="identity", normalize=False)
        err_delta = ((keys @ S[0]) - V[0]).norm() / V[0].norm()
        err_lin = ((keys @ S_lin[0]) - V[0]).norm() / V[0].norm()
        if exact:
            assert err_delta < 1e-12 and err_lin < 1e-12  # orthonormal: no cross-talk for either
        else:
            assert err_delta < err_lin / 2  # random keys: the delta rule removes much of the cross-talk
    with pytest.raises(ValueError, match="beta must be"):
        la.delta_rule_loop(K[None], K[None], V, torch.ones(1, n - 1, dtype=torch.float64))
    from seqlab.models.linear_attention import LinearAttentionConfig
    with pytest.raises(ValueError, match="delta rule"):
        LinearAttentionConfig(d_model=8, n_heads=2, gate="scalar", delta=True)
    with pytest.raises(TypeError, match="delta must be a bool"):
        LinearAttentionConfig(d_model=8, n_heads=2, delta=1)


def test_selectivity_probe_reruns_the_layers_state_exactly_and_rejects_other_tasks():
    from seqlab.data.tasks import CopyTask, SelectiveCopy
    from seqlab.experiments import ssm as E
    task = SelectiveCopy(n_data=2, length=10, vocab=4)
    torch.manual_seed(0)
    model = E.MixerLM(E.MixerLMConfig(task.input_vocab, mixer="selective", d_model=8, n_layers=2, mlp=False,
                                      options=dict(d_state=2)))
    probe = E.selectivity_probe(model, task, seed=0, n=8, trace=True)
    assert len(probe) == 2 and all(p["delta_data"] > 0 and p["delta_noise"] > 0 for p in probe)
    t = probe[0]["trace"]
    assert len(t["delta"]) == len(t["norm"]) == len(t["data"]) == 10 and sum(t["data"]) == 2
    # the probe's own rerun of h_t ends where the layer's scan ends
    layer = model.mixers[0]                     # the selective SSMLayer itself (a Mixer)
    from seqlab.config import seed_offset
    x, _ = task.sample(8, generator=30_000 + seed_offset())
    store = {}
    hooks = [layer.x_proj.register_forward_hook(lambda m, i, o: store.update(u=i[0])),
             layer.dt_proj.register_forward_hook(lambda m, i, o: store.update(delta=torch.nn.functional.softplus(o)))]
    with torch.no_grad():
        emb = model.norms1[0](model.embed(x[:, :10]))
        _, state = layer(emb)
        h_scan = state[-1] if isinstance(state, tuple) else state
    for hook in hooks:
        hook.remove()
    assert torch.allclose(torch.tensor(t["norm"][-1]), h_scan[0].norm(), rtol=1e-4)
    # the trace is the first sequence's: its data positions and its Δ_t, the mean over channels
    assert t["data"] == (x[0, :10] != task.noise).tolist()
    assert torch.allclose(torch.tensor(t["delta"]), store["delta"][0].mean(-1), rtol=1e-5)
    # delta_noise averages the noise positions with no data token in the last k steps (k = d_conv): at least k
    # steps after the sequence's last data token, or before its first
    k, d_mean = layer.config.d_conv, store["delta"].mean(-1)          # (8, 10)
    far = [(b, i) for b in range(8) for i in range(10)
           if all(x[b, j] == task.noise for j in range(max(0, i - k + 1), i + 1))]
    assert far, "no far noise position in this draw: choose another"
    assert probe[0]["delta_noise"] == pytest.approx(torch.stack([d_mean[b, i] for b, i in far]).mean().item(), rel=1e-5)
    with pytest.raises(TypeError, match="SelectiveCopy"):
        E.selectivity_probe(model, CopyTask(length=3, vocab=4), seed=0)


def test_steps_since_data_by_hand():
    from seqlab.experiments.ssm import steps_since_data
    data = torch.tensor([[False, True, False, False, True, True, False]])
    assert steps_since_data(data).tolist() == [[7, 0, 1, 2, 0, 0, 1]]       # before the first: t + L
    with pytest.raises(TypeError, match="bool mask"):
        steps_since_data(data.long())
    with pytest.raises(ValueError, match="data"):
        steps_since_data(data[0])


def test_selectivity_by_offset_agrees_with_the_probe_on_the_same_sequences():
    """Two ways to the same numbers: at offset 0 (the data tokens) over far noise, the aligned means equal the probe's
    data / noise ratios for layer 1; the isolated and crowded tokens split the data tokens."""
    from seqlab.data.tasks import SelectiveCopy
    from seqlab.experiments import ssm as E
    task = SelectiveCopy(n_data=4, length=16, vocab=4)
    torch.manual_seed(1)
    model = E.MixerLM(E.MixerLMConfig(task.input_vocab, mixer="selective", d_model=8, n_layers=2, mlp=False,
                                      options=dict(d_state=2)))
    probe = E.selectivity_probe(model, task, seed=0, n=32)[0]
    aligned = E.selectivity_by_offset(model, task, seed=0, n=32, max_offset=3)
    assert len(aligned["delta"]) == len(aligned["move"]) == 4
    assert aligned["delta"][0] == pytest.approx(probe["delta_data"] / probe["delta_noise"], rel=1e-5)
    assert aligned["dh_all"] == pytest.approx(probe["dh_data"] / probe["dh_noise"], rel=1e-5)
    assert 0 < aligned["crowded_share"] < 1
    lo, hi = sorted((aligned["delta_alone"], aligned["delta_crowded"]))
    assert lo <= aligned["delta"][0] <= hi                                   # the data tokens' mean lies between its parts
    assert 0 < aligned["decay_far"] < 1 and aligned["norm_kept"] > 0


def test_a_grid_extended_by_a_learning_rate_reruns_only_the_new_points(tmp_path):
    path = tmp_path / "x.jsonl"
    calls = []

    def fn(c):
        calls.append(c)
        return {"c": c}

    settings = {"steps": 5, "lrs": [1, 2]}
    runlog.map_logged(fn, [("a", 1), ("a", 2)], path=path, settings=runlog.per_run(settings, ["lrs"]))
    calls.clear()
    settings["lrs"].append(3)
    runlog.map_logged(fn, [("a", 1), ("a", 2), ("a", 3)], path=path, settings=runlog.per_run(settings, ["lrs"]))
    assert calls == [("a", 3)]
    # lines written under another fingerprint are reused only when accepted explicitly
    legacy = tmp_path / "legacy.jsonl"
    runlog.map_logged(fn, [("b", 1)], path=legacy, settings={"old": True})
    calls.clear()
    runlog.map_logged(fn, [("b", 1)], path=legacy, settings={"new": True}, also_accept=[runlog.fingerprint({"old": True})])
    assert calls == []
    from seqlab.experiments import longrange, recall as rec
    # the runs logged before each change: the whole settings, then the per-run ones with a single pairs width
    before = {k: v for k, v in rec.SETTINGS["quick"].items()
              if k not in ("pairs_widths", "max_widen", "ssm_archs", "ssm_widths")} | {"pairs_width": 32}
    assert runlog.fingerprint(before) in rec.LEGACY["quick"]
    old_grid = ("archs", "widths", "lrs", "pairs_archs", "pairs")
    assert runlog.fingerprint(runlog.per_run(before, old_grid)) in rec.LEGACY["quick"]
    # the selective-SSM cells (chapter 15's recall row) are grid points: adding them keeps every logged run's fingerprint
    no_ssm = {k: v for k, v in rec.SETTINGS["quick"].items() if k not in ("ssm_archs", "ssm_widths")}
    assert runlog.fingerprint(runlog.per_run(rec.SETTINGS["quick"], rec.GRID_KEYS)) == \
        runlog.fingerprint(runlog.per_run(no_ssm, rec.GRID_KEYS))
    lr_before = {k: v for k, v in longrange.SETTINGS["quick"].items() if k != "max_widen"}   # before widening
    assert runlog.fingerprint(dict(lr_before, lrs=[1e-3, 3e-3, 1e-2])) in longrange.LEGACY["quick"]
    # widening is part of the grid, not of a run: the runs logged before it keep their fingerprint
    assert runlog.fingerprint(runlog.per_run(longrange.SETTINGS["quick"], longrange.GRID_KEYS)) == \
        runlog.fingerprint(runlog.per_run(lr_before, longrange.GRID_KEYS))


def test_the_selective_ssm_is_a_recall_arch_with_its_own_cells():
    """Chapter 15's SSM row: the selective SSM trains on MQAR through the same function, at ``ssm_widths`` only."""
    s = recall.SETTINGS["quick"]
    cells = recall.cells(s)
    assert {c[2] for c in cells if c[1] == "selective"} == set(s["ssm_widths"])
    assert all(c[0] == "width" and c[3] == s["n_pairs"] for c in cells if c[1] == "selective")
    assert recall.d_phi("selective", 32, 4) == 8                   # its d_state N, not a head width
    m = recall.make_model("selective", 8, vocab=16)
    assert m(torch.zeros(2, 6, dtype=torch.long))[0].shape == (2, 6, 16)


@pytest.mark.parametrize("level, steps", [(recall.TARGET, 1), (recall.TARGET - 1e-3, 4)])
def test_training_stops_once_validation_recall_reaches_the_target(monkeypatch, level, steps):
    """``train_one`` with ``eval_every`` stops at the first evaluation whose recall is at least ``TARGET`` (equal counts)."""
    monkeypatch.setattr(recall, "accuracy", lambda logits, y: level)
    r = recall.train_one("linear", 8, 1e-3, vocab=8, length=12, n_pairs=2, heads=2, layers=1, steps=4, batch=4,
                         eval_batch=8, eval_every=1)
    assert r["steps"] == steps
