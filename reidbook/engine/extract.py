"""Feature extraction for evaluation: the test-time embedding of every image, flip-averaged.

Re-ID papers report the embedding of an image averaged with the embedding of its horizontal
mirror (e.g. MGN, Wang et al. 2018, Sec. 4.2: "the features of the original image and the
horizontally flipped one are averaged"); ``flip=True`` does that. Models return their test-time
embedding ``[B, D]`` in ``eval()`` mode (see CONTRIBUTING.md), so this loop needs nothing else.

Each test split is extracted **once per model** (issue 22): when the model is an unchanged network from
the store (a zoo model, tagged by :func:`reidbook.store.tag_model`) and the loader reads a
:class:`reidbook.data.ImageDataset` in order, the features are kept in the store keyed by the model entry
(and its weights' digest), the split, the input transform and ``flip``/``normalize``
(:func:`reidbook.store.cached_features`); the next chapter that evaluates that model on that split reads
them. Anything else (a pruned or fine-tuned model, a custom loader) is extracted as before. The engine sits
below the store and does not import it: the store installs its cache here (:func:`set_feature_cache`)
when it tags a model, so only a process that loaded or saved a stored model uses it.
"""
from __future__ import annotations

import numpy as np
import torch
from torch import nn

from ..utils import progress, resolve_device

__all__ = ["extract_features", "set_feature_cache"]

# ``fn(model, items, options, compute) -> (features, pids, camids)``, installed by the store (None: no cache)
_FEATURE_CACHE = None


def set_feature_cache(fn) -> None:
    """Install the per-model feature cache (:func:`reidbook.store.cached_features`; ``None`` removes it)."""
    global _FEATURE_CACHE
    _FEATURE_CACHE = fn


def _embed(model: nn.Module, x: torch.Tensor) -> torch.Tensor:
    out = model(x)
    if not isinstance(out, torch.Tensor) or out.ndim != 2 or out.shape[0] != x.shape[0]:
        what = type(out).__name__ if not isinstance(out, torch.Tensor) else f"a tensor of shape {tuple(out.shape)}"
        raise TypeError(f"extract_features: {type(model).__name__} in eval() mode returned {what}; "
                        f"it must return the test-time embedding [batch={x.shape[0]}, dim]")
    return out


def _split_of(loader):
    """``(items, transform description)`` when ``loader`` reads an :class:`~reidbook.data.ImageDataset` (or an FD
    :class:`~reidbook.data.views.ViewDataset`) in its own order with a transform whose description is stable
    (the cacheable case), else ``None``."""
    from torch.utils.data import BatchSampler, DataLoader, SequentialSampler

    from ..data import ImageDataset
    from ..data.views import ViewDataset

    # exact types: a subclass may change what an item is; a ViewDataset only changes the transform (its crop
    # is in the transform's description, so each view is its own key)
    if not isinstance(loader, DataLoader) or type(loader.dataset) not in (ImageDataset, ViewDataset):
        return None
    batches = loader.batch_sampler
    if (not isinstance(loader.sampler, SequentialSampler) or type(batches) is not BatchSampler
            or batches.sampler is not loader.sampler or batches.drop_last):
        return None  # shuffled, subset or truncated: not the whole split in order
    transform = " ".join(repr(loader.dataset.transform).split())
    if " at 0x" in transform:  # a lambda or an object without a description: no stable key
        return None
    return loader.dataset.items, transform


def extract_features(model: nn.Module, loader, device: str | torch.device = "auto", flip: bool = True,
                     normalize: bool = False, desc: str = "extracting features", channels_last: bool = True,
                     cache: bool = True):
    """Embed every image of ``loader`` with ``model``.

    Args:
        model: a re-ID model; it is put in ``eval()`` mode (and moved to ``device``) for the pass,
            and its previous train/eval mode is restored afterwards.
        loader: yields ``(images [B,3,H,W], pids, camids, indices)`` (``reidbook.data.ImageDataset``
            in a ``DataLoader``), in a fixed order (``shuffle=False``).
        device: ``"auto"`` (CUDA, else MPS, else CPU), or any torch device.
        flip: average the embedding of each image with that of its horizontal flip.
        normalize: L2-normalise the (flip-averaged) embeddings.
        channels_last: run in ``torch.channels_last`` memory format (NHWC): the same embeddings up to float
            rounding, 1.4-1.6x faster on this CPU for a width-¼ ResNet-50 (720-840 → 1180-1200 images/s,
            batch 128); the model is returned in the default format. The pass runs on a copy with its
            ResNet conv → BatchNorm pairs folded (:mod:`reidbook.models.fold`; 1.2-1.3× faster, differences
            ~1e-6 relative); ``model`` itself is not changed.
        cache: read/keep the features in the store when the model is an unchanged stored model and the
            loader an in-order ``ImageDataset`` (module docstring); ``False`` (or
            ``REIDBOOK_FEATURE_CACHE=0``) always runs the model.

    Returns:
        ``(features [N, D] float32 CPU tensor, pids [N] int64 array, camids [N] int64 array)`` in
        dataset order when the indices form a permutation of ``0..N-1``, else in loader order.
    """
    split = _split_of(loader) if cache and _FEATURE_CACHE is not None else None
    if split is not None:
        items, transform = split
        return _FEATURE_CACHE(model, items, {"transform": transform, "flip": bool(flip), "normalize": bool(normalize)},
                              lambda: _extract(model, loader, device, flip, normalize, desc, channels_last))
    return _extract(model, loader, device, flip, normalize, desc, channels_last)


