"""Recall against the step budget: is Hawk's and Griffin's shortfall their state or their training? (chapter 14).

``hybrid_recall`` gives every model the same budget, and at that budget Hawk (RR) and Griffin (RA),
whose facts must pass through the recurrence, recall about a third of the queries while the models
with a global attention layer recall nearly all. A shortfall at a fixed budget has two readings: the
recurrent state cannot hold the pairs, or training has not yet found how to store them. This
experiment trains the two recurrent models on the same task, with the same sizes, rate, batches and
held-out queries, for ``steps`` = eight times that budget (stopping at 0.97, as there), and keeps each
learning curve. If recall keeps climbing towards the attention models', the budget was the limit.
"""
from __future__ import annotations

from ..data.gapped_recall import GappedRecall
from . import register
from .hybrid import SETTINGS as RECALL_SETTINGS
from .hybrid import recall_run
from .runlog import log_path, map_logged

ARCHS = ("Hawk (RR)", "Griffin (RA)")
BUDGET_FACTOR = 8  # times hybrid_recall's step budget

SETTINGS = {scale: dict(s, steps=BUDGET_FACTOR * s["steps"], archs=list(ARCHS))
            for scale, s in RECALL_SETTINGS.items()}


def render_hybrid_steps(results: dict) -> list[str]:
    """The table of a ``hybrid_steps`` results dict: each run's recall and steps, beside the budget and chance
    (chapter 14)."""
    runs = results["runs"]
    lines = [f"{'model':14s} {'seed':>4s} {'recall':>7s} {'steps':>6s}   (budget {results['settings']['steps']}; "
             f"chance {runs[0]['chance']:.3f})"]
    return lines + [f"{r['model']:14s} {r['seed']:4d} {r['accuracy']:7.3f} {r['steps']:6d}" for r in runs]


@register("hybrid_steps", "chapter 14: Hawk's and Griffin's recall with eight times the step budget", chapter=14,
          render=render_hybrid_steps)
def hybrid_steps(scale: str = "quick", seeds=(0, 1, 2), device=None, progress: bool = False) -> dict:
    """Hawk and Griffin on ``hybrid_recall``'s task and seeds (weights and batches from s + 2, the same held-out
    queries) with ``BUDGET_FACTOR`` times its steps; every run's learning curve (chapter 14)."""
    s = SETTINGS[scale]
    task = GappedRecall(n_pairs=s["pairs"], gap=s["gap"], n_queries=s["queries"], vocab=s["vocab"])

    def one(c):
        return recall_run(*c, s, task, device=device, progress=progress)  # the same weights and batches as hybrid_recall

    runs = map_logged(one, [(n, sd) for sd in seeds for n in s["archs"]], device=device, path=log_path("hybrid_steps", scale),
                      settings=s, progress=progress, desc="recurrent models, long budget")
    return {"settings": s, "runs": runs}
