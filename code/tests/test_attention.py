"""seqlab's attention gives the same numbers as PyTorch's, and the encoder-decoder keeps its promises.

``scaled_dot_product_attention`` is compared with ``F.scaled_dot_product_attention``
and ``MultiHeadAttention`` with ``nn.MultiheadAttention`` (outputs, weights and every
gradient) over awkward shapes (T_q != T_k, d_k != d_v, B = 1, T = 1, extra head
dimensions) with no mask, a causal mask and a bool mask. Additive attention is
checked with ``gradcheck``; self-attention's permutation equivariance, the
encoder-decoder's teacher-forced vs greedy consistency and its padding, and the
reversal task's targets are checked directly. Every bad input has its error.
"""
import pytest
import torch
import torch.nn.functional as F
from torch import nn

from seqlab.data.tasks import IGNORE
from seqlab.models import (AdditiveAttention, DotProductAttention, MultiHeadAttention, ReverseTask, Seq2Seq,
                           additive_attention, causal_mask, padding_mask, scaled_dot_product_attention)

TOL = {torch.float32: dict(atol=1e-5, rtol=1e-4), torch.float64: dict(atol=1e-12, rtol=1e-10)}
DTYPES = [torch.float32, torch.float64]

# (leading dims, T_q, T_k, d_k, d_v)
SDPA_SHAPES = [
    ((), 4, 4, 3, 3),  # no batch dimension at all
    ((1,), 1, 1, 2, 2),  # B = 1, T = 1
    ((1,), 1, 6, 4, 3),  # one query, several keys
    ((2,), 5, 7, 4, 3),  # T_q < T_k, d_k > d_v
    ((3,), 6, 2, 2, 5),  # T_q > T_k, d_k < d_v
    ((2, 3), 4, 6, 8, 5),  # a head dimension
    ((1, 2, 2), 3, 3, 4, 4),  # two extra dimensions
]
MASKS = ["none", "causal", "bool", "bool_full", "bool_and_causal"]


def random_allowed(shape, g) -> torch.Tensor:
    """A random bool mask (True = may attend) with key 0 always allowed, so no row is empty."""
    m = torch.rand(shape, generator=g) < 0.6
    m[..., 0] = True
    return m


def sdpa_case(lead, T_q, T_k, d_k, d_v, dtype, seed=0):
    g = torch.Generator().manual_seed(seed)
    q = torch.randn(*lead, T_q, d_k, generator=g, dtype=dtype)
    k = torch.randn(*lead, T_k, d_k, generator=g, dtype=dtype)
    v = torch.randn(*lead, T_k, d_v, generator=g, dtype=dtype)
    w = torch.randn(*lead, T_q, d_v, generator=g, dtype=dtype)  # a fixed weighting of the output for the loss
    return q, k, v, w, g


def grads(fn, q, k, v, w):
    q, k, v = (x.clone().requires_grad_() for x in (q, k, v))
    out = fn(q, k, v)
    (out * w).sum().backward()
    return out.detach(), q.grad, k.grad, v.grad


# ---------------------------------------------------------------- scaled dot-product attention
@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("masking", MASKS)
@pytest.mark.parametrize("shape", SDPA_SHAPES)
def test_sdpa_equals_torch_outputs_and_gradients(shape, masking, dtype):
    lead, T_q, T_k, d_k, d_v = shape
    q, k, v, w, g = sdpa_case(lead, T_q, T_k, d_k, d_v, dtype)
    mask, causal = None, masking in ("causal", "bool_and_causal")
    if masking in ("bool", "bool_and_causal"):
        mask = random_allowed((T_q, T_k), g)
    elif masking == "bool_full":
        mask = random_allowed((*lead, T_q, T_k), g)
    if causal and mask is None:
        theirs = lambda q, k, v: F.scaled_dot_product_attention(q, k, v, is_causal=True)  # noqa: E731
    else:  # F.sdpa refuses is_causal together with a mask: give it the combined mask
        full = mask if not causal else mask & torch.ones(T_q, T_k, dtype=torch.bool).tril()
        theirs = lambda q, k, v: F.scaled_dot_product_attention(q, k, v, attn_mask=full)  # noqa: E731
    ours = lambda q, k, v: scaled_dot_product_attention(q, k, v, mask=mask, causal=causal)[0]  # noqa: E731
    for a, b in zip(grads(ours, q, k, v, w), grads(theirs, q, k, v, w)):
        assert a.shape == b.shape
        torch.testing.assert_close(a, b, **TOL[dtype])


