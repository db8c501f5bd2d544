"""Scaling behaviour: LSTM and Transformer character models over a range of sizes (chapter 10).

Glossary, code name -> book notation:

    N_total        every trainable parameter (Pearce & Song, 2024, count these)
    N_nonemb       parameters outside the vocabulary matrices: the token (and position) embedding and the
                   output head left out, as Kaplan et al. (2020) count N
    C              training compute in FLOPs: 3 x forward FLOPs x tokens, the forward pass per token
                   2 FLOPs per weight of every matrix, the output head included (it is real work:
                   Porian et al., 2024), plus, for attention, 4 n_layer n_ctx d for the scores and the
                   weighted sum (the n^2 term, which the rule C = 6 N D leaves out)
    D              training tokens = steps x batch x context, the same for every size ("matched tokens")
    L(N)           validation loss (nats per character), fitted as a N^(-alpha) + c

``train_one`` trains and evaluates one model; ``sweep`` runs a family of sizes, each at the best of a
few learning rates (untuned small models bend the curve: Porian et al., 2024); ``fit_scaling_law`` and
``bootstrap_exponent`` fit L(N) and put an interval on alpha; ``isoflop`` trains several sizes at one
compute budget. ``scaling`` (registered as ``python -m seqlab.experiments scaling``) does all of it
at a given scale and returns plain numbers for the results file.
"""
from __future__ import annotations

import math
import random
import time

import torch

from .. import _validate as validate
from ..config import seed_everything
from ..data.corpus import CharCorpus
from ..models.charlm import RecurrentLM
from ..models.transformer import GPT, GPTConfig
from ..train import sequence_loss, train
from . import register
from .distributed import map_runs

FAMILIES = ("lstm", "transformer")

SETTINGS = {
    # widths per family, learning rates swept per size, training length (matched tokens), evaluation,
    # and the IsoFLOP grid: compute budgets (in units of the smallest model's run) and the widths tried at each
    "tiny": dict(widths=[8, 16, 24], lrs=[3e-3, 1e-2], steps=4, batch=4, context=32, layers=2, eval_windows=8,
                 iso_widths=[8, 16], iso_budgets=[4.0], n_boot=20),
    "quick": dict(widths=[16, 32, 48, 64, 96], lrs=[1e-3, 3e-3, 1e-2], steps=200, batch=16, context=128, layers=2,
                  eval_windows=64, iso_widths=[16, 32, 64, 96], iso_budgets=[1.0, 3.0], n_boot=200),
    "full": dict(widths=[32, 64, 96, 128, 192, 256, 384], lrs=[3e-4, 1e-3, 3e-3, 1e-2], steps=3000, batch=32,
                 context=256, layers=4, eval_windows=256, iso_widths=[32, 64, 128, 192, 256, 384],
                 iso_budgets=[1.0, 3.0, 10.0], n_boot=1000),
}


