"""Attention: additive and dot-product (chapter 5), scaled dot-product and multi-head (chapter 6).

Glossary, code name -> book notation:

    q, k, v        queries Q (..., T_q, d_k), keys K (..., T_k, d_k), values V (..., T_k, d_v)
    scores         QK^T / sqrt(d_k) + M, shape (..., T_q, T_k)
    weights        attention weights A = softmax(scores) (rows sum to 1), shape (..., T_q, T_k)
    mask           M as a bool tensor: True = "may attend" (M = 0), False = "may not" (M = -inf);
                   PyTorch's convention for the bool ``attn_mask`` of ``F.scaled_dot_product_attention``
    s              a decoder state s (B, d_query), or several (B, T_q, d_query), that asks the question
    h              encoder states h_1..h_T, shape (B, T, d_key): the keys and the values at once
    c              context vector c = sum_j a_j h_j, shape (B, d_key)
    W_s, W_h, v    additive (Bahdanau) attention: score(s, h_j) = v^T tanh(W_s s + W_h h_j)
    W              dot-product (Luong) attention, "general": score(s, h_j) = s^T W h_j
    W_q, W_k, W_v  multi-head projections (``nn.Linear``): Q = query W_q^T + b_q, etc.
    W_o            the output projection applied to the concatenated heads
    B, H, d_head   batch size, number of heads, width per head d_model / H

The equation of chapter 6, written out by hand in ``scaled_dot_product_attention``:

    Attention(Q, K, V) = softmax(Q K^T / sqrt(d_k) + M) V

The function itself, and the other forms of softmax attention (a loop over
queries, one token at a time with a cache, PyTorch's fused kernel) live in
``seqlab.ops.attention``. ``MultiHeadAttention`` runs it on H heads of width
d_model / H side by side and equals ``nn.MultiheadAttention`` (``from_torch``
copies one; tested); its ``form=`` names the form: ``"parallel"`` (the equation
above, the default), ``"loop"``, ``"stream"`` or ``"fused"`` (PyTorch's
``F.scaled_dot_product_attention``: the same numbers, tested; no weights).

Masks are strict: a mask has exactly the shape (T_q, T_k), shared by every
batch and head, or exactly the full shape (..., T_q, T_k); nothing else is
broadcast. A query that may attend to no key would divide by zero in the softmax
(NaN), so it is an error rather than a silent NaN.
"""
from __future__ import annotations

import math

import torch
from torch import nn

from .. import _validate as validate
from ..ops import attention as attention_ops
from .forms import HasForms
from ..ops.attention import _masked_softmax, causal_mask, scaled_dot_product_attention  # noqa: F401 (re-exported: chapter 6's names)


# ---------------------------------------------------------------- masks
def padding_mask(lengths, T: int | None = None) -> torch.Tensor:
    """The (B, T) bool mask of padded batches (chapter 5): True at t < lengths[b], the real tokens.

    ``lengths`` is a 1-D integer tensor or a list of ints, each in [1, T]; ``T``
    defaults to the longest length. For attention from T_q queries, use
    ``padding_mask(lengths, T_k)[:, None, :].expand(B, T_q, T_k)``.
    """
    if isinstance(lengths, (list, tuple)):
        lengths = torch.tensor(lengths, dtype=torch.long)
    validate.tensor("lengths", lengths, ndim=1, dtype="long")
    if len(lengths) == 0:
        raise ValueError("lengths must hold at least one length, got an empty tensor")
    T = int(lengths.max()) if T is None else validate.positive_int("T", T)
    if lengths.min() < 1 or lengths.max() > T:
        raise ValueError(f"lengths must lie in [1, T={T}], got values in [{lengths.min().item()}, {lengths.max().item()}]")
    return torch.arange(T, device=lengths.device) < lengths[:, None]  # (B, T)


# ---------------------------------------------------------------- attention for an encoder-decoder (chapter 5)
def _check_query_memory(s, h, d_query: int, d_key: int, mask, dtype=None) -> tuple[torch.Tensor, torch.Tensor | None]:
    """``s`` (B, d_query) or (B, T_q, d_query), ``h`` (B, T, d_key), ``mask`` (B, T) bool; ``s`` as 3-D.

    ``s`` and ``h`` share one dtype, the parameters' ``dtype`` if given.
    """
    validate.tensor("s", s, ndim=(2, 3), dtype="float", last_dim=d_query)
    validate.tensor("h", h, ndim=3, dtype="float", last_dim=d_key)
    if s.dtype != h.dtype or dtype not in (None, s.dtype):
        want = f"the parameters' dtype {dtype}" if dtype is not None else "one dtype"
        raise TypeError(f"s and h must have {want}, got {s.dtype} and {h.dtype}")
    B, T = h.shape[:2]
    if s.shape[0] != B:
        raise ValueError(f"s and h must have the same batch size, got shapes {tuple(s.shape)} and {tuple(h.shape)}")
    if T == 0:
        raise ValueError(f"h must hold at least one state, got shape {tuple(h.shape)}")
    s3 = s[:, None] if s.dim() == 2 else s  # (B, T_q, d_query)
    if mask is None:
        return s3, None
    _check_padding_mask(mask, B, T)
    return s3, mask[:, None, :]  # (B, 1, T): the same mask for every query


