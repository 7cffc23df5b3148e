"""Layers shared by several of the course's architectures.

Pooling (global average / max, horizontal stripes, FD's stabilized GMP), the 1×1 "reduction"
used by MGN, GraftedNet and PCB, the BN-neck of strong baselines, and the initialisations the
re-ID literature uses for new layers. Model-specific blocks live in their model's file.
"""
from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn


class GlobalAvgPool(nn.Module):
    """Global average pooling ``[B, C, H, W] → [B, C]``."""

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x.mean(dim=(2, 3))


class GlobalMaxPool(nn.Module):
    """Global max pooling ``[B, C, H, W] → [B, C]`` (MGN §3.1 uses max pooling on every map)."""

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x.amax(dim=(2, 3))


class StabilizedGMP(nn.Module):
    """Stabilized global max pooling, Factorized Distillation §3.5, Eq. (5): ``GMP(AvgPool_{k,s=1}(x))``.

    A ``k×k`` average pool with stride 1 first smooths the map, so the max is taken over local means
    and is less sensitive to a single noisy activation. The paper uses ``k = 4``; on maps smaller than
    ``k`` the kernel is clipped to the map so the layer stays defined — and a map no larger than ``k×k``
    then has one local mean: the layer *is* global average pooling (FD's partial teachers in ``quick``,
    3×3 maps, and ``smoke``; :func:`reidbook.distill.teachers.pooling_note` says so when it happens).
    """

    def __init__(self, kernel_size: int = 4):
        super().__init__()
        self.kernel_size = kernel_size

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        # int(): a constant kernel when traced for ONNX export (reidbook.export); same value in eager mode
        kh, kw = min(self.kernel_size, int(x.shape[2])), min(self.kernel_size, int(x.shape[3]))
        return F.avg_pool2d(x, (kh, kw), stride=1).amax(dim=(2, 3))


