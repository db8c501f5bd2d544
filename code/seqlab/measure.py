"""Measuring cost: time with warm-up and median, peak memory, parameter counts (chapter 1 on).

Chapter 9 adds the measures of its cost curves: ``time_calls`` (several
functions timed in interleaved rounds, so that load on a shared machine does
not bend one curve), ``saved_tensor_bytes`` (the memory autograd keeps for the
backward pass, counted exactly), ``graph_depth`` (the longest chain of
dependent operations in the autograd graph: the sequential steps no parallel
hardware can remove), ``fit_power_law`` / ``fit_slope`` (a straight line on
log-log axes, y = c x^slope), ``crossover`` (where two cost curves cross) and
``device_name`` (what measured).

Timings follow the usual discipline: run once or more to warm up (allocations,
caches, lazy initialisation), then time several repeats and report the
median or, on a shared machine, each function's fastest call over several
interleaved rounds (``time_calls``), as chapters 2, 4 and 9 do. On CUDA the device
is synchronised before each clock reading.
"""
from __future__ import annotations

import math
import statistics
import threading
import time
from dataclasses import dataclass
from typing import Callable, Sequence

import torch

from . import _validate as validate


@dataclass(frozen=True)
class Timing:
    """Seconds per call: median, min, max and every repeat (chapter 2)."""

    median: float
    min: float
    max: float
    times: tuple[float, ...]

    def __repr__(self) -> str:
        return f"Timing(median={self.median * 1e3:.3f} ms, min={self.min * 1e3:.3f} ms, max={self.max * 1e3:.3f} ms, n={len(self.times)})"


def _sync(device) -> None:
    if device is not None and torch.device(device).type == "cuda":
        torch.cuda.synchronize(device)


MAX_SECONDS = 120.0
"""Default wall-clock cap of one timing loop: past it, no further repeat starts (one always runs)."""


def _check_max_seconds(max_seconds) -> float:
    if isinstance(max_seconds, bool) or not isinstance(max_seconds, (int, float)):
        raise TypeError(f"max_seconds must be a number of seconds, got {type(max_seconds).__name__}")
    if not max_seconds > 0:
        raise ValueError(f"max_seconds must be > 0, got {max_seconds}")
    return float(max_seconds)


def time_call(fn: Callable[[], object], *, warmup: int = 1, repeats: int = 5, device=None,
              max_seconds: float = MAX_SECONDS, clock: str = "wall") -> Timing:
    """Time ``fn()``: ``warmup`` untimed calls, then ``repeats`` timed ones (chapter 2).

    No repeat starts once ``max_seconds`` have passed since the first timed call (at least one is
    timed): on a machine slowed by other work the measurement ends with fewer repeats instead of
    running on; ``Timing.times`` says how many there were. ``clock="cpu"`` times each call in this
    process's CPU seconds instead of wall seconds. It is ``time_calls`` with one function.
    """
    if not callable(fn):
        raise TypeError(f"fn must be callable, got {type(fn).__name__}")
    return time_calls({"fn": fn}, warmup=warmup, repeats=repeats, device=device, max_seconds=max_seconds,
                      clock=clock)["fn"]


CLOCKS = {"wall": "perf_counter", "cpu": "process_time"}  # names in `time`, looked up when a timing starts


def _clock(clock: str, device) -> Callable[[], float]:
    """``"wall"``: elapsed time; ``"cpu"``: this process's CPU time, which other work on the machine does not
    stretch (for single-threaded work on the CPU, the two agree on a quiet machine; chapters 13.10 and 14)."""
    if clock not in CLOCKS:
        raise ValueError(f"clock must be one of {sorted(CLOCKS)}, got {clock!r}")
    if clock == "cpu" and device is not None and torch.device(device).type != "cpu":
        raise ValueError(f"clock='cpu' times work done on the CPU; on device {device} use clock='wall'")
    return getattr(time, CLOCKS[clock])


