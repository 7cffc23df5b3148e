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
"""
from __future__ import annotations

import math
import time
from collections import defaultdict
from pathlib import Path
from typing import Any, Callable

import torch
from torch import nn

from reidbook.utils import progress, quiet, resolve_device, say, seed_everything

from .checkpoint import capture_rng_state, load_checkpoint, restore_rng_state, save_checkpoint
from .distributed import (all_gather_object, all_reduce_sum, barrier, broadcast_object, get_rank,
                          get_world_size, is_distributed, sync_buffers, wrap_ddp)
from .history import History, plain_number
from .optim import current_lrs

__all__ = ["fit", "iters_per_epoch", "find_sampler", "CHECKPOINT_NAME"]

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


def fit(model: nn.Module, train_loader, criterion: Callable, optimizer: torch.optim.Optimizer,
        scheduler: Any = None, epochs: int = 1, device: str | torch.device = "auto",
        evaluate: Callable[[nn.Module], dict] | None = None, eval_every: int = 0,
        checkpoint_dir: str | Path | None = None, resume: bool = True, seed: int = 0,
        max_iters_per_epoch: int | None = None, grad_clip: float | None = None,
        on_epoch_end: Callable[[int, dict, nn.Module], None] | None = None, config: dict | None = None,
        find_unused_parameters: bool = False, desc: str = "train", channels_last: bool = True) -> History:
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
            with ``resume=True``, training continues from it. The checkpoint must fit the model
            and ``config`` (a dict fingerprinted into the checkpoint), else it is refused.
        seed: seeds Python, NumPy and torch (plus the rank under DDP) before training.
        max_iters_per_epoch: cap on iterations per epoch (smoke runs).
        grad_clip: max global gradient norm (``clip_grad_norm_``), or ``None``.
        on_epoch_end: ``on_epoch_end(epoch, record, model)`` after each epoch (before the checkpoint;
            changes to ``record`` are kept in the history).
        find_unused_parameters: passed to DDP for models whose forward skips parameters.
        channels_last: train with 4-D weights and images in ``torch.channels_last`` memory format (NHWC).
            Same numbers up to float rounding; on this 2-core CPU a width-¼ ResNet-50 step at 128×64 runs
            1.35× faster (296 → 398 images/s; ResNet-18 1.21×; ``benchmarks/bench_train.py``). The model is
            returned in the default (contiguous) format.

    Raises ``FloatingPointError`` at the first non-finite loss, naming the epoch, iteration and loss
    parts; the checkpoint of the last completed epoch stays as it was. The model is returned to
    eval mode at the end.
    """
    device = resolve_device(device)
    world, rank = get_world_size(), get_rank()
    main = rank == 0
    if device.type == "cuda" and is_distributed():
        device = torch.device("cuda", torch.cuda.current_device())
    model.to(device)
    fmt = torch.channels_last if channels_last else torch.contiguous_format
    model.to(memory_format=fmt)  # parameters change format in place: the optimizer keeps its references
    if isinstance(criterion, nn.Module):
        criterion.to(device)
    seed_everything(seed + rank)

    n_iter = iters_per_epoch(train_loader, max_iters_per_epoch)
    sampler = find_sampler(train_loader)
    _check_sampler(sampler, world)
    ckpt_path = Path(checkpoint_dir) / CHECKPOINT_NAME if checkpoint_dir is not None else None
    history, start_epoch, saved_epoch = History(), 0, None
    if ckpt_path is not None and resume:
        barrier()  # rank 0 may have just written it
        if ckpt_path.exists():
            start_epoch, history = _resume(ckpt_path, model, optimizer, scheduler, criterion, config, sampler,
                                           rank, world)
            saved_epoch = start_epoch
            if main:
                say(f"resumed from {ckpt_path} after epoch {start_epoch}/{epochs}")

    net = wrap_ddp(model, device, find_unused_parameters)
    params = [p for g in optimizer.param_groups for p in g["params"]]
    for epoch in range(start_epoch, epochs):
        if hasattr(sampler, "set_epoch"):
            sampler.set_epoch(epoch)
        net.train()
        sums: dict[str, float] = defaultdict(float)
        n_done = n_images = 0
        lrs = current_lrs(optimizer)
        t0 = time.perf_counter()
        bar = progress(total=n_iter, desc=f"{desc} {epoch + 1}/{epochs}", disable=quiet() or not main)
        for it, batch in enumerate(train_loader):
            if it >= n_iter:
                break
            images = batch[0].to(device, non_blocking=True)
            if images.dim() == 4:
                images = images.contiguous(memory_format=fmt)
            pids = batch[1].to(device, non_blocking=True)
            outputs = net(images)
            parts, loss, cause = {}, float("nan"), ""
            try:
                total, parts = criterion(outputs, pids)
                loss = float(total.detach())
            except FloatingPointError as err:  # the criterion names the offending term
                cause = str(err)
            bad = not math.isfinite(loss)
            if is_distributed():  # every rank must stop together, or the others hang in backward
                bad = all_reduce_sum([float(bad)])[0] > 0
            if bad:
                raise _nonfinite_error(epoch + 1, epochs, it + 1, n_iter, loss, parts, lrs, ckpt_path,
                                       saved_epoch, cause)
            optimizer.zero_grad(set_to_none=True)
            total.backward()
            if grad_clip:
                torch.nn.utils.clip_grad_norm_(params, float(grad_clip))
            lrs = current_lrs(optimizer)  # the rates this step uses
            optimizer.step()
            if scheduler is not None:
                scheduler.step()
            sums["loss"] += loss
            for k, v in parts.items():
                sums[k if k not in _RESERVED else f"loss/{k}"] += float(v)
            n_done += 1
            n_images += images.shape[0]
            bar.update(1)
            bar.set_postfix(loss=f"{sums['loss'] / n_done:.4f}", lr=f"{next(iter(lrs.values())):.2e}", refresh=False)
        bar.close()
        seconds = time.perf_counter() - t0
        if n_done == 0:
            raise ValueError(f"the training loader yielded no batch in epoch {epoch + 1}")

        # -- the epoch's record (losses averaged over iterations and ranks) --------------------
        keys = sorted(sums)
        totals = all_reduce_sum([sums[k] for k in keys] + [n_done, n_images])
        steps, images_all = totals[-2], totals[-1]
        record: dict[str, Any] = {"epoch": epoch + 1, "iters": n_done, "images": int(images_all)}
        record.update({k: v / steps for k, v in zip(keys, totals)})
        record["lr"] = next(iter(lrs.values()))
        if len(lrs) > 1:
            record.update({f"lr/{name}": lr for name, lr in lrs.items()})
        record["seconds"] = seconds
        record["images_per_s"] = images_all / max(seconds, 1e-9)
        sync_buffers(model)

        if evaluate is not None and ((eval_every and (epoch + 1) % eval_every == 0) or epoch + 1 == epochs):
            metrics = None
            if main:
                model.eval()
                raw = evaluate(model) or {}
                metrics = {k: plain_number(v) for k, v in raw.items()}
                metrics = {k: v for k, v in metrics.items() if v is not None}
            metrics = broadcast_object(metrics)
            record.update({(k if k not in record else f"eval/{k}"): v for k, v in metrics.items()})
        history.append(record)
        if on_epoch_end is not None:
            on_epoch_end(epoch + 1, history.records[-1], model)

        if ckpt_path is not None:
            if not _params_finite(model):
                raise _nonfinite_error(epoch + 1, epochs, n_done, n_iter, record["loss"], {}, lrs, ckpt_path,
                                       saved_epoch, "the weights became non-finite in the last step")
            rng = all_gather_object(capture_rng_state()) if is_distributed() else capture_rng_state()
            if main:
                sampler_state = None
                if hasattr(sampler, "state_dict") and hasattr(sampler, "set_epoch"):
                    sampler.set_epoch(epoch + 1)  # the state a resumed run starts from
                    sampler_state = sampler.state_dict()
                save_checkpoint(ckpt_path, model, optimizer, scheduler, epoch + 1, history, sampler_state, rng,
                                config, criterion if isinstance(criterion, nn.Module) else None)
            saved_epoch = epoch + 1
            barrier()
    model.to(memory_format=torch.contiguous_format)
    model.eval()
    return history
