"""Figures for chapter 00: what a re-ID data set looks like, and how it is scored.

Pure functions: they take data (dataset items, distances, evaluation results) and return a
matplotlib ``Figure``, a DataFrame or a string; they never train or evaluate anything themselves.
"""
from __future__ import annotations

import os
from collections import defaultdict
from pathlib import Path
from typing import Sequence

import numpy as np

__all__ = ["sample_grid", "folder_tree", "protocol_example", "cmc_figure", "ap_distribution"]


def _read(path: str):
    from PIL import Image

    with Image.open(path) as im:
        return np.asarray(im.convert("RGB"))


def sample_grid(items: Sequence[tuple[str, int, int]], num_ids: int = 6, num_cams: int = 6, seed: int = 0,
                pids: Sequence[int] | None = None, title: str | None = None):
    """A grid of crops: one row per identity, one column per camera (blank where the identity was not seen).

    ``items`` are ``(path, pid, camid)``; identities seen by the most cameras are preferred unless
    ``pids`` is given, so the grid shows how the same person looks under different cameras.
    """
    import matplotlib.pyplot as plt

    by = defaultdict(dict)
    for path, pid, cam in items:
        by[pid].setdefault(cam, path)
    cams = sorted({c for d in by.values() for c in d})[:num_cams]
    if pids is None:
        rng = np.random.default_rng(seed)
        order = sorted(by, key=lambda p: (-len(set(by[p]) & set(cams)), rng.random()))
        pids = [p for p in order if p > 0][:num_ids]
    if not pids:
        raise ValueError("no identities to show: the item list is empty")
    fig, axes = plt.subplots(len(pids), len(cams), figsize=(1.1 * len(cams), 2.0 * len(pids)), squeeze=False)
    for r, pid in enumerate(pids):
        for c, cam in enumerate(cams):
            ax = axes[r, c]
            ax.set_xticks([]), ax.set_yticks([])
            for s in ax.spines.values():
                s.set_visible(False)
            if cam in by[pid]:
                ax.imshow(_read(by[pid][cam]))
            if r == 0:
                ax.set_title(f"cam {cam + 1}", fontsize=9)
            if c == 0:
                ax.set_ylabel(f"id {pid}", fontsize=9)
    fig.suptitle(title or "identities (rows) seen by different cameras (columns)", fontsize=10)
    fig.tight_layout()
    return fig


def folder_tree(root: str | os.PathLike, max_files: int = 3, max_depth: int = 2) -> str:
    """A text drawing of a data set folder: each sub-folder with its file count and a few file names."""
    root = Path(root)
    if not root.is_dir():
        raise FileNotFoundError(f"{root} is not a folder")
    lines = [f"{root.name}/"]

    def walk(folder: Path, depth: int, prefix: str) -> None:
        entries = sorted(folder.iterdir(), key=lambda p: (p.is_file(), p.name))
        dirs = [e for e in entries if e.is_dir() and not e.name.startswith(".")]
        files = [e for e in entries if e.is_file() and not e.name.startswith(".")]
        for d in dirs:
            n = sum(1 for _ in d.iterdir())
            lines.append(f"{prefix}├── {d.name}/  ({n} entries)")
            if depth < max_depth:
                walk(d, depth + 1, prefix + "│   ")
        for f in files[:max_files]:
            lines.append(f"{prefix}├── {f.name}")
        if len(files) > max_files:
            lines.append(f"{prefix}└── … {len(files) - max_files} more files")

    walk(root, 1, "")
    return "\n".join(lines)


def protocol_example(distances: np.ndarray, q_pid: int, q_cam: int, g_pids: np.ndarray, g_cams: np.ndarray,
                     top: int = 15):
    """One query's ranked gallery as coloured tiles: a hit (green), a miss (red), and the items the
    Market-1501 protocol removes because they share the query's identity *and* camera (grey).

    Returns ``(figure, table)`` where ``table`` is a DataFrame of the first ``top`` items with their
    distance, pid, camera, status, and the running precision used by AP.
    """
    import matplotlib.pyplot as plt
    import pandas as pd

    order = np.argsort(distances, kind="stable")[:top]
    rows, hits, kept = [], 0, 0
    for g in order:
        same_shot = g_pids[g] == q_pid and g_cams[g] == q_cam
        status = "removed (same id, same camera)" if same_shot else ("hit" if g_pids[g] == q_pid else "miss")
        if not same_shot:
            kept += 1
            hits += status == "hit"
        rows.append({"gallery index": int(g), "distance": float(distances[g]), "pid": int(g_pids[g]),
                     "camera": int(g_cams[g]) + 1, "status": status,
                     "rank after removal": kept if not same_shot else None,
                     "precision@rank": hits / kept if (kept and status == "hit") else None})
    table = pd.DataFrame(rows)
    colours = {"hit": "#2ca02c", "miss": "#d62728"}
    fig, ax = plt.subplots(figsize=(0.55 * top + 1, 1.4))
    for i, r in enumerate(rows):
        ax.add_patch(plt.Rectangle((i, 0), 0.9, 0.9, color=colours.get(r["status"], "#bbbbbb")))
        ax.text(i + 0.45, 0.45, str(r["pid"]), ha="center", va="center", fontsize=7, color="white")
    ax.set_xlim(0, top), ax.set_ylim(0, 1), ax.axis("off")
    ax.set_title(f"query id {q_pid}, camera {q_cam + 1}: gallery by distance (green hit, red miss, grey removed)",
                 fontsize=9)
    return fig, table


def cmc_figure(results: dict, max_rank: int = 20, title: str = "CMC curves"):
    """CMC curves of several evaluations (``name -> RankResult``), with mAP in the legend."""
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(5, 3.5))
    for name, res in results.items():
        k = min(max_rank, len(res.cmc))
        ax.plot(np.arange(1, k + 1), 100 * np.asarray(res.cmc[:k]), marker="o", ms=3,
                label=f"{name} (mAP {100 * res.mAP:.1f}%)")
    ax.set_xlabel("rank k"), ax.set_ylabel("CMC: % queries with a hit in the top k")
    ax.set_ylim(0, 100), ax.grid(alpha=0.3), ax.legend(fontsize=8), ax.set_title(title)
    fig.tight_layout()
    return fig


def ap_distribution(all_ap: np.ndarray, title: str = "per-query average precision", bins: int = 20):
    """Histogram of per-query AP: easy queries on the right, hard ones on the left."""
    import matplotlib.pyplot as plt

    all_ap = np.asarray(all_ap)
    fig, ax = plt.subplots(figsize=(5, 3))
    ax.hist(all_ap, bins=bins, range=(0, 1), color="#4c72b0")
    ax.axvline(all_ap.mean(), color="k", ls="--", label=f"mAP = {all_ap.mean():.2f}")
    ax.set_xlabel("AP of one query"), ax.set_ylabel("queries"), ax.set_title(title), ax.legend()
    fig.tight_layout()
    return fig
