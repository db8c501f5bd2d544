"""Code computed one way only, tested against its definition (issue 23, §7).

A mutation run found one-line bugs that every test let through, each in code that has no second
implementation to be compared with: a feature map's constant, an embedding's scale, a bootstrap's
sample size, an eigenvalue statistic, a head index, a count's weighting, a training option, an
initialisation, a convolution's padding, a parameter count. Each test here states the definition
the docstring promises and checks the code against it, by hand or by a property that the bug breaks.
"""
from __future__ import annotations

import copy
import math

import pytest
import torch
import torch.nn.functional as F

from seqlab import compare, interpret
from seqlab.data.bpe import BytePairEncoder
from seqlab.experiments import scaling
from seqlab.models import GPT, GPTConfig
from seqlab.models.encoder_decoder import EncoderDecoder, EncoderDecoderConfig
from seqlab.models.minrnn import MinRNNLM
from seqlab.models.ssm import SSMConfig, SSMLayer
from seqlab.ops import linear_attention as la
from seqlab.train import train


# ------------------------------------------------------------------------------------- feature maps
def test_taylor_feature_map_gives_the_second_order_taylor_series_of_exp():
    """φ(q)·φ(k) = 1 + q·k + (q·k)²/2 (the docstring's promise), for random q, k."""
    g = torch.Generator().manual_seed(0)
    q, k = torch.randn(50, 5, generator=g, dtype=torch.float64), torch.randn(50, 5, generator=g, dtype=torch.float64)
    dot = (q * k).sum(-1)
    got = (la.feature_map(q, "taylor") * la.feature_map(k, "taylor")).sum(-1)
    torch.testing.assert_close(got, 1 + dot + dot ** 2 / 2)
    assert la.feature_map(q, "taylor").shape[-1] == la.feature_dim(5, "taylor")


def test_elu1_and_identity_feature_maps_by_hand():
    x = torch.tensor([-2.0, 0.0, 3.0], dtype=torch.float64)
    torch.testing.assert_close(la.feature_map(x, "elu1"), torch.tensor([math.exp(-2.0), 1.0, 4.0], dtype=torch.float64))
    assert torch.equal(la.feature_map(x, "identity"), x)


# ------------------------------------------------------------------------------- encoder-decoder
def test_encoder_decoder_scales_embeddings_by_sqrt_d():
    """Both stacks read √d · E[x_t] + p_t (Vaswani et al.): forward equals the stacks on embeddings built by hand."""
    torch.manual_seed(0)
    d = 16
    model = EncoderDecoder(EncoderDecoderConfig(src_vocab=7, tgt_vocab=9, d_model=d, n_heads=2, n_layers=1)).double()
    src, tgt = torch.randint(0, 7, (2, 5)), torch.randint(0, 9, (2, 4))
    p = lambda T: model.positions(torch.zeros(1, T, d, dtype=torch.float64), 0)  # noqa: E731  the p_t alone
    x = model.src_embed.weight[src] * math.sqrt(d) + p(5)
    y = model.tgt_embed.weight[tgt] * math.sqrt(d) + p(4)
    want = model.head(model.decode_embedded(y, model.encode_embedded(x)))
    torch.testing.assert_close(model(src, tgt)[0], want)


# -------------------------------------------------------------------------------------- scaling
def test_bootstrap_resamples_every_window_of_each_size():
    """Resampling n windows gives an interval ∝ 1/√n: four times the windows, about half the width."""
    g = torch.Generator().manual_seed(1)
    N = [1e4, 3e4, 1e5, 3e5]

    def windows(n):
        return [(2.0 * N_i ** -0.1 + 0.05 * torch.randn(n, generator=g, dtype=torch.float64)).tolist() for N_i in N]

    w50 = windows(50)
    w200 = [w * 4 for w in w50]  # the same values, four times as many windows
    a = scaling.bootstrap_exponent(N, w50, n_boot=300, seed=0, irreducible=False)
    b = scaling.bootstrap_exponent(N, w200, n_boot=300, seed=0, irreducible=False)
    assert a["lo"] < a["alpha"] < a["hi"]
    ratio = (a["hi"] - a["lo"]) / (b["hi"] - b["lo"])
    assert 1.5 < ratio < 2.7, ratio


