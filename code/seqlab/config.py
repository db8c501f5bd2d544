"""Device choice, seeding and the quick/full experiment scale.

Introduced in chapter 1. Every experiment in the book takes its sizes from one
visible call::

    cfg = seqlab.scale(quick=dict(steps=400, d=64), full=dict(steps=8000, d=256))

``quick`` is chosen on a CPU and ``full`` on a GPU; the environment variable
``SEQLAB_SCALE=quick|full`` overrides the choice.
"""
from __future__ import annotations

import os
import random
from types import SimpleNamespace
from typing import Any

import numpy as np
import torch

SCALES = ("quick", "full")


def get_device(prefer: str | None = None) -> torch.device:
    """The device experiments run on: CUDA when present, else the CPU.

    ``prefer`` (``"cpu"`` or ``"cuda"``) or the environment variable
    ``SEQLAB_DEVICE`` forces a choice.
    """
    prefer = prefer or os.environ.get("SEQLAB_DEVICE")
    if prefer is not None:
        if prefer not in ("cpu", "cuda"):
            raise ValueError(f"device must be 'cpu' or 'cuda', got {prefer!r}")
        if prefer == "cuda" and not torch.cuda.is_available():
            raise ValueError("device 'cuda' was asked for but torch.cuda.is_available() is False")
        return torch.device(prefer)
    return torch.device("cuda" if torch.cuda.is_available() else "cpu")


def current_scale() -> str:
    """``"quick"`` or ``"full"``: ``SEQLAB_SCALE`` if set, else full on a GPU, quick on a CPU."""
    name = os.environ.get("SEQLAB_SCALE")
    if name is None or name == "":
        return "full" if torch.cuda.is_available() else "quick"
    if name not in SCALES:
        raise ValueError(f"SEQLAB_SCALE must be one of {SCALES}, got {name!r}")
    return name


def scale(quick: dict[str, Any], full: dict[str, Any]) -> SimpleNamespace:
    """Pick one of two experiment sizes.

    Both dictionaries must have the same keys, so that a chapter never uses a
    setting that exists at one scale only. The result is a namespace
    (``cfg.steps``) that also records which scale was chosen (``cfg.scale``).
    """
    if not isinstance(quick, dict) or not isinstance(full, dict):
        raise TypeError(f"quick and full must be dicts, got {type(quick).__name__} and {type(full).__name__}")
    if set(quick) != set(full):
        raise ValueError(
            f"quick and full must have the same keys; only in quick: {sorted(set(quick) - set(full))}, "
            f"only in full: {sorted(set(full) - set(quick))}"
        )
    if "scale" in quick:
        raise ValueError("'scale' is reserved: it records which scale was chosen")
    name = current_scale()
    return SimpleNamespace(scale=name, **(quick if name == "quick" else full))


def seed_everything(seed: int) -> torch.Generator:
    """Seed Python, NumPy and PyTorch (CPU and CUDA); return a fresh ``torch.Generator``.

    Chapters call this once at the top, so that two runs print the same numbers.
    """
    if not isinstance(seed, int) or isinstance(seed, bool):
        raise TypeError(f"seed must be an int, got {type(seed).__name__}")
    random.seed(seed)
    np.random.seed(seed % 2**32)
    torch.manual_seed(seed)
    return torch.Generator().manual_seed(seed)


def progress_enabled() -> bool:
    """Whether training loops show a progress bar.

    On by default; ``SEQLAB_PROGRESS=0`` turns it off (the book build and the
    tests set it, so that no widget boxes or carriage returns end up in the
    built pages and logs).
    """
    return os.environ.get("SEQLAB_PROGRESS", "1") not in ("0", "false", "no", "")
