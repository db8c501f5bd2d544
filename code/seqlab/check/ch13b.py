"""Exercise checkers of chapter 13, section 13.10: ``mingru_step`` and ``log_space_scan``."""
from __future__ import annotations

from typing import Callable

import torch
import torch.nn.functional as F

from .core import Case, Result, checker, compare


def _g(x):
    return torch.where(x >= 0, x + 0.5, torch.sigmoid(x))


def _step_reference(x_t, h, W_z, b_z, W_h, b_h, *, swap=False, candidate="g", gate_sees_h=False):
    k = x_t @ W_z.T + b_z
    if gate_sees_h:  # the GRU's habit: the gate reads h_{t-1} too
        k = k + h
    z = torch.sigmoid(k)
    pre = x_t @ W_h.T + b_h
    h_tilde = {"g": _g(pre), "tanh": torch.tanh(pre), "none": pre}[candidate]
    return z * h + (1 - z) * h_tilde if swap else (1 - z) * h + z * h_tilde


@checker("13b")
def mingru_step(fn: Callable) -> Result:
    """Chapter 13 (section 13.10): ``fn(x_t, h, W_z, b_z, W_h, b_h)`` must return minGRU's next state h_t.

    ``x_t`` (B, D), ``h`` (B, H), ``W_z, W_h`` (H, D), ``b_z, b_h`` (H,): z_t = σ(W_z x_t + b_z),
    h̃_t = g(W_h x_t + b_h) with g(x) = x + 1/2 for x ≥ 0 and σ(x) below, h_t = (1 − z_t) ⊙ h + z_t ⊙ h̃_t.
    """
    gen = torch.Generator().manual_seed(131)

    def case(B, D, H, describe):
        r = lambda *s: torch.randn(*s, generator=gen, dtype=torch.float64)  # noqa: E731
        return Case((2 * r(B, D), r(B, H), r(H, D) / D ** 0.5, r(H), r(H, D) / D ** 0.5, r(H)), describe)

    cases = [case(2, 3, 4, "B=2, D=3, H=4"), case(1, 1, 1, "B=1, D=1, H=1"), case(3, 5, 2, "B=3, D=5, H=2")]
    mistakes = [
        (lambda *a: _step_reference(*a, swap=True), "z_t weighs the candidate: h_t = (1 − z_t) ⊙ h_{t-1} + z_t ⊙ h̃_t"),
        (lambda *a: _step_reference(*a, candidate="tanh"),
         "the candidate goes through g (x + 1/2 for x ≥ 0, σ(x) below), not tanh: it must stay positive"),
        (lambda *a: _step_reference(*a, candidate="none"), "pass the candidate through g(x), which keeps it positive"),
        (lambda *a: _step_reference(*a, gate_sees_h=True),
         "minGRU's gate reads x_t only, not h_{t-1}: that is what lets it train in parallel"),
    ]
    return compare("mingru_step", fn, _step_reference, cases, mistakes=mistakes, rtol=1e-7, atol=1e-9)


def _scan_reference(log_a, log_b, h0, *, drop_h0=False, exclusive=False):
    a_star = log_a.cumsum(1)
    if exclusive:  # log a*_t = Σ_{s<t}: one decay short
        a_star = a_star - log_a
    h = torch.exp(a_star + torch.logcumsumexp(log_b - a_star, dim=1))
    return h if drop_h0 else h + torch.exp(a_star) * h0[:, None]


@checker("13b")
def log_space_scan(fn: Callable) -> Result:
    """Chapter 13 (section 13.10): ``fn(log_a, log_b, h0)`` must return every h_t of h_t = a_t ⊙ h_{t-1} + b_t, computed in log space.

    ``log_a, log_b`` (B, T, H) (a_t ∈ (0, 1), b_t > 0), ``h0`` (B, H) of either sign; returns (B, T, H):
    h_t = exp(log a*_t) ⊙ h_0 + exp(log a*_t + logcumsumexp_{s≤t}(log b_s − log a*_s)), log a*_t = Σ_{s≤t} log a_s.
    """
    gen = torch.Generator().manual_seed(132)

    def case(B, T, H, describe):
        r = lambda *s: torch.randn(*s, generator=gen, dtype=torch.float64)  # noqa: E731
        return Case((-F.softplus(r(B, T, H)), r(B, T, H), r(B, H)), describe)

    # at T = 300 the product of the decays is far below e^{-100}: exp(−log a*) alone would overflow
    cases = [case(2, 6, 3, "B=2, T=6, H=3"), case(1, 1, 2, "T=1 (a single step)"),
             case(2, 300, 2, "T=300, where Π a_s is below e^{-100}")]
    mistakes = [
        (lambda *a: _scan_reference(*a, drop_h0=True), "add the initial state's part exp(log a*_t) ⊙ h_0"),
        (lambda *a: _scan_reference(*a, exclusive=True), "log a*_t = Σ_{s≤t} log a_s includes step t itself (cumsum)"),
    ]
    return compare("log_space_scan", fn, _scan_reference, cases, mistakes=mistakes, rtol=1e-7, atol=1e-9)