@pytest.mark.parametrize("masking", MASKS)
@pytest.mark.parametrize("shape", SDPA_SHAPES)
def test_sdpa_weights_are_a_distribution_that_respects_the_mask(shape, masking):
    lead, T_q, T_k, d_k, d_v = shape
    q, k, v, _, g = sdpa_case(lead, T_q, T_k, d_k, d_v, torch.float64, seed=1)
    mask = random_allowed((*lead, T_q, T_k), g) if "bool" in masking else None
    causal = "causal" in masking
    out, weights = scaled_dot_product_attention(q, k, v, mask=mask, causal=causal)
    assert out.shape == (*lead, T_q, d_v) and weights.shape == (*lead, T_q, T_k)
    torch.testing.assert_close(weights.sum(-1), torch.ones(*lead, T_q, dtype=torch.float64))
    allowed = torch.ones(T_q, T_k, dtype=torch.bool)
    if mask is not None:
        allowed = allowed & mask
    if causal:
        allowed = allowed & torch.ones(T_q, T_k, dtype=torch.bool).tril()
    assert (weights[~allowed.expand_as(weights)] == 0).all()
    assert (weights[allowed.expand_as(weights)] > 0).all()
    torch.testing.assert_close(out, weights @ v)


def test_sdpa_scale_equals_torch():
    q, k, v, _, _ = sdpa_case((2,), 3, 5, 4, 2, torch.float64)
    ours, _ = scaled_dot_product_attention(q, k, v, scale=0.3)
    torch.testing.assert_close(ours, F.scaled_dot_product_attention(q, k, v, scale=0.3), **TOL[torch.float64])
    default, _ = scaled_dot_product_attention(q, k, v)
    assert not torch.allclose(ours, default)  # the scale matters


def test_masks():
    assert causal_mask(3).tolist() == [[True, False, False], [True, True, False], [True, True, True]]
    assert causal_mask(1).dtype == torch.bool
    assert padding_mask(torch.tensor([2, 3, 1]), 4).tolist() == [
        [True, True, False, False], [True, True, True, False], [True, False, False, False]]
    assert padding_mask([1, 2]).shape == (2, 2)  # T defaults to the longest length


# ---------------------------------------------------------------- multi-head attention
# (B, T_q, T_k, d_model, n_heads, bias)
MHA_SHAPES = [
    (1, 1, 1, 4, 1, True),  # B = 1, T = 1, one head
    (2, 5, 5, 8, 2, True),  # self-attention shapes
    (3, 4, 7, 12, 3, True),  # cross-attention, T_q < T_k
    (2, 6, 3, 8, 4, False),  # T_q > T_k, no biases
    (1, 3, 3, 6, 6, True),  # d_head = 1
]


def mha_pair(d, H, bias, dtype, seed=0):
    torch.manual_seed(seed)
    theirs = nn.MultiheadAttention(d, H, bias=bias, batch_first=True).to(dtype)
    with torch.no_grad():  # PyTorch starts its biases at 0: make them count
        for p in (theirs.in_proj_bias, theirs.out_proj.bias):
            if p is not None:
                p.normal_()
    return MultiHeadAttention.from_torch(theirs), theirs


def mha_inputs(B, T_q, T_k, d, dtype, self_attention, seed=0):
    g = torch.Generator().manual_seed(seed)
    x = torch.randn(B, T_q, d, generator=g, dtype=dtype)
    if self_attention:
        return x, x, x
    return x, torch.randn(B, T_k, d, generator=g, dtype=dtype), torch.randn(B, T_k, d, generator=g, dtype=dtype)


OUR_TO_TORCH = {"W_q": 0, "W_k": 1, "W_v": 2}


def torch_grad(theirs, ours_name, d):
    """The slice of PyTorch's gradient that belongs to our parameter ``ours_name`` (e.g. ``W_k.bias``)."""
    layer, kind = ours_name.split(".")
    if layer == "W_o":
        return getattr(theirs.out_proj, kind).grad
    i = OUR_TO_TORCH[layer]
    full = theirs.in_proj_weight.grad if kind == "weight" else theirs.in_proj_bias.grad
    return full[i * d : (i + 1) * d]


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("masking", ["none", "causal", "bool_2d", "bool_3d"])
@pytest.mark.parametrize("shape", MHA_SHAPES)
def test_mha_equals_torch(shape, masking, dtype):
    B, T_q, T_k, d, H, bias = shape
    self_attention = T_q == T_k
    ours, theirs = mha_pair(d, H, bias, dtype)
    g = torch.Generator().manual_seed(3)
    mask, causal, their_mask = None, False, None  # ours: True = may attend; nn.MultiheadAttention: True = may NOT
    if masking == "causal":
        causal, their_mask = True, ~torch.ones(T_q, T_k, dtype=torch.bool).tril()
    elif masking == "bool_2d":
        mask = random_allowed((T_q, T_k), g)
        their_mask = ~mask
    elif masking == "bool_3d":
        mask = random_allowed((B, T_q, T_k), g)
        their_mask = ~mask.repeat_interleave(H, dim=0)  # PyTorch wants (B * H, T_q, T_k), batch-major
    x_q, x_k, x_v = mha_inputs(B, T_q, T_k, d, dtype, self_attention)
    ins_ours = [x.clone().requires_grad_() for x in (x_q, x_k, x_v)]
    ins_theirs = [x.clone().requires_grad_() for x in (x_q, x_k, x_v)]
    w = torch.randn(B, T_q, d, generator=g, dtype=dtype)

    out, weights = ours(*ins_ours, mask=mask, causal=causal)
    ref, ref_weights = theirs(*ins_theirs, attn_mask=their_mask, need_weights=True, average_attn_weights=False)
    torch.testing.assert_close(out, ref, **TOL[dtype])
    assert weights.shape == (B, H, T_q, T_k)
    torch.testing.assert_close(weights, ref_weights, **TOL[dtype])
    (out * w).sum().backward()
    (ref * w).sum().backward()
    for x, y in zip(ins_ours, ins_theirs):
        torch.testing.assert_close(x.grad, y.grad, **TOL[dtype])
    names = [n for n, _ in ours.named_parameters()]
    assert len(names) == (8 if bias else 4)
    for name, p in ours.named_parameters():
        torch.testing.assert_close(p.grad, torch_grad(theirs, name, d), **TOL[dtype], msg=name)


