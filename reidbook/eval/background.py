"""How much does a matcher match on background? Two probes that need no trained model to read.

* :func:`naive_histogram_metrics` — the plainest colour matcher (whole-crop HSV histograms on four
  stripes, cosine; :func:`reidbook.models.histogram.naive_histogram_features`) with the diagnostic
  that exposes a background shortcut: how often its top match is a stranger from the query's own
  camera. On crops that are mostly a camera-specific background this is nearly every query.
* :func:`background_reliance` — a model's mAP on SynthReID's query and on its *background-swapped*
  query (``query_bgswap/``: the same people, poses, occluders and camera light, on another camera's
  background; :func:`reidbook.data.load_bgswap_query`) against the same gallery. A model that matches
  people loses little; one that matches places loses much. The drop is the measure.

Both return plain numbers (fractions in [0, 1]) for tables and generated captions.
"""
from __future__ import annotations

from typing import Sequence

import numpy as np

from .distance import compute_distmat
from .metrics import evaluate_rank

__all__ = ["naive_histogram_metrics", "top1_same_camera", "background_reliance", "reliance_from_features",
           "describe_reliance"]


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


def reliance_from_features(qf, qf_swap, gf, q_pids, g_pids, q_camids, g_camids, metric: str = "euclidean") -> dict:
    """:func:`background_reliance` from ready-made features (query, swapped query, gallery).

    Returns ``{"mAP", "mAP_swap", "rank1", "rank1_swap", "drop", "relative_drop", "top1_same_camera",
    "top1_same_camera_swap"}``: ``drop = mAP - mAP_swap``, ``relative_drop = drop / mAP``.
    """
    from .evaluate import evaluate_features

    a = evaluate_features(qf, gf, q_pids, g_pids, q_camids, g_camids, metric=metric)
    b = evaluate_features(qf_swap, gf, q_pids, g_pids, q_camids, g_camids, metric=metric)
    drop = a["mAP"] - b["mAP"]
    return {"mAP": float(a["mAP"]), "mAP_swap": float(b["mAP"]), "rank1": float(a["rank1"]),
            "rank1_swap": float(b["rank1"]), "drop": float(drop),
            "relative_drop": float(drop / a["mAP"]) if a["mAP"] > 0 else float("nan"),
            "top1_same_camera": top1_same_camera(a["distmat"], q_camids, g_camids, q_pids, g_pids),
            "top1_same_camera_swap": top1_same_camera(b["distmat"], q_camids, g_camids, q_pids, g_pids)}


def background_reliance(model, dataset, height: int, width: int, device="auto", flip: bool = True,
                        metric: str | None = None, batch_size: int = 64, num_workers: int = 0) -> dict:
    """How much ``model`` matches on background: its mAP on the query and on the background-swapped query.

    The gallery is embedded once; the query twice (as it is, and from ``query_bgswap/``). Only the
    background differs between the two queries, so the drop in mAP is what the background contributed
    (a model that ignores background keeps its mAP; the swap can also *help* a model that was misled by
    its own camera's background: then the drop is negative). ``metric=None``: the model's own distance.

    Returns :func:`reliance_from_features`'s dict. Raises ``MasksNotAvailableError`` (from
    :func:`reidbook.data.load_bgswap_query`) on data sets without the swapped query.
    """
    from ..data import build_transforms, load_bgswap_query
    from ..engine.extract import extract_features
    from .evaluate import _loader, model_metric

    swapped = load_bgswap_query(dataset)
    metric = model_metric(model) if metric is None else metric
    transform = build_transforms(height, width, is_train=False)

    def embed(items, desc):
        return extract_features(model, _loader(items, transform, batch_size, num_workers), device=device, flip=flip,
                                desc=desc)

    qf, q_pids, q_camids = embed(dataset.query, "query features")
    qs, _, _ = embed(swapped, "swapped query features")
    gf, g_pids, g_camids = embed(dataset.gallery, "gallery features")
    return reliance_from_features(qf, qs, gf, q_pids, g_pids, q_camids, g_camids, metric=metric)


def describe_reliance(results, points: float = 1.0) -> str:
    """One sentence per model from :func:`background_reliance` results ``{name: dict}``, read by sign:

    * the mAP falls by more than ``points``: part of what the model matches is background;
    * it moves by at most ``points``: the background contributes little;
    * it *rises* by more than ``points``: the query's own camera background was misleading the model
      (strangers on the same background ranked high; the same-camera top-1 rate is quoted).

    With two or more models, a last sentence names the one whose mAP the swap moves least. A sentence that
    starts with a model's name capitalises it ("baseline" → "Baseline: …").
    """
    if not results:
        raise ValueError("describe_reliance: no results to describe")
    out = []
    for name, r in results.items():
        head = (f"{name[:1].upper() + name[1:]}: {100 * r['mAP']:.1f} → {100 * r['mAP_swap']:.1f} % mAP with the "
                "background swapped "
                f"({-100 * r['drop']:+.1f} points)")
        if abs(100 * r["drop"]) <= points:
            out.append(f"{head} — the background contributes little to its matches.")
        elif r["drop"] > 0:
            out.append(f"{head} — part of what it matches is background.")
        elif "top1_same_camera" in r and "top1_same_camera_swap" in r:
            out.append(f"{head} — its own camera's background was misleading it: the top match is a stranger from the "
                       f"query's camera for {r['top1_same_camera']:.0%} of the queries, "
                       f"{r['top1_same_camera_swap']:.0%} after the swap.")
        else:
            out.append(f"{head} — its own camera's background was misleading it.")
    if len(results) > 1:
        steady = min(results, key=lambda k: abs(results[k]["drop"]))
        out.append(f"The swap moves {steady}'s mAP least.")
    return " ".join(out)
