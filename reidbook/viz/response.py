"""Feature response maps, as MGN's Fig. 2 and Fig. 5.

MGN §3 and §4.4 ("Feature response with multiple granularity"): the response at a spatial position of
an output map is the **L2 norm of the feature vector** there (over channels). Each map is normalised to
``[0, 1]`` on its own — for a Part-N branch each of its N stripes on its own, since each stripe feeds its
own feature — then upsampled to the image and overlaid. One row per image: the image, then one map per
branch (Global, Part-2, Part-3 for MGN).

Pure functions: :func:`response_map` works on tensors; :func:`branch_responses` runs a model that has
``branch_maps(x)`` (MGN, and any multi-branch model that offers it); :func:`plot_maps` draws any
``{name: [B, H, W]}`` heat maps over images (Grad-CAM reuses it).
"""
from __future__ import annotations

import math
from collections import OrderedDict
from typing import Mapping, Sequence

import numpy as np
import torch
import torch.nn.functional as F

from ..models.mgn import MGN

__all__ = ["IMAGENET_MEAN", "IMAGENET_STD", "to_display", "stripe_bounds", "response_map",
           "branch_responses", "branch_label", "overlay", "plot_maps", "plot_response_maps"]

IMAGENET_MEAN = (0.485, 0.456, 0.406)
IMAGENET_STD = (0.229, 0.224, 0.225)


def to_display(images: torch.Tensor, mean=IMAGENET_MEAN, std=IMAGENET_STD) -> np.ndarray:
    """Undo the input normalisation: ``[B, 3, H, W]`` normalised tensor → ``[B, H, W, 3]`` floats in [0, 1]."""
    if images.dim() != 4 or images.shape[1] != 3:
        raise ValueError(f"expected a [B, 3, H, W] image batch, got shape {tuple(images.shape)}")
    m = torch.tensor(mean, dtype=images.dtype, device=images.device)[None, :, None, None]
    s = torch.tensor(std, dtype=images.dtype, device=images.device)[None, :, None, None]
    return (images.detach() * s + m).clamp(0, 1).permute(0, 2, 3, 1).cpu().numpy()


def stripe_bounds(height: int, parts: int) -> list[tuple[int, int]]:
    """Row ranges ``[start, end)`` of ``parts`` horizontal stripes of a map ``height`` rows tall.

    The same boundaries as adaptive pooling (``reidbook.models.layers.horizontal_stripes``): stripe i
    spans ``floor(i·h/n)`` to ``ceil((i+1)·h/n)``, so stripes overlap when ``h`` is not divisible by ``n``.
    """
    if parts < 1 or height < 1:
        raise ValueError(f"need height ≥ 1 and parts ≥ 1, got height={height}, parts={parts}")
    return [(math.floor(i * height / parts), math.ceil((i + 1) * height / parts)) for i in range(parts)]


def _minmax(x: torch.Tensor) -> torch.Tensor:
    """Normalise each ``[B, ...]`` slice to [0, 1] over its non-batch dims (a flat slice gives 0)."""
    flat = x.flatten(1)
    lo, hi = flat.min(dim=1).values, flat.max(dim=1).values
    shape = (-1,) + (1,) * (x.dim() - 1)
    return (x - lo.view(shape)) / (hi - lo).clamp_min(1e-12).view(shape)


def response_map(feature_map: torch.Tensor, parts: int = 1, size: tuple[int, int] | None = None) -> torch.Tensor:
    """Response intensity of a branch's output map (MGN Fig. 2/5): ``‖x[:, :, i, j]‖₂`` per position.

    ``feature_map``: ``[B, C, h, w]``. Normalised to [0, 1] per map, or per stripe when ``parts > 1``
    (where stripes overlap, a row shows the later stripe's normalisation). ``size``: upsample
    (bilinear) to ``(H, W)``. Returns ``[B, h, w]`` (or ``[B, H, W]``).
    """
    if feature_map.dim() != 4:
        raise ValueError(f"expected a [B, C, h, w] map, got shape {tuple(feature_map.shape)}")
    r = feature_map.detach().float().norm(p=2, dim=1)  # [B, h, w]
    if parts <= 1:
        out = _minmax(r)
    else:
        out = torch.empty_like(r)
        for a, b in stripe_bounds(r.shape[1], parts):
            out[:, a:b] = _minmax(r[:, a:b])
    if size is not None:
        out = F.interpolate(out[:, None], size=tuple(size), mode="bilinear", align_corners=False)[:, 0]
    return out


