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

from . import _validate as validate
from .ops import recurrent as recurrent_ops


def spectral_radius(W: torch.Tensor) -> float:
    """``rho(W) = max |lambda_i(W)|``, the largest eigenvalue magnitude of a square matrix (chapter 3)."""
    validate.tensor("W", W, ndim=2, dtype="float")
    if W.shape[0] != W.shape[1]:
        raise ValueError(f"W must be square, got shape {tuple(W.shape)}")
    return torch.linalg.eigvals(W.detach().double()).abs().max().item()


@torch.no_grad()
def set_spectral_radius(W: torch.Tensor, rho: float) -> torch.Tensor:
    """Rescale the square matrix ``W`` in place so that ``spectral_radius(W) == rho``; return it (chapter 3)."""
    validate.number("rho", rho, minimum=0, strict=True)
    current = spectral_radius(W)
    if not current > 0:
        raise ValueError(f"W has spectral radius {current} (every eigenvalue is 0, e.g. a zero or nilpotent matrix): "
                         f"no rescaling gives it radius {rho}")
    W.mul_(rho / current)
    return W


def state_gradient_norms(cell: torch.nn.Module, x: torch.Tensor, state=None, seed: int = 0) -> torch.Tensor:
    """``|| dL/dh_t ||`` for ``t = 1..T`` (shape ``(T,)``), with ``L = u . h_T`` and a fixed unit ``u`` (chapter 3).

    ``cell`` is any recurrent cell with the call ``cell(x_t, state) -> state``:
    seqlab's or PyTorch's ``RNNCell``, ``GRUCell`` or ``LSTMCell`` (whose state
    is ``(h, c)``; the probe follows ``h``). ``x`` is ``(B, T, D)``. The norm is
    averaged over the batch. Entry ``t`` counts every path from ``h_t`` to the loss.
    """
    validate.tensor("x", x, ndim=3, dtype="float")
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
    """Per-step factor ``r`` of a geometric decay ``norm(distance) ~ r^distance``, fitted on a log scale (chapter 3).

    ``norms`` is ordered by time (the last entry is distance 0); the ``skip``
    steps nearest the loss are left out of the fit.
    """
    validate.tensor("norms", norms, ndim=1, dtype="float")
    validate.positive_int("skip", skip, minimum=0)
    if len(norms) - skip < 2:
        raise ValueError(f"a decay rate needs at least 2 norms after skipping {skip}, got {len(norms)} norms "
                         f"(len(norms) must be >= skip + 2 = {skip + 2})")
    y = norms.flip(0)[skip:].double().clamp(min=1e-300).log()  # by distance
    d = torch.arange(skip, skip + len(y), dtype=torch.float64)
    slope = ((d - d.mean()) * (y - y.mean())).sum() / ((d - d.mean()) ** 2).sum()
    return math.exp(slope.item())


def lstm_gates(cell: torch.nn.Module, x: torch.Tensor, state=None) -> dict[str, torch.Tensor]:
    """Every gate and state of one LSTM layer along a sequence, each ``(B, T, H)`` (chapter 4).

    With the weights stacked ``[i, f, g, o]`` as in ``seqlab.models.LSTMCell`` (and PyTorch):

        i_t = σ(W_xi x_t + b_xi + W_hi h_{t-1} + b_hi)   (f_t, o_t alike),
        g_t = tanh(W_xg x_t + b_xg + W_hg h_{t-1} + b_hg)   (the candidate, the book's c̃_t; PyTorch's g_t),
        c_t = f_t ⊙ c_{t-1} + i_t ⊙ g_t,   h_t = o_t ⊙ tanh(c_t).

    Returns ``{"i", "f", "g", "o", "c", "h"}`` and ``"write"`` = i_t ⊙ g_t, what step t adds to the
    cell state. ``cell`` has ``W_x`` (4H, D), ``W_h`` (4H, H), ``b_x``, ``b_h`` (4H,); ``x`` is
    ``(B, T, D)``; ``state`` an optional ``(h, c)``, each ``(B, H)`` (zeros by default). No gradient.
    """
    validate.tensor("x", x, ndim=3, dtype="float")
    for name in ("W_x", "W_h", "b_x", "b_h"):
        if not hasattr(cell, name):
            raise TypeError(f"cell must be an LSTM cell with W_x, W_h, b_x and b_h (seqlab.models.LSTMCell), "
                            f"got {type(cell).__name__} without {name}")
    H = cell.W_h.shape[1]
    if x.shape[-1] != cell.W_x.shape[1]:
        raise ValueError(f"x must have {cell.W_x.shape[1]} features (the cell's input size), got {x.shape[-1]}")
    B, T, _ = x.shape
    h, c = state if state is not None else (x.new_zeros(B, H), x.new_zeros(B, H))
    out = {k: [] for k in ("i", "f", "g", "o", "c", "h", "write")}
    with torch.no_grad():
        for t in range(T):
            (h, c), (i, f, g, o) = recurrent_ops.lstm_cell_gates(x[:, t], (h, c), cell.W_x, cell.W_h, cell.b_x, cell.b_h)
            for k, v in zip(out, (i, f, g, o, c, h, i * g)):
                out[k].append(v)
    return {k: torch.stack(v, dim=1) for k, v in out.items()}


def explained_share(values: torch.Tensor, labels: torch.Tensor) -> torch.Tensor:
    """η² per column: the share of each column's variance that ``labels`` explain (chapter 4).

    η² = 1 − Σ_k (n_k / N) Var(v | label k) / Var(v): 1 when the label fixes the value, about
    (number of labels − 1) / N for a value that ignores it. ``values`` ``(N, H)`` float, ``labels``
    ``(N,)`` integers. A constant column has no variance to explain and gives NaN.
    """
    validate.tensor("values", values, ndim=2, dtype="float")
    if not isinstance(labels, torch.Tensor) or labels.dtype.is_floating_point or labels.dtype == torch.bool:
        raise TypeError(f"labels must be an integer tensor, got {getattr(labels, 'dtype', type(labels).__name__)}")
    if labels.shape != values.shape[:1]:
        raise ValueError(f"labels must have shape ({values.shape[0]},), one per row of values, got {tuple(labels.shape)}")
    N = values.shape[0]
    total = values.var(dim=0, unbiased=False)  # (H,)
    within = torch.zeros_like(total)
    for k in labels.unique():
        rows = values[labels == k]
        within += rows.shape[0] / N * rows.var(dim=0, unbiased=False)
    return 1 - within / total
