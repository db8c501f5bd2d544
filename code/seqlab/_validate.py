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


def time_steps(name: str, x: torch.Tensor, dim: int = 1) -> int:
    """The number of time steps of ``x`` along ``dim``, which must be at least one: a scan over no steps has
    no last state to return, and an empty output would hide the mistake."""
    T = x.shape[dim]
    if T < 1:
        raise ValueError(f"{name} must have at least one time step (dimension {dim}), got shape {tuple(x.shape)}")
    return T


def number(name: str, value, *, minimum: float | None = None, strict: bool = False) -> float:
    """``value`` as a finite float (an int or float, not a bool or a str), at least ``minimum``.

    ``strict``: it must be greater than ``minimum``, not equal to it (``minimum=0, strict=True``: positive).
    """
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        raise TypeError(f"{name} must be a number (int or float), got {type(value).__name__} {value!r}")
    if value != value or value in (float("inf"), float("-inf")):
        raise ValueError(f"{name} must be a finite number, got {value}")
    if minimum is not None and (value <= minimum if strict else value < minimum):
        want = "positive (> 0)" if strict and minimum == 0 else f"{'>' if strict else '>='} {minimum}"
        raise ValueError(f"{name} must be {want}, got {value}")
    return float(value)


def token_ids(name: str, x, vocab_size: int, *, ndim: int | Sequence[int], min_length: int = 0) -> torch.Tensor:
    """Check a tensor of token ids: an integer tensor with ``ndim`` dimensions, every id in ``[0, vocab_size)``,
    and at least ``min_length`` positions along the last (time) axis.

    The one validator behind every model that reads ids (``NGramLM``, ``RecurrentLM``, ``Seq2Seq``, ``GPT``).
    """
    tensor(name, x, ndim=ndim, dtype="long")
    if x.shape[-1] < min_length:
        want = "one token" if min_length == 1 else f"{min_length} tokens"
        raise ValueError(f"{name} must hold at least {want} along its last axis, got shape {tuple(x.shape)}")
    if x.numel() and (x.min() < 0 or x.max() >= vocab_size):
        raise ValueError(f"{name} must lie in [0, {vocab_size}), got values in [{x.min().item()}, {x.max().item()}]")
    return x


def initial_state(state, shape: Sequence[int], like: torch.Tensor, *, dims: str, name: str = "state", what: str = "",
                  like_name: str = "x") -> torch.Tensor:
    """An ops form's initial state: zeros of ``shape`` (``like``'s dtype and device) when ``state`` is None, else
    ``state`` checked to be a float tensor of exactly ``shape`` with ``like``'s dtype.

    ``dims`` names the axes (``"(B, D, N)"``) and ``what`` the state (``"h"``) in the message. The one check of
    a carried state behind every recurrent family of ``seqlab.ops`` (chapters 12–14).
    """
    shape = tuple(shape)
    if state is None:
        return like.new_zeros(shape)
    tensor(name, state, ndim=len(shape), dtype="float")
    if tuple(state.shape) != shape:
        raise ValueError(f"{name} must be {what + ' of shape ' if what else ''}{dims} = {shape}, got {tuple(state.shape)}")
    if state.dtype != like.dtype:
        raise TypeError(f"{name} must have {like_name}'s dtype {like.dtype}, got {state.dtype}")
    return state


def parameters(specs, like: torch.Tensor, like_name: str) -> None:
    """Each ``(name, tensor, shape)`` of ``specs`` is a float tensor of exactly ``shape`` with ``like``'s dtype.

    The functional forms of ``seqlab.ops`` take their parameters as plain tensors; this is their one
    check of them (no broadcasting: a shape that differs is an error, naming both).
    """
    for name, p, shape in specs:
        tensor(name, p, dtype="float")
        if tuple(p.shape) != tuple(shape):
            raise ValueError(f"{name} must have shape {tuple(shape)}, got {tuple(p.shape)}")
        if p.dtype != like.dtype:
            raise TypeError(f"{name} must have {like_name}'s dtype {like.dtype}, got {p.dtype}")
