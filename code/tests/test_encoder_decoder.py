"""The encoder-decoder Transformer of chapter 7 equals PyTorch's, layer by layer and as a whole.

``EncoderLayer`` / ``DecoderLayer`` copy ``nn.TransformerEncoderLayer`` / ``nn.TransformerDecoderLayer``
(``from_torch``) and ``EncoderDecoder.load_torch`` the stacks of an ``nn.Transformer``: outputs and
every gradient (inputs, memory and all parameters) agree for Post-Norm and Pre-Norm, with a causal
target mask and a source padding mask, over awkward shapes. Cross-attention equals
``nn.MultiheadAttention`` with ``key_padding_mask`` and its forms agree; greedy decoding with the
cache equals decoding without it and teacher forcing; padding and future targets change nothing
they must not. Every bad input has its error.
"""
import math
import pytest
import torch
from torch import nn

from seqlab.models import (CrossAttention, DecoderLayer, EncoderDecoder, EncoderDecoderConfig, EncoderLayer,
                           ReverseTask, causal_mask, padding_mask)

TOL = {torch.float32: dict(atol=3e-5, rtol=1e-4), torch.float64: dict(atol=1e-10, rtol=1e-9)}


def perturb_(module: nn.Module, seed: int = 0) -> nn.Module:
    """Non-trivial biases and LayerNorm parameters, so that a swapped or dropped one shows."""
    g = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for p in module.parameters():
            if p.dim() == 1:
                p.add_(0.1 * torch.randn(p.shape, generator=g, dtype=p.dtype))
    return module


def attn_grads(ours, prefix: str) -> dict:
    """Our four projections' gradients in PyTorch's names (``in_proj`` stacks W_q, W_k, W_v)."""
    return {f"{prefix}.in_proj_weight": torch.cat([ours.W_q.weight.grad, ours.W_k.weight.grad, ours.W_v.weight.grad]),
            f"{prefix}.in_proj_bias": torch.cat([ours.W_q.bias.grad, ours.W_k.bias.grad, ours.W_v.bias.grad]),
            f"{prefix}.out_proj.weight": ours.W_o.weight.grad, f"{prefix}.out_proj.bias": ours.W_o.bias.grad}


def layer_grads(ours, decoder: bool) -> dict:
    """Every parameter gradient of our layer, keyed by the PyTorch layer's parameter names."""
    if decoder:
        out = {**attn_grads(ours.self_attn, "self_attn"), **attn_grads(ours.cross_attn, "multihead_attn")}
        norms = ("norm1", "norm2", "norm3")
    else:
        out, norms = attn_grads(ours.attn, "self_attn"), ("norm1", "norm2")
    parts = [("linear1", ours.ffn.linear1), ("linear2", ours.ffn.linear2)] + [(n, getattr(ours, n)) for n in norms]
    for name, part in parts:
        out[f"{name}.weight"], out[f"{name}.bias"] = part.weight.grad, part.bias.grad
    return out


def assert_grads_equal(mine: dict, ref: nn.Module, dtype, prefix: str = "", nonzero: bool = True):
    theirs = {name: p.grad for name, p in ref.named_parameters()}
    assert sorted(mine) == sorted(theirs)
    for name in theirs:
        torch.testing.assert_close(mine[name], theirs[name], **TOL[dtype], msg=lambda m: f"gradient of {prefix}{name}: {m}")
        assert not nonzero or theirs[name].abs().sum() > 0, name  # (one key: the softmax is constant)


SHAPES = [  # B, T, S, d, H, d_ff, source lengths (None: no padding)
    (2, 5, 7, 8, 2, 12, [7, 3]),  # d_ff not a multiple of d, one source padded
    (1, 1, 1, 4, 1, 16, None),  # B = 1, T = 1, S = 1, one head
    (3, 6, 4, 12, 3, 20, [1, 4, 2]),  # T > S, a source of length 1
]


