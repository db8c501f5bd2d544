"""The original encoder-decoder Transformer with cross-attention (chapter 7), for sequence-to-sequence tasks.

Glossary, code name -> book notation:

    src            source ids x_1..x_S, shape (B, S)
    tgt_in         decoder inputs y_0..y_{T-1}, y_0 = BOS (teacher forcing: the true previous token), (B, T)
    memory         the encoder's output z_1..z_S, shape (B, S, d_model): what every decoder layer reads
    src_mask       the source padding mask, (B, S) bool, True = a real position (``padding_mask``, chapter 5)
    y              the decoder's residual stream, shape (B, T, d_model)
    self_attn      causal multi-head self-attention over y (chapter 6), with a key/value cache (chapter 9)
    cross_attn     multi-head cross-attention: queries Q = y W_q from the decoder, keys K = z W_k and values
                   V = z W_v from the memory; CrossAttn(y, z) = softmax(Q K^T / sqrt(d_head) + M) V, then W_o
    FFN            the position-wise feed-forward network, W_2 phi(W_1 y + b_1) + b_2 (``FeedForward``)
    LN_1..LN_3     the decoder layer's three LayerNorms (the encoder layer has two)
    norm_first     False: Post-Norm, as in Vaswani et al. (2017) and PyTorch's default; True: Pre-Norm
    B, S, T, H     batch, source length, target length, heads; N = n_layers in each stack

A decoder layer, Post-Norm (the original)::

    y = LN_1(y + SelfAttn(y, causal))
    y = LN_2(y + CrossAttn(y, memory))
    y = LN_3(y + FFN(y))

and Pre-Norm (``norm_first=True``): ``y = y + SelfAttn(LN_1(y))``, ``y = y + CrossAttn(LN_2(y), memory)``,
``y = y + FFN(LN_3(y))``. The encoder layer is chapter 7's ``TransformerBlock`` with a source padding
mask (``EncoderLayer``). ``EncoderLayer.from_torch`` and ``DecoderLayer.from_torch`` copy PyTorch's
``nn.TransformerEncoderLayer`` and ``nn.TransformerDecoderLayer``, and ``EncoderDecoder.load_torch``
the two stacks of an ``nn.Transformer``: outputs and every gradient agree (tested).

Cross-attention is no new form of attention: it is chapter 6's multi-head attention with queries
from one sequence and keys and values from another (T_q != T_k, no causal mask), so it runs on the
``"parallel"``, ``"loop"`` and ``"fused"`` forms of ``seqlab.ops.attention``, never on ``"stream"``.
During greedy decoding the memory's keys and values are projected once and kept, beside the
decoder's self-attention cache (``DecoderCache``).
"""
from __future__ import annotations

import math
from dataclasses import dataclass

import torch
from torch import nn

from .. import _validate as validate
from ..ops import attention as attention_ops
from .attention import MultiHeadAttention, _check_form, _check_padding_mask, padding_mask
from .positional import LearnedPositions, SinusoidalPositions
from .transformer import ACTIVATIONS, FeedForward, LayerCache, SelfAttention, TransformerBlock, _build_like_torch, _copy_weights

POSITIONS = ("sinusoidal", "learned")


def _check_memory_mask(mask, B: int, S: int) -> None:
    """``mask`` is None or a (B, S) bool tensor (True = real source position) with a True in every row."""
    if mask is not None:
        _check_padding_mask(mask, B, S, name="the source mask", dims="(B, S)")


def _check_bool(name: str, value) -> bool:
    if not isinstance(value, bool):
        raise TypeError(f"{name} must be a bool, got {type(value).__name__} {value!r}")
    return value


