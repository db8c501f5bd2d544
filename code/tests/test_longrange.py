"""Chapter 15's long-range benchmark: ListOps and Pathfinder labels checked independently, arguments, the grid."""
import math

import pytest
import torch

from seqlab.data import longrange as lr
from seqlab.data.tasks import IGNORE
from seqlab.experiments import longrange as exp


def test_listops_labels_equal_a_stack_evaluation_and_the_answer_is_at_the_last_step():
    task = lr.ListOps(length=64, max_depth=3, max_args=4)
    x, y = task.sample(128, generator=0)
    assert x.shape == y.shape == (128, 64)
    assert (y[:, :-1] == IGNORE).all() and ((0 <= y[:, -1]) & (y[:, -1] < 10)).all()
    for b in range(128):
        tokens = [t for t in x[b].tolist() if t != lr.PAD]
        assert x[b, -1] == lr.CLOSE  # left-padded: the expression ends at the last step
        assert lr.evaluate_tokens(tokens) == y[b, -1]
    assert len(set(y[:, -1].tolist())) >= 8  # many answers occur
    assert lr.listops_value("MED", [5, 1, 9, 3]) == 5 and lr.listops_value("SM", [7, 8]) == 5
    x2, _ = task.sample(128, generator=0)
    assert torch.equal(x, x2)  # seeded


def test_pathfinder_labels_agree_with_a_flood_fill_and_are_balanced():
    task = lr.Pathfinder(size=12, curve_length=10)
    x, y = task.sample(200, generator=1)
    assert x.shape == (200, 144) and set(x.unique().tolist()) <= {0, 1, 2}
    for b in range(200):
        img = x[b].reshape(12, 12)
        assert (img == lr.DOT).sum() == 2
        assert (img != lr.BACKGROUND).sum() == 20  # two curves of 10 pixels in both classes
        assert lr.connected(img) == bool(y[b, -1])
    assert 0.35 < y[:, -1].float().mean() < 0.65


def test_patches_and_rows_keep_every_pixel():
    task = lr.Pathfinder(size=8, curve_length=6)
    x, _ = task.sample(4, generator=2)
    p = lr.patch_tokens(x, 8, 2)
    assert p.shape == (4, 16) and int(p.max()) < 81
    img = x.reshape(4, 8, 8)
    first = img[:, :2, :2].reshape(4, 4)  # the top-left patch, raster order inside it
    assert torch.equal(p[:, 0], (first * torch.tensor([1, 3, 9, 27])).sum(-1))
    rows = lr.row_vectors(x, 8)
    assert rows.shape == (4, 8, 24) and torch.equal(rows.reshape(4, 8, 8, 3).argmax(-1), img)


@pytest.mark.parametrize("make, error, message", [
    (lambda: lr.ListOps(length=3), ValueError, "length must be >= 4"),
    (lambda: lr.ListOps(max_args=1), ValueError, "max_args must be >= 2"),
    (lambda: lr.ListOps(leaf_prob=1.5), ValueError, "leaf_prob must be in"),
    (lambda: lr.ListOps(max_depth=2.0), TypeError, "max_depth must be an int"),
    (lambda: lr.Pathfinder(size=4), ValueError, "size must be >= 6"),
    (lambda: lr.Pathfinder(size=8, curve_length=20), ValueError, "curve_length must be at most"),
    (lambda: lr.patch_tokens(torch.zeros(2, 64, dtype=torch.long), 8, 3), ValueError, "must divide"),
    (lambda: lr.patch_tokens(torch.zeros(2, 60, dtype=torch.long), 8, 2), ValueError, r"x must be \(B, size²\)"),
    (lambda: lr.row_vectors(torch.zeros(2, 64), 8), TypeError, "x"),
    (lambda: lr.connected(torch.zeros(4, 4, dtype=torch.long)), ValueError, "exactly two dots"),
    (lambda: lr.listops_value("AVG", [1]), ValueError, "op must be one of"),
    (lambda: exp.make_task("mnist"), ValueError, "task must be one of"),
    (lambda: exp.make_model("CNN", 8, 16), ValueError, "arch must be one of"),
    (lambda: exp.make_model("LSTM (rows)", 8, 16, task=lr.ListOps()), ValueError, "reads Pathfinder images"),
])
def test_bad_arguments_fail_clearly(make, error, message):
    with pytest.raises(error, match=message):
        make()


