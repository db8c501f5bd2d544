"""One small, readable training loop, used by every chapter (introduced in chapter 2).

    history = train(model, lambda: task.sample(64, g), steps=500, lr=3e-3, clip=1.0)

Each step: draw a batch, compute the loss (``step_loss(model, batch)``, by
default the cross-entropy of ``model(x)`` against ``y``), back-propagate,
(optionally) clip the gradient norm, take an AdamW step with a linear warm-up
of the learning rate or any schedule ``lr_at(step)``. The loss, the gradient norm before clipping and the learning rate are
recorded every step; ``eval_fn(model)`` (a dict of numbers) every
``eval_every`` steps and at the end. Training stops early when the loss
becomes NaN or infinite (``history.diverged``) or when ``time_budget``
seconds have passed, or when ``stop_when(history)`` says so.
"""
from __future__ import annotations

import math
import time
from dataclasses import dataclass, field
from typing import Callable

import torch
import torch.nn.functional as F

from . import _validate as validate
from .config import progress_enabled
from .data.tasks import IGNORE

LN2 = math.log(2.0)


def logits_of(output) -> torch.Tensor:
    """Models return logits, or a tuple whose first element is the logits (chapter 2)."""
    return output[0] if isinstance(output, (tuple, list)) else output


def sequence_loss(logits: torch.Tensor, targets: torch.Tensor) -> torch.Tensor:
    """Mean cross-entropy in nats over the scored targets (``targets != IGNORE``; chapter 2).

    ``logits`` ``(B, T, C)`` with ``targets`` ``(B, T)``, or ``(B, C)`` with ``(B,)``.
    """
    validate.tensor("logits", logits, ndim=(2, 3), dtype="float")
    validate.tensor("targets", targets, ndim=(1, 2), dtype="long")
    if logits.shape[:-1] != targets.shape:
        raise ValueError(f"logits {tuple(logits.shape)} and targets {tuple(targets.shape)} disagree: expected logits of shape targets.shape + (C,)")
    return F.cross_entropy(logits.reshape(-1, logits.shape[-1]), targets.reshape(-1), ignore_index=IGNORE)


def accuracy(logits: torch.Tensor, targets: torch.Tensor) -> float:
    """Fraction of scored targets (``targets != IGNORE``) whose arg-max logit is right (chapter 2)."""
    validate.tensor("logits", logits, ndim=(2, 3), dtype="float")
    if logits.shape[:-1] != targets.shape:
        raise ValueError(f"logits {tuple(logits.shape)} and targets {tuple(targets.shape)} disagree")
    keep = targets != IGNORE
    if not keep.any():
        raise ValueError("targets has no scored position (all are IGNORE)")
    return (logits.argmax(-1)[keep] == targets[keep]).float().mean().item()


def bits(nats: float) -> float:
    """Convert a loss in nats to bits (per character, for a character model; chapter 2)."""
    return nats / LN2


@dataclass
class History:
    """What a training run recorded. Lists are indexed by step (``loss[i]`` is step ``i``; chapter 2)."""

    loss: list[float] = field(default_factory=list)
    grad_norm: list[float] = field(default_factory=list)
    lr: list[float] = field(default_factory=list)
    eval_step: list[int] = field(default_factory=list)
    eval: dict[str, list[float]] = field(default_factory=dict)
    seconds: float = 0.0
    diverged: bool = False

    @property
    def steps(self) -> int:
        return len(self.loss)

    def final(self, key: str) -> float:
        """The last evaluation of ``key``."""
        if key not in self.eval:
            raise KeyError(f"no evaluation called {key!r}; recorded: {sorted(self.eval)}")
        return self.eval[key][-1]

    def smoothed_loss(self, window: int = 20) -> list[float]:
        """Running mean of the training loss over ``window`` steps (for plots)."""
        out, acc = [], 0.0
        for i, v in enumerate(self.loss):
            acc += v
            if i >= window:
                acc -= self.loss[i - window]
            out.append(acc / min(i + 1, window))
        return out

    def __repr__(self) -> str:
        evals = ", ".join(f"{k}={v[-1]:.4g}" for k, v in self.eval.items() if v)
        state = " DIVERGED" if self.diverged else ""
        return f"History({self.steps} steps in {self.seconds:.1f}s, last loss {self.loss[-1] if self.loss else float('nan'):.4g}{', ' + evals if evals else ''}{state})"


