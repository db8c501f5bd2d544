"""State-space layers: a time-invariant diagonal SSM (S4D), a selective one (Mamba) and Mamba-2's SSD, one block shape (chapter 13).

Glossary (code name -> book notation):

    x              the layer's input, (B, T, d_model)
    in_proj        x -> (u, z): the SSM's input u_t (B, T, E) and a gate z_t, E = expand · d_model
    conv           a short causal depthwise convolution over time (kernel d_conv) before the SSM, then SiLU
    A, B, C, Δ     the SSM: S4D keeps them fixed per channel (log_A_real, A_imag, B, C, log_dt; ZOH);
                   the selective layer computes Δ_t = softplus(W_Δ u_t + b_Δ), B_t = W_B u_t, C_t = W_C u_t
                   from the input and keeps A = −exp(A_log) (S4D-Real init A_n = −n, n = 1..N)
    heads          H: with ``heads`` set, Mamba-2's SSD (Dao & Gu, 2024): u is cut into H heads of width
                   P = E / H, each with one scalar decay A_h = −exp(A_log_h) (init A_h ∈ [−16, −1]) and one
                   step Δ_{t,h} = softplus(W_Δ u_t + b_Δ)_h; B_t, C_t (N each) are shared by the heads
    D              the skip y_t += D u_t (one per channel; with ``heads``, one per head)
    out            y = W_out (SSM(u) ⊙ SiLU(z)): Mamba's block (Gu & Dao, 2023) with either SSM inside
    state          what the layer carries: (the last d_conv − 1 inputs of the convolution, the SSM's h):
                   h is (B, E, N) (selective), (B, E, N, 2) (S4D, complex) or (B, H, N, P) (SSD)
    form           the form that runs the SSM: one of ``ops.FAMILIES["s4d"].forms``,
                   ``ops.FAMILIES["selective_scan"].forms`` or ``ops.FAMILIES["ssd"].forms``

The layers differ only in where A, B, C, Δ come from, so a comparison between them isolates
*selectivity* (and, with ``heads``, a scalar decay per head instead of a diagonal A). The arithmetic of the
SSMs lives in ``seqlab.ops.ssm`` and ``seqlab.ops.ssd`` and is tested there.
"""
from __future__ import annotations

import math
from dataclasses import dataclass

import torch
import torch.nn.functional as F
from torch import nn

from .. import _validate as validate
from ..ops import ssm as ops
from ..ops.ssd import SSD
from .mixer import CausalConv1d, Mixer, Spec

FAMILY = {False: ops.S4D, True: ops.SELECTIVE_SCAN}  # selective -> the ops family that runs the SSM (without heads)


def _family(config: "SSMConfig"):
    """The ops family that runs the SSM: SSD with ``heads``, else the selective scan or S4D."""
    return SSD if config.heads is not None else FAMILY[config.selective]