@pytest.mark.parametrize("norm_first", [False, True])
@pytest.mark.parametrize("activation", ["relu", "gelu"])
@pytest.mark.parametrize("dtype", [torch.float32, torch.float64])
@pytest.mark.parametrize("B, T, S, d, H, d_ff, lengths", SHAPES)
def test_encoder_layer_equals_torch(norm_first, activation, dtype, B, T, S, d, H, d_ff, lengths):
    torch.manual_seed(0)
    ref = nn.TransformerEncoderLayer(d, H, d_ff, dropout=0.0, activation=activation, batch_first=True,
                                     norm_first=norm_first, layer_norm_eps=0.1).to(dtype).train()
    perturb_(ref)
    ours = EncoderLayer.from_torch(ref)
    assert isinstance(ours, EncoderLayer) and ours.norm_first is norm_first and ours.norm1.eps == 0.1
    mask = None if lengths is None else padding_mask(lengths, S)  # (B, S), True = real
    x = torch.randn(B, S, d, dtype=dtype)
    x1, x2 = x.clone().requires_grad_(), x.clone().requires_grad_()
    y_ref = ref(x1, src_key_padding_mask=None if mask is None else ~mask)  # PyTorch: True = padding
    y = ours(x2, mask)
    torch.testing.assert_close(y, y_ref, **TOL[dtype])
    w = torch.randn_like(y)
    (y_ref * w).sum().backward()
    (y * w).sum().backward()
    torch.testing.assert_close(x2.grad, x1.grad, **TOL[dtype])
    assert_grads_equal(layer_grads(ours, decoder=False), ref, dtype, nonzero=S > 1)


@pytest.mark.parametrize("norm_first", [False, True])
@pytest.mark.parametrize("activation", ["relu", "gelu"])
@pytest.mark.parametrize("dtype", [torch.float32, torch.float64])
@pytest.mark.parametrize("B, T, S, d, H, d_ff, lengths", SHAPES)
def test_decoder_layer_equals_torch(norm_first, activation, dtype, B, T, S, d, H, d_ff, lengths):
    torch.manual_seed(1)
    ref = nn.TransformerDecoderLayer(d, H, d_ff, dropout=0.0, activation=activation, batch_first=True,
                                     norm_first=norm_first, layer_norm_eps=0.1).to(dtype).train()
    perturb_(ref)
    ours = DecoderLayer.from_torch(ref)
    assert ours.norm_first is norm_first and ours.ffn.activation == activation and ours.norm3.eps == 0.1
    mask = None if lengths is None else padding_mask(lengths, S)
    y0, z0 = torch.randn(B, T, d, dtype=dtype), torch.randn(B, S, d, dtype=dtype)
    y1, z1 = y0.clone().requires_grad_(), z0.clone().requires_grad_()
    y2, z2 = y0.clone().requires_grad_(), z0.clone().requires_grad_()
    out_ref = ref(y1, z1, tgt_mask=~causal_mask(T), memory_key_padding_mask=None if mask is None else ~mask)
    out = ours(y2, z2, mask)
    torch.testing.assert_close(out, out_ref, **TOL[dtype])
    w = torch.randn_like(out)
    (out_ref * w).sum().backward()
    (out * w).sum().backward()
    torch.testing.assert_close(y2.grad, y1.grad, **TOL[dtype])
    torch.testing.assert_close(z2.grad, z1.grad, **TOL[dtype])  # the memory's gradient, through cross-attention
    assert_grads_equal(layer_grads(ours, decoder=True), ref, dtype, nonzero=S > 1)
    if mask is not None:  # padded memory positions get no gradient at all
        assert (z2.grad[~mask] == 0).all()
    assert ours.cross_weights.shape == (B, H, T, S) and ours.self_weights.shape == (B, H, T, T)