def adamw(params, lr: float, betas=(0.9, 0.999), weight_decay: float = 0.01) -> torch.optim.AdamW:
    """AdamW (Loshchilov & Hutter, 2019, in the References; chapter 2): θ ← θ − lr · (m̂ / (√v̂ + ε) + wd · θ).

    PyTorch's fused kernel where every parameter allows it (floating point, on the CPU or a CUDA
    device): the same update as the default implementation, in one pass per tensor instead of a
    dozen small operations, meant to be faster per step (not timed by the build). The two agree to
    rounding, not bit for bit: chapter 2 trains with both and prints the largest loss difference.
    """
    params = list(params)
    fused = bool(params) and all(p.is_floating_point() and p.device.type in ("cpu", "cuda") for p in params)
    return torch.optim.AdamW(params, lr=lr, betas=tuple(betas), weight_decay=weight_decay, fused=fused or None)


def warmup_lr(step: int, lr: float, warmup: int) -> float:
    """Linear warm-up: ``lr * min(1, (step + 1) / warmup)`` (chapter 2)."""
    return lr if warmup <= 0 else lr * min(1.0, (step + 1) / warmup)


def xy_loss(model: torch.nn.Module, batch, loss_fn: Callable = sequence_loss) -> torch.Tensor:
    """The default ``step_loss``: a batch ``(x, y)``, ``loss_fn(logits of model(x), y)`` (chapter 2)."""
    x, y = batch
    return loss_fn(logits_of(model(x)), y)


def to_device(batch, device):
    """The batch with every tensor in it (a tensor, or a tuple/list of them) moved to ``device`` (chapter 2)."""
    if isinstance(batch, torch.Tensor):
        return batch.to(device)
    if isinstance(batch, (tuple, list)):
        return type(batch)(to_device(b, device) for b in batch)
    return batch


def _check_args(model, batches, steps, lr, weight_decay, betas, clip, warmup, lr_at, time_budget, optimizer, eval_every,
                callables):
    if not isinstance(model, torch.nn.Module):
        raise TypeError(f"model must be a torch.nn.Module, got {type(model).__name__}")
    if not callable(batches):
        raise TypeError(f"batches must be callable (returning a batch, by default (x, y)), got {type(batches).__name__}")
    validate.positive_int("steps", steps)
    validate.number("lr", lr, minimum=0, strict=True)
    validate.number("weight_decay", weight_decay, minimum=0)
    if not (isinstance(betas, (tuple, list)) and len(betas) == 2):
        raise TypeError(f"betas must be a pair (beta1, beta2), got {betas!r}")
    for i, b in enumerate(betas):
        validate.number(f"betas[{i}]", b, minimum=0)
        if b >= 1:
            raise ValueError(f"betas[{i}] must be < 1, got {b}")
    if clip is not None:
        validate.number("clip", clip, minimum=0, strict=True)
    validate.positive_int("warmup", warmup, minimum=0)
    if lr_at is not None and warmup:
        raise ValueError(f"give the schedule as lr_at or as warmup, not both (got warmup={warmup})")
    if time_budget is not None:
        validate.number("time_budget", time_budget, minimum=0, strict=True)
    if optimizer is not None and not isinstance(optimizer, torch.optim.Optimizer):
        raise TypeError(f"optimizer must be a torch.optim.Optimizer or None, got {type(optimizer).__name__}")
    for name, fn in callables.items():
        if fn is not None and not callable(fn):
            raise TypeError(f"{name} must be callable, got {type(fn).__name__}")
    if eval_every is not None:
        validate.positive_int("eval_every", eval_every)


def _evaluate(model, eval_fn, history: History, step: int) -> None:
    """``eval_fn(model)`` in eval mode without gradients, recorded at ``step``."""
    if eval_fn is None:
        return
    was_training = model.training
    model.eval()
    with torch.no_grad():
        result = eval_fn(model)
    model.train(was_training)
    history.eval_step.append(step)
    for k, v in result.items():
        history.eval.setdefault(k, []).append(float(v))


