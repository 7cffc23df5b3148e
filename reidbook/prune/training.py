"""Training inside pruning: fine-tuning after a cut and training with a regulariser (paper 003, §3.4).

Both go through the one training path of the package, :func:`reidbook.engine.fit_preset` (the model's
preset: transforms, P×K loader, losses, optimiser) with a constant learning rate = the preset's × ``lr_scale`` — the
survey (Table 2) and Li et al. (§4) retrain briefly at a small learning rate after pruning. A regulariser
joins the loss as ``criterion(outputs, pids) + penalty()`` (survey Eq. 9, 19).
"""
from __future__ import annotations

import math

from torch import nn

__all__ = ["finetune", "train_with_penalty", "last_loss"]


def train_with_penalty(model: nn.Module, dataset, preset, epochs: int, penalty=None, lr_scale: float = 1.0,
                       device="auto", seed: int = 0, max_iters_per_epoch: int | None = None, on_epoch_end=None,
                       desc: str = "train"):
    """Train ``model`` on ``dataset.train`` with the preset's losses **plus** ``penalty()`` (a callable → scalar
    tensor, e.g. :class:`reidbook.prune.criteria.AutoBalancedRegularizer`; ``None``: no penalty) through
    :func:`reidbook.engine.fit_preset` — the package's one training path — with a constant learning rate =
    preset lr × ``lr_scale`` (no schedule, no per-module ``lr_groups``: retraining a pruned network is short).
    ``on_epoch_end(epoch, record, model)`` gets 1-based epochs (as from ``fit``). Returns the ``History``."""
    from ..engine import fit_preset

    spec = {k: v for k, v in preset.optimizer.items() if k != "lr_groups"}
    return fit_preset(model, dataset.train, preset, seed=seed, device=device, epochs=epochs, penalty=penalty,
                      optimizer=spec, lr_scale=lr_scale, schedule=None, max_iters_per_epoch=max_iters_per_epoch,
                      on_epoch_end=on_epoch_end, desc=desc)


def finetune(model: nn.Module, dataset, preset, epochs: int = 1, lr_scale: float = 0.1, device="auto", seed: int = 0,
             max_iters_per_epoch: int | None = None):
    """Fine-tune a pruned model with its preset's losses and optimiser (learning rate × ``lr_scale``,
    constant) for ``epochs`` epochs on ``dataset.train`` → ``History`` (:func:`train_with_penalty` without
    a penalty). Li et al. (§4) and the survey (Table 2, "prune in one step") retrain briefly after pruning
    at a small learning rate; the pruned model trains in place (and is left in ``eval()`` mode).
    """
    history = train_with_penalty(model, dataset, preset, epochs, None, lr_scale, device, seed, max_iters_per_epoch,
                                 desc="fine-tune")
    model.eval()
    return history


def last_loss(record: dict | None) -> float | None:
    """The total training loss of one ``History`` record (``None`` if absent or not finite)."""
    for k in ("loss", "train_loss", "total"):
        if record and k in record and isinstance(record[k], (int, float)) and math.isfinite(record[k]):
            return float(record[k])
    return None
