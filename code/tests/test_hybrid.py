"""Chapter 14: the RG-LRU's parametrisation, sliding-window attention, its ring-buffer state, hybrid stacks, gapped recall.

(The RG-LRU's forms are compared with each other by the equivalence harness, test_equivalence.py.)
"""
import math

import pytest
import torch

from seqlab.data import IGNORE, GappedRecall
from seqlab.models.attention import scaled_dot_product_attention
from seqlab.models.hybrid import HybridConfig, HybridLM, state_bytes
from seqlab.models.positional import apply_rope
from seqlab.ops import rglru


def _model(pattern, window=5, **kw):
    torch.manual_seed(0)
    return HybridLM(HybridConfig(vocab_size=11, pattern=pattern, d_model=16, n_heads=2, window=window, chunk=4,
                                 **kw)).double()


def test_lambda_init_puts_a_to_the_c_in_the_interval():
    lam = rglru.rglru_lambda_init(1000, generator=torch.Generator().manual_seed(0), dtype=torch.float64)
    a_c = torch.exp(-rglru.C * torch.nn.functional.softplus(lam))  # the decay when the gate r_t = 1
    assert 0.9 <= a_c.min() and a_c.max() <= 0.999
    assert a_c.max() - a_c.min() > 0.09  # spread over the interval, not one value
    with pytest.raises(ValueError, match="a_min"):
        rglru.rglru_lambda_init(4, a_min=0.5, a_max=1.0)


def test_rglru_keeps_unit_variance_and_closed_gate_keeps_the_state():
    D = 64
    g = torch.Generator().manual_seed(1)
    x = torch.randn(256, 200, D, generator=g, dtype=torch.float64)
    zeros = torch.zeros(D, D, dtype=torch.float64)
    big = torch.full((D,), 30.0, dtype=torch.float64)  # gates σ(30) = 1: i_t = 1, r_t = 1
    lam = rglru.rglru_lambda_init(D, a_min=0.9, a_max=0.95, generator=g, dtype=torch.float64)  # forgets in < 200 steps
    y, _ = rglru.rglru_loop(x, zeros, big, zeros, big, lam)
    # √(1 − a²) normalises: with i = 1 and white input the stationary variance of h is 1
    assert abs(y[:, -1].var().item() - 1.0) < 0.1
    h0 = torch.randn(3, D, generator=g, dtype=torch.float64)
    y, h = rglru.rglru_loop(x[:3, :5], zeros, -big, zeros, big, lam, state=h0)  # r_t = 0: a_t = 1
    torch.testing.assert_close(h, h0, rtol=0, atol=1e-5)  # √(1 − a²) ~ 1e-6 lets a trace of x in


def test_rglru_rejects_bad_input():
    x = torch.randn(2, 3, 4)
    p = [torch.randn(4, 4), torch.randn(4), torch.randn(4, 4), torch.randn(4), torch.randn(4)]
    with pytest.raises(ValueError, match="W_a must have shape"):
        rglru.rglru_scan(x, torch.randn(3, 4), *p[1:])
    with pytest.raises(TypeError, match="dtype"):
        rglru.rglru_loop(x.double(), *p)
    with pytest.raises(ValueError, match="state must be h"):
        rglru.rglru_chunked(x, *p, state=torch.zeros(2, 5))
    with pytest.raises(ValueError, match="3-dimensional"):
        rglru.rglru_stream(x[0], *p)


@pytest.mark.parametrize("form", ["fused", "parallel"])
@pytest.mark.parametrize("window,T", [(1, 6), (3, 10), (4, 4), (20, 9)])
def test_sliding_window_equals_full_attention_with_a_band_mask(window, T, form):
    layer = _model("A", window=window).mixers[0]
    layer.form = form
    x = torch.randn(2, T, 16, dtype=torch.float64)
    y, _ = layer(x)
    # by hand: full attention of chapter 6 with a band mask 0 <= i - j < W
    u = torch.nn.functional.conv1d(torch.nn.functional.pad(x.transpose(1, 2), (2, 0)), layer.conv.weight,
                                   layer.conv.bias, groups=16).transpose(1, 2)
    attn = layer.mixer
    q, k, v = (W(u).view(2, T, 2, 8).transpose(1, 2) for W in (attn.W_q, attn.W_k, attn.W_v))
    i, j = torch.arange(T)[:, None], torch.arange(T)[None, :]
    band = (i - j >= 0) & (i - j < window)
    out, weights = scaled_dot_product_attention(apply_rope(q), apply_rope(k), v, mask=band)
    ref = attn.W_o(out.transpose(1, 2).reshape(2, T, 16))
    torch.testing.assert_close(y, ref)
    assert (weights[..., ~band] == 0).all()
    if window >= T:  # a window as long as the sequence is full causal attention
        full = _model("G").mixers[0]
        full.load_state_dict(layer.state_dict())
        torch.testing.assert_close(full(x)[0], y)


