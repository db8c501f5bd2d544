"""Exercise checkers of chapter 15: ``kv_cache_bytes`` and ``pareto_front``."""
from __future__ import annotations

from typing import Callable

import torch

from .core import Case, Result, checker, compare


def _reference(T, n_layers, d_model, bytes_per_number=4, *, kv=2, layers=True, width=True):
    """Bytes of a KV cache after T tokens: a key and a value (kv = 2) of d_model numbers per token and layer."""
    return kv * T * (n_layers if layers else 1) * (d_model if width else 1) * bytes_per_number


@checker("15")
def kv_cache_bytes(fn: Callable) -> Result:
    """Chapter 15: ``fn(T, n_layers, d_model, bytes_per_number=4)`` must return the bytes of a KV cache.

    A cache keeps, for each of the T tokens and each of the ``n_layers`` attention layers, one key and
    one value of ``d_model`` numbers: 2 · T · n_layers · d_model · bytes_per_number.
    """
    cases = [Case((100, 3, 64), "T=100, 3 layers, d_model=64 (float32)"),
             Case((1, 1, 8, 2), "T=1, 1 layer, d_model=8, 2 bytes a number (float16)"),
             Case((4096, 12, 768, 4), "T=4096, 12 layers, d_model=768"),
             Case((0, 3, 16), "T=0: an empty cache")]
    mistakes = [
        (lambda *a: _reference(*a, kv=1), "the cache keeps a value as well as a key for every token: a factor 2"),
        (lambda *a: _reference(*a, layers=False), "every attention layer keeps its own cache: multiply by n_layers"),
        (lambda *a: _reference(*a, kv=1, layers=False), "a key and a value (factor 2) in every layer (factor n_layers)"),
        (lambda *a: _reference(*a, width=False), "each key and value is a vector of d_model numbers"),
    ]
    return compare("kv_cache_bytes", fn, _reference, cases, mistakes=mistakes, rtol=0, atol=0)


# ---------------------------------------------------------------- the models worth considering: a Pareto front
def _pareto_reference(quality, cost, *, strict=True, flip=False, invert=False, one_axis=False):
    """True for each model that no other model beats (quality >=, cost <=, one of them strictly)."""
    q = -quality if flip else quality
    M = len(q)
    keep = []
    for m in range(M):
        if one_axis:
            keep.append(bool(q[m] == q.max()))
            continue
        beaten = False
        for o in range(M):
            if o == m:
                continue
            no_worse = q[o] >= q[m] and cost[o] <= cost[m]
            better = q[o] > q[m] or cost[o] < cost[m]
            if no_worse and (better or not strict):
                beaten = True
        keep.append(beaten if invert else not beaten)
    return torch.tensor(keep)


@checker("15")
def pareto_front(fn: Callable) -> Result:
    """Chapter 15: ``fn(quality, cost)`` must return which models are on the Pareto front, bool (M,).

    ``quality`` (M,) (higher is better, e.g. recall) and ``cost`` (M,) (lower is better, e.g. bytes or
    seconds per token). Model m is on the front unless another model is at least as good on both
    (quality >= and cost <=) and strictly better on one. Two identical models both stay on it.
    """
    cases = [Case((torch.tensor([0.9, 0.8, 0.95, 0.6, 0.7]), torch.tensor([10.0, 2.0, 30.0, 1.0, 5.0])),
                  "5 models, each better than the next cheaper one"),
             Case((torch.tensor([0.9, 0.5, 0.9, 0.4]), torch.tensor([4.0, 3.0, 4.0, 8.0])),
                  "two identical models (0.9, 4.0) and one beaten by both"),
             Case((torch.tensor([0.7, 0.7, 0.8]), torch.tensor([3.0, 2.0, 2.0])),
                  "ties in quality and in cost: only the last survives"),
             Case((torch.tensor([0.5]), torch.tensor([1.0])), "a single model")]
    variant = lambda **kw: (lambda q, c: _pareto_reference(q, c, **kw))
    mistakes = [
        (variant(strict=False), "identical models knock each other out: another model beats m only if it is at "
                                "least as good on both and strictly better on one"),
        (variant(flip=True), "quality is minimised: higher quality is better, lower cost is better"),
        (variant(invert=True), "this marks the beaten models: the front is the models that no other model beats"),
        (variant(one_axis=True), "this keeps only the best quality: a cheaper model of lower quality is on the "
                                 "front too, unless another model is as good and as cheap"),
    ]
    return compare("pareto_front", fn, _pareto_reference, cases, mistakes=mistakes, rtol=0, atol=0)
