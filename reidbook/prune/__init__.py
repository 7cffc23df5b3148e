"""Channel pruning (paper 003): criteria, a scorer registry, surgery that makes models physically smaller,
one-shot ``prune`` and the survey's strategies and design scenarios.

* :mod:`.criteria` — the criteria as pure functions: :mod:`.criteria.weights` (L1, L2, SIMC, FPGM and the
  pieces of Auto-Balanced, PSFP and Play-and-Prune) and :mod:`.criteria.data` (ThiNet, Channel Pruning,
  Entropy, Taylor, NISP);
* :mod:`.scoring` — the scorer registry: each criterion applied to a model's units, with its paper,
  section, equation and the strategy the survey pairs it with (:data:`SCORERS`, :data:`METHODS`);
* :mod:`.activations` — hooks that collect activations, gradients and conv samples;
* :mod:`.selection` — the multiply-add model and the selection rules; :mod:`.report` — the reports;
* :mod:`.surgery` — units of coupled channels, Torch-Pruning / hand-written surgery, soft masks,
  save and load of pruned models;
* :mod:`.api` — ``prune(model, method, ratio=… | target_macs=…, data=…)`` → ``(model, PruneReport)``;
* :mod:`.training` — fine-tuning and training with a penalty;
* :mod:`.strategies` — how pruning is *done* (survey §3.4): once, iteratively, by regularisation, layer by
  layer with reconstruction, progressively soft while training, PCB → ``(model, StrategyReport)``;
* :mod:`.scenarios` — the survey's four design scenarios (Fig. 2), source → target;
* :mod:`.measure` — what the pruning chapters measure: the slider's numbers, the evaluation subset, recovery;
* :mod:`.verdicts` — the survey's conclusions checked against a run, and sentences generated from its tables.
"""
from __future__ import annotations

from ..utils import lazy_exports

_EXPORTS = {
    "check_one_shot": "api",
    "layer_sensitivity": "api",
    "prune": "api",
    "CostReport": "report",
    "PruneReport": "report",
    "StrategyReport": "report",
    "DATA_METHODS": "scoring",
    "METHODS": "scoring",
    "SCORERS": "scoring",
    "TRAINING_PROCEDURES": "scoring",
    "WEIGHT_METHODS": "scoring",
    "Scorer": "scoring",
    "ScoringContext": "scoring",
    "distinct_methods": "scoring",
    "get_scorer": "scoring",
    "identical_by_construction": "scoring",
    "register_scorer": "scoring",
    "score_channels": "scoring",
    "unit_filters": "scoring",
    "MacModel": "selection",
    "select_channels": "selection",
    "top_channels": "selection",
    "uniform_widths": "selection",
    "C1": "strategies.common",
    "C2": "strategies.common",
    "STRATEGIES": "strategies.common",
    "default_strategy": "strategies.common",
    "prune_once": "strategies.one_shot",
    "prune_iterative": "strategies.iterative",
    "count_steps": "strategies.iterative",
    "auto_balanced_prune": "strategies.regularisation",
    "play_and_prune": "strategies.regularisation",
    "holdout_split": "strategies.regularisation",
    "prune_layerwise": "strategies.reconstruction",
    "progressive_soft_prune": "strategies.soft",
    "SOFT_CRITERIA": "strategies.soft",
    "prune_pcb": "strategies.pcb",
    "pcb_head_units": "strategies.pcb",
    "PCB_PARTS": "strategies.pcb",
    "PruneUnit": "surgery",
    "apply_selection": "surgery",
    "find_units": "surgery",
    "harden": "surgery",
    "load_pruned": "surgery",
    "prune_bottleneck": "surgery",
    "save_pruned": "surgery",
    "soft_prune_units": "surgery",
    "unit_widths": "surgery",
    "zeroed_channels": "surgery",
    "finetune": "training",
    "train_with_penalty": "training",
}

__all__ = sorted(_EXPORTS)

__getattr__, __dir__ = lazy_exports(__name__, _EXPORTS)
