"""Exercise checkers of chapter 13: ``zoh_discretize``."""
from __future__ import annotations

from typing import Callable

import torch

from .core import Case, Result, compare


def _zoh_reference(log_dt, A, B):
    dtA = torch.exp(log_dt)[:, None] * A  # (D, N)
    A_bar = torch.exp(dtA)
    return A_bar, (A_bar - 1) / A * B


def _pack(out, name="zoh") -> torch.Tensor:
    """(A_bar, B_bar) -> one real tensor (2, D, N, 2), so that ``compare`` can point at an entry."""
    if not (isinstance(out, tuple) and len(out) == 2 and all(isinstance(t, torch.Tensor) for t in out)):
        raise TypeError(f"{name} must return a pair (A_bar, B_bar) of tensors, got {type(out).__name__}")
    if not all(t.is_complex() for t in out):
        raise TypeError(f"A_bar and B_bar must be complex tensors, got dtypes {out[0].dtype} and {out[1].dtype}")
    if out[0].shape != out[1].shape:
        raise ValueError(f"A_bar and B_bar must have the same shape (D, N), got {tuple(out[0].shape)} and "
                         f"{tuple(out[1].shape)}")
    return torch.view_as_real(torch.stack([out[0].to(torch.complex128), out[1].to(torch.complex128)]))


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
