"""The chapter-6 checker: it passes right answers and names each classic mistake."""
import math

import pytest
import torch
import torch.nn.functional as F

from seqlab import check
from seqlab.models import scaled_dot_product_attention


def right(q, k, v):
    T = q.shape[-2]
    scores = q @ k.transpose(-2, -1) / math.sqrt(q.shape[-1])
    scores = scores.masked_fill(~torch.ones(T, T, dtype=torch.bool).tril(), float("-inf"))
    return torch.softmax(scores, dim=-1) @ v


def test_right_answers_pass():
    r = check.causal_attention(right)
    assert r.ok and "all 3 cases" in repr(r)
    assert check.causal_attention(lambda q, k, v: F.scaled_dot_product_attention(q, k, v, is_causal=True))
    assert check.causal_attention(lambda q, k, v: scaled_dot_product_attention(q, k, v, causal=True)[0])


def after_softmax(q, k, v):
    T = q.shape[-2]
    w = torch.softmax(q @ k.transpose(-2, -1) / math.sqrt(q.shape[-1]), dim=-1)
    return (w * torch.ones(T, T).tril().to(w)) @ v


def masked(q, k, v, tri, scale=None, dim=-1):
    T, d = q.shape[-2], q.shape[-1]
    s = q @ k.transpose(-2, -1) / (math.sqrt(d) if scale is None else scale(d))
    s = s.masked_fill(~tri(torch.ones(T, T, dtype=torch.bool)), float("-inf"))
    return torch.nan_to_num(torch.softmax(s, dim=dim)) @ v


@pytest.mark.parametrize("wrong, words", [
    (lambda q, k, v: F.scaled_dot_product_attention(q, k, v), "no mask"),
    (lambda q, k, v: masked(q, k, v, torch.triu), "wrong triangle"),
    (lambda q, k, v: masked(q, k, v, lambda m: m.tril(-1)), "diagonal is masked"),
    (after_softmax, "after the softmax"),
    (lambda q, k, v: masked(q, k, v, torch.tril, scale=lambda d: 1.0), "not scaled"),
    (lambda q, k, v: masked(q, k, v, torch.tril, scale=lambda d: d), "divided by d_k"),
    (lambda q, k, v: masked(q, k, v, torch.tril, dim=-2), "over the queries"),
])
def test_each_classic_mistake_is_named(wrong, words):
    r = check.causal_attention(wrong)
    assert not r and words in r.message, r.message


def test_other_failures_are_reported_plainly():
    def not_done(q, k, v):
        raise NotImplementedError

    assert "not written yet" in check.causal_attention(not_done).message
    r = check.causal_attention(lambda q, k, v: right(q, k, v)[..., :-1])
    assert not r and "shape" in r.message
    r = check.causal_attention(lambda q, k, v: right(q, k, v) * 1.01)
    assert not r and "differs at index" in r.message and "(2, 5, 4)" in r.message
    r = check.causal_attention(lambda q, k, v: (right(q, k, v), None))
    assert not r and "torch.Tensor" in r.message
    r = check.causal_attention(lambda q, k, v: right(q, k, v.transpose(-2, -1)))
    assert not r and "raised" in r.message
    with pytest.raises(TypeError, match="expected a function"):
        check.causal_attention(None)