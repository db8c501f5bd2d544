"""Elman recurrent network, cell and multi-layer stack (chapter 2).

Glossary, code name -> book notation:

    x          input sequence x_1..x_T, shape (B, T, D)
    x_t        one input step x_t, shape (B, D)
    h, h_prev  hidden state h_t and h_{t-1}, shape (B, H)
    W_xh, b_xh input-to-hidden weight W_xh (H, D) and bias b_xh (H,)
    W_hh, b_hh hidden-to-hidden weight W_hh (H, H) and bias b_hh (H,)
    phi        the nonlinearity, tanh (default) or ReLU
    h_0, h_n   initial and final state of every layer, shape (L, B, H)
    B, T, D, H, L   batch size, time steps, input width, hidden width, layers

The update rule, applied at every step t = 1..T:

    h_t = phi(W_xh x_t + b_xh + W_hh h_{t-1} + b_hh)

Layer l > 0 reads the hidden states of layer l - 1 as its inputs x_t. The
weights have the shapes and the two biases of ``nn.RNN``, so
``RNN.from_torch(nn.RNN(...))`` copies a PyTorch module exactly.
"""
from __future__ import annotations

import math

import torch
from torch import nn

from .. import _validate as check


# ---------------------------------------------------------------- checks shared by rnn, lstm, gru
def _check_input(name: str, x, ndim: int, size: int, module: nn.Module) -> torch.Tensor:
    """``x`` is a float tensor of rank ``ndim`` with last dimension ``size`` and the parameters' dtype."""
    check.tensor(name, x, ndim=ndim, dtype="float", last_dim=size)
    dtype = next(module.parameters()).dtype
    if x.dtype != dtype:
        raise TypeError(f"{name} must have the parameters' dtype {dtype}, got dtype {x.dtype} "
                        f"(convert one of them with .to())")
    if ndim == 3 and x.shape[1] == 0:
        raise ValueError(f"{name} must have at least one time step, got shape {tuple(x.shape)}")
    return x


def _check_state(name: str, s, shape: tuple, meaning: str, like: torch.Tensor) -> torch.Tensor:
    """``s`` is a float tensor of exactly ``shape`` (no broadcasting) with the dtype of ``like``."""
    check.tensor(name, s, dtype="float")
    if tuple(s.shape) != tuple(shape):
        raise ValueError(f"{name} must have shape {meaning} = {tuple(shape)}, got shape {tuple(s.shape)}")
    if s.dtype != like.dtype:
        raise TypeError(f"{name} must have dtype {like.dtype} like the input, got dtype {s.dtype}")
    return s


def _check_torch_module(torch_module, expected: type, name: str) -> None:
    """``torch_module`` is a plain ``expected`` (one direction, no projection, with biases, no dropout)."""
    if type(torch_module) is not expected:
        raise TypeError(f"{name}.from_torch expects a torch.nn.{expected.__name__}, got {type(torch_module).__name__}")
    unsupported = {
        "bidirectional": getattr(torch_module, "bidirectional", False),
        "proj_size": getattr(torch_module, "proj_size", 0),
        "bias=False": not torch_module.bias,
        "dropout": getattr(torch_module, "dropout", 0.0),
    }
    used = [k for k, v in unsupported.items() if v]
    if used:
        raise ValueError(f"{name}.from_torch supports one direction, with biases, no projection and no "
                         f"dropout; the module uses {', '.join(used)}")


# ---------------------------------------------------------------- the Elman RNN
class RNNCell(nn.Module):
    """One step of the Elman RNN (chapter 2): ``h_t = phi(W_xh x_t + b_xh + W_hh h_{t-1} + b_hh)``.

    ``forward(x_t (B, D), h_prev (B, H) or None) -> h_t (B, H)``; ``h_prev=None`` means zeros.
    """

    def __init__(self, input_size: int, hidden_size: int, nonlinearity: str = "tanh"):
        super().__init__()
        self.input_size = check.positive_int("input_size", input_size)
        self.hidden_size = check.positive_int("hidden_size", hidden_size)
        if nonlinearity not in ("tanh", "relu"):
            raise ValueError(f"nonlinearity must be 'tanh' or 'relu', got {nonlinearity!r}")
        self.nonlinearity = nonlinearity
        H, D = hidden_size, input_size
        self.W_xh = nn.Parameter(torch.empty(H, D))
        self.b_xh = nn.Parameter(torch.empty(H))
        self.W_hh = nn.Parameter(torch.empty(H, H))
        self.b_hh = nn.Parameter(torch.empty(H))
        self.reset_parameters()

    def reset_parameters(self) -> None:
        """PyTorch's default: every weight and bias uniform in [-1/sqrt(H), 1/sqrt(H)]."""
        bound = 1.0 / math.sqrt(self.hidden_size)
        for p in self.parameters():
            nn.init.uniform_(p, -bound, bound)

    def forward(self, x_t: torch.Tensor, h_prev: torch.Tensor | None = None) -> torch.Tensor:
        _check_input("x_t", x_t, 2, self.input_size, self)
        B, H = x_t.shape[0], self.hidden_size
        if h_prev is None:
            h_prev = x_t.new_zeros(B, H)
        _check_state("h_prev", h_prev, (B, H), "(B, hidden_size)", x_t)
        a = x_t @ self.W_xh.T + self.b_xh + h_prev @ self.W_hh.T + self.b_hh  # (B, H)
        return torch.tanh(a) if self.nonlinearity == "tanh" else torch.relu(a)

    @classmethod
    def from_torch(cls, cell: nn.RNNCell) -> "RNNCell":
        """A copy of ``nn.RNNCell`` ``cell``: the same weights, dtype and device."""
        _check_torch_module(cell, nn.RNNCell, cls.__name__)
        new = cls(cell.input_size, cell.hidden_size, cell.nonlinearity).to(cell.weight_ih)
        new._load(cell.weight_ih, cell.weight_hh, cell.bias_ih, cell.bias_hh)
        return new

    @torch.no_grad()
    def _load(self, w_ih, w_hh, b_ih, b_hh) -> None:
        """Copy PyTorch's ``weight_ih, weight_hh, bias_ih, bias_hh`` into ``W_xh, W_hh, b_xh, b_hh``."""
        for ours, theirs in ((self.W_xh, w_ih), (self.W_hh, w_hh), (self.b_xh, b_ih), (self.b_hh, b_hh)):
            ours.copy_(theirs)

    def extra_repr(self) -> str:
        return f"input_size={self.input_size}, hidden_size={self.hidden_size}, nonlinearity={self.nonlinearity!r}"


