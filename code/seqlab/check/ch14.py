"""Exercise checkers of chapter 14: ``rglru_step``."""
from __future__ import annotations

from typing import Callable

import torch
import torch.nn.functional as F

from .core import Case, Result, compare

C = 8.0


def _reference(x_t, h, W_a, b_a, W_x, b_x, Lambda, *, normalise="sqrt", c=C, softplus=True):
    r_t = torch.sigmoid(x_t @ W_a.T + b_a)  # (B, D) recurrence gate
    i_t = torch.sigmoid(x_t @ W_x.T + b_x)  # (B, D) input gate
    log_a = -c * r_t * (F.softplus(Lambda) if softplus else Lambda)
    a_t = torch.exp(log_a)
    scale = {"sqrt": torch.sqrt(1 - a_t ** 2), "one_minus": 1 - a_t, "none": torch.ones_like(a_t)}[normalise]
    return a_t * h + scale * (i_t * x_t)


def rglru_step(fn: Callable) -> Result:
    """Chapter 14: ``fn(x_t, h, W_a, b_a, W_x, b_x, Lambda)`` must return the RG-LRU's next state h_t.

    ``x_t, h`` (B, D), ``W_a, W_x`` (D, D), ``b_a, b_x, Lambda`` (D,): r_t = σ(W_a x_t + b_a),
    i_t = σ(W_x x_t + b_x), a_t = exp(−8 r_t softplus(Λ)), h_t = a_t ⊙ h + √(1 − a_t²) ⊙ (i_t ⊙ x_t).
    """
    g = torch.Generator().manual_seed(14)

    def case(B, D, describe):
        r = lambda *s: torch.randn(*s, generator=g, dtype=torch.float64)  # noqa: E731
        return Case((r(B, D), r(B, D), r(D, D) / D ** 0.5, r(D), r(D, D) / D ** 0.5, r(D), 0.05 + 0.5 * r(D).abs()), describe)

    cases = [case(2, 4, "B=2, D=4"), case(1, 1, "B=1, D=1"), case(3, 6, "B=3, D=6")]
    mistakes = [
        (lambda *a: _reference(*a, normalise="none"),
         "scale the input by √(1 − a_t²), so that the state keeps the input's variance"),
        (lambda *a: _reference(*a, normalise="one_minus"), "the input's scale is √(1 − a_t²), not 1 − a_t"),
        (lambda *a: _reference(*a, softplus=False), "the decay uses softplus(Λ), so that a_t < 1 for any Λ"),
        (lambda *a: _reference(*a, c=1.0), "log a_t = −8 · r_t · softplus(Λ): the constant c = 8 is missing"),
    ]
    return compare("rglru_step", fn, _reference, cases, mistakes=mistakes, rtol=1e-7, atol=1e-9)
