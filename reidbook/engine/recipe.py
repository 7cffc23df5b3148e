"""``fit_preset``: the one way to train a model from a preset (transforms → P×K loader → criterion →
optimiser → schedule → :func:`~reidbook.engine.trainer.fit`).

Every training path of the package goes through it: the zoo's preset runs and source-domain
pre-training, FD's teachers, initial student, branch warm-up and distillation, and pruning's
fine-tuning and penalised training. What differs between them is an argument, not a copy of the
recipe: another transform (an FD view), another loader (FD's batch context), another criterion
(FD's Eq. 6), a penalty (a pruning regulariser), a scaled or replaced optimiser spec, no schedule.

The preset is duck-typed (any object with ``height``, ``width``, ``train_aug``, ``P``, ``K``,
``epochs``, ``losses``, ``optimizer``, ``schedule``, ``eval_every``, ``to_dict()``; ``model`` and
``profile`` only name the progress bar), so the engine does not import :mod:`reidbook.presets`.
"""
from __future__ import annotations

from pathlib import Path
from typing import Any, Callable, Sequence

import torch
from torch import nn

from reidbook.utils import resolve_device

from .history import History

__all__ = ["fit_preset", "preset_loader", "Penalised", "PRESET"]

PRESET = "preset"  # sentinel for "take this from the preset" (``schedule=PRESET``)


class Penalised:
    """``criterion(outputs, pids) + penalty()``: how a regulariser joins the training loss (pruning
    survey Eq. 9, 19). The penalty's value is reported as the loss part ``name`` (so it shows in the
    History). A plain callable, not a module: checkpoints hold the wrapped criterion's state only."""

    def __init__(self, criterion: Callable, penalty: Callable[[], Any], name: str = "penalty"):
        self.criterion, self.penalty, self.name = criterion, penalty, name

    def __call__(self, outputs, pids):
        total, parts = self.criterion(outputs, pids)
        p = self.penalty()
        parts = dict(parts)
        parts[self.name] = float(p.detach()) if torch.is_tensor(p) else float(p)
        return total + p, parts


def preset_loader(items: Sequence, preset, *, seed: int = 0, transform: Callable | None = None,
                  band: tuple[float, float] | None = None, device=None, kind: str | None = None):
    """The P×K training loader of ``items`` for ``preset``. Under ``torchrun`` the sampler splits batches
    between ranks.

    ``kind`` (default ``$REIDBOOK_LOADER``, else ``"tensor"``):

    * ``"tensor"``: :func:`reidbook.data.tensorstore.make_tensor_loader` — images decoded once into a cached
      uint8 store (cropped to ``band``, an FD view's rows, if given) and the preset's ``train_aug`` applied
      to whole batches, drawn from ``(seed, epoch, step)``; on a CUDA ``device`` the batch is augmented
      there. Used when no ``transform`` is given and the tensor path does every augmentation of the preset;
    * ``"pil"`` (or a ``transform``): ``transform`` (default: the preset's ``build_transforms(height, width,
      is_train=True, **train_aug)``) per sample, decoded images cached in memory; on a CUDA ``device``,
      DataLoader workers and pinned memory.
    Give :func:`fit_preset` ``loader=`` to bypass it.
    """
    import os

    from reidbook.data import build_transforms, make_train_loader

    kind = kind or os.environ.get("REIDBOOK_LOADER", "tensor")
    if kind not in ("tensor", "pil"):
        raise ValueError(f"loader kind must be 'tensor' or 'pil' (REIDBOOK_LOADER), got {kind!r}")
    cuda = device is not None and resolve_device(device).type == "cuda"
    if kind == "tensor" and transform is None:
        from reidbook.data.tensorstore import make_tensor_loader, tensor_aug_supported

        if tensor_aug_supported(preset.train_aug):
            return make_tensor_loader(items, preset.height, preset.width, preset.P, preset.K, seed=seed, band=band,
                                      device=resolve_device(device) if cuda else None, **preset.train_aug)
    if band is not None:
        raise ValueError("band= needs the tensor loader (kind='tensor' and an augmentation it does); "
                         "otherwise give transform= with the crop (reidbook.data.view_transform)")
    if transform is None:
        transform = build_transforms(preset.height, preset.width, is_train=True, **preset.train_aug)
    workers = min(8, os.cpu_count() or 1) if cuda else 0
    return make_train_loader(items, transform, preset.P, preset.K, seed=seed, cache=True, num_workers=workers,
                             pin_memory=cuda)


