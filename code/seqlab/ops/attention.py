"""Softmax attention as functions (chapter 6; the cache of chapter 9), in four forms with one signature.

Glossary, code name -> book notation:

    q, k, v        queries Q, keys K, values V of the new tokens: (B, H, T, d_k), (B, H, T, d_k), (B, H, T, d_v)
    state          the key/value cache (K_past, V_past), (B, H, T_past, d_k) and (B, H, T_past, d_v):
                   the keys and values of every earlier token; None means an empty cache
    scores         Q K^T / sqrt(d_k) + bias + M, shape (B, H, T, T_past + T)
    mask           M as a bool tensor: True = "may attend" (M = 0), False = "may not" (M = -inf)
    bias           a float term added to the scaled scores, e.g. ALiBi's -s_h (m - n) (chapter 8)
    B, H, T, d     batch, heads, new tokens, width per head

Heads sit before time, as in ``F.scaled_dot_product_attention``: the time axis of
``q``, ``k``, ``v`` and ``y`` is dim 2 (-2). The equation, for the new tokens at
positions T_past .. T_past + T - 1::

    Attention(Q, K, V) = softmax(Q [K_past; K]^T / sqrt(d_k) + bias + M) [V_past; V]

``causal=True`` lets the new token i (position T_past + i) see every cached key
and the new keys up to its own position: the scores' columns 0 .. T_past + i.
Each form returns ``(y (B, H, T, d_v), (K, V))`` with the new keys and values
appended to the cache, so calling a form again with that state continues the
sequence. ``need_weights=True`` adds the attention weights (B, H, T, T_past + T)
as a third value, or None where the form has none (the fused kernel):

    loop      the reference: one query at a time, over the keys it may see
    parallel  every query at once: masked Q K^T / sqrt(d_k) softmax, the equation of ``scaled_dot_product_attention``
    stream    one new token at a time with ``attention_step`` (causal only): what generation runs
    fused     PyTorch's ``F.scaled_dot_product_attention`` (flash / memory-efficient kernels where they apply)

Masks are strict: a mask or a bias has exactly the shape (T, T_k) or the full
shape (..., T, T_k), T_k = T_past + T (keys may be longer than queries without a
cache, for cross-attention); nothing else is broadcast. A query that may attend
to no key would divide by zero in the softmax (NaN), so it is an error.
"""
from __future__ import annotations

import math

import torch
import torch.nn.functional as F

from .. import _validate as validate
from .registry import Case, Family, Problem, register_family


# ---------------------------------------------------------------- checks and masks
def _check_score_shape(name: str, x: torch.Tensor, T_q: int, T_k: int, lead: tuple) -> None:
    """A mask or bias on the scores has exactly the shape (T_q, T_k) or (..., T_q, T_k): no broadcasting."""
    shapes = {(T_q, T_k), (*lead, T_q, T_k)}
    if tuple(x.shape) not in shapes:
        want = " or ".join(str(s) for s in sorted(shapes, key=len))
        raise ValueError(f"{name} must have shape (T_q, T_k) or (..., T_q, T_k) = {want} (no broadcasting), "
                         f"got shape {tuple(x.shape)}")


def causal_mask(T: int, device=None, *, T_k: int | None = None, offset: int = 0) -> torch.Tensor:
    """The (T, T_k) bool mask of a decoder (chapter 6): query i may attend to key j <= i + offset.

    With the defaults (``T_k = T``, ``offset = 0``) it is the lower triangle of a (T, T) matrix.
    ``offset`` counts keys that come before the first query, as with a key/value cache (chapter 9):
    query i stands at position ``offset + i`` and sees keys ``0 .. offset + i``. The one causal-mask
    builder of seqlab: every form's ``causal=True`` uses it (``seqlab.models.causal_mask`` is this function).
    """
    validate.positive_int("T", T)
    T_k = T if T_k is None else validate.positive_int("T_k", T_k)
    validate.positive_int("offset", offset, minimum=0)
    return torch.ones(T, T_k, dtype=torch.bool, device=device).tril(offset)  # (T, T_k)


