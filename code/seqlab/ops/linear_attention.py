"""Linear attention and gated linear attention as mixer families: loop, parallel, chunked and step (chapter 12).

Glossary (code name -> book notation):

    q, k, v        queries q_t, keys k_t, values v_t, shapes (B, T, d_k), (B, T, d_k), (B, T, d_v)
    phi            the feature map φ (``feature_map``): "elu1" φ(x) = elu(x) + 1 (Katharopoulos et al., 2020),
                   "taylor" φ(x) = [1, x, vec(x xᵀ)/√2], so φ(q)·φ(k) = 1 + q·k + (q·k)²/2 (the second-order
                   Taylor series of exp(q·k); Arora et al., 2024), or "identity" φ(x) = x (no normaliser then)
    S              the matrix state S_t = Σ_{s≤t} φ(k_s)ᵀ v_s, shape (B, d_φ, d_v)
    z              the normaliser z_t = Σ_{s≤t} φ(k_s), shape (B, d_φ)
    log_alpha      log α_t, the log forget factor of the gated family, (B, T, 1) (one scalar per step, as in
                   RetNet) or (B, T, d_k) (one per key channel, as in GLA); every entry ≤ 0

Linear attention (Katharopoulos et al., 2020) drops the softmax of causal attention and
writes its similarity as a dot product of features, sim(q, k) = φ(q)·φ(k). Then

    y_t = Σ_{s≤t} φ(q_t)·φ(k_s) v_s / Σ_{s≤t} φ(q_t)·φ(k_s)
        = φ(q_t) S_t / (φ(q_t)·z_t),   S_t = S_{t-1} + φ(k_t)ᵀ v_t,   z_t = z_{t-1} + φ(k_t):

attention without the softmax is a recurrent network whose state is a d_φ × d_v matrix.
With ``normalize=False`` the denominator is dropped (y_t = φ(q_t) S_t), as in RetNet and GLA.

Gated linear attention decays the state before each write,

    S_t = diag(α_t) S_{t-1} + φ(k_t)ᵀ v_t,   y_t = φ(q_t) S_t,

with α_t a scalar per step (RetNet, Sun et al., 2023, uses a constant γ) or one factor per
key channel (GLA, Yang et al., 2024a [YWS+24a] in the References, computes it from the input). It has no normaliser.

The forms, all with the signature ``form(q, k, v, [log_alpha,] state=None, **options) -> (y, state)``:

    loop      the recurrence above, one Python step per time step (the reference)
    parallel  the masked T × T matrix of scores, like softmax attention without the softmax (O(T²))
    chunked   parallel inside chunks of ``chunk`` steps, recurrent across them (any T, any initial state)
    stream    the streaming form: ``*_step`` applied to one token at a time

``chunk`` is read only by the chunked form; every form accepts it so that all share one signature.
"""
from __future__ import annotations

import math
import zlib

import torch
import torch.nn.functional as F

from .. import _validate as validate
from .registry import Case, Family, GRID, Problem, register_family

FEATURE_MAPS = ("elu1", "taylor", "identity")
EPS = 1e-6


# --------------------------------------------------------------------------------------------- feature maps
def feature_map(x: torch.Tensor, kind: str = "elu1") -> torch.Tensor:
    """φ(x) applied to the last axis: (…, d) -> (…, d_φ) (chapter 12).

    ``"elu1"``: elu(x) + 1 > 0, d_φ = d. ``"taylor"``: [1, x, vec(x xᵀ)/√2], d_φ = 1 + d + d²,
    whose dot products 1 + q·k + (q·k)²/2 are positive. ``"identity"``: x, d_φ = d.
    """
    if kind == "elu1":
        return F.elu(x) + 1.0
    if kind == "taylor":
        outer = (x.unsqueeze(-1) * x.unsqueeze(-2)).flatten(-2) / math.sqrt(2.0)  # (…, d²)
        return torch.cat([torch.ones_like(x[..., :1]), x, outer], dim=-1)  # (…, 1 + d + d²)
    if kind == "identity":
        return x
    raise ValueError(f"feature_map must be one of {FEATURE_MAPS}, got {kind!r}")


def feature_dim(d: int, kind: str) -> int:
    """d_φ, the width of φ(x) for an x of width ``d`` (chapter 12)."""
    if kind not in FEATURE_MAPS:
        raise ValueError(f"feature_map must be one of {FEATURE_MAPS}, got {kind!r}")
    return 1 + d + d * d if kind == "taylor" else d


