"""State-space models as mixer families: a diagonal S4D-style SSM and a Mamba-style selective scan (chapter 13).

Glossary (code name -> book notation):

    u              the input u_t, one scalar sequence per channel, (B, T, D)
    A              the state matrix: diagonal, so one number per channel and state index, (D, N)
    B, C           the input and output maps (per channel for S4D; per time step for the selective scan)
    log_dt         log Δ, the step size of the discretisation, one per channel (S4D)
    delta          Δ_t, the input-dependent step size of the selective scan, (B, T, D)
    D              the skip connection y_t += D u_t, (D,)
    h              the state h_t: (B, D, N) (complex for S4D, stored as real/imaginary pairs (B, D, N, 2))

**S4D** (Gu et al., 2022). A continuous system per channel, h'(t) = A h(t) + B u(t), y(t) = Re(C h(t)),
with A complex diagonal. Zero-order hold (the input held constant over a step of length Δ) gives
the exact discrete system

    h_t = Ā h_{t-1} + B̄ u_t,   Ā = exp(Δ A),   B̄ = (exp(Δ A) − 1)/A · B,   y_t = 2 Re(C h_t) + D u_t

(the factor 2 counts each state's complex conjugate, which S4D keeps implicit). Because Ā, B̄, C do
not depend on t, unrolling gives a convolution y = K * u + D u with the kernel
K_j = 2 Re(C Ā^j B̄), j = 0..T−1, computed here with the FFT at length 2T (no wrap-around).
An initial state h_0 adds 2 Re(C Ā^{t+1} h_0) at step t (t = 0..T−1).
Parameters are stored as real tensors: ``log_A_real`` (A's real part is −exp(log_A_real) < 0,
so the system is stable), ``A_imag``, and ``B``, ``C`` of shape (D, N, 2) (real, imaginary).
S4D-Lin initialises A_n = −1/2 + iπn (``s4d_lin_init``).

**Selective scan** (Gu & Dao, 2023; Mamba's ``selective_scan_ref``). Δ, B and C depend on the input:

    h_t = exp(Δ_t A) ⊙ h_{t-1} + Δ_t B_t u_t,   y_t = C_t · h_t + D u_t

with real A (D, N) (negative in Mamba: A = −exp(A_log)), ``delta`` (B, T, D) > 0, ``B``, ``C`` (B, T, N).
The recurrence is time-varying, so there is no convolution kernel; it is a *linear* recurrence
h_t = a_t h_{t-1} + b_t, which an associative scan evaluates in parallel. The forms:

    loop      one Python step per time step (the reference, like ``selective_scan_ref``)
    parallel  every pair (t, s ≤ t) at once with the decay exp(Σ_{s<r≤t} Δ_r A): O(T²) memory, short T only
    chunked   a two-level scan: the recurrence runs inside all chunks at once (``chunk`` steps), then
              across chunks (T/chunk steps), and each chunk adds its start state times the
              decay so far; about 2√T sequential steps instead of T
    logspace  Heinsen's (2023) scan in log space: with a*_t = Σ_{s≤t} log a_s,
              h_t = exp(a*_t + logcumsumexp_s(log b_s − a*_s)), with the initial state as b_0 at a*_0 = 0;
              it is one cumsum and one logcumsumexp, no Python loop over time
    step      ``selective_scan_step`` on one token after another

The log-space scan needs log b_s, and b_s = Δ_s B_s u_s (and h_0) takes both signs. We take the
*complex* logarithm: log b = log|b| + iπ·[b < 0], so exp of the sum gives back the sign, and the real
part of the result is h_t (the decays a_s = exp(Δ_s A) are positive, so log a_s = Δ_s A is real).
Only b = 0 exactly has no logarithm (log|0| = −inf, with an infinite gradient); real inputs
almost never hit it, and the other forms have no such restriction.
"""
from __future__ import annotations

import math

import torch
import torch.nn.functional as F

from .. import _validate as validate
from .registry import Case, Family, Problem, register_family


# ---------------------------------------------------------------------------------------------- S4D
def s4d_lin_init(D: int, N: int, dtype=torch.float32) -> tuple[torch.Tensor, torch.Tensor]:
    """S4D-Lin's A_n = −1/2 + iπn for n = 0..N−1 in every channel, as ``(log_A_real, A_imag)``, each (D, N); chapter 13."""
    validate.positive_int("D", D)
    validate.positive_int("N", N)
    log_A_real = torch.full((D, N), math.log(0.5), dtype=dtype)
    A_imag = math.pi * torch.arange(N, dtype=dtype).expand(D, N).clone()
    return log_A_real, A_imag


