import math

import pytest
import torch

from seqlab.bptt import rnn_bptt, rnn_forward, truncated_forward
from seqlab.models import GRU, LSTM, RNN, GRUCell, LSTMCell, RNNCell
from seqlab.probes import decay_rate, set_spectral_radius, spectral_radius, state_gradient_norms
from seqlab.train import History, train

SHAPES = [(1, 1, 3, 4), (2, 5, 3, 4), (3, 7, 6, 2)]  # (B, T, D, H)


def _setup(B, T, D, H, dtype=torch.float64, seed=0):
    torch.manual_seed(seed)
    cell = RNNCell(D, H).to(dtype)
    x = torch.randn(B, T, D, dtype=dtype, requires_grad=True)
    h_0 = torch.randn(B, H, dtype=dtype, requires_grad=True)
    w = torch.randn(B, T, H, dtype=dtype)  # the loss: L = sum_t w_t . h_t
    return cell, x, h_0, w


@pytest.mark.parametrize("B,T,D,H", SHAPES)
def test_bptt_by_hand_equals_autograd(B, T, D, H):
    cell, x, h_0, w = _setup(B, T, D, H)
    hs = rnn_forward(cell, x, h_0)
    (hs * w).sum().backward()
    mine = rnn_bptt(cell, x.detach(), h_0.detach(), hs.detach(), w)
    for name, p in cell.named_parameters():
        assert torch.allclose(mine[name], p.grad, atol=1e-10), name
    assert torch.allclose(mine["x"], x.grad, atol=1e-10)
    assert torch.allclose(mine["h_0"], h_0.grad, atol=1e-10)


@pytest.mark.parametrize("k", [1, 2, 4])
def test_truncated_bptt_by_hand_equals_autograd_with_cut_paths(k):
    """Reference: the loss term at step s sees the graph of steps s-k+1..s only (state detached before)."""
    B, T, D, H = 2, 7, 3, 4
    cell, x, h_0, w = _setup(B, T, D, H)
    hs = rnn_forward(cell, x, h_0).detach()
    for p in cell.parameters():
        p.grad = None
    x_grad = torch.zeros_like(x)
    h0_grad = torch.zeros_like(h_0)
    for s in range(T):
        start = max(0, s - k + 1)
        h = h_0 if start == 0 else hs[:, start - 1]
        xs = x.detach()[:, start : s + 1].clone().requires_grad_(True)
        h_in = h.detach().clone().requires_grad_(True)
        out = rnn_forward(cell, xs, h_in)
        (out[:, -1] * w[:, s]).sum().backward()
        x_grad[:, start : s + 1] += xs.grad
        if start == 0:
            h0_grad += h_in.grad
    mine = rnn_bptt(cell, x.detach(), h_0.detach(), hs, w, truncate=k)
    for name, p in cell.named_parameters():
        assert torch.allclose(mine[name], p.grad, atol=1e-10), name
    assert torch.allclose(mine["x"], x_grad, atol=1e-10)
    assert torch.allclose(mine["h_0"], h0_grad, atol=1e-10)
    full = rnn_bptt(cell, x.detach(), h_0.detach(), hs, w)
    assert not torch.allclose(mine["W_hh"], full["W_hh"])  # truncation really drops terms


def test_bptt_errors():
    cell, x, h_0, w = _setup(2, 3, 3, 4)
    hs = rnn_forward(cell, x, h_0).detach()
    with pytest.raises(TypeError, match="tanh"):
        rnn_bptt(RNNCell(3, 4, nonlinearity="relu").double(), x.detach(), h_0.detach(), hs, w)
    with pytest.raises(ValueError, match="grad_h must have shape"):
        rnn_bptt(cell, x.detach(), h_0.detach(), hs, w[:, :2])


@pytest.mark.parametrize("Layer", [RNN, LSTM, GRU])
def test_truncated_forward_keeps_values_and_cuts_gradients(Layer):
    torch.manual_seed(0)
    layer = Layer(3, 5)
    x = torch.randn(2, 10, 3, requires_grad=True)
    full, _ = layer(x)
    chunked, _ = truncated_forward(layer, x, k=4)
    assert torch.allclose(full, chunked, atol=1e-6)
    chunked[:, -1].sum().backward()
    assert x.grad[:, :8].abs().max() == 0 and x.grad[:, 8:].abs().max() > 0