def _check_qkv(q, k, v):
    validate.tensor("q", q, ndim=3, dtype="float")
    validate.tensor("k", k, ndim=3, dtype="float")
    validate.tensor("v", v, ndim=3, dtype="float")
    validate.time_steps("q", q)
    if q.shape != k.shape:
        raise ValueError(f"q and k must have the same shape (B, T, d_k), got {tuple(q.shape)} and {tuple(k.shape)}")
    if v.shape[:2] != q.shape[:2]:
        raise ValueError(f"v must be (B, T, d_v) with q's B, T = {tuple(q.shape[:2])}, got {tuple(v.shape)}")
    if not (q.dtype == k.dtype == v.dtype):
        raise TypeError(f"q, k, v must share one dtype, got {q.dtype}, {k.dtype}, {v.dtype}")


def _check_options(feature_map: str, normalize: bool):
    if feature_map not in FEATURE_MAPS:
        raise ValueError(f"feature_map must be one of {FEATURE_MAPS}, got {feature_map!r}")
    if not isinstance(normalize, bool):
        raise TypeError(f"normalize must be a bool, got {type(normalize).__name__}")
    if normalize and feature_map == "identity":
        raise ValueError("normalize=True needs a positive feature map ('elu1' or 'taylor'); "
                         "with 'identity' the denominator φ(q)·z can be zero or negative")


def _initial_state(state, B, d_phi, d_v, like, gated: bool):
    """(S, z) for linear attention, S for the gated family; zeros when ``state`` is None, else checked."""
    def check_S(S):
        return validate.initial_state(S, (B, d_phi, d_v), like, dims="(B, d_φ, d_v)", name="state S", like_name="q")

    if gated:
        return check_S(state)
    if state is None:
        return check_S(None), like.new_zeros(B, d_phi)
    if not (isinstance(state, (tuple, list)) and len(state) == 2):
        raise TypeError(f"state must be a pair (S, z) of shapes (B, d_φ, d_v), (B, d_φ), got {type(state).__name__}")
    return check_S(state[0]), validate.initial_state(state[1], (B, d_phi), like, dims="(B, d_φ)", name="state z",
                                                     like_name="q")


def _read(num, den, normalize):
    return num / (den.unsqueeze(-1) + EPS) if normalize else num


# ------------------------------------------------------------------------------------------ linear attention
def linear_attention_step(q_t, k_t, v_t, *, state, feature_map: str = "elu1", normalize: bool = True):
    """One step of linear attention (chapter 12): S_t = S_{t-1} + φ(k_t)ᵀ v_t, z_t = z_{t-1} + φ(k_t).

    ``q_t, k_t`` (B, d_k), ``v_t`` (B, d_v), ``state = (S, z)``; returns ``(y_t, (S_t, z_t))`` with
    y_t = φ(q_t) S_t / (φ(q_t)·z_t) (without the division when ``normalize=False``).
    """
    S, z = state
    fq, fk = _phi(q_t, feature_map), _phi(k_t, feature_map)  # (B, d_φ)
    S = S + fk.unsqueeze(-1) * v_t.unsqueeze(-2)  # (B, d_φ, d_v)
    z = z + fk
    num = torch.einsum("bf,bfv->bv", fq, S)  # (B, d_v)
    den = (fq * z).sum(-1)  # (B,)
    return _read(num, den, normalize), (S, z)


_phi = feature_map  # the module-level name ``feature_map`` is shadowed by the keyword argument below


def linear_attention_loop(q, k, v, state=None, *, feature_map: str = "elu1", normalize: bool = True, chunk=None):
    """The recurrent form of linear attention, one step at a time (the reference; chapter 12).

    S_t = S_{t-1} + φ(k_t)ᵀ v_t, z_t = z_{t-1} + φ(k_t), y_t = φ(q_t) S_t / (φ(q_t)·z_t).
    """
    _check_qkv(q, k, v)
    _check_options(feature_map, normalize)
    B, T, d_k = q.shape
    S, z = _initial_state(state, B, feature_dim(d_k, feature_map), v.shape[-1], q, gated=False)
    fq, fk = _phi(q, feature_map), _phi(k, feature_map)  # (B, T, d_φ)
    ys = []
    for fq_t, fk_t, v_t in zip(fq.unbind(1), fk.unbind(1), v.unbind(1)):  # unbind: one stacked gradient, not T full-size ones
        S = S + fk_t[:, :, None] * v_t[:, None, :]  # (B, d_φ, d_v): add the outer product φ(k_t)ᵀ v_t
        z = z + fk_t  # (B, d_φ)
        num = (fq_t[:, :, None] * S).sum(1)  # (B, d_v)
        den = (fq_t * z).sum(-1)  # (B,)
        ys.append(_read(num, den, normalize))
    return torch.stack(ys, dim=1), (S, z)  # (B, T, d_v)


