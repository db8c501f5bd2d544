"""A small token model whose sequence mixer is chosen by name: softmax attention, linear attention or an SSM (chapters 12–13).

Glossary (code name -> book notation):

    mixer          "softmax" (causal multi-head attention, chapter 6), "linear" / "gated_linear"
                   (``LinearAttention``, chapter 12), "s4d" / "selective" (``SSMLayer``, chapter 13)
    x              the residual stream (B, T, d_model)
    block          x <- x + mixer(LN(x)); x <- x + MLP(LN(x))   (Pre-Norm, chapter 7)
    short_conv     a causal depthwise convolution of kernel 3 before attention mixers (``ShortConv``), so a
                   token can see its neighbour without positions (as in Zoology's MQAR models); the SSM
                   layer has its own
    state          one entry per layer: (conv buffer, the KV cache (K, V)) for softmax attention,
                   (conv buffer, (S, z) or S) for linear attention, an SSM layer's (buffer, h)

A ``SeqLM`` (the same embedding, blocks, MLP and head around every mixer, so that comparisons
between mixers compare the mixers) whose mixers are chosen by name.
"""
from __future__ import annotations

from dataclasses import dataclass, field

from .. import _validate as validate
from .linear_attention import LinearAttention, LinearAttentionConfig
from .mixer import CausalConv1d, Mixer, ShortConv
from .seqlm import SeqLM
from .ssm import SSMConfig, SSMLayer
from .transformer import SelfAttention

MIXERS = ("softmax", "linear", "gated_linear", "s4d", "selective")
SHORT_CONV = 3  # the kernel of the short convolution before attention mixers


@dataclass
class MixerLMConfig:
    """Sizes of a ``MixerLM``; ``options`` go to the mixer's own config (e.g. feature_map, d_state, form); chapter 12."""

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


def make_mixer(c: MixerLMConfig) -> Mixer:
    """One mixer of a ``MixerLM``: a short convolution then attention (softmax, linear, gated linear), or an SSM layer (chapter 12)."""
    if c.mixer in ("s4d", "selective"):
        return SSMLayer(SSMConfig(d_model=c.d_model, selective=c.mixer == "selective", **c.options))
    conv = CausalConv1d(c.d_model, SHORT_CONV)
    if c.mixer == "softmax":
        return ShortConv(conv, SelfAttention(c.d_model, c.n_heads, form="fused", causal=True))
    opts = dict(c.options)
    if c.mixer == "gated_linear":
        opts.setdefault("gate", "channel")
    return ShortConv(conv, LinearAttention(LinearAttentionConfig(d_model=c.d_model, n_heads=c.n_heads, **opts)))


class MixerLM(SeqLM):
    """``SeqLM`` with ``n_layers`` mixers of one kind, ``config.mixer`` (chapters 12–13).

    ``forward(x (B, T) token ids, state=None) -> (logits (B, T, vocab_size), state)``.
    """

    def __init__(self, config: MixerLMConfig):
        if not isinstance(config, MixerLMConfig):
            raise TypeError(f"config must be a MixerLMConfig, got {type(config).__name__}")
        super().__init__(config.vocab_size, config.d_model, [lambda: make_mixer(config)] * config.n_layers,
                         mlp=config.mlp)
        self.config = config
