"""Rank lists, as MGN's Fig. 4: a query, then its top-k gallery matches framed green (same identity)
or red (not), each with its camera.

Gallery items of the query's identity seen by the query's camera are left out, exactly as the
evaluation protocol does (Market-1501; ``../shared/specs/evaluation.md`` step 2), so the list shows
what the metrics score. Generic: any distance matrix and any data set items ``(path, pid, camid)``;
chapters 00, 01, 02 and later reuse it.
"""
from __future__ import annotations

from typing import Sequence

import numpy as np

__all__ = ["rank_list", "plot_ranklist", "MATCH_COLOUR", "MISMATCH_COLOUR"]

MATCH_COLOUR = "#1a9850"     # green
MISMATCH_COLOUR = "#d73027"  # red


def _np(x) -> np.ndarray:
    if hasattr(x, "detach"):
        x = x.detach().cpu().numpy()
    return np.asarray(x)


def rank_list(distmat, q_pids, g_pids, q_camids, g_camids, query: int, topk: int = 10) -> dict:
    """The top-``topk`` gallery items for query row ``query`` under the evaluation protocol.

    Gallery items are ordered by increasing distance (ties by gallery index); items with the query's
    pid **and** camera ("same shot") are removed. Returns ``{"index": [k] gallery indices, "distance":
    [k], "match": [k] bool (same pid), "removed": number of same-shot items removed}``.
    """
    d = _np(distmat)
    if d.ndim != 2:
        raise ValueError(f"distmat must be [num_query, num_gallery], got shape {d.shape}")
    if not 0 <= query < d.shape[0]:
        raise IndexError(f"query {query} out of range: the distance matrix has {d.shape[0]} query rows")
    if topk < 1:
        raise ValueError(f"topk must be ≥ 1, got {topk}")
    qp, qc = _np(q_pids)[query], _np(q_camids)[query]
    gp, gc = _np(g_pids), _np(g_camids)
    if gp.shape[0] != d.shape[1] or gc.shape[0] != d.shape[1]:
        raise ValueError(f"{d.shape[1]} gallery columns but {gp.shape[0]} gallery pids / {gc.shape[0]} camids")
    order = np.argsort(d[query], kind="stable")
    same_shot = (gp[order] == qp) & (gc[order] == qc)
    kept = order[~same_shot][:topk]
    return {"index": kept, "distance": d[query, kept], "match": gp[kept] == qp, "removed": int(same_shot.sum())}


def _image(path: str, size: tuple[int, int] | None):
    from PIL import Image

    with Image.open(path) as im:
        im = im.convert("RGB")
        if size is not None:
            im = im.resize((size[1], size[0]))
        return np.asarray(im)


def _frame(ax, colour: str, width: float = 3.0) -> None:
    for s in ax.spines.values():
        s.set_visible(True)
        s.set_edgecolor(colour)
        s.set_linewidth(width)


def plot_ranklist(distmat, query_items: Sequence[tuple], gallery_items: Sequence[tuple],
                  queries: Sequence[int], topk: int = 10, image_size: tuple[int, int] | None = (128, 64),
                  show_distance: bool = False, title: str | None = None, row_labels: Sequence[str] | None = None):
    """Rank lists of several queries, one row each (MGN Fig. 4).

    ``query_items`` / ``gallery_items``: ``(path, pid, camid)`` per row / column of ``distmat``;
    ``queries``: query row indices to show. Each gallery crop gets a green (same identity) or red frame,
    its rank and camera (cameras shown 1-based, like the Market file names). ``row_labels`` prefixes
    each row (e.g. the model's name when comparing models on the same queries).
    """
    import matplotlib.pyplot as plt

    q_pids = [it[1] for it in query_items]
    q_cams = [it[2] for it in query_items]
    g_pids = [it[1] for it in gallery_items]
    g_cams = [it[2] for it in gallery_items]
    queries = list(queries)
    if not queries:
        raise ValueError("no queries to show")
    fig, axes = plt.subplots(len(queries), topk + 1, figsize=(0.95 * (topk + 1), 2.0 * len(queries) + 0.3),
                             squeeze=False)
    for r, q in enumerate(queries):
        rl = rank_list(distmat, q_pids, g_pids, q_cams, g_cams, q, topk)
        ax = axes[r, 0]
        ax.imshow(_image(query_items[q][0], image_size))
        _frame(ax, "black", 2.0)
        head = f"query\ncam {q_cams[q] + 1}"
        ax.set_title(head if row_labels is None else f"{row_labels[r]}\n{head}", fontsize=7)
        for k in range(topk):
            ax = axes[r, k + 1]
            if k < len(rl["index"]):
                g = int(rl["index"][k])
                ax.imshow(_image(gallery_items[g][0], image_size))
                _frame(ax, MATCH_COLOUR if rl["match"][k] else MISMATCH_COLOUR)
                lab = f"{k + 1}: cam {g_cams[g] + 1}"
                if show_distance:
                    lab += f"\nd={rl['distance'][k]:.2f}"
                ax.set_title(lab, fontsize=7)
            else:
                ax.axis("off")
        for ax in axes[r]:
            ax.set_xticks([]), ax.set_yticks([])
    if title:
        fig.suptitle(title, fontsize=10)
    fig.tight_layout()
    return fig
