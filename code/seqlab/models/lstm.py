"""Long short-term memory, cell and multi-layer stack (chapter 4).

Glossary, code name -> book notation:

    x, x_t     input sequence (B, T, D) and one step x_t (B, D)
    h, c       hidden state h_t and cell state c_t, each (B, H); h_prev, c_prev = h_{t-1}, c_{t-1}
    i, f, g, o input gate i_t, forget gate f_t, candidate g_t, output gate o_t, each (B, H)
    W_x, b_x   the four input weights stacked in the order [i, f, g, o]:
               W_x = [W_xi; W_xf; W_xg; W_xo] (4H, D), b_x = [b_xi; b_xf; b_xg; b_xo] (4H,)
    W_h, b_h   the four recurrent weights, same order: W_h (4H, H), b_h (4H,)
    (h_0, c_0), (h_n, c_n)   initial and final states of every layer, each (L, B, H)
    B, T, D, H, L   batch size, time steps, input width, hidden width, layers

The gate equations, at every step t (sigma is the logistic sigmoid, * the
elementwise product):

    i_t = sigma(W_xi x_t + b_xi + W_hi h_{t-1} + b_hi)
    f_t = sigma(W_xf x_t + b_xf + W_hf h_{t-1} + b_hf)
    g_t = tanh (W_xg x_t + b_xg + W_hg h_{t-1} + b_hg)
    o_t = sigma(W_xo x_t + b_xo + W_ho h_{t-1} + b_ho)
    c_t = f_t * c_{t-1} + i_t * g_t
    h_t = o_t * tanh(c_t)

The gate order and the two biases are PyTorch's, so ``LSTM.from_torch(nn.LSTM(...))``
copies ``weight_ih_l{k}`` into ``W_x`` unchanged. ``forget_bias`` sets the
forget gate's total bias b_xf + b_hf, which decides how much c_t keeps at
initialisation (sigma(3) ≈ 0.95: the cell starts out remembering).

The equations live in ``seqlab.ops.recurrent``; ``LSTM`` shares ``StackedCells``
with the RNN and the GRU (its state is the pair (h, c)) and takes the same
``form=`` (``"loop"``, ``"stream"``, ``"fused"``).
"""
from __future__ import annotations

import math

import torch
from torch import nn

from .. import _validate as validate
from ..ops import recurrent as ops
from .rnn import StackedCells, _check_input, _check_state, _check_torch_module

State = tuple[torch.Tensor, torch.Tensor]


def _check_pair(name: str, state) -> State:
    """``state`` is a tuple ``(h, c)`` of two tensors."""
    if not (isinstance(state, (tuple, list)) and len(state) == 2):
        raise TypeError(f"{name} must be a tuple (h, c) of two tensors, got {type(state).__name__}"
                        + (f" of length {len(state)}" if isinstance(state, (tuple, list)) else ""))
    return tuple(state)


