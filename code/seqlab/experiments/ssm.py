"""Copying and selective copying with a time-invariant SSM (S4D) and a selective scan (chapter 13).

Glossary, code name -> book notation::

    s4d            a diagonal state-space layer whose A, B, C and step size do not depend on the input (LTI)
    selective      the selective scan: B, C and the step size Delta are functions of x_t (Mamba's S6)
    copying        reproduce tokens after a fixed gap: a fixed convolution kernel solves it
    selective      copy only the data tokens scattered among noise: the kernel would have to depend
    copying        on where they fell, which only input-dependent parameters can express

``train_copier`` and ``accuracy_at`` are what chapter 13 calls; ``copying`` (registered as
``python -m seqlab.experiments copying``) runs both tasks with both layers at every learning rate of a
grid for every seed, tests selective copying with more noise than in training, picks each layer's rate
on validation accuracy (``best_rates``) and trains both again at that rate with a longer budget.
"""
from __future__ import annotations


import torch

from .. import _validate as validate
from ..config import seed_everything
from ..seeding import held_out
from ..models.ssm import SSMLayer
from ..ops.ssm import selective_scan_step
from ..data.tasks import CopyTask, SelectiveCopy
from ..models.mixer_lm import MixerLM, MixerLMConfig
from ..train import accuracy, train
from . import register
from .runlog import choose_rate, log_path, map_logged, per_run

MIXERS = {"S4D (time-invariant)": "s4d", "selective scan": "selective"}
STOP_ACC = 0.99  # a copier's training stops once its held-out accuracy passes this (the recorded runs' rule too)


def train_copier(mixer: str, task, seed: int, *, d_model: int, d_state: int, batch: int, lr: float, steps: int,
                 device=None, progress: bool | None = None, eval_every: int = 50):
    """Train a two-layer ``MixerLM`` (no MLPs) of ``mixer`` on ``task``; returns ``(model, history)`` (chapter 13).

    Held-out accuracy on 256 new sequences every ``eval_every`` steps; training stops once it passes ``STOP_ACC``.
    """
    gen = seed_everything(seed)
    model = MixerLM(MixerLMConfig(task.input_vocab, mixer=mixer, d_model=d_model, n_layers=2, mlp=False,
                                  options=dict(d_state=d_state))).to(device)
    x_eval, y_eval = (t.to(device) for t in task.sample(256, generator=held_out(seed)))
    history = train(model, lambda: task.sample(batch, gen), steps=steps, lr=lr, clip=1.0, eval_every=eval_every,
                    eval_fn=lambda m: {"acc": accuracy(m(x_eval)[0], y_eval)},
                    stop_when=lambda h: h.eval["acc"][-1] > STOP_ACC, progress=progress, desc=mixer)
    return model, history


def norm_change(norms: torch.Tensor) -> torch.Tensor:
    """How far each token moves the state: abs(‖h_t‖ − ‖h_{t−1}‖) / mean ‖h‖, with ‖h_0‖ = 0 before the first (chapter 13).

    ``norms`` (n, L): ‖h_t‖ of each sequence at each step. Divided by the mean norm over every
    sequence and step, so that layers of different scale compare. Returns (n, L).
    """
    validate.tensor("norms", norms, ndim=2, dtype="float")
    previous = torch.cat([torch.zeros_like(norms[:, :1]), norms[:, :-1]], dim=1)  # ‖h_{t−1}‖
    return (norms - previous).abs() / norms.mean()


def _selective_layers(model: MixerLM, task) -> list:
    if not isinstance(task, SelectiveCopy):
        raise TypeError(f"task must be a SelectiveCopy, got {type(task).__name__}")
    layers = [m for m in model.mixers if isinstance(m, SSMLayer) and m.config.selective]
    if not layers:
        raise ValueError("the model has no selective layer to probe")
    return layers


def _hooked_run(model: MixerLM, layers: list, task: SelectiveCopy, seed: int, n: int, device) -> tuple:
    """Run ``model`` on the probe's ``n`` sequences (held-out stream 2 of ``seed``) with hooks on each of ``layers``:
    the sequences' bodies (n, L) and, per layer, Δ_t (n, L, E), the scan input u_t (n, L, E), B_t (n, L, N) and
    A (E, N) (chapter 13)."""
    captured, hooks = [], []
    for layer in layers:
        store = {}
        captured.append(store)
        hooks.append(layer.x_proj.register_forward_hook(lambda mod, inp, out, st=store: st.update(u=inp[0], xp=out)))
        hooks.append(layer.dt_proj.register_forward_hook(
            lambda mod, inp, out, st=store: st.update(delta=torch.nn.functional.softplus(out))))
    x, _ = task.sample(n, generator=held_out(seed, stream=2))  # 30 000 + seed, shifted
    try:
        with torch.no_grad():
            model.eval()(x.to(device))
    finally:
        for h in hooks:
            h.remove()
    L = task.length
    per_layer = []
    for layer, st in zip(layers, captured):
        c = layer.config
        per_layer.append({"delta": st["delta"][:, :L], "u": st["u"][:, :L],
                          "B": st["xp"][:, :L, c.dt_rank:c.dt_rank + c.d_state], "A": -torch.exp(layer.A_log).detach()})
    return x[:, :L].to(device), per_layer