def torch_transformer(d, H, N, d_ff, norm_first, dtype, seed=0):
    """``nn.Transformer``; for Post-Norm without the final norms (the layers already end normalised)."""
    torch.manual_seed(seed)
    kw = dict(dropout=0.0, batch_first=True, norm_first=norm_first)
    if norm_first:
        model = nn.Transformer(d, H, N, N, d_ff, **kw)
    else:
        enc = nn.TransformerEncoder(nn.TransformerEncoderLayer(d, H, d_ff, **kw), N, norm=None, enable_nested_tensor=False)
        dec = nn.TransformerDecoder(nn.TransformerDecoderLayer(d, H, d_ff, **kw), N, norm=None)
        model = nn.Transformer(d, H, custom_encoder=enc, custom_decoder=dec, **kw)
    return perturb_(model.to(dtype).train(), seed)


@pytest.mark.filterwarnings("ignore:enable_nested_tensor is True")
@pytest.mark.parametrize("norm_first", [False, True])
@pytest.mark.parametrize("dtype", [torch.float32, torch.float64])
def test_whole_stack_equals_nn_transformer(norm_first, dtype):
    B, S, T, d, H, N, d_ff, V = 3, 6, 5, 12, 3, 2, 20, 9
    ref = torch_transformer(d, H, N, d_ff, norm_first, dtype)
    cfg = EncoderDecoderConfig(V, V, d_model=d, n_heads=H, n_layers=N, d_ff=d_ff, norm_first=norm_first)
    ours = EncoderDecoder(cfg).to(dtype).load_torch(ref)
    mask = padding_mask([6, 2, 4], S)
    x0, y0 = torch.randn(B, S, d, dtype=dtype), torch.randn(B, T, d, dtype=dtype)
    x1, y1, x2, y2 = (t.clone().requires_grad_() for t in (x0, y0, x0, y0))
    out_ref = ref(x1, y1, tgt_mask=~causal_mask(T), src_key_padding_mask=~mask, memory_key_padding_mask=~mask)
    out = ours.decode_embedded(y2, ours.encode_embedded(x2, mask), mask)
    torch.testing.assert_close(out, out_ref, **TOL[dtype])
    w = torch.randn_like(out)
    (out_ref * w).sum().backward()
    (out * w).sum().backward()
    torch.testing.assert_close(x2.grad, x1.grad, **TOL[dtype])
    torch.testing.assert_close(y2.grad, y1.grad, **TOL[dtype])
    for i in range(N):
        assert_grads_equal(layer_grads(ours.encoder_layers[i], False), ref.encoder.layers[i], dtype, f"encoder {i} ")
        assert_grads_equal(layer_grads(ours.decoder_layers[i], True), ref.decoder.layers[i], dtype, f"decoder {i} ")
    if norm_first:
        for mine, theirs in ((ours.encoder_norm, ref.encoder.norm), (ours.decoder_norm, ref.decoder.norm)):
            torch.testing.assert_close(mine.weight.grad, theirs.weight.grad, **TOL[dtype])
            torch.testing.assert_close(mine.bias.grad, theirs.bias.grad, **TOL[dtype])


def test_cross_attention_equals_multihead_attention_with_a_key_padding_mask():
    torch.manual_seed(0)
    B, T, S, d, H = 3, 4, 6, 12, 3
    ref = nn.MultiheadAttention(d, H, batch_first=True).double()
    perturb_(ref)
    ours = CrossAttention(d, H).double()
    copied = CrossAttention.from_torch(ref)  # MultiHeadAttention's loader
    ours.load_state_dict(copied.state_dict())
    mask = padding_mask([6, 1, 3], S)
    y, z = torch.randn(B, T, d, dtype=torch.float64), torch.randn(B, S, d, dtype=torch.float64)
    out_ref, w_ref = ref(y, z, z, key_padding_mask=~mask, average_attn_weights=False)
    out, w = ours(y, z, mask)
    torch.testing.assert_close(out, out_ref, **TOL[torch.float64])
    torch.testing.assert_close(w, w_ref, **TOL[torch.float64])
    assert (w[1, :, :, 1:] == 0).all() and torch.allclose(w.sum(-1), torch.ones(B, H, T, dtype=torch.float64))


