"""The seven *views* of Factorized Distillation and random erasing that reports where it erased.

Ren & Li, "Factorized Distillation: Training Holistic Person Re-identification Model by Distilling an
Ensemble of Partial ReID Models" (paper 002), §3.1 and Fig. 1. A *view* is a fixed horizontal band of
the pedestrian crop together with the size it is resized to:

=========  ==========  =====================================  =================
group      view        rows of the image (fraction of height)  size (paper)
=========  ==========  =====================================  =================
—          holistic    0 – 1                                   256 × 128
Group 1    up1         1/4 – 2/4   (4 stripes)                 224 × 224
Group 1    mid1        2/4 – 3/4                               224 × 224
Group 1    dn1         3/4 – 4/4                               224 × 224
Group 2    up2         1/7 – 3/7   (7 stripes)                 224 × 224
Group 2    mid2        3/7 – 5/7                               224 × 224
Group 2    dn2         5/7 – 7/7                               224 × 224
=========  ==========  =====================================  =================

(The top stripe of each group, mostly head and background, is not a view: the paper starts Up1 at
1/4 and Up2 at 1/7.) Partial views are *up-sampled*: a 1/4-height band of a 256×128 crop is 64×128
pixels and becomes 224×224, so a partial teacher sees its body part at a higher resolution than the
holistic model does (§3.1, advantage 2). ``quick`` and ``smoke`` use smaller sizes (see
``reidbook.presets.fd``); the bands never change.

Random erasing (Zhong et al. 2020, Alg. 1) is part of every training stage (Table 2). When the final
student is distilled, §4.1 drops a sample's FMFB and RFB regression losses for view ``k`` if more than
40 % of view ``k``'s region was erased, because the teacher's supervisory representation then
describes pixels the student could not see. torchvision's ``RandomErasing`` does not say where it
erased, so :class:`RandomErasingWithBox` does the same sampling and returns the rectangle, and
:func:`erased_fraction` measures how much of each view it covers.
"""
from __future__ import annotations

import math
import random
from dataclasses import dataclass
from typing import Callable, Sequence

import torch
from torch.utils.data import Dataset

from .image import ImageDataset

__all__ = ["View", "VIEW_BANDS", "VIEW_NAMES", "GROUPS", "make_views", "view_rows", "crop_view",
           "ViewCrop", "view_transform", "RandomErasingWithBox", "erased_fraction", "erased_fractions",
           "ViewDataset", "DistillDataset"]

# name -> (top, bottom) as fractions of the image height; Fig. 1.
VIEW_BANDS: dict[str, tuple[float, float]] = {
    "holistic": (0.0, 1.0),
    "up1": (1 / 4, 2 / 4), "mid1": (2 / 4, 3 / 4), "dn1": (3 / 4, 4 / 4),
    "up2": (1 / 7, 3 / 7), "mid2": (3 / 7, 5 / 7), "dn2": (5 / 7, 7 / 7),
}
VIEW_NAMES: tuple[str, ...] = tuple(VIEW_BANDS)
# Table 8's teacher groups: "Hol", "PartialG1", "PartialG2".
GROUPS: dict[str, tuple[str, ...]] = {"holistic": ("holistic",), "group1": ("up1", "mid1", "dn1"),
                                      "group2": ("up2", "mid2", "dn2")}


@dataclass(frozen=True)
class View:
    """One view: a band ``[top, bottom)`` of the image height (fractions) resized to ``height × width``."""

    name: str
    top: float
    bottom: float
    height: int
    width: int

    @property
    def partial(self) -> bool:
        return self.name != "holistic"

    @property
    def size(self) -> tuple[int, int]:
        return self.height, self.width

    def to_dict(self) -> dict:
        return {"name": self.name, "top": self.top, "bottom": self.bottom, "height": self.height,
                "width": self.width}


