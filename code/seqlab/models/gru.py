"""Gated recurrent unit, cell and multi-layer stack (chapter 4), in PyTorch's convention.

Glossary, code name -> book notation:

    x, x_t     input sequence (B, T, D) and one step x_t (B, D)
    h, h_prev  hidden state h_t and h_{t-1}, each (B, H)
    r, z, n    reset gate r_t, update gate z_t, candidate state n_t, each (B, H)
    W_x, b_x   the three input weights stacked in the order [r, z, n]:
               W_x = [W_xr; W_xz; W_xn] (3H, D), b_x = [b_xr; b_xz; b_xn] (3H,)
    W_h, b_h   the three recurrent weights, same order: W_h (3H, H), b_h (3H,)
    h_0, h_n   initial and final state of every layer, (L, B, H)
    B, T, D, H, L   batch size, time steps, input width, hidden width, layers

The gate equations, at every step t (sigma is the logistic sigmoid, * the
elementwise product):

    r_t = sigma(W_xr x_t + b_xr + W_hr h_{t-1} + b_hr)
    z_t = sigma(W_xz x_t + b_xz + W_hz h_{t-1} + b_hz)
    n_t = tanh (W_xn x_t + b_xn + r_t * (W_hn h_{t-1} + b_hn))
    h_t = (1 - z_t) * n_t + z_t * h_{t-1}

So z_t near 1 keeps the old state. (PyTorch's convention, followed here so that
``GRU.from_torch(nn.GRU(...))`` copies ``weight_ih_l{k}`` into ``W_x`` unchanged;
some texts swap the roles of z_t and 1 - z_t, and put r_t before W_hn.)
``update_bias`` sets the update gate's total bias b_xz + b_hz: a positive value
starts the unit out copying h_{t-1} forward. Exercise 4.4 measures what it changes on chapter 4's
delayed recall at its longest lag, against the default.
The equations live in ``seqlab.ops.recurrent``; ``GRU`` takes the ``form=`` of
every stack (``"loop"``, ``"stream"``, ``"fused"``).
"""
from __future__ import annotations

import math

import torch
from torch import nn

from .. import _validate as validate
from ..ops import recurrent as ops
from .rnn import StackedCells, _check_input, _check_state, _check_torch_module


