"""Chapter 9's measurement helpers finish beside other work, within a time limit, and stop early
rather than run on when the machine is slow (issue: a chapter must never wait forever)."""
from __future__ import annotations

import threading
import time

import pytest
import torch

from seqlab import measure
from seqlab.experiments import cost


class BusyThread:
    """A Python thread spinning for as long as the ``with`` block lasts (it competes for the GIL too)."""

    def __enter__(self):
        self.stop = threading.Event()
        self.thread = threading.Thread(target=self._spin, daemon=True)
        self.thread.start()
        return self

    def _spin(self):
        x = 0
        while not self.stop.is_set():
            x += 1

    def __exit__(self, *exc):
        self.stop.set()
        self.thread.join(timeout=5)
        assert not self.thread.is_alive()


def test_chapter_9_measurements_finish_beside_a_busy_thread():
    torch.manual_seed(0)
    g = torch.Generator().manual_seed(0)
    layers = cost.cost_layers(16, torch.device("cpu"))
    n_max = {name: 64 for name in layers}
    t0 = time.perf_counter()
    with BusyThread():
        seconds, ns_of = cost.time_against_length(layers, [16, 32, 64], n_max, batch=1, d=16, repeats=2,
                                                  generator=g, device=None)
        x = torch.randn(1, 64, 16, generator=g)
        saved = measure.peak_memory(lambda: cost.run_layer(layers["attention, by hand"], x).sum().backward())
    elapsed = time.perf_counter() - t0
    assert elapsed < 60, f"the measurements took {elapsed:.0f} s beside one busy thread"
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
