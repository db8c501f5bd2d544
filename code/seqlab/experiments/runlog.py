"""Resumable sweeps: each finished run appended to a log as it completes, a rerun skips the runs already there (chapter 12).

A recorded sweep of many training runs may be stopped (a session ends, a machine is
lent for an hour) long before it is done. ``map_logged`` runs ``fn`` over the configurations
like ``distributed.map_runs`` (spread over ``torchrun``'s processes), but first reads the
sweep's log — one JSON line per finished run — and runs only the configurations not in it;
each run's result is appended (and flushed) the moment it finishes, by whichever process ran
it. Rerunning the same command therefore picks up where the last one stopped, and the
results file it writes at the end holds every run, old and new, in the order of the grid.

A logged run is reused when its configuration is in the grid and its fingerprint matches: the
fingerprint covers the settings *of one run* (the task, the steps, the batch — not the lists that
span the grid), so extending a grid (another learning rate, another seed) reruns only the new points.

The log is ``results/runs/NAME-SCALE.jsonl`` (``SEQLAB_RUNLOG_DIR`` moves it; set to an empty
string it turns logging off). At the ``tiny`` scale (the tests' smoke runs) nothing is logged
unless ``SEQLAB_RUNLOG_DIR`` is set. A line records the run's configuration and a fingerprint
of the sweep's settings, so a log written under other settings is never mistaken for this one, and
where the run was made (``made``: its device and the date it finished), so a sweep resumed on another
machine says which runs came from which (``made_on``).
"""
from __future__ import annotations

import datetime
import hashlib
import json
import os
import statistics
from pathlib import Path
from typing import Any, Callable, Sequence

from .distributed import map_runs


def fingerprint(settings: dict) -> str:
    """A short hash of a sweep's settings (JSON with sorted keys), stored with every logged run (chapter 12)."""
    if not isinstance(settings, dict):
        raise TypeError(f"settings must be a dict, got {type(settings).__name__}")
    return hashlib.sha256(json.dumps(settings, sort_keys=True, default=str).encode()).hexdigest()[:12]


def log_path(name: str, scale: str) -> Path | None:
    """Where the sweep ``name`` at ``scale`` logs its runs, or None when it does not log (chapter 12)."""
    if not isinstance(name, str) or not name:
        raise ValueError(f"name must be a non-empty string, got {name!r}")
    folder = os.environ.get("SEQLAB_RUNLOG_DIR")
    if folder is None:
        if scale == "tiny":
            return None
        from . import results_dir

        folder = str(results_dir() / "runs")
    if folder == "":
        return None
    return Path(folder) / f"{name}-{scale}.jsonl"


def read(path: Path | None, fp: str) -> dict[str, dict]:
    """The finished runs in ``path`` with fingerprint ``fp``, by key; a torn last line (a killed run) is skipped (chapter 12)."""
    return {entry["key"]: entry["result"] for entry in _entries(path, fp) if "key" in entry and "result" in entry}


def _entries(path: Path | None, fp: str):
    """Every line of the log at ``path`` written under fingerprint ``fp``, as a dict; a line cut short when a process
    was killed mid-write is skipped (chapter 12)."""
    if path is None or not path.exists():
        return
    for line in path.read_text(encoding="utf-8").splitlines():
        try:
            entry = json.loads(line)
        except json.JSONDecodeError:
            continue
        if isinstance(entry, dict) and entry.get("fingerprint") == fp:
            yield entry


def _key(config) -> str:
    return json.dumps(config, sort_keys=True, default=str)


def per_run(settings: dict, grid_keys) -> dict:
    """``settings`` without the keys that only list the grid's points (chapter 12): what one run depends on."""
    return {k: v for k, v in settings.items() if k not in set(grid_keys)}


def made_on(path: Path | None, fp: str) -> dict[str, int]:
    """How many of the finished runs in ``path`` with fingerprint ``fp`` each device made (chapter 12); lines
    written before devices were recorded count as ``"unrecorded"``."""
    counts: dict[str, int] = {}
    for entry in _entries(path, fp):
        where = entry.get("made", {}).get("device", "unrecorded")
        counts[where] = counts.get(where, 0) + 1
    return counts


