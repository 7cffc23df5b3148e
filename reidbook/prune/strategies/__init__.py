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
from ..scoring import SCORERS, STRATEGY_FUNCTIONS
from ..training import train_with_penalty
from .common import C1, C2, check_target
from .iterative import count_steps, prune_iterative
from .one_shot import prune_once
from .pcb import PCB_PARTS, pcb_head_units, prune_pcb
from .reconstruction import RECONSTRUCTIONS, conv_samples, lasso_path_scores, prune_layerwise, relative_error
from .regularisation import BalancedPenalty, auto_balanced_prune, holdout_split, play_and_prune, weak_share
from .soft import SOFT_CRITERIA, harden_units, progressive_soft_prune, soft_prune_step

__all__ = ["C1", "C2", "check_target", "STRATEGIES", "default_strategy", "prune_once", "prune_iterative", "count_steps",
           "auto_balanced_prune", "play_and_prune", "BalancedPenalty", "weak_share", "holdout_split",
           "prune_layerwise", "RECONSTRUCTIONS", "conv_samples", "lasso_path_scores", "relative_error",
           "progressive_soft_prune", "soft_prune_step", "harden_units", "SOFT_CRITERIA",
           "prune_pcb", "pcb_head_units", "PCB_PARTS", "train_with_penalty"]

STRATEGIES = tuple(STRATEGY_FUNCTIONS)  # once, iterative, auto_balanced, play_and_prune, layerwise, psfp


def default_strategy(method: str) -> str:
    """The strategy the survey pairs with ``method`` (Table 2's "strategy" column, via the scorer registry):
    L1, SIMC, Entropy and NISP once; Taylor and FPGM iteratively; Auto-Balanced and Play-and-Prune by
    regularisation; ThiNet and Channel Pruning layer by layer; PSFP softly while training."""
    from ..scoring import check_method

    return SCORERS[check_method(method)].strategy
