"""Tests for code computed one way only, each written for a survivor of a mutation run (issue 23, §7).

Every test checks a quantity against its definition, by hand, where the package has no second
implementation to compare with.
"""
from __future__ import annotations

import pytest
import torch
from torch import nn

from seqlab.experiments import longrange
from seqlab.experiments.ssm import norm_change
from seqlab.models import MultiHeadAttention, SSMConfig, SSMLayer


def test_multi_head_attention_has_biases_by_default_like_pytorchs():
    ours, theirs = MultiHeadAttention(8, 2), nn.MultiheadAttention(8, 2)
    assert all(getattr(ours, w).bias is not None for w in ("W_q", "W_k", "W_v", "W_o"))
    assert theirs.in_proj_bias is not None                     # PyTorch's default is bias=True as well
    assert all(getattr(MultiHeadAttention(8, 2, bias=False), w).bias is None for w in ("W_q", "W_k", "W_v", "W_o"))


@pytest.mark.parametrize("selective", [True, False])
def test_ssm_state_numel_counts_the_state_the_layer_returns(selective):
    config = SSMConfig(d_model=8, d_state=4, selective=selective)
    layer = SSMLayer(config)
    _, state = layer(torch.randn(2, 5, 8))
    parts = state if isinstance(state, (tuple, list)) else (state,)
    # a complex number (S4D's state) is two real numbers
    numel = sum(p.numel() * (2 if p.is_complex() else 1) for p in parts if isinstance(p, torch.Tensor))
    assert config.state_numel() * 2 == numel                     # per sequence, batch of 2


def test_norm_change_is_the_step_to_step_change_of_the_norm_over_its_mean():
    norms = torch.tensor([[1.0, 3.0, 2.0], [2.0, 2.0, 8.0]])
    mean = norms.mean()                                          # 3.0
    want = torch.tensor([[1.0, 2.0, 1.0], [2.0, 0.0, 6.0]]) / mean   # |‖h_t‖ − ‖h_{t−1}‖|, ‖h_0‖ = 0
    assert torch.allclose(norm_change(norms), want)
    with pytest.raises(ValueError):
        norm_change(torch.ones(3))


def test_a_long_range_run_reports_its_last_validation_accuracy(monkeypatch):
    from seqlab.train import History

    def fake_train(model, batches, **kw):                      # a run whose validation curve rises: 0.2, 0.5, 0.7
        return History(loss=[1.0] * 3, eval_step=[1, 2, 3], eval={"val_accuracy": [0.2, 0.5, 0.7]})

    monkeypatch.setattr(longrange, "train", fake_train)
    r = longrange.train_one("lag", "RNN", 1e-2, task_options=dict(lag=4, vocab=4), params=400, steps=3, batch=4,
                            eval_batch=16, eval_every=1, seed=0)
    assert r["val_accuracy"] == 0.7 and r["curve"] == {"step": [1, 2, 3], "val_accuracy": [0.2, 0.5, 0.7]}
    assert r["steps"] == 3


def test_the_encoder_decoder_takes_a_one_token_source():
    """A source sentence of one token is a sentence: the encoder must accept it (and the decoder a one-token prefix)."""
    from seqlab.models import EncoderDecoder, EncoderDecoderConfig
    torch.manual_seed(0)
    model = EncoderDecoder(EncoderDecoderConfig(src_vocab=7, tgt_vocab=5, d_model=8, n_heads=2, n_layers=1))
    out = model(torch.tensor([[3], [1]]), torch.tensor([[0], [2]]))
    logits = out[0] if isinstance(out, tuple) else out
    assert logits.shape == (2, 1, 5) and torch.isfinite(logits).all()


def test_a_logged_run_is_found_again_whatever_the_order_of_its_configurations_keys(tmp_path):
    """``runlog.map_logged`` keys each run by its configuration; two dicts with the same items are the same run."""
    from seqlab.experiments import runlog
    calls = []

    def fn(config):
        calls.append(config)
        return {"value": config["a"] * 10 + config["b"]}

    path = tmp_path / "log.jsonl"
    first = runlog.map_logged(fn, [{"a": 1, "b": 2}], path=path, settings={"s": 1})
    again = runlog.map_logged(fn, [{"b": 2, "a": 1}], path=path, settings={"s": 1})
    assert first == again == [{"value": 12}] and len(calls) == 1


