"""Induction heads trained from scratch: the phase change, the circuit's causal tests, depth and an LSTM control (chapter 11).

Glossary, code name -> book notation::

    prefix l.h     prefix-matching score of head h in layer l: attention from the second occurrence of a
                   span to the token after the first (the induction pattern)
    previous l.h   previous-token score: attention from t to t - 1
    icl            in-context-learning score: loss on a span's second occurrence minus loss on its first
    copy loss      mean cross-entropy on the second copy's copyable targets (per token, smooth)
    exact          share of sequences whose whole second copy is predicted right (all or nothing)
    drop_step      the step at which the evaluation loss falls fastest (the phase change)
    form_step      the first step at which the best last-layer head's prefix-matching score passes 0.3
    kept           an ablated model's ICL score over the intact model's: the share of the in-context gain kept

``attention_model`` and ``train_on_spans`` are what chapter 11 trains with, and ``circuit_tests``
is its causal analysis (single-head zero and mean ablations, and the K-, Q- and V-composition
paths of each layer-1 head into the last layer). ``induction`` (registered as
``python -m seqlab.experiments induction``) is the recorded sweep behind the chapter:

- attention-only models of depth 1, 2 and 3 (a cheap scale axis), every seed, with their
  loss, ICL, copy-loss and exact-match curves and, for depth >= 2, ``circuit_tests``;
- LSTM language models of several state sizes, each with its own learning-rate grid on the
  first seed (chosen on a selection batch that is not the reported one, and asserted to
  bracket the optimum), then the other seeds at the chosen rate.

The sweep is resumable: every finished run is saved at once to ``results/induction-SCALE-runs.json``
(except at the tiny scale, a smoke test) and a rerun of the same command skips it.
"""
from __future__ import annotations

import functools
import json
import os
import time
from pathlib import Path

import torch

from .. import _validate as validate
from .. import interpret
from ..config import seed_everything
from ..data.tasks import RepeatedSpans
from ..measure import count_parameters
from ..models import RecurrentLM
from ..models.transformer import GPT, GPTConfig
from ..train import train
from . import register, results_dir
from .distributed import map_runs, rank
from .runlog import choose_rate

THRESHOLD = 0.3


def attention_model(layers: int, d_model: int, *, vocab: int, n_heads: int, T: int, device=None) -> GPT:
    """An attention-only GPT (no MLPs) of ``layers`` layers with sinusoidal positions (chapter 11)."""
    return interpret.attention_only(GPTConfig(vocab_size=vocab, d_model=d_model, n_heads=n_heads, n_layers=layers,
                                              max_len=T, positions="sinusoidal")).to(device)


def lstm_model(hidden: int, *, vocab: int, d_embed: int, device=None) -> RecurrentLM:
    """The LSTM control of chapter 11: an LSTM language model (PyTorch's fused kernel) with state size ``hidden``."""
    return RecurrentLM(vocab, d_embed, hidden, cell="lstm", form="fused").to(device)