def test_six_n_counts_non_embedding_parameters():
    """6N uses N without the token embedding, the positions and the head (Kaplan et al.), by hand."""
    model = GPT(GPTConfig(vocab_size=50, d_model=32, n_heads=4, n_layers=2, max_len=64))
    total = sum(p.numel() for p in model.parameters())
    vocab = sum(p.numel() for m in (model.embed, model.head, model.positions) for p in m.parameters())
    assert scaling.flops_per_token(model, 64)["6N"] == 6 * (total - vocab)
    assert scaling.count_parameters(model) == {"total": total, "non_embedding": total - vocab}


# ------------------------------------------------------------------------------- interpretability
def test_copying_score_of_a_non_symmetric_matrix_is_its_eigenvalue_ratio():
    """Σ Re λ / Σ |λ| over the eigenvalues of OV itself, not of its symmetric part."""
    shear = torch.tensor([[1.0, 3.0], [0.0, 1.0]], dtype=torch.float64)  # eigenvalues 1, 1; symmetric part's 2.5, −0.5
    assert abs(interpret.copying_score(shear).item() - 1.0) < 1e-12
    g = torch.Generator().manual_seed(2)
    ov = torch.randn(3, 6, 6, generator=g, dtype=torch.float64)
    lam = torch.linalg.eigvals(ov)
    torch.testing.assert_close(interpret.copying_score(ov), lam.real.sum(-1) / lam.abs().sum(-1))


@pytest.mark.parametrize("layer", [0, 1])
def test_ablate_head_zeroes_exactly_that_head_for_every_index(layer):
    """Ablating head h equals zeroing the columns of W_O that read head h, for every h (and layer)."""
    torch.manual_seed(3)
    model = GPT(GPTConfig(vocab_size=11, d_model=24, n_heads=3, n_layers=2, max_len=16)).double().eval()
    x = torch.randint(0, 11, (2, 9))
    base = model(x)[0]
    d_head = 24 // 3
    for head in range(3):
        edited = copy.deepcopy(model)
        with torch.no_grad():
            edited.blocks[layer].attn.W_o.weight[:, head * d_head:(head + 1) * d_head] = 0.0
        with interpret.ablate_head(model, layer, head):
            got = model(x)[0]
        torch.testing.assert_close(got, edited(x)[0])
        assert not torch.allclose(got, base)
    torch.testing.assert_close(model(x)[0], base)  # the hook is gone


# ------------------------------------------------------------------------------------------- data
def test_bpe_counts_pairs_weighted_by_word_frequency():
    """' cd' three times outweighs 'ab' once: the first merge is (c, d), though each pair sits in one distinct word."""
    bpe = BytePairEncoder.train("ab cd cd cd", 1)
    assert bpe.merges == [("c", "d")]


# ----------------------------------------------------------------------------------------- training
def test_weight_decay_shrinks_weights_by_the_adamw_factor():
    """With zero gradients, AdamW's decoupled decay alone acts: p ← p (1 − lr·wd) per step."""
    torch.manual_seed(4)
    model = torch.nn.Linear(3, 2)
    before = [p.detach().clone() for p in model.parameters()]
    lr, wd, steps = 0.1, 0.5, 4
    batch = lambda: (torch.randn(5, 3), torch.zeros(5, 2))  # noqa: E731
    train(model, batch, steps=steps, lr=lr, weight_decay=wd, loss_fn=lambda out, y: (out * 0).sum(), progress=False)
    for p0, p in zip(before, model.parameters()):
        torch.testing.assert_close(p.detach(), p0 * (1 - lr * wd) ** steps)


def test_train_decays_no_weight_by_default():
    """weight_decay defaults to 0: with zero gradients the default AdamW step leaves every parameter as it was."""
    torch.manual_seed(4)
    model = torch.nn.Linear(3, 2)
    before = [p.detach().clone() for p in model.parameters()]
    batch = lambda: (torch.randn(5, 3), torch.zeros(5, 2))  # noqa: E731
    train(model, batch, steps=3, lr=0.1, loss_fn=lambda out, y: (out * 0).sum(), progress=False)
    for p0, p in zip(before, model.parameters()):
        assert torch.equal(p.detach(), p0)


