"""Benchmark: k-reciprocal re-ranking (reidbook.eval.re_ranking / re_ranking_features).

1. Market-1501 scale (3,368 queries, 15,913 gallery, float32 distances): ``re_ranking`` from the
   three distance matrices and ``re_ranking_features`` from the features (no G×G matrix at all).
   Goal: ``re_ranking`` under 15 s and under 1 GB beyond its inputs and output.
2. A smaller size, side by side with the straightforward dense implementation
   (tests/test_rerank.py::reference_re_ranking, a transcription of the authors' code): time, peak
   memory, ratio, and the max |difference| of the outputs.

Every measurement runs in a fresh subprocess that first loads its inputs from .npy files, then
resets the peak-RSS counter, so "extra memory" = peak RSS − RSS with the inputs loaded − output size.
tracemalloc's peak (numpy allocations only) is printed too.

    .venv/bin/python benchmarks/bench_rerank.py [--threads 2] [--dim 256] [--small-q 700 --small-g 3300]
"""
from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
MiB = 2 ** 20


def _rss(field: str) -> int:
    with open("/proc/self/status") as f:
        for line in f:
            if line.startswith(field + ":"):
                return int(line.split()[1]) * 1024
    return 0


def worker(mode: str, folder: str, threads: int) -> None:
    """Run one measurement and print a JSON line."""
    import tracemalloc

    import torch

    torch.set_num_threads(threads)
    sys.path.insert(0, str(ROOT))
    sys.path.insert(0, str(ROOT / "tests"))
    from reidbook.eval import re_ranking, re_ranking_features

    p = Path(folder)
    if mode in ("sparse", "dense"):
        args = [np.load(p / f"{n}.npy") for n in ("q_g", "q_q", "g_g")]
    else:
        args = [torch.from_numpy(np.load(p / f"{n}.npy")) for n in ("qf", "gf")]
    if mode == "dense":
        from test_rerank import reference_re_ranking as fn
    else:
        fn = re_ranking if mode == "sparse" else re_ranking_features
    base = _rss("VmRSS")
    try:
        with open("/proc/self/clear_refs", "w") as f:     # reset the peak-RSS counter (Linux)
            f.write("5")
    except OSError:
        pass
    tracemalloc.start()
    t = time.perf_counter()
    out = fn(*args)
    seconds = time.perf_counter() - t
    _, peak_traced = tracemalloc.get_traced_memory()
    tracemalloc.stop()
    np.save(p / f"out_{mode}.npy", out)
    print(json.dumps({"seconds": seconds, "extra_rss": _rss("VmHWM") - base - out.nbytes,
                      "traced_peak": peak_traced - out.nbytes, "out_bytes": out.nbytes}))


def measure(mode: str, folder: Path, threads: int) -> dict:
    cmd = [sys.executable, __file__, "--worker", mode, "--folder", str(folder), "--threads", str(threads)]
    res = subprocess.run(cmd, capture_output=True, text=True, env={**os.environ, "REIDBOOK_QUIET": "1"})
    if res.returncode != 0:
        raise RuntimeError(f"{mode} failed:\n{res.stderr}")
    return json.loads(res.stdout.strip().splitlines()[-1])