def _folded(model: nn.Module) -> nn.Module:
    """``model`` with its ResNet conv → BN pairs folded (:func:`reidbook.models.fold.fold_batchnorm`, a copy:
    1.2-1.3× faster extraction on this CPU), or ``model`` itself when it has none, cannot be copied, or has
    hooks (a hook on a BatchNorm or a convolution would not see the folded pass). :func:`_extract` keeps the
    copy only if it reproduces the model on the first batch."""
    from ..models.fold import fold_batchnorm

    if any(m._forward_hooks or m._forward_pre_hooks or m._backward_hooks for m in model.modules()):
        return model
    try:
        folded, n = fold_batchnorm(model)
    except Exception:  # noqa: BLE001 - a model that cannot be deep-copied is run as it is
        return model
    return folded if n else model


def _extract(model: nn.Module, loader, device, flip: bool, normalize: bool, desc: str, channels_last: bool):
    """The extraction loop of :func:`extract_features` (no cache)."""
    device = resolve_device(device)
    was_training = model.training
    model.to(device)
    model.eval()
    net = _folded(model)  # the same embeddings up to float rounding, without the BatchNorm passes
    fmt = torch.channels_last if channels_last else torch.contiguous_format
    net.to(memory_format=fmt)
    feats, pids, camids, indices = [], [], [], []
    try:
        with torch.no_grad():
            for batch in progress(loader, desc=desc, unit="batch"):
                if not isinstance(batch, (list, tuple)) or len(batch) < 3:
                    raise TypeError("extract_features: the loader must yield (images, pids, camids, indices) "
                                    f"batches, got {type(batch).__name__}")
                img = batch[0].to(device, non_blocking=True)
                if img.dim() == 4:
                    img = img.contiguous(memory_format=fmt)
                f = _embed(net, img).float()
                if net is not model and not feats:
                    # the first batch through the model itself too: folding is kept only where it reproduces
                    # the model (an exploded network overflows unfolded and must show it: zoo._diverged)
                    ref = _embed(model, img.contiguous()).float()
                    if not torch.allclose(f, ref, rtol=1e-3, atol=1e-4 * float(ref.abs().max().nan_to_num(1.0)) + 1e-6):
                        net, f = model.to(memory_format=fmt), ref  # the folded copy is dropped
                if flip:
                    f = (f + _embed(net, torch.flip(img, dims=[3])).float()) / 2
                if normalize:
                    f = torch.nn.functional.normalize(f, dim=1)
                feats.append(f.cpu())
                pids.append(np.asarray(batch[1]).reshape(-1))
                camids.append(np.asarray(batch[2]).reshape(-1))
                if len(batch) > 3:
                    indices.append(np.asarray(batch[3]).reshape(-1))
    finally:
        net.to(memory_format=torch.contiguous_format)
        model.train(was_training)
    if not feats:
        raise ValueError("extract_features: the loader yielded no batches (empty query or gallery split?)")
    feats_t = torch.cat(feats)
    pid_arr = np.concatenate(pids).astype(np.int64)
    cam_arr = np.concatenate(camids).astype(np.int64)
    if not torch.isfinite(feats_t).all():
        bad = int((~torch.isfinite(feats_t)).any(1).nonzero()[0, 0])
        raise ValueError(f"extract_features: non-finite embedding (NaN/inf) for item {bad} of the loader; "
                         "the model has probably diverged — check the training loss and learning rate")
    if indices:
        idx = np.concatenate(indices).astype(np.int64)
        if len(idx) == len(feats_t) and np.array_equal(np.sort(idx), np.arange(len(idx))):
            order = np.argsort(idx)
            feats_t, pid_arr, cam_arr = feats_t[torch.from_numpy(order)], pid_arr[order], cam_arr[order]
    return feats_t.contiguous(), pid_arr, cam_arr
