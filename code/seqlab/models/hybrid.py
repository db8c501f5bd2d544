"""Hybrid stacks: Hawk's recurrent block, sliding-window and global attention, interleaved by a pattern (chapter 14).

Glossary (code name -> book notation):

    pattern        one letter per layer: "R" a recurrent block (RG-LRU, Hawk), "A" local attention over a
                   sliding window of ``window`` = W positions, "G" global (full causal) attention.
                   "RRR" is Hawk, "AAA" local attention alone, "RRA" Griffin (De et al., 2024), "RRG" a
                   recurrence interleaved with full attention as in Jamba ("RRA" is Griffin's layout; Samba's,
                   Mamba layers alternating with sliding-window attention, is "RA" repeated), "GGG" a Transformer
    x              the residual stream, (B, T, d_model)
    block          x <- x + mixer(LN(x)); x <- x + MLP(LN(x))   (Pre-Norm, chapter 7)
    E              the recurrent block's width ``d_rnn``
    h              the RG-LRU state h_t, (B, E)   (``seqlab.ops.rglru``)
    K, V           the keys and values kept for attention: for "G" all T of them, (B, H, T, d_head);
                   for "A" a ring buffer of W slots, (B, H, W, d_head), position p in slot p mod W
    state          one entry per layer: (conv buffer, h) for "R"; (conv buffer, (K, V, t)) for "A";
                   (conv buffer, (K, V)) for "G" (``ShortConv`` around ``SelfAttention``)

The recurrent block is Griffin's temporal-mixing block:
y = W_out( GELU(W_gate x) ⊙ RG-LRU(conv(W_in x)) ), with a causal depthwise convolution of kernel
``d_conv`` before the recurrence. Attention blocks apply RoPE (chapter 8) to queries and keys and,
like the models of chapter 12, a short causal convolution before the projections, so that a token
sees its neighbour. Sliding-window attention lets query t see the keys at t − W + 1 .. t:

    y_t = Σ_{s = max(0, t−W+1)}^{t} softmax_s(q_t·k_s/√d_head) v_s,

full attention with a *band* mask. Its streaming state is the last W keys and values, a constant
size however long the context; full attention's KV cache grows by one entry per token.
"""
from __future__ import annotations

from dataclasses import dataclass

import torch
import torch.nn.functional as F
from torch import nn

from .. import _validate as validate
from ..ops import rglru as ops
from .mixer import CausalConv1d, Mixer, ShortConv, Spec, state_bytes
from .seqlm import SeqLM
from .transformer import SelfAttention

BLOCKS = {"R": "recurrent (RG-LRU)", "A": "local attention (sliding window)", "G": "global attention"}

__all__ = ["BLOCKS", "HybridConfig", "RecurrentBlock", "attention_block", "HybridLM", "state_bytes"]


