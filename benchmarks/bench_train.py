"""Training throughput (images/s) of baseline-like networks, and the engine's overhead.

For each network (a width-scaled ResNet backbone → GAP → BN → bias-free classifier over 751
identities, trained with cross-entropy and SGD, batch 32), two loops are timed side by side on the
same in-memory batches:

* ``raw``: a bare ``forward / backward / step`` loop;
* ``fit``: :func:`reidbook.engine.fit` over a DataLoader (progress bar, finiteness check, per-iteration
  schedule, loss bookkeeping), in its default ``channels_last`` (NHWC) memory format;
* ``fit NCHW``: the same with ``channels_last=False`` (PyTorch's default layout, what ``raw`` uses).

The three loops alternate ``--repeats`` times and the medians are reported, so a busy machine
disturbs both alike.

``fitNCHW/raw`` is the engine's overhead ratio (1.00 = none); ``NHWC/NCHW`` is what the engine's
channels-last default buys. Run::

    .venv/bin/python benchmarks/bench_train.py            # 128×64, the three quick-profile networks
    .venv/bin/python benchmarks/bench_train.py --size 256x128 --iters 5
"""
from __future__ import annotations

import argparse
import os
import statistics
import time

import torch
from torch import nn
from torch.utils.data import DataLoader, TensorDataset

from reidbook.engine import build_optimizer, build_scheduler, fit
from reidbook.models import backbones

NETWORKS = {  # name -> (depth, width)
    "resnet50 w1/4": (50, 0.25),
    "resnet50 w1/2": (50, 0.5),
    "resnet18 w1/4": (18, 0.25),
}


class BaselineLike(nn.Module):
    """IDE-style: backbone → GAP → BN → bias-free classifier (train mode: ``{"logits": ...}``)."""

    def __init__(self, depth: int, width: float, num_classes: int = 751):
        super().__init__()
        self.backbone = backbones.build_resnet(depth, width=width, last_stride=1)
        dim = self.backbone.out_channels
        self.bn = nn.BatchNorm1d(dim)
        self.classifier = nn.Linear(dim, num_classes, bias=False)

    def forward(self, x):
        f = self.bn(self.backbone(x).mean((2, 3)))
        return {"logits": self.classifier(f)} if self.training else f


def ce_criterion(outputs, pids):
    loss = nn.functional.cross_entropy(outputs["logits"], pids)
    return loss, {"ce": float(loss.detach())}


def _batches(n_batches: int, batch: int, h: int, w: int):
    g = torch.Generator().manual_seed(0)
    x = torch.randn(n_batches * batch, 3, h, w, generator=g)
    y = torch.randint(0, 751, (n_batches * batch,), generator=g)
    return x, y


def bench_raw(model, x, y, batch: int, warmup: int) -> float:
    opt = build_optimizer(model, {"name": "sgd", "lr": 0.01, "momentum": 0.9, "weight_decay": 5e-4})
    model.train()
    n = len(x) // batch
    t0 = None
    for i in range(n):
        if i == warmup:
            t0 = time.perf_counter()
        xb, yb = x[i * batch:(i + 1) * batch], y[i * batch:(i + 1) * batch]
        loss, _ = ce_criterion(model(xb), yb)
        opt.zero_grad(set_to_none=True)
        loss.backward()
        opt.step()
    return (n - warmup) * batch / (time.perf_counter() - t0)


def bench_fit(model, x, y, batch: int, warmup: int, channels_last: bool = True) -> float:
    ds = TensorDataset(x, y, torch.zeros_like(y), torch.arange(len(y)))
    loader = DataLoader(ds, batch_size=batch, shuffle=False, drop_last=True)
    opt = build_optimizer(model, {"name": "sgd", "lr": 0.01, "momentum": 0.9, "weight_decay": 5e-4})
    sched = build_scheduler(opt, {"name": "warmup_step", "warmup": 1, "milestones": [1]}, 1, len(loader))
    fit(model, loader, ce_criterion, opt, sched, epochs=1, device="cpu", max_iters_per_epoch=warmup,
        channels_last=channels_last)  # warm-up
    hist = fit(model, loader, ce_criterion, opt, sched, epochs=1, device="cpu",
               max_iters_per_epoch=len(loader) - warmup, channels_last=channels_last)
    return hist[-1]["images_per_s"]


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--size", default="128x64", help="H×W of the training images (default 128x64)")
    ap.add_argument("--batch", type=int, default=32)
    ap.add_argument("--iters", type=int, default=8, help="timed iterations per loop")
    ap.add_argument("--warmup", type=int, default=2)
    ap.add_argument("--repeats", type=int, default=3,
                    help="alternate the two loops this many times and report medians (robust to a busy machine)")
    ap.add_argument("--threads", type=int, default=None, help="torch threads (default: torch's choice)")
    ap.add_argument("--networks", nargs="*", default=list(NETWORKS), choices=list(NETWORKS))
    args = ap.parse_args()
    os.environ.setdefault("REIDBOOK_QUIET", "1")
    if args.threads:
        torch.set_num_threads(args.threads)
    h, w = (int(v) for v in args.size.lower().split("x"))
    x, y = _batches(args.iters + args.warmup, args.batch, h, w)
    print(f"training throughput, batch {args.batch}, {h}x{w}, SGD, CPU threads {torch.get_num_threads()}, "
          f"torch {torch.__version__}")
    print(f"{'network':<16}{'params (M)':>11}{'raw img/s':>11}{'fit NCHW':>10}{'fit NHWC':>10}"
          f"{'fitNCHW/raw':>12}{'NHWC/NCHW':>11}")
    for name in args.networks:
        depth, width = NETWORKS[name]
        torch.manual_seed(0)
        model = BaselineLike(depth, width)
        params = sum(p.numel() for p in model.parameters()) / 1e6
        raws, nchw, nhwc = [], [], []
        for _ in range(args.repeats):  # interleaved, so all loops see the same machine load
            raws.append(bench_raw(model, x, y, args.batch, args.warmup))
            nchw.append(bench_fit(model, x, y, args.batch, args.warmup, channels_last=False))
            nhwc.append(bench_fit(model, x, y, args.batch, args.warmup, channels_last=True))
        raw, a, b = statistics.median(raws), statistics.median(nchw), statistics.median(nhwc)
        print(f"{name:<16}{params:>11.2f}{raw:>11.1f}{a:>10.1f}{b:>10.1f}{a / raw:>12.2f}{b / a:>11.2f}", flush=True)


if __name__ == "__main__":
    main()
