"""Exercise checkers of chapter 2: ``rnn_step``, ``rnn_forward``."""
from __future__ import annotations

from typing import Callable

import torch

from .core import Case, Result, checker, compare


def _rnn_step_reference(x_t, h_prev, W_xh, b_xh, W_hh, b_hh):
    return torch.tanh(x_t @ W_xh.T + b_xh + h_prev @ W_hh.T + b_hh)


_RNN_STEP_MISTAKES = [
    (lambda x, h, Wx, bx, Wh, bh: x @ Wx.T + bx + h @ Wh.T + bh,
     "no nonlinearity: apply tanh to W_xh x_t + b_xh + W_hh h_{t-1} + b_hh"),
    (lambda x, h, Wx, bx, Wh, bh: torch.sigmoid(x @ Wx.T + bx + h @ Wh.T + bh),
     "that is the logistic sigmoid; the Elman RNN step uses tanh"),
    (lambda x, h, Wx, bx, Wh, bh: torch.relu(x @ Wx.T + bx + h @ Wh.T + bh),
     "that is ReLU; the exercise asks for tanh"),
    (lambda x, h, Wx, bx, Wh, bh: torch.tanh(x @ Wx + bx + h @ Wh + bh),
     "the weights are transposed: with rows as batch items, h_t = tanh(x_t @ W_xh.T + b_xh + h_prev @ W_hh.T + b_hh)"),
    (lambda x, h, Wx, bx, Wh, bh: torch.tanh(x @ Wx.T + bx + h @ Wh + bh),
     "W_hh is transposed: the recurrent term is h_prev @ W_hh.T"),
    (lambda x, h, Wx, bx, Wh, bh: torch.tanh(x @ Wx.T + bx + bh),
     "the state h_{t-1} is ignored: without W_hh h_{t-1} there is no recurrence"),
    (lambda x, h, Wx, bx, Wh, bh: torch.tanh(x @ Wx.T + bx + h @ Wh.T),
     "b_hh is missing: PyTorch's RNN adds two biases, b_xh and b_hh"),
    (lambda x, h, Wx, bx, Wh, bh: torch.tanh(x @ Wx.T + h @ Wh.T + bh),
     "b_xh is missing: PyTorch's RNN adds two biases, b_xh and b_hh"),
]


def _rnn_step_cases() -> list[Case]:
    g = torch.Generator().manual_seed(2)

    def make(B, D, H, zero_state=False):
        r = lambda *s: torch.randn(*s, generator=g)
        h = torch.zeros(B, H) if zero_state else r(B, H)
        return (r(B, D), h, r(H, D) * 0.5, r(H) * 0.5, r(H, H) * 0.5, r(H) * 0.5)

    return [
        Case(make(2, 3, 3), "B=2, input width D=3 = state width d=3"),
        Case(make(1, 4, 3), "B=1, D=4, d=3 (input width differs from state width)"),
        Case(make(5, 2, 6), "B=5, D=2, d=6"),
        Case(make(3, 3, 4, zero_state=True), "B=3, D=3, d=4, h_prev = 0 (the first step)"),
    ]


@checker("2")
def rnn_step(fn: Callable) -> Result:
    """Chapter 2: ``fn(x_t, h_prev, W_xh, b_xh, W_hh, b_hh)`` must return ``h_t`` of shape ``(B, H)``.

    ``h_t = tanh(W_xh x_t + b_xh + W_hh h_{t-1} + b_hh)`` for every row of the batch:
    ``x_t`` is ``(B, D)``, ``h_prev`` ``(B, H)``, ``W_xh`` ``(H, D)``, ``W_hh`` ``(H, H)``,
    the biases ``(H,)`` (the shapes of ``nn.RNN``'s parameters).
    """
    cases = _rnn_step_cases()
    result = compare("rnn_step", fn, _rnn_step_reference, cases, grad=True)
    if result.ok or not result.written:
        return result
    for case in cases:  # name a known mistake when the learner's output matches one on the failing case
        want = _rnn_step_reference(*case.args)
        try:
            got = fn(*case.args)
        except Exception:
            return result
        if not isinstance(got, torch.Tensor):
            return result
        got = got.detach().double()
        if got.shape == want.shape and torch.allclose(got, want.double(), rtol=1e-5, atol=1e-6):
            continue
        if got.shape == want.T.shape and got.shape != want.shape:
            return Result(False, f"rnn_step returned shape {tuple(got.shape)} = (H, B): keep the batch in the rows, "
                                 f"h_t of shape (B, H) = {tuple(want.shape)} — on {case.describe}")
        for mistake, message in _RNN_STEP_MISTAKES:
            try:
                wrong = mistake(*case.args).double()
            except RuntimeError:  # e.g. a transposed weight that does not fit this case's shapes
                continue
            if wrong.shape == got.shape and torch.allclose(got, wrong, rtol=1e-5, atol=1e-6):
                return Result(False, f"rnn_step: {message} — on {case.describe}")
        return result
    return result


