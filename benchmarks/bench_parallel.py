"""Two trainings side by side: do they share the cores, or fight over them? (issue 25)

Runs ``reidbook train baseline --profile smoke`` twice, as separate processes, three ways:

* ``sequential``: one after the other, each with torch's default threads (every core);
* ``sequential --threads``: one after the other, each with ``threads_per_job(2)`` threads (a control: on a
  machine busy with other work, torch's default threads can be the slow part on their own);
* ``parallel --threads``: both at once, each with ``--threads threads_per_job(2)`` (cores / 2), what a
  runner's ``--jobs 2`` does;
* ``parallel default`` (``--naive``): both at once, each asking for every core (oversubscribed).

Each run writes its own ``--out`` folder in a private cache, which is warmed first (SynthReID and the
source-domain backbone), so only the two trainings are timed. Printed: wall times and the ratio
parallel / sequential (on 2 cores it should be about 0.5–0.6 with ``--threads``, not above 1).
The three arms alternate ``--repeats`` times and the medians are reported. Run::

    .venv/bin/python benchmarks/bench_parallel.py                 # smoke, 4 epochs, 1 repeat
    .venv/bin/python benchmarks/bench_parallel.py --epochs 8 --repeats 3 --naive
"""
from __future__ import annotations

import argparse
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from reidbook.cli import available_cores, threads_per_job


def _train(out: Path, env: dict, epochs: int, threads: int | None) -> subprocess.Popen:
    argv = [sys.executable, "-m", "reidbook.cli", "train", "baseline", "--profile", "smoke", "--device", "cpu",
            "--epochs", str(epochs), "--out", str(out)]
    if threads is not None:
        argv += ["--threads", str(threads)]
    return subprocess.Popen(argv, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)


def _wait(*procs: subprocess.Popen) -> None:
    for p in procs:
        _, err = p.communicate()
        if p.returncode != 0:
            raise SystemExit(f"a training failed ({p.returncode}): {err[-2000:]}")


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--epochs", type=int, default=4, help="epochs per training (default 4)")
    ap.add_argument("--repeats", type=int, default=1, help="alternating repeats of the arms (default 1)")
    ap.add_argument("--naive", action="store_true", help="also time both at once with every core each")
    args = ap.parse_args()

    work = Path(tempfile.mkdtemp(prefix="bench-parallel-"))
    env = {k: v for k, v in os.environ.items() if k != "OMP_NUM_THREADS"}  # torch's default threads
    env.update(REIDBOOK_CACHE=str(work / "cache"), REIDBOOK_QUIET="1")
    cores, per_job = available_cores(), threads_per_job(2)
    times: dict[str, list[float]] = {"sequential": [], "sequential --threads": [], "parallel --threads": []}
    if args.naive:
        times["parallel default"] = []
    n = 0
    try:
        print(f"{cores} cores; warming the cache (SynthReID smoke, source-domain backbone) …", flush=True)
        _wait(_train(work / "warm", env, 1, None))
        for _ in range(args.repeats):
            for arm in times:
                outs = [work / f"run{n}", work / f"run{n + 1}"]
                n += 2
                t0 = time.perf_counter()
                if arm.startswith("sequential"):
                    threads = per_job if arm.endswith("--threads") else None
                    _wait(_train(outs[0], env, args.epochs, threads))
                    _wait(_train(outs[1], env, args.epochs, threads))
                else:
                    threads = per_job if arm.endswith("--threads") else None
                    _wait(*[_train(o, env, args.epochs, threads) for o in outs])
                times[arm].append(time.perf_counter() - t0)
    finally:
        shutil.rmtree(work, ignore_errors=True)

    seq = statistics.median(times["sequential"])
    load = os.getloadavg()[0] if hasattr(os, "getloadavg") else float("nan")
    print(f"two smoke trainings ({args.epochs} epochs each, baseline), median of {args.repeats} "
          f"(load average {load:.1f} on {cores} cores at the end):")
    for arm, ts in times.items():
        t = statistics.median(ts)
        extra = f" (each --threads {per_job})" if arm.endswith("--threads") else ""
        print(f"  {arm:20s} {t:7.1f} s   ratio to sequential {t / seq:5.2f}{extra}")


if __name__ == "__main__":
    main()
