"""The Real-Gated Linear Recurrent Unit (RG-LRU) of Hawk and Griffin as a mixer family (chapter 14).

Glossary (code name -> book notation):

    x              the input x_t, (B, T, D); the recurrence is diagonal, so the state has width D too
    W_a, b_a       the recurrence gate r_t = σ(W_a x_t + b_a), (D, D) and (D,)
    W_x, b_x       the input gate i_t = σ(W_x x_t + b_x), (D, D) and (D,)
    Lambda         Λ, one learned number per channel, (D,): the base decay a = exp(−softplus(Λ)) ∈ (0, 1)
    c              the fixed constant 8 of the paper
    h              the state h_t, (B, D)

De et al. (2024), equations (3)–(6): with a = exp(−softplus(Λ)) the base decay (in (0, 1)),

    r_t = σ(W_a x_t + b_a),   i_t = σ(W_x x_t + b_x),
    log a_t = −c · r_t · softplus(Λ)        (so a_t = a^{c r_t}, in (0, 1)),
    h_t = a_t ⊙ h_{t-1} + √(1 − a_t²) ⊙ (i_t ⊙ x_t),   y_t = h_t.

The recurrence gate r_t moves the decay between the base a^c (r_t → 1, the strongest) and none
(r_t → 0: a_t → 1, the state is kept). The factor √(1 − a_t²) keeps the state's variance near the input's,
the normalisation of an LRU. Both gates look at x_t only, never at h_{t-1}: unlike an LSTM, the
recurrence is *linear* in h, h_t = a_t ⊙ h_{t-1} + b_t, and a scan evaluates it in parallel.
Griffin initialises a^c uniformly in [0.9, 0.999] (``rglru_lambda_init``).

The forms, all ``form(x, W_a, b_a, W_x, b_x, Lambda, state=None, chunk=None) -> (y, h_T)``:

    loop      one Python step per time step (the reference; recurrentgemma's PyTorch scan is this loop)
    scan      the log-space parallel scan of Heinsen (2023): a_t ∈ (0, 1) so log a_t is real and
              h_t = Re exp(log a*_t + logcumsumexp_s(log b_s − log a*_s)), no Python loop over time
              (``seqlab.ops.ssm.linear_scan_logspace``, chapter 13)
    chunked   the two-level scan of chapter 13, ``chunk`` steps inside chunks, then across them
    stream    ``rglru_step`` on one token after another (streaming)
"""
from __future__ import annotations

import math

import torch
import torch.nn.functional as F

from .. import _validate as validate
from .registry import Case, Family, Problem, register_family
from .ssm import linear_scan_chunked, linear_scan_logspace

C = 8.0  # the constant c in log a_t = −c · r_t · softplus(Λ)


def rglru_lambda_init(D: int, a_min: float = 0.9, a_max: float = 0.999, generator=None,
                      dtype=torch.float32) -> torch.Tensor:
    """Λ with a^c = exp(−c · softplus(Λ)) uniform in [a_min, a_max], as Griffin initialises it (chapter 14).

    Solving exp(−c softplus(Λ)) = a for Λ: softplus(Λ) = −log(a)/c, Λ = log(expm1(−log(a)/c)).
    """
    validate.positive_int("D", D)
    if not 0.0 < a_min <= a_max < 1.0:
        raise ValueError(f"need 0 < a_min <= a_max < 1, got a_min={a_min}, a_max={a_max}")
    a = a_min + (a_max - a_min) * torch.rand(D, generator=generator, dtype=torch.float64)
    return torch.log(torch.expm1(-torch.log(a) / C)).to(dtype)


def _check(x, W_a, b_a, W_x, b_x, Lambda):
    validate.tensor("x", x, ndim=3, dtype="float")
    validate.time_steps("x", x)
    D = x.shape[-1]
    validate.parameters([("W_a", W_a, (D, D)), ("b_a", b_a, (D,)), ("W_x", W_x, (D, D)), ("b_x", b_x, (D,)),
                         ("Lambda", Lambda, (D,))], x, "x")


def _state(state, x):
    Bsz, _, D = x.shape
    return validate.initial_state(state, (Bsz, D), x, dims="(B, D)", what="h")


