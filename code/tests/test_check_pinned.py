"""Every exercise checker's independent reference equals the library form it teaches (issue 23, §6).

A checker compares a learner's function with a reference written inside the checker, apart from the
library. If the two drifted apart, the checker would pass a learner who disagrees with the book's own
code (or fail one who agrees). For every checker in ``seqlab.check`` this runs the checker on an
adapter around the library's form: the checker must accept it. ``test_every_checker_is_pinned``
fails when a checker is added without a pin here.
"""
from __future__ import annotations

import math
from pathlib import Path

import pytest
import torch
import torch.nn.functional as F

from seqlab import check, interpret
from seqlab.data import ReverseTask, SpanPositions
from seqlab.experiments import scaling
from seqlab.experiments.attention import aligned_share
from seqlab.models import GPT, GPTConfig, MultiHeadAttention, apply_rope, scaled_dot_product_attention
from seqlab.models import additive_attention as library_additive_attention
from seqlab.models.ngram import _Counts
from seqlab.ops import linear_attention as la
from seqlab import ops
from seqlab.measure import fit_power_law
from seqlab.models.positional import SinusoidalPositions
from seqlab.models.transformer import SelfAttention
from seqlab.ops import minrnn, recurrent, rglru, ssm
from seqlab.train import bits


def _bigram_counts(ids, V):
    if len(ids) < 2:  # no pair: the n-gram model's table has no row to read
        return torch.zeros(V, V)
    counts = _Counts(ids, 1, V)  # the n-gram model's own table: N(c, x) for every seen context c
    return counts.rows(torch.arange(V))


def _bits_per_char(probs, targets):
    return bits(F.nll_loss(torch.log(probs), targets).item())


def _bptt_step(g_t, delta_next, W_hh, h_t):
    """Autograd through h_t = tanh(a_t): ∂L/∂a_t where L's gradient at h_t is g_t + W_hhᵀ δ_{t+1}."""
    a = torch.atanh(h_t).detach().requires_grad_(True)
    (torch.tanh(a) * (g_t + delta_next @ W_hh)).sum().backward()
    return a.grad


def _cross_attention(y, z, W_q, W_k, W_v, mask=None):
    Q, K, V = y @ W_q.T, z @ W_k.T, z @ W_v.T
    keep = None if mask is None else mask[:, None, :].expand(-1, Q.shape[1], -1)
    return scaled_dot_product_attention(Q, K, V, mask=keep)[0]


def _cached_attention_step(q_t, k_t, v_t, K, V):
    K, V = torch.cat([K, k_t], dim=2), torch.cat([V, v_t], dim=2)
    return scaled_dot_product_attention(q_t, K, V)[0], K, V


def _forward_flops(d, n_layers, n_ctx, V):
    return scaling.flops_per_token(scaling.make_model("transformer", d, V, n_ctx, n_layers), n_ctx)["C"] / 3


def _prefix_matching_score(A, first, second, L):
    pos = SpanPositions(torch.tensor([first]), torch.tensor([second]), torch.tensor([L]))
    return interpret.prefix_matching_score(A[None], pos)


def _zoh(log_dt, A, B):
    A_bar, B_bar = ssm.s4d_discretize(log_dt, torch.log(-A.real), A.imag, torch.view_as_real(B))
    return A_bar, B_bar


def _kv_cache_bytes(T, n_layers, d_model, bytes_per_number=4):
    """A GPT's own KV cache: its bytes after 1 and after 2 real tokens, then grown linearly to T tokens.

    (A forward pass over thousands of tokens at width 768 would take minutes; the cache's growth by
    the same bytes per token is asserted from the two real ones.)
    """
    dtype = {4: torch.float32, 2: torch.float16, 8: torch.float64}[bytes_per_number]
    model = GPT(GPTConfig(8, d_model=d_model, n_heads=4 if d_model % 4 == 0 else 1, n_layers=n_layers,
                          positions="none")).to(dtype)
    sizes = []
    for n in (1, 2):
        cache = model.new_cache()
        with torch.no_grad():
            for block, layer_cache in zip(model.blocks, cache.layers):
                block(torch.zeros(1, n, d_model, dtype=dtype), causal=True, cache=layer_cache)
        sizes.append(cache.nbytes())
    assert sizes[1] == 2 * sizes[0]
    return sizes[0] * T


