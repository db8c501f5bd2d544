"""One sampling routine, ``sample_next``, behind every ``generate``, checked against softmax(z / T) by hand.

``sample_next`` is compared with a reference written here (``reference_draw``) draw for draw
under the same seed, and its empirical frequencies with ``softmax(z / T)``; then the first token
of ``NGramLM.generate``, ``RecurrentLM.generate`` and ``GPT.generate`` is compared, seed by seed,
with that reference applied to the model's own scores. The logits are spread out on purpose
(a nearly uniform distribution looks the same at every temperature), so a temperature applied
wrongly — not at all, multiplied instead of divided, to the probabilities instead of the
logits — changes some draw and fails.
"""
import pytest
import torch

from seqlab.models import GPT, GPTConfig, NGramLM, RecurrentLM
from seqlab.models.sampling import check_temperature, sample_next

SEEDS = range(150)
LOGITS = torch.tensor([2.0, -1.0, 0.5, 3.0, -2.5, 1.0, 0.0, 2.5])  # spread: T changes the distribution a lot


def reference_probs(z: torch.Tensor, T: float) -> torch.Tensor:
    """softmax(z / T) written out: exp(z_x / T) / sum_y exp(z_y / T), in float64."""
    e = torch.exp((z.double() - z.double().max()) / T)
    return e / e.sum()


def reference_draw(z: torch.Tensor, T: float, seed: int) -> int:
    """The id a correct sampler draws with ``torch.Generator().manual_seed(seed)``."""
    if T == 0:
        return int(z.argmax())
    probs = torch.softmax(z.float().cpu() / T, dim=-1)
    return int(torch.multinomial(probs, 1, generator=torch.Generator().manual_seed(seed)))


@pytest.mark.parametrize("T", [0.5, 1.0, 2.0])
def test_frequencies_follow_softmax_of_logits_over_temperature(T):
    n = 40_000
    ids = sample_next(LOGITS.expand(n, -1), T, torch.Generator().manual_seed(0))  # (n,)
    assert ids.shape == (n,) and ids.dtype == torch.long
    freq = torch.bincount(ids, minlength=len(LOGITS)).double() / n
    p = reference_probs(LOGITS, T)
    sigma = (p * (1 - p) / n).sqrt()
    assert ((freq - p).abs() <= 5 * sigma + 1e-4).all(), (freq, p)
    # the check can fail: the distributions of a wrongly applied temperature are far outside it
    for wrong in (reference_probs(LOGITS, 1.0 / T) if T != 1.0 else reference_probs(LOGITS, 2.0),
                  reference_probs(LOGITS * T, 1.0) if T != 1.0 else reference_probs(LOGITS, 0.5)):
        assert ((freq - wrong).abs() > 5 * sigma + 1e-4).any()


@pytest.mark.parametrize("T", [0.0, 0.3, 1.0, 1.7])
def test_draws_equal_the_reference_seed_by_seed(T):
    for seed in SEEDS:
        got = sample_next(LOGITS, T, torch.Generator().manual_seed(seed))
        assert got.shape == () and int(got) == reference_draw(LOGITS, T, seed), seed


def test_temperature_zero_is_greedy_and_small_temperatures_approach_it():
    z = torch.randn(6, 11, generator=torch.Generator().manual_seed(1))
    assert torch.equal(sample_next(z, 0.0), z.argmax(-1))
    cold = sample_next(z.expand(50, 6, 11), 1e-3, torch.Generator().manual_seed(2))  # (50, 6)
    assert torch.equal(cold, z.argmax(-1).expand(50, 6))
    hot = sample_next(z.expand(50, 6, 11), 5.0, torch.Generator().manual_seed(2))
    assert not torch.equal(hot, z.argmax(-1).expand(50, 6))  # a high temperature does leave the argmax


def test_batched_rows_are_sampled_independently_with_their_own_logits():
    z = torch.full((2, 4), -30.0)
    z[0, 1] = z[1, 3] = 30.0  # row 0 all but surely gives 1, row 1 gives 3
    assert sample_next(z, 1.0, torch.Generator().manual_seed(0)).tolist() == [1, 3]