def _complex(x: torch.Tensor) -> torch.Tensor:
    return torch.view_as_complex(x.contiguous())


def s4d_discretize(log_dt, log_A_real, A_imag, B):
    """Zero-order hold (chapter 13): Ā = exp(ΔA), B̄ = (exp(ΔA) − 1)/A · B, both complex (D, N)."""
    A = torch.complex(-torch.exp(log_A_real), A_imag)  # (D, N)
    dtA = torch.exp(log_dt)[:, None] * A  # (D, N)
    A_bar = torch.exp(dtA)
    B_bar = (A_bar - 1.0) / A * _complex(B)
    return A_bar, B_bar


def s4d_kernel(log_dt, log_A_real, A_imag, B, C, T: int) -> torch.Tensor:
    """The convolution kernel K_j = 2 Re(C Ā^j B̄), j = 0..T−1, shape (D, T) (chapter 13)."""
    A_bar, B_bar = s4d_discretize(log_dt, log_A_real, A_imag, B)
    powers = torch.exp(torch.log(A_bar)[:, :, None] * torch.arange(T, device=B.device))  # (D, N, T): Ā^j
    return 2.0 * torch.einsum("dn,dnt->dt", _complex(C) * B_bar, powers).real


def _check_s4d(u, log_dt, log_A_real, A_imag, B, C, D):
    validate.tensor("u", u, ndim=3, dtype="float")
    width = u.shape[-1]
    validate.tensor("log_A_real", log_A_real, ndim=2, dtype="float")
    Dm, N = log_A_real.shape
    if Dm != width:
        raise ValueError(f"log_A_real must be (D, N) with D = u's width {width}, got {tuple(log_A_real.shape)}")
    validate.parameters([("log_dt", log_dt, (Dm,)), ("A_imag", A_imag, (Dm, N)), ("B", B, (Dm, N, 2)),
                         ("C", C, (Dm, N, 2)), ("D", D, (Dm,))], u, "u")
    return N


def _s4d_state(state, u, N):
    B_, _, Dm = u.shape
    if state is None:
        return torch.zeros(B_, Dm, N, dtype=torch.complex128 if u.dtype == torch.float64 else torch.complex64,
                           device=u.device)
    validate.tensor("state", state, ndim=4, dtype="float")
    if tuple(state.shape) != (B_, Dm, N, 2):
        raise ValueError(f"state must be (B, D, N, 2) = {(B_, Dm, N, 2)} (real, imaginary), got {tuple(state.shape)}")
    return _complex(state)


def s4d_step(u_t, h, A_bar, B_bar, C, D):
    """One step of the discrete S4D system: h_t = Ā h_{t-1} + B̄ u_t, y_t = 2 Re(C h_t) + D u_t (chapter 13).

    ``u_t`` (B, D), ``h`` complex (B, D, N), ``A_bar, B_bar`` complex (D, N), ``C`` (D, N, 2), ``D`` (D,).
    """
    h = A_bar * h + B_bar * u_t[..., None]  # (B, D, N)
    y_t = 2.0 * (_complex(C) * h).sum(-1).real + D * u_t  # (B, D)
    return y_t, h


def s4d_loop(u, log_dt, log_A_real, A_imag, B, C, D, state=None):
    """The recurrent form of S4D: discretise once, then one step per time step (the reference; chapter 13)."""
    N = _check_s4d(u, log_dt, log_A_real, A_imag, B, C, D)
    h = _s4d_state(state, u, N)
    A_bar, B_bar = s4d_discretize(log_dt, log_A_real, A_imag, B)
    C_c = _complex(C)
    ys = []
    for t in range(u.shape[1]):
        h = A_bar * h + B_bar * u[:, t, :, None]  # (B, D, N)
        ys.append(2.0 * (C_c * h).sum(-1).real + D * u[:, t])  # (B, D)
    return torch.stack(ys, dim=1), torch.view_as_real(h)  # (B, T, D), (B, D, N, 2)


