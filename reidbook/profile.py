"""How much a model costs: parameters, multiply-adds and measured latency.

Conventions (the same in every chapter, table and benchmark):

* **MACs** — we count *multiply-accumulates* (one multiply + one add = 1 MAC), the unit the
  compression papers use ("multiply-adds"; DaRe's 2.5 G for ResNet-50 at 256×128 is MACs).
  ``torch.utils.flop_counter`` counts FLOPs = 2 × MACs for convolutions and matrix products, so we
  halve its counts. Element-wise ops (BN, ReLU, pooling, additions) are not counted, as in the papers.
* **Latency** — wall-clock milliseconds of ``model(x)`` in ``eval()`` mode under ``torch.no_grad()``,
  after warm-up runs, as the **median** of repeats; the batch size and the number of CPU threads are
  part of the result and must be reported with it.
"""
from __future__ import annotations

import contextlib
import statistics
import time
from collections import OrderedDict
from typing import Iterable, Sequence

import torch
from torch import nn
from torch.utils.flop_counter import FlopCounterMode

from .models.base import stage_modules_of

__all__ = ["count_params", "params_by_stage", "count_macs", "macs_by_stage",
           "measure_latency", "cost_table"]


def count_params(model: nn.Module, trainable_only: bool = False, exclude: Iterable[str] = ()) -> int:
    """Number of parameters; ``exclude`` drops parameters whose name starts with any given prefix
    (e.g. ``exclude=("classifier",)`` for the "without classifiers" counts the papers quote)."""
    exclude = tuple(exclude)
    return sum(p.numel() for n, p in model.named_parameters()
               if (p.requires_grad or not trainable_only) and not (exclude and n.startswith(exclude)))


def _as_modules(spec) -> list[nn.Module]:
    if isinstance(spec, nn.Module):
        return [spec]
    return list(spec)


def params_by_stage(model: nn.Module, stages=None) -> "OrderedDict[str, int]":
    """Parameters per named stage.

    ``stages`` maps a name to a module or a list of modules; by default the model's own
    (:func:`reidbook.models.base.stage_modules_of`: ``model.stage_modules()`` for the course's models
    and backbones, else its top-level children). Shared modules are counted once, in the
    first stage that lists them.
    """
    if stages is None:
        stages = stage_modules_of(model)
    seen: set[int] = set()
    out: OrderedDict[str, int] = OrderedDict()
    for name, spec in stages.items():
        total = 0
        for mod in _as_modules(spec):
            for p in mod.parameters():
                if id(p) not in seen:
                    seen.add(id(p))
                    total += p.numel()
        out[name] = total
    return out


def _input(model: nn.Module, input_size, batch_size: int) -> torch.Tensor:
    if isinstance(input_size, torch.Tensor):
        return input_size
    size = tuple(input_size)
    if len(size) == 2:
        size = (3, *size)
    if len(size) != 3:
        raise ValueError(f"input_size must be (H, W) or (C, H, W), got {input_size}")
    try:
        p = next(model.parameters())
        device, dtype = p.device, p.dtype
    except StopIteration:
        device, dtype = torch.device("cpu"), torch.float32
    return torch.zeros(batch_size, *size, device=device, dtype=dtype)


@contextlib.contextmanager
def _eval_mode(model: nn.Module):
    was_training = model.training
    model.eval()
    try:
        yield
    finally:
        model.train(was_training)


def _flop_counts(model: nn.Module, x: torch.Tensor, forward=None) -> dict:
    counter = FlopCounterMode(display=False)
    with _eval_mode(model), torch.no_grad(), counter:
        (forward or model)(x)
    return counter.get_flop_counts()


