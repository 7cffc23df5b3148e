"""What every strategy shares: the survey's two targets, the target check and the short retraining."""
from __future__ import annotations

from ..scoring import SCORERS, STRATEGY_FUNCTIONS, check_method
from ..training import finetune, last_loss

__all__ = ["C1", "C2", "check_target", "retrain", "STRATEGIES", "default_strategy"]

STRATEGIES = tuple(STRATEGY_FUNCTIONS)  # once, iterative, auto_balanced, play_and_prune, layerwise, psfp

C1, C2 = 1 / 2, 1 / 3  # the survey's two compression targets (fraction of the multiply-adds kept, §4)


def check_target(target_macs: float) -> float:
    """``target_macs`` as a float if it is a fraction of the multiply-adds in (0, 1], else a ``ValueError``."""
    if not 0.0 < float(target_macs) <= 1.0:
        raise ValueError(f"target_macs must be in (0, 1] (fraction of the original multiply-adds kept; the survey's "
                         f"C1 = 1/2, C2 = 1/3), got {target_macs}")
    return float(target_macs)


def retrain(model, dataset, preset, epochs, lr_scale, device, seed, max_iters_per_epoch) -> float | None:
    """Short retraining through :func:`reidbook.prune.training.finetune` → the last epoch's loss; ``None``
    when skipped (no ``dataset`` / ``preset``, or ``epochs`` ≤ 0)."""
    if dataset is None or preset is None or epochs <= 0:
        return None
    hist = finetune(model, dataset, preset, epochs=epochs, lr_scale=lr_scale, device=device, seed=seed,
                    max_iters_per_epoch=max_iters_per_epoch)
    recs = getattr(hist, "records", None) or []
    return last_loss(recs[-1]) if recs else None


def default_strategy(method: str) -> str:
    """The strategy the survey pairs with ``method`` (Table 2's "strategy" column, via the scorer registry):
    L1, SIMC, Entropy and NISP once; Taylor and FPGM iteratively; Auto-Balanced and Play-and-Prune by
    regularisation; ThiNet and Channel Pruning layer by layer; PSFP softly while training."""
    return SCORERS[check_method(method)].strategy