# ------------------------------------------------------------------------------------- the selective layer
def test_selective_layer_state_decays_at_initialisation():
    """A = −exp(A_log) < 0: on a long random input the layer's output stays the size it starts at, never grows."""
    torch.manual_seed(5)
    layer = SSMLayer(SSMConfig(d_model=8, d_state=4, selective=True)).double()
    x = torch.randn(1, 600, 8, dtype=torch.float64)
    y = layer(x)[0]
    assert torch.isfinite(y).all() and y[0, -100:].abs().max() < 3 * y[0, :100].abs().max()


def test_selective_layer_delta_starts_log_uniform_in_its_range():
    """softplus(b_Δ) = Δ ∈ [dt_min, dt_max] at initialisation: the bias is softplus's inverse of Δ."""
    torch.manual_seed(6)
    c = SSMConfig(d_model=32, d_state=4, selective=True, dt_min=1e-3, dt_max=1e-1)
    layer = SSMLayer(c)
    dt = F.softplus(layer.dt_proj.bias.detach().double())
    assert dt.min() >= c.dt_min * (1 - 1e-4) and dt.max() <= c.dt_max * (1 + 1e-4)
    assert dt.log().std() > 0.5  # spread over the two decades in log, not one value


# ------------------------------------------------------------------------------------- causality
def _lm_models():
    out = [(arch, compare.make_model(arch, 13, 16)) for arch in compare.ARCHS]
    out.append(("minGRU", MinRNNLM(13, 16, 2)))
    try:  # the short convolution before attention mixers (until the models move to one shell)
        from seqlab.models.mixer_lm import MixerLM, MixerLMConfig, MIXERS
        out += [(f"MixerLM-{m}", MixerLM(MixerLMConfig(vocab_size=13, mixer=m, d_model=16, n_heads=2))) for m in MIXERS]
    except ImportError:
        pass
    return out


@pytest.mark.parametrize("name,model", _lm_models(), ids=lambda v: v if isinstance(v, str) else "")
def test_language_models_read_no_future_token(name, model):
    """The logits at t are unchanged when any token after t changes: no layer reads ahead."""
    torch.manual_seed(7)
    model = model.double().eval() if name != "LSTM" else model.eval()
    x = torch.randint(0, 13, (2, 12))
    x2 = x.clone()
    x2[:, 7:] = (x[:, 7:] + 1 + torch.randint(0, 11, (2, 5))) % 13
    def out(t):
        if getattr(model, "arch", None) in compare.ARCHS:
            return compare.forward_state(model, t)[0]
        y = model(t)
        return y[0] if isinstance(y, tuple) else y

    a, b = out(x), out(x2)
    torch.testing.assert_close(a[:, :7], b[:, :7])
    assert not torch.allclose(a[:, 7:], b[:, 7:])


@pytest.mark.parametrize("use_cache", [True, False])
def test_generate_reaches_max_len_exactly(use_cache):
    """A prompt of P tokens plus `length` new ones needs P + length − 1 positions: exactly max_len is allowed.

    (The last sampled token is never fed back: one more forward pass would read position max_len.)
    """
    torch.manual_seed(8)
    model = GPT(GPTConfig(vocab_size=7, d_model=8, n_heads=2, n_layers=1, max_len=8, positions="learned")).eval()
    out = model.generate(torch.tensor([1, 2, 3]), 6, temperature=0.0, use_cache=use_cache)
    assert out.shape == (9,) and torch.equal(out[:3], torch.tensor([1, 2, 3]))


def test_ngram_generate_needs_exactly_order_minus_one_symbols():
    """A trigram model's prompt needs 2 symbols: 1 is refused with a ValueError, 2 is enough."""
    from seqlab.models.ngram import NGramLM
    model = NGramLM(3, 4).fit(torch.tensor([0, 1, 2, 3, 0, 1, 2, 3, 1, 2]))
    with pytest.raises(ValueError, match="at least order-1 = 2"):
        model.generate(torch.tensor([1]), 3, temperature=0.0)
    assert model.generate(torch.tensor([1, 2]), 3, temperature=0.0).shape == (5,)


# ------------------------------------------------------------------------------------- the cosine schedule
def test_cosine_schedule_reaches_its_floor_at_the_last_step_of_a_short_run_and_stays_there():
    """u = (t − warmup) / (steps − warmup − 1) reaches 1 at t = steps − 1 for every run length (here the
    shortest with a decay, two steps after warm-up), and min(1, u) keeps the floor ``final · lr`` after it."""
    f = scaling.cosine_schedule(2.0, steps=5, warmup=3, final=0.25)
    assert f(3) == pytest.approx(2.0) and f(4) == pytest.approx(0.5)
    assert [f(t) for t in (5, 6, 8)] == pytest.approx([0.5] * 3)