@torch.no_grad()
def branch_responses(model: torch.nn.Module, images: torch.Tensor,
                     normalise: bool = True) -> "OrderedDict[str, np.ndarray]":
    """Response maps of every branch of an MGN ``model`` (:meth:`~reidbook.models.mgn.MGN.branch_maps`),
    upsampled to the input size: ``{branch: [B, H, W] in [0, 1]}``. A branch's parts come from ``model.specs``.

    ``normalise=False`` keeps the raw response ``‖x[:, :, i, j]‖₂`` (no per-map or per-stripe scaling):
    the energy that :mod:`reidbook.eval.attention` measures, comparable across positions of one map."""
    if not isinstance(model, MGN):
        raise TypeError(f"{type(model).__name__} has no branches; response maps need a model that "
                        "returns its branches' output maps (reidbook.models.mgn.MGN)")
    was = model.training
    model.eval()
    try:
        p = next(model.parameters())
        maps = model.branch_maps(images.to(p.device, p.dtype))
    finally:
        model.train(was)
    size = tuple(images.shape[2:])
    if not normalise:
        raw = ((name, m.detach().float().norm(p=2, dim=1)[:, None]) for name, m in maps.items())
        return OrderedDict((name, F.interpolate(r, size=size, mode="bilinear", align_corners=False)[:, 0].cpu().numpy())
                           for name, r in raw)
    return OrderedDict((name, response_map(m, model.specs[name].parts, size).cpu().numpy())
                       for name, m in maps.items())


def overlay(image: np.ndarray, heat: np.ndarray, alpha: float = 0.5, cmap: str = "jet") -> np.ndarray:
    """Blend a ``[H, W]`` heat map in [0, 1] over an ``[H, W, 3]`` image in [0, 1]; returns ``[H, W, 3]``."""
    import matplotlib

    if image.shape[:2] != heat.shape:
        raise ValueError(f"image {image.shape[:2]} and heat map {heat.shape} differ in size")
    if not 0.0 <= alpha <= 1.0:
        raise ValueError(f"alpha must be in [0, 1], got {alpha}")
    colour = matplotlib.colormaps[cmap](np.clip(heat, 0, 1))[..., :3]
    return (1 - alpha) * image + alpha * colour


def plot_maps(images: np.ndarray, maps: Mapping[str, np.ndarray], alpha: float = 0.5,
              parts: Mapping[str, int] | None = None, row_titles: Sequence[str] | None = None,
              title: str | None = None, cmap: str = "jet"):
    """A grid: one row per image; the image, then each heat map overlaid (columns named by ``maps``' keys).

    ``images``: ``[B, H, W, 3]`` in [0, 1] (see :func:`to_display`); ``maps``: ``{name: [B, H, W]}``.
    ``parts``: ``{name: N}`` draws the N stripe boundaries on that column.
    """
    import matplotlib.pyplot as plt

    B, H, W = images.shape[:3]
    for name, m in maps.items():
        if m.shape != (B, H, W):
            raise ValueError(f"map {name!r} has shape {m.shape}, expected {(B, H, W)} to match the images")
    cols = 1 + len(maps)
    fig, axes = plt.subplots(B, cols, figsize=(1.3 * cols, 2.4 * B * H / (2 * W) + 0.4), squeeze=False)
    for r in range(B):
        axes[r, 0].imshow(images[r])
        if row_titles is not None:
            axes[r, 0].set_ylabel(row_titles[r], fontsize=8)
        for c, (name, m) in enumerate(maps.items(), start=1):
            axes[r, c].imshow(overlay(images[r], m[r], alpha, cmap))
            n = (parts or {}).get(name, 1)
            for k in range(1, n):
                axes[r, c].axhline(k * H / n - 0.5, color="white", lw=0.8, ls="--")
        for ax in axes[r]:
            ax.set_xticks([]), ax.set_yticks([])
    for c, name in enumerate(["image", *maps], start=0):
        axes[0, c].set_title(name, fontsize=9)
    if title:
        fig.suptitle(title, fontsize=10)
    fig.tight_layout()
    return fig


_LABELS = {"global": "Global"}


def branch_label(name: str) -> str:
    """A branch's name as the paper writes it: ``"global"`` → ``"Global"``, ``"part3"`` → ``"Part-3"``."""
    return _LABELS.get(name, name.replace("part", "Part-"))


def plot_response_maps(model: torch.nn.Module, images: torch.Tensor, alpha: float = 0.5,
                       row_titles: Sequence[str] | None = None, title: str | None = None):
    """MGN Fig. 5 for a batch of (normalised) images: image, then each branch's response map."""
    resp = branch_responses(model, images)
    label = {n: branch_label(n) for n in resp}
    maps = OrderedDict((label[n], v) for n, v in resp.items())
    parts = {label[n]: model.specs[n].parts for n in resp}
    return plot_maps(to_display(images), maps, alpha=alpha, parts=parts, row_titles=row_titles, title=title)