def _rerun_states(delta, u, B_t, A):
    """The layer's states rerun with ``ops.ssm.selective_scan_step`` from h_0 = 0 (h_t = exp(Δ_t A) h_{t-1} + Δ_t B_t u_t):
    every ‖h_t‖ and ‖h_t − h_{t−1}‖, (n, L) each (chapter 13)."""
    n, D = delta.shape[0], A.shape[0]
    h, norms, moves = torch.zeros(n, *A.shape, device=delta.device), [], []
    no_C, no_D = torch.zeros(n, A.shape[1], device=delta.device), torch.zeros(D, device=delta.device)  # the states only
    with torch.no_grad():
        for u_t, delta_t, B_step in zip(u.unbind(1), delta.unbind(1), B_t.unbind(1)):
            _, h_new = selective_scan_step(u_t, delta_t, A, B_step, no_C, no_D, state=h)
            moves.append((h_new - h).flatten(1).norm(dim=1))
            norms.append(h_new.flatten(1).norm(dim=1))
            h = h_new
    return torch.stack(norms, 1), torch.stack(moves, 1)


def steps_since_data(data: torch.Tensor) -> torch.Tensor:
    """For a (n, L) mask of data tokens, the steps since the last data token at every position (0 at a data token;
    before the first one, more than L) (chapter 13)."""
    validate.tensor("data", data, ndim=2)
    if data.dtype != torch.bool:
        raise TypeError(f"data must be a bool mask, got {data.dtype}")
    L = data.shape[1]
    t = torch.arange(L, device=data.device)
    last = torch.cummax(torch.where(data, t, torch.full_like(t, -L)), dim=1).values
    return t - last


def selectivity_probe(model: MixerLM, task: SelectiveCopy, seed: int, *, n: int = 256, device=None,
                      trace: bool = False) -> list[dict]:
    """What the trained selective layers do on noise against data tokens, per layer (chapter 13).

    Hooks read each selective layer's Δ_t (``softplus(dt_proj(·))``, (B, T, E)) and its scan input u_t,
    B_t; the state h_t = exp(Δ_t A) h_{t-1} + Δ_t B_t u_t is then rerun step by step to get ‖h_t‖.
    Over the body of ``n`` new sequences (the ``length`` steps before the markers), returns per layer:

        delta_data, delta_noise   mean Δ_t (over channels and positions) at data tokens and at noise tokens
                                  at least ``k`` steps after the last data token (k = the short
                                  convolution's width, so that no data token is in its window)
        dh_data, dh_noise         mean |‖h_t‖ − ‖h_{t−1}‖| / mean ‖h_t‖ at those same positions: how much
                                  a token moves the state
        trace                     (with ``trace``) the first sequence's Δ_t (mean over channels), ‖h_t‖ and
                                  which of its positions hold data, as lists
    """
    layers = _selective_layers(model, task)
    body, per_layer = _hooked_run(model, layers, task, seed, n, device)
    data = body != task.noise
    far_noise = steps_since_data(data) >= layers[0].config.d_conv  # no data token in the conv window
    out = []
    for q in per_layer:
        norms, _ = _rerun_states(q["delta"], q["u"], q["B"], q["A"])
        dh = norm_change(norms)  # (n, L)
        d_mean = q["delta"].mean(-1)  # (n, L)
        out.append({"delta_data": d_mean[data].mean().item(), "delta_noise": d_mean[far_noise].mean().item(),
                    "dh_data": dh[data].mean().item(), "dh_noise": dh[far_noise].mean().item()})
        if trace:
            out[-1]["trace"] = {"delta": d_mean[0].tolist(), "norm": norms[0].tolist(), "data": data[0].tolist()}
    return out


