"""Pre-Norm against Post-Norm at depth: where Post-Norm stalls, and what rescues it (chapter 7).

Glossary, code name -> book notation::

    norm_first     Pre-Norm (True): x + F(LN(x)); Post-Norm (False): LN(x + F(x))
    layers         L, the number of blocks
    warmup         steps over which the learning rate rises linearly from 0 to lr
    final          the mean training loss over the last 20 steps (nats)
    reach          the first step at which the 10-step running mean comes within ``near`` nats of the
                   unigram entropy (None: never)
    floor          after ``reach``, the lowest 10-step running mean minus the unigram entropy: how far the
                   model ever got below predicting character frequencies
    grad_ratio     at step 0, the gradient norm of the top block's first FFN weight over the bottom block's
    bottom_late    the bottom block's gradient norm, median over the steps from 20 on

``deep_run`` is the run chapter 7 makes live (one seed); ``norm_placement`` (``python -m
seqlab.experiments norm_placement``) repeats it for several seeds, and adds the arms the page's
argument needs: shallower stacks (does Post-Norm train at 3 or 6 layers without a warm-up?), a short
warm-up, and a learning-rate grid ``LRS`` for both placements at full depth with no warm-up (so that each
placement's best constant rate is bracketed, and the two are compared each at its own best rate as well as
at the page's shared 3e-3).
"""
from __future__ import annotations

import statistics

import torch

from ..config import seed_everything
from ..data import CharCorpus
from ..measure import unigram_entropy
from ..models.transformer import GPT, GPTConfig
from ..train import train
from . import register
from .runlog import log_path, map_logged, per_run

NEAR = 0.15  # nats: "at the unigram entropy"

LRS = (3e-4, 1e-3, 3e-3, 1e-2)  # the learning-rate grid of both placements at full depth, no warm-up


def lr_arms(layers: int) -> list[list]:
    """The arms that complete the learning-rate grid ``LRS`` at ``layers`` blocks, no warm-up, for both placements
    (3e-3 is the page's rate, and Post-Norm at 1e-3 an arm of its own, so these are the other points) (chapter 7)."""
    return [[f"{name}, lr {lr:.0e}".replace("e-0", "e-"), first, layers, 0, lr]
            for name, first in (("Pre-Norm", True), ("Post-Norm", False)) for lr in LRS
            if lr != 3e-3 and not (lr == 1e-3 and not first)]


SETTINGS = {  # the page's model and run (chapter 7's cfg), and the arms: (name, norm_first, layers, warmup, lr)
    "tiny": dict(d_model=16, n_heads=2, steps=6, context=8, batch=4,
                 arms=[["Pre-Norm", True, 2, 0, 3e-3], ["Post-Norm", False, 2, 0, 3e-3]]),
    "quick": dict(d_model=64, n_heads=4, steps=150, context=32, batch=16,
                  arms=[["Pre-Norm", True, 12, 0, 3e-3], ["Post-Norm", False, 12, 0, 3e-3],
                        ["Post-Norm + warm-up", False, 12, 100, 3e-3], ["Post-Norm + 20-step warm-up", False, 12, 20, 3e-3],
                        ["Post-Norm, lr 1e-3", False, 12, 0, 1e-3], ["Post-Norm, 6 layers", False, 6, 0, 3e-3],
                        ["Post-Norm, 3 layers", False, 3, 0, 3e-3], ["Pre-Norm, 3 layers", True, 3, 0, 3e-3],
                        *lr_arms(12)]),
    "full": dict(d_model=128, n_heads=4, steps=1000, context=128, batch=32,
                 arms=[["Pre-Norm", True, 24, 0, 3e-3], ["Post-Norm", False, 24, 0, 3e-3],
                       ["Post-Norm + warm-up", False, 24, 200, 3e-3], ["Post-Norm + 20-step warm-up", False, 24, 20, 3e-3],
                       ["Post-Norm, lr 1e-3", False, 24, 0, 1e-3], ["Post-Norm, 6 layers", False, 6, 0, 3e-3],
                       ["Post-Norm, 3 layers", False, 3, 0, 3e-3], ["Pre-Norm, 3 layers", True, 3, 0, 3e-3],
                       *lr_arms(24)]),
}
GRID_KEYS = ("arms",)


