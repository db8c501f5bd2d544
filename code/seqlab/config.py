"""Device choice, seeding and the quick/full experiment scale.

Introduced in chapter 1. Every experiment in the book takes its sizes from one
visible call::

    cfg = seqlab.scale(quick=dict(steps=400, d=64), full=dict(steps=8000, d=256))

``quick`` is chosen on a CPU and ``full`` on a GPU; the environment variable
``SEQLAB_SCALE=quick|full`` overrides the choice.

Two more environment variables make a chapter's claims checkable on any
machine: ``SEQLAB_SEED_OFFSET`` shifts every seed (``seqlab.seeding``, whose
``init`` is ``seed_everything``; ``make test-seeds`` reruns the chapters under
several offsets, so an assert that holds only for the committed seed fails),
and ``SEQLAB_THREADS`` sets PyTorch's intra-op thread count (``configure_threads``).
"""
from __future__ import annotations

import os
from types import SimpleNamespace
from typing import Any

import torch

from .seeding import init as seed_everything, seed_offset  # noqa: F401  (the seeding of chapter 1 lives in seeding)

SCALES = ("quick", "full")


def get_device(prefer: str | None = None) -> torch.device:
    """The device experiments run on: CUDA when present, else the CPU (chapter 1).

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
    """``"quick"`` or ``"full"``: ``SEQLAB_SCALE`` if set, else full on a GPU, quick on a CPU (chapter 1)."""
    name = os.environ.get("SEQLAB_SCALE")
    if name is None or name == "":
        return "full" if torch.cuda.is_available() else "quick"
    if name not in SCALES:
        raise ValueError(f"SEQLAB_SCALE must be one of {SCALES}, got {name!r}")
    return name


def scale(quick: dict[str, Any], full: dict[str, Any]) -> SimpleNamespace:
    """Pick one of two experiment sizes (chapter 1).

    Both dictionaries must have the same keys, so that a chapter never uses a
    setting that exists at one scale only. The result is a namespace
    (``cfg.steps``) that also records which scale was chosen (``cfg.scale``).

    It is every chapter's set-up call, so it also applies the thread policy
    (``configure_threads``: one intra-op thread unless ``SEQLAB_THREADS`` says
    otherwise); ``import seqlab`` changes no global setting.
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
    configure_threads()
    return SimpleNamespace(scale=name, **(quick if name == "quick" else full))


def make_generator(generator: torch.Generator | int | None) -> torch.Generator | None:
    """A ``torch.Generator`` from a seed, a generator, or ``None`` (the global RNG); chapter 1.

    Every sampler in ``seqlab.data`` takes its ``generator`` argument through this function.
    """
    if generator is None or isinstance(generator, torch.Generator):
        return generator
    if isinstance(generator, bool) or not isinstance(generator, int):
        raise TypeError(f"generator must be a torch.Generator, an int seed or None, got {type(generator).__name__}")
    return torch.Generator().manual_seed(generator)


def progress_enabled() -> bool:
    """Whether training loops show a progress bar (chapter 1).

    On by default; ``SEQLAB_PROGRESS=0`` turns it off (the book build and the
    tests set it, so that no widget boxes or carriage returns end up in the
    built pages and logs).
    """
    return os.environ.get("SEQLAB_PROGRESS", "1") not in ("0", "false", "no", "")


# ---------------------------------------------------------------- threads
DEFAULT_THREADS = 1


def cpu_quota() -> int | None:
    """The CPUs this process may use: the scheduler affinity capped by the cgroup CPU quota, or None if unknown (chapter 9).

    Containers (Binder, CI runners) report the host's cores in ``os.cpu_count()``
    but grant one or two through ``/sys/fs/cgroup/cpu.max`` (cgroup v2) or
    ``cpu.cfs_quota_us`` / ``cpu.cfs_period_us`` (cgroup v1); PyTorch ignores the quota.
    """
    try:
        n = len(os.sched_getaffinity(0))
    except (AttributeError, OSError):
        n = os.cpu_count()
    quota = None
    try:
        text = open("/sys/fs/cgroup/cpu.max").read().split()
        if text and text[0] != "max":
            quota = int(text[0]) / int(text[1])
    except (OSError, ValueError, IndexError):
        try:
            q = int(open("/sys/fs/cgroup/cpu/cpu.cfs_quota_us").read())
            p = int(open("/sys/fs/cgroup/cpu/cpu.cfs_period_us").read())
            if q > 0 and p > 0:
                quota = q / p
        except (OSError, ValueError):
            pass
    if quota is not None:
        n = min(n or 1, max(1, int(quota)))
    return n


def configure_threads(threads: int | str | None = None) -> int:
    """Set PyTorch's intra-op thread count and return it (chapter 9 times one thread against two).

    ``threads`` (or, when it is None, ``SEQLAB_THREADS``) is a positive int or
    ``"auto"`` (every CPU the cgroup quota grants, see ``cpu_quota``). The
    default is ``DEFAULT_THREADS`` = 1: the course's models are small, so a
    second thread has little work to share, and on a shared 2-core machine
    more threads can be slower (``code/benchmarks/chapters.py --threads``
    measures it on yours). The chapters' set-up call ``scale`` and the command
    ``python -m seqlab.experiments`` call it; ``import seqlab`` does not.
    """
    if threads is None:
        threads = os.environ.get("SEQLAB_THREADS", "").strip() or DEFAULT_THREADS
    if isinstance(threads, str):
        if threads == "auto":
            threads = cpu_quota() or 1
        else:
            try:
                threads = int(threads)
            except ValueError:
                raise ValueError(f"SEQLAB_THREADS must be a positive integer or 'auto', got {threads!r}") from None
    if not isinstance(threads, int) or isinstance(threads, bool):
        raise TypeError(f"threads must be a positive int or 'auto', got {type(threads).__name__}")
    if threads < 1:
        raise ValueError(f"threads must be a positive int or 'auto', got {threads}")
    torch.set_num_threads(threads)
    return threads
