"""The chapter-7 cross-attention checker passes right answers, names each classic mistake, and agrees with seqlab's module."""
import math

import pytest
import torch

from seqlab import check
from seqlab.models import CrossAttention


def right(y, z, W_q, W_k, W_v, mask=None):
    q, k, v = y @ W_q.T, z @ W_k.T, z @ W_v.T
    s = q @ k.transpose(1, 2) / math.sqrt(q.shape[-1])
    if mask is not None:
        s = s.masked_fill(~mask[:, None, :], float("-inf"))
    return torch.softmax(s, dim=-1) @ v


def test_right_answers_pass():
    r = check.cross_attention(right)
    assert r.ok and "all 3 cases" in repr(r)


def wrong(**kw):
    return lambda *a: check.ch07._cross_attention_reference(*a, **kw)


@pytest.mark.parametrize("kw, words", [
    (dict(roles="swapped"), "roles are swapped"), (dict(roles="values_from_y"), "values come from y"),
    (dict(causal=True), "causal mask"), (dict(masking="after"), "after the softmax"),
    (dict(masking="ignored"), "mask is ignored"), (dict(scale=False), "not scaled"),
])
def test_each_mistake_is_named(kw, words):
    r = check.cross_attention(wrong(**kw))
    assert not r.ok and words in r.message, r.message


def test_a_crash_and_a_wrong_shape_are_reported():
    assert "raised" in check.cross_attention(lambda *a: 1 / 0).message
    r = check.cross_attention(lambda y, z, *rest: right(y, z, *rest)[:, :1])
    assert not r.ok and "shape" in r.message


def test_seqlab_cross_attention_with_one_head_is_the_checkers_reference():
    torch.manual_seed(0)
    attn = CrossAttention(6, 1).double()
    for W in (attn.W_q, attn.W_k, attn.W_v):
        torch.nn.init.zeros_(W.bias)
    y, z = torch.randn(2, 3, 6, dtype=torch.float64), torch.randn(2, 5, 6, dtype=torch.float64)
    mask = torch.tensor([[True] * 5, [True, True, False, False, False]])
    heads = check.ch07._cross_attention_reference(y, z, attn.W_q.weight, attn.W_k.weight, attn.W_v.weight, mask)
    torch.testing.assert_close(attn(y, z, mask)[0], attn.W_o(heads))
