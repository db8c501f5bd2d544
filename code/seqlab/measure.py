"""Measuring cost: time with warm-up and median, peak memory, parameter counts (chapter 1 on).

Timings follow the usual discipline: run once or more to warm up (allocations,
caches, lazy initialisation), then time several repeats and report the
median, which is robust to the noise of a shared machine. On CUDA the device
is synchronised before each clock reading.
"""
from __future__ import annotations

import statistics
import threading
import time
from dataclasses import dataclass
from typing import Callable

import torch

from . import _validate as check


@dataclass(frozen=True)
class Timing:
    """Seconds per call: median, min, max and every repeat."""

    median: float
    min: float
    max: float
    times: tuple[float, ...]

    def __repr__(self) -> str:
        return f"Timing(median={self.median * 1e3:.3f} ms, min={self.min * 1e3:.3f} ms, max={self.max * 1e3:.3f} ms, n={len(self.times)})"


def _sync(device) -> None:
    if device is not None and torch.device(device).type == "cuda":
        torch.cuda.synchronize(device)


def time_call(fn: Callable[[], object], *, warmup: int = 1, repeats: int = 5, device=None) -> Timing:
    """Time ``fn()``: ``warmup`` untimed calls, then ``repeats`` timed ones."""
    if not callable(fn):
        raise TypeError(f"fn must be callable, got {type(fn).__name__}")
    check.positive_int("warmup", warmup, minimum=0)
    check.positive_int("repeats", repeats)
    for _ in range(warmup):
        fn()
    times = []
    for _ in range(repeats):
        _sync(device)
        t0 = time.perf_counter()
        fn()
        _sync(device)
        times.append(time.perf_counter() - t0)
    return Timing(statistics.median(times), min(times), max(times), tuple(times))


def rss_bytes() -> int:
    """Resident memory of this process now (Linux: /proc; elsewhere 0)."""
    try:
        with open("/proc/self/statm") as f:
            pages = int(f.read().split()[1])
        import os

        return pages * os.sysconf("SC_PAGE_SIZE")
    except (OSError, ValueError):
        return 0


def peak_memory(fn: Callable[[], object], device=None, interval: float = 0.0005) -> int:
    """Extra memory, in bytes, that ``fn()`` needs at its peak.

    On CUDA: ``torch.cuda.max_memory_allocated`` above what was allocated
    before. On the CPU: the process's resident memory sampled every
    ``interval`` seconds while ``fn`` runs, peak minus the level before
    (an estimate: allocations that come and go between samples are missed,
    and memory the allocator keeps from earlier calls is not counted).
    """
    if not callable(fn):
        raise TypeError(f"fn must be callable, got {type(fn).__name__}")
    if device is not None and torch.device(device).type == "cuda":
        torch.cuda.synchronize(device)
        base = torch.cuda.memory_allocated(device)
        torch.cuda.reset_peak_memory_stats(device)
        fn()
        torch.cuda.synchronize(device)
        return max(0, torch.cuda.max_memory_allocated(device) - base)
    base = rss_bytes()
    peak = [base]
    done = threading.Event()

    def sample():
        while not done.is_set():
            peak[0] = max(peak[0], rss_bytes())
            time.sleep(interval)

    thread = threading.Thread(target=sample, daemon=True)
    thread.start()
    try:
        fn()
    finally:
        done.set()
        thread.join()
    peak[0] = max(peak[0], rss_bytes())
    return max(0, peak[0] - base)


def count_parameters(model: torch.nn.Module, trainable_only: bool = True) -> int:
    """Number of (trainable) parameters of ``model``."""
    if not isinstance(model, torch.nn.Module):
        raise TypeError(f"model must be a torch.nn.Module, got {type(model).__name__}")
    return sum(p.numel() for p in model.parameters() if p.requires_grad or not trainable_only)
