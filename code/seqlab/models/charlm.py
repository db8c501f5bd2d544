"""A recurrent character-level language model (chapter 2; gated cells in chapter 4).

Glossary, code name -> book notation:

    x          token ids x_1..x_T, shape (B, T), integers in [0, V)
    x_t        the ids at one step, shape (B,)
    e          embeddings E[x_t], shape (B, T, d_embed)
    h          hidden states h_1..h_T of the top recurrent layer, shape (B, T, d_hidden)
    state      the recurrent state carried between calls: h (L, B, d_hidden), or (h, c) for the LSTM
    logits     scores of the next token, W_hy h_t + b_y, shape (B, T, V)
    V, L       vocabulary size, number of recurrent layers

The model computes p(x_{t+1} | x_1..x_t) = softmax(W_hy h_t + b_y), with h_t from
the recurrence h_t = f(E[x_t], h_{t-1}) of an ``RNN``, ``LSTM`` or ``GRU``. All it
remembers of the past is its state, so generating a token costs the same O(1)
work and memory however long the text already is: ``generate`` feeds the prompt
once and then carries the state one token at a time.
"""
from __future__ import annotations

import torch
from torch import nn

from .. import _validate as validate
from .._validate import token_ids
from .gru import GRU
from .lstm import LSTM
from .rnn import RNN, _check_form
from .sampling import check_temperature, sample_next

LAYERS = {"rnn": RNN, "lstm": LSTM, "gru": GRU}
GATE_BIAS = {"rnn": (), "lstm": ("forget_bias",), "gru": ("update_bias",)}  # the gate-bias option of each cell


class RecurrentLM(nn.Module):
    """Embedding -> recurrent layers -> linear head (chapter 2): ``logits_t = W_hy h_t + b_y``.

    ``cell`` is ``"rnn"``, ``"lstm"`` or ``"gru"``; ``cell_kwargs`` go to that layer
    (``nonlinearity="relu"`` for the RNN, ``forget_bias=3.0`` for the LSTM, ``update_bias=...``
    for the GRU; another cell's option is an error). ``form`` names the form that runs the
    recurrence (``seqlab.ops.recurrent``): ``"loop"`` the from-scratch equations, a Python loop
    over time, to read; ``"fused"`` PyTorch's compiled layer on the same weights (the same numbers,
    tested, faster: chapter 4 times it); ``"stream"`` one time step at a time. ``forward(x (B, T), state, form=None)
    -> (logits (B, T, V), state)``; ``step(x_t (B,), state) -> (logits (B, V), state)``.
    """

    def __init__(self, vocab_size: int, d_embed: int, d_hidden: int, cell: str = "rnn", n_layers: int = 1,
                 form: str = "loop", **cell_kwargs):
        super().__init__()
        self.vocab_size = validate.positive_int("vocab_size", vocab_size, minimum=2)
        validate.positive_int("d_embed", d_embed)
        validate.positive_int("d_hidden", d_hidden)
        validate.positive_int("n_layers", n_layers)
        if cell not in LAYERS:
            raise ValueError(f"cell must be one of {', '.join(map(repr, LAYERS))}, got {cell!r}")
        allowed = GATE_BIAS[cell] + (("nonlinearity",) if cell == "rnn" else ())
        unknown = sorted(set(cell_kwargs) - set(allowed))
        if unknown:
            raise TypeError(f"cell={cell!r} takes the option(s) {list(allowed)}, got {unknown}")
        self.cell = cell
        self.embed = nn.Embedding(vocab_size, d_embed)
        self.recurrent = LAYERS[cell](d_embed, d_hidden, num_layers=n_layers, form=form, **cell_kwargs)
        self.head = nn.Linear(d_hidden, vocab_size)

    @property
    def form(self) -> str:
        """The form of the recurrence: ``"loop"``, ``"stream"`` or ``"fused"`` (settable)."""
        return self.recurrent.form

    @form.setter
    def form(self, value: str) -> None:
        self.recurrent.form = _check_form(value, self.cell)

    def forward(self, x: torch.Tensor, state=None, form: str | None = None):
        token_ids("x", x, self.vocab_size, ndim=2)
        e = self.embed(x)  # (B, T, d_embed)
        h, state = self.recurrent(e, state, form=form)  # (B, T, d_hidden)
        return self.head(h), state  # (B, T, V)

    def step(self, x_t: torch.Tensor, state=None):
        """One token: ``(x_t (B,), state) -> (logits (B, V), state)``, the same numbers as ``forward`` at that step."""
        token_ids("x_t", x_t, self.vocab_size, ndim=1)
        e = self.embed(x_t)  # (B, d_embed)
        h, state = self.recurrent.step(e, state)  # (B, d_hidden)
        return self.head(h), state  # (B, V)

    @torch.no_grad()
    def generate(self, prompt_ids: torch.Tensor, length: int, temperature: float = 1.0,
                 generator: torch.Generator | None = None) -> torch.Tensor:
        """Extend ``prompt_ids`` (1-D, at least one id) by ``length`` sampled ids; returns prompt + new ids.

        Samples from ``softmax(logits / temperature)`` with ``generator`` (a CPU ``torch.Generator``);
        ``temperature=0`` takes the most likely token (greedy). Streams: the prompt is fed once, then
        each new token costs one ``step`` on the carried state.
        """
        token_ids("prompt_ids", prompt_ids, self.vocab_size, ndim=1, min_length=1)
        validate.positive_int("length", length)
        check_temperature(temperature)
        device = self.head.weight.device
        logits, state = self(prompt_ids[None].to(device))  # (1, T, V): the prompt, fed once
        logits = logits[0, -1]  # (V,)
        new = []
        for i in range(length):
            new.append(sample_next(logits, temperature, generator).item())  # softmax(logits / T), or argmax at T = 0
            if i < length - 1:  # the last token needs no step: nothing comes after it
                logits, state = self.step(torch.tensor([new[-1]], device=device), state)  # (1, V)
                logits = logits[0]  # (V,)
        return torch.cat([prompt_ids.cpu(), torch.tensor(new, dtype=prompt_ids.dtype)])

    def extra_repr(self) -> str:
        return f"cell={self.cell!r}, form={self.form!r}"
