"""Exercise checkers of chapter 5: ``additive_attention`` and ``alignment_accuracy``."""
from __future__ import annotations

from typing import Callable

import torch

from .core import Case, Result, call, checker, compare


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
        Case(make(2, 5, 3, 4, 6), "B=2, S=5, d_query=3, d_key=4, d_hidden=6, no mask"),
        Case(make(1, 1, 2, 3, 4), "B=1, S=1 (a single source position: its weight is 1)"),
        Case(make(3, 6, 4, 4, 5, lengths=[6, 2, 4]), "B=3, S=6, a padding mask with lengths [6, 2, 4]"),
    ]


@checker("5")
def additive_attention(fn: Callable) -> Result:
    """Chapter 5: ``fn(s, h, W_s, W_h, v, mask)`` must return ``(c, a)`` of Bahdanau's additive attention.

    ``s`` (B, d_query) is the decoder state, ``h`` (B, T, d_key) the encoder states,
    ``W_s`` (d_hidden, d_query), ``W_h`` (d_hidden, d_key), ``v`` (d_hidden,), ``mask`` (B, T) bool
    (True = real position) or None. ``e_j = v^T tanh(W_s s + W_h h_j)``, ``a = softmax_j(e)`` with
    padded positions at weight 0, ``c = sum_j a_j h_j``: ``c`` is (B, d_key) and ``a`` (B, T).
    """
    cases = _additive_attention_cases()
    for case in cases:
        out = call("additive_attention", fn, case)
        if isinstance(out, Result):
            return out
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


# ---------------------------------------------------------------- how often attention aligns
def _alignment_reference(a, lengths, *, target="reverse", pooled=True, pads=False, axis=-1):
    """Share of the real decoder steps i < L whose largest weight sits on source position L - 1 - i."""
    B, T_out, _ = a.shape
    best = a.argmax(dim=axis)  # (B, T_out) (axis -1) or (B, S) (axis 1)
    hits, steps = [], []
    for b in range(B):
        L = int(lengths[b])
        n = T_out if pads else L
        i = torch.arange(n)
        want = {"reverse": L - 1 - i, "off_by_one": L - i, "diagonal": i}[target]
        hits.append(float((best[b, :n] == want).sum()))
        steps.append(n)
    if pooled:
        return sum(hits) / sum(steps)
    return sum(h / n for h, n in zip(hits, steps)) / B


def _alignment_cases() -> list[Case]:
    g = torch.Generator().manual_seed(51)

    def make(lengths, describe):
        B, T = len(lengths), max(lengths)
        scores = torch.randn(B, T, T, generator=g, dtype=torch.float64)
        for b, L in enumerate(lengths):
            for i in range(L):
                pick = torch.rand((), generator=g).item()
                j = L - 1 - i if pick < 0.6 else (min(L - 1, L - i) if pick < 0.8 else i)
                scores[b, i, j] += 4.0
            scores[b, :, L:] = float("-inf")  # padded source positions get weight 0
        return Case((torch.softmax(scores, dim=-1), torch.tensor(lengths)), describe)

    return [make([6, 4, 5], "a (3, 6, 6), lengths [6, 4, 5]"), make([3], "a (1, 3, 3), length 3"),
            make([8, 2], "a (2, 8, 8), lengths [8, 2]")]


@checker("5")
def alignment_accuracy(fn: Callable) -> Result:
    """Chapter 5: ``fn(a, lengths)`` must return the share of decoder steps that attend to the right position.

    ``a`` (B, T, T) holds the attention weights of a reversal model, ``a[b, i, j]`` from output
    step i to source position j, and ``lengths`` (B,) each sequence's length L (steps and sources
    beyond it are padding). Step i < L of reversal should put its largest weight on source position
    ``L - 1 - i``. Returns a float: aligned steps over real steps, all sequences pooled (padded
    steps count neither way).
    """
    variant = lambda **kw: (lambda a, lengths: _alignment_reference(a, lengths, **kw))
    mistakes = [
        (variant(target="off_by_one"), "off by one: step i of reversal copies source position L - 1 - i, not L - i"),
        (variant(target="diagonal"), "this counts the diagonal j = i (a copy); reversal aligns step i with "
                                     "source position L - 1 - i"),
        (variant(pads=True), "the padded steps i >= L are counted: only the L real steps of each sequence count"),
        (variant(pooled=False), "this averages each sequence's share, so a short sequence weighs as much as a long "
                                "one: pool the steps of all sequences (aligned steps / real steps)"),
        (variant(axis=1), "the argmax runs over the wrong axis (the output steps): for each output step i, find "
                          "the source position j with the largest a[b, i, j] (the last axis)"),
    ]
    return compare("alignment_accuracy", fn, _alignment_reference, _alignment_cases(), mistakes=mistakes,
                   rtol=1e-9, atol=1e-9)
