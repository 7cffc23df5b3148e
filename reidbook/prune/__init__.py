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
from .api import check_one_shot, layer_sensitivity, prune
from .report import CostReport, PruneReport, StrategyReport
from .scoring import (
                      DATA_METHODS,
                      METHODS,
                      SCORERS,
                      TRAINING_PROCEDURES,
                      WEIGHT_METHODS,
                      Scorer,
                      ScoringContext,
                      distinct_methods,
                      get_scorer,
                      identical_by_construction,
                      register_scorer,
                      score_channels,
                      unit_filters,
)
from .selection import MacModel, select_channels, top_channels, uniform_widths
from .strategies import (
                      C1,
                      C2,
                      PCB_PARTS,
                      SOFT_CRITERIA,
                      STRATEGIES,
                      auto_balanced_prune,
                      count_steps,
                      default_strategy,
                      holdout_split,
                      pcb_head_units,
                      play_and_prune,
                      progressive_soft_prune,
                      prune_iterative,
                      prune_layerwise,
                      prune_once,
                      prune_pcb,
)
from .surgery import (
                      PruneUnit,
                      apply_selection,
                      find_units,
                      harden,
                      load_pruned,
                      prune_bottleneck,
                      save_pruned,
                      soft_prune_units,
                      unit_widths,
                      zeroed_channels,
)
from .training import finetune, train_with_penalty

__all__ = [
    "METHODS", "WEIGHT_METHODS", "DATA_METHODS", "TRAINING_PROCEDURES", "SCORERS", "Scorer", "ScoringContext",
    "register_scorer", "get_scorer", "distinct_methods", "identical_by_construction", "unit_filters", "score_channels",
    "prune", "check_one_shot", "select_channels", "top_channels", "uniform_widths", "MacModel",
    "CostReport", "PruneReport", "StrategyReport", "layer_sensitivity", "finetune", "train_with_penalty",
    "PruneUnit", "find_units", "apply_selection", "prune_bottleneck",
    "harden", "soft_prune_units", "zeroed_channels", "unit_widths", "save_pruned", "load_pruned",
    "C1", "C2", "SOFT_CRITERIA", "STRATEGIES", "default_strategy", "prune_once", "prune_iterative", "count_steps",
    "progressive_soft_prune", "auto_balanced_prune", "play_and_prune", "holdout_split", "prune_layerwise",
    "prune_pcb", "pcb_head_units", "PCB_PARTS",
]
