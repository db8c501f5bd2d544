"""probes.lstm_gates against nn.LSTM, and probes.explained_share against its definition (chapter 4)."""
import pytest
import torch
from torch import nn

from seqlab.models import LSTM, LSTMCell
from seqlab.probes import explained_share, lstm_gates


@pytest.mark.parametrize("B, T, D, H", [(3, 7, 5, 4), (1, 1, 2, 9), (4, 12, 1, 3)])
def test_lstm_gates_rebuild_nn_lstms_states_from_its_weights(B, T, D, H):
    torch.manual_seed(B * 100 + T)
    ref = nn.LSTM(D, H, batch_first=True, dtype=torch.float64)
    cell = LSTM.from_torch(ref).cells[0]
    x = torch.randn(B, T, D, dtype=torch.float64)
    h0, c0 = torch.randn(1, B, H, dtype=torch.float64), torch.randn(1, B, H, dtype=torch.float64)
    out, (hT, cT) = ref(x, (h0, c0))
    tr = lstm_gates(cell, x, state=(h0[0], c0[0]))
    assert torch.allclose(tr["h"], out, atol=1e-12)
    assert torch.allclose(tr["c"][:, -1], cT[0], atol=1e-12) and torch.allclose(tr["h"][:, -1], hT[0], atol=1e-12)
    c_prev = torch.cat([c0[0][:, None], tr["c"][:, :-1]], dim=1)
    assert torch.allclose(tr["c"], tr["f"] * c_prev + tr["write"], atol=1e-12)   # c_t = f_t c_{t-1} + i_t g_t
    assert all(((tr[k] > 0) & (tr[k] < 1)).all() for k in "ifo")


def test_lstm_gates_refuse_what_is_not_an_lstm_cell_or_the_wrong_width():
    with pytest.raises(TypeError, match="W_x, W_h, b_x and b_h"):
        lstm_gates(nn.GRUCell(3, 4), torch.randn(2, 5, 3))
    with pytest.raises(ValueError, match="3 features"):
        lstm_gates(LSTMCell(3, 4), torch.randn(2, 5, 4))
    with pytest.raises(ValueError, match="dimensions|ndim|3"):
        lstm_gates(LSTMCell(3, 4), torch.randn(5, 3))


def test_explained_share_is_one_when_the_label_fixes_the_value_and_near_zero_when_it_ignores_it():
    g = torch.Generator().manual_seed(0)
    labels = torch.randint(0, 8, (4000,), generator=g)
    table = torch.randn(8, 3, generator=g)
    noise = torch.randn(4000, 3, generator=g)
    share = explained_share(torch.cat([table[labels], noise], dim=1), labels)
    assert torch.allclose(share[:3], torch.ones(3), atol=1e-6)
    assert (share[3:] < 0.01).all()          # about 7 / 4000 for a column that ignores the label
    # half signal, half noise of equal variance: the label explains about half
    mixed = explained_share(table[labels][:, :1] / table[:, 0].std(unbiased=False) + noise[:, :1], labels)
    assert 0.4 < mixed.item() < 0.6
    # the definition, by hand, for a small case
    v, lab = torch.tensor([[1.0], [3.0], [10.0], [14.0]]), torch.tensor([0, 0, 1, 1])
    within = 0.5 * 1.0 + 0.5 * 4.0
    assert explained_share(v, lab).item() == pytest.approx(1 - within / v.var(unbiased=False).item())


def test_explained_share_refuses_bad_labels():
    with pytest.raises(TypeError, match="integer tensor"):
        explained_share(torch.randn(4, 2), torch.rand(4))
    with pytest.raises(ValueError, match=r"shape \(4,\)"):
        explained_share(torch.randn(4, 2), torch.zeros(3, dtype=torch.long))