def linear_attention_parallel(q, k, v, state=None, *, feature_map: str = "elu1", normalize: bool = True,
                              chunk=None):
    """The parallel form: causal attention with scores φ(q_t)·φ(k_s) and no softmax, O(T²) (chapter 12).

    y = (M ⊙ φ(Q)φ(K)ᵀ) V + φ(Q) S_0, divided by (M ⊙ φ(Q)φ(K)ᵀ) 1 + φ(Q) z_0, with M the causal mask.
    """
    _check_qkv(q, k, v)
    _check_options(feature_map, normalize)
    B, T, d_k = q.shape
    S0, z0 = _initial_state(state, B, feature_dim(d_k, feature_map), v.shape[-1], q, gated=False)
    fq, fk = _phi(q, feature_map), _phi(k, feature_map)  # (B, T, d_φ)
    mask = torch.ones(T, T, dtype=torch.bool, device=q.device).tril()
    scores = (fq @ fk.transpose(1, 2)).masked_fill(~mask, 0.0)  # (B, T, T)
    num = scores @ v + fq @ S0  # (B, T, d_v)
    den = scores.sum(-1) + (fq * z0[:, None]).sum(-1)  # (B, T)
    S = S0 + fk.transpose(1, 2) @ v  # (B, d_φ, d_v)
    z = z0 + fk.sum(1)
    return _read(num, den, normalize), (S, z)


def linear_attention_chunked(q, k, v, state=None, *, feature_map: str = "elu1", normalize: bool = True,
                             chunk: int = 64):
    """The chunked form: masked products inside each chunk, the state S carried across chunks (chapter 12).

    For a chunk of steps c..c+L-1 starting from (S, z): y = (M ⊙ φ(Q_c)φ(K_c)ᵀ) V_c + φ(Q_c) S, then
    S += φ(K_c)ᵀ V_c. The last chunk may be shorter, so any T works; O(T·chunk) instead of O(T²).
    """
    _check_qkv(q, k, v)
    _check_options(feature_map, normalize)
    chunk = validate.positive_int("chunk", chunk)
    B, T, d_k = q.shape
    S, z = _initial_state(state, B, feature_dim(d_k, feature_map), v.shape[-1], q, gated=False)
    fq, fk = _phi(q, feature_map), _phi(k, feature_map)  # (B, T, d_φ)
    ys = []
    for qc, kc, vc in zip(fq.split(chunk, 1), fk.split(chunk, 1), v.split(chunk, 1)):  # split: one gradient for all chunks
        L = qc.shape[1]
        mask = torch.ones(L, L, dtype=torch.bool, device=q.device).tril()
        scores = (qc @ kc.transpose(1, 2)).masked_fill(~mask, 0.0)  # (B, L, L)
        num = scores @ vc + qc @ S  # (B, L, d_v): inside the chunk + everything before it
        den = scores.sum(-1) + (qc * z[:, None]).sum(-1)  # (B, L)
        ys.append(_read(num, den, normalize))
        S = S + kc.transpose(1, 2) @ vc  # (B, d_φ, d_v)
        z = z + kc.sum(1)
    return torch.cat(ys, dim=1), (S, z)


def linear_attention_stream(q, k, v, state=None, *, feature_map: str = "elu1", normalize: bool = True, chunk=None):
    """The streaming form: ``linear_attention_step`` on one token after another (chapter 12)."""
    _check_qkv(q, k, v)
    _check_options(feature_map, normalize)
    B, T, d_k = q.shape
    state = _initial_state(state, B, feature_dim(d_k, feature_map), v.shape[-1], q, gated=False)
    ys = []
    for q_t, k_t, v_t in zip(q.unbind(1), k.unbind(1), v.unbind(1)):
        y_t, state = linear_attention_step(q_t, k_t, v_t, state=state, feature_map=feature_map, normalize=normalize)
        ys.append(y_t)
    return torch.stack(ys, dim=1), state


