"""Multi-process training with ``torchrun``: DistributedDataParallel on gloo (CPU) or NCCL (GPU).

Launch any training script (or the test suite's ``support.distributed_demo``) as::

    PYTHONPATH=tests torchrun --nproc_per_node=2 -m support.distributed_demo --epochs 2

``torchrun`` starts one process per rank and sets ``RANK``, ``WORLD_SIZE``, ``LOCAL_RANK``,
``MASTER_ADDR`` and ``MASTER_PORT``; :func:`init_distributed` reads them and joins the group.
Without those variables everything here degrades to a single process (rank 0 of 1), so the same
code runs in a notebook. Inside :func:`reidbook.engine.fit` the model is wrapped in DDP when the
world has more than one process; gradients are averaged across ranks at each ``backward()``, so
every rank holds the same weights after every step. Only rank 0 writes checkpoints and prints.
"""
from __future__ import annotations

import os
from dataclasses import dataclass
from datetime import timedelta
from typing import Any, Callable

import torch
import torch.distributed as dist
from torch import nn

from reidbook.utils import resolve_device

__all__ = [
    "DistInfo", "init_distributed", "cleanup_distributed", "is_distributed", "get_rank", "get_world_size",
    "is_main_process", "barrier", "all_reduce_sum", "broadcast_object", "all_gather_object", "wrap_ddp",
    "sync_buffers", "launch_train",
]


@dataclass(frozen=True)
class DistInfo:
    rank: int
    world_size: int
    local_rank: int
    device: torch.device
    backend: str | None


def is_distributed() -> bool:
    """True inside an initialised process group of more than one process."""
    return dist.is_available() and dist.is_initialized() and dist.get_world_size() > 1


def get_rank() -> int:
    return dist.get_rank() if dist.is_available() and dist.is_initialized() else 0


def get_world_size() -> int:
    return dist.get_world_size() if dist.is_available() and dist.is_initialized() else 1


def is_main_process() -> bool:
    """Rank 0 (or the only process): the one that writes files and logs."""
    return get_rank() == 0


def init_distributed(device: str | torch.device | None = "auto", backend: str | None = None,
                     timeout_s: float = 1800.0) -> DistInfo:
    """Join the process group ``torchrun`` set up (env ``RANK``, ``WORLD_SIZE``, ``LOCAL_RANK``).

    ``backend``: default NCCL when the device is CUDA, else gloo. On CUDA each process uses GPU
    ``LOCAL_RANK``. Without ``WORLD_SIZE`` > 1 nothing is initialised and rank 0 of 1 is returned.
    Calling it again when already initialised just reports the state.
    """
    world = int(os.environ.get("WORLD_SIZE", "1"))
    rank = int(os.environ.get("RANK", "0"))
    local_rank = int(os.environ.get("LOCAL_RANK", str(rank)))
    dev = resolve_device(device)
    if dev.type == "cuda" and world > 1:
        torch.cuda.set_device(local_rank)
        dev = torch.device("cuda", local_rank)
    if world <= 1:
        return DistInfo(0, 1, 0, dev, None)
    if dev.type == "mps":  # no MPS collective backend; gloo runs on CPU tensors
        dev = torch.device("cpu")
    backend = backend or ("nccl" if dev.type == "cuda" else "gloo")
    if not dist.is_initialized():
        missing = [v for v in ("MASTER_ADDR", "MASTER_PORT") if v not in os.environ]
        if missing:
            raise RuntimeError(f"WORLD_SIZE={world} but {missing} are not set; launch with "
                               "`torchrun --nproc_per_node=N ...` (it sets them)")
        kwargs = {"device_id": dev} if backend == "nccl" else {}
        dist.init_process_group(backend=backend, init_method="env://", rank=rank, world_size=world,
                                timeout=timedelta(seconds=timeout_s), **kwargs)
    return DistInfo(dist.get_rank(), dist.get_world_size(), local_rank, dev, dist.get_backend())


