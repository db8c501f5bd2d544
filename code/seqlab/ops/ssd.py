"""Mamba-2's state-space duality (SSD): the selective scan with one scalar decay per head, as a mixer family (chapter 13).

Glossary (code name -> book notation; Dao & Gu, 2024, "Transformers are SSMs"):

    x              the input u_t of every head (the book's u_t: x in code), (B, H, T, P): H heads of width P
    dt             Δ_t > 0, the step size, one per head and step, (B, H, T)
    A              the decay rate, one negative scalar per head, (H,): a_t = exp(Δ_t A) ∈ (0, 1)
    B, C           the input and output maps B_t, C_t, shared by the heads, (B, T, N)
    D              the skip connection y_t += D u_t, one per head, (H,)
    h              the state h_t of every head, an N × P matrix: (B, H, N, P)

The recurrence, per head (the selective scan of chapter 13 with A a scalar instead of a diagonal):

    h_t = exp(Δ_t A) h_{t-1} + B_tᵀ (Δ_t u_t),   y_t = C_t h_t + D u_t.

Unrolled, y_t = Σ_{s≤t} (C_t · B_s) exp(Σ_{s<r≤t} Δ_r A) Δ_s u_s + C_t exp(Σ_{r≤t} Δ_r A) h_0 + D u_t:
y = (M ⊙ C Bᵀ) (Δ u) with the lower-triangular M_ts = exp(cum_t − cum_s), cum_t = Σ_{r≤t} Δ_r A. M is
*1-semiseparable* (every block below the diagonal has rank 1), and C Bᵀ is an attention matrix with
queries C and keys B: this selective SSM *is* gated linear attention (chapter 12) with q = C, k = B,
v = Δ u and a scalar forget factor α_t = exp(Δ_t A) (``test_ssd_is_gated_linear_attention``).
Because the decay is a scalar per head, the mask M factors out of the sum over the state index,
and the quadratic form is a few matrix products: the duality Mamba-2 is named after.

The forms, all ``form(x, dt, B, C, A, D, state=None, chunk=…) -> (y (B, H, T, P), h_T (B, H, N, P))``:

    loop      the recurrence above, one Python step per time step (the reference)
    parallel  the quadratic ("attention") form: y = (M ⊙ C Bᵀ)(Δ x) + the initial state's part, O(T²)
    chunked   SSD: cut time into chunks of ``chunk`` steps; inside each, the quadratic form; each
              chunk's final state from zero; the states entering the chunks by the same 1-semiseparable
              sum one level up (over chunk ends, a matrix of size (T/chunk + 1)²); then each chunk reads
              its entering state. Every chunk is handled at once: no Python loop over time or chunks
    stream    ``ssd_step`` on one token after another (streaming)
"""
from __future__ import annotations

import math

import torch
import torch.nn.functional as F

from .. import _validate as validate
from .registry import Case, Family, Problem, register_family


def _check(x, dt, B, C, A, D):
    validate.tensor("x", x, ndim=4, dtype="float")
    validate.time_steps("x", x, dim=2)
    Bsz, H, T, P = x.shape
    validate.tensor("B", B, ndim=3, dtype="float")
    N = B.shape[-1]
    validate.parameters([("dt", dt, (Bsz, H, T)), ("B", B, (Bsz, T, N)), ("C", C, (Bsz, T, N)), ("A", A, (H,)),
                         ("D", D, (H,))], x, "x")
    return N


def _state(state, x, N):
    Bsz, H, _, P = x.shape
    return validate.initial_state(state, (Bsz, H, N, P), x, dims="(B, H, N, P)", what="h")


def ssd_step(x_t, dt_t, B_t, C_t, A, D, *, state):
    """One step (chapter 13): h_t = exp(Δ_t A) h_{t-1} + B_tᵀ (Δ_t x_t), y_t = C_t h_t + D x_t; returns (y_t, h_t).

    ``x_t`` (B, H, P), ``dt_t`` (B, H), ``B_t, C_t`` (B, N), ``A, D`` (H,), ``state`` h_{t-1} (B, H, N, P).
    """
    a_t = torch.exp(dt_t * A)  # (B, H): one scalar decay per head
    h = a_t[..., None, None] * state + B_t[:, None, :, None] * (dt_t[..., None] * x_t)[:, :, None, :]
    y_t = (C_t[:, None, None, :] @ h)[:, :, 0] + D[:, None] * x_t  # (B, H, P)
    return y_t, h


def ssd_loop(x, dt, B, C, A, D, state=None, chunk=None):
    """The reference: one step per t, h_t = exp(Δ_t A) h_{t-1} + B_tᵀ (Δ_t x_t), y_t = C_t h_t + D x_t (chapter 13)."""
    N = _check(x, dt, B, C, A, D)
    h = _state(state, x, N)
    ys = []
    for x_t, dt_t, B_t, C_t in zip(x.unbind(2), dt.unbind(2), B.unbind(1), C.unbind(1)):  # unbind: one stacked gradient
        a_t = torch.exp(dt_t * A)  # (B, H)
        write = B_t[:, None, :, None] * (dt_t[..., None] * x_t)[:, :, None, :]  # (B, H, N, P)
        h = a_t[..., None, None] * h + write
        ys.append(torch.einsum("bn,bhnp->bhp", C_t, h) + D[:, None] * x_t)
    return torch.stack(ys, dim=2), h


def ssd_stream(x, dt, B, C, A, D, state=None, chunk=None):
    """The streaming form: ``ssd_step`` once per token, from the state given (chapter 13)."""
    N = _check(x, dt, B, C, A, D)
    h = _state(state, x, N)
    ys = []
    for x_t, dt_t, B_t, C_t in zip(x.unbind(2), dt.unbind(2), B.unbind(1), C.unbind(1)):
        y_t, h = ssd_step(x_t, dt_t, B_t, C_t, A, D, state=h)
        ys.append(y_t)
    return torch.stack(ys, dim=2), h


