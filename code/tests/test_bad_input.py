"""Bad input gets a clear error, never a silent result (issue 11's list, one case per line).

Each call below used to succeed silently (an option dropped, a NaN, an empty tensor, a
non-bool read as True) or to fail obscurely (a comparison between str and int, a
ZeroDivisionError, numpy's message about grad). Each now raises a TypeError or a
ValueError that names what was expected and what came; the good calls next to them
still work (``test_the_good_calls_beside_them_still_work``).
"""
import re

import pytest
import torch

from seqlab import plot
from seqlab.bptt import rnn_bptt, rnn_forward, truncated_forward
from seqlab.data import CharTokenizer, chirp, seasonal_series
from seqlab.models import GPT, LSTM, GPTConfig, NGramLM, RNNCell, TransformerBlock, causal_mask
from seqlab.models.transformer import LayerCache
from seqlab.probes import decay_rate, set_spectral_radius
from seqlab.train import train


def fitted_ngram(order=2, V=4):
    return NGramLM(order, V).fit(torch.tensor([0, 1, 2, 3, 0, 1, 2, 3, 1, 0]))


def tiny_model():
    return torch.nn.Linear(2, 3)


def batch():
    return torch.randn(4, 2), torch.randint(0, 3, (4,))


def bptt_inputs(dtype_x=torch.float64, dtype_g=torch.float64):
    cell = RNNCell(3, 4).double()
    x = torch.randn(2, 5, 3, dtype=torch.float64)
    h_0 = torch.zeros(2, 4, dtype=torch.float64)
    hs = rnn_forward(cell, x, h_0).detach()
    return cell, x.to(dtype_x), h_0, hs, torch.ones(2, 5, 4, dtype=dtype_g)