def fit_preset(model: nn.Module, items: Sequence | None, preset, *, seed: int = 0, device="auto",
               checkpoint_dir: str | Path | None = None, resume: bool = True, epochs: int | None = None,
               transform: Callable | None = None, loader=None, criterion: Callable | None = None,
               penalty: Callable[[], Any] | None = None, optimizer: dict | None = None, lr_scale: float = 1.0,
               schedule: dict | str | None = PRESET, evaluate: Callable[[nn.Module], dict] | None = None,
               eval_every: int | None = None, config: dict | None = None, desc: str | None = None,
               **fit_options) -> History:
    """Train ``model`` on ``items`` with ``preset`` through :func:`reidbook.engine.fit`; its History.

    Built in this order (the order fixes what the global RNG gives a criterion with parameters):

    1. ``loader``: given, or :func:`preset_loader` of ``items`` with ``transform`` (default: the preset's);
    2. ``criterion``: given (any ``criterion(outputs, pids) -> (total, parts)``, e.g. FD's
       :class:`~reidbook.distill.student.FDCriterion`), or ``build_criterion(preset.losses)``;
    3. the optimiser: ``build_optimizer(model, spec, criterion)`` with ``spec`` = ``optimizer`` (a
       whole spec, replacing the preset's) or ``preset.optimizer``, its ``lr`` × ``lr_scale``;
    4. the schedule: ``schedule=PRESET`` (default) → ``preset.schedule``; a dict → that spec; ``None``
       → no scheduler (a constant rate); built for ``epochs`` × the loader's iterations per epoch;
    5. ``penalty``: if given, the loss becomes ``criterion + penalty()`` (:class:`Penalised`);
    6. :func:`~reidbook.engine.trainer.fit` for ``epochs`` (default ``preset.epochs``), evaluating with
       ``evaluate`` every ``eval_every`` (default ``preset.eval_every``) epochs, checkpointing into
       ``checkpoint_dir`` (resumed when ``resume``) under ``config`` (default ``preset.to_dict()``).

    ``fit_options`` go to ``fit`` unchanged (``max_iters_per_epoch``, ``grad_clip``, ``on_epoch_end``,
    ``hooks``, ``channels_last`` …). ``items`` may be ``None`` when ``loader`` is given.
    Raises ``ValueError`` for ``epochs < 1`` (nothing would be trained) or a non-positive ``lr_scale``.
    """
    from reidbook.losses import build_criterion

    from .optim import build_optimizer, build_scheduler
    from .trainer import fit, iters_per_epoch

    epochs = preset.epochs if epochs is None else epochs
    if isinstance(epochs, bool) or not isinstance(epochs, int) or epochs < 1:
        raise ValueError(f"epochs must be an integer ≥ 1 (training for {epochs!r} epochs trains nothing); "
                         "set the preset's epochs or pass epochs=")
    if not lr_scale > 0:
        raise ValueError(f"lr_scale must be > 0, got {lr_scale}")
    if loader is None:
        if items is None:
            raise ValueError("fit_preset needs training items or a loader")
        loader = preset_loader(items, preset, seed=seed, transform=transform, device=device)
    if criterion is None:
        criterion = build_criterion(preset.losses)
    spec = dict(preset.optimizer if optimizer is None else optimizer)
    if lr_scale != 1.0:
        spec["lr"] = spec["lr"] * lr_scale
    opt = build_optimizer(model, spec, criterion if isinstance(criterion, nn.Module) else None)
    if schedule == PRESET:
        schedule = preset.schedule
    scheduler = None
    if schedule is not None:
        scheduler = build_scheduler(opt, schedule, epochs,
                                    iters_per_epoch(loader, fit_options.get("max_iters_per_epoch")))
    loss = criterion
    if penalty is not None:
        if isinstance(criterion, nn.Module):  # fit moves modules only; the wrapper is not one
            criterion.to(resolve_device(device))
        loss = Penalised(criterion, penalty)
    if eval_every is None:
        eval_every = preset.eval_every if evaluate is not None else 0
    return fit(model, loader, loss, opt, scheduler, epochs=epochs, device=device, evaluate=evaluate,
               eval_every=eval_every, checkpoint_dir=checkpoint_dir, resume=resume, seed=seed,
               config=preset.to_dict() if config is None else config,
               desc=desc or f"{getattr(preset, 'model', 'model')} {getattr(preset, 'profile', '')}".strip(),
               **fit_options)
