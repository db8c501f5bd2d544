import time

import pytest
import torch

from seqlab.measure import Timing, count_parameters, peak_memory, time_call


def test_time_call_measures_a_known_sleep():
    t = time_call(lambda: time.sleep(0.02), warmup=1, repeats=3)
    assert isinstance(t, Timing) and len(t.times) == 3
    assert 0.018 < t.median < 0.2 and t.min <= t.median <= t.max


def test_time_call_runs_warmup_first():
    calls = []
    time_call(lambda: calls.append(1), warmup=2, repeats=3)
    assert len(calls) == 5


def test_peak_memory_sees_a_large_allocation():
    def allocate():
        x = torch.ones(64, 1024, 1024)  # 256 MiB, touched
        time.sleep(0.05)
        return x.sum()

    small = peak_memory(lambda: torch.ones(10).sum())
    big = peak_memory(allocate)
    assert big > 200 * 2**20, big
    assert small < 50 * 2**20, small


def test_count_parameters():
    m = torch.nn.Linear(3, 4)
    assert count_parameters(m) == 16
    m.bias.requires_grad_(False)
    assert count_parameters(m) == 12 and count_parameters(m, trainable_only=False) == 16


def test_measure_errors():
    with pytest.raises(TypeError, match="callable"):
        time_call(3)
    with pytest.raises(ValueError, match="repeats must be >= 1"):
        time_call(lambda: None, repeats=0)
    with pytest.raises(TypeError, match="torch.nn.Module"):
        count_parameters("model")