@pytest.mark.parametrize("form", ["loop", "fused"])
def test_cross_attention_forms_agree_with_the_parallel_one(form):
    """Cross-attention is the softmax-attention family with T_q != T_k and no causal mask: every form holds it."""
    torch.manual_seed(0)
    attn = CrossAttention(8, 2).double()
    mask = padding_mask([5, 2], 5)
    y = torch.randn(2, 3, 8, dtype=torch.float64, requires_grad=True)
    z = torch.randn(2, 5, 8, dtype=torch.float64, requires_grad=True)
    out, w = attn(y, z, mask)
    gy, gz = torch.autograd.grad(out.square().sum(), (y, z))
    out2, w2 = attn(y, z, mask, form=form)
    gy2, gz2 = torch.autograd.grad(out2.square().sum(), (y, z))
    for a, b in ((out, out2), (gy, gy2), (gz, gz2)):
        torch.testing.assert_close(a, b, atol=1e-12, rtol=1e-10)
    if form == "loop":
        torch.testing.assert_close(w, w2, atol=1e-12, rtol=1e-10)
    else:
        assert w2 is None


def small_model(norm_first=False, positions="sinusoidal", V=9, seed=0):
    torch.manual_seed(seed)
    cfg = EncoderDecoderConfig(V, V + 2, d_model=16, n_heads=2, n_layers=2, d_ff=24, norm_first=norm_first,
                               positions=positions, max_len=32)
    return EncoderDecoder(cfg).double().eval()


@pytest.mark.parametrize("norm_first", [False, True])
@pytest.mark.parametrize("positions", ["sinusoidal", "learned"])
def test_greedy_decode_with_cache_equals_without_and_teacher_forcing(norm_first, positions):
    model = small_model(norm_first, positions)
    src = torch.randint(0, 9, (3, 7), generator=torch.Generator().manual_seed(1))
    lengths = torch.tensor([7, 4, 1])
    ids, w = model.greedy_decode(src, 6, bos=10, src_lengths=lengths)
    ids2, w2 = model.greedy_decode(src, 6, bos=10, src_lengths=lengths, use_cache=False)
    assert torch.equal(ids, ids2) and ids.shape == (3, 6)
    torch.testing.assert_close(w, w2, atol=1e-12, rtol=1e-10)
    tgt_in = torch.cat([torch.full((3, 1), 10), ids[:, :-1]], dim=1)
    logits, w_tf = model(src, tgt_in, lengths)
    assert torch.equal(logits.argmax(-1), ids)
    torch.testing.assert_close(w, w_tf, atol=1e-12, rtol=1e-10)
    assert w.shape == (3, 2, 2, 6, 7) and (w[2, ..., 1:] == 0).all()  # (B, N, H, T, S); padding gets weight 0


def test_padding_and_the_future_change_nothing_they_must_not():
    model = small_model()
    g = torch.Generator().manual_seed(0)
    src, tgt = torch.randint(0, 9, (2, 6), generator=g), torch.randint(0, 11, (2, 5), generator=g)
    lengths = torch.tensor([6, 3])
    logits, _ = model(src, tgt, lengths)
    src2 = src.clone()
    src2[1, 3:] = (src2[1, 3:] + 1) % 9  # other tokens at the padded positions
    tgt2 = tgt.clone()
    tgt2[:, 3:] = (tgt2[:, 3:] + 1) % 11  # another future
    logits2, _ = model(src2, tgt2, lengths)
    torch.testing.assert_close(logits2[:, :3], logits[:, :3], atol=1e-12, rtol=1e-10)
    assert not torch.allclose(logits2[:, 3:], logits[:, 3:])  # (the future itself did change)
    logits3, _ = model(src2, tgt, None)  # without the mask, the padded tokens are read
    assert not torch.allclose(logits3[1], logits[1])


