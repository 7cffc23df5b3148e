"""Query × gallery distance matrices (euclidean, squared euclidean, cosine), chunked.

``‖q − g‖² = ‖q‖² + ‖g‖² − 2 q·g`` turns the matrix into one matrix product per chunk of query
rows, so memory stays at one output matrix plus a small chunk. Negative round-off is clamped to 0.
"""
from __future__ import annotations

import numpy as np
import torch

__all__ = ["compute_distmat", "METRICS"]

METRICS = ("euclidean", "sqeuclidean", "cosine")


def _as_tensor(x, name: str) -> torch.Tensor:
    if isinstance(x, np.ndarray):
        x = torch.from_numpy(x)
    elif not isinstance(x, torch.Tensor):
        x = torch.as_tensor(np.asarray(x))
    if x.ndim != 2:
        raise ValueError(f"{name} must be 2-D [num_items, feature_dim], got shape {tuple(x.shape)}")
    x = x.detach()
    if not torch.is_floating_point(x) or x.dtype in (torch.float16, torch.bfloat16):
        x = x.float()
    return x


def pairwise_block(a: torch.Tensor, b: torch.Tensor, metric: str, b_sq: torch.Tensor | None = None) -> torch.Tensor:
    """Distances between the rows of ``a`` and the rows of ``b`` (one block, no chunking)."""
    if metric == "cosine":
        return 1.0 - a @ b.T  # a and b already L2-normalised by the caller
    a_sq = (a * a).sum(1, keepdim=True)
    if b_sq is None:
        b_sq = (b * b).sum(1)
    d = (a_sq + b_sq[None, :]).addmm_(a, b.T, beta=1.0, alpha=-2.0).clamp_(min=0)
    return d.sqrt_() if metric == "euclidean" else d


def compute_distmat(qf, gf, metric: str = "euclidean", chunk_size: int = 1024) -> np.ndarray:
    """Distance matrix ``[num_query, num_gallery]`` as numpy float32.

    Args:
        qf, gf: ``[Q, D]`` and ``[G, D]`` features, torch (any device) or numpy.
        metric: ``"euclidean"`` (‖q−g‖), ``"sqeuclidean"`` (‖q−g‖²) or ``"cosine"`` (1 − cos(q, g);
            features are L2-normalised here, zero vectors stay zero).
        chunk_size: query rows per matrix product.
    """
    if metric not in METRICS:
        raise ValueError(f"unknown metric {metric!r}; choose one of {METRICS}")
    q = _as_tensor(qf, "qf")
    g = _as_tensor(gf, "gf")
    if q.shape[1] != g.shape[1]:
        raise ValueError(f"query and gallery feature dimension differ: qf is {tuple(q.shape)}, gf is {tuple(g.shape)}")
    dtype = torch.promote_types(q.dtype, g.dtype)
    g = g.to(dtype=dtype)
    q = q.to(device=g.device, dtype=dtype)
    if metric == "cosine":
        q = torch.nn.functional.normalize(q, dim=1)
        g = torch.nn.functional.normalize(g, dim=1)
    g_sq = None if metric == "cosine" else (g * g).sum(1)
    out = np.empty((q.shape[0], g.shape[0]), dtype=np.float32)
    with torch.no_grad():
        for s in range(0, q.shape[0], chunk_size):
            block = pairwise_block(q[s:s + chunk_size], g, metric, g_sq)
            out[s:s + block.shape[0]] = block.float().cpu().numpy()
    return out
