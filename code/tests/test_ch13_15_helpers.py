"""Helpers chapters 13.10 and 15 added for the eighth read: each seed's own test windows for the count-table
yardstick (``parallel_rnn.recorded_test_windows``) and the absolute size of the gradient-reach signal
(``architectures.gradient_sizes``)."""
import pytest
import torch

from seqlab import compare
from seqlab.data import CharCorpus
from seqlab.experiments import architectures as arch_exp
from seqlab.experiments import parallel_rnn as pr
from seqlab.seeding import held_out

V = 11


@pytest.fixture(scope="module")
def corpus():
    return CharCorpus()


def _drawn(corpus, s, generator):
    """The windows ``evaluate`` scores, drawn with ``generator``, each with its last target appended."""
    pairs = [corpus.batch("val", 16, s["context"], generator=generator) for _ in range(s["n_eval"])]
    return pairs, torch.cat([torch.cat([x, y[:, -1:]], 1) for x, y in pairs])


def test_recorded_test_windows_are_the_windows_a_recorded_run_is_scored_on(corpus, monkeypatch):
    monkeypatch.delenv("SEQLAB_SEED_OFFSET", raising=False)
    s = pr.SETTINGS["tiny"]
    w = pr.recorded_test_windows(corpus, s, seed=1)
    pairs, expected = _drawn(corpus, s, held_out(1, 1))                  # loss_run's test_loss windows, seed 1
    assert w.shape == (16 * s["n_eval"], s["context"] + 1) and torch.equal(w, expected)
    x = torch.cat([x for x, _ in pairs]); y = torch.cat([y for _, y in pairs])
    assert torch.equal(w[:, :-1], x) and torch.equal(w[:, 1:], y)          # inputs, and the targets shifted by one
    assert not torch.equal(w, pr.recorded_test_windows(corpus, s, seed=2))        # each seed its own windows


def test_recorded_test_windows_ignore_the_seed_offset_of_the_process(corpus, monkeypatch):
    """The study is recorded unshifted, so its windows must not move with SEQLAB_SEED_OFFSET."""
    s = pr.SETTINGS["tiny"]
    monkeypatch.delenv("SEQLAB_SEED_OFFSET", raising=False)
    unshifted = pr.recorded_test_windows(corpus, s, seed=0)
    monkeypatch.setenv("SEQLAB_SEED_OFFSET", "3")
    assert torch.equal(pr.recorded_test_windows(corpus, s, seed=0), unshifted)
    _, shifted = _drawn(corpus, s, held_out(0, 1))                       # what held_out gives under the offset
    assert not torch.equal(shifted, unshifted)


@pytest.mark.parametrize("arch", ["RNN", "Transformer"])
def test_gradient_sizes_are_what_gradient_reach_divides(arch):
    torch.manual_seed(0)
    model = compare.make_model(arch, V, 16)
    x = torch.randint(0, V, (3, 20))
    sizes = arch_exp.gradient_sizes(model, x)
    assert {k: v.shape for k, v in sizes.items()} == {"norm": (20,), "norm64": (20,), "max_entry": (20,)}
    assert torch.allclose(sizes["norm"] / sizes["norm"][0], compare.gradient_reach(model, x))
    assert torch.allclose(sizes["norm64"], sizes["norm"].double(), rtol=1e-5)   # no underflow at this size
    assert (sizes["max_entry"] <= sizes["norm"] * 3 + 1e-12).all()       # an entry is at most the largest of 3 norms


def test_gradient_sizes_show_a_float32_norm_of_0_for_a_gradient_that_is_not_0():
    """Entries of about 1e-24: their squares are below float32's smallest positive number (2^-149), so the norm
    computes to 0 while the entries, and the float64 norm, do not."""
    torch.manual_seed(0)
    model = compare.make_model("RNN", V, 16)
    with torch.no_grad():
        model.head.weight.mul_(1e-24)                                    # the learning signal starts 1e-24 small
    sizes = arch_exp.gradient_sizes(model, torch.randint(0, V, (2, 6)))
    assert sizes["norm"][0] == 0 and sizes["max_entry"][0] > 0 and sizes["norm64"][0] > 0
    assert sizes["max_entry"][0].double() ** 2 < 2.0 ** -149


def test_gradient_sizes_needs_a_family_of_the_table():
    with pytest.raises(ValueError, match="arch must be one of"):
        arch_exp.gradient_sizes(torch.nn.Linear(2, 2), torch.zeros(1, 4, dtype=torch.long))


def test_generation_state_keeps_each_prompts_last_token_and_the_state_after_it():
    """``generation_state``: per model and length, the prompt's last token and the state after the whole prompt,
    fed in pieces (chapter 15): the same state as one forward pass, and the token a step starts from."""
    V, contexts = 11, [5, 9]
    models = {"LSTM": compare.make_model("LSTM", V, 8), "Transformer": compare.make_model("Transformer", V, 8)}
    _, states, _ = arch_exp.generation_state(models, V, contexts, piece=2, generator=torch.Generator().manual_seed(3))
    g = torch.Generator().manual_seed(3)
    for k, T in enumerate(contexts):
        prompt = torch.randint(0, V, (1, T), generator=g)
        for a, m in models.items():
            token, state = states[a][k]
            assert torch.equal(token, prompt[:, -1]), (a, T)
            logits, _ = compare.step(m, token, state)
            whole, _ = compare.forward_state(m, torch.cat([prompt, prompt[:, -1:]], 1), None)
            torch.testing.assert_close(logits, whole[:, -1], atol=1e-5, rtol=1e-4)
