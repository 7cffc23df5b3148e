"""Training throughput of the ``full`` profile: the baseline, MGN and DaRe at the papers' input sizes.

For each model: its ``full`` preset (paper architecture, input size, P×K batch, losses, optimiser), a
model built at that width (random init: ImageNet weights change nothing about speed), SynthReID's
training images resized to the paper's size by the tensor loader (augmented on the device), and
:func:`reidbook.engine.fit` for ``--iters`` iterations after ``--warmup`` — channels-last, bfloat16
autocast where the GPU supports it (``fit(amp="auto")``), the training path a ``full`` run takes.
Printed per model: images/s and peak memory (CUDA: ``torch.cuda.max_memory_allocated``; CPU: the
process's peak resident memory so far).

Run on a GPU machine::

    .venv/bin/python benchmarks/bench_gpu.py                       # baseline, MGN, DaRe; 50 iterations
    .venv/bin/python benchmarks/bench_gpu.py --models mgn --iters 100

and on a CPU with tiny sizes (what the test does)::

    .venv/bin/python benchmarks/bench_gpu.py --device cpu --size 32x16 --width 0.125 --iters 1 --P 4 --K 2 \\
        --data-profile smoke
"""
from __future__ import annotations

import argparse
import resource
import sys
import tempfile
import time

import torch

MODELS = ("baseline", "mgn", "dare")


def _peak_memory_mb(device: torch.device) -> float:
    if device.type == "cuda":
        return torch.cuda.max_memory_allocated(device) / 2**20
    rss = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss  # KiB on Linux, bytes on macOS
    return rss / (2**20 if sys.platform == "darwin" else 2**10)


def bench_model(name: str, ds, device: torch.device, iters: int, warmup: int, size=None, width=None, P=None, K=None,
                store_dir=None) -> dict:
    """Train ``name``'s full preset for ``warmup`` + ``iters`` iterations; images/s of the timed part."""
    from reidbook.data.tensorstore import make_tensor_loader
    from reidbook.engine import build_optimizer, fit
    from reidbook.engine.trainer import amp_dtype
    from reidbook.losses import build_criterion
    from reidbook.models import build_model
    from reidbook.presets import get_preset

    preset = get_preset(name, "full")
    H, W = size or (preset.height, preset.width)
    P, K = P or preset.P, K or preset.K
    opts = dict(preset.model_options)
    if width is not None:
        opts["width"] = width
    torch.manual_seed(0)
    model = build_model(name, ds.num_train_pids, profile="full", **opts)
    crit = build_criterion(preset.losses)
    opt = build_optimizer(model, preset.optimizer, crit if isinstance(crit, torch.nn.Module) else None)
    loader = make_tensor_loader(ds.train, H, W, P, K, seed=0, cache=store_dir or True,
                                device=device if device.type == "cuda" else None, **preset.train_aug)
    if device.type == "cuda":
        torch.backends.cudnn.benchmark = True
    fit(model, loader, crit, opt, epochs=1, device=device, max_iters_per_epoch=warmup, desc=f"{name} warm-up")
    if device.type == "cuda":
        torch.cuda.synchronize(device)
        torch.cuda.reset_peak_memory_stats(device)
    t0 = time.perf_counter()
    hist = fit(model, loader, crit, opt, epochs=1, device=device, max_iters_per_epoch=iters, desc=name)
    if device.type == "cuda":
        torch.cuda.synchronize(device)
    seconds = time.perf_counter() - t0
    images = hist.records[-1]["images"]
    return {"model": name, "size": f"{H}x{W}", "batch": P * K, "iters": hist.records[-1]["iters"],
            "images_per_s": images / seconds, "peak_mb": _peak_memory_mb(device),
            "amp": str(amp_dtype("auto", device)).replace("torch.", "") if amp_dtype("auto", device) else "off",
            "params_m": sum(p.numel() for p in model.parameters()) / 1e6}


def main(argv=None) -> list[dict]:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--models", nargs="*", default=list(MODELS), choices=MODELS)
    ap.add_argument("--iters", type=int, default=50, help="timed iterations per model")
    ap.add_argument("--warmup", type=int, default=5, help="untimed iterations first (cuDNN autotuning)")
    ap.add_argument("--device", default="auto")
    ap.add_argument("--size", default=None, help="HxW instead of each paper's input size (e.g. 32x16 on a CPU)")
    ap.add_argument("--width", type=float, default=None, help="width multiplier instead of the paper's 1.0")
    ap.add_argument("--P", type=int, default=None, help="identities per batch instead of the preset's")
    ap.add_argument("--K", type=int, default=None, help="images per identity instead of the preset's")
    ap.add_argument("--data-profile", default="quick", choices=["smoke", "quick"], help="SynthReID size to train on")
    args = ap.parse_args(argv)

    from reidbook import zoo
    from reidbook.utils import resolve_device

    device = resolve_device(args.device)
    if device.type == "cpu" and argv is None and len(sys.argv) == 1:  # `make bench` on a machine without a GPU
        args.width, args.iters, args.warmup = 0.25, 2, 1
        print("no GPU here: a CPU check at the papers' input sizes with width 1/4 and 2 iterations; "
              "these are not the GPU figures (run this script on a GPU machine)")
    size = tuple(int(v) for v in args.size.lower().split("x")) if args.size else None
    ds = zoo.dataset(args.data_profile, "synth", 0)
    gpu = torch.cuda.get_device_name(device) if device.type == "cuda" else "CPU"
    print(f"device: {gpu}; SynthReID {args.data_profile} ({len(ds.train)} images, {ds.num_train_pids} ids); "
          f"{args.iters} timed iterations after {args.warmup}")
    print(f"{'model':<9} {'input':>8} {'batch':>6} {'params (M)':>11} {'amp':>9} {'images/s':>10} "
          f"{'peak memory (MiB)':>18}")
    rows = []
    with tempfile.TemporaryDirectory() as store_dir:
        for name in args.models:
            r = bench_model(name, ds, device, args.iters, args.warmup, size, args.width, args.P, args.K, store_dir)
            rows.append(r)
            print(f"{r['model']:<9} {r['size']:>8} {r['batch']:>6} {r['params_m']:>11.2f} {r['amp']:>9} "
                  f"{r['images_per_s']:>10.1f} {r['peak_mb']:>18.0f}", flush=True)
    return rows


if __name__ == "__main__":
    main()
