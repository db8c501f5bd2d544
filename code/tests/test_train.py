import math

import pytest
import torch

from seqlab.data import IGNORE, DelayedRecall
from seqlab.train import History, accuracy, bits, sequence_loss, train, warmup_lr


class Lookup(torch.nn.Module):
    """A memoryless model: logits from the current token only."""

    def __init__(self, V_in, V_out):
        super().__init__()
        self.table = torch.nn.Embedding(V_in, V_out)

    def forward(self, x):
        return self.table(x)  # (B, T, V_out)


def test_loss_goes_down_on_a_tiny_problem():
    torch.manual_seed(0)
    g = torch.Generator().manual_seed(0)
    model = Lookup(5, 5)

    def batch():  # the target is the input token itself: learnable
        x = torch.randint(0, 5, (32, 8), generator=g)
        return x, x

    def evaluate(m):
        x, y = batch()  # a fresh batch
        return {"acc": accuracy(m(x), y)}

    h = train(model, batch, steps=150, lr=0.1, eval_fn=evaluate, eval_every=50)
    assert h.steps == 150 and not h.diverged
    assert h.loss[-1] < 0.2 * h.loss[0]
    assert h.eval_step == [50, 100, 150]
    assert h.final("acc") == 1.0


def test_history_records_lr_warmup_and_clipping():
    g = torch.Generator().manual_seed(0)
    model = Lookup(4, 4)
    batch = lambda: (torch.randint(0, 4, (8, 5), generator=g),) * 2
    h = train(model, batch, steps=10, lr=0.01, warmup=4, clip=1e-3)
    assert h.lr[:5] == pytest.approx([0.0025, 0.005, 0.0075, 0.01, 0.01])
    assert len(h.grad_norm) == 10 and all(n > 1e-3 for n in h.grad_norm)  # norms before clipping


def test_clipping_bounds_the_update():
    """With a tiny clip, one Adam-free SGD step moves the weights by at most lr * clip."""
    g = torch.Generator().manual_seed(0)
    model = Lookup(4, 4)
    before = model.table.weight.detach().clone()
    opt = torch.optim.SGD(model.parameters(), lr=1.0)
    batch = lambda: (torch.randint(0, 4, (8, 5), generator=g),) * 2
    train(model, batch, steps=1, clip=0.01, lr=1.0, optimizer=opt)
    assert (model.table.weight.detach() - before).norm().item() == pytest.approx(0.01, rel=1e-4)


def test_divergence_stops_training():
    model = Lookup(4, 4)
    with torch.no_grad():
        model.table.weight.fill_(float("nan"))
    batch = lambda: (torch.zeros(2, 3, dtype=torch.long),) * 2
    h = train(model, batch, steps=20)
    assert h.diverged and h.steps == 1
    assert "DIVERGED" in repr(h)


def test_time_budget_stops_early():
    model = Lookup(4, 4)
    batch = lambda: (torch.zeros(2, 3, dtype=torch.long),) * 2
    h = train(model, batch, steps=10**6, time_budget=0.2)
    assert 1 <= h.steps < 10**6 and h.seconds < 5
    assert h.seconds >= 0.2 and h.steps > 1          # it ran until the budget was spent, not one step and out
    assert train(model, batch, steps=20, time_budget=1e6).steps == 20                     # a budget not reached


def test_sequence_loss_ignores_unscored_positions():
    x, y = DelayedRecall(lag=4, vocab=3).sample(5, 0)
    logits = torch.randn(5, 5, 3)
    expected = torch.nn.functional.cross_entropy(logits[:, -1], y[:, -1])
    assert torch.allclose(sequence_loss(logits, y), expected)
    # a perfect prediction at the scored step gives accuracy 1 whatever the rest says
    perfect = torch.zeros(5, 5, 3)
    perfect[torch.arange(5), -1, y[:, -1]] = 10.0
    assert accuracy(perfect, y) == 1.0


def test_loss_and_accuracy_errors():
    with pytest.raises(ValueError, match="disagree"):
        sequence_loss(torch.randn(2, 5, 3), torch.zeros(2, 4, dtype=torch.long))
    with pytest.raises(TypeError, match="integer tensor"):
        sequence_loss(torch.randn(2, 5, 3), torch.zeros(2, 5))
    with pytest.raises(ValueError, match="no scored position"):
        accuracy(torch.randn(2, 3), torch.full((2,), IGNORE))
    with pytest.raises(TypeError, match="torch.nn.Module"):
        train(lambda x: x, lambda: None, steps=1)
    with pytest.raises(ValueError, match="clip must be positive"):
        train(Lookup(2, 2), lambda: None, steps=1, clip=0)