BAD = [
    # a non-bool read as True (RecurrentLM's fused form refusing another cell's gate bias is tested with
    # the recurrent forms, in test_recurrent.py)
    (lambda: TransformerBlock(8, 2)(torch.randn(1, 3, 8), causal="no"), TypeError, "causal must be a bool, got str"),
    # NGramLM
    (lambda: fitted_ngram().probs(torch.tensor([4])), ValueError, r"ctx \(context codes\) must lie in \[0, 4\), got values in \[4, 4\]"),
    (lambda: fitted_ngram().probs(torch.tensor([-1])), ValueError, r"ctx \(context codes\) must lie in \[0, 4\)"),
    (lambda: fitted_ngram().probs(torch.tensor([1.0])), TypeError, "ctx \\(context codes\\) must be an integer tensor"),
    (lambda: fitted_ngram().probs(torch.tensor([[1]])), ValueError, r"ctx \(context codes\) must be 1-dimensional, got shape \(1, 1\)"),
    (lambda: fitted_ngram().generate(torch.tensor([7]), 3), ValueError, r"prompt must lie in \[0, 4\), got values in \[7, 7\]"),
    (lambda: fitted_ngram().bits_per_char(torch.tensor([0, 1, 2]), start=3), ValueError,
     r"start must be < len\(ids\) = 3 so that at least one symbol is scored, got 3"),
    (lambda: fitted_ngram(order=3).bits_per_char(torch.tensor([0, 1])), ValueError, r"ids must hold at least 3 tokens"),
    (lambda: NGramLM(2, 4, smoothing="add-k", k="0.1"), TypeError, "k must be a number \\(int or float\\), got str '0.1'"),
    (lambda: NGramLM(2, 4, smoothing="add-k", k=0), ValueError, r"k must be positive \(> 0\), got 0"),
    # probes and BPTT
    (lambda: decay_rate(torch.tensor([1.0, 0.5])), ValueError, "a decay rate needs at least 2 norms after skipping 1, got 2 norms"),
    (lambda: decay_rate(torch.tensor([1.0, 0.5, 0.2]), skip=-1), ValueError, "skip must be >= 0, got -1"),
    (lambda: set_spectral_radius(torch.zeros(3, 3), 0.9), ValueError, "W has spectral radius 0.0 .*no rescaling gives it radius 0.9"),
    (lambda: set_spectral_radius(torch.eye(3), "1"), TypeError, "rho must be a number"),
    (lambda: rnn_bptt(*bptt_inputs(dtype_g=torch.float32)), TypeError,
     "grad_h must have the dtype of x and the cell, torch.float64, got dtype torch.float32"),
    (lambda: rnn_bptt(*bptt_inputs(dtype_x=torch.float32)), TypeError, "x must have the cell's dtype torch.float64, got dtype torch.float32"),
    (lambda: truncated_forward(LSTM(3, 4), torch.randn(2, 6, 3), 2, [torch.zeros(1, 2, 4), torch.zeros(1, 2, 4)]),
     TypeError, r"state must be None, a tensor h or a tuple of tensors \(h, c\), got list \(use a tuple, not a list\)"),
    # data
    (lambda: seasonal_series(2, 10, period=0), ValueError, r"period must be positive \(> 0\), got 0"),
    (lambda: seasonal_series(2, 10, noise=-0.1), ValueError, "noise must be >= 0, got -0.1"),
    (lambda: chirp(seconds=1e-4), ValueError, "seconds \\* sample_rate must give at least 2 samples, got 0.0001 s at 8000 Hz = 0 samples"),
    (lambda: chirp(seconds="0.5"), TypeError, "seconds must be a number"),
    (lambda: CharTokenizer("abc").decode([0, 1.0]), TypeError, "ids must be ints, got float 1.0"),
    (lambda: CharTokenizer("abc").decode("ab"), TypeError, "decode takes a 1-D tensor or a list of int ids, got str"),
    # the key/value cache and the GPT's configuration
    (lambda: LayerCache().append(torch.randn(1, 2, 3, 4), torch.randn(1, 2, 5, 4)), ValueError,
     r"k and v must have the same \(B, H, T_new\), one value per key, got shapes \(1, 2, 3, 4\) and \(1, 2, 5, 4\)"),
    (lambda: LayerCache().append(torch.randn(2, 3, 4), torch.randn(2, 3, 4)), ValueError, "k must be 4-dimensional"),
    (lambda: GPTConfig(vocab_size=5, d_ff=0), ValueError, "d_ff must be >= 1, got 0"),
    (lambda: GPTConfig(vocab_size=5, activation="swish"), ValueError, "activation must be one of 'relu', 'gelu', got 'swish'"),
    (lambda: GPTConfig(vocab_size=5, d_model=12, n_heads=4, positions="rope"), ValueError,
     "RoPE rotates pairs, so d_head = d_model / n_heads must be even, got 12 / 4 = 3"),
    # training
    (lambda: train(tiny_model(), batch, steps=2, warmup=-5), ValueError, "warmup must be >= 0, got -5"),
    (lambda: train(tiny_model(), batch, steps=2, clip="1"), TypeError, "clip must be a number \\(int or float\\), got str '1'"),
    (lambda: train(tiny_model(), batch, steps=2, clip=0), ValueError, r"clip must be positive \(> 0\), got 0"),
    (lambda: train(tiny_model(), batch, steps=2, lr=-1e-3), ValueError, r"lr must be positive \(> 0\), got -0.001"),
    (lambda: train(tiny_model(), batch, steps=2, eval_fn="acc"), TypeError, "eval_fn must be callable, got str"),
    # plots
    (lambda: plot.heatmap(torch.randn(3, 3, requires_grad=True), xlabel="key", ylabel="query"), TypeError,
     r"heatmap takes values, not a tensor that requires grad: pass matrix.detach\(\)"),
    (lambda: plot.heatmap([["a", "b"]], xlabel="key", ylabel="query"), TypeError, "heatmap takes a numeric matrix"),
    # masks
    (lambda: causal_mask(3, offset=-1), ValueError, "offset must be >= 0, got -1"),
    (lambda: causal_mask(3, T_k=0), ValueError, "T_k must be >= 1, got 0"),
]


@pytest.mark.parametrize("call,error,message", BAD, ids=[re.sub(r"\W+", "-", m[:40]) for _, _, m in BAD])
def test_bad_input_raises(call, error, message):
    with pytest.raises(error, match=message):
        call()


