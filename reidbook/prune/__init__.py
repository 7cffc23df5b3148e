"""Channel pruning (paper 003): criteria, surgery that makes models physically smaller, one-shot ``prune``.

* :mod:`.criteria` — weight criteria (L1, L2, SIMC, FPGM) and the pieces of Auto-Balanced, PSFP and
  Play-and-Prune (regularisers, rate schedule, controller);
* :mod:`.criteria_data` — data criteria (ThiNet, Channel Pruning, Entropy, Taylor, NISP);
* :mod:`.activations` — hooks that collect activations, gradients and conv samples;
* :mod:`.surgery` — units of coupled channels, Torch-Pruning / hand-written surgery, soft masks,
  save and load of pruned models;
* :mod:`.api` — ``prune(model, method, ratio=… | target_macs=…, data=…)`` → ``(model, PruneReport)``;
* :mod:`.strategies`, :mod:`.strategies_reg`, :mod:`.strategies_recon`, :mod:`.strategies_pcb` — how pruning
  is *done* (survey §3.4): once, iteratively, by regularisation, layer by layer with reconstruction,
  progressively soft while training; each stops on a multiply-add target → ``(model, StrategyReport)``;
* :mod:`.scenarios` — the survey's four design scenarios (Fig. 2), source → target.
"""
from .api import (DATA_METHODS, METHODS, WEIGHT_METHODS, MacModel, PruneReport, finetune, layer_sensitivity, prune,
                  score_channels, select_channels)
from .surgery import (PruneUnit, apply_selection, find_units, harden, load_pruned, prune_bottleneck, save_pruned,
                      soft_prune_units, unit_widths, zeroed_channels)

from .strategies import (C1, C2, SOFT_CRITERIA, StrategyReport, progressive_soft_prune, prune_iterative,
                         prune_once)
from .strategies_pcb import PCB_PARTS, pcb_head_units, prune_pcb
from .strategies_recon import prune_layerwise
from .strategies_reg import auto_balanced_prune, holdout_split, play_and_prune

__all__ = [
    "METHODS", "WEIGHT_METHODS", "DATA_METHODS", "prune", "score_channels", "select_channels", "MacModel",
    "PruneReport", "layer_sensitivity", "finetune", "PruneUnit", "find_units", "apply_selection", "prune_bottleneck",
    "harden", "soft_prune_units", "zeroed_channels", "unit_widths", "save_pruned", "load_pruned",
    "C1", "C2", "SOFT_CRITERIA", "StrategyReport", "prune_once", "prune_iterative", "progressive_soft_prune",
    "auto_balanced_prune", "play_and_prune", "holdout_split", "prune_layerwise", "prune_pcb", "pcb_head_units",
    "PCB_PARTS",
]
