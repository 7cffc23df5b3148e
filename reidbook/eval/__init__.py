"""Evaluation: ranking metrics (CMC, mAP, mINP, official Market mAP), distances, re-ranking,
and whole-model evaluation.

Names are imported lazily (PEP 562 ``__getattr__``) so ``import reidbook.eval`` is cheap and the
sub-modules can be read one at a time:

- ``metrics.py``  — :func:`evaluate_rank` (Market-1501 protocol), :func:`evaluate_cuhk03_classic`,
  :func:`pool_multi_query`;
- ``distance.py`` — :func:`compute_distmat` (euclidean, squared euclidean, cosine);
- ``rerank.py``   — :func:`re_ranking`, :func:`re_ranking_features` (Zhong et al. CVPR 2017);
- ``evaluate.py`` — :func:`evaluate_model`, :func:`evaluate_features`, :func:`scalar_metrics`,
  :func:`model_metric` (the distance a model's embeddings use).
- ``background.py`` — :func:`naive_histogram_metrics`, :func:`top1_same_camera`, :func:`background_reliance`
  (mAP on SynthReID's query vs its background-swapped query).
- ``picks.py`` — :func:`pick_queries` (the best, median and worst query by AP, for rank lists), :func:`query_ap`.
- ``attention.py`` — saliency maps against SynthReID's masks: :func:`energy_share`, :func:`area_share`,
  :func:`energy_pointing_game`, :func:`pointing_hit`, :func:`part_shares`, :func:`attention_summary`.
- ``subset.py`` — :func:`evaluation_set`, :func:`evaluation_subset`: the pruning chapters' evaluation subset.
"""
from __future__ import annotations

from ..utils import lazy_exports

_EXPORTS = {
    "RankResult": "metrics",
    "evaluate_rank": "metrics",
    "hit_ranks": "metrics",
    "evaluate_cuhk03_classic": "metrics",
    "pool_multi_query": "metrics",
    "compute_distmat": "distance",
    "re_ranking": "rerank",
    "re_ranking_features": "rerank",
    "evaluate_model": "evaluate",
    "evaluate_features": "evaluate",
    "scalar_metrics": "evaluate",
    "model_metric": "evaluate",
    "naive_histogram_metrics": "background",
    "top1_same_camera": "background",
    "background_reliance": "background",
    "reliance_from_features": "background",
    "energy_share": "attention",
    "area_share": "attention",
    "energy_pointing_game": "attention",
    "pointing_hit": "attention",
    "part_shares": "attention",
    "part_area_shares": "attention",
    "attention_summary": "attention",
    "pick_queries": "picks",
    "query_ap": "picks",
    "evaluation_set": "subset",
    "evaluation_subset": "subset",
    "EvaluationSet": "subset",
}

__all__ = sorted(_EXPORTS)


__getattr__, __dir__ = lazy_exports(__name__, _EXPORTS)