# ------------------------------------------------------------------------------------ gated linear attention
def _check_log_alpha(log_alpha, q):
    validate.tensor("log_alpha", log_alpha, ndim=3, dtype="float")
    B, T, d_k = q.shape
    if log_alpha.shape[:2] != (B, T) or log_alpha.shape[-1] not in (1, d_k):
        raise ValueError(f"log_alpha must be (B, T, 1) (scalar decay) or (B, T, d_k) (per channel) with "
                         f"B, T, d_k = {B}, {T}, {d_k}, got {tuple(log_alpha.shape)}")
    if log_alpha.dtype != q.dtype:
        raise TypeError(f"log_alpha must have q's dtype {q.dtype}, got {log_alpha.dtype}")


def _gated_setup(q, k, v, log_alpha, state, feature_map):
    _check_qkv(q, k, v)
    _check_log_alpha(log_alpha, q)
    _check_options(feature_map, False)
    if feature_map == "taylor":
        raise ValueError("gated linear attention decays each key channel: use feature_map 'identity' or 'elu1'")
    B, T, d_k = q.shape
    S = _initial_state(state, B, d_k, v.shape[-1], q, gated=True)
    return _phi(q, feature_map), _phi(k, feature_map), log_alpha.expand(B, T, d_k), S


def gated_linear_attention_step(q_t, k_t, v_t, log_alpha_t, *, state, feature_map: str = "identity"):
    """One step of gated linear attention (chapter 12): S_t = diag(α_t) S_{t-1} + φ(k_t)ᵀ v_t, y_t = φ(q_t) S_t.

    ``q_t, k_t`` (B, d_k), ``v_t`` (B, d_v), ``log_alpha_t`` (B, 1) or (B, d_k), ``state`` S (B, d_k, d_v).
    """
    fq, fk = _phi(q_t, feature_map), _phi(k_t, feature_map)
    S = torch.exp(log_alpha_t).unsqueeze(-1) * state + fk.unsqueeze(-1) * v_t.unsqueeze(-2)  # (B, d_k, d_v)
    return torch.einsum("bf,bfv->bv", fq, S), S


def gated_linear_attention_loop(q, k, v, log_alpha, state=None, *, feature_map: str = "identity", chunk=None):
    """The recurrent form of gated linear attention, one step at a time (the reference; chapter 12).

    S_t = diag(α_t) S_{t-1} + φ(k_t)ᵀ v_t, y_t = φ(q_t) S_t, with α_t = exp(log_alpha_t).
    """
    fq, fk, la, S = _gated_setup(q, k, v, log_alpha, state, feature_map)
    alpha = torch.exp(la)  # (B, T, d_k)
    ys = []
    for a_t, fq_t, fk_t, v_t in zip(alpha.unbind(1), fq.unbind(1), fk.unbind(1), v.unbind(1)):  # one stacked gradient
        S = a_t[:, :, None] * S + fk_t[:, :, None] * v_t[:, None, :]  # (B, d_k, d_v)
        ys.append((fq_t[:, :, None] * S).sum(1))  # (B, d_v)
    return torch.stack(ys, dim=1), S


def _decayed_scores(fq, fk, b):
    """Scores Σ_c φ(q_t)_c φ(k_s)_c exp(b_t,c − b_s,c) for s ≤ t, 0 above the diagonal: (…, L, L).

    ``fq, fk, b`` (…, L, d_k), ``b`` the cumulative log decay. Only the L(L+1)/2 pairs s ≤ t are
    formed (``tril_indices``), so every exponent is ≤ 0 (no overflow) and no exponential is wasted
    on the masked half; the pairs' scores are then put in place in an L × L matrix of zeros.
    """
    L = fq.shape[-2]
    t, s = torch.tril_indices(L, L, device=fq.device)  # the pairs (t, s) with s ≤ t
    decay = torch.exp(b[..., t, :] - b[..., s, :])  # (…, P, d_k)
    pairs = (fq[..., t, :] * fk[..., s, :] * decay).sum(-1)  # (…, P)
    scores = pairs.new_zeros(*pairs.shape[:-1], L * L)
    return scores.index_copy(-1, t * L + s, pairs).unflatten(-1, (L, L))  # (…, L, L)


# the largest |log decay| inside one chunk for which e^{±(b − b_mid)} stays far from overflow and underflow
_FACTOR_LIMIT = {torch.float32: 30.0, torch.float64: 300.0, torch.bfloat16: 30.0, torch.float16: 5.0}