def test_trains_on_reversal_a_little():
    """A few steps on chapter 5's task lower the loss (the model and the task fit together)."""
    torch.manual_seed(0)
    task = ReverseTask(3, 6, vocab=5)
    model = EncoderDecoder(EncoderDecoderConfig(task.n_tokens, task.n_tokens, d_model=16, n_heads=2, n_layers=1))
    opt = torch.optim.Adam(model.parameters(), lr=3e-3)
    g = torch.Generator().manual_seed(0)
    losses = []
    for _ in range(30):
        src, tgt_in, tgt_out, lengths = task.sample(32, generator=g)
        loss = nn.functional.cross_entropy(model(src, tgt_in, lengths)[0].flatten(0, 1), tgt_out.flatten(), ignore_index=-100)
        opt.zero_grad()
        loss.backward()
        opt.step()
        losses.append(loss.item())
    assert sum(losses[-5:]) / 5 < sum(losses[:5]) / 5 - 0.3


def test_errors():
    model = small_model()
    src, tgt = torch.zeros(2, 4, dtype=torch.long), torch.zeros(2, 3, dtype=torch.long)
    with pytest.raises(TypeError, match="EncoderDecoderConfig"):
        EncoderDecoder(dict(src_vocab=5))
    with pytest.raises(ValueError, match="divisible by n_heads"):
        EncoderDecoderConfig(5, 5, d_model=10, n_heads=3)
    with pytest.raises(ValueError, match="positions must be one of 'sinusoidal', 'learned', got 'rope'"):
        EncoderDecoderConfig(5, 5, positions="rope")
    with pytest.raises(TypeError, match="norm_first must be a bool"):
        EncoderDecoderConfig(5, 5, norm_first=1)
    with pytest.raises(ValueError, match="src_lengths must have shape"):
        model(src, tgt, torch.tensor([4]))
    with pytest.raises(ValueError, match=r"lengths must lie in \[1, T=4\]"):
        model(src, tgt, torch.tensor([4, 0]))
    with pytest.raises(ValueError, match="same batch size"):
        model(src, tgt[:1])
    with pytest.raises(ValueError, match="tgt_in"):
        model(src, tgt + 11)
    with pytest.raises(ValueError, match="bos must be an int"):
        model.greedy_decode(src, 3, bos=11)
    with pytest.raises(TypeError, match="use_cache must be a bool"):
        model.greedy_decode(src, 3, bos=1, use_cache="yes")
    attn = CrossAttention(8, 2)
    y, z = torch.randn(2, 3, 8), torch.randn(2, 5, 8)
    with pytest.raises(ValueError, match="form must be 'parallel', 'loop' or 'fused', got 'stream'"):
        attn(y, z, form="stream")
    with pytest.raises(ValueError, match="form must be one of"):
        CrossAttention(8, 2, form="fast")
    with pytest.raises(ValueError, match=r"shape \(B, S\) = \(2, 5\), got shape \(2, 4\)"):
        attn(y, z, torch.ones(2, 4, dtype=torch.bool))
    with pytest.raises(TypeError, match="bool tensor"):
        attn(y, z, torch.ones(2, 5))
    with pytest.raises(ValueError, match="row 1 allows no position"):
        attn(y, z, torch.tensor([[True] * 5, [False] * 5]))
    with pytest.raises(ValueError, match="same batch size"):
        attn(y, z[:1])
    with pytest.raises(ValueError, match="last dimension"):
        attn(y, torch.randn(2, 5, 6))
    with pytest.raises(TypeError, match="dtype"):
        attn(y, z.double())
    layer = DecoderLayer(8, 2)
    with pytest.raises(TypeError, match="DecoderLayerCache"):
        layer(y, z, cache=object())
    with pytest.raises(TypeError, match="TransformerDecoderLayer"):
        DecoderLayer.from_torch(nn.TransformerEncoderLayer(8, 2))
    with pytest.raises(ValueError, match="dropout=0.0"):
        DecoderLayer.from_torch(nn.TransformerDecoderLayer(8, 2, 16, dropout=0.1))
    with pytest.raises(ValueError, match="n_layers=2 in each stack"):
        model.load_torch(nn.Transformer(16, 2, 1, 1, 24, dropout=0.0, batch_first=True))
    with pytest.raises(ValueError, match="final norms must exist exactly for Pre-Norm"):
        model.load_torch(nn.Transformer(16, 2, 2, 2, 24, dropout=0.0, batch_first=True))
    with pytest.raises(TypeError, match="nn.Transformer"):
        model.load_torch(nn.Linear(2, 2))
    with pytest.raises(ValueError, match="bool tensor|shape"):
        EncoderLayer(8, 2)(torch.randn(2, 5, 8), torch.ones(5, dtype=torch.bool))


