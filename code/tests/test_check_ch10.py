"""The chapter-10 checker: right answers pass, each classic mistake is named, and it agrees with seqlab."""
import pytest

from seqlab import check
from seqlab.experiments import scaling


def right(d, n_layers, n_ctx, V):
    return 2 * (n_layers * 12 * d * d + d * V) + 4 * n_layers * n_ctx * d


def test_right_answer_passes_and_matches_the_library():
    r = check.forward_flops(right)
    assert r.ok and "all 3 cases" in repr(r)
    for d, L, n, V in ((64, 2, 128, 100), (32, 4, 1024, 50)):
        model = scaling.make_model("transformer", d, V, n, L)
        assert scaling.flops_per_token(model, n)["C"] / 3 == right(d, L, n, V)


@pytest.mark.parametrize("wrong, words", [
    (lambda d, L, n, V: 2 * (L * 12 * d * d + d * V), "n_ctx term is missing"),
    (lambda d, L, n, V: 2 * (L * 12 * d * d + d * V) + 2 * L * n * d, "only one of the two"),
    (lambda d, L, n, V: 2 * L * 12 * d * d + 4 * L * n * d, "head is missing"),
    (lambda d, L, n, V: 2 * (L * 6 * d * d + d * V) + 4 * L * n * d, "8 d^2"),
    (lambda d, L, n, V: right(d, L, n, V) / 2, "multiply-add is two"),
    (lambda d, L, n, V: 3 * right(d, L, n, V), "training cost"),
])
def test_mistakes_are_named(wrong, words):
    r = check.forward_flops(wrong)
    assert not r and words in repr(r), repr(r)


def test_other_failures():
    assert "returned" in repr(check.forward_flops(lambda *a: right(*a) + 7))
    assert "number" in repr(check.forward_flops(lambda *a: "many"))
    with pytest.raises(TypeError, match="expected a function"):
        check.forward_flops(None)
