"""Multi-query associative recall with a gap: the key–value pairs lie far behind every query (chapter 14).

Glossary (code name -> book notation): ``n_pairs`` the number of key–value pairs, ``gap`` the filler
tokens between the last pair and the first query, ``n_queries`` the queries, ``V`` the vocabulary.

A sequence is ``k_1 v_1 … k_n v_n  ∅ … ∅  q_1 … q_Q``: the pairs (keys distinct, drawn from
``[1, V/2)``; values from ``[V/2, V)``), then ``gap`` copies of the filler token ``∅ = 0``, then
queries, each a key from the pairs, scored on predicting that key's value. The nearest pair token
is ``gap + 1`` positions before the first query, so a sliding window of W ≤ gap + 1 positions
(query t sees t − W + 1 .. t) cannot see any pair: only a state that carries them through the gap,
or full attention, can answer.
"""
from __future__ import annotations

from dataclasses import dataclass

import torch

from .. import _validate as validate
from .tasks import IGNORE, TokenTask, _randint

FILLER = 0


@dataclass(frozen=True)
class GappedRecall(TokenTask):
    """MQAR (Arora et al., 2023) with ``gap`` filler tokens between the pairs and the queries (chapter 14)."""

    n_pairs: int = 4
    gap: int = 32
    n_queries: int = 16
    vocab: int = 64

    def __post_init__(self):
        validate.positive_int("n_pairs", self.n_pairs)
        validate.positive_int("gap", self.gap, minimum=0)
        validate.positive_int("n_queries", self.n_queries)
        validate.positive_int("vocab", self.vocab, minimum=4)
        if self.vocab % 2:
            raise ValueError(f"vocab must be even (keys and values take half each), got {self.vocab}")
        if self.n_pairs > self.vocab // 2 - 1:
            raise ValueError(f"n_pairs must be <= vocab/2 - 1 = {self.vocab // 2 - 1} (distinct keys, 0 is the "
                             f"filler), got {self.n_pairs}")

    input_vocab = property(lambda self: self.vocab)
    n_classes = property(lambda self: self.vocab)

    @property
    def length(self) -> int:
        """T = 2 n_pairs + gap + n_queries."""
        return 2 * self.n_pairs + self.gap + self.n_queries

    @property
    def chance(self) -> float:
        """A uniform guess among the ``V/2`` value symbols."""
        return 2.0 / self.vocab

    def outside_window(self, window: int) -> bool:
        """True when no query can see any pair through a causal window of ``window`` positions."""
        validate.positive_int("window", window)
        return window <= self.gap + 1

    def _sample(self, B, g):
        n, half = self.n_pairs, self.vocab // 2
        keys = 1 + torch.rand(B, half - 1, generator=g).argsort(dim=1)[:, :n]  # (B, n) distinct, in [1, V/2)
        values = half + _randint(half, (B, n), g)  # (B, n)
        pairs = torch.stack([keys, values], dim=2).reshape(B, 2 * n)  # (B, 2n)
        filler = torch.full((B, self.gap), FILLER, dtype=torch.long)
        which = _randint(n, (B, self.n_queries), g)  # (B, Q) index of the queried pair
        x = torch.cat([pairs, filler, keys.gather(1, which)], dim=1)  # (B, T)
        y = torch.cat([torch.full((B, 2 * n + self.gap), IGNORE, dtype=torch.long), values.gather(1, which)], dim=1)
        return x, y