def test_mha_weights_averaged_over_heads_equal_torch_default():
    ours, theirs = mha_pair(8, 4, True, torch.float64)
    x = torch.randn(2, 5, 8, dtype=torch.float64)
    _, weights = ours(x, x, x, causal=True)
    _, ref = theirs(x, x, x, attn_mask=~causal_mask(5))  # default: averaged over heads
    torch.testing.assert_close(weights.mean(dim=1), ref, **TOL[torch.float64])


def test_mha_padding_mask_equals_torch_key_padding_mask():
    B, T_q, T_k, d, H = 3, 4, 6, 8, 2
    ours, theirs = mha_pair(d, H, True, torch.float64)
    query, key, value = mha_inputs(B, T_q, T_k, d, torch.float64, self_attention=False)
    lengths = torch.tensor([6, 2, 4])
    keep = padding_mask(lengths, T_k)  # (B, T_k), True = real
    out, weights = ours(query, key, value, mask=keep[:, None, :].expand(B, T_q, T_k))
    ref, _ = theirs(query, key, value, key_padding_mask=~keep)
    torch.testing.assert_close(out, ref, **TOL[torch.float64])
    assert (weights[1, :, :, 2:] == 0).all()


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("masking", ["none", "causal", "bool_3d_and_causal"])
def test_mha_fused_mode_equals_parallel_mode(masking, dtype):
    B, T, d, H = 2, 5, 12, 3
    ours, _ = mha_pair(d, H, True, dtype)
    g = torch.Generator().manual_seed(1)
    mask = random_allowed((B, T, T), g) if "bool" in masking else None
    causal = "causal" in masking
    x = torch.randn(B, T, d, generator=g, dtype=dtype)
    results = []
    for form in ("parallel", "fused"):
        xi = x.clone().requires_grad_()
        ours.zero_grad()
        out, weights = ours(xi, xi, xi, mask=mask, causal=causal, form=form)
        assert (weights is None) == (form == "fused")
        out.square().sum().backward()
        results.append([out.detach(), xi.grad] + [p.grad.clone() for p in ours.parameters()])
    for a, b in zip(*results):
        torch.testing.assert_close(a, b, **TOL[dtype])


def test_self_attention_is_permutation_equivariant_and_causal_is_not():
    ours, _ = mha_pair(8, 2, True, torch.float64)
    x = torch.randn(2, 7, 8, dtype=torch.float64)
    perm = torch.randperm(7, generator=torch.Generator().manual_seed(0))
    assert not torch.equal(perm, torch.arange(7))
    out, weights = ours(x, x, x)
    out_p, weights_p = ours(x[:, perm], x[:, perm], x[:, perm])
    torch.testing.assert_close(out_p, out[:, perm], **TOL[torch.float64])  # permuting inputs permutes outputs
    torch.testing.assert_close(weights_p, weights[:, :, perm][:, :, :, perm], **TOL[torch.float64])
    out, _ = ours(x, x, x, causal=True)  # a causal mask is a notion of order: equivariance breaks
    out_p, _ = ours(x[:, perm], x[:, perm], x[:, perm], causal=True)
    assert not torch.allclose(out_p, out[:, perm])


def test_from_torch_keeps_dtype_and_bias_setting():
    ours, _ = mha_pair(6, 2, False, torch.float64)
    assert all(p.dtype == torch.float64 for p in ours.parameters())
    assert ours.W_q.bias is None and ours.W_o.bias is None


# ---------------------------------------------------------------- additive and dot-product attention
def test_additive_attention_weights_sum_to_one_and_masked_are_zero():
    torch.manual_seed(0)
    attn = AdditiveAttention(d_query=3, d_key=5, d_hidden=4)
    s, h = torch.randn(3, 3), torch.randn(3, 6, 5)
    mask = padding_mask(torch.tensor([6, 1, 4]), 6)
    c, a = attn(s, h, mask)
    assert c.shape == (3, 5) and a.shape == (3, 6)
    torch.testing.assert_close(a.sum(-1), torch.ones(3))
    assert (a[~mask] == 0).all() and (a[mask] > 0).all()
    assert torch.equal(a[1], torch.tensor([1.0, 0, 0, 0, 0, 0]))
    torch.testing.assert_close(c, torch.einsum("bt,btd->bd", a, h))
    # the score by its formula: v^T tanh(W_s s + W_h h_j)
    score = torch.stack([torch.tanh(attn.W_s @ s[0] + attn.W_h @ h[0, j]) @ attn.v for j in range(6)])
    torch.testing.assert_close(a[0], torch.softmax(score, 0))


