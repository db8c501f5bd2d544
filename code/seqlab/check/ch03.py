"""Exercise checkers of chapter 3: ``bptt_step``."""
from __future__ import annotations

from typing import Callable

import torch

from .core import Case, Result, compare


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


def bptt_step(fn: Callable) -> Result:
    """Chapter 3: ``fn(g_t, delta_next, W_hh, h_t)`` must return one step of the BPTT recursion.

    ``delta_t = (g_t + W_hh^T delta_{t+1}) * (1 - h_t**2)`` for every row of the batch:
    ``g_t`` (B, H) is dL/dh_t from the loss at step t alone, ``delta_next`` (B, H) is
    delta_{t+1} = dL/da_{t+1}, ``W_hh`` (H, H), ``h_t`` (B, H) the state tanh(a_t).
    """
    cases = _bptt_step_cases()
    result = compare("bptt_step", fn, _bptt_step_reference, cases)
    if result.ok or not callable(fn):
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
