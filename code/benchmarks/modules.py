"""seqlab's modules against PyTorch's built-ins, timed side by side in one run.

Run from the repository root (``make bench`` runs it)::

    python code/benchmarks/modules.py                       # CPU, default sizes
    python code/benchmarks/modules.py --device cuda --rounds 20
    python code/benchmarks/modules.py --json results/bench-modules.json --markdown results/bench-modules.md

Each row is one forward + backward pass of a seqlab module and of the
PyTorch module it is tested equal to (``code/tests``), with the *same*
weights, on the same input. The calls are interleaved (A, B, A, B, ...) after
a warm-up, so that load on a shared machine slows both alike, and the
ratio seqlab / PyTorch is taken from the minimum of the rounds (the quietest
moment of each) with the median beside it. Goals (issue "experiments at
scale"): every ``fused`` form within 1.5x of the built-in, judged on both
ratios: "met" when the minimum and the median are within it, "met on the
fastest calls only" when just the minimum is. The hand-written
forms (``loop``, ``parallel``) are listed too, to show what a Python loop over
time or a materialised attention matrix costs; they have no goal.

The script reports; it never fails on time (times belong to the machine, not
to the code). The JSON and Markdown it writes record the machine, the
versions and the command.
"""
from __future__ import annotations

import argparse
import datetime
import json
import os
import platform
import sys
from pathlib import Path

import torch
from torch import nn

import seqlab
from seqlab import measure
from seqlab.config import configure_threads
from seqlab.models import GRU, LSTM, RNN, MultiHeadAttention, TransformerBlock

FUSED_GOAL = 1.5


def _fwd_bwd(fn, *inputs):
    """A closure that runs ``fn(*inputs)`` forward and backward (gradients w.r.t. the parameters and inputs)."""
    def call():
        out = fn(*inputs)
        y = out[0] if isinstance(out, tuple) else out
        y.sum().backward()
    return call


def recurrent_pairs(B: int, T: int, D: int, H: int, device):
    """(name, ours, theirs) for the RNN, LSTM and GRU stacks (2 layers), every form of ours."""
    x = torch.randn(B, T, D, device=device, requires_grad=True)  # (B, T, D)
    for ours_cls, torch_cls in ((RNN, nn.RNN), (LSTM, nn.LSTM), (GRU, nn.GRU)):
        theirs = torch_cls(D, H, num_layers=2, batch_first=True).to(device)
        for form in ("fused", "loop"):
            ours = ours_cls.from_torch(theirs)
            ours.form = form
            yield f"{ours_cls.__name__} (2 layers) form={form!r}", form, _fwd_bwd(ours, x), _fwd_bwd(theirs, x)


def attention_pairs(B: int, T: int, d: int, heads: int, device):
    """(name, ours, theirs) for causal multi-head attention and a Pre-Norm Transformer block."""
    x = torch.randn(B, T, d, device=device, requires_grad=True)  # (B, T, d)
    mask = torch.ones(T, T, dtype=torch.bool, device=device).triu(1)  # True = may NOT attend (PyTorch's float/bool mask)
    mha = nn.MultiheadAttention(d, heads, batch_first=True).to(device)
    for form in ("fused", "parallel"):
        ours = MultiHeadAttention.from_torch(mha)
        ours.form = form
        yield (f"MultiHeadAttention causal form={form!r}", form,
               _fwd_bwd(lambda x: ours(x, x, x, causal=True), x),
               _fwd_bwd(lambda x: mha(x, x, x, attn_mask=mask, need_weights=False, is_causal=True), x))
    layer = nn.TransformerEncoderLayer(d, heads, 4 * d, dropout=0.0, batch_first=True, norm_first=True).to(device)
    for form in ("fused", "parallel"):
        block = TransformerBlock.from_torch(layer)
        yield (f"TransformerBlock Pre-Norm causal form={form!r}", form,
               _fwd_bwd(lambda x: block(x, causal=True, form=form), x),
               _fwd_bwd(lambda x: layer(x, src_mask=mask, is_causal=True), x))