def test_attention_with_several_queries_equals_one_query_at_a_time():
    torch.manual_seed(0)
    s, h = torch.randn(2, 4, 3), torch.randn(2, 5, 3)
    mask = padding_mask(torch.tensor([5, 3]), 5)
    for attn in (AdditiveAttention(3, 3, 6), DotProductAttention(3, 3, "general"), DotProductAttention(3, 3, "dot")):
        c, a = attn(s, h, mask)
        assert c.shape == (2, 4, 3) and a.shape == (2, 4, 5)
        for i in range(4):
            c_i, a_i = attn(s[:, i], h, mask)
            torch.testing.assert_close(c[:, i], c_i)
            torch.testing.assert_close(a[:, i], a_i)


def test_additive_attention_gradcheck():
    g = torch.Generator().manual_seed(0)
    args = [torch.randn(*shape, generator=g, dtype=torch.float64, requires_grad=True)
            for shape in [(2, 3), (2, 4, 2), (5, 3), (5, 2), (5,)]]  # s, h, W_s, W_h, v
    mask = padding_mask(torch.tensor([4, 2]), 4)
    assert torch.autograd.gradcheck(lambda *a: additive_attention(*a, mask=mask), args)


def test_dot_product_attention_scores():
    torch.manual_seed(0)
    s, h = torch.randn(2, 4), torch.randn(2, 3, 4)
    _, a = DotProductAttention(4, 4, "dot")(s, h)
    torch.testing.assert_close(a, torch.softmax(torch.einsum("bd,btd->bt", s, h), -1))
    general = DotProductAttention(4, 4, "general")
    with torch.no_grad():
        general.W.copy_(torch.eye(4))
    torch.testing.assert_close(general(s, h)[1], a)  # W = I is the plain dot product
    assert len(list(DotProductAttention(4, 4, "dot").parameters())) == 0
    general = DotProductAttention(3, 5, "general")  # d_query != d_key: score = s^T W h_j with W (3, 5)
    s, h = torch.randn(2, 3), torch.randn(2, 4, 5)
    c, a = general(s, h)
    torch.testing.assert_close(a, torch.softmax(torch.einsum("bq,qk,btk->bt", s, general.W, h), -1))
    assert c.shape == (2, 5)


# ---------------------------------------------------------------- the reversal task
def test_reverse_task_hand_checked_example():
    task = ReverseTask(min_len=2, max_len=3, vocab=5)  # pad = 5, bos = 6, eos = 7
    assert (task.pad, task.bos, task.eos, task.n_tokens) == (5, 6, 7, 8)
    src, tgt_in, tgt_out, lengths = task.make_batch([[3, 1, 4], [2, 0]])
    assert src.tolist() == [[3, 1, 4], [2, 0, 5]]
    assert tgt_in.tolist() == [[6, 4, 1, 3], [6, 0, 2, 5]]
    assert tgt_out.tolist() == [[4, 1, 3, 7], [0, 2, 7, IGNORE]]
    assert lengths.tolist() == [3, 2]
    assert task.alignment(lengths).tolist() == [[2, 1, 0, IGNORE], [1, 0, IGNORE, IGNORE]]


def test_reverse_task_samples():
    task = ReverseTask(min_len=1, max_len=9, vocab=4)
    src, tgt_in, tgt_out, lengths = task.sample(64, generator=0)
    assert src.shape == (64, 9) and tgt_in.shape == tgt_out.shape == (64, 10) and lengths.shape == (64,)
    assert lengths.min() >= 1 and lengths.max() <= 9 and len(set(lengths.tolist())) > 3
    for b in range(64):
        L = lengths[b].item()
        assert src[b, :L].max() < 4 and (src[b, L:] == task.pad).all()
        assert torch.equal(tgt_out[b, :L], src[b, :L].flip(0)) and tgt_out[b, L] == task.eos
        assert (tgt_out[b, L + 1 :] == IGNORE).all()
        assert tgt_in[b, 0] == task.bos and torch.equal(tgt_in[b, 1 : L + 1], tgt_out[b, :L])
        assert (tgt_in[b, L + 1 :] == task.pad).all()
    again = task.sample(64, generator=torch.Generator().manual_seed(0))
    assert all(torch.equal(a, b) for a, b in zip((src, tgt_in, tgt_out, lengths), again))
    assert not torch.equal(task.sample(64, generator=1)[0], src)


