"""Chapter 3's chance level on the very batches a run saw (``recurrence.adder_chance_losses``)."""
import pytest
import torch
import torch.nn.functional as F

from seqlab.experiments import recurrence


def test_adder_chance_losses_score_the_mean_on_train_adders_own_batches(monkeypatch):
    """Each value is the MSE of predicting 1 on the batch ``train_adder`` draws at that step, for the same seed."""
    seen = []

    def fake_train(model, batches, *, steps, **kw):
        seen.extend(batches()[1] for _ in range(steps))

    monkeypatch.setattr(recurrence, "train", fake_train)
    recurrence.train_adder(0.9, None, 3, width=4, steps=5, length=12)
    want = [F.mse_loss(torch.ones_like(y), y).item() for y in seen]
    assert len(seen) == 5 and all(y.shape == (recurrence.ADDER_BATCH,) for y in seen)
    assert recurrence.adder_chance_losses(3, 5, length=12) == pytest.approx(want, rel=0, abs=0)
    assert recurrence.adder_chance_losses(4, 5, length=12) != pytest.approx(want)   # another seed, other batches


def test_adder_chance_losses_average_to_the_chance_level():
    """Predicting the mean, 1, costs Var(u_a + u_b) = 1/6 on average."""
    losses = recurrence.adder_chance_losses(0, 200)
    assert abs(sum(losses) / len(losses) - 1 / 6) < 0.005


@pytest.mark.parametrize("steps", [0, -1, 1.5])
def test_adder_chance_losses_refuses_a_bad_step_count(steps):
    with pytest.raises((ValueError, TypeError)):
        recurrence.adder_chance_losses(0, steps)