class GRUCell(nn.Module):
    """One GRU step (chapter 4): ``h_t = (1 - z_t) * n_t + z_t * h_{t-1}``,
    ``n_t = tanh(W_xn x_t + b_xn + r_t * (W_hn h_{t-1} + b_hn))``.

    ``forward(x_t (B, D), h_prev (B, H) or None) -> h_t (B, H)``. ``update_bias`` (None: PyTorch's
    init) sets b_xz = update_bias and b_hz = 0.
    """

    def __init__(self, input_size: int, hidden_size: int, update_bias: float | None = None):
        super().__init__()
        self.input_size = validate.positive_int("input_size", input_size)
        self.hidden_size = validate.positive_int("hidden_size", hidden_size)
        if update_bias is not None and (isinstance(update_bias, bool) or not isinstance(update_bias, (int, float))):
            raise TypeError(f"update_bias must be a number or None, got {type(update_bias).__name__}")
        self.update_bias = update_bias
        H, D = hidden_size, input_size
        self.W_x = nn.Parameter(torch.empty(3 * H, D))  # [W_xr; W_xz; W_xn]
        self.W_h = nn.Parameter(torch.empty(3 * H, H))  # [W_hr; W_hz; W_hn]
        self.b_x = nn.Parameter(torch.empty(3 * H))
        self.b_h = nn.Parameter(torch.empty(3 * H))
        self.reset_parameters()

    def weights(self) -> tuple[torch.Tensor, ...]:
        """``(W_x, W_h, b_x, b_h)`` in the order of ``seqlab.ops.recurrent``."""
        return self.W_x, self.W_h, self.b_x, self.b_h

    @torch.no_grad()
    def reset_parameters(self) -> None:
        """PyTorch's default (uniform in [-1/sqrt(H), 1/sqrt(H)]), then the update-gate bias if one was given."""
        bound = 1.0 / math.sqrt(self.hidden_size)
        for p in (self.W_x, self.b_x, self.W_h, self.b_h):
            nn.init.uniform_(p, -bound, bound)
        self.set_gate_bias()

    @torch.no_grad()
    def set_gate_bias(self) -> None:
        """b_xz = update_bias and b_hz = 0, if an ``update_bias`` was given."""
        if self.update_bias is not None:
            z = slice(self.hidden_size, 2 * self.hidden_size)  # rows of the update gate
            self.b_x[z] = self.update_bias
            self.b_h[z] = 0.0

    def forward(self, x_t: torch.Tensor, h_prev: torch.Tensor | None = None) -> torch.Tensor:
        _check_input("x_t", x_t, 2, self.input_size, self)
        B, H = x_t.shape[0], self.hidden_size
        if h_prev is None:
            h_prev = x_t.new_zeros(B, H)
        _check_state("h_prev", h_prev, (B, H), "(B, hidden_size)", x_t)
        return ops.gru_cell(x_t, h_prev, *self.weights())  # (B, H)

    @classmethod
    def from_torch(cls, cell: nn.GRUCell) -> "GRUCell":
        """A copy of ``nn.GRUCell`` ``cell``: the same weights, dtype and device."""
        _check_torch_module(cell, nn.GRUCell, cls.__name__)
        new = cls(cell.input_size, cell.hidden_size).to(cell.weight_ih)
        new._load(cell.weight_ih, cell.weight_hh, cell.bias_ih, cell.bias_hh)
        return new

    @torch.no_grad()
    def _load(self, w_ih, w_hh, b_ih, b_hh) -> None:
        """Copy PyTorch's ``weight_ih, weight_hh, bias_ih, bias_hh`` (gates [r, z, n]) into ``W_x, W_h, b_x, b_h``."""
        for ours, theirs in ((self.W_x, w_ih), (self.W_h, w_hh), (self.b_x, b_ih), (self.b_h, b_hh)):
            ours.copy_(theirs)

    def extra_repr(self) -> str:
        return f"input_size={self.input_size}, hidden_size={self.hidden_size}, update_bias={self.update_bias}"


class GRU(StackedCells):
    """A stack of ``num_layers`` GRU layers (chapter 4), batch first, like ``nn.GRU(batch_first=True)``.

    Layer l > 0 reads the h_t of layer l - 1 as its x_t. ``forward(x (B, T, D), h_0 (L, B, H) or None,
    form=None) -> (outputs (B, T, H), h_n (L, B, H))``; ``outputs`` are the top layer's h_1..h_T. ``form``
    (``"loop"``, ``"stream"``, ``"fused"``) picks the form of ``seqlab.ops.recurrent``. ``step`` does one
    time step through all layers. ``update_bias`` is passed to every ``GRUCell``.
    """

    family = "gru"

    def __init__(self, input_size: int, hidden_size: int, num_layers: int = 1, update_bias: float | None = None,
                 form: str = "loop"):
        super().__init__()
        self.input_size = validate.positive_int("input_size", input_size)
        self.hidden_size = validate.positive_int("hidden_size", hidden_size)
        self.num_layers = validate.positive_int("num_layers", num_layers)
        self.update_bias = update_bias
        self._build(form, lambda D_l: GRUCell(D_l, hidden_size, update_bias))

    @classmethod
    def from_torch(cls, gru: nn.GRU) -> "GRU":
        """A copy of ``nn.GRU`` ``gru`` (weights, dtype, device); ``weight_ih_l{k}`` becomes ``cells[k].W_x``."""
        return cls._copy_torch(gru, nn.GRU)

    def extra_repr(self) -> str:
        return (f"input_size={self.input_size}, hidden_size={self.hidden_size}, "
                f"num_layers={self.num_layers}, update_bias={self.update_bias}, form={self.form!r}")