def test_helpers():
    assert bits(math.log(2)) == pytest.approx(1.0)
    assert warmup_lr(0, 1.0, 0) == 1.0 and warmup_lr(1, 1.0, 4) == 0.5
    h = History(loss=[4.0, 2.0, 0.0])
    assert h.smoothed_loss(2) == [4.0, 3.0, 1.0]
    with pytest.raises(KeyError, match="no evaluation"):
        h.final("acc")


def test_progress_bar_can_be_forced_on(capsys):
    model = Lookup(2, 2)
    batch = lambda: (torch.zeros(2, 3, dtype=torch.long),) * 2
    train(model, batch, steps=3, progress=True, desc="tiny")
    assert "tiny" in capsys.readouterr().err


def test_after_backward_sees_each_steps_gradients_before_clipping():
    g = torch.Generator().manual_seed(0)
    model = Lookup(4, 4)
    batch = lambda: (torch.randint(0, 4, (8, 5), generator=g),) * 2
    seen = []
    h = train(model, batch, steps=3, lr=0.01, clip=1e-4,
              after_backward=lambda step, m: seen.append((step, m.table.weight.grad.norm().item())))
    assert [s for s, _ in seen] == [0, 1, 2]
    assert [n for _, n in seen] == pytest.approx(h.grad_norm)  # unclipped, the same norms train records
    with pytest.raises(TypeError, match="after_backward must be callable"):
        train(model, batch, steps=1, after_backward=3)


# ---------------------------------------------------------------- every option acts
def _batches(V=4, seed=0):
    g = torch.Generator().manual_seed(seed)
    return lambda: (torch.randint(0, V, (8, 5), generator=g),) * 2


def _trained(seed=0, **kw):
    torch.manual_seed(seed)
    model = Lookup(4, 4)
    h = train(model, _batches(), steps=5, lr=0.05, **kw)
    return model.table.weight.detach().clone(), h


def test_weight_decay_is_decoupled_and_acts():
    """AdamW with no gradient (the loss is 0 · Σθ): each step multiplies θ by 1 − lr · wd exactly."""
    torch.manual_seed(0)
    model = Lookup(4, 4)
    before = model.table.weight.detach().clone()
    h = train(model, _batches(), steps=3, lr=0.1, weight_decay=0.5,
              step_loss=lambda m, batch: 0.0 * m(batch[0]).sum())
    torch.testing.assert_close(model.table.weight.detach(), before * (1 - 0.1 * 0.5) ** 3)
    assert h.loss == [0.0, 0.0, 0.0]
    assert not torch.equal(_trained(weight_decay=0.3)[0], _trained()[0])


def test_betas_and_lr_at_act():
    plain, _ = _trained()
    assert not torch.equal(_trained(betas=(0.5, 0.9))[0], plain)
    schedule = lambda step: 0.05 * (step + 1) / 5  # noqa: E731
    weights, h = _trained(lr_at=schedule)
    assert h.lr == pytest.approx([schedule(t) for t in range(5)])
    assert not torch.equal(weights, plain)
    with pytest.raises(ValueError, match="lr_at or as warmup"):
        _trained(lr_at=schedule, warmup=2)
    with pytest.raises(ValueError, match=r"betas\[1\] must be < 1"):
        _trained(betas=(0.9, 1.0))


def test_step_loss_reads_any_batch_and_on_step_sees_every_update():
    """A batch that is not (x, y): the default loss written as a step_loss gives the same run."""
    default, h_default = _trained()
    seen = []
    custom, h_custom = _trained(step_loss=lambda m, batch: sequence_loss(m(batch[0]), batch[1]),
                                on_step=lambda step, history: seen.append((step, history.loss[-1])))
    torch.testing.assert_close(custom, default, rtol=0, atol=0)
    assert h_custom.loss == h_default.loss and seen == list(enumerate(h_default.loss))
    g = torch.Generator().manual_seed(0)
    triples = lambda: {"tokens": torch.randint(0, 4, (8, 5), generator=g)}  # noqa: E731
    h = train(Lookup(4, 4), triples, steps=2, step_loss=lambda m, b: sequence_loss(m(b["tokens"]), b["tokens"]))
    assert h.steps == 2
