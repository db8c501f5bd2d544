"""Sequences that are not text, generated on the spot (chapter 1).

Each returns a tensor shaped the way the book's models take it: a batch of
real-valued series is ``(B, T, C)`` (C channels per step); a batch of symbol
sequences is ``(B, T)`` of integer ids.
"""
from __future__ import annotations

import math

import torch

from .. import _validate as validate
from ..config import make_generator

DNA = "ACGT"


def seasonal_series(batch_size: int, length: int, period: float = 24.0, noise: float = 0.2, generator=None) -> torch.Tensor:
    """Daily-cycle-like time series: ``x_t = a sin(2 pi t / P + phi) + b t / T + noise`` (chapter 1).

    Amplitude ``a``, phase ``phi`` and trend ``b`` vary per series. Shape ``(B, T, 1)``.
    """
    validate.positive_int("batch_size", batch_size)
    validate.positive_int("length", length)
    validate.number("period", period, minimum=0, strict=True)
    validate.number("noise", noise, minimum=0)
    g = make_generator(generator)
    t = torch.arange(length, dtype=torch.float32)
    a = 0.5 + torch.rand(batch_size, 1, generator=g)
    phi = 2 * math.pi * torch.rand(batch_size, 1, generator=g)
    b = torch.randn(batch_size, 1, generator=g) * 0.5
    x = a * torch.sin(2 * math.pi * t / period + phi) + b * t / length
    x = x + noise * torch.randn(batch_size, length, generator=g)
    return x.unsqueeze(-1)  # (B, T, 1)


def chirp(seconds: float = 0.5, sample_rate: int = 8000, f0: float = 200.0, f1: float = 1200.0) -> torch.Tensor:
    """An audio-like signal whose pitch rises linearly from ``f0`` to ``f1`` Hz. Shape ``(1, T, 1)`` (chapter 1)."""
    validate.positive_int("sample_rate", sample_rate)
    validate.number("seconds", seconds, minimum=0, strict=True)
    validate.number("f0", f0, minimum=0)
    validate.number("f1", f1, minimum=0)
    T = int(seconds * sample_rate)
    if T < 2:
        raise ValueError(f"seconds * sample_rate must give at least 2 samples, got {seconds} s at {sample_rate} Hz "
                         f"= {T} sample{'s' if T != 1 else ''}")
    t = torch.arange(T, dtype=torch.float32) / sample_rate
    phase = 2 * math.pi * (f0 * t + (f1 - f0) * t**2 / (2 * seconds))
    return torch.sin(phase)[None, :, None]


def dna_with_motif(batch_size: int, length: int, motif: str = "TATAAT", rate: float = 0.5, generator=None):
    """Random DNA (uniform over A, C, G, T) in which a motif is planted in some sequences (chapter 1).

    Returns ``(x, has_motif, where)``: ids ``(B, T)`` indexing ``DNA``, a bool
    ``(B,)``, and the motif's start (``-1`` where none was planted).
    """
    validate.positive_int("batch_size", batch_size)
    validate.probability("rate", rate)
    if not motif or set(motif) - set(DNA):
        raise ValueError(f"motif must be a non-empty string over {DNA!r}, got {motif!r}")
    validate.positive_int("length", length, minimum=len(motif))
    g = make_generator(generator)
    x = torch.randint(0, 4, (batch_size, length), generator=g)
    has = torch.rand(batch_size, generator=g) < rate
    where = torch.randint(0, length - len(motif) + 1, (batch_size,), generator=g)
    m = torch.tensor([DNA.index(c) for c in motif])
    for i in torch.nonzero(has).flatten().tolist():
        x[i, where[i] : where[i] + len(motif)] = m
    return x, has, torch.where(has, where, torch.full_like(where, -1))


def decode_dna(ids: torch.Tensor) -> str:
    """The letters of a 1-D sequence of DNA ids (chapter 1)."""
    validate.tensor("ids", ids, ndim=1, dtype="long")
    return "".join(DNA[i] for i in ids.tolist())
