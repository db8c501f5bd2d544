"""Multi-head linear attention and gated linear attention as a layer (chapter 12).

Glossary (code name -> book notation):

    x              the layer's input, (B, T, d_model)
    W_q, W_k, W_v  the projections to queries q_t, keys k_t, values v_t, each split into n_heads heads of d_head
    feature_map    φ: "elu1" (Katharopoulos et al., 2020), "taylor" (d_φ = 1 + d_head + d_head²) or "identity"
    W_beta         (delta only) β_t = sigmoid(W_beta x_t + b), one writing strength per head; keys and queries are
                   L2-normalised per head, so I − β_t k_tᵀ k_t is non-expansive: it shrinks the k_t direction by
                   1 − β_t and leaves the rest (DeltaNet, Yang et al., 2024b [YWZ+24b] in the References)
    W_alpha        (gated only) α_t = sigmoid(W_alpha x_t + b)^(1/``gate_temp``) (a fixed gate temperature,
                   not the sampling temperature τ), one forget factor per head ("scalar",
                   as in RetNet but input-dependent) or per key channel ("channel", as in GLA)
    state          per head S (B·H, d_φ, d_head) (and z (B·H, d_φ) without the gate): the layer's whole memory
    form           which form of ``seqlab.ops.linear_attention`` computes the layer: loop, parallel, chunked, stream

The arithmetic lives in ``seqlab.ops.linear_attention``; this module only holds parameters,
folds heads into the batch, and picks the form (``form``). Every form gives the same numbers
(the equivalence harness tests them), so ``form`` changes speed, not results.
"""
from __future__ import annotations

from dataclasses import dataclass

import torch
import torch.nn.functional as F
from torch import nn

from .. import _validate as validate
from ..ops import linear_attention as ops
from .mixer import Mixer, Spec

GATES = (None, "scalar", "channel")


@dataclass
class LinearAttentionConfig:
    """Sizes and options of a ``LinearAttention`` layer (chapter 12)."""

    d_model: int = 64
    n_heads: int = 4
    feature_map: str = "elu1"
    gate: str | None = None  # None: plain linear attention; "scalar"/"channel": gated, no normaliser
    form: str = "chunked"
    chunk: int = 64
    normalize: bool | None = None  # None: True for a positive feature map without a gate, else False
    delta: bool = False  # the delta rule (DeltaNet): S_t = S_{t-1} + β_t k_tᵀ (v_t − k_t S_{t-1}), no normaliser

    def __post_init__(self):
        validate.positive_int("d_model", self.d_model)
        validate.positive_int("n_heads", self.n_heads)
        validate.positive_int("chunk", self.chunk)
        if self.d_model % self.n_heads:
            raise ValueError(f"d_model must be divisible by n_heads, got {self.d_model} and {self.n_heads}")
        forms = tuple(ops.LINEAR_ATTENTION.forms)  # the gated family has the same forms
        if self.form not in forms:
            raise ValueError(f"form must be one of {forms}, got {self.form!r}")
        if self.gate not in GATES:
            raise ValueError(f"gate must be one of {GATES}, got {self.gate!r}")
        if self.feature_map not in ops.FEATURE_MAPS:
            raise ValueError(f"feature_map must be one of {ops.FEATURE_MAPS}, got {self.feature_map!r}")
        if self.gate is not None and self.feature_map == "taylor":
            raise ValueError("a gated layer decays each key channel: use feature_map 'elu1' or 'identity'")
        if not isinstance(self.delta, bool):
            raise TypeError(f"delta must be a bool, got {type(self.delta).__name__}")
        if self.delta and (self.gate is not None or self.feature_map == "taylor" or self.normalize):
            raise ValueError("the delta rule (delta=True) takes no gate, no 'taylor' map and no normaliser, got "
                             f"gate={self.gate!r}, feature_map={self.feature_map!r}, normalize={self.normalize!r}")
        if self.normalize is None:
            self.normalize = self.gate is None and not self.delta and self.feature_map != "identity"
        if not isinstance(self.normalize, bool):
            raise TypeError(f"normalize must be a bool or None, got {type(self.normalize).__name__}")
        if self.gate is not None and self.normalize:
            raise ValueError("gated linear attention has no normaliser: leave normalize=None or set it False")
        if self.gate is None and self.normalize and self.feature_map == "identity":
            raise ValueError("normalize=True needs a positive feature map ('elu1' or 'taylor')")

    @property
    def d_head(self) -> int:
        return self.d_model // self.n_heads

    @property
    def d_phi(self) -> int:
        """Width of φ(k) per head."""
        return ops.feature_dim(self.d_head, self.feature_map)

    def state_numel(self) -> int:
        """Numbers in the state per sequence: S (and z) in every head."""
        per_head = self.d_phi * self.d_head + (0 if self.gate or self.delta else self.d_phi)
        return self.n_heads * per_head


