import pytest
import torch

from seqlab.data import (
    IGNORE,
    AddingProblem,
    AssociativeRecall,
    CopyTask,
    DelayedRecall,
    MarkerOrder,
    RepeatedSequence,
    SelectiveCopy,
    memoryless_accuracy,
)

TOKEN_TASKS = [
    CopyTask(length=5, vocab=4),
    DelayedRecall(lag=7, vocab=3),
    SelectiveCopy(n_data=3, length=10, vocab=5),
    AssociativeRecall(n_pairs=3, length=12, vocab=16),
    RepeatedSequence(length=6, vocab=5),
    RepeatedSequence(length=6, vocab=5, score="all"),
    MarkerOrder(length=7, vocab=3),
]


@pytest.mark.parametrize("task", TOKEN_TASKS, ids=lambda t: type(t).__name__)
def test_shapes_ranges_and_seeding(task):
    x, y = task.sample(16, generator=3)
    assert x.dtype == torch.long and y.dtype == torch.long
    assert x.shape == y.shape and x.shape[0] == 16
    assert 0 <= x.min() and x.max() < task.input_vocab
    scored = y[y != IGNORE]
    assert len(scored) > 0 and 0 <= scored.min() and scored.max() < task.n_classes
    x2, y2 = task.sample(16, generator=3)
    assert torch.equal(x, x2) and torch.equal(y, y2)
    x3, _ = task.sample(16, generator=4)
    assert not torch.equal(x, x3)


def test_copy_hand_checked():
    task = CopyTask(length=3, vocab=4)
    x, y = task.sample(5, 0)
    assert torch.equal(x[:, 3:], torch.full((5, 3), 4))  # the marker V
    assert torch.equal(y[:, :3], torch.full((5, 3), IGNORE))
    assert torch.equal(y[:, 3:], x[:, :3])


def test_delayed_recall_targets_first_token_at_the_end():
    x, y = DelayedRecall(lag=5, vocab=4).sample(8, 1)
    assert x.shape == (8, 6)
    assert torch.equal(y[:, -1], x[:, 0])
    assert (y[:, :-1] == IGNORE).all()


def test_selective_copy_recalls_data_in_order():
    task = SelectiveCopy(n_data=3, length=10, vocab=5)
    x, y = task.sample(20, 2)
    for row_x, row_y in zip(x, y):
        body = row_x[:10]
        data = body[body != task.noise]
        assert len(data) == 3
        assert torch.equal(row_y[10:], data)
        assert (row_x[10:] == task.marker).all()
        assert (row_y[:10] == IGNORE).all()


def test_associative_recall_answers_match_pairs():
    task = AssociativeRecall(n_pairs=4, length=20, vocab=16)
    x, y = task.sample(10, 5)
    for row_x, row_y in zip(x, y):
        keys, values = row_x[0:8:2], row_x[1:8:2]
        assert len(set(keys.tolist())) == 4 and (keys < 8).all() and (values >= 8).all()
        lookup = dict(zip(keys.tolist(), values.tolist()))
        for q, a in zip(row_x[8:].tolist(), row_y[8:].tolist()):
            assert lookup[q] == a
        assert (row_y[:8] == IGNORE).all()


def test_repeated_sequence_hand_checked():
    task = RepeatedSequence(length=4, vocab=10)
    x, y = task.sample(3, 0)
    full = torch.cat([x, y[:, -1:]], dim=1)  # the last target is the last symbol
    assert torch.equal(full[:, :4], full[:, 4:])
    assert (y[:, :4] == IGNORE).all()
    assert torch.equal(y[:, 4:], x[:, 1:4])  # predicting s_1..s_3 from the repeat
    first = RepeatedSequence(length=4, vocab=10, score="first").sample(3, 0)[1]
    assert torch.equal(first[:, :3], x[:, 1:4]) and (first[:, 3:] == IGNORE).all()


