"""k-reciprocal re-ranking (Zhong, Zheng, Cao, Li, "Re-ranking Person Re-identification with
k-reciprocal Encoding", CVPR 2017), computed from each row's nearest neighbours and a sparse V.

Same inputs and the same output as the authors' public implementation (``re_ranking`` in their
python version; steps written out in ``shared/specs/evaluation.md``), with N = Q + G:

1. assemble the N×N distances ``[[q_q, q_g], [q_gᵀ, g_g]]``, **square** them and divide each row by
   its maximum → ``d`` (float32);
2. ``R(i, k)``: the k+1 nearest items of i under d, i included (ties: lower index first);
3. k-reciprocal set (Eq. 2–3): ``{j ∈ R(i, k1) : i ∈ R(j, k1)}``;
4. expansion (Eq. 8): add the ``round(k1/2)``-reciprocal set of each member j when more than 2/3
   of it already lies in i's set → ``S(i)``;
5. Gaussian-kernel encoding (Eq. 7): ``V[i, j] = exp(−d[i, j]) / Σ_{j'∈S(i)} exp(−d[i, j'])``;
6. local query expansion (Eq. 12): ``V[i] ← mean of V[j], j ∈ R(i, k2 − 1)``;
7. Jaccard distance (Eq. 11, with min/max as in Eq. 10): ``1 − m/(2 − m)``, ``m = Σ_t min(V[i,t], V[j,t])``;
8. final distance (Eq. 13): ``(1 − λ)·Jaccard + λ·d`` on the query rows and gallery columns.

How this differs from the authors' code (the output does not, up to float rounding ≤ 1e-6):
- they build several dense N×N arrays (distances, an argsort of every row, V, V after query
  expansion: ~8.5 GB at Market-1501 scale). Here only each row's ``k1 + 1`` nearest neighbours are
  found (chunk by chunk, never sorting a row), V is a ``scipy.sparse`` matrix with a few dozen
  non-zeros per row, and the Jaccard overlaps are accumulated from V's non-zeros only;
- their ``np.argsort`` is not stable, so exact distance ties may be ordered arbitrarily; we break
  ties by index, as the spec says;
- many copies of their code store V in float16 to save memory; we keep float32 (V is sparse).
- the spec normalises by each *row's* maximum; the authors divide by column maxima and transpose,
  which is the same for symmetric ``q_q`` and ``g_g`` (the usual case).
"""
from __future__ import annotations

import numpy as np
import scipy.sparse as sp
import torch

from .distance import METRICS, pairwise_block

__all__ = ["re_ranking", "re_ranking_features"]

_ROWS_PER_CHUNK = 256
_DENSE_ROW_LIMIT = 2048   # rows up to this length are simply argsorted in _nearest
_SAMPLE_MIN = 1024        # _nearest samples at least this many (and >= 32·kk) items of a row


# ----------------------------------------------------------------------------- distance sources
class _BlockSource:
    """Rows of the assembled N×N distance matrix, read from the three given blocks."""

    def __init__(self, q_g: np.ndarray, q_q: np.ndarray, g_g: np.ndarray):
        self.q_g, self.q_q, self.g_g = q_g, q_q, g_g
        self.Q, self.G = q_g.shape
        self.N = self.Q + self.G

    def squared_rows(self, a: int, b: int, out: np.ndarray | None = None) -> np.ndarray:
        """``float32(x²)`` for rows ``a:b`` (all on one side of the query/gallery boundary)."""
        Q = self.Q
        y = np.empty((b - a, self.N), np.float32) if out is None else out[:b - a]
        if b <= Q:
            left, right = self.q_q[a:b], self.q_g[a:b]
        else:
            left, right = self.q_g[:, a - Q:b - Q].T, self.g_g[a - Q:b - Q]
        _square_into(left, y[:, :Q])
        _square_into(right, y[:, Q:])
        return y

    def squared_pairs(self, i: np.ndarray, j: np.ndarray) -> np.ndarray:
        """``float32(x[i, j]²)`` for index pairs (any side)."""
        Q = self.Q
        x = np.empty(len(i), self.q_g.dtype)
        qi, qj = i < Q, j < Q
        m = qi & qj
        x[m] = self.q_q[i[m], j[m]]
        m = qi & ~qj
        x[m] = self.q_g[i[m], j[m] - Q]
        m = ~qi & qj
        x[m] = self.q_g[j[m], i[m] - Q]              # the lower-left block is q_gᵀ
        m = ~qi & ~qj
        x[m] = self.g_g[i[m] - Q, j[m] - Q]
        return np.square(x).astype(np.float32, copy=False)


