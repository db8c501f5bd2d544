"""Chapter 14's recall task at three learning rates per model: how many steps each needs at its best rate.

``hybrid_recall`` and ``hybrid_steps`` train every model at one rate (3e-3). A claim that one model
"finds the pairs several times faster" than another is then a claim about that rate as much as about
the models. This experiment trains all five models of ``hybrid.MODELS`` on the same task, sizes,
batches and held-out queries at each rate of ``lrs`` (a grid around 3e-3, a factor of about 3 apart),
for ``steps`` (six times ``hybrid_recall``'s budget, stopping at 0.97 recall as there), and records
every learning curve. ``best_rates`` picks, per model, the rate at which it first reaches ``target``
recall in the fewest steps (mean over seeds; a run that never reaches it counts as the whole budget),
and says whether that rate lies inside the grid (bracketed) or at its edge.
"""
from __future__ import annotations


from ..data.gapped_recall import GappedRecall
from . import register
from .hybrid import MODELS, recall_run
from .hybrid import SETTINGS as RECALL_SETTINGS
from .runlog import choose_rate, log_path, map_logged

BUDGET_FACTOR = 6  # times hybrid_recall's step budget
TARGET = 0.9       # the recall a run must reach; its step is read off the curve (evaluated every 50 steps)

SETTINGS = {scale: dict(s, steps=BUDGET_FACTOR * s["steps"], lrs=[1e-3, 3e-3, 1e-2], target=TARGET)
            for scale, s in RECALL_SETTINGS.items()}


def steps_to(run: dict, target: float) -> int | None:
    """The first evaluated step at which ``run``'s held-out recall reached ``target``, or None (chapter 14)."""
    return next((s for s, a in zip(run["curve"]["step"], run["curve"]["accuracy"]) if a >= target), None)


def best_rates(runs: list[dict], lrs: list[float], steps: int, target: float) -> dict:
    """Per model: the mean steps to ``target`` at each rate, as ``[lr, steps]`` pairs (a run that never gets there
    counts as ``steps``), the rate with the fewest, whether it is inside the grid, and at that rate every seed's steps
    (None: not reached) and final recall (``runlog.choose_rate``; chapter 14)."""
    chosen = choose_rate(runs, lambda r: r["model"], lambda r: steps_to(r, target) or steps, lrs=lrs)
    return {name: {"mean_steps": c["mean"], "lr": c["lr"], "bracketed": c["bracketed"],
                   "steps": [steps_to(r, target) for r in c["runs"]], "accuracy": [r["accuracy"] for r in c["runs"]],
                   "seeds": [r["seed"] for r in c["runs"]]} for name, c in chosen.items()}


def render_hybrid_lr(results: dict) -> list[str]:
    """The table of a ``hybrid_lr`` results dict: per model, the mean steps to the target recall at each rate and
    the best rate, marked where it lies at the grid's edge (``best_rates`` of the stored runs; chapter 14)."""
    s = results["settings"]
    best = best_rates(results["runs"], s["lrs"], s["steps"], s["target"])
    lines = [f"{'model':22s} " + " ".join(f"{lr:>8g}" for lr in s["lrs"]) + f"  best   (mean steps to {s['target']} "
             f"recall; budget {s['steps']})"]
    return lines + [f"{name:22s} " + " ".join(f"{dict(b['mean_steps']).get(lr, float('nan')):8.0f}" for lr in s["lrs"])
                    + f"  {b['lr']:g}{'' if b['bracketed'] else ' (edge)'}" for name, b in best.items()]


@register("hybrid_lr", "chapter 14: the recall grid at three learning rates per model, 6x the step budget", chapter=14,
          render=render_hybrid_lr)
def hybrid_lr(scale: str = "quick", seeds=(0, 1, 2), device=None, progress: bool = False) -> dict:
    """Every model of ``hybrid.MODELS`` x rate of ``lrs`` x seed on ``hybrid_recall``'s task (``recall_run``: at every
    rate the weights and batches of that seed's ``hybrid_recall`` run, the same held-out queries), ``BUDGET_FACTOR``
    times its steps (chapter 14)."""
    s = SETTINGS[scale]
    task = GappedRecall(n_pairs=s["pairs"], gap=s["gap"], n_queries=s["queries"], vocab=s["vocab"])

    def one(c):
        name, lr, seed = c
        return {**recall_run(name, seed, dict(s, lr=lr), task, device=device, progress=progress), "lr": lr}

    configs = [(n, lr, sd) for sd in seeds for lr in s["lrs"] for n in MODELS]
    runs = map_logged(one, configs, device=device, path=log_path("hybrid_lr", scale), settings=s, progress=progress,
                      desc="hybrid models x learning rates")
    return {"settings": s, "runs": runs}
