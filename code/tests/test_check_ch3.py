"""The chapter-3 checker: it passes a right answer and names each classic mistake."""
import pytest
import torch

from seqlab import check
from seqlab.bptt import rnn_bptt, rnn_forward
from seqlab.models import RNNCell


def right(g_t, delta_next, W_hh, h_t):
    return (g_t + delta_next @ W_hh) * (1 - h_t**2)


def test_a_correct_step_passes():
    r = check.bptt_step(right)
    assert r.ok and "all 4 cases" in repr(r)
    # written with explicit transposes, column-vector style: the same numbers
    assert check.bptt_step(lambda g, d, W, h: ((g.T + W.T @ d.T) * (1 - h.T**2)).T)


def test_the_checked_step_reproduces_rnn_bptt():
    """Looping the checked step from t = T down to 1 gives rnn_bptt's dL/dh_0 (the step is the real recursion)."""
    torch.manual_seed(0)
    cell = RNNCell(3, 4).double()
    x, h_0, w = torch.randn(2, 6, 3, dtype=torch.float64), torch.randn(2, 4, dtype=torch.float64), torch.randn(2, 6, 4, dtype=torch.float64)
    hs = rnn_forward(cell, x, h_0).detach()
    delta = torch.zeros(2, 4, dtype=torch.float64)
    for t in reversed(range(6)):
        delta = right(w[:, t], delta, cell.W_hh.detach(), hs[:, t])
    grads = rnn_bptt(cell, x, h_0, hs, w)
    assert torch.allclose(delta @ cell.W_hh.detach(), grads["h_0"], atol=1e-12)


@pytest.mark.parametrize("wrong, words", [
    (lambda g, d, W, h: (g + d @ W.T) * (1 - h**2), "untransposed"),
    (lambda g, d, W, h: (g + d @ W) * (1 - torch.tanh(h) ** 2), "already tanh"),
    (lambda g, d, W, h: (g + d @ W) * (1 - h), "squared"),
    (lambda g, d, W, h: g + d @ W, "is missing: delta_t is dL/da_t"),
    (lambda g, d, W, h: g + (d @ W) * (1 - h**2), "not only the recurrent term"),
    (lambda g, d, W, h: g * (1 - h**2) + d @ W, "not only g_t"),
    (lambda g, d, W, h: (d @ W) * (1 - h**2), "direct gradient g_t"),
    (lambda g, d, W, h: g * (1 - h**2), "nothing flows back in time"),
])
def test_each_classic_mistake_is_named(wrong, words):
    r = check.bptt_step(wrong)
    assert not r and words in r.message, r.message


def test_other_failures_are_reported_plainly():
    def not_done(*args):
        raise NotImplementedError

    assert "not written yet" in check.bptt_step(not_done).message
    r = check.bptt_step(lambda g, d, W, h: right(g, d, W, h)[:, :-1])
    assert not r and "shape" in r.message
    r = check.bptt_step(lambda g, d, W, h: right(g, d, W, h) * 1.01)
    assert not r and "differs at index" in r.message and "B=2, H=3" in r.message
    r = check.bptt_step(lambda g, d, W, h: right(g, d, W, h).tolist())
    assert not r and "torch.Tensor" in r.message
    with pytest.raises(TypeError, match="expected a function"):
        check.bptt_step(None)