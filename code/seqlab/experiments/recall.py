"""The recall gap: multi-query associative recall against the size of the state, learning rate swept (chapter 12).

Glossary, code name -> book notation:

    arch           the sequence mixer of a ``MixerLM``: "softmax" (causal attention with a KV cache),
                   "linear" (linear attention, phi(x) = elu(x) + 1), "taylor" (linear attention with the
                   second-order Taylor feature map, d_phi = 1 + d_head + d_head^2), "gated" (gated linear
                   attention, one forget factor per key channel)
    width          d_model; the state grows with it (and with the feature map)
    state_bytes    bytes of what the model carries per sequence at the task's length T (float32):
                   the KV cache, 2 T d per layer, for softmax attention; the fixed matrix state
                   (S and z in every head) for the linear mixers; plus the short convolution's buffer
    accuracy       fraction of the queries of held-out MQAR sequences whose value is predicted right

The task is Zoology's MQAR (Arora et al., 2023): ``n_pairs`` key-value pairs, then queries of
those keys. Recurrent models learn it only inside a narrow window of learning rates, so every
(arch, width) is trained at each of several learning rates and keeps the best one: an unswept
comparison would confound the size of the state with how easily the model trains.
``recall`` (registered as ``python -m seqlab.experiments recall``) runs the grid at a scale.
"""
from __future__ import annotations

import time

import torch

from .. import _validate as validate
from ..config import seed_everything
from ..seeding import held_out as held_out_stream
from ..data.tasks import AssociativeRecall
from ..models.mixer_lm import MixerLM, MixerLMConfig
from ..train import accuracy, train
from . import register
from .distributed import map_runs

ARCHS = ("softmax", "linear", "taylor", "gated")

SETTINGS = {
    # the task (vocab, length, key-value pairs), the models (widths, heads, layers), the lrs swept, training
    "tiny": dict(archs=["softmax", "linear"], vocab=16, length=12, n_pairs=4, widths=[8, 16], heads=2, layers=2,
                 lrs=[1e-3, 1e-2], steps=3, batch=8, eval_batch=32),
    "quick": dict(archs=["softmax", "linear", "taylor"], vocab=64, length=48, n_pairs=16, widths=[16, 32, 64],
                  heads=4, layers=2, lrs=[3e-3, 1e-2, 3e-2], steps=500, batch=32, eval_batch=256),
    "full": dict(archs=list(ARCHS), vocab=256, length=128, n_pairs=32, widths=[32, 64, 128, 256], heads=4, layers=2,
                 lrs=[3e-4, 1e-3, 3e-3, 1e-2, 3e-2], steps=3000, batch=64, eval_batch=1024),
}


def make_model(arch: str, width: int, vocab: int, heads: int = 4, layers: int = 2) -> MixerLM:
    """A ``MixerLM`` with mixer ``arch`` (one of ``ARCHS``), width d and ``heads`` heads; chapter 12."""
    validate.positive_int("width", width)
    options = {"softmax": {}, "linear": {"feature_map": "elu1"}, "taylor": {"feature_map": "taylor"},
               "gated": {"feature_map": "elu1"}}
    if arch not in options:
        raise ValueError(f"arch must be one of {ARCHS}, got {arch!r}")
    mixer = {"taylor": "linear", "gated": "gated_linear"}.get(arch, arch)
    return MixerLM(MixerLMConfig(vocab_size=vocab, mixer=mixer, d_model=width, n_heads=heads, n_layers=layers,
                                 options=options[arch]))


def train_one(arch: str, width: int, lr: float, *, vocab: int, length: int, n_pairs: int, heads: int = 4,
              layers: int = 2, steps: int, batch: int, eval_batch: int = 256, seed: int = 0, device=None,
              progress: bool = False) -> dict:
    """Train one model on MQAR and measure its recall on held-out sequences; plain numbers (chapter 12).

    Training batches and the held-out batch come from separate generators, both seeded by ``seed``
    (``seqlab.seed_everything``, so ``SEQLAB_SEED_OFFSET`` shifts them).
    """
    device = torch.device(device or "cpu")
    task = AssociativeRecall(n_pairs=n_pairs, length=length, vocab=vocab)
    held_out = task.sample(eval_batch, generator=held_out_stream(seed))  # (x, y) never trained on
    gen = seed_everything(seed)  # the model's initialisation, then the training stream
    model = make_model(arch, width, vocab, heads, layers).to(device)
    h = train(model, lambda: tuple(t.to(device) for t in task.sample(batch, generator=gen)), steps=steps, lr=lr,
              clip=1.0, progress=progress, desc=f"{arch} d={width} lr={lr:g}")
    model.eval()
    with torch.no_grad():
        acc = accuracy(model(held_out[0].to(device))[0], held_out[1].to(device))
        _, state = model(torch.zeros(1, length, dtype=torch.long, device=device))  # the state after T tokens
    return {"arch": arch, "width": width, "heads": heads, "lr": lr, "seed": seed,
            "state_bytes": model.state_bytes(state), "params": sum(p.numel() for p in model.parameters()),
            "accuracy": acc, "final_loss": h.loss[-1] if h.loss else float("nan"), "diverged": h.diverged,
            "chance": task.chance, "seconds": round(h.seconds, 3)}


def best_lr(runs: list[dict]) -> list[dict]:
    """Per (arch, width), the runs of the learning rate with the highest mean accuracy over the seeds (chapter 12).

    Returned in the order of first appearance; ties go to the learning rate listed first.
    """
    groups: dict[tuple, dict[float, list[dict]]] = {}
    for r in runs:
        groups.setdefault((r["arch"], r["width"]), {}).setdefault(r["lr"], []).append(r)
    best = []
    for by_lr in groups.values():
        mean = {lr: sum(r["accuracy"] for r in rs) / len(rs) for lr, rs in by_lr.items()}
        best.extend(by_lr[max(mean, key=mean.get)])
    return best


@register("recall", "chapter 12: MQAR recall against state bytes, softmax vs linear attention, lr swept", chapter=12)
def recall(scale: str = "quick", seeds=(0,), device=None, progress: bool = False) -> dict:
    """The recall-gap grid of chapter 12 at ``scale`` ('tiny' for tests, 'quick', 'full'): archs x widths x lrs x seeds."""
    s = SETTINGS[scale]
    task = dict(vocab=s["vocab"], length=s["length"], n_pairs=s["n_pairs"], heads=s["heads"], layers=s["layers"],
                steps=s["steps"], batch=s["batch"], eval_batch=s["eval_batch"], device=device)
    start = time.perf_counter()
    grid = [(a, w, lr, sd) for a in s["archs"] for w in s["widths"] for lr in s["lrs"] for sd in seeds]
    runs = map_runs(lambda c: train_one(c[0], c[1], c[2], seed=c[3], progress=progress, **task), grid,
                    progress=progress, desc="MQAR runs")
    best = best_lr(runs)
    lines = [f"{'arch':8s} {'width':>5s} {'state bytes':>11s} {'best lr':>8s} {'accuracy':>8s}"]
    for a in s["archs"]:
        for w in s["widths"]:
            rs = [r for r in best if r["arch"] == a and r["width"] == w]
            acc = sum(r["accuracy"] for r in rs) / len(rs)
            lines.append(f"{a:8s} {w:5d} {rs[0]['state_bytes']:11d} {rs[0]['lr']:8g} {acc:8.3f}")
    return {"summary_lines": lines, "settings": s, "runs": runs, "best": best,
            "seconds": round(time.perf_counter() - start, 1)}
