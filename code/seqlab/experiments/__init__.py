"""The course's experiments at any scale: one function per experiment, a chapter and a command share it (chapter 10).

A chapter runs a slice of an experiment live, within its minute; the whole of it runs from
the command line, on a CPU for longer or on a GPU::

    python -m seqlab.experiments --help
    python -m seqlab.experiments scaling --scale quick --seeds 0 1 --out /tmp/scaling-quick.json

Both call the function registered here under the experiment's name, so the page and the
command cannot drift apart. The command writes a results file (JSON) that records the
device, the versions, the date, the scale, the seeds and the exact command next to the
numbers; chapters plot such a file beside their live numbers, labelled as recorded, and
run unchanged where it is absent. Results files are written only by the command.

An experiment's function returns data only (settings, runs, fits); its renderer, registered with
it, turns those into the lines the command prints, and ``summarize(record)`` applies it to a
record, fresh from ``run`` or read back by ``load``.
"""
from __future__ import annotations

import datetime
import json
import os
import platform
import sys
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Callable

import torch

SCALES = ("tiny", "quick", "cpu", "full")  # "cpu": a recorded CPU study, for the experiments that list it


@dataclass(frozen=True)
class Experiment:
    """One registered experiment: ``fn(scale=..., seeds=..., device=..., progress=...) -> dict`` of results, and
    ``render(results) -> list[str]``, the lines the command prints from them (chapter 10)."""

    name: str
    summary: str
    chapter: int
    fn: Callable[..., dict]
    scales: tuple[str, ...] = ("tiny", "quick", "full")
    render: Callable[[dict], list[str]] | None = None
    settings: dict | None = None


REGISTRY: dict[str, Experiment] = {}


def register(name: str, summary: str, chapter: int, scales: tuple[str, ...] = ("tiny", "quick", "full"),
             render: Callable[[dict], list[str]] | None = None, settings: dict | None = None):
    """Decorator: add ``fn`` to ``REGISTRY`` under ``name`` with a one-line ``summary`` for ``--help``; ``scales``
    are the scales it runs at, ``render`` the function that turns its results into the lines the command prints
    (chapter 10). ``settings`` maps each scale to the settings a results file records, where they are not the
    module's ``SETTINGS`` (a module with two experiments, or a page's settings beside a study's)."""
    if render is not None and not callable(render):
        raise TypeError(f"render must be a function of the results, got {type(render).__name__}")

    def add(fn):
        if name in REGISTRY:
            raise ValueError(f"an experiment called {name!r} is already registered")
        REGISTRY[name] = Experiment(name, summary, chapter, fn, tuple(scales), render, settings)
        return fn

    return add


def get(name: str) -> Experiment:
    """The registered experiment ``name``; a ValueError lists the known ones otherwise (chapter 10)."""
    if name not in REGISTRY:
        raise ValueError(f"unknown experiment {name!r}; known: {', '.join(sorted(REGISTRY))}")
    return REGISTRY[name]


def environment(device: torch.device | str) -> dict:
    """What a results file records about where it was made: device, versions, date (chapter 10)."""
    from ..measure import device_name
    from .. import __version__

    return {"device": device_name(torch.device(device)), "torch": torch.__version__, "seqlab": __version__,
            "python": platform.python_version(), "date": datetime.datetime.now(datetime.timezone.utc).isoformat(timespec="seconds")}


def run(name: str, *, scale: str = "quick", seeds=(0,), device=None, progress: bool = False) -> dict:
    """Run experiment ``name`` and return its results with the environment: what the command writes (chapter 10).

    ``results["seconds"]`` is the wall-clock time of this call to the experiment; a resumed sweep counts only
    this call, not the runs it read back from its log.
    """
    if scale not in SCALES:
        raise ValueError(f"scale must be one of {SCALES}, got {scale!r}")
    if scale not in get(name).scales:
        raise ValueError(f"experiment {name!r} runs at the scales {get(name).scales}, got {scale!r}")
    seeds = list(seeds)
    if not seeds or not all(isinstance(s, int) and not isinstance(s, bool) for s in seeds):
        raise ValueError(f"seeds must be a non-empty list of ints, got {seeds!r}")
    from ..config import get_device
    from .distributed import setup, world_size

    device = setup(get_device(device))  # under torchrun: join the group, one GPU per rank
    start = time.perf_counter()
    results = get(name).fn(scale=scale, seeds=seeds, device=device, progress=progress)
    results = {**results, "seconds": round(time.perf_counter() - start, 1)}
    return {"experiment": name, "scale": scale, "seeds": seeds, "processes": world_size(), **environment(device),
            "results": results}