def cleanup_distributed() -> None:
    """Leave the process group (a no-op when none was joined)."""
    if dist.is_available() and dist.is_initialized():
        dist.destroy_process_group()


def barrier() -> None:
    """Wait for every rank (a no-op in a single process)."""
    if is_distributed():
        if dist.get_backend() == "nccl":
            dist.barrier(device_ids=[torch.cuda.current_device()])
        else:
            dist.barrier()


def _collective_device() -> torch.device:
    if is_distributed() and dist.get_backend() == "nccl":
        return torch.device("cuda", torch.cuda.current_device())
    return torch.device("cpu")


def all_reduce_sum(values: list[float]) -> list[float]:
    """Element-wise sum of a list of numbers over all ranks (identity in a single process)."""
    if not is_distributed():
        return [float(v) for v in values]
    t = torch.tensor(values, dtype=torch.float64, device=_collective_device())
    dist.all_reduce(t, op=dist.ReduceOp.SUM)
    return t.cpu().tolist()


def broadcast_object(obj: Any, src: int = 0) -> Any:
    """Rank ``src``'s picklable ``obj`` on every rank."""
    if not is_distributed():
        return obj
    box = [obj]
    dist.broadcast_object_list(box, src=src, device=_collective_device())
    return box[0]


def all_gather_object(obj: Any) -> list[Any]:
    """``[obj of rank 0, obj of rank 1, ...]`` on every rank."""
    if not is_distributed():
        return [obj]
    out = [None] * dist.get_world_size()
    dist.all_gather_object(out, obj)
    return out


def wrap_ddp(model: nn.Module, device: torch.device, find_unused_parameters: bool = False) -> nn.Module:
    """``DistributedDataParallel(model)`` when distributed, else ``model``.

    DDP broadcasts rank 0's parameters and buffers at construction, so ranks start identical even if
    they built their models with different seeds. ``find_unused_parameters`` is needed by models
    whose train-mode forward skips some parameters.
    """
    if not is_distributed():
        return model
    kwargs = {"device_ids": [device.index]} if device.type == "cuda" else {}
    return nn.parallel.DistributedDataParallel(model, find_unused_parameters=find_unused_parameters, **kwargs)


def sync_buffers(model: nn.Module, src: int = 0) -> None:
    """Copy rank ``src``'s buffers (BN running statistics) to all ranks.

    DDP syncs buffers at the start of each forward, so after the last step each rank holds the
    statistics of its own last batch; the engine calls this at every epoch end so evaluation and
    checkpoints see one model.
    """
    if not is_distributed():
        return
    for buf in model.buffers():
        dist.broadcast(buf.data, src=src)


def launch_train(train_fn: Callable[..., Any], *args: Any, **kwargs: Any) -> Any:
    """Run ``train_fn(*args, **kwargs)`` inside the ``torchrun`` process group, then leave the group.

    For the CLI: ``launch_train(zoo.train_entry, name, preset, data=..., seed=..., device=...)`` works
    unchanged under plain ``python`` (one process) and under ``torchrun --nproc_per_node=N`` (N
    processes). ``train_fn`` builds its loader after the group exists (so the P×K sampler splits the
    batches between ranks) and calls :func:`reidbook.engine.fit`, which wraps the model in DDP,
    all-reduces the logged loss and writes checkpoints on rank 0 only. A ``device`` keyword is
    passed through; on CUDA with several processes it becomes this rank's GPU. Returns
    ``train_fn``'s result on every rank. A group the caller already joined is left alone.
    """
    joined_here = not (dist.is_available() and dist.is_initialized())
    info = init_distributed(kwargs.get("device", "auto"))
    if "device" in kwargs and info.world_size > 1:
        kwargs["device"] = info.device
    try:
        return train_fn(*args, **kwargs)
    finally:
        if joined_here:
            cleanup_distributed()
