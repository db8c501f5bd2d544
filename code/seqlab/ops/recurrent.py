"""Recurrent cells as functions: the Elman RNN (chapter 2), the LSTM and the GRU (chapter 4), each in three forms.

Glossary, code name -> book notation:

    x          input sequence x_1..x_T, shape (B, T, D)
    x_t        one input step x_t, shape (B, D)
    h, c       hidden state h_t (every cell) and cell state c_t (the LSTM), each (B, H) per layer
    W_x, b_x   input weights and bias of one layer, gates stacked: (G H, D_l), (G H,)
    W_h, b_h   recurrent weights and bias of one layer: (G H, H), (G H,)
               G = 1 (RNN), 4 (LSTM, gates [i, f, g, o]) or 3 (GRU, gates [r, z, n]); D_0 = D, D_l = H after
    state      every layer's state: h (L, B, H) for the RNN and the GRU, (h, c) each (L, B, H) for the LSTM
    B, T, D, H, L   batch size, time steps, input width, hidden width, layers

The cell equations (sigma the logistic sigmoid, * the elementwise product):

    RNN   h_t = phi(W_x x_t + b_x + W_h h_{t-1} + b_h),  phi = tanh or ReLU
    LSTM  [i; f; g; o] = W_x x_t + b_x + W_h h_{t-1} + b_h,  i, f, o through sigma, g through tanh,
          c_t = f * c_{t-1} + i * g,  h_t = o * tanh(c_t)
    GRU   [x_r; x_z; x_n] = W_x x_t + b_x,  [h_r; h_z; h_n] = W_h h_{t-1} + b_h,
          r = sigma(x_r + h_r),  z = sigma(x_z + h_z),  n = tanh(x_n + r * h_n),
          h_t = (1 - z) * n + z * h_{t-1}

Layer l > 0 reads the hidden states h_t of layer l - 1 as its inputs. The weight
layout and the two biases are PyTorch's (``weight_ih_l{k}`` is ``W_x[k]``), so the
``fused`` form hands them to PyTorch's own kernel unchanged.

Each family has three forms with one signature,
``form(x, W_x, W_h, b_x, b_h, state=None, **options) -> (y (B, T, H), state)``,
where ``W_x, W_h, b_x, b_h`` are tuples with one tensor per layer and ``y`` is the
top layer's h_1..h_T:

    loop   the reference: layer by layer, one Python step per t, the cell equations above
    stream time step by time step, each through every layer with ``rnn_step``/``lstm_step``/``gru_step``:
           what a language model runs when it streams one token at a time
    fused  PyTorch's compiled layer (``torch._VF.rnn_tanh``/``rnn_relu``/``lstm``/``gru``, what ``nn.RNN``,
           ``nn.LSTM`` and ``nn.GRU`` call) on the same weights: the same numbers, faster (chapter 4's table and the benchmarks page time it)
"""
from __future__ import annotations

from typing import Callable

import torch

from .. import _validate as validate
from .registry import Case, Family, Problem, register_family

GATES = {"rnn": 1, "lstm": 4, "gru": 3}  # G: how many blocks of H rows W_x and W_h stack
PARTS = {"rnn": 1, "lstm": 2, "gru": 1}  # tensors in the state: h, or (h, c)
NONLINEARITIES = ("tanh", "relu")


# ---------------------------------------------------------------- one cell, one step (the equations)
def rnn_cell(x_t: torch.Tensor, h_prev: torch.Tensor, W_x, W_h, b_x, b_h, nonlinearity: str = "tanh") -> torch.Tensor:
    """One Elman step (chapter 2): ``h_t = phi(W_x x_t + b_x + W_h h_{t-1} + b_h)``; x_t (B, D), h_prev (B, H)."""
    a = x_t @ W_x.T + b_x + h_prev @ W_h.T + b_h  # (B, H)
    return torch.tanh(a) if nonlinearity == "tanh" else torch.relu(a)


def lstm_cell_gates(x_t: torch.Tensor, state: tuple[torch.Tensor, torch.Tensor], W_x, W_h, b_x, b_h):
    """One LSTM step and its gates (chapter 4): ``((h_t, c_t), (i, f, g, o))``, each (B, H).

    ``c_t = f * c_{t-1} + i * g``, ``h_t = o * tanh(c_t)``; ``lstm_cell`` is its first half,
    ``seqlab.probes.lstm_gates`` reads the second.
    """
    h_prev, c_prev = state  # each (B, H)
    gates = x_t @ W_x.T + b_x + h_prev @ W_h.T + b_h  # (B, 4H)
    i, f, g, o = gates.chunk(4, dim=-1)  # each (B, H)
    i, f, g, o = torch.sigmoid(i), torch.sigmoid(f), torch.tanh(g), torch.sigmoid(o)
    c = f * c_prev + i * g
    return (o * torch.tanh(c), c), (i, f, g, o)