def selectivity_by_offset(model: MixerLM, task: SelectiveCopy, seed: int, *, n: int = 256, max_offset: int = 6,
                          device=None) -> dict:
    """The first selective layer on the probe's ``n`` sequences, aligned on the data tokens (chapter 13).

    Every value is a mean divided by the same mean on far noise (no data token in the short convolution's window):

        delta[j], move[j]         Δ_t (mean over channels) and ‖h_t − h_{t−1}‖ (over the mean ‖h_t‖; it sees
                                  rotations of the state that its norm misses) j steps after the last data token,
                                  j = 0 .. max_offset (0: the data token itself)
        delta_alone, delta_crowded   Δ_t on isolated data tokens (none in the d_conv − 1 before) and on the others
        dh_*, move_* (all, alone, crowded)   the probe's |‖h_t‖ − ‖h_{t−1}‖| and ‖h_t − h_{t−1}‖, split the same way
        crowded_share             the share of data tokens with another in their window
        norm_kept                 the median of ‖h_t‖ / ‖h_{t−1}‖ on far noise (1: the state is held)
        decay_far                 the mean of e^{Δ_t A} on far noise
    """
    layer = _selective_layers(model, task)[0]
    body, (q,) = _hooked_run(model, [layer], task, seed, n, device)
    delta, A = q["delta"], q["A"]
    norm, moves = _rerun_states(delta, q["u"], q["B"], A)
    move = moves / norm.mean()  # (n, L)
    data = body != task.noise
    since = steps_since_data(data)
    k = layer.config.d_conv
    far = since >= k
    previous = torch.cat([torch.full_like(since[:, :1], data.shape[1] + k), since[:, :-1] + 1], 1)   # steps since the data token before t
    alone = data & (previous >= k)
    d_mean = delta.mean(-1)
    out = {key: [(v[since == j].mean() / v[far].mean()).item() for j in range(max_offset + 1)]
           for key, v in (("delta", d_mean), ("move", move))}
    out["delta_alone"] = (d_mean[alone].mean() / d_mean[far].mean()).item()
    out["delta_crowded"] = (d_mean[data & ~alone].mean() / d_mean[far].mean()).item()
    out["crowded_share"] = ((data & ~alone).sum() / data.sum()).item()
    dh = norm_change(norm)
    for key, v in (("dh", dh), ("move", move)):
        for part, where in (("all", data), ("alone", alone), ("crowded", data & ~alone)):
            out[f"{key}_{part}"] = (v[where].mean() / v[far].mean()).item()
    out["norm_kept"] = (norm[:, 1:] / norm[:, :-1].clamp_min(1e-12))[far[:, 1:]].median().item()
    out["decay_far"] = torch.exp(delta[..., None] * A)[far].mean().item()
    return out


def accuracy_at(model, sel: dict, length: int, seed: int, device=None) -> float:
    """Accuracy of ``model`` on 256 selective-copying sequences of ``sel`` with ``length`` noise tokens (chapter 13)."""
    x, y = SelectiveCopy(**{**sel, "length": length}).sample(256, generator=held_out(seed, stream=1))
    with torch.no_grad():
        return accuracy(model.eval()(x.to(device))[0], y.to(device))


SETTINGS = {
    "tiny": dict(d_model=8, d_state=2, batch=8, steps=5, lrs=[1e-2, 3e-2], longer_factor=2, copy=dict(length=3, vocab=4),
                 sel=dict(n_data=2, length=8, vocab=4), test_lengths=[8, 16]),
    "quick": dict(d_model=16, d_state=4, batch=32, steps=400, lrs=[3e-3, 1e-2, 3e-2, 1e-1], longer_factor=4,
                  copy=dict(length=5, vocab=4), sel=dict(n_data=4, length=32, vocab=4),
                  test_lengths=[32, 64, 128]),                                                       # chapter 13's
    "full": dict(d_model=32, d_state=8, batch=64, steps=4000, lrs=[1e-3, 3e-3, 1e-2, 3e-2], longer_factor=4,
                 copy=dict(length=16, vocab=8), sel=dict(n_data=8, length=128, vocab=16),
                 test_lengths=[128, 256, 512]),
}
GRID_KEYS = ("lrs",)  # the settings that only list the grid's points (not part of one run's fingerprint)
SELECTIVE_COPYING = "selective copying"


def copier_run(task_name: str, name: str, lr: float, seed: int, steps: int, s: dict, tasks: dict, device=None,
               progress: bool = False) -> dict:
    """One recorded run of ``copying``: ``MIXERS[name]`` trained on ``tasks[task_name]`` at rate ``lr`` for at most
    ``steps`` (chapter 13).

    Returns the held-out (validation) accuracy curve and its last value; on selective copying also the accuracy on a
    second held-out set at each of ``test_lengths`` (``longer_noise``: the first length is the training length) and,
    for the selective layer, ``selectivity_probe``'s numbers per layer.
    """
    model, h = train_copier(MIXERS[name], tasks[task_name], seed, d_model=s["d_model"], d_state=s["d_state"],
                            batch=s["batch"], lr=lr, steps=steps, device=device, progress=progress)
    out = {"task": task_name, "layer": name, "lr": lr, "seed": seed, "budget": steps, "accuracy": h.final("acc"),
           "steps": h.steps, "curve": {"step": list(h.eval_step), "accuracy": list(h.eval["acc"])}}
    if task_name == SELECTIVE_COPYING:
        out["longer_noise"] = [accuracy_at(model, s["sel"], L, seed, device) for L in s["test_lengths"]]
        if MIXERS[name] == "selective":
            out["probe"] = selectivity_probe(model, tasks[task_name], seed, device=device)
    return out


