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

The equations live in ``seqlab.ops.recurrent`` (one function per form); the
modules here hold the parameters and choose a form with ``form=``:
``"loop"`` (the readable reference, the default), ``"stream"`` (one time step at a
time through every layer) or ``"fused"`` (PyTorch's compiled layer on the same weights).
"""
from __future__ import annotations

import math

import torch
from torch import nn

from .. import _validate as validate
from ..ops import recurrent as ops
from .mixer import Mixer, Spec


# ---------------------------------------------------------------- checks shared by rnn, lstm, gru
def _check_input(name: str, x, ndim: int, size: int, module: nn.Module) -> torch.Tensor:
    """``x`` is a float tensor of rank ``ndim`` with last dimension ``size`` and the parameters' dtype."""
    validate.tensor(name, x, ndim=ndim, dtype="float", last_dim=size)
    dtype = next(module.parameters()).dtype
    if x.dtype != dtype:
        raise TypeError(f"{name} must have the parameters' dtype {dtype}, got dtype {x.dtype} "
                        f"(convert one of them with .to())")
    return x  # a sequence of no steps is refused by the ops form that runs it (one check, not two)


def _check_state(name: str, s, shape: tuple, meaning: str, like: torch.Tensor) -> torch.Tensor:
    """``s`` is a float tensor of exactly ``shape`` (no broadcasting) with the dtype of ``like``."""
    validate.tensor(name, s, dtype="float")
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
        self.input_size = validate.positive_int("input_size", input_size)
        self.hidden_size = validate.positive_int("hidden_size", hidden_size)
        if nonlinearity not in ("tanh", "relu"):
            raise ValueError(f"nonlinearity must be 'tanh' or 'relu', got {nonlinearity!r}")
        self.nonlinearity = nonlinearity
        H, D = hidden_size, input_size
        self.W_xh = nn.Parameter(torch.empty(H, D))  # registered in nn.RNN's order: W_x, W_h, b_x, b_h
        self.W_hh = nn.Parameter(torch.empty(H, H))
        self.b_xh = nn.Parameter(torch.empty(H))
        self.b_hh = nn.Parameter(torch.empty(H))
        self.reset_parameters()

    def weights(self) -> tuple[torch.Tensor, ...]:
        """``(W_x, W_h, b_x, b_h)`` in the order of ``seqlab.ops.recurrent``."""
        return self.W_xh, self.W_hh, self.b_xh, self.b_hh

    def set_gate_bias(self) -> None:
        """Nothing to do: the Elman cell has no gate (the LSTM's and GRU's set theirs)."""

    def reset_parameters(self) -> None:
        """PyTorch's default: every weight and bias uniform in [-1/sqrt(H), 1/sqrt(H)]."""
        bound = 1.0 / math.sqrt(self.hidden_size)
        for p in (self.W_xh, self.b_xh, self.W_hh, self.b_hh):
            nn.init.uniform_(p, -bound, bound)

    def forward(self, x_t: torch.Tensor, h_prev: torch.Tensor | None = None) -> torch.Tensor:
        _check_input("x_t", x_t, 2, self.input_size, self)
        B, H = x_t.shape[0], self.hidden_size
        if h_prev is None:
            h_prev = x_t.new_zeros(B, H)
        _check_state("h_prev", h_prev, (B, H), "(B, hidden_size)", x_t)
        return ops.rnn_cell(x_t, h_prev, *self.weights(), nonlinearity=self.nonlinearity)  # (B, H)

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


def _check_form(form, family: str) -> str:
    """``form`` names a form of ``family`` in ``seqlab.ops.recurrent``."""
    if form not in ops.FORMS[family]:
        raise ValueError(f"form must be one of {', '.join(map(repr, ops.FORMS[family]))}, got {form!r}")
    return form


class StackedCells(Mixer):
    """A stack of recurrent cells (chapters 2 and 4), batch first: the common body of ``RNN``, ``LSTM`` and ``GRU``.

    Subclasses set ``family`` (``"rnn"``, ``"lstm"``, ``"gru"``) and fill ``self.cells``. Layer
    l > 0 reads the h_t of layer l - 1 as its x_t. ``forward(x (B, T, D), state=None, form=None) ->
    (outputs (B, T, H), state)``: ``outputs`` are the top layer's h_1..h_T and ``state`` every layer's
    last state, h (L, B, H) or, for the LSTM, (h, c) each (L, B, H). ``form`` (default ``self.form``)
    names the form of ``seqlab.ops.recurrent`` that computes it: ``"loop"``, ``"stream"`` or ``"fused"``.
    ``step`` does one time step through all layers. A ``Mixer``: ``form`` is ``form``, a form of
    ``ops.FAMILIES[family]``.
    """

    family = "rnn"
    state_names = ("h",)


    def state_spec(self, B: int, dtype: torch.dtype):
        spec = Spec((self.num_layers, B, self.hidden_size), dtype)
        return spec if len(self.state_names) == 1 else (spec,) * len(self.state_names)

    def _build(self, form: str, make_cell) -> None:
        """Set ``form`` and the cells, drawing the initial weights in ``nn.RNN``'s order (tested)."""
        self.form = _check_form(form, self.family)
        with torch.random.fork_rng(devices=[]):  # the cells' own draws are replaced just below
            self.cells = nn.ModuleList(make_cell(self.input_size if l == 0 else self.hidden_size)
                                       for l in range(self.num_layers))
        self.reset_parameters()

    def reset_parameters(self) -> None:
        """Like ``nn.RNN``/``nn.LSTM``/``nn.GRU``: uniform in +-1/sqrt(H), drawn layer by layer in the
        order W_x, W_h, b_x, b_h (so a seeded stack starts from the weights PyTorch's would); then
        each cell's gate bias, if it has one."""
        bound = 1.0 / math.sqrt(self.hidden_size)
        with torch.no_grad():
            for cell in self.cells:
                for p in cell.weights():
                    nn.init.uniform_(p, -bound, bound)
                cell.set_gate_bias()

    def weights(self) -> dict[str, tuple[torch.Tensor, ...]]:
        """Every layer's ``W_x, W_h, b_x, b_h``, as the forms of ``seqlab.ops.recurrent`` take them."""
        per_layer = [cell.weights() for cell in self.cells]
        return dict(zip(("W_x", "W_h", "b_x", "b_h"), (tuple(w) for w in zip(*per_layer))))

    def _options(self) -> dict:
        return {}

    def _initial_state(self, state, x: torch.Tensor, names: tuple[str, ...] | None = None):
        """The state, checked (shape (num_layers, B, hidden_size) each, x's dtype); zeros for None."""
        names = names or tuple(f"{n}_0" for n in self.state_names)
        shape = (self.num_layers, x.shape[0], self.hidden_size)
        if state is None:
            parts = tuple(x.new_zeros(shape) for _ in names)
        elif len(names) == 1:
            parts = (state,)
        else:
            if not (isinstance(state, (tuple, list)) and len(state) == len(names)):
                raise TypeError(f"state must be a tuple ({', '.join(self.state_names)}) of two tensors, got "
                                f"{type(state).__name__}"
                                + (f" of length {len(state)}" if isinstance(state, (tuple, list)) else ""))
            parts = tuple(state)
        parts = tuple(_check_state(n, p, shape, "(num_layers, B, hidden_size)", x) for n, p in zip(names, parts))
        return parts[0] if len(parts) == 1 else parts

    def forward(self, x: torch.Tensor, state=None, form: str | None = None):
        _check_input("x", x, 3, self.input_size, self)
        state = self._initial_state(state, x)
        form_fn = ops.FORMS[self.family][_check_form(self.form if form is None else form, self.family)]
        return form_fn(x, **self.weights(), state=state, **self._options())  # (B, T, H), state

    def step(self, x_t: torch.Tensor, state=None):
        """One time step through every layer: ``(x_t (B, D), state) -> (y_t (B, H), state)``.

        ``y_t`` is the top layer's new h_t. O(1) work and memory per step: this is how a trained RNN streams.
        """
        _check_input("x_t", x_t, 2, self.input_size, self)
        state = self._initial_state(state, x_t, names=self.state_names)
        return ops.STEPS[self.family](x_t, **self.weights(), state=state, **self._options())

    def _load_torch_layers(self, module: nn.Module) -> None:
        """Copy ``weight_ih_l{k}``, ``weight_hh_l{k}``, ``bias_ih_l{k}``, ``bias_hh_l{k}`` into cell k."""
        for k, cell in enumerate(self.cells):
            cell._load(*(getattr(module, f"{w}_l{k}") for w in ("weight_ih", "weight_hh", "bias_ih", "bias_hh")))

    @classmethod
    def _copy_torch(cls, module: nn.Module, torch_type: type):
        """A copy of the PyTorch stack ``module`` (weights, dtype, device)."""
        _check_torch_module(module, torch_type, cls.__name__)
        kwargs = {"nonlinearity": module.nonlinearity} if torch_type is nn.RNN else {}
        new = cls(module.input_size, module.hidden_size, module.num_layers, **kwargs).to(module.weight_ih_l0)
        new._load_torch_layers(module)
        return new


class RNN(StackedCells):
    """A stack of ``num_layers`` Elman RNN layers (chapter 2), batch first, like ``nn.RNN(batch_first=True)``.

    Layer l computes ``h_t^l = phi(W_xh^l h_t^{l-1} + b_xh^l + W_hh^l h_{t-1}^l + b_hh^l)`` with
    ``h_t^0 = x_t``. ``forward(x (B, T, D), h_0 (L, B, H) or None, form=None) -> (outputs (B, T, H),
    h_n (L, B, H))``; ``outputs`` are the top layer's h_1..h_T. ``form`` (``"loop"``, ``"stream"``,
    ``"fused"``) picks the form of ``seqlab.ops.recurrent``. ``step`` does one time step through all layers.
    """

    family = "rnn"

    def __init__(self, input_size: int, hidden_size: int, num_layers: int = 1, nonlinearity: str = "tanh",
                 form: str = "loop"):
        super().__init__()
        self.input_size = validate.positive_int("input_size", input_size)
        self.hidden_size = validate.positive_int("hidden_size", hidden_size)
        self.num_layers = validate.positive_int("num_layers", num_layers)
        if nonlinearity not in ops.NONLINEARITIES:
            raise ValueError(f"nonlinearity must be 'tanh' or 'relu', got {nonlinearity!r}")
        self.nonlinearity = nonlinearity
        self._build(form, lambda D_l: RNNCell(D_l, hidden_size, nonlinearity))

    def _options(self) -> dict:
        return {"nonlinearity": self.nonlinearity}

    @classmethod
    def from_torch(cls, rnn: nn.RNN) -> "RNN":
        """A copy of ``nn.RNN`` ``rnn`` (weights, dtype, device); ``weight_ih_l{k}`` becomes ``cells[k].W_xh``."""
        return cls._copy_torch(rnn, nn.RNN)

    def extra_repr(self) -> str:
        return (f"input_size={self.input_size}, hidden_size={self.hidden_size}, "
                f"num_layers={self.num_layers}, nonlinearity={self.nonlinearity!r}, form={self.form!r}")


# ---------------------------------------------------------------- reading both ways
class Bidirectional(nn.Module):
    """One recurrent layer run both ways over the sequence (chapter 2; chapter 5's encoder uses it).

    A forward layer reads x_1..x_T, a backward layer (its own weights) reads x_T..x_1, and each position
    gets both states side by side:

        ->h_t = f(x_t, ->h_{t-1}),    <-h_t = f'(x_t, <-h_{t+1}),    h_t = [->h_t ; <-h_t]

    so h_t summarises the whole input, before and after t: right for an encoder or a tagger that sees
    the whole input, wrong for a language model (it would read the character it must predict).
    ``forward(x (B, T, D), state=None) -> (outputs (B, T, 2H), state)``: ``state`` is h (2, B, H) -- the
    forward layer's last state h_T, then the backward layer's h_1 -- or, for an LSTM, (h, c) each
    (2, B, H), as ``nn.RNN/nn.GRU/nn.LSTM(bidirectional=True, num_layers=1)`` return them. Both
    layers are one-layer ``RNN``, ``GRU`` or ``LSTM`` stacks of the same kind and sizes.
    """

    def __init__(self, forward_layer: StackedCells, backward_layer: StackedCells):
        super().__init__()
        for name, layer in (("forward_layer", forward_layer), ("backward_layer", backward_layer)):
            if not isinstance(layer, StackedCells):
                raise TypeError(f"{name} must be a seqlab RNN, GRU or LSTM, got {type(layer).__name__}")
            if layer.num_layers != 1:
                raise ValueError(f"{name} must have one layer (stack Bidirectional layers for more), got num_layers={layer.num_layers}")
        if type(forward_layer) is not type(backward_layer) or (forward_layer.input_size, forward_layer.hidden_size) != (
                backward_layer.input_size, backward_layer.hidden_size):
            raise ValueError("the two directions must be the same kind of layer with the same sizes, got "
                             f"{type(forward_layer).__name__}({forward_layer.input_size}, {forward_layer.hidden_size}) and "
                             f"{type(backward_layer).__name__}({backward_layer.input_size}, {backward_layer.hidden_size})")
        self.forward_layer, self.backward_layer = forward_layer, backward_layer
        self.input_size, self.hidden_size = forward_layer.input_size, forward_layer.hidden_size

    def _split(self, state, x):
        if state is None:
            return None, None
        if isinstance(state, (tuple, list)):                          # the LSTM's (h, c)
            parts = [self._split(s, x) for s in state]
            return tuple(p[0] for p in parts), tuple(p[1] for p in parts)
        if not isinstance(state, torch.Tensor) or state.dim() != 3 or state.shape[0] != 2:
            got = tuple(state.shape) if isinstance(state, torch.Tensor) else type(state).__name__
            raise ValueError(f"state must have shape (2, B, hidden_size): the two directions' states, got {got}")
        return state[:1], state[1:]

    def forward(self, x: torch.Tensor, state=None):
        _check_input("x", x, 3, self.input_size, self)
        s_f, s_b = self._split(state, x)
        out_f, s_f = self.forward_layer(x, s_f)                       # (B, T, H): ->h_1..->h_T
        out_b, s_b = self.backward_layer(x.flip(1), s_b)              # (B, T, H): <-h_T..<-h_1
        outputs = torch.cat([out_f, out_b.flip(1)], dim=-1)           # (B, T, 2H): [->h_t ; <-h_t]
        if isinstance(s_f, tuple):
            return outputs, tuple(torch.cat([a, b], dim=0) for a, b in zip(s_f, s_b))
        return outputs, torch.cat([s_f, s_b], dim=0)                  # (2, B, H)

    @classmethod
    def from_torch(cls, module: nn.Module) -> "Bidirectional":
        """A copy of a one-layer ``nn.RNN``, ``nn.GRU`` or ``nn.LSTM`` with ``bidirectional=True``:
        ``weight_ih_l0`` goes to the forward layer, ``weight_ih_l0_reverse`` to the backward one."""
        from .gru import GRU
        from .lstm import LSTM

        ours = {nn.RNN: RNN, nn.GRU: GRU, nn.LSTM: LSTM}.get(type(module))
        if ours is None:
            raise TypeError(f"Bidirectional.from_torch expects a torch.nn.RNN, GRU or LSTM, got {type(module).__name__}")
        if not module.bidirectional or module.num_layers != 1 or not module.bias or module.dropout or getattr(module, "proj_size", 0):
            raise ValueError("Bidirectional.from_torch takes one layer with bidirectional=True, biases, no dropout and no "
                             f"projection; got bidirectional={module.bidirectional}, num_layers={module.num_layers}, "
                             f"bias={module.bias}, dropout={module.dropout}")
        if not module.batch_first:
            raise ValueError("Bidirectional.from_torch takes a batch_first=True module (seqlab's layers are batch first)")
        kwargs = {"nonlinearity": module.nonlinearity} if ours is RNN else {}
        layers = []
        for suffix in ("", "_reverse"):
            layer = ours(module.input_size, module.hidden_size, 1, **kwargs).to(module.weight_ih_l0)
            layer.cells[0]._load(*(getattr(module, f"{w}_l0{suffix}") for w in ("weight_ih", "weight_hh", "bias_ih", "bias_hh")))
            layers.append(layer)
        return cls(*layers)
