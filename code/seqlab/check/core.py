"""The shared machinery of the exercise checkers (chapter 1 onward): ``Result``, ``Case``, ``compare``, ``summary``.

``compare`` runs a learner's function and a reference on the same cases and
reports the *first* thing that is wrong — an exception, a wrong type, shape or
dtype, or the first entry that differs — with the case that showed it; a list
of known mistakes (a transposed matrix, a natural log where base 2 was asked
for, a state not carried, ...) gets a hint of its own. A stub that has not been
written yet (it raises ``NotImplementedError`` or returns ``None``) is reported
as "not written yet", never as a traceback; only misuse of a checker (passing
something that is not a function) raises, a ``TypeError``.

Every public checker is registered with its chapter by ``@checker``, which
also records its latest verdict, so that ``summary(chapter)`` can tell a
learner which exercises pass, which are not written yet and which fail.
"""
from __future__ import annotations

import functools
import inspect
import math
from dataclasses import dataclass
from typing import Callable, Sequence

import torch


@dataclass(frozen=True)
class Result:
    """The verdict of a checker: ``ok``, a message for the learner, and whether anything was written (chapter 1)."""

    ok: bool
    message: str
    written: bool = True  # False: the function is still the exercise notebook's stub

    @property
    def status(self) -> str:
        """``"pass"``, ``"not written yet"`` or ``"fail"``."""
        return "pass" if self.ok else ("fail" if self.written else "not written yet")

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


def require_function(name: str, learner) -> None:
    """Misuse of a checker raises: it takes the function itself, not its result (chapter 1)."""
    if not callable(learner):
        raise TypeError(f"check.{name} expected a function (the one you wrote), got {type(learner).__name__}: "
                        f"call check.{name}(my_function), not check.{name}(my_function(...))")


def not_written(name: str, why: str) -> Result:
    """The verdict on a stub: "not written yet" (chapter 1)."""
    return Result(False, f"{name}: not written yet ({why}) — replace the stub's body with your code and run the "
                         f"cell again", written=False)


def _fresh(value):
    """A copy of the arguments, so that a function that changes its inputs in place cannot spoil the next call."""
    if isinstance(value, torch.Tensor):
        return value.clone()
    if isinstance(value, (tuple, list)):
        return type(value)(_fresh(v) for v in value)
    return value


def call(name: str, learner: Callable, case: Case):
    """``learner(*case.args)``, or a ``Result`` when it is a stub or raises (chapter 1)."""
    try:
        got = learner(*_fresh(case.args))
    except NotImplementedError:
        return not_written(name, "it raises NotImplementedError")
    except Exception as err:  # the learner's bug, reported rather than raised
        return Result(False, f"{name} raised {type(err).__name__}: {err} — on {case.describe}")
    if got is None:
        return not_written(name, "it returns None; if you wrote it, is the `return` missing?")
    return got


def _as_real(t: torch.Tensor) -> torch.Tensor:
    t = t.detach().cpu()
    return torch.view_as_real(t.to(torch.complex128)) if t.is_complex() else t.double()