def count_macs(model: nn.Module, input_size=(256, 128), batch_size: int = 1, forward=None) -> int:
    """Multiply-adds of one forward pass of ``batch_size`` images (``input_size`` = (H, W) or (C, H, W)).

    ``forward`` optionally replaces ``model(x)`` (e.g. ``lambda x: model.anytime(x, upto=2)``).
    """
    counts = _flop_counts(model, _input(model, input_size, batch_size), forward)
    return int(sum(counts.get("Global", {}).values()) // 2)


def macs_by_stage(model: nn.Module, input_size=(256, 128), stages: dict | None = None,
                  batch_size: int = 1) -> "OrderedDict[str, int]":
    """Multiply-adds per named stage, measured by hooking each stage's modules during one forward.

    ``stages`` maps a name to module(s) as in :func:`params_by_stage` (default ``model.stage_modules()``).
    """
    if stages is None:
        stages = stage_modules_of(model)
    x = _input(model, input_size, batch_size)
    out: OrderedDict[str, int] = OrderedDict((k, 0) for k in stages)
    counter = FlopCounterMode(display=False)
    handles = []
    marks: dict[str, int] = {}

    def total() -> int:
        return int(sum(counter.get_flop_counts().get("Global", {}).values()))

    for name, spec in stages.items():
        for mod in _as_modules(spec):
            handles.append(mod.register_forward_pre_hook(lambda m, a, name=name: marks.__setitem__(name, total())))
            handles.append(mod.register_forward_hook(
                lambda m, a, o, name=name: out.__setitem__(name, out[name] + (total() - marks[name]) // 2)))
    try:
        with _eval_mode(model), torch.no_grad(), counter:
            model(x)
    finally:
        for h in handles:
            h.remove()
    return out


def measure_latency(model: nn.Module, input_size=(256, 128), batch_size: int = 1, threads: int | None = None,
                    warmup: int = 3, repeats: int = 10, forward=None) -> dict:
    """Median wall-clock latency of a forward pass, in milliseconds.

    Returns ``{"median_ms", "mean_ms", "min_ms", "per_image_ms", "batch_size", "threads", "repeats",
    "device"}``. ``threads`` sets ``torch.set_num_threads`` for the measurement only.
    """
    x = _input(model, input_size, batch_size)
    fn = forward or model
    old_threads = torch.get_num_threads()
    if threads is not None:
        torch.set_num_threads(threads)
    sync = torch.cuda.synchronize if x.is_cuda else (lambda: None)
    times: list[float] = []
    try:
        with _eval_mode(model), torch.inference_mode():
            for _ in range(warmup):
                fn(x)
            sync()
            for _ in range(repeats):
                t0 = time.perf_counter()
                fn(x)
                sync()
                times.append((time.perf_counter() - t0) * 1000.0)
    finally:
        torch.set_num_threads(old_threads)
    med = statistics.median(times)
    return {"median_ms": med, "mean_ms": statistics.fmean(times), "min_ms": min(times),
            "per_image_ms": med / batch_size, "batch_size": batch_size,
            "threads": threads if threads is not None else old_threads, "repeats": repeats,
            "device": str(x.device)}


def cost_table(models: "dict[str, nn.Module]", input_size=(256, 128), batch_sizes: Sequence[int] = (1,),
               threads: int | None = None, repeats: int = 10, exclude: Iterable[str] = ()):
    """Parameters, multiply-adds and latency of several models measured side by side in one run.

    Returns a ``pandas.DataFrame`` with one row per model (latency columns per batch size).
    Models are measured interleaved (round-robin) so that machine load affects all alike.
    """
    import pandas as pd

    rows = {name: {"params_M": count_params(m, exclude=exclude) / 1e6,
                   "MACs_G": count_macs(m, input_size) / 1e9} for name, m in models.items()}
    for bs in batch_sizes:
        samples: dict[str, list[float]] = {n: [] for n in models}
        for _ in range(max(1, repeats // 3)):
            for name, m in models.items():
                samples[name].append(measure_latency(m, input_size, bs, threads, warmup=1, repeats=3)["median_ms"])
        for name in models:
            rows[name][f"latency_ms_b{bs}"] = statistics.median(samples[name])
    df = pd.DataFrame.from_dict(rows, orient="index")
    df.attrs["threads"] = threads if threads is not None else torch.get_num_threads()
    df.attrs["input_size"] = tuple(input_size)
    return df


def run_once(model: nn.Module, input_size: Sequence[int], hook, pre: bool = False) -> None:
    """One test-time forward of a zero image of ``input_size`` (``(H, W)`` or ``(C, H, W)``) with ``hook``
    registered on every module (a forward hook, or a forward pre-hook when ``pre``); the hooks are removed
    and the model's train/eval mode restored afterwards, even on error."""
    register = "register_forward_pre_hook" if pre else "register_forward_hook"
    handles = [getattr(m, register)(hook) for m in model.modules()]
    was = model.training
    try:
        model.eval()
        p = next(model.parameters())
        with torch.no_grad():
            model(torch.zeros(1, 3, *tuple(input_size)[-2:], device=p.device, dtype=p.dtype))
    finally:
        for h in handles:
            h.remove()
        model.train(was)