def test_the_good_calls_beside_them_still_work():
    block = TransformerBlock(8, 2)
    x = torch.randn(1, 3, 8)
    assert not torch.allclose(block(x, causal=True), block(x, causal=False))
    m = fitted_ngram()
    assert m.probs(torch.tensor([0, 3])).shape == (2, 4)
    assert 0 < m.bits_per_char(torch.tensor([0, 1, 2]), start=2) < float("inf")
    assert NGramLM(2, 4, smoothing="add-k", k=1).k == 1.0  # an int k is a number too
    assert abs(decay_rate(torch.tensor([0.25, 0.5, 1.0]), skip=0) - 0.5) < 1e-12  # three points, halving
    W = set_spectral_radius(torch.tensor([[0.0, 2.0], [0.0, 0.5]]), 1.0)
    assert abs(torch.linalg.eigvals(W).abs().max().item() - 1.0) < 1e-6
    assert chirp(seconds=2 / 8000).shape == (1, 2, 1)
    assert CharTokenizer("abc").decode([0, 2]) == CharTokenizer("abc").decode(torch.tensor([0, 2])) == "ac"
    cache = LayerCache()
    k, v = cache.append(torch.randn(1, 2, 3, 4), torch.randn(1, 2, 3, 4))
    assert cache.length == 3
    assert GPT(GPTConfig(vocab_size=5, d_model=16, n_heads=4, positions="rope", d_ff=8, activation="relu"))
    h = train(tiny_model(), batch, steps=3, warmup=0, clip=1, lr=1e-3)
    assert h.steps == 3
    out, state = truncated_forward(LSTM(3, 4), torch.randn(2, 6, 3), 2, (torch.zeros(1, 2, 4), torch.zeros(1, 2, 4)))
    assert out.shape == (2, 6, 4) and isinstance(state, tuple)
    ax = plot.heatmap(torch.randn(3, 3, requires_grad=True).detach(), xlabel="key", ylabel="query")
    assert ax.get_xlabel() == "key"


def test_causal_mask_with_keys_before_the_queries_matches_a_loop():
    for T, T_k, offset in [(1, 1, 0), (3, 3, 0), (2, 5, 3), (3, 7, 2), (4, 2, 0)]:
        m = causal_mask(T, T_k=T_k, offset=offset)
        want = torch.tensor([[j <= i + offset for j in range(T_k)] for i in range(T)])
        assert torch.equal(m, want), (T, T_k, offset)
    assert torch.equal(causal_mask(4), torch.ones(4, 4, dtype=torch.bool).tril())


# ---------------------------------------------------------------- a carried state: one check for every ops family
def test_initial_state_is_zeros_or_checked_naming_what_was_expected():
    from seqlab import _validate as validate
    like = torch.zeros(2, 3, dtype=torch.float64)
    assert torch.equal(validate.initial_state(None, (2, 4), like, dims="(B, H)"), torch.zeros(2, 4, dtype=torch.float64))
    with pytest.raises(ValueError, match=r"state must be h of shape \(B, H\) = \(2, 4\), got \(2, 5\)"):
        validate.initial_state(torch.zeros(2, 5, dtype=torch.float64), (2, 4), like, dims="(B, H)", what="h")
    with pytest.raises(TypeError, match="state must have x's dtype torch.float64, got torch.float32"):
        validate.initial_state(torch.zeros(2, 4), (2, 4), like, dims="(B, H)")


@pytest.mark.parametrize("family", ["ssd", "selective_scan", "s4d", "rglru", "mingru", "gated_linear_attention",
                                    "linear_attention", "delta_rule"])
def test_every_recurrent_family_refuses_a_state_of_another_shape_or_dtype(family):
    from seqlab import ops
    from seqlab.ops.registry import Case, run_form
    fam = ops.FAMILIES[family]
    problem = fam.make(Case(B=2, T=5, D=3, H=4, with_state=True), torch.Generator().manual_seed(0))
    states = problem.state if isinstance(problem.state, tuple) else (problem.state,)
    for form in fam.forms:
        for i in range(len(states)):
            for bad, err in ((states[i][:1], ValueError), (states[i].float(), TypeError)):
                problem.state = (*states[:i], bad, *states[i + 1:]) if len(states) > 1 else bad
                with pytest.raises(err, match="state"):
                    run_form(fam, form, problem)


def test_every_form_of_every_family_refuses_a_sequence_of_no_steps():
    """A scan over no steps has no last state and an empty output hides the mistake: every form of every ops family
    refuses T = 0 with a ValueError that says so (attention: "at least one query"), never an IndexError, a
    RuntimeError from deep inside, or an empty result."""
    from seqlab import ops
    from seqlab.ops.registry import Case, run_form

    assert len(ops.FAMILIES) >= 14
    for name, fam in ops.FAMILIES.items():
        for form in fam.forms:
            problem = fam.make(Case(B=2, T=0, D=3, H=4), torch.Generator().manual_seed(0))
            with pytest.raises(ValueError, match="at least one (time step|query)"):
                run_form(fam, form, problem)
