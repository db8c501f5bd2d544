"""Exercise checkers of chapter 5: ``additive_attention``."""
from __future__ import annotations

from typing import Callable

import torch

from .core import Case, Result, compare


def _additive_attention_reference(s, h, W_s, W_h, v, mask=None, *, tanh=True, softmax_dim=-1, mask_mode="before",
                                  values="h"):
    scores = (s @ W_s.T)[:, None] + h @ W_h.T  # (B, T, d_hidden)
    scores = (torch.tanh(scores) if tanh else scores) @ v  # (B, T)
    if mask is not None and mask_mode == "before":
        scores = scores.masked_fill(~mask, float("-inf"))
    a = torch.softmax(scores, dim=softmax_dim)  # (B, T)
    if mask is not None and mask_mode == "after":
        a = a * mask  # zeroed but not renormalised
    memory = h if values == "h" else h @ W_h.T
    return (a[:, None] @ memory)[:, 0], a  # c (B, d_key), a (B, T)


def _additive_attention_parts(**kw):
    return lambda *args: _additive_attention_reference(*args, **kw)


_ADDITIVE_MISTAKES = [
    (dict(tanh=False), "the tanh is missing: score(s, h_j) = v^T tanh(W_s s + W_h h_j); without it v^T W_s s is the "
                       "same for every j and cancels in the softmax, so the weights ignore the decoder state"),
    (dict(softmax_dim=0), "the softmax runs over the batch; the weights of one decoder step must sum to 1 over the "
                          "source positions j (the last dimension)"),
    (dict(mask_mode="after"), "the mask is applied after the softmax: set the scores of padded positions to -inf "
                              "before it, so the weights of the real positions still sum to 1"),
    (dict(mask_mode="none"), "the mask is ignored: padded source positions (mask False) must get weight 0"),
    (dict(values="Wh"), "the context must be a weighted sum of the encoder states h_j themselves, not of W_h h_j"),
]


def _additive_attention_cases() -> list[Case]:
    g = torch.Generator().manual_seed(5)
    r = lambda *shape: torch.randn(*shape, generator=g, dtype=torch.float64)

    def make(B, T, d_query, d_key, d_hidden, lengths=None):
        mask = None if lengths is None else torch.arange(T)[None] < torch.tensor(lengths)[:, None]  # (B, T)
        return (r(B, d_query), r(B, T, d_key), r(d_hidden, d_query), r(d_hidden, d_key), r(d_hidden), mask)

    return [
        Case(make(2, 5, 3, 4, 6), "B=2, T=5, d_query=3, d_key=4, d_hidden=6, no mask"),
        Case(make(1, 1, 2, 3, 4), "B=1, T=1 (a single source position: its weight is 1)"),
        Case(make(3, 6, 4, 4, 5, lengths=[6, 2, 4]), "B=3, T=6, a padding mask with lengths [6, 2, 4]"),
    ]


def additive_attention(fn: Callable) -> Result:
    """Chapter 5: ``fn(s, h, W_s, W_h, v, mask)`` must return ``(c, a)`` of Bahdanau's additive attention.

    ``s`` (B, d_query) is the decoder state, ``h`` (B, T, d_key) the encoder states,
    ``W_s`` (d_hidden, d_query), ``W_h`` (d_hidden, d_key), ``v`` (d_hidden,), ``mask`` (B, T) bool
    (True = real position) or None. ``e_j = v^T tanh(W_s s + W_h h_j)``, ``a = softmax_j(e)`` with
    padded positions at weight 0, ``c = sum_j a_j h_j``: ``c`` is (B, d_key) and ``a`` (B, T).
    """
    if not callable(fn):
        return Result(False, f"additive_attention: expected a function, got {type(fn).__name__}")
    cases = _additive_attention_cases()
    for case in cases:
        try:
            out = fn(*case.args)
        except NotImplementedError:
            return Result(False, "additive_attention: not implemented yet (it raised NotImplementedError)")
        except Exception as err:
            return Result(False, f"additive_attention raised {type(err).__name__}: {err} — on {case.describe}")
        if not isinstance(out, (tuple, list)) or len(out) != 2:
            return Result(False, f"additive_attention should return a pair (c, a): the context and the weights, "
                                 f"returned {type(out).__name__} — on {case.describe}")
        wrong_c = _additive_attention_reference(*case.args, values="Wh")[0]
        c = out[0]
        if isinstance(c, torch.Tensor) and c.shape == wrong_c.shape != case.args[1].shape[::2] and \
                torch.allclose(c.detach().double(), wrong_c.double(), rtol=1e-5, atol=1e-6):
            return Result(False, f"additive_attention (context c): {_ADDITIVE_MISTAKES[-1][1]} — on {case.describe}")
    reference = _additive_attention_parts()
    for part, index in (("weights a", 1), ("context c", 0)):
        mistakes = [(lambda *a, kw=kw, i=index: _additive_attention_parts(**kw)(*a)[i], m) for kw, m in _ADDITIVE_MISTAKES]
        result = compare(f"additive_attention ({part})", lambda *a, i=index: fn(*a)[i],
                         lambda *a, i=index: reference(*a)[i], cases, mistakes=mistakes)
        if not result:
            return result
    return Result(True, f"additive_attention: weights and context agree with the reference on all {len(cases)} cases")
