"""A self-contained multi-process training run (test support, outside the package):
``PYTHONPATH=tests torchrun --nproc_per_node=2 -m support.distributed_demo``.

It trains a tiny re-ID network on a toy data set held in memory (no files, no downloads) with the
real engine: the P×K sampler split between ranks, DDP, an all-reduced loss, rank-0-only checkpoints.
Run it under plain ``python -m`` for one process. The toy pieces (:class:`TinyReIDNet`,
:class:`ToyReIDData`, :func:`toy_loader`, :func:`toy_criterion`) are also what the engine's tests
train, so they are kept small and learnable:
every identity is a random colour layout plus per-image noise, so a few epochs lower the loss.
"""
from __future__ import annotations

import argparse
import json
import os
from pathlib import Path

import torch
from torch import nn
from torch.utils.data import DataLoader, Dataset

__all__ = ["TinyReIDNet", "ToyReIDData", "toy_loader", "toy_criterion", "main"]


class TinyReIDNet(nn.Module):
    """conv-BN-ReLU ×2 → GAP → embedding (BN) → bias-free classifier; the engine's test model.

    Train mode returns ``{"logits": [B, C], "features": [B, D]}`` (CONTRIBUTING.md "Models");
    eval mode returns the embedding ``[B, D]``.
    """

    def __init__(self, num_classes: int, width: int = 8, dim: int = 16, dropout: float = 0.0):
        super().__init__()
        self.body = nn.Sequential(
            nn.Conv2d(3, width, 3, stride=2, padding=1, bias=False), nn.BatchNorm2d(width), nn.ReLU(inplace=True),
            nn.Conv2d(width, 2 * width, 3, stride=2, padding=1, bias=False), nn.BatchNorm2d(2 * width),
            nn.ReLU(inplace=True), nn.AdaptiveAvgPool2d(1), nn.Flatten())
        self.embed = nn.Sequential(nn.Linear(2 * width, dim), nn.BatchNorm1d(dim))
        self.drop = nn.Dropout(dropout)
        self.classifier = nn.Linear(dim, num_classes, bias=False)
        self.feature_dim = dim

    def forward(self, x: torch.Tensor):
        f = self.embed(self.body(x))
        if not self.training:
            return f
        return {"logits": self.classifier(self.drop(f)), "features": f}


class ToyReIDData(Dataset):
    """``num_ids × per_id`` images of ``height × width``: identity prototype + noise.

    ``ds[i] -> (image [3,H,W], pid, camid, i)`` like :class:`reidbook.data.ImageDataset`;
    ``.items`` are ``(name, pid, camid)`` triples for :class:`reidbook.data.RandomIdentitySampler`.
    With ``augment=True`` each access adds fresh noise from torch's global RNG (so resumed runs
    must restore it).
    """

    def __init__(self, num_ids: int = 8, per_id: int = 8, height: int = 32, width: int = 16, seed: int = 0,
                 noise: float = 0.5, augment: bool = True):
        g = torch.Generator().manual_seed(seed)
        protos = torch.randn(num_ids, 3, 4, 2, generator=g)
        protos = nn.functional.interpolate(protos, size=(height, width), mode="nearest")
        self.pids = torch.arange(num_ids).repeat_interleave(per_id)
        self.images = protos[self.pids] + noise * torch.randn(len(self.pids), 3, height, width, generator=g)
        self.items = [(f"toy_{i:04d}", int(p), i % 2) for i, p in enumerate(self.pids.tolist())]
        self.noise, self.augment = noise, augment
        self.num_classes = num_ids

    def __len__(self) -> int:
        return len(self.items)

    def __getitem__(self, i: int):
        img = self.images[i]
        if self.augment:
            img = img + 0.1 * self.noise * torch.randn_like(img)
        _, pid, camid = self.items[i]
        return img, pid, camid, i