@pytest.mark.parametrize("Layer", [RNN, LSTM, GRU])
def test_truncated_forward_aligned_to_the_end_gives_the_last_step_a_full_window(Layer):
    torch.manual_seed(0)
    layer = Layer(3, 5)
    x = torch.randn(2, 11, 3, requires_grad=True)                # 11 = 3 + 4 + 4: chunks [0..2], [3..6], [7..10]
    full, _ = layer(x)
    chunked, _ = truncated_forward(layer, x, k=4, align="end")
    assert torch.allclose(full, chunked, atol=1e-6)
    chunked[:, -1].sum().backward()
    assert x.grad[:, :7].abs().max() == 0 and (x.grad[:, 7:].abs().amax(dim=(0, 2)) > 0).all()
    x.grad = None
    start, _ = truncated_forward(layer, x, k=4)                   # counted from the start: [0..3], [4..7], [8..10]
    start[:, -1].sum().backward()
    assert x.grad[:, :8].abs().max() == 0
    with pytest.raises(ValueError, match="align"):
        truncated_forward(layer, x, k=4, align="middle")


def test_spectral_radius():
    W = torch.diag(torch.tensor([0.5, -2.0, 1.0]))
    assert spectral_radius(W) == pytest.approx(2.0)
    R = torch.tensor([[0.0, -1.0], [1.0, 0.0]]) * 0.7  # a rotation: complex eigenvalues +-0.7i
    assert spectral_radius(R) == pytest.approx(0.7)
    W = torch.randn(6, 6)
    set_spectral_radius(W, 0.9)
    assert spectral_radius(W) == pytest.approx(0.9, rel=1e-5)
    with pytest.raises(ValueError, match="square"):
        spectral_radius(torch.randn(2, 3))


def test_linear_rnn_gradient_decays_exactly_by_the_spectral_radius():
    """For h_t = W h_{t-1} with a symmetric W, ||dL/dh_t|| = ||(W^T)^(T-t) u||: rate -> rho."""
    torch.manual_seed(0)
    H = 8
    Q, _ = torch.linalg.qr(torch.randn(H, H, dtype=torch.float64))
    W = Q @ torch.diag(torch.tensor([0.8] + [0.3] * (H - 1), dtype=torch.float64)) @ Q.T

    class Linear(torch.nn.Module):
        def forward(self, x_t, h):
            return x_t if h is None else h @ W.T + x_t

    x = torch.randn(1, 30, H, dtype=torch.float64)
    norms = state_gradient_norms(Linear(), x)
    assert norms[-1].item() == pytest.approx(1.0)
    assert decay_rate(norms, skip=10) == pytest.approx(0.8, rel=1e-3)


@pytest.mark.parametrize("cell", [RNNCell(4, 6), LSTMCell(4, 6), GRUCell(4, 6), torch.nn.LSTMCell(4, 6)], ids=["rnn", "lstm", "gru", "torch-lstm"])
def test_state_gradient_norms_for_every_cell(cell):
    x = torch.randn(3, 12, 4)
    norms = state_gradient_norms(cell, x)
    assert norms.shape == (12,) and torch.isfinite(norms).all()
    assert norms[-1].item() == pytest.approx(1.0, rel=1e-5)


def test_decay_rate_of_an_exact_geometric_series():
    norms = 0.7 ** torch.arange(20, 0, -1, dtype=torch.float64)
    assert decay_rate(norms, skip=0) == pytest.approx(0.7)


def test_stop_when_ends_training_early():
    model = torch.nn.Embedding(3, 3)
    batch = lambda: (torch.zeros(2, 4, dtype=torch.long),) * 2
    h = train(model, batch, steps=1000, lr=0.1, eval_fn=lambda m: {"n": 1.0}, eval_every=10, stop_when=lambda h: len(h.eval_step) >= 3)
    assert h.steps == 30 and h.eval_step == [10, 20, 30]
