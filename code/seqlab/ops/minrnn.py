"""minGRU and minLSTM (Feng et al., 2024, "Were RNNs all we needed?") as mixer families (chapter 13, section 13.10).

Glossary (code name -> book notation):

    x              the input x_t, (B, T, D)
    W_z, b_z       minGRU's update gate z_t = σ(W_z x_t + b_z), (H, D) and (H,)
    W_f, b_f       minLSTM's forget gate f_t = σ(W_f x_t + b_f), (H, D) and (H,)
    W_i, b_i       minLSTM's input gate i_t = σ(W_i x_t + b_i), (H, D) and (H,)
    W_h, b_h       the candidate h̃_t = g(W_h x_t + b_h), (H, D) and (H,)
    h              the state h_t, (B, H); the output is y_t = h_t

The GRU and the LSTM of chapter 4 compute their gates from x_t *and* h_{t-1}, so step t cannot
start before step t − 1 ends. Drop h_{t-1} from the gates and from the candidate and what is left is
a recurrence that is *linear* in h (written as Feng et al. write it: the minGRU's z_t weights the
candidate, where chapter 4's GRU, like PyTorch's, lets z_t weight the old state):

    minGRU    z_t = σ(W_z x_t + b_z),   h̃_t = g(W_h x_t + b_h),
              h_t = (1 − z_t) ⊙ h_{t-1} + z_t ⊙ h̃_t
    minLSTM   f_t = σ(W_f x_t + b_f),   i_t = σ(W_i x_t + b_i),   h̃_t = g(W_h x_t + b_h),
              f'_t = f_t / (f_t + i_t),   i'_t = i_t / (f_t + i_t),
              h_t = f'_t ⊙ h_{t-1} + i'_t ⊙ h̃_t

Both are h_t = a_t ⊙ h_{t-1} + b_t with a_t ∈ (0, 1) and b_t computed from x_t alone, so every a_t
and b_t is known before the recurrence starts and a scan evaluates all h_t in parallel (the
selective scan of chapter 13 has the same shape). The paper passes the candidate through
g(x) = x + 1/2 for x ≥ 0 and σ(x) for x < 0, which is positive and continuous, so that its scan can
work with log b_t: ``g`` and ``log_g``.

The forms, all ``form(x, <weights>, state=None, chunk=None) -> (y (B, T, H), h_T (B, H))``:

    loop      the equations above, one Python step per time step (the reference)
    logspace  Heinsen's (2023) scan in log space, as in the paper: log a*_t = Σ_{s≤t} log a_s and
              h_t = exp(log a*_t) ⊙ h_0 + exp(log a*_t + logcumsumexp_{s≤t}(log b_s − log a*_s)); log a_t and
              log b_t come straight from the pre-activations (log σ(k) = −softplus(−k)), no Python
              loop over time. The initial state h_0 is added as its own decayed term: h_0 may be
              negative and has no real logarithm (a public port that prepends log h_0 to the
              sequence returns NaN, or the wrong sign, from a negative initial state)
    chunked   the two-level scan of chapter 13 (``linear_scan_chunked``): inside all chunks of
              ``chunk`` steps at once, across the chunks, then inside them again
    stream    ``mingru_step`` / ``minlstm_step`` on one token after another (streaming)
"""
from __future__ import annotations

import math

import torch
import torch.nn.functional as F

from .. import _validate as validate
from .registry import Case, Family, Problem, register_family
from .ssm import linear_scan_chunked


def g(x: torch.Tensor) -> torch.Tensor:
    """The paper's positive activation: g(x) = x + 1/2 for x ≥ 0, σ(x) for x < 0 (continuous at 0; chapter 13)."""
    return torch.where(x >= 0, x + 0.5, torch.sigmoid(x))


def log_g(x: torch.Tensor) -> torch.Tensor:
    """log g(x), without forming g: log(x + 1/2) for x ≥ 0, −softplus(−x) = log σ(x) for x < 0 (chapter 13)."""
    return torch.where(x >= 0, torch.log(F.relu(x) + 0.5), -F.softplus(-x))


def _check(x, weights):
    validate.tensor("x", x, ndim=3, dtype="float")
    validate.time_steps("x", x)
    D = x.shape[-1]
    W = weights[0][1]
    validate.tensor(weights[0][0], W, ndim=2, dtype="float")
    if W.shape[1] != D:
        raise ValueError(f"{weights[0][0]} must be (H, D) with D = x's width {D}, got {tuple(W.shape)}")
    H = W.shape[0]
    validate.parameters([(name, w, (H, D) if name.startswith("W") else (H,)) for name, w in weights], x, "x")
    return H


def _state(state, x, H):
    return validate.initial_state(state, (x.shape[0], H), x, dims="(B, H)", what="h")


# ------------------------------------------------------------------------------------------------ minGRU
def mingru_log_coefficients(x, W_z, b_z, W_h, b_h):
    """log a_t = log(1 − z_t) = −softplus(s_t), log b_t = log z_t + log h̃_t = −softplus(−s_t) + log g(W_h x_t + b_h).

    With s_t = W_z x_t + b_z; every tensor (…, H). Chapter 13, section 13.10.
    """
    k = x @ W_z.T + b_z
    return -F.softplus(k), -F.softplus(-k) + log_g(x @ W_h.T + b_h)