@pytest.mark.parametrize("pattern", ["R", "A", "G", "RRA", "RRG", "AGR"])
def test_streaming_and_pieces_equal_the_parallel_form(pattern):
    m = _model(pattern)
    x = torch.randint(0, 11, (2, 13))
    y, state = m(x)
    s, steps = None, []
    for t in range(13):  # the ring buffer, one token at a time
        logits, s = m.step(x[:, t], s)
        steps.append(logits)
    torch.testing.assert_close(torch.stack(steps, 1), y)
    y1, s1 = m(x[:, :4])
    y2, s2 = m(x[:, 4:11], s1)  # a piece longer than the window
    y3, s3 = m(x[:, 11:], s2)
    torch.testing.assert_close(torch.cat([y1, y2, y3], 1), y)
    # the final states agree too, whichever way they were reached
    torch.testing.assert_close(s, state)
    torch.testing.assert_close(s3, state)


def test_gradients_flow_the_same_through_the_recurrent_modes():
    x = torch.randint(0, 11, (2, 9))
    grads = {}
    for form in ("loop", "scan", "chunked"):
        m = _model("RA", form=form)
        m(x)[0].square().sum().backward()
        grads[form] = [p.grad.clone() for p in m.parameters()]
    for form in ("scan", "chunked"):
        for a, b in zip(grads[form], grads["loop"]):
            torch.testing.assert_close(a, b)


def test_state_bytes_constant_in_context_for_recurrence_and_window_growing_for_global():
    sizes = {}
    for pattern in ("R", "A", "G"):
        m = _model(pattern, window=8)
        sizes[pattern] = [state_bytes(m(torch.randint(0, 11, (1, T)))[1]) for T in (8, 32, 128)]
    assert sizes["R"][0] == sizes["R"][1] == sizes["R"][2]
    assert sizes["A"][0] == sizes["A"][1] == sizes["A"][2]
    # global: 2 (K and V) * d_model numbers * 8 bytes per extra token
    assert sizes["G"][2] - sizes["G"][1] == (128 - 32) * 2 * 16 * 8
    A = _model("A", window=8).mixers[0]
    _, s = A(torch.randn(1, 50, 16, dtype=torch.float64))
    K, V, t = s[1]  # (conv buffer, (K, V, t))
    assert K.shape[2] == 8 and t == 50  # at most W keys, however long the context


def test_hybrid_rejects_bad_input():
    with pytest.raises(ValueError, match="pattern"):
        HybridConfig(vocab_size=5, pattern="RXA")
    with pytest.raises(ValueError, match="pattern"):
        HybridConfig(vocab_size=5, pattern="")
    with pytest.raises(ValueError, match="window must be >= 1"):
        HybridConfig(vocab_size=5, window=0)
    with pytest.raises(ValueError, match="even"):
        HybridConfig(vocab_size=5, d_model=12, n_heads=4)
    with pytest.raises(ValueError, match="form"):
        HybridConfig(vocab_size=5, form="fast")
    with pytest.raises(TypeError, match="HybridConfig"):
        HybridLM(dict(vocab_size=5))
    m = _model("RA")
    with pytest.raises(TypeError, match="integer"):
        m(torch.randn(2, 3))
    with pytest.raises(ValueError, match=r"x must lie in \[0, 11\)"):
        m(torch.full((2, 3), 11))
    with pytest.raises(ValueError, match="2-dimensional"):
        m(torch.zeros(3, dtype=torch.long))
    with pytest.raises(ValueError, match="list of 2 layer states returned by this model, got tuple"):
        m(torch.zeros(2, 3, dtype=torch.long), state=("R",))
    _, state = m(torch.zeros(2, 3, dtype=torch.long))
    with pytest.raises(ValueError, match=r"RecurrentBlock: the state does not belong .* expected \(float64\(2, 3, 16\)"):
        m(torch.zeros(2, 3, dtype=torch.long), state=state[::-1])
    with pytest.raises(ValueError, match=r"expected \(float64\(3, 3, 16\), float64\(3, 16\)\), got \(float64\(2, 3, 16\)"):
        m.step(torch.zeros(3, dtype=torch.long), state)


