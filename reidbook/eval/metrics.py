"""Ranking metrics for re-ID: CMC, mAP (common and official Market), mINP, CUHK03 classic.

Protocol (Zheng et al., "Scalable Person Re-identification: A Benchmark", ICCV 2015 — the
Market-1501 paper, Sec. 4 and its evaluation code; also used for DukeMTMC-reID, CUHK03-NP and
MSMT17), written out in ``shared/specs/evaluation.md``:

1. order the gallery by increasing distance, ties broken by gallery index;
2. drop gallery items with the query's pid **and** camera ("same shot": junk for this query);
3. ``rel[k] = 1`` where the k-th remaining item has the query's pid; a query without any hit is
   *invalid* and left out of every mean;
4. ``CMC_q[r] = 1`` if a hit is at rank ≤ r; truncated to ``max_rank`` (the value carries on);
5. common AP: ``AP_q = (1/H) Σ_k rel[k]·P@k`` (non-interpolated, H hits);
6. official Market AP (trapezoidal, ``compute_AP.m``): ``Σ_hits (1/H)·(P@(k−1) + P@k)/2`` with
   ``P@0 = 1``; never above the common AP;
7. ``INP_q = H / rank of the last hit`` (Ye et al., "Deep Learning for Person Re-identification: A
   Survey and Outlook", TPAMI 2021, Sec. 4.3, mINP).

Speed: every quantity above only needs the **ranks of the hits**, not a full sort of each row:
``rank(h) = 1 + #{valid j : (d_j, j) < (d_h, h)}``. Only items no farther than the query's last
hit can count, so each query keeps those "candidates" (a small part of the gallery for a trained
model), cuts their value range into buckets with a monotone map, histograms them, and reads
"items in lower buckets" off a cumulative sum; the few items sharing a bucket with a hit are
compared exactly (value, then gallery index). That is linear in the gallery size, chunked over
queries so memory stays bounded, and exact — ties included.
"""
from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np
import torch

__all__ = [
    "RankResult",
    "evaluate_rank",
    "hit_ranks",
    "evaluate_cuhk03_classic",
    "pool_multi_query",
]

# about this many distance entries per chunk (x 8 bytes for the int64 positions ≈ 32 MB)
_CHUNK_ELEMS = 1 << 22


@dataclass
class RankResult:
    """The result of :func:`evaluate_rank`.

    Attributes:
        cmc: ``[max_rank]`` mean CMC over valid queries (``cmc[0]`` is Rank-1).
        mAP: mean common (non-interpolated) AP over valid queries.
        mINP: mean inverse negative penalty (Ye et al.) over valid queries.
        mAP_official: mean trapezoidal AP of the official Market-1501 evaluation code.
        all_AP, all_AP_official, all_INP: per *valid* query values (in query order).
        valid: ``[num_query]`` bool mask of queries with at least one true match.
        first_hit: ``[num_query]`` rank (from 1) of the first true match; 0 for invalid queries.
        num_hits: ``[num_query]`` number of true matches after the same-shot removal.
    """

    cmc: np.ndarray
    mAP: float
    mINP: float
    mAP_official: float
    all_AP: np.ndarray
    all_AP_official: np.ndarray
    all_INP: np.ndarray
    valid: np.ndarray
    first_hit: np.ndarray = field(repr=False)
    num_hits: np.ndarray = field(repr=False)

    @property
    def num_valid(self) -> int:
        return int(self.valid.sum())

    @property
    def max_rank(self) -> int:
        return len(self.cmc)

    def rank(self, k: int) -> float:
        """Rank-k accuracy, i.e. ``cmc[k-1]`` (k from 1 to ``max_rank``)."""
        if not 1 <= k <= len(self.cmc):
            raise ValueError(f"rank({k}): k must be in 1..{len(self.cmc)} (max_rank of this evaluation)")
        return float(self.cmc[k - 1])

    def summary(self, ranks=(1, 5, 10, 20)) -> dict:
        """A flat dict: ``mAP``, ``mAP_official``, ``mINP`` and ``rank{k}`` for the given ranks."""
        out = {"mAP": float(self.mAP), "mAP_official": float(self.mAP_official), "mINP": float(self.mINP)}
        for k in ranks:
            if k <= len(self.cmc):
                out[f"rank{k}"] = self.rank(k)
        out["num_valid"] = self.num_valid
        return out

    def __str__(self) -> str:
        s = self.summary()
        ranks = "  ".join(f"R{k[4:]}={v:.2%}" for k, v in s.items() if k.startswith("rank"))
        return (f"mAP={s['mAP']:.2%}  mAP_official={s['mAP_official']:.2%}  mINP={s['mINP']:.2%}  "
                f"{ranks}  ({s['num_valid']} valid queries)")