def summarize(record: dict) -> str:
    """The summary the command prints for ``record`` (what ``run`` returns or ``load`` reads): its experiment's
    renderer applied to ``record["results"]``, the lines joined by newlines (chapter 10).

    A record of an unknown experiment, or of one registered without a renderer, raises ValueError.
    """
    if not isinstance(record, dict):
        raise TypeError(f"record must be a dict (what run returns or load reads), got {type(record).__name__}")
    if not isinstance(record.get("results"), dict) or "experiment" not in record:
        raise ValueError(f"record must hold 'experiment' and a 'results' dict, got the keys {sorted(record)}")
    experiment = get(record["experiment"])  # an unknown one: ValueError naming the known ones
    if experiment.render is None:
        raise ValueError(f"experiment {experiment.name!r} was registered without a renderer (register(..., render=))")
    return "\n".join(experiment.render(record["results"]))


def mean_over(runs: list[dict], value: str | Callable[[dict], float], **match) -> float:
    """The mean of ``value`` (a key of a run, or a function of one) over the ``runs`` whose fields equal ``match``:
    a cell of a renderer's table, e.g. ``mean_over(runs, "accuracy", lag=5, cell="LSTM")`` (chapter 10). No run
    matching raises ValueError."""
    picked = [r for r in runs if all(r[k] == v for k, v in match.items())]
    if not picked:
        raise ValueError(f"no run has {match}")
    get_value = value if callable(value) else (lambda r: r[value])
    return sum(get_value(r) for r in picked) / len(picked)


def write(record: dict, path: str | Path, command: list[str]) -> Path:
    """Write ``record`` with the exact ``command`` to ``path`` (JSON); used only by ``python -m seqlab.experiments`` (chapter 10)."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    record = {**record, "command": " ".join(command)}
    path.write_text(json.dumps(record, indent=1) + "\n", encoding="utf-8")
    return path


REQUIRED = ("experiment", "scale", "seeds", "device", "torch", "seqlab", "date", "command", "results")


def load(path: str | Path, experiment: str | None = None) -> dict | None:
    """A results file as a dict, or None when there is none (chapters then say what they cannot show; chapter 10).

    A file that exists but lacks a field of ``REQUIRED``, or belongs to another experiment,
    raises ValueError rather than being plotted as if it were right.
    """
    path = Path(path)
    if not path.exists():
        return None
    record = json.loads(path.read_text(encoding="utf-8"))
    missing = [k for k in REQUIRED if k not in record]
    if missing:
        raise ValueError(f"{path} is not a results file of seqlab.experiments: it lacks {missing}")
    if experiment is not None and record["experiment"] != experiment:
        raise ValueError(f"{path} holds experiment {record['experiment']!r}, not {experiment!r}")
    if isinstance(record["device"], str):  # files written before device_name said "1 PyTorch thread"
        record["device"] = record["device"].replace(", 1 PyTorch threads", ", 1 PyTorch thread")
    return record


def results_dir() -> Path:
    """Where the command writes and chapters read results files (chapter 10).

    ``SEQLAB_RESULTS`` if set; else ``results/`` at the top of the source checkout this package is
    imported from (beside ``chapters/``); else, for an installed package, ``results/`` beside the
    working directory's ``chapters/`` or in the working directory itself.
    """
    if os.environ.get("SEQLAB_RESULTS", "").strip():
        return Path(os.environ["SEQLAB_RESULTS"]).expanduser()
    checkout = Path(__file__).resolve().parents[3]
    if (checkout / "chapters").is_dir() and (checkout / "code" / "seqlab").is_dir():
        return checkout / "results"
    here = Path.cwd()
    return (here.parent if here.name == "chapters" else here) / "results"


# importing a module registers its experiments, one module per idea, in chapter order
from . import distributed  # noqa: E402,F401
from . import sequences, recurrence, attention, encoder_decoder, cost, scaling, induction, recall, ssm, hybrid  # noqa: E402,F401
from . import hybrid_steps  # noqa: E402,F401
from . import hybrid_lr  # noqa: E402,F401
from . import architectures, longrange  # noqa: E402,F401
from . import parallel_rnn  # noqa: E402,F401
from . import norms  # noqa: E402,F401

__all__ = ["Experiment", "REGISTRY", "SCALES", "register", "get", "environment", "run", "summarize", "mean_over",
           "write", "load", "results_dir",
           "distributed", "sequences", "recurrence", "attention", "encoder_decoder", "cost", "scaling", "induction", "recall", "ssm",
           "hybrid", "hybrid_steps", "hybrid_lr", "architectures", "longrange", "parallel_rnn", "norms"]
