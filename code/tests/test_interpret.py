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
    assert m(x)[0].shape == (3, 12, 10)
    with pytest.raises(ValueError, match="Pre-Norm"):
        interpret.attention_only(GPTConfig(vocab_size=10, d_model=16, n_heads=2, norm_first=False))


def test_attention_patterns_are_causal_distributions():
    m = _model(layers=3)
    A = interpret.attention_patterns(m, torch.randint(0, 10, (2, 12)))
    assert len(A) == 3 and all(a.shape == (2, 2, 12, 12) for a in A)
    for a in A:
        assert torch.allclose(a.sum(-1), torch.ones(2, 2, 12)) and (a.triu(1) == 0).all()


@pytest.mark.parametrize("layer", [0, 1])
@pytest.mark.parametrize("head", [0, 1, 2, 3])
def test_ablate_head_removes_exactly_that_head(layer, head):
    m = _model(heads=4)                                                      # d_head = 4
    x = torch.randint(0, 10, (2, 12), generator=torch.Generator().manual_seed(head))
    base = m(x)[0].detach()
    with interpret.ablate_head(m, layer, head):
        ablated = m(x)[0].detach()
    assert torch.equal(m(x)[0].detach(), base)                                # the hook is gone afterwards
    assert not torch.allclose(ablated, base)
    # by hand: zero that head's value rows (weights and bias), so it writes nothing
    rows = slice(4 * head, 4 * head + 4)
    with torch.no_grad():
        m.blocks[layer].attn.W_v.weight[rows] = 0.0
        m.blocks[layer].attn.W_v.bias[rows] = 0.0
    assert torch.allclose(m(x)[0], ablated, atol=1e-6)


def test_ablate_head_validates():
    m = _model()
    for layer, head in ((0, 2), (2, 0), (0, -1), (0, True)):
        with pytest.raises(ValueError, match="head|layer"):
            with interpret.ablate_head(m, layer, head):
                pass
    with pytest.raises(ValueError, match="8"):                               # d_head = 8
        with interpret.ablate_head(m, 0, 0, replacement=torch.zeros(12, 5)):
            pass


