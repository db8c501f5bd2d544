"""One battery for every sequence layer (``Mixer``) and every language model (chapters 2–15).

Each layer built by ``LAYERS`` and each model of ``compare.TABLE`` must be causal (the outputs at t
do not change when later inputs do), give the same numbers step by step as in one call, continue
from its state (pieces equal the whole, final states too), give the same numbers in every form, and
refuse a state built for another width or batch with a ValueError. The linear recurrences with a
decay (gated linear attention, S4D, the selective scan, SSD, the RG-LRU) must contract at initialisation:
two different states fed the same inputs come closer. A family registered in ``seqlab.ops`` without
a layer here fails ``test_every_registered_family_has_a_layer_in_the_battery``.
"""
from __future__ import annotations

import pytest
import torch

from seqlab import compare, ops
from seqlab.models import (GRU, LSTM, RNN, HybridConfig, HybridLM, LinearAttention, LinearAttentionConfig, Mixer,
                           MixerLM, MixerLMConfig, RecurrentBlock, RecurrentLM, SelfAttention, SSMConfig, SSMLayer,
                           attention_block)
from seqlab.models.mixer import CausalConv1d
from seqlab.models.minrnn import MinRNN

D = 8  # the layers' width in the battery


def _la(**kw):
    return lambda d: LinearAttention(LinearAttentionConfig(d_model=d, n_heads=2, chunk=3, **kw))


#: name -> a function of the width d that builds the layer (input and output width d)
LAYERS = {
    "RNN": lambda d: RNN(d, d, num_layers=2),
    "RNN, ReLU": lambda d: RNN(d, d, num_layers=2, nonlinearity="relu"),
    "LSTM": lambda d: LSTM(d, d, num_layers=2),
    "GRU": lambda d: GRU(d, d, num_layers=2),
    "self-attention": lambda d: SelfAttention(d, 2, causal=True),
    "self-attention, RoPE": lambda d: SelfAttention(d, 2, rope=True, causal=True),
    "self-attention, ALiBi": lambda d: SelfAttention(d, 2, alibi=True, causal=True),
    "self-attention, window 3": lambda d: SelfAttention(d, 2, rope=True, causal=True, window=3),
    "linear attention": _la(),
    "linear attention, Taylor": _la(feature_map="taylor"),
    "gated linear attention, scalar": _la(gate="scalar"),
    "gated linear attention, channel": _la(gate="channel"),
    "delta rule": _la(delta=True),
    "S4D": lambda d: SSMLayer(SSMConfig(d_model=d, d_state=3, selective=False, chunk=3)),
    "selective scan": lambda d: SSMLayer(SSMConfig(d_model=d, d_state=3, chunk=3)),
    "SSD (Mamba-2)": lambda d: SSMLayer(SSMConfig(d_model=d, d_state=3, heads=4, chunk=3)),
    "RG-LRU block": lambda d: RecurrentBlock(HybridConfig(vocab_size=4, d_model=d, n_heads=2, chunk=3)),
    "local attention block": lambda d: attention_block(HybridConfig(vocab_size=4, d_model=d, n_heads=2), 3),
    "minGRU": lambda d: MinRNN(d, "mingru", chunk=3),
    "minLSTM": lambda d: MinRNN(d, "minlstm", chunk=3),
}
DECAYING = {"gated_linear_attention", "s4d", "selective_scan", "ssd", "rglru"}  # linear recurrences with a forget factor


def _layer(name, d=D, seed=0):
    torch.manual_seed(seed)
    layer = LAYERS[name](d).double()
    if isinstance(layer, (RNN, LSTM, GRU)):  # larger weights: a state that matters
        with torch.no_grad():
            for p in layer.parameters():
                p.mul_(2.0)
    return layer.eval()


def _x(B=2, T=11, d=D, seed=1):
    return torch.randn(B, T, d, generator=torch.Generator().manual_seed(seed), dtype=torch.float64)


def _close(a, b):
    torch.testing.assert_close(a, b, rtol=1e-9, atol=1e-10)


def test_every_registered_family_has_a_layer_in_the_battery():
    covered = {_layer(name).family for name in LAYERS} | {"rnn_relu"}  # the rnn family's nonlinearity="relu"
    assert set(ops.FAMILIES) <= covered, f"families without a layer in LAYERS: {set(ops.FAMILIES) - covered}"


@pytest.mark.parametrize("name", LAYERS)
def test_a_layer_is_a_mixer_whose_form_is_one_of_its_familys(name):
    layer = _layer(name)
    assert isinstance(layer, Mixer)
    assert layer.form in layer.forms and set(layer.forms) <= set(ops.FAMILIES[layer.family].forms)
    with pytest.raises(ValueError, match="form must be one of"):
        layer.form = "no such form"