class _FeatureSource:
    """Rows of the N×N distance matrix computed on the fly from features (never stored)."""

    def __init__(self, qf: torch.Tensor, gf: torch.Tensor, metric: str):
        f = torch.cat([qf, gf]).float()
        if metric == "cosine":
            f = torch.nn.functional.normalize(f, dim=1)
        self.f, self.metric = f, metric
        self.sq = None if metric == "cosine" else (f * f).sum(1)
        self.Q, self.G = qf.shape[0], gf.shape[0]
        self.N = self.Q + self.G

    def squared_rows(self, a: int, b: int, out: np.ndarray | None = None) -> np.ndarray:
        y = np.empty((b - a, self.N), np.float32) if out is None else out[:b - a]
        with torch.no_grad():
            if self.metric == "euclidean":       # x² is the squared distance: skip sqrt-then-square
                y[...] = pairwise_block(self.f[a:b], self.f, "sqeuclidean", self.sq).cpu().numpy()
                return y
            x = pairwise_block(self.f[a:b], self.f, self.metric, self.sq).cpu().numpy()
        return np.square(x, out=y)

    def squared_pairs(self, i: np.ndarray, j: np.ndarray, chunk: int = 1 << 14) -> np.ndarray:
        out = np.empty(len(i), np.float32)
        with torch.no_grad():
            for s in range(0, len(i), chunk):
                ii = torch.from_numpy(i[s:s + chunk]).to(self.f.device)
                jj = torch.from_numpy(j[s:s + chunk]).to(self.f.device)
                dot = (self.f[ii] * self.f[jj]).sum(1)
                if self.metric == "cosine":
                    x = 1.0 - dot
                    out[s:s + chunk] = np.square(x.cpu().numpy())
                else:
                    x = (self.sq[ii] + self.sq[jj] - 2 * dot).clamp_(min=0)
                    out[s:s + chunk] = (x if self.metric == "euclidean" else x * x).cpu().numpy()
        return out


def _square_into(x: np.ndarray, out: np.ndarray) -> None:
    if x.dtype == np.float32:
        np.square(x, out=out)
    else:
        out[...] = np.square(x)


def _chunks(src, rows_per_chunk: int):
    """Row ranges that never straddle the query/gallery boundary."""
    for lo, hi in ((0, src.Q), (src.Q, src.N)):
        for a in range(lo, hi, rows_per_chunk):
            yield a, min(hi, a + rows_per_chunk)


