"""Tests for code computed one way only, each written for a survivor of a mutation run (issue 23, §7).

Every test checks a quantity against its definition, by hand, where the package has no second
implementation to compare with.
"""
from __future__ import annotations

import statistics

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


@pytest.mark.parametrize("hidden", [1, 4, 37, 512, 700])
def test_matched_hidden_inverts_the_lstm_parameter_count(hidden):
    """The LSTM control's state size is chosen by its parameter count: a count made by size h gives back h, from
    the smallest size to sizes beyond any fixed search range (chapter 11)."""
    from seqlab.experiments import induction
    from seqlab.measure import count_parameters
    n = count_parameters(induction.lstm_model(hidden, vocab=16, d_embed=8))
    assert induction.matched_hidden(n, vocab=16, d_embed=8) == hidden


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
    # the classes imported by name, so that a mutation run of their modules (rnn, lstm, gru) runs this test too
    from seqlab.models import GRU, LSTM, RNN, GRUCell, LSTMCell, RNNCell
    classes = {"rnn": RNN, "lstm": LSTM, "gru": GRU, "RNNCell": RNNCell, "LSTMCell": LSTMCell, "GRUCell": GRUCell}
    H = 32
    torch.manual_seed(0)
    layer = classes[cell](16, H)                                   # a stack, or one cell on its own
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
    x = torch.randn(3, 5, 8)
    _, state = layer(x)
    layer(x, state)                                                                 # its own state is taken
    with pytest.raises(ValueError, match="does not belong to this layer"):
        layer(x, (*state, state[0]))
    with pytest.raises(ValueError, match=r"expected \(float32\(3, 2, 8\), "):      # the batch it expected, B = 3
        layer(x, (*state, state[0]))


def test_offset_defaults_start_at_position_zero():
    """Every ``offset=`` default in the package is 0: a sequence given without an offset starts at position 0
    (chapter 8's learned, sinusoidal, RoPE and ALiBi positions, the causal mask, the encoder–decoder's embedding)."""
    seen = 0
    for module, f, p in _defaults_named("offset"):
        seen += 1
        assert p.default == 0, f"{module}.{f.__qualname__}(offset={p.default!r})"
    assert seen >= 7  # the walk found the positional functions, not nothing


def test_learned_positions_add_row_t_of_the_table_at_position_t():
    """``LearnedPositions(x)`` is x_t + P[t] for t = 0..T−1, and with ``offset=o`` x_t + P[o + t] (chapter 8)."""
    from seqlab.models.positional import LearnedPositions
    torch.manual_seed(0)
    pos = LearnedPositions(6, 4)
    x = torch.randn(2, 3, 4)
    torch.testing.assert_close(pos(x), x + pos.P.weight[:3], rtol=0, atol=0)
    torch.testing.assert_close(pos(x, offset=2), x + pos.P.weight[2:5], rtol=0, atol=0)


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


def test_chapter_15s_lstm_has_one_forget_bias_the_one_its_page_states():
    """Chapter 15 names one "forget-bias LSTM" in all its tables: the architecture table's model (architectures) and the
    long-range benchmark's (longrange) start with the same forget-gate bias, the number the page's text gives."""
    import json
    import re
    from pathlib import Path
    from seqlab.experiments import architectures
    page = Path(__file__).resolve().parents[2] / "chapters" / "15_choosing_an_architecture.ipynb"
    text = " ".join("".join(c["source"]) for c in json.loads(page.read_text())["cells"] if c["cell_type"] == "markdown")
    stated = {float(b) for b in re.findall(r"forget-gate bias of (\d+(?:\.\d+)?)", text)}
    d = 8
    model = architectures.make_model("LSTM", 5, d)
    forget = [p[d:2 * d] for name, p in model.named_parameters() if name.endswith("b_x")]   # gate order i, f, g, o
    assert len(stated) == 1 and forget
    assert all(torch.allclose(f, torch.full_like(f, longrange.FORGET_BIAS)) for f in forget)
    assert longrange.FORGET_BIAS in stated


def test_a_local_block_with_a_window_of_one_and_a_kernel_of_one_reaches_no_other_position():
    """L (W + k − 2) positions back (chapter 14): W = 1 and k = 1, a token sees only itself; W = 1 is a valid window."""
    from seqlab.experiments.hybrid import receptive_field
    assert receptive_field("A", 1, 1) == 0 and receptive_field("AAA", 1, 3) == 3 * 2
    with pytest.raises(ValueError):
        receptive_field("A", 0, 3)


def test_the_sweeps_estimate_adds_every_evaluated_window_at_a_third_of_a_step(monkeypatch):
    """A run evaluates eval + tune windows once and curve windows at each of steps / curve_every points; a batch of
    windows forward costs a third of a training step: (64 + 32 + 16 x 4) / 8 / 3 steps here. Each size then costs
    its step time x (steps + that) x its runs (the lr grid, then the other seeds), plus the IsoFLOP runs, each size at three
    rates on the first seed and once on every other seed (chapter 10)."""
    from seqlab.experiments import scaling
    seconds = {("lstm", 4): 1.0, ("lstm", 8): 2.0, ("transformer", 4): 3.0}
    monkeypatch.setattr(scaling, "time_steps", lambda f, w, s, vocab: seconds[f, w])
    s = dict(widths={"lstm": [4, 8], "transformer": [4]}, lrs={"lstm": [1e-3, 3e-3], "transformer": [1e-3]},
             eval_windows=64, tune_windows=32, curve_windows=16, curve_every=25, steps=100, batch=8)
    iso = [dict(family="lstm", width=8, steps=50)]
    out = scaling.estimate(s, 10, seeds=[0, 1, 2], runs=scaling.Runs(None, "t"), plan_iso=iso)
    evals = (64 + 32 + 16 * 4) / 8 / 3
    assert out["eval_steps"] == pytest.approx(evals)
    want = (1.0 + 2.0) * (100 + evals) * (2 + 2) + 3.0 * (100 + evals) * (1 + 2) + 2.0 * (50 + evals) * (3 + 2)
    assert out["total_seconds"] == pytest.approx(want)


@pytest.mark.parametrize("options", [dict(feature_map="identity"), dict(gate="scalar"), dict(gate="channel"),
                                     dict(delta=True, feature_map="identity")])
def test_a_linear_attention_layer_has_no_bias_so_a_zero_input_reads_zero(options):
    """y_t = W_o [φ(q_t) S_t]_heads, with q, k, v and y linear maps and no bias term (chapter 12, the docstring's
    equations): q_t = 0 reads nothing from any state, so a zero input gives a zero output."""
    from seqlab.models.linear_attention import LinearAttention, LinearAttentionConfig
    torch.manual_seed(0)
    layer = LinearAttention(LinearAttentionConfig(d_model=8, n_heads=2, **options))
    y, _ = layer(torch.zeros(2, 3, 8))
    assert torch.equal(y, torch.zeros_like(y))



