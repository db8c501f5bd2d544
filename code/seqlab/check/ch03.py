"""Exercise checkers of chapter 3: ``bptt_step``, ``clip_grad_norm``."""
from __future__ import annotations

from typing import Callable

import torch

from .core import Case, Result, checker, compare


def _bptt_step_reference(g_t, delta_next, W_hh, h_t):
    return (g_t + delta_next @ W_hh) * (1 - h_t**2)  # (B, H): rows are batch items, so W_hh^T delta is delta @ W_hh


_BPTT_STEP_MISTAKES = [
    (lambda g, d, W, h: (g + d @ W.T) * (1 - h**2),
     "W_hh is applied untransposed: the error flows back through W_hh^T, which for row vectors (B, H) is delta_next @ W_hh"),
    (lambda g, d, W, h: (g + d @ W) * (1 - torch.tanh(h) ** 2),
     "h_t is already tanh(a_t): the derivative is 1 - h_t**2, not 1 - tanh(h_t)**2"),
    (lambda g, d, W, h: (g + d @ W) * (1 - h),
     "the derivative of tanh is 1 - h_t**2 (squared), not 1 - h_t"),
    (lambda g, d, W, h: g + d @ W,
     "the factor tanh'(a_t) = 1 - h_t**2 is missing: delta_t is dL/da_t, not dL/dh_t"),
    (lambda g, d, W, h: g + (d @ W) * (1 - h**2),
     "the factor (1 - h_t**2) must multiply the whole sum g_t + W_hh^T delta_{t+1}, not only the recurrent term"),
    (lambda g, d, W, h: g * (1 - h**2) + d @ W,
     "the factor (1 - h_t**2) must multiply the whole sum g_t + W_hh^T delta_{t+1}, not only g_t"),
    (lambda g, d, W, h: (d @ W) * (1 - h**2),
     "the direct gradient g_t from the loss at step t is missing"),
    (lambda g, d, W, h: g * (1 - h**2),
     "the error from later steps, W_hh^T delta_{t+1}, is missing: without it nothing flows back in time"),
]


def _bptt_step_cases() -> list[Case]:
    g = torch.Generator().manual_seed(3)

    def make(B, H, last=False, no_loss=False):
        r = lambda *s: torch.randn(*s, generator=g, dtype=torch.float64)
        g_t = torch.zeros(B, H, dtype=torch.float64) if no_loss else r(B, H)
        delta_next = torch.zeros(B, H, dtype=torch.float64) if last else r(B, H)
        h_t = torch.tanh(r(B, H))  # a state of a tanh RNN, in (-1, 1)
        return (g_t, delta_next, r(H, H) * 0.7, h_t)

    return [
        Case(make(2, 3), "B=2, H=3"),
        Case(make(1, 4), "B=1, H=4"),
        Case(make(3, 5, no_loss=True), "B=3, H=5, g_t = 0 (no loss term at this step)"),
        Case(make(2, 4, last=True), "B=2, H=4, delta_next = 0 (the last step, t = T)"),
    ]


@checker("3")
def bptt_step(fn: Callable) -> Result:
    """Chapter 3: ``fn(g_t, delta_next, W_hh, h_t)`` must return one step of the BPTT recursion.

    ``delta_t = (g_t + W_hh^T delta_{t+1}) * (1 - h_t**2)`` for every row of the batch:
    ``g_t`` (B, H) is dL/dh_t from the loss at step t alone, ``delta_next`` (B, H) is
    delta_{t+1} = dL/da_{t+1}, ``W_hh`` (H, H), ``h_t`` (B, H) the state tanh(a_t).
    """
    cases = _bptt_step_cases()
    result = compare("bptt_step", fn, _bptt_step_reference, cases)
    if result.ok or not result.written:
        return result
    for case in cases:  # name a known mistake when the learner's output matches one on the first failing case
        want = _bptt_step_reference(*case.args)
        try:
            got = fn(*case.args)
        except Exception:
            return result
        if not isinstance(got, torch.Tensor) or got.shape != want.shape:
            return result
        got = got.detach().double()
        if torch.allclose(got, want, rtol=1e-5, atol=1e-6):
            continue
        for mistake, message in _BPTT_STEP_MISTAKES:
            if torch.allclose(got, mistake(*case.args), rtol=1e-5, atol=1e-6):
                return Result(False, f"bptt_step: {message} — on {case.describe}")
        return result
    return result


# ---------------------------------------------------------------- clipping the gradient norm
def _clip_reference(grads, max_norm, *, how="global"):
    """Scale every gradient by min(1, max_norm / (||g|| + 1e-6)), ||g|| the norm of all of them together."""
    if how == "per_tensor":
        return [g * min(1.0, max_norm / (g.norm().item() + 1e-6)) for g in grads]
    if how == "value":
        return [g.clamp(-max_norm, max_norm) for g in grads]
    total = torch.sqrt(sum((g ** 2).sum() for g in grads)).item()
    if how == "squared":
        total = total ** 2
    scale = max_norm / (total + 1e-6) if how == "always" else min(1.0, max_norm / (total + 1e-6))
    return [g * scale for g in grads]


def _clip_cases() -> list[Case]:
    g = torch.Generator().manual_seed(31)
    r = lambda *s: torch.randn(*s, generator=g, dtype=torch.float64)
    return [Case(([r(4, 3) * 2, r(3), r(2, 2) * 0.1], 1.0), "three gradients (4, 3), (3,), (2, 2), total norm "
                                                              "about 7, max_norm 1"),
            Case(([r(5) * 0.1, r(2, 3) * 0.1], 5.0), "two small gradients, total norm below max_norm 5: unchanged"),
            Case(([r(3, 3) * 3], 2.0), "one gradient (3, 3), max_norm 2"),
            Case(([r(6) * 0.3, r(6) * 3], 2.5), "a small and a large gradient, max_norm 2.5")]


@checker("3")
def clip_grad_norm(fn: Callable) -> Result:
    """Chapter 3: ``fn(grads, max_norm)`` must clip a list of gradients by their global norm.

    ``grads`` is a list of tensors of any shapes, ``max_norm`` a float. With the global norm
    ``||g|| = sqrt(sum over every tensor and entry of g**2)``, every tensor is multiplied by the
    same factor ``min(1, max_norm / (||g|| + 1e-6))`` (as ``torch.nn.utils.clip_grad_norm_``):
    the direction is kept and only a norm above ``max_norm`` shrinks. Returns the list of
    clipped tensors, in order and of the same shapes.
    """
    variant = lambda how: (lambda grads, max_norm: _clip_reference(grads, max_norm, how=how))
    mistakes = [
        (variant("per_tensor"), "each tensor is clipped by its own norm: clipping uses the global norm of all "
                                "gradients together, and one factor for all, so the direction is kept"),
        (variant("always"), "every gradient is rescaled to norm max_norm, small ones scaled up too: the factor "
                            "is min(1, max_norm / ||g||)"),
        (variant("squared"), "the norm is the square root of the sum of squares; the sqrt is missing"),
        (variant("value"), "each entry is clamped to [-max_norm, max_norm] (clipping by value): clip by the "
                           "norm, which keeps the gradient's direction"),
    ]
    return compare("clip_grad_norm", fn, _clip_reference, _clip_cases(), mistakes=mistakes)