# ------------------------------------------------------------------------------------- the minGRU language model
def test_min_rnn_lm_is_pre_norm_residual_blocks_by_hand():
    """h ← h + mixer(LN₁ h); h ← h + MLP(LN₂ h) per layer, then head(LN h) (the docstring's Pre-Norm blocks)."""
    torch.manual_seed(9)
    model = MinRNNLM(11, 8, n_layers=2, form="loop").double()
    x = torch.randint(0, 11, (2, 6))
    h = model.embed(x)
    for i in range(2):
        h = h + model.mixers[i](model.norms1[i](h))[0]
        h = h + model.mlps[i](model.norms2[i](h))
    torch.testing.assert_close(model(x)[0], model.head(model.norm(h)))


# ------------------------------------------------------------------------------------- the selective layer's gate
@pytest.mark.parametrize("heads", [None, 2])
def test_selective_layer_maps_zero_input_to_zero(heads):
    """y = W_out (SSM(u) ⊙ SiLU(z)) with z = W_z x and no biases (Mamba): SiLU(0) = 0, so x = 0 gives y = 0."""
    torch.manual_seed(10)
    layer = SSMLayer(SSMConfig(d_model=8, d_state=4, selective=True, heads=heads))
    y = layer(torch.zeros(2, 5, 8))[0]
    assert torch.equal(y, torch.zeros_like(y))


# ------------------------------------------------------------------------------------- chapter 1's n-gram table
def test_ngram_table_lists_every_order_from_one():
    """The record's ``orders`` are 1..max_order, one bits-per-character value each, and ``best_order`` is the
    order of the lowest validation bits of Witten–Bell."""
    from seqlab.experiments import sequences
    r = sequences.ngrams("tiny")
    orders = list(range(1, sequences.SETTINGS["tiny"]["max_order"] + 1))
    assert r["orders"] == orders
    assert all(len(b) == len(orders) for splits in r["bits"].values() for b in splits.values())
    val = r["bits"]["witten-bell"]["val"]
    assert r["best_order"] == orders[val.index(min(val))]
    assert "summary_lines" not in r                                        # data only; the renderer makes the table
    assert sequences.render_ngrams(r)[0].split()[2:] == [f"n={n}" for n in orders]


# ------------------------------------------------------------------------------------- chapter 15's step cost
def test_step_cost_counts_every_state_and_times_the_last(monkeypatch):
    """``step_work[a]`` is the FLOP of one step from each state in turn; ``latency[a]`` is timed from the last."""
    from seqlab.experiments import architectures
    seen = []

    def step(model, token, n):  # a step that returns its state's size, as the work counted (no FLOP counter)
        seen.append(n)
        return n

    monkeypatch.setattr(architectures.compare, "set_form", lambda model, form: None)
    monkeypatch.setattr(architectures.compare, "step", step)
    monkeypatch.setattr(architectures, "count_flops", lambda fn: fn())
    work, latency = architectures.step_cost({"m": None}, {"m": [(0, 3), (0, 5), (0, 8)]}, rounds=2)
    assert work == {"m": [3, 5, 8]} and set(latency) == {"m"}
    assert seen[:3] == [3, 5, 8] and len(seen) > 3 and set(seen[3:]) == {8}


# ------------------------------------------------------------------------------------- committed run logs
def test_committed_run_logs_were_made_with_the_settings_in_the_code():
    """Each chapter's logged sweep finds its committed runs: the log holds lines under the fingerprint of the
    settings the code passes (or of an accepted earlier form). A changed setting would rerun the whole sweep
    when the page is built, or, unlogged, leave results that no longer match the code."""
    from seqlab.experiments import hybrid, longrange, recall, runlog
    from seqlab.experiments import ssm as ssm_exp
    sweeps = {"copying": (runlog.per_run(ssm_exp.SETTINGS["quick"], ssm_exp.GRID_KEYS), ()), "hybrid_recall": (hybrid.SETTINGS["quick"], ()),
              "recall": (runlog.per_run(recall.SETTINGS["quick"], recall.GRID_KEYS), recall.LEGACY["quick"]),
              "longrange": (runlog.per_run(longrange.SETTINGS["quick"], longrange.GRID_KEYS),
                            longrange.LEGACY["quick"])}
    for name, (settings, legacy) in sweeps.items():
        path = runlog.log_path(name, "quick")
        assert path is not None and path.exists(), name
        assert runlog.read(path, runlog.fingerprint(settings)) or any(runlog.read(path, fp) for fp in legacy), name