def test_the_encoder_decoder_refuses_an_odd_width_for_sinusoidal_positions_only():
    """PE(p, 2i) = sin(p / 10000^(2i/d)), PE(p, 2i + 1) = cos(…): sin and cos come in pairs, so sinusoidal positions need
    an even d_model; learned positions are a table of any width, and a model with them runs (chapter 7.8)."""
    from seqlab.models import EncoderDecoder, EncoderDecoderConfig
    with pytest.raises(ValueError, match="even d_model"):
        EncoderDecoderConfig(src_vocab=7, tgt_vocab=5, d_model=9, n_heads=3, n_layers=1, positions="sinusoidal")
    model = EncoderDecoder(EncoderDecoderConfig(src_vocab=7, tgt_vocab=5, d_model=9, n_heads=3, n_layers=1,
                                                positions="learned"))
    out = model(torch.tensor([[3, 1]]), torch.tensor([[0, 2]]))
    assert (out[0] if isinstance(out, tuple) else out).shape == (1, 2, 5)


def test_the_patch_transformer_embeds_exactly_the_ids_its_patches_can_take():
    """A p × p patch of pixels in {0, 1, 2} is one id Σ_i v_i 3^i: the 3^(p²) patches give 3^(p²) distinct ids, and the
    patch Transformer's token table has one row for each, no more (its width is matched by parameter count) (chapter 15)."""
    import itertools
    from seqlab.data import longrange as lr
    P = longrange.PATCH
    patches = torch.tensor(list(itertools.product(range(3), repeat=P * P)))        # every patch, one image each
    ids = lr.patch_tokens(patches, P, P)[:, 0]
    task = lr.Pathfinder(size=6, curve_length=4)
    model = longrange.make_model("Transformer (patches)", task.input_vocab, 16, task=task)
    assert sorted(ids.tolist()) == list(range(model.embed.num_embeddings))


def test_a_resumed_run_log_says_how_many_runs_it_found(tmp_path, capsys):
    """A log that already holds some of the runs says so, and how many remain (chapter 12); a fresh one has nothing to
    report."""
    from seqlab.experiments import runlog
    fn, path = (lambda c: {"v": c["a"]}), tmp_path / "log.jsonl"
    runlog.map_logged(fn, [{"a": 1}], path=path, settings={"s": 1}, progress=True, desc="grid")
    assert "already in" not in capsys.readouterr().err
    runlog.map_logged(fn, [{"a": 1}, {"a": 2}, {"a": 3}], path=path, settings={"s": 1}, progress=True, desc="grid")
    assert "grid: 1 of 3 runs already in" in capsys.readouterr().err