def lstm_cell(x_t: torch.Tensor, state: tuple[torch.Tensor, torch.Tensor], W_x, W_h, b_x, b_h):
    """One LSTM step (chapter 4): ``c_t = f * c_{t-1} + i * g``, ``h_t = o * tanh(c_t)``; returns ``(h_t, c_t)``."""
    return lstm_cell_gates(x_t, state, W_x, W_h, b_x, b_h)[0]


def gru_cell(x_t: torch.Tensor, h_prev: torch.Tensor, W_x, W_h, b_x, b_h) -> torch.Tensor:
    """One GRU step (chapter 4): ``h_t = (1 - z) * n + z * h_{t-1}``, ``n = tanh(x_n + r * (W_hn h_{t-1} + b_hn))``."""
    x_r, x_z, x_n = (x_t @ W_x.T + b_x).chunk(3, dim=-1)  # each (B, H)
    h_r, h_z, h_n = (h_prev @ W_h.T + b_h).chunk(3, dim=-1)  # each (B, H)
    r = torch.sigmoid(x_r + h_r)
    z = torch.sigmoid(x_z + h_z)
    n = torch.tanh(x_n + r * h_n)
    return (1 - z) * n + z * h_prev


def _cell(family: str, options: dict) -> Callable:
    """The family's cell as ``cell(x_t, parts, W_x, W_h, b_x, b_h) -> parts``, ``parts`` a tuple ``(h,)`` or ``(h, c)``."""
    if family == "rnn":
        nonlinearity = options.get("nonlinearity", "tanh")
        return lambda x_t, s, *w: (rnn_cell(x_t, s[0], *w, nonlinearity=nonlinearity),)
    if family == "lstm":
        return lambda x_t, s, *w: lstm_cell(x_t, s, *w)
    return lambda x_t, s, *w: (gru_cell(x_t, s[0], *w),)


# ---------------------------------------------------------------- checks and the state's two spellings
def _check(family: str, x, W_x, W_h, b_x, b_h, state, options: dict, ndim: int = 3) -> tuple[torch.Tensor, ...]:
    """Check the arguments of a form; return the state as a tuple of (L, B, H) tensors (zeros for None)."""
    if set(options) - ({"nonlinearity"} if family == "rnn" else set()):
        raise TypeError(f"{family} forms take no option(s) {sorted(set(options) - {'nonlinearity'})}")
    if options.get("nonlinearity", "tanh") not in NONLINEARITIES:
        raise ValueError(f"nonlinearity must be 'tanh' or 'relu', got {options['nonlinearity']!r}")
    validate.tensor("x" if ndim == 3 else "x_t", x, ndim=ndim, dtype="float")
    if ndim == 3:
        validate.time_steps("x", x)
    weights = {"W_x": W_x, "W_h": W_h, "b_x": b_x, "b_h": b_h}
    for name, w in weights.items():
        if not isinstance(w, (tuple, list)) or not w or not all(isinstance(t, torch.Tensor) for t in w):
            raise TypeError(f"{name} must be a non-empty tuple of tensors, one per layer, got {type(w).__name__}")
    L = len(W_x)
    if not len(W_h) == len(b_x) == len(b_h) == L:
        raise ValueError(f"W_x, W_h, b_x and b_h must have one tensor per layer each, got lengths "
                         f"{[len(w) for w in weights.values()]}")
    G = GATES[family]
    if W_h[0].dim() != 2:  # H is read from it: a W_h of another rank would be blamed on W_x
        raise ValueError(f"W_h[0] of a {family} layer must have 2 dimensions, ({G}·H, H), got shape {tuple(W_h[0].shape)}")
    H = W_h[0].shape[-1]
    for l in range(L):
        D_l = x.shape[-1] if l == 0 else H
        want = {"W_x": (G * H, D_l), "W_h": (G * H, H), "b_x": (G * H,), "b_h": (G * H,)}
        for name, shape in want.items():
            got = weights[name][l]
            if tuple(got.shape) != shape:
                raise ValueError(f"{name}[{l}] of a {family} layer must have shape {shape}, got {tuple(got.shape)}")
            if got.dtype != x.dtype:
                raise TypeError(f"{name}[{l}] must have the input's dtype {x.dtype}, got {got.dtype}")
    shape = (L, x.shape[0], H)
    if state is None:
        return tuple(x.new_zeros(shape) for _ in range(PARTS[family]))
    parts = (state,) if PARTS[family] == 1 else state
    spelled = "a tensor h" if PARTS[family] == 1 else "a tuple (h, c) of tensors"
    if PARTS[family] == 1 and not isinstance(state, torch.Tensor):
        raise TypeError(f"the state of a {family} must be {spelled}, got {type(state).__name__}")
    if PARTS[family] == 2 and not (isinstance(state, (tuple, list)) and len(state) == 2):
        raise TypeError(f"the state of an lstm must be {spelled}, got {type(state).__name__}")
    for name, s in zip(("h", "c"), parts):
        validate.tensor(name, s, dtype="float")
        if tuple(s.shape) != shape:
            raise ValueError(f"{name} must have shape (L, B, H) = {shape}, got shape {tuple(s.shape)}")
        if s.dtype != x.dtype:
            raise TypeError(f"{name} must have the input's dtype {x.dtype}, got {s.dtype}")
    return tuple(parts)