def make_views(holistic_size: Sequence[int] = (256, 128), partial_size: Sequence[int] = (224, 224),
               names: Sequence[str] = VIEW_NAMES) -> list[View]:
    """The views ``names`` (default all seven, in Fig. 1's order) at the given sizes.

    Defaults are the paper's: holistic 256×128, partial 224×224. Unknown names raise a ``KeyError``.
    """
    out = []
    for name in names:
        if name not in VIEW_BANDS:
            raise KeyError(f"unknown view {name!r}; FD's views are {', '.join(VIEW_NAMES)}")
        top, bottom = VIEW_BANDS[name]
        h, w = holistic_size if name == "holistic" else partial_size
        out.append(View(name, top, bottom, int(h), int(w)))
    return out


def view_rows(view: View, image_height: int) -> tuple[int, int]:
    """The pixel rows ``[r0, r1)`` of ``view`` in an image ``image_height`` pixels tall (at least one row)."""
    r0 = int(round(view.top * image_height))
    r1 = int(round(view.bottom * image_height))
    return r0, max(r1, r0 + 1)


def crop_view(image, view: View):
    """``View^k(I)`` without the resize: the band of ``image`` (a PIL image or a ``[..., C, H, W]`` tensor)."""
    if isinstance(image, torch.Tensor):
        r0, r1 = view_rows(view, image.shape[-2])
        return image[..., r0:r1, :]
    w, h = image.size
    r0, r1 = view_rows(view, h)
    return image.crop((0, r0, w, r1))


class ViewCrop(torch.nn.Module):
    """Transform: crop a PIL image / tensor to ``view``'s band (put it before the resize)."""

    def __init__(self, view: View):
        super().__init__()
        self.view = view

    def forward(self, image):
        return crop_view(image, self.view)

    def extra_repr(self) -> str:
        return f"{self.view.name}: rows {self.view.top:.3f}–{self.view.bottom:.3f}"


def view_transform(view: View, is_train: bool, **aug) -> Callable:
    """``DataAug(View^k(I))`` (§3.1): crop to the band, then :func:`build_transforms` at the view's size."""
    from torchvision.transforms import v2

    from .transforms import build_transforms

    inner = build_transforms(view.height, view.width, is_train=is_train, **aug)
    if not view.partial:
        return inner
    return v2.Compose([ViewCrop(view), inner])


# ----------------------------------------------------------------------------------------------
# Random erasing that reports the rectangle
# ----------------------------------------------------------------------------------------------
class RandomErasingWithBox:
    """Random erasing (Zhong et al., "Random Erasing Data Augmentation", AAAI 2020, Alg. 1) on a
    ``[C, H, W]`` tensor; ``__call__`` returns ``(image, box)`` with ``box = (top, left, h, w)`` in pixels
    or ``None`` when nothing was erased.

    With probability ``p``: draw a target area ``S_e ∈ scale · H·W`` and an aspect ratio
    ``r_e ∈ ratio`` (log-uniform, as torchvision does), ``h = √(S_e·r_e)``, ``w = √(S_e/r_e)``; if the
    rectangle fits, place it uniformly and fill it with ``value`` (0 = the mean pixel once normalised,
    as :func:`reidbook.data.build_transforms` does); otherwise retry, up to 10 times. The ranges
    default to :func:`build_transforms`' (area 2–33 %, aspect 0.3–3.3). The image is changed in place.
    """

    def __init__(self, p: float = 0.5, scale: tuple[float, float] = (0.02, 0.33),
                 ratio: tuple[float, float] = (0.3, 3.3), value: float = 0.0, attempts: int = 10):
        if not 0.0 <= p <= 1.0:
            raise ValueError(f"random erasing probability must be in [0, 1], got {p}")
        if not 0 < scale[0] <= scale[1] <= 1:
            raise ValueError(f"erasing area scale must satisfy 0 < lo <= hi <= 1, got {scale}")
        self.p, self.scale, self.ratio, self.value, self.attempts = p, tuple(scale), tuple(ratio), value, attempts

    def sample_box(self, height: int, width: int, rng: random.Random | None = None):
        """The rectangle ``(top, left, h, w)`` this call would erase, or ``None``."""
        rng = rng or random
        if rng.random() >= self.p:
            return None
        area = height * width
        log_r = (math.log(self.ratio[0]), math.log(self.ratio[1]))
        for _ in range(self.attempts):
            target = area * rng.uniform(*self.scale)
            aspect = math.exp(rng.uniform(*log_r))
            h = int(round(math.sqrt(target * aspect)))
            w = int(round(math.sqrt(target / aspect)))
            if 0 < h < height and 0 < w < width:
                return rng.randint(0, height - h), rng.randint(0, width - w), h, w
        return None

    def __call__(self, image: torch.Tensor):
        box = self.sample_box(image.shape[-2], image.shape[-1])
        if box is not None:
            t, left, h, w = box
            image[..., t:t + h, left:left + w] = self.value
        return image, box

    def __repr__(self) -> str:
        return f"RandomErasingWithBox(p={self.p}, scale={self.scale}, ratio={self.ratio})"


