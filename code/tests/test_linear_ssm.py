"""Linear attention and SSM layers (chapters 12–13): shapes, modes that agree, states that continue, bad input.

The forms themselves are compared in ``test_equivalence.py``; here the thin modules around them.
"""
from __future__ import annotations

import math

import pytest
import torch
import torch.nn.functional as F

from seqlab import measure
from seqlab.models import (LinearAttention, LinearAttentionConfig, MixerLM, MixerLMConfig, SSMConfig, SSMLayer)
from seqlab.ops import linear_attention as la_ops
from seqlab.ops import ssm as ssm_ops


def _x(B=2, T=11, d=8, seed=0):
    return torch.randn(B, T, d, generator=torch.Generator().manual_seed(seed), dtype=torch.float64)


@pytest.mark.parametrize("opts", [dict(), dict(feature_map="taylor"), dict(gate="scalar"),
                                  dict(gate="channel", feature_map="identity")])
def test_linear_attention_modes_agree_and_state_continues(opts):
    torch.manual_seed(0)
    ref = LinearAttention(LinearAttentionConfig(d_model=8, n_heads=2, form="loop", chunk=4, **opts)).double()
    x = _x()
    y_ref, s_ref = ref(x)
    assert y_ref.shape == x.shape
    for form in ("parallel", "chunked", "stream"):
        layer = LinearAttention(LinearAttentionConfig(d_model=8, n_heads=2, form=form, chunk=4, **opts)).double()
        layer.load_state_dict(ref.state_dict())
        y, s = layer(x)
        torch.testing.assert_close(y, y_ref)
    # two pieces with the state handed over == one pass
    y1, s1 = ref(x[:, :5])
    y2, s2 = ref(x[:, 5:], state=s1)
    torch.testing.assert_close(torch.cat([y1, y2], 1), y_ref)


def test_linear_attention_state_size_matches_the_state():
    c = LinearAttentionConfig(d_model=8, n_heads=2, feature_map="taylor")
    _, (S, z) = LinearAttention(c)(torch.randn(3, 4, 8))
    assert S[0::3].numel() + z[0::3].numel() == c.state_numel()  # one sequence's heads: rows 0 and 3 of B·H = 6
    assert c.d_phi == 1 + 4 + 16


@pytest.mark.parametrize("kw,err,match", [
    (dict(d_model=10, n_heads=4), ValueError, "divisible"),
    (dict(form="fast"), ValueError, "form"),
    (dict(feature_map="softmax"), ValueError, "feature_map"),
    (dict(gate="vector"), ValueError, "gate"),
    (dict(gate="scalar", feature_map="taylor"), ValueError, "decays"),
    (dict(gate="scalar", normalize=True), ValueError, "normaliser"),
    (dict(feature_map="identity", normalize=True), ValueError, "positive feature map"),
])
def test_linear_attention_config_rejects_bad_options(kw, err, match):
    with pytest.raises(err, match=match):
        LinearAttentionConfig(**kw)


def test_linear_attention_ops_reject_bad_input():
    q = torch.randn(2, 5, 3)
    with pytest.raises(ValueError, match="same shape"):
        la_ops.linear_attention_loop(q, torch.randn(2, 5, 4), torch.randn(2, 5, 2))
    with pytest.raises(ValueError, match="d_v"):
        la_ops.linear_attention_chunked(q, q, torch.randn(2, 6, 2))
    with pytest.raises(TypeError, match="dtype"):
        la_ops.linear_attention_parallel(q, q, torch.randn(2, 5, 2, dtype=torch.float64))
    with pytest.raises(ValueError, match="state S"):
        la_ops.linear_attention_loop(q, q, torch.randn(2, 5, 2), state=(torch.randn(2, 4, 2), torch.randn(2, 3)))
    with pytest.raises(ValueError, match="log_alpha"):
        la_ops.gated_linear_attention_chunked(q, q, torch.randn(2, 5, 2), torch.zeros(2, 5, 2))
    with pytest.raises(ValueError, match="chunk"):
        la_ops.linear_attention_chunked(q, q, torch.randn(2, 5, 2), chunk=0)
    with pytest.raises(TypeError, match="float"):
        LinearAttention(LinearAttentionConfig(d_model=4, n_heads=1))(torch.ones(1, 3, 4, dtype=torch.long))
    with pytest.raises(ValueError, match="last dimension 4"):
        LinearAttention(LinearAttentionConfig(d_model=4, n_heads=1))(torch.randn(1, 3, 5))


