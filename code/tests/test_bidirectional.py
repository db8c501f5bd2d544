"""seqlab.models.Bidirectional against PyTorch's bidirectional RNN, GRU and LSTM: outputs, final states, every gradient."""
import pytest
import torch
from torch import nn

from seqlab.models import GRU, LSTM, RNN, Bidirectional


@pytest.mark.parametrize("kind", [nn.RNN, nn.GRU, nn.LSTM])
@pytest.mark.parametrize("B, T, D, H, with_state", [(3, 7, 5, 4, True), (1, 1, 2, 3, False), (2, 9, 4, 4, False)])
def test_bidirectional_equals_pytorch(kind, B, T, D, H, with_state):
    torch.manual_seed(0)
    theirs = kind(D, H, batch_first=True, bidirectional=True).double()
    ours = Bidirectional.from_torch(theirs)
    x = torch.randn(B, T, D, dtype=torch.float64, requires_grad=True)
    state = None
    if with_state:
        h0 = torch.randn(2, B, H, dtype=torch.float64)
        state = (h0, torch.randn(2, B, H, dtype=torch.float64)) if kind is nn.LSTM else h0
    out_t, s_t = theirs(x, state)
    out_s, s_s = ours(x, state)
    s_t = s_t if isinstance(s_t, tuple) else (s_t,)
    s_s = s_s if isinstance(s_s, tuple) else (s_s,)
    assert out_s.shape == (B, T, 2 * H)
    torch.testing.assert_close(out_s, out_t)
    for a, b in zip(s_s, s_t):
        torch.testing.assert_close(a, b)
    w = torch.randn_like(out_t)
    loss_t = (out_t * w).sum() + sum(s.sum() for s in s_t)
    loss_s = (out_s * w).sum() + sum(s.sum() for s in s_s)
    theirs_params = [theirs.weight_ih_l0, theirs.weight_hh_l0, theirs.bias_ih_l0, theirs.bias_hh_l0,
                     theirs.weight_ih_l0_reverse, theirs.weight_hh_l0_reverse, theirs.bias_ih_l0_reverse, theirs.bias_hh_l0_reverse]
    ours_params = [*ours.forward_layer.cells[0].weights(), *ours.backward_layer.cells[0].weights()]
    g_t = torch.autograd.grad(loss_t, [x, *theirs_params])
    g_s = torch.autograd.grad(loss_s, [x, *ours_params])
    for a, b in zip(g_s, g_t):
        torch.testing.assert_close(a, b)


def test_each_direction_sees_only_its_side():
    torch.manual_seed(1)
    bi = Bidirectional(RNN(3, 4), RNN(3, 4))
    x = torch.randn(1, 6, 3, requires_grad=True)
    out, _ = bi(x)
    g_fwd = torch.autograd.grad(out[0, 0, :4].sum(), x, retain_graph=True)[0]   # ->h_1 reads x_1 only
    g_bwd = torch.autograd.grad(out[0, 0, 4:].sum(), x)[0]                      # <-h_1 reads all of x
    assert g_fwd[0, 1:].abs().max() == 0 and g_fwd[0, 0].abs().max() > 0
    assert (g_bwd[0].abs().sum(-1) > 0).all()


def test_bad_arguments():
    with pytest.raises(TypeError, match="seqlab RNN, GRU or LSTM"):
        Bidirectional(nn.RNN(2, 3), RNN(2, 3))
    with pytest.raises(ValueError, match="one layer"):
        Bidirectional(RNN(2, 3, num_layers=2), RNN(2, 3, num_layers=2))
    with pytest.raises(ValueError, match="same kind"):
        Bidirectional(RNN(2, 3), GRU(2, 3))
    with pytest.raises(ValueError, match="same kind"):
        Bidirectional(LSTM(2, 3), LSTM(2, 4))
    with pytest.raises(ValueError, match="bidirectional=True"):
        Bidirectional.from_torch(nn.GRU(2, 3, batch_first=True))
    with pytest.raises(ValueError, match="batch_first"):
        Bidirectional.from_torch(nn.GRU(2, 3, bidirectional=True))
    with pytest.raises(TypeError, match="torch.nn.RNN, GRU or LSTM"):
        Bidirectional.from_torch(nn.Linear(2, 3))
    bi = Bidirectional(RNN(2, 3), RNN(2, 3))
    with pytest.raises(ValueError, match=r"\(2, B, hidden_size\)"):
        bi(torch.randn(1, 4, 2), torch.zeros(1, 1, 3))
    with pytest.raises(ValueError, match="last dimension|shape"):
        bi(torch.randn(1, 4, 5))