@dataclass
class HybridConfig:
    """Sizes of a ``HybridLM`` (chapter 14); ``pattern`` has one letter per layer from ``BLOCKS``."""

    vocab_size: int
    pattern: str = "RRA"
    d_model: int = 64
    n_heads: int = 4
    window: int = 16
    d_rnn: int | None = None  # None: d_model
    d_conv: int = 4
    short_conv: int = 3
    mlp: bool = True
    form: str = "chunked"  # the form of seqlab.ops.rglru that runs the recurrence
    chunk: int = 16

    def __post_init__(self):
        validate.positive_int("vocab_size", self.vocab_size, minimum=2)
        for name in ("d_model", "n_heads", "window", "d_conv", "short_conv", "chunk"):
            validate.positive_int(name, getattr(self, name))
        if self.d_rnn is None:
            self.d_rnn = self.d_model
        validate.positive_int("d_rnn", self.d_rnn)
        if not isinstance(self.pattern, str) or not self.pattern or set(self.pattern) - set(BLOCKS):
            raise ValueError(f"pattern must be a non-empty string of the letters {sorted(BLOCKS)}, got {self.pattern!r}")
        if self.d_model % self.n_heads or (self.d_model // self.n_heads) % 2:
            raise ValueError(f"d_model / n_heads must be an even integer (RoPE rotates pairs), got "
                             f"d_model={self.d_model}, n_heads={self.n_heads}")
        forms = tuple(ops.RGLRU.forms)
        if self.form not in forms:
            raise ValueError(f"form must be one of {forms}, got {self.form!r}")


class RecurrentBlock(Mixer):
    """Griffin's temporal-mixing block around the RG-LRU (chapter 14), a ``Mixer``.

    ``forward(x (B, T, d_model), state=None) -> (y (B, T, d_model), state)``, state = (conv buffer
    (B, d_conv − 1, E), h (B, E)); ``step`` runs ``ops.rglru.rglru_step``.
    """

    family = "rglru"

    def __init__(self, c: HybridConfig):
        super().__init__()
        E = c.d_rnn
        self.form, self.chunk = c.form, c.chunk
        self.W_in = nn.Linear(c.d_model, E, bias=False)
        self.W_gate = nn.Linear(c.d_model, E, bias=False)
        self.conv = CausalConv1d(E, c.d_conv)
        self.gate_a = nn.Linear(E, E)  # W_a, b_a: the recurrence gate
        self.gate_x = nn.Linear(E, E)  # W_x, b_x: the input gate
        self.Lambda = nn.Parameter(ops.rglru_lambda_init(E))
        self.W_out = nn.Linear(E, c.d_model, bias=False)

    def _params(self):
        return self.gate_a.weight, self.gate_a.bias, self.gate_x.weight, self.gate_x.bias, self.Lambda

    def state_spec(self, B: int, dtype: torch.dtype):
        return (self.conv.buffer_spec(B, dtype), Spec((B, self.W_in.out_features), dtype))

    def forward(self, x, state=None):
        validate.tensor("x", x, ndim=3, dtype="float", last_dim=self.W_in.in_features)
        buffer, h = self.check_state(state, x.shape[0], x.dtype) or (None, None)
        u, buffer = self.conv(self.W_in(x), buffer)  # (B, T, E)
        y, h = ops.RGLRU.forms[self.form](u, *self._params(), state=h, chunk=self.chunk)  # (B, T, E)
        return self.W_out(F.gelu(self.W_gate(x)) * y), (buffer, h)

    def step(self, x_t, state=None):
        """One token ``x_t`` (B, d_model) -> (y_t (B, d_model), state), with ``ops.rglru.rglru_step``."""
        validate.tensor("x_t", x_t, ndim=2, dtype="float", last_dim=self.W_in.in_features)
        buffer, h = self.check_state(state, x_t.shape[0], x_t.dtype) or (None, None)
        u, buffer = self.conv(self.W_in(x_t)[:, None], buffer)  # (B, 1, E)
        if h is None:
            h = u.new_zeros(u.shape[0], u.shape[2])
        y_t, h = ops.rglru_step(u[:, 0], *self._params(), state=h)  # (B, E)
        return self.W_out(F.gelu(self.W_gate(x_t)) * y_t), (buffer, h)


def attention_block(c: HybridConfig, window: int | None) -> ShortConv:
    """Chapter 14's attention layer: a short causal convolution, then ``SelfAttention`` with RoPE over a window
    of ``window`` positions (None: all of them), run by PyTorch's fused kernel.

    The weights are drawn as one packed projection W_qkv (d, 3d) after the convolution and before W_o,
    so a seeded model starts where the chapter's always has.
    """
    d = c.d_model
    conv = CausalConv1d(d, c.short_conv)
    W_qkv, W_o = nn.Linear(d, 3 * d), nn.Linear(d, d)
    with torch.random.fork_rng(devices=[]):  # its own draws are replaced just below
        attn = SelfAttention(d, c.n_heads, rope=True, form="fused", window=window, causal=True)
    with torch.no_grad():
        for i, W in enumerate((attn.W_q, attn.W_k, attn.W_v)):
            W.weight.copy_(W_qkv.weight[i * d:(i + 1) * d])
            W.bias.copy_(W_qkv.bias[i * d:(i + 1) * d])
        attn.W_o.load_state_dict(W_o.state_dict())
    return ShortConv(conv, attn)


class HybridLM(SeqLM):
    """``SeqLM`` with one block per letter of ``config.pattern`` (chapter 14): "R" a ``RecurrentBlock``,
    "A" sliding-window and "G" global ``attention_block``.

    ``forward(x (B, T) token ids, state=None) -> (logits (B, T, V), state)``;
    ``step(token (B,), state=None) -> (logits (B, V), state)`` for streaming generation.
    """

    def __init__(self, config: HybridConfig):
        if not isinstance(config, HybridConfig):
            raise TypeError(f"config must be a HybridConfig, got {type(config).__name__}")
        c = config
        make = {"R": lambda: RecurrentBlock(c), "A": lambda: attention_block(c, c.window),
                "G": lambda: attention_block(c, None)}
        super().__init__(c.vocab_size, c.d_model, [make[kind] for kind in c.pattern], mlp=c.mlp)
        self.config = c
