"""Pruning the strong baseline PCB with PSFP (paper 003, §5.3, Tables 8–9).

The survey prunes PCB (Sun et al., ECCV 2018; :mod:`reidbook.models.pcb`) with progressive soft filter
pruning in two ways (Table 8):

* **BFE** — the *backbone feature extractor* only: the bottleneck channels of the ResNet-50;
* **BFE + LC + FC** — also the *local* 1×1 conv (2048 → 256, shared by the six stripes) and, with it, the
  inputs of the six stripe classifiers (FC).

and compares the ℓ1 and ℓ2 criteria for BFE (Table 9). PCB's test feature is g (the pooled stripes, before
the local conv), so pruning LC + FC changes the parameter count but not the test-time multiply-adds —
exactly the survey's Table 8 (same GFLOPs 2.6, parameters 12.0 M vs 11.16 M). The multiply-add target
applies to the backbone; the head is soft-pruned at the same rate.
"""
from __future__ import annotations

from torch import nn

from ..report import StrategyReport
from ..surgery import PruneUnit
from .common import C1
from .soft import progressive_soft_prune

__all__ = ["PCB_PARTS", "pcb_head_units", "prune_pcb"]

PCB_PARTS = {"bfe": "backbone feature extractor only (Table 8, PSFP + PCB (BFE))",
             "bfe+lc+fc": "backbone + local 1×1 conv + the stripe classifiers (Table 8, BFE + LC + FC)"}


def pcb_head_units(model: nn.Module) -> list[PruneUnit]:
    """PCB's head as a prunable unit: the local conv's output channels (conv ``local.0`` + BN ``local.1``),
    read by every stripe classifier (``classifiers.i``, ``nn.Linear``)."""
    local = getattr(model, "local", None)
    classifiers = getattr(model, "classifiers", None)
    if not isinstance(local, nn.Sequential) or not isinstance(local[0], nn.Conv2d) or classifiers is None:
        raise ValueError(f"{type(model).__name__} is not a PCB (no 'local' 1×1 conv + 'classifiers'); "
                         "build it with reidbook.models.build_model('pcb', ...)")
    return [PruneUnit("local.0", [("local.0", "local.1")], [f"classifiers.{i}" for i in range(len(classifiers))],
                      local[0].out_channels, "head")]


def prune_pcb(model: nn.Module, target_macs: float = C1, part: str = "bfe", criterion: str = "l2", dataset=None,
              preset=None, epochs: int = 4, input_size=(384, 128), lr_scale: float = 1.0, device="auto", seed: int = 0,
              max_iters_per_epoch: int | None = None, **options) -> tuple[nn.Module, StrategyReport]:
    """PSFP on PCB (survey Table 8): ``part`` ∈ :data:`PCB_PARTS`, ``criterion`` ∈ ``l2`` (PSFP's) / ``l1``
    (Table 9) / ``fpgm``. Trains ``epochs`` epochs with the progressive rate (Eq. 11) through
    :func:`reidbook.prune.strategies.progressive_soft_prune` and returns the hardened, smaller PCB."""
    if part not in PCB_PARTS:
        raise ValueError(f"unknown PCB part {part!r}; choose one of {', '.join(PCB_PARTS)}")
    heads = pcb_head_units(model) if part == "bfe+lc+fc" else None
    small, rep = progressive_soft_prune(model, target_macs, dataset, preset, epochs=epochs, criterion=criterion,
                                        input_size=input_size, lr_scale=lr_scale, device=device, seed=seed,
                                        max_iters_per_epoch=max_iters_per_epoch, head_units=heads, **options)
    rep.strategy = f"psfp[{part}]"
    return small, rep
