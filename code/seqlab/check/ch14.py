"""Exercise checkers of chapter 14: ``rglru_step`` and ``sliding_window_attention``."""
from __future__ import annotations

import math
from typing import Callable

import torch
import torch.nn.functional as F

from .core import Case, Result, checker, compare

C = 8.0


def _reference(x_t, h, W_a, b_a, W_x, b_x, Lambda, *, normalise="sqrt", c=C, softplus=True):
    r_t = torch.sigmoid(x_t @ W_a.T + b_a)  # (B, D) recurrence gate
    i_t = torch.sigmoid(x_t @ W_x.T + b_x)  # (B, D) input gate
    log_a = -c * r_t * (F.softplus(Lambda) if softplus else Lambda)
    a_t = torch.exp(log_a)
    scale = {"sqrt": torch.sqrt(1 - a_t ** 2), "one_minus": 1 - a_t, "none": torch.ones_like(a_t)}[normalise]
    return a_t * h + scale * (i_t * x_t)


@checker("14")
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
    return compare("rglru_step", fn, _reference, cases, mistakes=mistakes, rtol=1e-7, atol=1e-9, grad=True)


# ---------------------------------------------------------------- sliding-window attention
def _window_reference(q, k, v, window, *, extra=0, two_sided=False, after=False, scale=True, use_window=True):
    """Causal attention in which query t sees keys t - W + 1 .. t; variants name the classic mistakes."""
    T, d = q.shape[-2], q.shape[-1]
    i, j = torch.arange(T)[:, None], torch.arange(T)[None]
    near = ((i - j).abs() if two_sided else i - j) < window + extra
    allowed = (near if two_sided else (j <= i) & near) if use_window else (j <= i)
    s = q @ k.transpose(-2, -1) / (math.sqrt(d) if scale else 1.0)  # (..., T, T)
    if after:
        w = torch.softmax(s, dim=-1) * allowed
    else:
        w = torch.softmax(s.masked_fill(~allowed, float("-inf")), dim=-1)
    return w @ v


@checker("14")
def sliding_window_attention(fn: Callable) -> Result:
    """Chapter 14: ``fn(q, k, v, window)`` must return causal attention over a sliding window, (..., T, d_v).

    ``q, k`` (..., T, d), ``v`` (..., T, d_v), ``window`` = W >= 1: query t may attend to keys
    t - W + 1 .. t (W keys, itself included; fewer at the start), and to no other:
    ``softmax(q kᵀ / sqrt(d_k) + M) v`` with M = -inf outside that band.
    """
    g = torch.Generator().manual_seed(141)

    def case(lead, T, d, W, describe):
        r = lambda *s: torch.randn(*s, generator=g, dtype=torch.float64)
        return Case((r(*lead, T, d), r(*lead, T, d), r(*lead, T, d), W), describe)

    cases = [case((2,), 7, 4, 3, "q, k, v (2, 7, 4), window 3"), case((1, 2), 5, 8, 2, "(1, 2, 5, 8): heads, window 2"),
             case((1,), 6, 4, 1, "window 1: each position sees itself only"),
             case((2,), 4, 4, 8, "window 8 longer than T = 4: plain causal attention")]
    variant = lambda **kw: (lambda *a: _window_reference(*a, **kw))
    mistakes = [
        (variant(extra=1), "off by one: the window holds W keys, t - W + 1 .. t (itself included), not W + 1"),
        (variant(extra=-1), "off by one: the window holds W keys, t - W + 1 .. t, itself included; this sees W - 1"),
        (variant(two_sided=True), "the window reaches into the future: keep it causal, keys s <= t only"),
        (variant(use_window=False), "the window is ignored: this is plain causal attention over every earlier key"),
        (variant(after=True), "the mask is applied after the softmax: set the scores outside the window to -inf "
                              "before it, so each row sums to 1"),
        (variant(scale=False), "the scores are not scaled: divide q kᵀ by sqrt(d)"),
    ]
    return compare("sliding_window_attention", fn, _window_reference, cases, mistakes=mistakes, grad=True)