def _check_padding_mask(mask, B: int, T: int, name: str = "mask", dims: str = "(B, T)") -> None:
    """``mask`` is a ``dims`` = (B, T) bool tensor (True = real position) with a True in every row (chapter 5)."""
    if not isinstance(mask, torch.Tensor) or mask.dtype != torch.bool:
        raise TypeError(f"{name} must be a bool tensor (True = real position), got "
                        f"{mask.dtype if isinstance(mask, torch.Tensor) else type(mask).__name__}")
    if tuple(mask.shape) != (B, T):
        raise ValueError(f"{name} must have shape {dims} = {(B, T)}, got shape {tuple(mask.shape)}")
    empty = ~mask.any(dim=1)
    if empty.any():
        raise ValueError(f"{name} row {empty.nonzero()[0].item()} allows no position (all False); "
                         f"the softmax of nothing is NaN")


def _attend(scores: torch.Tensor, h: torch.Tensor, allowed, single: bool):
    """Weights a = softmax(scores) (B, T_q, T) and contexts c = a h (B, T_q, d_key); T_q dropped if ``single``."""
    a = _masked_softmax(scores, allowed)  # (B, T_q, T)
    c = a @ h  # (B, T_q, d_key)
    return (c[:, 0], a[:, 0]) if single else (c, a)


def additive_attention(s: torch.Tensor, h: torch.Tensor, W_s: torch.Tensor, W_h: torch.Tensor, v: torch.Tensor,
                       mask: torch.Tensor | None = None):
    """Bahdanau's additive attention (chapter 5): ``score(s, h_j) = v^T tanh(W_s s + W_h h_j)``.

    ``s (B, d_query)`` or ``(B, T_q, d_query)``, ``h (B, T, d_key)``, ``W_s (d_hidden, d_query)``,
    ``W_h (d_hidden, d_key)``, ``v (d_hidden,)``, ``mask (B, T)`` bool (True = real position).
    Returns ``(c, a)``: contexts ``c = sum_j a_j h_j`` (B, d_key) and weights ``a = softmax(score)``
    (B, T), or (B, T_q, d_key) and (B, T_q, T) for several queries.
    """
    validate.tensor("v", v, ndim=1, dtype="float")
    validate.tensor("W_s", W_s, ndim=2, dtype="float")
    validate.tensor("W_h", W_h, ndim=2, dtype="float")
    if not W_s.shape[0] == W_h.shape[0] == v.shape[0]:
        raise ValueError(f"W_s, W_h and v must share d_hidden (W_s's and W_h's rows, v's length), got shapes "
                         f"{tuple(W_s.shape)}, {tuple(W_h.shape)} and {tuple(v.shape)}")
    s3, allowed = _check_query_memory(s, h, W_s.shape[1], W_h.shape[1], mask, W_s.dtype)
    features = torch.tanh((s3 @ W_s.T)[:, :, None] + (h @ W_h.T)[:, None])  # (B, T_q, T, d_hidden)
    return _attend(features @ v, h, allowed, s.dim() == 2)  # scores (B, T_q, T)