# ---------------------------------------------------------------- the encoder-decoder
@pytest.mark.parametrize("bidirectional", [True, False])
@pytest.mark.parametrize("attention", [None, "additive", "dot", "general"])
def test_seq2seq_shapes_and_greedy_equals_teacher_forcing(attention, bidirectional):
    torch.manual_seed(0)
    task = ReverseTask(min_len=2, max_len=6, vocab=5)
    src, tgt_in, _, lengths = task.sample(4, generator=0)
    model = Seq2Seq(task.n_tokens, task.n_tokens, d_embed=8, d_hidden=16, attention=attention,
                    bidirectional=bidirectional)
    logits, weights = model(src, tgt_in, lengths)
    assert logits.shape == (4, 7, task.n_tokens)
    assert (weights is None) == (attention is None)
    ids, greedy_weights = model.greedy_decode(src, 7, task.bos, lengths)
    assert ids.shape == (4, 7) and ids.dtype == torch.long
    fed = torch.cat([torch.full((4, 1), task.bos), ids[:, :-1]], dim=1)  # what greedy decoding fed itself
    with torch.no_grad():
        logits, weights = model(src, fed, lengths)
    assert torch.equal(logits.argmax(-1), ids)
    if attention is not None:
        assert greedy_weights.shape == (4, 7, 6)
        torch.testing.assert_close(greedy_weights, weights)


@pytest.mark.parametrize("bidirectional", [True, False])
def test_seq2seq_decoder_starts_from_the_encoders_final_state(bidirectional):
    """s_0 = h_L (one way) or [->h_L; <-h_1] (both ways), at each row's own length L: the bottleneck."""
    torch.manual_seed(0)
    task = ReverseTask(min_len=2, max_len=5, vocab=5)
    src, tgt_in, _, lengths = task.make_batch([[1, 2, 3, 4, 0], [3, 0], [4, 1, 2]])
    model = Seq2Seq(task.n_tokens, task.n_tokens, d_embed=6, d_hidden=8, bidirectional=bidirectional)
    h, s_0, mask = model.encode(src, lengths)
    assert h.shape == (3, 5, 8) and s_0.shape == (1, 3, 8) and torch.equal(mask, padding_mask(lengths, 5))
    last = h[torch.arange(3), lengths - 1]  # (B, 8): the state at each row's last real position
    want = torch.cat([last[:, :4], h[:, 0, 4:]], dim=-1) if bidirectional else last
    torch.testing.assert_close(s_0[0], want)
    changed = src.clone()
    changed[0, 0] = 2  # without attention the decoder still hears of the source, through s_0 alone
    assert not torch.allclose(model(changed, tgt_in, lengths)[0][0], model(src, tgt_in, lengths)[0][0])


@pytest.mark.parametrize("bidirectional", [True, False])
@pytest.mark.parametrize("attention", [None, "additive", "general"])
def test_seq2seq_padding_is_invisible(attention, bidirectional):
    """Padded sources get zero weight, and a padded row gives the numbers of the same row alone, unpadded."""
    torch.manual_seed(0)
    task = ReverseTask(min_len=2, max_len=7, vocab=5)
    src, tgt_in, _, lengths = task.make_batch([[1, 2, 3, 4, 0, 1, 2], [3, 0], [4, 4, 1, 2]])
    model = Seq2Seq(task.n_tokens, task.n_tokens, d_embed=6, d_hidden=10, attention=attention,
                    bidirectional=bidirectional)
    logits, weights = model(src, tgt_in, lengths)
    if attention is not None:
        assert (weights[~padding_mask(lengths, 7)[:, None, :].expand_as(weights)] == 0).all()
        torch.testing.assert_close(weights.sum(-1), torch.ones(3, 8))
    for b in range(3):
        L = lengths[b].item()
        alone, _ = model(src[b : b + 1, :L], tgt_in[b : b + 1])
        torch.testing.assert_close(logits[b : b + 1], alone, atol=1e-5, rtol=1e-4)
    other_pad = src.clone()
    other_pad[~padding_mask(lengths, 7)] = 0  # whatever sits in the padding does not matter
    torch.testing.assert_close(model(other_pad, tgt_in, lengths)[0], logits)


def test_seq2seq_learns_to_reverse_with_attention(one_thread):
    """A short training run: attention reverses length-6 sequences far above chance (1/4)."""
    torch.manual_seed(0)
    task = ReverseTask(min_len=6, max_len=6, vocab=4)
    model = Seq2Seq(task.n_tokens, task.n_tokens, d_embed=16, d_hidden=32, attention="general")
    opt = torch.optim.Adam(model.parameters(), lr=1e-2)
    for step in range(150):
        src, tgt_in, tgt_out, _ = task.sample(32, generator=step)
        logits, _ = model(src, tgt_in)
        loss = F.cross_entropy(logits.flatten(0, 1), tgt_out.flatten())
        opt.zero_grad()
        loss.backward()
        opt.step()
    src, _, tgt_out, lengths = task.sample(256, generator=10_000)
    ids, weights = model.greedy_decode(src, 7, task.bos)
    scored = tgt_out != IGNORE
    assert (ids == tgt_out)[scored].float().mean() > 0.9
    align = task.alignment(lengths)
    hit = weights.argmax(-1) == align
    assert hit[align != IGNORE].float().mean() > 0.8  # the weights found the known alignment