# ----------------------------------------------------------------------------- input checks
def _as_numpy(x, name: str) -> np.ndarray:
    if isinstance(x, torch.Tensor):
        x = x.detach().cpu().numpy()
    try:
        return np.asarray(x)
    except Exception as e:  # pragma: no cover - exotic inputs
        raise ValueError(f"{name}: cannot be read as an array ({e})") from e


def _check_rank_inputs(distmat, q_pids, g_pids, q_camids, g_camids):
    distmat = _as_numpy(distmat, "distmat")
    if distmat.ndim != 2:
        raise ValueError(f"distmat must be 2-D [num_query, num_gallery], got shape {distmat.shape}")
    nq, ng = distmat.shape
    if nq == 0 or ng == 0:
        raise ValueError(f"distmat is empty (shape {distmat.shape}): need at least one query and one gallery item")
    arrays = {}
    for name, arr, n, side in (("q_pids", q_pids, nq, "rows"), ("g_pids", g_pids, ng, "columns"),
                               ("q_camids", q_camids, nq, "rows"), ("g_camids", g_camids, ng, "columns")):
        a = _as_numpy(arr, name)
        if a.ndim != 1 or a.shape[0] != n:
            raise ValueError(f"{name} must be 1-D with {n} entries (distmat has {n} {side}), got shape {a.shape}")
        if not np.issubdtype(a.dtype, np.integer):
            if np.issubdtype(a.dtype, np.floating) and np.all(a == np.round(a)):
                a = a.astype(np.int64)
            else:
                raise ValueError(f"{name} must hold integer ids, got dtype {a.dtype}")
        arrays[name] = a.astype(np.int64, copy=False)
    if distmat.dtype == np.float16 or not np.issubdtype(distmat.dtype, np.floating):
        if not (np.issubdtype(distmat.dtype, np.number) or distmat.dtype == np.bool_):
            raise ValueError(f"distmat must be numeric, got dtype {distmat.dtype}")
        distmat = distmat.astype(np.float64 if distmat.dtype != np.float16 else np.float32)
    return (np.ascontiguousarray(distmat), arrays["q_pids"], arrays["g_pids"],
            arrays["q_camids"], arrays["g_camids"])


