"""The chapter-7 checker: it passes right answers and names each classic mistake."""
import pytest
import torch

from seqlab import check
from seqlab.models import TransformerBlock


def right(x, attn, ffn, norm1, norm2):
    x = x + attn(norm1(x))
    return x + ffn(norm2(x))


def test_right_answers_pass():
    r = check.pre_norm_block(right)
    assert r.ok and "all 3 cases" in repr(r)


def test_seqlab_block_structure_is_what_the_checker_calls_pre_norm():
    """seqlab's TransformerBlock(norm_first=True) computes the checker's reference with its own parts."""
    torch.manual_seed(0)
    block = TransformerBlock(8, 2, norm_first=True).double()
    x = torch.randn(2, 5, 8, dtype=torch.float64)
    attn = lambda h: block.attn(h)[0]
    want = check.ch07._pre_norm_block_reference(x, attn, block.ffn, block.norm1, block.norm2)
    torch.testing.assert_close(block(x), want)
    post = TransformerBlock(8, 2, norm_first=False).double()
    post.load_state_dict(block.state_dict())
    torch.testing.assert_close(post(x), check.ch07._pre_norm_block_reference(x, attn, block.ffn, block.norm1, block.norm2,
                                                                          form="post"))


def post(x, attn, ffn, norm1, norm2):
    x = norm1(x + attn(x))
    return norm2(x + ffn(x))


def no_residual(x, attn, ffn, norm1, norm2):
    x = attn(norm1(x))
    return x + ffn(norm2(x))


def normalised_stream(x, attn, ffn, norm1, norm2):
    x = norm1(x)
    x = x + attn(x)
    x = norm2(x)
    return x + ffn(x)


def parallel(x, attn, ffn, norm1, norm2):
    return x + attn(norm1(x)) + ffn(norm2(x))


def swapped(x, attn, ffn, norm1, norm2):
    x = x + attn(norm2(x))
    return x + ffn(norm1(x))


@pytest.mark.parametrize("wrong, words", [
    (post, "Post-Norm"), (no_residual, "first residual is missing"), (normalised_stream, "stream itself"),
    (parallel, "parallel"), (swapped, "swapped"),
])
def test_each_classic_mistake_is_named(wrong, words):
    r = check.pre_norm_block(wrong)
    assert not r and words in r.message, r.message


def test_other_errors_are_reported():
    assert "shape" in check.pre_norm_block(lambda x, *a: x[..., :-1]).message
    assert "raised" in check.pre_norm_block(lambda *a: 1 / 0).message
    assert "differs" in check.pre_norm_block(lambda x, attn, ffn, n1, n2: right(x, attn, ffn, n1, n2) + 1e-3).message