def _spell(family: str, parts) -> torch.Tensor | tuple[torch.Tensor, torch.Tensor]:
    """The state as the family spells it: h, or (h, c)."""
    return parts[0] if PARTS[family] == 1 else tuple(parts)


# ---------------------------------------------------------------- the forms
def _loop(family: str, x, W_x, W_h, b_x, b_h, state=None, **options):
    parts = _check(family, x, W_x, W_h, b_x, b_h, state, options)
    cell = _cell(family, options)
    final = []
    for l in range(len(W_x)):  # every layer reads the whole output sequence of the one below
        s = tuple(p[l] for p in parts)  # each (B, H)
        outputs = []
        for x_t in x.unbind(1):  # views whose backward is one stack: x[:, t] would add a (B, T, D) gradient per step
            s = cell(x_t, s, W_x[l], W_h[l], b_x[l], b_h[l])
            outputs.append(s[0])  # h_t
        x = torch.stack(outputs, dim=1)  # (B, T, H): the inputs of the next layer
        final.append(s)
    return x, _spell(family, tuple(torch.stack(p) for p in zip(*final)))  # (B, T, H), (L, B, H) each


def _step(family: str, x_t, W_x, W_h, b_x, b_h, state=None, **options):
    parts = _check(family, x_t, W_x, W_h, b_x, b_h, state, options, ndim=2)
    cell = _cell(family, options)
    new = []
    for l in range(len(W_x)):  # one time step, up through the layers
        s = cell(x_t, tuple(p[l] for p in parts), W_x[l], W_h[l], b_x[l], b_h[l])
        x_t = s[0]  # (B, H): this layer's h_t is the next layer's input
        new.append(s)
    return x_t, _spell(family, tuple(torch.stack(p) for p in zip(*new)))  # (B, H), (L, B, H) each


def _stream(family: str, x, W_x, W_h, b_x, b_h, state=None, **options):
    _check(family, x, W_x, W_h, b_x, b_h, state, options)
    ys = []
    for x_t in x.unbind(1):
        y_t, state = _step(family, x_t, W_x, W_h, b_x, b_h, state, **options)
        ys.append(y_t)
    return torch.stack(ys, dim=1), state  # (B, T, H)


def _fused(family: str, x, W_x, W_h, b_x, b_h, state=None, **options):
    parts = _check(family, x, W_x, W_h, b_x, b_h, state, options)
    flat = [w for l in range(len(W_x)) for w in (W_x[l], W_h[l], b_x[l], b_h[l])]  # nn.RNN's _flat_weights order
    args = (flat, True, len(W_x), 0.0, False, False, True)  # biases, layers, dropout, train, bidirectional, batch_first
    if family == "lstm":
        y, h, c = torch._VF.lstm(x, parts, *args)
        return y, (h, c)
    kernel = {"gru": torch._VF.gru, "rnn": getattr(torch._VF, f"rnn_{options.get('nonlinearity', 'tanh')}")}[family]
    y, h = kernel(x, parts[0], *args)
    return y, h


