"""Copying and selective copying with a time-invariant SSM (S4D) and a selective scan (chapter 13).

Glossary, code name -> book notation::

    s4d            a diagonal state-space layer whose A, B, C and step size do not depend on the input (LTI)
    selective      the selective scan: B, C and the step size Delta are functions of x_t (Mamba's S6)
    copying        reproduce tokens after a fixed gap: a fixed convolution kernel solves it
    selective      copy only the data tokens scattered among noise: the kernel would have to depend
    copying        on where they fell, which only input-dependent parameters can express

``train_copier`` and ``accuracy_at`` are what chapter 13 calls; ``copying`` (registered as
``python -m seqlab.experiments copying``) runs both tasks with both layers for every seed and then
tests selective copying with more noise than in training.
"""
from __future__ import annotations

import time

import torch

from .. import _validate as validate
from ..config import seed_everything
from ..seeding import held_out
from ..models.ssm import SSMLayer
from ..data.tasks import CopyTask, SelectiveCopy
from ..models.mixer_lm import MixerLM, MixerLMConfig
from ..train import accuracy, train
from . import register
from .runlog import log_path, map_logged

MIXERS = {"S4D (time-invariant)": "s4d", "selective scan": "selective"}


def train_copier(mixer: str, task, seed: int, *, d_model: int, d_state: int, batch: int, lr: float, steps: int,
                 device=None, progress: bool | None = None):
    """Train a two-layer ``MixerLM`` (no MLPs) of ``mixer`` on ``task``; returns ``(model, history)`` (chapter 13).

    Held-out accuracy on 256 new sequences every 50 steps; training stops once it passes 0.99.
    """
    gen = seed_everything(seed)
    model = MixerLM(MixerLMConfig(task.input_vocab, mixer=mixer, d_model=d_model, n_layers=2, mlp=False,
                                  options=dict(d_state=d_state))).to(device)
    x_eval, y_eval = (t.to(device) for t in task.sample(256, generator=held_out(seed)))
    history = train(model, lambda: task.sample(batch, gen), steps=steps, lr=lr, clip=1.0, eval_every=50,
                    eval_fn=lambda m: {"acc": accuracy(m(x_eval)[0], y_eval)},
                    stop_when=lambda h: h.eval["acc"][-1] > 0.99, progress=progress, desc=mixer)
    return model, history


def norm_change(norms: torch.Tensor) -> torch.Tensor:
    """How far each token moves the state: abs(‖h_t‖ − ‖h_{t−1}‖) / mean ‖h‖, with ‖h_0‖ = 0 before the first (chapter 13).

    ``norms`` (n, L): ‖h_t‖ of each sequence at each step. Divided by the mean norm over every
    sequence and step, so that layers of different scale compare. Returns (n, L).
    """
    validate.tensor("norms", norms, ndim=2, dtype="float")
    previous = torch.cat([torch.zeros_like(norms[:, :1]), norms[:, :-1]], dim=1)  # ‖h_{t−1}‖
    return (norms - previous).abs() / norms.mean()


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
    if not isinstance(task, SelectiveCopy):
        raise TypeError(f"task must be a SelectiveCopy, got {type(task).__name__}")
    layers = [m for m in model.mixers if isinstance(m, SSMLayer) and m.config.selective]
    if not layers:
        raise ValueError("the model has no selective layer to probe")
    captured = []
    hooks = []
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
    body = x[:, :task.length].to(device)  # (n, L)
    data = body != task.noise
    # noise positions at least k steps after the last data token (no data token in the conv window)
    k = layers[0].config.d_conv
    since = torch.zeros_like(body)
    last = torch.full((n,), -10**6, device=body.device)
    for t in range(task.length):
        last = torch.where(data[:, t], torch.full_like(last, t), last)
        since[:, t] = t - last
    far_noise = (~data) & (since >= k)
    out = []
    for layer, st in zip(layers, captured):
        c = layer.config
        delta = st["delta"][:, :task.length]  # (n, L, E)
        B_t = st["xp"][:, :task.length, c.dt_rank:c.dt_rank + c.d_state]  # (n, L, N)
        u = st["u"][:, :task.length]  # (n, L, E)
        A = -torch.exp(layer.A_log)  # (E, N)
        h = torch.zeros(n, A.shape[0], A.shape[1], device=u.device)
        norms = []
        for t in range(task.length):
            h = torch.exp(delta[:, t, :, None] * A) * h + delta[:, t, :, None] * B_t[:, t, None, :] * u[:, t, :, None]
            norms.append(h.flatten(1).norm(dim=1))
        norms = torch.stack(norms, 1)  # (n, L)
        dh = norm_change(norms)  # (n, L)
        d_mean = delta.mean(-1)  # (n, L)
        out.append({"delta_data": d_mean[data].mean().item(), "delta_noise": d_mean[far_noise].mean().item(),
                    "dh_data": dh[data].mean().item(), "dh_noise": dh[far_noise].mean().item()})
        if trace:
            out[-1]["trace"] = {"delta": d_mean[0].tolist(), "norm": norms[0].tolist(), "data": data[0].tolist()}
    return out