def time_calls(fns: dict, *, warmup: int = 1, repeats: int = 5, device=None, max_seconds: float = MAX_SECONDS,
               clock: str = "wall", rotate: bool = False) -> dict:
    """Time several functions *interleaved* (chapter 9; chapters 2 and 4 use it too): ``{key: fn}`` -> ``{key: Timing}``.

    Each round calls every function once, in order; ``warmup`` rounds are not timed. On a shared
    machine a burst of load then slows one call of each function alike, instead of every call of
    the one function that happened to be running (which would bend a cost curve), and the
    ``min`` of each ``Timing`` picks a quiet moment for every key. No round starts once
    ``max_seconds`` have passed since the first timed round (at least one round is timed).
    ``clock="cpu"`` times each call in this process's CPU seconds instead of wall seconds.
    ``rotate=True`` starts round r at the (r mod k)-th of the k functions, so that each is timed after each of the
    others equally often: what one call leaves behind (a warm or a cold cache, the allocator's state) then falls on
    every function alike, not always on the one that follows it.
    """
    now = _clock(clock, device)
    if not isinstance(fns, dict) or not fns:
        raise TypeError(f"fns must be a non-empty dict {{key: function}}, got {type(fns).__name__}"
                        + (" (empty)" if isinstance(fns, dict) else ""))
    for key, fn in fns.items():
        if not callable(fn):
            raise TypeError(f"fns[{key!r}] must be callable, got {type(fn).__name__}")
    validate.positive_int("warmup", warmup, minimum=0)
    validate.positive_int("repeats", repeats)
    if not isinstance(rotate, bool):
        raise TypeError(f"rotate must be a bool, got {type(rotate).__name__} {rotate!r}")
    max_seconds = _check_max_seconds(max_seconds)
    for _ in range(warmup):
        for fn in fns.values():
            fn()
    times: dict = {key: [] for key in fns}
    deadline = time.monotonic() + max_seconds
    for r in range(repeats):
        if r and time.monotonic() > deadline:
            break
        order = list(fns.items())
        if rotate:
            order = order[r % len(order):] + order[:r % len(order)]
        for key, fn in order:
            _sync(device)
            t0 = now()
            fn()
            _sync(device)
            times[key].append(now() - t0)
    return {key: Timing(statistics.median(t), min(t), max(t), tuple(t)) for key, t in times.items()}


def rss_bytes() -> int:
    """Resident memory of this process now (Linux: /proc; elsewhere 0; chapter 9)."""
    try:
        with open("/proc/self/statm") as f:
            pages = int(f.read().split()[1])
        import os

        return pages * os.sysconf("SC_PAGE_SIZE")
    except (OSError, ValueError):
        return 0