@pytest.mark.parametrize("name", LAYERS)
def test_causal(name):
    layer, x = _layer(name), _x()
    changed = x.clone()
    changed[:, 6:] = torch.randn(2, 5, D, dtype=torch.float64)
    with torch.no_grad():
        y, y2 = layer(x)[0], layer(changed)[0]
    _close(y2[:, :6], y[:, :6])
    assert (y2[:, 6:] - y[:, 6:]).abs().max() > 1e-6  # the later outputs do read the later inputs


@pytest.mark.parametrize("name", LAYERS)
def test_step_by_step_equals_forward_and_pieces_equal_the_whole(name):
    layer, x = _layer(name), _x()
    with torch.no_grad():
        y, state = layer(x)
        s, ys = None, []
        for t in range(x.shape[1]):
            y_t, s = layer.step(x[:, t], s)
            ys.append(y_t)
        _close(torch.stack(ys, 1), y)
        _close(s, state)
        y1, s1 = layer(x[:, :4])
        y2, s2 = layer(x[:, 4:], s1)  # the state round trip
        _close(torch.cat([y1, y2], 1), y)
        _close(s2, state)
    tensors = [t for t in _flat(state) if isinstance(t, torch.Tensor)]
    assert layer.state_bytes(state) == sum(t.numel() * t.element_size() for t in tensors) > 0   # every tensor, once
    with pytest.raises(TypeError, match="state must be a tensor"):
        layer.state_bytes(None)                     # no state yet is not a state: every layer refuses it alike


def _flat(state):
    """The entries of a state, nested tuples and lists opened."""
    if isinstance(state, (tuple, list)):
        return [t for s in state for t in _flat(s)]
    return [state]


@pytest.mark.parametrize("name", LAYERS)
def test_every_form_gives_the_same_outputs(name):
    layer, x = _layer(name), _x()
    outs = {}
    with torch.no_grad():
        _, s0 = layer(x[:, :3])
        for form in layer.forms:
            layer.form = form
            outs[form] = layer(x[:, 3:], s0)
    first = next(iter(outs.values()))
    for form, (y, s) in outs.items():
        _close(y, first[0])
        _close(s, first[1])


@pytest.mark.parametrize("name", LAYERS)
def test_a_foreign_state_is_refused(name):
    layer, x = _layer(name), _x()
    with torch.no_grad():
        _, wider = _layer(name, d=2 * D)(_x(d=2 * D))
        _, other_batch = layer(_x(B=3))
        _, own = layer(x)
    for foreign in (wider, other_batch):
        with pytest.raises(ValueError):
            layer(x, foreign)
        with pytest.raises(ValueError):
            layer.step(x[:, 0], foreign)
    if not isinstance(layer, (RNN, LSTM, GRU)):  # the stacks name a wrong dtype with a TypeError
        with pytest.raises(ValueError, match="expected"):
            layer(x, _to_float(own))


def _to_float(state):
    if isinstance(state, torch.Tensor):
        return state.float()
    return tuple(_to_float(s) for s in state) if isinstance(state, tuple) else state


def _recurrent_part(state):
    """The recurrence's own state: the last entry (after a convolution's buffer), or the state itself."""
    return state[-1] if isinstance(state, tuple) else state


@pytest.mark.parametrize("name", [n for n in LAYERS if _layer(n).family in DECAYING])
def test_a_linear_recurrence_forgets_at_initialisation(name):
    """Two different states, the same inputs: h_t − h'_t = (Π a) ⊙ (h_0 − h'_0) shrinks when every |a| < 1."""
    layer = _layer(name)
    with torch.no_grad():
        _, s_a = layer(_x(seed=2))
        _, s_b = layer(3 * _x(seed=3))
        before = (_recurrent_part(s_a) - _recurrent_part(s_b)).norm()
        x = _x(T=64, seed=4)
        after = (_recurrent_part(layer(x, s_a)[1]) - _recurrent_part(layer(x, s_b)[1])).norm()
    assert before > 0 and after < 0.999 * before


def test_causal_conv_carries_its_buffer_and_reads_no_future():
    torch.manual_seed(0)
    conv = CausalConv1d(4, 3).double()
    u = _x(T=9, d=4)
    out, buffer = conv(u)
    ref = torch.nn.functional.conv1d(torch.nn.functional.pad(u.transpose(1, 2), (2, 0)), conv.weight, conv.bias,
                                     groups=4).transpose(1, 2)  # left padding only
    _close(out, ref)
    a, b1 = conv(u[:, :5])
    b, b2 = conv(u[:, 5:], b1)
    _close(torch.cat([a, b], 1), out)
    _close(b2, buffer)
    _close(buffer, u[:, -2:])


# ---------------------------------------------------------------- every language model
def _lm(arch, form="reference"):
    torch.manual_seed(0)
    return compare.make_model(arch, 11, 16, form=form).double().eval()


