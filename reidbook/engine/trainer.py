"""``fit``: the one training loop every chapter, the zoo and the CLI use.

One iteration: ``outputs = model(images)`` (train mode: a dict, CONTRIBUTING.md "Models"),
``total, parts = criterion(outputs, pids)``, a finiteness check, ``backward``, optional gradient
clipping, ``optimizer.step()`` and ``scheduler.step()`` — the schedule is stepped **every iteration**
(``reidbook.engine.optim`` defines all schedules in iterations). One epoch ends with a record in the
:class:`History`, an optional evaluation, and an atomic ``last.pt`` checkpoint from which a killed
run resumes exactly (same weights, same losses as if it had never stopped; on CPU with
``num_workers=0``, bit for bit).

Under ``torchrun`` (see :mod:`reidbook.engine.distributed`) the model is wrapped in DDP, the logged
losses are averaged over ranks, and only rank 0 evaluates, prints and writes.

The loop is small pieces (:func:`_train_step`, :func:`_run_epoch`, :func:`_epoch_record`,
:func:`_evaluate_into`) and hooks in the style of fast-reid's ``HookBase`` (:class:`Hook`: before/after
train, epoch, step): checkpointing and resuming is :class:`CheckpointHook`, ``on_epoch_end`` is
:class:`EpochEndHook`; a new feature of the loop is a hook, not a new parameter of :func:`fit`.
"""
from __future__ import annotations

import math
import time
from collections import defaultdict
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable, Sequence

import torch
from torch import nn

from reidbook.utils import progress, quiet, resolve_device, say, seed_everything

from .checkpoint import capture_rng_state, load_checkpoint, restore_rng_state, save_checkpoint
from .distributed import (
    all_gather_object,
    all_reduce_sum,
    barrier,
    broadcast_object,
    get_rank,
    get_world_size,
    is_distributed,
    sync_buffers,
    wrap_ddp,
)
from .history import History, plain_number
from .optim import current_lrs

__all__ = ["fit", "iters_per_epoch", "find_sampler", "CHECKPOINT_NAME", "Hook", "TrainState", "EpochEndHook",
           "CheckpointHook"]

CHECKPOINT_NAME = "last.pt"
_RESERVED = {"epoch", "loss", "lr", "seconds", "images_per_s", "iters", "images"}


def find_sampler(loader) -> Any:
    """The loader's index sampler (``batch_sampler`` if it has ``set_epoch``, else ``sampler``)."""
    for attr in ("batch_sampler", "sampler"):
        s = getattr(loader, attr, None)
        if s is not None and hasattr(s, "set_epoch"):
            return s
    return getattr(loader, "sampler", None)


def iters_per_epoch(loader, max_iters_per_epoch: int | None = None) -> int:
    """Iterations one epoch of ``fit`` runs: ``len(loader)``, capped at ``max_iters_per_epoch``.

    Build the scheduler with this number (``build_scheduler(..., iters_per_epoch=...)``).
    """
    try:
        n = len(loader)
    except TypeError:
        if max_iters_per_epoch is None:
            raise ValueError("the loader has no len(); pass max_iters_per_epoch") from None
        return int(max_iters_per_epoch)
    if n == 0:
        raise ValueError("the training loader yields no batches: the training set is smaller than one batch "
                         "(lower P×K, or use more training images)")
    return min(n, int(max_iters_per_epoch)) if max_iters_per_epoch else n


def _check_sampler(sampler, world: int) -> None:
    if world <= 1:
        return
    replicas = getattr(sampler, "num_replicas", None)
    if replicas is None:
        raise ValueError(
            f"training with {world} processes but the loader's sampler ({type(sampler).__name__}) does not "
            "split the data between ranks; use make_train_loader(..., num_replicas=world_size, rank=rank) "
            "or torch.utils.data.DistributedSampler")
    if replicas != world:
        raise ValueError(f"the loader's sampler was built for num_replicas={replicas} but {world} processes run; "
                         "rebuild it after init_distributed()")