# ----------------------------------------------------------------------------- step 1-2
def _nearest(y: np.ndarray, rowmax: np.ndarray, kk: int) -> np.ndarray:
    """Indices of the ``kk`` smallest ``d = y / rowmax`` of each row, ordered by (d, index).

    Never sorts a whole row: a threshold from a strided sample of the row guarantees at least
    ``kk`` candidates; only those are normalised and sorted.
    """
    c, n = y.shape
    if n <= 4 * kk or n <= _DENSE_ROW_LIMIT:
        d = y / rowmax[:, None]
        return np.argsort(d, axis=1, kind="stable")[:, :kk]
    step = max(1, n // max(32 * kk, _SAMPLE_MIN))
    sample = y[:, ::step]
    t = np.partition(sample, kk - 1, axis=1)[:, kk - 1]          # ≥ kk items of the row are ≤ t
    # items with y > t_hi have d strictly above d(t), whatever the float32 rounding of y / rowmax
    t_hi = t * np.float32(1 + 2.0 ** -20) + rowmax * np.float32(1e-44)
    flat = np.flatnonzero(y <= t_hi[:, None])
    rows, cols = np.divmod(flat, n)
    counts = np.bincount(rows, minlength=c)
    vals = y.reshape(-1)[flat] / rowmax[rows]
    width = int(counts.max())
    pos = np.arange(len(flat)) - np.repeat(np.cumsum(counts) - counts, counts)
    pad_v = np.full((c, width), np.inf, np.float32)
    pad_i = np.full((c, width), n, np.int64)
    pad_v[rows, pos] = vals
    pad_i[rows, pos] = cols                                       # column order inside a row
    # exact kk-th smallest d, then: all below it, and the lowest-index ones equal to it
    v = np.partition(pad_v, kk - 1, axis=1)[:, kk - 1:kk]
    lt = pad_v < v
    eq = pad_v == v
    need = kk - lt.sum(1, keepdims=True)
    sel = lt | (eq & (np.cumsum(eq, axis=1) <= need))            # exactly kk per row
    sel_v = pad_v[sel].reshape(c, kk)                             # column order inside a row
    sel_i = pad_i[sel].reshape(c, kk)
    order = np.argsort(sel_v, axis=1, kind="stable")              # ties: lower index first
    return np.take_along_axis(sel_i, order, 1)


def _neighbours(src, kk: int, rows_per_chunk: int):
    """``(nbr [N, kk] int64, rowmax [N] float32)``: each row's kk nearest items and its max of x²."""
    nbr = np.empty((src.N, kk), np.int64)
    rowmax = np.empty(src.N, np.float32)
    buf = np.empty((min(rows_per_chunk, src.N), src.N), np.float32)  # reused: no fresh pages per chunk
    for a, b in _chunks(src, rows_per_chunk):
        y = src.squared_rows(a, b, out=buf)
        m = y.max(1)
        if not np.all(m > 0) or not np.all(np.isfinite(m)):
            bad = a + int(np.flatnonzero(~((m > 0) & np.isfinite(m)))[0])
            raise ValueError(f"re-ranking: row {bad} of the assembled distances has maximum {m[bad - a]} "
                             "(all zero, infinite or NaN); the per-row normalisation needs a finite positive maximum")
        rowmax[a:b] = m
        nbr[a:b] = _nearest(y, m, kk)
    return nbr, rowmax


# ----------------------------------------------------------------------------- step 3-5
def _reciprocal_mask(nbr: np.ndarray, k: int, rows_per_chunk: int = 4096) -> np.ndarray:
    """``mask[i, t]``: is ``nbr[i, t]`` k-reciprocal to i, i.e. i ∈ R(nbr[i, t], k)?"""
    kk = min(k + 1, nbr.shape[1])
    mask = np.empty((nbr.shape[0], kk), bool)
    for a in range(0, nbr.shape[0], rows_per_chunk):
        b = min(nbr.shape[0], a + rows_per_chunk)
        fwd = nbr[a:b, :kk]
        back = nbr[fwd, :kk]                                      # [c, kk, kk]
        mask[a:b] = (back == np.arange(a, b)[:, None, None]).any(-1)
    return mask


def _expanded_sets(nbr: np.ndarray, k1: int, rows_per_chunk: int = 1024):
    """S(i) of step 4 as CSR-like ``(indptr, indices)``; indices sorted inside each row."""
    N = nbr.shape[0]
    kk = min(k1 + 1, nbr.shape[1])
    kh = int(np.around(k1 / 2.0))                                  # the authors' rounding (half to even)
    kkh = min(kh + 1, nbr.shape[1])
    kr = _reciprocal_mask(nbr, k1)                                 # [N, kk]
    half = _reciprocal_mask(nbr, kh)                               # [N, kkh]
    half_len = half.sum(1)
    indptr = [np.zeros(1, np.int64)]
    indices = []
    count = 0
    for a in range(0, N, rows_per_chunk):
        b = min(N, a + rows_per_chunk)
        c = b - a
        own = np.where(kr[a:b], nbr[a:b, :kk], -1)                 # i's k-reciprocal set, -1 = absent
        cand = nbr[a:b, :kk]                                       # candidates j (only where kr)
        cset = np.where(half[cand], nbr[cand, :kkh], -2)           # j's half-size set, -2 = absent
        inter = (cset[..., None] == own[:, None, None, :]).any(-1).sum(-1)   # |set_j ∩ set_i|
        accept = kr[a:b] & (inter > 2.0 / 3 * half_len[cand])
        members = np.concatenate([own, np.where(accept[..., None], cset, -1).reshape(c, -1)], 1)
        members.sort(1)
        keep = members >= 0
        keep[:, 1:] &= members[:, 1:] != members[:, :-1]           # unique
        n_row = keep.sum(1)
        indices.append(members[keep])
        indptr.append(count + np.cumsum(n_row))
        count += int(n_row.sum())
    return np.concatenate(indptr), np.concatenate(indices)


def _encode(src, nbr, rowmax, k1: int) -> sp.csr_matrix:
    """V of step 5: Gaussian kernel of d over S(i), normalised per row (float32)."""
    N = src.N
    indptr, indices = _expanded_sets(nbr, k1)
    rows = np.repeat(np.arange(N), np.diff(indptr))
    d = src.squared_pairs(rows, indices) / rowmax[rows]
    w = np.exp(-d)
    sums = np.bincount(rows, weights=w, minlength=N).astype(np.float32)
    data = (w / sums[rows]).astype(np.float32)
    return sp.csr_matrix((data, indices, indptr), shape=(N, N))


# ----------------------------------------------------------------------------- step 6-8
def _query_expansion(V: sp.csr_matrix, nbr: np.ndarray, k2: int) -> sp.csr_matrix:
    """Step 6: each row of V becomes the mean of the rows of its k2 nearest items (itself included)."""
    N = V.shape[0]
    kq = min(k2, nbr.shape[1])
    A = sp.csr_matrix((np.full(N * kq, 1.0 / kq, np.float32), nbr[:, :kq].reshape(-1),
                       np.arange(0, N * kq + 1, kq)), shape=(N, N))
    out = (A @ V).tocsr()
    out.sort_indices()
    return out


def _jaccard(V: sp.csr_matrix, Q: int, max_pairs: int = 1 << 22) -> np.ndarray:
    """Step 7 for query rows × gallery items: ``1 − m/(2 − m)``, ``m[i, j] = Σ_t min(V[i,t], V[j,t])``.

    Every term needs t in the support of both rows, so we walk the non-zeros of each query row
    and, for each t, the gallery rows whose column t is non-zero (V's gallery part in CSC form).
    m is itself sparse (pairs that share no t have m = 0, Jaccard 1), so it is summed as a sparse
    matrix; query rows are processed in blocks of at most ``max_pairs`` terms.
    """
    N = V.shape[0]
    G = N - Q
    Vg = V[Q:].tocsc()
    Vq = V[:Q].tocsr()
    col_nnz = np.diff(Vg.indptr)
    q_rows = np.repeat(np.arange(Q), np.diff(Vq.indptr))
    row_pairs = np.bincount(q_rows, weights=col_nnz[Vq.indices], minlength=Q).astype(np.int64)
    cum_pairs = np.concatenate([[0], np.cumsum(row_pairs)])
    out = np.ones((Q, G), np.float32)
    a = 0
    while a < Q:
        b = int(np.searchsorted(cum_pairs, cum_pairs[a] + max_pairs, "right")) - 1
        b = min(max(b, a + 1), Q)
        s, e = Vq.indptr[a], Vq.indptr[b]
        t = Vq.indices[s:e]
        n = col_nnz[t]
        starts = np.repeat(Vg.indptr[t] - (np.cumsum(n) - n), n) + np.arange(int(n.sum()))
        mins = np.minimum(np.repeat(Vq.data[s:e], n), Vg.data[starts]).astype(np.float64)
        m = sp.csr_matrix((mins, (np.repeat(q_rows[s:e] - a, n), Vg.indices[starts])),
                          shape=(b - a, G))                        # duplicates (same i, j) are summed
        m.sum_duplicates()
        r = np.repeat(np.arange(b - a), np.diff(m.indptr))
        out[a + r, m.indices] = 1.0 - m.data / (2.0 - m.data)
        a = b
    return out


# ----------------------------------------------------------------------------- public API
def _check_params(k1, k2, lambda_value):
    if int(k1) != k1 or k1 < 1:
        raise ValueError(f"re-ranking: k1 must be a positive integer, got {k1}")
    if int(k2) != k2 or k2 < 1:
        raise ValueError(f"re-ranking: k2 must be a positive integer, got {k2}")
    if not 0.0 <= lambda_value <= 1.0:
        raise ValueError(f"re-ranking: lambda_value must be in [0, 1], got {lambda_value}")


def _as_float_array(x, name: str) -> np.ndarray:
    if isinstance(x, torch.Tensor):
        x = x.detach().cpu().numpy()
    x = np.asarray(x)
    if x.ndim != 2:
        raise ValueError(f"re_ranking: {name} must be 2-D, got shape {x.shape}")
    if not np.issubdtype(x.dtype, np.floating) or x.dtype == np.float16:
        x = x.astype(np.float32)
    if np.isnan(x.min()):
        raise ValueError(f"re_ranking: {name} contains NaN")
    return np.ascontiguousarray(x)


def _rerank(src, k1, k2, lambda_value, rows_per_chunk):
    kk = min(int(k1) + 1, src.N)
    nbr, rowmax = _neighbours(src, kk, rows_per_chunk)
    V = _encode(src, nbr, rowmax, int(k1))
    if k2 != 1:
        V = _query_expansion(V, nbr, int(k2))
    out = _jaccard(V, src.Q)
    out *= np.float32(1 - lambda_value)
    buf = np.empty((min(rows_per_chunk, src.N), src.N), np.float32)
    for a, b in _chunks(src, rows_per_chunk):                      # + λ·d on query rows, gallery cols
        if a >= src.Q:
            break
        d = src.squared_rows(a, b, out=buf)[:, src.Q:]
        d /= rowmax[a:b, None]
        d *= np.float32(lambda_value)
        out[a:b] += d
    return out


def re_ranking(q_g, q_q, g_g, k1: int = 20, k2: int = 6, lambda_value: float = 0.3,
               rows_per_chunk: int = _ROWS_PER_CHUNK) -> np.ndarray:
    """k-reciprocal re-ranking (Zhong et al. CVPR 2017, Sec. 3, Eq. 13) of query–gallery distances.

    Args:
        q_g: ``[Q, G]`` query–gallery distances; q_q: ``[Q, Q]``; g_g: ``[G, G]`` (numpy or torch;
            the authors use euclidean distances). Only read, never copied whole.
        k1: size of the k-reciprocal neighbourhood (paper: 20); k2: local query expansion (paper: 6);
        lambda_value: weight of the original distance in the final one (paper: 0.3).

    Returns:
        ``[Q, G]`` float32 re-ranked distances, equal to the authors' implementation's output.

    Memory: the inputs, the output, and O(N·(k1 + nnz(V)/N)) for neighbours and sparse V — no
    further dense N×N array (about 0.3 GB at Market-1501 scale instead of ~8.5 GB).
    """
    _check_params(k1, k2, lambda_value)
    q_g = _as_float_array(q_g, "q_g")
    q_q = _as_float_array(q_q, "q_q")
    g_g = _as_float_array(g_g, "g_g")
    Q, G = q_g.shape
    if q_q.shape != (Q, Q) or g_g.shape != (G, G):
        raise ValueError(f"re_ranking: shapes do not fit: q_g is {q_g.shape}, so q_q must be ({Q}, {Q}) "
                         f"and g_g ({G}, {G}); got q_q {q_q.shape}, g_g {g_g.shape}")
    return _rerank(_BlockSource(q_g, q_q, g_g), k1, k2, lambda_value, rows_per_chunk)


def re_ranking_features(qf, gf, k1: int = 20, k2: int = 6, lambda_value: float = 0.3,
                        metric: str = "euclidean", rows_per_chunk: int = _ROWS_PER_CHUNK,
                        device=None) -> np.ndarray:
    """k-reciprocal re-ranking straight from features; the N×N (or G×G) distances are never stored.

    Equivalent to ``re_ranking(compute_distmat(qf, gf, metric), compute_distmat(qf, qf, metric),
    compute_distmat(gf, gf, metric), k1, k2, lambda_value)`` up to float rounding of the distances:
    each chunk of rows of the N×N matrix is computed by one matrix product, reduced to its
    nearest neighbours and its maximum, and dropped. ``device`` (default: ``qf``'s device) is
    where those matrix products run; everything else runs on the CPU.
    """
    _check_params(k1, k2, lambda_value)
    if metric not in METRICS:
        raise ValueError(f"re_ranking_features: unknown metric {metric!r}; choose one of {METRICS}")
    if device is None:
        device = qf.device if isinstance(qf, torch.Tensor) else "cpu"
    qf = torch.as_tensor(qf.detach() if isinstance(qf, torch.Tensor) else np.asarray(qf)).float().to(device)
    gf = torch.as_tensor(gf.detach() if isinstance(gf, torch.Tensor) else np.asarray(gf)).float().to(device)
    if qf.ndim != 2 or gf.ndim != 2 or qf.shape[1] != gf.shape[1]:
        raise ValueError(f"re_ranking_features: need qf [Q, D] and gf [G, D] with the same D, "
                         f"got {tuple(qf.shape)} and {tuple(gf.shape)}")
    return _rerank(_FeatureSource(qf, gf, metric), k1, k2, lambda_value, rows_per_chunk)
