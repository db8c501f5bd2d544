"""Each fast form of the chapter 12–14 mixer families against its loop, forward + backward, at n = 256 and 1024.

    python code/benchmarks/scans.py [--rounds 5] [--lengths 256 1024] [--markdown results/bench-scans.md]

Forms are timed interleaved (``seqlab.measure.time_calls``: one call of each form per round, in
turn, each round starting one form later, so that each form follows each other equally often), so a busy
machine, and whatever one form's call leaves in the caches, fall on all of them alike; the table shows the min and the median over
rounds and the loop's median divided by the form's (the speed-up; below 1 the form is *slower*
than the loop on this machine). Sizes: batch 4, width 64 (linear attention: d_k = d_v = 64; SSMs:
D = 64 channels, N = 16 states; SSD: 8 heads of width 8, N = 16; RG-LRU, minGRU, minLSTM: D = H = 64);
chunks of 64 (linear attention; gated linear attention, whose chunks are one matrix product each when
their decay allows), 32 (SSD) and √n (selective scan, RG-LRU, minGRU, minLSTM), and blocks of 128 steps for the
selective scan's ``blocked`` form (``FORM_OPTIONS``). The selective scan's
and SSD's ``parallel`` forms are left out: O(n² D N) and O(n² H) memory. Gated linear attention's
``parallel`` form (O(n² d_k): half a gigabyte of pairwise decays at n = 1024) is timed at the shorter
lengths only: at n = 1024 one call takes seconds, and the forms timed after it in a round ran slower
(loop / chunked 7.6 with it, 8.6 without, in one run on this machine). Goal (issue 23): the
fastest form of each family at least 10 times its loop at n = 1024; the table says where it is not.
The ratios are comparative: the forms of one family are timed in the same rounds, so a slow spell of a
shared machine falls on all of them; the absolute times move from run to run. The header records the
machine, the date, the load average and the command.
"""
from __future__ import annotations

import argparse
import datetime
import os
import platform
import sys
from pathlib import Path

import torch
import torch.nn.functional as F

from seqlab import measure
from seqlab.ops import linear_attention as la
from seqlab.ops import minrnn, rglru, ssd, ssm

SPEEDUP_GOAL = 10.0
# Options that one form takes instead of its family's: the blocked form's chunk is a block of steps whose
# states stay in the cache (its two-level scan inside takes chunks of about √(2·block) steps).
FORM_OPTIONS = {("selective_scan", "blocked"): dict(chunk=128)}