def test_the_experiment_runs_at_the_tiny_scale_with_matched_sizes():
    from seqlab import experiments
    from seqlab.experiments import encoder_decoder as ed

    record = experiments.run("encoder_decoder", scale="tiny", seeds=[0])
    runs = record["results"]["runs"]
    tiny = ed.SETTINGS["tiny"]
    assert [(r["lr"], r["warmup"]) for r in runs] == [(lr, 0) for lr in tiny["lrs"]] + [
        (tiny["lr"], w) for w in tiny["warmups"] if w]                          # the grid at a constant rate, then the warm-up
    r = runs[0]
    gru, tf = r["params"]["GRU + attention"], r["params"]["Transformer"]
    per_unit = 2 * ed.SETTINGS["tiny"]["n_layers"] * (2 * ed.SETTINGS["tiny"]["d_model"] + 1)  # parameters per unit of d_ff
    assert abs(tf - gru) <= per_unit / 2 + 1  # the closest d_ff
    for name in ed.NAMES:
        assert math.isfinite(r["loss_last50"][name]) and r["step_ms"][name] > 0
        for L in ed.SETTINGS["tiny"]["lengths"]:
            assert 0 <= r["by_length"][name][str(L)]["accuracy"] <= 1
    assert "layer" in r["by_length"]["Transformer"]["3"] and "aligned" in r["by_length"]["GRU + attention"]["3"]
    assert 0 <= r["val"]["Transformer"] <= 1 and math.isfinite(r["loss_first_half"]["GRU + attention"])
    best = ed.best_runs(runs, 0)                                                # each model at its best validation rate
    for name in ed.NAMES:
        top = max(tiny["lrs"], key=lambda lr: next(x["val"][name] for x in runs if x["lr"] == lr and x["warmup"] == 0))
        assert [x["lr"] for x in best[name]] == [top] and best[name][0]["bracketed"] is False   # two rates bracket nothing
    assert "summary_lines" not in record["results"]                             # data only; summarize renders it
    assert len(experiments.summarize(record).splitlines()) == 2 + 2 * len(ed.SETTINGS["tiny"]["warmups"])


def test_head_alignment_reads_each_head_and_signs_the_misses():
    """aligned/near per (layer, head); offsets: the signed misses of the best layer's heads-averaged weights."""
    from seqlab.experiments import encoder_decoder as ed
    B, T, S = 2, 3, 4
    align = torch.tensor([[2, 1, 0], [2, 1, 0]])

    def weights(exact, late):                                   # head 0 on the right position, head 1 one later
        w = torch.zeros(B, 1, 2, T, S)
        for i in range(T):
            w[:, 0, 0, i, align[0, i]] = exact
            w[:, 0, 1, i, align[0, i] + 1] = late
        return w

    out = ed.head_alignment(weights(1.0, 0.9), align)
    assert out["aligned"] == [[1.0, 0.0]] and out["near"] == [[1.0, 1.0]] and out["layer"] == 0
    assert out["offsets"] == {}                                 # the average still peaks on the right position
    out = ed.head_alignment(weights(0.9, 1.0), align)
    assert out["aligned"] == [[1.0, 0.0]] and out["offsets"] == {1: 1.0}   # now every averaged miss is one later