class AdditiveAttention(nn.Module):
    """Additive attention (Bahdanau et al., 2015; chapter 5): ``score(s, h_j) = v^T tanh(W_s s + W_h h_j)``.

    ``forward(s (B, d_query) or (B, T_q, d_query), h (B, T, d_key), mask (B, T) or None)
    -> (context (B, d_key), weights (B, T))`` (with a T_q dimension for several queries).
    """

    def __init__(self, d_query: int, d_key: int, d_hidden: int):
        super().__init__()
        self.d_query = validate.positive_int("d_query", d_query)
        self.d_key = validate.positive_int("d_key", d_key)
        self.d_hidden = validate.positive_int("d_hidden", d_hidden)
        self.W_s = nn.Parameter(torch.empty(d_hidden, d_query))
        self.W_h = nn.Parameter(torch.empty(d_hidden, d_key))
        self.v = nn.Parameter(torch.empty(d_hidden))
        self.reset_parameters()

    def reset_parameters(self) -> None:
        """Like ``nn.Linear``: each matrix uniform in [-1/sqrt(fan_in), 1/sqrt(fan_in)]."""
        for p in (self.W_s, self.W_h, self.v):
            bound = 1.0 / math.sqrt(p.shape[-1] if p.dim() == 2 else self.d_hidden)
            nn.init.uniform_(p, -bound, bound)

    def forward(self, s: torch.Tensor, h: torch.Tensor, mask: torch.Tensor | None = None):
        return additive_attention(s, h, self.W_s, self.W_h, self.v, mask)

    def extra_repr(self) -> str:
        return f"d_query={self.d_query}, d_key={self.d_key}, d_hidden={self.d_hidden}"


class DotProductAttention(nn.Module):
    """Multiplicative attention (Luong et al., 2015; chapter 5): ``score(s, h_j) = s^T W h_j`` or ``s^T h_j``.

    ``kind="general"`` learns ``W`` (d_query, d_key); ``kind="dot"`` has no parameters and
    needs d_query == d_key. No 1/sqrt(d) scaling: that comes in chapter 6. Same interface
    as ``AdditiveAttention``.
    """

    def __init__(self, d_query: int, d_key: int, kind: str = "general"):
        super().__init__()
        self.d_query = validate.positive_int("d_query", d_query)
        self.d_key = validate.positive_int("d_key", d_key)
        if kind not in ("general", "dot"):
            raise ValueError(f"kind must be 'general' or 'dot', got {kind!r}")
        if kind == "dot" and d_query != d_key:
            raise ValueError(f"kind='dot' needs d_query == d_key, got d_query={d_query} and d_key={d_key}")
        self.kind = kind
        self.W = nn.Parameter(torch.empty(d_query, d_key)) if kind == "general" else None
        if self.W is not None:
            bound = 1.0 / math.sqrt(d_key)
            nn.init.uniform_(self.W, -bound, bound)

    def forward(self, s: torch.Tensor, h: torch.Tensor, mask: torch.Tensor | None = None):
        dtype = None if self.W is None else self.W.dtype
        s3, allowed = _check_query_memory(s, h, self.d_query, self.d_key, mask, dtype)
        keys = h if self.W is None else h @ self.W.T  # (B, T, d_query): W h_j
        scores = s3 @ keys.transpose(1, 2)  # (B, T_q, T)
        return _attend(scores, h, allowed, s.dim() == 2)

    def extra_repr(self) -> str:
        return f"d_query={self.d_query}, d_key={self.d_key}, kind={self.kind!r}"


# ---------------------------------------------------------------- multi-head attention (chapter 6)
def _check_form(form) -> str:
    """``form`` names a form of ``seqlab.ops.attention``."""
    if form not in attention_ops.FORMS:
        raise ValueError(f"form must be one of {', '.join(map(repr, attention_ops.FORMS))}, got {form!r}")
    return form


