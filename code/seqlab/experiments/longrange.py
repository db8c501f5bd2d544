"""A small long-range benchmark for every family: ListOps, Pathfinder and long-lag recall, trained (chapter 15).

Glossary, code name -> book notation:

    task           "listops" (nested MAX/MIN/MED/SM, ``seqlab.data.longrange.ListOps``), "pathfinder"
                   (are two dots joined? an S × S image read pixel by pixel, T = S²), "lag" (chapter 4's
                   delayed recall: output the first of T = lag + 1 tokens at the last step)
    arch           one of ``compare.ARCHS`` (RNN, LSTM, Transformer, linear attention, SSM, hybrid), at
                   the width whose parameter count is nearest ``params``; the LSTM with chapter 4's
                   forget-gate bias (``FORGET_BIAS``), not PyTorch's default (uniform around 0)
    vision arms    on the Pathfinder images only: "Transformer (patches)", the same Transformer reading
                   2 × 2 patches as tokens (T = S²/4, ViT's recipe), and "LSTM (rows)", an LSTM that reads
                   one row of S one-hot pixels per step (T = S)
    accuracy       on a test set; ``val_accuracy`` on a separate validation set picks the learning rate
    baseline       the best input-blind guess: the most frequent class (ListOps), 1/2 (Pathfinder),
                   1/vocab (recall)

Every (task, arch) is trained at each learning rate of ``lrs`` and each seed, AdamW with weight decay
0.1, clipping 1.0, until the validation accuracy reaches 0.99 or ``steps`` run out. ``longrange``
(``python -m seqlab.experiments longrange``) runs the grid, resumable: each finished run goes to
``results/runs/longrange-SCALE.jsonl`` as it completes, and a rerun skips it (``runlog``). Under
``torchrun --nproc_per_node 2`` the runs are spread over two processes.
"""
from __future__ import annotations

import functools
import time
from collections import Counter

import torch
from torch import nn

from .. import _validate as validate
from .. import compare
from ..config import seed_everything
from ..seeding import held_out
from ..measure import binomial_se
from ..data.longrange import ListOps, Pathfinder, patch_tokens, row_vectors
from ..data.tasks import DelayedRecall
from ..measure import count_parameters
from ..models.charlm import RecurrentLM
from ..train import accuracy, train
from . import register
from .runlog import brackets, choose_rate, log_path, map_logged, map_tuned, per_run

GRID_KEYS = ("archs", "vision", "lrs", "max_widen")

TASKS = ("listops", "pathfinder", "lag")
VISION = ("Transformer (patches)", "LSTM (rows)")
FORGET_BIAS = 3.0  # chapter 4: a forget gate open at the start lets the LSTM's gradient reach far back
WEIGHT_DECAY = 0.1
TARGET = 0.99
PATCH = 2

SETTINGS = {
    "tiny": dict(tasks={"listops": dict(length=16, max_depth=2, max_args=3), "pathfinder": dict(size=6, curve_length=4),
                        "lag": dict(lag=8, vocab=4)},
                 archs=list(compare.ARCHS), vision=list(VISION), params=3000, lrs=[1e-3, 1e-2], steps=2,
                 eval_every=1, batch=4, eval_batch=16, max_widen=1),
    "quick": dict(tasks={"listops": dict(length=128, max_depth=4, max_args=5),
                         "pathfinder": dict(size=16, curve_length=14), "lag": dict(lag=64, vocab=8)},
                  archs=list(compare.ARCHS), vision=list(VISION), params=20_000, lrs=[1e-3, 3e-3, 1e-2, 3e-2], steps=600,
                  eval_every=100, batch=32, eval_batch=512, max_widen=1),
    "full": dict(tasks={"listops": dict(length=512, max_depth=6, max_args=6),
                        "pathfinder": dict(size=32, curve_length=40), "lag": dict(lag=256, vocab=8)},
                 archs=list(compare.ARCHS), vision=list(VISION), params=200_000, lrs=[3e-4, 1e-3, 3e-3, 1e-2],
                 steps=5000, eval_every=250, batch=64, eval_batch=2048, max_widen=1),
}


# runs logged on 2026-12-05 when the fingerprint covered the whole settings dict, with lrs [1e-3, 3e-3, 1e-2]
LEGACY = {"quick": ("6582a2a5c4dd",)}


def make_task(name: str, **kw):
    """The task ``name`` (one of ``TASKS``) with options ``kw`` (chapter 15)."""
    if name not in TASKS:
        raise ValueError(f"task must be one of {TASKS}, got {name!r}")
    return {"listops": ListOps, "pathfinder": Pathfinder, "lag": DelayedRecall}[name](**kw)


