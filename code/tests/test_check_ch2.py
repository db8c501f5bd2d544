"""The chapter-2 checker passes a right answer and names each classic mistake."""
import pytest
import torch
from torch import nn

from seqlab import check


def right(x_t, h_prev, W_xh, b_xh, W_hh, b_hh):
    return torch.tanh(x_t @ W_xh.T + b_xh + h_prev @ W_hh.T + b_hh)


def test_a_correct_rnn_step_passes():
    r = check.rnn_step(right)
    assert r.ok and "all 4 cases" in repr(r)


def test_the_reference_is_torchs_rnn_cell():
    cell = nn.RNNCell(4, 3)
    x, h = torch.randn(2, 4), torch.randn(2, 3)
    ours = check.ch02._rnn_step_reference(x, h, cell.weight_ih, cell.bias_ih, cell.weight_hh, cell.bias_hh)
    torch.testing.assert_close(ours, cell(x, h))


def test_each_classic_mistake_gets_its_own_message():
    pre = lambda x, h, Wx, bx, Wh, bh: x @ Wx.T + bx + h @ Wh.T + bh
    cases = {
        "no nonlinearity": pre,
        "sigmoid": lambda *a: torch.sigmoid(pre(*a)),
        "ReLU": lambda *a: torch.relu(pre(*a)),
        "weights are transposed": lambda x, h, Wx, bx, Wh, bh: torch.tanh(x @ Wx + bx + h @ Wh + bh),
        "W_hh is transposed": lambda x, h, Wx, bx, Wh, bh: torch.tanh(x @ Wx.T + bx + h @ Wh + bh),
        "state h_{t-1} is ignored": lambda x, h, Wx, bx, Wh, bh: torch.tanh(x @ Wx.T + bx + bh),
        "b_hh is missing": lambda x, h, Wx, bx, Wh, bh: torch.tanh(x @ Wx.T + bx + h @ Wh.T),
        "b_xh is missing": lambda x, h, Wx, bx, Wh, bh: torch.tanh(x @ Wx.T + h @ Wh.T + bh),
        "(H, B)": lambda *a: right(*a).T,
    }
    for phrase, fn in cases.items():
        r = check.rnn_step(fn)
        assert not r and phrase in r.message, (phrase, r.message)


def test_other_errors_are_reported_precisely():
    r = check.rnn_step(lambda *a: right(*a) + 1e-3)
    assert not r and "differs at index (0, 0)" in r.message and "B=2" in r.message
    r = check.rnn_step(lambda *a: right(*a)[0])
    assert not r and "shape" in r.message
    assert "should return a torch.Tensor" in check.rnn_step(lambda *a: right(*a).tolist()).message
    assert "ZeroDivisionError" in check.rnn_step(lambda *a: 1 / 0).message
    assert "not written yet" in check.rnn_step(lambda *a: (_ for _ in ()).throw(NotImplementedError)).message
    with pytest.raises(TypeError, match="expected a function"):
        check.rnn_step(3)
def test_shapes_that_hide_bugs_are_covered():
    # a solution that only works when the input width equals the hidden width must fail
    def square_only(x, h, Wx, bx, Wh, bh):
        if x.shape[1] != h.shape[1]:
            return torch.zeros_like(h)
        return right(x, h, Wx, bx, Wh, bh)

    r = check.rnn_step(square_only)
    assert not r and "D=4, d=3" in r.message