def test_linear_attention_equals_softmax_free_attention_by_hand():
    """The parallel form is causal attention with scores φ(q)·φ(k), normalised by their sum."""
    q, k, v = torch.randn(1, 6, 3, dtype=torch.float64), torch.randn(1, 6, 3, dtype=torch.float64), \
        torch.randn(1, 6, 2, dtype=torch.float64)
    fq, fk = torch.nn.functional.elu(q) + 1, torch.nn.functional.elu(k) + 1
    w = (fq @ fk.transpose(1, 2)).tril()
    y_hand = (w / w.sum(-1, keepdim=True)) @ v
    y, _ = la_ops.linear_attention_loop(q, k, v)
    torch.testing.assert_close(y, y_hand, rtol=1e-4, atol=1e-5)  # EPS = 1e-6 in the denominator


@pytest.mark.parametrize("selective,modes", [(False, ("loop", "conv", "stream")),
                                             (True, ("loop", "parallel", "chunked", "blocked", "logspace", "stream"))])
def test_ssm_layer_modes_agree_and_state_continues(selective, modes):
    torch.manual_seed(0)
    layers = {}
    for form in modes:
        torch.manual_seed(0)
        layers[form] = SSMLayer(SSMConfig(d_model=6, d_state=3, selective=selective, form=form, chunk=4)).double()
    x = _x(d=6)
    y_ref, (buf, h) = layers["loop"](x)
    assert y_ref.shape == x.shape and buf.shape == (2, 3, 12)
    for form, layer in layers.items():
        torch.testing.assert_close(layer(x)[0], y_ref)
    y1, s1 = layers["loop"](x[:, :4])
    y2, _ = layers["loop"](x[:, 4:], state=s1)
    torch.testing.assert_close(torch.cat([y1, y2], 1), y_ref)


def test_s4d_lin_init_and_zoh():
    log_A_real, A_imag = ssm_ops.s4d_lin_init(2, 4, dtype=torch.float64)
    A = torch.complex(-torch.exp(log_A_real), A_imag)
    assert torch.allclose(A[1], torch.tensor([-0.5 + 1j * math.pi * n for n in range(4)], dtype=torch.complex128))
    # ZOH for a scalar system is exact: the step response of h' = a h + b u with u = 1 is (e^{a t} - 1) b / a
    log_dt = torch.log(torch.tensor([0.1, 0.3], dtype=torch.float64))
    B = torch.stack([torch.ones(2, 4), torch.zeros(2, 4)], -1).double()
    A_bar, B_bar = ssm_ops.s4d_discretize(log_dt, log_A_real, A_imag, B)
    h = torch.zeros(2, 4, dtype=torch.complex128)
    for _ in range(5):
        h = A_bar * h + B_bar
    t = 5 * torch.exp(log_dt)[:, None]
    torch.testing.assert_close(h, (torch.exp(A * t) - 1) / A)


def test_ssm_rejects_bad_input():
    with pytest.raises(ValueError, match="form for a time-invariant"):
        SSMConfig(selective=False, form="chunked")
    with pytest.raises(ValueError, match="dt_min"):
        SSMConfig(dt_min=0.2, dt_max=0.1)
    with pytest.raises(TypeError, match="SSMConfig"):
        SSMLayer(dict(d_model=4))
    layer = SSMLayer(SSMConfig(d_model=4, d_state=2))
    with pytest.raises(ValueError, match="last dimension 4"):
        layer(torch.randn(1, 3, 5))
    with pytest.raises(ValueError, match=r"SSMLayer: the state does not belong .* got float32\(1\)"):
        layer(torch.randn(1, 3, 4), state=torch.zeros(1))
    u = torch.randn(2, 5, 3)
    with pytest.raises(ValueError, match="delta"):
        ssm_ops.selective_scan_loop(u, torch.rand(2, 4, 3), -torch.rand(3, 2), torch.randn(2, 5, 2),
                                    torch.randn(2, 5, 2), torch.randn(3))
    with pytest.raises(ValueError, match="state must be"):
        ssm_ops.selective_scan_chunked(u, torch.rand(2, 5, 3), -torch.rand(3, 2), torch.randn(2, 5, 2),
                                       torch.randn(2, 5, 2), torch.randn(3), state=torch.zeros(2, 3, 3))
    log_A_real, A_imag = ssm_ops.s4d_lin_init(3, 2)
    with pytest.raises(ValueError, match="B must have shape"):
        ssm_ops.s4d_conv(u, torch.zeros(3), log_A_real, A_imag, torch.zeros(3, 2), torch.zeros(3, 2, 2), torch.zeros(3))


