"""The survey's channel-pruning criteria as pure functions (paper 003, §3.2, Table 2).

* :mod:`.weights` — criteria computed from **weights** (L1, L2, SIMC, FPGM) and the pieces of the three
  training procedures (Auto-Balanced's regulariser, PSFP's rate schedule, Play-and-Prune's AFP penalty and
  controller);
* :mod:`.data` — criteria computed from **data** (ThiNet, Channel Pruning, Entropy, Taylor, NISP).

Every function takes tensors (weights, or the statistics :mod:`reidbook.prune.activations` collects) and
returns one score per channel, higher = kept longer. How a criterion is applied to a whole model — which
statistics, which units — is the scorer registry's job (:mod:`reidbook.prune.scoring`).
"""
from __future__ import annotations

from ...utils import lazy_exports

_EXPORTS = {
    "l1_norm": "weights",
    "l2_norm": "weights",
    "simc_similarity": "weights",
    "simc_clusters": "weights",
    "simc_scores": "weights",
    "fpgm_scores": "weights",
    "auto_balanced_split": "weights",
    "auto_balanced_lambda": "weights",
    "AutoBalancedRegularizer": "weights",
    "psfp_schedule_coefficients": "weights",
    "psfp_rate": "weights",
    "soft_prune_": "weights",
    "afp_unimportant": "weights",
    "afp_initial_threshold": "weights",
    "AFPRegularizer": "weights",
    "PruningRateController": "weights",
    "channel_contributions": "data",
    "thinet_greedy": "data",
    "thinet_scores": "data",
    "thinet_scales": "data",
    "lasso_fista": "data", "lasso_path_scores": "data",
    "channel_pruning_scores": "data",
    "least_squares_weights": "data",
    "entropy_scores": "data",
    "taylor_scores": "data",
    "nisp_final_scores": "data",
    "nisp_propagate": "data",
    "nisp_resnet": "data",
}

__all__ = sorted(_EXPORTS)

__getattr__, __dir__ = lazy_exports(__name__, _EXPORTS)
