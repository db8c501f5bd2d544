"""Exercise checkers of chapter 10: ``forward_flops`` and ``fit_power_law``."""
from __future__ import annotations

from typing import Callable

import torch

from .core import Case, Result, checker, compare


def _forward_flops_reference(d, n_layers, n_ctx, V, *, attention=4, head=True, ffn=8):
    """Forward FLOPs per token of chapter 7's GPT: 2 per matrix weight, plus ``attention`` n_layers n_ctx d."""
    per_block = 4 * d * d + ffn * d * d  # W_q, W_k, W_v, W_o; W_1 (d x 4d) and W_2 (4d x d)
    return 2 * (n_layers * per_block + (d * V if head else 0)) + attention * n_layers * n_ctx * d


@checker("10")
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


# ---------------------------------------------------------------- a power law, fitted on log axes
def _fit_reference(N, L, *, sign=1.0, log_a=False, swapped=False, bases="same"):
    """Least squares of log L = log a - alpha log N: returns (a, alpha); variants name the classic mistakes."""
    x, y = torch.log(N.double()), torch.log(L.double())
    if bases == "mixed":  # slope fitted in log10, prefactor taken back with exp
        x, y = torch.log10(N.double()), torch.log10(L.double())
    if swapped:  # log N regressed on log L, then solved for the law
        s = ((y - y.mean()) * (x - x.mean())).sum() / ((y - y.mean()) ** 2).sum()
        c = x.mean() - s * y.mean()
        slope, intercept = 1 / s, -c / s
    else:
        slope = ((x - x.mean()) * (y - y.mean())).sum() / ((x - x.mean()) ** 2).sum()
        intercept = y.mean() - slope * x.mean()
    a = intercept if log_a else torch.exp(intercept)
    return float(a), float(-slope * sign)


@checker("10")
def fit_power_law(fn: Callable) -> Result:
    """Chapter 10: ``fn(N, L)`` must fit ``L = a N^(-alpha)`` by least squares on log axes, returning ``(a, alpha)``.

    ``N`` and ``L`` are 1-D tensors of the same length (sizes and losses, all positive). Fit the
    straight line ``log L = log a - alpha log N`` (least squares, log L on log N) and return the
    floats ``(a, alpha)``: alpha > 0 when the loss falls with size.
    """
    g = torch.Generator().manual_seed(101)

    def case(a, alpha, N, noise, describe):
        N = torch.tensor(N, dtype=torch.float64)
        L = a * N ** -alpha * torch.exp(noise * torch.randn(len(N), generator=g, dtype=torch.float64))
        return Case((N, L), describe)

    cases = [case(8.0, 0.12, [1e4, 3e4, 1e5, 3e5, 1e6], 0.02, "5 sizes from 1e4 to 1e6, a = 8, alpha = 0.12, noisy"),
             case(3.0, 0.5, [10.0, 100.0], 0.0, "two exact points: N = 10, 100, a = 3, alpha = 0.5"),
             case(20.0, 0.07, [2e3, 5e3, 2e4, 9e4], 0.05, "4 sizes, alpha = 0.07, noisier")]
    variant = lambda **kw: (lambda N, L: _fit_reference(N, L, **kw))
    mistakes = [
        (variant(sign=-1.0), "alpha has the wrong sign: the law is L = a N^(-alpha), so alpha is minus the slope"),
        (variant(log_a=True), "a is returned as log a (the intercept): a = exp(intercept)"),
        (variant(swapped=True), "the regression is the wrong way round (log N on log L): fit log L on log N"),
        (variant(bases="mixed"), "the fit is in log10 but a is taken back with exp: use one base throughout "
                                 "(a = 10^intercept in base 10)"),
    ]
    return compare("fit_power_law", fn, _fit_reference, cases, mistakes=mistakes, rtol=1e-6, atol=1e-9)