# ----------------------------------------------------------------------------- core: hit ranks
def _hit_ranks_chunk(d: np.ndarray, qp, qc, g_pids, g_camids, g_order):
    """Ranks (from 1) of the true matches of a chunk of queries, in the filtered ordering.

    Returns ``(ranks [c, Hmax] int64, increasing along a row, 0 = padding; n_hit [c])``.

    rank(h) = 1 + #{valid j : (d_j, j) < (d_h, h)}, "valid" = not same-shot junk. Only items no
    farther than the query's last hit can count, so we keep those ("candidates"; with a trained
    model a small part of the gallery) and count them with a per-row histogram over value
    buckets (:func:`_count_before`), exactly, without sorting.
    """
    c, ng = d.shape
    if np.isnan(d.min()):
        r, j = np.argwhere(np.isnan(d))[0]
        raise ValueError(f"distmat contains NaN (at query row {r} of this chunk, gallery {j}); check the "
                         "features (a diverged model, or an all-zero feature with cosine distance)")
    pr, pc = _same_pid_pairs(qp, g_pids, g_order)          # same pid (sparse)
    same_cam = g_camids[pc] == qc[pr]
    hr, hc = pr[~same_cam], pc[~same_cam]                  # hits, row-major
    jr, jc = pr[same_cam], pc[same_cam]                    # same-shot junk
    n_hit = np.bincount(hr, minlength=c)
    hmax = int(n_hit.max()) if c else 0
    if hmax == 0:
        return np.zeros((c, 0), np.int64), n_hit
    hv = d[hr, hc]
    last = np.full(c, -np.inf, dtype=d.dtype)
    np.maximum.at(last, hr, hv)
    cand = d <= last[:, None]
    cand[jr, jc] = False
    n_item = np.count_nonzero(cand, axis=1)
    flat = np.flatnonzero(cand)                            # (much faster than 2-D nonzero)
    del cand
    with np.errstate(over="ignore", invalid="ignore"):  # float64 -> float32 of huge values
        before = _count_before(flat, n_item, d.reshape(-1)[flat], hr * ng + hc, hv, ng)
    rank = before + 1
    # order the hits of each row by rank and pad to [c, hmax]
    order = np.argsort(hr.astype(np.int64) * (ng + 2) + rank, kind="stable")
    hr_s, rank_s = hr[order], rank[order]
    k = np.arange(len(hr_s)) - (np.cumsum(n_hit) - n_hit)[hr_s]
    ranks = np.zeros((c, hmax), np.int64)
    ranks[hr_s, k] = rank_s
    return ranks, n_hit


def _same_pid_pairs(qp, g_pids, g_order):
    """All (query row, gallery index) pairs with the same pid, row-major, without a dense mask.

    ``g_order`` is a stable argsort of ``g_pids``.
    """
    gs = g_pids[g_order]
    first = np.searchsorted(gs, qp, "left")
    cnt = np.searchsorted(gs, qp, "right") - first
    pr = np.repeat(np.arange(len(qp)), cnt)
    pos = np.arange(len(pr)) - np.repeat(np.cumsum(cnt) - cnt, cnt)
    return pr, g_order[np.repeat(first, cnt) + pos]