# ---------------------------------------------------------------- the whole sequence: rnn_forward
def _rnn_forward_reference(x, h_0, W_xh, b_xh, W_hh, b_hh, *, carry=True, shift=False, final="last", stack_dim=1,
                           transposed=False):
    """h_t = tanh(x_t W_xh^T + b_xh + h_{t-1} W_hh^T + b_hh) for t = 1..T; variants name the classic mistakes."""
    W_hh = W_hh.T if transposed else W_hh
    h, hs = h_0, []
    for t in range(x.shape[1]):
        prev = h if carry else h_0  # carry=False: every step reads h_0 again
        h = torch.tanh(x[:, t] @ W_xh.T + b_xh + prev @ W_hh.T + b_hh)  # (B, H)
        hs.append(prev if shift else h)  # shift: the state *before* step t
    return torch.stack(hs, dim=stack_dim), {"last": h, "initial": h_0}[final]  # (B, T, H), (B, H)


def _rnn_forward_cases() -> list[Case]:
    g = torch.Generator().manual_seed(21)

    def make(B, T, D, H):
        r = lambda *s: torch.randn(*s, generator=g, dtype=torch.float64)
        return (r(B, T, D), r(B, H), r(H, D) * 0.5, r(H) * 0.5, r(H, H) * 0.5, r(H) * 0.5)

    return [Case(make(2, 5, 3, 4), "x (2, 5, 3): B=2, T=5, D=3; h_0 (2, 4)"),
            Case(make(3, 1, 2, 3), "x (3, 1, 2): a single step, T=1"),
            Case(make(1, 7, 4, 4), "x (1, 7, 4): B=1, T=7, D=H=4")]


@checker("2")
def rnn_forward(fn: Callable) -> Result:
    """Chapter 2: ``fn(x, h_0, W_xh, b_xh, W_hh, b_hh)`` must run the RNN over a whole sequence.

    ``x`` (B, T, D) holds the inputs, ``h_0`` (B, H) the initial state, the parameters are shaped as
    ``nn.RNN``'s (``W_xh`` (H, D), ``W_hh`` (H, H), biases (H,)). For t = 1..T,
    ``h_t = tanh(x_t W_xh^T + b_xh + h_{t-1} W_hh^T + b_hh)``, each step reading the state the
    previous step wrote. Returns ``(hs, h_T)``: every state h_1..h_T stacked in time, (B, T, H),
    and the final state (B, H).
    """
    variant = lambda **kw: (lambda *a: _rnn_forward_reference(*a, **kw))
    mistakes = [
        (variant(carry=False), "the state is not carried: every step reads h_0 again; step t must read the "
                               "h_{t-1} that step t - 1 wrote"),
        (variant(shift=True), "off by one: the outputs are h_0 .. h_{T-1}; they should be h_1 .. h_T, the "
                              "state after reading each x_t"),
        (variant(stack_dim=0), "the states are stacked along the wrong axis, (T, B, H): stack along dim 1 for "
                               "batch-first (B, T, H)"),
        (variant(final="initial"), "the final state returned is h_0: return the state after the last step, h_T"),
        (variant(transposed=True), "W_hh is transposed: the recurrent term is h_{t-1} @ W_hh.T"),
    ]
    return compare("rnn_forward", fn, _rnn_forward_reference, _rnn_forward_cases(), mistakes=mistakes, grad=True)
