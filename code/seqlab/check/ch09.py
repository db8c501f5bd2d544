"""Exercise checkers of chapter 9: ``cached_attention_step`` and ``linear_scan``."""
from __future__ import annotations

import math
from typing import Callable

import torch

from .core import Case, Result, call, checker, compare


def _cached_attention_step_reference(q_t, k_t, v_t, K_cache, V_cache, *, append="end", attend="all", scale="sqrt",
                                     softmax_dim=-1):
    """One decoding step with a key/value cache: append (k_t, v_t) to the cache, then attend over all T + 1 keys."""
    if append == "end":
        K, V = torch.cat([K_cache, k_t], dim=-2), torch.cat([V_cache, v_t], dim=-2)  # (B, H, T + 1, d)
    else:  # "front": the new key first (same output, wrong cache order)
        K, V = torch.cat([k_t, K_cache], dim=-2), torch.cat([v_t, V_cache], dim=-2)
    K_att, V_att = (K_cache, V_cache) if attend == "past" else (K, V)  # "past": attends before appending
    d_k = q_t.shape[-1]
    s = q_t @ K_att.transpose(-2, -1) / {"sqrt": math.sqrt(d_k), "none": 1.0, "d": d_k}[scale]  # (B, H, 1, T_k)
    if attend == "first":  # a top-left causal mask: the single query (row 0) may see key 0 only
        s = s.masked_fill(torch.arange(s.shape[-1]) > 0, float("-inf"))
    w = torch.softmax(s, dim=softmax_dim)  # (B, H, 1, T_k)
    return w @ V_att, K, V  # (B, H, 1, d_v), (B, H, T + 1, d_k), (B, H, T + 1, d_v)


def _cached_attention_step_cases() -> list[Case]:
    g = torch.Generator().manual_seed(9)

    def make(B, H, T, d_k, d_v, describe, spread=1.0):
        r = lambda *s: torch.randn(*s, generator=g, dtype=torch.float64)
        return Case((r(B, H, 1, d_k) * spread, r(B, H, 1, d_k) * spread, r(B, H, 1, d_v),
                     r(B, H, T, d_k) * spread, r(B, H, T, d_v)), describe)

    return [make(2, 2, 5, 4, 4, "q_t, k_t, v_t (2, 2, 1, 4), a cache K, V (2, 2, 5, 4)"),
            make(1, 3, 7, 8, 3, "q_t, k_t (1, 3, 1, 8), v_t (1, 3, 1, 3), a cache of T = 7 (d_v = 3)", spread=1.5),
            make(2, 1, 0, 4, 4, "the first token: an empty cache, K and V of shape (2, 1, 0, 4)")]


@checker("9")
def cached_attention_step(fn: Callable) -> Result:
    """Chapter 9: ``fn(q_t, k_t, v_t, K_cache, V_cache)`` must return one decoding step of attention with a KV cache.

    It gets the new token's query, key and value
    (B, H, 1, d_k), (B, H, 1, d_k), (B, H, 1, d_v) and the cache of the T earlier keys and
    values (B, H, T, d_k), (B, H, T, d_v) (T may be 0). It must append the new key and value at
    the end of the time dimension, then attend with the single query over all T + 1 keys:
    ``out = softmax(q_t K^T / sqrt(d_k)) V``. Returns ``(out (B, H, 1, d_v), K (B, H, T+1, d_k), V (B, H, T+1, d_v))``.
    """
    name = "cached_attention_step"
    cases = _cached_attention_step_cases()
    for case in cases:
        got = call(name, fn, case)
        if isinstance(got, Result):
            if "must match" in got.message or "size mismatch" in got.message:
                return Result(False, got.message + " — is the new key appended along the wrong dimension? The "
                                     "cache grows in time: torch.cat([K_cache, k_t], dim=-2)")
            return got
        if not isinstance(got, (tuple, list)) or len(got) != 3 or not all(isinstance(t, torch.Tensor) for t in got):
            return Result(False, f"{name} should return three tensors (out, K, V): the output and the updated cache, "
                                 f"returned {type(got).__name__} — on {case.describe}")
        want = _cached_attention_step_reference(*case.args)
        for part, i in (("K", 1), ("V", 2)):
            if got[i].shape != want[i].shape:
                old = case.args[3 + i - 1]
                if got[i].shape == old.shape:
                    why = f"the cache was returned unchanged: append the new {part.lower()}_t, so it holds T + 1 entries"
                elif got[i].dim() == want[i].dim() and got[i].shape[-2] != want[i].shape[-2]:
                    why = f"the new {part.lower()}_t is appended along the wrong dimension: time is dim -2 (B, H, T, d)"
                else:
                    why = f"{part} has shape {tuple(got[i].shape)}, expected {tuple(want[i].shape)} = (B, H, T + 1, d)"
                return Result(False, f"{name}: {why} — on {case.describe}")
    mistakes_cache = [(lambda *a, i=i: _cached_attention_step_reference(*a, append="front")[i],
                       "the new key and value are put in front of the cache; they belong at the end (position T), "
                       "so that position t of the cache is token t. (The output does not show it: attention "
                       "ignores the order of its keys, but positions and cropping rely on it.)") for i in (1, 2)]
    for part, i in (("K", 1), ("V", 2)):
        result = compare(f"{name} ({part})", lambda *a, i=i: fn(*a)[i],
                         lambda *a, i=i: _cached_attention_step_reference(*a)[i], cases, mistakes=[mistakes_cache[i - 1]])
        if not result:
            return result
    variant = lambda **kw: (lambda *a: _cached_attention_step_reference(*a, **kw)[0])
    mistakes = [
        (variant(attend="past"), "the query attends to the cache *before* the new key and value are appended: the "
                                 "token cannot see itself (append first, then attend over all T + 1 keys)"),
        (variant(attend="first"), "a causal mask blocks the cache: with one query and T + 1 keys, a top-left causal "
                                  "mask (is_causal=True, or tril of a (1, T+1) matrix) lets it see key 0 only; the "
                                  "newest token may see every cached key, so no mask is needed"),
        (variant(scale="none"), "the scores are not scaled: divide q_t K^T by sqrt(d_k)"),
        (variant(scale="d"), "the scores are divided by d_k; divide by sqrt(d_k)"),
        (variant(softmax_dim=-2), "the softmax runs over the queries (dim -2, of size 1): every weight becomes 1; "
                                  "it must run over the keys, the last dimension"),
    ]
    result = compare(f"{name} (out)", lambda *a: fn(*a)[0], variant(), cases, mistakes=mistakes)
    if not result:
        return result
    return Result(True, f"{name}: the output and the updated cache agree with the reference on all {len(cases)} cases")


