"""Benchmark: SynthReID generation speed (images/s) and the colour-histogram matcher on it.

    .venv/bin/python benchmarks/bench_synthetic.py [--profiles smoke quick] [--workers 1 2] [--keep DIR]

For each profile and worker count, a fresh data set is generated into a temporary folder and timed
(wall clock, including JPEG encoding and writing); images/s and the ratio to one worker are printed
side by side, plus the CPU seconds spent (all processes) and images per CPU-second, which does not
depend on how busy a shared machine is. Goal (DESIGN.md): ``quick`` in well under a minute on one
core. The quick set is then used to time the histogram features and to print the matcher's mAP /
rank-1 / spread of per-query AP (the honesty bar of tests/test_synthetic.py). Timings depend on how
busy the machine is: compare the rows of one run, not runs on different days.
"""
from __future__ import annotations

import argparse
import json
import os
import shutil
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
os.environ.setdefault("REIDBOOK_QUIET", "1")

from reidbook.data.synthetic import SPLIT_DIRS, make_synthetic  # noqa: E402
from reidbook.models.histogram import color_histogram_features, histogram_distance  # noqa: E402


def _cpu() -> float:
    """CPU seconds of this process and its finished children (the worker processes)."""
    t = os.times()
    return t.user + t.system + t.children_user + t.children_system


def _count(root: Path) -> int:
    c = json.loads((root / "synthreid.json").read_text())["counts"]
    return sum(c[d][s]["images"] for d in ("target", "source") for s in SPLIT_DIRS)


def _items(folder: Path):
    paths = sorted(folder.glob("*.jpg"))
    pids = np.array([int(p.name.split("_")[0]) for p in paths])
    cams = np.array([int(p.name.split("_")[1][1]) for p in paths])
    return paths, pids, cams


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--profiles", nargs="+", default=["smoke", "quick"])
    ap.add_argument("--workers", nargs="+", type=int, default=[1, 2])
    ap.add_argument("--keep", default=None, help="keep the last quick set here (else a temp folder)")
    args = ap.parse_args()
    print(f"cpu_count={os.cpu_count()}  load average={os.getloadavg()[0]:.1f}")
    print(f"{'profile':8s} {'workers':>7s} {'images':>7s} {'seconds':>8s} {'img/s':>8s} {'vs 1 worker':>11s} "
          f"{'cpu s':>8s} {'img/cpu-s':>10s}")
    tmp = Path(tempfile.mkdtemp(prefix="bench-synth-"))
    quick_root = None
    try:
        for profile in args.profiles:
            base = None
            for w in args.workers:
                root = tmp / f"{profile}-w{w}"
                t0, c0 = time.perf_counter(), _cpu()
                make_synthetic(root, profile, seed=0, num_workers=w)
                dt, cpu = time.perf_counter() - t0, _cpu() - c0
                n = _count(root)
                base = base or n / dt
                print(f"{profile:8s} {w:7d} {n:7d} {dt:8.2f} {n / dt:8.1f} {n / dt / base:10.2f}x "
                      f"{cpu:8.2f} {n / cpu:10.1f}",
                      flush=True)
                if profile == "quick":
                    quick_root = root
        if quick_root is not None:
            from reidbook.eval import evaluate_rank

            qp_, qp, qc = _items(quick_root / "query")
            gp_, gp, gc = _items(quick_root / "bounding_box_test")
            t0 = time.perf_counter()
            qf, gf = color_histogram_features(qp_), color_histogram_features(gp_)
            dt = time.perf_counter() - t0
            print(f"\nhistogram features: {(len(qp_) + len(gp_)) / dt:.0f} images/s")
            for normalize in (True, False):
                if not normalize:
                    qf = color_histogram_features(qp_, normalize=False)
                    gf = color_histogram_features(gp_, normalize=False)
                r = evaluate_rank(histogram_distance(qf, gf), qp, gp, qc, gc)
                a = np.asarray(r.all_AP)
                print(f"histogram matcher (grey-world={normalize}): mAP {r.mAP:.1%}  rank-1 {r.cmc[0]:.1%}  "
                      f"AP std {a.std():.2f}  AP<0.2 {np.mean(a < 0.2):.0%}  AP>0.8 {np.mean(a > 0.8):.0%}")
            if args.keep:
                shutil.copytree(quick_root, args.keep, dirs_exist_ok=True)
    finally:
        shutil.rmtree(tmp, ignore_errors=True)


if __name__ == "__main__":
    main()
