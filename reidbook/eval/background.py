"""How much does a matcher match on background? Two probes that need no trained model to read.

* :func:`naive_histogram_metrics` — the plainest colour matcher (whole-crop HSV histograms on four
  stripes, cosine; :func:`reidbook.models.histogram.naive_histogram_features`) with the diagnostic
  that exposes a background shortcut: how often its top match is a stranger from the query's own
  camera. On crops that are mostly a camera-specific background this is nearly every query.

Both return plain numbers (fractions in [0, 1]) for tables and generated captions.
"""
from __future__ import annotations

from typing import Sequence

import numpy as np

from .distance import compute_distmat
from .metrics import evaluate_rank

__all__ = ["naive_histogram_metrics", "top1_same_camera"]


def _arrays(items: Sequence[tuple]) -> tuple[list, np.ndarray, np.ndarray]:
    return [p for p, _, _ in items], np.array([i[1] for i in items]), np.array([i[2] for i in items])


def top1_same_camera(distmat, q_camids, g_camids, q_pids=None, g_pids=None) -> float:
    """Fraction of queries whose nearest gallery item *that the protocol scores* comes from the query's camera.

    The Market-1501 protocol ignores gallery items of the query's own identity and camera, so those
    are skipped (when ``q_pids``/``g_pids`` are given); what remains from the query's camera is a
    stranger (or a distractor) — a match on the camera's look (background, light), not the person.
    """
    d = np.asarray(distmat, np.float64).copy()
    qc, gc = np.asarray(q_camids), np.asarray(g_camids)
    if d.shape != (len(qc), len(gc)):
        raise ValueError(f"top1_same_camera: distmat is {d.shape}, expected ({len(qc)}, {len(gc)})")
    if q_pids is not None and g_pids is not None:
        d[(np.asarray(q_pids)[:, None] == np.asarray(g_pids)[None, :]) & (qc[:, None] == gc[None, :])] = np.inf
    return float(np.mean(gc[d.argmin(1)] == qc)) if len(qc) else float("nan")


def naive_histogram_metrics(dataset, query: Sequence[tuple] | None = None) -> dict[str, float]:
    """Rank-1, mAP and the same-camera top-1 rate of the naive histogram matcher on ``dataset``.

    Args:
        dataset: anything with ``.query`` and ``.gallery`` lists of ``(path, pid, camid)``.
        query: score these query items instead of ``dataset.query`` (e.g. a background-swapped query).

    Returns ``{"rank1", "rank5", "mAP", "top1_same_camera", "chance_mAP"}``; ``chance_mAP`` is the mAP of
    a random ranking (seed 0), the floor a matcher that sees nothing reaches.
    """
    from ..models.histogram import naive_histogram_features

    q_paths, qp, qc = _arrays(dataset.query if query is None else query)
    g_paths, gp, gc = _arrays(dataset.gallery)
    if not q_paths or not g_paths:
        raise ValueError("naive_histogram_metrics: the query and the gallery must both be non-empty")
    d = compute_distmat(naive_histogram_features(q_paths), naive_histogram_features(g_paths), "cosine")
    r = evaluate_rank(d, qp, gp, qc, gc)
    chance = evaluate_rank(np.random.default_rng(0).random(d.shape).astype(np.float32), qp, gp, qc, gc)
    return {"rank1": float(r.cmc[0]), "rank5": float(r.cmc[4]), "mAP": float(r.mAP),
            "top1_same_camera": top1_same_camera(d, qc, gc, qp, gp), "chance_mAP": float(chance.mAP)}
