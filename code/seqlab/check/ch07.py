"""Exercise checkers of chapter 7: ``pre_norm_block``, ``cross_attention``, ``layer_norm`` and ``masked_token_loss``."""
from __future__ import annotations

import math
from typing import Callable

import torch

from .core import Case, Result, checker, compare


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


@checker("7")
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
    return compare("pre_norm_block", fn, _pre_norm_block_reference, _pre_norm_block_cases(), mistakes=mistakes, grad=True)


# ---------------------------------------------------------------- cross-attention (the encoder-decoder of chapter 7)
def _cross_attention_reference(y, z, W_q, W_k, W_v, mask=None, *, roles="right", scale=True, masking="before",
                               causal=False):
    """softmax((y W_q^T)(z W_k^T)^T / sqrt(d_k) + M) (z W_v^T), M = -inf at padded source positions; and mistakes."""
    asks, answers, values = {"right": (y, z, z), "swapped": (z, y, y), "values_from_y": (y, z, y)}[roles]
    q, k, v = asks @ W_q.T, answers @ W_k.T, values @ W_v.T  # (B, T, d_k), (B, S, d_k), (B, S, d_v)
    s = q @ k.transpose(-2, -1)  # (B, T, S)
    if scale:
        s = s / math.sqrt(q.shape[-1])
    allowed = torch.ones(s.shape, dtype=torch.bool)
    if mask is not None and masking != "ignored":
        allowed = allowed & mask[:, None, :]
    if causal:
        allowed = allowed & torch.ones(s.shape[-2:], dtype=torch.bool).tril()
    if masking == "after":
        w = torch.softmax(s, dim=-1) * allowed
    else:
        w = torch.softmax(s.masked_fill(~allowed, float("-inf")), dim=-1)
    return torch.nan_to_num(w) @ v  # (B, T, d_v)


def _cross_attention_cases() -> list[Case]:
    g = torch.Generator().manual_seed(71)
    r = lambda *s: torch.randn(*s, generator=g, dtype=torch.float64)

    def case(B, T, S, d, d_k, lengths, describe):
        mask = None if lengths is None else torch.arange(S)[None] < torch.tensor(lengths)[:, None]  # (B, S)
        return Case((r(B, T, d), r(B, S, d), r(d_k, d), r(d_k, d), r(d_k, d), mask), describe)

    return [case(2, 4, 4, 8, 8, [4, 3], "y and z (2, 4, 8): T = S, the second source of length 3"),
            case(2, 3, 5, 6, 4, [5, 2], "y (2, 3, 6), z (2, 5, 6), W (4, 6): T != S, the second source of length 2"),
            case(1, 2, 1, 4, 2, None, "one source position, mask None")]


@checker("7b")
def cross_attention(fn: Callable) -> Result:
    """Chapter 7: ``fn(y, z, W_q, W_k, W_v, mask)`` must return one head of cross-attention (B, T, d_k).

    ``y`` (B, T, d) is the decoder's stream and asks the questions, ``z`` (B, S, d) the encoder's
    memory and answers them: ``Q = y W_q^T``, ``K = z W_k^T``, ``V = z W_v^T`` (each W is (d_k, d),
    as an ``nn.Linear`` weight), ``softmax(Q K^T / sqrt(d_k) + M) V`` with M = -inf where ``mask``
    (B, S), True = real source position, is False; ``mask=None`` means no padding. No causal mask:
    every target position may read the whole source.
    """
    variant = lambda **kw: (lambda *a: _cross_attention_reference(*a, **kw))
    mistakes = [
        (variant(roles="swapped"), "the roles are swapped: the queries come from the decoder (y), the keys and "
                                   "values from the encoder's memory (z)"),
        (variant(roles="values_from_y"), "the values come from y: keys and values both come from the memory z"),
        (variant(causal=True), "a causal mask is applied: cross-attention lets every target position read the "
                               "whole source (only the self-attention of the decoder is causal)"),
        (variant(masking="after"), "the padding mask is applied after the softmax: set the scores of padded "
                                   "positions to -inf before it, so each row still sums to 1"),
        (variant(masking="ignored"), "the padding mask is ignored: padded source positions must get weight 0"),
        (variant(scale=False), "the scores are not scaled: divide Q K^T by sqrt(d_k)"),
    ]
    return compare("cross_attention", fn, _cross_attention_reference, _cross_attention_cases(), mistakes=mistakes, grad=True)


# ---------------------------------------------------------------- LayerNorm
def _layer_norm_reference(x, gamma, beta, eps=1e-5, *, unbiased=False, dim=-1, eps_outside=False, affine=True,
                          swapped=False, ignore_eps=False):
    """(x - mean) / sqrt(var + eps) * gamma + beta over the last dimension; variants name the classic mistakes."""
    eps = 1e-5 if ignore_eps else eps
    mu = x.mean(dim=dim, keepdim=True)
    var = x.var(dim=dim, keepdim=True, unbiased=unbiased)
    xhat = (x - mu) / (var.sqrt() + eps) if eps_outside else (x - mu) / torch.sqrt(var + eps)
    if not affine:
        return xhat
    return xhat * beta + gamma if swapped else xhat * gamma + beta


