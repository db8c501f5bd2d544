"""The RG-LRU's fast forms (chapter 14) against its loop, forward + backward, at n = 256 and 1024.

    PYTHONPATH=code python code/benchmarks/rglru.py [--rounds 5] [--lengths 256 1024]

Timed interleaved (one call of each form per round, in turn), as ``scans.py`` does for the families of
chapters 12–13; the table shows the min and median over rounds and the loop's median divided by the
form's (below 1 the form is *slower* than the loop on this machine). Batch 4, width D = 64, chunks of √n.
"""
from __future__ import annotations

import argparse
import statistics
import time

import torch

from seqlab.ops import rglru


def call(form, kw):
    leaves = {k: v.detach().requires_grad_(True) if isinstance(v, torch.Tensor) else v for k, v in kw.items()}
    y, _ = form(**leaves)
    y.sum().backward()


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--rounds", type=int, default=5)
    ap.add_argument("--lengths", type=int, nargs="+", default=[256, 1024])
    ap.add_argument("--threads", type=int, default=1)
    args = ap.parse_args()
    torch.set_num_threads(args.threads)
    print(f"torch {torch.__version__}, {args.threads} thread(s), {args.rounds} rounds, forward + backward")
    print(f"{'form':9s} {'n':>5s} {'min (ms)':>9s} {'median (ms)':>12s} {'loop/form':>10s}")
    for n in args.lengths:
        g = torch.Generator().manual_seed(n)
        B, D = 4, 64
        kw = dict(x=torch.randn(B, n, D, generator=g), W_a=torch.randn(D, D, generator=g) / D ** 0.5,
                  b_a=torch.zeros(D), W_x=torch.randn(D, D, generator=g) / D ** 0.5, b_x=torch.zeros(D),
                  Lambda=rglru.rglru_lambda_init(D, generator=g), chunk=int(n ** 0.5))
        forms = {f: fn for f, fn in rglru.RGLRU.forms.items() if f != "step"}  # step is the loop by another name
        times = {f: [] for f in forms}
        for fn in forms.values():  # warm-up
            call(fn, kw)
        for _ in range(args.rounds):
            for f, fn in forms.items():
                t0 = time.perf_counter()
                call(fn, kw)
                times[f].append(time.perf_counter() - t0)
        loop = statistics.median(times["loop"])
        for f, ts in times.items():
            med = statistics.median(ts)
            print(f"{f:9s} {n:5d} {min(ts) * 1e3:9.2f} {med * 1e3:12.2f} {loop / med:10.2f}")


if __name__ == "__main__":
    main()