def test_crossing_finds_where_two_power_laws_meet():
    """N^(-1/2) = X N^(-1/4) at N = X^(-4): with X = 10^(-1.5), at N = 10^6 exactly (chapter 10's crossing)."""
    from seqlab.experiments import scaling
    fit_a, fit_b = dict(a=1.0, alpha=0.5, c=0.0), dict(a=10 ** -1.5, alpha=0.25, c=0.0)
    assert scaling.crossing(fit_a, fit_b) == pytest.approx(1e6, rel=1e-9)
    assert scaling.crossing(fit_a, dict(fit_a, c=1.0)) is None                     # parallel laws never meet


def test_a_scaling_runs_clock_counts_only_training(monkeypatch):
    """The loss-against-time curve starts its clock with training and leaves the evaluations' time out: on one
    thread its wall-clock seconds are never fewer than the CPU seconds it counts (the CPU cannot run longer than
    the clock), they rise, and the last stays below the wall-clock time of the whole call (chapter 10)."""
    import time
    from seqlab.data import CharCorpus
    from seqlab.experiments import scaling
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        start = time.perf_counter()
        r = scaling.train_one("transformer", 16, 1e-3, corpus=CharCorpus(), steps=4, batch=2, context=8, layers=1,
                              windows=2, tune_windows=2, curve_every=1, curve_windows=2)
        wall = time.perf_counter() - start
    finally:
        torch.set_num_threads(threads)
    seconds, cpu = [row[1] for row in r["curve"]], [row[3] for row in r["curve"]]
    assert len(seconds) == 4 and seconds == sorted(seconds) and cpu == sorted(cpu) and seconds[-1] < wall
    assert all(s >= 0.95 * c - 0.01 for s, c in zip(seconds, cpu)), (seconds, cpu)
    assert r["seconds"] >= 0.95 * r["cpu_seconds"] - 0.01, (r["seconds"], r["cpu_seconds"])


@pytest.mark.parametrize("hidden", [4, 37])
def test_matched_hidden_inverts_the_lstm_parameter_count(hidden):
    """The LSTM control's state size is chosen by its parameter count: a count made by size h gives back h,
    down to the smallest size searched (chapter 11)."""
    from seqlab.experiments import induction
    from seqlab.measure import count_parameters
    n = count_parameters(induction.lstm_model(hidden, vocab=16, d_embed=8))
    assert induction.matched_hidden(n, vocab=16, d_embed=8) == hidden


def test_every_family_is_registered_under_the_chapter_its_loop_names():
    """The registry's chapter of a family is the chapter its reference form's docstring says introduces it."""
    import re
    from seqlab.ops.registry import FAMILIES
    for name, family in FAMILIES.items():
        doc = family.forms[family.reference].__doc__ or ""
        chapters = [int(c) for c in re.findall(r"chapter (\d+)", doc)]
        assert chapters and chapters[0] == family.chapter, (name, family.chapter, chapters)


def test_the_row_lstm_sets_the_forget_gate_bias_and_only_it():
    """PyTorch orders an LSTM's gates i, f, g, o: the forget gate's bias is the second quarter (chapters 4, 15)."""
    from seqlab.experiments.longrange import RowLSTM
    torch.manual_seed(0)
    d = 6
    model = RowLSTM(9, d, 3, forget_bias=2.5)
    for name, b in model.lstm.named_parameters():
        if name.startswith("bias_ih"):
            assert (b[d:2 * d] == 2.5).all() and (b[:d].abs() <= 1 / d ** 0.5).all() and (b[2 * d:].abs() <= 1 / d ** 0.5).all()


def test_train_takes_its_options_by_keyword_only():
    """``train(model, batches, steps=...)``: a positional option would silently bind to the wrong one."""
    from seqlab.train import train
    model = nn.Linear(2, 2)
    with pytest.raises(TypeError):
        train(model, lambda: (torch.zeros(1, 2), torch.zeros(1, dtype=torch.long)), 3)


@pytest.mark.parametrize("hidden", [40, 41])
def test_lstm_matching_picks_the_nearer_of_the_two_sizes_around_the_count(hidden):
    """A count one above size h - 1's is nearest to h - 1; one below size h's, to h (chapter 7's size matching)."""
    from seqlab.experiments.attention import lstm_matching
    from seqlab.measure import count_parameters
    from seqlab.models import RecurrentLM
    size = lambda h: count_parameters(RecurrentLM(11, 8, h, cell="lstm", form="fused"))
    assert lstm_matching(size(hidden - 1) + 1, 11, 8) == hidden - 1
    assert lstm_matching(size(hidden) - 1, 11, 8) == hidden


