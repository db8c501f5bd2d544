"""Copying and selective copying with a time-invariant SSM (S4D) and a selective scan (chapter 13).

Glossary, code name -> book notation::

    s4d            a diagonal state-space layer whose A, B, C and step size do not depend on the input (LTI)
    selective      the selective scan: B, C and the step size Delta are functions of x_t (Mamba's S6)
    copying        reproduce tokens after a fixed gap: a fixed convolution kernel solves it
    selective      copy only the data tokens scattered among noise: the kernel would have to depend
    copying        on where they fell, which only input-dependent parameters can express

``train_copier`` and ``accuracy_at`` are what chapter 13 calls; ``copying`` (registered as
``python -m seqlab.experiments copying``) runs both tasks with both layers for every seed and then
tests selective copying with more noise than in training.
"""
from __future__ import annotations

import time

import torch

from ..config import seed_everything
from ..seeding import held_out
from ..data.tasks import CopyTask, SelectiveCopy
from ..models.mixer_lm import MixerLM, MixerLMConfig
from ..train import accuracy, train
from . import register
from .distributed import map_runs

MIXERS = {"S4D (time-invariant)": "s4d", "selective scan": "selective"}


def train_copier(mixer: str, task, seed: int, *, d_model: int, d_state: int, batch: int, lr: float, steps: int,
                 device=None, progress: bool | None = None):
    """Train a two-layer ``MixerLM`` (no MLPs) of ``mixer`` on ``task``; returns ``(model, history)`` (chapter 13).

    Held-out accuracy on 256 new sequences every 50 steps; training stops once it passes 0.99.
    """
    gen = seed_everything(seed)
    model = MixerLM(MixerLMConfig(task.input_vocab, mixer=mixer, d_model=d_model, n_layers=2, mlp=False,
                                  options=dict(d_state=d_state))).to(device)
    x_eval, y_eval = (t.to(device) for t in task.sample(256, generator=held_out(seed)))
    history = train(model, lambda: task.sample(batch, gen), steps=steps, lr=lr, clip=1.0, eval_every=50,
                    eval_fn=lambda m: {"acc": accuracy(m(x_eval)[0], y_eval)},
                    stop_when=lambda h: h.eval["acc"][-1] > 0.99, progress=progress, desc=mixer)
    return model, history


def accuracy_at(model, sel: dict, length: int, seed: int, device=None) -> float:
    """Accuracy of ``model`` on 256 selective-copying sequences of ``sel`` with ``length`` noise tokens (chapter 13)."""
    x, y = SelectiveCopy(**{**sel, "length": length}).sample(256, generator=held_out(seed, stream=1))
    with torch.no_grad():
        return accuracy(model.eval()(x.to(device))[0], y.to(device))


SETTINGS = {
    "tiny": dict(d_model=8, d_state=2, batch=8, lr=1e-2, steps=5, copy=dict(length=3, vocab=4),
                 sel=dict(n_data=2, length=8, vocab=4), test_lengths=[8, 16]),
    "quick": dict(d_model=16, d_state=4, batch=32, lr=1e-2, steps=400, copy=dict(length=5, vocab=4),
                  sel=dict(n_data=4, length=32, vocab=4), test_lengths=[32, 64, 128]),         # chapter 13's
    "full": dict(d_model=32, d_state=8, batch=64, lr=3e-3, steps=4000, copy=dict(length=16, vocab=8),
                 sel=dict(n_data=8, length=128, vocab=16), test_lengths=[128, 256, 512]),
}


@register("copying", "chapter 13: copying and selective copying, S4D (LTI) vs the selective scan, longer noise",
          chapter=13)
def copying(scale: str = "quick", seeds=(0,), device=None, progress: bool = False) -> dict:
    """Chapter 13's copying experiment at ``scale``: both tasks x both layers x every seed."""
    s = SETTINGS[scale]
    tasks = {"copying": CopyTask(**s["copy"]), "selective copying": SelectiveCopy(**s["sel"])}
    start = time.perf_counter()

    def one(c):
        task_name, name, seed = c
        model, h = train_copier(MIXERS[name], tasks[task_name], seed, d_model=s["d_model"], d_state=s["d_state"],
                                batch=s["batch"], lr=s["lr"], steps=s["steps"], device=device, progress=progress)
        out = {"task": task_name, "layer": name, "seed": seed, "accuracy": h.final("acc"), "steps": h.steps}
        if task_name == "selective copying":
            out["longer_noise"] = [accuracy_at(model, s["sel"], L, seed, device) for L in s["test_lengths"]]
        return out

    runs = map_runs(one, [(t, n, sd) for t in tasks for n in MIXERS for sd in seeds], progress=progress,
                    desc="SSM copiers")
    lines = [f"{'task':17s} {'layer':21s} {'seed':>4s} {'accuracy':>8s} {'steps':>5s}   longer noise " + str(s["test_lengths"])]
    for r in runs:
        more = " ".join(f"{a:.3f}" for a in r.get("longer_noise", []))
        lines.append(f"{r['task']:17s} {r['layer']:21s} {r['seed']:4d} {r['accuracy']:8.3f} {r['steps']:5d}   {more}")
    return {"summary_lines": lines, "settings": s, "runs": runs, "seconds": round(time.perf_counter() - start, 1)}
