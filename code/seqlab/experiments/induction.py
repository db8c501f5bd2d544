"""Induction heads trained from scratch: the phase change in the loss and the head that forms with it (chapter 11).

Glossary, code name -> book notation::

    prefix 2.h     prefix-matching score of head h in layer 2: attention from the second occurrence of a
                   span to the token after the first (the induction pattern)
    icl            in-context-learning score: loss on a span's first occurrence minus loss on its second
    drop_step      the step at which the evaluation loss falls fastest (the phase change)
    form_step      the first step at which the best layer-2 head's prefix-matching score passes 0.3

``attention_model`` and ``train_on_spans`` are what chapter 11 trains with; ``induction``
(registered as ``python -m seqlab.experiments induction``) trains a two-layer attention-only model
and its one-layer control for every seed and reports when the phase change happens and when the
head forms.
"""
from __future__ import annotations

import time

import torch

from .. import interpret
from ..config import seed_everything
from ..data.tasks import RepeatedSpans
from ..models.transformer import GPT, GPTConfig
from ..train import train
from . import register
from .distributed import map_runs

THRESHOLD = 0.3


def attention_model(layers: int, d_model: int, *, vocab: int, n_heads: int, T: int, device=None) -> GPT:
    """An attention-only GPT (no MLPs) of ``layers`` layers with sinusoidal positions (chapter 11)."""
    return interpret.attention_only(GPTConfig(vocab_size=vocab, d_model=d_model, n_heads=n_heads, n_layers=layers,
                                              max_len=T, positions="sinusoidal")).to(device)


def train_on_spans(model, task: RepeatedSpans, seed: int, *, batch: int, steps: int, lr: float, eval_fn,
                   eval_every: int, progress: bool | None = None):
    """Train ``model`` on repeated spans from a generator seeded with ``seed``, evaluating every ``eval_every`` steps (chapter 11)."""
    gen = seed_everything(seed)
    return train(model, lambda: task.sample(batch, gen), steps=steps, lr=lr, eval_fn=eval_fn, eval_every=eval_every,
                 progress=progress, desc=type(model).__name__)


SETTINGS = {
    "tiny": dict(T=16, vocab=8, span_min=3, span_max=6, gap_max=2, d_model=16, n_heads=2, batch=16, steps=20,
                 lr=1e-2, eval_every=4, eval_batch=16),
    "quick": dict(T=32, vocab=16, span_min=6, span_max=14, gap_max=4, d_model=32, n_heads=4, batch=128, steps=400,
                  lr=1e-2, eval_every=10, eval_batch=128),                                 # chapter 11's
    "full": dict(T=32, vocab=16, span_min=6, span_max=14, gap_max=4, d_model=32, n_heads=4, batch=128, steps=1000,
                 lr=1e-2, eval_every=10, eval_batch=1024),
}


@register("induction", "chapter 11: the induction-head phase change, 2-layer attention-only vs 1-layer control",
          chapter=11)
def induction(scale: str = "quick", seeds=(0,), device=None, progress: bool = False) -> dict:
    """Chapter 11's phase-change experiment at ``scale``: two layers and one, every seed."""
    s = SETTINGS[scale]
    task = RepeatedSpans(length=s["T"], vocab=s["vocab"], span_min=s["span_min"], span_max=s["span_max"],
                         gap_max=s["gap_max"])
    start = time.perf_counter()

    def one(c):
        layers, seed = c
        x_eval, y_eval, where = task.sample_with_positions(s["eval_batch"], torch.Generator().manual_seed(10_000))
        x_eval, y_eval = x_eval.to(device), y_eval.to(device)
        seed_everything(seed)
        model = attention_model(layers, s["d_model"], vocab=s["vocab"], n_heads=s["n_heads"], T=s["T"], device=device)
        h = train_on_spans(model, task, seed, batch=s["batch"], steps=s["steps"], lr=s["lr"],
                           eval_fn=lambda m: interpret.head_scores(m, x_eval, y_eval, where),
                           eval_every=s["eval_every"], progress=progress)
        ev = h.eval
        out = {"layers": layers, "seed": seed, "eval_step": h.eval_step, "loss": ev["loss"], "icl": ev["icl"],
               "drop_step": interpret.steepest_drop(h.eval_step, ev["loss"])}
        if layers >= 2:
            best = [max(ev[f"prefix {layers}.{k}"][i] for k in range(s["n_heads"])) for i in range(len(h.eval_step))]
            out["best_prefix"] = best
            out["form_step"] = interpret.first_crossing(h.eval_step, best, THRESHOLD)
        return out

    runs = map_runs(one, [(n, sd) for n in (2, 1) for sd in seeds], progress=progress, desc="attention-only models")
    lines = [f"{'layers':>6s} {'seed':>4s} {'final loss':>10s} {'final ICL':>9s} {'drop step':>9s} {'head forms':>10s}"]
    for r in runs:
        lines.append(f"{r['layers']:6d} {r['seed']:4d} {r['loss'][-1]:10.3f} {r['icl'][-1]:9.3f} {r['drop_step']:9d} "
                     f"{str(r.get('form_step', '-')):>10s}")
    return {"summary_lines": lines, "settings": s, "threshold": THRESHOLD, "runs": runs,
            "seconds": round(time.perf_counter() - start, 1)}
