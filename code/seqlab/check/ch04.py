"""Exercise checkers of chapter 4: ``gru_step``, ``lstm_step``."""
from __future__ import annotations

from typing import Callable

import torch

from .core import Case, Result, checker, compare


def _gru_step_reference(x_t, h_prev, W_x, W_h, b_x, b_h, *, swap_z=False, bias_outside=False, reset_first=False, gate_order="rzn"):
    H = h_prev.shape[-1]
    gx = x_t @ W_x.T + b_x  # (B, 3H)
    gh = h_prev @ W_h.T + b_h  # (B, 3H)
    blocks = {k: slice(i * H, (i + 1) * H) for i, k in enumerate(gate_order)}
    r = torch.sigmoid(gx[:, blocks["r"]] + gh[:, blocks["r"]])
    z = torch.sigmoid(gx[:, blocks["z"]] + gh[:, blocks["z"]])
    W_hn, b_hn = W_h[blocks["n"]], b_h[blocks["n"]]
    if reset_first:
        recurrent = (r * h_prev) @ W_hn.T + b_hn
    elif bias_outside:
        recurrent = r * (h_prev @ W_hn.T) + b_hn
    else:
        recurrent = r * gh[:, blocks["n"]]
    n = torch.tanh(gx[:, blocks["n"]] + recurrent)
    return z * n + (1 - z) * h_prev if swap_z else (1 - z) * n + z * h_prev


@checker("4")
def gru_step(fn: Callable) -> Result:
    """Chapter 4: ``fn(x_t, h_prev, W_x, W_h, b_x, b_h)`` must return h_t of a GRU, in PyTorch's convention.

    Weights are stacked in the order [r, z, n]: ``W_x`` (3H, D), ``W_h`` (3H, H), ``b_x``, ``b_h`` (3H,).
    r_t = sigma(W_xr x_t + b_xr + W_hr h_{t-1} + b_hr), z_t likewise,
    n_t = tanh(W_xn x_t + b_xn + r_t * (W_hn h_{t-1} + b_hn)), h_t = (1 - z_t) * n_t + z_t * h_{t-1}.
    """
    g = torch.Generator().manual_seed(4)

    def case(B, D, H, describe):
        args = (torch.randn(B, D, generator=g), torch.randn(B, H, generator=g), torch.randn(3 * H, D, generator=g) * 0.5,
                torch.randn(3 * H, H, generator=g) * 0.5, torch.randn(3 * H, generator=g), torch.randn(3 * H, generator=g))
        return Case(args, describe)

    cases = [case(2, 3, 4, "B=2, D=3, H=4"), case(1, 5, 2, "B=1, D=5, H=2 (input wider than the state)")]
    mistakes = [
        (lambda *a: _gru_step_reference(*a, swap_z=True), "z and 1 - z are swapped: h_t = (1 - z_t) * n_t + z_t * h_{t-1} (z_t near 1 keeps the old state)"),
        (lambda *a: _gru_step_reference(*a, bias_outside=True), "the reset gate must multiply (W_hn h_{t-1} + b_hn), bias included"),
        (lambda *a: _gru_step_reference(*a, reset_first=True), "that resets h_{t-1} before the matrix (Cho et al.'s original); PyTorch applies r_t after it: r_t * (W_hn h_{t-1} + b_hn)"),
        (lambda *a: _gru_step_reference(*a, gate_order="zrn"), "the gates are read in the wrong order: the stacked rows are [r, z, n]"),
    ]
    return compare("gru_step", fn, _gru_step_reference, cases, mistakes=mistakes)


# ---------------------------------------------------------------- the LSTM's step
def _lstm_step_reference(x_t, h_prev, c_prev, W_x, W_h, b_x, b_h, *, order="ifgo", carry=True, tanh_c=True,
                         g_act="tanh"):
    """PyTorch's LSTM step, gates stacked [i, f, g, o]; variants name the classic mistakes."""
    H = h_prev.shape[-1]
    gates = x_t @ W_x.T + b_x + h_prev @ W_h.T + b_h  # (B, 4H)
    part = {k: gates[:, j * H:(j + 1) * H] for j, k in enumerate(order)}
    i, f, o = torch.sigmoid(part["i"]), torch.sigmoid(part["f"]), torch.sigmoid(part["o"])
    g = torch.tanh(part["g"]) if g_act == "tanh" else torch.sigmoid(part["g"])
    c = (f * c_prev if carry else 0) + i * g  # (B, H)
    h = o * (torch.tanh(c) if tanh_c else c)
    return h, c


@checker("4")
def lstm_step(fn: Callable) -> Result:
    """Chapter 4: ``fn(x_t, h_prev, c_prev, W_x, W_h, b_x, b_h)`` must return ``(h_t, c_t)`` of an LSTM.

    PyTorch's convention: the weights are stacked in the order [i, f, g, o], ``W_x`` (4H, D),
    ``W_h`` (4H, H), ``b_x``, ``b_h`` (4H,); ``x_t`` (B, D), ``h_prev`` and ``c_prev`` (B, H).
    i, f, o = sigma(...) and g = tanh(...) of ``x_t W_x^T + b_x + h_prev W_h^T + b_h`` (each
    block of H columns); ``c_t = f * c_prev + i * g`` and ``h_t = o * tanh(c_t)``, both (B, H).
    """
    g = torch.Generator().manual_seed(41)

    def case(B, D, H, describe):
        r = lambda *s: torch.randn(*s, generator=g, dtype=torch.float64)
        return Case((r(B, D), r(B, H), r(B, H) * 2, r(4 * H, D) * 0.5, r(4 * H, H) * 0.5, r(4 * H), r(4 * H)),
                    describe)

    cases = [case(2, 3, 4, "B=2, D=3, H=4"), case(1, 5, 2, "B=1, D=5, H=2"), case(3, 2, 3, "B=3, D=2, H=3")]
    variant = lambda **kw: (lambda *a: _lstm_step_reference(*a, **kw))
    mistakes = [
        (variant(order="ifog"), "the gates are read in the wrong order: PyTorch stacks [i, f, g, o] (the "
                                "candidate g third, the output gate last)"),
        (variant(order="figo"), "the gates are read in the wrong order: PyTorch stacks [i, f, g, o] (input "
                                "gate first, forget gate second: c_t = f_t * c_{t-1} + i_t * g_t)"),
        (variant(carry=False), "the cell state is not carried: c_t = f_t * c_{t-1} + i_t * g_t keeps the old "
                               "cell, scaled by the forget gate"),
        (variant(tanh_c=False), "h_t = o_t * tanh(c_t): the tanh of the cell is missing"),
        (variant(g_act="sigmoid"), "the candidate g_t uses tanh (values in (-1, 1)), not the sigmoid of the gates"),
    ]
    return compare("lstm_step", fn, _lstm_step_reference, cases, mistakes=mistakes, grad=True)
