"""Exercise checkers of chapter 6: ``causal_attention``."""
from __future__ import annotations

import math
from typing import Callable

import torch

from .core import Case, Result, compare


def _causal_attention_reference(q, k, v, *, scale="sqrt", mask="causal", renormalise=True, dim=-1):
    """softmax(q k^T / sqrt(d_k) + M) v with the causal mask M (key j > query i forbidden); variants for mistakes."""
    d_k, T = q.shape[-1], q.shape[-2]
    s = q @ k.transpose(-2, -1)  # (..., T, T)
    s = s / {"sqrt": math.sqrt(d_k), "d": d_k, "none": 1.0}[scale]
    allowed = {"causal": torch.ones(T, T, dtype=torch.bool).tril(), "strict": torch.ones(T, T, dtype=torch.bool).tril(-1),
               "upper": torch.ones(T, T, dtype=torch.bool).triu(), "none": torch.ones(T, T, dtype=torch.bool)}[mask]
    if renormalise:
        w = torch.softmax(s.masked_fill(~allowed, float("-inf")), dim=dim)
    else:  # the mask applied after the softmax: rows no longer sum to 1
        w = torch.softmax(s, dim=dim) * allowed
    return torch.nan_to_num(w) @ v  # (..., T, d_v)


def causal_attention(fn: Callable) -> Result:
    """Chapter 6: ``fn(q, k, v)`` must return causal scaled dot-product attention, ``softmax(q k^T / sqrt(d_k) + M) v``.

    ``q``, ``k`` (..., T, d_k) and ``v`` (..., T, d_v) share their leading dimensions; M is 0 where key
    j <= query i and -inf where j > i, so each position sees itself and the past only. Returns
    (..., T, d_v) (the output only, not the weights).
    """
    g = torch.Generator().manual_seed(6)

    def case(lead, T, d_k, d_v, describe, spread=1.0):
        r = lambda *s: torch.randn(*s, generator=g, dtype=torch.float64)
        return Case((r(*lead, T, d_k) * spread, r(*lead, T, d_k) * spread, r(*lead, T, d_v)), describe)

    cases = [case((2,), 5, 4, 3, "q, k (2, 5, 4), v (2, 5, 3)"),
             case((1, 2), 4, 16, 2, "q, k (1, 2, 4, 16), v (1, 2, 4, 2): batch and heads", spread=1.5),
             case((3,), 1, 2, 2, "T = 1: one position, which sees only itself")]
    variant = lambda **kw: (lambda q, k, v: _causal_attention_reference(q, k, v, **kw))
    mistakes = [
        (variant(mask="none"), "no mask: every position also sees the future (set the scores of keys j > i to -inf)"),
        (variant(mask="upper"), "the mask is the wrong triangle: query i may attend to keys j <= i (lower triangle, tril), not j >= i"),
        (variant(mask="strict"), "the diagonal is masked too: position i must see itself (j <= i, not j < i)"),
        (variant(renormalise=False), "the mask is applied after the softmax: set masked scores to -inf *before* it, so each row still sums to 1"),
        (variant(scale="none"), "the scores are not scaled: divide q k^T by sqrt(d_k)"),
        (variant(scale="d"), "the scores are divided by d_k; divide by sqrt(d_k)"),
        (variant(dim=-2), "the softmax runs over the queries (dim -2); it must run over the keys, the last dimension"),
    ]
    return compare("causal_attention", fn, _causal_attention_reference, cases, mistakes=mistakes)
