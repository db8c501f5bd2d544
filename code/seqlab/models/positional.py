"""Positional information for attention (chapter 8): sinusoidal, learned, rotary (RoPE) and ALiBi.

Glossary, code name -> book notation:

    t, m, n        positions (0-based); m is a query's position, n a key's
    d              model width d_model (absolute encodings) or head width d_head (RoPE)
    P              the (T, d) table of absolute encodings, added to the embeddings: x_t + p_t
    omega          the frequencies omega_i = base^(-2i/d), i = 0..d/2-1
    theta          the angles m * omega_i by which RoPE rotates pair i at position m
    R_m            RoPE's rotation: R_m q rotates pair (q_{2i}, q_{2i+1}) by the angle m * omega_i
    slopes         ALiBi's per-head slopes s_h = 2^(-8h/H), h = 1..H
    bias           ALiBi's additive term on the scores, -s_h (m - n) for key n <= query m

Attention alone cannot see order (chapter 6: it is permutation equivariant), so
a Transformer is told where each token is in one of two ways:

* absolute: a vector p_t is added to the embedding of the token at position t,
  either the fixed sinusoids of Vaswani et al. (2017),
  ``P[t, 2i] = sin(t omega_i)``, ``P[t, 2i+1] = cos(t omega_i)``, or a learned
  table (``nn.Embedding``), which knows nothing about positions it never saw;
* relative, inside attention: RoPE (Su et al., 2021) rotates each query and key
  by an angle proportional to its position, so ``(R_m q)^T (R_n k) = q^T R_{n-m} k``
  depends on m and n only through the offset n - m; ALiBi (Press et al., 2022)
  adds ``-s_h (m - n)`` to the score, a penalty that grows with distance.
"""
from __future__ import annotations

import math

import torch
from torch import nn

from .. import _validate as validate

ENCODINGS = ("none", "learned", "sinusoidal", "rope", "alibi")


def _positions(T: int, offset: int, device=None) -> torch.Tensor:
    validate.positive_int("T", T)
    validate.positive_int("offset", offset, minimum=0)
    return torch.arange(offset, offset + T, device=device)


def _frequencies(d: int, base: float, device=None) -> torch.Tensor:
    """omega_i = base^(-2i/d) for i = 0..d/2-1, in float64 (cast by the caller)."""
    if d % 2:
        raise ValueError(f"the width must be even (sin/cos or rotation pairs), got d={d}")
    if isinstance(base, bool) or not isinstance(base, (int, float)) or base <= 1:
        raise ValueError(f"base must be a number > 1, got {base!r}")
    return base ** (-torch.arange(0, d, 2, dtype=torch.float64, device=device) / d)  # (d/2,)


def sinusoidal_encoding(T: int, d: int, offset: int = 0, base: float = 10000.0, dtype=torch.float32,
                        device=None) -> torch.Tensor:
    """The (T, d) table ``P[t, 2i] = sin(t omega_i)``, ``P[t, 2i+1] = cos(t omega_i)``, omega_i = base^(-2i/d).

    Rows are positions ``offset .. offset + T - 1`` (Vaswani et al., 2017; chapter 8).
    """
    validate.positive_int("d", d)
    t = _positions(T, offset, device).to(torch.float64)
    angles = t[:, None] * _frequencies(d, base, device)[None]  # (T, d/2)
    P = torch.stack([angles.sin(), angles.cos()], dim=-1).reshape(T, d)  # (T, d): sin, cos interleaved
    return P.to(dtype)


class SinusoidalPositions(nn.Module):
    """Adds the fixed sinusoidal encoding to embeddings: ``x_t + scale * p_t`` (chapter 8). No parameters, any length.

    ``scale`` (default 1, the table as it is): a positive finite number that multiplies the table. Each
    coordinate of the table has RMS 1/sqrt(2), so ``scale = s * sqrt(2)`` gives it the RMS of embeddings
    initialised with standard deviation s (chapter 8's "sinusoidal, scaled" arm).
    """

    def __init__(self, d_model: int, base: float = 10000.0, scale: float = 1.0):
        super().__init__()
        self.d_model = validate.positive_int("d_model", d_model)
        _frequencies(d_model, base)  # checks d_model is even and base > 1
        self.base = float(base)
        self.scale = scale

    @property
    def scale(self) -> float:
        return self._scale

    @scale.setter
    def scale(self, value) -> None:
        if (isinstance(value, bool) or not isinstance(value, (int, float)) or not math.isfinite(value)
                or not value > 0):
            raise ValueError(f"scale must be a positive finite number, got {value!r}")
        self._scale = float(value)

    def forward(self, x: torch.Tensor, offset: int = 0) -> torch.Tensor:
        validate.tensor("x", x, ndim=3, dtype="float", last_dim=self.d_model)
        P = sinusoidal_encoding(x.shape[1], self.d_model, offset, self.base, x.dtype, x.device)  # (T, d)
        return x + (P if self._scale == 1.0 else self._scale * P)  # (B, T, d)

    def extra_repr(self) -> str:
        return f"d_model={self.d_model}, base={self.base:g}, scale={self.scale:g}"