def test_marker_order_hand_checked():
    task = MarkerOrder(length=9, vocab=4)
    x, y = task.sample(200, 6)
    assert x.shape == (200, 9) and task.input_vocab == 7 and task.chance == 0.5
    assert ((x == task.marker_a).sum(1) == 1).all() and ((x == task.marker_b).sum(1) == 1).all()
    assert (x[:, -1] == task.query).all() and (x[:, :-1] < task.query).all()
    pos_a, pos_b = (x == task.marker_a).float().argmax(1), (x == task.marker_b).float().argmax(1)
    assert torch.equal(y[:, -1], (pos_b < pos_a).long())
    assert (y[:, :-1] == IGNORE).all()
    assert 0.4 < y[:, -1].float().mean() < 0.6  # both answers occur about equally often
    for row in x[:5]:
        filler = row[(row != task.marker_a) & (row != task.marker_b)][:-1]
        assert ((0 <= filler) & (filler < 4)).all()
    assert abs(memoryless_accuracy(task) - 0.5) < 0.05  # the query token alone says nothing


def test_marker_order_swap_keeps_the_tokens_and_flips_the_answer():
    task = MarkerOrder(length=6, vocab=3)
    x, y = task.sample(50, 1)
    x2, y2 = task.swapped(x, y)
    assert torch.equal(x.sort(1).values, x2.sort(1).values)  # the same multiset in every row
    assert not torch.equal(x, x2)
    assert torch.equal(y2[:, -1], 1 - y[:, -1]) and (y2[:, :-1] == IGNORE).all()
    assert torch.equal(task.swapped(x2), x)
    pos_a2 = (x2 == task.marker_a).float().argmax(1)
    assert torch.equal(pos_a2, (x == task.marker_b).float().argmax(1))
    with pytest.raises(TypeError, match="integer tensor"):
        task.swapped(x.float())
    with pytest.raises(ValueError, match="same shape"):
        task.swapped(x, y[:, :-1])


def test_adding_problem_hand_checked():
    x, y = AddingProblem(length=10).sample(32, 0)
    assert x.shape == (32, 10, 2) and y.shape == (32,)
    m = x[..., 1]
    assert torch.equal(m.sum(1), torch.full((32,), 2.0))
    assert (m[:, :5].sum(1) == 1).all() and (m[:, 5:].sum(1) == 1).all()
    assert torch.allclose(y, (x[..., 0] * m).sum(1))


def test_adding_problem_chance_is_the_variance_of_the_target():
    _, y = AddingProblem(length=20).sample(200_000, 0)
    assert abs(((y - 1.0) ** 2).mean().item() - AddingProblem.chance) < 0.005


@pytest.mark.parametrize("task", TOKEN_TASKS[:5], ids=lambda t: type(t).__name__)
def test_memoryless_predictor_is_at_chance(task):
    acc = memoryless_accuracy(task, n_fit=2000, n_test=2000, seed=0)
    assert abs(acc - task.chance) < 0.05, (acc, task.chance)


def test_memoryless_predictor_finds_a_dependence_on_the_current_token():
    """Positive control: when the target is a function of the current token, the baseline finds it."""
    from dataclasses import dataclass

    from seqlab.data import TokenTask

    @dataclass(frozen=True)
    class NextParity(TokenTask):
        input_vocab = 6
        n_classes = 2

        def _sample(self, B, g):
            x = torch.randint(0, 6, (B, 9), generator=g)
            return x, x % 2

    assert memoryless_accuracy(NextParity()) == 1.0


@pytest.mark.parametrize(
    "make, match",
    [
        (lambda: CopyTask(length=0), "length must be >= 1"),
        (lambda: CopyTask(vocab=1.5), "vocab must be an int"),
        (lambda: DelayedRecall(lag=-1), "lag must be >= 1"),
        (lambda: SelectiveCopy(n_data=5, length=3), "length must be >= n_data"),
        (lambda: AssociativeRecall(vocab=15), "vocab must be even"),
        (lambda: AssociativeRecall(n_pairs=9, vocab=16), "n_pairs must be <= vocab/2"),
        (lambda: AssociativeRecall(n_pairs=8, length=16), "length must exceed 2\\*n_pairs"),
        (lambda: RepeatedSequence(score="middle"), "score must be"),
        (lambda: MarkerOrder(length=2), "length must be >= 3"),
        (lambda: CopyTask().sample(0), "batch_size must be >= 1"),
        (lambda: CopyTask().sample(4, generator="seed"), "generator must be"),
    ],
)
def test_bad_arguments(make, match):
    with pytest.raises((ValueError, TypeError), match=match):
        make()
