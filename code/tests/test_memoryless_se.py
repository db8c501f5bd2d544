"""memoryless_accuracy's standard error (chapter 1's "at chance" claim is judged in these units)."""
import math

import pytest

from seqlab.data import AssociativeRecall, CopyTask, DelayedRecall, memoryless_accuracy


def test_same_accuracy_with_and_without_the_standard_error():
    task = CopyTask(length=6, vocab=4)
    acc, se = memoryless_accuracy(task, 500, 500, seed=3, with_se=True)
    assert acc == memoryless_accuracy(task, 500, 500, seed=3)
    assert se > 0


def test_one_scored_token_per_sequence_gives_the_binomial_standard_error():
    task = DelayedRecall(lag=5, vocab=8)                  # one scored token per sequence: independent draws
    acc, se = memoryless_accuracy(task, 4000, 4000, seed=0, with_se=True)
    assert se == pytest.approx(math.sqrt(acc * (1 - acc) / 4000), rel=1e-6)


def test_repeated_queries_widen_the_standard_error():
    task = AssociativeRecall(n_pairs=8, length=64, vocab=256)   # keys are asked several times per sequence
    acc, se = memoryless_accuracy(task, 1000, 1000, seed=0, with_se=True)
    _, y = task.sample(1000, 0)
    scored = int((y != -100).sum())
    assert se > 1.3 * math.sqrt(task.chance * (1 - task.chance) / scored)
