"""minGRU/minLSTM and Mamba-2's SSD beyond the equivalence harness: the facts their docstrings promise (chapter 13)."""
from __future__ import annotations

import math

import pytest
import torch
import torch.nn.functional as F

from seqlab.ops import linear_attention as la
from seqlab.ops import minrnn, ssd


def _weights(names, D, H, g, dtype=torch.float64):
    return {n: (torch.randn(H, D, generator=g, dtype=dtype) / math.sqrt(D) if n.startswith("W")
                else torch.randn(H, generator=g, dtype=dtype)) for n in names}


def test_g_is_positive_continuous_and_log_g_is_its_logarithm():
    x = torch.linspace(-30, 30, 2001, dtype=torch.float64)
    assert (minrnn.g(x) > 0).all()
    torch.testing.assert_close(minrnn.log_g(x), torch.log(minrnn.g(x)))
    eps = torch.tensor([-1e-9, 0.0, 1e-9], dtype=torch.float64)
    assert (minrnn.g(eps) - 0.5).abs().max() < 1e-8  # both branches meet at g(0) = 1/2
    torch.testing.assert_close(minrnn.g(torch.tensor([2.0, -2.0])), torch.tensor([2.5, torch.sigmoid(torch.tensor(-2.0))]))


@pytest.mark.parametrize("family,names", [(minrnn.MINGRU, ("W_z", "b_z", "W_h", "b_h")),
                                          (minrnn.MINLSTM, minrnn._LSTM_NAMES)])
def test_every_form_agrees_from_a_negative_initial_state(family, names):
    """A public log-space port takes log h_0 and fails when h_0 < 0; ours adds h_0 as its own decayed term."""
    g = torch.Generator().manual_seed(0)
    x = torch.randn(2, 40, 3, generator=g, dtype=torch.float64)
    w = _weights(names, 3, 5, g)
    h0 = -torch.rand(2, 5, generator=g, dtype=torch.float64) - 0.5  # every entry negative
    y_ref, h_ref = family.forms["loop"](x, **w, state=h0)
    for form in ("logspace", "chunked", "stream"):
        y, h = family.forms[form](x, **w, state=h0, chunk=6)
        assert torch.isfinite(y).all(), form
        torch.testing.assert_close(y, y_ref, msg=form)
        torch.testing.assert_close(h, h_ref, msg=form)
    # the naive port: prepend log h_0 to the log values; its logarithm of a negative number is NaN
    log_a, log_b = minrnn.mingru_log_coefficients(x, **_weights(("W_z", "b_z", "W_h", "b_h"), 3, 5, g))
    naive = torch.logcumsumexp(torch.cat([torch.log(h0)[:, None], log_b], 1), 1)
    assert torch.isnan(naive).any()


def test_mingru_follows_its_equation_by_hand():
    """One step, written with the paper's letters: h_1 = (1 − z) h_0 + z g(W_h x + b_h), z = σ(W_z x + b_z)."""
    g = torch.Generator().manual_seed(1)
    w = _weights(("W_z", "b_z", "W_h", "b_h"), 2, 3, g)
    x, h0 = torch.randn(1, 1, 2, generator=g, dtype=torch.float64), torch.randn(1, 3, generator=g, dtype=torch.float64)
    z = 1 / (1 + torch.exp(-(x[0, 0] @ w["W_z"].T + w["b_z"])))
    pre = x[0, 0] @ w["W_h"].T + w["b_h"]
    cand = torch.where(pre >= 0, pre + 0.5, 1 / (1 + torch.exp(-pre)))
    _, h1 = minrnn.mingru_loop(x, **w, state=h0)
    torch.testing.assert_close(h1[0], (1 - z) * h0[0] + z * cand)