def test_inner_chunk_is_the_largest_divisor_of_the_block_not_above_the_root_of_twice_it():
    assert [ssm_ops._inner_chunk(k) for k in (1, 2, 7, 8, 100, 128, 131)] == [1, 2, 1, 4, 10, 16, 1]


def _scan_inputs(Bsz, T, Dm, N, seed, dtype=torch.float64):
    g = torch.Generator().manual_seed(seed)
    r = lambda *s: torch.randn(*s, generator=g, dtype=dtype)  # noqa: E731
    return dict(u=r(Bsz, T, Dm), delta=F.softplus(r(Bsz, T, Dm) - 1), A=-torch.exp(r(Dm, N)), B=r(Bsz, T, N),
                C=r(Bsz, T, N), D=r(Dm)), r(Bsz, Dm, N)


@pytest.mark.parametrize("T,block", [(100, 32), (37, 16), (100, 50), (64, 64), (20, 128)])
def test_blocked_scan_equals_the_loop_with_long_blocks(T, block):
    """Blocks of several inner chunks, a short last block, one block longer than T: outputs, final state and
    every gradient equal the loop's (the harness's cases have blocks of at most 8 steps)."""
    inputs, h0 = _scan_inputs(2, T, 3, 4, seed=T + block)
    results = {}
    for form in ("loop", "blocked"):
        leaves = {k: v.clone().requires_grad_() for k, v in inputs.items()}
        state = h0.clone().requires_grad_()
        fn = ssm_ops.SELECTIVE_SCAN.forms[form]
        y, h = fn(**leaves, state=state, **({"chunk": block} if form == "blocked" else {}))
        (y * torch.linspace(-1, 1, y.numel(), dtype=y.dtype).view_as(y)).sum().add((h ** 2).sum()).backward()
        results[form] = (y, h, {k: v.grad for k, v in leaves.items()}, state.grad)
    (y0, h0_, g0, s0), (y1, h1, g1, s1) = results["loop"], results["blocked"]
    torch.testing.assert_close(y1, y0)
    torch.testing.assert_close(h1, h0_)
    for k in g0:
        torch.testing.assert_close(g1[k], g0[k], msg=lambda m, k=k: f"gradient of {k}: {m}")
    torch.testing.assert_close(s1, s0)