class RowLSTM(nn.Module):
    """An LSTM that reads an image one row per step: (B, S, 3S) one-hot rows -> (B, S, n_classes) (chapter 15).

    Two layers of ``nn.LSTM`` with the forget-gate bias set to ``forget_bias`` (chapter 4), a linear head.
    """

    def __init__(self, in_features: int, d: int, n_classes: int, forget_bias: float = FORGET_BIAS):
        super().__init__()
        validate.positive_int("in_features", in_features)
        validate.positive_int("d", d)
        validate.positive_int("n_classes", n_classes, minimum=2)
        self.lstm = nn.LSTM(in_features, d, num_layers=2, batch_first=True)
        with torch.no_grad():
            for name, b in self.lstm.named_parameters():
                if name.startswith("bias_ih"):
                    b[d:2 * d] = forget_bias  # PyTorch's gate order i, f, g, o
        self.head = nn.Linear(d, n_classes)

    def forward(self, rows: torch.Tensor) -> torch.Tensor:
        validate.tensor("rows", rows, ndim=3, dtype="float", last_dim=self.lstm.input_size)
        return self.head(self.lstm(rows)[0])


def make_model(arch: str, vocab: int, d: int, *, task=None) -> nn.Module:
    """A classifier of family ``arch`` and width d reading tokens of ``vocab`` (chapter 15).

    The six ``compare.ARCHS`` come from ``compare.make_model`` except the LSTM, built with chapter 4's
    forget-gate bias; the vision arms need the ``Pathfinder`` task.
    """
    validate.positive_int("d", d)
    if arch == "LSTM":
        model = RecurrentLM(vocab, d, d, cell="lstm", n_layers=2, forget_bias=FORGET_BIAS)
        model.arch = "LSTM"
        return compare.set_form(model, "fast")
    if arch in compare.ARCHS:
        return compare.make_model(arch, vocab, d)
    if arch not in VISION:
        raise ValueError(f"arch must be one of {compare.ARCHS + VISION}, got {arch!r}")
    if not isinstance(task, Pathfinder):
        raise ValueError(f"the vision arm {arch!r} reads Pathfinder images, got task {type(task).__name__}")
    if arch == "LSTM (rows)":
        return RowLSTM(3 * task.size, d, task.n_classes)
    return compare.make_model("Transformer", 3 ** (PATCH * PATCH), d)


def inputs_for(arch: str, task, x: torch.Tensor) -> torch.Tensor:
    """What ``arch`` reads of a batch of token sequences ``x``: the tokens, patch tokens or one-hot rows (chapter 15)."""
    if arch == "Transformer (patches)":
        return patch_tokens(x, task.size, PATCH)
    if arch == "LSTM (rows)":
        return row_vectors(x, task.size)
    return x


def _vocab(arch: str, task) -> int:
    return 3 ** (PATCH * PATCH) if arch == "Transformer (patches)" else task.input_vocab


@functools.lru_cache(maxsize=None)
def width_for(arch: str, task, params: int) -> int:
    """The even width whose parameter count is nearest ``params`` (chapter 15); widths a family cannot take
    (attention's heads need d/4 even for RoPE) are skipped."""
    validate.positive_int("params", params)
    best = None
    for d in range(8, 257, 2):
        try:
            n = count_parameters(make_model(arch, _vocab(arch, task), d, task=task))
        except ValueError:
            continue
        if best is None or abs(n - params) < abs(best[1] - params):
            best = (d, n)
        if n > 2 * params:  # counts grow with d: no wider model can be nearer
            break
    return best[0]


def baseline(task, n: int = 4096, seed: int = 0) -> float:
    """The best input-blind accuracy (chapter 15): 1/2 for Pathfinder's balanced labels, 1/vocab for recall,
    and for ListOps the frequency of the most common answer in ``n`` samples."""
    if isinstance(task, Pathfinder):
        return 0.5
    if isinstance(task, DelayedRecall):
        return task.chance
    _, y = task.sample(n, generator=seed)
    labels = y[:, -1].tolist()
    return Counter(labels).most_common(1)[0][1] / len(labels)