@checker("7")
def layer_norm(fn: Callable) -> Result:
    """Chapter 7: ``fn(x, gamma, beta, eps)`` must return LayerNorm over the last dimension.

    ``x`` (..., d); ``gamma`` and ``beta`` (d,). Each vector x of width d is normalised by its own
    mean and (biased, 1/d) variance, ``(x - mean) / sqrt(var + eps)``, then scaled by ``gamma`` and
    shifted by ``beta`` (``F.layer_norm(x, (d,), gamma, beta, eps)``). Returns a tensor of x's shape.
    """
    g = torch.Generator().manual_seed(72)
    r = lambda *s: torch.randn(*s, generator=g, dtype=torch.float64)
    cases = [Case((2 * r(2, 5, 8) + 1, 1 + 0.5 * r(8), 0.5 * r(8), 1e-5), "x (2, 5, 8), eps 1e-5"),
             Case((0.01 * r(3, 6), 1 + 0.5 * r(6), 0.5 * r(6), 1e-5), "x (3, 6) with a small spread (std 0.01), "
                                                                      "where eps matters"),
             Case((r(1, 4, 4), 1 + 0.5 * r(4), 0.5 * r(4), 1e-2), "x (1, 4, 4), eps 1e-2 (passed in)")]
    variant = lambda **kw: (lambda *a: _layer_norm_reference(*a, **kw))
    mistakes = [
        (variant(unbiased=True), "the variance is the unbiased one (divides by d - 1; torch.var's default): "
                                 "LayerNorm divides by d (unbiased=False)"),
        (variant(dim=1), "the statistics are taken over the wrong axis (dim 1): each vector is normalised over "
                         "its own d features, the last dimension"),
        (variant(eps_outside=True), "eps is added to the standard deviation: it goes under the square root, "
                                    "sqrt(var + eps)"),
        (variant(affine=False), "gamma and beta are not applied: scale by gamma, then add beta"),
        (variant(swapped=True), "gamma and beta are swapped: multiply by gamma, add beta"),
        (variant(ignore_eps=True), "the eps argument is ignored: use the eps passed in"),
    ]
    return compare("layer_norm", fn, _layer_norm_reference, cases, mistakes=mistakes, grad=True)


# ---------------------------------------------------------------- the loss of padded targets (the encoder-decoder)
def _masked_loss_reference(logits, targets, mask, *, pooled=True, pads=False, reduce="mean", base="e", dim=-1):
    """Mean cross-entropy over the real (mask True) target positions; variants name the classic mistakes."""
    logp = torch.log_softmax(logits, dim=dim)  # (B, T, V)
    nll = -logp.gather(-1, targets[..., None])[..., 0]  # (B, T)
    if base == "2":
        nll = nll / math.log(2)
    keep = torch.ones_like(mask) if pads else mask
    if reduce == "sum":
        return (nll * keep).sum().item()
    if pooled:
        return ((nll * keep).sum() / keep.sum()).item()
    return ((nll * keep).sum(1) / keep.sum(1)).mean().item()


@checker("7b")
def masked_token_loss(fn: Callable) -> Result:
    """Chapter 7 (section 7.9): ``fn(logits, targets, mask)`` must return the mean cross-entropy over the real target tokens.

    ``logits`` (B, T, V), ``targets`` (B, T) ids, ``mask`` (B, T) bool, True at real target positions
    and False at padding. The loss of one token is ``-log softmax(logits[b, t])[targets[b, t]]`` (in
    nats); the result averages it over every real token of the batch, all sequences pooled, as a float.
    """
    g = torch.Generator().manual_seed(78)

    def case(B, T, V, lengths, describe):
        logits = torch.randn(B, T, V, generator=g, dtype=torch.float64) * 2
        targets = torch.randint(0, V, (B, T), generator=g)
        mask = torch.arange(T)[None] < torch.tensor(lengths)[:, None]  # (B, T)
        return Case((logits, targets, mask), describe)

    cases = [case(3, 6, 5, [6, 2, 4], "logits (3, 6, 5), lengths [6, 2, 4]"),
             case(2, 4, 7, [4, 1], "logits (2, 4, 7), lengths [4, 1]"),
             case(1, 3, 4, [3], "logits (1, 3, 4), no padding")]
    variant = lambda **kw: (lambda *a: _masked_loss_reference(*a, **kw))
    mistakes = [
        (variant(pads=True), "the padded positions are counted: average over the real tokens only (mask True)"),
        (variant(pooled=False), "this averages each sequence's mean, so a short target weighs as much as a long "
                                "one: pool the real tokens of the whole batch"),
        (variant(reduce="sum"), "this is the sum over the real tokens; divide by their number for the mean"),
        (variant(base="2"), "that is in bits (log base 2); the loss is in nats, the natural log of "
                            "F.cross_entropy"),
        (variant(dim=1), "the softmax runs over the wrong axis (the positions, dim 1): normalise over the "
                         "vocabulary, the last dimension (F.cross_entropy wants (B, V, T) or (B*T, V))"),
    ]
    return compare("masked_token_loss", fn, _masked_loss_reference, cases, mistakes=mistakes, rtol=1e-7, atol=1e-9)
