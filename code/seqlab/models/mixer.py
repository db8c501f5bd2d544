"""The contract every sequence layer keeps: ``Mixer`` (chapters 2–14), and the causal convolution they share.

Glossary (code name -> book notation):

    x              the layer's input, (B, T, d)
    x_t            one position of it, (B, d)
    state          everything the layer carries from one token to the next: an RNN's h, an LSTM's
                   (h, c), a KV cache (K, V), a linear-attention S (and z), an SSM's h, a convolution's
                   last k − 1 inputs; ``None`` means "start from zeros / empty"
    family         the ``seqlab.ops`` family whose arithmetic the layer runs (``ops.FAMILIES[family]``)
    form           which of that family's forms computes it (the same numbers; tested there)

Every layer of ``seqlab.models`` that mixes along time is a ``Mixer``:

    forward(x (B, T, d), state=None) -> (y (B, T, d'), state)
    step(x_t (B, d), state=None)     -> (y_t (B, d'), state)      the same numbers as forward at that position
    form                             one of ``forms``, the family's registered forms (settable)
    state_bytes(state)               the bytes the state holds

Feeding a sequence in pieces, each from the previous piece's state, gives the outputs of one call;
a state built by a layer of another configuration (width, heads, layers, batch or dtype) is refused
with a ``ValueError`` that names what was expected and what came. ``code/tests/test_mixers.py``
runs one battery (causality, step equals forward, pieces equal the whole, a foreign state refused)
over every layer built by ``MIXERS`` there, so a new family gets it by adding one constructor.
"""
from __future__ import annotations

from dataclasses import dataclass

import torch
from torch import nn

from .. import ops
from .forms import HasForms

__all__ = ["Mixer", "CausalConv1d", "ShortConv", "Spec", "check_state", "state_bytes"]


def state_bytes(state) -> int:
    """Bytes held by the tensors of a state: a tensor, or nested tuples/lists of them; other entries (a ring
    buffer's position) count 0 (chapter 14)."""
    if not isinstance(state, (torch.Tensor, tuple, list)):
        raise TypeError(f"state must be a tensor or a tuple/list of them, as a layer returns it, got {type(state).__name__}")
    return _bytes(state)


def _bytes(state) -> int:
    if isinstance(state, torch.Tensor):
        return state.numel() * state.element_size()
    if isinstance(state, (tuple, list)):
        return sum(_bytes(s) for s in state)
    return 0


@dataclass(frozen=True)
class Spec:
    """What one tensor of a state must be: its ``shape`` (``None`` for an axis that grows, a KV cache's T) and dtype (chapter 14)."""

    shape: tuple
    dtype: torch.dtype

    def __str__(self) -> str:
        dims = ", ".join("T" if s is None else str(s) for s in self.shape)
        return f"{str(self.dtype).replace('torch.', '')}({dims})"


def _describe(state) -> str:
    if isinstance(state, torch.Tensor):
        return f"{str(state.dtype).replace('torch.', '')}({', '.join(map(str, state.shape))})"
    if isinstance(state, (tuple, list)):
        return "(" + ", ".join(_describe(s) for s in state) + ")"
    if isinstance(state, Spec):
        return str(state)
    return type(state).__name__


def _fits(state, spec) -> bool:
    if spec is int:
        return isinstance(state, int) and not isinstance(state, bool)
    if isinstance(spec, Spec):
        return (isinstance(state, torch.Tensor) and state.dtype == spec.dtype and state.dim() == len(spec.shape)
                and all(s is None or s == n for s, n in zip(spec.shape, state.shape)))
    return (isinstance(state, (tuple, list)) and len(state) == len(spec)
            and all(_fits(s, p) for s, p in zip(state, spec)))


def check_state(owner: str, state, spec) -> None:
    """Refuse ``state`` unless it has the structure, shapes and dtypes of ``spec`` (nested tuples of ``Spec``/``int``;
    chapter 14): a ValueError names what was expected and what came."""
    if not _fits(state, spec):
        raise ValueError(f"{owner}: the state does not belong to this layer and batch: expected "
                         f"{_describe(spec) if spec is not int else 'int'}, got {_describe(state)}")