class LinearAttention(Mixer):
    """Causal multi-head (gated) linear attention (chapter 12): ``forward(x, state=None) -> (y, state)``.

    y_t = W_o [φ(q_t) S_t / φ(q_t)·z_t]_heads with S_t = S_{t-1} + φ(k_t)ᵀ v_t (no gate), or
    S_t = diag(α_t) S_{t-1} + φ(k_t)ᵀ v_t, y_t = W_o [φ(q_t) S_t]_heads (gated), or
    S_t = S_{t-1} + β_t k_tᵀ (v_t − k_t S_{t-1}), y_t = W_o [q_t S_t]_heads with unit q, k (delta).
    """

    def __init__(self, config: LinearAttentionConfig):
        super().__init__()
        if not isinstance(config, LinearAttentionConfig):
            raise TypeError(f"config must be a LinearAttentionConfig, got {type(config).__name__}")
        self.config = c = config
        self.family = (ops.DELTA_RULE if c.delta else ops.LINEAR_ATTENTION if c.gate is None
                       else ops.GATED_LINEAR_ATTENTION).name
        self.W_q, self.W_k, self.W_v = (nn.Linear(c.d_model, c.d_model, bias=False) for _ in range(3))
        self.W_o = nn.Linear(c.d_model, c.d_model, bias=False)
        if c.gate is not None:
            width = c.n_heads if c.gate == "scalar" else c.d_model
            self.W_alpha = nn.Linear(c.d_model, width)
            nn.init.constant_(self.W_alpha.bias, 3.0)  # α = sigmoid(3)^(1/16) ≈ 0.997 at the start: a long memory
            self.gate_temp = 16.0
        if c.delta:
            self.W_beta = nn.Linear(c.d_model, c.n_heads)

    def _heads(self, t: torch.Tensor) -> torch.Tensor:  # (B, T, H·d) -> (B·H, T, d)
        B, T, _ = t.shape
        return t.reshape(B, T, self.config.n_heads, -1).transpose(1, 2).reshape(B * self.config.n_heads, T, -1)

    form_attr = "config.form"  # where the form lives (Mixer.form checks and stores it there)

    def state_spec(self, B: int, dtype: torch.dtype):
        c = self.config
        S = Spec((B * c.n_heads, c.d_phi, c.d_head), dtype)  # heads folded into the batch
        return S if c.gate is not None or c.delta else (S, Spec((B * c.n_heads, c.d_phi), dtype))

    def forward(self, x: torch.Tensor, state=None):
        c = self.config
        validate.tensor("x", x, ndim=3, dtype="float", last_dim=c.d_model)
        B, T, _ = x.shape
        self.check_state(state, B, x.dtype)
        q, k, v = self._heads(self.W_q(x)), self._heads(self.W_k(x)), self._heads(self.W_v(x))  # (B·H, T, d_head)
        if c.delta:
            q = F.normalize(ops.feature_map(q, c.feature_map), dim=-1)  # unit queries and keys
            k = F.normalize(ops.feature_map(k, c.feature_map), dim=-1)
            beta = self._heads(torch.sigmoid(self.W_beta(x))).squeeze(-1)  # (B, T, H) -> (B·H, T)
            y, state = ops.DELTA_RULE.forms[c.form](q, k, v, beta, state=state, chunk=c.chunk)
        elif c.gate is None:
            form = ops.LINEAR_ATTENTION.forms[c.form]
            y, state = form(q, k, v, state=state, feature_map=c.feature_map, normalize=c.normalize, chunk=c.chunk)
        else:
            log_alpha = F.logsigmoid(self.W_alpha(x)) / self.gate_temp  # (B, T, H) or (B, T, d_model)
            log_alpha = self._heads(log_alpha)  # (B·H, T, 1) or (B·H, T, d_head)
            form = ops.GATED_LINEAR_ATTENTION.forms[c.form]
            y, state = form(q, k, v, log_alpha, state=state, feature_map=c.feature_map, chunk=c.chunk)
        y = y.reshape(B, c.n_heads, T, c.d_head).transpose(1, 2).reshape(B, T, c.d_model)  # (B, T, d_model)
        return self.W_o(y), state

    def extra_repr(self) -> str:
        c = self.config
        return (f"d_model={c.d_model}, n_heads={c.n_heads}, feature_map={c.feature_map!r}, gate={c.gate!r}, "
                f"delta={c.delta}, form={c.form!r}")
