"""The chapter-11 checker: it passes right answers and names each classic mistake."""
import pytest
import torch

from seqlab import check, interpret
from seqlab.data import SpanPositions


def right(A, first, second, L):
    D = second - first
    t = torch.arange(second, second + L)                  # the second copy
    return A[:, t, t - D + 1].mean(dim=-1)                # (H,)


def by_loop(A, first, second, L):
    out = torch.zeros(A.shape[0], dtype=A.dtype)
    for i in range(L):
        out += A[:, second + i, first + i + 1]            # the token after x_{first + i}
    return out / L


def via_library(A, first, second, L):
    pos = SpanPositions(torch.tensor([first]), torch.tensor([second]), torch.tensor([L]))
    return interpret.prefix_matching_score(A[None], pos)


def test_right_answers_pass():
    for fn in (right, by_loop, via_library):
        r = check.prefix_matching_score(fn)
        assert r.ok and "all 3 cases" in repr(r), r


def test_off_by_one_is_named():
    dup = lambda A, f, s, L: A[:, torch.arange(s, s + L), torch.arange(s, s + L) - (s - f)].mean(-1)
    r = check.prefix_matching_score(dup)
    assert not r and "duplicate-token" in repr(r)
    far = lambda A, f, s, L: A[:, torch.arange(s, s + L), torch.arange(s, s + L) - (s - f) + 2].mean(-1)
    assert "one position too far" in repr(check.prefix_matching_score(far))


def test_other_mistakes_are_named():
    short = lambda A, f, s, L: right(A, f, s, L - 1) if L > 1 else right(A, f, s, L)
    assert "one query is missing" in repr(check.prefix_matching_score(short))
    first_copy = lambda A, f, s, L: A[:, torch.arange(f, f + L), torch.arange(f, f + L) + 1].mean(-1)
    assert "first copy" in repr(check.prefix_matching_score(first_copy))
    transposed = lambda A, f, s, L: right(A.transpose(1, 2), f, s, L)
    assert "transposed" in repr(check.prefix_matching_score(transposed))
    assert not check.prefix_matching_score(lambda A, f, s, L: A.mean(dim=(1, 2)))


def test_crashes_and_wrong_types_are_reported():
    assert "not written yet" in repr(check.prefix_matching_score(lambda *a: (_ for _ in ()).throw(NotImplementedError())))
    assert "shape" in repr(check.prefix_matching_score(lambda A, f, s, L: right(A, f, s, L).sum()))
    with pytest.raises(TypeError, match="expected a function"):
        check.prefix_matching_score(42)
