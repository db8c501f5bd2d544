"""Exercise checkers of chapter 7: ``pre_norm_block``."""
from __future__ import annotations

import math
from typing import Callable

import torch

from .core import Case, Result, compare


def _pre_norm_block_reference(x, attn, ffn, norm1, norm2, *, form="pre"):
    """x <- x + attn(LN_1(x)); x <- x + FFN(LN_2(x)), and the classic wrong forms."""
    if form == "pre":
        x = x + attn(norm1(x))
        return x + ffn(norm2(x))
    if form == "post":
        x = norm1(x + attn(x))
        return norm2(x + ffn(x))
    if form == "no_residual":
        x = attn(norm1(x))
        return x + ffn(norm2(x))
    if form == "normalised_stream":  # the residual stream itself replaced by its normalisation
        x = norm1(x)
        x = x + attn(x)
        x = norm2(x)
        return x + ffn(x)
    if form == "parallel":  # GPT-J / PaLM style: both sublayers read the same input
        return x + attn(norm1(x)) + ffn(norm2(x))
    if form == "swapped_norms":
        x = x + attn(norm2(x))
        return x + ffn(norm1(x))
    raise ValueError(form)


def _pre_norm_block_cases() -> list[Case]:
    g = torch.Generator().manual_seed(7)

    def make(B, T, d, describe):
        r = lambda *s: torch.randn(*s, generator=g, dtype=torch.float64)
        W_a, W_1, W_2 = r(d, d) / math.sqrt(d), r(d, 2 * d) / math.sqrt(d), r(2 * d, d) / math.sqrt(2 * d)
        attn = lambda h, W=W_a: torch.tanh(h.cumsum(dim=-2) @ W)  # mixes positions, like attention would
        ffn = lambda h, W1=W_1, W2=W_2: torch.relu(h @ W1) @ W2
        norms = []
        for _ in range(2):  # two LayerNorms with different gains and biases, so swapping them shows
            gamma, beta = 1 + 0.5 * r(d), 0.5 * r(d)
            norms.append(lambda h, a=gamma, b=beta: torch.nn.functional.layer_norm(h, (h.shape[-1],), a, b))
        return Case((3 * r(B, T, d) + 1, attn, ffn, *norms), describe)

    return [make(2, 5, 8, "x (2, 5, 8)"), make(1, 1, 4, "x (1, 1, 4): one position"), make(3, 4, 6, "x (3, 4, 6)")]


def pre_norm_block(fn: Callable) -> Result:
    """Chapter 7: ``fn(x, attn, ffn, norm1, norm2)`` must return one Pre-Norm Transformer block.

    ``x`` (B, T, d) is the residual stream; ``attn`` and ``ffn`` are the two sublayers and
    ``norm1``, ``norm2`` their LayerNorms (functions of a (B, T, d) tensor). The block is
    ``x <- x + attn(norm1(x))`` then ``x <- x + ffn(norm2(x))``; it returns (B, T, d).
    """
    variant = lambda form: (lambda *a: _pre_norm_block_reference(*a, form=form))
    mistakes = [
        (variant("post"), "this is the Post-Norm block, LN(x + sublayer(x)); Pre-Norm normalises the sublayer's "
                          "input and adds its output to the un-normalised x"),
        (variant("no_residual"), "the first residual is missing: add attn(norm1(x)) to x, do not replace x with it"),
        (variant("normalised_stream"), "the residual stream itself is normalised (x = norm1(x) before adding): "
                                       "only the sublayer's input is normalised, x is carried on unchanged"),
        (variant("parallel"), "both sublayers read the block's input (the 'parallel' block of GPT-J/PaLM, a valid "
                              "variant but not this one): the FFN reads norm2 of x *after* the attention residual"),
        (variant("swapped_norms"), "norm1 and norm2 are swapped: norm1 goes before attn, norm2 before ffn"),
    ]
    return compare("pre_norm_block", fn, _pre_norm_block_reference, _pre_norm_block_cases(), mistakes=mistakes)