def differ(got, want, rtol: float, atol: float, what: str = "") -> str | None:
    """None when ``got`` equals ``want`` (tensors, numbers, or tuples of them); else what differs (chapter 1)."""
    if isinstance(want, (tuple, list)):
        if not isinstance(got, (tuple, list)) or len(got) != len(want):
            n = len(got) if isinstance(got, (tuple, list)) else 1
            return f"should return {len(want)} values, returned {n} ({type(got).__name__})"
        for i, (g, w) in enumerate(zip(got, want)):
            problem = differ(g, w, rtol, atol, f"output {i} (of {len(want)})")
            if problem is not None:
                return problem
        return None
    label = f"{what}: " if what else ""
    if isinstance(want, torch.Tensor):
        if not isinstance(got, torch.Tensor):
            return f"{label}should return a torch.Tensor, returned {type(got).__name__}"
        if got.shape != want.shape:
            return f"{label}returned shape {tuple(got.shape)}, expected {tuple(want.shape)}"
        g64, w64 = _as_real(got), _as_real(want)
        if torch.allclose(g64, w64, rtol=rtol, atol=atol, equal_nan=True):
            return None
        bad = torch.nonzero(~((g64 - w64).abs() <= atol + rtol * w64.abs()) & ~(g64.isnan() & w64.isnan()))
        idx = tuple(int(i) for i in bad[0])
        return f"{label}differs at index {idx}: got {g64[idx].item():.6g}, expected {w64[idx].item():.6g}"
    if isinstance(got, torch.Tensor) and got.numel() == 1:
        got = got.item()
    if not isinstance(got, (int, float)) or isinstance(got, bool):
        return f"{label}should return a number, returned {type(got).__name__}"
    if not math.isclose(got, want, rel_tol=rtol, abs_tol=atol):
        return f"{label}returned {got:.6g}, expected {want:.6g}"
    return None


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
    grad: bool = False,
) -> Result:
    """Run ``learner`` and ``reference`` on every case; report the first disagreement (chapter 1).

    Tensors are compared by value (an integer and a float tensor holding the
    same numbers agree); a tuple of outputs is compared entry by entry.

    A hint ``(transform, message)`` is shown when the learner's output equals
    ``transform(reference output)``: the signature of a known mistake. A
    mistake ``(wrong_function, message)`` is shown when it equals
    ``wrong_function(*case.args)``: a known wrong implementation. Either may
    have another shape than the reference (a transposed result, a wrong axis).

    With ``grad=True`` the gradients must agree too, once the values do: of a random weighted
    sum of the outputs with respect to every floating-point tensor argument. A function that
    cuts the graph (``.item()``, ``.detach()``, NumPy, ``torch.tensor(...)`` of its results) is
    named.
    """
    require_function(name, learner)
    for case in cases:
        want = reference(*_fresh(case.args))
        got = call(name, learner, case)
        if isinstance(got, Result):
            return got
        problem = differ(got, want, rtol, atol)
        if problem is None:
            continue
        suspects = [(lambda t=t: t(want), m) for t, m in hints] + \
                   [(lambda w=w: w(*_fresh(case.args)), m) for w, m in mistakes]
        for wrong, message in suspects:
            try:
                if differ(got, wrong(), rtol, atol) is None:
                    return Result(False, f"{name}: {message} — on {case.describe}")
            except (RuntimeError, ValueError, TypeError, IndexError):
                pass
        return Result(False, f"{name} {problem} — on {case.describe}")
    if grad:
        for case in cases:
            problem = _gradient_problem(learner, reference, case, rtol, atol)
            if problem is not None:
                return Result(False, f"{name}: {problem} — on {case.describe}")
        return Result(True, f"{name}: all {len(cases)} cases agree with the reference, values and gradients")
    return Result(True, f"{name}: all {len(cases)} cases agree with the reference")


def _tensors(value) -> list[torch.Tensor]:
    if isinstance(value, torch.Tensor):
        return [value]
    if isinstance(value, (tuple, list)):
        return [t for v in value for t in _tensors(v)]
    return []


def _gradient_problem(learner: Callable, reference: Callable, case: Case, rtol: float, atol: float) -> str | None:
    """None when the learner's gradients equal the reference's on this case; else what is wrong."""
    grads = []
    weights = None
    try:
        names = list(inspect.signature(learner).parameters)
    except (TypeError, ValueError):
        names = []
    for fn in (reference, learner):
        leaves, owners = [], []

        def watch(v, position):
            if isinstance(v, torch.Tensor) and v.is_floating_point():
                leaf = v.detach().clone().requires_grad_(True)
                leaves.append(leaf)
                owners.append(position)
                return leaf * 1  # not a leaf: a function may still change its input in place
            if isinstance(v, (tuple, list)):
                return type(v)(watch(x, position) for x in v)
            return v

        args = tuple(watch(a, i) for i, a in enumerate(case.args))
        if not leaves:
            return None
        try:
            outs = [t for t in _tensors(fn(*args)) if t.is_floating_point() or t.is_complex()]
        except Exception as err:
            return f"raised {type(err).__name__} on inputs that require gradients: {err}"
        if fn is learner and not any(t.requires_grad for t in outs):
            return ("the output does not depend on the inputs for autograd (is it computed with .item(), .detach(), "
                    "NumPy or torch.tensor(...)?): gradients cannot flow back through it")
        if fn is reference and not any(t.requires_grad for t in outs):
            return None  # nothing to differentiate
        if weights is None:
            g = torch.Generator().manual_seed(0)
            weights = [torch.randn(t.shape, generator=g, dtype=torch.float64) for t in outs]
        total = sum((_as_real_grad(t) * w.to(_as_real_grad(t).dtype)).sum() for t, w in zip(outs, weights) if t.requires_grad)
        found = torch.autograd.grad(total, leaves, allow_unused=True)
        grads.append([torch.zeros_like(leaf) if d is None else d for leaf, d in zip(leaves, found)])
    for position, want, got in zip(owners, *grads):
        if not torch.allclose(got.double(), want.double(), rtol=max(rtol, 1e-4), atol=max(atol, 1e-5)):
            arg = f"`{names[position]}`" if position < len(names) else f"argument {position}"
            if not got.any() and want.any():
                return (f"no gradient reaches {arg}: is it copied into a module or a new tensor (copy_ under "
                        f"torch.no_grad, torch.tensor(...), .detach())? Training could not change it then")
            return (f"the values agree but the gradient with respect to {arg} does not: is part of the "
                    f"computation detached, or done in place?")
    return None