# ---------------------------------------------------------------- errors
def err_sdpa(**kw):
    q, k, v = torch.randn(2, 3, 4), torch.randn(2, 5, 4), torch.randn(2, 5, 6)
    args = dict(q=q, k=k, v=v) | kw
    return lambda: scaled_dot_product_attention(**args)


ERRORS = [
    (err_sdpa(k=torch.randn(3, 5, 4)), ValueError, r"same leading .* got shapes \(2, 3, 4\), \(3, 5, 4\)"),
    (err_sdpa(k=torch.randn(2, 2, 5, 4)), ValueError, "same leading"),
    (err_sdpa(k=torch.randn(2, 5, 3)), ValueError, r"k must have last dimension 4, got shape \(2, 5, 3\)"),
    (err_sdpa(v=torch.randn(2, 4, 6)), ValueError, "same number of keys T_k"),
    (err_sdpa(k=torch.randn(2, 0, 4), v=torch.randn(2, 0, 6)), ValueError, "at least one key"),
    (err_sdpa(q=torch.randn(4)), ValueError, "at least 2 dimensions"),
    (err_sdpa(q=torch.randn(2, 3, 4, dtype=torch.float64)), TypeError, "one dtype"),
    (err_sdpa(q=torch.ones(2, 3, 4, dtype=torch.long)), TypeError, "q must be a floating-point"),
    (err_sdpa(v=[1.0]), TypeError, "v must be a torch.Tensor"),
    (err_sdpa(mask=torch.ones(3, 5)), TypeError, "mask must be a bool tensor"),
    (err_sdpa(mask=torch.ones(5, 3, dtype=torch.bool)), ValueError,
     r"mask must have shape .*\(3, 5\) or \(2, 3, 5\) .*got shape \(5, 3\)"),
    (err_sdpa(mask=torch.ones(1, 3, 5, dtype=torch.bool)), ValueError, "no broadcasting"),
    (err_sdpa(mask=torch.tensor([[True] * 5, [False] * 5, [True] * 5])), ValueError,
     r"query \(1,\) .* attend to no key"),
    (err_sdpa(mask=torch.ones(2, 3, 5, dtype=torch.bool).index_put((torch.tensor(1), torch.tensor(2)),
                                                                    torch.tensor(False))),
     ValueError, r"query \(1, 2\) .* no key"),
    (err_sdpa(mask=torch.ones(3, 5, dtype=torch.bool).triu(1), causal=True), ValueError, r"query \(0,\)"),
    (err_sdpa(causal=1), TypeError, "causal must be a bool"),
    (err_sdpa(scale=0.0), ValueError, "scale must be a positive"),
    (lambda: causal_mask(0), ValueError, "T must be >= 1"),
    (lambda: padding_mask(torch.tensor([2, 5]), 4), ValueError, r"lengths must lie in \[1, T=4\], got values in \[2, 5\]"),
    (lambda: padding_mask(torch.tensor([0, 2])), ValueError, r"lengths must lie in \[1"),
    (lambda: padding_mask(torch.tensor([1.0])), TypeError, "integer tensor"),
    (lambda: MultiHeadAttention(10, 4), ValueError, "d_model must be divisible by n_heads, got d_model=10 and n_heads=4"),
    (lambda: MultiHeadAttention(8, 0), ValueError, "n_heads must be >= 1"),
    (lambda: MultiHeadAttention(8, 2)(torch.randn(2, 3, 8), torch.randn(2, 4, 8), torch.randn(2, 5, 8)),
     ValueError, r"query, key and value must be .* \(2, 4, 8\) and \(2, 5, 8\)"),
    (lambda: MultiHeadAttention(8, 2)(torch.randn(2, 3, 8), torch.randn(1, 4, 8), torch.randn(1, 4, 8)),
     ValueError, "query, key and value must be"),
    (lambda: MultiHeadAttention(8, 2)(torch.randn(2, 3, 6), torch.randn(2, 3, 6), torch.randn(2, 3, 6)),
     ValueError, r"query must have last dimension 8"),
    (lambda: MultiHeadAttention(8, 2)(*[torch.randn(2, 3, 8, dtype=torch.float64)] * 3), TypeError,
     "parameters' dtype torch.float32"),
    (lambda: MultiHeadAttention(8, 2)(*[torch.randn(2, 3, 8)] * 3, mask=torch.ones(2, 3, dtype=torch.bool)),
     ValueError, r"mask must have shape \(T_q, T_k\) = \(3, 3\) or \(B, T_q, T_k\) = \(2, 3, 3\)"),
    (lambda: MultiHeadAttention(8, 2)(*[torch.randn(2, 3, 8)] * 3, mask=torch.ones(3, 3), form="fused"),
     TypeError, "mask must be a bool"),
    (lambda: MultiHeadAttention(8, 2)(*[torch.randn(2, 3, 8)] * 3, mask=torch.zeros(3, 3, dtype=torch.bool),
                                      form="fused"), ValueError, "no key"),
    (lambda: MultiHeadAttention.from_torch(nn.Linear(2, 2)), TypeError, "expects a torch.nn.MultiheadAttention"),
    (lambda: MultiHeadAttention.from_torch(nn.MultiheadAttention(8, 2, kdim=4, vdim=4)), ValueError, "kdim/vdim"),
    (lambda: MultiHeadAttention.from_torch(nn.MultiheadAttention(8, 2, dropout=0.1, add_bias_kv=True)), ValueError,
     "uses add_bias_kv, dropout"),
    (lambda: AdditiveAttention(3, 4, 0), ValueError, "d_hidden must be >= 1"),
    (lambda: AdditiveAttention(3, 4, 5)(torch.randn(2, 4), torch.randn(2, 6, 4)), ValueError,
     r"s must have last dimension 3, got shape \(2, 4\)"),
    (lambda: AdditiveAttention(3, 4, 5)(torch.randn(2, 3), torch.randn(3, 6, 4)), ValueError, "same batch size"),
    (lambda: AdditiveAttention(3, 4, 5)(torch.randn(2, 3), torch.randn(2, 6)), ValueError,
     "h must be 3-dimensional"),
    (lambda: AdditiveAttention(3, 4, 5)(torch.randn(2, 3), torch.randn(2, 6, 4), torch.ones(2, 5, dtype=torch.bool)),
     ValueError, r"mask must have shape \(B, T\) = \(2, 6\), got shape \(2, 5\)"),
    (lambda: AdditiveAttention(3, 4, 5)(torch.randn(2, 3), torch.randn(2, 6, 4), torch.ones(2, 6)),
     TypeError, "mask must be a bool tensor"),
    (lambda: AdditiveAttention(3, 4, 5)(torch.randn(2, 3), torch.randn(2, 6, 4),
                                        torch.tensor([[True] * 6, [False] * 6])), ValueError, "mask row 1 allows no"),
    (lambda: AdditiveAttention(3, 4, 5)(torch.randn(2, 3, dtype=torch.float64), torch.randn(2, 6, 4)), TypeError,
     "parameters' dtype"),
    (lambda: additive_attention(torch.randn(2, 3), torch.randn(2, 6, 4), torch.randn(5, 3), torch.randn(6, 4),
                                torch.randn(5)), ValueError, "must share d_hidden"),
    (lambda: DotProductAttention(3, 4, "dot"), ValueError, "d_query == d_key, got d_query=3 and d_key=4"),
    (lambda: DotProductAttention(3, 4, "cosine"), ValueError, "kind must be 'general' or 'dot'"),
    (lambda: DotProductAttention(4, 4, "dot")(torch.randn(2, 4), torch.randn(2, 3, 4, dtype=torch.float64)),
     TypeError, "one dtype"),
    (lambda: ReverseTask(5, 3), ValueError, "min_len must be <= max_len"),
    (lambda: ReverseTask(1, 3, vocab=1), ValueError, "vocab must be >= 2"),
    (lambda: ReverseTask(2, 3, 5).make_batch([[1, 2, 3, 4]]), ValueError, r"seqs\[0\] must have a length in \[2, 3\]"),
    (lambda: ReverseTask(2, 3, 5).make_batch([[1, 2], [1, 5]]), ValueError, r"seqs\[1\] must hold ints in \[0, 5\)"),
    (lambda: ReverseTask(2, 3, 5).make_batch([]), TypeError, "non-empty list"),
    (lambda: ReverseTask().sample(0), ValueError, "batch_size must be >= 1"),
    (lambda: Seq2Seq(8, 8, 4, 4, attention="bahdanau"), ValueError, "attention must be one of None, 'additive'"),
    (lambda: Seq2Seq(8, 8, 4, 5), ValueError, "bidirectional encoder needs an even d_hidden"),
    (lambda: Seq2Seq(8, 8, 4, 4, bidirectional=None), TypeError, "bidirectional must be a bool"),
    (lambda: Seq2Seq(8, 8, 4, 4)(torch.tensor([[1, 9]]), torch.tensor([[1]])), ValueError,
     r"src must lie in \[0, 8\), got values in \[1, 9\]"),
    (lambda: Seq2Seq(8, 8, 4, 4)(torch.tensor([[1, 2]]), torch.tensor([[1.0]])), TypeError, "tgt_in must be an integer"),
    (lambda: Seq2Seq(8, 8, 4, 4)(torch.tensor([[1, 2]]), torch.tensor([[1], [2]])), ValueError, "same batch size"),
    (lambda: Seq2Seq(8, 8, 4, 4)(torch.tensor([[1, 2]]), torch.tensor([[1]]), torch.tensor([3])), ValueError,
     r"lengths must lie in \[1, T=2\]"),
    (lambda: Seq2Seq(8, 8, 4, 4)(torch.tensor([[1, 2]]), torch.tensor([[1]]), torch.tensor([1, 2])), ValueError,
     r"src_lengths must have shape \(B,\) = \(1,\)"),
    (lambda: Seq2Seq(8, 8, 4, 4).greedy_decode(torch.tensor([[1, 2]]), 3, bos=8), ValueError,
     r"bos must be an int in \[0, 8\)"),
    (lambda: Seq2Seq(8, 8, 4, 4).greedy_decode(torch.tensor([[1, 2]]), 0, bos=1), ValueError, "max_len must be >= 1"),
]


