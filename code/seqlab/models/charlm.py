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

from .. import _validate as check
from .._validate import token_ids
from .gru import GRU
from .lstm import LSTM
from .rnn import RNN
from .sampling import check_temperature, sample_next

LAYERS = {"rnn": RNN, "lstm": LSTM, "gru": GRU}
TORCH_LAYERS = {"rnn": nn.RNN, "lstm": nn.LSTM, "gru": nn.GRU}


class TorchRecurrent(nn.Module):
    """PyTorch's fused ``nn.RNN``/``nn.LSTM``/``nn.GRU`` behind seqlab's layer interface (chapter 2).

    ``forward(x, state) -> (out, state)`` and ``step(x_t, state) -> (h_t, state)``,
    with the same gate-bias options as seqlab's layers (``forget_bias`` sets
    b_if = value and b_hf = 0; ``update_bias`` does the same for the GRU's z gate).
    The numbers equal the from-scratch layers' (tested); it is only faster.
    """

    def __init__(self, cell: str, input_size: int, hidden_size: int, num_layers: int = 1, nonlinearity: str = "tanh",
                 forget_bias: float | None = None, update_bias: float | None = None):
        super().__init__()
        kwargs = {"nonlinearity": nonlinearity} if cell == "rnn" else {}
        self.module = TORCH_LAYERS[cell](input_size, hidden_size, num_layers=num_layers, batch_first=True, **kwargs)
        gate_bias = forget_bias if cell == "lstm" else update_bias if cell == "gru" else None
        if gate_bias is not None:  # the second block of rows is f (LSTM: i, f, g, o) or z (GRU: r, z, n)
            with torch.no_grad():
                for k in range(num_layers):
                    getattr(self.module, f"bias_ih_l{k}")[hidden_size : 2 * hidden_size] = gate_bias
                    getattr(self.module, f"bias_hh_l{k}")[hidden_size : 2 * hidden_size] = 0.0

    def forward(self, x, state=None):
        return self.module(x, state)

    def step(self, x_t, state=None):
        out, state = self.module(x_t[:, None], state)  # (B, 1, H)
        return out[:, 0], state


class RecurrentLM(nn.Module):
    """Embedding -> recurrent layers -> linear head (chapter 2): ``logits_t = W_hy h_t + b_y``.

    ``cell`` is ``"rnn"``, ``"lstm"`` or ``"gru"``; ``cell_kwargs`` go to that layer
    (``nonlinearity="relu"``, ``forget_bias=3.0``, ``update_bias=...``).
    ``impl="seqlab"`` uses the from-scratch layers (a Python loop over time, to
    read); ``impl="torch"`` PyTorch's fused kernels (the same numbers, faster).
    ``forward(x (B, T), state) -> (logits (B, T, V), state)``; ``step(x_t (B,), state) -> (logits (B, V), state)``.
    """

    def __init__(self, vocab_size: int, d_embed: int, d_hidden: int, cell: str = "rnn", n_layers: int = 1,
                 impl: str = "seqlab", **cell_kwargs):
        super().__init__()
        self.vocab_size = check.positive_int("vocab_size", vocab_size, minimum=2)
        check.positive_int("d_embed", d_embed)
        check.positive_int("d_hidden", d_hidden)
        check.positive_int("n_layers", n_layers)
        if cell not in LAYERS:
            raise ValueError(f"cell must be one of {', '.join(map(repr, LAYERS))}, got {cell!r}")
        if impl not in ("seqlab", "torch"):
            raise ValueError(f"impl must be 'seqlab' or 'torch', got {impl!r}")
        self.cell, self.impl = cell, impl
        self.embed = nn.Embedding(vocab_size, d_embed)
        if impl == "seqlab":
            self.recurrent = LAYERS[cell](d_embed, d_hidden, num_layers=n_layers, **cell_kwargs)
        else:
            self.recurrent = TorchRecurrent(cell, d_embed, d_hidden, num_layers=n_layers, **cell_kwargs)
        self.head = nn.Linear(d_hidden, vocab_size)

    def forward(self, x: torch.Tensor, state=None):
        token_ids("x", x, self.vocab_size, ndim=2)
        e = self.embed(x)  # (B, T, d_embed)
        h, state = self.recurrent(e, state)  # (B, T, d_hidden)
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
        check.positive_int("length", length)
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
        return f"cell={self.cell!r}, impl={self.impl!r}"
