"""Time against sequence length for recurrence and attention, and where the curves cross (chapter 9).

Glossary, code name -> book notation::

    n              sequence length
    d              width of the layer (one head for attention)
    slope          the exponent k of time ~ n^k, fitted over the largest lengths
    crossover      the length at which attention's time passes nn.LSTM's

``CausalSelfAttention``, ``cost_layers`` and ``time_against_length`` are what chapter 9 times with;
``cost`` (registered as ``python -m seqlab.experiments cost``) runs them at a scale. Timing is
measured in rounds over every (layer, n), each one's fastest call counting, so the layers share any load
alike; the command runs it in one process (several would slow each other).
"""
from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from ..config import seed_everything
from ..measure import crossover, fit_slope, time_calls
from ..models.attention import scaled_dot_product_attention
from ..models.lstm import LSTM
from . import register


class CausalSelfAttention(nn.Module):
    """One causal self-attention layer of width d with one head: project, attend (by hand or fused), project (chapter 9)."""

    def __init__(self, d, fused):
        super().__init__()
        self.qkv, self.out, self.fused = nn.Linear(d, 3 * d), nn.Linear(d, d), fused

    def forward(self, x):                                              # (B, n, d)
        q, k, v = self.qkv(x)[:, None].chunk(3, dim=-1)               # (B, 1, n, d) each: one head
        if self.fused:
            y = F.scaled_dot_product_attention(q, k, v, is_causal=True)
        else:
            y = scaled_dot_product_attention(q, k, v, causal=True)[0]     # computes and keeps (B, 1, n, n) weights
        return self.out(y[:, 0])                                       # (B, n, d)


def cost_layers(d: int, device=None) -> dict[str, nn.Module]:
    """The four layers chapter 9 compares, width ``d``: seqlab's LSTM loop, nn.LSTM, attention by hand and fused (chapter 9)."""
    layers = {"LSTM, Python loop": LSTM(d, d), "nn.LSTM": nn.LSTM(d, d, batch_first=True),
              "attention, by hand": CausalSelfAttention(d, fused=False), "attention, fused": CausalSelfAttention(d, fused=True)}
    return {name: layer.to(device) for name, layer in layers.items()}


def run_layer(layer: nn.Module, x: torch.Tensor) -> torch.Tensor:
    """The layer's outputs (B, n, d): LSTMs return (outputs, state) (chapter 9)."""
    out = layer(x)
    return out[0] if isinstance(out, tuple) else out


def time_against_length(layers: dict, ns, n_max: dict, *, batch: int, d: int, repeats: int,
                        generator: torch.Generator, device=None, clock: str = "wall",
                        short_rounds: tuple[int, int] | None = None) -> tuple[dict, dict]:
    """Forward + backward time of each layer (width ``d``) at each length n <= ``n_max[name]`` (chapter 9).

    Returns ``(seconds, ns_of)``: ``seconds[name]`` the fastest call at each of ``ns_of[name]``. Every (layer, n)
    is timed in rounds over all of them, so load falls on all alike. ``short_rounds=(n_short, k)`` times the lengths
    n <= n_short in rounds of their own, k of them: calls of a few milliseconds, so that many rounds cost little and a
    burst of load cannot decide which short length is the cheapest. ``clock="cpu"`` counts the process's CPU seconds
    (``measure.time_calls``): with one thread, time other processes take is not counted.
    """
    def forward_backward(layer, n):
        x = torch.randn(batch, n, d, generator=generator).to(device).requires_grad_()   # (B, n, d)
        return lambda: run_layer(layer, x).sum().backward()

    if short_rounds is not None and (len(short_rounds) != 2 or min(short_rounds) < 1):
        raise ValueError(f"short_rounds must be (longest short length, rounds), both positive, got {short_rounds!r}")
    ns_of = {name: [n for n in ns if n <= n_max[name]] for name in layers}
    n_short, k_short = short_rounds or (0, repeats)
    timings = {}
    for group, k in (([n for n in ns if n <= n_short], k_short), ([n for n in ns if n > n_short], repeats)):
        calls = {(name, n): forward_backward(layer, n) for n in group for name, layer in layers.items()
                 if n in ns_of[name]}
        if calls:   # rounds over every (layer, n) of the group, shortest first
            timings.update(time_calls(calls, repeats=k, device=device, clock=clock))
    return {name: [timings[name, n].min for n in ns_of[name]] for name in layers}, ns_of


SETTINGS = {
    "tiny": dict(batch=1, d=16, ns=[16, 32, 64], fit_last=3, repeats=2,
                 n_max={"LSTM, Python loop": 32, "nn.LSTM": 64, "attention, by hand": 64, "attention, fused": 64}),
    "quick": dict(batch=4, d=64, ns=[16, 32, 64, 128, 256, 512, 1024, 2048, 4096], fit_last=3, repeats=5,
                  short_rounds=(256, 20), n_max={"LSTM, Python loop": 1024, "nn.LSTM": 2048, "attention, by hand": 2048,
                         "attention, fused": 4096}),                                      # chapter 9's
    "full": dict(batch=8, d=128, ns=[64, 128, 256, 512, 1024, 2048, 4096, 8192, 16384], fit_last=3, repeats=5,
                 short_rounds=(512, 20), n_max={"LSTM, Python loop": 2048, "nn.LSTM": 16384, "attention, by hand": 8192,
                        "attention, fused": 16384}),
}


def render_cost(results: dict) -> list[str]:
    """The table of a ``cost`` results dict: per seed and layer, the fitted slope and the time at each length, then
    where each attention layer crosses nn.LSTM (chapter 9)."""
    lines = [f"{'seed':>4s} {'layer':20s} {'slope':>6s}  time at n = {results['settings']['ns'][0]} .. largest (ms)"]
    for r in results["runs"]:
        for name, t in r["seconds"].items():
            lines.append(f"{r['seed']:4d} {name:20s} {r['slope'][name]:6.2f}  " + " ".join(f"{v * 1e3:.2f}" for v in t))
        lines += [f"{r['seed']:4d} {name} crosses nn.LSTM at n = " + (f"{c:.0f}" if c else "(no crossing)")
                  for name, c in r["crossover"].items()]
    return lines


@register("cost", "chapter 9: forward+backward time against length for recurrence and attention, crossover",
          chapter=9, render=render_cost)
def cost(scale: str = "quick", seeds=(0,), device=None, progress: bool = False) -> dict:
    """Chapter 9's time-against-length measurement at ``scale``, once per seed (the seed sets weights and inputs)."""
    s = SETTINGS[scale]
    runs = []
    for seed in seeds:
        g = seed_everything(seed)
        layers = cost_layers(s["d"], device)
        seconds, ns_of = time_against_length(layers, s["ns"], s["n_max"], batch=s["batch"], d=s["d"], repeats=s["repeats"],
                                             short_rounds=s.get("short_rounds"), generator=g, device=device)
        k = s["fit_last"]
        slope = {name: fit_slope(ns_of[name][-k:], t[-k:]) for name, t in seconds.items()}
        common = ns_of["nn.LSTM"]
        cross = {name: crossover(common, seconds["nn.LSTM"], seconds[name][: len(common)])
                 for name in ("attention, by hand", "attention, fused")}
        runs.append({"seed": seed, "ns": ns_of, "seconds": seconds, "slope": slope, "crossover": cross})
    return {"settings": s, "runs": runs}