def peak_memory(fn: Callable[[], object], device=None, interval: float = 0.0005) -> int:
    """Extra memory, in bytes, that ``fn()`` needs at its peak (chapter 9).

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
    """Number of (trainable) parameters of ``model`` (chapter 2)."""
    if not isinstance(model, torch.nn.Module):
        raise TypeError(f"model must be a torch.nn.Module, got {type(model).__name__}")
    return sum(p.numel() for p in model.parameters() if p.requires_grad or not trainable_only)


def saved_tensor_bytes(fn: Callable[[], object]) -> int:
    """Bytes of the tensors that autograd saves for the backward pass while ``fn()`` runs (chapter 9).

    Every tensor an operation stores for its gradient passes through a
    ``torch.autograd.graph.saved_tensors_hooks`` pack hook; each underlying
    storage is counted once, whole (``q, k, v = qkv.chunk(3)`` are three views
    of one storage, and ``x * x`` saves ``x`` twice: counted once). Parameters
    and inputs that an operation saves count too: it is the memory the graph
    holds, deterministic and the same on every device, unlike a sample of the
    process's resident memory (``peak_memory``). Temporaries that are freed
    during the forward pass are not counted. ``fn`` must build the graph (its
    inputs require grad); it need not call ``backward``.
    """
    if not callable(fn):
        raise TypeError(f"fn must be callable, got {type(fn).__name__}")
    storages: dict[tuple, int] = {}

    def pack(t: torch.Tensor) -> torch.Tensor:
        try:
            s = t.untyped_storage()
            storages[(t.device.type, t.device.index, s.data_ptr())] = s.nbytes()
        except (RuntimeError, NotImplementedError):  # tensors without a plain storage: count their elements
            storages[("id", id(t))] = t.numel() * t.element_size()
        return t

    with torch.autograd.graph.saved_tensors_hooks(pack, lambda t: t):
        out = fn()  # keep the output (and so the graph and its saved tensors) alive while counting
    total = sum(storages.values())
    del out
    return total


def graph_depth(y: torch.Tensor) -> int:
    """The longest chain of dependent operations from the inputs to ``y`` in its autograd graph (chapter 9).

    Counts backward nodes (one per differentiable operation; the leaves' ``AccumulateGrad`` nodes
    count 0) on the longest path from ``y.grad_fn`` to a leaf. Operations on that path must run one
    after another, whatever the hardware: it is the *depth* (span) of the computation as counted at node
    granularity, while the number of operations of each kind and their sizes give its *work*. A Python loop
    over time adds a fixed number of nodes per step; a one-node kernel hides its own chain: ``nn.LSTM`` is a
    single node although its steps run in sequence inside it, and ``cumsum`` one although its own depth is
    at least log n.
    """
    if not isinstance(y, torch.Tensor):
        raise TypeError(f"y must be a torch.Tensor, got {type(y).__name__}")
    if y.grad_fn is None:
        raise ValueError("y has no autograd graph (y.grad_fn is None): compute it from inputs that require grad, "
                         "outside torch.no_grad()")
    depth: dict = {}
    stack = [(y.grad_fn, False)]
    while stack:  # iterative post-order: a loop over thousands of steps would overflow Python's recursion
        node, children_done = stack.pop()
        if node in depth:
            continue
        children = [f for f, _ in node.next_functions if f is not None]
        if children_done:
            own = 0 if type(node).__name__ == "AccumulateGrad" else 1
            depth[node] = own + max((depth[c] for c in children), default=0)
        else:
            stack.append((node, True))
            stack.extend((c, False) for c in children if c not in depth)
    return depth[y.grad_fn]


@dataclass(frozen=True)
class PowerLaw:
    """``y = coefficient * x ** slope``: a straight line of gradient ``slope`` on log-log axes (chapter 9)."""

    slope: float
    coefficient: float

    def __call__(self, x):
        """The fitted y at ``x`` (a number, or anything NumPy can raise to a power)."""
        import numpy as np

        return self.coefficient * np.asarray(x, dtype=float) ** self.slope

    def __repr__(self) -> str:
        return f"PowerLaw(y = {self.coefficient:.3g} x^{self.slope:.3f})"


def fit_power_law(x: Sequence[float], y: Sequence[float]) -> PowerLaw:
    """Least-squares fit of ``log y = log c + slope log x`` (chapter 9: cost against length on log-log axes).

    ``x`` and ``y`` are sequences of positive numbers of the same length, at least two distinct ``x``.
    """
    xs, ys = [float(v) for v in x], [float(v) for v in y]
    if len(xs) != len(ys):
        raise ValueError(f"x and y must have the same length, got {len(xs)} and {len(ys)}")
    if len(set(xs)) < 2:
        raise ValueError(f"a slope needs at least two distinct x values, got {xs}")
    if min(xs) <= 0 or min(ys) <= 0:
        raise ValueError(f"a log-log fit needs positive x and y, got min(x)={min(xs)} and min(y)={min(ys)}")
    lx, ly = [math.log(v) for v in xs], [math.log(v) for v in ys]
    mx, my = sum(lx) / len(lx), sum(ly) / len(ly)
    slope = sum((a - mx) * (b - my) for a, b in zip(lx, ly)) / sum((a - mx) ** 2 for a in lx)
    return PowerLaw(slope, math.exp(my - slope * mx))


def binomial_se(p: float, n: int) -> float:
    """The standard error √(p(1 − p)/n) of an accuracy (a frequency) over ``n`` independent trials that each
    succeed with probability ``p``: how far a guesser at chance ``p`` strays on a test set of ``n`` (chapter 1)."""
    if not 0 <= p <= 1:
        raise ValueError(f"p must be a probability in [0, 1], got {p!r}")
    validate.positive_int("n", n)
    return math.sqrt(p * (1 - p) / n)


def fit_slope(x: Sequence[float], y: Sequence[float]) -> float:
    """The slope of ``y`` against ``x`` on log-log axes: ``fit_power_law(x, y).slope`` (chapter 9)."""
    return fit_power_law(x, y).slope


def crossover(x: Sequence[float], y_a: Sequence[float], y_b: Sequence[float]) -> float | None:
    """The first ``x`` at which curve ``a`` and curve ``b`` cross, or None if they do not (chapter 9).

    Between the two grid points where ``y_a - y_b`` first changes sign, the curves are
    interpolated as straight lines on log-log axes (exact for two power laws). ``x`` must be
    increasing and positive, ``y_a`` and ``y_b`` positive, all three of one length.
    """
    xs, a, b = [float(v) for v in x], [float(v) for v in y_a], [float(v) for v in y_b]
    if not len(xs) == len(a) == len(b) or len(xs) < 2:
        raise ValueError(f"x, y_a and y_b must have one length of at least 2, got {len(xs)}, {len(a)} and {len(b)}")
    if any(u >= v for u, v in zip(xs, xs[1:])) or xs[0] <= 0:
        raise ValueError(f"x must be positive and increasing, got {xs}")
    if min(a + b) <= 0:
        raise ValueError("y_a and y_b must be positive (they are compared on log axes)")
    gap = [math.log(u / v) for u, v in zip(a, b)]  # log(y_a / y_b): its sign says which curve is above
    for i in range(len(xs)):
        if gap[i] == 0:
            return xs[i]
        if i + 1 < len(xs) and gap[i] * gap[i + 1] < 0:
            f = gap[i] / (gap[i] - gap[i + 1])  # where the straight line between the two log-gaps reaches 0
            return math.exp(math.log(xs[i]) + f * (math.log(xs[i + 1]) - math.log(xs[i])))
    return None


def device_name(device=None) -> str:
    """A one-line description of the hardware that measured (chapter 9): the GPU's name, or the CPU's model
    and how many threads PyTorch uses. Printed beside live timings, so a reader knows where they come from."""
    device = torch.device("cpu" if device is None else device)
    if device.type == "cuda":
        return f"{torch.cuda.get_device_name(device)} (CUDA)"
    if device.type != "cpu":
        return str(device)
    model = None
    try:
        with open("/proc/cpuinfo") as f:
            model = next((line.split(":", 1)[1].strip() for line in f if line.startswith("model name")), None)
    except OSError:
        pass
    if not model:
        import platform

        model = platform.processor() or platform.machine() or "unknown"
    import os

    n = torch.get_num_threads()
    return f"{model} CPU, {os.cpu_count()} logical cores, {n} PyTorch thread{'' if n == 1 else 's'}"


def count_flops(fn: Callable[[], object]) -> int:
    """Floating-point operations of the matrix products that ``fn()`` runs, counted by PyTorch (chapter 15).

    Uses ``torch.utils.flop_counter.FlopCounterMode``: a matrix product of (m, k) by (k, n) counts
    2·m·k·n, whatever the hardware or the load on the machine, so two counts compare exactly. Only
    operations with a registered formula count (matrix products, convolutions, attention kernels
    with a known layout); elementwise work and operations fused into one opaque kernel
    (``nn.LSTM``'s, or attention with an explicit mask) do not, so count a model in a form that
    writes its products out.
    """
    if not callable(fn):
        raise TypeError(f"fn must be callable, got {type(fn).__name__}")
    from torch.utils.flop_counter import FlopCounterMode

    with FlopCounterMode(display=False) as counter:
        fn()
    return int(counter.get_total_flops())


# ---------------------------------------------------------------- n-gram levels (chapter 10)
def unigram_entropy(ids: torch.Tensor, vocab_size: int) -> float:
    """The loss of predicting the symbol frequencies of ``ids`` alone, in nats: H = −Σ_v p_v ln p_v (chapter 7).

    What a model that ignores its input reaches at best; the level a stalled language model sits at.
    """
    validate.tensor("ids", ids, ndim=1)
    validate.positive_int("vocab_size", vocab_size)
    counts = torch.bincount(ids, minlength=vocab_size).double()
    p = counts[counts > 0] / counts.sum()
    return -(p * p.log()).sum().item()


def ngram_level(loss: float, levels: dict) -> int:
    """The highest n-gram order whose loss ``loss`` matches or beats, 0 if it is worse than the unigram's (chapter 10).

    ``levels`` maps an order ``n`` (1 = unigram, 2 = bigram, ...) to that count model's loss on
    the same evaluation windows (``ngram_baselines``). A model at level 3 predicts at least as well
    as a trigram table and worse than a 4-gram table (or there is no higher order to compare).
    """
    if not isinstance(levels, dict) or not levels:
        raise ValueError(f"levels must be a non-empty dict order -> loss, got {levels!r}")
    validate.number("loss", loss)
    reached = 0
    for n in sorted(levels, key=int):
        if loss <= levels[n]:
            reached = int(n)
    return reached


NGRAM_NAMES = {1: "unigram", 2: "bigram", 3: "trigram", 4: "4-gram", 5: "5-gram", 6: "6-gram"}


def ngram_level_name(level: int) -> str:
    """``"worse than the unigram"``, ``"unigram"``, ``"bigram"``, ... for an ``ngram_level`` (chapter 10)."""
    return "worse than the unigram" if level == 0 else NGRAM_NAMES.get(level, f"{level}-gram")


def ngram_level_phrase(level: int, top: int) -> str:
    """Where an ``ngram_level`` lies among orders 1 .. ``top``, in words: ``"worse than the unigram"``,
    ``"between the bigram and the trigram"``, ``"below the 5-gram"`` (chapter 10)."""
    if level <= 0:
        return ngram_level_name(0)
    if level >= top:
        return f"below the {ngram_level_name(top)}"
    return f"between the {ngram_level_name(level)} and the {ngram_level_name(level + 1)}"


def ngram_levels_text(levels: dict, fmt: str = ".3f") -> str:
    """Every count model's loss in words, lowest order first: ``"unigram 3.331, bigram 2.509, …, 5-gram 1.294"``
    (chapter 10), so that a page placing a model between two orders prints both."""
    if not isinstance(levels, dict) or not levels:
        raise ValueError(f"levels must be a non-empty dict order -> loss, got {levels!r}")
    return ", ".join(f"{ngram_level_name(int(n))} {levels[n]:{fmt}}" for n in sorted(levels, key=int))


def ngram_baselines(train_ids, windows, vocab_size: int, max_order: int = 5) -> dict:
    """Count-model baselines on a model's own evaluation windows (chapter 10).

    Returns ``{"levels": {n: mean loss}, "by_position": {n: [loss at each position]},
    "window_losses": {n: [mean loss of each window]}}`` for Witten-Bell n-gram tables of order
    1 .. ``max_order`` fitted on ``train_ids``, scored as a neural model is (position t sees only
    the window's first t + 1 symbols). ``levels`` are the horizontal lines of a loss plot.
    """
    from .models.ngram import window_losses

    losses = window_losses(train_ids, windows, vocab_size, max_order)  # (orders, n, T)
    return {"levels": {k + 1: round(losses[k].mean().item(), 5) for k in range(max_order)},
            "by_position": {k + 1: [round(v, 5) for v in losses[k].mean(0).tolist()] for k in range(max_order)},
            "window_losses": {k + 1: [round(v, 5) for v in losses[k].mean(1).tolist()] for k in range(max_order)}}


def draw_ngram_levels(ax, levels: dict, orders=None, *, label_at: str = "right", **kw) -> None:
    """Horizontal lines at each n-gram level on ``ax``, labelled at its right or left edge (``label_at``; chapter 10)."""
    if label_at not in ("right", "left"):
        raise ValueError(f"label_at must be 'right' or 'left', got {label_at!r}")
    orders = sorted(levels, key=int) if orders is None else orders
    for n in orders:
        ax.axhline(levels[n], color="0.6", lw=0.8, ls=":", **kw)
        ax.annotate(ngram_level_name(int(n)), (1.0 if label_at == "right" else 0.0, levels[n]),
                    xycoords=("axes fraction", "data"), fontsize=7, color="0.4", ha=label_at, va="bottom")
