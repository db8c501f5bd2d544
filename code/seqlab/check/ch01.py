"""Exercise checkers of chapter 1: ``bigram_counts``, ``bits_per_char``."""
from __future__ import annotations

import math
from typing import Callable

import torch

from .core import Case, Result, checker, compare


def _bigram_counts_reference(ids: torch.Tensor, V: int) -> torch.Tensor:
    counts = torch.zeros(V, V, dtype=torch.long)
    counts.index_put_((ids[:-1], ids[1:]), torch.ones(len(ids) - 1, dtype=torch.long), accumulate=True)
    return counts


@checker("1")
def bigram_counts(fn: Callable[[torch.Tensor, int], torch.Tensor]) -> Result:
    """Chapter 1: ``fn(ids, V)`` must return the ``(V, V)`` matrix ``C[a, b]`` = number of times ``b`` follows ``a``."""
    cases = [
        Case((torch.tensor([0, 1, 0, 1, 1]), 2), "ids=[0, 1, 0, 1, 1], V=2"),
        Case((torch.tensor([2, 2, 2]), 3), "ids=[2, 2, 2], V=3 (a repeated symbol)"),
        Case((torch.tensor([0]), 4), "ids=[0], V=4 (a single symbol: no pairs)"),
        Case((torch.tensor([3, 0, 2, 1, 3, 0]), 5), "ids=[3, 0, 2, 1, 3, 0], V=5 (symbol 4 never appears)"),
    ]
    hints = [
        (lambda c: c.T, "the matrix is transposed: row a, column b should count b following a"),
        (lambda c: c / c.sum(dim=1, keepdim=True).clamp(min=1), "these are probabilities; the exercise asks for counts"),
    ]
    return compare("bigram_counts", fn, _bigram_counts_reference, cases, hints=hints)


def _bits_per_char_reference(probs: torch.Tensor, targets: torch.Tensor) -> float:
    return (-torch.log2(probs[torch.arange(len(targets)), targets])).mean().item()


@checker("1")
def bits_per_char(fn: Callable[[torch.Tensor, torch.Tensor], float]) -> Result:
    """Chapter 1: ``fn(probs, targets)`` must return the mean of ``-log2 p(target)`` as a float.

    ``probs`` is ``(N, V)`` (each row a distribution over the next character),
    ``targets`` is ``(N,)``.
    """
    cases = [
        Case((torch.full((4, 2), 0.5), torch.tensor([0, 1, 1, 0])), "a fair coin: 1 bit per symbol"),
        Case((torch.tensor([[0.25, 0.75], [0.9, 0.1]]), torch.tensor([1, 0])), "two predictions, both fairly right"),
        Case((torch.tensor([[0.7, 0.2, 0.1], [0.1, 0.1, 0.8], [0.3, 0.3, 0.4]]), torch.tensor([2, 0, 1])), "three predictions, all wrong"),
    ]
    hints = [
        (lambda b: b * math.log(2), "that is in nats: use log base 2 for bits"),
        (lambda b: -b, "the sign is flipped: bits are -log2 p"),
    ]
    return compare("bits_per_char", fn, _bits_per_char_reference, cases, hints=hints)