@pytest.mark.parametrize("call, exc, match", ERRORS, ids=[f"{i:02d}" for i in range(len(ERRORS))])
def test_errors(call, exc, match):
    with pytest.raises(exc, match=match):
        call()


def test_runs_on_device(device):
    """The parallel and fused modes and the encoder-decoder run wherever their inputs live."""
    torch.manual_seed(0)
    q, k, v = (torch.randn(2, 3, 5, 4, device=device) for _ in range(3))
    out, _ = scaled_dot_product_attention(q, k, v, causal=True)
    torch.testing.assert_close(out, F.scaled_dot_product_attention(q, k, v, is_causal=True), atol=1e-5, rtol=1e-4)
    mha = MultiHeadAttention(8, 2).to(device)
    x = torch.randn(2, 5, 8, device=device)
    mask = padding_mask(torch.tensor([5, 3], device=device), 5)[:, None, :].expand(2, 5, 5)
    torch.testing.assert_close(mha(x, x, x, mask=mask)[0], mha(x, x, x, mask=mask, form="fused")[0], atol=1e-5, rtol=1e-4)
    task = ReverseTask(min_len=2, max_len=5, vocab=5)
    src, tgt_in, _, lengths = (t.to(device) for t in task.sample(3, generator=0))
    model = Seq2Seq(task.n_tokens, task.n_tokens, 6, 8, attention="additive").to(device)
    logits, weights = model(src, tgt_in, lengths)
    ids, _ = model.greedy_decode(src, 6, task.bos, lengths)
    assert logits.device.type == weights.device.type == ids.device.type == torch.device(device).type