def s4d_conv(u, log_dt, log_A_real, A_imag, B, C, D, state=None):
    """The convolutional form of S4D: y = K * u + D u via the FFT at length 2T, plus the initial state's part.

    y_t = Σ_{j≤t} K_j u_{t−j} + D u_t + 2 Re(C Ā^{t+1} h_0); the final state
    h_T = Ā^T h_0 + Σ_s Ā^{T−1−s} B̄ u_s is a sum over time as well (chapter 13).
    """
    N = _check_s4d(u, log_dt, log_A_real, A_imag, B, C, D)
    h0 = None if state is None else _s4d_state(state, u, N)  # None: start from zero, no echo to add
    T = u.shape[1]
    A_bar, B_bar = s4d_discretize(log_dt, log_A_real, A_imag, B)
    log_A_bar = torch.log(A_bar)  # (D, N); Ā^j = exp(j log Ā)
    powers = torch.exp(log_A_bar[:, :, None] * torch.arange(T + 1, device=u.device))  # (D, N, T+1)
    K = 2.0 * torch.einsum("dn,dnt->dt", _complex(C) * B_bar, powers[..., :T]).real  # (D, T)
    n = 2 * T
    y = torch.fft.irfft(torch.fft.rfft(u.transpose(1, 2), n=n) * torch.fft.rfft(K, n=n), n=n)[..., :T]  # (B, D, T)
    if h0 is not None:  # the initial state's echo 2 Re(C Ā^{t+1} h_0)
        y = y + 2.0 * torch.einsum("dn,bdn,dnt->bdt", _complex(C), h0, powers[..., 1:]).real
    y = y.transpose(1, 2) + D * u  # (B, T, D)
    h = B_bar * torch.einsum("btd,dnt->bdn", u.to(B_bar.dtype), powers[..., :T].flip(-1))  # (B, D, N)
    if h0 is not None:
        h = h + powers[..., T] * h0
    return y, torch.view_as_real(h)


def s4d_stream(u, log_dt, log_A_real, A_imag, B, C, D, state=None):
    """The streaming form: ``s4d_step`` once per token, from the state given (chapter 13)."""
    N = _check_s4d(u, log_dt, log_A_real, A_imag, B, C, D)
    h = _s4d_state(state, u, N)
    A_bar, B_bar = s4d_discretize(log_dt, log_A_real, A_imag, B)
    ys = []
    for t in range(u.shape[1]):
        y_t, h = s4d_step(u[:, t], h, A_bar, B_bar, C, D)
        ys.append(y_t)
    return torch.stack(ys, dim=1), torch.view_as_real(h)


# ------------------------------------------------------------------------------------- selective scan
def _check_scan(u, delta, A, B, C, D):
    validate.tensor("u", u, ndim=3, dtype="float")
    Bsz, T, Dm = u.shape
    validate.tensor("A", A, ndim=2, dtype="float")
    if A.shape[0] != Dm:
        raise ValueError(f"A must be (D, N) with D = u's width {Dm}, got {tuple(A.shape)}")
    N = A.shape[1]
    validate.parameters([("delta", delta, (Bsz, T, Dm)), ("B", B, (Bsz, T, N)), ("C", C, (Bsz, T, N)),
                         ("D", D, (Dm,))], u, "u")
    return N


def _scan_state(state, u, N):
    Bsz, _, Dm = u.shape
    if state is None:
        return u.new_zeros(Bsz, Dm, N)
    validate.tensor("state", state, ndim=3, dtype="float")
    if tuple(state.shape) != (Bsz, Dm, N):
        raise ValueError(f"state must be (B, D, N) = {(Bsz, Dm, N)}, got {tuple(state.shape)}")
    return state


def _scan_coefficients(u, delta, A, B):
    """log a_t = Δ_t A and b_t = Δ_t B_t u_t, each (B, T, D, N)."""
    log_a = delta[..., None] * A  # (B, T, D, N)
    b = (delta * u)[..., None] * B[:, :, None, :]  # (B, T, D, N)
    return log_a, b


def selective_scan_step(u_t, delta_t, A, B_t, C_t, D, h):
    """One step (chapter 13): h_t = exp(Δ_t A) ⊙ h_{t-1} + Δ_t B_t u_t, y_t = C_t · h_t + D u_t.

    ``u_t, delta_t`` (B, D), ``A`` (D, N), ``B_t, C_t`` (B, N), ``D`` (D,), ``h`` (B, D, N).
    """
    h = torch.exp(delta_t[..., None] * A) * h + (delta_t * u_t)[..., None] * B_t[:, None, :]  # (B, D, N)
    y_t = torch.einsum("bdn,bn->bd", h, C_t) + D * u_t  # (B, D)
    return y_t, h


def selective_scan_loop(u, delta, A, B, C, D, state=None, chunk=None):
    """The reference selective scan, one step at a time, as Mamba's ``selective_scan_ref`` (chapter 13)."""
    N = _check_scan(u, delta, A, B, C, D)
    h = _scan_state(state, u, N)
    ys = []
    for u_t, delta_t, B_t, C_t in zip(u.unbind(1), delta.unbind(1), B.unbind(1), C.unbind(1)):
        dA = torch.exp(delta_t[..., None] * A)  # (B, D, N)
        h = dA * h + (delta_t * u_t)[..., None] * B_t[:, None, :]
        ys.append(torch.einsum("bdn,bn->bd", h, C_t) + D * u_t)  # (B, D)
    return torch.stack(ys, dim=1), h  # (B, T, D), (B, D, N)