def train(
    model: torch.nn.Module,
    batches: Callable[[], object],
    *,
    steps: int,
    lr: float = 3e-3,
    weight_decay: float = 0.0,
    betas: tuple[float, float] = (0.9, 0.999),
    clip: float | None = None,
    warmup: int = 0,
    lr_at: Callable[[int], float] | None = None,
    loss_fn: Callable = sequence_loss,
    step_loss: Callable[[torch.nn.Module, object], torch.Tensor] | None = None,
    on_step: Callable[[int, History], None] | None = None,
    eval_fn: Callable[[torch.nn.Module], dict[str, float]] | None = None,
    eval_every: int | None = None,
    time_budget: float | None = None,
    stop_when: Callable[[History], bool] | None = None,
    after_backward: Callable[[int, torch.nn.Module], None] | None = None,
    device: torch.device | str | None = None,
    optimizer: torch.optim.Optimizer | None = None,
    progress: bool | None = None,
    desc: str | None = None,
) -> History:
    """Train ``model`` on batches from ``batches()`` and return its ``History`` (chapter 2).

    Each step: draw a batch (its tensors moved to ``device``), ``loss = step_loss(model, batch)``,
    back-propagate, clip the gradient norm at ``clip``, take an AdamW step (``adamw``: ``lr``, ``betas``,
    decoupled ``weight_decay``: θ ← θ − lr · wd · θ before the Adam update). The default
    ``step_loss`` reads a batch ``(x, y)`` and returns ``loss_fn(logits of model(x), y)``; a model
    may return the logits or a tuple starting with them. The learning rate of step t is
    ``lr_at(t)`` if given (e.g. warm-up then cosine), else ``lr`` after a linear ``warmup``.
    ``on_step(step, history)`` runs after every update; ``after_backward(step, model)`` once the
    gradients of a step exist, before clipping and the update (chapter 7's per-layer norms).
    ``stop_when(history)`` is asked after each evaluation whether to stop early. With
    ``optimizer`` its own settings replace ``weight_decay`` and ``betas`` (and ``lr`` is still set
    every step).
    """
    _check_args(model, batches, steps, lr, weight_decay, betas, clip, warmup, lr_at, time_budget, optimizer, eval_every,
                dict(loss_fn=loss_fn, step_loss=step_loss, on_step=on_step, eval_fn=eval_fn, stop_when=stop_when,
                     after_backward=after_backward, lr_at=lr_at))
    device = torch.device(device) if device is not None else next(model.parameters()).device
    model.to(device)
    params = [p for p in model.parameters() if p.requires_grad]
    opt = optimizer or adamw(params, lr=lr, betas=betas, weight_decay=weight_decay)
    loss_of = step_loss or (lambda m, batch: xy_loss(m, batch, loss_fn))
    history = History()
    show = progress_enabled() if progress is None else progress
    bar = None
    if show:
        from tqdm.auto import tqdm

        bar = tqdm(total=steps, desc=desc, leave=False)
    start = time.perf_counter()
    model.train()
    for step in range(steps):
        rate = lr_at(step) if lr_at is not None else warmup_lr(step, lr, warmup)
        for group in opt.param_groups:
            group["lr"] = rate
        loss = loss_of(model, to_device(batches(), device))
        opt.zero_grad(set_to_none=True)
        loss.backward()
        if after_backward is not None:
            after_backward(step, model)
        norm = torch.nn.utils.clip_grad_norm_(params, clip if clip is not None else math.inf)
        history.loss.append(loss.item())
        history.grad_norm.append(norm.item())
        history.lr.append(opt.param_groups[0]["lr"])
        if not math.isfinite(history.loss[-1]):
            history.diverged = True
            break
        opt.step()
        if on_step is not None:
            on_step(step, history)
        if bar is not None:
            bar.update(1)
            bar.set_postfix(loss=f"{history.loss[-1]:.3f}", refresh=False)
        if eval_every and (step + 1) % eval_every == 0 and step + 1 < steps:
            _evaluate(model, eval_fn, history, step + 1)
            if stop_when is not None and stop_when(history):
                break
        if time_budget is not None and time.perf_counter() - start > time_budget:
            break
    history.seconds = time.perf_counter() - start
    if bar is not None:
        bar.close()
    if not history.diverged and (not history.eval_step or history.eval_step[-1] != history.steps):
        _evaluate(model, eval_fn, history, history.steps)
    return history