def accuracy_at(model, sel: dict, length: int, seed: int, device=None) -> float:
    """Accuracy of ``model`` on 256 selective-copying sequences of ``sel`` with ``length`` noise tokens (chapter 13)."""
    x, y = SelectiveCopy(**{**sel, "length": length}).sample(256, generator=held_out(seed, stream=1))
    with torch.no_grad():
        return accuracy(model.eval()(x.to(device))[0], y.to(device))


SETTINGS = {
    "tiny": dict(d_model=8, d_state=2, batch=8, lr=1e-2, steps=5, copy=dict(length=3, vocab=4),
                 sel=dict(n_data=2, length=8, vocab=4), test_lengths=[8, 16]),
    "quick": dict(d_model=16, d_state=4, batch=32, lr=1e-2, steps=400, copy=dict(length=5, vocab=4),
                  sel=dict(n_data=4, length=32, vocab=4), test_lengths=[32, 64, 128]),         # chapter 13's
    "full": dict(d_model=32, d_state=8, batch=64, lr=3e-3, steps=4000, copy=dict(length=16, vocab=8),
                 sel=dict(n_data=8, length=128, vocab=16), test_lengths=[128, 256, 512]),
}


@register("copying", "chapter 13: copying and selective copying, S4D (LTI) vs the selective scan, longer noise",
          chapter=13)
def copying(scale: str = "quick", seeds=(0,), device=None, progress: bool = False) -> dict:
    """Chapter 13's copying experiment at ``scale``: both tasks x both layers x every seed; resumable (``runlog``).

    For the selective layer on selective copying, ``probe`` holds ``selectivity_probe``'s Δ_t and ‖h_t‖
    on data and noise tokens, per layer.
    """
    s = SETTINGS[scale]
    tasks = {"copying": CopyTask(**s["copy"]), "selective copying": SelectiveCopy(**s["sel"])}
    start = time.perf_counter()

    def one(c):
        task_name, name, seed = c
        model, h = train_copier(MIXERS[name], tasks[task_name], seed, d_model=s["d_model"], d_state=s["d_state"],
                                batch=s["batch"], lr=s["lr"], steps=s["steps"], device=device, progress=progress)
        out = {"task": task_name, "layer": name, "seed": seed, "accuracy": h.final("acc"), "steps": h.steps}
        if task_name == "selective copying":
            out["longer_noise"] = [accuracy_at(model, s["sel"], L, seed, device) for L in s["test_lengths"]]
            if MIXERS[name] == "selective":
                out["probe"] = selectivity_probe(model, tasks[task_name], seed, device=device)
        return out

    runs = map_logged(one, [(t, n, sd) for sd in seeds for t in tasks for n in MIXERS], path=log_path("copying", scale),
                      settings=s, progress=progress, desc="SSM copiers")
    lines = [f"{'task':17s} {'layer':21s} {'seed':>4s} {'accuracy':>8s} {'steps':>5s}   longer noise " + str(s["test_lengths"])]
    for r in runs:
        more = " ".join(f"{a:.3f}" for a in r.get("longer_noise", []))
        lines.append(f"{r['task']:17s} {r['layer']:21s} {r['seed']:4d} {r['accuracy']:8.3f} {r['steps']:5d}   {more}")
    return {"summary_lines": lines, "settings": s, "runs": runs, "seconds": round(time.perf_counter() - start, 1)}