def _clip_grad_norm(grads, max_norm):
    """``torch.nn.utils.clip_grad_norm_``, the clipping ``seqlab.train`` applies, on parameters holding ``grads``."""
    params = [torch.nn.Parameter(torch.zeros_like(g)) for g in grads]
    for p, g in zip(params, grads):
        p.grad = g.clone()
    torch.nn.utils.clip_grad_norm_(params, max_norm)
    return [p.grad for p in params]


def _alignment_accuracy(a, lengths):
    """Chapter 5's measure (``aligned_share``) with the reversal task's own alignment L - 1 - i."""
    T = a.shape[1]
    return aligned_share(a, ReverseTask(int(lengths.min()), T).alignment(lengths)[:, :T])


def _multi_head_attention(x, W_q, W_k, W_v, W_o, n_heads):
    """The library's ``MultiHeadAttention`` (no biases) run on the checker's weights, so gradients reach them."""
    d = x.shape[-1]
    mha = MultiHeadAttention(d, n_heads, bias=False).to(x.dtype)
    weights = {"W_q.weight": W_q, "W_k.weight": W_k, "W_v.weight": W_v, "W_o.weight": W_o}
    return torch.func.functional_call(mha, weights, (x, x, x))[0]


def _sliding_window_attention(q, k, v, window, form="parallel"):
    """``SelfAttention``'s band mask for a window (chapter 14) with an ops form of softmax attention."""
    (*lead, T, d), d_v = q.shape, v.shape[-1]
    layer = SelfAttention(8, 1, causal=True, window=window)
    as_heads = lambda t: t.reshape(-1, 1, T, t.shape[-1])  # (..., T, ·) -> (B, H = 1, T, ·): the layer's layout
    y = ops.attention.FORMS[form](as_heads(q), as_heads(k), as_heads(v), None, causal=False,
                                  mask=layer.band_mask(T, T, 0))[0]
    return y.reshape(*lead, T, d_v)


def _pareto_by_sweep(quality, cost):
    """The Pareto front by a sweep in order of cost: a second algorithm, as the package computes no front of its own.

    Models of equal cost form a group, visited cheapest first. A model is beaten iff a strictly cheaper model has
    quality >= its own, or a model of the same cost has a strictly higher quality: the sweep carries the best
    quality among the strictly cheaper models, and each group's best.
    """
    order = sorted(range(len(quality)), key=lambda m: (cost[m].item(), -quality[m].item()))
    keep = torch.zeros(len(quality), dtype=torch.bool)
    best_cheaper, i = -math.inf, 0
    while i < len(order):  # one group of equal cost at a time
        j = i
        while j < len(order) and cost[order[j]] == cost[order[i]]:
            j += 1
        group = order[i:j]
        top = max(quality[m].item() for m in group)
        for m in group:  # beaten by a cheaper model at least as good, or a same-cost model strictly better
            keep[m] = not (best_cheaper >= quality[m].item() or top > quality[m].item())
        best_cheaper, i = max(best_cheaper, top), j
    return keep