# ---------------------------------------------------------------- the forms of seqlab.ops.attention
def test_attention_forms_with_masks_cross_attention_and_weights():
    """Beyond the equivalence grid: bool masks, T_q != T_k, the weights of the loop and parallel forms."""
    from seqlab.ops import attention as A
    g = torch.Generator().manual_seed(0)
    q, k, v = (torch.randn(2, 3, n, 4, generator=g, dtype=torch.float64) for n in (5, 7, 7))
    mask = random_allowed((2, 3, 5, 7), g)
    for causal in (False, True):
        ref, (K, V), w_ref = A.attention_parallel(q, k, v, causal=causal, mask=mask, need_weights=True)
        assert K is k and V is v
        y, _, w = A.attention_loop(q, k, v, causal=causal, mask=mask, need_weights=True)
        torch.testing.assert_close(y, ref, **TOL[torch.float64])
        torch.testing.assert_close(w, w_ref, **TOL[torch.float64])
        y, _, none = A.attention_fused(q, k, v, causal=causal, mask=mask, need_weights=True)
        torch.testing.assert_close(y, ref, **TOL[torch.float64])
        assert none is None
    with pytest.raises(ValueError, match="one new key per new query"):
        A.attention_stream(q, k, v)
    with pytest.raises(ValueError, match="causal only"):
        A.attention_stream(q, q, q, causal=False)
    with pytest.raises(ValueError, match="takes no mask"):
        A.attention_stream(q, q, q, mask=torch.ones(5, 5, dtype=torch.bool))
    with pytest.raises(TypeError, match=r"key/value cache \(K_past, V_past\)"):
        A.attention_parallel(q, q, q, state=k)
    with pytest.raises(ValueError, match="do not fit the cache"):
        A.attention_parallel(q, q, q, state=(k[:1], v[:1]))


def test_causal_attention_with_unequal_lengths_agrees_in_every_form():
    """Causal without a cache and T_q != T_k: query i sees keys 0 .. i (the mask is aligned at the top left, as
    ``is_causal=True`` aligns it), in the loop, the parallel and the fused form alike."""
    from seqlab.ops import attention as ops_attention
    g = torch.Generator().manual_seed(3)
    for T_q, T_k in ((3, 5), (5, 3)):
        q = torch.randn(2, 2, T_q, 4, generator=g, dtype=torch.float64)
        k, v = (torch.randn(2, 2, T_k, 4, generator=g, dtype=torch.float64) for _ in range(2))
        ref = ops_attention.attention_loop(q, k, v, causal=True)[0]
        for form in (ops_attention.attention_parallel, ops_attention.attention_fused):
            torch.testing.assert_close(form(q, k, v, causal=True)[0], ref)
        torch.testing.assert_close(ref[:, :, 0], v[:, :, 0])                # the first query sees the first key only
        i = min(T_q, T_k) - 1                                               # a query that sees i + 1 keys
        scores = (q[:, :, i, None] @ k[:, :, :i + 1].transpose(-1, -2))[:, :, 0] / 2.0    # / sqrt(d), d = 4
        w = torch.softmax(scores, -1)                                       # (B, H, i + 1)
        torch.testing.assert_close(ref[:, :, i], (w[..., None] * v[:, :, :i + 1]).sum(2))
