"""The Transformer block and a decoder-only character language model (chapter 7), with a key/value cache (chapter 9).

Glossary, code name -> book notation:

    x              the residual stream, shape (B, T, d_model): token embeddings plus positions, then each block's sum
    LN             layer normalisation, ``nn.LayerNorm(d_model)``: (x - mean) / sqrt(var + eps) * gamma + beta
    attn           multi-head self-attention (chapter 6), here with optional RoPE / ALiBi (chapter 8) and a cache
    FFN            the position-wise feed-forward network, FFN(x) = W_2 phi(W_1 x + b_1) + b_2, d_ff = 4 d_model
    norm_first     True: Pre-Norm,  x <- x + attn(LN_1(x));  x <- x + FFN(LN_2(x))
                   False: Post-Norm, x <- LN_1(x + attn(x)); x <- LN_2(x + FFN(x))   (Vaswani et al., 2017)
    cache          the keys and values of every earlier position, per layer: K, V (B, H, T_past, d_head)
    offset         the position of the first new token, i.e. how many tokens the cache already holds
    B, T, H, V, L  batch, sequence length, heads, vocabulary size, number of blocks

Pre-Norm keeps an identity path from the embeddings to the output, so gradients
reach the bottom blocks undiminished; Post-Norm normalises *after* each residual
sum, which rescales the gradient at every block; Xiong et al. (2020) give this as the
reason the original Transformer needed a learning-rate warm-up (chapter 7 discusses this
and a second account, which its runs do not choose between).

``TransformerBlock`` with ``activation="relu"`` equals ``nn.TransformerEncoderLayer``
for either norm placement (``from_torch`` copies one; outputs and gradients tested).
``GPT`` stacks causal blocks behind an embedding and a positional scheme and reads
the next token off a linear head. ``generate`` with the cache runs each new token
through the network once, attending to stored keys and values; without it the
whole context is recomputed for every token. Both give the same tokens (tested).
"""
from __future__ import annotations

import math
from dataclasses import dataclass

import torch
import torch.nn.functional as F
from torch import nn

from .. import _validate as validate
from ..ops import attention as attention_ops
from .attention import MultiHeadAttention, _check_form
from .mixer import Mixer, Spec
from .positional import ENCODINGS, LearnedPositions, SinusoidalPositions, alibi_bias, apply_rope
from .sampling import check_temperature, sample_next

ACTIVATIONS = {"relu": F.relu, "gelu": F.gelu}


