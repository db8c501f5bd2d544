"""The chapter-9 checker: it passes right answers and names each classic mistake of a cached decoding step."""
import math

import pytest
import torch
import torch.nn.functional as F

from seqlab import check
from seqlab.models import GPT, GPTConfig, scaled_dot_product_attention


def right(q, k, v, K, V):
    K, V = torch.cat([K, k], dim=-2), torch.cat([V, v], dim=-2)             # (B, H, T + 1, d)
    w = torch.softmax(q @ K.transpose(-2, -1) / math.sqrt(q.shape[-1]), dim=-1)
    return w @ V, K, V


def test_right_answers_pass():
    r = check.cached_attention_step(right)
    assert r.ok and "all 3 cases" in repr(r)

    def with_torch(q, k, v, K, V):
        K, V = torch.cat([K, k], dim=2), torch.cat([V, v], dim=2)
        return F.scaled_dot_product_attention(q, K, V), K, V

    def with_seqlab(q, k, v, K, V):
        K, V = torch.cat([K, k], dim=2), torch.cat([V, v], dim=2)
        return scaled_dot_product_attention(q, K, V)[0], K, V

    assert check.cached_attention_step(with_torch)
    assert check.cached_attention_step(with_seqlab)


def test_the_models_own_cache_passes():
    """seqlab's LayerCache.append is the right append: the checker agrees with the GPT's cache."""
    from seqlab.models.transformer import LayerCache

    def with_layer_cache(q, k, v, K, V):
        cache = LayerCache()
        if K.shape[-2]:
            cache.append(K, V)
        K, V = cache.append(k, v)
        return scaled_dot_product_attention(q, K, V)[0], K, V

    assert check.cached_attention_step(with_layer_cache)


def step(q, k, v, K, V, *, dim=-2, front=False, before=False, scale=None, causal=False, softmax_dim=-1, keep=False):
    K_new = torch.cat([k, K] if front else [K, k], dim=dim)
    V_new = torch.cat([v, V] if front else [V, v], dim=dim)
    K_att, V_att = (K, V) if before else (K_new, V_new)
    d = q.shape[-1]
    s = q @ K_att.transpose(-2, -1) / (math.sqrt(d) if scale is None else scale(d))
    if causal:
        s = s.masked_fill(~torch.ones(s.shape[-2:], dtype=torch.bool).tril(), float("-inf"))
    out = torch.softmax(s, dim=softmax_dim) @ V_att
    return (out, K, V) if keep else (out, K_new, V_new)


@pytest.mark.parametrize("wrong, words", [
    (lambda *a: step(*a, before=True), "the token cannot see itself"),
    (lambda *a: step(*a, causal=True), "causal mask blocks the cache"),
    (lambda *a: (F.scaled_dot_product_attention(a[0], *right(*a)[1:], is_causal=True), *right(*a)[1:]),
     "causal mask blocks the cache"),
    (lambda *a: step(*a, scale=lambda d: 1.0), "not scaled"),
    (lambda *a: step(*a, scale=lambda d: d), "divided by d_k"),
    (lambda *a: step(*a, softmax_dim=-2), "over the queries"),
    (lambda *a: step(*a, front=True), "in front of the cache"),
    (lambda *a: step(*a, dim=-1), "wrong dimension"),
    (lambda *a: step(*a, dim=1), "wrong dimension"),
    (lambda *a: step(*a, keep=True), "returned unchanged"),
])
def test_each_classic_mistake_is_named(wrong, words):
    r = check.cached_attention_step(wrong)
    assert not r and words in r.message, r.message


def test_other_failures_are_reported_plainly():
    def not_done(*a):
        raise NotImplementedError

    assert "not written yet" in check.cached_attention_step(not_done).message
    r = check.cached_attention_step(lambda *a: right(*a)[0])
    assert not r and "three tensors" in r.message
    r = check.cached_attention_step(lambda *a: (right(*a)[0] * 1.01, *right(*a)[1:]))
    assert not r and "(out) differs at index" in r.message
    r = check.cached_attention_step(lambda *a: (right(*a)[0], right(*a)[1] + 1e-3, right(*a)[2]))
    assert not r and "(K) differs" in r.message
    with pytest.raises(TypeError, match="expected a function"):
        check.cached_attention_step(None)
def test_the_reference_is_what_the_gpt_cache_computes():
    """The checker's reference equals one cached step of SelfAttention (no RoPE, one layer)."""
    torch.manual_seed(0)
    model = GPT(GPTConfig(vocab_size=11, d_model=8, n_heads=2, n_layers=1, positions="none")).double()
    attn = model.blocks[0].attn
    x = torch.randn(1, 6, 8, dtype=torch.float64)
    cache = model.new_cache().layers[0]
    attn(x[:, :5], causal=True, cache=cache)
    K_old, V_old = cache.k, cache.v
    out_model, _ = attn(x[:, 5:], causal=True, cache=cache)
    q, k, v = (attn._split(W(x[:, 5:])) for W in (attn.W_q, attn.W_k, attn.W_v))   # (1, H, 1, d_head)
    out, K, V = right(q, k, v, K_old, V_old)
    torch.testing.assert_close(attn.W_o(out.transpose(1, 2).reshape(1, 1, 8)), out_model)
    torch.testing.assert_close(K, cache.k)
