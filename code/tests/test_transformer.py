"""seqlab's Transformer equals PyTorch's, and its cache, positions and attention modes keep their promises.

``TransformerBlock.from_torch`` copies an ``nn.TransformerEncoderLayer``; outputs and every
gradient agree for Pre-Norm and Post-Norm, ReLU and GELU, with and without a causal mask,
over awkward shapes. ``GPT`` with a key/value cache equals ``GPT`` without it (logits
chunk by chunk, and sampled tokens), for every positional scheme; every attention form
(loop, step, fused) equals the parallel one; the model is causal. Every bad input has its error.
"""
import math

import pytest
import torch
from torch import nn

from seqlab.models import (GPT, FeedForward, GPTConfig, KVCache, LayerCache, SelfAttention, TransformerBlock,
                           causal_mask)
from seqlab.models.positional import ENCODINGS

TOL = {torch.float32: dict(atol=2e-5, rtol=1e-4), torch.float64: dict(atol=1e-10, rtol=1e-9)}


def torch_layer(d, H, d_ff, norm_first, activation, dtype, seed=0, layer_norm_eps=0.1):
    """A PyTorch layer with a LayerNorm eps far from the default, so that a copy which drops it differs."""
    torch.manual_seed(seed)
    layer = nn.TransformerEncoderLayer(d, H, d_ff, dropout=0.0, activation=activation, batch_first=True,
                                       norm_first=norm_first, layer_norm_eps=layer_norm_eps).to(dtype)
    with torch.no_grad():  # non-trivial LayerNorm affine parameters and biases, so a swapped name shows
        for p in layer.parameters():
            if p.dim() == 1:
                p.add_(0.1 * torch.randn_like(p))
    return layer


@pytest.mark.parametrize("norm_first", [True, False])
@pytest.mark.parametrize("activation", ["relu", "gelu"])
@pytest.mark.parametrize("dtype", [torch.float32, torch.float64])
@pytest.mark.parametrize("B, T, d, H, d_ff, causal", [
    (2, 5, 8, 2, 12, False),  # d_ff not a multiple of d
    (1, 1, 4, 1, 16, True),  # B = 1, T = 1, one head
    (3, 7, 12, 3, 20, True),  # odd T, three heads
])
def test_block_equals_torch_encoder_layer(norm_first, activation, dtype, B, T, d, H, d_ff, causal):
    ref = torch_layer(d, H, d_ff, norm_first, activation, dtype).train()  # train(): no fused inference path
    ours = TransformerBlock.from_torch(ref)
    assert ours.norm_first is norm_first and ours.ffn.activation == activation
    x = torch.randn(B, T, d, dtype=dtype)
    x1, x2 = x.clone().requires_grad_(), x.clone().requires_grad_()
    y_ref = ref(x1, src_mask=~causal_mask(T) if causal else None)  # PyTorch: True = *not* allowed
    y = ours(x2, causal=causal)
    torch.testing.assert_close(y, y_ref, **TOL[dtype])
    w = torch.randn_like(y)
    (y_ref * w).sum().backward()
    (y * w).sum().backward()
    torch.testing.assert_close(x2.grad, x1.grad, **TOL[dtype])
    assert ours.norm1.eps == ours.norm2.eps == ref.norm1.eps == 0.1
    # all 12 parameters of the PyTorch layer, each paired with ours ([W_q; W_k; W_v] stacked in in_proj)
    a = ours.attn
    mine = {"self_attn.in_proj_weight": torch.cat([a.W_q.weight.grad, a.W_k.weight.grad, a.W_v.weight.grad]),
            "self_attn.in_proj_bias": torch.cat([a.W_q.bias.grad, a.W_k.bias.grad, a.W_v.bias.grad]),
            "self_attn.out_proj.weight": a.W_o.weight.grad, "self_attn.out_proj.bias": a.W_o.bias.grad}
    for ours_part, name in ((ours.ffn.linear1, "linear1"), (ours.ffn.linear2, "linear2"), (ours.norm1, "norm1"),
                            (ours.norm2, "norm2")):
        mine[f"{name}.weight"], mine[f"{name}.bias"] = ours_part.weight.grad, ours_part.bias.grad
    theirs = {name: p.grad for name, p in ref.named_parameters()}
    assert sorted(mine) == sorted(theirs) and len(theirs) == 12
    for name in theirs:
        torch.testing.assert_close(mine[name], theirs[name], **TOL[dtype], msg=lambda m: f"gradient of {name}: {m}")
        assert theirs[name].abs().sum() > 0, name