def make_inputs(folder: Path, nq: int, ng: int, dim: int, n_ids: int, seed: int, with_gg: bool = True) -> None:
    """Clustered features (identity centre + noise, distractors anywhere) and their distances."""
    import torch

    sys.path.insert(0, str(ROOT))
    from reidbook.eval import compute_distmat

    rng = np.random.default_rng(seed)
    centres = rng.normal(size=(n_ids, dim)).astype(np.float32)
    qf = centres[rng.integers(0, n_ids, nq)] + 1.1 * rng.normal(size=(nq, dim)).astype(np.float32)
    gf = centres[rng.integers(0, n_ids, ng)] + 1.1 * rng.normal(size=(ng, dim)).astype(np.float32)
    gf[: ng // 7] = rng.normal(size=(ng // 7, dim)) * 1.5      # distractors
    folder.mkdir(parents=True, exist_ok=True)
    np.save(folder / "qf.npy", qf)
    np.save(folder / "gf.npy", gf)
    qt, gt = torch.from_numpy(qf), torch.from_numpy(gf)
    np.save(folder / "q_g.npy", compute_distmat(qt, gt))
    np.save(folder / "q_q.npy", compute_distmat(qt, qt))
    if with_gg:
        np.save(folder / "g_g.npy", compute_distmat(gt, gt))


def row(name, r):
    return (f"  {name:<34} {r['seconds']:8.2f} s   extra peak RSS {r['extra_rss'] / MiB:7.0f} MiB"
            f"   (numpy-traced {r['traced_peak'] / MiB:6.0f} MiB; output {r['out_bytes'] / MiB:.0f} MiB)")


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--dim", type=int, default=256)
    ap.add_argument("--small-q", type=int, default=700)
    ap.add_argument("--small-g", type=int, default=3300)
    ap.add_argument("--skip-market", action="store_true")
    ap.add_argument("--worker")
    ap.add_argument("--folder")
    args = ap.parse_args()
    if args.worker:
        return worker(args.worker, args.folder, args.threads)

    with tempfile.TemporaryDirectory(prefix="reidbook-bench-rerank-") as tmp:
        tmp = Path(tmp)
        print(f"threads: {args.threads}, feature dim: {args.dim}, load average: {os.getloadavg()[0]:.1f}")

        small = tmp / "small"
        make_inputs(small, args.small_q, args.small_g, args.dim, 150, seed=1)
        n = args.small_q + args.small_g
        print(f"\n[small] {args.small_q} query x {args.small_g} gallery (N = {n})")
        dense = measure("dense", small, args.threads)
        sparse = measure("sparse", small, args.threads)
        feats = measure("features", small, args.threads)
        diff = float(np.abs(np.load(small / "out_dense.npy") - np.load(small / "out_sparse.npy")).max())
        diff_f = float(np.abs(np.load(small / "out_dense.npy") - np.load(small / "out_features.npy")).max())
        print(row("dense reference (authors' algorithm)", dense))
        print(row("re_ranking (sparse)", sparse))
        print(row("re_ranking_features", feats))
        print(f"  speed-up re_ranking vs dense: {dense['seconds'] / sparse['seconds']:.1f} x; "
              f"extra-memory ratio: {dense['extra_rss'] / max(sparse['extra_rss'], 1):.1f} x")
        print(f"  max |re_ranking - dense| = {diff:.2e} (goal <= 1e-5); "
              f"max |re_ranking_features - dense| = {diff_f:.2e} (distances recomputed per chunk)")

        if not args.skip_market:
            market = tmp / "market"
            make_inputs(market, 3368, 15913, args.dim, 751, seed=0)
            market_mib = sum((market / f'{k}.npy').stat().st_size for k in ('q_g', 'q_q', 'g_g')) / MiB
            print("\n[Market-1501 scale] 3368 query x 15913 gallery, float32 inputs "
                  f"({market_mib:.0f} MiB of distances)")
            sp_m = measure("sparse", market, args.threads)
            print(row("re_ranking (sparse)", sp_m))
            ft_m = measure("features", market, args.threads)
            print(row("re_ranking_features", ft_m))
            diff_m = float(np.abs(np.load(market / "out_sparse.npy") - np.load(market / "out_features.npy")).max())
            print(f"  max |re_ranking - re_ranking_features| = {diff_m:.2e}")
            ok = sp_m["seconds"] < 15 and sp_m["extra_rss"] < 2 ** 30
            print(f"  goal (< 15 s and < 1 GiB beyond inputs and output): {'met' if ok else 'NOT met'}")
            n_m = 3368 + 15913
            print(f"  the dense algorithm keeps ~5 float32/int32 N x N arrays: {5 * n_m * n_m * 4 / 2 ** 30:.1f} GiB "
                  "at this N (not run here)")


if __name__ == "__main__":
    main()