def map_logged(fn: Callable, configs: Sequence, *, path: Path | None, settings: dict, progress: bool = False,
               desc: str = "runs", also_accept: Sequence[str] = (), device=None) -> list:
    """``[fn(c) for c in configs]``, skipping the configurations already in the log at ``path`` (chapter 12).

    ``configs`` must be JSON-serialisable (tuples of numbers and strings); ``fn`` returns a
    JSON-serialisable dict; ``settings`` are those one run depends on (``per_run``). Lines with a
    fingerprint in ``also_accept`` are reused too (logs written before a change of what is
    fingerprinted, under the same per-run settings). ``device``: the device ``fn`` runs on (None: ``get_device()``,
    what the experiments use when given none), recorded by name with each line.
    With ``path`` None this is ``distributed.map_runs``.
    """
    configs = list(configs)
    if path is None:
        return map_runs(fn, configs, progress=progress, desc=desc)
    import torch

    from ..config import get_device
    from ..measure import device_name

    where = device_name(torch.device(device) if device is not None else get_device())
    fp = fingerprint(settings)
    done = {}
    for accepted in (*also_accept, fp):
        done.update(read(path, accepted))
    todo = [c for c in configs if _key(c) not in done]
    path.parent.mkdir(parents=True, exist_ok=True)

    def run_and_log(config):
        result = fn(config)
        made = {"device": where, "date": datetime.datetime.now(datetime.timezone.utc).isoformat(timespec="seconds")}
        line = json.dumps({"fingerprint": fp, "key": _key(config), "result": result, "made": made}) + "\n"
        with open(path, "a", encoding="utf-8") as f:  # one write per line: appends from two processes do not interleave
            f.write(line)
            f.flush()
            os.fsync(f.fileno())
        return result

    if progress and todo != configs:
        import sys

        print(f"{desc}: {len(configs) - len(todo)} of {len(configs)} runs already in {path}; running the other "
              f"{len(todo)}", file=sys.stderr)
    new = dict(zip((_key(c) for c in todo), map_runs(run_and_log, todo, progress=progress, desc=desc)))
    return [done[_key(c)] if _key(c) in done else new[_key(c)] for c in configs]


def choose_rate(runs: list[dict], group: Callable[[dict], Any], score: Callable[[dict], float], *,
                lrs: Sequence[float] | None = None, lower: bool = True, tie: Callable[[dict], float] | None = None,
                tune_seed: int | None = None) -> dict:
    """The learning rate each group of a sweep would choose, and whether its grid brackets it (chapters 11 to 15).

    Per key ``group(run)``: the mean of ``score(run)`` over the seeds at each rate, the rate whose mean is
    best (``lower``: the lowest, for a loss or a step count; else the highest, for an accuracy), whether
    it lies strictly inside the grid, and the runs of every seed at that rate, by seed. ``tie(run)``: a
    second score, lower better, whose mean breaks a tie; a tie left goes to the rate first in ``lrs``
    (default: the rates the group ran, in the order they first appear). A NaN mean (a diverged run)
    counts as the worst. ``tune_seed``: choose on that seed's runs alone (a sweep that ran the whole grid
    on one seed and the others at its choice, ``map_tuned``); every seed's runs at that rate are returned.

    ``{key: {"mean": [[lr, mean], ...], "lr": best, "bracketed": bool, "runs": [...]}}``.
    """
    out = {}
    for key in dict.fromkeys(group(r) for r in runs):
        mine = [r for r in runs if group(r) == key]
        grid = list(lrs) if lrs is not None else list(dict.fromkeys(r["lr"] for r in mine))
        mean, order = {}, {}
        for lr in grid:
            rs = [r for r in mine if r["lr"] == lr and (tune_seed is None or r["seed"] == tune_seed)]
            if rs:
                m = statistics.mean(score(r) for r in rs)
                mean[lr] = m
                worst = m != m
                order[lr] = (worst, (m if lower else -m) if not worst else 0.0,
                             statistics.mean(tie(r) for r in rs) if tie is not None else 0.0)
        if not mean:
            raise ValueError(f"choose_rate: no run{'' if tune_seed is None else f' of tune_seed={tune_seed}'} at the "
                             f"rates {grid} in group {key!r}")
        best = min(order, key=order.get)  # the first of equal keys: the rate listed first
        ordered = sorted(grid)
        out[key] = {"mean": [[lr, m] for lr, m in mean.items()], "lr": best,
                    "bracketed": ordered[0] < best < ordered[-1],
                    "runs": sorted((r for r in mine if r["lr"] == best), key=lambda r: r.get("seed", 0))}
    return out