def test_pre_and_post_norm_differ_and_post_norm_output_is_normalised():
    torch.manual_seed(0)
    pre, post = TransformerBlock(8, 2, norm_first=True), TransformerBlock(8, 2, norm_first=False)
    post.load_state_dict(pre.state_dict())
    x = 3 * torch.randn(2, 5, 8)
    y_post = post(x)
    assert not torch.allclose(pre(x), y_post)
    # Post-Norm ends with LayerNorm (weight 1, bias 0 at init): each position has mean 0 and variance 1
    torch.testing.assert_close(y_post.mean(-1), torch.zeros(2, 5), atol=1e-5, rtol=0)
    torch.testing.assert_close(y_post.var(-1, unbiased=False), torch.ones(2, 5), atol=1e-3, rtol=0)


def test_feed_forward_is_the_equation():
    torch.manual_seed(0)
    ffn = FeedForward(6, 10, "relu")
    x = torch.randn(3, 6)
    expected = torch.relu(x @ ffn.linear1.weight.T + ffn.linear1.bias) @ ffn.linear2.weight.T + ffn.linear2.bias
    torch.testing.assert_close(ffn(x), expected)


def small_gpt(positions, norm_first=True, seed=0, dtype=torch.float64):
    torch.manual_seed(seed)
    cfg = GPTConfig(vocab_size=11, d_model=16, n_heads=2, n_layers=2, max_len=32, positions=positions,
                    norm_first=norm_first)
    model = GPT(cfg).to(dtype)
    with torch.no_grad():  # larger weights than GPT-2's 0.02, so attention patterns are not nearly uniform
        for p in model.parameters():
            p.mul_(20.0 if p.dim() > 1 else 1.0)
    return model.eval()


