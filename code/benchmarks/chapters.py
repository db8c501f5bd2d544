"""Chapter timings: each notebook quiet and beside one busy process, and one or two intra-op threads.

Run from the repository root (with the course's environment active)::

    python code/benchmarks/chapters.py                      # every chapter, 3 runs each
    python code/benchmarks/chapters.py 05 09 --runs 5       # chapters whose file name starts with 05 or 09
    python code/benchmarks/chapters.py 09 --threads 09      # also SEQLAB_THREADS=1 against 2 for chapter 9
    python code/benchmarks/chapters.py 05 --runs 1 --no-threads --json _build/chapter-bench.json
    python code/benchmarks/chapters.py --runner nbclient --runs 1 --no-threads   # as a bare jupyter-book build runs them

Each run executes one notebook in a child process, as ``make test`` and
``make book`` do: with ``pytest --nbval-lax`` (``--runner nbval``, the default;
every assert is checked, and the book reuses this execution), or with nbclient
as jupyter-cache runs a notebook when ``jupyter-book build`` is called on its own
(``--runner nbclient``, a per-cell timeout of ``--cell-timeout`` seconds, 600 as
in the book's configuration, so that a stalled cell shows as a failure), and reads that process tree's resources with
``os.wait4``: wall time, CPU time (user + system, the kernel process included)
and peak resident memory of the largest process (the notebook's kernel). A
"busy" run first starts one CPU-bound process (a Python loop spinning
forever), and kills it when the notebook is done: this is what a chapter meets
when the machine also runs a test suite, a browser or another build.

Quiet and busy runs of a chapter alternate (quiet, busy, quiet, busy, ...), so
that a slow drift of the machine affects both alike, and the script prints the
median of each with the ratio busy / quiet side by side. The course's goals
(DESIGN.md, "Budgets"): at most 45 s quiet on a 2-core machine, at most 2.5x
that beside one busy process, with every assert holding. The script reports
against them; it does not fail on time (times are the machine's, not the code's),
only on a failing notebook (exit status 1).

Environment passed to the notebooks: ``SEQLAB_PROGRESS=0``; ``SEQLAB_THREADS``
as given by ``--threads-values`` for the threads comparison and left as it is
otherwise (one intra-op thread by default, see ``seqlab.config.configure_threads``);
``SEQLAB_SEED_OFFSET`` if ``--seed-offset`` is given.
"""
from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
CHAPTERS = ROOT / "chapters"
QUIET_GOAL_S, BUSY_RATIO_GOAL = 45.0, 2.5


def find_chapters(prefixes: list[str]) -> list[Path]:
    """The chapter notebooks whose file names start with one of ``prefixes`` (all of them if none)."""
    notebooks = sorted(CHAPTERS.glob("[0-9][0-9]*_*.ipynb"))  # NN_name and sections NNb_name
    if not prefixes:
        return notebooks
    chosen = [nb for nb in notebooks if any(nb.name.startswith(p) for p in prefixes)]
    missing = [p for p in prefixes if not any(nb.name.startswith(p) for nb in notebooks)]
    if missing:
        raise SystemExit(f"no chapter notebook starts with {missing}; have {[nb.name for nb in notebooks]}")
    return chosen


class Spinner:
    """One CPU-bound process (``while True: pass``) for as long as the ``with`` block lasts."""

    def __enter__(self):
        self.proc = subprocess.Popen([sys.executable, "-c", "while True: pass"])
        time.sleep(0.2)                                   # let it reach the loop
        return self

    def __exit__(self, *exc):
        self.proc.kill()
        self.proc.wait()


NBCLIENT = """
import sys, nbformat
from nbclient import NotebookClient
nb = nbformat.read(sys.argv[1], as_version=4)
NotebookClient(nb, timeout=int(sys.argv[2]), kernel_name="python3", allow_errors=False,
               resources={"metadata": {"path": sys.argv[3]}}).execute()
"""
RUNNER = {"runner": "nbval", "cell_timeout": 600}