def _chunk_terms(Q, K, b):
    """Each chunk's decayed scores D, φ(K) ⊙ e^{b_L − b} and φ(Q) ⊙ e^{b}, from one exponential (chapter 12).

    ``Q, K, b`` (…, L, d_k), ``b`` the cumulative log decay from the chunk's start. With r = b at the
    chunk's middle step and E = e^{b − r}: e^{b_t − b_s} = E_t / E_s, so D = tril((φ(Q) ⊙ E)(φ(K) ⊘ E)ᵀ)
    is one matrix product per chunk instead of L(L+1)/2 × d_k decays, and the two other terms reuse E:
    φ(K) ⊙ e^{b_L − b} = (φ(K) ⊘ E) e^{b_L − r}, φ(Q) ⊙ e^{b} = (φ(Q) ⊙ E) e^{r}. Exact in real
    arithmetic; in floating point only while |b − r| is small enough that neither E nor 1/E overflows or
    underflows, which the caller checks (``_factored_ok``). The entries above the diagonal (s > t) are
    finite and dropped by ``tril``.
    """
    L = Q.shape[-2]
    r, b_L = b[..., L // 2:L // 2 + 1, :], b[..., -1:, :]  # (…, 1, d_k)
    E = torch.exp(b - r)
    Q_E, K_E = Q * E, K / E
    return (Q_E @ K_E.transpose(-1, -2)).tril(), K_E * torch.exp(b_L - r), Q_E * torch.exp(r)


def _factored_ok(b: torch.Tensor) -> bool:
    """Whether every chunk's cumulative log decay ``b`` (…, L, d_k) spans less than the dtype's safe range."""
    span = (b[..., 0, :] - b[..., -1, :]).abs().max() if b.numel() else b.new_zeros(())
    return bool(span <= _FACTOR_LIMIT.get(b.dtype, 5.0))


def gated_linear_attention_parallel(q, k, v, log_alpha, state=None, *, feature_map: str = "identity", chunk=None):
    """The parallel form: decayed causal scores, O(T² d_k) memory (chapter 12).

    With b_t = Σ_{s≤t} log α_s: y_t = Σ_{s≤t} (φ(q_t) ⊙ e^{b_t − b_s})·φ(k_s) v_s + (φ(q_t) ⊙ e^{b_t}) S_0.
    """
    fq, fk, la, S0 = _gated_setup(q, k, v, log_alpha, state, feature_map)
    b = la.cumsum(1)  # (B, T, d_k)
    y = _decayed_scores(fq, fk, b) @ v + (fq * torch.exp(b)) @ S0  # (B, T, d_v)
    b_T = b[:, -1:]  # (B, 1, d_k)
    S = torch.exp(b_T).transpose(1, 2) * S0 + (fk * torch.exp(b_T - b)).transpose(1, 2) @ v  # (B, d_k, d_v)
    return y, S


def gated_linear_attention_chunked(q, k, v, log_alpha, state=None, *, feature_map: str = "identity",
                                   chunk: int = 64):
    """The chunked form: decayed scores inside every chunk at once, the state carried across chunks (chapter 12).

    Cut the time axis into chunks of L = ``chunk`` steps (the last one padded with α = 1, k = 0: steps
    that change nothing). In each chunk, b is the cumulative log decay from its start, and with S the
    state entering the chunk,

        y = D(Q, K, b) V + (φ(Q) ⊙ e^{b}) S,   S ← e^{b_L} ⊙ S + (φ(K) ⊙ e^{b_L − b})ᵀ V.

    The decayed scores D and each chunk's increment (φ(K) ⊙ e^{b_L − b})ᵀ V do not depend on S, so they
    are computed for all chunks at once; only the two-term update of S runs chunk after chunk (T/L
    steps). D is one matrix product per chunk when the chunk's decays allow (``_chunk_terms``, which also
    gets the other two terms from the same exponential);
    when a chunk decays by more than the dtype can factor (say e^{−30} in float32) it falls back to the
    L(L+1)/2 × d_k pairwise decays of ``_decayed_scores``, every exponent ≤ 0.
    """
    fq, fk, la, S = _gated_setup(q, k, v, log_alpha, state, feature_map)
    chunk = validate.positive_int("chunk", chunk)
    B, T, d_k = fq.shape
    n = -(-T // chunk)  # chunks
    if n * chunk != T:  # pad the last chunk (a copy of every input, so only when T needs it)
        fq, fk, la, v = (F.pad(t, (0, 0, 0, n * chunk - T)) for t in (fq, fk, la, v))
    Q, K, b = (t.reshape(B, n, chunk, d_k) for t in (fq, fk, la))  # (B, n, L, d_k)
    V = v.reshape(B, n, chunk, -1)  # (B, n, L, d_v)
    b = b.cumsum(2)  # log decay from the chunk's start
    b_L = b[:, :, -1:]  # (B, n, 1, d_k): the whole chunk's
    if _factored_ok(b.detach()):
        scores, K_L, Q_0 = _chunk_terms(Q, K, b)
    else:
        scores, K_L, Q_0 = _decayed_scores(Q, K, b), K * torch.exp(b_L - b), Q * torch.exp(b)
    y = scores @ V  # (B, n, L, d_v): inside each chunk
    increments = K_L.transpose(-1, -2) @ V  # (B, n, d_k, d_v): (φ(K) ⊙ e^{b_L − b})ᵀ V
    decays = torch.exp(b_L).transpose(-1, -2)  # (B, n, d_k, 1)
    starts = []
    for decay, increment in zip(decays.unbind(1), increments.unbind(1)):  # across chunks
        starts.append(S)  # the state entering this chunk
        S = decay * S + increment
    y = y + Q_0 @ torch.stack(starts, dim=1)  # everything before the chunk: (φ(Q) ⊙ e^{b}) S
    return y.reshape(B, n * chunk, -1)[:, :T], S


def gated_linear_attention_stream(q, k, v, log_alpha, state=None, *, feature_map: str = "identity", chunk=None):
    """The streaming form: ``gated_linear_attention_step`` on one token after another (chapter 12)."""
    fq, fk, la, S = _gated_setup(q, k, v, log_alpha, state, feature_map)
    ys = []
    for q_t, k_t, v_t, la_t in zip(q.unbind(1), k.unbind(1), v.unbind(1), la.unbind(1)):
        y_t, S = gated_linear_attention_step(q_t, k_t, v_t, la_t, state=S, feature_map=feature_map)
        ys.append(y_t)
    return torch.stack(ys, dim=1), S


# ------------------------------------------------------------------------------------------------ registry
def _case_index(case: Case) -> int:
    return GRID.index(case) if case in GRID else zlib.crc32(str(case).encode())


# the grid's cases cycle through the options, so every feature map and both kinds of decay meet
# B = 1, T = 1, uneven chunks and an initial state somewhere on the grid
_LA_OPTIONS = [dict(feature_map="elu1", normalize=True), dict(feature_map="taylor", normalize=True),
               dict(feature_map="identity", normalize=False), dict(feature_map="elu1", normalize=False)]


def _make_linear_attention(case: Case, g: torch.Generator) -> Problem:
    opts = dict(_LA_OPTIONS[_case_index(case) % len(_LA_OPTIONS)], chunk=case.chunk)
    kw = dict(generator=g, dtype=case.dtype)
    d_k, d_v = case.D, case.H
    q, k, v = torch.randn(case.B, case.T, d_k, **kw), torch.randn(case.B, case.T, d_k, **kw), \
        torch.randn(case.B, case.T, d_v, **kw)
    state = None
    if case.with_state:  # a state that a positive feature map could have produced: z > 0
        d_phi = feature_dim(d_k, opts["feature_map"])
        state = (torch.randn(case.B, d_phi, d_v, **kw), torch.rand(case.B, d_phi, **kw) + 0.5)
    return Problem(inputs=dict(q=q, k=k, v=v), params={}, state=state, options=opts)


def _make_gated(case: Case, g: torch.Generator) -> Problem:
    i = _case_index(case)
    opts = dict(feature_map=("identity", "elu1")[i % 2], chunk=case.chunk)
    kw = dict(generator=g, dtype=case.dtype)
    d_k, d_v = case.D, case.H
    q, k, v = torch.randn(case.B, case.T, d_k, **kw), torch.randn(case.B, case.T, d_k, **kw), \
        torch.randn(case.B, case.T, d_v, **kw)
    width = 1 if (i // 2) % 2 == 0 else d_k  # scalar (RetNet-like) or per-channel (GLA-like) decay
    log_alpha = F.logsigmoid(torch.randn(case.B, case.T, width, **kw) + 2.0)  # α in (0, 1), mostly near 1
    state = torch.randn(case.B, d_k, d_v, **kw) if case.with_state else None
    return Problem(inputs=dict(q=q, k=k, v=v, log_alpha=log_alpha), params={}, state=state, options=opts)


LINEAR_ATTENTION = register_family(Family(
    name="linear_attention", chapter=12,
    forms={"loop": linear_attention_loop, "parallel": linear_attention_parallel,
           "chunked": linear_attention_chunked, "stream": linear_attention_stream},
    make=_make_linear_attention,
))

GATED_LINEAR_ATTENTION = register_family(Family(
    name="gated_linear_attention", chapter=12,
    forms={"loop": gated_linear_attention_loop, "parallel": gated_linear_attention_parallel,
           "chunked": gated_linear_attention_chunked, "stream": gated_linear_attention_stream},
    make=_make_gated,
))


# ------------------------------------------------------------------------------- the delta rule (DeltaNet)
# S_t = S_{t-1} + β_t k_tᵀ (v_t − k_t S_{t-1})   (Widrow & Hoff's rule as a fast-weight memory: Schlag et al., 2021;
#     = (I − β_t k_tᵀ k_t) S_{t-1} + β_t k_tᵀ v_t   DeltaNet, Yang et al., 2024b [YWZ+24b]), y_t = q_t S_t,
# with S of shape (d_k, d_v) (the layout of linear attention's S above), β_t ∈ (0, 1) the writing strength. Plain
# linear attention *adds* k_t v_tᵀ, so a key read back returns its value plus the cross-talk of every other pair
# (chapter 12's √((n−1)/d)); the delta rule first reads what the memory already holds for k_t and writes only the
# difference, so with orthonormal keys and β = 1 every one of up to d_k pairs reads back exactly.
def _check_beta(beta, q):
    validate.tensor("beta", beta, ndim=2, dtype="float")
    if tuple(beta.shape) != tuple(q.shape[:2]):
        raise ValueError(f"beta must be (B, T) = {tuple(q.shape[:2])} (one writing strength per step), "
                         f"got {tuple(beta.shape)}")
    if beta.dtype != q.dtype:
        raise TypeError(f"beta must have q's dtype {q.dtype}, got {beta.dtype}")


def _delta_setup(q, k, v, beta, state):
    _check_qkv(q, k, v)
    _check_beta(beta, q)
    B, T, d_k = q.shape
    return _initial_state(state, B, d_k, v.shape[-1], q, gated=True)


def delta_rule_step(q_t, k_t, v_t, beta_t, *, state):
    """One step of the delta rule (chapter 12): S_t = S_{t-1} + β_t k_tᵀ (v_t − k_t S_{t-1}), y_t = q_t S_t.

    ``q_t, k_t`` (B, d_k), ``v_t`` (B, d_v), ``beta_t`` (B,), ``state`` S (B, d_k, d_v); returns ``(y_t, S_t)``.
    """
    old = torch.einsum("bk,bkv->bv", k_t, state)  # what the memory returns for k_t now
    S = state + (beta_t[:, None, None] * k_t.unsqueeze(-1)) * (v_t - old).unsqueeze(-2)  # (B, d_k, d_v)
    return torch.einsum("bk,bkv->bv", q_t, S), S


def delta_rule_loop(q, k, v, beta, state=None, *, chunk=None):
    """The recurrent form of the delta rule, one step at a time (the reference; chapter 12).

    S_t = S_{t-1} + β_t k_tᵀ (v_t − k_t S_{t-1}), y_t = q_t S_t; ``beta`` (B, T).
    """
    S = _delta_setup(q, k, v, beta, state)
    ys = []
    for q_t, k_t, v_t, beta_t in zip(q.unbind(1), k.unbind(1), v.unbind(1), beta.unbind(1)):
        old = (k_t[:, :, None] * S).sum(1)  # (B, d_v): k_tᵀ S_{t-1}
        S = S + beta_t[:, None, None] * k_t[:, :, None] * (v_t - old)[:, None, :]  # (B, d_k, d_v)
        ys.append((q_t[:, :, None] * S).sum(1))  # (B, d_v)
    return torch.stack(ys, dim=1), S


def _delta_chunks(Q, K, V, beta, S):
    """The delta rule over chunks (…, n, L, ·) with the UT transform (Yang et al., 2024b [YWZ+24b]), S carried across chunks.

    Inside a chunk the written increments u_t = β_t (v_t − k_tᵀ S_{t-1}) satisfy, with S the state entering it,

        u_t + β_t Σ_{s<t} (k_t·k_s) u_s = β_t (v_t − k_tᵀ S),   i.e.  (I + A) U = diag(β)(V − K S),

    A = strictly-lower(diag(β) K Kᵀ). (I + A) is unit lower-triangular, so one triangular solve per chunk
    gives W = (I + A)⁻¹ diag(β) K and U₀ = (I + A)⁻¹ diag(β) V — both independent of S, so they are formed
    for all chunks at once. Then chunk after chunk: U = U₀ − W S, y = Q S + (M ⊙ Q Kᵀ) U, S ← S + Kᵀ U.
    """
    L = K.shape[-2]
    # I + A with A = strictly-lower(diag(β) K Kᵀ): the solve below reads only the strictly lower triangle of the
    # matrix it is given (upper=False ignores the upper part, unitriangular=True takes the diagonal as 1), so the
    # full product stands for I + A without a mask
    A_full = beta.unsqueeze(-1) * (K @ K.transpose(-1, -2))  # (…, n, L, L)
    rhs = beta.unsqueeze(-1) * torch.cat([K, V], dim=-1)  # (…, n, L, d_k + d_v)
    WU = torch.linalg.solve_triangular(A_full, rhs, upper=False, unitriangular=True)
    W, U0 = WU[..., :K.shape[-1]], WU[..., K.shape[-1]:]
    causal = torch.ones(L, L, dtype=torch.bool, device=K.device).tril()
    scores = (Q @ K.transpose(-1, -2)).masked_fill(~causal, 0.0)  # (…, n, L, L)
    ys = []
    for c in range(K.shape[-3]):  # across chunks
        U = U0[..., c, :, :] - W[..., c, :, :] @ S  # (…, L, d_v)
        ys.append(Q[..., c, :, :] @ S + scores[..., c, :, :] @ U)
        S = S + K[..., c, :, :].transpose(-1, -2) @ U
    return torch.stack(ys, dim=-3), S


def delta_rule_parallel(q, k, v, beta, state=None, *, chunk=None):
    """The parallel form: the whole sequence as one chunk of the UT transform, O(T²) (chapter 12).

    (I + A) U = diag(β)(V − K S_0) with A = strictly-lower(diag(β) K Kᵀ); y = Q S_0 + (M ⊙ Q Kᵀ) U,
    S_T = S_0 + Kᵀ U (see ``_delta_chunks``).
    """
    S = _delta_setup(q, k, v, beta, state)
    y, S = _delta_chunks(q.unsqueeze(1), k.unsqueeze(1), v.unsqueeze(1), beta.unsqueeze(1), S)
    return y.squeeze(1), S


def delta_rule_chunked(q, k, v, beta, state=None, *, chunk: int = 64):
    """The chunked form (UT transform inside chunks of ``chunk`` steps, the state carried across; chapter 12).

    The last chunk is padded with β = 0, k = 0: steps that write nothing, so any T works.
    """
    S = _delta_setup(q, k, v, beta, state)
    chunk = validate.positive_int("chunk", chunk)
    B, T, d_k = q.shape
    n = -(-T // chunk)
    pad = (0, 0, 0, n * chunk - T)
    Q, K = (F.pad(t, pad).reshape(B, n, chunk, d_k) for t in (q, k))
    V = F.pad(v, pad).reshape(B, n, chunk, -1)
    b = F.pad(beta, (0, n * chunk - T)).reshape(B, n, chunk)
    y, S = _delta_chunks(Q, K, V, b, S)
    return y.reshape(B, n * chunk, -1)[:, :T], S


def delta_rule_stream(q, k, v, beta, state=None, *, chunk=None):
    """The streaming form: ``delta_rule_step`` on one token after another (chapter 12)."""
    S = _delta_setup(q, k, v, beta, state)
    ys = []
    for q_t, k_t, v_t, beta_t in zip(q.unbind(1), k.unbind(1), v.unbind(1), beta.unbind(1)):
        y_t, S = delta_rule_step(q_t, k_t, v_t, beta_t, state=S)
        ys.append(y_t)
    return torch.stack(ys, dim=1), S


def _make_delta(case: Case, g: torch.Generator) -> Problem:
    kw = dict(generator=g, dtype=case.dtype)
    d_k, d_v = case.D, case.H
    q, v = torch.randn(case.B, case.T, d_k, **kw), torch.randn(case.B, case.T, d_v, **kw)
    k = F.normalize(torch.randn(case.B, case.T, d_k, **kw), dim=-1)  # unit keys, as DeltaNet's layer makes them
    beta = torch.sigmoid(torch.randn(case.B, case.T, **kw))  # β ∈ (0, 1): I − β k kᵀ is non-expansive
    state = torch.randn(case.B, d_k, d_v, **kw) if case.with_state else None
    return Problem(inputs=dict(q=q, k=k, v=v, beta=beta), params={}, state=state, options=dict(chunk=case.chunk))


DELTA_RULE = register_family(Family(
    name="delta_rule", chapter=12,
    forms={"loop": delta_rule_loop, "parallel": delta_rule_parallel, "chunked": delta_rule_chunked,
           "stream": delta_rule_stream},
    make=_make_delta,
))
