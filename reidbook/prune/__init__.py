"""Channel pruning (paper 003): criteria, surgery that makes models physically smaller, one-shot ``prune``.

* :mod:`.criteria` — weight criteria (L1, L2, SIMC, FPGM) and the pieces of Auto-Balanced, PSFP and
  Play-and-Prune (regularisers, rate schedule, controller);
* :mod:`.criteria_data` — data criteria (ThiNet, Channel Pruning, Entropy, Taylor, NISP);
* :mod:`.activations` — hooks that collect activations, gradients and conv samples;
* :mod:`.surgery` — units of coupled channels, Torch-Pruning / hand-written surgery, soft masks,
  save and load of pruned models;
* :mod:`.api` — ``prune(model, method, ratio=… | target_macs=…, data=…)`` → ``(model, PruneReport)``.
"""
from .api import (DATA_METHODS, METHODS, WEIGHT_METHODS, MacModel, PruneReport, finetune, layer_sensitivity, prune,
                  score_channels, select_channels)
from .surgery import (PruneUnit, apply_selection, find_units, harden, load_pruned, prune_bottleneck, save_pruned,
                      soft_prune_units, unit_widths, zeroed_channels)

__all__ = [
    "METHODS", "WEIGHT_METHODS", "DATA_METHODS", "prune", "score_channels", "select_channels", "MacModel",
    "PruneReport", "layer_sensitivity", "finetune", "PruneUnit", "find_units", "apply_selection", "prune_bottleneck",
    "harden", "soft_prune_units", "zeroed_channels", "unit_widths", "save_pruned", "load_pruned",
]