def test_models_are_matched_in_parameters_and_the_lstm_has_chapter_4s_forget_bias():
    task = lr.Pathfinder(size=8, curve_length=6)
    counts = {}
    for arch in exp.compare.ARCHS + exp.VISION:
        d = exp.width_for(arch, task, 20_000)
        m = exp.make_model(arch, exp._vocab(arch, task), d, task=task)
        counts[arch] = sum(p.numel() for p in m.parameters())
        x, _ = task.sample(2, generator=0)
        out = exp.compare_logits(m, exp.inputs_for(arch, task, x))
        assert out.shape[:2] == exp.inputs_for(arch, task, x).shape[:2]
    assert max(counts.values()) < 1.5 * min(counts.values()), counts
    lstm = exp.make_model("LSTM", 8, 16)
    b = dict(lstm.named_parameters())
    forget = [v[16:32] for k, v in b.items() if k.endswith("b_x")]  # b_xf: gate order i, f, g, o
    assert forget and all(torch.allclose(f, torch.full_like(f, exp.FORGET_BIAS)) for f in forget), list(b)


def test_the_vision_arms_run_on_pathfinder_only_and_the_lr_grid_has_four_values():
    s = exp.SETTINGS["quick"]
    c = exp.cells(s)
    assert {t for t, a in c if a in exp.VISION} == {"pathfinder"}
    assert {a for t, a in c if t == "listops"} == set(s["archs"]) and len(s["lrs"]) >= 4


def test_chapter_15_tables_are_html_and_read_the_recorded_files():
    from seqlab.experiments import architectures as A
    html = A.html_table(["a", "b<"], [[1, "x&y"]])
    assert html.startswith("<table>") and "<th>b&lt;</th>" in html and "<td>x&amp;y</td>" in html
    with pytest.raises(ValueError, match="every row must have 2 cells"):
        A.html_table(["a", "b"], [[1]])
    assert A.recorded_rows(None, None) == (["measurement", *A.ARCHS], [])
    table = [dict(task="lag", arch=a, mean=0.5, min=0.4, max=0.6, baseline=0.125, length=65) for a in A.ARCHS]
    rec = {"results": {"table": table}}
    recall_rec = {"results": {"table_width": [dict(arch=a, width=w, mean=0.9, min=0.8, max=1.0)
                                              for a in ("softmax", "linear", "delta") for w in (16, 32)]}}
    header, rows = A.recorded_rows(rec, recall_rec)
    assert len(rows) == 2 and all(len(r) == len(header) for r in rows)
    assert rows[0][0].startswith("lag (T = 65") and rows[0][1] == "0.50 [0.40, 0.60]"
    assert rows[1][0] == "MQAR recall, d = 16 (chapter 12)" and rows[1][3] == "0.90 [0.80, 1.00]"
    lstm = A.make_model("LSTM", 10, 16)
    b_x = dict(lstm.named_parameters())["recurrent.cells.0.b_x"]
    assert torch.allclose(b_x[16:32], torch.full((16,), A.FORGET_BIAS))
    assert "use" not in A.table_rows(*[{a: 1.0 for a in A.ARCHS}] * 7)


def test_chapter_15s_count_baselines_score_the_windows_size_gain_scores():
    import math

    from seqlab import data
    from seqlab.experiments import architectures as A
    from seqlab.models.ngram import NGramLM
    from seqlab.seeding import held_out
    corpus, s = data.CharCorpus(), {"context": 32}
    nats = A.size_gain_baselines(corpus, s, seed=3, max_order=3)
    assert list(nats) == [1, 2, 3] and nats[1] > nats[2] > nats[3] > 0
    _, y = corpus.batch("val", 64, 32, held_out(3))      # the unigram needs no context: every target, scored alone
    uni = NGramLM(1, corpus.vocab_size, smoothing="witten-bell").fit(corpus.train)
    assert nats[1] == pytest.approx(-uni.log_prob(y.flatten().cpu(), 0).mean().item() * math.log(2), rel=1e-5)