def _nonfinite_error(epoch: int, epochs: int, it: int, n_iter: int, loss: float | None, parts: dict,
                     lrs: dict, ckpt_path: Path | None, saved_epoch: int | None, cause: str = "") -> FloatingPointError:
    where = f"epoch {epoch}/{epochs}, iteration {it}/{n_iter}"
    what = f"loss={loss}, parts={ {k: round(v, 6) if math.isfinite(v) else v for k, v in parts.items()} }"
    if ckpt_path is not None and saved_epoch:
        kept = f"the last good checkpoint {ckpt_path} (epoch {saved_epoch}) is untouched"
    else:
        kept = "no checkpoint was written by this run"
    return FloatingPointError(
        f"non-finite training loss at {where}: {what}{' (' + cause + ')' if cause else ''}. Training stopped; "
        f"{kept}. Fixes: lower the learning rate (now {lrs}), add warm-up or grad_clip, and check the data "
        "(images normalised, no NaN pixels, pids in 0..num_classes-1).")


def _params_finite(model: nn.Module) -> bool:
    return all(bool(torch.isfinite(p).all()) for p in model.parameters())


def _resume(ckpt_path: Path, model, optimizer, scheduler, criterion, config, sampler, rank: int, world: int):
    ckpt = load_checkpoint(ckpt_path, model, optimizer, scheduler, expected_config=config,
                           criterion=criterion if isinstance(criterion, nn.Module) else None)
    if ckpt.get("sampler") is not None and hasattr(sampler, "load_state_dict"):
        state = dict(ckpt["sampler"])
        state.pop("rank", None)
        sampler.load_state_dict(state)
    rng = ckpt.get("rng")
    if isinstance(rng, list):  # one state per rank
        rng = rng[rank] if len(rng) == world else None
    if rng is not None:
        restore_rng_state(rng)
    else:
        say(f"note: {ckpt_path} was written by a different number of processes; RNG streams restart")
    return int(ckpt["epoch"]), History.from_state(ckpt.get("history"))


# ----------------------------------------------------------------------------------------------
# Hooks (after fast-reid's HookBase): what happens around the steps and epochs of the loop
# ----------------------------------------------------------------------------------------------
@dataclass
class TrainState:
    """What a :class:`Hook` sees: the objects being trained and where the loop is.

    ``epoch`` is 0-based while an epoch runs; ``record`` is the finished epoch's record (``after_epoch``
    sees it as ``history.records[-1]``, evaluation included); ``step`` / ``loss`` / ``parts`` describe
    the last optimiser step (``after_step``). ``ckpt_path`` / ``saved_epoch`` name the last checkpoint.
    """

    model: nn.Module
    loader: Any
    criterion: Callable
    optimizer: torch.optim.Optimizer
    scheduler: Any
    device: torch.device
    epochs: int
    n_iter: int
    sampler: Any
    config: dict | None = None
    history: History = field(default_factory=History)
    start_epoch: int = 0
    epoch: int = 0
    step: int = 0
    loss: float = float("nan")
    parts: dict = field(default_factory=dict)
    lrs: dict = field(default_factory=dict)
    record: dict = field(default_factory=dict)
    ckpt_path: Path | None = None
    saved_epoch: int | None = None

    @property
    def rank(self) -> int:
        return get_rank()

    @property
    def world(self) -> int:
        return get_world_size()


class Hook:
    """A training hook: override any of ``before_train``, ``before_epoch``, ``after_step``, ``after_epoch``,
    ``after_train`` (each gets the :class:`TrainState`). Hooks run in the order given to :func:`fit`;
    the checkpoint is always written after every other hook's ``after_epoch``, so what they change is saved."""

    def before_train(self, state: TrainState) -> None:
        pass

    def before_epoch(self, state: TrainState) -> None:
        pass

    def after_step(self, state: TrainState) -> None:
        pass

    def after_epoch(self, state: TrainState) -> None:
        pass

    def after_train(self, state: TrainState) -> None:
        pass


class EpochEndHook(Hook):
    """``fn(epoch, record, model)`` after each epoch (1-based epoch; changes to ``record`` are kept)."""

    def __init__(self, fn: Callable[[int, dict, nn.Module], None]):
        self.fn = fn

    def after_epoch(self, state: TrainState) -> None:
        self.fn(state.epoch + 1, state.history.records[-1], state.model)