def stripe_rows(height: int, parts: int) -> list[tuple[int, int]]:
    """Rows ``[start, end)`` of each stripe under ``adaptive_*_pool`` (``floor(i·H/p)`` to ``ceil((i+1)·H/p)``)."""
    return [((i * height) // parts, -((-(i + 1) * height) // parts)) for i in range(parts)]


def stripes_overlap(height: int, parts: int) -> bool:
    """Whether ``parts`` stripes of a ``height``-row map share rows (e.g. 3 stripes of 4 rows: 0–1, 1–2, 2–3)."""
    rows = stripe_rows(height, parts)
    return any(a[1] > b[0] for a, b in zip(rows, rows[1:]))


_WARNED_OVERLAP: set[tuple[int, int]] = set()


def horizontal_stripes(x: torch.Tensor, parts: int, pool: str = "max") -> list[torch.Tensor]:
    """Split a map into ``parts`` equal horizontal stripes and pool each to ``[B, C]``.

    MGN §3.1 (2 and 3 stripes, max), PCB (6 stripes, average), GraftedNet §3.3 (2 and 3, average).
    When the height is not divisible, stripes follow ``adaptive_*_pool`` boundaries and may **overlap**
    (3 stripes of a 4-row map: rows 0–1, 1–2, 2–3), which the papers' maps (24 rows for MGN, 12 for
    GraftedNet) never do: a warning says so once per (height, parts), and the smaller profiles' presets
    declare it as a departure.
    """
    if parts < 1:
        raise ValueError(f"parts must be ≥ 1, got {parts}")
    h = int(x.shape[2])
    if (h, parts) not in _WARNED_OVERLAP and stripes_overlap(h, parts):
        import warnings

        _WARNED_OVERLAP.add((h, parts))
        warnings.warn(f"{parts} horizontal stripes of a {h}-row map overlap (rows {stripe_rows(h, parts)}): "
                      f"a departure from the paper's disjoint stripes; use an input height whose map has a "
                      f"multiple of {parts} rows", stacklevel=2)
    fn = F.adaptive_max_pool2d if pool == "max" else F.adaptive_avg_pool2d
    pooled = fn(x, (parts, 1))  # [B, C, parts, 1]
    return [pooled[:, :, i, 0] for i in range(parts)]


class Reduction(nn.Module):
    """1×1 conv ``C_in → C_out`` + BN + activation, applied to a pooled ``[B, C_in]`` vector or a map.

    MGN §3.1: 2048 → 256, BN, ReLU (one per feature, not shared). GraftedNet §3.3 uses a *group*
    convolution (``groups=g``), no bias and LeakyReLU(0.1). ``groups`` and ``act`` cover both.
    """

    def __init__(self, in_channels: int, out_channels: int = 256, groups: int = 1, bias: bool = False,
                 act: str = "relu"):
        super().__init__()
        if in_channels % groups or out_channels % groups:
            raise ValueError(f"channels {in_channels}→{out_channels} are not divisible by groups={groups}")
        self.conv = nn.Conv2d(in_channels, out_channels, 1, groups=groups, bias=bias)
        self.bn = nn.BatchNorm2d(out_channels)
        self.act = {"relu": nn.ReLU(inplace=True), "leaky": nn.LeakyReLU(0.1, inplace=True),
                    "none": nn.Identity()}[act]
        kaiming_init(self)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        squeeze = x.dim() == 2
        if squeeze:
            x = x[:, :, None, None]
        x = self.act(self.bn(self.conv(x)))
        return x.flatten(1) if squeeze else x


class BNNeck(nn.Module):
    """BN-neck (Luo et al., "Bag of Tricks", 2019): a BN without learnt shift between the feature
    (triplet loss) and the bias-free classifier (softmax), so the two losses see different spaces."""

    def __init__(self, dim: int):
        super().__init__()
        self.bn = nn.BatchNorm1d(dim)
        self.bn.bias.requires_grad_(False)
        nn.init.ones_(self.bn.weight)
        nn.init.zeros_(self.bn.bias)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.bn(x)


def kaiming_init(module: nn.Module) -> None:
    """Kaiming-normal (fan-out) for convs, (fan-in) for linears, γ=1 β=0 for norms — for new layers."""
    for m in module.modules():
        if isinstance(m, nn.Conv2d):
            nn.init.kaiming_normal_(m.weight, mode="fan_out", nonlinearity="relu")
            if m.bias is not None:
                nn.init.zeros_(m.bias)
        elif isinstance(m, nn.Linear):
            nn.init.kaiming_normal_(m.weight, mode="fan_in", nonlinearity="relu")
            if m.bias is not None:
                nn.init.zeros_(m.bias)
        elif isinstance(m, (nn.BatchNorm1d, nn.BatchNorm2d)):
            if m.weight is not None:
                nn.init.ones_(m.weight)
                nn.init.zeros_(m.bias)


def classifier_init(linear: nn.Module, std: float = 0.001) -> None:
    """Small-normal init for classifiers (the common re-ID practice, e.g. MGN/PCB code: std 0.001)."""
    nn.init.normal_(linear.weight, std=std)
    if getattr(linear, "bias", None) is not None:
        nn.init.zeros_(linear.bias)


class FireModule(nn.Module):
    """SqueezeNet's fire module (Iandola et al. 2016, §3.2), optionally with an identity skip.

    ``squeeze`` 1×1 conv ``C_in → s`` + ReLU, then two parallel ``expand`` convs, 1×1 ``s → e1`` and
    3×3 ``s → e3`` (padding 1), each + ReLU, concatenated to ``e1 + e3`` channels. Convs have biases
    and there is no BN, as in SqueezeNet. ``residual=True`` adds the input to the output (SqueezeNet's
    "simple bypass"; GraftedNet §3.2 puts it on every module whose output shape equals its input's);
    it needs ``C_in == e1 + e3``.
    """

    def __init__(self, in_channels: int, squeeze: int, expand1x1: int, expand3x3: int, residual: bool = False):
        super().__init__()
        if residual and in_channels != expand1x1 + expand3x3:
            raise ValueError(f"an identity skip needs equal shapes: {in_channels} in, "
                             f"{expand1x1}+{expand3x3} out")
        self.residual = residual
        self.squeeze = nn.Conv2d(in_channels, squeeze, 1)
        self.expand1x1 = nn.Conv2d(squeeze, expand1x1, 1)
        self.expand3x3 = nn.Conv2d(squeeze, expand3x3, 3, padding=1)
        self.relu = nn.ReLU(inplace=True)
        self.out_channels = expand1x1 + expand3x3

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        s = self.relu(self.squeeze(x))
        y = torch.cat([torch.relu(self.expand1x1(s)), torch.relu(self.expand3x3(s))], dim=1)
        return y + x if self.residual else y
