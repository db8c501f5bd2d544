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
"""
from __future__ import annotations

import datetime
import json
import os
import platform
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import Callable

import torch

SCALES = ("tiny", "quick", "cpu", "full")  # "cpu": a recorded CPU study, for the experiments that list it


@dataclass(frozen=True)
class Experiment:
    """One registered experiment: ``fn(scale=..., seeds=..., device=..., progress=...) -> dict`` of results (chapter 10)."""

    name: str
    summary: str
    chapter: int
    fn: Callable[..., dict]
    scales: tuple[str, ...] = ("tiny", "quick", "full")


REGISTRY: dict[str, Experiment] = {}


def register(name: str, summary: str, chapter: int, scales: tuple[str, ...] = ("tiny", "quick", "full")):
    """Decorator: add ``fn`` to ``REGISTRY`` under ``name`` with a one-line ``summary`` for ``--help``; ``scales``
    are the scales it runs at (chapter 10)."""

    def add(fn):
        if name in REGISTRY:
            raise ValueError(f"an experiment called {name!r} is already registered")
        REGISTRY[name] = Experiment(name, summary, chapter, fn, tuple(scales))
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
    """Run experiment ``name`` and return its results with the environment: what the command writes (chapter 10)."""
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
    results = get(name).fn(scale=scale, seeds=seeds, device=device, progress=progress)
    return {"experiment": name, "scale": scale, "seeds": seeds, "processes": world_size(), **environment(device),
            "results": results}


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

__all__ = ["Experiment", "REGISTRY", "SCALES", "register", "get", "environment", "run", "write", "load", "results_dir",
           "distributed", "sequences", "recurrence", "attention", "encoder_decoder", "cost", "scaling", "induction", "recall", "ssm",
           "hybrid", "hybrid_steps", "hybrid_lr", "architectures", "longrange"]