class CheckpointHook(Hook):
    """Resume from ``folder/last.pt`` before training (if ``resume`` and it exists; refused if it does not
    fit the model and ``config``), and write it atomically after every epoch (rank 0 only), once the
    weights are checked finite. Under DDP every rank's RNG state is kept."""

    def __init__(self, folder: str | Path, resume: bool = True):
        self.path, self.resume = Path(folder) / CHECKPOINT_NAME, resume

    def before_train(self, s: TrainState) -> None:
        s.ckpt_path = self.path
        if not self.resume:
            return
        barrier()  # rank 0 may have just written it
        if self.path.exists():
            s.start_epoch, s.history = _resume(self.path, s.model, s.optimizer, s.scheduler, s.criterion, s.config,
                                               s.sampler, s.rank, s.world)
            s.saved_epoch = s.start_epoch
            if s.rank == 0:
                say(f"resumed from {self.path} after epoch {s.start_epoch}/{s.epochs}")

    def after_epoch(self, s: TrainState) -> None:
        if not _params_finite(s.model):
            raise _nonfinite_error(s.epoch + 1, s.epochs, s.record["iters"], s.n_iter, s.record["loss"], {}, s.lrs,
                                   self.path, s.saved_epoch, "the weights became non-finite in the last step")
        rng = all_gather_object(capture_rng_state()) if is_distributed() else capture_rng_state()
        if s.rank == 0:
            sampler_state = None
            if hasattr(s.sampler, "state_dict") and hasattr(s.sampler, "set_epoch"):
                s.sampler.set_epoch(s.epoch + 1)  # the state a resumed run starts from
                sampler_state = s.sampler.state_dict()
            save_checkpoint(self.path, s.model, s.optimizer, s.scheduler, s.epoch + 1, s.history, sampler_state, rng,
                            s.config, s.criterion if isinstance(s.criterion, nn.Module) else None)
        s.saved_epoch = s.epoch + 1
        barrier()


# ----------------------------------------------------------------------------------------------
# The loop's pieces
# ----------------------------------------------------------------------------------------------
def _train_step(s: TrainState, net: nn.Module, batch, fmt, params: list, grad_clip: float | None) -> int:
    """One optimiser step on ``batch``; sets ``s.loss``/``s.parts``/``s.lrs``; returns the batch's image count."""
    images = batch[0].to(s.device, non_blocking=True)
    if images.dim() == 4:
        images = images.contiguous(memory_format=fmt)
    pids = batch[1].to(s.device, non_blocking=True)
    parts, loss, cause = {}, float("nan"), ""
    with _autocast(s):
        outputs = net(images)
        try:
            total, parts = s.criterion(outputs, pids)
            loss = float(total.detach())
        except FloatingPointError as err:  # the criterion names the offending term
            cause = str(err)
    bad = not math.isfinite(loss)
    if is_distributed():  # every rank must stop together, or the others hang in backward
        bad = all_reduce_sum([float(bad)])[0] > 0
    if bad:
        raise _nonfinite_error(s.epoch + 1, s.epochs, s.step + 1, s.n_iter, loss, parts, s.lrs, s.ckpt_path,
                               s.saved_epoch, cause)
    s.optimizer.zero_grad(set_to_none=True)
    total.backward()
    if grad_clip:
        torch.nn.utils.clip_grad_norm_(params, float(grad_clip))
    s.lrs = current_lrs(s.optimizer)  # the rates this step uses
    s.optimizer.step()
    if s.scheduler is not None:
        s.scheduler.step()
    s.loss, s.parts = loss, parts
    return images.shape[0]


def amp_dtype(amp: bool | str | None, device: torch.device) -> torch.dtype | None:
    """The autocast dtype ``fit(amp=...)`` trains with: bfloat16 for ``"auto"``/``True``/``"bf16"`` on a CUDA
    device that supports it, else none — never on CPU, so CPU runs stay bit-exact and resumable."""
    if amp in (None, False, "off") or device.type != "cuda":
        return None
    if amp not in ("auto", True, "bf16"):
        raise ValueError(f"amp must be 'auto', True, 'bf16', False or None, got {amp!r}")
    return torch.bfloat16 if torch.cuda.is_bf16_supported() else None