@pytest.mark.parametrize("cell", ["rnn", "lstm", "gru", "RNNCell", "LSTMCell", "GRUCell"])
def test_our_recurrent_layers_start_like_pytorchs(cell):
    """Every weight and bias uniform in [-1/sqrt(H), 1/sqrt(H)], as PyTorch's nn.RNN/LSTM/GRU: inside the bound,
    both signs, spread like the uniform (standard deviation bound/sqrt(3)) (chapters 2 and 4)."""
    from seqlab import models
    H = 32
    torch.manual_seed(0)
    layer = getattr(models, cell.upper() if cell.islower() else cell)(16, H)    # a stack, or one cell on its own
    bound = 1 / H ** 0.5
    for name, p in layer.named_parameters():                  # (no forget_bias / update_bias given: the defaults)
        assert p.abs().max() <= bound, name
        assert abs(p.std().item() - bound / 3 ** 0.5) < 0.25 * bound / 3 ** 0.5, name
        assert p.min() < 0 < p.max(), name


def test_beyond_reach_is_decided_at_the_receptive_fields_edge():
    """The nearest pair token sits gap + 1 positions before the first query: out of reach exactly when gap + 1 exceeds
    the receptive field L(W + k − 2) of the local stack (chapter 14)."""
    from seqlab.data import GappedRecall
    from seqlab.experiments.hybrid import beyond_reach, receptive_field
    W = 4
    reach = receptive_field("AA", W, 3)
    assert reach == 2 * (W + 1)
    task = lambda gap: GappedRecall(n_pairs=2, gap=gap, n_queries=2, vocab=16)
    assert beyond_reach(task(reach), "AA", W) and not beyond_reach(task(reach - 1), "AA", W)
    assert not beyond_reach(task(100), "GA", W)                                  # a global layer reaches everything


def test_short_conv_refuses_a_state_of_the_wrong_structure_by_name():
    """A ShortConv's state is (buffer, the inner mixer's state): a tuple of another length is refused with the
    message that names the expected structure, not an unpacking error (chapter 14)."""
    from seqlab.models import SelfAttention
    from seqlab.models.mixer import CausalConv1d, ShortConv
    layer = ShortConv(CausalConv1d(8, 3), SelfAttention(8, 2, causal=True))
    x = torch.randn(2, 5, 8)
    _, state = layer(x)
    layer(x, state)                                                                 # its own state is taken
    with pytest.raises(ValueError, match="does not belong to this layer"):
        layer(x, (*state, state[0]))


def test_cross_attention_needs_a_memory_of_at_least_one_position():
    from seqlab.models.encoder_decoder import CrossAttention
    attn = CrossAttention(8, 2)
    K, V = attn.project_memory(torch.randn(2, 2, 8))                                # two positions: fine
    assert K.shape == V.shape == (2, 2, 2, 4)
    with pytest.raises(ValueError, match="at least one position"):
        attn.project_memory(torch.randn(2, 0, 8))


@pytest.mark.parametrize("gate", ["scalar", "channel"])
def test_the_gated_layer_starts_with_the_decay_its_docstring_promises(gate):
    """alpha = sigmoid(W x + 3)^(1/16): with nothing written (v = 0) and W = 0, one step scales the state by
    sigmoid(3)^(1/16) = 0.997, a long memory at the start (chapter 12)."""
    from seqlab.models.linear_attention import LinearAttention, LinearAttentionConfig
    torch.manual_seed(0)
    layer = LinearAttention(LinearAttentionConfig(d_model=8, n_heads=2, gate=gate, form="loop"))
    with torch.no_grad():
        layer.W_v.weight.zero_()
        layer.W_alpha.weight.zero_()
    c = layer.config
    S0 = torch.randn(3 * c.n_heads, c.d_phi, c.d_head)
    _, S1 = layer(torch.randn(3, 1, 8), S0)
    torch.testing.assert_close(S1, S0 * torch.sigmoid(torch.tensor(3.0)) ** (1 / 16))


def test_a_scaling_runs_flops_are_its_tokens_times_the_flops_per_token():
    """C = (3 x the forward's FLOPs per token) x tokens trained; the 6N estimate likewise (chapter 10)."""
    from seqlab.data import CharCorpus
    from seqlab.experiments import scaling
    corpus = CharCorpus()
    r = scaling.train_one("transformer", 16, 1e-3, corpus=corpus, steps=3, batch=2, context=8, layers=1, windows=2,
                          tune_windows=2)
    per_token = scaling.flops_per_token(scaling.make_model("transformer", 16, corpus.vocab_size, 8, 1), 8)
    assert r["tokens"] == 3 * 2 * 8
    assert r["flops"] == pytest.approx(per_token["C"] * r["tokens"]) and r["flops_6N"] == pytest.approx(per_token["6N"] * r["tokens"])