def toy_loader(data: ToyReIDData, P: int = 4, K: int = 4, seed: int = 0, num_replicas: int | None = None,
               rank: int | None = None) -> DataLoader:
    """A P×K loader over :class:`ToyReIDData` with the course's :class:`RandomIdentitySampler`."""
    from reidbook.data.samplers import RandomIdentitySampler

    sampler = RandomIdentitySampler(data.items, batch_size=P * K, num_instances=K, seed=seed,
                                    num_replicas=num_replicas, rank=rank)
    return DataLoader(data, batch_size=P * K, sampler=sampler, drop_last=True, num_workers=0)


def toy_criterion(triplet: bool = True):
    """Cross-entropy on ``logits`` (+ batch-hard triplet on ``features``): ``(outputs, pids) -> (total, parts)``."""
    from reidbook.losses import Criterion, CrossEntropyLoss, LossTerm, TripletLoss

    terms = [LossTerm("ce", CrossEntropyLoss(), 1.0, key="logits")]
    if triplet:
        terms.append(LossTerm("triplet", TripletLoss(margin=0.3), 1.0, key="features"))
    return Criterion(terms)


def _count_checkpoint_writes(folder: Path) -> list[str]:
    """Record every file this process moves into ``folder`` (atomic writes end in ``os.replace``): what the
    test reads to see that only rank 0 writes checkpoints."""
    written: list[str] = []
    real = os.replace

    def replace(src, dst, *a, **kw):
        if Path(dst).parent == folder:
            written.append(Path(dst).name)
        return real(src, dst, *a, **kw)

    os.replace = replace
    return written


def main(argv: list[str] | None = None) -> dict:
    from reidbook.engine.distributed import cleanup_distributed, init_distributed
    from reidbook.engine.optim import build_optimizer, build_scheduler
    from reidbook.engine.trainer import fit, iters_per_epoch

    ap = argparse.ArgumentParser(prog="python -m support.distributed_demo", description=__doc__.split("\n")[0])
    ap.add_argument("--epochs", type=int, default=2)
    ap.add_argument("--out", type=Path, default=Path("distributed_demo_out"),
                    help="folder for the checkpoint (rank 0) and, with --report, one result file per rank")
    ap.add_argument("--device", default="cpu")
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--report", action="store_true",
                    help="each rank writes rank<r>.pt (its final weights) and rank<r>.json (checkpoints it wrote)")
    args = ap.parse_args(argv)

    torch.set_num_threads(int(os.environ.get("OMP_NUM_THREADS", "1")))
    info = init_distributed(args.device)
    written = _count_checkpoint_writes((args.out / "ckpt").resolve())
    try:
        data = ToyReIDData(num_ids=8, per_id=8, seed=args.seed)
        loader = toy_loader(data, P=4, K=4, seed=args.seed, num_replicas=info.world_size, rank=info.rank)
        torch.manual_seed(1000 + info.rank)  # different initial weights per rank: DDP must unify them
        model = TinyReIDNet(data.num_classes)
        criterion = toy_criterion()
        optimizer = build_optimizer(model, {"name": "sgd", "lr": 0.05, "momentum": 0.9, "weight_decay": 5e-4})
        scheduler = build_scheduler(optimizer, {"name": "step", "milestones": [1], "gamma": 0.5}, args.epochs,
                                    iters_per_epoch(loader))
        history = fit(model, loader, criterion, optimizer, scheduler, epochs=args.epochs, device=info.device,
                      checkpoint_dir=(args.out / "ckpt").resolve(), seed=args.seed)
        result = {"rank": info.rank, "world_size": info.world_size, "checkpoints_written": len(written),
                  "history": history.records}
        if args.report:
            args.out.mkdir(parents=True, exist_ok=True)
            torch.save({k: v.cpu() for k, v in model.state_dict().items()}, args.out / f"rank{info.rank}.pt")
            (args.out / f"rank{info.rank}.json").write_text(json.dumps(result, indent=1))
        if info.rank == 0:
            last = history.last
            print(f"world size {info.world_size}: epoch {last.get('epoch')} loss {last.get('loss', float('nan')):.4f} "
                  f"({last.get('images_per_s', 0):.0f} images/s over all ranks)", flush=True)
        return result
    finally:
        cleanup_distributed()


if __name__ == "__main__":
    main()
