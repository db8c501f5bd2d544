"""Exercise checkers of chapter 8: ``apply_rope`` and ``sinusoidal_encoding``."""
from __future__ import annotations

from typing import Callable

import torch

from .core import Case, Result, checker, compare


def _apply_rope_reference(x, offset, *, base=10000.0, sign=1.0, pairing="interleaved", exponent=2.0, start=0):
    """Rotate pair i of position m by sign * m * base^(-exponent * i / d); variants name the classic mistakes.

    ``pairing="interleaved"`` pairs (x_{2i}, x_{2i+1}) (the exercise); ``"half"`` pairs (x_i, x_{i+d/2})
    (the "rotate_half" convention of GPT-NeoX and LLaMA). ``start`` is added to every position.
    """
    T, d = x.shape[-2], x.shape[-1]
    m = torch.arange(offset + start, offset + start + T, dtype=torch.float64)  # (T,)
    omega = base ** (-exponent * torch.arange(d // 2, dtype=torch.float64) / d)  # (d/2,)
    theta = sign * m[:, None] * omega[None]  # (T, d/2)
    cos, sin = theta.cos().to(x.dtype), theta.sin().to(x.dtype)
    if pairing == "interleaved":
        x1, x2 = x[..., 0::2], x[..., 1::2]  # (..., T, d/2)
        return torch.stack([x1 * cos - x2 * sin, x1 * sin + x2 * cos], dim=-1).flatten(-2)  # (..., T, d)
    x1, x2 = x[..., : d // 2], x[..., d // 2:]
    return torch.cat([x1 * cos - x2 * sin, x1 * sin + x2 * cos], dim=-1)  # (..., T, d)


@checker("8")
def apply_rope(fn: Callable) -> Result:
    """Chapter 8: ``fn(x, offset)`` must return the rotary position embedding ``R_m x`` of every row of x.

    ``x`` (..., T, d), d even, holds queries or keys at positions ``m = offset .. offset + T - 1``.
    Pair i of position m, ``(x_{2i}, x_{2i+1})`` (interleaved), is rotated anticlockwise by
    ``theta = m * base^(-2i/d)`` with base 10000::

        (x_{2i}, x_{2i+1}) -> (x_{2i} cos theta - x_{2i+1} sin theta,  x_{2i} sin theta + x_{2i+1} cos theta)

    Returns a tensor of the shape of x.
    """
    g = torch.Generator().manual_seed(8)
    r = lambda *shape: torch.randn(*shape, generator=g, dtype=torch.float64)
    cases = [
        Case((r(5, 8), 0), "x (5, 8), offset 0: positions 0..4"),
        Case((r(2, 3, 4, 6), 0), "x (2, 3, 4, 6): batch and heads, offset 0"),
        Case((r(3, 8), 7), "x (3, 8), offset 7: positions 7..9 (e.g. new tokens after a cache of 7)"),
        Case((r(2, 1, 16), 20), "x (2, 1, 16), offset 20: one position, 20"),
    ]
    variant = lambda **kw: (lambda x, offset: _apply_rope_reference(x, offset, **kw))
    mistakes = [
        (variant(sign=-1.0), "the rotation goes the wrong way (the sign of sin is flipped): "
                             "x_{2i} cos - x_{2i+1} sin, then x_{2i} sin + x_{2i+1} cos"),
        (variant(pairing="half"), "this pairs x_i with x_{i+d/2} (the 'rotate_half' split used by GPT-NeoX and "
                                  "LLaMA): a different convention, equally valid, but not the one asked for here, "
                                  "which rotates the interleaved pairs (x_{2i}, x_{2i+1})"),
        (variant(pairing="half", sign=-1.0), "this pairs x_i with x_{i+d/2} ('rotate_half') and also rotates the "
                                             "wrong way; the exercise asks for interleaved pairs (x_{2i}, x_{2i+1})"),
        (variant(exponent=1.0), "the frequencies are base^(-i/d); pair i turns at base^(-2i/d) "
                                "(the exponent runs over the even dimensions 0, 2, 4, ...)"),
        (lambda x, offset: _apply_rope_reference(x, 0), "the offset is ignored: the rows are at positions "
                                                        "offset .. offset + T - 1, not 0 .. T - 1"),
        (variant(start=1), "positions start at offset + 1; the first row is at position offset "
                           "(with offset 0 it is not rotated at all)"),
    ]
    return compare("apply_rope", fn, lambda x, offset: _apply_rope_reference(x, offset), cases,
                   mistakes=mistakes, rtol=1e-4, atol=1e-5, grad=True)


# ---------------------------------------------------------------- the sinusoidal table
def _sinusoidal_reference(T, d, *, swap=False, exponent=2.0, layout="interleaved", start=0):
    """P[t, 2i] = sin(t w_i), P[t, 2i+1] = cos(t w_i), w_i = 10000^(-2i/d); variants name the classic mistakes."""
    t = torch.arange(start, start + T, dtype=torch.float64)[:, None]  # (T, 1)
    w = 10000.0 ** (-exponent * torch.arange(d // 2, dtype=torch.float64) / d)  # (d/2,)
    first, second = (torch.cos(t * w), torch.sin(t * w)) if swap else (torch.sin(t * w), torch.cos(t * w))
    if layout == "interleaved":
        return torch.stack([first, second], dim=-1).reshape(T, d)  # (T, d)
    return torch.cat([first, second], dim=-1)


@checker("8")
def sinusoidal_encoding(fn: Callable) -> Result:
    """Chapter 8: ``fn(T, d)`` must return the (T, d) table of sinusoidal positional encodings.

    Positions t = 0 .. T - 1 and pairs i = 0 .. d/2 - 1 (d even): ``P[t, 2i] = sin(t * w_i)`` and
    ``P[t, 2i+1] = cos(t * w_i)``, with ``w_i = 10000^(-2i/d)``.
    """
    cases = [Case((6, 8), "T=6, d=8"), Case((1, 4), "T=1, d=4: position 0 only"), Case((50, 16), "T=50, d=16"),
             Case((3, 2), "T=3, d=2: one pair")]
    variant = lambda **kw: (lambda T, d: _sinusoidal_reference(T, d, **kw))
    mistakes = [
        (variant(swap=True), "sin and cos are swapped: the even columns 2i hold sin(t w_i), the odd ones cos"),
        (variant(exponent=1.0), "the frequencies are 10000^(-i/d); pair i turns at 10000^(-2i/d)"),
        (variant(layout="halves"), "all the sines come first, then all the cosines (the halves layout): here they "
                                   "are interleaved, sin in column 2i and cos in column 2i + 1"),
        (variant(start=1), "positions start at 1; the first row is position 0 (sin 0 = 0, cos 0 = 1)"),
    ]
    return compare("sinusoidal_encoding", fn, _sinusoidal_reference, cases, mistakes=mistakes, rtol=1e-5, atol=1e-6)
