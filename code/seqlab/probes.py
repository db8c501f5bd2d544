"""Probes of how information and gradient travel through time (chapters 3 and 4).

Glossary, code name -> book notation:

    cell       one recurrent step, h_t = cell(x_t, h_{t-1}) (or (h_t, c_t) for an LSTM)
    u          a fixed unit readout vector; the probe's loss is L = u . h_T
    grads[t]   || dL/dh_t ||, averaged over the batch, for t = 1..T
    distance   T - t, the number of steps between h_t and the loss

With ``L = u . h_T`` the gradient at the last step has norm exactly 1, so
``grads`` reads as "how much of a unit signal at step T reaches step t". For a
tanh RNN, dh_t/dh_{t-1} = diag(1 - h_t^2) W_hh. Each step can stretch the
gradient by at most sigma_max(W_hh) * gamma, the largest singular value of
W_hh times a bound gamma on the slope of the nonlinearity (gamma = 1 for tanh
and ReLU), so sigma_max * gamma < 1 *guarantees* geometric decay (Pascanu et
al., 2013). The spectral radius rho(W_hh), the largest eigenvalue modulus, is
not a bound over a finite number of steps: a non-normal W_hh with rho < 1 can
amplify the gradient for many steps before it decays (chapter 3's 2x2
exercise). For a random W_hh, as in chapters 3 and 4, rho is the *typical*
rate: the fitted per-step factor is close to rho * rms(slope) (Bengio et al.,
1994; Pascanu et al., 2013).
"""
from __future__ import annotations

import math

import torch

from . import _validate as check


def spectral_radius(W: torch.Tensor) -> float:
    """``rho(W) = max |lambda_i(W)|``, the largest eigenvalue magnitude of a square matrix."""
    check.tensor("W", W, ndim=2, dtype="float")
    if W.shape[0] != W.shape[1]:
        raise ValueError(f"W must be square, got shape {tuple(W.shape)}")
    return torch.linalg.eigvals(W.detach().double()).abs().max().item()


@torch.no_grad()
def set_spectral_radius(W: torch.Tensor, rho: float) -> torch.Tensor:
    """Rescale the square matrix ``W`` in place so that ``spectral_radius(W) == rho``; return it."""
    if not rho > 0:
        raise ValueError(f"rho must be positive, got {rho}")
    W.mul_(rho / spectral_radius(W))
    return W


def state_gradient_norms(cell: torch.nn.Module, x: torch.Tensor, state=None, seed: int = 0) -> torch.Tensor:
    """``|| dL/dh_t ||`` for ``t = 1..T`` (shape ``(T,)``), with ``L = u . h_T`` and a fixed unit ``u``.

    ``cell`` is any recurrent cell with the call ``cell(x_t, state) -> state``:
    seqlab's or PyTorch's ``RNNCell``, ``GRUCell`` or ``LSTMCell`` (whose state
    is ``(h, c)``; the probe follows ``h``). ``x`` is ``(B, T, D)``. The norm is
    averaged over the batch. Entry ``t`` counts every path from ``h_t`` to the loss.
    """
    check.tensor("x", x, ndim=3, dtype="float")
    B, T, _ = x.shape
    x = x.detach().requires_grad_(True)  # so that every h_t is part of the graph, whatever the cell
    hs = []
    for t in range(T):
        state = cell(x[:, t], state)
        h = state[0] if isinstance(state, tuple) else state  # (B, H)
        h.retain_grad()
        hs.append(h)
    g = torch.Generator().manual_seed(seed)
    u = torch.randn(hs[-1].shape[-1], generator=g, dtype=hs[-1].dtype).to(hs[-1].device)
    u = u / u.norm()
    loss = (hs[-1] @ u).sum()  # summed over the batch: each row gets its own unit signal
    loss.backward()
    return torch.stack([h.grad.norm(dim=-1).mean() for h in hs]).detach()


def decay_rate(norms: torch.Tensor, skip: int = 1) -> float:
    """Per-step factor ``r`` of a geometric decay ``norm(distance) ~ r^distance``, fitted on a log scale.

    ``norms`` is ordered by time (the last entry is distance 0); the ``skip``
    steps nearest the loss are left out of the fit.
    """
    check.tensor("norms", norms, ndim=1, dtype="float")
    y = norms.flip(0)[skip:].double().clamp(min=1e-300).log()  # by distance
    d = torch.arange(skip, skip + len(y), dtype=torch.float64)
    slope = ((d - d.mean()) * (y - y.mean())).sum() / ((d - d.mean()) ** 2).sum()
    return math.exp(slope.item())