def test_chance_margin_is_three_binomial_standard_errors_and_covers_an_input_blind_model():
    assert exp.chance_margin(0.5, 512) == pytest.approx(3 * 0.5 / 512 ** 0.5)
    assert exp.chance_margin(0.125, 512, z=2) == pytest.approx(2 * (0.125 * 0.875 / 512) ** 0.5)
    # a constant answer on a balanced task: the share of one class in n draws stays within the margin
    g = torch.Generator().manual_seed(0)
    shares = [(torch.rand(512, generator=g) < 0.5).float().mean().item() for _ in range(200)]
    assert sum(abs(s - 0.5) > exp.chance_margin(0.5, 512) for s in shares) <= 2
    for bad in (0.0, 1.0, 1.5):
        with pytest.raises(ValueError, match="baseline must be a probability"):
            exp.chance_margin(bad, 512)
    with pytest.raises((ValueError, TypeError), match="n"):
        exp.chance_margin(0.5, 0)


def test_the_test_and_validation_streams_are_the_named_held_out_streams_of_the_recorded_runs():
    """results/longrange.json was recorded with generators of 10 000 + seed and 20 000 + seed: held_out
    streams 0 and 1 are those generators, so the logged runs stay valid."""
    from seqlab.config import seed_everything
    from seqlab.seeding import held_out
    for seed in (0, 2):
        assert torch.equal(held_out(seed, 0).get_state(), seed_everything(10_000 + seed).get_state())
        assert torch.equal(held_out(seed, 1).get_state(), seed_everything(20_000 + seed).get_state())


def test_lag_table_reports_each_lags_test_accuracy_at_the_rate_best_on_validation():
    """ssm_lags (chapter 15): per lag, the rate with the best mean validation accuracy over seeds; its seeds' test accuracy."""
    from seqlab.experiments.longrange import lag_table

    def run(lag, lr, seed, val, acc):
        return {"arch": "SSM", "lag": lag, "lr": lr, "seed": seed, "val_accuracy": val, "accuracy": acc, "baseline": 0.125}
    runs = [run(4, 1e-2, 0, 1.0, 0.98), run(4, 1e-2, 1, 1.0, 0.99), run(4, 3e-2, 0, 0.5, 1.0), run(4, 3e-2, 1, 0.5, 1.0),
            run(32, 1e-2, 0, 0.1, 0.12), run(32, 1e-2, 1, 0.2, 0.13), run(32, 3e-2, 0, 0.3, 0.11), run(32, 3e-2, 1, 0.3, 0.14)]
    rows = {r["lag"]: r for r in lag_table(runs)}
    assert rows[4]["lr"] == 1e-2 and rows[4]["accuracy"] == [0.98, 0.99] and rows[4]["min"] == 0.98   # chosen on validation
    assert rows[32]["lr"] == 3e-2 and rows[32]["mean"] == pytest.approx(0.125) and rows[32]["baseline"] == 0.125