def test_head_alignment_counts_near_within_one_position_only():
    """``near`` is |argmax - right position| <= 1: a head one off is near, a head two off (either side) is not."""
    from seqlab.experiments import encoder_decoder as ed
    B, T, S = 2, 3, 7
    align = torch.tensor([[4, 3, 2], [4, 3, 2]])
    w = torch.zeros(B, 1, 5, T, S)
    for h, shift in enumerate((0, 1, -1, 2, -2)):               # each head peaks `shift` positions from the right one
        for i in range(T):
            w[:, 0, h, i, align[0, i] + shift] = 1.0
    out = ed.head_alignment(w, align)
    assert out["aligned"] == [[1.0, 0.0, 0.0, 0.0, 0.0]]
    assert out["near"] == [[1.0, 1.0, 1.0, 0.0, 0.0]]


def test_embeddings_start_at_n_0_1_over_d_so_that_the_sqrt_d_scale_gives_unit_size():
    """The class promises embeddings drawn from N(0, 1/d): times √d they are of unit size, like the positions."""
    torch.manual_seed(0)
    d = 64
    model = EncoderDecoder(EncoderDecoderConfig(src_vocab=40, tgt_vocab=40, d_model=d, n_heads=4, n_layers=1))
    for e in (model.src_embed, model.tgt_embed):
        sd = e.weight.std().item()   # 2,560 draws: the sample sd is within 5% of sigma with room to spare (its SE is 1.4%)
        assert abs(sd * d ** 0.5 - 1) < 0.05, sd


@pytest.mark.parametrize("n_layers", [1, 2])
def test_decoder_cache_length_counts_the_target_tokens_fed(n_layers):
    """``DecoderCache.length``: the target tokens its self-attention caches hold, whatever the depth (chapter 7)."""
    torch.manual_seed(0)
    cfg = EncoderDecoderConfig(9, 11, d_model=16, n_heads=2, n_layers=n_layers, d_ff=24, max_len=32)
    model = EncoderDecoder(cfg).double().eval()
    memory = model.encode_embedded(torch.randn(1, 5, 16, dtype=torch.float64))
    cache = model.new_cache()
    assert cache.length == 0
    model.decode_embedded(torch.randn(1, 3, 16, dtype=torch.float64), memory, cache=cache)
    assert cache.length == 3
    model.decode_embedded(torch.randn(1, 1, 16, dtype=torch.float64), memory, cache=cache)
    assert cache.length == 4


def test_the_feed_forward_width_defaults_to_four_times_d_model_in_every_layer():
    """d_ff = None means the original Transformer's 4 d_model, in the encoder's and the decoder's layers alike."""
    assert DecoderLayer(8, 2).ffn.linear1.out_features == 32 == EncoderLayer(8, 2).ffn.linear1.out_features
    assert DecoderLayer(8, 2, d_ff=12).ffn.linear1.out_features == 12
    model = EncoderDecoder(EncoderDecoderConfig(src_vocab=7, tgt_vocab=9, d_model=8, n_heads=2, n_layers=1))
    widths = {m.linear1.out_features for m in model.modules() if hasattr(m, "linear1") and hasattr(m, "linear2")}
    assert widths == {32}


def test_the_default_config_is_the_small_model_its_docstring_names():
    """d_model 64, 4 heads, 2 layers on each side, d_ff = 4 d_model, Post-Norm (``EncoderDecoderConfig``'s docstring)."""
    model = EncoderDecoder(EncoderDecoderConfig(src_vocab=7, tgt_vocab=9))
    assert len(model.encoder_layers) == len(model.decoder_layers) == 2
    layer = model.decoder_layers[0]
    assert layer.self_attn.n_heads == 4 and layer.ffn.linear1.in_features == 64 and layer.ffn.linear1.out_features == 256
    assert layer.norm_first is False
