"""A small token model whose sequence mixer is chosen by name: softmax attention, linear attention or an SSM (chapters 12–13).

Glossary (code name -> book notation):

    mixer          "softmax" (causal multi-head attention, chapter 6), "linear" / "gated_linear"
                   (``LinearAttention``, chapter 12), "s4d" / "selective" (``SSMLayer``, chapter 13)
    x              the residual stream (B, T, d_model)
    block          x <- x + mixer(LN(x)); x <- x + MLP(LN(x))   (Pre-Norm, chapter 7)
    short_conv     a causal depthwise convolution of kernel 3 before attention mixers, so a token
                   can see its neighbour without positions (as in Zoology's MQAR models); the SSM
                   layer has its own
    state          one entry per layer: a KV cache is not kept here; linear attention's (S, z) or S,
                   an SSM layer's (buffer, h)

The same embedding, blocks, MLP and head around every mixer, so that comparisons between
mixers compare the mixers.
"""
from __future__ import annotations

from dataclasses import dataclass, field

import torch
from torch import nn

from .. import _validate as validate
from .linear_attention import LinearAttention, LinearAttentionConfig
from .ssm import SSMConfig, SSMLayer
from .transformer import SelfAttention

MIXERS = ("softmax", "linear", "gated_linear", "s4d", "selective")


@dataclass
class MixerLMConfig:
    """Sizes of a ``MixerLM``; ``options`` go to the mixer's own config (e.g. feature_map, d_state, mode); chapter 12."""

    vocab_size: int
    mixer: str = "softmax"
    d_model: int = 64
    n_layers: int = 2
    n_heads: int = 4
    mlp: bool = True
    options: dict = field(default_factory=dict)

    def __post_init__(self):
        validate.positive_int("vocab_size", self.vocab_size, minimum=2)
        for name in ("d_model", "n_layers", "n_heads"):
            validate.positive_int(name, getattr(self, name))
        if self.mixer not in MIXERS:
            raise ValueError(f"mixer must be one of {MIXERS}, got {self.mixer!r}")
        if not isinstance(self.options, dict):
            raise TypeError(f"options must be a dict, got {type(self.options).__name__}")
        if self.mixer == "softmax" and self.options:
            raise ValueError(f"the softmax mixer takes no options, got {sorted(self.options)}")


class _ShortConv(nn.Module):
    def __init__(self, d: int, k: int = 3):
        super().__init__()
        self.k, self.conv = k, nn.Conv1d(d, d, k, groups=d)

    def forward(self, x):  # (B, T, d) -> (B, T, d), causal
        return self.conv(nn.functional.pad(x.transpose(1, 2), (self.k - 1, 0))).transpose(1, 2)


class _Mixer(nn.Module):
    def __init__(self, c: MixerLMConfig):
        super().__init__()
        self.kind = c.mixer
        if c.mixer in ("softmax", "linear", "gated_linear"):
            self.short_conv = _ShortConv(c.d_model)
        if c.mixer == "softmax":
            self.layer = SelfAttention(c.d_model, c.n_heads)
        elif c.mixer in ("linear", "gated_linear"):
            opts = dict(c.options)
            if c.mixer == "gated_linear":
                opts.setdefault("gate", "channel")
            self.layer = LinearAttention(LinearAttentionConfig(d_model=c.d_model, n_heads=c.n_heads, **opts))
        else:
            self.layer = SSMLayer(SSMConfig(d_model=c.d_model, selective=c.mixer == "selective", **c.options))

    def forward(self, x):
        if self.kind == "softmax":
            return self.layer(self.short_conv(x), causal=True, mode="fused")[0]
        if self.kind in ("linear", "gated_linear"):
            return self.layer(self.short_conv(x))[0]
        return self.layer(x)[0]


class MixerLM(nn.Module):
    """Embedding -> n_layers Pre-Norm blocks (mixer, then an MLP) -> LayerNorm -> linear head (chapters 12–13).

    ``forward(x (B, T) token ids) -> logits (B, T, vocab_size)``.
    """

    def __init__(self, config: MixerLMConfig):
        super().__init__()
        if not isinstance(config, MixerLMConfig):
            raise TypeError(f"config must be a MixerLMConfig, got {type(config).__name__}")
        self.config = c = config
        self.embed = nn.Embedding(c.vocab_size, c.d_model)
        self.mixers = nn.ModuleList(_Mixer(c) for _ in range(c.n_layers))
        self.norms1 = nn.ModuleList(nn.LayerNorm(c.d_model) for _ in range(c.n_layers))
        if c.mlp:
            self.mlps = nn.ModuleList(nn.Sequential(nn.Linear(c.d_model, 4 * c.d_model), nn.GELU(),
                                                    nn.Linear(4 * c.d_model, c.d_model)) for _ in range(c.n_layers))
            self.norms2 = nn.ModuleList(nn.LayerNorm(c.d_model) for _ in range(c.n_layers))
        self.norm = nn.LayerNorm(c.d_model)
        self.head = nn.Linear(c.d_model, c.vocab_size)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        validate.tensor("x", x, ndim=2, dtype="long")
        if x.numel() and (int(x.min()) < 0 or int(x.max()) >= self.config.vocab_size):
            raise ValueError(f"token ids must be in [0, {self.config.vocab_size}), got [{int(x.min())}, {int(x.max())}]")
        h = self.embed(x)  # (B, T, d_model)
        for i, mixer in enumerate(self.mixers):
            h = h + mixer(self.norms1[i](h))
            if self.config.mlp:
                h = h + self.mlps[i](self.norms2[i](h))
        return self.head(self.norm(h))  # (B, T, V)

    def state_bytes(self, T: int, bytes_per_number: int = 4) -> int:
        """Bytes of the state this model carries per sequence at length T: a KV cache for softmax
        attention (2 · T · d_model per layer), the fixed-size state of the other mixers, plus the
        short convolution's buffer of the last 2 inputs for attention mixers."""
        c = self.config
        validate.positive_int("T", T)
        if c.mixer == "softmax":
            per_layer = 2 * T * c.d_model + 2 * c.d_model
        elif c.mixer in ("linear", "gated_linear"):
            per_layer = self.mixers[0].layer.config.state_numel() + 2 * c.d_model
        else:
            per_layer = self.mixers[0].layer.config.state_numel()
        return c.n_layers * per_layer * bytes_per_number
