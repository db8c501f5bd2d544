"""Recall with the key-value pairs outside the attention window: attention, recurrence and hybrids (chapter 14).

Glossary, code name -> book notation::

    pattern        the layer types of a ``HybridLM``, one letter per layer: G global attention,
                   A sliding-window attention, R the RG-LRU recurrence (GR: a hybrid, RA: Griffin,
                   RR: Hawk, AA: local attention only, GG: a Transformer)
    gap            filler tokens between the pairs and the queries, longer than the window

``make_hybrid`` and ``train_recall`` are what chapter 14 trains with; ``hybrid_recall`` (registered as
``python -m seqlab.experiments hybrid_recall``) runs every pattern for every seed, the recall grid of
chapter 14 beside chapter 12's ``recall``.
"""
from __future__ import annotations

import math

import torch

from ..config import seed_everything
from ..data.gapped_recall import GappedRecall
from ..measure import count_parameters
from ..models.hybrid import HybridConfig, HybridLM
from ..train import accuracy, train
from . import mean_over, register
from .runlog import log_path, map_logged

MODELS = {"Transformer": "GG", "hybrid (GR)": "GR", "Griffin (RA)": "RA", "Hawk (RR)": "RR", "local attention (AA)": "AA"}


def receptive_field(pattern: str, window: int, short_conv: int = 3) -> float:
    """How many positions back a token's output can draw information from, through a stack of ``pattern`` (chapter 14).

    Each local-attention block (A) is a short causal convolution of kernel k (positions t − k + 1 .. t)
    and then a window of W keys (t − W + 1 .. t), so one block reaches (W − 1) + (k − 1) positions back
    and stacked blocks add up: L blocks reach L (W + k − 2). A global-attention (G) or recurrent (R)
    block reaches the whole context (``math.inf``).
    """
    if not isinstance(pattern, str) or not pattern or set(pattern) - set("AGR"):
        raise ValueError(f"pattern must be a non-empty string of the letters A, G, R, got {pattern!r}")
    if window < 1 or short_conv < 1:
        raise ValueError(f"window and short_conv must be >= 1, got {window} and {short_conv}")
    if set(pattern) & set("GR"):
        return math.inf
    return len(pattern) * (window + short_conv - 2)


def beyond_reach(task: GappedRecall, pattern: str, window: int, short_conv: int = 3) -> bool:
    """True when no query of ``task`` can draw on any pair token through ``pattern``'s receptive field (chapter 14).

    The nearest pair token is ``gap + 1`` positions before the first query.
    """
    return task.gap + 1 > receptive_field(pattern, window, short_conv)


def make_hybrid(pattern: str, vocab: int, *, d: int, heads: int, window: int, d_rnn: int, mlp: bool = True,
                device=None) -> HybridLM:
    """A ``HybridLM`` of the layer ``pattern`` (chapter 14)."""
    return HybridLM(HybridConfig(vocab_size=vocab, pattern=pattern, d_model=d, n_heads=heads, window=window,
                                 d_rnn=d_rnn, mlp=mlp, chunk=8)).to(device)


def train_recall(model, task: GappedRecall, x_test, y_test, *, batch: int, steps: int, lr: float,
                 batches: torch.Generator, progress: bool | None = None, desc: str | None = None):
    """Train on gapped recall, stopping once held-out accuracy passes 0.97; returns ``(accuracy, history)`` (chapter 14)."""
    history = train(model, lambda: task.sample(batch, batches), steps=steps, lr=lr,
                    eval_fn=lambda m: {"acc": accuracy(m(x_test)[0], y_test)}, eval_every=50,
                    stop_when=lambda h: h.eval["acc"][-1] > 0.97, progress=progress, desc=desc)
    with torch.no_grad():
        return accuracy(model(x_test)[0], y_test), history


TEST_QUERIES = 1000  # the seed of the held-out queries: one set for every model and seed (the recorded runs use it)