def _as_real_grad(t: torch.Tensor) -> torch.Tensor:
    return torch.view_as_real(t) if t.is_complex() else t


# ------------------------------------------------------------ the register of checkers, and the progress summary
_CHECKERS: dict[str, list[Callable]] = {}
_LATEST: dict[str, Result] = {}


def checker(chapter: str | int):
    """Register a checker under its chapter (``"7b"`` for section 7.9): misuse raises, the verdict is recorded (chapter 1)."""

    def register(f: Callable) -> Callable:
        @functools.wraps(f)
        def run(fn, *args, **kwargs) -> Result:
            require_function(f.__name__, fn)
            try:
                result = f(fn, *args, **kwargs)
            except NotImplementedError:
                result = not_written(f.__name__, "it raises NotImplementedError")
            _LATEST[f.__name__] = result
            return result

        run.chapter = str(chapter)
        _CHECKERS.setdefault(str(chapter), []).append(run)
        return run

    return register


def checkers(chapter: str | int | None = None) -> list[Callable]:
    """The registered checkers of one chapter (``"7b"`` for section 7.9), or of every chapter, in order (chapter 1)."""
    if chapter is None:
        return [c for group in _CHECKERS.values() for c in group]
    if str(chapter) not in _CHECKERS:
        raise ValueError(f"no checkers for chapter {chapter!r}; chapters with checkers: {sorted(_CHECKERS, key=_order)}")
    return list(_CHECKERS[str(chapter)])


def _order(chapter: str) -> tuple[int, str]:
    digits = "".join(ch for ch in chapter if ch.isdigit())
    return int(digits or 0), chapter


@dataclass(frozen=True)
class Summary:
    """Where a learner stands: one row (checker, status, message) per checked exercise (chapter 1)."""

    chapter: str
    rows: tuple[tuple[str, str, str], ...]

    @property
    def passed(self) -> int:
        return sum(status == "pass" for _, status, _ in self.rows)

    def __bool__(self) -> bool:
        return self.passed == len(self.rows)

    def _lines(self, mark: dict[str, str]) -> list[str]:
        head = f"Chapter {self.chapter}: {self.passed} of {len(self.rows)} checked exercises pass"
        lines = [head]
        for name, status, message in self.rows:
            detail = "" if status in ("pass", "not run yet", "not written yet") else f" — {message}"
            lines.append(f"{mark[status]} {name}: {status}{detail}")
        return lines

    def __repr__(self) -> str:
        return "\n".join(self._lines({"pass": "✓", "fail": "✗", "not written yet": "…", "not run yet": "·"}))

    def _repr_markdown_(self) -> str:
        first, *rest = self._lines({"pass": "✅", "fail": "❌", "not written yet": "✏️", "not run yet": "⏳"})
        return f"**{first}**\n\n" + "\n".join(f"- {line}" for line in rest)


def summary(chapter: str | int | None = None) -> Summary:
    """Which checked exercises of a chapter pass, which are not written yet, which fail, with the hint (chapter 1).

    Reads the latest verdict of each of the chapter's checkers in this session; a checker not
    called yet is "not run yet". ``chapter=None`` lists every checker called so far.
    """
    if chapter is None:
        names = [c.__name__ for c in checkers() if c.__name__ in _LATEST]
        label = "all"
    else:
        names = [c.__name__ for c in checkers(chapter)]
        label = str(chapter)
    rows = []
    for name in names:
        result = _LATEST.get(name)
        rows.append((name, "not run yet", "") if result is None else (name, result.status, result.message))
    return Summary(label, tuple(rows))