def chance_margin(baseline: float, n: int, z: float = 3.0) -> float:
    """How far above ``baseline`` an accuracy on ``n`` test examples must be to count as learned (chapter 15).

    ``z`` binomial standard errors of a guesser that is right with probability ``baseline``:
    z·√(b(1 − b)/n). An input-blind model sits within it (on Pathfinder, the constant answer scores the
    test set's share of one class, a few points from 1/2).
    """
    if not 0 < baseline < 1:
        raise ValueError(f"baseline must be a probability in (0, 1), got {baseline!r}")
    return z * binomial_se(baseline, n)


def _last_step_accuracy(logits, y):
    return accuracy(logits[:, -1], y[:, -1])


def train_one(task_name: str, arch: str, lr: float, *, task_options: dict, params: int, steps: int, batch: int,
              eval_batch: int, eval_every: int | None = None, seed: int = 0, device=None,
              progress: bool = False) -> dict:
    """Train one classifier on one task; validation accuracy (picks the lr), test accuracy (reported); chapter 15."""
    device = torch.device(device or "cpu")
    task = make_task(task_name, **task_options)
    d = width_for(arch, task, params)
    test = [t.to(device) for t in task.sample(eval_batch, generator=held_out(seed, 0))]   # reported
    val = [t.to(device) for t in task.sample(eval_batch, generator=held_out(seed, 1))]    # picks the lr
    test[0], val[0] = inputs_for(arch, task, test[0]), inputs_for(arch, task, val[0])
    gen = seed_everything(seed)
    model = make_model(arch, _vocab(arch, task), d, task=task).to(device)
    rows = arch == "LSTM (rows)"

    def batch_fn():
        x, y = task.sample(batch, generator=gen)
        x = inputs_for(arch, task, x)
        if rows or arch == "Transformer (patches)":
            y = y[:, -x.shape[1]:]  # the label stays at the last (now shorter) step
        return x.to(device), y.to(device)

    def evaluate(m, data):
        x, y = data
        return _last_step_accuracy(compare_logits(m, x), y)

    h = train(model, batch_fn, steps=steps, lr=lr, weight_decay=WEIGHT_DECAY, clip=1.0, progress=progress,
              desc=f"{task_name} {arch} lr={lr:g}", eval_fn=lambda m: {"val_accuracy": evaluate(m, val)},
              eval_every=eval_every, stop_when=lambda hist: hist.eval["val_accuracy"][-1] >= TARGET)
    model.eval()
    with torch.no_grad():
        acc = evaluate(model, test)
    curve = h.eval.get("val_accuracy", [float("nan")])
    return {"task": task_name, "arch": arch, "width": d, "params": count_parameters(model), "lr": lr, "seed": seed,
            "length": int(test[0].shape[1]), "accuracy": acc, "val_accuracy": curve[-1],
            "curve": {"step": list(h.eval_step), "val_accuracy": [round(v, 4) for v in curve]},
            "steps": h.steps, "diverged": h.diverged, "baseline": baseline(task),
            "seconds": round(h.seconds, 3)}


def compare_logits(model, x):
    """Logits of ``model`` on ``x``: token models return (B, T, V) or a tuple starting with them (chapter 15)."""
    out = model(x)
    return out[0] if isinstance(out, (tuple, list)) else out


def cells(s: dict) -> list[tuple]:
    """(task, arch) of every cell, each trained at every lr of ``s["lrs"]`` (chapter 15)."""
    return [(t, a) for t in s["tasks"] for a in list(s["archs"]) + (list(s["vision"]) if t == "pathfinder" else [])]


def chosen_rows(runs: list[dict], cell, tune_seed: int | None = None) -> list[dict]:
    """Per key ``cell(run)``, in the order of first appearance: the test accuracy of every seed at the rate best on
    mean validation accuracy (``runlog.choose_rate``), its mean/min/max, the baseline, and whether the grid brackets
    that rate or is flat at the edge where it lies (``runlog.brackets``: three rates or more and no edge optimum
    that an inner rate fails to come within the tolerance of); chapter 15.

    ``tune_seed``: the seed that ran the whole lr grid and chooses the lr. Each row keeps the chosen ``runs``.
    """
    rows = []
    for c in choose_rate(runs, cell, lambda r: r.get("val_accuracy", r["accuracy"]), lower=False,
                         tune_seed=tune_seed).values():
        accs = [r["accuracy"] for r in c["runs"]]
        rows.append({"lr": c["lr"], "seeds": len(accs), "mean": sum(accs) / len(accs), "min": min(accs),
                     "max": max(accs), "accuracy": accs, "baseline": c["runs"][0]["baseline"],
                     "bracketed": brackets(c),
                     "runs": c["runs"]})
    return rows


