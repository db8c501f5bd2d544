"""Exercise checkers of chapter 15: ``kv_cache_bytes``."""
from __future__ import annotations

from typing import Callable

from .core import Case, Result, compare


def _reference(T, n_layers, d_model, bytes_per_number=4, *, kv=2, layers=True, width=True):
    """Bytes of a KV cache after T tokens: a key and a value (kv = 2) of d_model numbers per token and layer."""
    return kv * T * (n_layers if layers else 1) * (d_model if width else 1) * bytes_per_number


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
