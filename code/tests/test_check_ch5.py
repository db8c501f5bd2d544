"""The chapter-5 checker passes a right answer and names the classic mistakes."""
import pytest
import torch

from seqlab import check
from seqlab.models import additive_attention


def right(s, h, W_s, W_h, v, mask=None):
    e = torch.tanh((s @ W_s.T)[:, None] + h @ W_h.T) @ v  # (B, T)
    if mask is not None:
        e = e.masked_fill(~mask, float("-inf"))
    a = torch.softmax(e, dim=-1)
    return (a[:, :, None] * h).sum(1), a


def variant(tanh=True, dim=-1, mask_mode="before", values="h"):
    def fn(s, h, W_s, W_h, v, mask=None):
        hidden = (s @ W_s.T)[:, None] + h @ W_h.T
        e = (torch.tanh(hidden) if tanh else hidden) @ v
        if mask is not None and mask_mode == "before":
            e = e.masked_fill(~mask, float("-inf"))
        a = torch.softmax(e, dim=dim)
        if mask is not None and mask_mode == "after":
            a = a * mask
        memory = h if values == "h" else h @ W_h.T
        return (a[:, :, None] * memory).sum(1), a
    return fn


def test_right_answers_pass():
    assert check.additive_attention(right)
    assert check.additive_attention(additive_attention)  # the library's own


def test_names_mistakes():
    cases = {
        "tanh is missing": variant(tanh=False),
        "over the batch": variant(dim=0),
        "after the softmax": variant(mask_mode="after"),
        "mask is ignored": variant(mask_mode="none"),
        "not of W_h h_j": variant(values="Wh"),
    }
    for words, fn in cases.items():
        result = check.additive_attention(fn)
        assert not result and words in result.message, (words, result.message)


def test_wrong_return_and_errors():
    r = check.additive_attention(lambda *a: right(*a)[1])
    assert not r and "pair (c, a)" in r.message
    r = check.additive_attention(lambda *a: (right(*a)[1], right(*a)[0]))
    assert not r and "shape" in r.message
    def todo(*a):
        raise NotImplementedError
    assert "not written yet" in check.additive_attention(todo).message
    with pytest.raises(TypeError, match="expected a function"):
        check.additive_attention(None)
    r = check.additive_attention(lambda s, h, W_s, W_h, v, mask: (s @ h, None))
    assert not r and "raised" in r.message