# ---------------------------------------------------------------- a linear recurrence in log-depth: the scan
def _scan_reference(a, b, h_0, *, carry_in=True, shift=False, decay=True, decay_input=False):
    """h_t = a_t * h_{t-1} + b_t for t = 1..T from h_0, computed step by step; variants name the classic mistakes."""
    h = h_0 if carry_in else torch.zeros_like(h_0)
    hs = []
    for t in range(a.shape[1]):
        prev = h
        if decay_input:
            h = a[:, t] * (h + b[:, t])
        else:
            h = (a[:, t] * h if decay else h) + b[:, t]  # (B, D)
        hs.append(prev if shift else h)
    return torch.stack(hs, dim=1)  # (B, T, D)


@checker("9")
def linear_scan(fn: Callable) -> Result:
    """Chapter 9: ``fn(a, b, h_0)`` must return every state of ``h_t = a_t * h_{t-1} + b_t``, (B, T, D).

    ``a`` and ``b`` (B, T, D), ``h_0`` (B, D); t = 1..T, elementwise. The exercise asks for
    ceil(log2 T) parallel doubling steps (each combines pairs (A, B) at distance 1, 2, 4, ...:
    (A1, B1) then (A2, B2) is (A2 A1, A2 B1 + B2)), but any correct method passes: the checker
    compares the states h_1 .. h_T with a loop's.
    """
    g = torch.Generator().manual_seed(91)

    def case(B, T, D, describe):
        a = torch.rand(B, T, D, generator=g, dtype=torch.float64) * 0.6 + 0.4
        return Case((a, torch.randn(B, T, D, generator=g, dtype=torch.float64),
                     torch.randn(B, D, generator=g, dtype=torch.float64)), describe)

    cases = [case(2, 8, 3, "a, b (2, 8, 3): T = 8, a power of 2"), case(1, 5, 2, "T = 5, not a power of 2"),
             case(3, 1, 4, "T = 1"), case(2, 13, 1, "T = 13, D = 1")]
    variant = lambda **kw: (lambda *args: _scan_reference(*args, **kw))
    mistakes = [
        (variant(carry_in=False), "h_0 is ignored: the state carried in must enter as h_1 = a_1 * h_0 + b_1 (it "
                                  "then decays by the product of the a's)"),
        (variant(shift=True), "off by one: these are h_0 .. h_{T-1}; return h_1 .. h_T"),
        (variant(decay=False), "the decay is missing: this sums the b's; each step multiplies the carried "
                               "state by a_t"),
        (variant(decay_input=True), "a_t multiplies the new input too: h_t = a_t * h_{t-1} + b_t, b_t enters "
                                    "undecayed"),
    ]
    return compare("linear_scan", fn, _scan_reference, cases, mistakes=mistakes, rtol=1e-7, atol=1e-9, grad=True)
