"""Backpropagation through time, written out by hand for a tanh RNN (chapter 3).

Glossary, code name -> book notation:

    x, x_t        inputs (B, T, D) and one step x_t (B, D)
    h_0, hs       the initial state h_0 (B, H) and the states h_1..h_T (B, T, H)
    a_t           the pre-activation W_xh x_t + W_hh h_{t-1} + b, so h_t = tanh(a_t)
    grad_h        dL/dh_t coming *directly* from the loss at each step (B, T, H)
    delta_t       dL/da_t, the error signal at step t, including every later step

The backward recursion, from t = T down to 1 (and delta_{T+1} = 0):

    delta_t = (grad_h_t + W_hh^T delta_{t+1}) * (1 - h_t^2)

and the gradients are sums over time of local terms:

    dL/dW_hh = sum_t delta_t h_{t-1}^T     dL/dW_xh = sum_t delta_t x_t^T
    dL/db    = sum_t delta_t               dL/dh_0  = W_hh^T delta_1
    dL/dx_t  = W_xh^T delta_t

The factor W_hh^T diag(1 - h_t^2) applied once per step is why gradients
vanish or explode over long distances. ``truncate=k`` stops each error signal
after k steps back in time (truncated BPTT, a sliding window per loss term);
``truncated_forward`` cuts the sequence into chunks of k steps instead, so a
loss term's signal reaches back only to the start of its chunk (1 to k steps).
"""
from __future__ import annotations

import torch

from . import _validate as validate
from .models.rnn import RNNCell


def rnn_forward(cell: RNNCell, x: torch.Tensor, h_0: torch.Tensor) -> torch.Tensor:
    """The states ``h_1..h_T`` of a tanh ``RNNCell`` as ``(B, T, H)``: ``h_t = tanh(W_xh x_t + b_xh + W_hh h_{t-1} + b_hh)`` (chapter 3)."""
    hs, h = [], h_0
    for t in range(x.shape[1]):
        h = cell(x[:, t], h)
        hs.append(h)
    return torch.stack(hs, dim=1)  # (B, T, H)


@torch.no_grad()
def rnn_bptt(cell: RNNCell, x: torch.Tensor, h_0: torch.Tensor, hs: torch.Tensor, grad_h: torch.Tensor, truncate: int | None = None) -> dict[str, torch.Tensor]:
    """Gradients of a loss through a tanh ``RNNCell`` by the BPTT recursion (chapter 3; see the module docstring).

    ``hs`` are the states from ``rnn_forward``; ``grad_h`` is dL/dh_t from the
    loss alone at each step. Returns a dict with the gradient of every
    parameter of ``cell`` (``W_xh``, ``W_hh``, ``b_xh``, ``b_hh``) and of ``h_0`` and ``x``.
    """
    if not isinstance(cell, RNNCell) or cell.nonlinearity != "tanh":
        raise TypeError("rnn_bptt works out the derivative of tanh: pass a seqlab RNNCell with nonlinearity='tanh'")
    validate.tensor("x", x, ndim=3, dtype="float", last_dim=cell.input_size)
    B, T, _ = x.shape
    H = cell.hidden_size
    if x.dtype != cell.W_hh.dtype:
        raise TypeError(f"x must have the cell's dtype {cell.W_hh.dtype}, got dtype {x.dtype}")
    for name, t, shape in (("h_0", h_0, (B, H)), ("hs", hs, (B, T, H)), ("grad_h", grad_h, (B, T, H))):
        validate.tensor(name, t, dtype="float")
        if tuple(t.shape) != shape:
            raise ValueError(f"{name} must have shape {shape}, got {tuple(t.shape)}")
        if t.dtype != x.dtype:
            raise TypeError(f"{name} must have the dtype of x and the cell, {x.dtype}, got dtype {t.dtype}")
    if truncate is not None:
        validate.positive_int("truncate", truncate)
    W_xh, W_hh = cell.W_xh, cell.W_hh
    h_prev = torch.cat([h_0[:, None], hs[:, :-1]], dim=1)  # h_{t-1} for t = 1..T, (B, T, H)
    local = 1 - hs**2  # tanh'(a_t), (B, T, H)
    grads = {"W_xh": torch.zeros_like(W_xh), "W_hh": torch.zeros_like(W_hh), "b": torch.zeros(H, dtype=x.dtype, device=x.device), "h_0": torch.zeros_like(h_0), "x": torch.zeros_like(x)}
    if truncate is None:
        sources = [None]  # one backward sweep carries every loss term at once
    else:
        sources = list(range(T))  # one sweep per loss term, cut after `truncate` steps
    for s in sources:
        delta_next = torch.zeros(B, H, dtype=x.dtype, device=x.device)
        last = T - 1 if s is None else s
        first = 0 if s is None else max(0, s - truncate + 1)
        for t in range(last, first - 1, -1):
            g = grad_h[:, t] if s is None else (grad_h[:, t] if t == s else 0)
            delta = (g + delta_next @ W_hh) * local[:, t]  # (B, H)
            grads["W_hh"] += delta.T @ h_prev[:, t]
            grads["W_xh"] += delta.T @ x[:, t]
            grads["b"] += delta.sum(0)
            grads["x"][:, t] += delta @ W_xh
            delta_next = delta
        if first == 0:
            grads["h_0"] += delta_next @ W_hh
    grads["b_xh"] = grads["b_hh"] = grads.pop("b")
    return grads


def truncated_forward(layer: torch.nn.Module, x: torch.Tensor, k: int, state=None, align: str = "start"):
    """Run a recurrent ``layer`` over ``x`` in chunks of ``k`` steps, detaching the state between chunks (chapter 3).

    The forward values are exactly those of ``layer(x, state)``; gradients stop at
    chunk boundaries (truncated BPTT), so the error signal of the output at a step
    travels back only to the start of that step's chunk: between 1 and ``k`` steps,
    never more. ``align="start"`` counts the chunks from the first step (the last
    chunk may be short); ``align="end"`` counts them back from the last step (the
    first chunk may be short), so the last step's output has a full window of ``k``
    steps, as a task that scores only the last step needs.
    Returns ``(outputs (B, T, H), final state)``.
    """
    validate.positive_int("k", k)
    validate.tensor("x", x, ndim=3)
    if align not in ("start", "end"):
        raise ValueError(f"align must be 'start' or 'end', got {align!r}")
    if not (state is None or isinstance(state, torch.Tensor)
            or (isinstance(state, tuple) and all(isinstance(s, torch.Tensor) for s in state))):
        raise TypeError(f"state must be None, a tensor h or a tuple of tensors (h, c), got {type(state).__name__}"
                        + (" (use a tuple, not a list)" if isinstance(state, list) else ""))
    T = x.shape[1]
    first = T % k if align == "end" and T % k else k          # the length of the first chunk
    cuts = [0, *range(first, T, k), T]                        # chunk boundaries
    outs = []
    for start, stop in zip(cuts, cuts[1:]):
        if state is not None:
            state = tuple(s.detach() for s in state) if isinstance(state, tuple) else state.detach()
        out, state = layer(x[:, start:stop], state)
        outs.append(out)
    return torch.cat(outs, dim=1), state
