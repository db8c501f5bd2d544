"""State-space layers: a time-invariant diagonal SSM (S4D) and a selective one (Mamba-style), one block shape (chapter 13).

Glossary (code name -> book notation):

    x              the layer's input, (B, T, d_model)
    in_proj        x -> (u, z): the SSM's input u_t (B, T, E) and a gate z_t, E = expand · d_model
    conv           a short causal depthwise convolution over time (kernel d_conv) before the SSM, then SiLU
    A, B, C, Δ     the SSM: S4D keeps them fixed per channel (log_A_real, A_imag, B, C, log_dt; ZOH);
                   the selective layer computes Δ_t = softplus(W_Δ u_t + b_Δ), B_t = W_B u_t, C_t = W_C u_t
                   from the input and keeps A = −exp(A_log) (S4D-Real init A_n = −n, n = 1..N)
    D              the skip y_t += D u_t
    out            y = W_out (SSM(u) ⊙ SiLU(z)): Mamba's block (Gu & Dao, 2023) with either SSM inside
    state          what the layer carries: (the last d_conv − 1 inputs of the convolution, the SSM's h)
    form           the form of ``seqlab.ops.ssm`` that runs the SSM: one of ``ops.FAMILIES["s4d"].forms``
                   or ``ops.FAMILIES["selective_scan"].forms``

The two layers differ only in where A, B, C, Δ come from, so a comparison between them isolates
*selectivity*. The arithmetic of both SSMs lives in ``seqlab.ops.ssm`` and is tested there.
"""
from __future__ import annotations

import math
from dataclasses import dataclass

import torch
import torch.nn.functional as F
from torch import nn

from .. import _validate as validate
from ..ops import ssm as ops
from .mixer import CausalConv1d, Mixer, Spec

FAMILY = {False: ops.S4D, True: ops.SELECTIVE_SCAN}  # selective -> the ops family that runs the SSM


@dataclass
class SSMConfig:
    """Sizes and options of an ``SSMLayer`` (chapter 13). ``selective=False`` is S4D (time-invariant)."""

    d_model: int = 64
    d_state: int = 8
    expand: int = 2
    d_conv: int = 4
    selective: bool = True
    form: str | None = None  # None: "chunked" for the selective layer, "conv" for S4D
    chunk: int = 8
    dt_min: float = 1e-3
    dt_max: float = 0.1

    def __post_init__(self):
        for name in ("d_model", "d_state", "expand", "d_conv", "chunk"):
            validate.positive_int(name, getattr(self, name))
        if not isinstance(self.selective, bool):
            raise TypeError(f"selective must be a bool, got {type(self.selective).__name__}")
        if self.form is None:
            self.form = "chunked" if self.selective else "conv"
        forms = tuple(FAMILY[self.selective].forms)
        if self.form not in forms:
            kind = "selective" if self.selective else "time-invariant (S4D)"
            raise ValueError(f"form for a {kind} layer must be one of {forms}, got {self.form!r}")
        if not 0 < self.dt_min <= self.dt_max:
            raise ValueError(f"need 0 < dt_min <= dt_max, got {self.dt_min} and {self.dt_max}")

    @property
    def d_inner(self) -> int:
        return self.expand * self.d_model

    @property
    def dt_rank(self) -> int:
        return max(1, math.ceil(self.d_model / 16))

    def state_numel(self) -> int:
        """Numbers in the state per sequence: the SSM's h (complex for S4D counts twice) and the conv buffer."""
        h = self.d_inner * self.d_state * (1 if self.selective else 2)
        return h + self.d_inner * (self.d_conv - 1)


