"""The repeated-span task and the interpretability scores of chapter 11, on hand-made inputs."""
import pytest
import torch

from seqlab import data, interpret
from seqlab.data import IGNORE, RepeatedSpans, SpanPositions
from seqlab.models import GPTConfig


# ---------------------------------------------------------------- the task
def test_repeated_spans_copies_and_varies():
    task = RepeatedSpans(length=40, vocab=24, span_min=3, span_max=12, gap_max=5)
    x, y, pos = task.sample_with_positions(256, 0)
    assert x.shape == y.shape == (256, 40) and x.dtype == torch.long
    assert torch.equal(x[:, 1:], y[:, :-1]) and (y != IGNORE).all()      # next-token targets everywhere
    for b in range(256):
        f, s, L = pos.first[b].item(), pos.second[b].item(), pos.length[b].item()
        assert 3 <= L <= 12 and s - f - L in range(0, 6) and s + L <= 40
        assert torch.equal(x[b, f:f + L], x[b, s:s + L])                  # the span, twice
        assert len(set(x[b, f:f + L].tolist())) == L                       # of distinct tokens
    # neither the length, the place nor the distance between the copies is fixed
    assert len(set(pos.length.tolist())) == 10 and len(set(pos.offset.tolist())) > 8
    assert len(set(pos.first.tolist())) > 10


def test_repeated_spans_masks_pick_the_predictable_targets():
    task = RepeatedSpans(length=30, vocab=20, span_min=4, span_max=8, gap_max=3)
    x, y, pos = task.sample_with_positions(64, 1)
    early, late = pos.target_masks(30)
    assert early.sum(1).tolist() == (pos.length - 1).tolist() == late.sum(1).tolist()
    D = pos.offset[:, None].expand(-1, 30)
    rows, t = late.nonzero(as_tuple=True)
    assert torch.equal(y[rows, t], y[rows, t - D[rows, t]])                # a late target is copyable from D back
    assert torch.equal(y[early], y[late])                                  # the same targets, first and second time


def test_repeated_spans_is_seeded_and_validates():
    task = RepeatedSpans(length=40, vocab=24, span_min=3, span_max=12)
    a, b = task.sample(8, 5), task.sample(8, 5)
    assert torch.equal(a[0], b[0]) and not torch.equal(a[0], task.sample(8, 6)[0])
    with pytest.raises(ValueError, match="length"):
        RepeatedSpans(length=20, span_max=12, gap_max=0)                   # two spans of 12 do not fit
    with pytest.raises(ValueError, match="span_max"):
        RepeatedSpans(span_min=8, span_max=4)
    with pytest.raises(ValueError, match="vocab"):
        RepeatedSpans(vocab=8, span_max=12)                                # 12 distinct tokens from 8


# ---------------------------------------------------------------- scores on hand-made attention patterns
def _positions():
    # two rows, T = 12: a span of 3 at 1 and 6 (D = 5); a span of 2 at 0 and 4 (D = 4)
    return SpanPositions(first=torch.tensor([1, 0]), second=torch.tensor([6, 4]), length=torch.tensor([3, 2]))


def _pattern(key_of, T=12, B=2):
    """One head per entry of key_of: query t attends only to key key_of(b, t) (clamped to [0, t])."""
    A = torch.zeros(B, len(key_of), T, T)
    for h, f in enumerate(key_of):
        for b in range(B):
            for t in range(T):
                A[b, h, t, min(max(f(b, t), 0), t)] = 1.0
    return A


def test_prefix_matching_score_is_exact_about_the_offset():
    pos = _positions()
    D = pos.offset.tolist()
    A = _pattern([lambda b, t: t - D[b] + 1,       # induction: the token after the earlier occurrence
                  lambda b, t: t - D[b],           # duplicate token: the earlier occurrence itself
                  lambda b, t: t - D[b] + 2,       # one too far
                  lambda b, t: t - 1])             # previous token
    score = interpret.prefix_matching_score(A, pos)
    assert score.tolist() == [1.0, 0.0, 0.0, 0.0]
    half = 0.5 * A[:, :1] + 0.5 * A[:, 1:2]          # half on the right key, half on the wrong one
    assert interpret.prefix_matching_score(half, pos).item() == pytest.approx(0.5)


def test_previous_token_score():
    A = _pattern([lambda b, t: t - 1, lambda b, t: t, lambda b, t: 0])
    # head 0 at t - 1 for every t >= 1; head 2 attends to 0, which is t - 1 only at t = 1 (1 of 11)
    assert interpret.previous_token_score(A).tolist() == pytest.approx([1.0, 0.0, 1 / 11])


def test_scores_validate():
    pos = _positions()
    with pytest.raises(ValueError, match="B, H, T, T"):
        interpret.prefix_matching_score(torch.rand(2, 1, 12, 11), pos)
    with pytest.raises(ValueError, match="rows"):
        interpret.prefix_matching_score(torch.rand(3, 1, 12, 12), pos)
    with pytest.raises(ValueError, match="after position"):
        interpret.prefix_matching_score(torch.rand(2, 1, 6, 6), pos)
    with pytest.raises(TypeError, match="SpanPositions"):
        interpret.prefix_matching_score(torch.rand(2, 1, 12, 12), (1, 6, 3))