def mingru_step(x_t, W_z, b_z, W_h, b_h, *, state):
    """One minGRU step (chapter 13): h_t = (1 − z_t) ⊙ h_{t-1} + z_t ⊙ h̃_t; returns ``(y_t, h_t) = (h_t, h_t)``.

    ``x_t`` (B, D), ``state`` h_{t-1} (B, H); z_t = σ(W_z x_t + b_z), h̃_t = g(W_h x_t + b_h) depend on x_t only.
    """
    z = torch.sigmoid(x_t @ W_z.T + b_z)
    h = (1 - z) * state + z * g(x_t @ W_h.T + b_h)
    return h, h


def mingru_loop(x, W_z, b_z, W_h, b_h, state=None, chunk=None):
    """The reference minGRU: gate, candidate and update written out, one Python step per t (chapter 13)."""
    H = _check(x, [("W_z", W_z), ("b_z", b_z), ("W_h", W_h), ("b_h", b_h)])
    h = _state(state, x, H)
    ys = []
    for x_t in x.unbind(1):  # (B, D)
        z_t = torch.sigmoid(x_t @ W_z.T + b_z)  # (B, H) update gate, from x_t alone
        h_tilde = g(x_t @ W_h.T + b_h)  # (B, H) candidate, from x_t alone
        h = (1 - z_t) * h + z_t * h_tilde
        ys.append(h)
    return torch.stack(ys, dim=1), h


def mingru_stream(x, W_z, b_z, W_h, b_h, state=None, chunk=None):
    """The streaming form: ``mingru_step`` once per token, from the state given (chapter 13)."""
    H = _check(x, [("W_z", W_z), ("b_z", b_z), ("W_h", W_h), ("b_h", b_h)])
    h = _state(state, x, H)
    ys = []
    for x_t in x.unbind(1):
        y_t, h = mingru_step(x_t, W_z, b_z, W_h, b_h, state=h)
        ys.append(y_t)
    return torch.stack(ys, dim=1), h


def scan_logspace_real(log_a: torch.Tensor, log_b: torch.Tensor, h0: torch.Tensor) -> torch.Tensor:
    """All states of h_t = a_t ⊙ h_{t-1} + b_t from log a_t and log b_t (b_t > 0), any h_0 (chapter 13).

    h_t = exp(log a*_t) ⊙ h_0 + exp(log a*_t + logcumsumexp_{s≤t}(log b_s − log a*_s)), log a*_t = Σ_{s≤t} log a_s
    (Heinsen, 2023). ``log_a, log_b`` (B, T, …), ``h0`` (B, …): every quantity stays real, and h_0
    takes either sign because it never goes through a logarithm.
    """
    a_star = log_a.cumsum(1)
    return torch.exp(a_star) * h0.unsqueeze(1) + torch.exp(a_star + torch.logcumsumexp(log_b - a_star, dim=1))


def mingru_logspace(x, W_z, b_z, W_h, b_h, state=None, chunk=None):
    """minGRU by the log-space parallel scan (``scan_logspace_real``), as Feng et al. train it (chapter 13)."""
    H = _check(x, [("W_z", W_z), ("b_z", b_z), ("W_h", W_h), ("b_h", b_h)])
    h0 = _state(state, x, H)
    hs = scan_logspace_real(*mingru_log_coefficients(x, W_z, b_z, W_h, b_h), h0)  # (B, T, H)
    return hs, hs[:, -1]


def mingru_chunked(x, W_z, b_z, W_h, b_h, state=None, chunk: int = 16):
    """minGRU by the two-level chunked scan of chapter 13: a_t = 1 − z_t, b_t = z_t ⊙ h̃_t for all t at once."""
    H = _check(x, [("W_z", W_z), ("b_z", b_z), ("W_h", W_h), ("b_h", b_h)])
    chunk = validate.positive_int("chunk", 16 if chunk is None else chunk)
    h0 = _state(state, x, H)
    z = torch.sigmoid(x @ W_z.T + b_z)  # (B, T, H)
    hs = linear_scan_chunked(1 - z, z * g(x @ W_h.T + b_h), h0, chunk)
    return hs, hs[:, -1]


# ----------------------------------------------------------------------------------------------- minLSTM
def minlstm_log_coefficients(x, W_f, b_f, W_i, b_i, W_h, b_h):
    """log f'_t and log i'_t + log h̃_t of minLSTM (chapter 13, section 13.10), each (…, H).

    With d_t = log i_t − log f_t = softplus(−k_f) − softplus(−k_i) (k the pre-activations):
    f'_t = f/(f + i) = 1/(1 + e^{d_t}) so log f'_t = −softplus(d_t), and log i'_t = −softplus(−d_t).
    """
    k_f, k_i = x @ W_f.T + b_f, x @ W_i.T + b_i
    d = F.softplus(-k_f) - F.softplus(-k_i)
    return -F.softplus(d), -F.softplus(-d) + log_g(x @ W_h.T + b_h)