def _allowed(mask, causal: bool, T_q: int, T_k: int, lead: tuple, device, T_past: int = 0) -> torch.Tensor | None:
    """The bool tensor of allowed (query, key) pairs from ``mask`` and ``causal``, checked; None if all are.

    Causal: query i sits at position T_past + i and sees keys 0 .. T_past + i (``tril(T_past)``);
    without a cache (T_past = 0) that is top-left aligned, like ``F.scaled_dot_product_attention(is_causal=True)``.
    """
    if not isinstance(causal, bool):
        raise TypeError(f"causal must be a bool, got {type(causal).__name__}")
    allowed = None
    if mask is not None:
        if not isinstance(mask, torch.Tensor):
            raise TypeError(f"mask must be a torch.Tensor, got {type(mask).__name__}")
        if mask.dtype != torch.bool:
            raise TypeError(f"mask must be a bool tensor (True = may attend), got dtype {mask.dtype}")
        _check_score_shape("mask", mask, T_q, T_k, lead)
        allowed = mask
    if causal:
        tri = causal_mask(T_q, device, T_k=T_k, offset=T_past)  # (T_q, T_k)
        allowed = tri if allowed is None else allowed & tri
    if allowed is not None:
        empty = ~allowed.any(dim=-1)  # (..., T_q)
        if empty.any():
            where = tuple(i.item() for i in empty.nonzero()[0])
            raise ValueError(f"mask lets query {where} (index into (..., T_q)) attend to no key: every entry of its "
                             f"row is False, and the softmax of nothing is NaN")
    return allowed


def _masked_softmax(scores: torch.Tensor, allowed: torch.Tensor | None) -> torch.Tensor:
    """softmax over the last dimension with -inf where ``allowed`` is False (so those weights are exactly 0)."""
    if allowed is not None:
        scores = scores.masked_fill(~allowed, float("-inf"))
    return torch.softmax(scores, dim=-1)


def _check_qkv(q, k, v) -> None:
    for name, x in (("q", q), ("k", k), ("v", v)):
        validate.tensor(name, x, dtype="float")
        if x.dim() < 2:
            raise ValueError(f"{name} must have at least 2 dimensions (..., T, d), got shape {tuple(x.shape)}")
    if not q.dtype == k.dtype == v.dtype:
        raise TypeError(f"q, k and v must have one dtype, got {q.dtype}, {k.dtype} and {v.dtype}")
    if not q.shape[:-2] == k.shape[:-2] == v.shape[:-2]:
        raise ValueError(f"q, k and v must have the same leading (batch, head) dimensions (no broadcasting), "
                         f"got shapes {tuple(q.shape)}, {tuple(k.shape)} and {tuple(v.shape)}")
    validate.tensor("k", k, last_dim=q.shape[-1])  # d_k
    if k.shape[-2] != v.shape[-2]:
        raise ValueError(f"k and v must have the same number of keys T_k, got shapes {tuple(k.shape)} and {tuple(v.shape)}")
    if k.shape[-2] == 0:
        raise ValueError(f"k must hold at least one key, got shape {tuple(k.shape)}")


def _check_bias(bias, T_q: int, T_k: int, lead: tuple, dtype) -> None:
    """``bias`` (an additive float term on the scores, e.g. ALiBi's) has shape (T_q, T_k) or (..., T_q, T_k)."""
    if bias is None:
        return
    if not isinstance(bias, torch.Tensor) or not bias.is_floating_point():
        got = bias.dtype if isinstance(bias, torch.Tensor) else type(bias).__name__
        raise TypeError(f"bias must be a floating-point tensor added to the scores, got {got}")
    if bias.dtype != dtype:
        raise TypeError(f"bias must have the dtype of q, {dtype}, got {bias.dtype}")
    _check_score_shape("bias", bias, T_q, T_k, lead)


def _scale(scale, d_k: int) -> float:
    if scale is None:
        return 1.0 / math.sqrt(d_k)
    if isinstance(scale, bool) or not isinstance(scale, (int, float)) or not 0 < scale < math.inf:
        raise ValueError(f"scale must be a positive finite number (or None for 1/sqrt(d_k)), got {scale!r}")
    return float(scale)