LMS = {**{arch: (lambda a=arch: _lm(a)) for arch in compare.ARCHS},
       **{f"MixerLM {m}": (lambda m=m: MixerLM(MixerLMConfig(vocab_size=11, mixer=m, d_model=8, n_heads=2)).double().eval())
          for m in ("softmax", "gated_linear", "s4d")},
       "HybridLM RAG": lambda: HybridLM(HybridConfig(vocab_size=11, pattern="RAG", d_model=8, n_heads=2, window=3,
                                                     chunk=3)).double().eval(),
       "RecurrentLM GRU": lambda: RecurrentLM(11, 6, 8, cell="gru", n_layers=2).double().eval()}


@pytest.mark.parametrize("name", LMS)
def test_a_language_model_is_causal_streams_and_refuses_a_foreign_state(name):
    model = LMS[name]()
    x = torch.randint(0, 11, (2, 12), generator=torch.Generator().manual_seed(1))
    changed = x.clone()
    changed[:, 7:] = (x[:, 7:] + 1) % 11
    with torch.no_grad():
        logits, state = model(x)
        _close(model(changed)[0][:, :7], logits[:, :7])
        s, steps = None, []
        for t in range(12):
            out, s = model.step(x[:, t], s)
            steps.append(out)
        _close(torch.stack(steps, 1), logits)
        a, s1 = model(x[:, :5])
        b, s2 = model(x[:, 5:], s1)
        _close(torch.cat([a, b], 1), logits)
        _, other_batch = model(x[:1])
    with pytest.raises(ValueError):
        model(x, other_batch)
    with pytest.raises(ValueError):
        model.step(x[:, 0], other_batch)


def test_multi_head_attention_checks_its_form_as_every_mixer_does():
    """One validated ``form`` (``seqlab.models.forms.HasForms``) for MultiHeadAttention and every Mixer."""
    from seqlab.models import MultiHeadAttention
    from seqlab.models.forms import HasForms
    attn = MultiHeadAttention(8, 2)
    assert isinstance(attn, HasForms) and attn.form == "parallel"
    attn.form = "fused"
    assert attn.form == "fused"
    with pytest.raises(ValueError, match="form must be one of 'loop', 'parallel', 'stream', 'fused', got 'nope'"):
        attn.form = "nope"


def test_a_state_spec_is_a_value_it_cannot_be_changed_and_equal_specs_hash_alike():
    """``Spec`` describes what a state must be; a layer hands its specs out, so no caller may alter one."""
    from dataclasses import FrozenInstanceError

    from seqlab.models.mixer import Spec
    spec = Spec((2, None, 4), torch.float32)
    with pytest.raises(FrozenInstanceError):
        spec.shape = (3, None, 4)
    assert spec == Spec((2, None, 4), torch.float32) and len({spec, Spec((2, None, 4), torch.float32)}) == 1
    assert str(spec) == "float32(2, T, 4)"


@pytest.mark.parametrize("mlp", [True, False])
def test_seqlm_is_embedding_then_pre_norm_residual_blocks_then_norm_and_head(mlp):
    """SeqLM, written out with its own modules: h = E[x]; per block h += mixer(LN₁ h), then h += MLP(LN₂ h);
    logits = head(LN h) (chapters 12–15). Step-by-step and forward share ``_blocks``, so only a second writing
    of the stack sees a wrong sign or a missing residual."""
    from seqlab.models import SeqLM
    torch.manual_seed(0)
    lm = SeqLM(11, D, [LAYERS["LSTM"](D), LAYERS["self-attention, RoPE"](D)], mlp=mlp).double()
    with torch.no_grad():  # non-trivial norms, so that a norm applied in the wrong place shows
        for p in lm.parameters():
            p.add_(0.1 * torch.randn_like(p))
    x = torch.randint(0, 11, (2, 6), generator=torch.Generator().manual_seed(1))
    h = lm.embed(x)
    for i, mixer in enumerate(lm.mixers):
        h = h + mixer(lm.norms1[i](h))[0]
        if mlp:
            h = h + lm.mlps[i](lm.norms2[i](h))
    logits, state = lm(x)
    torch.testing.assert_close(logits, lm.head(lm.norm(h)), atol=1e-12, rtol=1e-10)
    assert len(state) == 2


def test_mixer_lm_defaults_build_the_models_the_recorded_recall_grid_trained():
    """MixerLMConfig's defaults (an MLP per block among them) are those of chapter 12's recorded grid: every
    architecture and width of ``results/recall.json`` rebuilt today has the parameter count its runs recorded."""
    import json
    from pathlib import Path
    from seqlab.experiments import recall
    record = json.loads((Path(__file__).resolve().parents[2] / "results" / "recall.json").read_text())["results"]
    s = record["settings"]
    cells = {(r["arch"], r["width"], r["heads"]): r["params"] for r in record["runs"]}
    assert len(cells) >= 10
    for (arch, width, heads), params in cells.items():
        model = recall.make_model(arch, width, s["vocab"], heads, s["layers"])
        assert isinstance(model, MixerLM) and isinstance(model.config, MixerLMConfig)
        assert sum(p.numel() for p in model.parameters()) == params, (arch, width)
