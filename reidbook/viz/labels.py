"""Placing point labels so that they do not cover each other (the capstone's Pareto charts).

Models of similar cost and accuracy crowd together on a scatter plot, and labels drawn at one fixed offset
then print over each other. :func:`label_offsets` is a greedy placement in the plot's own units (points,
1/72 inch): each label, in turn, takes the first of a ring of candidate positions around its point whose
box overlaps no label already placed and no marker; if every candidate overlaps, the least-overlapping
one. It is a pure function of coordinates and text sizes, so it is tested without drawing anything;
:func:`annotate_points` measures the texts and applies it to a Matplotlib axis.
"""
from __future__ import annotations

from typing import Sequence

import numpy as np

__all__ = ["label_offsets", "annotate_points"]


def _candidates(w: float, h: float, gap: float, rings: int) -> list[tuple[float, float]]:
    """Offsets of a label's lower-left corner from its point: right-above first, then right-below,
    left-above, left-below, then the same further up and down, ring by ring."""
    out = []
    for r in range(rings):
        up, down = gap + r * (h + gap), -h - gap - r * (h + gap)
        out += [(gap, up), (gap, down), (-w - gap, up), (-w - gap, down)]
    return out


def _overlap(a: np.ndarray, boxes: np.ndarray) -> float:
    """Total overlap area of box ``a = (x0, y0, x1, y1)`` with each row of ``boxes``."""
    if len(boxes) == 0:
        return 0.0
    dx = np.minimum(a[2], boxes[:, 2]) - np.maximum(a[0], boxes[:, 0])
    dy = np.minimum(a[3], boxes[:, 3]) - np.maximum(a[1], boxes[:, 1])
    return float((np.clip(dx, 0, None) * np.clip(dy, 0, None)).sum())


def label_offsets(points: Sequence[Sequence[float]], sizes: Sequence[Sequence[float]], marker: float = 4.0,
                  gap: float = 3.0, rings: int = 4) -> list[tuple[float, float]]:
    """Offsets ``(dx, dy)`` (of each label's lower-left corner from its point) for labels of ``sizes``
    ``(width, height)`` at ``points`` ``(x, y)``, all in the same units (points). ``marker`` is the radius of
    the box kept free around every *other* point. Labels are placed in the given order, so put the important ones
    first."""
    pts = np.asarray(points, dtype=float).reshape(-1, 2)
    wh = np.asarray(sizes, dtype=float).reshape(-1, 2)
    if len(pts) != len(wh):
        raise ValueError(f"{len(pts)} points but {len(wh)} label sizes")
    if marker < 0 or gap < 0 or rings < 1:
        raise ValueError(f"marker and gap must be >= 0 and rings >= 1, got {marker}, {gap}, {rings}")
    markers = np.column_stack([pts - marker, pts + marker])
    placed: list[np.ndarray] = []
    offsets = []
    for i, ((x, y), (w, h)) in enumerate(zip(pts, wh)):
        best, best_cost = None, np.inf
        others = np.delete(markers, i, axis=0)  # a label may touch its own marker, as a label at (gap, gap) does
        for dx, dy in _candidates(w, h, gap, rings):
            box = np.array([x + dx, y + dy, x + dx + w, y + dy + h])
            cost = _overlap(box, np.array(placed).reshape(-1, 4)) + _overlap(box, others)
            if cost < best_cost:
                best, best_cost = (dx, dy), cost
            if cost == 0:
                break
        offsets.append(best)
        placed.append(np.array([x + best[0], y + best[1], x + best[0] + w, y + best[1] + h]))
    return offsets


def annotate_points(ax, xs: Sequence[float], ys: Sequence[float], labels: Sequence[str], fontsize: float = 6.5,
                    **kw) -> list:
    """Label data points ``(xs, ys)`` of ``ax`` with ``labels`` placed by :func:`label_offsets`; returns the
    Matplotlib annotations. Call it after everything that changes the axis limits or scales."""
    from matplotlib.textpath import TextPath

    ax.autoscale_view()
    to_pt = 72.0 / ax.figure.dpi
    pts = ax.transData.transform(np.column_stack([xs, ys])) * to_pt
    sizes = []
    for s in labels:
        ext = TextPath((0, 0), str(s), size=fontsize).get_extents()
        sizes.append((ext.width, fontsize))
    offsets = label_offsets(pts, sizes, **kw)
    return [ax.annotate(str(s), (x, y), xytext=off, textcoords="offset points", fontsize=fontsize, va="bottom")
            for s, x, y, off in zip(labels, xs, ys, offsets)]