def run(device: str, rounds: int, sizes: dict) -> dict:
    device = torch.device(device)
    torch.manual_seed(0)
    rows = []
    pairs = list(recurrent_pairs(sizes["B"], sizes["T"], sizes["d"], sizes["d"], device))
    pairs += list(attention_pairs(sizes["B"], sizes["T"], sizes["d"], sizes["heads"], device))
    for name, form, ours, theirs in pairs:
        t = measure.time_calls({"seqlab": ours, "torch": theirs}, warmup=2, repeats=rounds, device=device)
        ratio_min = t["seqlab"].min / t["torch"].min
        rows.append(dict(module=name, form=form, seqlab_ms=1e3 * t["seqlab"].min, torch_ms=1e3 * t["torch"].min,
                         ratio_min=ratio_min, ratio_median=t["seqlab"].median / t["torch"].median,
                         goal=FUSED_GOAL if form == "fused" else None,
                         meets_goal=(ratio_min <= FUSED_GOAL) if form == "fused" else None,
                         meets_goal_median=(t["seqlab"].median / t["torch"].median <= FUSED_GOAL)
                         if form == "fused" else None))
        print(f"{name:48s} seqlab {rows[-1]['seqlab_ms']:9.2f} ms  torch {rows[-1]['torch_ms']:9.2f} ms  "
              f"ratio {ratio_min:6.2f} (median {rows[-1]['ratio_median']:.2f})", flush=True)
    return dict(benchmark="modules", device=measure.device_name(device), platform=platform.platform(),
                python=platform.python_version(), torch=torch.__version__, seqlab=seqlab.__version__,
                threads=torch.get_num_threads(), date=datetime.datetime.now(datetime.timezone.utc).isoformat(timespec="seconds"),
                load_average=os.getloadavg()[0] if hasattr(os, "getloadavg") else None,
                command="python " + " ".join(sys.argv), sizes=sizes, rounds=rounds, rows=rows)


def markdown(result: dict) -> str:
    """The result as a Markdown table with the machine it ran on (included by the book's benchmark page)."""
    s = result["sizes"]
    lines = [f"Measured on {result['device']}, PyTorch {result['torch']}, "
             f"Python {result['python']}, {result['date']}; forward + backward, batch {s['B']}, length {s['T']}, width {s['d']}, "
             f"{s['heads']} heads; times: the minimum of {result['rounds']} interleaved rounds; ratios: from the minimum and from the median (the goal is judged on both)"
             + (f"; load average {result['load_average']:.1f} when it finished" if result.get("load_average") is not None else "")
             + f". Command: `{result['command']}`.", "",
             "| module | seqlab (ms) | PyTorch (ms) | ratio (min) | ratio (median) | goal |",
             "|---|---|---|---|---|---|"]
    for r in result["rows"]:
        if r["goal"] is None:
            goal = "—"
        elif r["meets_goal"] and r.get("meets_goal_median", r["ratio_median"] <= r["goal"]):
            goal = f"≤ {r['goal']}: met"
        elif r["meets_goal"]:
            goal = f"≤ {r['goal']}: met on the fastest calls only (median {r['ratio_median']:.2f})"
        else:
            goal = f"≤ {r['goal']}: **not met**"
        lines.append(f"| {r['module']} | {r['seqlab_ms']:.2f} | {r['torch_ms']:.2f} | {r['ratio_min']:.2f} | "
                     f"{r['ratio_median']:.2f} | {goal} |")
    return "\n".join(lines) + "\n"


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--device", default="cpu", choices=["cpu", "cuda"])
    p.add_argument("--rounds", type=int, default=7, help="timed rounds per pair (default 7)")
    p.add_argument("--batch", type=int, default=8)
    p.add_argument("--length", type=int, default=256)
    p.add_argument("--width", type=int, default=128)
    p.add_argument("--heads", type=int, default=4)
    p.add_argument("--json", type=Path, help="write the result as JSON here")
    p.add_argument("--markdown", type=Path, help="write the table as Markdown here")
    a = p.parse_args(argv)
    for name in ("rounds", "batch", "length", "width", "heads"):
        if getattr(a, name) < 1:
            p.error(f"--{name} must be a positive integer, got {getattr(a, name)}")
    if a.width % a.heads:
        p.error(f"--width must be divisible by --heads, got {a.width} and {a.heads}")
    if a.device == "cuda" and not torch.cuda.is_available():
        p.error("--device cuda was asked for but torch.cuda.is_available() is False")
    configure_threads()  # the package's thread policy (SEQLAB_THREADS, default 1), recorded in the result
    result = run(a.device, a.rounds, dict(B=a.batch, T=a.length, d=a.width, heads=a.heads))
    for path, text in ((a.json, json.dumps(result, indent=1) + "\n"), (a.markdown, markdown(result))):
        if path is not None:
            path.parent.mkdir(parents=True, exist_ok=True)
            path.write_text(text)
    return 0


if __name__ == "__main__":
    sys.exit(main())