class Mixer(HasForms, nn.Module):
    """A sequence layer (chapters 2–14): ``forward(x, state=None) -> (y, state)``, ``step``, ``form``, ``state_bytes``.

    Subclasses set ``family`` (a key of ``seqlab.ops.FAMILIES``), call ``self.form = ...`` in
    ``__init__``, and define ``forward`` and ``state_spec(B, dtype)``, the shapes of the state they
    carry for a batch of B (used to refuse a foreign state). ``step`` defaults to ``forward`` on a
    single position.
    """

    family: str = ""

    @property
    def forms(self) -> tuple[str, ...]:
        """The forms this layer can run: its family's registered forms."""
        return tuple(ops.FAMILIES[self.family].forms)

    def state_spec(self, B: int, dtype: torch.dtype):
        raise NotImplementedError

    def check_state(self, state, B: int, dtype: torch.dtype):
        """``state`` unchanged if it is None or fits ``state_spec(B, dtype)``; else a ValueError naming both."""
        if state is not None:
            check_state(type(self).__name__, state, self.state_spec(B, dtype))
        return state

    def step(self, x_t: torch.Tensor, state=None):
        """One position: ``(x_t (B, d), state) -> (y_t (B, d'), state)``, what ``forward`` gives at that position."""
        if not isinstance(x_t, torch.Tensor) or x_t.dim() != 2:
            got = tuple(x_t.shape) if isinstance(x_t, torch.Tensor) else type(x_t).__name__
            raise ValueError(f"x_t must be (B, d), got {got}")
        y, state = self(x_t[:, None], state)
        return y[:, 0], state

    @staticmethod
    def state_bytes(state) -> int:
        """Bytes held by the tensors of ``state``."""
        return state_bytes(state)


class CausalConv1d(nn.Conv1d):
    """A causal depthwise convolution over time that carries its last k − 1 inputs (chapters 12–14).

    ``forward(u (B, T, E), buffer=None) -> (out (B, T, E), buffer (B, k − 1, E))``: out_t = Σ_j w_j u_{t−k+1+j} + b,
    reading only u_{≤t}; ``buffer`` holds the inputs before u_1 (zeros when None), so a sequence fed in
    pieces gives the outputs of one call. Initialised as ``nn.Conv1d(E, E, k, groups=E)``.
    """

    def __init__(self, channels: int, kernel_size: int):
        super().__init__(channels, channels, kernel_size, groups=channels)

    def buffer_spec(self, B: int, dtype: torch.dtype) -> Spec:
        return Spec((B, self.kernel_size[0] - 1, self.in_channels), dtype)

    def forward(self, u: torch.Tensor, buffer: torch.Tensor | None = None):
        k = self.kernel_size[0]
        if buffer is None:
            buffer = u.new_zeros(u.shape[0], k - 1, u.shape[2])
        padded = torch.cat([buffer, u], dim=1)  # (B, k-1+T, E)
        out = super().forward(padded.transpose(1, 2)).transpose(1, 2)  # (B, T, E)
        return out, padded[:, padded.shape[1] - (k - 1):]


class ShortConv(Mixer):
    """A short causal convolution, then a mixer (chapters 12–14): ``y = mixer(conv(x))``; state ``(buffer, mixer's state)``.

    Lets a token see its neighbours before attention, as in Zoology's MQAR models and Griffin's blocks.
    ``family`` and ``form`` are the inner mixer's.
    """

    def __init__(self, conv: CausalConv1d, mixer: Mixer):
        super().__init__()
        if not isinstance(conv, CausalConv1d) or not isinstance(mixer, Mixer):
            raise TypeError(f"ShortConv needs a CausalConv1d and a Mixer, got {type(conv).__name__} and "
                            f"{type(mixer).__name__}")
        self.conv, self.mixer = conv, mixer

    @property
    def family(self) -> str:
        return self.mixer.family

    @property
    def forms(self) -> tuple[str, ...]:
        return self.mixer.forms

    @property
    def form(self) -> str:
        return self.mixer.form

    @form.setter
    def form(self, value: str) -> None:
        self.mixer.form = value

    def state_spec(self, B: int, dtype: torch.dtype):
        return (self.conv.buffer_spec(B, dtype), self.mixer.state_spec(B, dtype))

    def _split(self, state, x):
        if state is None:
            return None, None
        if not (isinstance(state, tuple) and len(state) == 2):
            self.check_state(state, x.shape[0], x.dtype)  # raises, naming the expected structure
        check_state("ShortConv", state[0], self.conv.buffer_spec(x.shape[0], x.dtype))
        return state

    def forward(self, x: torch.Tensor, state=None):
        buffer, inner = self._split(state, x)
        u, buffer = self.conv(x, buffer)  # (B, T, d)
        y, inner = self.mixer(u, inner)
        return y, (buffer, inner)

    def step(self, x_t: torch.Tensor, state=None):
        buffer, inner = self._split(state, x_t)
        u, buffer = self.conv(x_t[:, None], buffer)  # (B, 1, d)
        y_t, inner = self.mixer.step(u[:, 0], inner)
        return y_t, (buffer, inner)
