"""Evaluate a model (or ready-made features) on a data set's query/gallery split.

The standard re-ID pipeline: embed query and gallery images (flip-averaged), compute distances,
optionally re-rank them (Zhong et al. CVPR 2017), then score with the Market-1501 protocol
(Zheng et al. ICCV 2015: CMC and mAP; Ye et al. TPAMI 2021: mINP).
"""
from __future__ import annotations

import numbers
import time

from .distance import compute_distmat
from .metrics import evaluate_rank
from .rerank import re_ranking_features

__all__ = ["evaluate_features", "evaluate_model", "model_metric", "scalar_metrics"]


def model_metric(model) -> str:
    """The distance a model's embeddings are compared with: the model protocol's ``metric``
    (:func:`reidbook.models.base.metric_of`: GraftedNet and FD students ``"cosine"``, BoT's ``full``
    baseline too), else ``"euclidean"``. The one place the CLI, the zoo, the comparison and the
    chapters read it from (through :func:`evaluate_model`'s default)."""
    from ..models.base import metric_of

    return metric_of(model)


def scalar_metrics(metrics: dict) -> dict[str, float]:
    """The numbers of an evaluation dict as plain floats, for JSON and tables: drops the raw ``result``
    object and the ``distmat`` that :func:`evaluate_features` / :func:`evaluate_model` also return."""
    return {k: float(v) for k, v in metrics.items() if isinstance(v, numbers.Real) and not isinstance(v, bool)}


def evaluate_features(qf, gf, q_pids, g_pids, q_camids, g_camids, metric: str = "euclidean",
                      rerank: bool = False, max_rank: int = 50, k1: int = 20, k2: int = 6,
                      lambda_value: float = 0.3) -> dict:
    """Score query/gallery features with the Market-1501 protocol.

    Args:
        qf, gf: ``[Q, D]`` / ``[G, D]`` features (torch or numpy).
        metric: ``"euclidean"``, ``"sqeuclidean"`` or ``"cosine"`` (see :func:`compute_distmat`).
        rerank: apply k-reciprocal re-ranking (``k1``, ``k2``, ``lambda_value``) computed from the
            features without a G×G matrix (:func:`re_ranking_features`).

    Returns:
        ``{"mAP", "mAP_official", "mINP", "rank1", "rank5", "rank10", "rank20", "result", "distmat"}``
        (fractions in [0, 1]; ``result`` is the :class:`~reidbook.eval.metrics.RankResult`).
    """
    if rerank:
        distmat = re_ranking_features(qf, gf, k1=k1, k2=k2, lambda_value=lambda_value, metric=metric)
    else:
        distmat = compute_distmat(qf, gf, metric)
    result = evaluate_rank(distmat, q_pids, g_pids, q_camids, g_camids, max_rank=max_rank)
    out = result.summary(ranks=(1, 5, 10, 20))
    out["result"] = result
    out["distmat"] = distmat
    return out


def _loader(items, transform, batch_size, num_workers):
    from torch.utils.data import DataLoader

    from ..data import ImageDataset

    return DataLoader(ImageDataset(items, transform), batch_size=batch_size, shuffle=False,
                      num_workers=num_workers, pin_memory=False)


def evaluate_model(model, dataset, height: int, width: int, device="auto", flip: bool = True,
                   metric: str | None = None, rerank: bool = False, batch_size: int = 64,
                   num_workers: int = 0, normalize: bool = False, max_rank: int = 50) -> dict:
    """Embed ``dataset.query`` and ``dataset.gallery`` with ``model`` and score them.

    Args:
        model: returns its test-time embedding ``[B, D]`` in ``eval()`` mode; its train/eval mode is
            restored afterwards.
        dataset: anything with ``.query`` and ``.gallery`` lists of ``(path, pid, camid)``
            (``reidbook.data.load_dataset(...)``).
        height, width: test input size (the model's preset), resized by
            ``reidbook.data.build_transforms(height, width, is_train=False)``.
        flip: average each embedding with its horizontal flip's; normalize: L2-normalise them.
        metric: the distance; ``None`` (default) = the model's own (:func:`model_metric`).

    Returns:
        :func:`evaluate_features`'s dict plus ``num_query``, ``num_gallery`` and ``seconds``.
    """
    from ..data import build_transforms
    from ..engine.extract import extract_features

    for split in ("query", "gallery"):
        items = getattr(dataset, split, None)
        if items is None:
            raise TypeError(f"evaluate_model: dataset has no .{split} split; pass a ReIDDataset from "
                            "reidbook.data.load_dataset(...)")
        if len(items) == 0:
            raise ValueError(f"evaluate_model: dataset.{split} is empty; check the data set folder "
                             f"({getattr(dataset, 'root', '?')})")
    metric = model_metric(model) if metric is None else metric
    t0 = time.perf_counter()
    transform = build_transforms(height, width, is_train=False)
    qf, q_pids, q_camids = extract_features(model, _loader(dataset.query, transform, batch_size, num_workers),
                                            device=device, flip=flip, normalize=normalize, desc="query features")
    gf, g_pids, g_camids = extract_features(model, _loader(dataset.gallery, transform, batch_size, num_workers),
                                            device=device, flip=flip, normalize=normalize, desc="gallery features")
    out = evaluate_features(qf, gf, q_pids, g_pids, q_camids, g_camids, metric=metric, rerank=rerank,
                            max_rank=max_rank)
    out.update(num_query=len(q_pids), num_gallery=len(g_pids), seconds=time.perf_counter() - t0)
    return out
