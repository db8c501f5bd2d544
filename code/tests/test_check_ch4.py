import torch

from seqlab import check
from seqlab.check.ch04 import _gru_step_reference


def test_gru_step_checker_accepts_the_torch_cell():
    def via_torch(x_t, h_prev, W_x, W_h, b_x, b_h):
        cell = torch.nn.GRUCell(W_x.shape[1], h_prev.shape[1])
        with torch.no_grad():
            cell.weight_ih.copy_(W_x), cell.weight_hh.copy_(W_h), cell.bias_ih.copy_(b_x), cell.bias_hh.copy_(b_h)
            return cell(x_t, h_prev)

    assert check.gru_step(via_torch)


def test_gru_step_checker_names_each_classic_mistake():
    for kwargs, words in [
        (dict(swap_z=True), "swapped"),
        (dict(bias_outside=True), "bias included"),
        (dict(reset_first=True), "before the matrix"),
        (dict(gate_order="zrn"), "wrong order"),
    ]:
        r = check.gru_step(lambda *a, kw=kwargs: _gru_step_reference(*a, **kw))
        assert not r and words in r.message, (kwargs, r.message)
    r = check.gru_step(lambda *a: _gru_step_reference(*a) + 0.1)
    assert not r and "differs at index" in r.message
