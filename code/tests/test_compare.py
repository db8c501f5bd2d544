"""Chapter 15's ``seqlab.compare`` (one interface over six architectures) and ``measure.count_flops``."""
import pytest
import torch

from seqlab import compare, measure
from seqlab.models.mixer_lm import MixerLM

V = 11


@pytest.mark.parametrize("arch", compare.ARCHS)
def test_pieces_and_steps_continue_the_state_exactly(arch):
    torch.manual_seed(0)
    model = compare.make_model(arch, V, 16).double().eval()
    x = torch.randint(0, V, (2, 23))
    with torch.no_grad():
        full, _ = compare.forward_state(model, x)
        a, s = compare.forward_state(model, x[:, :9])
        b, s = compare.forward_state(model, x[:, 9:20], s)
        steps = []
        for t in range(20, 23):
            logits, s = compare.step(model, x[:, t], s)
            steps.append(logits)
    together = torch.cat([a, b, torch.stack(steps, 1)], 1)
    assert torch.allclose(together, full, atol=1e-9, rtol=1e-9)


@pytest.mark.parametrize("arch", compare.ARCHS)
def test_every_form_gives_the_same_logits(arch):
    torch.manual_seed(1)
    model = compare.make_model(arch, V, 16).double()
    x = torch.randint(0, V, (2, 21))
    outs = []
    for form in ("reference", "parallel", "fast"):
        compare.set_form(model, form)
        outs.append(model(x)[0])
    for o in outs[1:]:
        assert torch.allclose(o, outs[0], atol=1e-8, rtol=1e-8)


def test_state_of_attention_grows_and_of_recurrences_does_not():
    sizes = {}
    for arch in compare.ARCHS:
        model = compare.make_model(arch, V, 16).eval()
        with torch.no_grad():
            sizes[arch] = [compare.state_bytes(compare.forward_state(model, torch.zeros(1, T, dtype=torch.long))[1])
                           for T in (8, 24)]
    for arch in ("RNN", "LSTM", "linear attention", "SSM"):
        assert sizes[arch][0] == sizes[arch][1] > 0
    assert sizes["Transformer"][1] - sizes["Transformer"][0] == 16 * 2 * 2 * 16 * 4  # 16 tokens, K and V, 2 layers
    assert sizes["hybrid"][1] - sizes["hybrid"][0] == 16 * 2 * 1 * 16 * 4             # one attention layer


def test_depth_per_token_separates_sequential_from_parallel_forms():
    def depth(arch, form, T):
        model = compare.set_form(compare.make_model(arch, V, 8), form)
        return measure.graph_depth(model(torch.zeros(1, T, dtype=torch.long))[0])

    for arch in ("RNN", "LSTM", "linear attention", "SSM", "hybrid"):
        assert depth(arch, "reference", 12) > depth(arch, "reference", 6)
    for arch in ("Transformer", "linear attention", "SSM", "hybrid"):
        assert depth(arch, "parallel", 12) == depth(arch, "parallel", 6)


def test_gradient_reach_is_one_at_distance_zero_and_fades_through_an_rnn():
    torch.manual_seed(2)
    x = torch.randint(0, V, (2, 40))
    r = compare.gradient_reach(compare.make_model("RNN", V, 16), x)
    assert r.shape == (40,) and r[0] == pytest.approx(1.0)
    assert r[30] < 1e-3 * r[1]
    r = compare.gradient_reach(compare.make_model("Transformer", V, 16), x)
    assert r[39] > 1e-3


def test_width_for_parameters_picks_the_nearest_count():
    w = compare.width_for_parameters("LSTM", V, 5000, range(4, 64, 4))
    count = lambda w: measure.count_parameters(compare.make_model("LSTM", V, w))  # noqa: E731
    assert all(abs(count(w) - 5000) <= abs(count(o) - 5000) for o in range(4, 64, 4))
    assert compare.width_for_parameters("Transformer", V, 5000, range(4, 64, 4)) % 8 == 0  # d / heads even


def test_verdict_rule():
    assert compare.verdict(2.0, 1.5, "high", "low") == "high"
    assert compare.verdict(1.5, 1.5, "high", "low") == "high"          # at the threshold: the upper word
    assert compare.verdict(1.0, 1.5, "high", "low") == "low"


def test_quantize_maps_a_signal_onto_every_level_in_range():
    x = torch.linspace(-1, 1, 101)[None]
    q = compare.quantize(x, 4)
    assert q.dtype == torch.long and q.min() == 0 and q.max() == 3
    assert (q[:, :-1] <= q[:, 1:]).all()                                          # monotone
    fine = torch.linspace(-1, 1, 2001)[None]
    assert compare.quantize(fine[..., None] * 0.01, 16, mu=255.0).unique().numel() == 16   # scaled to [-1, 1] first
    quiet = fine.abs() < 0.1                                                       # μ-law spends more levels on quiet samples
    assert (compare.quantize(fine, 16, mu=255.0)[quiet].unique().numel()
            > compare.quantize(fine, 16)[quiet].unique().numel())


def test_bad_input_is_named():
    with pytest.raises(ValueError, match="arch must be one of"):
        compare.make_model("GRU-ish", V, 8)
    with pytest.raises(ValueError, match="form must be"):
        compare.make_model("RNN", V, 8, form="fused")
    with pytest.raises(ValueError, match="2 layers"):
        compare.make_model("hybrid", V, 8, n_layers=3)
    model = compare.make_model("SSM", V, 8)
    assert isinstance(model, MixerLM)
    with pytest.raises(ValueError, match="token ids|must lie in"):
        compare.forward_state(model, torch.full((1, 3), V))
    with pytest.raises(ValueError, match="state must be the list of 2 layer states"):
        compare.forward_state(model, torch.zeros(1, 3, dtype=torch.long), state=(1, 2))
    _, state = compare.forward_state(model, torch.zeros(1, 3, dtype=torch.long))
    with pytest.raises(ValueError, match=r"SSMLayer: the state does not belong .* expected \(float32\(2, 3, 16\)"):
        compare.forward_state(model, torch.zeros(2, 3, dtype=torch.long), state=state)  # a batch of 1, not 2
    with pytest.raises(ValueError, match=r"\(B, T\) or \(B, T, 1\)"):
        compare.quantize(torch.zeros(1, 3, 2), 4)
    with pytest.raises(TypeError):
        compare.quantize(torch.zeros(1, 3, dtype=torch.long), 4)


def test_count_flops_counts_a_matrix_product_exactly():
    a, b = torch.randn(3, 5, 7), torch.randn(7, 4)
    assert measure.count_flops(lambda: a @ b) == 2 * 3 * 5 * 7 * 4
    assert measure.count_flops(lambda: a + 1) == 0                                # elementwise work is not counted
    with pytest.raises(TypeError):
        measure.count_flops(3)
