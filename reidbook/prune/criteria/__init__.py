"""The survey's channel-pruning criteria as pure functions (paper 003, §3.2, Table 2).

* :mod:`.weights` — criteria computed from **weights** (L1, L2, SIMC, FPGM) and the pieces of the three
  training procedures (Auto-Balanced's regulariser, PSFP's rate schedule, Play-and-Prune's AFP penalty and
  controller);
* :mod:`.data` — criteria computed from **data** (ThiNet, Channel Pruning, Entropy, Taylor, NISP).

Every function takes tensors (weights, or the statistics :mod:`reidbook.prune.activations` collects) and
returns one score per channel, higher = kept longer. How a criterion is applied to a whole model — which
statistics, which units — is the scorer registry's job (:mod:`reidbook.prune.scoring`).
"""
from .data import (
                   channel_contributions,
                   channel_pruning_scores,
                   entropy_scores,
                   lasso_fista,
                   least_squares_weights,
                   nisp_final_scores,
                   nisp_propagate,
                   nisp_resnet,
                   taylor_scores,
                   thinet_greedy,
                   thinet_scales,
                   thinet_scores,
)
from .weights import (
                   AFPRegularizer,
                   AutoBalancedRegularizer,
                   PruningRateController,
                   afp_initial_threshold,
                   afp_unimportant,
                   auto_balanced_lambda,
                   auto_balanced_split,
                   fpgm_scores,
                   l1_norm,
                   l2_norm,
                   psfp_rate,
                   psfp_schedule_coefficients,
                   simc_clusters,
                   simc_scores,
                   simc_similarity,
                   soft_prune_,
)

__all__ = [
    "l1_norm", "l2_norm", "simc_similarity", "simc_clusters", "simc_scores", "fpgm_scores",
    "auto_balanced_split", "auto_balanced_lambda", "AutoBalancedRegularizer",
    "psfp_schedule_coefficients", "psfp_rate", "soft_prune_",
    "afp_unimportant", "afp_initial_threshold", "AFPRegularizer", "PruningRateController",
    "channel_contributions", "thinet_greedy", "thinet_scores", "thinet_scales",
    "lasso_fista", "channel_pruning_scores", "least_squares_weights",
    "entropy_scores", "taylor_scores", "nisp_final_scores", "nisp_propagate", "nisp_resnet",
]