# ---------------------------------------------------------------- cross-attention
class CrossAttention(MultiHeadAttention):
    """Multi-head cross-attention (Vaswani et al., 2017; chapter 7): the decoder asks, the encoder's memory answers.

    ``Q = y W_q`` from the decoder's stream y (B, T, d), ``K = z W_k`` and ``V = z W_v`` from the
    memory z (B, S, d); per head ``softmax(Q K^T / sqrt(d_head) + M) V``, heads concatenated, then
    ``W_o``. M is -inf at padded source positions (``memory_mask`` (B, S), True = real) for every
    query; there is no causal mask: every target position may read the whole source.

    ``forward(y, memory, memory_mask=None, kv=None, form=None) -> (out (B, T, d), weights (B, H, T, S))``.
    ``kv`` = ``project_memory(memory)`` reuses the memory's keys and values (greedy decoding
    computes them once). ``form`` is ``"parallel"`` (default), ``"loop"`` or ``"fused"`` (weights None);
    the ``"stream"`` form is causal self-attention only and is refused.
    """

    def __init__(self, d_model: int, n_heads: int, bias: bool = True, form: str = "parallel"):
        super().__init__(d_model, n_heads, bias=bias, form=self._cross_form(form))

    @staticmethod
    def _cross_form(form) -> str:
        _check_form(form)
        if form == "stream":
            raise ValueError("cross-attention reads a whole memory at once: form must be 'parallel', 'loop' or "
                             "'fused', got 'stream' (the stream form is causal self-attention only)")
        return form

    def project_memory(self, memory: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """The memory's keys and values ``(K, V)``, each (B, H, S, d_head): computed once per source."""
        validate.tensor("memory", memory, ndim=3, dtype="float", last_dim=self.d_model)
        if memory.dtype != self.W_k.weight.dtype:
            raise TypeError(f"memory must have the parameters' dtype {self.W_k.weight.dtype}, got dtype {memory.dtype}")
        if memory.shape[1] == 0:
            raise ValueError(f"memory must hold at least one position, got shape {tuple(memory.shape)}")
        return self._split(self.W_k(memory)), self._split(self.W_v(memory))  # (B, H, S, d_head) each

    def forward(self, y: torch.Tensor, memory: torch.Tensor, memory_mask: torch.Tensor | None = None,
                kv: tuple[torch.Tensor, torch.Tensor] | None = None, form: str | None = None):
        form_fn = attention_ops.FORMS[self._cross_form(self.form if form is None else form)]
        validate.tensor("y", y, ndim=3, dtype="float", last_dim=self.d_model)
        if y.dtype != self.W_q.weight.dtype:
            raise TypeError(f"y must have the parameters' dtype {self.W_q.weight.dtype}, got dtype {y.dtype}")
        k, v = self.project_memory(memory) if kv is None else kv  # (B, H, S, d_head)
        if k.shape[0] != y.shape[0] or memory.shape[0] != y.shape[0]:
            raise ValueError(f"y and memory must have the same batch size, got shapes {tuple(y.shape)} and "
                             f"{tuple(memory.shape)}")
        (B, T, d), S, H = y.shape, k.shape[2], self.n_heads
        _check_memory_mask(memory_mask, B, S)
        mask = None if memory_mask is None else memory_mask[:, None, None, :].expand(B, H, T, S)  # (B, H, T, S)
        q = self._split(self.W_q(y))  # (B, H, T, d_head)
        out, _, weights = form_fn(q, k, v, causal=False, mask=mask, need_weights=True)  # (B, H, T, d_head)
        out = out.transpose(1, 2).reshape(B, T, d)  # (B, T, d): heads concatenated
        return self.W_o(out), weights  # (B, T, d), (B, H, T, S) or None


# ---------------------------------------------------------------- the two layers
class EncoderLayer(TransformerBlock):
    """The encoder layer of the original Transformer (chapter 7): chapter 7's block with a source padding mask.

    Post-Norm by default (``x = LN_1(x + SelfAttn(x))``, ``x = LN_2(x + FFN(x))``) with ReLU, as in
    Vaswani et al. (2017); ``norm_first=True`` gives Pre-Norm. Self-attention is bidirectional:
    every position reads every real source position. ``forward(x (B, S, d), src_mask (B, S) or None,
    form=None) -> (B, S, d)``. Equals ``nn.TransformerEncoderLayer`` with ``src_key_padding_mask = ~src_mask``
    (``from_torch``, inherited from ``TransformerBlock``; tested).
    """

    def __init__(self, d_model: int, n_heads: int, d_ff: int | None = None, norm_first: bool = False,
                 activation: str = "relu", layer_norm_eps: float = 1e-5, form: str = "parallel"):
        super().__init__(d_model, n_heads, d_ff, norm_first, activation, layer_norm_eps=layer_norm_eps, form=form)

    def _attend(self, x, mask, causal, cache, form):
        # the encoder's attention is MultiHeadAttention's own forward, which takes a (B, S, S) mask
        out, weights = MultiHeadAttention.forward(self.attn, x, x, x, mask=mask, form=form)
        self.last_weights = None if weights is None else weights.detach()
        return out

    def forward(self, x: torch.Tensor, src_mask: torch.Tensor | None = None, form: str | None = None) -> torch.Tensor:
        validate.tensor("x", x, ndim=3, dtype="float", last_dim=self.attn.d_model)
        B, S = x.shape[:2]
        _check_memory_mask(src_mask, B, S)
        mask = None if src_mask is None else src_mask[:, None, :].expand(B, S, S)  # (B, S, S): real keys only
        return super().forward(x, mask=mask, form=form)


class DecoderLayerCache:
    """What one decoder layer keeps while decoding greedily (chapter 7): its self-attention cache and the memory's K, V."""

    def __init__(self):
        self.self_attn = LayerCache()
        self.memory_kv: tuple[torch.Tensor, torch.Tensor] | None = None


class DecoderCache:
    """One ``DecoderLayerCache`` per decoder layer (chapter 7); ``length`` target tokens are stored."""

    def __init__(self, n_layers: int):
        self.layers = [DecoderLayerCache() for _ in range(validate.positive_int("n_layers", n_layers))]

    @property
    def length(self) -> int:
        return self.layers[0].self_attn.length


class DecoderLayer(nn.Module):
    """The decoder layer of the original Transformer (Vaswani et al., 2017; chapter 7).

    Post-Norm (``norm_first=False``, the default, as in the paper and in PyTorch)::

        y = LN_1(y + SelfAttn(y, causal))
        y = LN_2(y + CrossAttn(y, memory))
        y = LN_3(y + FFN(y))

    Pre-Norm (``norm_first=True``): ``y = y + SelfAttn(LN_1(y))``, ``y = y + CrossAttn(LN_2(y), memory)``,
    ``y = y + FFN(LN_3(y))``. ``forward(y (B, T, d), memory (B, S, d), memory_mask (B, S) or None,
    cache=None, form=None) -> (B, T, d)``; the self-attention is causal. With a ``DecoderLayerCache``
    the tokens continue the cached ones and the memory's keys and values are projected only once.
    The weights of the last call are kept: ``self_weights`` (B, H, T, T) and ``cross_weights``
    (B, H, T, S), None for the fused form. ``form`` names the form of both attentions (``"parallel"``,
    ``"loop"``, ``"fused"``); with ``"stream"``, which is causal only, the self-attention runs token by
    token and the cross-attention stays ``"parallel"``. ``from_torch`` copies an
    ``nn.TransformerDecoderLayer`` (tested).
    """

    def __init__(self, d_model: int, n_heads: int, d_ff: int | None = None, norm_first: bool = False,
                 activation: str = "relu", layer_norm_eps: float = 1e-5, form: str = "parallel"):
        super().__init__()
        self.norm_first = _check_bool("norm_first", norm_first)
        self.self_attn = SelfAttention(d_model, n_heads, form=form)
        self.cross_attn = CrossAttention(d_model, n_heads, form="parallel" if form == "stream" else form)
        self.ffn = FeedForward(d_model, 4 * d_model if d_ff is None else d_ff, activation)
        self.norm1, self.norm2, self.norm3 = (nn.LayerNorm(d_model, eps=layer_norm_eps) for _ in range(3))
        self.self_weights: torch.Tensor | None = None
        self.cross_weights: torch.Tensor | None = None

    def _self(self, y, cache, form):
        out, _ = self.self_attn(y, causal=True, cache=None if cache is None else cache.self_attn, form=form)
        self.self_weights = self.self_attn.last_weights
        return out

    def _cross(self, y, memory, memory_mask, cache, form):
        kv = None if cache is None else cache.memory_kv
        if kv is None:
            kv = self.cross_attn.project_memory(memory)  # (B, H, S, d_head) each
            if cache is not None:
                cache.memory_kv = kv
        out, w = self.cross_attn(y, memory, memory_mask, kv=kv, form=None if form == "stream" else form)
        self.cross_weights = None if w is None else w.detach()
        return out

    def forward(self, y: torch.Tensor, memory: torch.Tensor, memory_mask: torch.Tensor | None = None,
                cache: DecoderLayerCache | None = None, form: str | None = None) -> torch.Tensor:
        d = self.self_attn.d_model
        validate.tensor("y", y, ndim=3, dtype="float", last_dim=d)
        validate.tensor("memory", memory, ndim=3, dtype="float", last_dim=d)
        if y.dtype != self.norm1.weight.dtype or memory.dtype != y.dtype:
            raise TypeError(f"y and memory must have the parameters' dtype {self.norm1.weight.dtype}, got "
                            f"{y.dtype} and {memory.dtype}")
        if cache is not None and not isinstance(cache, DecoderLayerCache):
            raise TypeError(f"cache must be a DecoderLayerCache (one layer of a DecoderCache), got {type(cache).__name__}")
        if form is not None:
            _check_form(form)
        if self.norm_first:  # Pre-Norm: the stream itself is never normalised
            y = y + self._self(self.norm1(y), cache, form)  # (B, T, d)
            y = y + self._cross(self.norm2(y), memory, memory_mask, cache, form)  # (B, T, d)
            return y + self.ffn(self.norm3(y))  # (B, T, d)
        y = self.norm1(y + self._self(y, cache, form))  # Post-Norm: normalise each sum
        y = self.norm2(y + self._cross(y, memory, memory_mask, cache, form))
        return self.norm3(y + self.ffn(y))  # (B, T, d)

    @classmethod
    def from_torch(cls, layer: nn.TransformerDecoderLayer) -> "DecoderLayer":
        """A copy of ``layer`` (weights, norm placement, activation, eps, dtype); it must have no dropout."""
        if not isinstance(layer, nn.TransformerDecoderLayer):
            raise TypeError(f"{cls.__name__}.from_torch expects a torch.nn.TransformerDecoderLayer, "
                            f"got {type(layer).__name__}")
        ps = [m.p for m in (layer.dropout, layer.dropout1, layer.dropout2, layer.dropout3)]
        if any(ps) or layer.self_attn.dropout or layer.multihead_attn.dropout:
            raise ValueError(f"{cls.__name__}.from_torch needs dropout=0.0 (seqlab's layer has no dropout), got p={max(ps)}")
        act = {"relu": "relu", "gelu": "gelu"}.get(getattr(layer.activation, "__name__", ""))
        new = _build_like_torch(cls, layer, act)
        _copy_weights([(new.self_attn, layer.self_attn), (new.cross_attn, layer.multihead_attn)],
                      [(new.ffn.linear1, layer.linear1), (new.ffn.linear2, layer.linear2),
                       (new.norm1, layer.norm1), (new.norm2, layer.norm2), (new.norm3, layer.norm3)])
        return new

    def extra_repr(self) -> str:
        return f"norm_first={self.norm_first}"


# ---------------------------------------------------------------- the model
@dataclass
class EncoderDecoderConfig:
    """Sizes of an ``EncoderDecoder`` (chapter 7): N = ``n_layers`` encoder and N decoder layers.

    The defaults are a small model: d_model 64, 4 heads, 2 layers on each side, d_ff = 4 d_model, Post-Norm.

    ``positions``: 'sinusoidal' (the paper's) or 'learned' (limited to ``max_len``). ``norm_first=False``
    is the paper's Post-Norm; Pre-Norm adds a final LayerNorm after each stack, as PyTorch does.
    """

    src_vocab: int
    tgt_vocab: int
    d_model: int = 64
    n_heads: int = 4
    n_layers: int = 2
    d_ff: int | None = None  # 4 * d_model
    max_len: int = 256
    positions: str = "sinusoidal"
    norm_first: bool = False
    activation: str = "relu"

    def __post_init__(self):
        validate.positive_int("src_vocab", self.src_vocab, minimum=2)
        validate.positive_int("tgt_vocab", self.tgt_vocab, minimum=2)
        for name in ("d_model", "n_heads", "n_layers", "max_len"):
            validate.positive_int(name, getattr(self, name))
        if self.d_ff is not None:
            validate.positive_int("d_ff", self.d_ff)
        if self.d_model % self.n_heads:
            raise ValueError(f"d_model must be divisible by n_heads, got d_model={self.d_model} and n_heads={self.n_heads}")
        if self.positions not in POSITIONS:
            raise ValueError(f"positions must be one of {', '.join(map(repr, POSITIONS))}, got {self.positions!r}")
        if self.positions == "sinusoidal" and self.d_model % 2:
            raise ValueError(f"sinusoidal positions need an even d_model, got {self.d_model}")
        _check_bool("norm_first", self.norm_first)
        if self.activation not in ACTIVATIONS:
            raise ValueError(f"activation must be one of {', '.join(map(repr, ACTIVATIONS))}, got {self.activation!r}")


class EncoderDecoder(nn.Module):
    """The encoder-decoder Transformer (Vaswani et al., 2017; chapter 7) for sequence-to-sequence tasks.

    Source: embedding x sqrt(d) + positions -> N ``EncoderLayer`` s -> memory z (B, S, d).
    Target: embedding x sqrt(d) + positions -> N ``DecoderLayer`` s, each reading z -> linear head.
    ``forward(src (B, S), tgt_in (B, T), src_lengths (B,) or None) -> (logits (B, T, V), weights)``
    with teacher forcing, as chapter 5's ``Seq2Seq``; ``weights`` (B, N, H, T, S) are every decoder
    layer's cross-attention weights. Source positions at or after ``src_lengths`` are padding: no
    query (in the encoder or the decoder) attends to them. ``greedy_decode`` writes a target one token
    at a time with a cache (or without: the same numbers, tested).
    """

    def __init__(self, config: EncoderDecoderConfig, form: str = "parallel"):
        super().__init__()
        if not isinstance(config, EncoderDecoderConfig):
            raise TypeError(f"config must be an EncoderDecoderConfig, got {type(config).__name__}")
        self.config = c = config
        self.src_embed = nn.Embedding(c.src_vocab, c.d_model)
        self.tgt_embed = nn.Embedding(c.tgt_vocab, c.d_model)
        for e in (self.src_embed, self.tgt_embed):  # N(0, 1/d): after the sqrt(d) scale, unit size like the positions
            nn.init.normal_(e.weight, std=c.d_model ** -0.5)
        self.positions = SinusoidalPositions(c.d_model) if c.positions == "sinusoidal" else LearnedPositions(c.max_len, c.d_model)
        self.encoder_layers = nn.ModuleList(EncoderLayer(c.d_model, c.n_heads, c.d_ff, c.norm_first, c.activation, form=form)
                                            for _ in range(c.n_layers))
        self.decoder_layers = nn.ModuleList(DecoderLayer(c.d_model, c.n_heads, c.d_ff, c.norm_first, c.activation, form=form)
                                            for _ in range(c.n_layers))
        self.encoder_norm = nn.LayerNorm(c.d_model) if c.norm_first else nn.Identity()  # Post-Norm layers end normalised
        self.decoder_norm = nn.LayerNorm(c.d_model) if c.norm_first else nn.Identity()
        self.head = nn.Linear(c.d_model, c.tgt_vocab)

    # -- the two stacks on embedded inputs: what nn.Transformer computes
    def encode_embedded(self, x: torch.Tensor, src_mask: torch.Tensor | None = None, form: str | None = None) -> torch.Tensor:
        """The encoder stack on embedded sources ``x`` (B, S, d): the memory z (B, S, d)."""
        for layer in self.encoder_layers:
            x = layer(x, src_mask, form=form)  # (B, S, d)
        return self.encoder_norm(x)

    def decode_embedded(self, y: torch.Tensor, memory: torch.Tensor, src_mask: torch.Tensor | None = None,
                        cache: DecoderCache | None = None, form: str | None = None) -> torch.Tensor:
        """The decoder stack on embedded targets ``y`` (B, T, d) reading ``memory``: (B, T, d) before the head."""
        if cache is not None and not isinstance(cache, DecoderCache):
            raise TypeError(f"cache must be a DecoderCache (model.new_cache()), got {type(cache).__name__}")
        for i, layer in enumerate(self.decoder_layers):
            y = layer(y, memory, src_mask, cache=None if cache is None else cache.layers[i], form=form)  # (B, T, d)
        return self.decoder_norm(y)

    def load_torch(self, transformer: nn.Transformer) -> "EncoderDecoder":
        """Copy the encoder and decoder stacks of ``transformer`` (layers and final norms) into this model.

        Its sizes and norm placement must match the config; the embeddings and head stay ours. A
        Post-Norm model has no final norms, so the ``nn.Transformer`` must be built with
        ``custom_encoder``/``custom_decoder`` whose ``norm`` is None.
        """
        if not isinstance(transformer, nn.Transformer):
            raise TypeError(f"load_torch expects a torch.nn.Transformer, got {type(transformer).__name__}")
        enc, dec = transformer.encoder, transformer.decoder
        if len(enc.layers) != self.config.n_layers or len(dec.layers) != self.config.n_layers:
            raise ValueError(f"the config has n_layers={self.config.n_layers} in each stack, the nn.Transformer "
                             f"{len(enc.layers)} encoder and {len(dec.layers)} decoder layers")
        norms = (enc.norm is not None, dec.norm is not None)
        if norms != (self.config.norm_first,) * 2:
            raise ValueError(f"final norms must exist exactly for Pre-Norm (norm_first={self.config.norm_first}); the "
                             f"nn.Transformer has encoder norm {enc.norm is not None}, decoder norm {dec.norm is not None}")
        layers = [EncoderLayer.from_torch(l) for l in enc.layers] + [DecoderLayer.from_torch(l) for l in dec.layers]
        mine = list(self.encoder_layers) + list(self.decoder_layers)
        for ours, theirs in zip(mine, layers):
            if ours.norm_first != theirs.norm_first or ours.ffn.activation != theirs.ffn.activation:
                raise ValueError(f"the nn.Transformer's layers have norm_first={theirs.norm_first} and activation "
                                 f"{theirs.ffn.activation!r}; the config has {ours.norm_first} and {ours.ffn.activation!r}")
            ours.load_state_dict(theirs.state_dict())  # raises on any size mismatch
        if self.config.norm_first:
            self.encoder_norm.load_state_dict(enc.norm.state_dict())
            self.decoder_norm.load_state_dict(dec.norm.state_dict())
        return self

    # -- tokens in, logits out
    def _embed(self, table: nn.Embedding, ids: torch.Tensor, offset: int = 0) -> torch.Tensor:
        return self.positions(table(ids) * math.sqrt(self.config.d_model), offset)  # (B, T, d): sqrt(d) E[x_t] + p_t

    def encode(self, src: torch.Tensor, src_lengths: torch.Tensor | None = None, form: str | None = None):
        """``(memory (B, S, d), src_mask (B, S) or None)``: the encoder's output and the source padding."""
        validate.token_ids("src", src, self.config.src_vocab, ndim=2, min_length=1)
        mask = None
        if src_lengths is not None:
            validate.tensor("src_lengths", src_lengths, ndim=1, dtype="long")
            if len(src_lengths) != src.shape[0]:
                raise ValueError(f"src_lengths must have shape (B,) = ({src.shape[0]},), got shape "
                                 f"{tuple(src_lengths.shape)}")
            mask = padding_mask(src_lengths, src.shape[1])  # (B, S); checks 1 <= lengths <= S
        return self.encode_embedded(self._embed(self.src_embed, src), mask, form), mask

    def cross_weights(self) -> torch.Tensor | None:
        """The last call's cross-attention weights of every decoder layer, (B, N, H, T, S); None for the fused form."""
        ws = [layer.cross_weights for layer in self.decoder_layers]
        return None if any(w is None for w in ws) else torch.stack(ws, dim=1)

    def forward(self, src: torch.Tensor, tgt_in: torch.Tensor, src_lengths: torch.Tensor | None = None,
                form: str | None = None):
        validate.token_ids("tgt_in", tgt_in, self.config.tgt_vocab, ndim=2, min_length=1)
        if tgt_in.shape[0] != src.shape[0]:
            raise ValueError(f"src and tgt_in must have the same batch size, got shapes {tuple(src.shape)} and "
                             f"{tuple(tgt_in.shape)}")
        memory, mask = self.encode(src, src_lengths, form)
        y = self.decode_embedded(self._embed(self.tgt_embed, tgt_in), memory, mask, form=form)  # (B, T, d)
        return self.head(y), self.cross_weights()  # (B, T, V), (B, N, H, T, S)

    def new_cache(self) -> DecoderCache:
        """An empty ``DecoderCache`` for ``greedy_decode``."""
        return DecoderCache(self.config.n_layers)

    @torch.no_grad()
    def greedy_decode(self, src: torch.Tensor, max_len: int, bos: int, src_lengths: torch.Tensor | None = None,
                      use_cache: bool = True, form: str | None = None):
        """Decode ``max_len`` tokens from ``bos``, each step feeding back the most likely token (chapter 7).

        Returns ``(ids (B, max_len), weights (B, N, H, max_len, S) or None)``, as chapter 5's
        ``Seq2Seq.greedy_decode`` does (exactly ``max_len`` steps). ``use_cache=True``: the source is
        encoded once, each decoder layer projects the memory's keys and values once, and each new
        token runs through the decoder once, attending to the cached keys of earlier tokens.
        ``use_cache=False``: the whole target so far is re-run at every step. Both give the same ids
        and weights, equal to ``forward`` with ``tgt_in = [bos, ids[:, :-1]]`` (tested).
        """
        validate.positive_int("max_len", max_len)
        if isinstance(bos, bool) or not isinstance(bos, int) or not 0 <= bos < self.config.tgt_vocab:
            raise ValueError(f"bos must be an int in [0, {self.config.tgt_vocab}), got {bos!r}")
        _check_bool("use_cache", use_cache)
        if self.config.positions == "learned" and max_len > self.config.max_len:
            raise ValueError(f"learned positions stop at max_len={self.config.max_len}, asked to decode {max_len} tokens")
        memory, mask = self.encode(src, src_lengths, form)
        cache = self.new_cache() if use_cache else None
        ys = torch.full((src.shape[0], 1), bos, dtype=torch.long, device=src.device)  # (B, 1)
        weights = []
        for i in range(max_len):
            new = ys[:, -1:] if use_cache else ys  # (B, 1) or (B, i + 1)
            y = self.decode_embedded(self._embed(self.tgt_embed, new, i if use_cache else 0), memory, mask, cache, form)
            nxt = self.head(y[:, -1:]).argmax(dim=-1)  # (B, 1)
            ys = torch.cat([ys, nxt], dim=1)
            w = self.cross_weights()
            weights.append(None if w is None else w[:, :, :, -1:])  # (B, N, H, 1, S)
        return ys[:, 1:], (None if weights[0] is None else torch.cat(weights, dim=3))

    def extra_repr(self) -> str:
        c = self.config
        return f"positions={c.positions!r}, norm_first={c.norm_first}"
