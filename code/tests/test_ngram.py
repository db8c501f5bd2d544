import math

import pytest
import torch

from seqlab.models import NGramLM, uniform_bits
from seqlab.models.ngram import context_codes


def test_context_codes_hand_checked():
    ids = torch.tensor([1, 2, 0, 1])
    assert context_codes(ids, 2, 3).tolist() == [1 * 3 + 2, 2 * 3 + 0, 0 * 3 + 1]
    assert context_codes(ids, 0, 3).tolist() == [0] * 5


def test_bigram_probabilities_by_hand():
    # "abab" + "a": a->b three times... counts: a->b 2, b->a 2
    ids = torch.tensor([0, 1, 0, 1, 0])
    m = NGramLM(2, 3, smoothing="add-k", k=1.0).fit(ids)
    p = m.probs(torch.tensor([0, 1, 2]))
    assert torch.allclose(p[0], torch.tensor([1, 3, 1]) / 5.0)  # after a: (0+1, 2+1, 0+1)/(2+3)
    assert torch.allclose(p[1], torch.tensor([3, 1, 1]) / 5.0)
    assert torch.allclose(p[2], torch.full((3,), 1 / 3))  # unseen context: uniform


def test_log_prob_matches_a_loop():
    g = torch.Generator().manual_seed(0)
    ids = torch.randint(0, 4, (300,), generator=g)
    m = NGramLM(3, 4, smoothing="add-k", k=0.5).fit(ids[:200])
    test = ids[200:]
    want = []
    for t in range(2, len(test)):
        ctx = test[t - 2 : t]
        match = [(ids[i : i + 2] == ctx).all() and True for i in range(198)]
        n_ctx = sum(bool(x) for x in match)
        n_cx = sum(bool(x) and ids[i + 2] == test[t] for i, x in enumerate(match))
        want.append(math.log2((n_cx + 0.5) / (n_ctx + 0.5 * 4)))
    assert torch.allclose(m.log_prob(test), torch.tensor(want), atol=1e-5)


def test_probabilities_sum_to_one_and_unigram_is_frequencies():
    ids = torch.tensor([0, 0, 0, 1])
    m = NGramLM(1, 2, smoothing="add-k", k=1e-9).fit(ids)
    assert torch.allclose(m.probs(torch.tensor([0]))[0], torch.tensor([0.75, 0.25]), atol=1e-6)
    for smoothing in ("add-k", "witten-bell"):
        m = NGramLM(3, 5, smoothing=smoothing).fit(torch.randint(0, 5, (100,)))
        assert torch.allclose(m.probs(torch.arange(25)).sum(1), torch.ones(25))


def test_a_deterministic_text_costs_almost_nothing():
    ids = torch.tensor([0, 1, 2] * 50)
    m = NGramLM(2, 3, smoothing="add-k", k=1e-6).fit(ids)
    assert m.bits_per_char(ids) < 1e-3
    assert NGramLM(1, 3, smoothing="add-k").fit(ids).bits_per_char(ids) == pytest.approx(math.log2(3), abs=1e-3)


def test_shared_start_scores_the_same_symbols():
    ids = torch.randint(0, 3, (50,))
    assert len(NGramLM(1, 3).fit(ids).log_prob(ids, start=4)) == len(NGramLM(5, 3).fit(ids).log_prob(ids, start=4))


def test_generate_follows_the_text():
    ids = torch.tensor([0, 1, 2] * 50)
    m = NGramLM(2, 3, smoothing="add-k", k=1e-6).fit(ids)
    out = m.generate(torch.tensor([1]), 8, generator=torch.Generator().manual_seed(0))
    assert out.tolist() == [1, 2, 0, 1, 2, 0, 1, 2, 0]


def witten_bell_by_hand(train, context, x, V):
    """The recursive definition, with Python counting over the training list."""
    if len(context) == 0:
        follow = train
    else:
        j = len(context)
        follow = [train[i + j] for i in range(len(train) - j) if train[i : i + j] == list(context)]
    lower = witten_bell_by_hand(train, context[1:], x, V) if len(context) > 0 else 1.0 / V
    N, T = len(follow), len(set(follow))
    if N == 0:
        return lower
    lam = N / (N + T)
    return lam * follow.count(x) / N + (1 - lam) * lower