PINS = {
    "bigram_counts": _bigram_counts,
    "bits_per_char": _bits_per_char,
    "rnn_step": lambda x_t, h, W_xh, b_xh, W_hh, b_hh: recurrent.rnn_cell(x_t, h, W_xh, W_hh, b_xh, b_hh),
    "bptt_step": _bptt_step,
    "gru_step": lambda x_t, h, W_x, W_h, b_x, b_h: recurrent.gru_cell(x_t, h, W_x, W_h, b_x, b_h),
    "additive_attention": library_additive_attention,
    "causal_attention": lambda q, k, v: scaled_dot_product_attention(q, k, v, causal=True)[0],
    "cross_attention": _cross_attention,
    "apply_rope": lambda x, offset: apply_rope(x, offset),
    "cached_attention_step": _cached_attention_step,
    "forward_flops": _forward_flops,
    "prefix_matching_score": _prefix_matching_score,
    "linear_attention_recurrent": lambda q, k, v: la.linear_attention_loop(q, k, v)[0],
    "zoh_discretize": _zoh,
    "mingru_step": lambda x_t, h, W_z, b_z, W_h, b_h: minrnn.mingru_step(x_t, W_z, b_z, W_h, b_h, state=h)[1],
    "log_space_scan": minrnn.scan_logspace_real,
    "rglru_step": lambda x_t, h, *w: rglru.rglru_step(x_t, *w, state=h)[1],
    "kv_cache_bytes": _kv_cache_bytes,
    "rnn_forward": lambda x, h0, W_xh, b_xh, W_hh, b_hh: (lambda y, s: (y, s[0]))(
        *ops.FAMILIES["rnn"].forms["loop"](x, (W_xh,), (W_hh,), (b_xh,), (b_hh,), state=h0[None])),
    "lstm_step": lambda x_t, h, c, W_x, W_h, b_x, b_h: recurrent.lstm_cell(x_t, (h, c), W_x, W_h, b_x, b_h),
    "layer_norm": lambda x, gamma, beta, eps: F.layer_norm(x, x.shape[-1:], gamma, beta, eps),
    "masked_token_loss": lambda logits, targets, mask: F.cross_entropy(logits[mask], targets[mask]),
    "sinusoidal_encoding": lambda T, d: SinusoidalPositions(d)(torch.zeros(1, T, d, dtype=torch.float64), 0)[0],
    "linear_scan": lambda a, b, h0: ssm.linear_scan_chunked(a, b, h0, 4),
    "fit_power_law": lambda N, L: (lambda p: (p.coefficient, -p.slope))(fit_power_law(N, L)),
    "icl_score": interpret.icl_score,
    "linear_attention_parallel": lambda q, k, v: la.linear_attention_parallel(q, k, v)[0],
    "selective_scan": lambda u, delta, A, B, C, D: ssm.selective_scan_parallel(u, delta, A, B, C, D)[0],
    "s4d_kernel": lambda A_bar, B_bar, C, T: ssm._power_sum(C * B_bar, *ssm.s4d_powers(torch.log(A_bar), T)[:2], T),
    "clip_grad_norm": _clip_grad_norm,
    "alignment_accuracy": _alignment_accuracy,
    "multi_head_attention": _multi_head_attention,
    "sliding_window_attention": _sliding_window_attention,
    "pareto_front": _pareto_by_sweep,
}


CHECKERS = [name for name in check.__all__ if name not in ("Result", "Case", "compare", "Summary", "summary", "checkers")]


# a checker whose arguments are functions (the sublayers), pinned where the library's block is taken apart
PINNED_ELSEWHERE = {"pre_norm_block": ("test_check_ch7.py", "test_seqlab_block_structure_is_what_the_checker_calls_pre_norm")}


def test_every_checker_is_pinned():
    assert sorted([*PINS, *PINNED_ELSEWHERE]) == sorted(CHECKERS)
    here = Path(__file__).parent
    for name, (file, test) in PINNED_ELSEWHERE.items():
        assert f"def {test}(" in (here / file).read_text(), (name, file, test)


@pytest.mark.parametrize("name", sorted(PINS))
def test_checker_reference_equals_the_library(name):
    result = getattr(check, name)(PINS[name])
    assert result, f"check.{name} rejects the library's own form: {result}"


@pytest.mark.parametrize("form", [f for f in ops.attention.FORMS if f != "stream"])
def test_sliding_window_checker_equals_every_windowed_form(form):
    result = check.sliding_window_attention(lambda q, k, v, W: _sliding_window_attention(q, k, v, W, form))
    assert result, result


def test_pareto_sweep_is_not_the_checker_reference_in_disguise():
    """The sweep is a second algorithm: on random ties it agrees with the pairwise definition, and it is not vacuous."""
    g = torch.Generator().manual_seed(0)
    sizes = []
    for _ in range(200):
        M = int(torch.randint(1, 8, (), generator=g))
        q, c = torch.randint(0, 4, (M,), generator=g).double(), torch.randint(0, 4, (M,), generator=g).double()
        want = torch.tensor([not any((q[o] >= q[m]) & (c[o] <= c[m]) & ((q[o] > q[m]) | (c[o] < c[m]))
                                     for o in range(M)) for m in range(M)])
        assert torch.equal(_pareto_by_sweep(q, c), want), (q, c)
        sizes.append(int(want.sum()) < M)
    assert any(sizes)  # some model was beaten
