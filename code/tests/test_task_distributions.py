"""What each generator in ``seqlab.data`` samples: its support, and that it is roughly uniform.

The hand-checked tests (test_tasks.py) show that one sample is *right*; these show that the
samples cover *everything they should*, as often as they should: every queried pair of the
associative-recall task (the last one too), every step of the adding problem's second half
(the last one too), every length of the reversal task, every start of a corpus window, ...
A generator that never produces one case (an off-by-one in a ``randint`` bound) passes every
hand check and fails here.

``assert_uniform`` compares counts over K categories with n p, p = 1/K, allowing 5 standard
deviations sqrt(n p (1 - p)) either way and requiring every category to occur; the samples are
seeded, and with K <= 128 a correct generator is outside the band with probability < 1e-4.
"""
import math

import pytest
import torch

from seqlab.data import (IGNORE, AddingProblem, AssociativeRecall, CharCorpus, CopyTask, DelayedRecall, MarkerOrder,
                         RepeatedSequence, ReverseTask, SelectiveCopy, dna_with_motif)


def assert_uniform(values: torch.Tensor, low: int, high: int, what: str) -> None:
    """``values`` (any shape) take every integer in [low, high) and each about equally often."""
    values = values.flatten()
    assert values.min() >= low and values.max() < high, f"{what}: values outside [{low}, {high})"
    counts = torch.bincount(values - low, minlength=high - low).double()
    n, K = len(values), high - low
    expected, sigma = n / K, math.sqrt(n * (1 / K) * (1 - 1 / K))
    missing = (counts == 0).nonzero().flatten() + low
    assert len(missing) == 0, f"{what}: never sampled {missing.tolist()} (of [{low}, {high}))"
    worst = (counts - expected).abs().max().item()
    assert worst <= 5 * sigma, f"{what}: counts {counts.tolist()} deviate by {worst:.0f} from {expected:.0f} (5 sigma = {5 * sigma:.0f})"


def test_assert_uniform_can_fail():
    with pytest.raises(AssertionError, match="never sampled"):
        assert_uniform(torch.randint(0, 9, (10_000,), generator=torch.Generator().manual_seed(0)), 0, 10, "one short")
    with pytest.raises(AssertionError, match="deviate"):
        skewed = torch.cat([torch.arange(10).repeat(1000), torch.zeros(500, dtype=torch.long)])
        assert_uniform(skewed, 0, 10, "skewed")


def test_copy_task_symbols_are_uniform_at_every_position():
    task = CopyTask(length=6, vocab=5)
    x, y = task.sample(6000, generator=0)
    for t in range(task.length):
        assert_uniform(x[:, t], 0, task.vocab, f"symbol at step {t}")
    assert (x[:, task.length:] == task.marker).all()


def test_delayed_recall_inputs_and_targets_are_uniform():
    task = DelayedRecall(lag=5, vocab=4)
    x, y = task.sample(6000, generator=1)
    for t in range(task.lag + 1):
        assert_uniform(x[:, t], 0, task.vocab, f"symbol at step {t}")
    assert_uniform(y[:, -1], 0, task.vocab, "target")


def test_selective_copy_places_data_anywhere_in_the_body_and_symbols_uniformly():
    task = SelectiveCopy(n_data=3, length=12, vocab=5)
    x, y = task.sample(8000, generator=2)
    body = x[:, : task.length]
    data = body != task.noise
    assert (data.sum(dim=1) == task.n_data).all()
    positions = data.nonzero()[:, 1]  # every occupied position, n_data per row
    assert_uniform(positions, 0, task.length, "data position")  # the first and the last step too
    assert_uniform(body[data], 0, task.vocab, "data symbol")
    assert_uniform(y[:, task.length:], 0, task.vocab, "target")


@pytest.mark.parametrize("n_pairs, length, vocab", [(8, 64, 256), (3, 10, 8)])
def test_associative_recall_queries_every_pair_and_samples_keys_and_values_uniformly(n_pairs, length, vocab):
    task = AssociativeRecall(n_pairs=n_pairs, length=length, vocab=vocab)
    x, y = task.sample(3000, generator=3)
    keys, values = x[:, 0 : 2 * n_pairs : 2], x[:, 1 : 2 * n_pairs : 2]  # (B, n)
    queries = x[:, 2 * n_pairs :]  # (B, Q)
    half = vocab // 2
    assert_uniform(keys, 0, half, "key")
    assert_uniform(values, half, vocab, "value")
    assert all(len(set(row)) == n_pairs for row in keys.tolist()), "keys must be distinct within a sequence"
    match = queries[:, :, None] == keys[:, None, :]  # (B, Q, n): which pair each query asks for
    assert (match.sum(dim=-1) == 1).all()
    which = match.float().argmax(dim=-1)  # (B, Q)
    assert_uniform(which, 0, n_pairs, "queried pair index")  # the last pair is queried as often as the first
    assert torch.equal(y[:, 2 * n_pairs :], values.gather(1, which))


