"""Benchmark: reidbook.eval.evaluate_rank at Market-1501 scale vs a per-query numpy reference.

Market-1501 test split: 3,368 queries × 19,732 gallery images (751 identities, distractors pid 0).
The distances come from synthetic features (identity centre + camera shift + noise) tuned so the
ranking looks like a trained model's (mAP roughly 50–80 %); a second run uses uniformly random
distances, the worst case for the "only the ranks of the hits" shortcut.

    .venv/bin/python benchmarks/bench_eval.py [--threads 2] [--reference-queries 400]

The reference (tests/test_eval_metrics.py::reference_evaluate: a stable argsort of every row) is
timed on the first ``--reference-queries`` queries and scaled linearly to all queries; both are
checked to agree on that subset.
"""
from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

import numpy as np
import torch

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "tests"))
sys.path.insert(0, str(ROOT))

from test_eval_metrics import reference_evaluate  # noqa: E402

from reidbook.eval import compute_distmat, evaluate_rank  # noqa: E402


def market_like(seed=0, nq=3368, ng=19732, n_ids=751, dim=256, noise=1.1):
    """Features of a Market-sized test split with realistic structure -> euclidean distmat."""
    rng = np.random.default_rng(seed)
    centres = rng.normal(size=(n_ids + 1, dim)).astype(np.float32)
    cam_shift = rng.normal(scale=0.35, size=(6, dim)).astype(np.float32)
    n_distr = 2798
    g_pids = np.concatenate([rng.integers(1, n_ids + 1, ng - n_distr), np.zeros(n_distr, np.int64)])
    g_cams = rng.integers(0, 6, ng)
    q_pids = rng.integers(1, n_ids + 1, nq)
    q_cams = rng.integers(0, 6, nq)

    def feats(pids, cams):
        f = centres[pids] + cam_shift[cams] + rng.normal(scale=noise, size=(len(pids), dim)).astype(np.float32)
        f[pids == 0] = rng.normal(size=(int((pids == 0).sum()), dim))  # distractors: anywhere
        return torch.from_numpy(f)

    d = compute_distmat(feats(q_pids, q_cams), feats(g_pids, g_cams), "euclidean")
    return d, q_pids, g_pids, q_cams, g_cams


def timed(fn, repeats=3):
    best, out = float("inf"), None
    for _ in range(repeats):
        t = time.perf_counter()
        out = fn()
        best = min(best, time.perf_counter() - t)
    return best, out


def run(name, case, ref_queries):
    d, qp, gp, qc, gc = case
    t_fast, res = timed(lambda: evaluate_rank(d, qp, gp, qc, gc, max_rank=50))
    n = min(ref_queries, len(qp))
    t_ref_sub, ref = timed(lambda: reference_evaluate(d[:n], qp[:n], gp, qc[:n], gc), repeats=1)
    sub = evaluate_rank(d[:n], qp[:n], gp, qc[:n], gc, max_rank=50)
    assert abs(sub.mAP - ref[1]) < 1e-9 and np.allclose(sub.cmc, ref[0]), "fast and reference disagree"
    t_ref = t_ref_sub * len(qp) / n
    print(f"[{name}] {d.shape[0]}x{d.shape[1]} {d.dtype}: {res}")
    print(f"  evaluate_rank        {t_fast:7.3f} s   (best of 3)")
    print(f"  per-query reference  {t_ref:7.3f} s   (measured on {n} queries: {t_ref_sub:.3f} s, scaled)")
    print(f"  speed-up             {t_ref / t_fast:7.1f} x   goal: evaluate_rank < 1 s -> "
          f"{'met' if t_fast < 1 else 'NOT met'}")


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--reference-queries", type=int, default=400)
    args = ap.parse_args()
    torch.set_num_threads(args.threads)
    print(f"torch threads: {torch.get_num_threads()}, load average: {__import__('os').getloadavg()[0]:.1f} "
          "(the machine is shared: timings scale with it)")
    run("market-like features", market_like(), args.reference_queries)
    rng = np.random.default_rng(1)
    d, qp, gp, qc, gc = market_like(nq=8, ng=19732)  # just for the labels
    qp = rng.integers(1, 752, 3368)
    qc = rng.integers(0, 6, 3368)
    run("uniform random distances", (rng.random((3368, 19732), dtype=np.float32), qp, gp, qc, gc),
        args.reference_queries)


if __name__ == "__main__":
    main()