def test_blocked_scan_saves_the_inputs_and_the_states_entering_its_chunks():
    """What the docstring promises: no B·T·D·N tensor is kept for the backward pass."""
    Bsz, T, Dm, N, block = 2, 50, 3, 4, 16
    inputs, _ = _scan_inputs(Bsz, T, Dm, N, seed=0, dtype=torch.float32)
    leaves = {k: v.requires_grad_() for k, v in inputs.items()}
    saved = measure.saved_tensor_bytes(lambda: ssm_ops.selective_scan_blocked(**leaves, chunk=block)[0])
    chunks = 3 * (16 // 4) + 2 // 2  # three blocks of 16 steps in chunks of 4, a last block of 2 in one chunk of 2
    numbers = 2 * Bsz * T * Dm + 2 * Bsz * T * N + Dm * N + Dm + chunks * Bsz * Dm * N
    assert saved == 4 * numbers
    chunked = measure.saved_tensor_bytes(lambda: ssm_ops.selective_scan_chunked(**leaves, chunk=block)[0])
    assert chunked >= 4 * 2 * Bsz * T * Dm * N  # the chunked form keeps a_t and h_t for every step


def test_logspace_scan_keeps_signs():
    """Negative inputs and a negative initial state: the complex log gives back the sign."""
    a = torch.tensor([[0.5, 0.9, 0.2]], dtype=torch.float64)
    b = torch.tensor([[-1.0, 2.0, -3.0]], dtype=torch.float64)
    h0 = torch.tensor([-4.0], dtype=torch.float64)
    h = ssm_ops.linear_scan_logspace(torch.log(a), b, h0)
    expect, s = [], h0
    for t in range(3):
        s = a[:, t] * s + b[:, t]
        expect.append(s)
    torch.testing.assert_close(h, torch.stack(expect, 1))


@pytest.mark.parametrize("mixer", ["softmax", "linear", "gated_linear", "s4d", "selective"])
def test_mixer_lm_shapes_and_state_bytes(mixer):
    lm = MixerLM(MixerLMConfig(vocab_size=10, mixer=mixer, d_model=8, n_heads=2))
    x = torch.randint(0, 10, (3, 7))
    logits, _ = lm(x)
    assert logits.shape == (3, 7, 10)
    with torch.no_grad():
        b16, b64 = (lm.state_bytes(lm(torch.zeros(1, T, dtype=torch.long))[1]) for T in (16, 64))
    assert (b64 > b16) == (mixer == "softmax")  # only the KV cache grows with T
    if mixer == "softmax":  # 2 layers x (K and V) x 48 more tokens x d_model = 8 numbers x 4 bytes
        assert b64 - b16 == 2 * 2 * 48 * 8 * 4
    with pytest.raises(ValueError, match="must lie in"):
        lm(torch.full((1, 3), 10))
    with pytest.raises(TypeError, match="integer"):
        lm(torch.zeros(1, 3))


def test_mixer_lm_config_errors():
    with pytest.raises(ValueError, match="mixer"):
        MixerLMConfig(vocab_size=4, mixer="rnn")
    with pytest.raises(ValueError, match="no options"):
        MixerLMConfig(vocab_size=4, options=dict(d_state=2))


def test_ssd_layer_checks_its_heads_and_runs_mamba2s_recurrence_in_every_head():
    with pytest.raises(ValueError, match="needs a selective layer"):
        SSMConfig(selective=False, heads=2)
    with pytest.raises(ValueError, match="heads must divide d_inner = expand · d_model = 8, got heads=3"):
        SSMConfig(d_model=4, heads=3)
    with pytest.raises(ValueError, match="form for an SSD layer must be one of"):
        SSMConfig(heads=2, form="conv")
    torch.manual_seed(0)
    H, N, P, T = 2, 3, 4, 5
    layer = SSMLayer(SSMConfig(d_model=4, d_state=N, heads=H, chunk=2)).double()
    assert layer.family == "ssd" and (-torch.exp(layer.A_log) <= -1).all() and (-torch.exp(layer.A_log) >= -16).all()
    u = torch.randn(1, T, H * P, dtype=torch.float64)
    y, h = layer._ssd(u, None)
    dt_raw, B_t, C_t = layer.x_proj(u).split([H, N, N], -1)
    for head in range(H):  # by hand, head by head: h_t = exp(Δ_t A) h_{t-1} + B_tᵀ (Δ_t u_t), y_t = C_t h_t + D u_t
        cols, hh = slice(head * P, (head + 1) * P), torch.zeros(N, P, dtype=torch.float64)
        for t in range(T):
            delta = F.softplus(dt_raw[0, t, head] + layer.dt_bias[head])
            hh = torch.exp(-delta * torch.exp(layer.A_log[head])) * hh + torch.outer(B_t[0, t], delta * u[0, t, cols])
            torch.testing.assert_close(y[0, t, cols], C_t[0, t] @ hh + layer.D[head] * u[0, t, cols])
        torch.testing.assert_close(h[0, head], hh)


def test_ssd_decays_start_spread_over_the_whole_of_1_to_16():
    """Mamba-2's initialisation: A_h = −exp(A_log_h) with exp(A_log_h) uniform on [1, 16], per head (chapter 13).
    With 512 heads the draws reach within 0.5 of each end (a narrower or wider range fails; chance ~1e-7)."""
    torch.manual_seed(0)
    a = torch.exp(SSMLayer(SSMConfig(d_model=512, d_state=2, expand=1, heads=512)).A_log.detach())
    assert a.min() >= 1 and a.max() <= 16 and a.min() < 1.5 and a.max() > 15.5
    assert abs(a.mean().item() - 8.5) < 0.6                       # the uniform's mean, 8.5 (sd of the mean ~0.19)