class LearnedPositions(nn.Module):
    """Adds a learned vector per position, ``x_t + P[t]`` with ``P`` an ``nn.Embedding(max_len, d)`` (chapter 8).

    Positions the model was never trained at keep their random initial vectors,
    and positions at or past ``max_len`` have no vector at all (an error).
    """

    def __init__(self, max_len: int, d_model: int):
        super().__init__()
        self.max_len = validate.positive_int("max_len", max_len)
        self.d_model = validate.positive_int("d_model", d_model)
        self.P = nn.Embedding(max_len, d_model)

    def forward(self, x: torch.Tensor, offset: int = 0) -> torch.Tensor:
        validate.tensor("x", x, ndim=3, dtype="float", last_dim=self.d_model)
        t = _positions(x.shape[1], offset, x.device)
        if t[-1] >= self.max_len:
            raise ValueError(f"learned positions exist for 0..{self.max_len - 1} (max_len={self.max_len}), "
                             f"got positions up to {t[-1].item()}")
        return x + self.P(t)  # (B, T, d)

    def extra_repr(self) -> str:
        return f"max_len={self.max_len}, d_model={self.d_model}"


def rope_angles(T: int, d: int, offset: int = 0, base: float = 10000.0, device=None) -> torch.Tensor:
    """theta[m, i] = m * omega_i for positions m = offset..offset+T-1 and pairs i = 0..d/2-1: shape (T, d/2), float64 (chapter 8)."""
    validate.positive_int("d", d)
    m = _positions(T, offset, device).to(torch.float64)
    return m[:, None] * _frequencies(d, base, device)[None]  # (T, d/2)


def apply_rope(x: torch.Tensor, offset: int = 0, base: float = 10000.0) -> torch.Tensor:
    """Rotary position embedding (Su et al., 2021; chapter 8): ``R_m x`` for each position m.

    ``x (..., T, d)`` with d even holds queries or keys at positions ``offset .. offset+T-1``.
    Pair i of position m, ``(x_{2i}, x_{2i+1})``, is rotated by the angle ``theta = m omega_i``:

        (x_{2i}, x_{2i+1}) -> (x_{2i} cos theta - x_{2i+1} sin theta,  x_{2i} sin theta + x_{2i+1} cos theta)

    so that ``(R_m q) . (R_n k)`` depends on m, n only through n - m (tested). Norms are kept.
    """
    validate.tensor("x", x, dtype="float")
    if x.dim() < 2:
        raise ValueError(f"x must be (..., T, d), at least 2-dimensional, got shape {tuple(x.shape)}")
    T, d = x.shape[-2], x.shape[-1]
    theta = rope_angles(T, d, offset, base, x.device)  # (T, d/2)
    cos, sin = theta.cos().to(x.dtype), theta.sin().to(x.dtype)  # (T, d/2)
    x1, x2 = x[..., 0::2], x[..., 1::2]  # (..., T, d/2): the two members of each pair
    out = torch.stack([x1 * cos - x2 * sin, x1 * sin + x2 * cos], dim=-1)  # (..., T, d/2, 2)
    return out.flatten(-2)  # (..., T, d)


def alibi_slopes(n_heads: int) -> torch.Tensor:
    """ALiBi's head slopes (Press et al., 2022; chapter 8): the geometric sequence ``2^(-8h/H)``, h = 1..H.

    For H not a power of two, the paper's recipe: the slopes of the power of two
    below H, then every other slope of the power of two above it.
    """
    validate.positive_int("n_heads", n_heads)

    def power_of_two(H):
        return [2.0 ** (-8.0 * h / H) for h in range(1, H + 1)]

    below = 2 ** math.floor(math.log2(n_heads))
    slopes = power_of_two(below)
    if below < n_heads:
        slopes += power_of_two(2 * below)[0::2][: n_heads - below]
    return torch.tensor(slopes)  # (H,)


def alibi_bias(T_q: int, T_k: int, n_heads: int, offset: int = 0, dtype=torch.float32, device=None) -> torch.Tensor:
    """The additive score term ``bias[h, i, j] = -s_h (m_i - n_j)``, shape (H, T_q, T_k); chapter 8.

    Queries sit at positions ``m_i = offset + i``, keys at ``n_j = j`` (a cache holds
    keys 0..T_k-1). Only keys at or before the query get a finite penalty that grows
    with distance; later keys get ``+s_h (n - m)`` here, and a causal mask removes them.
    """
    validate.positive_int("T_q", T_q)
    validate.positive_int("T_k", T_k)
    m = _positions(T_q, offset, device)  # (T_q,)
    n = torch.arange(T_k, device=device)  # (T_k,)
    distance = (m[:, None] - n[None]).to(dtype)  # (T_q, T_k)
    return -alibi_slopes(n_heads).to(dtype=dtype, device=device)[:, None, None] * distance  # (H, T_q, T_k)
