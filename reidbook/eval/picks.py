"""Which queries to show: the best, the median and the worst query by average precision.

Chapters show a rank list for three queries that span a model's range — the one it solves best, a typical
one and the one it fails worst — so that the pictures are chosen by a rule, not by hand. The rule is
here, once, so that every chapter that shows such a rank list picks the same way:

- ``best``: the query with the highest AP (the first in query order among ties);
- ``median``: the query at position ``n // 2`` of the ascending AP order (stable: ties keep query order),
  i.e. the upper median when ``n`` is even;
- ``worst``: the query with the lowest AP (the first in query order among ties).

AP per query is what :func:`reidbook.eval.evaluate_rank` returns in ``RankResult.all_AP``: one value per
*valid* query (a query with at least one true match in the gallery), in query order; ``RankResult.valid``
is the mask that maps those back to positions in the full query list.
"""
from __future__ import annotations

import numpy as np

__all__ = ["pick_queries", "query_ap", "PICK_NAMES"]

PICK_NAMES = ("best", "median", "worst")


def _valid_positions(valid, n: int) -> np.ndarray:
    """Positions in the full query list of the ``n`` valid queries (``valid`` a bool mask or indices)."""
    if valid is None:
        return np.arange(n)
    v = np.asarray(valid)
    if v.dtype == bool:
        if v.ndim != 1:
            raise ValueError(f"valid must be a 1-D mask over the queries, got shape {v.shape}")
        pos = np.flatnonzero(v)
    elif np.issubdtype(v.dtype, np.integer):
        pos = v.reshape(-1)
        if len(pos) and (pos.min() < 0 or np.any(np.diff(pos) <= 0)):
            raise ValueError("valid as indices must be increasing non-negative query positions "
                             "(or pass RankResult.valid, a bool mask)")
    else:
        raise ValueError(f"valid must be a bool mask over the queries (RankResult.valid) or query indices, "
                         f"got dtype {v.dtype}")
    if len(pos) != n:
        raise ValueError(f"valid marks {len(pos)} queries but ap_per_query has {n} values: pass the AP of the "
                         "valid queries only (RankResult.all_AP) with the mask of the same evaluation "
                         "(RankResult.valid)")
    return pos


def _as_ap(ap_per_query) -> np.ndarray:
    ap = np.asarray(ap_per_query, dtype=float).reshape(-1) if np.ndim(ap_per_query) <= 1 else None
    if ap is None:
        raise ValueError(f"ap_per_query must be 1-D (one AP per valid query), got shape {np.shape(ap_per_query)}")
    if len(ap) == 0:
        raise ValueError("ap_per_query is empty: no query has a true match in the gallery, so none can be picked")
    if not np.all(np.isfinite(ap)):
        raise ValueError(f"ap_per_query has {int(np.sum(~np.isfinite(ap)))} non-finite values (NaN/inf); "
                         "AP is a number in [0, 1] for every valid query")
    return ap


def pick_queries(ap_per_query, valid=None) -> dict[str, int]:
    """The best, median and worst query by AP (see the module docstring for the exact rule).

    Args:
        ap_per_query: AP of each valid query, in query order (``RankResult.all_AP``).
        valid: ``RankResult.valid`` (bool mask over all queries) or the increasing positions of the valid
            queries; ``None`` when ``ap_per_query`` already covers every query.

    Returns:
        ``{"best": i, "median": j, "worst": k}`` (in that order): positions in the full query list (in
        ``ap_per_query`` when ``valid`` is None). With one valid query all three are that query.
    """
    ap = _as_ap(ap_per_query)
    pos = _valid_positions(valid, len(ap))
    idx = np.arange(len(ap))
    ascending = np.lexsort((idx, ap))      # by AP, ties in query order
    descending = np.lexsort((idx, -ap))
    picked = {"best": descending[0], "median": ascending[len(ap) // 2], "worst": ascending[0]}
    return {name: int(pos[i]) for name, i in picked.items()}


def query_ap(ap_per_query, valid, query: int) -> float:
    """The AP of query ``query`` (a position in the full query list, as :func:`pick_queries` returns),
    read from the per-valid-query values; a clear error for a query without a true match."""
    ap = _as_ap(ap_per_query)
    pos = _valid_positions(valid, len(ap))
    where = np.searchsorted(pos, query)
    if where >= len(pos) or pos[where] != query:
        raise ValueError(f"query {query} has no true match in the gallery (not a valid query), so it has no AP")
    return float(ap[where])