# ---------------------------------------------------------------- the equation of chapter 6, by hand
def scaled_dot_product_attention(q: torch.Tensor, k: torch.Tensor, v: torch.Tensor, mask: torch.Tensor | None = None,
                                 causal: bool = False, scale: float | None = None, bias: torch.Tensor | None = None):
    """Attention(Q, K, V) = softmax(Q K^T / sqrt(d_k) + M) V, by hand (chapter 6).

    ``q (..., T_q, d_k)``, ``k (..., T_k, d_k)``, ``v (..., T_k, d_v)`` with the same
    leading dimensions (batch, heads, ...). ``mask``: bool, True = may attend, shape
    (T_q, T_k) or (..., T_q, T_k). ``causal=True`` also forbids keys after the query
    (top-left aligned when T_q != T_k, like PyTorch). ``scale`` defaults to 1/sqrt(d_k).
    ``bias`` (float, shape (T_q, T_k) or (..., T_q, T_k)) is added to the scaled scores, as
    ALiBi does (chapter 8). Returns ``(out (..., T_q, d_v), weights (..., T_q, T_k))``; equals
    ``F.scaled_dot_product_attention`` (tested), which returns no weights.
    """
    _check_qkv(q, k, v)
    T_q, d_k, T_k = q.shape[-2], q.shape[-1], k.shape[-2]
    allowed = _allowed(mask, causal, T_q, T_k, tuple(q.shape[:-2]), q.device)
    _check_bias(bias, T_q, T_k, tuple(q.shape[:-2]), q.dtype)
    return _softmax_attention(q, k, v, allowed, bias, _scale(scale, d_k))


def _softmax_attention(q, k, v, allowed, bias, scale: float):
    """The equation on checked arguments: ``(softmax(q k^T * scale + bias, masked) v, the weights)``."""
    scores = q @ k.transpose(-2, -1) * scale  # (..., T_q, T_k)
    if bias is not None:
        scores = scores + bias
    weights = _masked_softmax(scores, allowed)  # (..., T_q, T_k)
    return weights @ v, weights  # (..., T_q, d_v), (..., T_q, T_k)


# ---------------------------------------------------------------- the cache and the common checks of every form
def _prepare(q, k, v, state, causal, mask, bias, scale):
    """Check a form's arguments; return ``(K, V, allowed, scale, T_past)`` with the new keys after the cached ones."""
    for name, x in (("q", q), ("k", k), ("v", v)):
        validate.tensor(name, x, ndim=4, dtype="float")
    if q.shape[2] == 0:
        raise ValueError(f"q must hold at least one query, got shape {tuple(q.shape)}")
    T_past = 0
    if state is not None:
        if not (isinstance(state, (tuple, list)) and len(state) == 2):
            raise TypeError(f"state must be a key/value cache (K_past, V_past) of two tensors, got {type(state).__name__}")
        K_past, V_past = state
        validate.tensor("K_past", K_past, ndim=4, dtype="float")
        validate.tensor("V_past", V_past, ndim=4, dtype="float")
        if K_past.shape[:2] != k.shape[:2] or K_past.shape[3] != k.shape[3] or V_past.shape[:3] != K_past.shape[:3] \
                or V_past.shape[3] != v.shape[3]:
            raise ValueError(f"new keys {tuple(k.shape)} and values {tuple(v.shape)} do not fit the cache (K_past, V_past) "
                             f"of shapes {tuple(K_past.shape)} and {tuple(V_past.shape)} (B, H, T_past, d): the same "
                             f"batch size B, heads H and widths d for the whole sequence")
        if K_past.dtype != k.dtype or V_past.dtype != v.dtype:
            raise TypeError(f"the cache must have the dtype of k and v, {k.dtype}, got {K_past.dtype} and {V_past.dtype}")
        T_past = K_past.shape[2]
        k, v = torch.cat([K_past, k], dim=2), torch.cat([V_past, v], dim=2)  # (B, H, T_past + T, d)
    _check_qkv(q, k, v)
    T, T_k, lead = q.shape[2], k.shape[2], tuple(q.shape[:2])
    if causal and state is not None and T_k != T_past + q.shape[2]:
        raise ValueError(f"with a cache, q, k and v are the same new tokens: q has {T}, k {k.shape[2] - T_past}")
    allowed = _allowed(mask, causal, T, T_k, lead, q.device, T_past)
    _check_bias(bias, T, T_k, lead, q.dtype)
    return k, v, allowed, _scale(scale, q.shape[-1]), T_past