def _autocast(s: TrainState):
    import contextlib

    dtype = getattr(s, "amp_dtype", None)
    return torch.autocast(s.device.type, dtype=dtype) if dtype is not None else contextlib.nullcontext()


def _epoch_record(s: TrainState, sums: dict, n_done: int, n_images: int, seconds: float) -> dict:
    """The epoch's record: losses averaged over iterations and ranks, images, learning rates, speed."""
    if n_done == 0:
        raise ValueError(f"the training loader yielded no batch in epoch {s.epoch + 1}")
    keys = sorted(sums)
    totals = all_reduce_sum([sums[k] for k in keys] + [n_done, n_images])
    steps, images_all = totals[-2], totals[-1]
    record: dict[str, Any] = {"epoch": s.epoch + 1, "iters": n_done, "images": int(images_all)}
    record.update({k: v / steps for k, v in zip(keys, totals)})
    record["lr"] = next(iter(s.lrs.values()))
    if len(s.lrs) > 1:
        record.update({f"lr/{name}": lr for name, lr in s.lrs.items()})
    record["seconds"] = seconds
    record["images_per_s"] = images_all / max(seconds, 1e-9)
    return record


def _run_epoch(s: TrainState, net: nn.Module, fmt, params: list, grad_clip: float | None, desc: str,
               hooks: list[Hook]) -> dict:
    """Train one epoch (at most ``s.n_iter`` steps) and return its record."""
    net.train()
    sums: dict[str, float] = defaultdict(float)
    n_done = n_images = 0
    s.lrs = current_lrs(s.optimizer)
    t0 = time.perf_counter()
    bar = progress(total=s.n_iter, desc=f"{desc} {s.epoch + 1}/{s.epochs}", disable=quiet() or s.rank != 0)
    for it, batch in enumerate(s.loader):
        if it >= s.n_iter:
            break
        s.step = it
        n_images += _train_step(s, net, batch, fmt, params, grad_clip)
        sums["loss"] += s.loss
        for k, v in s.parts.items():
            sums[k if k not in _RESERVED else f"loss/{k}"] += float(v)
        n_done += 1
        for h in hooks:
            h.after_step(s)
        bar.update(1)
        bar.set_postfix(loss=f"{sums['loss'] / n_done:.4f}", lr=f"{next(iter(s.lrs.values())):.2e}", refresh=False)
    bar.close()
    return _epoch_record(s, sums, n_done, n_images, time.perf_counter() - t0)


def _evaluate_into(record: dict, evaluate: Callable[[nn.Module], dict], model: nn.Module) -> None:
    """``evaluate(model)`` on rank 0 (eval mode), broadcast, merged into ``record`` (clashing keys get ``eval/``)."""
    metrics = None
    if get_rank() == 0:
        model.eval()
        raw = evaluate(model) or {}
        metrics = {k: plain_number(v) for k, v in raw.items()}
        metrics = {k: v for k, v in metrics.items() if v is not None}
    metrics = broadcast_object(metrics)
    record.update({(k if k not in record else f"eval/{k}"): v for k, v in metrics.items()})