# ---------------------------------------------------------------- the key/value cache
class LayerCache:
    """The keys and values one attention layer has seen so far: K, V of shape (B, H, T_past, d_head); chapter 9."""

    def __init__(self):
        self.k: torch.Tensor | None = None
        self.v: torch.Tensor | None = None

    @property
    def length(self) -> int:
        return 0 if self.k is None else self.k.shape[2]

    def append(self, k: torch.Tensor, v: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """Store the new keys/values (B, H, T_new, d_head) after the old ones; return all of them."""
        validate.tensor("k", k, ndim=4)
        validate.tensor("v", v, ndim=4)
        if k.shape[:3] != v.shape[:3]:
            raise ValueError(f"k and v must have the same (B, H, T_new), one value per key, got shapes "
                             f"{tuple(k.shape)} and {tuple(v.shape)}")
        if self.k is not None and (k.shape[:2] != self.k.shape[:2] or k.shape[3] != self.k.shape[3]):
            raise ValueError(f"the cache holds keys of shape {tuple(self.k.shape)} (B, H, T, d_head); new keys of "
                             f"shape {tuple(k.shape)} do not fit (same batch size B for the whole generation)")
        self.k = k if self.k is None else torch.cat([self.k, k], dim=2)  # (B, H, T_past + T_new, d_head)
        self.v = v if self.v is None else torch.cat([self.v, v], dim=2)
        return self.k, self.v


class KVCache:
    """One ``LayerCache`` per block (chapter 9). ``length`` tokens are stored; ``nbytes`` is its memory."""

    def __init__(self, n_layers: int):
        self.layers = [LayerCache() for _ in range(validate.positive_int("n_layers", n_layers))]

    @property
    def length(self) -> int:
        return self.layers[0].length

    def nbytes(self) -> int:
        """Bytes held by the stored keys and values: 2 L B H T d_head x the element size."""
        return sum(t.numel() * t.element_size() for c in self.layers for t in (c.k, c.v) if t is not None)

    def crop(self, length: int) -> None:
        """Forget every position from ``length`` on (to time a step at a fixed context length)."""
        validate.positive_int("length", length, minimum=0)
        if length > self.length:
            raise ValueError(f"cannot crop a cache of length {self.length} to {length}")
        for c in self.layers:
            c.k, c.v = (None, None) if length == 0 else (c.k[:, :, :length], c.v[:, :, :length])

    def __repr__(self) -> str:
        return f"KVCache(layers={len(self.layers)}, length={self.length}, nbytes={self.nbytes()})"


# ---------------------------------------------------------------- the parts of a block
class SelfAttention(MultiHeadAttention, Mixer):
    """Multi-head self-attention (chapter 6) with RoPE or ALiBi (chapter 8), a key/value cache (chapter 9)
    and an optional sliding window (chapter 14): the one self-attention layer of the package, a ``Mixer``.

    ``forward(x (B, T, d), state=None, *, mask=None, causal=None, cache=None, form=None) -> (out (B, T, d), state)``.
    ``causal`` defaults to the constructor's. Without a window the state is the key/value cache
    ``(K, V)``, each (B, H, T_past, d_head), as ``seqlab.ops.attention`` returns it: the T new tokens
    sit at positions ``T_past .. T_past+T-1``, attend to every cached key and (``causal``) to new keys
    up to their own position. A ``LayerCache`` (``cache=``, chapter 9's ``GPT``) holds the same
    tensors. With ``window`` = W, query t sees the keys at t − W + 1 .. t,

        y_t = Σ_{s = max(0, t−W+1)}^{t} softmax_s(q_t·k_s/√d_head) v_s,

    full attention with a *band* mask, and the state is a ring buffer of W slots ``(K, V, t)``, each
    (B, H, W, d_head), position p in slot p mod W: a constant size however long the context. ``step``
    writes k_t, v_t into slot t mod W and attends over the filled slots. ``form`` (``form``) names
    the form of ``seqlab.ops.attention``; the weights of the last call (None for the fused and stream
    forms) are kept in ``last_weights``. ``mask`` (bool, True = may attend, (T, T)) is for use
    without a state.
    """

    family = "softmax_attention"

    def __init__(self, d_model: int, n_heads: int, rope: bool = False, alibi: bool = False, bias: bool = True,
                 form: str = "parallel", *, window: int | None = None, causal: bool = False):
        super().__init__(d_model, n_heads, bias=bias, form=form)
        if rope and alibi:
            raise ValueError("choose one relative scheme: rope=True or alibi=True, not both")
        if rope and self.d_head % 2:
            raise ValueError(f"RoPE rotates pairs, so d_head = d_model / n_heads must be even, got {self.d_head}")
        if not isinstance(causal, bool):
            raise TypeError(f"causal must be a bool, got {type(causal).__name__} {causal!r}")
        if window is not None:
            validate.positive_int("window", window)
            if not causal or alibi:
                raise ValueError(f"a sliding window is causal attention without ALiBi, got causal={causal}, alibi={alibi}")
        self.rope, self.alibi, self.window, self.causal = bool(rope), bool(alibi), window, causal
        self.form = form  # a window rules out the stream form
        self.last_weights: torch.Tensor | None = None

    @property
    def forms(self) -> tuple[str, ...]:
        forms = tuple(attention_ops.FORMS)
        return forms if self.window is None else tuple(f for f in forms if f != "stream")


    def state_spec(self, B: int, dtype: torch.dtype):
        kv = Spec((B, self.n_heads, self.window, self.d_head), dtype)  # window None: the cache grows (any T)
        return (kv, kv) if self.window is None else (kv, kv, int)

    def _check_x(self, x, ndim):
        validate.tensor("x" if ndim == 3 else "x_t", x, ndim=ndim, dtype="float", last_dim=self.d_model)
        if x.dtype != self.W_q.weight.dtype:
            raise TypeError(f"x must have the parameters' dtype {self.W_q.weight.dtype}, got dtype {x.dtype}")

    def _qkv(self, x, offset):
        q, k, v = self._split(self.W_q(x)), self._split(self.W_k(x)), self._split(self.W_v(x))  # (B, H, T, d_head)
        if self.rope:  # rotate queries and keys by their absolute positions
            q, k = apply_rope(q, offset), apply_rope(k, offset)
        return q, k, v

    def _out(self, out, weights):
        self.last_weights = None if weights is None else weights.detach()
        B, _, T, _ = out.shape
        return self.W_o(out.transpose(1, 2).reshape(B, T, self.d_model))  # (B, T, d): heads concatenated

    def forward(self, x: torch.Tensor, state=None, *, mask: torch.Tensor | None = None, causal: bool | None = None,
                cache: LayerCache | None = None, form: str | None = None):
        form_fn = attention_ops.FORMS[_check_form(self.form if form is None else form)]
        self._check_x(x, 3)
        causal = self.causal if causal is None else causal
        if cache is not None and not isinstance(cache, LayerCache):
            raise TypeError(f"cache must be a LayerCache (one layer of a KVCache), got {type(cache).__name__}")
        if cache is not None and state is not None:
            raise ValueError("pass the keys and values as state or as cache, not both")
        if (cache is not None or state is not None) and mask is not None:
            raise ValueError("mask is not supported together with a state or cache; use causal=True")
        if not isinstance(causal, bool):
            raise TypeError(f"causal must be a bool, got {type(causal).__name__} {causal!r}")
        self.check_state(state, x.shape[0], x.dtype)
        if self.window is not None:
            return self._forward_window(x, state, form_fn)
        B, T, H = x.shape[0], x.shape[1], self.n_heads
        if cache is not None and cache.length:
            state = (cache.k, cache.v)  # (B, H, offset, d_head) each
        offset = 0 if state is None else state[0].shape[2]
        q, k, v = self._qkv(x, offset)
        if mask is not None and (not isinstance(mask, torch.Tensor) or tuple(mask.shape) != (T, T)):
            got = tuple(mask.shape) if isinstance(mask, torch.Tensor) else type(mask).__name__
            raise ValueError(f"mask must be a bool tensor of shape (T, T) = {(T, T)}, got {got}")
        bias = None
        if self.alibi:  # -s_h (m - n): (H, T, T_k) -> (B, H, T, T_k)
            bias = alibi_bias(T, offset + T, H, offset, x.dtype, x.device)[None].expand(B, H, T, offset + T)
        out, state, weights = form_fn(q, k, v, state, causal=causal, mask=mask, bias=bias, need_weights=True)
        if cache is not None:
            cache.k, cache.v = state  # (B, H, offset + T, d_head): the keys and values of every token so far
        return self._out(out, weights), state

    # ------------------------------------------------ the sliding window (chapter 14)
    def band_mask(self, T_q: int, T_k: int, offset: int, device=None) -> torch.Tensor:
        """(T_q, T_k) bool: query at position offset + i may see key j (at position offset + T_q − T_k + j)."""
        q_pos = offset + torch.arange(T_q, device=device)[:, None]
        k_pos = offset + T_q - T_k + torch.arange(T_k, device=device)[None, :]
        allowed = k_pos <= q_pos
        if self.window is not None:
            allowed &= q_pos - k_pos < self.window
        return allowed

    def _ring_positions(self, t: int, device=None) -> torch.Tensor:
        """The positions still in the ring after t tokens, oldest first (at most W)."""
        return torch.arange(max(0, t - self.window), t, device=device)

    def _forward_window(self, x, state, form_fn):
        B, T, _ = x.shape
        W = self.window
        t0 = 0 if state is None else state[2]
        q, k, v = self._qkv(x, t0)
        if state is not None:
            slots = self._ring_positions(t0, x.device) % W
            k = torch.cat([state[0][:, :, slots], k], dim=2)  # (B, H, n_past + T, dh), oldest first
            v = torch.cat([state[1][:, :, slots], v], dim=2)
        allowed = self.band_mask(T, k.shape[2], t0, x.device)
        out, _, weights = form_fn(q, k, v, None, causal=False, mask=allowed, need_weights=True)  # (B, H, T, dh)
        t = t0 + T
        keep = min(W, k.shape[2])  # write the last W keys into their ring slots
        slots = self._ring_positions(t, x.device)[-keep:] % W
        K = k.new_zeros(B, self.n_heads, W, self.d_head).index_copy(2, slots, k[:, :, -keep:])
        V = v.new_zeros(B, self.n_heads, W, self.d_head).index_copy(2, slots, v[:, :, -keep:])
        return self._out(out, weights), (K, V, t)

    def step(self, x_t: torch.Tensor, state=None):
        """One token ``x_t`` (B, d) -> (y_t (B, d), state); with a window, the ring-buffer streaming form."""
        self._check_x(x_t, 2)
        if self.window is None:
            return Mixer.step(self, x_t, state)
        self.check_state(state, x_t.shape[0], x_t.dtype)
        B, W = x_t.shape[0], self.window
        t = 0 if state is None else state[2]
        q, k, v = self._qkv(x_t[:, None], t)  # (B, H, 1, dh)
        K = k.new_zeros(B, self.n_heads, W, self.d_head) if state is None else state[0]
        V = v.new_zeros(B, self.n_heads, W, self.d_head) if state is None else state[1]
        slot = torch.tensor([t % W], device=x_t.device)
        K, V = K.index_copy(2, slot, k), V.index_copy(2, slot, v)  # overwrite position t − W
        allowed = (torch.arange(W, device=x_t.device) < min(t + 1, W))[None, :]  # (1, W): the filled slots
        out, _, weights = attention_ops.FORMS[self.form](q, K, V, None, causal=False, mask=allowed, need_weights=True)
        return self._out(out, weights)[:, 0], (K, V, t + 1)

    def extra_repr(self) -> str:
        return (super().extra_repr() + (", rope=True" if self.rope else "") + (", alibi=True" if self.alibi else "")
                + (f", window={self.window}" if self.window is not None else "") + (", causal=True" if self.causal else ""))


class FeedForward(nn.Module):
    """The position-wise feed-forward network (chapter 7): ``FFN(x) = W_2 phi(W_1 x + b_1) + b_2``.

    ``linear1`` (d_model -> d_ff) and ``linear2`` (d_ff -> d_model) are named as in
    ``nn.TransformerEncoderLayer``; phi is ReLU (the original) or GELU (GPT).
    """

    def __init__(self, d_model: int, d_ff: int, activation: str = "gelu"):
        super().__init__()
        if activation not in ACTIVATIONS:
            raise ValueError(f"activation must be one of {', '.join(map(repr, ACTIVATIONS))}, got {activation!r}")
        self.activation = activation
        self.linear1 = nn.Linear(validate.positive_int("d_model", d_model), validate.positive_int("d_ff", d_ff))
        self.linear2 = nn.Linear(d_ff, d_model)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.linear2(ACTIVATIONS[self.activation](self.linear1(x)))  # (B, T, d_ff) -> (B, T, d)

    def extra_repr(self) -> str:
        return f"activation={self.activation!r}"


class TransformerBlock(nn.Module):
    """One Transformer block (chapter 7): self-attention and a feed-forward network, each with a residual and LayerNorm.

    Pre-Norm (``norm_first=True``)::

        x = x + attn(LN_1(x))
        x = x + FFN(LN_2(x))

    Post-Norm (``norm_first=False``, the original Transformer)::

        x = LN_1(x + attn(x))
        x = LN_2(x + FFN(x))

    ``forward(x (B, T, d), mask=None, causal=False, cache=None, form=None) -> (B, T, d)``; ``form``
    names the attention's form (``"parallel"`` by default, ``"fused"``, ``"loop"``, ``"stream"``). The
    attention weights of the last call are kept in ``last_weights`` (None for the fused and step forms).
    """

    def __init__(self, d_model: int, n_heads: int, d_ff: int | None = None, norm_first: bool = True,
                 activation: str = "gelu", rope: bool = False, alibi: bool = False, layer_norm_eps: float = 1e-5,
                 form: str = "parallel"):
        super().__init__()
        if not isinstance(norm_first, bool):
            raise TypeError(f"norm_first must be a bool (True: Pre-Norm, False: Post-Norm), got {type(norm_first).__name__}")
        self.norm_first = norm_first
        self.attn = SelfAttention(d_model, n_heads, rope=rope, alibi=alibi, form=form)
        self.ffn = FeedForward(d_model, 4 * d_model if d_ff is None else d_ff, activation)
        self.norm1 = nn.LayerNorm(d_model, eps=layer_norm_eps)
        self.norm2 = nn.LayerNorm(d_model, eps=layer_norm_eps)
        self.last_weights: torch.Tensor | None = None

    def _attend(self, x, mask, causal, cache, form):
        out, _ = self.attn(x, mask=mask, causal=causal, cache=cache, form=form)
        self.last_weights = self.attn.last_weights
        return out

    def forward(self, x: torch.Tensor, mask: torch.Tensor | None = None, causal: bool = False,
                cache: LayerCache | None = None, form: str | None = None) -> torch.Tensor:
        validate.tensor("x", x, ndim=3, dtype="float", last_dim=self.attn.d_model)
        if x.dtype != self.norm1.weight.dtype:
            raise TypeError(f"x must have the parameters' dtype {self.norm1.weight.dtype}, got dtype {x.dtype}")
        if self.norm_first:  # Pre-Norm: the residual stream itself is never normalised
            x = x + self._attend(self.norm1(x), mask, causal, cache, form)  # (B, T, d)
            return x + self.ffn(self.norm2(x))  # (B, T, d)
        x = self.norm1(x + self._attend(x, mask, causal, cache, form))  # Post-Norm: normalise each sum
        return self.norm2(x + self.ffn(x))  # (B, T, d)

    @classmethod
    def from_torch(cls, layer: nn.TransformerEncoderLayer) -> "TransformerBlock":
        """A copy of ``layer`` (weights, norm placement, activation, eps, dtype); it must have no dropout."""
        if not isinstance(layer, nn.TransformerEncoderLayer):
            raise TypeError(f"{cls.__name__}.from_torch expects a torch.nn.TransformerEncoderLayer, got {type(layer).__name__}")
        if layer.dropout.p or layer.dropout1.p or layer.dropout2.p:
            raise ValueError(f"{cls.__name__}.from_torch needs dropout=0.0 (seqlab's block has no dropout), "
                             f"got p={layer.dropout.p}")
        act = {1: "relu", 2: "gelu"}.get(getattr(layer, "activation_relu_or_gelu", 0))
        new = _build_like_torch(cls, layer, act)
        _copy_weights([(new.attn, layer.self_attn)],
                      [(new.ffn.linear1, layer.linear1), (new.ffn.linear2, layer.linear2),
                       (new.norm1, layer.norm1), (new.norm2, layer.norm2)])
        return new

    def extra_repr(self) -> str:
        return f"norm_first={self.norm_first}"


def _build_like_torch(cls, layer: nn.Module, act: str | None) -> nn.Module:
    """A new ``cls`` with the sizes, norm placement, activation ``act``, eps and dtype of PyTorch's encoder or
    decoder ``layer`` (chapter 7); ``act`` is None when the layer's activation is neither relu nor gelu."""
    if act is None:
        raise ValueError(f"{cls.__name__}.from_torch supports activation relu or gelu, got {layer.activation}")
    if layer.norm1.weight is None or layer.linear1.bias is None:
        raise ValueError(f"{cls.__name__}.from_torch needs bias=True and elementwise LayerNorm affine parameters")
    d, d_ff = layer.linear1.in_features, layer.linear1.out_features
    new = cls(d, layer.self_attn.num_heads, d_ff, layer.norm_first, act, layer_norm_eps=layer.norm1.eps)
    return new.to(layer.linear1.weight)


def _copy_weights(attentions, modules) -> None:
    """Load PyTorch's weights into ours (chapter 7): each ``(ours, nn.MultiheadAttention)`` pair through
    ``MultiHeadAttention.from_torch``'s split of the packed projection, each ``(ours, theirs)`` module pair
    (linear maps, LayerNorms) by its state dict."""
    with torch.no_grad():
        for ours, theirs in attentions:
            copied = MultiHeadAttention.from_torch(theirs)
            for name in ("W_q", "W_k", "W_v", "W_o"):
                getattr(ours, name).load_state_dict(getattr(copied, name).state_dict())
        for ours, theirs in modules:
            ours.load_state_dict(theirs.state_dict())


# ---------------------------------------------------------------- the decoder-only language model
@dataclass
class GPTConfig:
    """Sizes of a ``GPT`` (chapter 7). ``positions``: 'learned', 'sinusoidal', 'rope', 'alibi' or 'none'.

    ``causal=False`` lets every position attend to the whole sequence: the same stack
    as a bidirectional encoder (chapter 8 uses it to show that attention without
    positions cannot tell "ab" from "ba").
    """

    vocab_size: int
    d_model: int = 64
    n_heads: int = 4
    n_layers: int = 2
    d_ff: int | None = None  # 4 * d_model
    max_len: int = 256  # only learned positions are limited to it
    positions: str = "learned"
    norm_first: bool = True
    activation: str = "gelu"
    causal: bool = True  # False: every position sees the whole sequence (an encoder; no generation)
    init_std: float | None = 0.02  # GPT-2's N(0, 0.02) for every weight; None keeps PyTorch's default init

    def __post_init__(self):
        validate.positive_int("vocab_size", self.vocab_size, minimum=2)
        for name in ("d_model", "n_heads", "n_layers", "max_len"):
            validate.positive_int(name, getattr(self, name))
        if self.init_std is not None and (isinstance(self.init_std, bool) or not isinstance(self.init_std, (int, float))
                                          or not self.init_std > 0):
            raise ValueError(f"init_std must be a positive number or None, got {self.init_std!r}")
        if self.positions not in ENCODINGS:
            raise ValueError(f"positions must be one of {', '.join(map(repr, ENCODINGS))}, got {self.positions!r}")
        if not isinstance(self.causal, bool) or not isinstance(self.norm_first, bool):
            raise TypeError(f"causal and norm_first must be bools, got {self.causal!r} and {self.norm_first!r}")
        if self.d_model % self.n_heads:
            raise ValueError(f"d_model must be divisible by n_heads, got d_model={self.d_model} and n_heads={self.n_heads}")
        if self.d_ff is not None:
            validate.positive_int("d_ff", self.d_ff)
        if self.activation not in ACTIVATIONS:
            raise ValueError(f"activation must be one of {', '.join(map(repr, ACTIVATIONS))}, got {self.activation!r}")
        if self.positions == "rope" and (self.d_model // self.n_heads) % 2:
            raise ValueError(f"RoPE rotates pairs, so d_head = d_model / n_heads must be even, got "
                             f"{self.d_model} / {self.n_heads} = {self.d_model // self.n_heads}")


class GPT(nn.Module):
    """A decoder-only Transformer language model (chapter 7): ``p(x_{t+1} | x_1..x_t) = softmax(W_head h_t^L)``.

    Token embedding (+ absolute positions) -> L causal ``TransformerBlock`` s -> (a final
    LayerNorm for Pre-Norm) -> linear head. ``forward(x (B, T), cache=None, form=None) -> (logits (B, T, V), cache)``,
    the ``(logits, state)`` of every language model of the package (``SeqLM``, ``RecurrentLM``): the state
    is the ``KVCache`` passed in, now holding ``x`` 's keys and values too, or None without one;
    ``form`` names the attention's form for this call (default each block's, ``GPT(config, form=...)``:
    ``"parallel"``, or ``"fused"`` for PyTorch's kernel, ``"loop"``, ``"stream"``);
    with a ``KVCache`` (``new_cache()``) the tokens ``x`` continue the cached ones. Weights start as
    in GPT-2, normal with std ``config.init_std`` = 0.02 and biases zero, or (``init_std=None``) with
    PyTorch's defaults: uniform in +-1/sqrt(fan_in) for linear maps, N(0, 1) embeddings.
    """

    def __init__(self, config: GPTConfig, form: str = "parallel"):
        super().__init__()
        if not isinstance(config, GPTConfig):
            raise TypeError(f"config must be a GPTConfig, got {type(config).__name__}")
        self.config = c = config
        self.embed = nn.Embedding(c.vocab_size, c.d_model)
        self.positions = {"learned": lambda: LearnedPositions(c.max_len, c.d_model),
                          "sinusoidal": lambda: SinusoidalPositions(c.d_model)}.get(c.positions, lambda: None)()
        self.blocks = nn.ModuleList(
            TransformerBlock(c.d_model, c.n_heads, c.d_ff, c.norm_first, c.activation,
                             rope=c.positions == "rope", alibi=c.positions == "alibi", form=form)
            for _ in range(c.n_layers))
        self.norm = nn.LayerNorm(c.d_model) if c.norm_first else nn.Identity()  # Post-Norm blocks end normalised
        self.head = nn.Linear(c.d_model, c.vocab_size)
        if c.init_std is not None:
            self.apply(self._init)

    def _init(self, module: nn.Module) -> None:
        if isinstance(module, (nn.Linear, nn.Embedding)):
            nn.init.normal_(module.weight, mean=0.0, std=self.config.init_std)
        if isinstance(module, nn.Linear) and module.bias is not None:
            nn.init.zeros_(module.bias)

    def new_cache(self) -> KVCache:
        """An empty key/value cache for ``forward(x, cache=...)`` and ``generate``."""
        return KVCache(self.config.n_layers)

    def forward(self, x: torch.Tensor, cache: KVCache | None = None,
                form: str | None = None) -> tuple[torch.Tensor, KVCache | None]:
        validate.token_ids("x", x, self.config.vocab_size, ndim=2, min_length=1)
        if cache is not None and not isinstance(cache, KVCache):
            raise TypeError(f"cache must be a KVCache (model.new_cache()), got {type(cache).__name__}")
        if cache is not None and not self.config.causal:
            raise ValueError("a key/value cache needs a causal model (GPTConfig(causal=True)): with causal=False "
                             "earlier positions would change when later tokens arrive")
        offset = 0 if cache is None else cache.length
        h = self.embed(x)  # (B, T, d)
        if self.positions is not None:
            h = self.positions(h, offset)  # (B, T, d): x_t + p_t
        for i, block in enumerate(self.blocks):
            h = block(h, causal=self.config.causal, cache=None if cache is None else cache.layers[i], form=form)  # (B, T, d)
        return self.head(self.norm(h)), cache  # (B, T, V), the cache (None without one)

    @torch.no_grad()
    def generate(self, prompt_ids: torch.Tensor, length: int, temperature: float = 1.0,
                 generator: torch.Generator | None = None, use_cache: bool = True, form: str | None = None) -> torch.Tensor:
        """Extend ``prompt_ids`` (1-D) by ``length`` sampled ids; returns prompt + new ids (chapter 9).

        ``use_cache=True``: the prompt fills a ``KVCache`` once, then each new token is one forward
        pass of a single position. ``use_cache=False``: the whole context is re-run for every token.
        Both sample the same ids from the same ``generator`` (tested). ``temperature=0`` is greedy.
        ``form`` names the attention's form, as in ``forward``.
        """
        validate.token_ids("prompt_ids", prompt_ids, self.config.vocab_size, ndim=1, min_length=1)
        validate.positive_int("length", length)
        if not self.config.causal:
            raise ValueError("generate needs a causal model (GPTConfig(causal=True))")
        check_temperature(temperature)
        c = self.config
        if c.positions == "learned" and len(prompt_ids) + length - 1 > c.max_len:
            raise ValueError(f"learned positions stop at max_len={c.max_len}: a prompt of {len(prompt_ids)} plus "
                             f"{length} new tokens needs {len(prompt_ids) + length - 1}")
        device = self.head.weight.device
        ids = prompt_ids.to(device)[None]  # (1, T)
        cache = self.new_cache() if use_cache else None
        logits = self(ids, cache=cache, form=form)[0][0, -1]  # (V,)
        for i in range(length):
            nxt = sample_next(logits, temperature, generator).view(1, 1)  # softmax(logits / T), or argmax at T = 0
            ids = torch.cat([ids, nxt], dim=1)  # (1, T + i + 1)
            if i < length - 1:
                logits = (self(nxt, cache=cache, form=form) if use_cache else self(ids, form=form))[0][0, -1]  # (V,)
        return ids[0].cpu()

    def extra_repr(self) -> str:
        c = self.config
        return f"positions={c.positions!r}, norm_first={c.norm_first}"
