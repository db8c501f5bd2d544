"""The chapter-8 checker: it passes right answers and names each classic mistake."""
import pytest
import torch

from seqlab import check
from seqlab.models import apply_rope


def right(x, offset):
    T, d = x.shape[-2], x.shape[-1]
    m = torch.arange(offset, offset + T)[:, None]                    # (T, 1) positions, float32 on purpose
    theta = m * 10000 ** (-torch.arange(0, d, 2) / d)                 # (T, d/2)
    cos, sin = theta.cos(), theta.sin()
    x1, x2 = x[..., 0::2], x[..., 1::2]
    return torch.stack([x1 * cos - x2 * sin, x1 * sin + x2 * cos], dim=-1).flatten(-2)


def as_complex(x, offset):
    T, d = x.shape[-2], x.shape[-1]
    theta = torch.arange(offset, offset + T, dtype=torch.float64)[:, None] * 10000.0 ** (-torch.arange(0, d, 2) / d)
    z = torch.view_as_complex(x.reshape(*x.shape[:-1], d // 2, 2).contiguous())    # pair i as one complex number
    return torch.view_as_real(z * torch.polar(torch.ones_like(theta), theta)).flatten(-2)


def test_right_answers_pass():
    r = check.apply_rope(right)
    assert r.ok and "all 4 cases" in repr(r)
    assert check.apply_rope(lambda x, offset: apply_rope(x, offset))
    assert check.apply_rope(as_complex)


def variant(sign=1.0, half=False, exponent=2, start=0, use_offset=True):
    def fn(x, offset):
        T, d = x.shape[-2], x.shape[-1]
        first = (offset if use_offset else 0) + start
        theta = sign * torch.arange(first, first + T, dtype=torch.float64)[:, None] \
            * 10000.0 ** (-exponent * torch.arange(d // 2, dtype=torch.float64) / d)
        cos, sin = theta.cos(), theta.sin()
        if half:
            x1, x2 = x[..., : d // 2], x[..., d // 2:]
            return torch.cat([x1 * cos - x2 * sin, x1 * sin + x2 * cos], dim=-1)
        x1, x2 = x[..., 0::2], x[..., 1::2]
        return torch.stack([x1 * cos - x2 * sin, x1 * sin + x2 * cos], dim=-1).flatten(-2)
    return fn


def rotate_half(x, offset):
    """The GPT-NeoX / Hugging Face LLaMA way, written as they write it."""
    T, d = x.shape[-2], x.shape[-1]
    inv_freq = 1.0 / 10000 ** (torch.arange(0, d, 2).double() / d)
    freqs = torch.outer(torch.arange(offset, offset + T).double(), inv_freq)
    emb = torch.cat([freqs, freqs], dim=-1)
    x1, x2 = x[..., : d // 2], x[..., d // 2:]
    return x * emb.cos() + torch.cat([-x2, x1], dim=-1) * emb.sin()


@pytest.mark.parametrize("wrong, words", [
    (variant(sign=-1.0), "wrong way"),
    (variant(half=True), "different convention, equally valid, but not the one asked"),
    (rotate_half, "rotate_half"),
    (variant(half=True, sign=-1.0), "also rotates the wrong way"),
    (variant(exponent=1), "base^(-i/d)"),
    (variant(use_offset=False), "offset is ignored"),
    (variant(start=1), "positions start at offset + 1"),
])
def test_each_classic_mistake_is_named(wrong, words):
    r = check.apply_rope(wrong)
    assert not r and words in r.message, r.message


def test_other_failures_are_reported_plainly():
    def not_done(x, offset):
        raise NotImplementedError

    assert "not written yet" in check.apply_rope(not_done).message
    r = check.apply_rope(lambda x, offset: x)
    assert not r and "differs at index" in r.message and "x (5, 8)" in r.message
    r = check.apply_rope(lambda x, offset: right(x, offset)[..., :-1])
    assert not r and "shape" in r.message
    r = check.apply_rope(lambda x, offset: right(x, offset) * 1.001)
    assert not r and "differs at index" in r.message
    r = check.apply_rope(lambda x, offset: right(x, offset).numpy())
    assert not r and "torch.Tensor" in r.message
    r = check.apply_rope(lambda x: x)
    assert not r and "raised TypeError" in r.message
    with pytest.raises(TypeError, match="expected a function"):
        check.apply_rope("apply_rope")