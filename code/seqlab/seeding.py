"""Named random streams: every seed the package uses, shifted once by ``SEQLAB_SEED_OFFSET`` (chapter 1).

Glossary:

    seed           the run's seed, 0, 1, 2, ... (a sweep's seeds)
    offset         ``SEQLAB_SEED_OFFSET`` (default 0): ``make test-seeds`` reruns every chapter with
                   offsets 1, 2, 3, so a claim that holds for one seed only fails
    init(seed)     seeds Python's, NumPy's and PyTorch's global generators (a model's initial weights
                   are drawn from them) and returns a generator of the same seed
    batches(seed, stream)   the training batches: a generator of seed + stream, the global ones untouched
    held_out(seed, stream)  data never trained on: a generator of 10 000 · (stream + 1) + seed, so held-out
                   data and training batches never share a seed for seeds below 10 000

Each stream applies the offset exactly once (``shifted``); no experiment adds it by hand.
"""
from __future__ import annotations

import os
import random

import numpy as np
import torch

HELD_OUT = 10_000  # the first held-out stream's base; stream k starts at HELD_OUT · (k + 1)

__all__ = ["HELD_OUT", "seed_offset", "shifted", "init", "batches", "held_out"]


def seed_offset() -> int:
    """The integer ``SEQLAB_SEED_OFFSET`` (default 0) that every stream adds to its seed (chapter 1)."""
    raw = os.environ.get("SEQLAB_SEED_OFFSET", "").strip()
    if raw == "":
        return 0
    try:
        return int(raw)
    except ValueError:
        raise ValueError(f"SEQLAB_SEED_OFFSET must be an integer, got {raw!r}") from None


def _check(name: str, value) -> int:
    if not isinstance(value, int) or isinstance(value, bool):
        raise TypeError(f"{name} must be an int, got {type(value).__name__}")
    return value


def shifted(seed: int) -> int:
    """``seed + SEQLAB_SEED_OFFSET``: the one place the offset is applied (chapter 1)."""
    return _check("seed", seed) + seed_offset()


def init(seed: int) -> torch.Generator:
    """Seed Python, NumPy and PyTorch (CPU and CUDA) with the shifted ``seed``; return a fresh generator of it (chapter 1).

    ``seqlab.seed_everything`` is this function: chapters call it once at the top, so that two runs
    print the same numbers, and before building each model, so that its initial weights are seeded.
    """
    seed = shifted(seed)
    random.seed(seed)
    np.random.seed(seed % 2**32)
    torch.manual_seed(seed)
    return torch.Generator().manual_seed(seed)


def batches(seed: int, stream: int = 0) -> torch.Generator:
    """The generator of a training stream: seeded with the shifted ``seed + stream``; the global RNGs untouched (chapter 1)."""
    return torch.Generator().manual_seed(shifted(seed + _check("stream", stream)))


def held_out(seed: int, stream: int = 0) -> torch.Generator:
    """The generator of held-out data: seeded with the shifted ``HELD_OUT · (stream + 1) + seed`` (chapter 1)."""
    if _check("stream", stream) < 0:
        raise ValueError(f"stream must be >= 0, got {stream}")
    return torch.Generator().manual_seed(shifted(HELD_OUT * (stream + 1) + seed))
