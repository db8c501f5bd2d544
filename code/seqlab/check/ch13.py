"""Exercise checkers of chapter 13: ``zoh_discretize``, ``s4d_kernel`` and ``selective_scan``."""
from __future__ import annotations

from typing import Callable

import torch

from .core import Case, Result, checker, compare


def _zoh_reference(log_dt, A, B):
    dtA = torch.exp(log_dt)[:, None] * A  # (D, N)
    A_bar = torch.exp(dtA)
    return A_bar, (A_bar - 1) / A * B


def _pack(out, name="zoh") -> torch.Tensor:
    """(A_bar, B_bar) -> one real tensor (2, D, N, 2), so that ``compare`` can point at an entry."""
    if out is None:
        return None  # a stub: compare reports "not written yet"
    if not (isinstance(out, tuple) and len(out) == 2 and all(isinstance(t, torch.Tensor) for t in out)):
        raise TypeError(f"{name} must return a pair (A_bar, B_bar) of tensors, got {type(out).__name__}")
    if not all(t.is_complex() for t in out):
        raise TypeError(f"A_bar and B_bar must be complex tensors, got dtypes {out[0].dtype} and {out[1].dtype}")
    if out[0].shape != out[1].shape:
        raise ValueError(f"A_bar and B_bar must have the same shape (D, N), got {tuple(out[0].shape)} and "
                         f"{tuple(out[1].shape)}")
    return torch.view_as_real(torch.stack([out[0].to(torch.complex128), out[1].to(torch.complex128)]))


@checker("13")
def zoh_discretize(fn: Callable) -> Result:
    """Chapter 13: ``fn(log_dt, A, B)`` must return the zero-order-hold ``(A_bar, B_bar)``.

    ``log_dt`` real (D,), ``A`` and ``B`` complex (D, N): A_bar = exp(Δ A), B_bar = (exp(Δ A) − 1) / A · B
    with Δ = exp(log_dt) broadcast over N. The entries are compared as (real, imaginary) pairs:
    index (0, d, n, ·) is A_bar, (1, d, n, ·) is B_bar.
    """
    g = torch.Generator().manual_seed(13)

    def case(D, N, describe):
        A = torch.complex(-torch.rand(D, N, generator=g, dtype=torch.float64) - 0.1,
                          torch.randn(D, N, generator=g, dtype=torch.float64) * 3)
        B = torch.complex(torch.randn(D, N, generator=g, dtype=torch.float64),
                          torch.randn(D, N, generator=g, dtype=torch.float64))
        log_dt = torch.log(torch.rand(D, generator=g, dtype=torch.float64) * 0.5 + 0.01)
        return Case((log_dt, A, B), describe)

    cases = [case(3, 4, "D=3 channels, N=4 states"), case(1, 2, "D=1, N=2"),
             case(2, 5, "D=2, N=5 (Δ differs per channel)")]

    def euler(log_dt, A, B):
        dt = torch.exp(log_dt)[:, None]
        return 1 + dt * A, dt * B

    def no_exp_dt(log_dt, A, B):
        dtA = log_dt[:, None] * A
        return torch.exp(dtA), (torch.exp(dtA) - 1) / A * B

    def missing_B(log_dt, A, B):
        A_bar = torch.exp(torch.exp(log_dt)[:, None] * A)
        return A_bar, (A_bar - 1) / A

    def dt_times_B(log_dt, A, B):
        dt = torch.exp(log_dt)[:, None]
        return torch.exp(dt * A), dt * B

    mistakes = [
        (lambda *a: _pack(euler(*a)), "that is Euler's step (1 + ΔA, ΔB), exact only as Δ → 0; ZOH uses exp(ΔA)"),
        (lambda *a: _pack(no_exp_dt(*a)), "log_dt is log Δ: use Δ = exp(log_dt)"),
        (lambda *a: _pack(missing_B(*a)), "B_bar must include B: (exp(ΔA) − 1) / A · B"),
        (lambda *a: _pack(dt_times_B(*a)), "B_bar = ΔB is the Euler approximation; ZOH gives (exp(ΔA) − 1) / A · B"),
    ]
    return compare("zoh_discretize", lambda *a: _pack(fn(*a)), lambda *a: _pack(_zoh_reference(*a)), cases,
                   mistakes=mistakes, rtol=1e-9, atol=1e-12)


# ---------------------------------------------------------------- the convolution kernel of S4D
def _kernel_reference(A_bar, B_bar, C, T, *, start=0, factor=2.0, part="real", with_B=True):
    """K_j = 2 Re Σ_n C_n Ā_n^j B̄_n for j = 0..T-1, shape (D, T); variants name the classic mistakes."""
    j = torch.arange(start, start + T, dtype=torch.float64)  # (T,)
    powers = torch.exp(torch.log(A_bar)[..., None] * j)  # (D, N, T): Ā^j
    W = C * B_bar if with_B else C  # (D, N)
    s = (W[..., None] * powers).sum(1)  # (D, T) complex
    return factor * {"real": s.real, "abs": s.abs(), "imag": s.imag}[part]


