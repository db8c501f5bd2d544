"""Exercise checkers of chapter 10: ``forward_flops``."""
from __future__ import annotations

from typing import Callable

from .core import Case, Result, compare


def _forward_flops_reference(d, n_layers, n_ctx, V, *, attention=4, head=True, ffn=8):
    """Forward FLOPs per token of chapter 7's GPT: 2 per matrix weight, plus ``attention`` n_layers n_ctx d."""
    per_block = 4 * d * d + ffn * d * d  # W_q, W_k, W_v, W_o; W_1 (d x 4d) and W_2 (4d x d)
    return 2 * (n_layers * per_block + (d * V if head else 0)) + attention * n_layers * n_ctx * d


def forward_flops(fn: Callable) -> Result:
    """Chapter 10: ``fn(d, n_layers, n_ctx, V)`` must return the forward FLOPs per token of a GPT.

    Two FLOPs (a multiply and an add) per weight of every matrix — four d x d attention maps,
    the d x 4d and 4d x d feed-forward maps per block, and the d x V head — with biases,
    LayerNorms and the embedding lookup left out, plus ``4 n_layers n_ctx d`` for ``Q K^T`` and
    the weighted sum of values. It equals ``seqlab.experiments.scaling.flops_per_token(...)["C"] / 3``.
    """
    cases = [Case((64, 2, 128, 100), "d = 64, 2 layers, context 128, V = 100"),
             Case((32, 4, 1024, 50), "d = 32, 4 layers, context 1024, V = 50 (attention dominates)"),
             Case((256, 1, 16, 1000), "d = 256, 1 layer, context 16, V = 1000 (the head dominates)")]
    variant = lambda **kw: (lambda *a: _forward_flops_reference(*a, **kw))
    mistakes = [
        (variant(attention=0), "attention's n_ctx term is missing: each token's query meets n_ctx keys (Q K^T) and "
                               "weighs n_ctx values, 2 n_ctx d FLOPs each, per layer: 4 n_layers n_ctx d"),
        (variant(attention=2), "only one of the two attention products is counted (Kaplan et al. write "
                               "2 n_layer n_ctx d): count Q K^T and the weighted sum of V, 4 n_layers n_ctx d"),
        (variant(head=False), "the output head is missing: its d x V matrix is a matrix product like any other "
                              "(only the embedding lookup is free)"),
        (variant(ffn=2), "the feed-forward maps are d x 4d and 4d x d: 8 d^2 weights per block, not 2 d^2"),
        (lambda *a: _forward_flops_reference(*a) / 2, "this counts one FLOP per weight; a multiply-add is two"),
        (lambda *a: 3 * _forward_flops_reference(*a), "this is the training cost (forward + backward = 3x); "
                                                      "the exercise asks for the forward pass"),
    ]
    # a FLOP count is an integer: within half a FLOP is equal
    return compare("forward_flops", fn, _forward_flops_reference, cases, mistakes=mistakes, rtol=0.0, atol=0.5)
