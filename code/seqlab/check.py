"""Exercise checkers: a learner's function goes in, a precise message comes out.

Every checker runs the learner's function and a reference on the same small,
hand-picked cases and reports the *first* thing that is wrong: an exception,
a wrong type, a wrong shape, a wrong dtype, or the first entry that differs,
with the case that showed it. Known mistakes (a transposed matrix, a natural
log where base 2 was asked for, ...) get a hint of their own.

    result = seqlab.check.bigram_counts(my_bigram_counts)
    result            # shows "✓ ..." or "✗ ..." with what to fix
    assert result     # truthy only when every case agrees

Each chapter adds its checkers here, next to the reference solution.
"""
from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Callable, Sequence

import torch


@dataclass(frozen=True)
class Result:
    """The verdict of a checker: ``ok`` and a message for the learner."""

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
    """Arguments for one call, and a short description shown when it fails."""

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
    rtol: float = 1e-5,
    atol: float = 1e-6,
) -> Result:
    """Run ``learner`` and ``reference`` on every case; report the first disagreement.

    Tensors are compared by value (an integer and a float tensor holding the
    same numbers agree).

    A hint ``(transform, message)`` is shown when the learner's output equals
    ``transform(reference output)``: the signature of a known mistake.
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
            for transform, message in hints:
                try:
                    if torch.allclose(got64, transform(want).double(), rtol=rtol, atol=atol):
                        return Result(False, f"{name}: {message} — on {case.describe}")
                except (RuntimeError, ValueError):
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
                for transform, message in hints:
                    if math.isclose(got, transform(want), rel_tol=rtol, abs_tol=atol):
                        return Result(False, f"{name}: {message} — on {case.describe}")
                return Result(False, f"{name} returned {got:.6g}, expected {want:.6g} — on {case.describe}")
    return Result(True, f"{name}: all {len(cases)} cases agree with the reference")


# --- chapter 1 ---------------------------------------------------------------


def _bigram_counts_reference(ids: torch.Tensor, V: int) -> torch.Tensor:
    counts = torch.zeros(V, V, dtype=torch.long)
    counts.index_put_((ids[:-1], ids[1:]), torch.ones(len(ids) - 1, dtype=torch.long), accumulate=True)
    return counts


def bigram_counts(fn: Callable[[torch.Tensor, int], torch.Tensor]) -> Result:
    """Chapter 1: ``fn(ids, V)`` must return the ``(V, V)`` matrix ``C[a, b]`` = number of times ``b`` follows ``a``."""
    cases = [
        Case((torch.tensor([0, 1, 0, 1, 1]), 2), "ids=[0, 1, 0, 1, 1], V=2"),
        Case((torch.tensor([2, 2, 2]), 3), "ids=[2, 2, 2], V=3 (a repeated symbol)"),
        Case((torch.tensor([0]), 4), "ids=[0], V=4 (a single symbol: no pairs)"),
        Case((torch.tensor([3, 0, 2, 1, 3, 0]), 5), "ids=[3, 0, 2, 1, 3, 0], V=5 (symbol 4 never appears)"),
    ]
    hints = [
        (lambda c: c.T, "the matrix is transposed: row a, column b should count b following a"),
        (lambda c: c / c.sum(dim=1, keepdim=True).clamp(min=1), "these are probabilities; the exercise asks for counts"),
    ]
    return compare("bigram_counts", fn, _bigram_counts_reference, cases, hints=hints)


def _bits_per_char_reference(probs: torch.Tensor, targets: torch.Tensor) -> float:
    return (-torch.log2(probs[torch.arange(len(targets)), targets])).mean().item()


def bits_per_char(fn: Callable[[torch.Tensor, torch.Tensor], float]) -> Result:
    """Chapter 1: ``fn(probs, targets)`` must return the mean of ``-log2 p(target)`` as a float.

    ``probs`` is ``(N, V)`` (each row a distribution over the next character),
    ``targets`` is ``(N,)``.
    """
    cases = [
        Case((torch.full((4, 2), 0.5), torch.tensor([0, 1, 1, 0])), "a fair coin: 1 bit per symbol"),
        Case((torch.tensor([[0.25, 0.75], [0.9, 0.1]]), torch.tensor([1, 0])), "two predictions, both fairly right"),
        Case((torch.tensor([[0.7, 0.2, 0.1], [0.1, 0.1, 0.8], [0.3, 0.3, 0.4]]), torch.tensor([2, 0, 1])), "three predictions, all wrong"),
    ]
    hints = [
        (lambda b: b * math.log(2), "that is in nats: use log base 2 for bits"),
        (lambda b: -b, "the sign is flipped: bits are -log2 p"),
    ]
    return compare("bits_per_char", fn, _bits_per_char_reference, cases, hints=hints)