def recall_run(name: str, seed: int, s: dict, task: GappedRecall, *, device=None, progress: bool = False) -> dict:
    """One model of ``MODELS`` trained on ``task`` with the settings ``s`` (chapter 14): the weights and the batches
    from seed + 2 (as the chapter's seed 0 uses 2), the held-out queries from ``TEST_QUERIES``; its recall, steps
    and learning curve. ``hybrid_recall`` and ``hybrid_steps`` run it, with their own step budgets."""
    x_test, y_test = (t.to(device) for t in task.sample(256, seed_everything(TEST_QUERIES)))
    batches = seed_everything(seed + 2)  # seeds the weights, drawn next, and returns the batches' generator
    model = make_hybrid(MODELS[name], s["vocab"], d=s["d"], heads=s["heads"], window=s["window"], d_rnn=s["d_rnn"],
                        mlp=s["mlp"], device=device)
    acc, h = train_recall(model, task, x_test, y_test, batch=s["batch"], steps=s["steps"], lr=s["lr"],
                          batches=batches, progress=progress, desc=f"{name} seed {seed}")
    return {"model": name, "seed": seed, "accuracy": acc, "steps": len(h.loss), "params": count_parameters(model),
            "chance": task.chance, "curve": {"step": list(h.eval_step), "accuracy": [round(a, 4) for a in h.eval["acc"]]}}


SETTINGS = {
    "tiny": dict(d=16, heads=2, d_rnn=14, window=2, pairs=2, gap=6, queries=4, vocab=16, batch=8, steps=5, lr=3e-3,
                 mlp=True),
    "quick": dict(d=64, heads=4, d_rnn=56, window=8, pairs=4, gap=20, queries=8, vocab=32, batch=32, steps=250,
                  lr=3e-3, mlp=True),                                                        # chapter 14's
    "full": dict(d=128, heads=4, d_rnn=112, window=32, pairs=8, gap=72, queries=32, vocab=64, batch=64, steps=3000,
                 lr=2e-3, mlp=True),
}


def render_hybrid_recall(results: dict) -> list[str]:
    """The table of a ``hybrid_recall`` results dict: per model, parameters, and recall and steps, means over seeds,
    beside chance (chapter 14)."""
    runs = results["runs"]
    lines = [f"{'model':22s} {'params':>7s} {'recall':>7s} {'steps':>6s}   "
             f"(mean over seeds; chance {runs[0]['chance']:.3f})"]
    for name in dict.fromkeys(r["model"] for r in runs):
        params = next(r["params"] for r in runs if r["model"] == name)
        lines.append(f"{name:22s} {params:7d} {mean_over(runs, 'accuracy', model=name):7.3f} "
                     f"{mean_over(runs, 'steps', model=name):6.0f}")
    return lines


@register("hybrid_recall", "chapter 14: recall past the window for Transformer, hybrid, Griffin, Hawk, local attn",
          chapter=14, render=render_hybrid_recall)
def hybrid_recall(scale: str = "quick", seeds=(0,), device=None, progress: bool = False) -> dict:
    """Chapter 14's recall grid at ``scale``: every layer pattern x seed (seed s: the weights and the batches both
    from s + 2, as the chapter's seed 0 uses 2; the held-out queries from ``TEST_QUERIES``, one set for every run)."""
    s = SETTINGS[scale]
    task = GappedRecall(n_pairs=s["pairs"], gap=s["gap"], n_queries=s["queries"], vocab=s["vocab"])
    if not beyond_reach(task, "AA", s["window"]):
        raise ValueError(f"the pairs must lie beyond two stacked windows of {s['window']} with their convolutions "
                         f"({receptive_field('AA', s['window'])} positions): gap {s['gap']} is too short")

    def one(c):
        name, seed = c
        return {**recall_run(name, seed, s, task, device=device, progress=progress), "pattern": MODELS[name],
                "step_budget": s["steps"]}

    runs = map_logged(one, [(n, sd) for sd in seeds for n in MODELS], device=device, path=log_path("hybrid_recall", scale), settings=s,
                      progress=progress, desc="hybrid models")
    return {"settings": s, "runs": runs}