def test_minlstm_normalised_gates_sum_to_one_and_decay():
    g = torch.Generator().manual_seed(2)
    w = _weights(minrnn._LSTM_NAMES, 3, 4, g)
    x = 3 * torch.randn(2, 50, 3, generator=g, dtype=torch.float64)
    log_f, _ = minrnn.minlstm_log_coefficients(x, *w.values())
    k_f, k_i = x @ w["W_f"].T + w["b_f"], x @ w["W_i"].T + w["b_i"]
    f, i = torch.sigmoid(k_f), torch.sigmoid(k_i)
    torch.testing.assert_close(torch.exp(log_f), f / (f + i))
    assert (log_f < 0).all()  # a_t < 1: the state decays, it never grows
    # with a constant input the state converges to the candidate, whatever h_0 (f' + i' = 1)
    xc = torch.ones(1, 400, 3, dtype=torch.float64)
    y, _ = minrnn.minlstm_loop(xc, **w, state=100 * torch.ones(1, 4, dtype=torch.float64))
    torch.testing.assert_close(y[0, -1], minrnn.g(xc[0, 0] @ w["W_h"].T + w["b_h"]), rtol=1e-6, atol=1e-6)


def test_logspace_scan_is_stable_over_long_sequences_in_float32():
    g = torch.Generator().manual_seed(3)
    w = _weights(("W_z", "b_z", "W_h", "b_h"), 4, 8, g, dtype=torch.float32)
    x = torch.randn(2, 2048, 4, generator=g)
    y_ref, _ = minrnn.mingru_chunked(x, **w, chunk=32)
    y, _ = minrnn.mingru_logspace(x, **w)
    assert torch.isfinite(y).all()
    torch.testing.assert_close(y, y_ref, rtol=2e-3, atol=2e-4)


def _ssd_problem(g, Bsz=2, H=3, T=37, P=4, N=5, dtype=torch.float64):
    kw = dict(generator=g, dtype=dtype)
    return dict(x=torch.randn(Bsz, H, T, P, **kw), dt=F.softplus(torch.randn(Bsz, H, T, **kw) - 1),
                B=torch.randn(Bsz, T, N, **kw), C=torch.randn(Bsz, T, N, **kw),
                A=-torch.exp(torch.randn(H, **kw)), D=torch.randn(H, **kw))


def test_ssd_is_gated_linear_attention():
    """A scalar-decay selective SSM equals gated linear attention with q = C, k = B, v = Δx, α_t = exp(Δ_t A)."""
    g = torch.Generator().manual_seed(4)
    p = _ssd_problem(g)
    h0 = torch.randn(2, 3, 5, 4, generator=g, dtype=torch.float64)
    y, hT = ssd.ssd_chunked(**p, state=h0, chunk=8)
    Bsz, H, T, P = p["x"].shape
    for head in range(H):
        y_gla, S = la.gated_linear_attention_chunked(
            p["C"], p["B"], p["dt"][:, head, :, None] * p["x"][:, head], (p["dt"][:, head] * p["A"][head])[..., None],
            state=h0[:, head], chunk=8)
        torch.testing.assert_close(y[:, head], y_gla + p["D"][head] * p["x"][:, head])
        torch.testing.assert_close(hT[:, head], S)


def test_ssd_mask_is_one_semiseparable():
    """Every block of M below the diagonal has rank 1: M_ts = e^{cum_t} e^{−cum_s}."""
    g = torch.Generator().manual_seed(5)
    M = ssd.segsum_decay(-torch.rand(12, generator=g, dtype=torch.float64))
    assert torch.equal(M, M.tril()) and torch.allclose(M.diagonal(), torch.ones(12, dtype=torch.float64))
    block = M[6:, :6]
    s = torch.linalg.svdvals(block)
    assert s[1] < 1e-12 * s[0]


