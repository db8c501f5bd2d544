"""Chapter 9's measurement helpers finish beside other work (a busy process), within a time limit, and
stop early rather than run on when the machine is slow (issue: a chapter must never wait forever)."""
from __future__ import annotations

import subprocess
import sys
import time

import pytest
import torch

from seqlab import measure
from seqlab.experiments import cost


class BusyProcess:
    """A second Python process spinning for as long as the ``with`` block lasts: other work on the machine.

    A process, not a thread: a spinning thread of this interpreter would hold the GIL for a whole switch
    interval (5 ms) every time a PyTorch call hands it back, so the thousands of small calls of the Python
    loop would each wait on it, a slowdown no notebook meets (its kernel runs no other Python thread).
    """

    def __enter__(self):
        self.proc = subprocess.Popen([sys.executable, "-c", "while True: pass"])
        return self

    def __exit__(self, *exc):
        self.proc.kill()
        self.proc.wait(timeout=5)


def test_chapter_9_measurements_finish_beside_a_busy_process():
    torch.manual_seed(0)
    g = torch.Generator().manual_seed(0)
    layers = cost.cost_layers(16, torch.device("cpu"))
    n_max = {name: 64 for name in layers}
    t0 = time.perf_counter()
    with BusyProcess():
        seconds, ns_of = cost.time_against_length(layers, [16, 32, 64], n_max, batch=1, d=16, repeats=2,
                                                  generator=g, device=None)
        x = torch.randn(1, 64, 16, generator=g)
        saved = measure.peak_memory(lambda: cost.run_layer(layers["attention, by hand"], x).sum().backward())
    elapsed = time.perf_counter() - t0
    assert elapsed < 60, f"the measurements took {elapsed:.0f} s beside one busy process"
    assert set(seconds) == set(layers) and all(len(seconds[k]) == len(ns_of[k]) == 3 for k in layers)
    assert all(t > 0 for ts in seconds.values() for t in ts)
    assert saved >= 0


def test_timing_loops_stop_at_their_time_cap():
    calls = []

    def slow():
        calls.append(1)
        time.sleep(0.05)

    t0 = time.perf_counter()
    timing = measure.time_call(slow, warmup=0, repeats=1000, max_seconds=0.2)
    assert time.perf_counter() - t0 < 2
    assert 1 <= len(timing.times) < 1000                     # stopped early, with what it had
    timings = measure.time_calls({"a": slow, "b": slow}, warmup=0, repeats=1000, max_seconds=0.2)
    assert len(timings["a"].times) == len(timings["b"].times) < 1000    # whole rounds only
    one = measure.time_call(slow, warmup=0, repeats=3, max_seconds=1e-9)
    assert len(one.times) == 1                                # at least one repeat is always timed


@pytest.mark.parametrize("bad, error", [(0, ValueError), (-1.0, ValueError), ("10", TypeError), (True, TypeError)])
def test_time_cap_is_validated(bad, error):
    with pytest.raises(error, match="max_seconds"):
        measure.time_call(lambda: None, max_seconds=bad)
    with pytest.raises(error, match="max_seconds"):
        measure.time_calls({"a": lambda: None}, max_seconds=bad)


def test_cpu_clock_is_not_stretched_by_a_busy_process():
    def work():
        x = torch.randn(200, 200)
        for _ in range(20):
            x = torch.tanh(x @ x / 200)
    quiet = measure.time_calls({"w": work}, warmup=1, repeats=3, clock="cpu")["w"].min
    with BusyProcess():
        busy = measure.time_calls({"w": work}, warmup=1, repeats=3, clock="cpu")["w"].min
    assert busy < 2 * quiet, (quiet, busy)          # CPU seconds: the same work, whatever runs beside it
    with pytest.raises(ValueError, match="clock must be one of"):
        measure.time_calls({"w": work}, clock="tsc")
    with pytest.raises(ValueError, match="clock='cpu' times work done on the CPU"):
        measure.time_calls({"w": work}, clock="cpu", device="cuda")
