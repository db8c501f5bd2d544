"""The registry of mixer families and the grid of awkward shapes they are all tested on (chapter 9 onward).

A family module registers itself at import::

    FAMILY = register_family(Family(
        name="lstm", chapter=4,
        forms={"loop": lstm_loop, "stream": lstm_stream, "fused": lstm_fused},
        make=make_lstm_problem,
    ))

``make(case, generator)`` returns a ``Problem``: the inputs (tensors with a
time axis at dim 1, or at dim 2 after a head axis, (B, H, T, d), for multi-head
families), the parameters, an initial state when
``case.with_state`` (else None) and any non-tensor options. A parameter
may be a tensor or a tuple/list of tensors (one entry per layer, say); the
harness differentiates every floating tensor it finds. ``run_form``
calls one form on a problem as ``form(**inputs, **params, state=state,
**options)`` and must return ``(y, final_state)``; a state is a tensor, a
tuple of tensors, or None.
"""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Callable, Sequence

import torch


@dataclass(frozen=True)
class Case:
    """One shape on the test grid: batch B, time T, input width D, state/hidden width H, layers, chunk size (chapters 9 onward).

    ``with_state``: start from a random initial state (not zeros). The grid is
    chosen to hide bugs: B = 1, T = 1, T not a multiple of ``chunk``, D != H.
    """

    B: int
    T: int
    D: int
    H: int
    layers: int = 1
    chunk: int = 4
    with_state: bool = False
    dtype: torch.dtype = torch.float64

    def __str__(self) -> str:
        return (f"B{self.B}-T{self.T}-D{self.D}-H{self.H}-L{self.layers}-c{self.chunk}"
                f"{'-state' if self.with_state else ''}-{str(self.dtype).split('.')[-1]}")


GRID: tuple[Case, ...] = (
    Case(B=1, T=1, D=3, H=4),
    Case(B=2, T=7, D=3, H=5),                     # T not a multiple of the chunk, D != H
    Case(B=3, T=8, D=4, H=4, chunk=8),            # one whole chunk
    Case(B=2, T=13, D=5, H=3, layers=2),          # several layers, uneven chunks
    Case(B=1, T=9, D=2, H=6, with_state=True),    # from a non-zero initial state
    Case(B=2, T=6, D=4, H=4, layers=2, chunk=5, with_state=True),
    Case(B=2, T=5, D=3, H=4, dtype=torch.float32),
)


@dataclass
class Problem:
    """Inputs, parameters, initial state and options for one call of every form of a family (chapters 9 onward)."""

    inputs: dict[str, torch.Tensor]
    params: dict[str, torch.Tensor | Sequence[torch.Tensor]]  # a tensor, or one per layer
    state: Any = None
    options: dict[str, Any] = field(default_factory=dict)


def every_case(case: Case, form: str) -> bool:
    """The default ``Family.supports``: every form takes every case (chapters 9 onward)."""
    return True


@dataclass
class Family:
    """A mixer family: its forms, side by side, and how to make a random problem for a ``Case`` (chapters 9 onward).

    ``forms`` maps a form's name (``loop``, ``parallel``, ``chunked``, ``stream``,
    ``fused``, …) to a function with the family's one signature. ``reference``
    names the form the others are compared against (the readable loop).
    ``supports(case, form)`` can exclude a case a form cannot take (say, a
    fused kernel without an initial state); the default takes every case.
    """

    name: str
    chapter: int
    forms: dict[str, Callable]
    make: Callable[[Case, torch.Generator], Problem]
    reference: str = "loop"
    supports: Callable[[Case, str], bool] = field(default_factory=lambda: every_case)  # a field, not a method

    def __post_init__(self):
        if self.reference not in self.forms:
            raise ValueError(f"family {self.name!r}: reference form {self.reference!r} is not among its forms "
                             f"{sorted(self.forms)}")
        if len(self.forms) < 2:
            raise ValueError(f"family {self.name!r} needs at least two forms to compare, got {sorted(self.forms)}")


FAMILIES: dict[str, Family] = {}


def register_family(family: Family) -> Family:
    """Add ``family`` to ``FAMILIES`` (an error if its name is taken) and return it (chapters 9 onward)."""
    if not isinstance(family, Family):
        raise TypeError(f"register_family expects a Family, got {type(family).__name__}")
    if family.name in FAMILIES and FAMILIES[family.name] is not family:
        raise ValueError(f"a family named {family.name!r} is registered already")
    FAMILIES[family.name] = family
    return family


def run_form(family: Family, form: str, problem: Problem):
    """Call ``family.forms[form]`` on ``problem``; return its ``(y, final_state)`` (chapters 9 onward)."""
    if form not in family.forms:
        raise ValueError(f"family {family.name!r} has no form {form!r}; it has {sorted(family.forms)}")
    out = family.forms[form](**problem.inputs, **problem.params, state=problem.state, **problem.options)
    if not (isinstance(out, tuple) and len(out) == 2):
        raise TypeError(f"form {family.name}.{form} must return (y, state), got {type(out).__name__}")
    return out