def rotate_by_hand(z: torch.Tensor, base: float = 10000.0) -> torch.Tensor:
    """RoPE written out: pair i of position m, (z_2i, z_2i+1), turned by m * base^(-2i/d). z (B, T, H, d)."""
    T, d = z.shape[1], z.shape[-1]
    out = torch.empty_like(z)
    for m in range(T):
        for i in range(d // 2):
            theta = m * base ** (-2 * i / d)
            c, s = math.cos(theta), math.sin(theta)
            a, b = z[:, m, :, 2 * i], z[:, m, :, 2 * i + 1]
            out[:, m, :, 2 * i], out[:, m, :, 2 * i + 1] = a * c - b * s, a * s + b * c
    return out


@pytest.mark.parametrize("form", ["parallel", "loop", "fused"])
def test_rotary_attention_equals_a_by_hand_computation(form):
    """Causal self-attention with RoPE, recomputed from the module's own projections: both q and k rotate."""
    torch.manual_seed(0)
    B, T, d, H = 2, 7, 12, 2
    attn = SelfAttention(d, H, rope=True, form=form).double()
    x = 2 * torch.randn(B, T, d, dtype=torch.float64)
    dh = d // H
    q, k, v = (proj(x).view(B, T, H, dh) for proj in (attn.W_q, attn.W_k, attn.W_v))  # (B, T, H, dh)
    q, k = rotate_by_hand(q), rotate_by_hand(k)
    scores = torch.einsum("bmhd,bnhd->bhmn", q, k) / math.sqrt(dh)  # (B, H, T, T)
    scores = scores.masked_fill(~torch.ones(T, T, dtype=torch.bool).tril(), float("-inf"))
    heads = torch.einsum("bhmn,bnhd->bmhd", scores.softmax(dim=-1), v)  # (B, T, H, dh)
    expected = attn.W_o(heads.reshape(B, T, d))
    torch.testing.assert_close(attn(x, causal=True)[0], expected, atol=1e-12, rtol=1e-10)
    cache = LayerCache()  # the same through a cache: a prompt of 3, one token, the rest
    parts = [attn(x[:, a:b], causal=True, cache=cache)[0] for a, b in ((0, 3), (3, 4), (4, T))]
    torch.testing.assert_close(torch.cat(parts, dim=1), expected, atol=1e-12, rtol=1e-10)


@pytest.mark.parametrize("std", [0.02, 0.5])
def test_gpt_initialisation_follows_init_std(std):
    """Every weight matrix and embedding ~ N(0, init_std^2), every linear bias 0, LayerNorms (1, 0)."""
    torch.manual_seed(0)
    model = GPT(GPTConfig(vocab_size=64, d_model=32, n_heads=4, n_layers=2, max_len=64, init_std=std))
    for name, p in model.named_parameters():
        if "norm" in name:
            assert torch.all(p == (1.0 if name.endswith("weight") else 0.0)), name
        elif p.dim() == 1:
            assert torch.all(p == 0), name
        else:  # at least 32 x 32 draws: the sample std is within 10 % of std with a wide margin
            assert p.numel() >= 1024 and abs(p.std().item() / std - 1) < 0.1, (name, p.std().item())
            assert abs(p.mean().item()) < 4 * std / math.sqrt(p.numel()), name
    torch.manual_seed(0)
    default = GPT(GPTConfig(vocab_size=64, d_model=32, n_heads=4, n_layers=2, max_len=64, init_std=None))
    lin = default.blocks[0].ffn.linear2  # PyTorch's default: uniform in +-1/sqrt(fan_in), a non-zero bias
    assert lin.weight.abs().max() <= 1 / math.sqrt(lin.in_features) and lin.bias.abs().sum() > 0
    assert abs(default.embed.weight.std().item() - 1) < 0.1  # nn.Embedding's N(0, 1)


@pytest.mark.parametrize("positions", ENCODINGS)
@pytest.mark.parametrize("norm_first", [True, False])
def test_cache_in_chunks_equals_one_pass(positions, norm_first):
    model = small_gpt(positions, norm_first)
    x = torch.randint(0, 11, (2, 9), generator=torch.Generator().manual_seed(1))
    full, none = model(x)
    assert none is None                                       # no cache asked for, none returned
    cache = model.new_cache()
    parts = []
    for a, b in ((0, 4), (4, 5), (5, 9)):                     # a prompt, one token, a chunk
        logits, returned = model(x[:, a:b], cache=cache)
        assert returned is cache                              # (logits, state): the cache, now longer
        parts.append(logits)
    torch.testing.assert_close(torch.cat(parts, dim=1), full, atol=1e-10, rtol=1e-9)
    assert cache.length == 9
    assert cache.nbytes() == 2 * 2 * 2 * 2 * 9 * 8 * 8  # K and V, L=2, B=2, H=2, T=9, d_head=8, float64


@pytest.mark.parametrize("positions", ENCODINGS)
def test_generate_with_cache_equals_without(positions):
    model = small_gpt(positions, dtype=torch.float32)
    prompt = torch.tensor([1, 5, 2])
    with_cache = model.generate(prompt, 20, generator=torch.Generator().manual_seed(3), use_cache=True)
    without = model.generate(prompt, 20, generator=torch.Generator().manual_seed(3), use_cache=False)
    assert torch.equal(with_cache, without)
    assert torch.equal(with_cache[:3], prompt) and len(with_cache) == 23
    greedy = [model.generate(prompt, 12, temperature=0, use_cache=u) for u in (True, False)]
    assert torch.equal(*greedy)
    fused = model.generate(prompt, 20, generator=torch.Generator().manual_seed(3), form="fused")
    assert torch.equal(fused, with_cache)


@pytest.mark.parametrize("form", ["loop", "stream", "fused"])
@pytest.mark.parametrize("positions", ENCODINGS)
def test_every_mode_equals_parallel_with_and_without_cache(positions, form):
    model = small_gpt(positions)
    x = torch.randint(0, 11, (3, 8), generator=torch.Generator().manual_seed(2))
    torch.testing.assert_close(model(x, form=form)[0], model(x)[0], atol=1e-10, rtol=1e-9)
    cache = model.new_cache()
    parts = [model(x[:, a:b], cache=cache, form=form)[0] for a, b in ((0, 3), (3, 4), (4, 8))]
    torch.testing.assert_close(torch.cat(parts, dim=1), model(x)[0], atol=1e-10, rtol=1e-9)


def test_unknown_mode_names_the_choices():
    with pytest.raises(ValueError, match="form must be one of 'loop', 'parallel', 'stream', 'fused', got 'fast'"):
        GPT(GPTConfig(vocab_size=5, d_model=8, n_heads=2, n_layers=1), form="fast")
    model = small_gpt("none")
    with pytest.raises(ValueError, match="form must be one of"):
        model(torch.tensor([[1, 2]]), form=True)
    with pytest.raises(ValueError, match="step form is causal only"):
        TransformerBlock(8, 2)(torch.randn(1, 3, 8), form="stream")


@pytest.mark.parametrize("positions", ENCODINGS)
def test_model_is_causal(positions):
    model = small_gpt(positions)
    x = torch.randint(0, 11, (1, 10), generator=torch.Generator().manual_seed(4))
    y = x.clone()
    y[0, 6:] = (y[0, 6:] + 1) % 11  # change the future from position 6 on
    torch.testing.assert_close(model(x)[0][:, :6], model(y)[0][:, :6])
    assert not torch.allclose(model(x)[0][:, 6:], model(y)[0][:, 6:])


def test_without_positions_a_bidirectional_block_is_order_blind_and_positions_break_that():
    torch.manual_seed(0)
    block = TransformerBlock(8, 2).double()
    x = torch.randn(1, 6, 8, dtype=torch.float64)
    perm = torch.randperm(6)
    torch.testing.assert_close(block(x)[:, perm], block(x[:, perm]))  # permutation equivariant
    rope = TransformerBlock(8, 2, rope=True).double()
    rope.load_state_dict(block.state_dict())
    assert not torch.allclose(rope(x)[:, perm], rope(x[:, perm]))


def test_gpt_trains_one_step_and_counts_its_parameters():
    model = GPT(GPTConfig(vocab_size=7, d_model=8, n_heads=2, n_layers=1, max_len=5))
    d, V = 8, 7
    per_block = 4 * (d * d + d) + (d * 4 * d + 4 * d) + (4 * d * d + d) + 2 * 2 * d
    assert sum(p.numel() for p in model.parameters()) == V * d + 5 * d + per_block + 2 * d + (d * V + V)
    x = torch.randint(0, 7, (4, 5))
    loss = nn.functional.cross_entropy(model(x)[0].reshape(-1, 7), x.reshape(-1))
    loss.backward()
    assert all(p.grad is not None and torch.isfinite(p.grad).all() for p in model.parameters())


def test_encoder_without_positions_cannot_tell_order_but_with_positions_can():
    torch.manual_seed(0)
    enc = GPT(GPTConfig(vocab_size=5, d_model=8, n_heads=2, n_layers=2, positions="none", causal=False)).double()
    ab, ba = torch.tensor([[1, 2, 3, 4]]), torch.tensor([[2, 1, 3, 4]])  # the last token is the same query
    torch.testing.assert_close(enc(ab)[0][:, -1], enc(ba)[0][:, -1])
    enc_pos = GPT(GPTConfig(vocab_size=5, d_model=8, n_heads=2, n_layers=2, positions="learned", causal=False)).double()
    assert not torch.allclose(enc_pos(ab)[0][:, -1], enc_pos(ba)[0][:, -1])
    causal = GPT(GPTConfig(vocab_size=5, d_model=8, n_heads=2, n_layers=2, positions="none")).double()
    assert not torch.allclose(causal(ab)[0][:, -1], causal(ba)[0][:, -1])  # the causal mask itself leaks order
    with pytest.raises(ValueError, match="needs a causal model"):
        enc.generate(torch.tensor([1]), 3)
    with pytest.raises(ValueError, match="needs a causal model"):
        enc(ab, cache=enc.new_cache())


def test_kv_cache_crop():
    model = small_gpt("rope")
    x = torch.randint(0, 11, (1, 8), generator=torch.Generator().manual_seed(5))
    cache = model.new_cache()
    model(x[:, :6], cache=cache)
    cache.crop(4)
    assert cache.length == 4
    torch.testing.assert_close(model(x[:, 4:], cache=cache)[0], model(x)[0][:, 4:], atol=1e-10, rtol=1e-9)
    cache.crop(4)  # the call above stored positions 4-7: back to 4
    cache.crop(4)  # to its own length: allowed, and changes nothing
    assert cache.length == 4
    torch.testing.assert_close(model(x[:, 4:], cache=cache)[0], model(x)[0][:, 4:], atol=1e-10, rtol=1e-9)
    cache.crop(0)
    assert cache.length == 0 and cache.nbytes() == 0
    with pytest.raises(ValueError, match="cannot crop"):
        cache.crop(3)


# ---------------------------------------------------------------- bad input
def test_errors():
    with pytest.raises(ValueError, match="positions must be one of"):
        GPTConfig(vocab_size=5, positions="rotary")
    with pytest.raises(ValueError, match="divisible by n_heads"):
        GPTConfig(vocab_size=5, d_model=10, n_heads=4)
    with pytest.raises(TypeError, match="GPTConfig"):
        GPT(dict(vocab_size=5))
    with pytest.raises(ValueError, match="d_head .* must be even"):
        SelfAttention(6, 2, rope=True)
    with pytest.raises(ValueError, match="not both"):
        SelfAttention(8, 2, rope=True, alibi=True)
    with pytest.raises(TypeError, match="norm_first must be a bool"):
        TransformerBlock(8, 2, norm_first="pre")
    with pytest.raises(ValueError, match="activation must be one of"):
        FeedForward(4, 8, "tanh")
    model = GPT(GPTConfig(vocab_size=5, d_model=8, n_heads=2, n_layers=1, max_len=6))
    with pytest.raises(ValueError, match=r"must lie in \[0, 5\)"):
        model(torch.tensor([[1, 5]]))
    with pytest.raises(TypeError, match="integer tensor"):
        model(torch.zeros(1, 3))
    with pytest.raises(ValueError, match="2-dimensional"):
        model(torch.tensor([1, 2]))
    with pytest.raises(ValueError, match="max_len=6"):
        model(torch.zeros(1, 7, dtype=torch.long))
    with pytest.raises(ValueError, match="learned positions stop at max_len=6"):
        model.generate(torch.tensor([1, 2, 3]), 5)
    with pytest.raises(TypeError, match="KVCache"):
        model(torch.tensor([[1, 2]]), cache=[])
    cache = model.new_cache()
    model(torch.tensor([[1, 2]]), cache=cache)
    with pytest.raises(ValueError, match="do not fit"):
        model(torch.tensor([[1], [2]]), cache=cache)
    block = TransformerBlock(8, 2)
    with pytest.raises(ValueError, match="mask is not supported together with a state or cache"):
        block(torch.randn(1, 2, 8), mask=torch.ones(2, 2, dtype=torch.bool), cache=KVCache(1).layers[0])
    with pytest.raises(ValueError, match=r"mask must be a bool tensor of shape \(T, T\)"):
        block(torch.randn(1, 3, 8), mask=torch.ones(2, 2, dtype=torch.bool))
    with pytest.raises(ValueError, match="last dimension 8"):
        block(torch.randn(1, 3, 6))
    with pytest.raises(TypeError, match="parameters' dtype"):
        block(torch.randn(1, 3, 8, dtype=torch.float64))
    with pytest.raises(ValueError, match="dropout=0.0"):
        TransformerBlock.from_torch(nn.TransformerEncoderLayer(8, 2, 16, dropout=0.1))
    with pytest.raises(TypeError, match="TransformerEncoderLayer"):
        TransformerBlock.from_torch(nn.Linear(2, 2))


def test_self_attention_repr_names_the_options_it_was_built_with():
    from seqlab.models.transformer import SelfAttention
    plain = repr(SelfAttention(8, 2))
    assert "rope" not in plain and "alibi" not in plain and "window" not in plain
    assert "rope=True" in repr(SelfAttention(8, 2, rope=True))
    assert "alibi=True" in repr(SelfAttention(8, 2, alibi=True))