def problems(n: int, g: torch.Generator):
    B, d, N = 4, 64, 16
    r = lambda *s: torch.randn(*s, generator=g)  # noqa: E731
    qkv = dict(q=r(B, n, d), k=r(B, n, d), v=r(B, n, d))
    log_A_real, A_imag = ssm.s4d_lin_init(d, N)
    return {
        "linear_attention": (la.LINEAR_ATTENTION, dict(qkv, chunk=64)),
        "gated_linear_attention": (la.GATED_LINEAR_ATTENTION,
                                   dict(qkv, log_alpha=F.logsigmoid(r(B, n, d) + 3), chunk=64)),
        "s4d": (ssm.S4D, dict(u=r(B, n, d), log_dt=torch.full((d,), -3.0), log_A_real=log_A_real, A_imag=A_imag,
                              B=r(d, N, 2), C=r(d, N, 2), D=r(d))),
        "selective_scan": (ssm.SELECTIVE_SCAN, dict(u=r(B, n, d), delta=F.softplus(r(B, n, d) - 2), A=-torch.rand(d, N),
                                                    B=r(B, n, N), C=r(B, n, N), D=r(d), chunk=int(n ** 0.5))),
        "ssd": (ssd.SSD, dict(x=r(B, 8, n, d // 8), dt=F.softplus(r(B, 8, n) - 2), B=r(B, n, N), C=r(B, n, N),
                              A=-torch.rand(8), D=r(8), chunk=32)),
        "mingru": (minrnn.MINGRU, dict(x=r(B, n, d), W_z=r(d, d) / d ** 0.5, b_z=r(d), W_h=r(d, d) / d ** 0.5,
                                       b_h=r(d), chunk=int(n ** 0.5))),
        "minlstm": (minrnn.MINLSTM, dict(x=r(B, n, d), W_f=r(d, d) / d ** 0.5, b_f=r(d), W_i=r(d, d) / d ** 0.5,
                                         b_i=r(d), W_h=r(d, d) / d ** 0.5, b_h=r(d), chunk=int(n ** 0.5))),
        "rglru": (rglru.RGLRU, dict(x=r(B, n, d), W_a=r(d, d) / d ** 0.5, b_a=torch.zeros(d), W_x=r(d, d) / d ** 0.5,
                                    b_x=torch.zeros(d), Lambda=rglru.rglru_lambda_init(d, generator=g),
                                    chunk=int(n ** 0.5))),
    }


def memory_passes(n: int, selective: dict, rounds: int) -> str:
    """The selective scan's fast forms in units of one pass over its states: the time of one elementwise product of
    two (B, T, D, N) tensors into a third at n = T, against the chunked and blocked forms' and the loop's forward +
    backward."""
    B, d, N = 4, 64, 16
    x, y = torch.randn(B, n, d, N), torch.randn(B, n, d, N)
    z = torch.empty_like(x)
    repeats = max(rounds, 5)
    one = measure.time_calls({"pass": lambda: torch.mul(x, y, out=z)}, repeats=repeats)["pass"].median
    mb = 3 * x.numel() * x.element_size() / 2 ** 20
    return (f"One pass over the selective scan's states at n = {n} (a product of two (B, T, D, N) = ({B}, {n}, {d}, {N}) "
            f"float32 tensors into a third: {mb:.0f} MiB read and written) takes {one * 1e3:.2f} ms, median of "
            f"{repeats}. The chunked form's forward + backward takes {selective['chunked'] / one:.0f} such passes' "
            f"time, the loop's {selective['loop'] / one:.0f}: a tenth of the loop would be "
            f"{selective['loop'] / 10 / one:.0f} passes. The blocked form does the chunked form's work block by block "
            f"(blocks of {FORM_OPTIONS[('selective_scan', 'blocked')]['chunk']} steps, whose states stay in the cache) "
            f"and recomputes the states in its backward pass: {selective['blocked'] / one:.0f} passes' time.")


def call(form, kw):
    leaves = {k: v.detach().requires_grad_(True) if isinstance(v, torch.Tensor) and v.is_floating_point() else v
              for k, v in kw.items()}
    y, _ = form(**leaves)
    y.sum().backward()


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--rounds", type=int, default=5)
    ap.add_argument("--lengths", type=int, nargs="+", default=[256, 1024])
    ap.add_argument("--threads", type=int, default=1)
    ap.add_argument("--markdown", type=Path, help="also write the table as Markdown here")
    args = ap.parse_args()
    if args.rounds < 1 or args.threads < 1 or min(args.lengths) < 1:
        ap.error("--rounds, --threads and every --lengths must be positive integers")
    torch.set_num_threads(args.threads)
    date = datetime.datetime.now(datetime.timezone.utc).isoformat(timespec="seconds")
    head = (f"Measured on {measure.device_name()}, PyTorch {torch.__version__}, Python {platform.python_version()}, "
            f"{date}; forward + backward, median and min of {args.rounds} interleaved rounds"
            + (f"; load average {os.getloadavg()[0]:.1f} when it started" if hasattr(os, "getloadavg") else "")
            + ". The ratios compare forms timed in the same rounds, so a slow spell of a shared machine falls on "
              "every form of a round; the times themselves move from run to run. Command: "
              f"`python {' '.join(sys.argv)}`.")
    print(head)
    rows = ["| family | form | n | min (ms) | median (ms) | loop / form |", "|---|---|---|---|---|---|"]
    print(f"{'family':24s} {'form':9s} {'n':>5s} {'min (ms)':>9s} {'median (ms)':>12s} {'loop/form':>10s}")
    best = {}  # family -> (speed-up, form) of its fastest form at the largest n
    selective = {}  # form -> median seconds of the selective scan at the largest n
    for n in args.lengths:
        g = torch.Generator().manual_seed(n)
        for name, (family, kw) in problems(n, g).items():
            forms = {f: fn for f, fn in family.forms.items() if f != "stream"}  # the stream form is the loop by another name
            if name in ("selective_scan", "ssd"):
                forms.pop("parallel")  # O(n²·D·N) memory: 1 GB at n = 256, 17 GB at n = 1024 (SSD: O(n² H))
            if name == "gated_linear_attention" and n > 256:
                forms.pop("parallel")  # O(n²·d_k): 0.5 GB at n = 1024, seconds a call, slows the forms after it
            t = measure.time_calls({f: (lambda fn=fn, kw_f={**kw, **FORM_OPTIONS.get((name, f), {})}: call(fn, kw_f))
                                    for f, fn in forms.items()}, repeats=args.rounds, rotate=True)
            for f, tf in t.items():
                speedup = t["loop"].median / tf.median
                print(f"{name:24s} {f:9s} {n:5d} {tf.min * 1e3:9.2f} {tf.median * 1e3:12.2f} {speedup:10.2f}")
                rows.append(f"| {name} | {f} | {n} | {tf.min * 1e3:.2f} | {tf.median * 1e3:.2f} | {speedup:.2f} |")
                if n == max(args.lengths) and f != "loop" and speedup > best.get(name, (0.0, ""))[0]:
                    best[name] = (speedup, f)
                if n == max(args.lengths) and name == "selective_scan":
                    selective[f] = tf.median
    summary = [f"| family | fastest form | loop / form at n = {max(args.lengths)} | at least {SPEEDUP_GOAL:g} |",
               "|---|---|---|---|"]
    for name, (speedup, f) in best.items():
        summary.append(f"| {name} | {f} | {speedup:.2f} | {'yes' if speedup >= SPEEDUP_GOAL else 'no'} |")
    print("\n".join(summary))
    traffic = memory_passes(max(args.lengths), selective, args.rounds)
    print(traffic)
    if args.markdown is not None:
        args.markdown.parent.mkdir(parents=True, exist_ok=True)
        args.markdown.write_text(head + f" Goal: the fastest form at least {SPEEDUP_GOAL:g} times its loop at n = {max(args.lengths)}."
                                 + "\n\n" + "\n".join(summary) + "\n\n" + traffic + "\n\n" + "\n".join(rows) + "\n")


if __name__ == "__main__":
    main()