def test_copying_score_signs():
    V = 6
    assert interpret.copying_score(torch.eye(V)).item() == pytest.approx(1.0)
    assert interpret.copying_score(-torch.eye(V)).item() == pytest.approx(-1.0)
    perm = torch.eye(V)[[1, 0, 3, 2, 5, 4]]                               # swaps tokens: eigenvalues +-1
    assert interpret.copying_score(perm).item() == pytest.approx(0.0, abs=1e-9)
    both = torch.stack([torch.eye(V), -2 * torch.eye(V)])
    assert interpret.copying_score(both).tolist() == pytest.approx([1.0, -1.0])
    with pytest.raises(ValueError, match="square"):
        interpret.copying_score(torch.rand(3, 4))


def test_icl_score_positions_and_masks():
    loss = torch.tensor([[3.0, 2.0, 1.0], [3.0, 2.0, 0.0]])
    assert interpret.icl_score(loss, 0, 2) == pytest.approx(0.5 - 3.0)
    early = torch.tensor([[True, False, False], [True, False, False]])
    late = torch.tensor([[False, True, True], [False, False, True]])
    assert interpret.icl_score(loss, early, late) == pytest.approx((2 + 1 + 0) / 3 - 3.0)
    with pytest.raises(ValueError, match="no token"):
        interpret.icl_score(loss, early, torch.zeros(2, 3, dtype=torch.bool))
    with pytest.raises(TypeError, match="position"):
        interpret.icl_score(loss, 0.5, 2)
    with pytest.raises(ValueError, match="not a position"):
        interpret.icl_score(loss, 0, 3)


# ---------------------------------------------------------------- on a model
def _model(layers=2, heads=2):
    torch.manual_seed(0)
    return interpret.attention_only(GPTConfig(vocab_size=10, d_model=16, n_heads=heads, n_layers=layers, max_len=12))


def test_attention_only_has_no_feed_forward():
    m = _model()
    x = torch.randint(0, 10, (3, 12))
    for block in m.blocks:
        assert torch.equal(block.ffn(torch.randn(2, 5, 16)), torch.zeros(2, 5, 16))
    assert m(x).shape == (3, 12, 10)
    with pytest.raises(ValueError, match="Pre-Norm"):
        interpret.attention_only(GPTConfig(vocab_size=10, d_model=16, n_heads=2, norm_first=False))


def test_attention_patterns_are_causal_distributions():
    m = _model(layers=3)
    A = interpret.attention_patterns(m, torch.randint(0, 10, (2, 12)))
    assert len(A) == 3 and all(a.shape == (2, 2, 12, 12) for a in A)
    for a in A:
        assert torch.allclose(a.sum(-1), torch.ones(2, 2, 12)) and (a.triu(1) == 0).all()


def test_ablate_head_removes_exactly_one_head():
    m = _model()
    x = torch.randint(0, 10, (2, 12))
    base = m(x).detach()
    with interpret.ablate_head(m, 1, 0):
        ablated = m(x).detach()
    assert torch.equal(m(x).detach(), base)                                # the hook is gone afterwards
    assert not torch.allclose(ablated, base)
    # by hand: zero the head's value rows, so it writes nothing
    with torch.no_grad():
        m.blocks[1].attn.W_v.weight[:8] = 0.0
        m.blocks[1].attn.W_v.bias[:8] = 0.0
    assert torch.allclose(m(x), ablated, atol=1e-6)
    with pytest.raises(ValueError, match="head"):
        with interpret.ablate_head(m, 0, 2):
            pass


def test_ov_circuit_matches_the_heads_direct_path():
    m = _model()
    with torch.no_grad():                                                    # LayerNorm gains that are not all 1
        m.blocks[0].norm1.weight.uniform_(0.5, 1.5)
        m.norm.weight.uniform_(0.5, 1.5)
    ov = interpret.ov_circuits(m, 0)
    assert ov.shape == (2, 10, 10)
    b, dh = m.blocks[0], 8
    token = 3
    e = m.embed.weight[token] * b.norm1.weight                              # (d,)
    v = b.attn.W_v.weight[dh:] @ e                                         # head 1's value (no bias)
    out = b.attn.W_o.weight[:, dh:] @ v                                    # (d,)
    logits = m.head.weight @ (out * m.norm.weight)                          # (V,)
    assert torch.allclose(ov[1, token], logits, atol=1e-6)


def test_crossing_and_steepest_drop():
    steps = [0, 10, 20, 30, 40, 50, 60, 70]
    assert interpret.first_crossing(steps, [0, 0.1, 0.2, 0.5, 0.9, 1, 1, 1], 0.4) == 30
    assert interpret.first_crossing(steps, [0] * 8, 0.4) is None
    loss = [3.0, 3.0, 3.0, 3.0, 1.0, 1.0, 1.0, 1.0]
    assert interpret.steepest_drop(steps, loss, window=1) == 35
    assert 20 <= interpret.steepest_drop(steps, loss, window=3) <= 50
