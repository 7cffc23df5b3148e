"""What the per-model test-feature cache saves: one evaluation of a zoo model, extracted vs read from the store.

For each ``--models`` entry of the zoo at ``--profile`` (trained first if the zoo lacks it), on SynthReID's
query + gallery at the preset's input size, flip-averaged (what :func:`reidbook.eval.evaluate_model` and
chapter 08's background-reliance probe do):

* ``extract s``: ``evaluate_model`` with the cache off (``REIDBOOK_FEATURE_CACHE=0``): every image through
  the model, twice (flip);
* ``first s``: with the cache on and empty: the same extraction plus writing the features to the store;
* ``cached s``: the next evaluation of the same model (another chapter): features read from the store;
* ``saved``: ``extract s − cached s`` per repeated evaluation, and the ratio.

The store is a temporary copy (``REIDBOOK_CACHE`` is pointed at a fresh folder; the model entries are
copied into it), so the user's cache is not changed. The three arms alternate ``--repeats`` times
(medians). Run::

    .venv/bin/python benchmarks/bench_feature_cache.py --profile quick --models baseline mgn
    .venv/bin/python benchmarks/bench_feature_cache.py --profile smoke --repeats 1
"""
from __future__ import annotations

import argparse
import os
import shutil
import statistics
import tempfile
import time


def _time(fn) -> float:
    t0 = time.perf_counter()
    fn()
    return time.perf_counter() - t0


def main(argv=None) -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--profile", default="quick")
    ap.add_argument("--models", nargs="+", default=["baseline", "mgn"])
    ap.add_argument("--repeats", type=int, default=2)
    ap.add_argument("--threads", type=int, default=2)
    args = ap.parse_args(argv)

    import torch

    from reidbook import zoo
    from reidbook.eval import evaluate_model

    torch.set_num_threads(args.threads)
    ds = zoo.dataset(args.profile, "synth", 0)
    entries = {name: zoo.get(name, args.profile, "synth", 0) for name in args.models}  # the user's cache
    n_images = len(ds.query) + len(ds.gallery)
    print(f"profile {args.profile}: {len(ds.query)} query + {len(ds.gallery)} gallery images, flip-averaged; "
          f"{args.threads} torch threads, load average {os.getloadavg()[0]:.1f}")
    print(f"{'model':<12}{'extract s':>11}{'first s':>10}{'cached s':>10}{'saved s':>9}{'ratio':>8}")
    saved_cache = os.environ.get("REIDBOOK_CACHE")
    for name, entry in entries.items():
        arms: dict[str, list[float]] = {"extract": [], "first": [], "cached": []}
        for _ in range(args.repeats):
            with tempfile.TemporaryDirectory(prefix="bench-feature-cache-") as tmp:
                folder = os.path.join(tmp, "zoo", entry.path.parent.name, entry.path.name)
                shutil.copytree(entry.path, folder)
                os.environ["REIDBOOK_CACHE"] = tmp
                try:
                    model = zoo.load_entry(folder).model  # tagged with the copy's entry

                    def run(model=model, size=(entry.preset.height, entry.preset.width)):
                        return evaluate_model(model, ds, *size, device="cpu")

                    os.environ["REIDBOOK_FEATURE_CACHE"] = "0"
                    arms["extract"].append(_time(run))
                    os.environ["REIDBOOK_FEATURE_CACHE"] = "1"
                    arms["first"].append(_time(run))
                    arms["cached"].append(_time(run))
                finally:
                    os.environ.pop("REIDBOOK_FEATURE_CACHE", None)
                    if saved_cache is None:
                        os.environ.pop("REIDBOOK_CACHE", None)
                    else:
                        os.environ["REIDBOOK_CACHE"] = saved_cache
        ext, first, hit = (statistics.median(arms[k]) for k in ("extract", "first", "cached"))
        print(f"{name:<12}{ext:>11.2f}{first:>10.2f}{hit:>10.2f}{ext - hit:>9.2f}{ext / hit:>7.1f}x"
              f"   ({n_images / ext:.0f} images/s extracted)")


if __name__ == "__main__":
    main()
