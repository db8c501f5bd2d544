"""The shared machinery of the exercise checkers (chapter 1 onward): ``Result``, ``Case`` and ``compare``.

``compare`` runs a learner's function and a reference on the same cases and
reports the *first* thing that is wrong — an exception, a wrong type, shape or
dtype, or the first entry that differs — with the case that showed it; a list
of known mistakes (a transposed matrix, a natural log where base 2 was asked
for, ...) gets a hint of its own.
"""
from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Callable, Sequence

import torch


@dataclass(frozen=True)
class Result:
    """The verdict of a checker: ``ok`` and a message for the learner (chapter 1)."""

    ok: bool
    message: str

    def __bool__(self) -> bool:
        return self.ok

    def __repr__(self) -> str:
        return ("✓ " if self.ok else "✗ ") + self.message

    def _repr_markdown_(self) -> str:
        return ("✅ " if self.ok else "❌ ") + self.message


@dataclass(frozen=True)
class Case:
    """Arguments for one call, and a short description shown when it fails (chapter 1)."""

    args: tuple
    describe: str


Hint = tuple[Callable[[torch.Tensor], torch.Tensor], str]


def compare(
    name: str,
    learner: Callable,
    reference: Callable,
    cases: Sequence[Case],
    *,
    hints: Sequence[Hint] = (),
    mistakes: Sequence[tuple[Callable, str]] = (),
    rtol: float = 1e-5,
    atol: float = 1e-6,
) -> Result:
    """Run ``learner`` and ``reference`` on every case; report the first disagreement (chapter 1).

    Tensors are compared by value (an integer and a float tensor holding the
    same numbers agree).

    A hint ``(transform, message)`` is shown when the learner's output equals
    ``transform(reference output)``: the signature of a known mistake. A
    mistake ``(wrong_function, message)`` is shown when it equals
    ``wrong_function(*case.args)``: a known wrong implementation.
    """
    if not callable(learner):
        return Result(False, f"{name}: expected a function, got {type(learner).__name__}")
    for case in cases:
        want = reference(*case.args)
        try:
            got = learner(*case.args)
        except NotImplementedError:
            return Result(False, f"{name}: not implemented yet (it raised NotImplementedError)")
        except Exception as err:  # the learner's bug, reported rather than raised
            return Result(False, f"{name} raised {type(err).__name__}: {err} — on {case.describe}")
        if isinstance(want, torch.Tensor):
            if not isinstance(got, torch.Tensor):
                return Result(False, f"{name} should return a torch.Tensor, returned {type(got).__name__} — on {case.describe}")
            if got.shape != want.shape:
                return Result(False, f"{name} returned shape {tuple(got.shape)}, expected {tuple(want.shape)} — on {case.describe}")
            got64, want64 = got.detach().double(), want.double()
            if torch.allclose(got64, want64, rtol=rtol, atol=atol, equal_nan=True):
                continue
            suspects = [(lambda t=t: t(want), m) for t, m in hints] + [(lambda w=w: w(*case.args), m) for w, m in mistakes]
            for wrong, message in suspects:
                try:
                    if torch.allclose(got64, wrong().double(), rtol=rtol, atol=atol):
                        return Result(False, f"{name}: {message} — on {case.describe}")
                except (RuntimeError, ValueError, TypeError):
                    pass
            diff = (got64 - want64).abs()
            idx = tuple(int(i) for i in torch.nonzero(~(diff <= atol + rtol * want64.abs()))[0])
            return Result(
                False,
                f"{name} differs at index {idx}: got {got[idx].item():.6g}, expected {want[idx].item():.6g} — on {case.describe}",
            )
        else:
            if not isinstance(got, (int, float)) or isinstance(got, bool):
                return Result(False, f"{name} should return a number, returned {type(got).__name__} — on {case.describe}")
            if not math.isclose(got, want, rel_tol=rtol, abs_tol=atol):
                suspects = [(lambda t=t: t(want), m) for t, m in hints] + [(lambda w=w: w(*case.args), m) for w, m in mistakes]
                for wrong, message in suspects:
                    if math.isclose(got, wrong(), rel_tol=rtol, abs_tol=atol):
                        return Result(False, f"{name}: {message} — on {case.describe}")
                return Result(False, f"{name} returned {got:.6g}, expected {want:.6g} — on {case.describe}")
    return Result(True, f"{name}: all {len(cases)} cases agree with the reference")