def test_witten_bell_matches_the_recursive_definition():
    g = torch.Generator().manual_seed(1)
    train = torch.randint(0, 4, (120,), generator=g)
    test = torch.randint(0, 4, (30,), generator=g)
    m = NGramLM(3, 4, smoothing="witten-bell").fit(train)
    want = [math.log2(witten_bell_by_hand(train.tolist(), test[t - 2 : t].tolist(), test[t].item(), 4)) for t in range(2, 30)]
    assert torch.allclose(m.log_prob(test), torch.tensor(want), atol=1e-5)
    # the full rows agree with the per-target path
    ctx = torch.arange(16)
    rows = m.probs(ctx)
    for x in range(4):
        assert torch.allclose(rows[:, x], m._p(ctx, torch.full((16,), x)))


def test_truncated_equals_a_model_fitted_at_that_order():
    ids = torch.randint(0, 5, (400,), generator=torch.Generator().manual_seed(2))
    big = NGramLM(5, 5).fit(ids)
    for order in (1, 2, 4):
        assert torch.allclose(big.truncated(order).log_prob(ids, start=4), NGramLM(order, 5).fit(ids).log_prob(ids, start=4))
    with pytest.raises(ValueError, match="order must be <= 5"):
        big.truncated(6)
    with pytest.raises(ValueError, match="Witten-Bell"):
        NGramLM(3, 5, smoothing="add-k").fit(ids).truncated(2)


def test_witten_bell_never_leaves_the_text_for_good():
    """An unseen context backs off instead of going uniform: a sample keeps producing text-like symbols."""
    ids = torch.tensor([0, 1, 2, 3] * 40)  # symbol 4 never appears
    m = NGramLM(4, 5, smoothing="witten-bell").fit(ids)
    out = m.generate(torch.tensor([4, 4, 4]), 40, generator=torch.Generator().manual_seed(0))
    assert (out[3:] == 4).float().mean() < 0.2


def test_errors():
    with pytest.raises(ValueError, match="smoothing must be one of"):
        NGramLM(2, 3, smoothing="kneser-ney")
    with pytest.raises(ValueError, match="k must be positive"):
        NGramLM(2, 3, k=0)
    with pytest.raises(RuntimeError, match="fit"):
        NGramLM(2, 3).probs(torch.tensor([0]))
    m = NGramLM(3, 3).fit(torch.tensor([0, 1, 2, 0]))
    with pytest.raises(ValueError, match="ids must lie in"):
        m.log_prob(torch.tensor([0, 1, 5]))
    with pytest.raises(TypeError, match="integer tensor"):
        m.log_prob(torch.tensor([0.0, 1.0, 2.0]))
    with pytest.raises(ValueError, match="start must be"):
        m.log_prob(torch.tensor([0, 1, 2, 0]), start=1)
    with pytest.raises(ValueError, match="overflows"):
        NGramLM(12, 103)
    assert uniform_bits(8) == 3.0


@pytest.mark.parametrize("n_ctx", [0, 1, 2])
def test_counts_of_each_pair_are_their_definitions_seen_or_not(n_ctx):
    """N(c, x), N(c) and T(c) by a Counter over the text, for seen and unseen contexts: both count tables agree
    with it, and an unseen context has zero counts (not a division by its zero 'seen' flag)."""
    from collections import Counter

    from seqlab.models.ngram import _Counts, _SparseCounts, context_codes

    V = 4
    ids = torch.tensor([0, 1, 2, 0, 1, 0, 1, 2, 2, 0, 1, 1])   # symbol 3 never occurs: contexts with it are unseen
    ctx = context_codes(ids[:-1], n_ctx, V).tolist()
    pairs = Counter(zip(ctx, ids[n_ctx:].tolist()))
    totals = Counter(ctx)
    queries = [(c, x) for c in range(V ** n_ctx) for x in range(V)]
    q_ctx, q_x = (torch.tensor(v) for v in zip(*queries))
    for table in (_Counts(ids, n_ctx, V), _SparseCounts(ids, n_ctx, V)):
        n_cx, n_c, t_c = (t.tolist() for t in table.of(q_ctx, q_x))
        for (c, x), a, b, d in zip(queries, n_cx, n_c, t_c):
            assert (a, b, d) == (pairs[c, x], totals[c], sum(1 for (c2, _) in pairs if c2 == c)), (type(table), c, x)
    if n_ctx:
        assert any(totals[c] == 0 for c, _ in queries)   # the check covered unseen contexts