def run_notebook(nb: Path, env_extra: dict[str, str], busy: bool) -> dict:
    """Execute one notebook (nbval or nbclient, ``RUNNER``); return wall and CPU seconds, peak MB and whether it passed."""
    env = {**os.environ, "SEQLAB_PROGRESS": "0", **env_extra}
    env["PYTHONPATH"] = os.pathsep.join(filter(None, [str(ROOT / "code"), env.get("PYTHONPATH", "")]))
    if RUNNER["runner"] == "nbclient":
        cmd = [sys.executable, "-c", NBCLIENT, str(nb), str(RUNNER["cell_timeout"]), str(nb.parent)]
    else:
        cmd = [sys.executable, "-m", "pytest", "--nbval-lax", "--nbval-current-env", "-q", "-p", "no:cacheprovider", str(nb)]
    env.setdefault("SEQLAB_BUDGET_SLACK", "100")          # budgets are this script's report here, not a failure
    spinner = Spinner() if busy else None
    if spinner:
        spinner.__enter__()
    try:
        start = time.perf_counter()
        proc = subprocess.Popen(cmd, cwd=ROOT, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT)
        out = proc.stdout.read()
        _, status, usage = os.wait4(proc.pid, 0)           # the child's usage, its reaped descendants included
        wall = time.perf_counter() - start
    finally:
        if spinner:
            spinner.__exit__(None, None, None)
    ok = os.waitstatus_to_exitcode(status) == 0
    tail = out.decode(errors="replace").strip().splitlines()[-15:]
    return dict(wall=wall, cpu=usage.ru_utime + usage.ru_stime, peak_mb=usage.ru_maxrss / 1024, ok=ok,
                tail=None if ok else "\n".join(tail))


def median(runs: list[dict], key: str) -> float:
    return statistics.median(r[key] for r in runs)


def bench(nb: Path, runs: int, env_extra: dict[str, str], busy: bool = True) -> dict:
    """``runs`` quiet runs of ``nb`` (and as many busy ones, alternating); the runs and their medians."""
    quiet, loaded = [], []
    for i in range(runs):
        quiet.append(run_notebook(nb, env_extra, busy=False))
        print(f"  {nb.name} run {i + 1} quiet: {quiet[-1]['wall']:.1f} s wall, {quiet[-1]['cpu']:.1f} s CPU"
              + ("" if quiet[-1]["ok"] else "  FAILED"), flush=True)
        if busy:
            loaded.append(run_notebook(nb, env_extra, busy=True))
            print(f"  {nb.name} run {i + 1} busy:  {loaded[-1]['wall']:.1f} s wall, {loaded[-1]['cpu']:.1f} s CPU"
                  + ("" if loaded[-1]["ok"] else "  FAILED"), flush=True)
    result = dict(chapter=nb.name, env=env_extra, quiet=quiet, busy=loaded,
                  quiet_wall=median(quiet, "wall"), quiet_cpu=median(quiet, "cpu"),
                  peak_mb=max(r["peak_mb"] for r in quiet + loaded))
    if busy:
        result["busy_wall"] = median(loaded, "wall")
        result["ratio"] = result["busy_wall"] / result["quiet_wall"]
    result["ok"] = all(r["ok"] for r in quiet + loaded)
    return result