# ------------------------------------------------------------------------------------- chapter 5's training recipe
def test_fit_seq2seq_trains_with_the_recipe_its_docstring_states(monkeypatch):
    """Teacher forcing, AdamW with weight decay 0.01, the gradient norm clipped at 1, the given steps and lr."""
    from seqlab.experiments import attention as att
    seen = {}
    monkeypatch.setattr(att, "train", lambda model, batches, **kw: seen.update(kw))
    model = torch.nn.Linear(1, 1)
    assert att.fit_seq2seq(model, None, steps=7, batch=3, lr=0.02) is model and not model.training
    assert (seen["weight_decay"], seen["clip"], seen["steps"], seen["lr"]) == (0.01, 1.0, 7, 0.02)
    assert seen["step_loss"] is att.teacher_forced_loss


# ------------------------------------------------------------------------------------- the scaling study's design
def test_scaling_lr_grids_are_geometric_and_pairs_are_swept_widths():
    """Every scale's learning-rate grid, per family, rises by one constant factor (evenly spaced in log lr, as a
    bracket of the optimum needs); the pair compared at matched size is a width the sweep trains."""
    for scale, s in scaling.SETTINGS.items():
        for f in scaling.FAMILIES:
            lrs = s["lrs"][f]
            ratios = [b / a for a, b in zip(lrs, lrs[1:])]
            assert ratios and min(ratios) > 1 and max(ratios) == pytest.approx(min(ratios)), (scale, f, lrs)
            assert s["widths"][f] == sorted(set(s["widths"][f])) and s["pair"][f] in s["widths"][f], (scale, f)


# ------------------------------------------------------------------------------------- MixerLM's mixers
def test_mixer_lm_gates_exactly_its_gated_linear_mixer():
    """'gated_linear' is linear attention with a per-channel forget gate; 'linear' is the ungated, normalised form."""
    from seqlab.models.mixer_lm import MixerLMConfig, make_mixer
    gate = {m: make_mixer(MixerLMConfig(vocab_size=5, mixer=m, d_model=8, n_heads=2)).mixer.config.gate
            for m in ("linear", "gated_linear")}
    assert gate == {"linear": None, "gated_linear": "channel"}


# ------------------------------------------------------------------------------------- found by seed 12 (seen)
def test_paired_bootstrap_interval_is_the_documented_order_statistics():
    """lo, hi = the ⌊0.025 (n − 1)⌋-th and ⌈0.975 (n − 1)⌉-th of the n sorted replicate statistics
    (n = 40: the smallest and the largest, as 0.025 · 39 < 1 and 0.975 · 39 > 38)."""
    seen = []

    def stat(means):
        seen.append(means["a"])
        return means["a"]

    g = torch.Generator().manual_seed(3)
    r = scaling.paired_bootstrap(stat, {"a": torch.randn(30, generator=g).tolist()}, n_boot=40)
    reps = sorted(seen[1:])  # the first call is on all windows
    assert r["n"] == len(reps) == 40 and r["value"] == seen[0]
    assert (r["lo"], r["hi"]) == (reps[0], reps[39])


def test_min_rnn_refuses_a_misshapen_weight_by_its_name():
    """A 3-D W_z is refused with a ValueError that names W_z (the first weight), not another argument."""
    from seqlab.ops import minrnn
    x = torch.randn(2, 3, 4)
    with pytest.raises(ValueError, match="^W_z must be 2-dimensional"):
        minrnn.mingru_loop(x, torch.randn(5, 4, 1), torch.randn(5), torch.randn(5, 4), torch.randn(5))


def test_attention_refuses_an_infinite_scale():
    """scale must be positive and finite: ∞ is refused like 0 (its scores would be ±∞, its weights NaN)."""
    from seqlab.ops.attention import scaled_dot_product_attention
    q = torch.randn(1, 1, 2, 4)
    for bad in (math.inf, 0.0):
        with pytest.raises(ValueError, match="scale must be a positive finite number"):
            scaled_dot_product_attention(q, q, q, scale=bad)