def fit(model: nn.Module, train_loader, criterion: Callable, optimizer: torch.optim.Optimizer,
        scheduler: Any = None, epochs: int = 1, device: str | torch.device = "auto",
        evaluate: Callable[[nn.Module], dict] | None = None, eval_every: int = 0,
        checkpoint_dir: str | Path | None = None, resume: bool = True, seed: int = 0,
        max_iters_per_epoch: int | None = None, grad_clip: float | None = None,
        on_epoch_end: Callable[[int, dict, nn.Module], None] | None = None, config: dict | None = None,
        find_unused_parameters: bool = False, desc: str = "train", channels_last: bool = True,
        hooks: Sequence[Hook] = (), amp: bool | str | None = "auto") -> History:
    """Train ``model`` for ``epochs`` epochs and return its :class:`History`.

    Args:
        model: ``model(images)`` in train mode returns the dict ``criterion`` reads.
        train_loader: yields ``(images, pids, camids, indices)`` (only the first two are used).
            Its sampler's ``set_epoch(e)`` is called before each epoch.
        criterion: ``criterion(outputs, pids) -> (total, parts)`` (``reidbook.losses.Criterion``).
        optimizer, scheduler: see :func:`~reidbook.engine.optim.build_optimizer` and
            :func:`~reidbook.engine.optim.build_scheduler`; the scheduler steps every iteration.
        device: ``"auto"`` (CUDA, then MPS, then CPU) or a device.
        evaluate: ``evaluate(model) -> dict`` of metrics, called with the model in eval mode every
            ``eval_every`` epochs (0: never in between) and after the last epoch.
        checkpoint_dir: if given, ``last.pt`` is written there after every epoch (atomically) and,
            with ``resume=True``, training continues from it (:class:`CheckpointHook`). The checkpoint
            must fit the model and ``config`` (a dict fingerprinted into the checkpoint), else it is refused.
        seed: seeds Python, NumPy and torch (plus the rank under DDP) before training.
        max_iters_per_epoch: cap on iterations per epoch (smoke runs).
        grad_clip: max global gradient norm (``clip_grad_norm_``), or ``None``.
        on_epoch_end: ``on_epoch_end(epoch, record, model)`` after each epoch (before the checkpoint;
            changes to ``record`` are kept in the history) — shorthand for an :class:`EpochEndHook`.
        find_unused_parameters: passed to DDP for models whose forward skips parameters.
        channels_last: train with 4-D weights and images in ``torch.channels_last`` memory format (NHWC).
            Same numbers up to float rounding; on this 2-core CPU a width-¼ ResNet-50 step at 128×64 runs
            1.35× faster (296 → 398 images/s; ResNet-18 1.21×; ``benchmarks/bench_train.py``). The model is
            returned in the default (contiguous) format.
        hooks: more :class:`Hook` objects (before/after train, epoch, step). A new feature of the loop
            is a hook, not a new parameter.
        amp: automatic mixed precision (:func:`amp_dtype`): ``"auto"`` runs forward and loss under bfloat16
            autocast on a CUDA GPU that supports it (the ``full`` profile on a researcher's GPU), never on CPU.

    Raises ``FloatingPointError`` at the first non-finite loss, naming the epoch, iteration and loss
    parts; the checkpoint of the last completed epoch stays as it was. The model is returned to
    eval mode at the end.
    """
    device = resolve_device(device)
    if device.type == "cuda" and is_distributed():
        device = torch.device("cuda", torch.cuda.current_device())
    model.to(device)
    fmt = torch.channels_last if channels_last else torch.contiguous_format
    model.to(memory_format=fmt)  # parameters change format in place: the optimizer keeps its references
    if isinstance(criterion, nn.Module):
        criterion.to(device)
    seed_everything(seed + get_rank())

    sampler = find_sampler(train_loader)
    _check_sampler(sampler, get_world_size())
    s = TrainState(model, train_loader, criterion, optimizer, scheduler, device, epochs,
                   iters_per_epoch(train_loader, max_iters_per_epoch), sampler, config)
    s.amp_dtype = amp_dtype(amp, device)
    hooks = list(hooks) + ([EpochEndHook(on_epoch_end)] if on_epoch_end is not None else [])
    if checkpoint_dir is not None:
        hooks.append(CheckpointHook(checkpoint_dir, resume))  # last: it saves what the others changed
    for h in hooks:
        h.before_train(s)

    net = wrap_ddp(model, device, find_unused_parameters)
    params = [p for g in optimizer.param_groups for p in g["params"]]
    for epoch in range(s.start_epoch, epochs):
        s.epoch = epoch
        if hasattr(sampler, "set_epoch"):
            sampler.set_epoch(epoch)
        for h in hooks:
            h.before_epoch(s)
        s.record = _run_epoch(s, net, fmt, params, grad_clip, desc, hooks)
        sync_buffers(model)
        if evaluate is not None and ((eval_every and (epoch + 1) % eval_every == 0) or epoch + 1 == epochs):
            _evaluate_into(s.record, evaluate, model)
        s.history.append(s.record)
        for h in hooks:
            h.after_epoch(s)
    model.to(memory_format=torch.contiguous_format)
    model.eval()
    for h in hooks:
        h.after_train(s)
    return s.history
