"""Exercise checkers of chapter 11: ``prefix_matching_score`` and ``icl_score``."""
from __future__ import annotations

from typing import Callable

import torch

from .core import Case, Result, checker, compare


def _prefix_matching_reference(A, first, second, L, *, shift=1, queries="second", last=True):
    """Mean attention from each token of the second copy to the token after its earlier occurrence.

    ``A`` (H, T, T) for one sequence whose span of ``L`` tokens starts at ``first`` and again at
    ``second``; D = second - first. Query t in [second, second + L - 1], key t - D + shift.
    The keyword variants name the classic mistakes: ``shift=0`` (the earlier occurrence itself),
    ``shift=2`` (one too far), ``queries="first"`` (the first copy), ``last=False`` (one query short).
    """
    D = second - first
    start = second if queries == "second" else first
    t = torch.arange(start, start + L - (0 if last else 1))  # (n,) query positions
    key = (t - D + shift).clamp(0, A.shape[-1] - 1) if queries == "second" else (t + shift).clamp(max=A.shape[-1] - 1)
    return A[:, t, key].mean(dim=-1)  # (H,)


def _cases() -> list[Case]:
    g = torch.Generator().manual_seed(11)

    def causal(H, T):
        s = torch.randn(H, T, T, generator=g, dtype=torch.float64) * 2
        s = s.masked_fill(torch.ones(T, T, dtype=torch.bool).triu(1), float("-inf"))
        return torch.softmax(s, dim=-1)  # (H, T, T)

    return [Case((causal(2, 12), 1, 6, 3), "A (2, 12, 12), span of 3 at 1 and at 6 (D = 5)"),
            Case((causal(3, 20), 2, 11, 6), "A (3, 20, 20), span of 6 at 2 and at 11 (D = 9, a gap of 3)"),
            Case((causal(1, 16), 0, 4, 4), "A (1, 16, 16), span of 4 at 0 and at 4 (D = 4, no gap)")]


@checker("11")
def prefix_matching_score(fn: Callable) -> Result:
    """Chapter 11: ``fn(A, first, second, L)`` must return each head's prefix-matching score, shape (H,).

    ``A`` (H, T, T) holds one sequence's attention weights, ``A[h, t, s]`` from query t to key s.
    A span of ``L`` tokens stands at ``first`` and again at ``second`` (D = second - first). For
    every query t of the second copy, ``second <= t <= second + L - 1``, the score averages the
    attention to the token *after* the earlier occurrence of x_t, key ``t - D + 1``.
    """
    ref = lambda *a: _prefix_matching_reference(*a)
    variant = lambda **kw: (lambda *a: _prefix_matching_reference(*a, **kw))
    mistakes = [
        (variant(shift=0), "this is attention to the earlier occurrence itself, key t - D (a duplicate-token head). "
                           "The induction head looks one further, at the token that FOLLOWED it: key t - D + 1"),
        (variant(shift=2), "the key is one position too far: the token after the earlier occurrence is t - D + 1"),
        (variant(last=False), "one query is missing: the second copy has L queries, t = second .. second + L - 1 "
                              "(the last one's key t - D + 1 is the token after the first copy, still in view)"),
        (variant(queries="first"), "every score is 0: the keys read lie after their queries (a causal A is zero "
                                   "for s > t). Are the queries in the first copy, or is A read transposed? Rows "
                                   "are queries t = second .. second + L - 1, columns the keys t - D + 1"),
    ]
    return compare("prefix_matching_score", fn, ref, _cases(), mistakes=mistakes, rtol=1e-5, atol=1e-7)


# ---------------------------------------------------------------- the in-context-learning score
def _icl_reference(loss, early, late, *, sign=1.0, rows=False, one_based=False, ratio=False):
    """Mean over the batch of loss[:, late] - loss[:, early]; variants name the classic mistakes."""
    if one_based:
        early, late = early - 1, late - 1
    pick = (lambda t: loss[t]) if rows else (lambda t: loss[:, t])
    if ratio:
        return (pick(late) / pick(early)).mean().item()
    return (sign * (pick(late) - pick(early))).mean().item()


@checker("11")
def icl_score(fn: Callable) -> Result:
    """Chapter 11: ``fn(loss, early, late)`` must return the in-context-learning score, a float.

    ``loss`` (B, T) holds each sequence's loss at every position; ``early`` and ``late`` are two
    positions (0-based columns). The score is the mean over the batch of ``loss[:, late] -
    loss[:, early]``: negative when the model predicts better later in its context.
    """
    g = torch.Generator().manual_seed(111)

    def case(B, T, early, late, describe):
        loss = torch.rand(B, T, generator=g, dtype=torch.float64) * 3 + torch.linspace(1, 0, T, dtype=torch.float64)
        return Case((loss, early, late), describe)

    cases = [case(8, 12, 2, 6, "loss (8, 12), early 2, late 6"), case(10, 20, 1, 9, "loss (10, 20), early 1, late 9"),
             case(6, 5, 0, 4, "loss (6, 5), early 0, late 4 (the last position)")]
    variant = lambda **kw: (lambda *a: _icl_reference(*a, **kw))
    mistakes = [
        (variant(sign=-1.0), "the sign is flipped: late minus early, so that learning in context gives a negative score"),
        (variant(rows=True), "the positions index the rows (the batch): they are columns, loss[:, t]"),
        (variant(one_based=True), "off by one: the positions are 0-based columns, loss[:, early] and loss[:, late]"),
        (variant(ratio=True), "that is a ratio; the score is the difference late - early"),
    ]
    return compare("icl_score", fn, _icl_reference, cases, mistakes=mistakes, rtol=1e-9, atol=1e-12)