def test_chapter_15s_trained_cells_read_the_worst_seed_and_the_baseline():
    from seqlab.experiments import architectures as A
    row = lambda mean, lo, hi: dict(mean=mean, min=lo, max=hi, baseline=0.125)
    assert A.trained_cell(row(0.99, 0.96, 1.0), 0.05).startswith("solved (0.99 [0.96, 1.00])")
    assert A.trained_cell(row(0.9, 0.86, 0.97), 0.05).startswith("partly")
    assert A.trained_cell(row(0.12, 0.11, 0.125), 0.05).startswith("not learned")
    assert A.trained_cell(None, 0.05) == "not run"
    # each word at its boundary: the worst seed exactly at SOLVED is solved; the mean exactly at baseline + margin is not
    assert A.trained_cell(row(0.97, A.SOLVED, 1.0), 0.05).startswith("solved")
    assert A.trained_cell(row(0.125 + 0.05, 0.1, 0.2), 0.05).startswith("not learned")
    assert A.trained_cell(row(0.125 + 0.0501, 0.1, 0.2), 0.05).startswith("partly")
    ones = {a: 1.0 for a in A.ARCHS}
    rows = A.table_rows(ones, ones, ones, ones, {a: 1.52 for a in A.ARCHS}, None, ones,
                        lag={"SSM": row(0.12, 0.11, 0.125)}, recall={}, margin=0.05)
    assert rows["long"]["SSM"].startswith("not learned") and rows["long"]["RNN"] == "not run"
    assert set(rows["recall"].values()) == {"not run"}
    assert all(c.startswith("between n and n² (slope 1.52)") for c in rows["cost"].values())   # 4/3 <= 1.52 < 5/3
    assert all("not measured" in rows["scale"][a] for a in A.ARCHS if a not in ("LSTM", "Transformer"))
    zero = dict(ones, Transformer=0.0, SSM=0.0, hybrid=0.0)
    notes = A.log_depth_notes(zero, {"scan": 4, "sum": 3})
    assert set(notes) == {"Transformer", "SSM", "hybrid"}                        # linear attention counts 1 here
    assert notes["hybrid"] == "each prefix sum +4, each sum over n +3 per doubling of n"
    rows = A.table_rows(ones, zero, ones, ones, ones, None, ones, par_notes=notes)
    assert rows["parallel"]["SSM"] == "yes (0.0 ops/token as counted; each prefix sum +4 per doubling of n)"
    assert rows["parallel"]["RNN"] == "no (1.0 ops/token)"


def test_cost_verdict_bins_at_their_edges():
    """The cost row's three words: the n² term under a third of the work on average, over two thirds, or between."""
    from seqlab.experiments import architectures as A
    assert [A.cost_verdict(x) for x in (1.0, A.LINEAR - 1e-9, A.LINEAR, 1.5, A.QUADRATIC - 1e-9, A.QUADRATIC, 2.0)] == \
        ["like n"] * 2 + ["between n and n²"] * 3 + ["like n²"] * 2
    # W = a n + b n^2: the exponent between n1 and 4 n1 is the average over log n of 1 + the n^2 term's share
    a, b, n1 = 300.0, 1.0, 100.0
    W = lambda n: a * n + b * n * n
    slope = math.log(W(4 * n1) / W(n1)) / math.log(4)
    u = torch.linspace(math.log(n1), math.log(4 * n1), 100001, dtype=torch.float64)
    share = b * u.exp() / (a + b * u.exp())
    assert abs(slope - (1 + torch.trapezoid(share, u).item() / math.log(4))) < 1e-9
    with pytest.raises(TypeError):
        A.cost_verdict("1.5")


def test_the_sweep_estimate_is_time_per_step_times_steps_times_runs(monkeypatch):
    """``estimate``'s arithmetic: each line's CPU minutes are its ms/step × steps × runs, and the total their sum
    (the tiny scale's budget raised, so that the minutes show in the printed digits; the probe steps stay 2)."""
    import re
    monkeypatch.setitem(exp.SETTINGS["tiny"], "steps", 200_000)
    lines = exp.estimate("tiny", probe_steps=2)
    total = 0.0
    for line in lines[:-1]:
        ms, runs, steps, minutes = re.search(r"([\d.]+) ms/step \(CPU\) -> (\d+) runs x (\d+) steps: +([\d.]+) CPU-min",
                                             line).groups()
        slack = 0.05 * int(runs) * int(steps) / 6e4      # the printed ms/step is rounded to 0.05 ms
        assert float(minutes) == pytest.approx(float(ms) * int(runs) * int(steps) / 6e4, abs=slack + 0.05)
        total += float(ms) * int(runs) * int(steps) / 1e3
    hours = float(re.search(r"in all: ([\d.]+) CPU-hours", lines[-1]).group(1))
    assert hours == pytest.approx(total / 3600, abs=(len(lines) - 1) * slack / 60 + 0.005)
