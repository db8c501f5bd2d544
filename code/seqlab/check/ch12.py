"""Exercise checkers of chapter 12: ``linear_attention_recurrent`` and ``linear_attention_parallel``."""
from __future__ import annotations

from typing import Callable

import torch
import torch.nn.functional as F

from .core import Case, Result, checker, compare


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


@checker("12")
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
    hints = [(lambda y: torch.cat([torch.zeros_like(y[:, :1]), y[:, :-1]], 1),
              "your output at position t is the reference's at t − 1 (one step late, zeros first): add φ(k_t)ᵀ v_t to "
              "the state, then read y_t and return it at position t")]
    return compare("linear_attention_recurrent", fn, _reference, cases, hints=hints, mistakes=mistakes, rtol=1e-7,
                   atol=1e-9, grad=True)


# ---------------------------------------------------------------- the parallel (masked) form
def _parallel_reference(q, k, v, *, mask="causal", normalize=True, feature="elu1"):
    """((φQ φK^T) ⊙ M) V / ((φQ φK^T) ⊙ M) 1, M the causal mask; variants name the classic mistakes."""
    phi = (lambda x: F.elu(x) + 1) if feature == "elu1" else (lambda x: x)
    T = q.shape[1]
    A = phi(q) @ phi(k).transpose(1, 2)  # (B, T, T)
    M = {"causal": torch.ones(T, T).tril(), "strict": torch.ones(T, T).tril(-1), "none": torch.ones(T, T)}[mask]
    A = A * M.to(A.dtype)
    num = A @ v  # (B, T, d_v)
    return num / (A.sum(-1, keepdim=True) + 1e-6) if normalize else num


@checker("12")
def linear_attention_parallel(fn: Callable) -> Result:
    """Chapter 12: ``fn(q, k, v)`` must return causal linear attention in its parallel (matrix) form.

    ``q, k`` (B, T, d_k), ``v`` (B, T, d_v); with φ(x) = elu(x) + 1 and the causal mask M (1 where
    key s <= query t, 0 above the diagonal), A = (φ(q) φ(k)ᵀ) ⊙ M, (B, T, T), and
    ``y = A v / (A 1 + 1e-6)``: the same numbers as the recurrence. Returns y (B, T, d_v).
    """
    g = torch.Generator().manual_seed(121)

    def case(B, T, d_k, d_v, describe):
        r = lambda *s: torch.randn(*s, generator=g, dtype=torch.float64)
        return Case((r(B, T, d_k), r(B, T, d_k), r(B, T, d_v)), describe)

    cases = [case(2, 5, 3, 4, "B=2, T=5, d_k=3, d_v=4"), case(1, 1, 2, 2, "T=1 (a single step)"),
             case(3, 9, 4, 2, "B=3, T=9, d_k=4, d_v=2")]
    variant = lambda **kw: (lambda *a: _parallel_reference(*a, **kw))
    mistakes = [
        (variant(mask="none"), "no causal mask: position t also reads the future; zero the entries of keys s > t"),
        (variant(mask="strict"), "the diagonal is masked too (off by one): position t reads its own key and value, "
                                 "s <= t"),
        (variant(normalize=False), "divide by the normaliser A 1 (each row's sum of φ(q_t)·φ(k_s), s <= t) + 1e-6"),
        (variant(feature="identity"), "apply the feature map φ(x) = elu(x) + 1 to q and k"),
    ]
    return compare("linear_attention_parallel", fn, _parallel_reference, cases, mistakes=mistakes, rtol=1e-7,
                   atol=1e-9, grad=True)