class MultiHeadAttention(HasForms, nn.Module):
    """Multi-head attention (Vaswani et al., 2017; chapter 6).

    ``head_i = Attention(Q W_q^i, K W_k^i, V W_v^i)``, ``MultiHead(Q, K, V) = [head_1; ..; head_H] W_o``,
    with separate projections ``W_q, W_k, W_v, W_o`` (``nn.Linear(d_model, d_model)``) whose rows
    are split into H heads of width d_head = d_model / H.

    ``forward(query (B, T_q, d), key (B, T_k, d), value (B, T_k, d), mask=None, causal=False, form=None)
    -> (out (B, T_q, d), weights (B, H, T_q, T_k))``. ``mask`` is bool, True = may attend, shape
    (T_q, T_k) or (B, T_q, T_k). ``form`` (default ``self.form``, ``"parallel"``) names the form of
    ``seqlab.ops.attention``: ``"parallel"`` or ``"loop"`` (with weights), ``"fused"``
    (``F.scaled_dot_product_attention``) or ``"stream"`` (causal only), which return ``None`` for the
    weights. ``from_torch`` copies an ``nn.MultiheadAttention`` (mind its opposite bool-mask
    convention: there True means *not* allowed).
    """

    forms = tuple(attention_ops.FORMS)  # the forms this layer accepts (a windowed SelfAttention has fewer)

    def __init__(self, d_model: int, n_heads: int, bias: bool = True, form: str = "parallel"):
        super().__init__()
        self._form = _check_form(form)
        self.d_model = validate.positive_int("d_model", d_model)
        self.n_heads = validate.positive_int("n_heads", n_heads)
        if d_model % n_heads:
            raise ValueError(f"d_model must be divisible by n_heads, got d_model={d_model} and n_heads={n_heads}")
        self.d_head = d_model // n_heads
        self.W_q, self.W_k, self.W_v, self.W_o = (nn.Linear(d_model, d_model, bias=bias) for _ in range(4))

    def _split(self, x: torch.Tensor) -> torch.Tensor:
        B, T, _ = x.shape
        return x.view(B, T, self.n_heads, self.d_head).transpose(1, 2)  # (B, H, T, d_head)

    def forward(self, query: torch.Tensor, key: torch.Tensor, value: torch.Tensor, mask: torch.Tensor | None = None,
                causal: bool = False, form: str | None = None):
        form_fn = attention_ops.FORMS[_check_form(self.form if form is None else form)]
        d, dtype = self.d_model, self.W_q.weight.dtype
        for name, x in (("query", query), ("key", key), ("value", value)):
            validate.tensor(name, x, ndim=3, dtype="float", last_dim=d)
            if x.dtype != dtype:
                raise TypeError(f"{name} must have the parameters' dtype {dtype}, got dtype {x.dtype}")
        if not query.shape[0] == key.shape[0] == value.shape[0] or key.shape[1] != value.shape[1]:
            raise ValueError(f"query, key and value must be (B, T_q, d), (B, T_k, d), (B, T_k, d), got shapes "
                             f"{tuple(query.shape)}, {tuple(key.shape)} and {tuple(value.shape)}")
        (B, T_q, _), T_k, H = query.shape, key.shape[1], self.n_heads
        if mask is not None and isinstance(mask, torch.Tensor) and tuple(mask.shape) == (B, T_q, T_k):
            mask = mask[:, None].expand(B, H, T_q, T_k)  # the same mask for every head
        elif mask is not None and isinstance(mask, torch.Tensor) and tuple(mask.shape) != (T_q, T_k):
            raise ValueError(f"mask must have shape (T_q, T_k) = {(T_q, T_k)} or (B, T_q, T_k) = {(B, T_q, T_k)}, "
                             f"got shape {tuple(mask.shape)}")
        q, k, v = self._split(self.W_q(query)), self._split(self.W_k(key)), self._split(self.W_v(value))  # (B, H, T, d_head)
        out, _, weights = form_fn(q, k, v, causal=causal, mask=mask, need_weights=True)  # (B, H, T_q, d_head)
        out = out.transpose(1, 2).reshape(B, T_q, d)  # (B, T_q, d): the heads concatenated
        return self.W_o(out), weights  # (B, T_q, d), (B, H, T_q, T_k)

    @classmethod
    def from_torch(cls, mha: nn.MultiheadAttention) -> "MultiHeadAttention":
        """A copy of ``mha`` (weights, dtype, device): ``in_proj_weight = [W_q; W_k; W_v]`` (3d, d), ``out_proj = W_o``.

        Our module is batch first whatever ``mha.batch_first`` says (the weights do not depend on it).
        """
        if type(mha) is not nn.MultiheadAttention:
            raise TypeError(f"{cls.__name__}.from_torch expects a torch.nn.MultiheadAttention, got {type(mha).__name__}")
        unsupported = {"kdim/vdim != embed_dim": not mha._qkv_same_embed_dim, "add_bias_kv": mha.bias_k is not None,
                       "add_zero_attn": mha.add_zero_attn, "dropout": mha.dropout}
        used = [k for k, v in unsupported.items() if v]
        if used:
            raise ValueError(f"{cls.__name__}.from_torch supports equal q/k/v widths, no bias_kv, no zero attention "
                             f"and no dropout; the module uses {', '.join(used)}")
        d, bias = mha.embed_dim, mha.in_proj_bias is not None
        new = cls(d, mha.num_heads, bias=bias).to(mha.in_proj_weight)
        with torch.no_grad():
            for i, W in enumerate((new.W_q, new.W_k, new.W_v)):
                W.weight.copy_(mha.in_proj_weight[i * d : (i + 1) * d])
                if bias:
                    W.bias.copy_(mha.in_proj_bias[i * d : (i + 1) * d])
            new.W_o.weight.copy_(mha.out_proj.weight)
            if bias:
                new.W_o.bias.copy_(mha.out_proj.bias)
        return new

    def extra_repr(self) -> str:
        return f"d_model={self.d_model}, n_heads={self.n_heads}, d_head={self.d_head}, form={self.form!r}"