class LSTMCell(nn.Module):
    """One LSTM step (chapter 4): ``c_t = f_t * c_{t-1} + i_t * g_t``, ``h_t = o_t * tanh(c_t)``.

    The gates i_t, f_t, g_t, o_t are computed from ``W_x x_t + b_x + W_h h_{t-1} + b_h`` split in
    four (order [i, f, g, o]). ``forward(x_t (B, D), (h_prev, c_prev) each (B, H) or None) -> (h_t, c_t)``.
    ``forget_bias`` (None: PyTorch's init) sets b_xf = forget_bias and b_hf = 0.
    """

    def __init__(self, input_size: int, hidden_size: int, forget_bias: float | None = None):
        super().__init__()
        self.input_size = validate.positive_int("input_size", input_size)
        self.hidden_size = validate.positive_int("hidden_size", hidden_size)
        if forget_bias is not None and (isinstance(forget_bias, bool) or not isinstance(forget_bias, (int, float))):
            raise TypeError(f"forget_bias must be a number or None, got {type(forget_bias).__name__}")
        self.forget_bias = forget_bias
        H, D = hidden_size, input_size
        self.W_x = nn.Parameter(torch.empty(4 * H, D))  # [W_xi; W_xf; W_xg; W_xo]
        self.W_h = nn.Parameter(torch.empty(4 * H, H))  # [W_hi; W_hf; W_hg; W_ho]
        self.b_x = nn.Parameter(torch.empty(4 * H))
        self.b_h = nn.Parameter(torch.empty(4 * H))
        self.reset_parameters()

    def weights(self) -> tuple[torch.Tensor, ...]:
        """``(W_x, W_h, b_x, b_h)`` in the order of ``seqlab.ops.recurrent``."""
        return self.W_x, self.W_h, self.b_x, self.b_h

    @torch.no_grad()
    def reset_parameters(self) -> None:
        """PyTorch's default (uniform in [-1/sqrt(H), 1/sqrt(H)]), then the forget-gate bias if one was given."""
        bound = 1.0 / math.sqrt(self.hidden_size)
        for p in (self.W_x, self.b_x, self.W_h, self.b_h):
            nn.init.uniform_(p, -bound, bound)
        self.set_gate_bias()

    @torch.no_grad()
    def set_gate_bias(self) -> None:
        """b_xf = forget_bias and b_hf = 0, if a ``forget_bias`` was given."""
        if self.forget_bias is not None:
            f = slice(self.hidden_size, 2 * self.hidden_size)  # rows of the forget gate
            self.b_x[f] = self.forget_bias
            self.b_h[f] = 0.0

    def forward(self, x_t: torch.Tensor, state: State | None = None) -> State:
        _check_input("x_t", x_t, 2, self.input_size, self)
        B, H = x_t.shape[0], self.hidden_size
        if state is None:
            state = (x_t.new_zeros(B, H), x_t.new_zeros(B, H))
        h_prev, c_prev = _check_pair("state", state)
        _check_state("h_prev", h_prev, (B, H), "(B, hidden_size)", x_t)
        _check_state("c_prev", c_prev, (B, H), "(B, hidden_size)", x_t)
        return ops.lstm_cell(x_t, (h_prev, c_prev), *self.weights())  # each (B, H)

    @classmethod
    def from_torch(cls, cell: nn.LSTMCell) -> "LSTMCell":
        """A copy of ``nn.LSTMCell`` ``cell``: the same weights, dtype and device."""
        _check_torch_module(cell, nn.LSTMCell, cls.__name__)
        new = cls(cell.input_size, cell.hidden_size).to(cell.weight_ih)
        new._load(cell.weight_ih, cell.weight_hh, cell.bias_ih, cell.bias_hh)
        return new

    @torch.no_grad()
    def _load(self, w_ih, w_hh, b_ih, b_hh) -> None:
        """Copy PyTorch's ``weight_ih, weight_hh, bias_ih, bias_hh`` (gates [i, f, g, o]) into ``W_x, W_h, b_x, b_h``."""
        for ours, theirs in ((self.W_x, w_ih), (self.W_h, w_hh), (self.b_x, b_ih), (self.b_h, b_hh)):
            ours.copy_(theirs)

    def extra_repr(self) -> str:
        return f"input_size={self.input_size}, hidden_size={self.hidden_size}, forget_bias={self.forget_bias}"


class LSTM(StackedCells):
    """A stack of ``num_layers`` LSTM layers (chapter 4), batch first, like ``nn.LSTM(batch_first=True)``.

    Layer l > 0 reads the h_t of layer l - 1 as its x_t. ``forward(x (B, T, D), (h_0, c_0) each
    (L, B, H) or None, form=None) -> (outputs (B, T, H), (h_n, c_n) each (L, B, H))``; ``outputs`` are
    the top layer's h_1..h_T. ``form`` (``"loop"``, ``"stream"``, ``"fused"``) picks the form of
    ``seqlab.ops.recurrent``. ``step`` does one time step through all layers. ``forget_bias`` is passed
    to every ``LSTMCell``.
    """

    family = "lstm"
    state_names = ("h", "c")

    def __init__(self, input_size: int, hidden_size: int, num_layers: int = 1, forget_bias: float | None = None,
                 form: str = "loop"):
        super().__init__()
        self.input_size = validate.positive_int("input_size", input_size)
        self.hidden_size = validate.positive_int("hidden_size", hidden_size)
        self.num_layers = validate.positive_int("num_layers", num_layers)
        self.forget_bias = forget_bias
        self._build(form, lambda D_l: LSTMCell(D_l, hidden_size, forget_bias))

    @classmethod
    def from_torch(cls, lstm: nn.LSTM) -> "LSTM":
        """A copy of ``nn.LSTM`` ``lstm`` (weights, dtype, device); ``weight_ih_l{k}`` becomes ``cells[k].W_x``."""
        return cls._copy_torch(lstm, nn.LSTM)

    def extra_repr(self) -> str:
        return (f"input_size={self.input_size}, hidden_size={self.hidden_size}, "
                f"num_layers={self.num_layers}, forget_bias={self.forget_bias}, form={self.form!r}")