def segsum_decay(log_a: torch.Tensor) -> torch.Tensor:
    """The 1-semiseparable mask M_ts = exp(Σ_{s<r≤t} log a_r) for s ≤ t, 0 above the diagonal: (…, T) -> (…, T, T).

    Computed as exp(cum_t − cum_s) with the entries above the diagonal set to −inf before ``exp``, so every
    exponent is ≤ 0 (chapter 13).
    """
    T = log_a.shape[-1]
    cum = log_a.cumsum(-1)
    diff = cum[..., :, None] - cum[..., None, :]  # (…, T, T)
    mask = torch.ones(T, T, dtype=torch.bool, device=log_a.device).tril()
    return torch.exp(diff.masked_fill(~mask, -math.inf))


def _ssd(x, dt, B, C, A, D, h0, chunk: int):
    """SSD with chunks of ``chunk`` steps; ``chunk`` ≥ T is the quadratic form in one piece."""
    Bsz, H, T, P = x.shape
    N = B.shape[-1]
    L = min(chunk, T)
    n = -(-T // L)
    pad = n * L - T  # padded steps: Δ = 0 (a = 1) and x = B = C = 0, so they change nothing
    xd = F.pad(dt[..., None] * x, (0, 0, 0, pad)).reshape(Bsz, H, n, L, P)  # Δ_s x_s
    la = F.pad(dt * A[:, None], (0, pad)).reshape(Bsz, H, n, L)  # log a_t = Δ_t A
    Bc = F.pad(B, (0, 0, 0, pad)).reshape(Bsz, 1, n, L, N)
    Cc = F.pad(C, (0, 0, 0, pad)).reshape(Bsz, 1, n, L, N)
    cum = la.cumsum(-1)  # (B, H, n, L): log decay from the chunk's start
    # 1. inside every chunk: y = (M ⊙ C Bᵀ)(Δ x), the quadratic form
    y = ((Cc @ Bc.transpose(-1, -2)) * segsum_decay(la)) @ xd  # (B, H, n, L, P)
    # 2. every chunk's final state from zero: Σ_s exp(cum_L − cum_s) B_sᵀ Δ_s x_s
    ends = Bc.transpose(-1, -2) @ (torch.exp(cum[..., -1:] - cum)[..., None] * xd)  # (B, H, n, N, P)
    # 3. the states entering the chunks: the same 1-semiseparable sum over the chunk ends, h_0 first
    states = torch.cat([h0[:, :, None], ends], dim=2).flatten(-2)  # (B, H, n + 1, N P)
    entering = (segsum_decay(F.pad(cum[..., -1], (1, 0))) @ states).unflatten(-1, (N, P))  # (B, H, n + 1, N, P)
    # 4. each chunk reads the state it starts from, decayed to each of its steps
    y = y + torch.exp(cum)[..., None] * (Cc @ entering[:, :, :-1])  # (B, H, n, L, P)
    y = y.reshape(Bsz, H, n * L, P)[:, :, :T] + D[:, None, None] * x
    return y, entering[:, :, -1]


def ssd_chunked(x, dt, B, C, A, D, state=None, chunk: int = 64):
    """Mamba-2's SSD algorithm: quadratic inside chunks, a 1-semiseparable sum across them (chapter 13).

    With cum_t the log decay from the chunk's start: y_chunk = (M ⊙ C Bᵀ)(Δ x) + e^{cum} ⊙ (C h_enter);
    each chunk's end state from zero is Bᵀ (e^{cum_L − cum} ⊙ Δ x); the entering states are
    h_enter,i = Σ_{j≤i} exp(Σ_{j<k≤i} cum_L,k) end_j with h_0 as end_{−1}. All matrix products, no loop.
    """
    N = _check(x, dt, B, C, A, D)
    chunk = validate.positive_int("chunk", 64 if chunk is None else chunk)
    return _ssd(x, dt, B, C, A, D, _state(state, x, N), chunk)


def ssd_parallel(x, dt, B, C, A, D, state=None, chunk=None):
    """The quadratic form y = (M ⊙ C Bᵀ)(Δ x) + e^{cum} ⊙ (C h_0) + D x over the whole sequence, O(T²) (chapter 13)."""
    N = _check(x, dt, B, C, A, D)
    return _ssd(x, dt, B, C, A, D, _state(state, x, N), max(1, x.shape[2]))


# ------------------------------------------------------------------------------------------------ registry
def _make(case: Case, g: torch.Generator) -> Problem:
    kw = dict(generator=g, dtype=case.dtype)
    Bsz, T, P, N = case.B, case.T, case.D, case.H
    H = 1 + case.T % 2  # one head or two
    inputs = dict(x=torch.randn(Bsz, H, T, P, **kw), dt=F.softplus(torch.randn(Bsz, H, T, **kw) - 1.0),
                  B=torch.randn(Bsz, T, N, **kw), C=torch.randn(Bsz, T, N, **kw))
    params = dict(A=-torch.exp(torch.randn(H, **kw)), D=torch.randn(H, **kw))
    state = torch.randn(Bsz, H, N, P, **kw) if case.with_state else None
    return Problem(inputs=inputs, params=params, state=state, options=dict(chunk=case.chunk))


SSD = register_family(Family(
    name="ssd", chapter=13,
    forms={"loop": ssd_loop, "parallel": ssd_parallel, "chunked": ssd_chunked, "stream": ssd_stream},
    make=_make,
))
