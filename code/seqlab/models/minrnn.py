"""minGRU and minLSTM layers and a small language model around them (chapter 13, section 13.10).

Glossary (code name -> book notation):

    cell           "mingru" or "minlstm" (``seqlab.ops.minrnn``, Feng et al., 2024)
    x              the layer's input x_t, (B, T, d)
    h              the state h_t, (B, d): the layer's output y_t = h_t
    form           which form of the family computes it: "loop", "logspace", "chunked" or "stream"
                   (``seqlab.ops.FAMILIES[cell].forms``; the same numbers, tested equal by the harness)

``MinRNN`` holds the weights (each gate and the candidate a d × d map with a bias, initialised as
``nn.Linear``) and runs the ops form named by ``form``: ``forward(x, state=None) -> (y, state)``,
``step(x_t, state) -> (y_t, state)``, ``state_bytes(state)``. ``MinRNNLM`` is the course's usual
Pre-Norm stack around it: embedding -> blocks of x <- x + MinRNN(LN(x)), x <- x + MLP(LN(x)) ->
LN -> head, returning ``(logits, state)``.
"""
from __future__ import annotations

import math

import torch
from torch import nn

from .. import _validate as validate
from .. import ops
from ..ops import minrnn as F_min
from .mixer import Mixer, Spec

NAMES = {"mingru": ("W_z", "b_z", "W_h", "b_h"), "minlstm": F_min._LSTM_NAMES}


class MinRNN(Mixer):
    """A minGRU or minLSTM layer of width d (chapter 13): h_t = a_t ⊙ h_{t-1} + b_t, gates from x_t only.

    ``forward(x (B, T, d), state=None) -> (y (B, T, d), h_T (B, d))``; ``chunk`` is the chunked form's.
    """

    def __init__(self, d: int, cell: str = "mingru", form: str = "chunked", chunk: int = 16):
        super().__init__()
        validate.positive_int("d", d)
        if cell not in NAMES:
            raise ValueError(f"cell must be one of {sorted(NAMES)}, got {cell!r}")
        self.d, self.cell, self.family = d, cell, cell
        self.chunk = validate.positive_int("chunk", chunk)
        bound = 1 / math.sqrt(d)  # nn.Linear's default initialisation
        for name in NAMES[cell]:
            shape = (d, d) if name.startswith("W") else (d,)
            self.register_parameter(name, nn.Parameter(torch.empty(shape).uniform_(-bound, bound)))
        self.form = form

    def state_spec(self, B: int, dtype: torch.dtype):
        """The state a batch of B carries: h_T, (B, d)."""
        return Spec((B, self.d), dtype)

    def forward(self, x: torch.Tensor, state: torch.Tensor | None = None):
        validate.tensor("x", x, ndim=3, dtype="float")
        self.check_state(state, x.shape[0], x.dtype)
        fn = ops.FAMILIES[self.family].forms[self.form]
        return fn(x, *(getattr(self, n) for n in NAMES[self.cell]), state=state, chunk=self.chunk)

    def step(self, x_t: torch.Tensor, state: torch.Tensor | None = None):
        """One position: ``(x_t (B, d), state) -> (y_t (B, d), state)``."""
        validate.tensor("x_t", x_t, ndim=2, dtype="float")
        y, state = self(x_t[:, None], state)
        return y[:, 0], state


class MinRNNLM(nn.Module):
    """Embedding -> n_layers Pre-Norm blocks (a ``MinRNN``, then an MLP of width 4d) -> LN -> head (chapter 13).

    ``forward(x (B, T) token ids, state=None) -> (logits (B, T, V), state)``, the state one h per layer.
    """

    def __init__(self, vocab_size: int, d: int, n_layers: int = 2, cell: str = "mingru", form: str = "chunked",
                 chunk: int = 16, mlp: bool = True):
        super().__init__()
        self.vocab_size = validate.positive_int("vocab_size", vocab_size, minimum=2)
        validate.positive_int("n_layers", n_layers)
        self.embed = nn.Embedding(vocab_size, d)
        self.mixers = nn.ModuleList(MinRNN(d, cell, form, chunk) for _ in range(n_layers))
        self.norms1 = nn.ModuleList(nn.LayerNorm(d) for _ in range(n_layers))
        self.mlps = nn.ModuleList(nn.Sequential(nn.Linear(d, 4 * d), nn.GELU(), nn.Linear(4 * d, d))
                                  for _ in range(n_layers)) if mlp else None
        self.norms2 = nn.ModuleList(nn.LayerNorm(d) for _ in range(n_layers)) if mlp else None
        self.norm, self.head = nn.LayerNorm(d), nn.Linear(d, vocab_size)

    @property
    def form(self) -> str:
        return self.mixers[0].form

    @form.setter
    def form(self, value: str) -> None:
        for m in self.mixers:
            m.form = value

    def forward(self, x: torch.Tensor, state: list | None = None):
        validate.token_ids("x", x, self.vocab_size, ndim=2)
        if state is not None and (not isinstance(state, (list, tuple)) or len(state) != len(self.mixers)):
            raise ValueError(f"state must be a list of {len(self.mixers)} per-layer states, got {type(state).__name__}"
                             f"{'' if not isinstance(state, (list, tuple)) else f' of {len(state)}'}")
        h = self.embed(x)
        new = []
        for i, mixer in enumerate(self.mixers):
            y, s = mixer(self.norms1[i](h), None if state is None else state[i])
            h = h + y
            new.append(s)
            if self.mlps is not None:
                h = h + self.mlps[i](self.norms2[i](h))
        return self.head(self.norm(h)), new