def erased_fraction(box, view: View, height: int, width: int) -> float:
    """Fraction of ``view``'s region in a ``height × width`` holistic image covered by the erased ``box``.

    The region is the view's band across the full width (views are horizontal bands, so a horizontal
    flip does not move it). ``box=None`` → 0.
    """
    if box is None:
        return 0.0
    t, left, h, w = box
    r0, r1 = view_rows(view, height)
    rows = max(0, min(t + h, r1) - max(t, r0))
    cols = max(0, min(left + w, width) - max(left, 0))
    return rows * cols / float((r1 - r0) * width)


def erased_fractions(box, views: Sequence[View], height: int, width: int) -> torch.Tensor:
    """:func:`erased_fraction` for every view, as a float tensor ``[K]``."""
    return torch.tensor([erased_fraction(box, v, height, width) for v in views], dtype=torch.float32)


# ----------------------------------------------------------------------------------------------
# Data sets
# ----------------------------------------------------------------------------------------------
class ViewDataset(ImageDataset):
    """Items seen through one view: ``ds[i] = (DataAug(View^k(I_i)), pid, camid, i)`` (Fig. 2).

    ``transform`` defaults to :func:`view_transform` for test (no augmentation); pass
    ``view_transform(view, is_train=True, **aug)`` to train a teacher.
    """

    def __init__(self, items, view: View, transform: Callable | None = None, cache: bool = False):
        super().__init__(items, transform or view_transform(view, is_train=False), cache=cache)
        self.view = view


class DistillDataset(Dataset):
    """The final student's training samples (§3.6 step 3, Table 2's last column).

    ``ds[i] = (x, pid, camid, i, erased)``: ``x`` is the holistic image resized to ``height × width``,
    randomly flipped and randomly erased (no crop, colour or rotation for the final student), and
    ``erased[k]`` the fraction of view ``k``'s region that the erasing covered (for the 40 % rule).
    """

    def __init__(self, items, views: Sequence[View], height: int, width: int, flip: bool = True,
                 erasing: float = 0.5, cache: bool = True, erasing_scale: tuple[float, float] = (0.02, 0.33)):
        from .transforms import build_transforms

        self.base = ImageDataset(items, build_transforms(height, width, is_train=True, flip=flip, pad=0,
                                                         random_crop=False, random_erasing=0.0), cache=cache)
        self.items = self.base.items
        self.views = list(views)
        self.height, self.width = height, width
        self.erasing = RandomErasingWithBox(p=erasing, scale=erasing_scale)

    def __len__(self) -> int:
        return len(self.base)

    def __getitem__(self, index: int):
        x, pid, camid, i = self.base[index]
        x, box = self.erasing(x)
        return x, pid, camid, i, erased_fractions(box, self.views, self.height, self.width)
