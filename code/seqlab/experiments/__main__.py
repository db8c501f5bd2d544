"""``python -m seqlab.experiments NAME [--scale ...] [--seeds ...] [--device ...] [--out FILE]`` (chapter 10).

Runs one registered experiment, writes its results file (JSON) with the device, versions, date,
scale, seeds and this exact command, and prints its summary (``seqlab.experiments.summarize``).
``--help`` lists the experiments.
Under ``torchrun --nproc_per_node N -m seqlab.experiments ...`` the independent runs of a sweep
are spread over N processes (``seqlab.experiments.distributed``) and rank 0 writes the file.
"""
from __future__ import annotations

import argparse
import sys

from . import REGISTRY, SCALES, results_dir, run, summarize, write
from ..config import configure_threads, progress_enabled
from .distributed import rank, teardown, world_size


def parser() -> argparse.ArgumentParser:
    width = max(len(name) for name in REGISTRY) + 1
    listing = "\n".join(f"  {e.name:{width}s} {e.summary}" for e in sorted(REGISTRY.values(), key=lambda e: e.chapter))
    p = argparse.ArgumentParser(
        prog="python -m seqlab.experiments",
        description="Run one of the course's experiments at a given scale and write its results file.",
        epilog="experiments:\n" + listing, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("name", choices=sorted(REGISTRY), metavar="NAME", help="the experiment (listed below)")
    p.add_argument("--scale", choices=SCALES, default="quick",
                   help="tiny (a smoke test, seconds), quick (the chapter's own setting: seconds to minutes on a CPU), "
                        "cpu (a recorded CPU study, hours; scaling only) or full (a GPU; hours on a CPU)")
    p.add_argument("--seeds", type=int, nargs="+", default=[0], help="seeds to run (default: 0)")
    p.add_argument("--device", choices=("cpu", "cuda"), default=None, help="default: cuda when present, else cpu")
    p.add_argument("--out", default=None, help="the results file (default: results/NAME.json)")
    p.add_argument("--no-progress", dest="progress", action="store_false", default=progress_enabled(),
                   help="no progress bars (default: a bar over the runs of a sweep and one per training run, "
                        "with an estimate of the time; SEQLAB_PROGRESS=0 also turns them off)")
    return p


def main(argv: list[str] | None = None) -> int:
    argv = sys.argv[1:] if argv is None else argv
    p = parser()
    args = p.parse_args(argv)
    if len(set(args.seeds)) != len(args.seeds):
        p.error(f"--seeds must not repeat a seed, got {args.seeds}")
    try:
        configure_threads()  # the command's thread policy: one intra-op thread unless SEQLAB_THREADS says otherwise
    except (TypeError, ValueError) as err:
        p.error(str(err))
    try:
        record = run(args.name, scale=args.scale, seeds=args.seeds, device=args.device, progress=args.progress)
        me, processes = rank(), world_size()
    except ValueError as err:  # e.g. --device cuda without a GPU
        print(f"error: {err}", file=sys.stderr)
        return 2
    finally:
        teardown()  # under torchrun: every rank has the gathered results; leave the group
    if me != 0:
        return 0  # rank 0 writes the file and the summary
    out = args.out or str(results_dir() / f"{args.name}.json")
    launcher = ["python"] if processes == 1 else ["torchrun", "--standalone", f"--nproc_per_node={processes}"]
    path = write(record, out, [*launcher, "-m", "seqlab.experiments", *argv])
    print(summarize(record))
    print(f"{args.name} at scale {args.scale!r}, seeds {args.seeds}, on {record['device']}: "
          f"{record['results']['seconds']:.0f} s; results written to {path}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