def table(results: list[dict]) -> str:
    head = f"{'chapter':32s} {'env':18s} {'quiet s':>8s} {'CPU s':>7s} {'busy s':>8s} {'busy/quiet':>10s} {'peak MB':>8s}  status"
    lines = [head, "-" * len(head)]
    for r in results:
        env = " ".join(f"{k.removeprefix('SEQLAB_')}={v}" for k, v in r["env"].items()) or "default"
        busy = f"{r['busy_wall']:8.1f} {r['ratio']:10.2f}" if "ratio" in r else f"{'—':>8s} {'—':>10s}"
        notes = []
        if not r["ok"]:
            notes.append("FAILED")
        if r["quiet_cpu"] > QUIET_GOAL_S:
            notes.append(f"CPU over {QUIET_GOAL_S:.0f} s")
        if r.get("ratio", 0) > BUSY_RATIO_GOAL:
            notes.append(f"busy over {BUSY_RATIO_GOAL}x")
        lines.append(f"{r['chapter']:32s} {env:18s} {r['quiet_wall']:8.1f} {r['quiet_cpu']:7.1f} {busy} "
                     f"{r['peak_mb']:8.0f}  {', '.join(notes) or 'ok'}")
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("chapters", nargs="*", help="prefixes of chapter file names (default: every chapter)")
    parser.add_argument("--runs", type=int, default=3, help="runs per chapter and condition (median reported)")
    parser.add_argument("--no-busy", action="store_true", help="quiet runs only")
    parser.add_argument("--threads", metavar="CHAPTER", default=None,
                        help="also compare SEQLAB_THREADS values on this chapter (default: the first one chosen)")
    parser.add_argument("--threads-values", default="1,2", help="the SEQLAB_THREADS values to compare (default 1,2)")
    parser.add_argument("--no-threads", action="store_true", help="skip the threads comparison")
    parser.add_argument("--seed-offset", type=int, default=None, help="run with SEQLAB_SEED_OFFSET set to this")
    parser.add_argument("--json", type=Path, default=None, help="also write every run to this JSON file")
    parser.add_argument("--runner", choices=("nbval", "nbclient"), default="nbval",
                        help="nbval, as make test and make book run a notebook (default), or nbclient, as a bare jupyter-book build does")
    parser.add_argument("--cell-timeout", type=int, default=600, help="nbclient's per-cell timeout in seconds (default 600)")
    args = parser.parse_args(argv)
    if args.runs < 1:
        parser.error(f"--runs must be at least 1, got {args.runs}")
    if args.cell_timeout < 1:
        parser.error(f"--cell-timeout must be at least 1 second, got {args.cell_timeout}")
    RUNNER.update(runner=args.runner, cell_timeout=args.cell_timeout)

    notebooks = find_chapters(args.chapters)
    base_env = {} if args.seed_offset is None else {"SEQLAB_SEED_OFFSET": str(args.seed_offset)}
    print(f"{len(notebooks)} chapter(s), {args.runs} run(s) each, quiet" + ("" if args.no_busy else " and busy")
          + f"; {os.cpu_count()} CPUs; python {sys.version.split()[0]}; runner {args.runner}", flush=True)
    results = [bench(nb, args.runs, base_env, busy=not args.no_busy) for nb in notebooks]

    threads = []
    if not args.no_threads:
        nb = find_chapters([args.threads])[0] if args.threads else notebooks[0]
        print(f"threads comparison on {nb.name}", flush=True)
        for value in args.threads_values.split(","):
            threads.append(bench(nb, args.runs, {**base_env, "SEQLAB_THREADS": value.strip()}, busy=not args.no_busy))

    print("\nmedians over", args.runs, "run(s); CPU = user + system seconds of the notebook's processes")
    print(table(results))
    if threads:
        print("\nintra-op threads (SEQLAB_THREADS):")
        print(table(threads))
    for r in results + threads:
        for run in r["quiet"] + r["busy"]:
            if run["tail"]:
                print(f"\n{r['chapter']} failed; last lines:\n{run['tail']}")
    if args.json:
        args.json.parent.mkdir(parents=True, exist_ok=True)
        args.json.write_text(json.dumps(dict(date=time.strftime("%Y-%m-%d %H:%M"), cpus=os.cpu_count(), runner=args.runner,
                                             chapters=results, threads=threads), indent=1))
    return 0 if all(r["ok"] for r in results + threads) else 1


if __name__ == "__main__":
    sys.exit(main())
