"""Hybrid stacks: Hawk's recurrent block, sliding-window and global attention, interleaved by a pattern (chapter 14).

Glossary (code name -> book notation):

    pattern        one letter per layer: "R" a recurrent block (RG-LRU, Hawk), "A" local attention over a
                   sliding window of ``window`` = W positions, "G" global (full causal) attention.
                   "RRR" is Hawk, "AAA" local attention alone, "RRA" Griffin (De et al., 2024), "RRG" a
                   recurrence interleaved with full attention as in Jamba and Samba, "GGG" a Transformer
    x              the residual stream, (B, T, d_model)
    block          x <- x + mixer(LN(x)); x <- x + MLP(LN(x))   (Pre-Norm, chapter 7)
    E              the recurrent block's width ``d_rnn``
    h              the RG-LRU state h_t, (B, E)   (``seqlab.ops.rglru``)
    K, V           the keys and values kept for attention: for "G" all T of them, (B, H, T, d_head);
                   for "A" a ring buffer of W slots, (B, H, W, d_head), position p in slot p mod W
    state          one entry per layer: ("R", conv buffer, h), ("A", conv buffer, K, V, t), ("G", conv buffer, K, V)

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

import math
from dataclasses import dataclass

import torch
import torch.nn.functional as F
from torch import nn

from .. import _validate as validate
from ..ops import rglru as ops
from .positional import apply_rope

BLOCKS = {"R": "recurrent (RG-LRU)", "A": "local attention (sliding window)", "G": "global attention"}
MODES = ("loop", "scan", "chunked", "step")


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
    mode: str = "chunked"  # the form of seqlab.ops.rglru that runs the recurrence
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
        if self.mode not in MODES:
            raise ValueError(f"mode must be one of {MODES}, got {self.mode!r}")


def _causal_conv(conv: nn.Conv1d, u: torch.Tensor, buffer: torch.Tensor | None):
    """A causal depthwise convolution carrying its last k − 1 inputs: (B, T, E), (B, k−1, E) -> same + new buffer."""
    k = conv.kernel_size[0]
    if buffer is None:
        buffer = u.new_zeros(u.shape[0], k - 1, u.shape[2])
    padded = torch.cat([buffer, u], dim=1)  # (B, k-1+T, E)
    out = conv(padded.transpose(1, 2)).transpose(1, 2)  # (B, T, E)
    return out, padded[:, padded.shape[1] - (k - 1):]


class RecurrentBlock(nn.Module):
    """Griffin's temporal-mixing block around the RG-LRU (chapter 14).

    ``forward(x (B, T, d_model), state=None) -> (y (B, T, d_model), state)``, state = ("R", conv buffer, h).
    """

    def __init__(self, c: HybridConfig):
        super().__init__()
        E = c.d_rnn
        self.mode, self.chunk = c.mode, c.chunk
        self.W_in = nn.Linear(c.d_model, E, bias=False)
        self.W_gate = nn.Linear(c.d_model, E, bias=False)
        self.conv = nn.Conv1d(E, E, c.d_conv, groups=E)
        self.gate_a = nn.Linear(E, E)  # W_a, b_a: the recurrence gate
        self.gate_x = nn.Linear(E, E)  # W_x, b_x: the input gate
        self.Lambda = nn.Parameter(ops.rglru_lambda_init(E))
        self.W_out = nn.Linear(E, c.d_model, bias=False)

    def _params(self):
        return self.gate_a.weight, self.gate_a.bias, self.gate_x.weight, self.gate_x.bias, self.Lambda

    def _unpack(self, state, B):
        if state is None:
            return None, None
        if not (isinstance(state, tuple) and len(state) == 3 and state[0] == "R"):
            raise TypeError(f"state must be the 'R' tuple returned by this layer, got {type(state).__name__}")
        if state[2].shape[0] != B:
            raise ValueError(f"state holds a batch of {state[2].shape[0]}, x a batch of {B}")
        return state[1], state[2]

    def forward(self, x, state=None):
        validate.tensor("x", x, ndim=3, dtype="float", last_dim=self.W_in.in_features)
        buffer, h = self._unpack(state, x.shape[0])
        u, buffer = _causal_conv(self.conv, self.W_in(x), buffer)  # (B, T, E)
        y, h = ops.RGLRU.forms[self.mode](u, *self._params(), state=h, chunk=self.chunk)  # (B, T, E)
        return self.W_out(F.gelu(self.W_gate(x)) * y), ("R", buffer, h)

    def step(self, x_t, state=None):
        """One token ``x_t`` (B, d_model) -> (y_t (B, d_model), state), with ``ops.rglru.rglru_step``."""
        validate.tensor("x_t", x_t, ndim=2, dtype="float", last_dim=self.W_in.in_features)
        buffer, h = self._unpack(state, x_t.shape[0])
        u, buffer = _causal_conv(self.conv, self.W_in(x_t)[:, None], buffer)  # (B, 1, E)
        if h is None:
            h = u.new_zeros(u.shape[0], u.shape[2])
        y_t, h = ops.rglru_step(u[:, 0], h, *self._params())  # (B, E)
        return self.W_out(F.gelu(self.W_gate(x_t)) * y_t), ("R", buffer, h)


class LocalAttention(nn.Module):
    """Causal multi-head attention over a sliding window of W positions, or over all of them (chapter 14).

    ``window=None`` is global attention. ``forward(x (B, T, d_model), state=None) -> (y, state)`` runs
    all T positions at once (a band mask), continuing from ``state``; ``step(x_t (B, d_model), state)``
    is the streaming form: for a window it writes k_t, v_t into slot t mod W of a ring buffer of W
    slots and attends over the filled slots, so the state never holds more than W keys.
    """

    def __init__(self, c: HybridConfig, window: int | None):
        super().__init__()
        self.window, self.n_heads, self.d_model = window, c.n_heads, c.d_model
        self.d_head = c.d_model // c.n_heads
        self.short = nn.Conv1d(c.d_model, c.d_model, c.short_conv, groups=c.d_model)
        self.W_qkv = nn.Linear(c.d_model, 3 * c.d_model)
        self.W_o = nn.Linear(c.d_model, c.d_model)
        self.mode = "fused"  # "fused": F.scaled_dot_product_attention; "parallel": the hand-written equation of chapter 6

    def _qkv(self, x, buffer, offset):
        B, T, _ = x.shape
        u, buffer = _causal_conv(self.short, x, buffer)
        q, k, v = self.W_qkv(u).view(B, T, 3, self.n_heads, self.d_head).permute(2, 0, 3, 1, 4)  # (B, H, T, dh) each
        return apply_rope(q, offset), apply_rope(k, offset), v, buffer

    def _attend(self, q, k, v, allowed):
        if self.mode == "fused":
            return F.scaled_dot_product_attention(q, k, v, attn_mask=allowed)
        if self.mode == "parallel":
            from .attention import scaled_dot_product_attention
            return scaled_dot_product_attention(q, k, v, mask=allowed)[0]
        raise ValueError(f"mode must be 'fused' or 'parallel', got {self.mode!r}")

    def band_mask(self, T_q: int, T_k: int, offset: int, device=None) -> torch.Tensor:
        """(T_q, T_k) bool: query at position offset + i may see key j (at position offset + T_q − T_k + j)."""
        q_pos = offset + torch.arange(T_q, device=device)[:, None]
        k_pos = offset + T_q - T_k + torch.arange(T_k, device=device)[None, :]
        allowed = k_pos <= q_pos
        if self.window is not None:
            allowed &= q_pos - k_pos < self.window
        return allowed

    def _check_state(self, state, x):
        want = 5 if self.window is not None else 4
        kind = "A" if self.window is not None else "G"
        if not (isinstance(state, tuple) and len(state) == want and state[0] == kind):
            raise TypeError(f"state must be the {kind!r} tuple returned by this layer, got {type(state).__name__}")
        if state[2].shape[0] != x.shape[0]:
            raise ValueError(f"state holds a batch of {state[2].shape[0]}, x a batch of {x.shape[0]}")

    def _ring_positions(self, t: int, device=None) -> torch.Tensor:
        """The positions still in the ring after t tokens, oldest first (at most W)."""
        return torch.arange(max(0, t - self.window), t, device=device)

    def forward(self, x, state=None):
        validate.tensor("x", x, ndim=3, dtype="float", last_dim=self.d_model)
        B, T, _ = x.shape
        if state is not None:
            self._check_state(state, x)
        buffer = None if state is None else state[1]
        if self.window is None:
            K_past = None if state is None else state[2]
            t0 = 0 if K_past is None else K_past.shape[2]
            V_past = None if state is None else state[3]
        else:
            t0 = 0 if state is None else state[4]
            slots = self._ring_positions(t0, x.device) % self.window
            K_past = None if state is None else state[2][:, :, slots]  # (B, H, ≤W, dh), oldest first
            V_past = None if state is None else state[3][:, :, slots]
        q, k, v, buffer = self._qkv(x, buffer, t0)
        if K_past is not None:
            k, v = torch.cat([K_past, k], dim=2), torch.cat([V_past, v], dim=2)  # (B, H, n_past + T, dh)
        out = self._attend(q, k, v, self.band_mask(T, k.shape[2], t0, x.device))  # (B, H, T, dh)
        y = self.W_o(out.transpose(1, 2).reshape(B, T, self.d_model))
        t = t0 + T
        if self.window is None:
            return y, ("G", buffer, k, v)
        keep = min(self.window, k.shape[2])  # write the last W keys into their ring slots
        slots = self._ring_positions(t, x.device)[-keep:] % self.window
        K = k.new_zeros(B, self.n_heads, self.window, self.d_head).index_copy(2, slots, k[:, :, -keep:])
        V = v.new_zeros(B, self.n_heads, self.window, self.d_head).index_copy(2, slots, v[:, :, -keep:])
        return y, ("A", buffer, K, V, t)

    def step(self, x_t, state=None):
        """One token ``x_t`` (B, d_model) -> (y_t (B, d_model), state): the ring-buffer streaming form."""
        validate.tensor("x_t", x_t, ndim=2, dtype="float", last_dim=self.d_model)
        B = x_t.shape[0]
        if state is not None:
            self._check_state(state, x_t)
        buffer = None if state is None else state[1]
        if self.window is None:
            t = 0 if state is None else state[2].shape[2]
        else:
            t = 0 if state is None else state[4]
        q, k, v, buffer = self._qkv(x_t[:, None], buffer, t)  # (B, H, 1, dh)
        if self.window is None:
            K = k if state is None else torch.cat([state[2], k], dim=2)  # the cache grows by one
            V = v if state is None else torch.cat([state[3], v], dim=2)
            allowed, new = None, ("G", buffer)
        else:
            W = self.window
            K = k.new_zeros(B, self.n_heads, W, self.d_head) if state is None else state[2]
            V = v.new_zeros(B, self.n_heads, W, self.d_head) if state is None else state[3]
            slot = torch.tensor([t % W], device=x_t.device)
            K, V = K.index_copy(2, slot, k), V.index_copy(2, slot, v)  # overwrite position t − W
            allowed = (torch.arange(W, device=x_t.device) < min(t + 1, W))[None, :]  # (1, W): the filled slots; order is irrelevant
            new = ("A", buffer)
        out = self._attend(q, K, V, allowed)  # (B, H, 1, dh)
        y_t = self.W_o(out.reshape(B, self.d_model))
        return y_t, new + ((K, V) if self.window is None else (K, V, t + 1))


class HybridLM(nn.Module):
    """Embedding -> one Pre-Norm block per letter of ``pattern`` -> LayerNorm -> head (chapter 14).

    ``forward(x (B, T) token ids, state=None) -> (logits (B, T, V), state)``;
    ``step(token (B,), state=None) -> (logits (B, V), state)`` for streaming generation.
    """

    def __init__(self, config: HybridConfig):
        super().__init__()
        if not isinstance(config, HybridConfig):
            raise TypeError(f"config must be a HybridConfig, got {type(config).__name__}")
        self.config = c = config
        self.embed = nn.Embedding(c.vocab_size, c.d_model)
        self.mixers = nn.ModuleList(RecurrentBlock(c) if kind == "R" else
                                    LocalAttention(c, c.window if kind == "A" else None) for kind in c.pattern)
        self.norms1 = nn.ModuleList(nn.LayerNorm(c.d_model) for _ in c.pattern)
        if c.mlp:
            self.mlps = nn.ModuleList(nn.Sequential(nn.Linear(c.d_model, 4 * c.d_model), nn.GELU(),
                                                    nn.Linear(4 * c.d_model, c.d_model)) for _ in c.pattern)
            self.norms2 = nn.ModuleList(nn.LayerNorm(c.d_model) for _ in c.pattern)
        self.norm = nn.LayerNorm(c.d_model)
        self.head = nn.Linear(c.d_model, c.vocab_size)

    def _check_tokens(self, x, ndim):
        validate.tensor("x", x, ndim=ndim, dtype="long")
        if x.numel() and (int(x.min()) < 0 or int(x.max()) >= self.config.vocab_size):
            raise ValueError(f"token ids must be in [0, {self.config.vocab_size}), got [{int(x.min())}, {int(x.max())}]")

    def _check_state(self, state):
        if state is not None and not (isinstance(state, list) and len(state) == len(self.mixers)):
            raise TypeError(f"state must be the list of {len(self.mixers)} layer states returned by this model, "
                            f"got {type(state).__name__}")

    def forward(self, x: torch.Tensor, state: list | None = None):
        self._check_tokens(x, 2)
        self._check_state(state)
        h = self.embed(x)  # (B, T, d_model)
        new = []
        for i, mixer in enumerate(self.mixers):
            y, s = mixer(self.norms1[i](h), None if state is None else state[i])
            h = h + y
            new.append(s)
            if self.config.mlp:
                h = h + self.mlps[i](self.norms2[i](h))
        return self.head(self.norm(h)), new  # (B, T, V), one state per layer

    def step(self, token: torch.Tensor, state: list | None = None):
        self._check_tokens(token, 1)
        self._check_state(state)
        h = self.embed(token)  # (B, d_model)
        new = []
        for i, mixer in enumerate(self.mixers):
            y, s = mixer.step(self.norms1[i](h), None if state is None else state[i])
            h = h + y
            new.append(s)
            if self.config.mlp:
                h = h + self.mlps[i](self.norms2[i](h))
        return self.head(self.norm(h)), new  # (B, V)


def state_bytes(state) -> int:
    """Bytes held by the tensors of a state (a tensor, or nested tuples/lists of them; other entries count 0) (chapter 14)."""
    if isinstance(state, torch.Tensor):
        return state.numel() * state.element_size()
    if isinstance(state, (tuple, list)):
        return sum(state_bytes(s) for s in state)
    return 0