def _count_before(flat, n_item, vals, h_flat, hv, ng):
    """For each hit: how many items of its row come before it.

    Items are given by their sorted flat indices ``row * ng + col`` into the chunk (``n_item`` per
    row) and values; hits likewise (``h_flat``, ``hv``), and every hit is also an item. "Before" =
    smaller value, or equal value and smaller column. Method: each row's value range is cut into
    B_r buckets by a monotone map u(v); items in lower buckets than a hit are before it (a
    histogram and a cumulative sum); items in a hit's own bucket are compared exactly.
    """
    c = len(n_item)
    starts = np.cumsum(n_item) - n_item
    nb = n_item // 2 + 1                                 # buckets per row: ~2 items each
    off = np.cumsum(nb + 1) - (nb + 1)                   # first bin of each row
    total = int(off[-1] + nb[-1] + 1)
    v32 = vals.astype(np.float32, copy=False)
    has = n_item > 0
    lo = np.zeros(c, np.float32)
    hi = np.zeros(c, np.float32)
    lo[has] = np.minimum.reduceat(v32, starts[has])
    hi[has] = np.maximum.reduceat(v32, starts[has])
    with np.errstate(divide="ignore", invalid="ignore", over="ignore"):
        span = hi - lo
        ok = np.isfinite(lo) & np.isfinite(hi) & (span > 0) & np.isfinite(span)
        scale = np.where(ok, (nb - 1) / np.where(ok, span, 1), 0).astype(np.float32)
    lo = np.where(ok, lo, 0).astype(np.float32)
    # u(v) = floor((v - lo_r) * scale_r): monotone in v (subtracting a constant and multiplying
    # by a constant >= 0 are monotone under rounding), in [0, nb_r - 1] since lo_r <= v <= hi_r
    t = v32 - np.repeat(lo, n_item)
    t *= np.repeat(scale, n_item)
    if not ok[has].all():                                # one value or infinities: all in bucket 0
        t[np.repeat(~ok, n_item)] = 0
    bucket = t.astype(np.int64)
    del t
    bucket += np.repeat(off, n_item)
    counts = np.bincount(bucket, minlength=total)
    excl = np.cumsum(counts) - counts                    # items in earlier bins (all rows)
    hit_item = np.searchsorted(flat, h_flat)             # hits are items
    hr = h_flat // ng
    hb = bucket[hit_item]
    before = excl[hb] - excl[off[hr]]                    # same row, strictly lower bucket
    # exact comparison inside the hits' buckets
    is_hit_bin = np.zeros(total, bool)
    is_hit_bin[hb] = True
    amb = np.flatnonzero(is_hit_bin[bucket])
    if len(amb):
        h_order = np.argsort(hb, kind="stable")
        hb_sorted = hb[h_order]
        a_b = bucket[amb]
        first = np.searchsorted(hb_sorted, a_b, "left")
        n_pairs = np.searchsorted(hb_sorted, a_b, "right") - first
        step = 1 << 22
        cum = np.cumsum(n_pairs)
        s = 0
        while s < len(amb):                              # blocks of about `step` pairs
            e = int(np.searchsorted(cum, (cum[s - 1] if s else 0) + step, "right"))
            e = max(e, s + 1)
            np_blk = n_pairs[s:e]
            a_idx = np.repeat(amb[s:e], np_blk)
            pos = np.arange(len(a_idx)) - np.repeat(np.cumsum(np_blk) - np_blk, np_blk)
            h_idx = h_order[np.repeat(first[s:e], np_blk) + pos]
            va, vh = vals[a_idx], hv[h_idx]
            # same bucket implies same row, so comparing flat indices compares columns
            less = (va < vh) | ((va == vh) & (flat[a_idx] < h_flat[h_idx]))
            before += np.bincount(h_idx[less], minlength=len(h_flat))
            s = e
    return before


def hit_ranks(distmat, q_pids, g_pids, q_camids, g_camids):
    """Per query, the ranks (from 1, increasing) of its true matches under the Market protocol.

    Returns a list of int64 arrays (empty for invalid queries). This is all that CMC, AP and INP
    need; see the module docstring for how it is computed without sorting each row.
    """
    distmat, q_pids, g_pids, q_camids, g_camids = _check_rank_inputs(distmat, q_pids, g_pids, q_camids, g_camids)
    out = []
    for _s, ranks, n_hit in _iter_hit_ranks(distmat, q_pids, g_pids, q_camids, g_camids):
        out.extend(ranks[i, :n_hit[i]].copy() for i in range(len(n_hit)))
    return out


