"""Data: SynthReID, real re-ID data sets, image reading, transforms and the P×K sampler.

Everything is imported lazily (PEP 562 ``__getattr__``), so ``import reidbook.data`` never fails
and stays cheap even while a sibling module (e.g. ``synthetic.py``) is still being written.
"""
from __future__ import annotations

from ..utils import lazy_exports

# public name -> submodule that defines it (other modules, e.g. views.py, add their names here)
_EXPORTS = {
    # SynthReID (synthetic.py)
    "make_synthetic": "synthetic",
    # person masks and part maps (masks.py; SynthReID only)
    "load_masks": "masks",
    "load_part_map": "masks",
    "has_masks": "masks",
    "mask_path": "masks",
    "part_mask": "masks",
    "PART_NAMES": "masks",
    "MasksNotAvailableError": "masks",
    "load_bgswap_query": "masks",
    # real data sets (datasets.py)
    "ReIDDataset": "datasets",
    "load_dataset": "datasets",
    "verify_images": "datasets",
    "parse_market_name": "datasets",
    "DatasetNotFoundError": "datasets",
    "DatasetFormatError": "datasets",
    "KNOWN_DATASETS": "datasets",
    "read_market_style": "datasets",
    # image reading (image.py)
    "ImageDataset": "image",
    "read_image": "image",
    "CorruptImageError": "image",
    "check_images": "image",
    "check_files": "image",
    "file_problem": "image",
    "SynthReIDDamagedError": "synthetic",
    "verify_synthetic": "synthetic",
    # transforms (transforms.py)
    "build_transforms": "transforms",
    "IMAGENET_MEAN": "transforms",
    "IMAGENET_STD": "transforms",
    "denormalize": "transforms",
    # sampler and loader (samplers.py)
    "RandomIdentitySampler": "samplers",
    "make_train_loader": "samplers",
    # Factorized Distillation's views (views.py)
    "View": "views",
    "VIEW_NAMES": "views",
    "make_views": "views",
    "crop_view": "views",
    "view_transform": "views",
    "RandomErasingWithBox": "views",
    "erased_fraction": "views",
    "ViewDataset": "views",
    "DistillDataset": "views",
}

__all__ = sorted(_EXPORTS)


__getattr__, __dir__ = lazy_exports(__name__, _EXPORTS)
