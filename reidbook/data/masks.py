"""Person masks and body-part maps: the ground truth that only SynthReID has.

SynthReID draws every person itself, so it writes beside every image (both domains, every split)
the *part-label map* of that image: an 8-bit PNG of the image's size under ``masks/``::

    <root>/query/0002_c1s1_000451_03.jpg   →   <root>/masks/query/0002_c1s1_000451_03.png

whose values index :data:`PART_NAMES` — 0 background (also anything in front of the person: a pole,
a bench, a passer-by), 1 head (neck, hair, hat), 2 torso, 3 arms (hands), 4 legs (hips, skirt,
shorts), 5 feet, 6 bag (backpack, shoulder bag and straps, a carried item). The person mask is
``label > 0``: one file holds both, and the parts tile the mask by construction.

Real data sets (Market-1501, DukeMTMC-reID, ...) have no such maps; asking for one raises
:class:`MasksNotAvailableError` with what to do instead.
"""
from __future__ import annotations

import os
from pathlib import Path
from typing import NamedTuple

import numpy as np

from .synth_draw import PART_LABELS, PART_NAMES

__all__ = ["PART_NAMES", "PART_LABELS", "MASKS_DIR", "BGSWAP_DIR", "MasksNotAvailableError", "Masks", "mask_path",
           "has_masks", "load_part_map", "load_masks", "part_mask", "load_bgswap_query"]

MASKS_DIR = "masks"
BGSWAP_DIR = "query_bgswap"  # SynthReID's query re-drawn on other cameras' backgrounds (same names)


class MasksNotAvailableError(FileNotFoundError):
    """The data set has no person masks / part maps (only SynthReID has them), or one is missing."""


class Masks(NamedTuple):
    """An image's ground truth: ``person`` (bool ``[H, W]``) and ``parts`` (uint8 ``[H, W]``, :data:`PART_NAMES`)."""
    person: np.ndarray
    parts: np.ndarray


def mask_path(image_path: str | os.PathLike) -> Path:
    """Where the part-label map of ``image_path`` lies: ``<domain>/masks/<split folder>/<stem>.png``."""
    p = Path(image_path)
    return p.parent.parent / MASKS_DIR / p.parent.name / (p.stem + ".png")


def has_masks(dataset) -> bool:
    """Whether ``dataset`` (a :class:`~reidbook.data.ReIDDataset`, or its root folder) has part maps."""
    root = Path(dataset if isinstance(dataset, (str, os.PathLike)) else dataset.root)
    return (root / MASKS_DIR).is_dir()


def _no_masks(dataset, path: Path) -> MasksNotAvailableError:
    name = getattr(dataset, "name", None) or path.parent.parent.name
    return MasksNotAvailableError(
        f"{name} has no person masks or part maps (looked for {mask_path(path)}). Only SynthReID has them: "
        "it draws each person and writes masks/ beside the images (reidbook.data.make_synthetic). Real data "
        "sets (Market-1501, DukeMTMC-reID, CUHK03-NP, MSMT17) come without; attention measures against "
        "ground truth need SynthReID, or masks from a human parser that you supply yourself.")


def load_part_map(dataset, item) -> np.ndarray:
    """The part-label map ``uint8 [H, W]`` of ``item`` (a ``(path, pid, camid)`` tuple or an image path).

    ``dataset`` (a :class:`~reidbook.data.ReIDDataset`, its root, or ``None``) only names the data set
    in the error when there are no maps. Raises :class:`MasksNotAvailableError` for a real data set, or
    naming the file when one map of a SynthReID folder is missing.
    """
    from PIL import Image

    path = Path(item[0] if isinstance(item, (tuple, list)) else item)
    mp = mask_path(path)
    if not mp.is_file():
        if (path.parent.parent / MASKS_DIR).is_dir():
            raise MasksNotAvailableError(
                f"the part map of {path.name} is missing: {mp}. The data set is damaged; delete its folder and "
                "generate it again with reidbook.data.make_synthetic (same seed, same files).")
        raise _no_masks(dataset, path)
    with Image.open(mp) as im:
        parts = np.asarray(im, dtype=np.uint8)
    if parts.ndim != 2 or parts.max(initial=0) >= len(PART_NAMES):
        raise ValueError(f"{mp} is not a part-label map (expected one 8-bit channel with values "
                         f"0..{len(PART_NAMES) - 1}, got shape {parts.shape}, max {parts.max(initial=0)})")
    return parts


def load_masks(dataset, item) -> Masks:
    """``Masks(person, parts)`` of ``item``: the person mask (``parts > 0``) and the part-label map."""
    parts = load_part_map(dataset, item)
    return Masks(parts > 0, parts)


def part_mask(parts: np.ndarray, part: str) -> np.ndarray:
    """Bool ``[H, W]``: where ``parts`` (a part-label map) is ``part`` (a name in :data:`PART_NAMES`;
    ``"person"`` = every part)."""
    if part == "person":
        return np.asarray(parts) > 0
    if part not in PART_LABELS:
        raise ValueError(f"unknown part {part!r}; choose one of {', '.join(PART_NAMES[1:])} or 'person'")
    return np.asarray(parts) == PART_LABELS[part]


def load_bgswap_query(dataset) -> list[tuple]:
    """SynthReID's background-swapped query: ``dataset.query``'s items, in the same order, with paths in
    ``query_bgswap/`` — the same person, pose, occluders and camera light, on another camera's background
    (``query_bgswap.csv`` names it). Scoring a model on it against the normal gallery measures how much
    it matches on background (:func:`reidbook.eval.background_reliance`).

    Raises :class:`MasksNotAvailableError` for a data set without the split (real data sets).
    """
    root = Path(dataset.root)
    folder = root / BGSWAP_DIR
    if not folder.is_dir():
        raise MasksNotAvailableError(
            f"{getattr(dataset, 'name', root.name)} has no background-swapped query ({folder} is missing). Only "
            "SynthReID (version 2.0 or later) has one: it can re-draw a person on another background. Generate "
            "SynthReID with reidbook.data.make_synthetic.")
    out, missing = [], []
    for path, pid, cam in dataset.query:
        swapped = folder / Path(path).name
        if not swapped.is_file():
            missing.append(swapped.name)
        out.append((str(swapped), pid, cam))
    if missing:
        raise MasksNotAvailableError(f"{len(missing)} background-swapped query images are missing in {folder}, e.g. "
                                     f"{missing[0]}; delete the data set folder and generate it again.")
    return out