def selective_scan_stream(u, delta, A, B, C, D, state=None, chunk=None):
    """The streaming form: ``selective_scan_step`` once per token (chapter 13)."""
    N = _check_scan(u, delta, A, B, C, D)
    h = _scan_state(state, u, N)
    ys = []
    for t in range(u.shape[1]):
        y_t, h = selective_scan_step(u[:, t], delta[:, t], A, B[:, t], C[:, t], D, h)
        ys.append(y_t)
    return torch.stack(ys, dim=1), h


def linear_scan_chunked(a: torch.Tensor, b: torch.Tensor, h0: torch.Tensor, chunk: int) -> torch.Tensor:
    """All states of h_t = a_t ⊙ h_{t-1} + b_t (t = 1..T, along dim 1) by a two-level scan (chapter 13).

    ``a, b`` (B, T, …), ``h0`` (B, …). The time axis is padded to a multiple of ``chunk`` with a = 1,
    b = 0 (steps that change nothing) and cut into chunks; the recurrence runs inside every chunk at
    once from zero, then across the chunk ends; each chunk finally adds its start state times the
    product of the decays so far. Sequential steps: chunk + T/chunk.
    """
    Bsz, T = a.shape[:2]
    rest = a.shape[2:]
    n_chunks = -(-T // chunk)
    pad = n_chunks * chunk - T
    if pad:
        a = torch.cat([a, a.new_ones(Bsz, pad, *rest)], dim=1)
        b = torch.cat([b, b.new_zeros(Bsz, pad, *rest)], dim=1)
    a = a.reshape(Bsz, n_chunks, chunk, *rest)  # (B, n, c, …)
    b = b.reshape(Bsz, n_chunks, chunk, *rest)
    # unbind, not a[:, :, j]: the backward of one unbind is one stack, while each indexing would
    # allocate a zero tensor of a's full size
    a_j, b_j = a.unbind(2), b.unbind(2)
    local, decay = [b_j[0]], [a_j[0]]  # inside each chunk, from a zero start: h and Π a
    for j in range(1, chunk):
        local.append(a_j[j] * local[-1] + b_j[j])
        decay.append(a_j[j] * decay[-1])
    local, decay = torch.stack(local, dim=2), torch.stack(decay, dim=2)  # (B, n, c, …)
    starts, h = [], h0
    for a_end, b_end in zip(decay[:, :, -1].unbind(1), local[:, :, -1].unbind(1)):  # across chunks
        starts.append(h)  # the state entering this chunk
        h = a_end * h + b_end
    starts = torch.stack(starts, dim=1)  # (B, n, …)
    hs = local + decay * starts[:, :, None]  # (B, n, c, …)
    return hs.reshape(Bsz, n_chunks * chunk, *rest)[:, :T]


def selective_scan_chunked(u, delta, A, B, C, D, state=None, chunk: int = 16):
    """The selective scan by a two-level (chunked) linear scan, ``linear_scan_chunked`` (chapter 13)."""
    N = _check_scan(u, delta, A, B, C, D)
    chunk = validate.positive_int("chunk", chunk)
    h0 = _scan_state(state, u, N)
    log_a, b = _scan_coefficients(u, delta, A, B)
    hs = linear_scan_chunked(torch.exp(log_a), b, h0, chunk)  # (B, T, D, N)
    y = torch.einsum("btdn,btn->btd", hs, C) + D * u
    return y, hs[:, -1]


def selective_scan_parallel(u, delta, A, B, C, D, state=None, chunk=None):
    """The selective scan with every pair of steps at once, O(T²) memory, like attention (chapter 13).

    With c_t = Σ_{s≤t} Δ_s A: h_t = Σ_{s≤t} exp(c_t − c_s) ⊙ Δ_s B_s u_s + exp(c_t) ⊙ h_0. The exponents are
    masked to −inf above the diagonal before ``exp``, so every factor is ≤ 1. Fast for short T only.
    """
    N = _check_scan(u, delta, A, B, C, D)
    h0 = _scan_state(state, u, N)
    log_a, b = _scan_coefficients(u, delta, A, B)
    cum = log_a.cumsum(1)  # (B, T, D, N)
    T = u.shape[1]
    mask = torch.ones(T, T, dtype=torch.bool, device=u.device).tril()  # (t, s)
    diff = (cum[:, :, None] - cum[:, None, :]).masked_fill(~mask[None, :, :, None, None], -math.inf)  # (B, T, T, D, N)
    hs = torch.einsum("btsdn,bsdn->btdn", torch.exp(diff), b) + torch.exp(cum) * h0[:, None]  # (B, T, D, N)
    y = torch.einsum("btdn,btn->btd", hs, C) + D * u
    return y, hs[:, -1]


def linear_scan_logspace(log_a: torch.Tensor, b: torch.Tensor, h0: torch.Tensor) -> torch.Tensor:
    """All states of h_t = a_t ⊙ h_{t-1} + b_t in log space (Heinsen, 2023; chapter 13).

    ``log_a`` (B, T, …) real, ``b`` (B, T, …), ``h0`` (B, …). With h0 prepended as b_0 and a*_t = Σ_{s≤t} log a_s,
    h_t = exp(a*_t) Σ_{s≤t} exp(−a*_s) b_s = Re exp(a*_t + logcumsumexp_s(log b_s − a*_s)), where
    log b is the complex logarithm log|b| + iπ[b < 0] so that negative b keep their sign.
    """
    log_a = torch.cat([torch.zeros_like(log_a[:, :1]), log_a], dim=1)  # (B, T+1, …): a_0 = 1 for h_0
    b = torch.cat([h0.unsqueeze(1), b], dim=1)  # (B, T+1, …)
    a_star = log_a.cumsum(1)
    cdtype = torch.complex128 if b.dtype == torch.float64 else torch.complex64
    log_b = torch.log(b.to(cdtype))  # log|b| + iπ where b < 0
    h = torch.exp(a_star + torch.logcumsumexp(log_b - a_star, dim=1)).real
    return h[:, 1:]


def selective_scan_logspace(u, delta, A, B, C, D, state=None, chunk=None):
    """The selective scan as one log-space parallel scan, ``linear_scan_logspace`` (chapter 13)."""
    N = _check_scan(u, delta, A, B, C, D)
    h0 = _scan_state(state, u, N)
    log_a, b = _scan_coefficients(u, delta, A, B)
    hs = linear_scan_logspace(log_a, b, h0)  # (B, T, D, N)
    y = torch.einsum("btdn,btn->btd", hs, C) + D * u
    return y, hs[:, -1]


# ------------------------------------------------------------------------------------------------ registry
def _make_s4d(case: Case, g: torch.Generator) -> Problem:
    kw = dict(generator=g, dtype=case.dtype)
    Dm, N = case.D, case.H
    log_A_real, A_imag = s4d_lin_init(Dm, N, dtype=case.dtype)
    params = dict(
        log_dt=math.log(1e-3) + torch.rand(Dm, **kw) * (math.log(0.1) - math.log(1e-3)),  # log Δ in [log 1e-3, log 0.1]
        log_A_real=log_A_real + 0.1 * torch.randn(Dm, N, **kw), A_imag=A_imag + 0.1 * torch.randn(Dm, N, **kw),
        B=torch.randn(Dm, N, 2, **kw), C=torch.randn(Dm, N, 2, **kw) * 0.5, D=torch.randn(Dm, **kw),
    )
    state = torch.randn(case.B, Dm, N, 2, **kw) if case.with_state else None
    return Problem(inputs=dict(u=torch.randn(case.B, case.T, Dm, **kw)), params=params, state=state)


def _make_scan(case: Case, g: torch.Generator) -> Problem:
    kw = dict(generator=g, dtype=case.dtype)
    Bsz, T, Dm, N = case.B, case.T, case.D, case.H
    inputs = dict(u=torch.randn(Bsz, T, Dm, **kw), delta=F.softplus(torch.randn(Bsz, T, Dm, **kw) - 1.0),
                  B=torch.randn(Bsz, T, N, **kw), C=torch.randn(Bsz, T, N, **kw))
    params = dict(A=-torch.exp(torch.randn(Dm, N, **kw)), D=torch.randn(Dm, **kw))
    state = torch.randn(Bsz, Dm, N, **kw) if case.with_state else None
    return Problem(inputs=inputs, params=params, state=state, options=dict(chunk=case.chunk))


S4D = register_family(Family(
    name="s4d", chapter=13, forms={"loop": s4d_loop, "conv": s4d_conv, "step": s4d_stream}, make=_make_s4d,
))

SELECTIVE_SCAN = register_family(Family(
    name="selective_scan", chapter=13,
    forms={"loop": selective_scan_loop, "parallel": selective_scan_parallel, "chunked": selective_scan_chunked,
           "logspace": selective_scan_logspace, "step": selective_scan_stream},
    make=_make_scan,
))