def minlstm_step(x_t, W_f, b_f, W_i, b_i, W_h, b_h, *, state):
    """One minLSTM step (chapter 13): h_t = f'_t ⊙ h_{t-1} + i'_t ⊙ h̃_t with f', i' = f, i divided by f + i.

    ``x_t`` (B, D), ``state`` h_{t-1} (B, H); returns ``(y_t, h_t) = (h_t, h_t)``.
    """
    f = torch.sigmoid(x_t @ W_f.T + b_f)
    i = torch.sigmoid(x_t @ W_i.T + b_i)
    h = f / (f + i) * state + i / (f + i) * g(x_t @ W_h.T + b_h)
    return h, h


_LSTM_NAMES = ("W_f", "b_f", "W_i", "b_i", "W_h", "b_h")


def minlstm_loop(x, W_f, b_f, W_i, b_i, W_h, b_h, state=None, chunk=None):
    """The reference minLSTM: gates, normalisation and update written out, one Python step per t (chapter 13)."""
    H = _check(x, list(zip(_LSTM_NAMES, (W_f, b_f, W_i, b_i, W_h, b_h))))
    h = _state(state, x, H)
    ys = []
    for x_t in x.unbind(1):  # (B, D)
        f_t = torch.sigmoid(x_t @ W_f.T + b_f)  # forget gate, from x_t alone
        i_t = torch.sigmoid(x_t @ W_i.T + b_i)  # input gate, from x_t alone
        h_tilde = g(x_t @ W_h.T + b_h)
        h = (f_t / (f_t + i_t)) * h + (i_t / (f_t + i_t)) * h_tilde  # f'_t + i'_t = 1
        ys.append(h)
    return torch.stack(ys, dim=1), h


def minlstm_stream(x, W_f, b_f, W_i, b_i, W_h, b_h, state=None, chunk=None):
    """The streaming form: ``minlstm_step`` once per token, from the state given (chapter 13)."""
    H = _check(x, list(zip(_LSTM_NAMES, (W_f, b_f, W_i, b_i, W_h, b_h))))
    h = _state(state, x, H)
    ys = []
    for x_t in x.unbind(1):
        y_t, h = minlstm_step(x_t, W_f, b_f, W_i, b_i, W_h, b_h, state=h)
        ys.append(y_t)
    return torch.stack(ys, dim=1), h


def minlstm_logspace(x, W_f, b_f, W_i, b_i, W_h, b_h, state=None, chunk=None):
    """minLSTM by the log-space parallel scan (``scan_logspace_real``), as Feng et al. train it (chapter 13)."""
    H = _check(x, list(zip(_LSTM_NAMES, (W_f, b_f, W_i, b_i, W_h, b_h))))
    h0 = _state(state, x, H)
    hs = scan_logspace_real(*minlstm_log_coefficients(x, W_f, b_f, W_i, b_i, W_h, b_h), h0)
    return hs, hs[:, -1]


def minlstm_chunked(x, W_f, b_f, W_i, b_i, W_h, b_h, state=None, chunk: int = 16):
    """minLSTM by the two-level chunked scan of chapter 13: a_t = f'_t, b_t = i'_t ⊙ h̃_t for all t at once."""
    H = _check(x, list(zip(_LSTM_NAMES, (W_f, b_f, W_i, b_i, W_h, b_h))))
    chunk = validate.positive_int("chunk", 16 if chunk is None else chunk)
    h0 = _state(state, x, H)
    f, i = torch.sigmoid(x @ W_f.T + b_f), torch.sigmoid(x @ W_i.T + b_i)
    hs = linear_scan_chunked(f / (f + i), i / (f + i) * g(x @ W_h.T + b_h), h0, chunk)
    return hs, hs[:, -1]


# ------------------------------------------------------------------------------------------------ registry
def _weights(names, case: Case, g_: torch.Generator) -> dict:
    kw = dict(generator=g_, dtype=case.dtype)
    D, H = case.D, case.H
    return {n: (torch.randn(H, D, **kw) / math.sqrt(D) if n.startswith("W") else torch.randn(H, **kw)) for n in names}


def _problem(names):
    def make(case: Case, g_: torch.Generator) -> Problem:
        params = _weights(names, case, g_)
        kw = dict(generator=g_, dtype=case.dtype)
        # the initial state has both signs: the log-space form must not take its logarithm
        state = torch.randn(case.B, case.H, **kw) if case.with_state else None
        return Problem(inputs=dict(x=2.0 * torch.randn(case.B, case.T, case.D, **kw)), params=params, state=state,
                       options=dict(chunk=case.chunk))
    return make


MINGRU = register_family(Family(
    name="mingru", chapter=13,
    forms={"loop": mingru_loop, "logspace": mingru_logspace, "chunked": mingru_chunked, "stream": mingru_stream},
    make=_problem(("W_z", "b_z", "W_h", "b_h")),
))

MINLSTM = register_family(Family(
    name="minlstm", chapter=13,
    forms={"loop": minlstm_loop, "logspace": minlstm_logspace, "chunked": minlstm_chunked, "stream": minlstm_stream},
    make=_problem(_LSTM_NAMES),
))
