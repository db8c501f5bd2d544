"""Exercise checkers of chapter 12: ``linear_attention_recurrent``."""
from __future__ import annotations

from typing import Callable

import torch
import torch.nn.functional as F

from .core import Case, Result, compare


def _reference(q, k, v, *, normalize=True, feature="elu1", off_by_one=False):
    phi = (lambda x: F.elu(x) + 1) if feature == "elu1" else (lambda x: x)
    fq, fk = phi(q), phi(k)  # (B, T, d_k)
    B, T, d_k = q.shape
    S = q.new_zeros(B, d_k, v.shape[-1])
    z = q.new_zeros(B, d_k)
    ys = []
    for t in range(T):
        if off_by_one:  # read before writing: y_t sees only s < t
            num, den = torch.einsum("bf,bfv->bv", fq[:, t], S), (fq[:, t] * z).sum(-1)
        S = S + fk[:, t, :, None] * v[:, t, None, :]
        z = z + fk[:, t]
        if not off_by_one:
            num, den = torch.einsum("bf,bfv->bv", fq[:, t], S), (fq[:, t] * z).sum(-1)
        ys.append(num / (den[:, None] + 1e-6) if normalize else num)
    return torch.stack(ys, dim=1)


def linear_attention_recurrent(fn: Callable) -> Result:
    """Chapter 12: ``fn(q, k, v)`` must return causal linear attention computed as a recurrence.

    ``q, k`` (B, T, d_k), ``v`` (B, T, d_v); with φ(x) = elu(x) + 1, S_t = S_{t-1} + φ(k_t)ᵀ v_t,
    z_t = z_{t-1} + φ(k_t), y_t = φ(q_t) S_t / (φ(q_t)·z_t + 1e-6); returns y (B, T, d_v).
    """
    g = torch.Generator().manual_seed(12)

    def case(B, T, d_k, d_v, describe):
        return Case((torch.randn(B, T, d_k, generator=g, dtype=torch.float64),
                     torch.randn(B, T, d_k, generator=g, dtype=torch.float64),
                     torch.randn(B, T, d_v, generator=g, dtype=torch.float64)), describe)

    cases = [case(2, 5, 3, 4, "B=2, T=5, d_k=3, d_v=4"), case(1, 1, 2, 2, "T=1 (a single step)"),
             case(3, 9, 4, 2, "B=3, T=9, d_k=4, d_v=2")]
    mistakes = [
        (lambda *a: _reference(*a, normalize=False), "divide by the normaliser φ(q_t)·z_t with z_t = Σ_{s≤t} φ(k_s)"),
        (lambda *a: _reference(*a, feature="identity"), "apply the feature map φ(x) = elu(x) + 1 to q and k"),
        (lambda *a: _reference(*a, off_by_one=True), "add φ(k_t)ᵀ v_t to the state before reading it: y_t attends to s ≤ t"),
    ]
    return compare("linear_attention_recurrent", fn, _reference, cases, mistakes=mistakes, rtol=1e-7, atol=1e-9)
