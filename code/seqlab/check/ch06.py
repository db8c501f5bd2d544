"""Exercise checkers of chapter 6: ``causal_attention`` and ``multi_head_attention``."""
from __future__ import annotations

import math
from typing import Callable

import torch

from .core import Case, Result, checker, compare


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


@checker("6")
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
    return compare("causal_attention", fn, _causal_attention_reference, cases, mistakes=mistakes, grad=True)


# ---------------------------------------------------------------- multi-head attention
def _mha_reference(x, W_q, W_k, W_v, W_o, n_heads, *, split="right", scale="head", out_proj=True, merge="right",
                   transposed=False, dim=-1):
    """concat_h softmax(Q_h K_h^T / sqrt(d_h)) V_h, then W_o; variants name the classic mistakes."""
    B, T, d = x.shape
    d_h = d // n_heads
    lin = (lambda t, W: t @ W) if transposed else (lambda t, W: t @ W.T)

    def heads(t):  # (B, T, d) -> (B, H, T, d_h)
        return t.view(B, T, n_heads, d_h).transpose(1, 2) if split == "right" else t.reshape(B, n_heads, T, d_h)

    q, k, v = heads(lin(x, W_q)), heads(lin(x, W_k)), heads(lin(x, W_v))
    s = q @ k.transpose(-2, -1) / math.sqrt(d_h if scale == "head" else d)  # (B, H, T, T)
    o = torch.softmax(s, dim=dim) @ v  # (B, H, T, d_h)
    o = o.transpose(1, 2).reshape(B, T, d) if merge == "right" else o.reshape(B, T, d)
    return lin(o, W_o) if out_proj else o  # (B, T, d)


@checker("6")
def multi_head_attention(fn: Callable) -> Result:
    """Chapter 6: ``fn(x, W_q, W_k, W_v, W_o, n_heads)`` must return multi-head self-attention, (B, T, d).

    ``x`` (B, T, d); each ``W`` is (d, d), used as an ``nn.Linear`` weight (``Q = x W_q^T``), with no
    biases and no mask. Split Q, K and V into ``n_heads`` heads of width d_h = d / n_heads (the last
    dimension: (B, T, d) -> (B, H, T, d_h)), run ``softmax(Q_h K_h^T / sqrt(d_h)) V_h`` in every head,
    put the heads side by side again, (B, T, d), and apply ``W_o``.
    """
    g = torch.Generator().manual_seed(61)

    def case(B, T, d, H, describe):
        r = lambda *s: torch.randn(*s, generator=g, dtype=torch.float64)
        return Case((r(B, T, d), r(d, d) / d ** 0.25, r(d, d) / d ** 0.25, r(d, d) / d ** 0.5, r(d, d) / d ** 0.5,
                     H), describe)

    cases = [case(2, 5, 8, 2, "x (2, 5, 8), 2 heads of width 4"), case(1, 3, 12, 3, "x (1, 3, 12), 3 heads of width 4"),
             case(2, 4, 6, 1, "x (2, 4, 6), a single head")]
    variant = lambda **kw: (lambda *a: _mha_reference(*a, **kw))
    mistakes = [
        (variant(split="reshape", merge="reshape"), "the heads are cut out with a reshape straight to (B, H, T, d_h), "
                                                    "which mixes positions: view(B, T, H, d_h), then transpose(1, 2) "
                                                    "(and back the same way)"),
        (variant(merge="reshape"), "the heads are put back with a reshape of (B, H, T, d_h) straight to (B, T, d): "
                                   "transpose(1, 2) first, so that each position gets its own heads' outputs"),
        (variant(split="reshape"), "the heads are cut out with a reshape straight to (B, H, T, d_h): "
                                   "view(B, T, H, d_h), then transpose(1, 2)"),
        (variant(scale="model"), "the scores are divided by sqrt(d), the model's width: each head divides by "
                                 "sqrt(d_h), its own width"),
        (variant(out_proj=False), "the output projection W_o is missing"),
        (variant(transposed=True), "the weights are used untransposed: as nn.Linear weights, Q = x @ W_q.T"),
        (variant(dim=-2), "the softmax runs over the queries (dim -2); it must run over the keys, the last dimension"),
    ]
    return compare("multi_head_attention", fn, _mha_reference, cases, mistakes=mistakes, grad=True)