def _row(x: torch.Tensor | None, i: int, keys: int) -> torch.Tensor | None:
    """Row i of a (T, T_k) or (B, H, T, T_k) mask or bias, its first ``keys`` columns."""
    return None if x is None else x[..., i, :keys]


# ---------------------------------------------------------------- the forms
def attention_loop(q, k, v, state=None, *, causal: bool = True, mask=None, bias=None, scale=None,
                   need_weights: bool = False):
    """Softmax attention one query at a time, the reference (chapter 6; the cache, chapter 9).

    Query i (position T_past + i) scores the keys it may see, ``K[:T_past + i + 1]`` when
    ``causal``, takes their softmax and averages their values. Signature as the module says.
    """
    K, V, allowed, scale, T_past = _prepare(q, k, v, state, causal, mask, bias, scale)
    B, H, T, T_k = *q.shape[:3], K.shape[2]
    ys, rows = [], []
    for i, q_i in enumerate(q.unbind(2)):  # unbind: one stacked gradient for q, not a full-size one per query
        keys = min(T_past + i + 1, T_k) if causal else T_k  # the keys query i may see
        s = (K[:, :, :keys] @ q_i[..., None])[..., 0] * scale  # (B, H, keys): q_i . k_j / sqrt(d)
        if bias is not None:
            s = s + _row(bias, i, keys)
        if mask is not None:
            s = s.masked_fill(~_row(allowed, i, keys), float("-inf"))
        a = torch.softmax(s, dim=-1)  # (B, H, keys)
        ys.append((a[:, :, None] @ V[:, :, :keys])[:, :, 0])  # (B, H, d_v): sum_j a_j v_j
        if need_weights:
            rows.append(F.pad(a, (0, T_k - keys)))  # (B, H, T_k): zero weight on the keys it may not see
    y = torch.stack(ys, dim=2)  # (B, H, T, d_v)
    if need_weights:
        return y, (K, V), torch.stack(rows, dim=2)
    return y, (K, V)


def attention_parallel(q, k, v, state=None, *, causal: bool = True, mask=None, bias=None, scale=None,
                       need_weights: bool = False):
    """Softmax attention for every query at once (chapter 6): ``scaled_dot_product_attention`` with the cache's mask.

    The causal mask of the new tokens against [cached; new] keys is ``tril(T_past)``: every cached
    key is visible, and new key j to new query i when j <= i.
    """
    K, V, allowed, scale, _ = _prepare(q, k, v, state, causal, mask, bias, scale)
    y, weights = _softmax_attention(q, K, V, allowed, bias, scale)  # as scaled_dot_product_attention: (B, H, T, d_v)
    return (y, (K, V), weights) if need_weights else (y, (K, V))


def attention_step(q_t, k_t, v_t, *, state=None, scale=None, bias_t=None):
    """One new token (chapter 9): ``q_t, k_t (B, H, d_k)``, ``v_t (B, H, d_v)`` and the cache ``(K_past, V_past)``.

    Appends k_t, v_t to the cache and attends from q_t to every key in it:
    ``y_t = softmax([K_past; k_t] q_t / sqrt(d_k) + bias_t) [V_past; v_t]``. ``bias_t`` (B, H, T_past + 1)
    or (T_past + 1,) is added to the scores. Returns ``(y_t (B, H, d_v), (K, V))``: O(T_past) work, no mask.
    """
    for name, x in (("q_t", q_t), ("k_t", k_t), ("v_t", v_t)):
        validate.tensor(name, x, ndim=3, dtype="float")
    K, V, _, scale, _ = _prepare(q_t[:, :, None], k_t[:, :, None], v_t[:, :, None], state, True, None, None, scale)
    s = (K @ q_t[..., None])[..., 0] * scale  # (B, H, T_past + 1)
    if bias_t is not None:
        s = s + bias_t
    a = torch.softmax(s, dim=-1)  # (B, H, T_past + 1)
    return (a[:, :, None] @ V)[:, :, 0], (K, V)  # (B, H, d_v)


