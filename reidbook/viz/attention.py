"""Fig. 4 of Factorized Distillation (paper 002): the attention an FMFB builds in the student.

§3.3 / Fig. 4 caption: take a feature map, compute the **L1 norm along the channels** at every pixel,
normalise the resulting mask to **[0, 1]**, **resize** it to the image and **multiply** it with the image.
Fig. 4 (b)–(d) show the FMFB maps ``f^k`` of Partial Group 1 (Up1, Mid1, Dn1), (e) the distilled student's
own maps ``f``. A partial view's FMFB should light up its band of the body, although the student never
saw the band cut out: the 1×1 FeatSel conv has learnt which channels of ``f`` describe that region.
"""
from __future__ import annotations

from collections import OrderedDict
from typing import Mapping, Sequence

import numpy as np
import torch
import torch.nn.functional as F

from ..data.transforms import denormalize

__all__ = ["attention_mask", "apply_attention", "fmfb_attention", "plot_attention", "plot_views",
           "plot_model_responses"]


def attention_mask(feature_map: torch.Tensor, size: tuple[int, int] | None = None) -> torch.Tensor:
    """``[B, C, h, w]`` → ``[B, H, W]`` in [0, 1]: channel-wise L1 norm, min–max normalised per image,
    bilinearly resized to ``size`` (default: the map's own size). A constant map gives zeros."""
    if feature_map.dim() != 4:
        raise ValueError(f"attention_mask expects [B, C, h, w] feature maps, got shape {tuple(feature_map.shape)}")
    m = feature_map.detach().float().abs().sum(dim=1, keepdim=True)
    lo = m.amin(dim=(2, 3), keepdim=True)
    hi = m.amax(dim=(2, 3), keepdim=True)
    m = (m - lo) / (hi - lo).clamp_min(1e-12)
    if size is not None:
        m = F.interpolate(m, size=tuple(size), mode="bilinear", align_corners=False).clamp(0, 1)
    return m[:, 0]


def apply_attention(images: torch.Tensor, mask: torch.Tensor) -> np.ndarray:
    """Normalised images ``[B, 3, H, W]`` times masks ``[B, H, W]`` → displayable ``[B, H, W, 3]`` in [0, 1]."""
    img = denormalize(images.detach().cpu().float())
    return (img * mask.detach().cpu()[:, None]).permute(0, 2, 3, 1).numpy()


@torch.no_grad()
def fmfb_attention(student: torch.nn.Module, images: torch.Tensor,
                   views: Sequence[str] | None = None) -> "OrderedDict[str, np.ndarray]":
    """Fig. 4's panels for ``images`` (normalised ``[B, 3, H, W]``): ``{"image": …, view: …, "student": …}``,
    each ``[B, H, W, 3]``. ``student`` must still have its FMFBs (before :meth:`deploy`)."""
    was = student.training
    student.eval()
    try:
        maps = student.view_maps(images)
    finally:
        student.train(was)
    size = tuple(images.shape[-2:])
    out = OrderedDict(image=apply_attention(images, torch.ones(images.shape[0], *size)))
    for name, fmap in maps.items():
        if views is None or name in views or name == "student":
            out[name] = apply_attention(images, attention_mask(fmap, size))
    return out


def plot_attention(panels: Mapping[str, np.ndarray], titles: Mapping[str, str] | None = None, max_images: int = 4):
    """A grid: one row per image, one column per panel (original, each FMFB, the student's ``f``)."""
    import matplotlib.pyplot as plt

    names = list(panels)
    n = min(max_images, len(next(iter(panels.values()))))
    fig, axes = plt.subplots(n, len(names), figsize=(1.3 * len(names), 2.4 * n), squeeze=False)
    for r in range(n):
        for c, name in enumerate(names):
            ax = axes[r, c]
            ax.imshow(panels[name][r])
            ax.set_xticks([])
            ax.set_yticks([])
            if r == 0:
                ax.set_title((titles or {}).get(name, name), fontsize=8)
    fig.tight_layout()
    return fig


def plot_views(images: Sequence, views: Sequence, show_crops: bool = True):
    """Fig. 1 on real images: each image with the bands of the views drawn on it and (``show_crops``)
    every view as the network receives it (cropped and resized). ``images`` are PIL images; ``views``
    :class:`reidbook.data.views.View` objects."""
    import matplotlib.pyplot as plt
    from matplotlib.patches import Rectangle

    from ..data.views import crop_view, view_rows

    colours = {"holistic": "white", "up1": "tab:red", "mid1": "tab:orange", "dn1": "tab:olive",
               "up2": "tab:blue", "mid2": "tab:cyan", "dn2": "tab:purple"}
    cols = 1 + (len(views) if show_crops else 0)
    fig, axes = plt.subplots(len(images), cols, figsize=(1.25 * cols + 0.6, 2.5 * len(images)), squeeze=False)
    for r, img in enumerate(images):
        w, h = img.size
        ax = axes[r, 0]
        ax.imshow(img)
        for v in views:
            if not v.partial:
                continue
            r0, r1 = view_rows(v, h)
            off = 1.5 + (3.0 if v.name.endswith("2") else 0.0)  # Group 2 boxes drawn slightly inset
            ax.add_patch(Rectangle((off, r0 + 0.5), w - 2 * off - 1, r1 - r0 - 1, fill=False,
                                   edgecolor=colours.get(v.name, "k"), lw=1.5))
        ax.set_xticks([])
        ax.set_yticks([])
        if r == 0:
            ax.set_title("bands", fontsize=8)
        if show_crops:
            for c, v in enumerate(views, start=1):
                crop = crop_view(img, v).resize((v.width, v.height))
                axes[r, c].imshow(crop)
                axes[r, c].set_xticks([])
                axes[r, c].set_yticks([])
                for s in axes[r, c].spines.values():
                    s.set_edgecolor(colours.get(v.name, "k"))
                    s.set_linewidth(2)
                if r == 0:
                    axes[r, c].set_title(f"{v.name}\n{v.height}×{v.width}", fontsize=8)
    fig.tight_layout()
    return fig


def plot_model_responses(models: Mapping[str, torch.nn.Module], images: torch.Tensor, max_images: int = 4,
                         row_titles: Sequence[str] | None = None, title: str | None = None):
    """Several models' response maps on the **same** images (e.g. before and after pruning): one row per image,
    the image and then each model's ``‖x[:, :, i, j]‖₂`` over its last feature map
    (:func:`reidbook.eval.attention.response_energy`), min–max normalised per map for display and upsampled
    to the image. ``images``: normalised ``[B, 3, H, W]``; at most ``max_images`` rows."""
    from ..eval.attention import response_energy
    from .response import plot_maps, to_display

    if not models:
        raise ValueError("plot_model_responses needs at least one model")
    images = images[:max_images]
    size = tuple(images.shape[-2:])
    maps = OrderedDict()
    for name, m in models.items():
        r = torch.from_numpy(response_energy(m, images))[:, None]
        lo, hi = r.amin(dim=(2, 3), keepdim=True), r.amax(dim=(2, 3), keepdim=True)
        r = (r - lo) / (hi - lo).clamp_min(1e-12)
        maps[name] = F.interpolate(r, size=size, mode="bilinear", align_corners=False)[:, 0].clamp(0, 1).numpy()
    return plot_maps(to_display(images.cpu()), maps,
                     row_titles=None if row_titles is None else list(row_titles)[:len(images)], title=title)
