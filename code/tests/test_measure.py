import math
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


# --- chapter 9: saved tensors, graph depth, power-law fits, crossovers -------------------------------
from seqlab.measure import PowerLaw, crossover, fit_power_law, fit_slope, graph_depth, saved_tensor_bytes  # noqa: E402


def test_saved_tensor_bytes_counts_what_linear_saves():
    B, d_in, d_out = 5, 7, 3
    layer = torch.nn.Linear(d_in, d_out)
    x = torch.randn(B, d_in, requires_grad=True)
    # addmm saves its input (B, d_in) and the weight (d_out, d_in), float32
    assert saved_tensor_bytes(lambda: layer(x)) == 4 * (B * d_in + d_out * d_in)
    x64 = torch.randn(B, d_in, dtype=torch.float64, requires_grad=True)
    assert saved_tensor_bytes(lambda: layer.double()(x64)) == 8 * (B * d_in + d_out * d_in)


def test_saved_tensor_bytes_counts_each_storage_once():
    x = torch.randn(100, requires_grad=True)
    assert saved_tensor_bytes(lambda: x * x) == 400                      # x saved twice, one storage
    assert saved_tensor_bytes(lambda: torch.exp(x)) == 400                # exp saves its output
    assert saved_tensor_bytes(lambda: torch.exp(x) * x) == 800            # exp's output e (saved twice) and x
    with torch.no_grad():
        assert saved_tensor_bytes(lambda: x * x) == 0                     # no graph, nothing saved
    assert saved_tensor_bytes(lambda: x + 1) == 0                         # addition needs nothing for its gradient
    y = torch.randn(10, 30, requires_grad=True)
    a, b, c = y.chunk(3, dim=1)                                           # three views of y's storage
    assert saved_tensor_bytes(lambda: a * b * c) == 10 * 30 * 4 + 10 * 10 * 4   # y's storage once, and a * b


def test_saved_tensor_bytes_of_attention_grows_with_the_square():
    from seqlab.models import scaled_dot_product_attention

    def attention_bytes(n):
        q = torch.randn(1, n, 8, requires_grad=True)
        return saved_tensor_bytes(lambda: scaled_dot_product_attention(q, q, q)[0])

    assert attention_bytes(64) >= 64 * 64 * 4                             # the (n, n) weights are kept
    assert 3.5 < attention_bytes(128) / attention_bytes(64) < 4.1


def test_graph_depth_counts_the_longest_chain():
    x = torch.randn(3, requires_grad=True)
    assert graph_depth(((x * 2) + 1).sum()) == 3                         # mul, add, sum
    h = x
    for _ in range(10):
        h = torch.tanh(h)
    assert graph_depth(h) == 10
    assert graph_depth(x.exp() + h) == 11                                # the longer branch wins
    assert graph_depth(torch.stack([x * 2 for _ in range(50)]).sum()) == 3   # wide, not deep
    rnn = torch.nn.RNNCell(3, 4)
    hs = [torch.zeros(1, 4)]
    for t in range(20):
        hs.append(rnn(x[None], hs[-1]))
    assert graph_depth(hs[20]) - graph_depth(hs[10]) == 10 * (graph_depth(hs[2]) - graph_depth(hs[1]))


def test_graph_depth_handles_long_chains_and_errors():
    x = torch.randn(2, requires_grad=True)
    h = x
    for _ in range(5000):                                                # deeper than Python's recursion limit
        h = h * 0.999
    assert graph_depth(h) == 5000
    with pytest.raises(ValueError, match="no autograd graph"):
        graph_depth(torch.ones(3))
    with pytest.raises(TypeError, match="torch.Tensor"):
        graph_depth([1.0])


def test_fit_power_law_recovers_slope_and_coefficient():
    xs = [16, 64, 256, 1024]
    fit = fit_power_law(xs, [3.0 * x**1.5 for x in xs])
    assert isinstance(fit, PowerLaw)
    assert abs(fit.slope - 1.5) < 1e-9 and abs(fit.coefficient - 3.0) < 1e-9
    assert abs(float(fit(100)) - 3.0 * 1000) < 1e-6
    assert abs(fit_slope(xs, [5.0 / x for x in xs]) + 1.0) < 1e-9
    noisy = fit_slope([1, 2, 4, 8], [1.0, 2.2, 3.6, 8.4])               # a least-squares fit, not the end points
    assert 0.9 < noisy < 1.1 and noisy != pytest.approx(1.0, abs=1e-6)
    with pytest.raises(ValueError, match="positive"):
        fit_slope([1, 2], [1, 0])
    with pytest.raises(ValueError, match="same length"):
        fit_slope([1, 2, 3], [1, 2])
    with pytest.raises(ValueError, match="two distinct"):
        fit_slope([2, 2], [1, 3])


def test_crossover_interpolates_on_log_axes():
    xs = [10, 50, 200, 1000]
    assert crossover(xs, [x for x in xs], [x * x / 100 for x in xs]) == pytest.approx(100.0)
    assert crossover(xs, [x * x / 100 for x in xs], [x for x in xs]) == pytest.approx(100.0)
    assert crossover(xs, [1, 2, 3, 4], [2, 3, 4, 5]) is None
    assert crossover(xs, [1, 2, 3, 4], [2, 2, 5, 1]) == 50.0             # equal at a grid point
    with pytest.raises(ValueError, match="increasing"):
        crossover([2, 1], [1, 1], [1, 1])
    with pytest.raises(ValueError, match="one length"):
        crossover([1, 2], [1], [1, 2])


