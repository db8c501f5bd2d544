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

The recipe (Porian et al., 2024; Hoffmann et al., 2022): AdamW with beta_2 = 0.99 at this small
batch and weight decay 0.1, a linear warm-up over the first 10% of the steps then a cosine decay to
10% of the peak learning rate at the run's last step (``cosine_schedule``), gradients clipped at 1.
Each size's learning rate is chosen on the ``tune`` split, from a grid of at least 4 values that must
bracket the optimum (``choose_lr``: on each side of the best rate some rate must be worse by more than
``flat`` nats; a best value at the grid's edge, or a side flat up to the edge, widens the grid there, up to
``max_widen`` times, and then is an error); losses are reported on the ``val`` split, on windows
drawn across all of it (``spread_windows``). The learning rate is swept on the first seed; the other
seeds run at the chosen rate. Count baselines (unigram to 5-gram, ``seqlab.measure.ngram_baselines``)
are scored on the same windows. Intervals come from a paired bootstrap over the windows
(``paired_bootstrap``: one resampling of the windows shared by every size and both families).

``scaling`` (registered as ``python -m seqlab.experiments scaling``) does all of it at a given
scale. At ``--scale cpu`` (the recorded study, a few CPU-hours: chapter 10 prints the recorded total; run it under
``torchrun --standalone --nproc_per_node 2``) every finished run is saved as it completes in
``results/scaling-cpu/runs/`` and a rerun of the same command skips it, so the sweep can be
interrupted and resumed; the results file is written when the grid is complete.
"""
from __future__ import annotations

import functools
import hashlib
import json
import math
import os
import random
import sys
import time
from pathlib import Path

import torch

from .. import _validate as validate
from ..config import seed_everything
from ..data.corpus import CharCorpus, random_windows
from ..data.stdlib import load_corpus
from ..measure import ngram_baselines, ngram_level
from ..models.charlm import RecurrentLM
from ..models.transformer import GPT, GPTConfig
from ..train import train
from . import register
from .distributed import from_rank0, map_runs, rank, world_size

FAMILIES = ("lstm", "transformer")
EVAL_SEED = 12345  # the evaluation windows are one fixed draw, the same for every run and every seed offset
FORGET_BIAS = 1.0  # the LSTM's forget-gate bias at initialisation (Jozefowicz et al., 2015)

_RECIPE = dict(warmup_fraction=0.1, final_lr=0.1, beta2=0.99, weight_decay=0.1, clip=1.0)

SETTINGS = {
    # corpus, widths per family, the learning-rate grid per family (swept per size), training length (matched
    # tokens), evaluation windows (tune: choose the lr; val: report), the recipe, and the IsoFLOP grid:
    # compute budgets in FLOPs, the widths of each placed around the predicted optimum N_opt = sqrt(C / 120)
    "tiny": dict(corpus="pydoc", widths={"lstm": [8, 12, 16], "transformer": [8, 12, 16]},
                 lrs={"lstm": [3e-3, 1e-2], "transformer": [3e-3, 1e-2]}, steps=4, batch=4, context=32, layers=2,
                 tune_windows=8, eval_windows=8, curve_every=2, curve_windows=4, max_order=3, bracket=False,
                 max_widen=0, iso_families=["transformer"], iso_budgets=[2e7], iso_factors=[0.5, 1.0, 2.0],
                 pair={"lstm": 16, "transformer": 16}, n_boot=20, **_RECIPE),
    "quick": dict(corpus="stdlib", widths={"lstm": [16, 32, 64], "transformer": [16, 32, 64]},
                  lrs={"lstm": [1e-2, 2e-2], "transformer": [4e-3, 8e-3]}, steps=150, batch=16, context=128,
                  layers=2, tune_windows=32, eval_windows=96, curve_every=50, curve_windows=16, max_order=5,
                  bracket=False, max_widen=0, iso_families=["transformer"], iso_budgets=[3e10],
                  iso_factors=[0.25, 0.5, 1.0, 2.0, 4.0], pair={"lstm": 64, "transformer": 64}, n_boot=200, **_RECIPE),
    "cpu": dict(corpus="stdlib", widths={"lstm": [24, 40, 56, 96, 160, 240], "transformer": [24, 32, 48, 80, 128, 192]},
                lrs={"lstm": [2e-3, 4e-3, 8e-3, 1.6e-2], "transformer": [1e-3, 2e-3, 4e-3, 8e-3]}, steps=800, batch=16,
                context=256, layers=2, tune_windows=128, eval_windows=512, curve_every=50, curve_windows=32, max_order=5,
                bracket=True, max_widen=6, flat=0.01, iso_families=["transformer"], iso_budgets=[3e11, 1e12, 3e12],
                iso_factors=[0.0625, 0.125, 0.25, 0.5, 1.0, 2.0, 4.0], pair={"lstm": 160, "transformer": 128}, n_boot=1000,
                **_RECIPE),
    "full": dict(corpus="stdlib", widths={"lstm": [64, 128, 256, 384, 512, 768], "transformer": [64, 128, 192, 256, 384, 512]},
                 lrs={"lstm": [1e-3, 2e-3, 4e-3, 8e-3], "transformer": [5e-4, 1e-3, 2e-3, 4e-3]}, steps=4000, batch=32,
                 context=512, layers=4, tune_windows=256, eval_windows=1024, curve_every=200, curve_windows=64,
                 max_order=5, bracket=True, max_widen=2, flat=0.01, iso_families=["lstm", "transformer"],
                 iso_budgets=[1e14, 3e14, 1e15], iso_factors=[0.25, 0.5, 1.0, 2.0, 4.0],
                 pair={"lstm": 384, "transformer": 256}, n_boot=1000, **_RECIPE),
}


def make_model(family: str, width: int, vocab: int, context: int, layers: int = 2) -> torch.nn.Module:
    """A character model of ``family`` 'lstm' (``layers`` LSTM layers of width d, forget-gate bias 1, PyTorch's
    kernel) or 'transformer' (a Pre-Norm GPT of ``layers`` blocks, width d, max(1, d // 16) heads, learned
    positions, PyTorch's fused attention); chapter 10."""
    validate.positive_int("width", width)
    if family == "lstm":
        return RecurrentLM(vocab, width, width, cell="lstm", n_layers=layers, form="fused", forget_bias=FORGET_BIAS)
    if family == "transformer":
        heads = max(1, width // 16)
        if width % heads:
            raise ValueError(f"a transformer width must be divisible by its {heads} heads (width // 16), got {width}")
        return GPT(GPTConfig(vocab_size=vocab, d_model=width, n_heads=heads, n_layers=layers, max_len=context), form="fused")
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


# ---------------------------------------------------------------- data, windows, schedule
def splits(corpus: CharCorpus) -> dict[str, torch.Tensor]:
    """``{"train", "tune", "val"}`` id tensors (chapter 10): a ``StdlibCorpus``'s own three splits, or for a
    ``CharCorpus`` its training split and the two halves of its validation split (tune first)."""
    if hasattr(corpus, "tune"):
        return {"train": corpus.train, "tune": corpus.tune, "val": corpus.val}
    half = len(corpus.val) // 2
    return {"train": corpus.train, "tune": corpus.val[:half], "val": corpus.val[half:]}


def spread_windows(ids: torch.Tensor, n: int, context: int, seed: int = EVAL_SEED) -> torch.Tensor:
    """``n`` non-overlapping windows of ``context + 1`` ids drawn across the whole of ``ids`` (chapter 10).

    ``ids`` is cut into ``n`` equal strata and one window starts at a random offset inside each
    (a generator seeded with ``seed``), so the windows cover the split from its start to its end
    rather than one stretch of it. Returns ``(n, context + 1)``.
    """
    validate.tensor("ids", ids, ndim=1, dtype="long")
    validate.positive_int("n", n)
    validate.positive_int("context", context)
    stride = len(ids) // n
    if stride < context + 1:
        raise ValueError(f"{n} windows of {context + 1} need at least {n * (context + 1)} ids, got {len(ids)}")
    g = torch.Generator().manual_seed(seed)
    starts = torch.arange(n) * stride + torch.randint(0, stride - context, (n,), generator=g)
    return ids[starts[:, None] + torch.arange(context + 1)]


def eval_windows(corpus: CharCorpus, n: int, context: int, split: str = "val") -> torch.Tensor:
    """The evaluation windows of a split of ``corpus`` (``spread_windows``, seeded with ``EVAL_SEED``; chapter 10)."""
    return spread_windows(splits(corpus)[split], n, context)


@torch.no_grad()
def position_losses(model: torch.nn.Module, windows: torch.Tensor, chunk: int = 32) -> torch.Tensor:
    """Loss (nats) of every next-character prediction: (n_windows, context), ``chunk`` windows at a time (chapter 10)."""
    parts = []
    for i in range(0, len(windows), chunk):
        w = windows[i:i + chunk]
        out = model(w[:, :-1])
        logits = out[0] if isinstance(out, tuple) else out  # (n, T, V)
        parts.append(torch.nn.functional.cross_entropy(logits.transpose(1, 2), w[:, 1:], reduction="none"))
    return torch.cat(parts)


def position_buckets(context: int) -> list[tuple[int, int]]:
    """Ranges of positions ``[0, 8), [8, 32), [32, 64), [64, 128), ...`` up to ``context`` (chapter 10)."""
    edges = [0, 8, 32] + [2 ** k for k in range(6, 20)]
    edges = [e for e in edges if e < context] + [context]
    return list(zip(edges[:-1], edges[1:]))


def cosine_schedule(lr: float, steps: int, warmup: int, final: float = 0.1):
    """``lr_at(step)``: linear warm-up to ``lr`` over ``warmup`` steps, then a cosine decay to ``final * lr``
    at the last step (chapter 10): ``lr_t = lr (t + 1) / warmup`` for ``t < warmup``, else
    ``lr (final + (1 - final) (1 + cos(pi u)) / 2)`` with ``u = (t - warmup) / (steps - warmup - 1)``."""
    validate.number("lr", lr, minimum=0, strict=True)
    validate.positive_int("steps", steps)
    validate.positive_int("warmup", warmup, minimum=0)
    validate.number("final", final, minimum=0)
    if warmup >= steps:
        raise ValueError(f"warmup must be shorter than the run, got warmup={warmup} and steps={steps}")

    def lr_at(step: int) -> float:
        if step < warmup:
            return lr * (step + 1) / warmup
        u = (step - warmup) / max(1, steps - warmup - 1)
        return lr * (final + (1 - final) * 0.5 * (1 + math.cos(math.pi * min(1.0, u))))

    return lr_at


def train_one(family: str, width: int, lr: float, *, corpus: CharCorpus, steps: int, batch: int, context: int,
              layers: int, windows: int = 64, tune_windows: int = 32, curve_every: int | None = None,
              curve_windows: int = 16, seed: int = 0, warmup_fraction: float = 0.1, final_lr: float = 0.1,
              beta2: float = 0.99, weight_decay: float = 0.1, clip: float = 1.0, device=None, progress: bool = False,
              save_to: str | Path | None = None, keep_model: bool = False, **_) -> dict:
    """Train one model with the chapter's recipe and evaluate it; returns plain numbers (chapter 10).

    ``val_loss`` is the mean loss on ``windows`` windows spread across the validation split
    (``window_losses``: each window's mean, for the paired bootstrap; ``by_position``: the mean at
    each position of the context); ``tune_loss`` the same on the tune split (it chooses the
    learning rate). ``curve`` holds ``[step, seconds of training so far, loss on curve_windows tune
    windows]`` every ``curve_every`` steps: loss against wall-clock time, the evaluations' own time
    left out. ``save_to`` writes the trained state dict there; ``keep_model`` returns the model under
    ``"model"`` too (for a page's live analyses; it is not written to results files).
    """
    device = torch.device(device or "cpu")
    parts = splits(corpus)
    gen = seed_everything(seed)
    model = make_model(family, width, corpus.vocab_size, context, layers).to(device)
    counts, fl = count_parameters(model), flops_per_token(model, context)
    curve_w = spread_windows(parts["tune"], curve_windows, context).to(device)
    clock = {"start": None, "paused": 0.0, "cpu_start": None, "cpu_paused": 0.0}  # set by the first batch

    def curve(m):  # wall-clock and CPU seconds of training so far (on a shared machine the CPU time is the fair one)
        t0, c0 = time.perf_counter(), time.process_time()
        loss = position_losses(m, curve_w).mean().item()
        seconds, cpu = t0 - clock["start"] - clock["paused"], c0 - clock["cpu_start"] - clock["cpu_paused"]
        clock["paused"] += time.perf_counter() - t0
        clock["cpu_paused"] += time.process_time() - c0
        return {"loss": loss, "seconds": seconds, "cpu": cpu}

    def batch_fn():
        if clock["start"] is None:  # the clocks start when training does: after the optimiser is made (its first
            clock.update(start=time.perf_counter(), cpu_start=time.process_time())  # one-time set-up)
        return random_windows(parts["train"], batch, context, gen)

    warmup = max(1, int(warmup_fraction * steps)) if steps > 1 else 0
    h = train(model, batch_fn, steps=steps, lr=lr, clip=clip, weight_decay=weight_decay, betas=(0.9, beta2),
              lr_at=cosine_schedule(lr, steps, warmup, final_lr) if steps > 1 else None,
              eval_fn=curve if curve_every else None, eval_every=curve_every, progress=progress,
              desc=f"{family} d={width} lr={lr:g} seed={seed}")
    curve_end, cpu_end = time.perf_counter(), time.process_time()  # training and its curve's evaluations are over
    model.eval()
    losses = position_losses(model, spread_windows(parts["val"], windows, context).to(device)).cpu()  # (n, T)
    tune = position_losses(model, spread_windows(parts["tune"], tune_windows, context).to(device)).mean().item()
    tokens = h.steps * batch * context
    if save_to is not None:
        Path(save_to).parent.mkdir(parents=True, exist_ok=True)
        torch.save({k: v.cpu() for k, v in model.state_dict().items()}, save_to)
    curve_rows = [[s, round(sec, 3), round(l, 5), round(cpu, 3)] for s, sec, l, cpu in
                  zip(h.eval_step, h.eval.get("seconds", []), h.eval.get("loss", []), h.eval.get("cpu", []))]
    bad = h.diverged or not math.isfinite(losses.mean().item())
    return {"family": family, "width": width, "lr": lr, "seed": seed, "params": counts["total"],
            "params_nonemb": counts["non_embedding"], "steps": h.steps, "tokens": tokens,
            "passes": round(tokens / len(parts["train"]), 4), "flops": fl["C"] * tokens, "flops_6N": fl["6N"] * tokens,
            "val_loss": math.inf if bad else losses.mean().item(), "tune_loss": math.inf if bad else tune,
            "diverged": bad, "window_losses": [round(v, 5) for v in losses.mean(1).tolist()],
            "by_position": [round(v, 5) for v in losses.mean(0).tolist()], "curve": curve_rows,
            "window_buckets": [[round(v, 5) for v in row] for row in bucket_means(losses, context).tolist()],
            "seconds": round(curve_end - clock["start"] - clock["paused"], 3),
            "cpu_seconds": round(cpu_end - clock["cpu_start"] - clock["cpu_paused"], 3), **({"model": model} if keep_model else {})}


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
        dx = lx - mx
        slope = (dx * (ly - my)).sum() / (dx ** 2).sum()
        a = torch.exp(my - slope * mx)
        err = ((a * torch.exp(slope * lx) + c - y) ** 2).sum().item()
        if best is None or err < best[0]:
            best = (err, a.item(), -slope.item(), c.item())
    return {"a": best[1], "alpha": best[2], "c": best[3]}


# ---------------------------------------------------------------- the sweep: resumable runs, lr choice
def run_key(phase: str, family: str, width: int, lr: float, seed: int, steps: int) -> str:
    """The file name (without .json) of one run in a sweep's runs directory (chapter 10)."""
    return f"{phase}-{family}-d{width}-lr{lr:.3g}-s{seed}-n{steps}"


def settings_hash(s: dict, corpus_sha: str) -> str:
    """A short hash of everything that changes a run's numbers: the settings and the corpus (chapter 10)."""
    text = json.dumps({"settings": s, "corpus": corpus_sha, "eval_seed": EVAL_SEED, "forget_bias": FORGET_BIAS},
                      sort_keys=True)
    return hashlib.sha256(text.encode()).hexdigest()[:16]


class Runs:
    """A directory of finished runs, one JSON file each (chapter 10): ``get`` returns a saved run or None,
    ``put`` saves one atomically. Each file records the settings' hash; a file made with other settings is
    an error, not a silent reuse. ``Runs(None)`` keeps nothing (tests, the quick scale)."""

    def __init__(self, directory: str | Path | None, tag: str):
        self.dir = None if directory is None else Path(directory)
        self.tag = tag

    def path(self, key: str) -> Path | None:
        return None if self.dir is None else self.dir / f"{key}.json"

    def get(self, key: str) -> dict | None:
        p = self.path(key)
        if p is None or not p.exists():
            return None
        saved = json.loads(p.read_text(encoding="utf-8"))
        if saved.get("settings_hash") != self.tag:
            raise ValueError(f"{p} was made with other settings (hash {saved.get('settings_hash')}, expected {self.tag}):"
                             f" move {self.dir} away to start this sweep afresh")
        return saved["run"]

    def put(self, key: str, run: dict) -> None:
        p = self.path(key)
        if p is None:
            return
        p.parent.mkdir(parents=True, exist_ok=True)
        tmp = p.with_suffix(f".tmp{os.getpid()}")
        tmp.write_text(json.dumps({"settings_hash": self.tag, "run": run}) + "\n", encoding="utf-8")
        tmp.replace(p)


class Progress:
    """Rank 0's progress over its share of a sweep, weighted by each run's estimated seconds (chapter 10).

    A tqdm bar in estimated CPU-seconds (so its rate and remaining time are a time estimate) and one
    line per finished run. Saved runs count as done at once.
    """

    def __init__(self, show: bool):
        self.show = show and rank() == 0
        self.bar = None
        self.done = 0

    def start(self, total_seconds: float, runs: int, desc: str):
        if not self.show:
            return
        from tqdm.auto import tqdm

        self.bar = tqdm(total=round(total_seconds), desc=desc, unit="est-s", file=sys.stderr, mininterval=5)
        self.bar.write(f"{desc}: {runs} runs on this process, about {total_seconds / 60:.1f} min estimated", file=sys.stderr)

    def update(self, est: float, line: str | None):
        if self.bar is None:
            return
        self.bar.update(round(est))
        if line:
            self.bar.write(line, file=sys.stderr)

    def close(self):
        if self.bar is not None:
            self.bar.close()
            self.bar = None


def run_many(configs: list[dict], runs: Runs, common: dict, progress: Progress, cost, desc: str) -> list[dict]:
    """Every config (``phase, family, width, lr, seed, steps`` + ``save_to``) run or loaded, spread over the ranks by
    ``map_runs`` (chapter 10). ``cost(config)`` is a run's estimated seconds, for the progress bar."""
    n, r = world_size(), rank()
    mine = [c for i, c in enumerate(configs) if i % n == r]
    progress.start(sum(cost(c) for c in mine), len(mine), desc)

    def one(c):
        key = run_key(c["phase"], c["family"], c["width"], c["lr"], c["seed"], c["steps"])
        saved = runs.get(key)
        if saved is not None:
            progress.update(cost(c), None)
            return saved
        kw = {**common, "steps": c["steps"]}
        out = train_one(c["family"], c["width"], c["lr"], seed=c["seed"], save_to=c.get("save_to"), **kw)
        out["phase"] = c["phase"]
        runs.put(key, out)
        progress.update(cost(c), f"  {key}: val {out['val_loss']:.3f}, tune {out['tune_loss']:.3f} nats, "
                                 f"{out['seconds']:.0f} s (estimated {cost(c):.0f} s)")
        return out

    out = map_runs(one, configs, progress=False, desc=desc)
    progress.close()
    return out


def choose_lr(lrs, losses, *, where: str = "", require_bracket: bool = True, flat: float = 0.0) -> dict:
    """The learning rate with the lowest loss, and whether the grid brackets it (chapter 10).

    ``lrs`` increasing, ``losses`` the matching tune losses (inf for a diverged run). The grid brackets the
    best rate when on each side of it some rate of the grid is worse by more than ``flat`` nats (a diverged
    run counts as worse). So a best value at the grid's smallest or largest rate is not bracketed (the optimum
    may lie beyond it), and neither is one whose every neighbour on a side, up to the grid's edge, is within
    ``flat`` of it: that side is flat as far as the grid reaches, and the optimum may lie beyond it too.
    Chapter 10's sweep widens such a grid at that edge (``widen``) and runs the new rate.

    Returns ``{"lr", "index", "bracketed", "edge", "widen"}``: ``edge`` is ``"low"``/``"high"`` when the best
    value is the grid's smallest/largest, else None; ``widen`` lists the edges (``"low"``, ``"high"``, in
    that order) at which the grid does not bracket the best rate, ``edge`` among them; ``bracketed`` is True
    when ``widen`` is empty and the grid has at least 3 values. With ``require_bracket``, a grid that does not
    bracket raises ValueError naming the grid and what to do.
    """
    lrs, losses = [float(v) for v in lrs], [float(v) for v in losses]
    if len(lrs) != len(losses) or len(lrs) < 2:
        raise ValueError(f"need as many losses as learning rates (at least 2), got {len(lrs)} and {len(losses)}")
    if any(a >= b for a, b in zip(lrs, lrs[1:])):
        raise ValueError(f"learning rates must increase, got {lrs}")
    if not isinstance(flat, (int, float)) or isinstance(flat, bool) or not flat >= 0:
        raise ValueError(f"flat must be a number of nats >= 0, got {flat!r}")
    if not any(math.isfinite(v) for v in losses):
        raise ValueError(f"every run diverged{where}: lower the learning-rate grid {lrs}")
    i = min(range(len(lrs)), key=lambda k: losses[k] if math.isfinite(losses[k]) else math.inf)
    edge = "low" if i == 0 else "high" if i == len(lrs) - 1 else None
    worse = lambda k: not math.isfinite(losses[k]) or losses[k] - losses[i] > flat
    sides = [s for s, ks in (("low", range(i)), ("high", range(i + 1, len(lrs)))) if not any(worse(k) for k in ks)]
    if sides and require_bracket:
        why = {"low": "is its smallest value" if edge == "low" else f"has every rate below it within {flat:g} nats of it",
               "high": "is its largest value" if edge == "high" else f"has every rate above it within {flat:g} nats of it"}
        raise ValueError(f"the learning-rate grid {lrs} does not bracket the optimum{where}: the best, {lrs[i]:g}, "
                         + " and ".join(why[s] for s in sides) + "; widen the grid "
                         + " and ".join({"low": "downwards", "high": "upwards"}[s] for s in sides) + " and rerun")
    return {"lr": lrs[i], "index": i, "bracketed": not sides and len(lrs) >= 3, "edge": edge, "widen": sides}


def widen(lrs, edge) -> list[float]:
    """``lrs`` with one more value beyond ``edge`` ('low' or 'high', or a list of them: one beyond each), at the
    grid's own ratio (chapter 10)."""
    ratio = lrs[1] / lrs[0]
    out = list(lrs)
    for e in [edge] if isinstance(edge, str) else edge:
        if e not in ("low", "high"):
            raise ValueError(f"edge must be 'low' or 'high', got {e!r}")
        out = [out[0] / ratio] + out if e == "low" else out + [out[-1] * ratio]
    return out


# ---------------------------------------------------------------- statistics
def paired_bootstrap(stat, window_sets: dict, n_boot: int = 1000, seed: int = 0) -> dict:
    """A 95% paired-bootstrap interval on ``stat`` (chapter 10).

    ``window_sets`` maps a name to per-window losses, all over the same evaluation windows in the
    same order (e.g. every size of both families). Each replicate draws one set of window indices
    with replacement and uses it for every entry, so the windows' content, shared by all models,
    is resampled once and cancels in comparisons. ``stat(means)`` receives ``{name: mean over the
    drawn windows}`` and returns a number (or None, then the replicate is skipped). Returns
    ``{"value", "lo", "hi", "n"}``: ``stat`` on all windows, the 2.5 and 97.5 percentiles, replicates used.
    """
    validate.positive_int("n_boot", n_boot)
    names = list(window_sets)
    W = torch.tensor([window_sets[k] for k in names], dtype=torch.float64)  # (models, windows)
    if W.dim() != 2:
        raise ValueError("every entry of window_sets must hold the same number of windows")
    g = torch.Generator().manual_seed(seed)
    value = stat(dict(zip(names, W.mean(1).tolist())))
    samples = []
    for _ in range(n_boot):
        idx = torch.randint(0, W.shape[1], (W.shape[1],), generator=g)
        v = stat(dict(zip(names, W[:, idx].mean(1).tolist())))
        if v is not None and math.isfinite(v):
            samples.append(v)
    if not samples:
        return {"value": value, "lo": None, "hi": None, "n": 0}
    samples.sort()
    lo, hi = samples[int(0.025 * (len(samples) - 1))], samples[int(math.ceil(0.975 * (len(samples) - 1)))]
    return {"value": value, "lo": lo, "hi": hi, "n": len(samples)}


def bootstrap_exponent(N, window_losses, n_boot: int = 200, seed: int = 0, irreducible: bool = True) -> dict:
    """A 95% paired-bootstrap interval on alpha (chapter 10): ``window_losses[i]`` holds the per-window losses
    of size ``N[i]`` on the same windows; one draw of windows is shared by all sizes (``paired_bootstrap``).
    Returns ``{"alpha", "lo", "hi"}``. It measures the evaluation's noise, not a retrain's: average several
    seeds' windows first for that. ``irreducible=False`` fits the plain power law (c = 0)."""
    grid = 400 if irreducible else 1
    sets = {i: list(w) for i, w in enumerate(window_losses)}
    b = paired_bootstrap(lambda m: fit_scaling_law(N, [m[i] for i in range(len(N))], n_grid=grid)["alpha"], sets,
                         n_boot=n_boot, seed=seed)
    return {"alpha": b["value"], "lo": b["lo"], "hi": b["hi"]}


def law(fit: dict, N) -> float:
    """``a N^(-alpha) + c`` of a fit (chapter 10)."""
    return fit["a"] * float(N) ** (-fit["alpha"]) + fit["c"]


def crossing(fit_a: dict, fit_b: dict, lo: float = 1e3, hi: float = 1e10) -> float | None:
    """The N in ``[lo, hi]`` where two fitted laws first cross (log-spaced scan, then bisection), or None (chapter 10)."""
    n = 400                                                   # log-spaced intervals between lo and hi
    grid = [lo * (hi / lo) ** (k / n) for k in range(n + 1)]
    gap = [law(fit_a, N) - law(fit_b, N) for N in grid]
    for k in range(n):
        if gap[k] == 0:
            return grid[k]
        if gap[k] * gap[k + 1] < 0:
            a, b = grid[k], grid[k + 1]
            for _ in range(60):
                m = math.sqrt(a * b)
                if (law(fit_a, m) - law(fit_b, m)) * gap[k] > 0:
                    a = m
                else:
                    b = m
            return math.sqrt(a * b)
    return None


def parabola_minimum(N, L) -> float | None:
    """The N at the minimum of a parabola fitted to L against log N (the IsoFLOP valley; chapter 10), or None
    when the parabola opens downwards or its minimum lies outside the measured range."""
    if len(N) < 3:
        return None
    x = torch.tensor([math.log(n) for n in N], dtype=torch.float64)
    y = torch.tensor([float(v) for v in L], dtype=torch.float64)
    A = torch.stack([x ** 2, x, torch.ones_like(x)], 1)
    a, b, _ = torch.linalg.lstsq(A, y[:, None]).solution[:, 0].tolist()
    if a <= 0:
        return None
    xm = -b / (2 * a)
    return math.exp(xm) if x.min().item() <= xm <= x.max().item() else None


# ---------------------------------------------------------------- how well one power law fits
T_975 = {1: 12.706, 2: 4.303, 3: 3.182, 4: 2.776, 5: 2.571, 6: 2.447, 7: 2.365, 8: 2.306, 9: 2.262, 10: 2.228}
"""Student's t, two-sided 95 % quantiles (the 0.975 point) by degrees of freedom (chapter 10)."""


def chi2_sf(x: float, k: int) -> float:
    """P(χ²_k > x): the survival function of a chi-square with ``k`` degrees of freedom (chapter 10).

    The regularised upper incomplete gamma Q(k/2, x/2): below t = a + 1 as 1 minus the series of the lower
    one, P(a, t) = e^{−t} t^a Σ_n t^n / Γ(a + n + 1); above it by its continued fraction (Lentz's method),
    which keeps small p-values exact to rounding instead of losing them to 1 − P.
    """
    validate.positive_int("k", k)
    if not isinstance(x, (int, float)) or isinstance(x, bool) or x < 0:
        raise ValueError(f"x must be a number >= 0, got {x!r}")
    a, t = k / 2, x / 2
    if t == 0:
        return 1.0
    prefactor = math.exp(-t + a * math.log(t) - math.lgamma(a))
    if t < a + 1:
        term = total = 1 / a
        n = 0
        while term > 1e-17 * total:
            n += 1
            term *= t / (a + n)
            total += term
        return max(0.0, 1 - prefactor * total)
    tiny = 1e-300
    b, c = t + 1 - a, 1 / tiny
    d = 1 / b
    h = d
    for i in range(1, 1000):
        an = -i * (i - a)
        b += 2
        d = an * d + b
        d = 1 / (d if abs(d) > tiny else tiny)
        c = b + an / c
        c = c if abs(c) > tiny else tiny
        h *= d * c
        if abs(d * c - 1) < 1e-15:
            break
    return prefactor * h


def power_law_diagnostics(sizes: list[dict]) -> dict:
    """How well one power law L = a N^−α fits a family's seed means (chapter 10).

    ``sizes``: one dict per size with ``params_nonemb`` (N), ``val_loss`` (the mean over seeds), ``val_sd``
    and ``seeds``. Least squares of log L on log N gives ``alpha`` and its 95 % ``interval`` (Student's t on
    the residual spread, n − 2 degrees of freedom); ``residual_nats`` are L minus the fitted law; ``z`` divide
    them by the standard error of a seed mean, with the seed SD pooled over sizes; ``chi2``, ``dof`` and ``p``
    test those z against unit normals (χ² with n − 2 degrees of freedom); ``local`` are the exponents between
    neighbouring sizes.
    """
    if len(sizes) < 3:
        raise ValueError(f"a power-law fit with an interval needs at least 3 sizes, got {len(sizes)}")
    x = [math.log(b["params_nonemb"]) for b in sizes]
    y = [math.log(b["val_loss"]) for b in sizes]
    mx, my = sum(x) / len(x), sum(y) / len(y)
    sxx = sum((a - mx) ** 2 for a in x)
    slope = sum((a - mx) * (c - my) for a, c in zip(x, y)) / sxx
    resid = [c - (my + slope * (a - mx)) for a, c in zip(x, y)]
    dof = len(x) - 2
    if dof not in T_975:
        raise ValueError(f"the t table covers {min(T_975)} to {max(T_975)} degrees of freedom, got {dof}")
    se = math.sqrt(sum(r * r for r in resid) / dof / sxx)
    nats = [b["val_loss"] - math.exp(my + slope * (a - mx)) for a, b in zip(x, sizes)]
    sd_pool = math.sqrt(sum(b["val_sd"] ** 2 for b in sizes) / len(sizes))  # a few seeds give a rough SD per size
    z = [n / (sd_pool / math.sqrt(len(b["seeds"]))) for n, b in zip(nats, sizes)]
    chi2 = sum(v * v for v in z)
    return {"alpha": -slope, "interval": (-slope - T_975[dof] * se, -slope + T_975[dof] * se),
            "residual_nats": nats, "z": z, "chi2": chi2, "dof": dof, "p": chi2_sf(chi2, dof),
            "local": [-(y[i + 1] - y[i]) / (x[i + 1] - x[i]) for i in range(len(x) - 1)]}


# ---------------------------------------------------------------- IsoFLOP plan
@functools.lru_cache(maxsize=4096)
def _n_nonemb(family: str, width: int, vocab: int, context: int, layers: int) -> int:
    return count_parameters(make_model(family, width, vocab, context, layers))["non_embedding"]


def width_for(family: str, target: float, vocab: int, context: int, layers: int) -> int:
    """The width (a multiple of 4, divisible by its heads) whose non-embedding count is nearest ``target`` in log (chapter 10)."""
    best = None
    for w in range(8, 1025, 4):
        if family == "transformer" and w % max(1, w // 16):
            continue
        n = _n_nonemb(family, w, vocab, context, layers)
        d = abs(math.log(n / target))
        if best is None or d < best[0]:
            best = (d, w)
        if n > 4 * target:
            break
    return best[1]


def isoflop_plan(s: dict, vocab: int) -> list[dict]:
    """Chapter 10: per family and budget C, widths at ``iso_factors`` x N_opt, with N_opt = sqrt(C / 120) (Chinchilla's
    20 tokens per parameter), and the steps that spend C (counted FLOPs) at the sweep's batch and context."""
    plan = []
    for family in s["iso_families"]:
        for C in s["iso_budgets"]:
            n_opt = math.sqrt(C / 120)
            widths = sorted({width_for(family, f * n_opt, vocab, s["context"], s["layers"]) for f in s["iso_factors"]})
            for w in widths:
                per_step = flops_per_token(make_model(family, w, vocab, s["context"], s["layers"]), s["context"])["C"] \
                    * s["batch"] * s["context"]
                steps = int(C / per_step)
                if steps >= 2:
                    plan.append({"family": family, "budget": C, "width": w, "steps": steps, "n_opt_predicted": n_opt})
    return plan


def time_steps(family: str, width: int, s: dict, vocab: int, steps: int = 3) -> float:
    """CPU seconds of one training step (forward, backward, AdamW) of a size, the best of ``steps`` after one
    warm-up step (chapter 10: the sweep's estimate)."""
    model = make_model(family, width, vocab, s["context"], s["layers"])
    opt = torch.optim.AdamW(model.parameters(), 1e-3)
    x = torch.randint(0, vocab, (s["batch"], s["context"] + 1))
    best = math.inf
    for k in range(steps + 1):
        t = time.process_time()
        out = model(x[:, :-1])
        out = out[0] if isinstance(out, tuple) else out
        loss = torch.nn.functional.cross_entropy(out.reshape(-1, vocab), x[:, 1:].reshape(-1))
        opt.zero_grad()
        loss.backward()
        opt.step()
        if k:
            best = min(best, time.process_time() - t)
    return best


# ---------------------------------------------------------------- the experiment
HASHED = ("corpus", "steps", "batch", "context", "layers", "tune_windows", "eval_windows", "curve_every", "curve_windows",
          "max_order", *_RECIPE)  # the settings that change a run's numbers (the lr grid, its widening and the bracket
#                         rule, bracket, flat and max_widen, choose which runs are made, not what one gives)


def corpus_info(corpus: CharCorpus) -> dict:
    """Name, sizes and SHA-256 of the corpus a sweep ran on (chapter 10)."""
    if hasattr(corpus, "info"):
        return corpus.info()
    parts = splits(corpus)
    return {"name": "pydoc", "sha256": hashlib.sha256(corpus.text.encode("utf-8")).hexdigest(),
            "vocab_size": corpus.vocab_size, "chars": {k: len(v) for k, v in parts.items()}}


def bucket_means(losses: torch.Tensor, context: int) -> torch.Tensor:
    """``(n, T)`` per-position losses -> ``(n, buckets)`` means over ``position_buckets(context)`` (chapter 10)."""
    return torch.stack([losses[:, a:b].mean(1) for a, b in position_buckets(context)], 1)


def baselines(s: dict, parts: dict, vocab: int, runs: Runs) -> dict:
    """The n-gram baselines on the sweep's validation windows (``ngram_baselines`` plus per-window bucket means),
    saved in the runs directory like a run (chapter 10)."""
    key = f"ngram-{s['eval_windows']}x{s['context']}-o{s['max_order']}"
    saved = runs.get(key)
    if saved is not None:
        return saved
    from ..models.ngram import window_losses

    report = spread_windows(parts["val"], s["eval_windows"], s["context"])
    losses = window_losses(parts["train"], report, vocab, s["max_order"])  # (orders, n, T)
    out = {"levels": {k + 1: round(losses[k].mean().item(), 5) for k in range(s["max_order"])},
           "by_position": {k + 1: [round(v, 5) for v in losses[k].mean(0).tolist()] for k in range(s["max_order"])},
           "window_losses": {k + 1: [round(v, 5) for v in losses[k].mean(1).tolist()] for k in range(s["max_order"])},
           "window_buckets": {k + 1: [[round(v, 5) for v in row] for row in bucket_means(losses[k], s["context"]).tolist()]
                              for k in range(s["max_order"])}}
    out = json.loads(json.dumps(out))  # the keys become strings, as when loaded from the file
    runs.put(key, out)
    return out


def estimate(s: dict, vocab: int, seeds, runs: Runs, plan_iso: list[dict]) -> dict:
    """The sweep's cost before it runs (chapter 10): one timed training step per size, times the planned steps of
    every run (the lr grid on the first seed, the other seeds, the IsoFLOP runs), plus the evaluations (a
    forward pass costs about a third of a training step per token). Saved in the runs directory."""
    saved = runs.get("estimate")
    if saved is not None:
        return saved
    sizes = {(f, w) for f in FAMILIES for w in s["widths"][f]} | {(p["family"], p["width"]) for p in plan_iso}
    per_step = {f"{f}-{w}": time_steps(f, w, s, vocab) for f, w in sorted(sizes)}
    curves = s["steps"] // s["curve_every"] if s["curve_every"] else 0  # the learning curve's evaluations in one run
    evals = (s["eval_windows"] + s["tune_windows"] + s["curve_windows"] * curves) / s["batch"] / 3
    lines, total = [], 0.0
    for f in FAMILIES:
        for w in s["widths"][f]:
            runs_n = len(s["lrs"][f]) + len(seeds) - 1
            sec = per_step[f"{f}-{w}"] * (s["steps"] + evals) * runs_n
            total += sec
            lines.append(f"  {f:11s} d={w:4d}: {per_step[f'{f}-{w}']:.3f} s/step x {s['steps']} steps x {runs_n} runs "
                         f"= {sec / 60:.1f} min")
    iso_runs = 3 + len(seeds) - 1  # three rates on the first seed, the other seeds at the best
    iso = sum(per_step[f"{p['family']}-{p['width']}"] * (p["steps"] + evals) for p in plan_iso) * iso_runs
    total += iso
    lines.append(f"  IsoFLOP: {len(plan_iso)} sizes x {iso_runs} runs = {iso / 60:.1f} min")
    lines.append(f"  total: {total / 3600:.2f} CPU-hours, about {total / 3600 / max(1, world_size()):.2f} h of wall time on "
                 f"{world_size()} process(es) with a core each (more on a busy machine); a widened lr grid adds runs")
    out = {"per_step": per_step, "eval_steps": evals, "total_seconds": total, "lines": lines}
    runs.put("estimate", out)
    return out


def _mean(xs):
    xs = [x for x in xs]
    return sum(xs) / len(xs)


def _sd(xs):
    m = _mean(xs)
    return math.sqrt(sum((x - m) ** 2 for x in xs) / (len(xs) - 1)) if len(xs) > 1 else 0.0


def _command() -> str:
    launcher = "python" if world_size() == 1 else f"torchrun --standalone --nproc_per_node={world_size()}"
    return f"{launcher} -m seqlab.experiments {' '.join(sys.argv[1:])}"


def render_scaling(results: dict) -> list[str]:
    """The summary of a ``scaling`` results dict: the corpus and its n-gram levels, per family and size the chosen
    learning rate, the validation loss (mean and sd over seeds) and the n-gram level it reaches, then each family's
    fitted exponent over non-embedding parameters, with and without the irreducible term (chapter 10)."""
    info, best = results["corpus"], results["best"]
    levels = {int(k): v for k, v in results["ngram"]["levels"].items()}
    lines = [f"corpus {info['name']} ({info['sha256'][:12]}), n-gram levels: "
             + ", ".join(f"{n}: {v:.3f}" for n, v in sorted(levels.items())),
             f"{'family':12s} {'width':>5s} {'N_nonemb':>9s} {'lr':>7s} {'val loss':>9s} {'sd':>6s}  level"]
    for f in FAMILIES:
        for b in best[f]:
            lines.append(f"{f:12s} {b['width']:5d} {b['params_nonemb']:9d} {b['lr']:7.4f} {b['val_loss']:9.4f} "
                         f"{b['val_sd']:6.4f}  {b['ngram_level']}{'' if b['bracketed'] else '  (lr not bracketed)'}")
    for f, fs in results["fits"].items():
        g = fs["non_embedding"]
        lines.append(f"{f:12s} alpha {g['alpha']:.3f} [{g['lo']}, {g['hi']}] c {g['c']:.3f}; "
                     f"plain alpha {g['plain']['alpha']:.3f} [{g['plain']['lo']}, {g['plain']['hi']}]")
    return lines


def default_runs_dir(scale: str):
    """Where the recorded scales keep each finished run: ``results/scaling-<scale>/runs`` at 'cpu' and 'full' (the
    folder chapter 10's command fills and a rerun resumes from), None at the test and page scales (chapter 10)."""
    if scale not in SETTINGS:
        raise ValueError(f"scale must be one of {tuple(SETTINGS)}, got {scale!r}")
    if scale not in ("cpu", "full"):
        return None
    from . import results_dir

    return results_dir() / f"scaling-{scale}" / "runs"


@register("scaling", "chapter 10: LSTM and Transformer families, lr bracketed per size, n-gram levels, L(N) fits, "
                     "IsoFLOP, loss by position; --scale cpu is the recorded, resumable study", chapter=10,
          scales=("tiny", "quick", "cpu", "full"), render=render_scaling)
def scaling(scale: str = "quick", seeds=(0,), device=None, progress: bool = False, runs_dir=None) -> dict:
    """The whole scaling experiment of chapter 10 at ``scale`` ('tiny' for tests, 'quick', 'cpu', 'full').

    ``runs_dir`` keeps each finished run (default ``results/scaling-cpu/runs`` at the cpu scale, nothing
    otherwise); a rerun loads what is there and runs only the rest.
    """
    if scale not in SETTINGS:
        raise ValueError(f"scale must be one of {tuple(SETTINGS)}, got {scale!r}")
    s = SETTINGS[scale]
    seeds = list(seeds)
    corpus = load_corpus(s["corpus"])
    parts, V, info = splits(corpus), corpus.vocab_size, corpus_info(corpus)
    if runs_dir is None:
        runs_dir = default_runs_dir(scale)
    runs = Runs(runs_dir, settings_hash({k: s[k] for k in HASHED}, info["sha256"]))
    show = Progress(progress)
    plan_iso = isoflop_plan(s, V)
    base = baselines(s, parts, V, runs)
    if runs.dir is not None:  # measured once, on rank 0: the configurations' order must be the same on every rank
        est = from_rank0(lambda: estimate(s, V, seeds, runs, plan_iso))
        if rank() == 0:
            print("estimated cost of the sweep (one timed step per size):\n" + "\n".join(est["lines"]), file=sys.stderr,
                  flush=True)
        cost = lambda c: est["per_step"].get(f"{c['family']}-{c['width']}", 0.1) * (c["steps"] + est["eval_steps"])
    else:
        est, cost = None, (lambda c: c["steps"] * 1e-3)
    common = dict(corpus=corpus, batch=s["batch"], context=s["context"], layers=s["layers"], windows=s["eval_windows"],
                  tune_windows=s["tune_windows"], curve_every=s["curve_every"], curve_windows=s["curve_windows"],
                  device=device, progress=show.show, **{k: s[k] for k in _RECIPE})  # rank 0: a bar per run too
    state_dir = None if runs.dir is None else runs.dir / "state"

    def config(phase, f, w, lr, seed, steps=s["steps"]):
        c = {"phase": phase, "family": f, "width": w, "lr": lr, "seed": seed, "steps": steps}
        if state_dir is not None and phase == "lr" and w == s["pair"][f]:
            c["save_to"] = str(state_dir / f"{run_key(phase, f, w, lr, seed, steps)}.pt")
        return c

    def settle(lrs, losses, where, attempt):
        """``choose_lr`` on one grid, and the grid widened where it does not bracket the best rate (None if it does, or
        if ``bracket`` is off); past ``max_widen`` widenings, a grid that still does not bracket is an error."""
        c = choose_lr(lrs, losses, where=where, require_bracket=False, flat=s.get("flat", 0.0))
        if not (c["widen"] and s["bracket"]):
            return c, None
        if attempt < s["max_widen"]:
            return c, widen(lrs, c["widen"])
        choose_lr(lrs, losses, where=where + f" after widening it {s['max_widen']} times", require_bracket=True,
                  flat=s.get("flat", 0.0))

    # 1. the learning-rate grid on the first seed, widened at an edge where it does not bracket the best rate (the best
    #    at that edge, or every rate on that side within `flat` nats of it), up to max_widen times; then it must bracket
    grid = {(f, w): list(s["lrs"][f]) for f in FAMILIES for w in s["widths"][f]}
    for attempt in range(s["max_widen"] + 1):
        configs = [config("lr", f, w, lr, seeds[0]) for (f, w), lrs in grid.items() for lr in lrs]
        configs.sort(key=cost, reverse=True)  # the largest first, alternating between the processes
        done = {(r["family"], r["width"], r["lr"]): r for r in run_many(configs, runs, common, show, cost,
                                                                        f"lr grid, pass {attempt + 1}")}
        choice, widened = {}, False
        for (f, w), lrs in grid.items():
            losses = [done[f, w, lr]["tune_loss"] for lr in lrs]
            where = f" of the {f} of width {w}"
            c, wider = settle(lrs, losses, where, attempt)
            if wider:
                grid[f, w], widened = wider, True
            choice[f, w] = {**c, "grid": lrs, "tune_losses": losses}
        if not widened:
            break
    # 2. the other seeds at the chosen rate
    configs = [config("seed", f, w, choice[f, w]["lr"], seed) for (f, w) in grid for seed in seeds[1:]]
    configs.sort(key=cost, reverse=True)
    more = run_many(configs, runs, common, show, cost, "other seeds")
    by_size = {(f, w): [done[f, w, choice[f, w]["lr"]]] for (f, w) in grid}
    for r in more:
        by_size[r["family"], r["width"]].append(r)
    # 3. IsoFLOP: each budget's widths. On the first seed a learning-rate grid centred on the rate chosen for the
    #    nearest size of the main grid (one step of that family's grid either side), widened at an edge as the main
    #    grid is; then the other seeds at each width's best rate.
    def lr_near(f, w):
        n = count_parameters(make_model(f, w, V, s["context"], s["layers"]))["non_embedding"]
        near = min(s["widths"][f], key=lambda v: abs(math.log(
            count_parameters(make_model(f, v, V, s["context"], s["layers"]))["non_embedding"] / n)))
        return choice[f, near]["lr"]

    def iso_config(p, lr, seed):
        return {**config("iso", p["family"], p["width"], lr, seed, p["steps"]), "budget": p["budget"],
                "n_opt_predicted": p["n_opt_predicted"]}

    iso_grid = {}
    for i, p in enumerate(plan_iso):
        lr, ratio = lr_near(p["family"], p["width"]), s["lrs"][p["family"]][1] / s["lrs"][p["family"]][0]
        iso_grid[i] = [lr / ratio, lr, lr * ratio]
    for attempt in range(s["max_widen"] + 1):
        configs = [iso_config(plan_iso[i], lr, seeds[0]) for i, lrs in iso_grid.items() for lr in lrs]
        iso_done = {(r["width"], r["steps"], r["lr"]): r for r in run_many(
            sorted(configs, key=cost, reverse=True), runs, common, show, cost, f"IsoFLOP lr grid, pass {attempt + 1}")}
        iso_choice, widened = {}, False
        for i, lrs in iso_grid.items():
            p = plan_iso[i]
            losses = [iso_done[p["width"], p["steps"], lr]["tune_loss"] for lr in lrs]
            where = f" of the IsoFLOP {p['family']} of width {p['width']} at {p['budget']:.0e} FLOPs"
            c, wider = settle(lrs, losses, where, attempt)
            if wider:
                iso_grid[i], widened = wider, True
            iso_choice[i] = {**c, "grid": lrs, "tune_losses": losses}
        if not widened:
            break
    iso_configs = [iso_config(p, iso_choice[i]["lr"], seeds[0]) for i, p in enumerate(plan_iso)]
    more = run_many(sorted((iso_config(p, iso_choice[i]["lr"], sd) for i, p in enumerate(plan_iso) for sd in seeds[1:]),
                           key=cost, reverse=True), runs, common, show, cost, "IsoFLOP, other seeds")
    iso_by = {(c["family"], c["width"], c["steps"]): [iso_done[c["width"], c["steps"], c["lr"]]] for c in iso_configs}
    for r in more:
        iso_by[r["family"], r["width"], r["steps"]].append(r)
    for i, c in enumerate(iso_configs):
        c.update(lr_grid=iso_choice[i]["grid"], tune_losses=iso_choice[i]["tune_losses"],
                 bracketed=iso_choice[i]["bracketed"])
    return summarise(s, seeds, info, base, grid, choice, by_size, iso_configs, iso_by, runs, est)


def isoflop_optima(iso: list[dict], families, budgets) -> list[dict]:
    """Each IsoFLOP profile's valley (chapter 10): per family and budget, the width of lowest mean loss, whether it
    lies strictly inside the profile (``interior``: neither the smallest nor the largest width, so the grid
    brackets it), the least-squares parabola's minimum, and each seed's best size. ``iso``: the profile points
    (``family``, ``budget``, ``width``, ``params_nonemb``, ``val_loss``, ``val_losses`` per seed, ``seeds``,
    ``n_opt_predicted``)."""
    optima = []
    for f in families:
        for C in budgets:
            pts = sorted((r for r in iso if r["family"] == f and r["budget"] == C), key=lambda r: r["params_nonemb"])
            if not pts:
                continue
            i = min(range(len(pts)), key=lambda k: pts[k]["val_loss"])
            per_seed = [min(pts, key=lambda p, k=k: p["val_losses"][k])["params_nonemb"] for k in range(len(pts[0]["seeds"]))]
            optima.append({"family": f, "budget": C, "best_width": pts[i]["width"], "best_N": pts[i]["params_nonemb"],
                           "interior": 0 < i < len(pts) - 1, "parabola_N": parabola_minimum(
                               [p["params_nonemb"] for p in pts], [p["val_loss"] for p in pts]),
                           "best_N_by_seed": per_seed, "n_opt_predicted": pts[0]["n_opt_predicted"]})
    return optima


def summarise(s, seeds, info, base, grid, choice, by_size, iso_configs, iso_by, runs, est) -> dict:
    """Everything chapter 10 reads, from the finished runs (chapter 10)."""
    levels = {int(k): v for k, v in base["levels"].items()}
    strip = lambda r: {k: v for k, v in r.items() if k not in ("window_losses", "window_buckets")}
    best, window_sets = {f: [] for f in FAMILIES}, {}
    for (f, w), rs in by_size.items():
        vals = [r["val_loss"] for r in rs]
        windows = [_mean(col) for col in zip(*(r["window_losses"] for r in rs))]
        window_sets[f, w] = windows
        by_pos = [_mean(col) for col in zip(*(r["by_position"] for r in rs))]
        best[f].append({"family": f, "width": w, "params": rs[0]["params"], "params_nonemb": rs[0]["params_nonemb"],
                        "tokens": rs[0]["tokens"], "passes": rs[0]["passes"], "flops": rs[0]["flops"],
                        "lr": choice[f, w]["lr"], "lr_grid": choice[f, w]["grid"],
                        "tune_losses": choice[f, w]["tune_losses"], "bracketed": choice[f, w]["bracketed"],
                        "seeds": [r["seed"] for r in rs], "val_losses": vals, "val_loss": _mean(vals), "val_sd": _sd(vals),
                        "ngram_level": ngram_level(_mean(vals), levels), "by_position": [round(v, 5) for v in by_pos],
                        "seconds": [r["seconds"] for r in rs], "curves": [r["curve"] for r in rs]})
    fits = {}
    for f in FAMILIES:
        fits[f] = {}
        for count, key in (("non_embedding", "params_nonemb"), ("total", "params"), ("compute", "flops")):
            N = [b[key] for b in best[f]]
            sets = [window_sets[f, b["width"]] for b in best[f]]
            fit = fit_scaling_law(N, [_mean(w) for w in sets])
            plain = fit_scaling_law(N, [_mean(w) for w in sets], n_grid=1)
            fits[f][count] = {**fit, **{k: v for k, v in bootstrap_exponent(N, sets, s["n_boot"]).items() if k != "alpha"},
                              "plain": {**plain, **{k: v for k, v in bootstrap_exponent(N, sets, s["n_boot"],
                                                                                          irreducible=False).items()
                                                    if k != "alpha"}}}
    # both families in one paired bootstrap: the difference of exponents and where the fitted laws cross
    sets = {f"{f}-{b['width']}": window_sets[f, b["width"]] for f in FAMILIES for b in best[f]}
    Ns = {f: [b["params_nonemb"] for b in best[f]] for f in FAMILIES}

    def fitted(m, f, grid_n=1):
        return fit_scaling_law(Ns[f], [m[f"{f}-{b['width']}"] for b in best[f]], n_grid=grid_n)

    d_alpha = paired_bootstrap(lambda m: fitted(m, "transformer")["alpha"] - fitted(m, "lstm")["alpha"], sets,
                               n_boot=s["n_boot"])
    cross = crossing(fits["transformer"]["non_embedding"]["plain"], fits["lstm"]["non_embedding"]["plain"])
    lo_n, hi_n = min(min(v) for v in Ns.values()), max(max(v) for v in Ns.values())
    # matched sizes: the i-th size of each family (close in N by design), the gap with a paired interval
    gaps = []
    for bl, bt in zip(best["lstm"], best["transformer"]):
        kl, kt = f"lstm-{bl['width']}", f"transformer-{bt['width']}"
        g = paired_bootstrap(lambda m: m[kt] - m[kl], {kl: sets[kl], kt: sets[kt]}, n_boot=s["n_boot"])
        gaps.append({"lstm_width": bl["width"], "transformer_width": bt["width"], "lstm_N": bl["params_nonemb"],
                     "transformer_N": bt["params_nonemb"], "transformer_minus_lstm": g})
    # the matched pair: loss by position, the unigram's subtracted (a context-free reference), with paired intervals
    buckets = position_buckets(s["context"])
    pair = {"buckets": buckets, "reference": "unigram", "families": {}}
    ref = torch.tensor(base["window_buckets"]["1"])  # (n, buckets)
    late = {}
    for f in FAMILIES:
        w = s["pair"][f]
        if (f, w) not in by_size:
            continue
        rs = by_size[f, w]
        wb = torch.tensor([r["window_buckets"] for r in rs]).mean(0)  # (n, buckets), seeds averaged
        rel = wb - ref
        late[f] = (rel[:, 1] - rel[:, -1]).tolist()  # gain from positions 8-31 to the last bucket, per window
        pair["families"][f] = {"width": w, "params_nonemb": rs[0]["params_nonemb"], "lr": choice[f, w]["lr"],
                               "buckets": wb.mean(0).tolist(), "relative": rel.mean(0).tolist(),
                               "late_gain": paired_bootstrap(lambda m, f=f: m[f], {f: late[f]}, n_boot=s["n_boot"])}
    if len(late) == 2:
        pair["late_gain_difference"] = paired_bootstrap(lambda m: m["transformer"] - m["lstm"], late, n_boot=s["n_boot"])
    # IsoFLOP profiles (the mean over seeds at each width's chosen rate) and their valleys
    iso = []
    for c in iso_configs:
        rs = iso_by[c["family"], c["width"], c["steps"]]
        vals = [r["val_loss"] for r in rs]
        iso.append({**{k: c[k] for k in ("family", "budget", "width", "steps", "lr", "lr_grid", "tune_losses",
                                         "bracketed", "n_opt_predicted")},
                    "params_nonemb": rs[0]["params_nonemb"], "tokens": rs[0]["tokens"], "seeds": [r["seed"] for r in rs],
                    "val_losses": vals, "val_loss": _mean(vals), "val_sd": _sd(vals),
                    "ngram_level": ngram_level(_mean(vals), levels)})
    optima = isoflop_optima(iso, s["iso_families"], s["iso_budgets"])
    # checkpoints of the matched pair (seed 0, the chosen lr), with their hashes
    checkpoints = []
    if runs.dir is not None:
        out_dir = runs.dir.parent / "checkpoints"
        for f in FAMILIES:
            w = s["pair"][f]
            src = runs.dir / "state" / f"{run_key('lr', f, w, choice[f, w]['lr'], seeds[0], s['steps'])}.pt"
            dst = out_dir / f"{f}-d{w}.pt"
            if rank() != 0 or not (src.exists() or dst.exists()):
                continue
            if src.exists():  # a fresh clone has the checkpoint (committed) but not the runs' state dicts
                out_dir.mkdir(parents=True, exist_ok=True)
                dst.write_bytes(src.read_bytes())
            checkpoints.append({"family": f, "width": w, "layers": s["layers"], "context": s["context"],
                                "lr": choice[f, w]["lr"], "seed": seeds[0], "file": str(dst.relative_to(runs.dir.parent)),
                                "bytes": dst.stat().st_size, "sha256": hashlib.sha256(dst.read_bytes()).hexdigest(),
                                "command": _command()})
    return {"settings": s, "corpus": info, "ngram": base, "lr_choice":
            [{"family": f, "width": w, **c} for (f, w), c in choice.items()],
            "runs": [strip(r) for rs in by_size.values() for r in rs],
            "best": best, "fits": fits, "alpha_difference": d_alpha,
            "crossing_N": cross, "crossing_in_range": cross is not None and lo_n <= cross <= hi_n,
            "gaps": gaps, "pair": pair, "isoflop": iso, "isoflop_optima": optima, "checkpoints": checkpoints,
            "buckets": buckets, "estimate": est}


# ---------------------------------------------------------------- reading a recorded study (chapter 10)
def load_checkpoint(entry: dict, root: str | Path, vocab: int) -> torch.nn.Module:
    """The trained model of one ``checkpoints`` entry of a results file, its SHA-256 verified (chapter 10).

    ``root`` is the directory the entry's ``file`` is relative to (the study's: ``results/scaling-cpu``). A file whose
    hash differs from the recorded one raises ValueError: it is not the model the results describe.
    """
    path = Path(root) / entry["file"]
    if not path.exists():
        raise FileNotFoundError(f"checkpoint {str(path)!r} is missing; rerun: {entry.get('command', 'the sweep')}")
    digest = hashlib.sha256(path.read_bytes()).hexdigest()
    if digest != entry["sha256"]:
        raise ValueError(f"checkpoint {path} has sha256 {digest}, the results file recorded {entry['sha256']}")
    model = make_model(entry["family"], entry["width"], vocab, entry["context"], entry["layers"])
    model.load_state_dict(torch.load(path, map_location="cpu"))
    return model.eval()


@torch.no_grad()
def repeat_probe(model: torch.nn.Module, ids: torch.Tensor, n: int, *, span: int = 100, context: int = 256,
                 seed: int = 0) -> dict:
    """Loss on a span of text the first time and the second time it appears in one window (chapter 10).

    Each of ``n`` windows (drawn across ``ids`` by ``spread_windows``, then seeded by ``seed``) holds
    ``context + 1 - 2 span`` characters of ordinary text, a span of ``span`` characters, and the same
    span again. A model that can look the continuation up in its context (chapter 11's induction
    heads) predicts the repeat far better than the first occurrence. Returns per-window mean losses
    (nats) ``{"first": [...], "repeat": [...], "fresh": [...]}`` over each occurrence, its first character left out
    (nothing before it announces the repeat). ``fresh`` is the control for position: the same window's own text
    continued instead of repeated (prefix, span, the ``span`` characters that follow it in ``ids``), scored at the
    repeat's positions, so ``fresh - repeat`` compares the repeat with unseen text at the same positions.
    """
    validate.positive_int("span", span)
    prefix = context + 1 - 2 * span
    if prefix < 1:
        raise ValueError(f"two spans of {span} do not fit a context of {context}: need span <= {context // 2}")
    text = spread_windows(ids, n, context, seed=EVAL_SEED + seed)  # (n, context + 1): prefix, span, what follows
    base = text[:, : prefix + span]  # (n, prefix + span)
    w = torch.cat([base, base[:, prefix:]], 1)  # (n, context + 1): prefix, span, span
    losses = position_losses(model, w)  # (n, context): losses[:, t] predicts w[:, t + 1]
    first = losses[:, prefix: prefix + span - 1]  # w[prefix + 1 .. prefix + span - 1]
    repeat = losses[:, prefix + span: prefix + 2 * span - 1]  # w[prefix + span + 1 .. prefix + 2 span - 1]
    fresh = position_losses(model, text)[:, prefix + span: prefix + 2 * span - 1]  # the same positions, unseen text
    return {"first": first.mean(1).tolist(), "repeat": repeat.mean(1).tolist(), "fresh": fresh.mean(1).tolist()}


def _interval(b: dict, digits: int = 3) -> str:
    return f"{b['value']:.{digits}f} [{b['lo']:.{digits}f}, {b['hi']:.{digits}f}]"


def verdict(b: dict, above: str, below: str, neither: str) -> tuple[str, bool]:
    """Chapter 10: the word an interval licenses, ``above`` when it lies above 0, ``below`` when below, else ``neither``;
    and whether that word holds (it always does, by construction: the assert beside it pins it)."""
    if b["lo"] is not None and b["lo"] > 0:
        return above, b["lo"] > 0
    if b["hi"] is not None and b["hi"] < 0:
        return below, b["hi"] < 0
    return neither, b["lo"] is None or b["lo"] <= 0 <= b["hi"]


def _crossing_finding(gaps: list[dict], cross: float | None, inside: bool) -> dict:
    """``findings``' crossing item (chapter 10): at how many matched pairs the Transformer is lower (the whole paired
    interval of its loss minus the LSTM's below zero) or higher (above zero), and where the fitted laws cross."""
    lower = [g for g in gaps if g["transformer_minus_lstm"]["hi"] < 0]
    higher = [g for g in gaps if g["transformer_minus_lstm"]["lo"] > 0]
    where = ("the fitted laws do not cross between 1e3 and 1e10 parameters" if cross is None else
             f"the fitted laws cross at N ≈ {cross:.3g}, {'inside' if inside else 'outside'} the measured range")
    return {"name": "crossing", "holds": len(lower) + len(higher) <= len(gaps),
            "text": f"At matched sizes the Transformer is lower at {len(lower)} and higher at {len(higher)} of "
                    f"{len(gaps)} pairs (intervals excluding zero); {where}."}


def findings(res: dict) -> list[dict]:
    """What a recorded scaling study shows, as sentences with their numbers and the rule each must meet (chapter 10).

    Each item is ``{"name", "text", "holds"}``: the text states the result whichever way it came out, and
    ``holds`` is the check that pins it (for the design: at least 5 sizes, 3 seeds, fewer than 4 passes, every
    learning rate bracketed). Chapter 10 prints the texts and asserts every ``holds``.
    """
    from ..measure import ngram_level_phrase, ngram_levels_text

    levels = {int(k): v for k, v in res["ngram"]["levels"].items()}
    out = []
    best = res["best"]
    sizes = {f: len(best[f]) for f in FAMILIES}
    seeds = min(len(b["seeds"]) for f in FAMILIES for b in best[f])
    passes = max(b["passes"] for f in FAMILIES for b in best[f])
    Ns = [b["params_nonemb"] for f in FAMILIES for b in best[f]]
    out.append({"name": "design", "holds": min(sizes.values()) >= 5 and seeds >= 3 and passes < 4,
                "text": f"{min(sizes.values())} sizes per family, from {min(Ns):,} to {max(Ns):,} non-embedding "
                        f"parameters, {seeds} seeds each, {best['lstm'][0]['tokens']:,} training characters per run "
                        f"({passes:.2f} passes over the training split at most)."})
    grids = [b for f in FAMILIES for b in best[f]]
    out.append({"name": "lr bracketed", "holds": all(b["bracketed"] and len(b["lr_grid"]) >= 4 for b in grids),
                "text": f"Every size's learning rate is inside its grid of {min(len(b['lr_grid']) for b in grids)} or more "
                        f"values (chosen on the tune split): "
                        + "; ".join(f"{f} " + ", ".join(f"{b['lr']:g}" for b in best[f]) for f in FAMILIES) + "."})
    parts, ok = [], True
    for f in FAMILIES:
        words = []
        for b in best[f]:
            lv = ngram_level(b["val_loss"], levels)
            ok &= lv == b["ngram_level"]
            words.append(f"{b['val_loss']:.3f} ± {b['val_sd']:.3f} ({ngram_level_phrase(lv, max(levels))})")
        parts.append(f"{f}: " + ", ".join(words))
    out.append({"name": "n-gram levels", "holds": ok,
                "text": "Validation loss by size (mean ± sd over seeds) and the count model each reaches "
                        f"({ngram_levels_text(levels)}): " + "; ".join(parts) + "."})
    fl, ft = res["fits"]["lstm"]["non_embedding"]["plain"], res["fits"]["transformer"]["non_embedding"]["plain"]
    d = res["alpha_difference"]
    word, holds = verdict(d, "larger than", "smaller than", "not distinguishable from")
    out.append({"name": "exponents", "holds": holds and fl["lo"] is not None,
                "text": f"Power laws L = a N^(-alpha) fitted to the seed-averaged losses: LSTM alpha {fl['alpha']:.3f} "
                        f"[{fl['lo']:.3f}, {fl['hi']:.3f}], Transformer {ft['alpha']:.3f} [{ft['lo']:.3f}, "
                        f"{ft['hi']:.3f}]; the Transformer's exponent is {word} the LSTM's (difference "
                        f"{_interval(d)}, paired bootstrap over the validation windows)."})
    out.append(_crossing_finding(res["gaps"], res["crossing_N"], res["crossing_in_range"]))
    pair = res["pair"]
    if "late_gain_difference" in pair:
        g = {f: pair["families"][f]["late_gain"] for f in FAMILIES}
        word, holds = verdict(pair["late_gain_difference"], "more than", "less than", "no more and no less than")
        a, b = pair["buckets"][1], pair["buckets"][-1]
        out.append({"name": "late context", "holds": holds,
                    "text": f"From positions {a[0]}–{a[1] - 1} to {b[0]}–{b[1] - 1}, beyond the unigram reference, "
                            f"the Transformer (d={pair['families']['transformer']['width']}) gains "
                            f"{_interval(g['transformer'])} nats and the LSTM (d={pair['families']['lstm']['width']}) "
                            f"{_interval(g['lstm'])}: the Transformer uses late context {word} the LSTM."})
    valleys = [o for o in res["isoflop_optima"] if o["interior"]]
    out.append({"name": "IsoFLOP", "holds": len(res["isoflop"]) > 0,
                "text": f"IsoFLOP: the lowest loss is inside the width grid (a valley) in {len(valleys)} of "
                        f"{len(res['isoflop_optima'])} budgets; optimal N by budget: "
                        + ", ".join(f"{o['budget']:.0e} FLOPs → {o['best_N']:,} (predicted {o['n_opt_predicted']:,.0f})"
                                    for o in res["isoflop_optima"]) + "."})
    return out


def exponent_cells(res: dict, digits: int = 3) -> dict:
    """Chapter 15's scalability row for the two families of a recorded study (chapter 10's fits).

    ``res`` is the ``results`` of a ``scaling`` record. For each family of ``FAMILIES`` the fitted exponent
    alpha of L = a N^(-alpha) over non-embedding parameters (the "plain" fit) with its bootstrap interval;
    and the verdict on the difference alpha_Transformer - alpha_LSTM (``res["alpha_difference"]``, a paired
    bootstrap): "larger" when its interval lies above 0, "smaller" below, "not distinguishable" otherwise.

    Returns ``{"lstm": {"alpha", "lo", "hi", "cell"}, "transformer": {...}, "difference": {"value", "lo",
    "hi"}, "verdict": str, "relation": str, "sentence": str}`` (``relation``: "larger than the LSTM's", ...), each ``cell`` a short text for a table ("α = 0.123 [0.081, 0.150]").
    Raises ValueError when ``res`` lacks the fits (not a scaling study's results).
    """
    if not isinstance(res, dict):
        raise TypeError(f"res must be the 'results' dict of a scaling record, got {type(res).__name__}")
    missing = [k for k in ("fits", "alpha_difference") if k not in res]
    if missing or any(f not in res["fits"] for f in FAMILIES):
        raise ValueError(f"res is not a scaling study's results: it lacks {missing or 'a family of ' + str(FAMILIES)} "
                         f"(expected keys 'fits' with {FAMILIES} and 'alpha_difference')")
    num = lambda v: "?" if v is None else f"{v:.{digits}f}"
    out = {}
    for f in FAMILIES:
        p = res["fits"][f]["non_embedding"]["plain"]
        interval = "no interval" if p["lo"] is None or p["hi"] is None else f"[{num(p['lo'])}, {num(p['hi'])}]"
        out[f] = {"alpha": p["alpha"], "lo": p["lo"], "hi": p["hi"], "cell": f"α = {num(p['alpha'])} {interval}"}
    d = res["alpha_difference"]
    word, _ = verdict(d, "larger", "smaller", "not distinguishable")
    out["difference"] = {k: d[k] for k in ("value", "lo", "hi")}
    out["verdict"] = word
    out["relation"] = f"{word} {'from' if word == 'not distinguishable' else 'than'} the LSTM's"
    out["sentence"] = (f"the Transformer's exponent is {out['relation']} "
                       f"(difference {num(d['value'])} [{num(d['lo'])}, {num(d['hi'])}])")
    return out