@pytest.mark.parametrize("heads", [1, 2, 4])
def test_head_outputs_for_any_number_of_heads(heads):
    m = _model(heads=heads)
    x = torch.randint(0, 10, (3, 12), generator=torch.Generator().manual_seed(2))
    z = interpret.head_outputs(m, x, 0)
    assert z.shape == (3, 12, heads, 16 // heads)


@pytest.mark.parametrize("head", [0, 1, 2, 3])
def test_mean_and_resample_ablation_write_what_they_are_given(head):
    m = _model(heads=4)
    x = torch.randint(0, 10, (5, 12), generator=torch.Generator().manual_seed(1))
    z = interpret.head_outputs(m, x, 1)                                      # (B, T, H, d_head)
    assert z.shape == (5, 12, 4, 4)
    base = m(x)[0].detach()
    with interpret.ablate_head(m, 1, head, replacement=z[:, :, head]):      # its own output: nothing changes
        assert torch.allclose(m(x)[0], base, atol=1e-6)
    with interpret.ablate_head(m, 1, head, replacement=torch.zeros(4)):     # zeros: the zero ablation
        zero = m(x)[0].detach()
    with interpret.ablate_head(m, 1, head):
        assert torch.allclose(m(x)[0], zero, atol=1e-6)
    mean = z[:, :, head].mean(0)                                             # (T, d_head): mean ablation
    with interpret.ablate_head(m, 1, head, replacement=mean):
        assert torch.allclose(interpret.head_outputs(m, x, 1)[:, :, head], mean.expand(5, 12, 4))  # what W_O reads
        out = m(x)[0].detach()
    W_o = m.blocks[1].attn.W_o.weight[:, 4 * head:4 * head + 4]              # (d, d_head)
    delta = (mean - z[:, :, head]) @ W_o.T                                   # (B, T, d): the change of its write
    with torch.no_grad():                                                    # by hand: the final stream moved by delta
        stream = []
        h = m.norm.register_forward_pre_hook(lambda mod, inp: stream.append(inp[0]))
        m(x)[0]
        h.remove()
        by_hand = m.head(m.norm(stream[0] + delta))
    assert torch.allclose(out, by_hand, atol=1e-5)


def _layer_two(m, x, **patch):
    """Layer 2's attention weights and value vectors on x, with or without an ablate_path."""
    got = {}
    hooks = [m.blocks[1].attn.register_forward_hook(lambda mod, inp, out: got.update(A=mod.last_weights)),
             m.blocks[1].attn.W_v.register_forward_hook(lambda mod, inp, out: got.update(v=out)),
             m.blocks[1].attn.W_o.register_forward_pre_hook(lambda mod, inp: got.update(z=inp[0]))]
    try:
        if patch:
            with interpret.ablate_path(m, **patch):
                logits = m(x)[0]
        else:
            logits = m(x)[0]
    finally:
        for h in hooks:
            h.remove()
    return got["A"], got["v"], got["z"], logits


@pytest.mark.parametrize("head", [0, 1, 2, 3])
def test_ablate_path_reaches_only_the_named_projections(head):
    m = _model(heads=4)
    x = torch.randint(0, 10, (3, 12), generator=torch.Generator().manual_seed(2))
    A0, v0, z0, _ = _layer_two(m, x)
    A_k, v_k, _, _ = _layer_two(m, x, source=(0, head), target_layer=1, into="k")
    assert not torch.allclose(A_k, A0) and torch.equal(v_k, v0)            # keys changed, values not
    A_v, v_v, _, _ = _layer_two(m, x, source=(0, head), target_layer=1, into="v")
    assert torch.allclose(A_v, A0) and not torch.allclose(v_v, v0)         # values changed, pattern not
    # all three paths at once = what layer 2 computes when the head is ablated everywhere
    _, _, z_all, _ = _layer_two(m, x, source=(0, head), target_layer=1, into=("q", "k", "v"))
    got = {}
    h = m.blocks[1].attn.W_o.register_forward_pre_hook(lambda mod, inp: got.update(z=inp[0]))
    with interpret.ablate_head(m, 0, head):
        m(x)[0]
    h.remove()
    assert torch.allclose(z_all, got["z"], atol=1e-6)
    # keys by hand: LN_1 of the stream without the head's write, through W_K
    b0, b1 = m.blocks
    zero_z = interpret.head_outputs(m, x, 0)[:, :, head]                      # (B, T, d_head)
    with torch.no_grad():
        b1_in = []
        hk = b1.register_forward_pre_hook(lambda mod, inp: b1_in.append(inp[0]))
        m(x)[0]
        hk.remove()
        stream = b1_in[0] - zero_z @ b0.attn.W_o.weight[:, 4 * head:4 * head + 4].T
        k_hand = b1.attn.W_k(b1.norm1(stream))
        got_k = []
        hk = b1.attn.W_k.register_forward_hook(lambda mod, inp, out: got_k.append(out))
        with interpret.ablate_path(m, (0, head), 1, "k"):
            m(x)[0]
        hk.remove()
    assert torch.allclose(got_k[0], k_hand, atol=1e-6)


def test_ablate_path_of_several_heads_adds_their_changes():
    m = _model(heads=4)
    x = torch.randint(0, 10, (3, 12), generator=torch.Generator().manual_seed(3))
    z = interpret.head_outputs(m, x, 0)                                       # (B, T, H, d_head)
    means = [z[:, :, h].mean(0) for h in (1, 3)]
    got = []
    hk = m.blocks[1].attn.W_k.register_forward_hook(lambda mod, inp, out: got.append(out))
    with interpret.ablate_path(m, [(0, 1), (0, 3)], 1, "k", replacement=means):
        m(x)[0]
    hk.remove()
    W_o = m.blocks[0].attn.W_o.weight
    stream = []
    hb = m.blocks[1].register_forward_pre_hook(lambda mod, inp: stream.append(inp[0]))
    with torch.no_grad():
        m(x)[0]
        hb.remove()
        for h, mean in zip((1, 3), means):
            stream[0] = stream[0] + (mean - z[:, :, h]) @ W_o[:, 4 * h:4 * h + 4].T
        k_hand = m.blocks[1].attn.W_k(m.blocks[1].norm1(stream[0]))
    assert torch.allclose(got[0], k_hand, atol=1e-6)
    with pytest.raises(ValueError, match="one entry per source"):
        with interpret.ablate_path(m, [(0, 1), (0, 3)], 1, "k", replacement=means[:1]):
            pass


def test_ablate_path_validates():
    m = _model()
    for kwargs in (dict(source=(1, 0), target_layer=1), dict(source=(0, 0), target_layer=0),
                   dict(source=(0, 0), target_layer=1, into="x"), dict(source=(0, 5), target_layer=1)):
        with pytest.raises(ValueError):
            with interpret.ablate_path(m, **kwargs):
                pass
    with pytest.raises(TypeError, match="tuple"):
        with interpret.ablate_path(m, 0, 1):
            pass


def test_exact_match_is_all_or_nothing_per_row():
    class Fixed(torch.nn.Module):                                            # predicts token 1 everywhere
        def forward(self, x):
            return torch.nn.functional.one_hot(torch.ones_like(x), 3).float()
    x = torch.zeros(3, 4, dtype=torch.long)
    y = torch.tensor([[1, 1, 1, 1], [1, 2, 1, 1], [2, 2, 2, 2]])
    mask = torch.tensor([[0, 1, 1, 0], [0, 1, 1, 0], [0, 0, 0, 0]], dtype=torch.bool)
    assert interpret.exact_match(Fixed(), x, y, mask) == 0.5                # row 0 all right, row 1 one wrong, row 2 unscored
    with pytest.raises(ValueError, match="no target"):
        interpret.exact_match(Fixed(), x, y, torch.zeros(3, 4, dtype=torch.bool))


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


def test_head_scores_from_one_forward_pass_agree_with_the_separate_scores():
    m = _model(heads=2)
    task = RepeatedSpans(length=12, vocab=10, span_min=3, span_max=5, gap_max=2)
    x, y, pos = task.sample_with_positions(6, 0)
    out = interpret.head_scores(m, x, y, pos)
    early, late = pos.target_masks(12)
    loss = interpret.token_losses(m, x, y)
    assert out["loss"] == pytest.approx(loss.mean().item())
    assert out["icl"] == pytest.approx(interpret.icl_score(loss, early, late))
    assert out["exact"] == interpret.exact_match(m, x, y, late)
    A, logits = interpret.attention_patterns(m, x, return_logits=True)
    assert torch.equal(logits, m(x)[0]) and all(torch.equal(a, b) for a, b in zip(A, interpret.attention_patterns(m, x)))
    assert out["prefix 2.1"] == pytest.approx(interpret.prefix_matching_score(A[1], pos)[1].item())