def matched_hidden(n_params: int, *, vocab: int, d_embed: int) -> int:
    """The LSTM state size whose parameter count is closest to ``n_params`` (chapter 11; the smaller size on a tie).

    The count grows with the size, so the search doubles the size until the count reaches ``n_params`` and then
    bisects: about 2 log₂ h models are built, whatever the size."""
    validate.positive_int("n_params", n_params)
    count = functools.cache(lambda h: count_parameters(lstm_model(h, vocab=vocab, d_embed=d_embed)))  # each size built once
    hi = 1
    while count(hi) < n_params:
        hi *= 2
    lo = max(1, hi // 2)
    while lo < hi:  # the smallest size whose count reaches n_params
        mid = (lo + hi) // 2
        lo, hi = (mid + 1, hi) if count(mid) < n_params else (lo, mid)
    return min((h for h in (lo - 1, lo) if h >= 1), key=lambda h: abs(count(h) - n_params))


def train_on_spans(model, task: RepeatedSpans, seed: int, *, batch: int, steps: int, lr: float, eval_fn,
                   eval_every: int, progress: bool | None = None):
    """Train ``model`` on repeated spans from a generator seeded with ``seed``, evaluating every ``eval_every`` steps (chapter 11)."""
    gen = seed_everything(seed)
    return train(model, lambda: task.sample(batch, gen), steps=steps, lr=lr, eval_fn=eval_fn, eval_every=eval_every,
                 progress=progress, desc=type(model).__name__)


def sequence_scores(model, x, y, positions) -> dict[str, float]:
    """Loss, ICL score, copy loss and exact match of any language model on a batch of repeated spans (chapter 11)."""
    loss = interpret.token_losses(model, x, y)  # (B, T)
    early, late = positions.target_masks(x.shape[1])
    return {"loss": loss.mean().item(), "icl": interpret.icl_score(loss, early, late),
            "copy loss": loss[late.to(loss.device)].mean().item(), "exact": interpret.exact_match(model, x, y, late)}


@torch.no_grad()
def circuit_tests(model: GPT, x: torch.Tensor, y: torch.Tensor, positions) -> dict:
    """Chapter 11's causal tests of a trained attention-only model on one evaluation batch.

    Returns the intact model's ``icl``, every head's ``previous`` and ``prefix`` scores (keys
    ``"l.h"``, layers counted from 1), and the share of the in-context gain kept (ablated ICL over
    intact ICL) when

    - ``zero`` / ``mean``: one head's output is replaced by zeros / by its mean over the batch
      at each position (``interpret.ablate_head``);
    - ``path k`` / ``path q`` / ``path v``: one layer-1 head's output is mean-ablated only on its
      direct path into the last layer's keys / queries / values (``interpret.ablate_path``),
      the test of K-composition.
    """
    early, late = positions.target_masks(x.shape[1])
    icl = lambda: interpret.icl_score(interpret.token_losses(model, x, y), early, late)
    base = icl()
    layers, H = len(model.blocks), model.config.n_heads
    out = {"icl": base, "previous": {}, "prefix": {}, "zero": {}, "mean": {}, "path k": {}, "path q": {}, "path v": {}}
    for l, A in enumerate(interpret.attention_patterns(model, x)):
        pt, pm = interpret.previous_token_score(A), interpret.prefix_matching_score(A, positions)
        means = interpret.head_outputs(model, x, l).mean(0)  # (T, H, d_head)
        for h in range(H):
            name = f"{l + 1}.{h}"
            out["previous"][name], out["prefix"][name] = pt[h].item(), pm[h].item()
            with interpret.ablate_head(model, l, h):
                out["zero"][name] = icl() / base
            with interpret.ablate_head(model, l, h, replacement=means[:, h]):
                out["mean"][name] = icl() / base
            if l == 0 and layers >= 2:
                for p in ("k", "q", "v"):
                    with interpret.ablate_path(model, (0, h), layers - 1, p, replacement=means[:, h]):
                        out[f"path {p}"][name] = icl() / base
    return out


SETTINGS = {
    "tiny": dict(T=16, vocab=8, span_min=3, span_max=6, gap_max=2, d_model=16, n_heads=2, batch=16, steps=20,
                 lr=1e-2, eval_every=4, eval_batch=16, depths=(1, 2), lstm_scale=(1, 2), lstm_lrs=(3e-3, 1e-2, 3e-2)),
    "quick": dict(T=32, vocab=16, span_min=6, span_max=14, gap_max=4, d_model=32, n_heads=4, batch=128, steps=1000,
                  lr=1e-2, eval_every=25, eval_batch=256, depths=(1, 2, 3), lstm_scale=(1, 2, 4),
                  lstm_lrs=(3e-3, 1e-2, 3e-2, 1e-1)),                    # chapter 11's models, 2.5x its steps
    "full": dict(T=32, vocab=16, span_min=6, span_max=14, gap_max=4, d_model=32, n_heads=4, batch=128, steps=3000,
                 lr=1e-2, eval_every=20, eval_batch=1024, depths=(1, 2, 3, 4), lstm_scale=(1, 2, 4, 8),
                 lstm_lrs=(1e-3, 3e-3, 1e-2, 3e-2, 1e-1)),
}
EVAL_SEED, SELECT_SEED = 10_000, 20_000  # the reported evaluation batch (the chapter's) and the one that picks rates


RUNS_DIR: Path | None = None  # where finished runs are kept; None: results/ (and nothing kept at the tiny scale)


class _Saved:
    """Finished runs of one scale, kept in a JSON file as they complete so that a rerun skips them."""

    def __init__(self, scale: str):
        keep = RUNS_DIR is not None or scale != "tiny"
        self.path = (Path(RUNS_DIR or results_dir()) / f"induction-{scale}-runs.json") if keep else None
        self.runs = {}
        if self.path is not None:
            for p in sorted(self.path.parent.glob(f"induction-{scale}-runs*.json")):
                self.runs.update(json.loads(p.read_text(encoding="utf-8")))

    def get(self, key):
        return self.runs.get(key)

    def put(self, key, value):
        self.runs[key] = value
        if self.path is None:
            return
        path = self.path if rank() == 0 else self.path.with_name(f"induction-{self.path.stem[10:]}-rank{rank()}.json")
        mine = {k: v for k, v in self.runs.items()}
        tmp = path.with_suffix(".tmp")
        tmp.write_text(json.dumps(mine) + "\n", encoding="utf-8")
        os.replace(tmp, path)


def span_run(kind: str, size: int, lr: float, seed: int, s: dict, task: RepeatedSpans, device=None,
             progress: bool = False) -> dict:
    """One run of chapter 11's sweep: an attention-only model of ``size`` layers or an LSTM of state ``size``, trained
    on ``task`` at rate ``lr``, with its curves, its loss on the selection batch and (attention) the head scores and
    ``circuit_tests`` (chapter 11)."""
    def batches(seed_):
        x, y, where = task.sample_with_positions(s["eval_batch"], torch.Generator().manual_seed(seed_))
        return x.to(device), y.to(device), where

    x_eval, y_eval, where = batches(EVAL_SEED)
    x_sel, y_sel, _ = batches(SELECT_SEED)
    seed_everything(seed)
    if kind == "attention":
        model = attention_model(size, s["d_model"], vocab=s["vocab"], n_heads=s["n_heads"], T=s["T"], device=device)
        fn = lambda m: interpret.head_scores(m, x_eval, y_eval, where)
    else:
        model = lstm_model(size, vocab=s["vocab"], d_embed=s["d_model"], device=device)
        fn = lambda m: sequence_scores(m, x_eval, y_eval, where)
    t0 = time.perf_counter()
    h = train_on_spans(model, task, seed, batch=s["batch"], steps=s["steps"], lr=lr, eval_fn=fn,
                       eval_every=s["eval_every"], progress=progress)
    ev = h.eval
    out = {"kind": kind, "size": size, "lr": lr, "seed": seed, "params": count_parameters(model),
           "seconds": round(time.perf_counter() - t0, 1), "eval_step": h.eval_step,
           **{k: ev[k] for k in ("loss", "icl", "copy loss", "exact")},
           "select_loss": interpret.token_losses(model, x_sel, y_sel).mean().item(),
           "drop_step": interpret.steepest_drop(h.eval_step, ev["loss"])}
    if kind == "attention":
        last, first = size, 1
        out["best_prefix"] = [max(ev[f"prefix {last}.{k}"][i] for k in range(s["n_heads"]))
                              for i in range(len(h.eval_step))]
        out["best_previous"] = [max(ev[f"previous {first}.{k}"][i] for k in range(s["n_heads"]))
                                for i in range(len(h.eval_step))]
        out["form_step"] = interpret.first_crossing(h.eval_step, out["best_prefix"], THRESHOLD)
        out["circuit"] = circuit_tests(model, x_eval, y_eval, where)
    return out


def render_induction(results: dict) -> list[str]:
    """The table of an ``induction`` results dict: every attention run and every LSTM run at its chosen learning
    rate, with final loss, ICL, exact match, drop step and the step the head forms; then the rates chosen
    (chapter 11)."""
    chosen = {int(h): lr for h, lr in results["lstm_chosen_lr"].items()}  # a results file keys them by strings
    lines = [f"{'model':>16s} {'params':>7s} {'lr':>6s} {'seed':>4s} {'final loss':>10s} {'final ICL':>9s} "
             f"{'exact':>6s} {'drop step':>9s} {'head forms':>10s}"]
    for r in results["runs"]:
        if r["kind"] == "lstm" and r["lr"] != chosen[r["size"]]:
            continue
        name = f"{r['size']}-layer attention" if r["kind"] == "attention" else f"LSTM {r['size']}"
        lines.append(f"{name:>16s} {r['params']:7d} {r['lr']:6g} {r['seed']:4d} {r['loss'][-1]:10.3f} "
                     f"{r['icl'][-1]:9.3f} {r['exact'][-1]:6.2f} {r['drop_step']:9d} {str(r.get('form_step', '-')):>10s}")
    lines.append("LSTM learning rates chosen on a separate batch: " + ", ".join(f"state {h}: {lr:g}" for h, lr in chosen.items()))
    return lines


@register("induction", "chapter 11: induction heads at depth 1-3 with ablations, and LSTM controls with their own "
          "learning rates and state sizes", chapter=11, render=render_induction)
def induction(scale: str = "quick", seeds=(0,), device=None, progress: bool = False) -> dict:
    """Chapter 11's recorded sweep at ``scale``: attention-only depths and LSTM controls, every seed (see the module)."""
    s = SETTINGS[scale]
    seeds = list(seeds)
    task = RepeatedSpans(length=s["T"], vocab=s["vocab"], span_min=s["span_min"], span_max=s["span_max"],
                         gap_max=s["gap_max"])
    saved = _Saved(scale)
    attn = lambda layers: attention_model(layers, s["d_model"], vocab=s["vocab"], n_heads=s["n_heads"], T=s["T"],
                                          device=device)
    n_two = count_parameters(attn(2))
    h_match = matched_hidden(n_two, vocab=s["vocab"], d_embed=s["d_model"])
    hiddens = [h_match * k for k in s["lstm_scale"]]

    def one(c):
        kind, size, lr, seed = c
        key = f"{kind} {size} lr={lr:g} seed={seed}"
        if (done := saved.get(key)) is not None:
            return done
        out = span_run(kind, size, lr, seed, s, task, device=device, progress=progress)
        saved.put(key, out)
        if rank() == 0 and saved.path is not None:
            print(f"{key}: {out['seconds']} s, final ICL {out['icl'][-1]:.3f}", flush=True)
        return out

    first = [("attention", L, s["lr"], sd) for L in s["depths"] for sd in seeds]
    first += [("lstm", hd, lr, seeds[0]) for hd in hiddens for lr in s["lstm_lrs"]]
    runs = map_runs(one, first, progress=progress, desc="attention depths and LSTM learning rates")
    chosen = {}
    for hd in hiddens:
        grid = [r for r in runs if r["kind"] == "lstm" and r["size"] == hd]
        best = min(grid, key=lambda r: r["select_loss"])
        chosen[hd] = best["lr"]
    if len(seeds) > 1:
        runs += map_runs(one, [("lstm", hd, chosen[hd], sd) for hd in hiddens for sd in seeds[1:]], progress=progress,
                         desc="LSTM seeds at the chosen rates")
    return {"settings": {k: (list(v) if isinstance(v, tuple) else v) for k, v in s.items()},
            "threshold": THRESHOLD, "params_two_layer": n_two, "lstm_hidden": hiddens, "lstm_chosen_lr": chosen,
            "runs": runs}


# ------------------------------------------------- the attention models' learning rate: is 1e-2 their best?
LR_SETTINGS = {scale: dict(s, depths=[1, 2], attn_lrs=[3e-3, 1e-2, 3e-2, 1e-1])  # around the sweep's 1e-2; 1e-1 brackets one layer's best
               for scale, s in SETTINGS.items()}
LR_GRID_KEYS = ("depths", "attn_lrs")


def best_attention_rates(runs: list[dict], lrs: list[float]) -> dict:
    """Per depth: the selection-batch loss at each rate (the mean over the seeds run), the rate with the lowest, and
    whether it is inside the grid (``runlog.choose_rate``; chapter 11)."""
    chosen = choose_rate(sorted(runs, key=lambda r: r["size"]), lambda r: r["size"], lambda r: r["select_loss"], lrs=lrs)
    return {depth: {"select_loss": c["mean"], "lr": c["lr"], "bracketed": c["bracketed"]} for depth, c in chosen.items()}


def render_induction_lr(results: dict) -> list[str]:
    """The table of an ``induction_lr`` results dict: per depth, the selection loss and the steepest-drop step at each
    rate, and the rate chosen (chapter 11)."""
    s = results["settings"]
    best = best_attention_rates(results["runs"], s["attn_lrs"])
    lines = ["per depth and rate: selection loss (mean over seeds); per seed, the step of the steepest loss drop and the step "
             f"the head forms ('-': not within {s['steps']} steps)"]
    for depth, b in best.items():
        lines.append(f"  {depth} layer{'s' if depth > 1 else ''}, best rate {b['lr']:g}{'' if b['bracketed'] else ' (edge)'}")
        for lr, loss in b["select_loss"]:
            rs = sorted((r for r in results["runs"] if r["size"] == depth and r["lr"] == lr), key=lambda r: r["seed"])
            lines.append(f"    {lr:<7g} {loss:.3f}   drop " + "/".join(str(r["drop_step"]) for r in rs) + "   head "
                         + "/".join("-" if r.get("form_step") is None else str(r["form_step"]) for r in rs))
    return lines


@register("induction_lr", "chapter 11: the 1- and 2-layer attention models at four learning rates on every seed given: "
          "is the sweep's rate their best?", chapter=11, render=render_induction_lr, settings=LR_SETTINGS)
def induction_lr(scale: str = "quick", seeds=(0,), device=None, progress: bool = False) -> dict:
    """``span_run`` for every depth of ``depths``, rate of ``attn_lrs`` and seed (the recorded file: the first seed, the
    one on which the ``induction`` sweep tunes its LSTMs); resumable (chapter 11)."""
    from .runlog import log_path, map_logged, per_run

    s = LR_SETTINGS[scale]
    task = RepeatedSpans(length=s["T"], vocab=s["vocab"], span_min=s["span_min"], span_max=s["span_max"],
                         gap_max=s["gap_max"])
    runs = map_logged(lambda c: span_run("attention", c[0], c[1], c[2], s, task, device=device, progress=progress),
                      [(d, lr, sd) for sd in seeds for d in s["depths"] for lr in s["attn_lrs"]],
                      device=device, path=log_path("induction_lr", scale), settings=per_run(s, LR_GRID_KEYS), progress=progress,
                      desc="attention depths x learning rates")
    return {"settings": s, "runs": runs, "best": {str(d): b for d, b in best_attention_rates(runs, s["attn_lrs"]).items()}}