class SSMLayer(Mixer):
    """A Mamba-style block around a time-invariant (S4D) or selective SSM (chapter 13).

    ``forward(x (B, T, d_model), state=None) -> (y (B, T, d_model), state)``. ``state`` is
    ``(conv_buffer (B, d_conv − 1, E), h)``, so a long sequence can be fed in pieces. A ``Mixer``:
    ``form`` is ``config.form``, a form of ``ops.FAMILIES[family]``.
    """

    def __init__(self, config: SSMConfig):
        super().__init__()
        if not isinstance(config, SSMConfig):
            raise TypeError(f"config must be an SSMConfig, got {type(config).__name__}")
        self.config = c = config
        self.family = FAMILY[c.selective].name
        E, N = c.d_inner, c.d_state
        self.in_proj = nn.Linear(c.d_model, 2 * E, bias=False)
        self.conv = CausalConv1d(E, c.d_conv)
        self.out_proj = nn.Linear(E, c.d_model, bias=False)
        self.D = nn.Parameter(torch.ones(E))
        log_dt = math.log(c.dt_min) + torch.rand(E) * (math.log(c.dt_max) - math.log(c.dt_min))
        if c.selective:
            self.x_proj = nn.Linear(E, c.dt_rank + 2 * N, bias=False)  # -> Δ (low rank), B_t, C_t
            self.dt_proj = nn.Linear(c.dt_rank, E)
            with torch.no_grad():  # softplus(bias) = Δ at the start, log-uniform in [dt_min, dt_max]
                dt = torch.exp(log_dt)
                self.dt_proj.bias.copy_(dt + torch.log(-torch.expm1(-dt)))
            self.A_log = nn.Parameter(torch.log(torch.arange(1, N + 1, dtype=torch.float32)).repeat(E, 1))  # (E, N)
        else:
            log_A_real, A_imag = ops.s4d_lin_init(E, N)
            self.log_A_real, self.A_imag = nn.Parameter(log_A_real), nn.Parameter(A_imag)
            self.log_dt = nn.Parameter(log_dt)
            self.B = nn.Parameter(torch.stack([torch.ones(E, N), torch.zeros(E, N)], -1))  # S4D: B = 1
            self.C = nn.Parameter(torch.randn(E, N, 2) * math.sqrt(0.5))  # complex normal, variance 1

    @property
    def form(self) -> str:
        return self.config.form

    @form.setter
    def form(self, value: str) -> None:
        if value not in self.forms:
            raise ValueError(f"form must be one of {', '.join(map(repr, self.forms))}, got {value!r}")
        self.config.form = value

    def state_spec(self, B: int, dtype: torch.dtype):
        c = self.config
        h = (B, c.d_inner, c.d_state) if c.selective else (B, c.d_inner, c.d_state, 2)  # S4D: complex as (re, im)
        return (self.conv.buffer_spec(B, dtype), Spec(h, dtype))

    def forward(self, x: torch.Tensor, state=None):
        c = self.config
        validate.tensor("x", x, ndim=3, dtype="float", last_dim=c.d_model)
        buffer, h = self.check_state(state, x.shape[0], x.dtype) or (None, None)
        u, z = self.in_proj(x).chunk(2, dim=-1)  # (B, T, E) each
        u, buffer = self.conv(u, buffer)
        u = F.silu(u)
        if c.selective:
            dt_low, B_t, C_t = self.x_proj(u).split([c.dt_rank, c.d_state, c.d_state], dim=-1)
            delta = F.softplus(self.dt_proj(dt_low))  # (B, T, E)
            A = -torch.exp(self.A_log)  # (E, N)
            y, h = ops.SELECTIVE_SCAN.forms[c.form](u, delta, A, B_t, C_t, self.D, state=h, chunk=c.chunk)
        else:
            y, h = ops.S4D.forms[c.form](u, self.log_dt, self.log_A_real, self.A_imag, self.B, self.C, self.D,
                                         state=h)
        y = y * F.silu(z)  # (B, T, E)
        return self.out_proj(y), (buffer, h)

    def extra_repr(self) -> str:
        c = self.config
        return (f"d_model={c.d_model}, d_state={c.d_state}, expand={c.expand}, selective={c.selective}, "
                f"form={c.form!r}")