def rglru_coefficients(x, W_a, b_a, W_x, b_x, Lambda):
    """log a_t = −c σ(W_a x_t + b_a) softplus(Λ) and b_t = √(1 − a_t²) σ(W_x x_t + b_x) x_t, each like x (chapter 14).

    √(1 − a²) is computed as √(−expm1(2 log a)), accurate when a is close to 1.
    """
    r = torch.sigmoid(x @ W_a.T + b_a)  # (…, D) recurrence gate
    i = torch.sigmoid(x @ W_x.T + b_x)  # (…, D) input gate
    log_a = -C * r * F.softplus(Lambda)  # (…, D), < 0
    b = torch.sqrt(-torch.expm1(2.0 * log_a)) * (i * x)
    return log_a, b


def rglru_step(x_t, W_a, b_a, W_x, b_x, Lambda, *, state):
    """One RG-LRU step (chapter 14): h_t = a_t ⊙ h_{t-1} + √(1 − a_t²) ⊙ i_t ⊙ x_t; returns (y_t, h_t) = (h_t, h_t).

    ``x_t`` and ``state`` h_{t-1} are (B, D).
    """
    log_a, b = rglru_coefficients(x_t, W_a, b_a, W_x, b_x, Lambda)
    h = torch.exp(log_a) * state + b  # (B, D)
    return h, h


def rglru_loop(x, W_a, b_a, W_x, b_x, Lambda, state=None, chunk=None):
    """The reference RG-LRU: gates, decay and update written out, one Python step per time step (chapter 14)."""
    _check(x, W_a, b_a, W_x, b_x, Lambda)
    h = _state(state, x)
    ys = []
    for x_t in x.unbind(1):  # (B, D)
        r_t = torch.sigmoid(x_t @ W_a.T + b_a)
        i_t = torch.sigmoid(x_t @ W_x.T + b_x)
        a_t = torch.exp(-C * r_t * F.softplus(Lambda))
        h = a_t * h + torch.sqrt(1.0 - a_t ** 2) * (i_t * x_t)
        ys.append(h)
    return torch.stack(ys, dim=1), h  # (B, T, D), (B, D)


def rglru_scan(x, W_a, b_a, W_x, b_x, Lambda, state=None, chunk=None):
    """All gates at once, then Heinsen's log-space scan over time (no Python loop over t) (chapter 14)."""
    _check(x, W_a, b_a, W_x, b_x, Lambda)
    h0 = _state(state, x)
    log_a, b = rglru_coefficients(x, W_a, b_a, W_x, b_x, Lambda)  # (B, T, D) each
    hs = linear_scan_logspace(log_a, b, h0)  # (B, T, D)
    return hs, hs[:, -1]


def rglru_chunked(x, W_a, b_a, W_x, b_x, Lambda, state=None, chunk: int = 16):
    """All gates at once, then the two-level chunked scan of chapter 13 (``chunk`` steps per chunk)."""
    _check(x, W_a, b_a, W_x, b_x, Lambda)
    chunk = validate.positive_int("chunk", 16 if chunk is None else chunk)
    h0 = _state(state, x)
    log_a, b = rglru_coefficients(x, W_a, b_a, W_x, b_x, Lambda)
    hs = linear_scan_chunked(torch.exp(log_a), b, h0, chunk)  # (B, T, D)
    return hs, hs[:, -1]


def rglru_stream(x, W_a, b_a, W_x, b_x, Lambda, state=None, chunk=None):
    """The streaming form: ``rglru_step`` once per token, from the state given (chapter 14)."""
    _check(x, W_a, b_a, W_x, b_x, Lambda)
    h = _state(state, x)
    ys = []
    for x_t in x.unbind(1):
        y_t, h = rglru_step(x_t, W_a, b_a, W_x, b_x, Lambda, state=h)
        ys.append(y_t)
    return torch.stack(ys, dim=1), h


def _make(case: Case, g: torch.Generator) -> Problem:
    kw = dict(generator=g, dtype=case.dtype)
    D = case.D
    params = dict(W_a=torch.randn(D, D, **kw) / math.sqrt(D), b_a=torch.randn(D, **kw),
                  W_x=torch.randn(D, D, **kw) / math.sqrt(D), b_x=torch.randn(D, **kw),
                  Lambda=rglru_lambda_init(D, generator=g, dtype=case.dtype) + 0.5 * torch.randn(D, **kw))
    state = torch.randn(case.B, D, **kw) if case.with_state else None
    return Problem(inputs=dict(x=torch.randn(case.B, case.T, D, **kw)), params=params, state=state,
                   options=dict(chunk=case.chunk))


RGLRU = register_family(Family(
    name="rglru", chapter=14,
    forms={"loop": rglru_loop, "scan": rglru_scan, "chunked": rglru_chunked, "stream": rglru_stream},
    make=_make,
))