def table(runs: list[dict], tune_seed: int | None = None) -> list[dict]:
    """Per (task, arch): test accuracy at the lr best on validation, mean/min/max over seeds, and the baseline
    (``chosen_rows``; chapter 15). ``tune_seed``: the seed that ran the whole lr grid and chooses the lr."""
    out = []
    for row in chosen_rows(runs, lambda r: (r["task"], r["arch"]), tune_seed):
        best = row.pop("runs")
        del row["accuracy"]
        out.append({"task": best[0]["task"], "arch": best[0]["arch"], **row, "params": best[0]["params"],
                    "length": best[0]["length"], "steps": max(r["steps"] for r in best)})
    return out


def grid_place(lr: float, rates, bracketed: bool) -> str:
    """Where a cell's chosen rate ``lr`` sits in the ``rates`` it ran: "inside" the grid, "at an end, flat" (an inner
    rate within the tolerance of ``runlog.brackets``: the score is flat at that end as far as the grid reaches, though
    the grid does not show that no rate past it is better) or "at an end: NOT bracketed" (chapter 15)."""
    if not bracketed:
        return "at an end: NOT bracketed"
    return "inside" if min(rates) < lr < max(rates) else "at an end, flat"


def render_longrange(results: dict) -> list[str]:
    """The table of a ``longrange`` results dict: per task and family, length, parameters, best learning rate, test
    accuracy mean [min, max] over seeds, the input-blind baseline and whether the rate grid brackets the optimum
    or is flat at the edge where it lies (chapter 15)."""
    lines = [f"{'task':10s} {'arch':22s} {'T':>4s} {'params':>6s} {'best lr':>7s} {'accuracy mean [min, max]':>25s} "
             f"{'baseline':>8s} best rate in the grid"]
    for r in results["table"]:
        rates = [x["lr"] for x in results["runs"] if (x["task"], x["arch"]) == (r["task"], r["arch"])]
        lines.append(f"{r['task']:10s} {r['arch']:22s} {r['length']:4d} {r['params']:6d} {r['lr']:7g} {r['mean']:9.3f} "
                     f"[{r['min']:.3f}, {r['max']:.3f}] {r['baseline']:8.3f} {grid_place(r['lr'], rates, r['bracketed'])}")
    return lines


@register("longrange", "chapter 15: ListOps, Pathfinder (pixels, patches, rows) and long-lag recall for all six "
                       "families, trained", chapter=15, render=render_longrange)
def longrange(scale: str = "quick", seeds=(0, 1, 2), device=None, progress: bool = False) -> dict:
    """The long-range benchmark of chapter 15 at ``scale``; resumable (``runlog``)."""
    s = SETTINGS[scale]
    common = dict(params=s["params"], steps=s["steps"], batch=s["batch"], eval_batch=s["eval_batch"],
                  eval_every=s["eval_every"], device=device)

    def one(c):
        t, arch, lr, seed = c
        return train_one(t, arch, lr, task_options=s["tasks"][t], seed=seed, progress=progress, **common)

    seeds = list(seeds)
    _, runs = map_tuned(one, cells(s), s["lrs"], seeds, score=lambda r: r["val_accuracy"], max_widen=s["max_widen"],
                        device=device, path=log_path("longrange", scale), settings=per_run(s, GRID_KEYS), progress=progress,
                        desc="long-range runs", also_accept=LEGACY.get(scale, ()))
    return {"settings": s, "runs": runs, "table": table(runs, tune_seed=seeds[0])}


def estimate(scale: str = "quick", probe_steps: int = 5, processes: int = 2, out=None) -> list[str]:
    """CPU seconds per step of every (task, arch) from ``probe_steps`` timed steps, and the sweep's cost (chapter 15).

    Process CPU time, which a machine shared with other work inflates far less than wall time. An
    upper bound for the sweep: runs that reach the target stop early. ``out``: also print each line there.
    """
    s = SETTINGS[scale]
    lines, total = [], 0.0
    for t, opts in s["tasks"].items():
        arms = list(s["archs"]) + (list(s["vision"]) if t == "pathfinder" else [])
        for arch in arms:
            width_for(arch, make_task(t, **opts), s["params"])  # the width search is not part of a step
            start = time.process_time()
            r = train_one(t, arch, 1e-3, task_options=opts, params=s["params"], steps=probe_steps, batch=s["batch"],
                          eval_batch=s["batch"], eval_every=None, seed=0)
            per_step = (time.process_time() - start) / r["steps"]
            runs = len(s["lrs"]) * 3
            cost = per_step * s["steps"] * runs
            total += cost
            lines.append(f"{t:10s} {arch:22s} T={r['length']:4d} params={r['params']:6d} {per_step * 1e3:7.1f} ms/step"
                         f" (CPU) -> {runs} runs x {s['steps']} steps: {cost / 60:6.1f} CPU-min")
            if out is not None:
                print(lines[-1], file=out, flush=True)
    lines.append(f"in all: {total / 3600:.2f} CPU-hours for 3 seeds, about {total / 3600 / processes:.2f} h of wall "
                 f"time on {processes} quiet cores")
    if out is not None:
        print(lines[-1], file=out, flush=True)
    return lines