def best_rates(runs: list[dict], lrs: list[float]) -> dict:
    """Per (task, layer): the mean validation accuracy over seeds at each rate of ``lrs``, the rate with the highest
    (ties: the fewer mean steps run), and whether it lies inside the grid (``runlog.choose_rate``; chapter 13).

    ``{(task, layer): {"mean_accuracy": [[lr, acc], ...], "lr": best, "bracketed": bool}}`` from runs of one budget.
    """
    chosen = choose_rate(runs, lambda r: (r["task"], r["layer"]), lambda r: r["accuracy"], lrs=lrs, lower=False,
                         tie=lambda r: r["steps"])
    return {key: {"mean_accuracy": c["mean"], "lr": c["lr"], "bracketed": c["bracketed"]} for key, c in chosen.items()}


def render_copying(results: dict) -> list[str]:
    """The printed summary of a ``copying`` results dict: mean validation accuracy per rate, the chosen rate, and on
    selective copying each seed's test accuracy with longer noise at that rate, for both budgets (chapter 13)."""
    s = results["settings"]
    grid = [r for r in results["runs"] if r["budget"] == s["steps"]]
    best = best_rates(grid, s["lrs"])
    lines = [f"{'task':17s} {'layer':21s} " + " ".join(f"{lr:>7g}" for lr in s["lrs"])
             + f"   best   (mean validation accuracy over seeds, {s['steps']} steps)"]
    for (t, n), b in best.items():
        acc = dict((lr, a) for lr, a in b["mean_accuracy"])
        lines.append(f"{t:17s} {n:21s} " + " ".join(f"{acc.get(lr, float('nan')):7.3f}" for lr in s["lrs"])
                     + f"   {b['lr']:g}{'' if b['bracketed'] else ' (edge)'}")
    lines.append(f"selective copying at each layer's best rate: test accuracy at {s['test_lengths']} data + noise tokens")
    for r in results["runs"]:
        if r["task"] == SELECTIVE_COPYING and r["lr"] == best[SELECTIVE_COPYING, r["layer"]]["lr"]:
            lines.append(f"  {r['layer']:21s} seed {r['seed']}  {r['budget']:5d} steps  "
                         + " ".join(f"{a:.3f}" for a in r["longer_noise"]))
    return lines


@register("copying", "chapter 13: copying and selective copying, S4D (LTI) vs the selective scan, a learning-rate grid "
          "per layer, longer noise, a longer budget at the best rate", chapter=13, render=render_copying)
def copying(scale: str = "quick", seeds=(0,), device=None, progress: bool = False) -> dict:
    """Chapter 13's copying experiment at ``scale``; resumable (``runlog``).

    Both tasks x both layers x every rate of ``lrs`` x every seed for ``steps`` (``copier_run``); ``best_rates``
    picks each layer's rate on validation accuracy; on selective copying both layers are then trained again at their
    best rate for ``longer_factor`` times the steps (the same seeds), to ask whether the budget, not the layer, set
    the result. ``best`` lists the chosen rates as ``[task, layer, lr, bracketed]``.
    """
    s = SETTINGS[scale]
    tasks = {"copying": CopyTask(**s["copy"]), SELECTIVE_COPYING: SelectiveCopy(**s["sel"])}
    path = log_path("copying", scale)

    def one(c):
        task_name, name, lr, seed, steps = c
        return copier_run(task_name, name, lr, seed, steps, s, tasks, device=device, progress=progress)

    grid = [(t, n, lr, sd, s["steps"]) for sd in seeds for t in tasks for n in MIXERS for lr in s["lrs"]]
    runs = map_logged(one, grid, device=device, path=path, settings=per_run(s, GRID_KEYS), progress=progress,
                      desc="SSM copiers x learning rates")
    best = best_rates(runs, s["lrs"])
    longer = [(SELECTIVE_COPYING, n, best[SELECTIVE_COPYING, n]["lr"], sd, s["longer_factor"] * s["steps"])
              for sd in seeds for n in MIXERS]
    runs += map_logged(one, longer, device=device, path=path, settings=per_run(s, GRID_KEYS), progress=progress,
                       desc="SSM copiers, longer budget")
    return {"settings": s, "runs": runs, "best": [[t, n, b["lr"], b["bracketed"]] for (t, n), b in best.items()]}
