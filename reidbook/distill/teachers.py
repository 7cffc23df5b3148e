"""Step 1 of Factorized Distillation (§3.6): train one re-ID model per view, and score it on that view.

Paper 002, §3.1 and Fig. 2: each teacher sees only its view ``View^k(I)`` (a horizontal band of the
crop, resized), augmented as Table 2 says, and is trained with cross-entropy (Eq. 1). The initial
student is trained by the same system on the holistic view. Evaluation follows §4.1's "Verification
Method": the representation ``r`` averaged over the image and its mirror, ranked by cosine distance —
for a partial teacher, query and gallery are seen through the same view (Table 3's lower block).
"""
from __future__ import annotations

import torch
from torch import nn

from ..data.views import View, ViewDataset, view_transform
from ..presets import Preset
from ..utils import resolve_device

__all__ = ["train_view_model", "evaluate_view", "evaluate_ensemble", "view_loader", "pooling_note"]

BACKBONE_STRIDE = 16  # §4.1: every FD backbone (ResNets with last stride 1, SqueezeNet) has stride 16


def pooling_note(view: View, kernel: int | None = None) -> str | None:
    """A sentence when ``view``'s feature map (input / 16, rounded up) is no larger than stabilised GMP's
    kernel (Eq. 5, 4×4 in §4.1), else ``None``: the kernel is then clipped to the map and the "max over
    local means" is one mean, i.e. plain global average pooling (the quick profile's 48×48 partial views
    give 3×3 maps)."""
    from ..models.fd import GMP_KERNEL

    k = GMP_KERNEL if kernel is None else kernel
    h, w = -(-view.height // BACKBONE_STRIDE), -(-view.width // BACKBONE_STRIDE)
    if h > k or w > k:
        return None
    return (f"view {view.name} ({view.height}×{view.width}) gives {h}×{w} feature maps, not larger than stabilised "
            f"GMP's {k}×{k} kernel (Eq. 5): the pooling is plain global average pooling here")


def view_loader(items, view: View, preset: Preset, seed: int = 0, device=None):
    """A P×K training loader of ``DataAug(View^k(I))`` with the preset's augmentation (Table 2).

    The tensor path (default) when the preset's size is the view's and it does every augmentation; else the
    per-sample PIL path (``REIDBOOK_LOADER=pil``). On a CUDA ``device`` the batches are augmented there."""
    from ..data.tensorstore import tensor_aug_supported
    from ..engine import preset_loader

    if _tensor_loader() and (preset.height, preset.width) == (view.height, view.width) \
            and tensor_aug_supported(preset.train_aug):  # the tensor path crops the band itself
        return preset_loader(items, preset, seed=seed, band=(view.top, view.bottom) if view.partial else None,
                             device=device)
    return preset_loader(items, preset, seed=seed, transform=view_transform(view, is_train=True, **preset.train_aug),
                         device=device)


def _tensor_loader() -> bool:
    import os

    return os.environ.get("REIDBOOK_LOADER", "tensor") == "tensor"


def train_view_model(model: nn.Module, items, view: View, preset: Preset, device="auto", seed: int = 0,
                     checkpoint_dir=None, desc: str | None = None):
    """Train ``model`` (an :class:`~reidbook.models.fd.FDNet`) on ``items`` seen through ``view`` with the
    cross-entropy of Eq. (1) and the preset's optimiser and schedule (:func:`reidbook.engine.fit_preset`);
    returns the engine's History. The batches come from :func:`view_loader`: on the default tensor path the
    band is cropped once into the decoded store and whole batches are augmented as tensors (measured in quick:
    0.25 s an epoch for a partial view against 2.0–2.5 s per sample through PIL). Says so when the view's maps
    are too small for stabilised GMP (:func:`pooling_note`)."""
    from ..engine import fit_preset
    from ..utils import say

    note = pooling_note(view)
    if note:
        say(f"[fd] {note}")
    return fit_preset(model, items, preset, seed=seed, device=device, checkpoint_dir=checkpoint_dir,
                      loader=view_loader(items, view, preset, seed=seed, device=device),
                      desc=desc or f"{getattr(model, 'name', 'fd')} ({view.name})")


def _view_features(model: nn.Module, dataset, view: View, device, batch_size: int) -> dict:
    from torch.utils.data import DataLoader

    from ..engine import extract_features

    return {split: extract_features(model, DataLoader(ViewDataset(getattr(dataset, split), view), batch_size=batch_size,
                                                      shuffle=False), device=device, flip=True,
                                    desc=f"{split} features ({view.name})")
            for split in ("query", "gallery")}


def evaluate_ensemble(models: dict[str, nn.Module], dataset, views: list[View], device="auto",
                      batch_size: int = 128) -> dict:
    """mAP / CMC of several view models together: each model's flip-averaged ``r`` of its own view,
    L2-normalised, concatenated, ranked by cosine distance.

    Not in the paper: it measures what the teachers *jointly* know — an upper view of what FD can
    transfer (Eq. 6 asks the student to predict all of these representations at once).
    """
    import torch.nn.functional as F

    from ..eval import evaluate_features, scalar_metrics

    if not models:
        raise ValueError("evaluate_ensemble needs at least one model")
    by_name = {v.name: v for v in views}
    missing = [k for k in models if k not in by_name]
    if missing:
        raise ValueError(f"no view given for model(s) {missing}; views: {list(by_name)}")
    dev = resolve_device(device)
    parts = {k: _view_features(m, dataset, by_name[k], dev, batch_size) for k, m in models.items()}
    first = next(iter(parts.values()))
    (_, qp, qc), (_, gp, gc) = first["query"], first["gallery"]
    qf = torch.cat([F.normalize(p["query"][0], dim=1) for p in parts.values()], dim=1)
    gf = torch.cat([F.normalize(p["gallery"][0], dim=1) for p in parts.values()], dim=1)
    return scalar_metrics(evaluate_features(qf, gf, qp, gp, qc, gc, metric="cosine"))


def evaluate_view(model: nn.Module, dataset, view: View, device="auto", metric: str = "cosine",
                  batch_size: int = 128) -> dict:
    """mAP / CMC of ``model`` on ``dataset``'s query and gallery, both seen through ``view``.

    Returns :func:`reidbook.eval.evaluate_features`' dict without the raw result and distance matrix.
    """
    from ..eval import evaluate_features, scalar_metrics

    feats = _view_features(model, dataset, view, resolve_device(device), batch_size)
    (qf, qp, qc), (gf, gp, gc) = feats["query"], feats["gallery"]
    return scalar_metrics(evaluate_features(qf, gf, qp, gp, qc, gc, metric=metric))


