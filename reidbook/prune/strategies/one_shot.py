"""Prune in one step, then fine-tune (paper 003, §3.4 and Table 2: L1, SIMC, Entropy; Li et al. 2017 §4)."""
from __future__ import annotations

from torch import nn

from ...profile import count_macs, count_params
from ..api import prune
from ..report import StrategyReport
from .common import C1, check_target, retrain

__all__ = ["prune_once"]


def prune_once(model: nn.Module, method: str, target_macs: float = C1, dataset=None, preset=None, epochs: int = 1,
               data=None, input_size=(256, 128), scope: str = "bottleneck", lr_scale: float = 0.1, device="auto",
               seed: int = 0, max_iters_per_epoch: int | None = None, **options) -> tuple[nn.Module, StrategyReport]:
    """Prune once to ``target_macs`` with ``method``, then fine-tune ``epochs`` epochs on ``dataset.train``
    (survey §3.4, "one-step pruning": Li et al. 2017 §4; Table 2). ``data`` feeds data criteria;
    ``options`` go to :func:`reidbook.prune.prune`. Fine-tuning is skipped without ``dataset``/``preset``.
    The input model is untouched."""
    target = check_target(target_macs)
    small, rep = prune(model, method, target_macs=target, data=data, input_size=input_size, scope=scope, seed=seed,
                       **options)
    loss = retrain(small, dataset, preset, epochs, lr_scale, device, seed, max_iters_per_epoch)
    small.eval()
    return small, StrategyReport(
        method=method, input_size=tuple(input_size), params_before=rep.params_before, params_after=count_params(small),
        macs_before=rep.macs_before, macs_after=count_macs(small, input_size), strategy="once", target_macs=target,
        iterations=[{"step": 1, "macs_ratio": rep.macs_ratio, "params_ratio": rep.params_ratio,
                     "channel_ratio": rep.channel_ratio, "loss": loss}])
