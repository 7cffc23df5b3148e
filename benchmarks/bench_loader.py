"""Training loader throughput: the per-sample PIL path vs the tensor store, beside the model's own step.

For each training configuration of the quick course (the baseline, DaRe, a Factorized Distillation
partial teacher on its view), on SynthReID of ``--profile``:

* ``PIL img/s``: :func:`reidbook.data.make_train_loader` with the preset's ``build_transforms`` and decoded
  images cached in memory (what every training used before: decode once, then resize / crop / flip /
  erase each sample every epoch) — timed after a warm-up pass, so decoding is not counted;
* ``tensor img/s``: :func:`reidbook.data.tensorstore.make_tensor_loader` (a uint8 store, whole-batch
  augmentation); the store's one-off build (or cache load) time is printed separately;
* ``step img/s``: the model's training step (forward, loss, backward, SGD) on one such batch, in
  channels-last as ``fit`` trains;
* ``loader share``: the fraction of a training iteration spent in the loader, ``t_load / (t_load + t_step)``,
  for each path, and the iteration's speed-up.

The two loaders alternate ``--repeats`` times (medians), so a busy machine disturbs both alike. Run::

    .venv/bin/python benchmarks/bench_loader.py                 # quick (generates SynthReID quick once)
    .venv/bin/python benchmarks/bench_loader.py --profile smoke --batches 4 --repeats 1
"""
from __future__ import annotations

import argparse
import statistics
import tempfile
import time

import torch


def _configs(profile: str):
    from reidbook.data import make_views
    from reidbook.presets import get_preset
    from reidbook.presets.fd import teacher_preset

    out = [("baseline", get_preset("baseline", profile), None), ("dare", get_preset("dare", profile), None)]
    tp = teacher_preset("up1", profile)
    view = make_views((tp.height, tp.width), (tp.height, tp.width), names=["up1"])[0]
    out.append(("FD teacher up1", tp, view))
    return out


def _time_batches(loader, n: int) -> float:
    """Seconds per image over the first ``n`` batches of a fresh pass."""
    t0, images = time.perf_counter(), 0
    for i, batch in enumerate(loader):
        images += batch[0].shape[0]
        if i + 1 >= n:
            break
    return (time.perf_counter() - t0) / max(images, 1)


def _step_time(preset, num_classes: int, batch, steps: int) -> float | None:
    """Seconds per image of the model's training step (None if the model cannot be built here)."""
    from reidbook.engine import build_optimizer
    from reidbook.losses import build_criterion
    from reidbook.models import build_model

    try:
        model = build_model(preset.model, num_classes, profile=preset.profile, **preset.model_options)
        crit = build_criterion(preset.losses)
    except Exception as exc:  # noqa: BLE001 - a benchmark prints what it could not measure
        print(f"  (no step timing for {preset.model}: {type(exc).__name__}: {exc})")
        return None
    model.train().to(memory_format=torch.channels_last)
    opt = build_optimizer(model, {"name": "sgd", "lr": 0.01, "momentum": 0.9, "weight_decay": 5e-4})
    x = batch[0].contiguous(memory_format=torch.channels_last)
    pids = batch[1] % num_classes
    times = []
    for i in range(steps + 1):
        t0 = time.perf_counter()
        total, _ = crit(model(x), pids)
        opt.zero_grad(set_to_none=True)
        total.backward()
        opt.step()
        if i:  # the first step warms up
            times.append(time.perf_counter() - t0)
    return statistics.median(times) / x.shape[0]


def main(argv=None) -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--profile", default="quick", choices=["smoke", "quick"])
    ap.add_argument("--batches", type=int, default=12, help="batches timed per loader and repeat")
    ap.add_argument("--repeats", type=int, default=3)
    ap.add_argument("--steps", type=int, default=3, help="training steps timed per model")
    ap.add_argument("--threads", type=int, default=None, help="torch threads (default: torch's)")
    args = ap.parse_args(argv)
    if args.threads:
        torch.set_num_threads(args.threads)

    from reidbook import zoo
    from reidbook.data import build_transforms, make_train_loader
    from reidbook.data.tensorstore import make_tensor_loader
    from reidbook.data.views import view_transform

    ds = zoo.dataset(args.profile, "synth", 0)
    print(f"SynthReID {args.profile}: {len(ds.train)} training images, {ds.num_train_pids} identities; "
          f"torch threads {torch.get_num_threads()}")
    header = (f"{'configuration':<16} {'size':>8} {'PIL img/s':>10} {'tensor img/s':>13} {'ratio':>6} "
              f"{'step img/s':>11} {'loader share PIL→tensor':>24} {'iteration speed-up':>19}")
    print(header)
    with tempfile.TemporaryDirectory() as store_dir:
        for name, preset, view in _configs(args.profile):
            P, K = preset.P, preset.K
            if view is None:
                tf = build_transforms(preset.height, preset.width, is_train=True, **preset.train_aug)
                band = None
            else:
                tf = view_transform(view, is_train=True, **preset.train_aug)
                band = (view.top, view.bottom)
            pil = make_train_loader(ds.train, tf, P, K, seed=0, cache=True)
            _time_batches(pil, args.batches)  # warm-up: decodes the images it will see
            t0 = time.perf_counter()
            ten = make_tensor_loader(ds.train, preset.height, preset.width, P, K, seed=0, band=band, cache=store_dir,
                                     **preset.train_aug)
            build = time.perf_counter() - t0
            pil_t, ten_t = [], []
            for _ in range(args.repeats):
                pil_t.append(_time_batches(pil, args.batches))
                ten_t.append(_time_batches(ten, args.batches))
            p, t = statistics.median(pil_t), statistics.median(ten_t)
            step = _step_time(preset, ds.num_train_pids, next(iter(ten)), args.steps)
            size = f"{preset.height}x{preset.width}"
            if step is None:
                share, speed = "n/a", "n/a"
            else:
                share = f"{p / (p + step):.0%} → {t / (t + step):.0%}"
                speed = f"{(p + step) / (t + step):.2f}x"
            print(f"{name:<16} {size:>8} {1 / p:>10.0f} {1 / t:>13.0f} {p / t:>5.1f}x "
                  f"{(1 / step if step else float('nan')):>11.0f} {share:>24} {speed:>19}   "
                  f"(store built in {build:.1f} s)", flush=True)


if __name__ == "__main__":
    main()
