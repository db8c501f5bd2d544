"""An experiment's independent runs spread over processes with ``torchrun`` (chapter 10).

A sweep is many independent training runs (a size, a learning rate, a seed). On
one machine with several GPUs — or several CPU cores — PyTorch's own launcher
starts one process per device and this module hands each process its share::

    torchrun --standalone --nproc_per_node 8 -m seqlab.experiments scaling --scale full   # 8 GPUs
    torchrun --standalone --nproc_per_node 2 -m seqlab.experiments scaling --scale tiny   # 2 CPU processes (gloo)

Under ``torchrun`` (``WORLD_SIZE`` > 1), ``setup`` joins the process group
(NCCL on CUDA, gloo on the CPU) and gives each rank its own GPU
(``cuda:LOCAL_RANK``); ``map_runs`` runs configuration ``i`` on rank
``i mod WORLD_SIZE`` and gathers every result on every rank in the original
order (``all_gather_object``), so rank 0 writes the same results file as a
single process would. Each run seeds itself, so the numbers do not depend on
how many processes shared the work (tested with two gloo processes).
Outside ``torchrun`` all of this is a plain loop. A process that joined the
group leaves it at exit (``teardown``, registered by ``setup``).
"""
from __future__ import annotations

import atexit
import datetime
import hashlib
import os
import sys
import time
from typing import Callable, Sequence

import torch
import torch.distributed as dist


def launched() -> bool:
    """True under ``torchrun`` with more than one process (``WORLD_SIZE`` > 1; chapter 10)."""
    try:
        return int(os.environ.get("WORLD_SIZE", "1")) > 1
    except ValueError:
        raise ValueError(f"WORLD_SIZE must be an integer, got {os.environ['WORLD_SIZE']!r}") from None


def setup(device: torch.device) -> torch.device:
    """Join the process group if launched by ``torchrun``; return this rank's device (chapter 10)."""
    if not launched():
        return device
    if not dist.is_initialized():
        # a long sweep's ranks may wait hours for each other at a gather (on a busy machine): not the default 30 min
        dist.init_process_group("nccl" if device.type == "cuda" else "gloo", timeout=datetime.timedelta(hours=12))
        # a process that exits still in the group aborts in the backend's threads ("terminate called without an
        # active exception", SIGABRT) about one time in three: leave it at exit, whatever the caller forgot
        atexit.register(teardown)
    if device.type == "cuda":
        local = int(os.environ.get("LOCAL_RANK", "0"))
        torch.cuda.set_device(local)
        device = torch.device("cuda", local)
    return device


def rank() -> int:
    """This process's rank, 0 outside a process group (chapter 10)."""
    return dist.get_rank() if dist.is_available() and dist.is_initialized() else 0


def world_size() -> int:
    """How many processes share the work, 1 outside a process group (chapter 10)."""
    return dist.get_world_size() if dist.is_available() and dist.is_initialized() else 1


def from_rank0(fn: Callable[[], object]) -> object:
    """``fn()`` computed on rank 0 and the same value returned on every rank (chapter 10).

    For what every rank must agree on but would measure differently, such as a sweep's timed cost
    estimate, which orders its configurations: ``map_runs`` needs one order on every rank. Outside a
    process group, simply ``fn()``.
    """
    if world_size() == 1:
        return fn()
    box = [fn() if rank() == 0 else None]
    dist.broadcast_object_list(box, src=0)
    return box[0]


def map_runs(fn: Callable, configs: Sequence, *, progress: bool = False, desc: str = "runs") -> list:
    """``[fn(c) for c in configs]`` with the configurations spread over the ranks (chapter 10).

    Rank r runs configurations r, r + W, r + 2W, ... of W processes; every rank
    returns the whole list, in the order of ``configs``. With ``progress``, rank 0
    shows a bar over its own runs and, once the first has finished, an estimate of
    the time its share takes (runs x the first run's seconds: a lower bound when
    later runs are larger, as the widths of a sweep grow).
    """
    configs = list(configs)
    n, r = world_size(), rank()
    if n > 1:  # rank r runs every n-th configuration of its own list: the lists must be the same on every rank
        digests: list = [None] * n
        dist.all_gather_object(digests, hashlib.sha256(repr(configs).encode()).hexdigest())
        if len(set(digests)) > 1:
            raise ValueError(f"{desc}: the ranks were given different configurations (in content or order), so their "
                             "shares would not cover the list; compute what orders them once (from_rank0)")
    indices = [i for i in range(len(configs)) if i % n == r]
    show = progress and r == 0
    bar = None
    if show:
        from tqdm.auto import tqdm

        bar = tqdm(total=len(indices), desc=desc, unit="run", file=sys.stderr)
    mine = []
    for k, i in enumerate(indices):
        start = time.perf_counter()
        mine.append((i, fn(configs[i])))
        if bar is not None:
            bar.update(1)
            if k == 0 and len(indices) > 1:
                first = time.perf_counter() - start
                bar.write(estimate(len(indices), first, desc, n), file=sys.stderr)
    if bar is not None:
        bar.close()
    if n == 1:
        return [result for _, result in mine]
    parts: list = [None] * n
    dist.all_gather_object(parts, mine)
    by_index = dict(pair for part in parts for pair in part)
    return [by_index[i] for i in range(len(configs))]


def estimate(runs: int, first_seconds: float, desc: str = "runs", processes: int = 1) -> str:
    """The line that says how long a sweep will take: ``runs`` x the first run's seconds (chapter 10)."""
    total = runs * first_seconds
    when = f"{total / 60:.1f} min" if total >= 60 else f"{total:.0f} s"
    per = f" on each of {processes} processes" if processes > 1 else ""
    return (f"{desc}: {runs} runs{per}; the first took {first_seconds:.1f} s, so about {when} in all "
            f"(at least: later runs may be larger)")


def teardown() -> None:
    """Leave the process group, if one was joined (chapter 10)."""
    if dist.is_available() and dist.is_initialized():
        dist.destroy_process_group()