@checker("13")
def s4d_kernel(fn: Callable) -> Result:
    """Chapter 13: ``fn(A_bar, B_bar, C, T)`` must return the S4D convolution kernel, real (D, T).

    ``A_bar``, ``B_bar`` and ``C`` are complex (D, N): D channels of N diagonal states (one of each
    conjugate pair). ``K[d, j] = 2 Re(Σ_n C[d, n] A_bar[d, n]^j B_bar[d, n])`` for lags j = 0 .. T - 1
    (the factor 2 counts the conjugate partner): y = K * u reproduces the recurrence's outputs.
    """
    g = torch.Generator().manual_seed(131)

    def case(D, N, T, describe):
        r = lambda *s: torch.rand(*s, generator=g, dtype=torch.float64)
        n = lambda *s: torch.randn(*s, generator=g, dtype=torch.float64)
        A_bar = torch.polar(0.5 + 0.45 * r(D, N), 3 * n(D, N))  # |Ā| < 1: a stable system
        return Case((A_bar, torch.complex(n(D, N), n(D, N)), torch.complex(n(D, N), n(D, N)), T), describe)

    cases = [case(2, 3, 6, "D=2, N=3, T=6"), case(1, 1, 1, "D=1, N=1, T=1: the lag 0 only"),
             case(3, 4, 10, "D=3, N=4, T=10")]
    variant = lambda **kw: (lambda *a: _kernel_reference(*a, **kw))
    mistakes = [
        (variant(start=1), "off by one: the lags are j = 0 .. T - 1 (K_0 = 2 Re(C B̄), the input's own step), "
                           "not 1 .. T"),
        (variant(factor=1.0), "the factor 2 is missing: each state stands for itself and its conjugate partner"),
        (variant(part="abs"), "that is the magnitude |Σ C Ā^j B̄|: the kernel is the real part, which can be "
                              "negative"),
        (variant(part="imag"), "that is the imaginary part; the kernel is 2 Re(...)"),
        (variant(with_B=False), "B_bar is missing: K_j = 2 Re(Σ_n C_n Ā_n^j B̄_n)"),
    ]
    return compare("s4d_kernel", fn, _kernel_reference, cases, mistakes=mistakes, rtol=1e-7, atol=1e-9)


# ---------------------------------------------------------------- the selective scan in its parallel form
def _selective_reference(u, delta, A, B, C, D, *, delta_input=True, skip=True, own_decay=False, shift=False):
    """y_t = C_t · h_t + D u_t with h_t = exp(Δ_t A) ⊙ h_{t−1} + Δ_t B_t u_t from h_0 = 0, one step at a time.

    ``u``, ``delta`` (B, T, E); ``A`` (E, N); ``B``, ``C`` (B, T, N); ``D`` (E,). Variants name the classic mistakes.
    """
    h = u.new_zeros(u.shape[0], u.shape[2], A.shape[1])  # (B, E, N)
    ys = []
    for t in range(u.shape[1]):
        dA = torch.exp(delta[:, t, :, None] * A)  # (B, E, N)
        x = (delta[:, t] if delta_input else torch.ones_like(delta[:, t])) * u[:, t]  # (B, E)
        prev = h
        h = dA * (h + x[..., None] * B[:, t, None, :]) if own_decay else dA * h + x[..., None] * B[:, t, None, :]
        y = torch.einsum("ben,bn->be", prev if shift else h, C[:, t])
        ys.append(y + D * u[:, t] if skip else y)
    return torch.stack(ys, dim=1)  # (B, T, E)


@checker("13")
def selective_scan(fn: Callable) -> Result:
    """Chapter 13: ``fn(u, delta, A, B, C, D)`` must return the selective scan's outputs ``y`` (B, T, E).

    h_t = exp(Δ_t A) ⊙ h_{t−1} + Δ_t B_t u_t from h_0 = 0 and y_t = C_t · h_t + D u_t, with ``u`` and
    ``delta`` (B, T, E), a real diagonal ``A`` (E, N) below zero, ``B`` and ``C`` (B, T, N), ``D`` (E,). The
    exercise asks for the parallel form (every pair of steps at once, through the cumulative sum of Δ A);
    any correct method passes: the checker compares y, and its gradients, with a loop's.
    """
    g = torch.Generator().manual_seed(1313)

    def case(Bsz, T, E, N, describe):
        r = lambda *s: torch.rand(*s, generator=g, dtype=torch.float64)
        n = lambda *s: torch.randn(*s, generator=g, dtype=torch.float64)
        return Case((n(Bsz, T, E), 0.05 + r(Bsz, T, E), -(0.2 + 2 * r(E, N)), n(Bsz, T, N), n(Bsz, T, N), n(E)),
                    describe)

    cases = [case(2, 6, 3, 4, "B=2, T=6, E=3 channels, N=4 states"), case(1, 1, 2, 2, "T=1: one step"),
             case(2, 9, 1, 3, "B=2, T=9, E=1, N=3")]
    variant = lambda **kw: (lambda *a: _selective_reference(*a, **kw))
    mistakes = [
        (variant(skip=False), "the skip term is missing: y_t = C_t · h_t + D u_t"),
        (variant(delta_input=False), "Δ_t is missing from the input term: the write is Δ_t B_t u_t (the zero-order "
                                     "hold's simplified input), not B_t u_t"),
        (variant(own_decay=True), "the new input is decayed at its own step: exp(Δ_t A) multiplies h_{t−1} only, "
                                  "so the weight of step s in h_t is exp(c_t − c_s), with c_t = Σ_{r≤t} Δ_r A"),
        (variant(shift=True), "off by one: y_t reads h_t, the state after step t's write, not h_{t−1}"),
    ]
    return compare("selective_scan", fn, _selective_reference, cases, mistakes=mistakes, rtol=1e-7, atol=1e-9,
                   grad=True)