def test_gapped_recall_puts_the_pairs_outside_the_window():
    task = GappedRecall(n_pairs=3, gap=10, n_queries=5, vocab=16)
    x, y = task.sample(64, 0)
    assert x.shape == y.shape == (64, task.length) and task.length == 6 + 10 + 5
    keys, values = x[:, 0:6:2], x[:, 1:6:2]
    assert ((keys >= 1) & (keys < 8)).all() and ((values >= 8) & (values < 16)).all()
    assert (x[:, 6:16] == 0).all() and (y[:, :16] == IGNORE).all()
    for b in range(64):  # every query's target is its key's value
        table = dict(zip(keys[b].tolist(), values[b].tolist()))
        assert len(table) == 3
        assert [table[k] for k in x[b, 16:].tolist()] == y[b, 16:].tolist()
    assert task.outside_window(11) and not task.outside_window(12)
    assert math.isclose(task.chance, 2 / 16)
    with pytest.raises(ValueError, match="n_pairs"):
        GappedRecall(n_pairs=8, vocab=16)
    with pytest.raises(ValueError, match="even"):
        GappedRecall(vocab=15)


# --- the learning-rate grid of chapter 14 (experiments.hybrid_lr) ----------------------------------------------


def _run(model, lr, seed, accuracies):
    return {"model": model, "lr": lr, "seed": seed, "accuracy": accuracies[-1],
            "curve": {"step": [50 * (i + 1) for i in range(len(accuracies))], "accuracy": accuracies}}


def test_steps_to_reads_the_first_evaluation_at_the_target():
    from seqlab.experiments.hybrid_lr import steps_to
    run = _run("m", 1e-3, 0, [0.2, 0.89, 0.9, 0.95])
    assert steps_to(run, 0.9) == 150 and steps_to(run, 0.95) == 200 and steps_to(run, 0.96) is None


def test_best_rates_counts_a_miss_as_the_whole_budget_and_flags_an_edge():
    from seqlab.experiments.hybrid_lr import best_rates
    lrs = [1e-3, 3e-3, 1e-2]
    runs = [_run("A", 1e-3, 0, [0.1, 0.2, 0.3, 0.4]), _run("A", 1e-3, 1, [0.1, 0.2, 0.3, 0.4]),        # never: 400, 400
            _run("A", 3e-3, 0, [0.5, 0.95]), _run("A", 3e-3, 1, [0.1, 0.2, 0.3, 0.4]),                      # 100 and 400
            _run("A", 1e-2, 0, [0.5, 0.6, 0.91]), _run("A", 1e-2, 1, [0.5, 0.6, 0.92]),                     # 150, 150
            _run("B", 1e-3, 0, [0.95]), _run("B", 3e-3, 0, [0.1, 0.95]), _run("B", 1e-2, 0, [0.1, 0.2, 0.95])]
    best = best_rates(runs, lrs, steps=400, target=0.9)
    assert dict(best["A"]["mean_steps"]) == {1e-3: 400, 3e-3: 250, 1e-2: 150}
    assert best["A"]["lr"] == 1e-2 and not best["A"]["bracketed"] and best["A"]["steps"] == [150, 150]
    assert best["B"]["lr"] == 1e-3 and not best["B"]["bracketed"] and best["B"]["accuracy"] == [0.95]
    runs[6] = _run("B", 1e-3, 0, [0.1, 0.2, 0.3, 0.95])   # B is now fastest at the middle rate
    assert best_rates(runs, lrs, steps=400, target=0.9)["B"] == {
        "mean_steps": [[1e-3, 200], [3e-3, 100], [1e-2, 150]], "lr": 3e-3, "bracketed": True, "steps": [100],
        "accuracy": [0.95], "seeds": [0]}
