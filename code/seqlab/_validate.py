"""Argument checks shared by every module, so that bad input fails early and clearly.

Each check raises ``TypeError`` (wrong kind of object or dtype) or
``ValueError`` (wrong value or shape), naming what was expected and what came.
"""
from __future__ import annotations

from typing import Sequence

import torch


def positive_int(name: str, value, minimum: int = 1) -> int:
    """``value`` as an int that is at least ``minimum``."""
    if isinstance(value, bool) or not isinstance(value, int):
        raise TypeError(f"{name} must be an int, got {type(value).__name__}")
    if value < minimum:
        raise ValueError(f"{name} must be >= {minimum}, got {value}")
    return value


def probability(name: str, value) -> float:
    """``value`` as a float in [0, 1]."""
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        raise TypeError(f"{name} must be a number, got {type(value).__name__}")
    if not 0.0 <= value <= 1.0:
        raise ValueError(f"{name} must be in [0, 1], got {value}")
    return float(value)


def tensor(
    name: str,
    x,
    *,
    ndim: int | Sequence[int] | None = None,
    dtype: str | None = None,
    last_dim: int | None = None,
) -> torch.Tensor:
    """Check a tensor argument.

    ``ndim``: allowed number of dimensions; ``dtype``: ``"float"`` (any floating
    dtype) or ``"long"`` (any integer dtype); ``last_dim``: required size of the
    last dimension.
    """
    if not isinstance(x, torch.Tensor):
        raise TypeError(f"{name} must be a torch.Tensor, got {type(x).__name__}")
    if ndim is not None:
        allowed = (ndim,) if isinstance(ndim, int) else tuple(ndim)
        if x.dim() not in allowed:
            want = " or ".join(str(a) for a in allowed)
            raise ValueError(f"{name} must be {want}-dimensional, got shape {tuple(x.shape)}")
    if dtype == "float" and not x.is_floating_point():
        raise TypeError(f"{name} must be a floating-point tensor, got dtype {x.dtype}")
    if dtype == "long" and (x.is_floating_point() or x.is_complex() or x.dtype == torch.bool):
        raise TypeError(f"{name} must be an integer tensor (token ids), got dtype {x.dtype}")
    if last_dim is not None and x.shape[-1] != last_dim:
        raise ValueError(f"{name} must have last dimension {last_dim}, got shape {tuple(x.shape)}")
    return x
