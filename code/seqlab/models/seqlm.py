"""One language-model shell over any stack of mixers (chapters 12–15).

Glossary (code name -> book notation):

    x              token ids (B, T), integers in [0, V); ``token`` one position of them, (B,)
    h              the residual stream, (B, T, d_model)
    block          h <- h + mixer(LN(h)); h <- h + MLP(LN(h))   (Pre-Norm, chapter 7)
    MLP            W_2 GELU(W_1 h + b_1) + b_2, width 4 d_model
    state          one entry per layer: that mixer's state (``seqlab.models.Mixer``)
    logits         scores of the next token, (B, T, V)

``SeqLM`` is embedding -> blocks -> LayerNorm -> linear head, the same around every mixer, so that
comparisons between mixers compare the mixers. ``MixerLM`` (chapters 12–13) and ``HybridLM``
(chapter 14) are configurations of it; every language model of the package returns ``(logits, state)``.
"""
from __future__ import annotations

from typing import Callable, Sequence

import torch
from torch import nn

from .. import _validate as validate
from .mixer import Mixer, state_bytes

__all__ = ["SeqLM"]


class SeqLM(nn.Module):
    """Embedding -> one Pre-Norm block per mixer -> LayerNorm -> linear head (chapters 12–15).

    ``mixers``: the layers, or zero-argument functions that build them (built after the embedding,
    so a seeded model draws its weights in the order embedding, mixers, norms, MLPs, head).
    ``forward(x (B, T), state=None) -> (logits (B, T, V), state)``; ``step(token (B,), state=None)
    -> (logits (B, V), state)`` for streaming generation: the same numbers as ``forward`` at that position.
    """

    def __init__(self, vocab_size: int, d_model: int, mixers: Sequence[Mixer | Callable[[], Mixer]], mlp: bool = True):
        super().__init__()
        self.vocab_size = validate.positive_int("vocab_size", vocab_size, minimum=2)
        validate.positive_int("d_model", d_model)
        if not isinstance(mlp, bool):
            raise TypeError(f"mlp must be a bool, got {type(mlp).__name__}")
        self.mlp = mlp
        self.embed = nn.Embedding(vocab_size, d_model)
        built = [m if isinstance(m, Mixer) else m() for m in mixers]
        if not built or not all(isinstance(m, Mixer) for m in built):
            raise TypeError(f"mixers must be a non-empty list of Mixers, got {[type(m).__name__ for m in built]}")
        self.mixers = nn.ModuleList(built)
        self.norms1 = nn.ModuleList(nn.LayerNorm(d_model) for _ in built)
        if mlp:
            self.mlps = nn.ModuleList(nn.Sequential(nn.Linear(d_model, 4 * d_model), nn.GELU(),
                                                    nn.Linear(4 * d_model, d_model)) for _ in built)
            self.norms2 = nn.ModuleList(nn.LayerNorm(d_model) for _ in built)
        self.norm = nn.LayerNorm(d_model)
        self.head = nn.Linear(d_model, vocab_size)

    def _check_state(self, state) -> list:
        if state is None:
            return [None] * len(self.mixers)
        if not (isinstance(state, list) and len(state) == len(self.mixers)):
            got = f"a list of {len(state)}" if isinstance(state, list) else type(state).__name__
            raise ValueError(f"state must be the list of {len(self.mixers)} layer states returned by this model, "
                             f"got {got}")
        return state

    def _blocks(self, h, state, run):
        new = []
        for i, (mixer, s) in enumerate(zip(self.mixers, self._check_state(state))):
            y, s = run(mixer, self.norms1[i](h), s)
            h = h + y
            new.append(s)
            if self.mlp:
                h = h + self.mlps[i](self.norms2[i](h))
        return self.head(self.norm(h)), new

    def forward(self, x: torch.Tensor, state: list | None = None):
        validate.token_ids("x", x, self.vocab_size, ndim=2)
        return self._blocks(self.embed(x), state, lambda m, h, s: m(h, s))  # (B, T, V), one state per layer

    def step(self, token: torch.Tensor, state: list | None = None):
        validate.token_ids("token", token, self.vocab_size, ndim=1)
        return self._blocks(self.embed(token), state, lambda m, h, s: m.step(h, s))  # (B, V)

    @staticmethod
    def state_bytes(state) -> int:
        """Bytes held by the tensors of ``state``."""
        return state_bytes(state)
