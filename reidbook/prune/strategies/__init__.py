"""How pruning is *done*: the survey's strategies (paper 003, §3.4 and Table 2's "strategy" column; §4 for the
experimental protocol with targets C1 ≈ 1/2 and C2 ≈ 1/3 of the original multiply-adds).

* :mod:`.one_shot` — :func:`prune_once`: prune in one step, then fine-tune (L1, SIMC, Entropy; Li et al. 2017);
* :mod:`.iterative` — :func:`prune_iterative`: re-rank, remove a step of the channels, retrain, repeat
  (Taylor, FPGM; the survey's §4 "≈5 % of the channels per iteration");
* :mod:`.regularisation` — :func:`auto_balanced_prune`, :func:`play_and_prune`: a penalty empties the
  channels to go before they are cut (Ding et al. 2018; Singh et al. 2019);
* :mod:`.reconstruction` — :func:`prune_layerwise`: layer by layer, refitting the next layer by least squares
  (ThiNet, Channel Pruning);
* :mod:`.soft` — :func:`progressive_soft_prune`: zero the weakest filters after every epoch at a growing rate,
  remove them at the end (PSFP; soft FPGM);
* :mod:`.pcb` — :func:`prune_pcb`: PSFP on PCB's backbone, optionally its head (Tables 8–9).

Every strategy stops on multiply-adds (``target_macs`` = fraction of the original kept, measured at
``input_size``) and returns ``(smaller model, StrategyReport)``. Retraining goes through
:mod:`reidbook.prune.training` (the preset's losses and optimiser). Which strategy the survey pairs with
each criterion is the registry's ``Scorer.strategy`` (:func:`default_strategy`).
"""
from __future__ import annotations

from ...utils import lazy_exports

_EXPORTS = {
    "C1": "common",
    "C2": "common",
    "check_target": "common",
    "STRATEGIES": "common",
    "default_strategy": "common",
    "prune_once": "one_shot",
    "prune_iterative": "iterative",
    "count_steps": "iterative",
    "auto_balanced_prune": "regularisation",
    "play_and_prune": "regularisation",
    "BalancedPenalty": "regularisation",
    "weak_share": "regularisation",
    "holdout_split": "regularisation",
    "prune_layerwise": "reconstruction",
    "RECONSTRUCTIONS": "reconstruction",
    "conv_samples": "reconstruction",
    "lasso_path_scores": "reconstruction",
    "relative_error": "reconstruction",
    "reconstruct_weight": "reconstruction",
    "progressive_soft_prune": "soft",
    "soft_prune_step": "soft",
    "harden_units": "soft",
    "SOFT_CRITERIA": "soft",
    "prune_pcb": "pcb",
    "pcb_head_units": "pcb",
    "PCB_PARTS": "pcb",
}

__all__ = sorted(_EXPORTS)

__getattr__, __dir__ = lazy_exports(__name__, _EXPORTS)