def make_model(family: str, width: int, vocab: int, context: int, layers: int = 2) -> torch.nn.Module:
    """A character model of ``family`` 'lstm' (``layers`` LSTM layers of width d, PyTorch's kernel) or
    'transformer' (a Pre-Norm GPT of ``layers`` blocks, width d, d/16 heads, learned positions); chapter 10."""
    validate.positive_int("width", width)
    if family == "lstm":
        return RecurrentLM(vocab, width, width, cell="lstm", n_layers=layers, mode="fused")
    if family == "transformer":
        heads = max(1, width // 16)
        return GPT(GPTConfig(vocab_size=vocab, d_model=width, n_heads=heads, n_layers=layers, max_len=context))
    raise ValueError(f"family must be one of {FAMILIES}, got {family!r}")


def count_parameters(model: torch.nn.Module) -> dict[str, int]:
    """``{"total": N_total, "non_embedding": N_nonemb}`` for a ``GPT`` or ``RecurrentLM`` (chapter 10).

    The non-embedding count leaves out the token embedding, the learned positions and the
    output head: the matrices whose size is set by the vocabulary and the context, not by depth
    and width (Kaplan et al., 2020).
    """
    total = sum(p.numel() for p in model.parameters() if p.requires_grad)
    vocab = [model.embed, model.head]
    if isinstance(model, GPT) and model.positions is not None:
        vocab.append(model.positions)
    return {"total": total, "non_embedding": total - sum(p.numel() for m in vocab for p in m.parameters())}


def flops_per_token(model: torch.nn.Module, context: int) -> dict[str, float]:
    """Training FLOPs per token, ``{"6N": 6 N_nonemb, "C": 3 x forward}`` (chapter 10).

    Forward per token: 2 FLOPs (a multiply and an add) per weight of every matrix, the output
    head included (an embedding lookup is free; biases and LayerNorms are negligible and left
    out), plus for a GPT ``4 n_layer n_ctx d`` for ``Q K^T`` and the weighted sum of values over a
    context of ``n_ctx``: the n^2 term that ``C = 6 N D`` leaves out (Kaplan et al. count half of it;
    Hoffmann et al. count both products, as here). The backward pass costs twice the forward.
    The tests check the forward count against PyTorch's ``FlopCounterMode``.
    """
    skip = {id(p) for m in (model.embed, getattr(model, "positions", None)) if m is not None for p in m.parameters()}
    matrices = sum(p.numel() for p in model.parameters() if p.dim() >= 2 and id(p) not in skip)
    forward = 2 * matrices
    if isinstance(model, GPT):
        forward += 4 * model.config.n_layers * context * model.config.d_model
    return {"6N": 6.0 * count_parameters(model)["non_embedding"], "C": 3.0 * forward}


def eval_windows(corpus: CharCorpus, n: int, context: int) -> torch.Tensor:
    """``n`` consecutive, non-overlapping windows of ``context + 1`` characters from the validation split (chapter 10)."""
    need = n * (context + 1)
    if need > len(corpus.val):
        raise ValueError(f"{n} windows of {context + 1} need {need} validation characters, have {len(corpus.val)}")
    return corpus.val[:need].view(n, context + 1)


@torch.no_grad()
def position_losses(model: torch.nn.Module, windows: torch.Tensor) -> torch.Tensor:
    """Loss (nats) of every next-character prediction: (n_windows, context) (chapter 10)."""
    x, y = windows[:, :-1], windows[:, 1:]
    out = model(x)
    logits = out[0] if isinstance(out, tuple) else out  # (n, T, V)
    return torch.nn.functional.cross_entropy(logits.transpose(1, 2), y, reduction="none")  # (n, T)


def position_buckets(context: int) -> list[tuple[int, int]]:
    """Ranges of positions ``[0, 8), [8, 32), [32, 64), [64, 128), ...`` up to ``context`` (chapter 10)."""
    edges = [0, 8, 32] + [2 ** k for k in range(6, 20)]
    edges = [e for e in edges if e < context] + [context]
    return list(zip(edges[:-1], edges[1:]))


def train_one(family: str, width: int, lr: float, *, corpus: CharCorpus, steps: int, batch: int, context: int,
              layers: int = 2, windows: int = 64, seed: int = 0, device=None, progress: bool = False) -> dict:
    """Train one model and evaluate it; returns plain numbers (chapter 10).

    ``val_loss`` is the mean validation loss; ``window_losses`` the mean of each validation
    window (for the bootstrap); ``by_position`` the mean loss at each position of the context.
    """
    device = torch.device(device or "cpu")
    gen = seed_everything(seed)
    model = make_model(family, width, corpus.vocab_size, context, layers).to(device)
    counts, fl = count_parameters(model), flops_per_token(model, context)
    h = train(model, lambda: corpus.batch("train", batch, context, generator=gen), steps=steps, lr=lr, clip=1.0,
              progress=progress, desc=f"{family} d={width} lr={lr:g}")
    model.eval()
    losses = position_losses(model, eval_windows(corpus, windows, context).to(device)).cpu()  # (n, T)
    tokens = h.steps * batch * context
    return {"family": family, "width": width, "lr": lr, "seed": seed, "params": counts["total"],
            "params_nonemb": counts["non_embedding"], "tokens": tokens, "flops": fl["C"] * tokens,
            "flops_6N": fl["6N"] * tokens, "val_loss": losses.mean().item(), "diverged": h.diverged,
            "window_losses": [round(v, 5) for v in losses.mean(1).tolist()],
            "by_position": [round(v, 5) for v in losses.mean(0).tolist()], "seconds": round(h.seconds, 3)}


def sweep(family: str, widths, lrs, *, seeds=(0,), progress: bool = False, **kw) -> tuple[list[dict], list[dict]]:
    """Every (width, lr, seed) of one family (chapter 10); returns ``(runs, best)`` where ``best`` holds, per width,
    the runs of the learning rate with the lowest mean validation loss over the seeds."""
    grid = [(w, lr, s) for w in widths for lr in lrs for s in seeds]  # independent runs: spread over torchrun's ranks
    runs = map_runs(lambda c: train_one(family, c[0], c[1], seed=c[2], progress=progress, **kw), grid,
                    progress=progress, desc=f"{family} runs")
    best = []
    for w in widths:
        mean = {lr: sum(r["val_loss"] for r in runs if r["width"] == w and r["lr"] == lr) / len(seeds) for lr in lrs}
        lr_best = min(lrs, key=lambda lr: mean[lr] if math.isfinite(mean[lr]) else math.inf)
        best.extend(r for r in runs if r["width"] == w and r["lr"] == lr_best)
    return runs, best


# ---------------------------------------------------------------- fitting L(N) = a N^(-alpha) + c
def fit_scaling_law(N, L, n_grid: int = 400) -> dict[str, float]:
    """Least-squares fit of ``L(N) = a N^(-alpha) + c`` (chapter 10): returns ``{"a", "alpha", "c"}``.

    For each irreducible loss ``c`` on a grid over ``[0, min L)``, ``log(L - c) = log a - alpha log N``
    is a straight line fitted exactly; the ``c`` whose curve has the smallest squared error in
    ``L`` wins. With few sizes ``c`` is poorly determined (Choshen et al., 2024): ``c = 0`` gives the
    plain power law, and the interval on alpha should be read with that in mind.
    """
    N, L = [float(v) for v in N], [float(v) for v in L]
    if len(N) != len(L) or len(set(N)) < 3:
        raise ValueError(f"need N and L of one length with at least 3 distinct N, got {len(N)} and {len(L)}")
    if min(N) <= 0 or min(L) <= 0:
        raise ValueError("N and L must be positive")
    lx = torch.tensor(N, dtype=torch.float64).log()
    y = torch.tensor(L, dtype=torch.float64)
    best = None
    for c in torch.linspace(0.0, 0.99 * min(L), n_grid, dtype=torch.float64):
        ly = (y - c).log()
        mx, my = lx.mean(), ly.mean()
        slope = ((lx - mx) * (ly - my)).sum() / ((lx - mx) ** 2).sum()
        a = torch.exp(my - slope * mx)
        err = ((a * torch.exp(slope * lx) + c - y) ** 2).sum().item()
        if best is None or err < best[0]:
            best = (err, a.item(), -slope.item(), c.item())
    return {"a": best[1], "alpha": best[2], "c": best[3]}


def bootstrap_exponent(N, window_losses, n_boot: int = 200, seed: int = 0, irreducible: bool = True) -> dict:
    """A 95% bootstrap interval on alpha: the validation windows of every size resampled with replacement (chapter 10).

    ``window_losses[i]`` holds the per-window losses of size ``N[i]``. Returns ``{"alpha", "lo", "hi"}``
    (the fit on the full data and the 2.5 and 97.5 percentiles of the refits). It measures the
    evaluation's noise, not a retrain's: run several seeds for that. ``irreducible=False`` fits the
    plain power law (c = 0).
    """
    validate.positive_int("n_boot", n_boot)
    rng = random.Random(seed)
    fit = (lambda n, l: fit_scaling_law(n, l)) if irreducible else (lambda n, l: fit_scaling_law(n, l, n_grid=1))
    alpha = fit(N, [sum(w) / len(w) for w in window_losses])["alpha"]
    samples = []
    for _ in range(n_boot):
        L = []
        for w in window_losses:
            pick = [w[rng.randrange(len(w))] for _ in w]
            L.append(sum(pick) / len(pick))
        samples.append(fit(N, L)["alpha"])
    samples.sort()
    lo, hi = samples[int(0.025 * (n_boot - 1))], samples[int(math.ceil(0.975 * (n_boot - 1)))]
    return {"alpha": alpha, "lo": lo, "hi": hi}


# ---------------------------------------------------------------- IsoFLOP
def isoflop(widths, budgets, *, family: str = "transformer", lr_of=None, corpus: CharCorpus, batch: int,
            context: int, layers: int = 2, windows: int = 64, seed: int = 0, base_steps: int = 100, device=None,
            progress: bool = False) -> list[dict]:
    """Train every width at each compute budget (chapter 10): an IsoFLOP profile per budget.

    A budget ``b`` is ``b`` times the compute of the smallest width trained for ``base_steps``
    steps; each width gets the number of steps that spends it, so larger models see fewer tokens.
    ``lr_of(width)`` gives each width's learning rate (default 3e-3).
    """
    ref = make_model(family, min(widths), corpus.vocab_size, context, layers)
    unit = flops_per_token(ref, context)["C"] * base_steps * batch * context
    plan = []
    for b in budgets:
        for w in widths:
            per_step = flops_per_token(make_model(family, w, corpus.vocab_size, context, layers), context)["C"] * batch * context
            steps = int(b * unit / per_step)
            if steps >= 1:
                plan.append((b, w, steps))

    def one(p):
        b, w, steps = p
        r = train_one(family, w, (lr_of or (lambda _: 3e-3))(w), corpus=corpus, steps=steps, batch=batch,
                      context=context, layers=layers, windows=windows, seed=seed, device=device, progress=progress)
        return {"budget": b, "budget_flops": b * unit, "steps": steps,
                **{k: v for k, v in r.items() if k not in ("window_losses", "by_position")}}

    out = map_runs(one, plan, progress=progress, desc="IsoFLOP runs")
    return out


@register("scaling", "chapter 10: LSTM and Transformer families, lr swept per size, L(N) fits, IsoFLOP", chapter=10)
def scaling(scale: str = "quick", seeds=(0,), device=None, progress: bool = False) -> dict:
    """The whole scaling experiment of chapter 10 at ``scale`` ('tiny' for tests, 'quick', 'full')."""
    s = SETTINGS[scale]
    corpus = CharCorpus()
    common = dict(corpus=corpus, steps=s["steps"], batch=s["batch"], context=s["context"], layers=s["layers"],
                  windows=s["eval_windows"], device=device)
    start = time.perf_counter()
    runs, best, fits = [], {}, {}
    for family in FAMILIES:
        r, b = sweep(family, s["widths"], s["lrs"], seeds=seeds, progress=progress, **common)
        runs += r
        best[family] = b
        by_width = {}
        for run in b:
            by_width.setdefault(run["width"], []).append(run)
        fits[family] = {}
        for count, key in (("non_embedding", "params_nonemb"), ("total", "params"), ("compute", "flops")):
            N = [rs[0][key] for rs in by_width.values()]
            windows = [[sum(v) / len(rs) for v in zip(*(x["window_losses"] for x in rs))] for rs in by_width.values()]
            fit = fit_scaling_law(N, [sum(w) / len(w) for w in windows])
            fits[family][count] = {**fit, **{k: v for k, v in bootstrap_exponent(N, windows, s["n_boot"]).items()
                                             if k != "alpha"}}
    lr_best = {r["width"]: r["lr"] for r in best["transformer"]}
    iso = isoflop(s["iso_widths"], s["iso_budgets"], lr_of=lambda w: lr_best.get(w, 3e-3), corpus=corpus,
                  batch=s["batch"], context=s["context"], layers=s["layers"], windows=s["eval_windows"],
                  seed=seeds[0], base_steps=s["steps"], device=device, progress=progress)
    strip = lambda r: {k: v for k, v in r.items() if k != "window_losses"}
    lines = [f"{'family':12s} {'counting':14s} {'alpha':>7s} {'95% interval':>16s} {'c':>6s}"]
    for family, fs in fits.items():
        for count, f in fs.items():
            lines.append(f"{family:12s} {count:14s} {f['alpha']:7.3f} [{f['lo']:6.3f}, {f['hi']:6.3f}] {f['c']:6.3f}")
    return {"summary_lines": lines, "settings": s, "runs": [strip(r) for r in runs], "best": {f: [strip(r) for r in b] for f, b in best.items()},
            "fits": fits, "isoflop": iso, "buckets": position_buckets(s["context"]),
            "seconds": round(time.perf_counter() - start, 1)}