class StackedCells(nn.Module):
    """A stack of recurrent cells whose state is one tensor h (the RNN's and the GRU's), batch first (chapter 2).

    Subclasses fill ``self.cells``. Layer l > 0 reads the h_t of layer l - 1 as
    its x_t. ``forward(x (B, T, D), h_0 (L, B, H) or None) -> (outputs (B, T, H),
    h_n (L, B, H))``; ``outputs`` are the top layer's h_1..h_T. ``step`` does one
    time step through all layers.
    """

    def _initial_state(self, h_0, x: torch.Tensor, name: str = "h_0") -> torch.Tensor:
        shape = (self.num_layers, x.shape[0], self.hidden_size)
        if h_0 is None:
            return x.new_zeros(shape)
        return _check_state(name, h_0, shape, "(num_layers, B, hidden_size)", x)

    def forward(self, x: torch.Tensor, h_0: torch.Tensor | None = None) -> tuple[torch.Tensor, torch.Tensor]:
        _check_input("x", x, 3, self.input_size, self)
        h_0 = self._initial_state(h_0, x)  # (L, B, H)
        h_n = []
        for l, cell in enumerate(self.cells):  # the manual path: every layer loops over time
            h, outputs = h_0[l], []
            for t in range(x.shape[1]):
                h = cell(x[:, t], h)  # (B, H)
                outputs.append(h)
            x = torch.stack(outputs, dim=1)  # (B, T, H): the inputs of the next layer
            h_n.append(h)
        return x, torch.stack(h_n)  # (B, T, H), (L, B, H)

    def step(self, x_t: torch.Tensor, h: torch.Tensor | None = None) -> tuple[torch.Tensor, torch.Tensor]:
        """One time step through every layer: ``(x_t (B, D), h (L, B, H)) -> (y_t (B, H), h (L, B, H))``.

        ``y_t`` is the top layer's new h_t. O(1) work and memory per step: this is how a trained RNN streams.
        """
        _check_input("x_t", x_t, 2, self.input_size, self)
        h = self._initial_state(h, x_t, "h")
        new_h = []
        for l, cell in enumerate(self.cells):
            x_t = cell(x_t, h[l])  # (B, H)
            new_h.append(x_t)
        return x_t, torch.stack(new_h)  # (B, H), (L, B, H)

    def _load_torch_layers(self, module: nn.Module) -> None:
        """Copy ``weight_ih_l{k}``, ``weight_hh_l{k}``, ``bias_ih_l{k}``, ``bias_hh_l{k}`` into cell k."""
        for k, cell in enumerate(self.cells):
            cell._load(*(getattr(module, f"{w}_l{k}") for w in ("weight_ih", "weight_hh", "bias_ih", "bias_hh")))


class RNN(StackedCells):
    """A stack of ``num_layers`` Elman RNN layers (chapter 2), batch first, like ``nn.RNN(batch_first=True)``.

    Layer l computes ``h_t^l = phi(W_xh^l h_t^{l-1} + b_xh^l + W_hh^l h_{t-1}^l + b_hh^l)`` with
    ``h_t^0 = x_t``. ``forward(x (B, T, D), h_0 (L, B, H) or None) -> (outputs (B, T, H), h_n (L, B, H))``;
    ``outputs`` are the top layer's h_1..h_T. ``step`` does one time step through all layers.
    """

    def __init__(self, input_size: int, hidden_size: int, num_layers: int = 1, nonlinearity: str = "tanh"):
        super().__init__()
        self.input_size = check.positive_int("input_size", input_size)
        self.hidden_size = check.positive_int("hidden_size", hidden_size)
        self.num_layers = check.positive_int("num_layers", num_layers)
        self.nonlinearity = nonlinearity
        self.cells = nn.ModuleList(
            RNNCell(input_size if l == 0 else hidden_size, hidden_size, nonlinearity) for l in range(num_layers)
        )

    @classmethod
    def from_torch(cls, rnn: nn.RNN) -> "RNN":
        """A copy of ``nn.RNN`` ``rnn`` (weights, dtype, device); ``weight_ih_l{k}`` becomes ``cells[k].W_xh``."""
        _check_torch_module(rnn, nn.RNN, cls.__name__)
        new = cls(rnn.input_size, rnn.hidden_size, rnn.num_layers, rnn.nonlinearity).to(rnn.weight_ih_l0)
        new._load_torch_layers(rnn)
        return new

    def extra_repr(self) -> str:
        return (f"input_size={self.input_size}, hidden_size={self.hidden_size}, "
                f"num_layers={self.num_layers}, nonlinearity={self.nonlinearity!r}")
