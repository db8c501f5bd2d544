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
Outside ``torchrun`` all of this is a plain loop.
"""
from __future__ import annotations

import os
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
        dist.init_process_group("nccl" if device.type == "cuda" else "gloo")
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


def map_runs(fn: Callable, configs: Sequence) -> list:
    """``[fn(c) for c in configs]`` with the configurations spread over the ranks (chapter 10).

    Rank r runs configurations r, r + W, r + 2W, ... of W processes; every rank
    returns the whole list, in the order of ``configs``.
    """
    configs = list(configs)
    n, r = world_size(), rank()
    mine = [(i, fn(c)) for i, c in enumerate(configs) if i % n == r]
    if n == 1:
        return [result for _, result in mine]
    parts: list = [None] * n
    dist.all_gather_object(parts, mine)
    by_index = dict(pair for part in parts for pair in part)
    return [by_index[i] for i in range(len(configs))]


def teardown() -> None:
    """Leave the process group, if one was joined (chapter 10)."""
    if dist.is_available() and dist.is_initialized():
        dist.destroy_process_group()