def edge_optimum(by_lr: dict[float, float], tol: float = 0.02) -> str | None:
    """``"low"`` or ``"high"`` when the best score of ``{lr: score}`` sits at that end of the grid and no inner
    learning rate comes within ``tol`` of it (the grid should be extended there); else None (chapter 12).
    A NaN score (a diverged run) counts as the worst."""
    by_lr = {lr: float("-inf") if v != v else v for lr, v in by_lr.items()}
    g = sorted(by_lr)
    i = max(range(len(g)), key=lambda j: by_lr[g[j]])  # ties: the smaller lr
    inner = [by_lr[lr] for lr in g[1:-1]]
    if 0 < i < len(g) - 1 or (inner and max(inner) >= by_lr[g[i]] - tol):
        return None
    return "low" if i == 0 else "high"


def brackets(chosen: dict, tol: float = 0.02) -> bool:
    """Whether one group of ``choose_rate`` has a grid that brackets its optimum or is flat at the edge where it lies:
    three rates or more, and no edge optimum that an inner rate fails to come within ``tol`` of (``edge_optimum``;
    chapters 12 and 15). An edge optimum with an inner rate within ``tol`` passes: the score is flat at that end as
    far as the grid reaches, not worth widening, though the grid does not show that no rate past the end is better."""
    return len(chosen["mean"]) >= 3 and edge_optimum(dict(map(tuple, chosen["mean"])), tol) is None


def map_tuned(fn: Callable, cells: Sequence[tuple], lrs: Sequence[float], seeds: Sequence[int], *,
              score: Callable[[dict], float], max_widen: int = 0, tol: float = 0.02, **log) -> tuple[list[tuple], list]:
    """Tune on the first seed, replicate on the others: the configurations run and their results (chapters 12, 15).

    Every ``cell`` (a tuple) runs at every learning rate of ``lrs`` with ``seeds[0]``, as configuration
    ``(*cell, lr, seed)``. Where a cell's best ``score`` (a validation metric) lies at an end of the
    grid and no inner learning rate comes within ``tol`` of it, the grid is extended past that end by
    the grid's own step (up to ``max_widen`` more rates for that cell). Then each other seed runs the
    cell once, at the learning rate whose first-seed run scored highest (ties: the smaller lr).
    A grid of k learning rates costs k + (seeds − 1) runs per cell instead of k · seeds. ``log`` is
    passed to ``map_logged`` (path, settings, progress, desc, also_accept), so every phase resumes.
    """
    seeds, lrs = list(seeds), sorted(lrs)
    if not seeds or not lrs:
        raise ValueError(f"map_tuned needs at least one seed and one learning rate, got seeds={seeds}, lrs={list(lrs)}")
    first = [(*cell, lr, seeds[0]) for cell in cells for lr in lrs]
    runs = map_logged(fn, first, **log)
    for _ in range(max_widen if len(lrs) >= 2 else 0):
        scores: dict[tuple, dict[float, float]] = {}
        for c, r in zip(first, runs):
            scores.setdefault(tuple(c[:-2]), {})[c[-2]] = score(r)
        more = []
        for cell, by_lr in scores.items():
            g, edge = sorted(by_lr), edge_optimum(by_lr, tol)
            if edge is not None:
                lr = g[0] * g[0] / g[1] if edge == "low" else g[-1] * g[-1] / g[-2]
                more.append((*cell, float(f"{lr:.3g}"), seeds[0]))
        if not more:
            break
        first, runs = first + more, runs + map_logged(fn, more, **log)
    best_lr: dict[tuple, tuple[float, float]] = {}
    for c, r in zip(first, runs):
        cell, s = tuple(c[:-2]), score(r)
        if cell not in best_lr or s > best_lr[cell][1] or (s == best_lr[cell][1] and c[-2] < best_lr[cell][0]):
            best_lr[cell] = (c[-2], s)
    rest = [(*cell, best_lr[tuple(cell)][0], sd) for sd in seeds[1:] for cell in cells]
    return first + rest, runs + (map_logged(fn, rest, **log) if rest else [])