def attention_stream(q, k, v, state=None, *, causal: bool = True, mask=None, bias=None, scale=None,
                    need_weights: bool = False):
    """Softmax attention token by token with ``attention_step`` (chapter 9): what cached generation computes.

    Causal only (a token cannot see keys that have not arrived) and without ``mask``; ``bias`` is
    sliced row by row. It keeps no weights: with ``need_weights`` the third value is None.
    """
    if causal is not True:
        raise ValueError(f"the step form is causal only (a token cannot see later keys), got causal={causal!r}")
    if mask is not None:
        raise ValueError("the step form takes no mask (it is causal by construction); use the parallel form")
    _, _, _, _, T_past = _prepare(q, k, v, state, causal, None, bias, scale)
    if k.shape[2] != q.shape[2]:
        raise ValueError(f"the step form reads one new key per new query: q has {q.shape[2]} positions, "
                         f"k {k.shape[2]} (cross-attention needs the parallel, loop or fused form)")
    ys = []
    for t, (q_t, k_t, v_t) in enumerate(zip(q.unbind(2), k.unbind(2), v.unbind(2))):
        bias_t = _row(bias, t, T_past + t + 1)
        y_t, state = attention_step(q_t, k_t, v_t, state=state, scale=scale, bias_t=bias_t)
        ys.append(y_t)
    y = torch.stack(ys, dim=2)  # (B, H, T, d_v)
    return (y, state, None) if need_weights else (y, state)


def attention_fused(q, k, v, state=None, *, causal: bool = True, mask=None, bias=None, scale=None,
                    need_weights: bool = False):
    """Softmax attention by PyTorch's ``F.scaled_dot_product_attention`` (chapter 6), with the cache's mask.

    Without a cache, a mask or a bias it passes ``is_causal=True`` (so flash kernels apply); otherwise a
    bool mask, or a float one carrying both the bias and the -inf of forbidden keys. No weights
    (the third value is None with ``need_weights``).
    """
    K, V, allowed, scale, T_past = _prepare(q, k, v, state, causal, mask, bias, scale)
    if causal and T_past == 0 and mask is None and bias is None:  # is_causal's mask is aligned at the top left, as ours
        y = F.scaled_dot_product_attention(q, K, V, is_causal=True, scale=scale)  # no (T, T) mask to build
    else:
        attn_mask = allowed
        if bias is not None:
            attn_mask = bias if allowed is None else bias.masked_fill(~allowed, float("-inf"))
        y = F.scaled_dot_product_attention(q, K, V, attn_mask=attn_mask, scale=scale)  # (B, H, T, d_v)
    return (y, (K, V), None) if need_weights else (y, (K, V))


#: ``FORMS[form]``: the function a module's ``form=`` names.
FORMS = {"loop": attention_loop, "parallel": attention_parallel, "stream": attention_stream, "fused": attention_fused}


# ---------------------------------------------------------------- registration with the equivalence harness
def _make(case: Case, g: torch.Generator) -> Problem:
    """q, k (B, n_h, T, D) and v (B, n_h, T, H) with n_h = layers + 1 heads; a cache of ``chunk`` tokens with a state.

    Cases with several layers also add a random score bias (B, n_h, T, T_past + T), ALiBi's slot.
    """
    n_h, B, T = case.layers + 1, case.B, case.T
    rand = lambda *shape: torch.randn(*shape, generator=g, dtype=case.dtype)  # noqa: E731
    inputs = {"q": rand(B, n_h, T, case.D), "k": rand(B, n_h, T, case.D), "v": rand(B, n_h, T, case.H)}
    T_past = case.chunk if case.with_state else 0
    state = (rand(B, n_h, T_past, case.D), rand(B, n_h, T_past, case.H)) if case.with_state else None
    if case.layers > 1:
        inputs["bias"] = rand(B, n_h, T, T_past + T)
    return Problem(inputs=inputs, params={}, state=state)


register_family(Family(name="softmax_attention", chapter=6, forms=FORMS, make=_make))