@pytest.mark.parametrize("call,error,message", [
    (lambda: sample_next(LOGITS, "1"), TypeError, "temperature must be a number"),
    (lambda: sample_next(LOGITS, -0.5), ValueError, "temperature must be a number >= 0"),
    (lambda: sample_next(LOGITS, float("nan")), ValueError, "temperature must be a finite number"),
    (lambda: sample_next(torch.tensor([1, 2, 3]), 1.0), TypeError, "logits must be a floating-point tensor"),
    (lambda: sample_next(torch.tensor(1.0), 1.0), ValueError, "logits must have a vocabulary axis"),
    (lambda: sample_next(LOGITS, 1.0, generator=3), TypeError, "generator must be a torch.Generator or None, got int"),
    (lambda: sample_next(torch.tensor([0.0, float("nan")]), 1.0), ValueError, "not finite"),
    (lambda: check_temperature(True), TypeError, "got bool"),
])
def test_bad_input_raises(call, error, message):
    with pytest.raises(error, match=message):
        call()


# ---------------------------------------------------------------- every generate goes through it
def spread_bias(head: torch.nn.Linear) -> None:
    with torch.no_grad():  # peaked next-token distributions, so the temperature matters
        head.bias.copy_(torch.linspace(-4.0, 4.0, head.out_features)[torch.randperm(head.out_features,
                                                                                  generator=torch.Generator().manual_seed(3))])


@pytest.mark.parametrize("T", [0.0, 0.5, 2.0])
def test_gpt_generate_draws_from_softmax_of_its_logits_over_temperature(T):
    torch.manual_seed(0)
    model = GPT(GPTConfig(vocab_size=9, d_model=16, n_heads=2, n_layers=1, init_std=None)).eval()
    spread_bias(model.head)
    prompt = torch.tensor([3, 1, 4])
    with torch.no_grad():
        z = model(prompt[None])[0][0, -1]  # (V,): the logits of (logits, cache)
    for seed in SEEDS:
        out = model.generate(prompt, 1, temperature=T, generator=torch.Generator().manual_seed(seed))
        assert out[:3].tolist() == prompt.tolist()
        assert int(out[-1]) == reference_draw(z, T, seed), seed


@pytest.mark.parametrize("T", [0.0, 0.5, 2.0])
def test_recurrent_lm_generate_draws_from_softmax_of_its_logits_over_temperature(T):
    torch.manual_seed(0)
    lm = RecurrentLM(9, 5, 7, cell="gru").eval()
    spread_bias(lm.head)
    prompt = torch.tensor([2, 7, 1])
    with torch.no_grad():
        z = lm(prompt[None])[0][0, -1]  # (V,)
    for seed in SEEDS:
        out = lm.generate(prompt, 1, temperature=T, generator=torch.Generator().manual_seed(seed))
        assert int(out[-1]) == reference_draw(z, T, seed), seed


@pytest.mark.parametrize("smoothing", ["add-k", "witten-bell"])
@pytest.mark.parametrize("T", [0.0, 0.5, 2.0])
def test_ngram_generate_draws_from_p_to_the_power_one_over_temperature(smoothing, T):
    g = torch.Generator().manual_seed(0)
    V = 6
    skewed = torch.multinomial(torch.tensor([0.5, 0.25, 0.12, 0.08, 0.04, 0.01]), 2000, replacement=True, generator=g)
    m = NGramLM(2, V, smoothing=smoothing, k=0.1).fit(skewed)
    prompt = torch.tensor([1])
    p = m.probs(torch.tensor([1]))[0]  # p(. | x_prev = 1)
    z = p.log()  # softmax(log p / T) = p^(1/T) / sum p^(1/T)
    if T > 0:
        assert torch.allclose(torch.softmax(z / T, -1), p ** (1 / T) / (p ** (1 / T)).sum(), atol=1e-6)
    for seed in SEEDS:
        out = m.generate(prompt, 1, temperature=T, generator=torch.Generator().manual_seed(seed))
        assert int(out[-1]) == reference_draw(z, T, seed), seed