def test_repeated_sequence_symbols_are_uniform():
    task = RepeatedSequence(length=5, vocab=6)
    x, _ = task.sample(5000, generator=4)
    for t in range(task.length):
        assert_uniform(x[:, t], 0, task.vocab, f"symbol at step {t}")


def test_marker_order_puts_each_marker_anywhere_before_the_query_and_balances_the_answer():
    task = MarkerOrder(length=9, vocab=4)
    x, y = task.sample(8000, generator=5)
    L = task.length
    for marker, name in ((task.marker_a, "A"), (task.marker_b, "B")):
        where = (x == marker).nonzero()
        assert len(where) == len(x), f"marker {name} must appear exactly once per sequence"
        assert_uniform(where[:, 1], 0, L - 1, f"position of marker {name}")  # up to the step before the query
    assert_uniform(y[:, -1], 0, 2, "answer")
    fillers = x[:, :-1][(x[:, :-1] != task.marker_a) & (x[:, :-1] != task.marker_b)]
    assert_uniform(fillers, 0, task.vocab, "filler")


@pytest.mark.parametrize("length", [10, 11])
def test_adding_problem_markers_cover_each_half_and_values_are_uniform(length):
    task = AddingProblem(length=length)
    x, y = task.sample(20_000, generator=6)
    u, m = x[..., 0], x[..., 1]
    assert (m.sum(dim=1) == 2).all() and ((m == 0) | (m == 1)).all()
    half = length // 2
    first, second = m[:, :half].argmax(dim=1), half + m[:, half:].argmax(dim=1)
    assert (m[:, :half].sum(dim=1) == 1).all() and (m[:, half:].sum(dim=1) == 1).all()
    assert_uniform(first, 0, half, "first marker")
    assert_uniform(second, half, length, "second marker")  # the last step too
    # u ~ U(0, 1): mean 1/2, variance 1/12, and the target is the sum of the two marked values
    n = u.numel()
    assert abs(u.mean().item() - 0.5) < 5 * math.sqrt(1 / 12 / n)
    assert abs(u.var().item() - 1 / 12) < 0.002
    assert 0 <= u.min() and u.max() < 1
    assert torch.allclose(y, (u * m).sum(dim=1))
    assert_uniform((u * 10).long(), 0, 10, "u in tenths")


def test_reverse_task_lengths_and_symbols_are_uniform():
    task = ReverseTask(min_len=2, max_len=7, vocab=6)
    src, tgt_in, tgt_out, lengths = task.sample(6000, generator=7)
    assert_uniform(lengths, task.min_len, task.max_len + 1, "length")  # max_len too
    real = torch.arange(task.max_len)[None] < lengths[:, None]
    assert_uniform(src[real], 0, task.vocab, "source symbol")
    assert (src[~real] == task.pad).all()


def test_corpus_windows_start_anywhere_including_the_last_possible_start():
    text = "".join(chr(ord("A") + i) for i in range(40))  # distinct, sorted characters: id = position
    corpus = CharCorpus(text, val_fraction=0.25)  # train: ids 0..29
    context = 6
    x, y = corpus.batch("train", 20_000, context, generator=8)
    n = len(corpus.train)
    assert torch.equal(corpus.train, torch.arange(n))
    starts = x[:, 0]
    assert torch.equal(x, starts[:, None] + torch.arange(context)) and torch.equal(y, x + 1)
    assert_uniform(starts, 0, n - context, "window start")  # the window ending on the last character too


def test_dna_with_motif_bases_positions_and_rate():
    x, has, where = dna_with_motif(20_000, 12, motif="TATA", rate=0.3, generator=9)
    assert_uniform(x[~has], 0, 4, "base of a sequence without the motif")
    assert_uniform(where[has], 0, 12 - 4 + 1, "motif start")  # the last start too
    assert (where[~has] == -1).all()
    p = has.float().mean().item()
    assert abs(p - 0.3) < 5 * math.sqrt(0.3 * 0.7 / len(has))