def _forms(family: str, chapter: int, name: str) -> tuple[Callable, ...]:
    """The public loop, step-over-T, fused and single-step functions of ``family``, with their docstrings."""
    state = "h (L, B, H)" if PARTS[family] == 1 else "(h, c) each (L, B, H)"
    opt = ", nonlinearity='tanh'" if family == "rnn" else ""

    def loop(x, W_x, W_h, b_x, b_h, state=None, **options):
        return _loop(family, x, W_x, W_h, b_x, b_h, state, **options)

    def stream(x, W_x, W_h, b_x, b_h, state=None, **options):
        return _stream(family, x, W_x, W_h, b_x, b_h, state, **options)

    def fused(x, W_x, W_h, b_x, b_h, state=None, **options):
        return _fused(family, x, W_x, W_h, b_x, b_h, state, **options)

    def step(x_t, W_x, W_h, b_x, b_h, *, state=None, **options):
        return _step(family, x_t, W_x, W_h, b_x, b_h, state, **options)

    sig = f"(x (B, T, D), W_x, W_h, b_x, b_h, state=None{opt}) -> (y (B, T, H), {state})"
    loop.__doc__ = (f"{name}, the reference (chapter {chapter}): layer by layer, one Python step per t. "
                    f"``{family}_loop{sig}``; ``state=None`` starts from zeros.")
    stream.__doc__ = (f"{name}, the streaming form: ``{family}_step`` once per token, through every layer "
                      f"(chapter {chapter}). ``{family}_stream{sig}``.")
    fused.__doc__ = (f"{name} by PyTorch's compiled layer on the same weights, what ``nn.{name.split()[0]}`` "
                     f"runs (chapter {chapter}): on a CPU a C++ loop over the steps, or fused oneDNN calls where "
                     f"PyTorch has them (chapter 4 counts which). ``{family}_fused{sig}``.")
    step.__doc__ = (f"One time step of a {name} through every layer (chapter {chapter}): "
                    f"``{family}_step(x_t (B, D), W_x, W_h, b_x, b_h, *, state=None{opt}) -> (y_t (B, H), {state})``; "
                    f"``y_t`` is the top layer's new h_t. O(1) work and memory per step: how a trained model streams.")
    for f, suffix in ((loop, "loop"), (stream, "stream"), (fused, "fused"), (step, "step")):
        f.__name__ = f.__qualname__ = f"{family}_{suffix}"
    return loop, stream, fused, step


rnn_loop, rnn_stream, rnn_fused, rnn_step = _forms("rnn", 2, "RNN (Elman) stack")
lstm_loop, lstm_stream, lstm_fused, lstm_step = _forms("lstm", 4, "LSTM stack")
gru_loop, gru_stream, gru_fused, gru_step = _forms("gru", 4, "GRU stack")

#: ``FORMS[family][form]``: the function a module's ``form=`` names.
FORMS = {
    "rnn": {"loop": rnn_loop, "stream": rnn_stream, "fused": rnn_fused},
    "lstm": {"loop": lstm_loop, "stream": lstm_stream, "fused": lstm_fused},
    "gru": {"loop": gru_loop, "stream": gru_stream, "fused": gru_fused},
}
#: ``STEPS[family]``: one time step through every layer.
STEPS = {"rnn": rnn_step, "lstm": lstm_step, "gru": gru_step}


# ---------------------------------------------------------------- registration with the equivalence harness
def _problem(family: str, options: dict) -> Callable[[Case, torch.Generator], Problem]:
    def make(case: Case, g: torch.Generator) -> Problem:
        G, H, L, B = GATES[family], case.H, case.layers, case.B

        def rand(*shape, scale=1.0):
            return torch.randn(*shape, generator=g, dtype=case.dtype) * scale

        s = 1.0 / H ** 0.5  # PyTorch's init scale, so that the gates neither saturate nor vanish
        params = {"W_x": tuple(rand(G * H, case.D if l == 0 else H, scale=s) for l in range(L)),
                  "W_h": tuple(rand(G * H, H, scale=s) for _ in range(L)),
                  "b_x": tuple(rand(G * H, scale=s) for _ in range(L)),
                  "b_h": tuple(rand(G * H, scale=s) for _ in range(L))}
        state = None
        if case.with_state:
            parts = tuple(rand(L, B, H, scale=0.5) for _ in range(PARTS[family]))
            state = _spell(family, parts)
        return Problem(inputs={"x": rand(B, case.T, case.D)}, params=params, state=state, options=dict(options))
    return make


for _family, _chapter, _options in (("rnn", 2, {}), ("lstm", 4, {}), ("gru", 4, {})):
    register_family(Family(name=_family, chapter=_chapter, forms=FORMS[_family], make=_problem(_family, _options)))
# the ReLU RNN: a second kernel (rnn_relu) behind the same family
register_family(Family(name="rnn_relu", chapter=2, forms=FORMS["rnn"], make=_problem("rnn", {"nonlinearity": "relu"})))
