"""State-space models as mixer families: a diagonal S4D-style SSM and a Mamba-style selective scan (chapter 13).

Glossary (code name -> book notation):

    u              the input u_t, one scalar sequence per channel, (B, T, D)
    A              the state matrix: diagonal, so one number per channel and state index, (D, N)
    B, C           the input and output maps (per channel for S4D; per time step for the selective scan)
    log_dt         log Δ, the step size of the discretisation, one per channel (S4D)
    delta          Δ_t, the input-dependent step size of the selective scan, (B, T, D)
    D              the skip connection y_t += D u_t, (D,)
    h              the state h_t: (B, D, N) (complex for S4D, stored as real/imaginary pairs (B, D, N, 2))

**S4D** (Gu et al., 2022b [GGGR22b] in the References). A continuous system per channel, h'(t) = A h(t) + B u(t), y(t) = Re(C h(t)),
with A complex diagonal. Zero-order hold (the input held constant over a step of length Δ) gives
the exact discrete system

    h_t = Ā h_{t-1} + B̄ u_t,   Ā = exp(Δ A),   B̄ = (exp(Δ A) − 1)/A · B,   y_t = 2 Re(C h_t) + D u_t

(the factor 2 counts each state's complex conjugate, which S4D keeps implicit). Because Ā, B̄, C do
not depend on t, unrolling gives a convolution y = K * u + D u with the kernel
K_j = 2 Re(C Ā^j B̄), j = 0..T−1, computed here with the FFT at length 2T (no wrap-around).
The powers are never tabulated for every j: with m = ⌈√T⌉ and j = a + m b, Ā^j = Ā^a · Ā^{m b}, so
Σ_n W_n Ā_n^j is a product of an (m × N) and an (N × T/m) matrix per channel (``s4d_powers``).
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
              across chunks (T/chunk steps), then inside all chunks again from their true start
              states; about 3√T sequential steps instead of T. Its backward pass is the same scan
              run backwards in time (``linear_scan_chunked``), not a replay of every small step
    blocked   the same two-level scan, block by block (``chunk`` steps a block), the state carried from one
              block to the next: a block's decays, inputs and states fill a buffer the size of one block,
              which stays in the CPU's cache, and the backward pass recomputes them instead of reading
              back every stored state. Saved for the backward pass: the inputs and the states entering the
              scan's chunks (T/c of them, c ≈ √(2·chunk)), not B T D N numbers. Mamba's kernel does the
              same in a GPU's on-chip memory (Gu & Dao, 2023); on this CPU, whose memory, not its
              arithmetic, bounds the chunked form, it is the faster of the two (``code/benchmarks/scans.py``)
    logspace  Heinsen's (2023) scan in log space: with log a*_t = Σ_{s≤t} log a_s,
              h_t = exp(log a*_t + logcumsumexp_s(log b_s − log a*_s)), with the initial state as b_0 at log a*_0 = 0;
              it is one cumsum and one logcumsumexp, no Python loop over time
    stream    ``selective_scan_step`` on one token after another

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
from torch.autograd.function import once_differentiable

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


def s4d_powers(log_A_bar: torch.Tensor, T: int) -> tuple[torch.Tensor, torch.Tensor, int]:
    """Ā^j for j = 0..T−1 as two small tables, since Ā^{a + m b} = Ā^a · Ā^{m b} (chapter 13).

    ``log_A_bar`` = ΔA, complex (D, N). Returns ``(low, high, m)``: low = Ā^a for a < m, (D, N, m), and
    high = Ā^{m b} for b < ⌈T/m⌉, (D, N, ⌈T/m⌉), with m = ⌈√T⌉. A sum Σ_n W_n Ā_n^j over all j is then one
    (m × N)(N × T/m) matrix product per channel, and the (D, N, T) table of every power is never formed.
    """
    m = max(1, math.isqrt(T - 1) + 1) if T > 1 else 1
    a = torch.arange(m, device=log_A_bar.device)
    b = torch.arange(-(-T // m), device=log_A_bar.device) * m
    return torch.exp(log_A_bar[..., None] * a), torch.exp(log_A_bar[..., None] * b), m


def _power_sum(W: torch.Tensor, low: torch.Tensor, high: torch.Tensor, T: int) -> torch.Tensor:
    """2 Re Σ_n W_n Ā_n^j for j = 0..T−1: ``W`` complex (…, D, N) -> real (…, D, T), with j = a + m b."""
    m, nb = low.shape[-1], high.shape[-1]
    K = 2.0 * ((W[..., None] * low).transpose(-1, -2) @ high).real  # (…, D, m, nb): entry (a, b) is lag a + m b
    return K.transpose(-1, -2).reshape(*W.shape[:-1], m * nb)[..., :T]


def s4d_kernel(log_dt, log_A_real, A_imag, B, C, T: int) -> torch.Tensor:
    """The convolution kernel K_j = 2 Re(C Ā^j B̄), j = 0..T−1, shape (D, T) (chapter 13)."""
    A_bar, B_bar = s4d_discretize(log_dt, log_A_real, A_imag, B)
    low, high, _ = s4d_powers(torch.log(A_bar), T)
    return _power_sum(_complex(C) * B_bar, low, high, T)


def _check_s4d(u, log_dt, log_A_real, A_imag, B, C, D):
    validate.tensor("u", u, ndim=3, dtype="float")
    validate.time_steps("u", u)
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
    return _complex(validate.initial_state(state, (B_, Dm, N, 2), u, dims="(B, D, N, 2)", what="h (real, imaginary)",
                                           like_name="u"))


def s4d_step(u_t, A_bar, B_bar, C, D, *, state):
    """One step of the discrete S4D system: h_t = Ā h_{t-1} + B̄ u_t, y_t = 2 Re(C h_t) + D u_t (chapter 13).

    ``u_t`` (B, D), ``A_bar, B_bar`` complex (D, N), ``C`` (D, N, 2), ``D`` (D,), ``state`` h complex (B, D, N).
    """
    h = A_bar * state + B_bar * u_t[..., None]  # (B, D, N)
    y_t = 2.0 * (_complex(C) * h).sum(-1).real + D * u_t  # (B, D)
    return y_t, h


def s4d_loop(u, log_dt, log_A_real, A_imag, B, C, D, state=None):
    """The recurrent form of S4D: discretise once, then one step per time step (the reference; chapter 13)."""
    N = _check_s4d(u, log_dt, log_A_real, A_imag, B, C, D)
    h = _s4d_state(state, u, N)
    A_bar, B_bar = s4d_discretize(log_dt, log_A_real, A_imag, B)
    C_c = _complex(C)
    ys = []
    for u_t in u.unbind(1):  # unbind: one stacked gradient, not a full-size one per step
        h = A_bar * h + B_bar * u_t[:, :, None]  # (B, D, N)
        ys.append(2.0 * (C_c * h).sum(-1).real + D * u_t)  # (B, D)
    return torch.stack(ys, dim=1), torch.view_as_real(h)  # (B, T, D), (B, D, N, 2)


def s4d_conv(u, log_dt, log_A_real, A_imag, B, C, D, state=None):
    """The convolutional form of S4D: y = K * u + D u via the FFT at length 2T, plus the initial state's part.

    y_t = Σ_{j≤t} K_j u_{t−j} + D u_t + 2 Re(C Ā^{t+1} h_0); the final state
    h_T = Ā^T h_0 + B̄ Σ_j Ā^j u_{T−1−j} is a sum over time as well. Every sum over powers Ā^j uses the
    two tables of ``s4d_powers`` (j = a + m b), so it is a few small matrix products (chapter 13).
    """
    N = _check_s4d(u, log_dt, log_A_real, A_imag, B, C, D)
    h0 = None if state is None else _s4d_state(state, u, N)  # None: start from zero, no echo to add
    Bsz, T, Dm = u.shape
    A_bar, B_bar = s4d_discretize(log_dt, log_A_real, A_imag, B)
    log_A_bar = torch.log(A_bar)  # (D, N): Ā^j = exp(j log Ā)
    low, high, m = s4d_powers(log_A_bar, T)  # (D, N, m), (D, N, nb)
    nb = high.shape[-1]
    K = _power_sum(_complex(C) * B_bar, low, high, T)  # (D, T)
    n = 2 * T
    y = torch.fft.irfft(torch.fft.rfft(u.transpose(1, 2), n=n) * torch.fft.rfft(K, n=n), n=n)[..., :T]  # (B, D, T)
    if h0 is not None:  # the initial state's echo 2 Re(C Ā^{t+1} h_0) = 2 Re Σ_n (C Ā h_0)_n Ā_n^t
        y = y + _power_sum(_complex(C) * A_bar * h0, low, high, T)
    y = y.transpose(1, 2) + D * u  # (B, T, D)
    # Σ_j Ā^j u_{T−1−j} with j = a + m b: first the sum over b (a matrix product), then over a
    u_rev = F.pad(u.flip(1), (0, 0, 0, m * nb - T)).reshape(Bsz, nb, m, Dm).permute(3, 0, 2, 1)  # (D, B, m, nb)
    Z = u_rev.to(high.dtype) @ high.transpose(1, 2)[:, None]  # (D, B, m, N)
    h = B_bar * (Z * low.transpose(1, 2)[:, None]).sum(2).transpose(0, 1)  # (B, D, N)
    if h0 is not None:
        h = h + torch.exp(T * log_A_bar) * h0  # Ā^T h_0
    return y, torch.view_as_real(h)


def s4d_stream(u, log_dt, log_A_real, A_imag, B, C, D, state=None):
    """The streaming form: ``s4d_step`` once per token, from the state given (chapter 13)."""
    N = _check_s4d(u, log_dt, log_A_real, A_imag, B, C, D)
    h = _s4d_state(state, u, N)
    A_bar, B_bar = s4d_discretize(log_dt, log_A_real, A_imag, B)
    ys = []
    for u_t in u.unbind(1):
        y_t, h = s4d_step(u_t, A_bar, B_bar, C, D, state=h)
        ys.append(y_t)
    return torch.stack(ys, dim=1), torch.view_as_real(h)


# ------------------------------------------------------------------------------------- selective scan
def _check_scan(u, delta, A, B, C, D):
    validate.tensor("u", u, ndim=3, dtype="float")
    validate.time_steps("u", u)
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
    return validate.initial_state(state, (Bsz, Dm, N), u, dims="(B, D, N)", what="h", like_name="u")


def _scan_coefficients(u, delta, A, B):
    """log a_t = Δ_t A and b_t = Δ_t B_t u_t, each (B, T, D, N)."""
    log_a = delta[..., None] * A  # (B, T, D, N)
    b = (delta * u)[..., None] * B[:, :, None, :]  # (B, T, D, N)
    return log_a, b


def selective_scan_step(u_t, delta_t, A, B_t, C_t, D, *, state):
    """One step (chapter 13): h_t = exp(Δ_t A) ⊙ h_{t-1} + Δ_t B_t u_t, y_t = C_t · h_t + D u_t.

    ``u_t, delta_t`` (B, D), ``A`` (D, N), ``B_t, C_t`` (B, N), ``D`` (D,), ``state`` h (B, D, N).
    """
    h = torch.exp(delta_t[..., None] * A) * state + (delta_t * u_t)[..., None] * B_t[:, None, :]  # (B, D, N)
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
    for u_t, delta_t, B_t, C_t in zip(u.unbind(1), delta.unbind(1), B.unbind(1), C.unbind(1)):
        y_t, h = selective_scan_step(u_t, delta_t, A, B_t, C_t, D, state=h)
        ys.append(y_t)
    return torch.stack(ys, dim=1), h


def _to_chunks(x: torch.Tensor, chunk: int, fill: float) -> torch.Tensor:
    """(B, T, …) -> (B, T/chunk, chunk, …), the time axis padded at the end with ``fill``."""
    Bsz, T = x.shape[:2]
    n_chunks = -(-T // chunk)
    if n_chunks * chunk > T:
        x = torch.cat([x, x.new_full((Bsz, n_chunks * chunk - T, *x.shape[2:]), fill)], dim=1)
    return x.reshape(Bsz, n_chunks, chunk, *x.shape[2:])


def _two_level_scan(a: torch.Tensor, b: torch.Tensor, h0: torch.Tensor | None, reverse: bool, shift: bool,
                    in_place: bool, starts: torch.Tensor | None = None) -> tuple[torch.Tensor, torch.Tensor]:
    """h = a ⊙ h + b over chunks ``a, b`` (B, n, c, …) from ``h0`` (B, …), forward or in reverse; no autograd.

    1. inside every chunk at once, from zero: each chunk's end state and its total decay Π a;
    2. across the chunks (n steps): the state entering each chunk;
    3. inside every chunk again, from its true start state, keeping every state.
    Sequential steps: 2c + n. ``reverse`` runs time backwards (the chunks and the steps in them).
    ``shift`` multiplies step t by the *next* step's factor, a_{t+1} (1 after the last step), as the
    backward pass of a linear recurrence needs, without a shifted copy of ``a``. ``in_place`` writes the
    states over ``b`` (step 3 reads each b_t once, just before h_t replaces it): no second tensor of b's size.
    ``starts`` (B, n, …): the states entering the chunks, kept from an earlier scan of the same a and b;
    then only step 3 runs (c steps) and ``h0`` is not used. Returns every state and the states entering the chunks.
    """
    n, c = a.shape[1:3]
    steps = range(c - 1, -1, -1) if reverse else range(c)
    a_j, b_j = a.unbind(2), b.unbind(2)  # c slices (B, n, …)
    if shift:  # step c − 1 of chunk i takes the first factor of chunk i + 1: a slice, not a copy of a
        after = torch.cat([a[:, 1:, 0], torch.ones_like(a[:, :1, 0])], dim=1)
        a_j = (*a_j[1:], after)
    if starts is None:
        # Π a over each chunk's (shifted) factors: one pass over a
        decay = a[:, :, 1:].prod(2).mul_(after) if shift else a.prod(2)
        first, *rest = steps
        end = b_j[first].clone()  # 1. from zero: h = a ⊙ 0 + b at the first step
        for j in rest:
            torch.addcmul(b_j[j], a_j[j], end, out=end)
        order = range(n - 1, -1, -1) if reverse else range(n)
        starts = torch.empty_like(end)
        starts[:, order[0]] = h0
        for i, i_next in zip(order, order[1:]):  # 2. the state entering chunk i_next, written in place
            torch.addcmul(end[:, i], decay[:, i], starts[:, i], out=starts[:, i_next])
    hs, h = (b if in_place else torch.empty_like(b)), starts
    for j in steps:  # 3.
        h = torch.addcmul(b_j[j], a_j[j], h, out=hs[:, :, j])
    return hs, starts


def _scan(a: torch.Tensor, b: torch.Tensor, h0: torch.Tensor, chunk: int, reverse: bool = False,
          shift: bool = False, in_place: bool = False) -> torch.Tensor:
    """``_two_level_scan`` on (B, T, …) tensors: cut into chunks (padded with a = 1, b = 0), scan, uncut.
    ``in_place``: the states overwrite ``b`` where its time axis needs no padding (a padded b is a copy anyway)."""
    T = a.shape[1]
    hs, _ = _two_level_scan(_to_chunks(a, chunk, 1.0), _to_chunks(b, chunk, 0.0), h0, reverse, shift, in_place)
    return hs.flatten(1, 2)[:, :T]


class _ChunkedLinearScan(torch.autograd.Function):
    """h_t = a_t ⊙ h_{t-1} + b_t by ``_two_level_scan``, with its backward pass written out (chapter 13).

    The backward of a linear recurrence is the same recurrence run backwards: with g_t = ∂L/∂h_t in total,
    g_t = ∂L/∂h_t (direct) + a_{t+1} ⊙ g_{t+1}, and then ∂L/∂b_t = g_t, ∂L/∂a_t = g_t ⊙ h_{t-1},
    ∂L/∂h_0 = a_1 ⊙ g_1. So the backward is one more two-level scan, in reverse, and autograd need not
    record the thousands of small steps of the forward one.
    """

    @staticmethod
    def forward(ctx, a, b, h0, chunk):
        hs = _scan(a, b, h0, chunk)
        ctx.save_for_backward(a, hs, h0)
        ctx.chunk = chunk
        return hs

    @staticmethod
    @once_differentiable  # a second derivative would need the backward's own backward: an error, not a wrong number
    def backward(ctx, grad_hs):
        a, hs, h0 = ctx.saved_tensors
        g = _reverse_scan(a, grad_hs, h0, ctx.chunk)  # (B, T, …)
        return _times_previous(g, hs, h0), g, a[:, 0] * g[:, 0], None


def _reverse_scan(a, grad_hs, h0, chunk, in_place=False):
    """g_t = ∂L/∂h_t (direct) + a_{t+1} ⊙ g_{t+1}, for t = T..1: the total gradient of every state
    (``in_place``: written over ``grad_hs``)."""
    return _scan(a, grad_hs, torch.zeros_like(h0), chunk, reverse=True, shift=True,  # a_{t+1}; 1 after the last step
                 in_place=in_place)


def _times_previous(g, hs, h0, out=None):
    """g_t ⊙ h_{t-1} for every t (h_0 before the first step), into ``out``: no shifted copy of hs."""
    out = torch.empty_like(g) if out is None else out
    torch.mul(g[:, 1:], hs[:, :-1], out=out[:, 1:])
    out[:, 0] = g[:, 0] * h0
    return out


def linear_scan_chunked(a: torch.Tensor, b: torch.Tensor, h0: torch.Tensor, chunk: int) -> torch.Tensor:
    """All states of h_t = a_t ⊙ h_{t-1} + b_t (t = 1..T, along dim 1) by a two-level scan (chapter 13).

    ``a, b`` (B, T, …), ``h0`` (B, …). The time axis is padded to a multiple of ``chunk`` with a = 1,
    b = 0 (steps that change nothing) and cut into chunks; the recurrence runs inside every chunk at
    once from zero, then across the chunk ends; then inside every chunk again from its true start.
    Sequential steps: 2·chunk + T/chunk instead of T. The backward pass is the same scan in reverse
    (``_ChunkedLinearScan``), so it costs about as much as the forward.
    """
    if a.shape != b.shape or h0.shape != (a.shape[0], *a.shape[2:]):
        raise ValueError(f"a, b must be (B, T, …) and h0 (B, …) alike, got {tuple(a.shape)}, {tuple(b.shape)}, "
                         f"{tuple(h0.shape)}")
    return _ChunkedLinearScan.apply(a, b, h0, validate.positive_int("chunk", chunk))


def _read_out(hs, C, D, u):
    """y_t = C_t · h_t + D u_t for all t: ``hs`` (B, T, D, N), ``C`` (B, T, N) -> (B, T, D)."""
    return (hs * C[:, :, None, :]).sum(-1) + D * u  # a product and a sum: einsum would make B·T tiny matmuls


def _grads_from_states(g, times_previous, a, x, B, delta, A, gA, grad_x, grad_B, grad_delta, scratch, ones):
    """The selective scan's gradients from g_t = ∂L/∂h_t in total, for a run of steps in any layout (L₁, L₂, D, N),
    written into the given tensors (chapter 13; shared by the chunked and the blocked forms):

        ∂L/∂x_t = g_t B_t     ∂L/∂B_t = Σ_d x_t,d g_t,d     ∂L/∂log a_t = g_t ⊙ h_{t-1} ⊙ a_t
        ∂L/∂A += Σ_t Δ_t ∂L/∂log a_t     ∂L/∂Δ_t = Σ_n A ∂L/∂log a_t   (+ u_t ∂L/∂x_t, added by ``_grads_of_inputs``)

    ``times_previous(g)`` multiplies g by h_{t-1} in place (a layout that stores h_0 before h_1… gives it as a
    slice). ``g`` is used up (∂L/∂log a_t is formed in its memory), ``scratch`` (g's shape) too. The sums over D and
    N are small matrix products with a vector of ``ones`` (at least L₁·L₂ and N long): on this CPU PyTorch's sums
    over these axes take longer."""
    N = A.shape[1]
    torch.matmul(B[..., None, :], g.transpose(-1, -2), out=grad_x[..., None, :])  # ∂L/∂x_t = g_t B_t
    torch.matmul(x[..., None, :], g, out=grad_B[..., None, :])  # ∂L/∂B_t = Σ_d x_t,d g_t,d
    g_log_a = times_previous(g).mul_(a)  # ∂L/∂log a_t, in g's memory
    delta_g = torch.mul(g_log_a, delta[..., None], out=scratch)
    gA.view(-1).addmv_(delta_g.view(-1, A.numel()).T, ones[:delta_g.shape[0] * delta_g.shape[1]])  # Σ_t Δ_t ∂L/∂log a_t
    torch.mv(g_log_a.mul_(A).view(-1, N), ones[:N], out=grad_delta.view(-1))  # Σ_n A ∂L/∂log a_t


def _grads_of_inputs(u, delta, D, grad_y, grad_x, grad_delta):
    """From ∂L/∂x_t (x_t = Δ_t u_t) and the direct ∂L/∂y_t: ∂L/∂u_t = Δ_t ∂L/∂x_t + D ∂L/∂y_t, ∂L/∂Δ_t += u_t ∂L/∂x_t
    (in place) and ∂L/∂D = Σ_t u_t ∂L/∂y_t, in any layout (L₁, L₂, D) (chapter 13)."""
    grad_delta += u * grad_x
    return delta * grad_x + D * grad_y, grad_delta, (u * grad_y).sum((0, 1))


class _SelectiveScanChunked(torch.autograd.Function):
    """The selective scan by ``_two_level_scan``, forward and backward written out (chapter 13).

    Forward: a_t = exp(Δ_t A), x_t = Δ_t u_t, b_t = x_t B_t (outer product over D × N), every state
    h_t = a_t ⊙ h_{t-1} + b_t by the two-level scan, y_t = C_t · h_t + D u_t.
    Backward, with g_t = ∂L/∂h_t in total (the reverse scan of ``_reverse_scan``, fed
    ∂L/∂h_t = ∂L/∂y_t C_t, plus ∂L/∂h_T at the last step):

        ∂L/∂C_t = Σ_d ∂L/∂y_t,d h_t,d        ∂L/∂h_0 = a_1 ⊙ g_1

    and from g_t the gradients of the inputs, B, A and Δ written once for this form and the blocked one
    (``_grads_from_states``, ``_grads_of_inputs``). Autograd would record the same products as broadcasts over
    (B, T, D, N) and reduce them with strided sums; written out, the sums over D and N are small matrix products.
    """

    @staticmethod
    def forward(ctx, u, delta, A, B, C, D, h0, chunk):
        a = (delta[..., None] * A).exp_()  # (B, T, D, N)
        x = delta * u  # (B, T, D)
        hs = _scan(a, x[..., None] * B[:, :, None, :], h0, chunk, in_place=True)  # (B, T, D, N), over b's memory
        ctx.save_for_backward(u, delta, A, B, C, D, h0, a, hs)
        ctx.chunk = chunk
        y = (hs @ C[..., None])[..., 0] + D * u  # (B, T, D): C_t · h_t as a small product per step
        return y, hs[:, -1]

    @staticmethod
    @once_differentiable  # a second derivative would need the backward's own backward: an error, not a wrong number
    def backward(ctx, grad_y, grad_hT):
        u, delta, A, B, C, D, h0, a, hs = ctx.saved_tensors
        grad_y = grad_y.contiguous()  # (B, T, D)
        grad_hs = grad_y[..., None] * C[:, :, None, :]  # (B, T, D, N): through y_t
        grad_hs[:, -1] += grad_hT  # through the final state
        grad_C = (grad_y[:, :, None, :] @ hs)[:, :, 0]  # (B, T, N)
        g = _reverse_scan(a, grad_hs, h0, ctx.chunk, in_place=True)  # (B, T, D, N) = ∂L/∂b_t, over grad_hs
        g = g.contiguous()  # a slice of the padded chunks when chunk does not divide T: the sums below view it flat
        grad_h0 = a[:, 0] * g[:, 0]
        grad_x, grad_delta, grad_B = u.new_empty(u.shape), u.new_empty(u.shape), B.new_empty(B.shape)  # contiguous
        grad_A = torch.zeros_like(A)
        _grads_from_states(g, lambda g: _times_previous(g, hs, h0, out=g), a, delta * u, B, delta, A, grad_A, grad_x,
                           grad_B, grad_delta, scratch=g.new_empty(g.shape),
                           ones=A.new_ones(max(u.shape[0] * u.shape[1], A.shape[1])))
        grad_u, grad_delta, grad_D = _grads_of_inputs(u, delta, D, grad_y, grad_x, grad_delta)
        return grad_u, grad_delta, grad_A, grad_B, grad_C, grad_D, grad_h0, None


def selective_scan_chunked(u, delta, A, B, C, D, state=None, chunk: int = 16):
    """The selective scan by a two-level (chunked) linear scan, its backward the same scan reversed (chapter 13).

    a_t = exp(Δ_t A) and b_t = Δ_t B_t u_t for all t at once, (B, T, D, N); every state
    h_t = a_t ⊙ h_{t-1} + b_t by the two-level scan of ``linear_scan_chunked``; y_t = C_t · h_t + D u_t.
    ``_SelectiveScanChunked`` writes the backward pass out (the equivalence harness checks it against
    autograd through the loop).
    """
    N = _check_scan(u, delta, A, B, C, D)
    chunk = validate.positive_int("chunk", chunk)
    h0 = _scan_state(state, u, N)
    return _SelectiveScanChunked.apply(u, delta, A, B, C, D, h0, chunk)


LOG2_E = 1 / math.log(2)  # exp(x) = 2^(x log2 e): PyTorch's exp2 takes about a third of exp's time on this CPU


def _inner_chunk(k: int) -> int:
    """The largest divisor of ``k`` not above √(2k): the chunk of a two-level scan over one block of k steps.
    Its 2c steps inside the chunks move more data than its k/c steps across them, and on this CPU
    c ≈ √(2k) was the fastest (a block of 128 steps: 16 steps a chunk)."""
    c = max(1, math.isqrt(2 * k))
    while k % c:
        c -= 1
    return c


def _block_scan(a: torch.Tensor, b: torch.Tensor, h: torch.Tensor | None, reverse: bool = False,
                shift: bool = False, starts: torch.Tensor | None = None) -> tuple[torch.Tensor, torch.Tensor]:
    """h = a ⊙ h + b over one block of time-major ``a, b`` (k, B, …) from ``h`` (B, …), by ``_two_level_scan``
    with chunks of ``_inner_chunk(k)`` steps; the states are written over ``b``. Returns them and the states
    entering the chunks (k/c, B, …); given those (``starts``), only the scan's last step runs."""
    k = a.shape[0]
    c = _inner_chunk(k)
    cut = lambda x: x.view(1, k // c, c, *x.shape[1:])  # noqa: E731  one sequence of k/c chunks
    hs, starts = _two_level_scan(cut(a), cut(b), None if h is None else h[None], reverse, shift, in_place=True,
                                 starts=None if starts is None else starts[None])
    return hs.view_as(b), starts[0]


def _block_states(delta, x, A2, B, h, a_out, h_out, starts=None):
    """One block's a_t = exp(Δ_t A) (into ``a_out``) and states h_t from ``h`` (into ``h_out``), time-major:
    ``delta, x`` (k, B, D) with x_t = Δ_t u_t, ``A2`` = A log2 e, ``B`` (k, B, N). Returns the states and the
    states entering the block's chunks (given as ``starts``, the scan's first two steps are skipped)."""
    torch.exp2(torch.mul(delta[..., None], A2, out=a_out), out=a_out)
    torch.mul(x[..., None], B[:, :, None, :], out=h_out)  # b_t = x_t B_t, then scanned in place
    return _block_scan(a_out, h_out, h, starts=starts)


class _SelectiveScanBlocked(torch.autograd.Function):
    """The selective scan block by block, with the states recomputed in the backward pass (chapter 13).

    The same equations as ``_SelectiveScanChunked``; the data are laid out time-major, (T, B, …), so that
    a block of steps is one contiguous slice. Forward: for each block, a_t and the states h_t in two
    buffers of one block's size, y_t = C_t · h_t, and the last state carried on; only the states entering
    the chunks of the two-level scan inside each block are kept (T/c states, c ≈ √(2·block)). Backward,
    blocks last to first: the block's states again, from those (the last of the scan's three steps only),
    then g_t = ∂L/∂y_t C_t + a_{t+1} ⊙ g_{t+1} by the reverse scan (the term from the steps after the
    block carried in as a_{e+1} ⊙ g_{e+1}), and the gradients of ``_SelectiveScanChunked`` for the block.
    """

    @staticmethod
    def forward(ctx, u, delta, A, B, C, D, h0, block):
        T = u.shape[1]
        u_, delta_, B_, C_ = (z.transpose(0, 1).contiguous() for z in (u, delta, B, C))  # (T, B, …)
        x_, A2 = delta_ * u_, A * LOG2_E
        a_buf, h_buf = (u.new_empty(min(block, T), *h0.shape) for _ in range(2))  # one block's a_t and h_t
        y_ = torch.empty_like(u_)
        kept, h = [], h0
        for s in range(0, T, block):
            e = min(s + block, T)
            hs, starts = _block_states(delta_[s:e], x_[s:e], A2, B_[s:e], h, a_buf[:e - s], h_buf[:e - s])
            kept.append(starts)  # the states entering the block's chunks: a new tensor, not a view of a buffer
            torch.matmul(C_[s:e, :, None, :], hs.transpose(-1, -2), out=y_[s:e, :, None, :])  # C_t · h_t
            h = hs[-1].clone()
        ctx.save_for_backward(u_, delta_, A, B_, C_, D, torch.cat(kept))
        ctx.block = block
        return y_.add_(D * u_).transpose(0, 1).contiguous(), h

    @staticmethod
    @once_differentiable  # a second derivative would need the backward's own backward: an error, not a wrong number
    def backward(ctx, grad_y, grad_hT):
        u_, delta_, A, B_, C_, D, kept = ctx.saved_tensors
        T, block = u_.shape[0], ctx.block
        gy_ = grad_y.transpose(0, 1).contiguous()  # (T, B, D)
        x_, A2 = delta_ * u_, A * LOG2_E
        gx_, gdelta_, gB_, gC_ = (torch.empty_like(z) for z in (u_, u_, B_, C_))
        k0 = min(block, T)
        gA, ones = torch.zeros_like(A), A.new_ones(max(k0 * u_.shape[1], A.shape[1]))  # sums as products with ones
        a_buf, g_buf = (u_.new_empty(k0, *kept.shape[1:]) for _ in range(2))
        h_buf = u_.new_empty(k0 + 1, *kept.shape[1:])  # h_buf[j]: the state after j steps of the block
        blocks = [(s, min(s + block, T)) for s in range(0, T, block)]
        first = [0]  # where each block's chunk starts begin in ``kept``
        for s, e in blocks:
            first.append(first[-1] + (e - s) // _inner_chunk(e - s))
        carry = grad_hT  # a_{e+1} ⊙ g_{e+1}: the gradient reaching the block's last state from the steps after it
        for i in reversed(range(len(blocks))):
            s, e = blocks[i]
            k, starts = e - s, kept[first[i]:first[i + 1]]
            h_buf[0] = starts[0]
            hs, _ = _block_states(delta_[s:e], x_[s:e], A2, B_[s:e], None, a_buf[:k], h_buf[1:k + 1], starts=starts)
            a = a_buf[:k]
            torch.matmul(gy_[s:e, :, None, :], hs, out=gC_[s:e, :, None, :])  # ∂L/∂C_t = Σ_d ∂L/∂y_t,d h_t,d
            direct = torch.mul(gy_[s:e, :, :, None], C_[s:e, :, None, :], out=g_buf[:k])  # ∂L/∂h_t through y_t
            g, _ = _block_scan(a, direct, carry, reverse=True, shift=True)
            carry = a[0] * g[0]
            _grads_from_states(g, lambda g: g.mul_(h_buf[:k]), a, x_[s:e], B_[s:e], delta_[s:e], A, gA, gx_[s:e],
                               gB_[s:e], gdelta_[s:e], scratch=h_buf[1:k + 1], ones=ones)  # the states' memory, used up
        grad_u, gdelta_, grad_D = _grads_of_inputs(u_, delta_, D, gy_, gx_, gdelta_)
        back = lambda z: z.transpose(0, 1)  # noqa: E731  (T, B, …) -> (B, T, …)
        return back(grad_u), back(gdelta_), gA, back(gB_), back(gC_), grad_D, carry, None


def selective_scan_blocked(u, delta, A, B, C, D, state=None, chunk: int = 128):
    """The selective scan block by block, each block's states recomputed in the backward pass (chapter 13).

    h_t = exp(Δ_t A) ⊙ h_{t-1} + Δ_t B_t u_t and y_t = C_t · h_t + D u_t over blocks of ``chunk`` steps
    (the last may be shorter): inside a block by the two-level scan of ``selective_scan_chunked`` (chunks
    of about √(2·chunk) steps), from the state the block before ended in. Only one block's states exist at
    a time, so they stay in the CPU's cache; the backward pass recomputes them from the states entering the
    chunks rather than storing B T D N numbers (``_SelectiveScanBlocked``; the equivalence harness checks it
    against the loop).
    """
    N = _check_scan(u, delta, A, B, C, D)
    chunk = validate.positive_int("chunk", chunk)
    h0 = _scan_state(state, u, N)
    return _SelectiveScanBlocked.apply(u, delta, A, B, C, D, h0, chunk)


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
    y = _read_out(hs, C, D, u)
    return y, hs[:, -1]


def linear_scan_logspace(log_a: torch.Tensor, b: torch.Tensor, h0: torch.Tensor) -> torch.Tensor:
    """All states of h_t = a_t ⊙ h_{t-1} + b_t in log space (Heinsen, 2023; chapter 13).

    ``log_a`` (B, T, …) real, ``b`` (B, T, …), ``h0`` (B, …). With h0 prepended as b_0 and log a*_t = Σ_{s≤t} log a_s,
    h_t = exp(log a*_t) Σ_{s≤t} exp(−log a*_s) b_s = Re exp(log a*_t + logcumsumexp_s(log b_s − log a*_s)), where
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
    return _read_out(hs, C, D, u), hs[:, -1]


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
    name="s4d", chapter=13, forms={"loop": s4d_loop, "conv": s4d_conv, "stream": s4d_stream}, make=_make_s4d,
))

SELECTIVE_SCAN = register_family(Family(
    name="selective_scan", chapter=13,
    forms={"loop": selective_scan_loop, "parallel": selective_scan_parallel, "chunked": selective_scan_chunked,
           "blocked": selective_scan_blocked, "logspace": selective_scan_logspace, "stream": selective_scan_stream},
    make=_make_scan,
))