def test_gated_chunked_falls_back_when_a_chunk_decays_too_much():
    """Strong decays (e^{-40} per step in float32) overflow the factored product: the pairwise path takes over."""
    g = torch.Generator().manual_seed(6)
    q, k, v = (torch.randn(2, 19, 4, generator=g) for _ in range(3))
    log_alpha = -40 * torch.rand(2, 19, 4, generator=g)
    assert not la._factored_ok(log_alpha.reshape(2, 1, 19, 4).cumsum(2))
    y_ref, S_ref = la.gated_linear_attention_loop(q, k, v, log_alpha)
    y, S = la.gated_linear_attention_chunked(q, k, v, log_alpha, chunk=8)
    assert torch.isfinite(y).all()
    torch.testing.assert_close(y, y_ref, rtol=1e-4, atol=1e-5)
    torch.testing.assert_close(S, S_ref, rtol=1e-4, atol=1e-5)
    weak = F.logsigmoid(torch.randn(2, 19, 4, generator=g) + 3)
    assert la._factored_ok(F.pad(weak, (0, 0, 0, 5)).reshape(2, 3, 8, 4).cumsum(2))


@pytest.mark.parametrize("bad,match", [
    (dict(A=torch.zeros(2, dtype=torch.float64)), "A must have shape"),
    (dict(dt=torch.zeros(2, 3, 36, dtype=torch.float64)), "dt must have shape"),
    (dict(x=torch.zeros(2, 3, 37, 4)), "dtype"),
])
def test_ssd_refuses_bad_input(bad, match):
    p = dict(_ssd_problem(torch.Generator().manual_seed(7)), **bad)
    with pytest.raises((ValueError, TypeError), match=match):
        ssd.ssd_chunked(**p)


def test_ssd_refuses_a_foreign_state():
    p = _ssd_problem(torch.Generator().manual_seed(8))
    with pytest.raises(ValueError, match=r"\(B, H, N, P\)"):
        ssd.ssd_loop(**p, state=torch.zeros(2, 3, 4, 5, dtype=torch.float64))  # N and P swapped
    with pytest.raises(ValueError, match=r"\(B, H\)"):
        minrnn.mingru_chunked(torch.zeros(1, 3, 2), torch.zeros(4, 2), torch.zeros(4), torch.zeros(4, 2),
                              torch.zeros(4), state=torch.zeros(2, 4))


# ------------------------------------------------------------------------------------------ the layer
@pytest.mark.parametrize("cell", ["mingru", "minlstm"])
def test_minrnn_layer_pieces_steps_and_forms_agree(cell):
    """Every form gives forward's numbers; two pieces from the carried state give the whole; step equals forward."""
    from seqlab.models.minrnn import MinRNN
    torch.manual_seed(9)
    layer = MinRNN(6, cell, form="loop", chunk=4).double()
    x = torch.randn(2, 11, 6, dtype=torch.float64)
    y, h = layer(x)
    for form in layer.forms:
        layer.form = form
        torch.testing.assert_close(layer(x)[0], y)
    y1, s = layer(x[:, :5])
    y2, s = layer(x[:, 5:], s)
    torch.testing.assert_close(torch.cat([y1, y2], 1), y)
    torch.testing.assert_close(s, h)
    state, steps = None, []
    for t in range(11):
        y_t, state = layer.step(x[:, t], state)
        steps.append(y_t)
    torch.testing.assert_close(torch.stack(steps, 1), y)
    assert layer.state_bytes(h) == 2 * 6 * 8
    with pytest.raises(ValueError, match=r"does not belong to this layer"):
        layer(x, torch.zeros(3, 6, dtype=torch.float64))  # another batch's state
    with pytest.raises(ValueError, match="form must be one of"):
        layer.form = "fused"


def test_minrnn_lm_refuses_a_state_of_another_depth():
    from seqlab.models.minrnn import MinRNNLM
    model = MinRNNLM(10, 8, n_layers=2)
    _, state = model(torch.randint(0, 10, (1, 5)))
    assert len(state) == 2
    with pytest.raises(ValueError, match="list of 2"):
        model(torch.randint(0, 10, (1, 5)), state[:1])


def test_a_one_layer_min_rnn_lm_reports_and_sets_its_form():
    from seqlab.models.minrnn import MinRNNLM
    lm = MinRNNLM(vocab_size=5, d=4, n_layers=1, form="loop")
    assert lm.form == "loop"
    lm.form = "chunked"
    assert lm.form == "chunked" and all(m.form == "chunked" for m in lm.mixers)