def deep_run(norm_first: bool, *, layers: int, warmup: int, lr: float, seed: int, s: dict, corpus: CharCorpus,
             device=None):
    """Train a GPT of ``layers`` blocks (width ``s['d_model']``, PyTorch's default initialisation) with AdamW at ``lr``
    (warm-up over ``warmup`` steps); returns the history and the (steps, L) gradient norms of each block's first FFN
    weight (chapter 7)."""
    gen = seed_everything(seed)
    model = GPT(GPTConfig(vocab_size=corpus.vocab_size, d_model=s["d_model"], n_heads=s["n_heads"], n_layers=layers,
                          max_len=s["context"], norm_first=norm_first, init_std=None)).to(device)
    grads = []
    record = lambda step, m: grads.append([b.ffn.linear1.weight.grad.norm().item() for b in m.blocks])
    history = train(model, lambda: tuple(t.to(device) for t in corpus.batch("train", s["batch"], s["context"], generator=gen)),
                    steps=s["steps"], lr=lr, warmup=warmup, after_backward=record)
    return history, torch.tensor(grads)


def summarise_run(history, grads: torch.Tensor, unigram: float, near: float = NEAR) -> dict:
    """``final``, ``reach``, ``floor``, ``grad_ratio`` and ``bottom_late`` of one run (the glossary above; chapter 7)."""
    smooth = history.smoothed_loss(10)
    reach = next((t for t, v in enumerate(smooth) if v < unigram + near), None)
    return {"final": statistics.mean(history.loss[-20:]), "reach": reach,
            "floor": None if reach is None else min(smooth[reach:]) - unigram,
            "grad_ratio": (grads[0, -1] / grads[0, 0]).item(), "bottom_late": grads[20:, 0].median().item()}


def render_norm_placement(results: dict) -> list[str]:
    """The table of a ``norm_placement`` results dict: per arm, each seed's final loss and the step it reached the
    unigram entropy, against that entropy (chapter 7)."""
    lines = [f"unigram entropy {results['unigram']:.3f} nats; final loss (mean of the last 20 steps) and the step the "
             f"10-step mean came within {NEAR} of it, per seed"]
    for name, *_ in results["settings"]["arms"]:
        rs = sorted((r for r in results["runs"] if r["arm"] == name), key=lambda r: r["seed"])
        lines.append(f"  {name:28s} " + "   ".join(f"{r['final']:.3f} (step {r['reach']})" for r in rs))
    return lines


@register("norm_placement", "chapter 7: Pre-Norm and Post-Norm at 3, 6 and 12 layers, with and without warm-up, and "
          "a learning-rate grid for both at 12 layers, several seeds", chapter=7, render=render_norm_placement)
def norm_placement(scale: str = "quick", seeds=(0,), device=None, progress: bool = False) -> dict:
    """Every arm of ``arms`` for every seed (``deep_run``, summarised by ``summarise_run``); resumable (chapter 7)."""
    s = SETTINGS[scale]
    corpus = CharCorpus()
    unigram = unigram_entropy(corpus.train, corpus.vocab_size)

    def one(c):  # the arm's every setting is in its key, so a changed arm is run again
        name, norm_first, layers, warmup, lr, seed = c
        h, grads = deep_run(norm_first, layers=layers, warmup=warmup, lr=lr, seed=seed, s=s, corpus=corpus, device=device)
        return {"arm": name, "seed": seed, "norm_first": norm_first, "layers": layers, "warmup": warmup, "lr": lr,
                **summarise_run(h, grads, unigram)}

    runs = map_logged(one, [(*a, sd) for sd in seeds for a in s["arms"]], device=device, path=log_path("norm_placement", scale),
                      settings=per_run(s, GRID_KEYS), progress=progress, desc="norm placements")
    return {"settings": s, "unigram": unigram, "runs": runs}