def _iter_hit_ranks(distmat, q_pids, g_pids, q_camids, g_camids):
    nq, ng = distmat.shape
    step = max(1, _CHUNK_ELEMS // ng)
    g_order = np.argsort(g_pids, kind="stable")
    for s in range(0, nq, step):
        e = min(nq, s + step)
        ranks, n_hit = _hit_ranks_chunk(distmat[s:e], q_pids[s:e], q_camids[s:e], g_pids, g_camids, g_order)
        yield s, ranks, n_hit


# ----------------------------------------------------------------------------- the protocol
def evaluate_rank(distmat, q_pids, g_pids, q_camids, g_camids, max_rank: int = 50) -> RankResult:
    """Market-1501 evaluation (Zheng et al. ICCV 2015) of a query × gallery distance matrix.

    Args:
        distmat: ``[num_query, num_gallery]`` distances (numpy or torch; smaller = more similar).
        q_pids, g_pids: identity labels (distractors pid 0 are ordinary negatives; junk ``-1`` should
            have been dropped by the loader — if present they are ordinary negatives too).
        q_camids, g_camids: camera ids.
        max_rank: length of the CMC curve. With fewer gallery items the curve simply carries on.

    Returns:
        :class:`RankResult` with CMC, mAP (common), ``mAP_official`` (trapezoidal, official Market
        code), mINP (Ye et al. TPAMI 2021) and per-query values.

    Raises:
        ValueError: on shape/dtype mismatches, NaN distances, or when no query has a true match.
    """
    distmat, q_pids, g_pids, q_camids, g_camids = _check_rank_inputs(distmat, q_pids, g_pids, q_camids, g_camids)
    if int(max_rank) < 1:
        raise ValueError(f"max_rank must be >= 1, got {max_rank}")
    max_rank = int(max_rank)
    nq = distmat.shape[0]
    first_hit = np.zeros(nq, np.int64)
    num_hits = np.zeros(nq, np.int64)
    ap = np.zeros(nq)
    ap_off = np.zeros(nq)
    inp = np.zeros(nq)
    for s, ranks, n_hit in _iter_hit_ranks(distmat, q_pids, g_pids, q_camids, g_camids):
        e = s + len(n_hit)
        num_hits[s:e] = n_hit
        if ranks.shape[1] == 0:
            continue
        mask = ranks > 0
        k = np.arange(1, ranks.shape[1] + 1, dtype=np.float64)[None, :]  # hits up to and incl. this one
        r = np.where(mask, ranks, 1).astype(np.float64)
        h = np.maximum(n_hit, 1).astype(np.float64)
        prec = k / r                                   # P@rank_k
        prev = np.where(r > 1, (k - 1) / np.maximum(r - 1, 1), 1.0)  # P@(rank_k - 1), P@0 = 1
        ap[s:e] = np.where(mask, prec, 0).sum(1) / h
        ap_off[s:e] = np.where(mask, (prec + prev) / 2, 0).sum(1) / h
        last = ranks[np.arange(len(n_hit)), np.maximum(n_hit - 1, 0)]
        inp[s:e] = np.where(n_hit > 0, n_hit / np.maximum(last, 1), 0)
        first_hit[s:e] = ranks[:, 0]
    valid = num_hits > 0
    if not valid.any():
        raise ValueError("no query has a true match in the gallery (same pid, other camera): "
                         "check that query and gallery come from the same test split and that pids/camids are right")
    fh = first_hit[valid]
    cmc = (fh[:, None] <= np.arange(1, max_rank + 1)[None, :]).mean(0)
    return RankResult(
        cmc=cmc.astype(np.float64),
        mAP=float(ap[valid].mean()),
        mINP=float(inp[valid].mean()),
        mAP_official=float(ap_off[valid].mean()),
        all_AP=ap[valid],
        all_AP_official=ap_off[valid],
        all_INP=inp[valid],
        valid=valid,
        first_hit=first_hit,
        num_hits=num_hits,
    )


# ----------------------------------------------------------------------------- CUHK03 classic
def evaluate_cuhk03_classic(distmat, q_pids, g_pids, q_camids, g_camids, max_rank: int = 50,
                            num_repeats: int = 10, seed: int = 0) -> RankResult:
    """CUHK03 classic single-gallery-shot evaluation (Li et al., "DeepReID", CVPR 2014).

    As :func:`evaluate_rank`, but for the CMC each remaining gallery identity contributes one
    randomly chosen image; this is repeated ``num_repeats`` times (seeded) and averaged. AP, the
    official AP and INP use the full remaining list (as the common evaluation code does).
    """
    full = evaluate_rank(distmat, q_pids, g_pids, q_camids, g_camids, max_rank=max_rank)
    distmat, q_pids, g_pids, q_camids, g_camids = _check_rank_inputs(distmat, q_pids, g_pids, q_camids, g_camids)
    if num_repeats < 1:
        raise ValueError(f"num_repeats must be >= 1, got {num_repeats}")
    rng = np.random.default_rng(seed)
    ranks_r = np.arange(1, max_rank + 1)
    all_cmc = []
    for q in np.flatnonzero(full.valid):
        keep = ~((g_pids == q_pids[q]) & (g_camids == q_camids[q]))
        idx = np.flatnonzero(keep)
        pids = g_pids[idx]
        dist = distmat[q, idx]
        # items grouped by pid; one random representative per pid and repeat
        uniq, inv = np.unique(pids, return_inverse=True)
        cmc = np.zeros(max_rank)
        for _ in range(num_repeats):
            key = rng.random(len(idx))
            order = np.lexsort((key, inv))            # by pid, then random
            first = np.ones(len(idx), bool)
            first[1:] = inv[order][1:] != inv[order][:-1]
            chosen = order[first]                      # one item per identity
            c_d, c_i, c_p = dist[chosen], idx[chosen], pids[chosen]
            h = np.flatnonzero(c_p == q_pids[q])[0]    # the query identity's representative
            rank = 1 + np.count_nonzero((c_d < c_d[h]) | ((c_d == c_d[h]) & (c_i < c_i[h])))
            cmc += rank <= ranks_r
        all_cmc.append(cmc / num_repeats)
    full.cmc = np.mean(all_cmc, axis=0)
    return full


# ----------------------------------------------------------------------------- multi-query
def pool_multi_query(qf, q_pids, q_camids, method: str = "mean", per_query: bool = False):
    """Market-1501 multi-query ("MQ", Zheng et al. ICCV 2015 Sec. 5.2): pool the features of all
    query images of one person under one camera into one query feature.

    Args:
        qf: ``[N, D]`` query features (torch or numpy).
        method: ``"mean"`` (average pooling) or ``"max"`` (element-wise max pooling).
        per_query: if True, return one (pooled) feature per original query, so the query count and
            labels are unchanged (each query is replaced by its group's pooled feature); else one
            feature per (pid, camid) group.

    Returns:
        ``(features, pids, camids)`` of the same array type as ``qf`` (float32).
    """
    if method not in ("mean", "max"):
        raise ValueError(f"pool_multi_query: method must be 'mean' or 'max', got {method!r}")
    is_torch = isinstance(qf, torch.Tensor)
    f = torch.as_tensor(_as_numpy(qf, "qf") if not is_torch else qf.detach().cpu(), dtype=torch.float32)
    if f.ndim != 2:
        raise ValueError(f"qf must be 2-D [num_query, dim], got shape {tuple(f.shape)}")
    p = _as_numpy(q_pids, "q_pids").astype(np.int64)
    c = _as_numpy(q_camids, "q_camids").astype(np.int64)
    if p.shape != (f.shape[0],) or c.shape != (f.shape[0],):
        raise ValueError(f"q_pids / q_camids must be 1-D with {f.shape[0]} entries, got {p.shape} / {c.shape}")
    keys, inv = np.unique(np.stack([p, c], 1), axis=0, return_inverse=True)
    inv = inv.reshape(-1)
    index = torch.from_numpy(inv)[:, None].expand_as(f)
    pooled = torch.zeros(len(keys), f.shape[1], dtype=f.dtype)
    if method == "mean":
        pooled.scatter_reduce_(0, index, f, reduce="mean", include_self=False)
    else:
        pooled.scatter_reduce_(0, index, f, reduce="amax", include_self=False)
    if per_query:
        pooled, pids, cams = pooled[torch.from_numpy(inv)], p, c
    else:
        pids, cams = keys[:, 0].copy(), keys[:, 1].copy()
    return (pooled if is_torch else pooled.numpy()), pids, cams