# ---------------------------------------------------------------- the SSM on shorter lags: is its failure the distance?
LAG_SETTINGS = {
    "tiny": dict(lags=[2, 4], archs=["SSM"], lrs=[1e-2, 3e-2], vocab=4, params=3000, steps=2, batch=4, eval_batch=16,
                 eval_every=1),
    "quick": dict(lags=[4, 8, 16, 32, 64], archs=["SSM"], lrs=[1e-3, 3e-3, 1e-2, 3e-2], vocab=8, params=20_000, steps=600,
                  batch=32, eval_batch=512, eval_every=100),
    "full": dict(lags=[16, 32, 64, 128, 256], archs=["SSM"], lrs=[1e-3, 3e-3, 1e-2], vocab=8, params=200_000,
                 steps=5000, batch=64, eval_batch=2048, eval_every=250),
}
LAG_GRID_KEYS = ("lags", "archs", "lrs")


def lag_table(runs: list[dict]) -> list[dict]:
    """Per (arch, lag): test accuracy mean/min/max over seeds at the rate best on mean validation accuracy, and whether
    the grid brackets that rate or is flat at the edge where it lies (``runlog.brackets``, via ``chosen_rows`` over
    all seeds; chapter 15)."""
    out = []
    for row in chosen_rows(runs, lambda r: (r["arch"], r["lag"])):
        best = row.pop("runs")
        out.append({"arch": best[0]["arch"], "lag": best[0]["lag"], **row})
    return out


def render_ssm_lags(results: dict) -> list[str]:
    """The table of an ``ssm_lags`` results dict: per family and lag, the best rate and the test accuracy mean
    [min, max] over seeds against the 1/vocab baseline (chapter 15)."""
    lines = [f"{'arch':8s} {'lag':>4s} {'best lr':>7s} {'accuracy mean [min, max]':>25s} {'baseline':>8s} "
             "best rate in the grid"]
    for r in results["table"]:
        rates = [x["lr"] for x in results["runs"] if (x["arch"], x["lag"]) == (r["arch"], r["lag"])]
        lines.append(f"{r['arch']:8s} {r['lag']:4d} {r['lr']:7g} {r['mean']:9.3f} [{r['min']:.3f}, {r['max']:.3f}] "
                     f"{r['baseline']:8.3f} {grid_place(r['lr'], rates, r['bracketed'])}")
    return lines


@register("ssm_lags", "chapter 15: the SSM on chapter 4's delayed recall at lags 4 to 64, a grid of learning rates, "
          "three seeds: is its failure at lag 64 about the distance?", chapter=15, render=render_ssm_lags,
          settings=LAG_SETTINGS)
def ssm_lags(scale: str = "quick", seeds=(0, 1, 2), device=None, progress: bool = False) -> dict:
    """``train_one`` on the lag task at every lag of ``lags``, for every arch, rate and seed; resumable (chapter 15).

    The same classifier, budget, batches and held-out sets as ``longrange``'s lag cell, only the lag varies.
    """
    s = LAG_SETTINGS[scale]

    def one(c):
        arch, lag, lr, seed = c
        r = train_one("lag", arch, lr, task_options=dict(lag=lag, vocab=s["vocab"]), params=s["params"],
                      steps=s["steps"], batch=s["batch"], eval_batch=s["eval_batch"], eval_every=s["eval_every"],
                      seed=seed, device=device, progress=progress)
        return {**r, "lag": lag}

    configs = [(a, lag, lr, sd) for sd in seeds for a in s["archs"] for lag in s["lags"] for lr in s["lrs"]]
    runs = map_logged(one, configs, device=device, path=log_path("ssm_lags", scale), settings=per_run(s, LAG_GRID_KEYS),
                      progress=progress, desc="SSM x lags x rates")
    return {"settings": s, "runs": runs, "table": lag_table(runs)}