@dataclass
class SSMConfig:
    """Sizes and options of an ``SSMLayer`` (chapter 13). ``selective=False`` is S4D (time-invariant); ``heads=H``
    (selective only) is Mamba-2's SSD with H heads of width d_inner / H, one scalar decay each."""

    d_model: int = 64
    d_state: int = 8
    expand: int = 2
    d_conv: int = 4
    selective: bool = True
    form: str | None = None  # None: "chunked" for the selective layer, "conv" for S4D
    chunk: int = 8
    dt_min: float = 1e-3
    dt_max: float = 0.1
    heads: int | None = None  # None: a diagonal A per channel; H: Mamba-2's SSD, one scalar decay per head

    def __post_init__(self):
        for name in ("d_model", "d_state", "expand", "d_conv", "chunk"):
            validate.positive_int(name, getattr(self, name))
        if not isinstance(self.selective, bool):
            raise TypeError(f"selective must be a bool, got {type(self.selective).__name__}")
        if self.heads is not None:
            validate.positive_int("heads", self.heads)
            if not self.selective:
                raise ValueError("heads (Mamba-2's SSD) needs a selective layer, got selective=False")
            if self.d_inner % self.heads:
                raise ValueError(f"heads must divide d_inner = expand · d_model = {self.d_inner}, got heads={self.heads}")
        if self.form is None:
            self.form = "chunked" if self.selective else "conv"
        forms = tuple(_family(self).forms)
        if self.form not in forms:
            kind = "an SSD" if self.heads is not None else ("a selective" if self.selective else "a time-invariant (S4D)")
            raise ValueError(f"form for {kind} layer must be one of {forms}, got {self.form!r}")
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
    ``form`` is ``config.form``, a form of ``ops.FAMILIES[family]``. With ``config.heads`` = H the SSM is
    Mamba-2's SSD (``seqlab.ops.ssd``): per head h_t = exp(Δ_t A) h_{t−1} + B_tᵀ (Δ_t u_t), y_t = C_t h_t + D u_t.
    """

    def __init__(self, config: SSMConfig):
        super().__init__()
        if not isinstance(config, SSMConfig):
            raise TypeError(f"config must be an SSMConfig, got {type(config).__name__}")
        self.config = c = config
        self.family = _family(c).name
        E, N = c.d_inner, c.d_state
        self.in_proj = nn.Linear(c.d_model, 2 * E, bias=False)
        self.conv = CausalConv1d(E, c.d_conv)
        self.out_proj = nn.Linear(E, c.d_model, bias=False)
        if c.heads is not None:  # Mamba-2: Δ per head, B_t and C_t shared by the heads, A and D one scalar per head
            H = c.heads
            self.D = nn.Parameter(torch.ones(H))
            self.x_proj = nn.Linear(E, H + 2 * N, bias=False)  # -> Δ (before softplus), B_t, C_t
            dt = torch.exp(math.log(c.dt_min) + torch.rand(H) * (math.log(c.dt_max) - math.log(c.dt_min)))
            self.dt_bias = nn.Parameter(dt + torch.log(-torch.expm1(-dt)))  # softplus(dt_bias) = Δ at the start
            self.A_log = nn.Parameter(torch.log(torch.empty(H).uniform_(1, 16)))  # A_h = −exp(A_log_h) ∈ [−16, −1]
            return
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

    form_attr = "config.form"  # where the form lives (Mixer.form checks and stores it there)

    def state_spec(self, B: int, dtype: torch.dtype):
        c = self.config
        h = (B, c.d_inner, c.d_state) if c.selective else (B, c.d_inner, c.d_state, 2)  # S4D: complex as (re, im)
        if c.heads is not None:
            h = (B, c.heads, c.d_state, c.d_inner // c.heads)  # SSD: an N × P matrix per head
        return (self.conv.buffer_spec(B, dtype), Spec(h, dtype))

    def forward(self, x: torch.Tensor, state=None):
        c = self.config
        validate.tensor("x", x, ndim=3, dtype="float", last_dim=c.d_model)
        buffer, h = self.check_state(state, x.shape[0], x.dtype) or (None, None)
        u, z = self.in_proj(x).chunk(2, dim=-1)  # (B, T, E) each
        u, buffer = self.conv(u, buffer)
        u = F.silu(u)
        if c.heads is not None:
            y, h = self._ssd(u, h)
        elif c.selective:
            dt_low, B_t, C_t = self.x_proj(u).split([c.dt_rank, c.d_state, c.d_state], dim=-1)
            delta = F.softplus(self.dt_proj(dt_low))  # (B, T, E)
            A = -torch.exp(self.A_log)  # (E, N)
            y, h = ops.SELECTIVE_SCAN.forms[c.form](u, delta, A, B_t, C_t, self.D, state=h, chunk=c.chunk)
        else:
            y, h = ops.S4D.forms[c.form](u, self.log_dt, self.log_A_real, self.A_imag, self.B, self.C, self.D,
                                         state=h)
        y = y * F.silu(z)  # (B, T, E)
        return self.out_proj(y), (buffer, h)

    def _ssd(self, u: torch.Tensor, h):
        """Mamba-2's SSM on the convolved input u (B, T, E): H heads of width P, one scalar decay each."""
        c = self.config
        (Bsz, T, E), H = u.shape, c.heads
        dt_raw, B_t, C_t = self.x_proj(u).split([H, c.d_state, c.d_state], dim=-1)  # (B, T, H), (B, T, N) twice
        delta = F.softplus(dt_raw + self.dt_bias).transpose(1, 2)  # (B, H, T)
        A = -torch.exp(self.A_log)  # (H,): a_t = exp(Δ_t A) ∈ (0, 1)
        x = u.view(Bsz, T, H, E // H).transpose(1, 2)  # (B, H, T, P)
        y, h = SSD.forms[c.form](x, delta, B_t, C_t, A, self.D, state=h, chunk=c.chunk)  # (B, H, T, P)
        return y.transpose(1, 2).reshape(Bsz, T, E), h

    def extra_repr(self) -> str:
        c = self.config
        return (f"d_model={c.d_model}, d_state={c.d_state}, expand={c.expand}, selective={c.selective}, "
                + (f"heads={c.heads}, " if c.heads is not None else "") + f"form={c.form!r}")