def test_s4d_powers_splits_the_lags_at_the_ceiling_of_the_square_root():
    """Ā^j = Ā^a Ā^{m b} with m = ⌈√T⌉ (chapter 13): the two tables then hold m + ⌈T/m⌉ powers, the fewest, and their
    products are every power j < T."""
    import math
    from seqlab.ops.ssm import s4d_powers
    log_A_bar = torch.complex(-torch.rand(2, 3, dtype=torch.float64), torch.rand(2, 3, dtype=torch.float64))
    for T in [*range(1, 18), 48, 49, 50, 99, 100, 101]:
        low, high, m = s4d_powers(log_A_bar, T)
        assert m == math.ceil(math.sqrt(T)) and high.shape[-1] == -(-T // m), T
        every = (low[..., :, None] * high[..., None, :]).transpose(-1, -2).flatten(-2)[..., :T]   # j = a + m b
        assert torch.allclose(every, torch.exp(log_A_bar[..., None] * torch.arange(T)), rtol=1e-12, atol=1e-12), T


def test_chapter_8s_rate_is_chosen_on_the_mean_of_the_last_tail_training_losses(monkeypatch):
    """``train_tail`` is the mean training loss over the last ``tail`` steps, which picks each encoding's rate, and every
    run keeps the loss at each of the 4L evaluated positions (chapter 8). (Untrained models: the bookkeeping is the
    same.)"""
    from types import SimpleNamespace
    from seqlab.experiments import attention
    monkeypatch.setenv("SEQLAB_RUNLOG_DIR", "")
    losses = [float(k) for k in range(100)]                       # the last tail steps have a known mean
    monkeypatch.setattr(attention, "train_position_lm", lambda *a, **kw: SimpleNamespace(seconds=0.0, loss=losses))
    s = attention.POSITION_STUDY_SETTINGS["tiny"]
    res = attention.positions(scale="tiny", seeds=[0])
    want = sum(losses[-s["tail"]:]) / s["tail"]
    for run in res["runs"]:
        assert run["train_tail"] == pytest.approx(want)
        assert len(run["by_position"]) == 4 * s["train_len"]


def test_s4d_starts_with_c_complex_standard_normal():
    """S4D's C ~ CN(0, 1) (chapter 13, as in Gu et al.'s S4D): real and imaginary parts independent N(0, 1/2), so
    E|C|² = 1."""
    torch.manual_seed(0)
    C = SSMLayer(SSMConfig(d_model=32, d_state=64, selective=False)).C.detach()      # (E, N, 2): re, im
    assert C.numel() >= 4000
    assert abs(C.pow(2).sum(-1).mean().item() - 1.0) < 0.1
    assert abs(C[..., 0].var().item() - 0.5) < 0.06 and abs(C[..., 1].var().item() - 0.5) < 0.06


def test_an_rnn_decoders_alignment_counts_the_steps_whose_attention_peaks_on_or_beside_the_right_source_symbol():
    """Reversal reads source position L − 1 − i at output step i (chapter 7): ``aligned`` is the share of steps whose
    attention peaks there, ``near`` within one; the same peaks read as a one-layer, one-head Transformer's weights
    (cross_alignment) give the same shares."""
    from seqlab.experiments import encoder_decoder as ed
    L, B = 6, 2
    miss = torch.arange(L) % 3                                                    # steps off by 0, 1, 2, 0, 1, 2

    class Fixed(nn.Module):
        def greedy_decode(self, src, steps, bos, lengths):
            S, right = src.shape[1], L - 1 - torch.arange(L)
            peak = torch.where(right + miss < L, right + miss, right - miss)
            w = torch.zeros(B, steps, S)
            w[:, torch.arange(L), peak] = 1.0
            return torch.zeros(B, steps, dtype=torch.long), w

    out = ed.evaluate(Fixed(), L, vocab=5, n=B)
    assert out["aligned"] == pytest.approx(2 / 6) and out["near"] == pytest.approx(4 / 6)
    w = Fixed().greedy_decode(torch.zeros(B, L + 1), L + 1, 0, None)[1]
    crossed = ed.cross_alignment(w[:, None, None], (L - 1 - torch.arange(L)).expand(B, L))
    assert (crossed["aligned"], crossed["near"]) == pytest.approx((out["aligned"], out["near"]))


def test_a_scaling_sweeps_seed_spread_is_the_sample_standard_deviation():
    """s = sqrt(Σ (x − x̄)² / (n − 1)), as the standard library's statistics.stdev; one seed has no spread (chapter 10)."""
    import statistics
    from seqlab.experiments import scaling
    for xs in ([1.0, 2.0, 4.0, 7.0], [2.5, 2.0], [0.3, 0.1, 0.2]):
        assert scaling._sd(xs) == pytest.approx(statistics.stdev(xs)) and scaling._mean(xs) == pytest.approx(statistics.mean(xs))
    assert scaling._sd([3.0]) == 0.0


def test_the_repeat_probe_averages_each_occurrences_predictions_but_its_first(monkeypatch):
    """A window is prefix (P = context + 1 − 2 span), span, the same span; loss t predicts character t + 1, so the
    first occurrence's characters P + 1 .. P + span − 1 are losses P .. P + span − 2 and the repeat's the same shifted by
    span (chapter 10). With loss t = t, their means are P + (span − 2)/2 and that + span."""
    from seqlab.experiments import scaling
    seen = []

    def losses(model, w):
        seen.append(w)
        return torch.arange(w.shape[1] - 1, dtype=torch.float64).expand(w.shape[0], -1)

    monkeypatch.setattr(scaling, "position_losses", losses)
    ids = torch.randint(0, 9, (500,), generator=torch.Generator().manual_seed(0))
    for span, context in ((6, 20), (10, 20)):        # the second: two spans fill the window, a prefix of one character
        seen.clear()
        P = context + 1 - 2 * span
        r = scaling.repeat_probe(None, ids, 3, span=span, context=context)
        w = seen[0]
        assert w.shape == (3, context + 1) and torch.equal(w[:, P + span:], w[:, P:P + span])
        assert r["first"] == pytest.approx([P + (span - 2) / 2] * 3)
        assert r["repeat"] == pytest.approx([P + span + (span - 2) / 2] * 3)
    with pytest.raises(ValueError, match="do not fit"):
        scaling.repeat_probe(None, ids, 3, span=11, context=20)


def test_parabola_minimum_finds_the_valley_of_a_shallow_or_steep_parabola():
    """L = a (log N − log N*)² + c has its minimum at N* for every a > 0, however shallow; none when a ≤ 0 or N* lies
    outside the measured sizes (chapter 10's IsoFLOP valley)."""
    import math
    from seqlab.experiments.scaling import parabola_minimum
    N = [1e3, 1e4, 1e5, 1e6, 1e7]
    valley = lambda a, centre: [a * (math.log(n) - math.log(centre)) ** 2 + 1.0 for n in N]   # noqa: E731
    for a in (0.01, 0.5, 3.0):
        assert parabola_minimum(N, valley(a, 2e5)) == pytest.approx(2e5, rel=1e-6), a
    assert parabola_minimum(N, valley(-0.5, 2e5)) is None and parabola_minimum(N, valley(0.5, 1e9)) is None


def test_depth_per_token_is_the_slope_of_the_graphs_depth_in_the_length():
    """A running sum h_t = h_{t−1} + e_t adds one operation per token to the longest chain: one per token; a per-token
    map adds none: zero (chapters 9, 13b)."""
    from seqlab.experiments.parallel_rnn import depth_per_token

    class RunningSum(nn.Module):
        def __init__(self, chain: bool):
            super().__init__()
            self.embed, self.chain = nn.Embedding(5, 4), chain

        def forward(self, x):
            e = self.embed(x)
            if not self.chain:
                return e
            hs = [e[:, 0]]
            for t in range(1, x.shape[1]):
                hs.append(hs[-1] + e[:, t])
            return torch.stack(hs, 1)

    assert depth_per_token(RunningSum(True), (4, 12), 5) == 1.0
    assert depth_per_token(RunningSum(False), (4, 12), 5) == 0.0


def test_a_hybrid_recall_run_at_seed_0_is_chapter_14s_live_run(monkeypatch):
    """Chapter 14's page draws 256 held-out queries from ``TEST_QUERIES`` and trains each model after
    ``seed_everything(2)`` (weights drawn next, then the batches); the experiment's seed 0 must be that run: the same
    queries, initial weights and batch generator."""
    from seqlab import seed_everything
    from seqlab.data import GappedRecall
    from seqlab.experiments import hybrid
    from seqlab.train import History
    seen = {}

    def spy(model, task, x_test, y_test, *, batches, **kw):
        seen.update(weights={k: v.clone() for k, v in model.state_dict().items()}, state=batches.get_state(),
                    queries=(x_test, y_test))
        return 0.0, History(loss=[1.0], eval_step=[], eval={"acc": []})

    monkeypatch.setattr(hybrid, "train_recall", spy)
    s = hybrid.SETTINGS["tiny"]
    task = GappedRecall(n_pairs=s["pairs"], gap=s["gap"], n_queries=s["queries"], vocab=s["vocab"])
    name = next(iter(hybrid.MODELS))
    hybrid.recall_run(name, 0, s, task)
    x_test, y_test = task.sample(256, seed_everything(hybrid.TEST_QUERIES))      # the page's cells, as they read
    batches = seed_everything(2)
    page = hybrid.make_hybrid(hybrid.MODELS[name], s["vocab"], d=s["d"], heads=s["heads"], window=s["window"],
                              d_rnn=s["d_rnn"], mlp=s["mlp"])
    assert all(torch.equal(v, seen["weights"][k]) for k, v in page.state_dict().items())
    assert torch.equal(batches.get_state(), seen["state"])
    assert torch.equal(x_test, seen["queries"][0]) and torch.equal(y_test, seen["queries"][1])


def test_the_hybrid_recall_summary_gives_each_model_the_mean_of_its_own_runs(monkeypatch):
    """One line per model: the mean recall and steps over that model's seeds (chapter 14)."""
    from seqlab.experiments import hybrid
    names = list(hybrid.MODELS)
    fake = lambda name, seed, s, task, **kw: {"model": name, "seed": seed, "params": 10 + names.index(name),  # noqa: E731
                                              "accuracy": 0.1 * names.index(name) + 0.01 * seed, "steps": 100 + seed,
                                              "chance": 0.25}
    monkeypatch.setattr(hybrid, "recall_run", fake)
    monkeypatch.setattr(hybrid, "map_logged", lambda fn, configs, **kw: [fn(c) for c in configs])
    lines = hybrid.render_hybrid_recall(hybrid.hybrid_recall(scale="tiny", seeds=(0, 2)))
    for i, name in enumerate(names):
        line = next(ln for ln in lines if ln[:22].strip() == name)
        assert line.split()[-3:] == [f"{10 + i}", f"{0.1 * i + 0.01:.3f}", "101"], line


def test_only_learned_positions_refuse_to_decode_past_their_table():
    """A learned position table has max_len rows, so decoding more tokens is refused by name; sinusoidal positions are
    a formula, defined at every position, and decode past max_len (chapter 7.8)."""
    from seqlab.models import EncoderDecoder, EncoderDecoderConfig
    torch.manual_seed(0)
    src = torch.tensor([[3, 1, 2]])
    for positions in ("learned", "sinusoidal"):
        model = EncoderDecoder(EncoderDecoderConfig(src_vocab=7, tgt_vocab=5, d_model=8, n_heads=2, n_layers=1,
                                                    positions=positions, max_len=4))
        if positions == "learned":
            with pytest.raises(ValueError, match="learned positions stop"):
                model.greedy_decode(src, 6, 0)
        else:
            assert model.greedy_decode(src, 6, 0)[0].shape == (1, 6)


@pytest.mark.parametrize("gate", ["scalar", "channel"])
def test_a_scalar_gate_decays_a_whole_head_by_one_number_and_a_channel_gate_each_key_channel_by_its_own(gate):
    """S_t = diag(α_t) S_{t−1} + φ(k_t)ᵀ v_t (chapter 12): with v = 0, S_1 / S_0 is α, one number per head for the scalar
    gate, one per key channel for the channel gate."""
    from seqlab.models.linear_attention import LinearAttention, LinearAttentionConfig
    torch.manual_seed(0)
    layer = LinearAttention(LinearAttentionConfig(d_model=8, n_heads=2, gate=gate, form="loop"))
    with torch.no_grad():
        layer.W_v.weight.zero_()
    c = layer.config
    S0 = torch.rand(c.n_heads, c.d_phi, c.d_head) + 0.5
    ratio = layer(torch.randn(1, 1, 8), S0)[1] / S0                                # (heads, d_φ, d_head)
    assert torch.allclose(ratio, ratio[..., :1])                                   # a row's values decay alike
    per_head_spread = (ratio.amax((1, 2)) - ratio.amin((1, 2))).max().item()
    assert (per_head_spread < 1e-6) == (gate == "scalar"), per_head_spread


def test_a_registered_experiment_cannot_be_changed_in_place():
    """The registry's entries are frozen (chapter 10): a page or a test that assigned to ``REGISTRY[name].render``
    would change what every later command prints, so assignment raises instead."""
    import dataclasses
    from seqlab import experiments
    entry = experiments.REGISTRY["scaling"]
    with pytest.raises(dataclasses.FrozenInstanceError):
        entry.render = None
    assert entry.render is not None


def test_the_copying_summary_lists_the_longer_noise_runs_at_each_layers_chosen_rate_only():
    """``render_copying`` prints, for selective copying, the longer-noise accuracies of the runs at each layer's best
    rate and of no other rate (chapter 13)."""
    from seqlab.experiments import ssm as ssm_exp
    sel = ssm_exp.SELECTIVE_COPYING
    runs = [dict(task=sel, layer=layer, lr=lr, seed=0, budget=10, accuracy=acc, steps=10, longer_noise=[acc, acc / 2])
            for layer, lr, acc in (("A", 1e-3, 0.5), ("A", 1e-2, 0.9), ("B", 1e-3, 0.8), ("B", 1e-2, 0.4))]
    lines = ssm_exp.render_copying({"settings": dict(steps=10, lrs=[1e-3, 1e-2], test_lengths=[16, 32]), "runs": runs})
    listed = [line for line in lines if "seed 0" in line]
    assert len(listed) == 2
    assert any(line.split()[0] == "A" and "0.900 0.450" in line for line in listed)
    assert any(line.split()[0] == "B" and "0.800 0.400" in line for line in listed)


@pytest.mark.parametrize("seconds, steps", [(0.0, 1), (0.035, 3), (0.05, 5)])
def test_the_equal_time_race_trains_each_model_for_its_share_of_the_seconds_and_at_least_one_step(monkeypatch, seconds,
                                                                                                  steps):
    """steps = max(1, int(seconds / step time)): with each model's step timed at 10 ms (a fake clock), a race of
    0.035 s trains 3 steps, of 0.05 s 5, and of no time still one (a model is never left untrained)."""
    from seqlab.data import CharCorpus
    from seqlab.experiments import attention
    from seqlab.models import GPT, GPTConfig, RecurrentLM

    monkeypatch.setattr(attention, "time_calls",
                        lambda calls, **kw: {name: type("T", (), {"min": 0.01, "median": 0.01})() for name in calls})
    corpus = CharCorpus()
    V = corpus.vocab_size
    models = {"GPT": GPT(GPTConfig(vocab_size=V, d_model=8, n_heads=2, n_layers=1, max_len=8)),
              "LSTM": RecurrentLM(V, 8, 8, cell="lstm", form="fused")}
    val = corpus.batch("val", 2, 8, generator=torch.Generator().manual_seed(0))
    val = torch.cat([val[0], val[1][:, -1:]], dim=1)                  # (N, T + 1)
    results, step_time = attention.equal_time_race(models, corpus, batch=2, context=8, lr=1e-3, seconds=seconds,
                                                   val=val, progress=False)
    assert step_time == {"GPT": 0.01, "LSTM": 0.01}
    assert {name: r["steps"] for name, r in results.items()} == {"GPT": steps, "LSTM": steps}
    assert all(r["tokens_per_s"] == pytest.approx(2 * 8 / 0.01) for r in results.values())


@pytest.mark.parametrize("n_runs", [1, 2, 3])
def test_map_runs_estimates_the_sweeps_time_after_its_first_run_when_more_follow(capsys, n_runs):
    """With progress on, one process, the estimate line (runs x the first run's seconds) is written once the first
    run ends, and only when at least one run follows it; the results come back in order either way."""
    from seqlab.experiments import distributed

    out = distributed.map_runs(lambda c: c * c, list(range(n_runs)), progress=True, desc="toy sweep")
    assert out == [c * c for c in range(n_runs)]
    err = capsys.readouterr().err
    assert err.count(f"toy sweep: {n_runs} runs; the first took") == (1 if n_runs > 1 else 0)


def test_map_runs_is_quiet_by_default(capsys):
    """No bar and no estimate unless ``progress`` asks for them (the chapters' sweeps pass it explicitly)."""
    from seqlab.experiments import distributed

    assert distributed.map_runs(lambda c: -c, [1, 2, 3]) == [-1, -2, -3]
    assert capsys.readouterr().err == ""


def test_every_generator_samples_at_temperature_one_by_default():
    """Each language model's ``generate`` draws from softmax(logits) itself unless told otherwise: the default gives
    the same ids as an explicit temperature of 1 from the same seed (and not those of another temperature)."""
    from seqlab.models import GPT, GPTConfig, NGramLM, RecurrentLM

    torch.manual_seed(0)
    V, prompt = 12, torch.tensor([1, 2, 3])
    ngram = NGramLM(2, V)
    ngram.fit(torch.randint(0, V, (400,)))
    models = {"RecurrentLM": RecurrentLM(V, 8, 8), "GPT": GPT(GPTConfig(vocab_size=V, d_model=8, n_heads=2, n_layers=1,
                                                                         max_len=64)), "NGramLM": ngram}
    with torch.no_grad():                                       # sharper than at initialisation, so temperature shows
        for p in (*models["RecurrentLM"].parameters(), *models["GPT"].parameters()):
            p.mul_(4)
    for name, m in models.items():
        draw = lambda **kw: m.generate(prompt, 40, generator=torch.Generator().manual_seed(5), **kw)  # noqa: E731
        assert torch.equal(draw(), draw(temperature=1.0)), name
        assert not torch.equal(draw(), draw(temperature=3.0)), name


@pytest.mark.parametrize("cell", ["mingru", "minlstm"])
def test_min_rnn_layers_start_like_nn_linear(cell):
    """minGRU's and minLSTM's weights and biases start uniform in [-1/sqrt(d), 1/sqrt(d)], nn.Linear's default (their
    docstring's): inside the bound, both signs, spread like the uniform (standard deviation bound/sqrt(3))."""
    from seqlab.models.minrnn import MinRNN

    d = 32
    torch.manual_seed(0)
    layer, bound = MinRNN(d, cell=cell), 1 / d ** 0.5
    for name, p in layer.named_parameters():
        assert p.abs().max() <= bound, name
        assert abs(p.std().item() - bound / 3 ** 0.5) < 0.25 * bound / 3 ** 0.5, name
        assert p.min() < 0 < p.max(), name


def test_the_long_range_estimate_prints_each_line_as_it_is_made():
    """``out`` gets every returned line, in order, as it is made: each arm's cost, then the total."""
    import io

    out = io.StringIO()
    lines = longrange.estimate("tiny", probe_steps=1, out=out)
    assert out.getvalue().splitlines() == lines and len(lines) >= 3 and lines[-1].startswith("in all:")


@pytest.mark.parametrize("side", ["src_vocab", "tgt_vocab"])
def test_a_seq2seq_model_takes_a_two_symbol_vocabulary_and_refuses_one(side):
    """Two symbols is the smallest vocabulary with a choice in it (a symbol and an end): accepted on either side and
    run; one is refused by name."""
    from seqlab.models.seq2seq import Seq2Seq

    sizes = {"src_vocab": 5, "tgt_vocab": 5}
    model = Seq2Seq(**{**sizes, side: 2}, d_embed=4, d_hidden=6, attention="additive")
    V_src, V_tgt = model.src_vocab, model.tgt_vocab
    logits, _ = model(torch.randint(0, V_src, (2, 3)), torch.randint(0, V_tgt, (2, 4)))
    assert logits.shape == (2, 4, V_tgt)
    with pytest.raises(ValueError, match=side):
        Seq2Seq(**{**sizes, side: 1}, d_embed=4, d_hidden=6)


def test_an_isoflop_plans_steps_spend_its_budget():
    """Each planned run's steps spend the budget C and no more: steps x FLOPs per step <= C < (steps + 1) x FLOPs per
    step, with FLOPs per step = FLOPs per token x batch x context (chapter 10)."""
    from seqlab.experiments import scaling

    s, vocab = scaling.SETTINGS["tiny"], 20
    plan = scaling.isoflop_plan(s, vocab)
    assert plan
    for p in plan:
        model = scaling.make_model(p["family"], p["width"], vocab, s["context"], s["layers"])
        per_step = scaling.flops_per_token(model, s["context"])["C"] * s["batch"] * s["context"]
        assert p["steps"] * per_step <= p["budget"] < (p["steps"] + 1) * per_step, p


# ---------------------------------------------------------------- seed 79's survivors
def test_seed_defaults_follow_one_convention():
    """A page's run is seed 0 (plus ``SEQLAB_SEED_OFFSET``): every ``seed=`` default in the package is 0, and every
    ``seeds=`` default is 0, 1, ... in order. The one exception is named here with its reason."""
    exceptions = {("seqlab.experiments.scaling", "spread_windows"): 12345}  # a bootstrap's own stream, apart from runs'
    seen = 0
    for module, f, p in _defaults_named("seed", "seeds"):
        seen += 1
        where = f"{module}.{f.__qualname__}({p.name}={p.default!r})"
        if p.name == "seed":
            assert p.default == exceptions.get((module, f.__qualname__), 0), where
        else:
            assert tuple(p.default) == tuple(range(len(p.default))) and len(p.default) >= 1, where
    assert seen >= 40  # the walk found the package's seeded functions, not nothing


def test_progress_defaults_are_quiet():
    """Only training loops decide for themselves whether to draw a bar: every ``progress=`` default in the package
    is False (quiet) or None (``SEQLAB_PROGRESS`` decides: on for a reader, off in the book build and the tests)."""
    seen = 0
    for module, f, p in _defaults_named("progress"):
        seen += 1
        assert p.default is False or p.default is None, f"{module}.{f.__qualname__}(progress={p.default!r})"
    assert seen >= 40


def _defaults_named(*names):
    """(module, function, parameter) for every parameter called one of ``names`` with a default, in every function
    and method the package defines."""
    import importlib
    import inspect
    import pkgutil

    import seqlab

    for info in pkgutil.walk_packages(seqlab.__path__, "seqlab."):
        mod = importlib.import_module(info.name)
        for obj in vars(mod).values():
            if getattr(obj, "__module__", None) != info.name:
                continue
            fns = [obj] if inspect.isfunction(obj) else (
                [f for f in vars(obj).values() if inspect.isfunction(f)] if inspect.isclass(obj) else [])
            for f in fns:
                for p in inspect.signature(f).parameters.values():
                    if p.name in names and p.default is not inspect.Parameter.empty:
                        yield info.name, f, p


@pytest.mark.parametrize("optimizer,kind", [("sgd", torch.optim.SGD), ("adam", type(None))])
def test_train_adder_uses_plain_sgd_or_leaves_the_default_adamw(monkeypatch, optimizer, kind):
    """Chapter 3's adding problem: ``optimizer="sgd"`` hands ``train`` a plain SGD at the given rate; "adam" hands it
    none, so ``train`` builds its default AdamW."""
    from seqlab.experiments import recurrence

    got = {}
    monkeypatch.setattr(recurrence, "train", lambda model, batches, **kw: got.update(kw, x=batches()))
    recurrence.train_adder(2.0, 1.0, 0, width=4, steps=1, optimizer=optimizer, lr=0.05, length=10)
    assert isinstance(got["optimizer"], kind)
    if kind is torch.optim.SGD:
        assert got["optimizer"].defaults["lr"] == 0.05 and got["optimizer"].defaults["momentum"] == 0


def test_recall_accuracy_trains_and_scores_as_recall_training_says(monkeypatch):
    """Chapter 4's delayed recall trains and scores with ``RECALL_TRAINING``, the settings the chapter glues into its
    prose and its standard error: batches of ``batch`` new sequences per call, the rate, the clipping, how often it
    scores, on how many held-out sequences, and the threshold that stops it (strictly above)."""
    from types import SimpleNamespace

    from seqlab import data
    from seqlab.experiments import recurrence

    r, got = recurrence.RECALL_TRAINING, {}

    def fake_train(model, batches, **kw):
        got.update(kw, a=batches(), b=batches())
        raise StopIteration  # what the trainer was handed is all this test reads

    monkeypatch.setattr(recurrence, "train", fake_train)
    with pytest.raises(StopIteration):
        recurrence.recall_accuracy(recurrence.SPECS["RNN"], 5, 0, steps=1, width=4)
    (xa, ya), (xb, yb) = got["a"], got["b"]
    assert xa.shape[0] == ya.shape[0] == r["batch"] == xb.shape[0] and not torch.equal(xa, xb)
    task = data.DelayedRecall(lag=5, vocab=r["vocab"])                      # the task chapter 4 reads its chance from
    assert int(xa.max()) < task.input_vocab and int(ya.max()) < task.n_classes
    assert {int(v) for v in ya[ya >= 0].unique()} == set(range(r["vocab"]))  # every one of its symbols is asked for
    assert (got["lr"], got["clip"], got["eval_every"]) == (r["lr"], r["clip"], r["eval_every"])
    seen = []

    def model(x):  # records how many sequences it is scored on
        seen.append(x.shape[0])
        return torch.zeros(*x.shape, 16), None

    got["eval_fn"](model)
    assert seen == [r["n_eval"]]
    history = lambda acc: SimpleNamespace(eval={"acc": [acc]})  # noqa: E731
    assert not got["stop_when"](history(r["stop_at"])) and got["stop_when"](history(r["stop_at"] + 1e-6))


def test_encoder_decoder_validates_on_every_trained_length_max_len_included(monkeypatch):
    """Chapter 7.9's ``val`` (the accuracy a learning rate is chosen on) averages the validation sources (stream 1)
    over every length up to ``max_len``, that one included; ``by_length`` reads the test sources (stream 0)."""
    from seqlab.experiments import encoder_decoder as ed

    s = ed.SETTINGS["tiny"]
    assert s["max_len"] in s["lengths"] and max(s["lengths"]) > s["max_len"]  # the edge and a length past it
    calls = []

    def fake_evaluate(model, L, vocab, n, device=None, stream=0):
        calls.append((L, stream))
        return {"accuracy": float(L)}

    monkeypatch.setattr(ed, "evaluate", fake_evaluate)
    monkeypatch.setattr(ed, "train_together", lambda models, s, seed, device, progress: {
        n: {"seconds": [0.01], "loss": [1.0] * s["steps"]} for n in models})
    result = ed.run_seed(s, 0)
    trained = [L for L in s["lengths"] if L <= s["max_len"]]
    for name in ed.NAMES:
        assert result["val"][name] == pytest.approx(sum(trained) / len(trained))
    assert sorted({L for L, st in calls if st == 1}) == trained
    assert sorted({L for L, st in calls if st == 0}) == sorted(s["lengths"])


def test_parallel_rnn_curve_reads_half_as_many_windows(monkeypatch):
    """Chapter 13.10's loss curve (every ``eval_every`` steps) reads half as many windows as the final losses,
    at least one, from its own held-out stream; the final validation and test losses read ``n_eval``."""
    import types

    from seqlab.experiments import parallel_rnn as pr

    calls = []
    monkeypatch.setattr(pr, "evaluate", lambda model, corpus, context, n, generator, device=None: calls.append(n) or 1.0)

    def fake_train(model, batches, *, eval_fn, **kw):
        return types.SimpleNamespace(eval_step=[0], eval={"val": [eval_fn(model)["val"]]})

    monkeypatch.setattr(pr, "train", fake_train)
    for n_eval in (1, 4, 7):
        calls.clear()
        s = dict(pr.SETTINGS["tiny"], n_eval=n_eval, eval_every=10)
        pr.loss_run("LSTM", 1e-3, 0, s, types.SimpleNamespace(vocab_size=12))
        assert calls == [max(1, n_eval // 2), n_eval, n_eval], (n_eval, calls)


class _ReversingDecoder:
    """A stand-in for a trained Seq2Seq: decodes the reversed source then EOS, attending source L − 1 − i at step i
    (``shift`` adds a constant to every decoded symbol, modulo the vocabulary: a decoder that is always wrong)."""

    def __init__(self, vocab: int, shift: int = 0):
        self.vocab, self.shift = vocab, shift

    def greedy_decode(self, src, steps, bos, lengths):
        B, L = src.shape
        ids = torch.cat([(src.flip(1) + self.shift) % self.vocab, torch.full((B, 1), self.vocab + 2)], dim=1)
        weights = torch.zeros(B, steps, L)
        for i in range(L):
            weights[:, i, L - 1 - i] = 1.0
        return ids[:, :steps], weights


def test_reversal_accuracy_is_the_share_of_symbols_decoded_right():
    """Chapter 5's ``evaluate_reversal``: a decoder that reverses every source scores 1 on symbols and alignment,
    one that shifts every symbol scores 0 on symbols (and still 1 on alignment: it looks at the right place)."""
    from seqlab.experiments.attention import evaluate_reversal
    assert evaluate_reversal(_ReversingDecoder(7), 5, vocab=7, n=16) == (1.0, 1.0)
    assert evaluate_reversal(_ReversingDecoder(7, shift=3), 5, vocab=7, n=16) == (0.0, 1.0)


def test_additive_attention_draws_each_matrix_within_its_own_fan_in():
    """Chapter 5's ``AdditiveAttention.reset_parameters``, like ``nn.Linear``: W_s uniform in ±1/√d_query, W_h in
    ±1/√d_key, v in ±1/√d_hidden. Widths far apart, so a bound taken from the wrong side of a matrix shows; with
    hundreds of draws the largest comes within 10 % of its bound (a miss has probability below 1e-9)."""
    from seqlab.models import AdditiveAttention
    torch.manual_seed(0)
    attn = AdditiveAttention(d_query=3, d_key=5, d_hidden=400)
    for name, fan_in in (("W_s", 3), ("W_h", 5), ("v", 400)):
        w, bound = getattr(attn, name).detach(), fan_in ** -0.5
        assert w.abs().max() <= bound, name
        assert w.abs().max() > 0.9 * bound, name


def test_grid_place_reads_the_ends_of_the_grid_as_ends():
    """Chapter 15's ``grid_place``: a rate strictly between the grid's smallest and largest is "inside"; either end,
    bracketed (flat there), is "at an end, flat"; not bracketed, wherever it lies, says so."""
    rates = [1e-3, 3e-3, 1e-2]
    assert longrange.grid_place(3e-3, rates, True) == "inside"
    assert longrange.grid_place(1e-3, rates, True) == "at an end, flat"
    assert longrange.grid_place(1e-2, rates, True) == "at an end, flat"
    assert longrange.grid_place(1e-2, rates, False) == "at an end: NOT bracketed"


def test_position_study_table_averages_inside_and_the_rise_beyond_twice_the_length():
    """Chapter 8's ``render_position_study``: per encoding and rate, the mean over seeds of the loss over positions
    0..L-1 and of the rise over 2L..4L-1 (mean there minus mean inside), computed here by hand."""
    from seqlab.experiments.attention import render_position_study
    L = 2
    pos = {0: [1.0, 3.0, 9.0, 9.0, 4.0, 6.0, 8.0, 10.0], 1: [2.0, 4.0, 9.0, 9.0, 6.0, 8.0, 10.0, 12.0]}
    runs = [{"encoding": "rope", "lr": 1e-3, "seed": s, "train_tail": 1.0, "by_position": p} for s, p in pos.items()]
    lines = render_position_study({"settings": {"train_len": L, "lrs": [1e-3]}, "runs": runs})
    inside = [sum(p[:L]) / L for p in pos.values()]                          # 2.0 and 3.0
    rise = [sum(p[2 * L:4 * L]) / (2 * L) - i for p, i in zip(pos.values(), inside)]   # 7 − 2 = 5 and 9 − 3 = 6
    row = lines[1].split()
    assert float(row[2]) == pytest.approx(sum(inside) / 2, abs=1e-3)            # 2.500
    assert float(row[5]) == pytest.approx(sum(rise) / 2, abs=1e-3)              # +5.500
    assert float(row[4]) == pytest.approx(statistics.stdev(inside), abs=1e-3)   # two seeds: the sample sd, 0.707
    assert float(row[7]) == pytest.approx(statistics.stdev(rise), abs=1e-3)
    assert "chosen" in lines[1]


def test_width_for_returns_multiples_of_four_from_eight():
    """Chapter 10's ``width_for``: the width is a multiple of 4 (the docstring's promise), the smallest 8, for any
    target, for both families; a tiny target gets the smallest width."""
    from seqlab.experiments.scaling import width_for
    for family in ("lstm", "transformer"):
        widths = {width_for(family, target, 65, 32, 2) for target in (1.0, 1e3, 3e4, 1e5)}
        assert all(w % 4 == 0 for w in widths), (family, widths)
        assert width_for(family, 1.0, 65, 32, 2) == 8, family


def test_adamw_defaults_are_pytorchs():
    """Chapter 2 says ``seqlab.train.adamw`` computes the update of PyTorch's default ``torch.optim.AdamW``: with the
    same learning rate and nothing else given, two steps of each on the same gradients agree to rounding."""
    from seqlab.train import adamw
    torch.manual_seed(0)
    p = torch.randn(5, 3, requires_grad=True)
    q = p.detach().clone().requires_grad_(True)
    ours, theirs = adamw([p], lr=0.1), torch.optim.AdamW([q], lr=0.1)
    for _ in range(2):
        g = torch.randn(5, 3)
        for opt, w in ((ours, p), (theirs, q)):
            opt.zero_grad()
            w.grad = g.clone()
            opt.step()
    torch.testing.assert_close(p, q)


def test_copier_scores_at_the_cadence_of_the_recorded_runs(monkeypatch):
    """Chapter 13's recorded copying runs (``results/copying.json``) were scored every ``eval_every`` steps of
    ``train_copier``'s default, which ``copier_run`` uses: the recorded curves' spacing is that default, so a rerun
    of the sweep reproduces the file's curves step for step."""
    import json

    from seqlab import experiments
    from seqlab.experiments import ssm as ssm_exp

    recorded = json.loads((experiments.results_dir() / "copying.json").read_text())
    spacing = {b - a for run in recorded["results"]["runs"] for a, b in zip(run["curve"]["step"], run["curve"]["step"][1:])}
    got = {}

    def fake_train(model, batches, **kw):
        got.update(kw)
        raise StopIteration

    monkeypatch.setattr(ssm_exp, "train", fake_train)
    with pytest.raises(StopIteration):
        ssm_exp.train_copier("s4d", ssm_exp.CopyTask(length=5, vocab=4), 0, d_model=8, d_state=2, batch=4, lr=0.01, steps=1)
    assert spacing == {got["eval_every"]}


def test_recall_summarise_by_hand_one_seed_and_three():
    """Chapter 12's recall table (``recall.summarise``): per cell, the mean, min and max over its seeds, with the
    cell's sizes read from its runs; a sweep run with one seed (``--seeds 0``) summarises too."""
    from seqlab.experiments import recall

    def run(seed, acc, arch="linear", n_pairs=4):
        return {"arch": arch, "width": 16, "n_pairs": n_pairs, "lr": 0.01, "seed": seed, "accuracy": acc,
                "state_bytes": 1024, "params": 5000, "d_phi": 16, "steps": 100 + seed}

    one = recall.summarise([run(0, 0.5)])
    assert one == [{"arch": "linear", "width": 16, "n_pairs": 4, "lr": 0.01, "seeds": 1, "mean": 0.5, "min": 0.5,
                    "max": 0.5, "state_bytes": 1024, "params": 5000, "d_phi": 16, "load": 0.25, "steps": 100}]
    three = recall.summarise([run(0, 0.2), run(1, 0.5), run(2, 0.8), run(0, 1.0, arch="softmax")])
    lin = next(c for c in three if c["arch"] == "linear")
    assert (lin["seeds"], lin["min"], lin["max"], lin["steps"]) == (3, 0.2, 0.8, 102)
    assert lin["mean"] == pytest.approx(0.5)


def test_mqar_runs_train_with_the_recorded_runs_weight_decay_and_clip(monkeypatch):
    """Every MQAR run (chapter 12's recorded grid among them) trains with AdamW's weight decay 0.1 and the gradient
    norm clipped at 1: ``train_one`` hands both to the training loop, whatever else it is given."""
    from seqlab.experiments import recall
    seen = {}
    real = recall.train

    def spy(model, batches, **kw):
        seen.update(kw)
        return real(model, batches, **kw)

    monkeypatch.setattr(recall, "train", spy)
    recall.train_one("linear", 8, 1e-3, vocab=16, length=12, n_pairs=2, heads=2, layers=1, steps=1, batch=2,
                     eval_batch=4)
    assert (seen["weight_decay"], seen["clip"]) == (0.1, 1.0)


def test_train_together_takes_one_optimiser_step_per_model_per_step():
    """Each of ``train_together``'s steps is one AdamW update of each model (chapter 7.9): Adam's first update moves a
    weight by at most the rate (|m̂ / (√v̂ + ε)| ≤ 1, plus the tiny weight decay), so after one step no weight has moved
    by much more than the rate, while two updates in that step would move many by nearly twice it."""
    from seqlab.experiments import encoder_decoder as ed

    s = dict(ed.SETTINGS["tiny"], steps=1, lr=1e-3, warmup=1)
    models = ed.make_models(s, seed=0)
    before = {n: [p.detach().clone() for p in m.parameters()] for n, m in models.items()}
    log = ed.train_together(models, s, seed=0)
    for name, m in models.items():
        assert len(log[name]["loss"]) == 1
        moved = max((p.detach() - q).abs().max().item() for p, q in zip(m.parameters(), before[name]))
        assert 0.5 * s["lr"] < moved <= 1.05 * s["lr"], (name, moved)


def test_a_registered_experiment_cannot_be_changed():
    """``experiments.Experiment`` is frozen: the registry's entries are read by the command and the pages alike."""
    import dataclasses

    from seqlab.experiments import REGISTRY

    with pytest.raises(dataclasses.FrozenInstanceError):
        REGISTRY["dilution"].chapter = 0


def test_the_dilution_experiment_measures_causal_attention():
    """Chapter 6's recorded gradient share is that of a causal layer: the experiment equals the same measurement
    with ``causal=True`` written out. Only the last output is differentiated, and the last position sees every key
    with or without the mask, so the bidirectional layer gives the same numbers (the mutant ``causal=False`` is
    equivalent; ``benchmarks/mutation.py`` lists it)."""
    from seqlab.config import seed_everything
    from seqlab.experiments import attention as att

    s = att.DILUTION_SETTINGS["tiny"]
    got = att.dilution("tiny", seeds=(0,))["runs"][0]["share"]

    def share(causal):
        g = seed_everything(0)
        attn = MultiHeadAttention(s["d_model"], s["n_heads"])
        out = att.gradient_share(lambda x: attn(x, x, x, causal=causal)[0], s["Ts"], batch=s["batch"], d=s["d_model"],
                                 generator=g)
        return [out[T] for T in s["Ts"]]

    assert got == pytest.approx(share(True), rel=1e-6)
    assert got == pytest.approx(share(False), rel=1e-6)


def test_the_position_study_table_prints_a_single_seed_with_no_spread():
    """``render_position_study`` on one seed: the sample standard deviation is undefined, so it prints 0.000."""
    from seqlab.experiments.attention import render_position_study

    L = 2
    runs = [{"encoding": "none", "lr": lr, "seed": 0, "by_position": [1.0] * (4 * L), "train_tail": t}
            for lr, t in ((1e-3, 2.0), (3e-3, 1.0))]
    lines = render_position_study({"settings": {"train_len": L, "lrs": [1e-3, 3e-3]}, "runs": runs})
    assert len(lines) == 3 and all("± 0.000" in line for line in lines[1:]) and lines[2].endswith("<- chosen")


def test_the_crossing_finding_counts_only_intervals_that_exclude_zero():
    """``scaling.findings``' crossing line: a matched pair counts as the Transformer lower (higher) only when the whole
    interval of its loss minus the LSTM's lies below (above) zero."""
    from seqlab.experiments import scaling

    gaps = [{"transformer_minus_lstm": {"value": v, "lo": lo, "hi": hi}}
            for v, lo, hi in ((0.1, -0.5, 0.5), (-0.3, -0.4, -0.2), (0.3, 0.2, 0.4), (0.5, 0.1, 0.9))]
    line = scaling._crossing_finding(gaps, None, False)
    assert "lower at 1 and higher at 2 of 4 pairs" in line["text"] and line["holds"]


def test_a_scaling_runs_defaults_are_the_studys_recipe():
    """``scaling.train_one``'s defaults are the recipe the recorded study passes (``_RECIPE``: warm-up, final rate,
    β₂, weight decay, clipping), so a run made with the defaults, as chapter 10's live slice's can be, is trained the
    same way as the study's."""
    import inspect

    from seqlab.experiments import scaling

    defaults = {k: p.default for k, p in inspect.signature(scaling.train_one).parameters.items()}
    assert {k: defaults[k] for k in scaling._RECIPE} == scaling._RECIPE


def test_ssd_parallel_is_one_chunk_over_the_whole_sequence(monkeypatch):
    """Its docstring's O(T²) form: the chunked algorithm with a single chunk of all T steps (every form gives the same
    numbers, so only the chunk it passes tells them apart)."""
    from seqlab.ops import ssd
    seen = []
    real = ssd._ssd
    monkeypatch.setattr(ssd, "_ssd", lambda *a: seen.append(a[-1]) or real(*a))
    Bsz, H, T, P, N = 2, 3, 7, 5, 4                              # T unlike every other size
    x = torch.randn(Bsz, H, T, P)
    ssd.ssd_parallel(x, torch.rand(Bsz, H, T), torch.randn(Bsz, T, N), torch.randn(Bsz, T, N), -torch.rand(H),
                     torch.randn(H))
    assert seen == [T]


def test_previous_token_score_takes_two_positions_and_refuses_one():
    from seqlab import interpret
    A = torch.tensor([[1.0, 0.0], [0.3, 0.7]])[None, None]     # (B, H, T, T) = (1, 1, 2, 2): one pair, t = 1 -> 0
    assert interpret.previous_token_score(A).tolist() == pytest.approx([0.3])
    with pytest.raises(ValueError, match="T >= 2, got T = 1"):
        interpret.previous_token_score(torch.ones(1, 1, 1, 1))


def test_general_attentions_weight_starts_uniform_within_one_over_root_d_key():
    """nn.Linear's convention for a d_key-wide input: U(−1/√d_key, 1/√d_key)."""
    from seqlab.models.attention import DotProductAttention
    torch.manual_seed(0)
    W = DotProductAttention(d_query=64, d_key=400, kind="general").W.detach()
    bound = 1 / 400 ** 0.5
    assert W.abs().max() <= bound and W.abs().max() > 0.99 * bound
    assert W.std().item() == pytest.approx(bound / 3 ** 0.5, rel=0.03)     # a uniform's sd: half-width / √3


def test_a_sweeps_time_estimate_switches_to_minutes_at_one_minute():
    from seqlab.experiments.distributed import estimate
    assert "about 59 s in all" in estimate(59, 1.0)
    assert "about 1.0 min in all" in estimate(60, 1.0)
    assert "about 2.5 min in all" in estimate(3, 50.0)


def test_a_sweeps_estimate_names_the_processes_from_two_on():
    from seqlab.experiments.distributed import estimate
    assert "on each of 2 processes" in estimate(4, 1.0, processes=2)
    assert "processes" not in estimate(4, 1.0, processes=1)


def test_two_laws_crossing_near_the_top_of_the_range_are_found_there():
    """``crossing``'s scan reaches hi: laws that cross at N = 9.8e9, in the last of its 400 log-spaced intervals below
    hi = 1e10 (which starts at about 9.6e9), are found there by bisection."""
    from seqlab.experiments import scaling
    a = {"a": 1.0, "alpha": 0.1, "c": 0.0}
    b = {"a": (9.8e9) ** -0.1 / (9.8e9) ** -0.2, "alpha": 0.2, "c": 0.0}    # equal to a's law at N = 9.8e9
    assert scaling.crossing(a, b) == pytest.approx(9.8e9, rel=1e-6)
    assert scaling.crossing(a, b, hi=9.7e9) is None


def test_norm_placements_table_lists_each_arms_own_runs():
    from seqlab.experiments.norms import render_norm_placement
    runs = [{"arm": arm, "seed": seed, "final": final, "reach": reach}
            for arm, seed, final, reach in (("Pre", 1, 2.5, 30), ("Pre", 0, 2.4, 20), ("Post", 0, 3.1, 90))]
    lines = render_norm_placement({"unigram": 3.0, "runs": runs, "settings": {"arms": [["Pre"], ["Post"]]}})
    assert lines[1].split() == ["Pre", "2.400", "(step", "20)", "2.500", "(step", "30)"]     # by seed
    assert lines[2].split() == ["Post", "3.100", "(step", "90)"]


def test_gradient_fade_takes_any_near_distance_short_of_the_far_one():
    from seqlab.experiments import architectures
    torch.manual_seed(0)
    model = architectures.make_model("RNN", 5, 8)
    x = torch.randint(0, 5, (2, 6))
    _, fade = architectures.gradient_fade({"m": model}, x, k_near=4)          # T - 2: the nearest allowed to k = T - 1
    assert set(fade) == {"m"}
    for bad in (0, 5):
        with pytest.raises(ValueError, match="k_near must lie between 0 and T - 1 = 5"):
            architectures.gradient_fade({"m": model}, x, k_near=bad)


# ---------------------------------------------------------------- seed 179's survivors (read after that run)
def test_map_tuned_widens_upward_by_the_grids_own_ratio_at_its_top_edge():
    """At the top edge the next rate is g[-1]² / g[-2], the grid's last ratio once more (a grid of three: g[-2] is
    not g[2])."""
    from seqlab.experiments import runlog

    def fn(c):
        return {"val": -abs(c[1] - 8)}                                # best at lr 8, above the grid

    configs, _ = runlog.map_tuned(fn, [("a",)], [1, 2, 4], [0], score=lambda r: r["val"], max_widen=1,
                                  path=None, settings={})
    assert [c[1] for c in configs] == [1, 2, 4, 8]


def test_the_adder_reads_its_sum_from_the_last_state():
    """Chapter 3's adder answers from h_T: its output is the head of the last position's state, and changing only the
    last input changes it."""
    from seqlab.experiments import recurrence

    torch.manual_seed(0)
    model = recurrence.Adder(8, 0.9)
    x = torch.randn(3, 6, 2)
    h, _ = model.rnn(x)
    assert torch.equal(model(x), model.head(h[:, -1]).squeeze(-1))
    x2 = x.clone()
    x2[:, -1] += 1.0
    assert not torch.allclose(model(x2), model(x))                    # the last input reaches the answer


def test_a_sweeps_resume_command_names_python_on_one_process_and_torchrun_on_several(monkeypatch):
    from seqlab.experiments import scaling

    monkeypatch.setattr(scaling, "world_size", lambda: 1)
    monkeypatch.setattr(scaling.sys, "argv", ["x", "scaling", "--scale", "cpu"])
    assert scaling._command() == "python -m seqlab.experiments scaling --scale cpu"
    monkeypatch.setattr(scaling, "world_size", lambda: 4)
    assert scaling._command().startswith("torchrun --standalone --nproc_per_node=4 -m seqlab.experiments")


def test_a_sweeps_progress_shows_on_rank_zero_only(monkeypatch):
    from seqlab.experiments import scaling

    monkeypatch.setattr(scaling, "rank", lambda: 0)
    assert scaling.Progress(True).show and not scaling.Progress(False).show
    monkeypatch.setattr(scaling, "rank", lambda: 1)
    assert not scaling.Progress(True).show