def test_device_name_says_where_timings_come_from(monkeypatch):
    from seqlab.measure import device_name

    name = device_name("cpu")
    n = torch.get_num_threads()
    assert "CPU" in name and name.endswith(f"{n} PyTorch thread" + ("" if n == 1 else "s"))
    for threads, tail in ((1, "1 PyTorch thread"), (2, "2 PyTorch threads")):
        monkeypatch.setattr(torch, "get_num_threads", lambda t=threads: t)
        assert device_name("cpu").endswith(tail)
    monkeypatch.undo()
    assert device_name() == name
    with pytest.raises((RuntimeError, TypeError)):
        device_name(3.5)


def test_time_calls_interleaves_rounds():
    from seqlab.measure import time_calls

    order = []
    result = time_calls({"a": lambda: order.append("a"), "b": lambda: (order.append("b"), time.sleep(0.01))},
                        warmup=1, repeats=3)
    assert order == ["a", "b"] * 4                                       # one warm-up round, then 3 rounds
    assert set(result) == {"a", "b"} and all(isinstance(t, Timing) and len(t.times) == 3 for t in result.values())
    assert result["b"].min > 0.009 > result["a"].max
    with pytest.raises(TypeError, match="non-empty dict"):
        time_calls({})
    with pytest.raises(TypeError, match="callable"):
        time_calls({"a": 3})


def test_time_calls_can_rotate_the_order_of_each_round():
    """``rotate=True``: round r starts at the (r mod k)-th function, so each follows each other equally often; the
    warm-up rounds keep the given order, and each key's times are still its own."""
    from seqlab.measure import time_calls

    order = []
    result = time_calls({k: (lambda k=k: order.append(k)) for k in "abc"}, warmup=1, repeats=4, rotate=True)
    assert "".join(order) == "abc" + "abc" + "bca" + "cab" + "abc"
    assert all(len(t.times) == 4 for t in result.values())
    with pytest.raises(TypeError, match="rotate must be a bool, got int 1"):
        time_calls({"a": lambda: None}, rotate=1)


@pytest.mark.parametrize("timer", ["time_call", "time_calls"])
def test_timings_report_the_median_min_and_max_of_the_repeats(monkeypatch, timer):
    # a scripted clock: the repeats take 1, 9 and 2 seconds, so the median (2) differs from the mean (4)
    import seqlab.measure as measure

    ticks = iter([0.0, 1.0, 10.0, 19.0, 30.0, 32.0])
    monkeypatch.setattr(measure.time, "perf_counter", lambda: next(ticks))
    if timer == "time_call":
        t = measure.time_call(lambda: None, warmup=0, repeats=3)
    else:
        t = measure.time_calls({"f": lambda: None}, warmup=0, repeats=3)["f"]
    assert t.times == (1.0, 9.0, 2.0)
    assert (t.median, t.min, t.max) == (2.0, 1.0, 9.0)


def test_time_call_takes_the_clock_of_time_calls():
    """Sleeping costs wall seconds, not CPU seconds: the two clocks tell them apart, for one function too."""
    nap = lambda: time.sleep(0.03)
    assert time_call(nap, warmup=0, repeats=2, clock="wall").min >= 0.03
    assert time_call(nap, warmup=0, repeats=2, clock="cpu").min < 0.01
    with pytest.raises(ValueError, match="clock must be one of"):
        time_call(nap, clock="tsc")


def test_unigram_entropy_is_the_entropy_of_the_symbol_frequencies():
    """H = −Σ p ln p: two symbols half and half give ln 2; a symbol of the vocabulary never seen adds nothing."""
    from seqlab.measure import unigram_entropy
    assert unigram_entropy(torch.tensor([0, 1, 0, 1]), 5) == pytest.approx(math.log(2))
    ids = torch.tensor([2, 2, 2, 3])
    assert unigram_entropy(ids, 4) == pytest.approx(-(0.75 * math.log(0.75) + 0.25 * math.log(0.25)))
    with pytest.raises((TypeError, ValueError), match="ids"):
        unigram_entropy(torch.zeros(2, 3, dtype=torch.long), 4)


def test_binomial_se_is_the_spread_of_guessers_accuracies():
    from seqlab.measure import binomial_se
    assert binomial_se(0.5, 100) == pytest.approx(0.05) and binomial_se(0.0, 7) == 0.0
    g = torch.Generator().manual_seed(0)
    acc = (torch.rand(20_000, 400, generator=g) < 0.1).double().mean(1)          # 20,000 guessers, 400 trials each
    assert acc.std().item() == pytest.approx(binomial_se(0.1, 400), rel=0.03)
    with pytest.raises(ValueError, match="probability"):
        binomial_se(1.5, 10)
    with pytest.raises((ValueError, TypeError), match="n"):
        binomial_se(0.5, 0)
