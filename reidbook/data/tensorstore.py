"""Decode a training split once, augment whole batches as tensors.

The PIL path (:func:`reidbook.data.make_train_loader` + :func:`reidbook.data.build_transforms`) decodes
or copies every image and runs resize, crop, flip, erasing **per sample** every epoch; on a 2-core CPU
that is a real share of a quick training step (FD's partial teachers spent about 2.2 s of a 4 s epoch
there). Here:

* :class:`TensorStore`: every training image decoded once, cropped to its FD band if any, resized
  exactly as the PIL path resizes it (``v2.Resize(..., antialias=True)`` on the uint8 image), stacked into
  one ``uint8 [N, 3, H, W]`` tensor and kept in the cache (``cache_dir()/tensorstore/<key>.pt``, keyed by
  the files' paths, sizes and times and the size), so the next run loads it in a fraction of a second;
* :class:`BatchAugment`: the same augmentations as :func:`build_transforms`, in the same order, applied
  to a whole batch at once — random crop (zero-pad ``pad`` then crop, or DaRe's resize-up-then-crop),
  horizontal flip, rotation, colour jitter, normalisation, random erasing (Zhong et al. 2020, Alg. 1,
  filled with the mean pixel). Its randomness comes from a generator seeded by ``(seed, epoch, step)``,
  never from the global RNG, so a batch is a pure function of the data, the seed, the epoch and the step:
  a resumed run sees bit-identical batches;
* :class:`TensorBatchLoader`: the P×K loader over a store (the same :class:`RandomIdentitySampler`, so
  the same identities and images per batch as the PIL path), a drop-in for ``fit``'s ``train_loader``.

Departures from the per-sample PIL path (same distributions, other draws): the random numbers come from
the per-batch generator; colour jitter applies brightness, contrast, saturation in this fixed order
(torchvision draws a random order) and on float pixels (torchvision rounds to uint8 between steps);
rotation uses nearest-neighbour sampling as torchvision does, with the same black fill.
"""
from __future__ import annotations

import hashlib
import math
import os
from dataclasses import dataclass
from pathlib import Path
from typing import Sequence

import numpy as np
import torch
import torch.nn.functional as F

from ..utils import atomic_torch_save, cache_dir, progress, say
from .samplers import RandomIdentitySampler
from .transforms import IMAGENET_MEAN, IMAGENET_STD

__all__ = ["TensorStore", "BatchAugment", "TensorBatchLoader", "make_tensor_loader", "tensor_aug_supported",
           "batch_generator", "STORE_VERSION"]

STORE_VERSION = 1
SUPPORTED_AUG = {"flip", "pad", "random_crop", "random_erasing", "color_jitter", "rotation", "resize_scale",
                 "normalize"}


def tensor_aug_supported(aug: dict) -> bool:
    """Whether :class:`BatchAugment` does every augmentation in ``aug`` (a preset's ``train_aug``)."""
    return set(aug) <= SUPPORTED_AUG


def _store_size(height: int, width: int, aug: dict) -> tuple[int, int]:
    """The size images are stored at: the crop's source (DaRe's enlarged image) or the output size."""
    scale = aug.get("resize_scale")
    if scale is not None and aug.get("random_crop", False):
        return round(height * scale), round(width * scale)
    return height, width


# ----------------------------------------------------------------------------------------------
# The store
# ----------------------------------------------------------------------------------------------
@dataclass
class TensorStore:
    """``images`` (``uint8 [N, 3, H, W]``), ``pids``, ``camids`` (``int64 [N]``) and the ``items`` they came from."""

    images: torch.Tensor
    pids: torch.Tensor
    camids: torch.Tensor
    items: list

    def __len__(self) -> int:
        return int(self.images.shape[0])

    @property
    def size(self) -> tuple[int, int]:
        return int(self.images.shape[-2]), int(self.images.shape[-1])

    @staticmethod
    def key(items: Sequence, height: int, width: int, band: tuple[float, float] | None = None) -> str:
        """A hash of the files (path, size, modification time), the stored size and the band."""
        h = hashlib.sha256(f"v{STORE_VERSION} {height}x{width} band={band}".encode())
        for path, pid, cam in items:
            st = os.stat(path)
            h.update(f"{path}|{pid}|{cam}|{st.st_size}|{st.st_mtime_ns}\n".encode())
        return h.hexdigest()[:20]

    @classmethod
    def build(cls, items: Sequence, height: int, width: int, band: tuple[float, float] | None = None,
              cache: bool | str | os.PathLike = True) -> "TensorStore":
        """Decode ``items`` (``[(path, pid, camid)]``) once into a store at ``height × width``.

        ``band``: ``(top, bottom)`` fractions of the height to crop first (an FD view, as
        :func:`reidbook.data.crop_view`). ``cache``: ``True`` → ``cache_dir()/tensorstore``, a folder, or
        ``False``. A cached store is loaded with ``weights_only=True``; a corrupt one is rebuilt.
        """
        from torchvision.transforms.v2 import functional as TF

        from .image import read_image

        items = [(str(p), int(pid), int(cam)) for p, pid, cam in items]
        if not items:
            raise ValueError("cannot build a tensor store of no images")
        target = None
        if cache:
            folder = cache_dir() / "tensorstore" if cache is True else Path(cache)
            target = folder / f"{cls.key(items, height, width, band)}.pt"
            if target.exists():
                try:
                    return cls._load(target, items)
                except Exception as exc:  # noqa: BLE001 - rebuilt below, with a message
                    say(f"[tensorstore] rebuilding {target}: {type(exc).__name__}: {exc}")
        images = torch.empty((len(items), 3, height, width), dtype=torch.uint8)
        for i, (path, _, _) in enumerate(progress(items, desc=f"decoding {height}x{width}", unit="img")):
            img = TF.pil_to_tensor(read_image(path))
            if band is not None:
                h = img.shape[-2]
                r0 = int(round(band[0] * h))
                img = img[:, r0:max(int(round(band[1] * h)), r0 + 1), :]
            images[i] = TF.resize(img, [height, width], antialias=True)
        store = cls(images, torch.tensor([p for _, p, _ in items]), torch.tensor([c for _, _, c in items]), items)
        if target is not None:
            atomic_torch_save({"version": STORE_VERSION, "images": images, "paths": [p for p, _, _ in items]}, target)
        return store

    @classmethod
    def _load(cls, path: Path, items: list) -> "TensorStore":
        blob = torch.load(path, map_location="cpu", weights_only=True)
        if blob.get("version") != STORE_VERSION or blob["paths"] != [p for p, _, _ in items]:
            raise ValueError("it holds another version or other images")
        images = blob["images"]
        if images.dtype != torch.uint8 or images.dim() != 4 or images.shape[0] != len(items):
            raise ValueError(f"unexpected tensor {tuple(images.shape)} {images.dtype}")
        return cls(images, torch.tensor([p for _, p, _ in items]), torch.tensor([c for _, _, c in items]), items)


# ----------------------------------------------------------------------------------------------
# Batch augmentation
# ----------------------------------------------------------------------------------------------
def batch_generator(seed: int, epoch: int, step: int, device="cpu") -> torch.Generator:
    """The generator of one batch's augmentation: a pure function of ``(seed, epoch, step)``."""
    state = np.random.SeedSequence([int(seed), int(epoch), int(step)]).generate_state(2, dtype=np.uint64)
    g = torch.Generator(device=device)
    g.manual_seed(int(state[0] & np.uint64(0x7FFF_FFFF_FFFF_FFFF)))
    return g


class BatchAugment:
    """:func:`reidbook.data.build_transforms`' training augmentation for a ``uint8 [B, 3, h, w]`` batch.

    Arguments are ``build_transforms``' (a preset's ``train_aug``), with the same meaning and order:
    crop (pad-then-crop, or DaRe's crop of an enlarged image) → flip → rotation → colour jitter → float
    and normalise → random erasing. ``__call__(batch, generator) -> float32 [B, 3, height, width]``.
    """

    def __init__(self, height: int, width: int, flip: bool = False, pad: int = 0, random_crop: bool = False,
                 random_erasing: float = 0.0, color_jitter: float = 0.0, rotation: float = 0.0,
                 resize_scale: float | None = None, normalize: bool = True):
        if not 0.0 <= random_erasing <= 1.0:
            raise ValueError(f"random_erasing is a probability in [0, 1], got {random_erasing}")
        if color_jitter < 0 or rotation < 0 or pad < 0:
            raise ValueError(f"color_jitter, rotation and pad must be >= 0 (got {color_jitter}, {rotation}, {pad})")
        if random_crop and pad == 0 and resize_scale is None:
            raise ValueError("random_crop=True needs pad > 0 or resize_scale (as build_transforms)")
        self.height, self.width = int(height), int(width)
        self.flip, self.pad, self.random_crop = bool(flip), int(pad), bool(random_crop)
        self.erasing, self.jitter, self.rotation = float(random_erasing), float(color_jitter), float(rotation)
        self.scaled = resize_scale is not None and random_crop
        self.normalize = normalize
        self.mean = torch.tensor(IMAGENET_MEAN).view(1, 3, 1, 1)
        self.std = torch.tensor(IMAGENET_STD).view(1, 3, 1, 1)

    def __call__(self, batch: torch.Tensor, generator: torch.Generator) -> torch.Tensor:
        if batch.dtype != torch.uint8 or batch.dim() != 4:
            raise ValueError(f"BatchAugment takes a uint8 [B, 3, H, W] batch, got {batch.dtype} {tuple(batch.shape)}")
        g, dev = generator, batch.device
        x = self._crop(batch, g)
        B = x.shape[0]
        if self.flip:
            flip = torch.rand(B, generator=g, device=dev) < 0.5
            x = torch.where(flip.view(B, 1, 1, 1), x.flip(-1), x)
        x = x.float().div_(255.0)
        if self.rotation > 0:
            x = self._rotate(x, g)
        if self.jitter > 0:
            x = self._color_jitter(x, g)
        if self.normalize:
            x = x.sub_(self.mean.to(dev)).div_(self.std.to(dev))
        if self.erasing > 0:
            self._erase(x, g, fill=0.0 if self.normalize else None)
        return x.contiguous()

    # -- pieces ----------------------------------------------------------------------------
    def _crop(self, x: torch.Tensor, g) -> torch.Tensor:
        H, W = self.height, self.width
        if self.scaled:  # DaRe: a random H×W window of the enlarged image
            src = x
        elif self.random_crop and self.pad > 0:  # zero-pad, then a random H×W window
            src = F.pad(x, (self.pad,) * 4)
        else:
            if x.shape[-2:] != (H, W):
                raise ValueError(f"the store holds {tuple(x.shape[-2:])} images, the augmentation wants {(H, W)}")
            return x
        B, (sh, sw) = x.shape[0], src.shape[-2:]
        top = torch.randint(0, sh - H + 1, (B,), generator=g, device=x.device).tolist()
        left = torch.randint(0, sw - W + 1, (B,), generator=g, device=x.device).tolist()
        return torch.stack([src[b, :, t:t + H, x0:x0 + W] for b, (t, x0) in enumerate(zip(top, left))])

    def _rotate(self, x: torch.Tensor, g) -> torch.Tensor:
        B = x.shape[0]
        angle = (torch.rand(B, generator=g, device=x.device) * 2 - 1) * math.radians(self.rotation)
        cos, sin = torch.cos(angle), torch.sin(angle)
        aspect = x.shape[-1] / x.shape[-2]  # rotate in pixel space, not in normalised coordinates
        theta = torch.stack([torch.stack([cos, -sin / aspect, torch.zeros_like(cos)], 1),
                             torch.stack([sin * aspect, cos, torch.zeros_like(cos)], 1)], 1)
        grid = F.affine_grid(theta, list(x.shape), align_corners=False)
        return F.grid_sample(x, grid, mode="nearest", padding_mode="zeros", align_corners=False)

    def _color_jitter(self, x: torch.Tensor, g) -> torch.Tensor:
        B, s, dev = x.shape[0], self.jitter, x.device
        lo, hi = max(0.0, 1 - s), 1 + s

        def factor():
            return (lo + (hi - lo) * torch.rand(B, generator=g, device=dev)).view(B, 1, 1, 1)

        def gray(t):
            return (0.299 * t[:, 0:1] + 0.587 * t[:, 1:2] + 0.114 * t[:, 2:3])

        x = (x * factor()).clamp_(0, 1)  # brightness
        m = gray(x).mean(dim=(1, 2, 3), keepdim=True)
        x = ((x - m) * factor() + m).clamp_(0, 1)  # contrast
        gr = gray(x)
        return ((x - gr) * factor() + gr).clamp_(0, 1)  # saturation

    def _erase(self, x: torch.Tensor, g, fill: float | None) -> None:
        """Zhong et al. Alg. 1 as torchvision's RandomErasing: area 2–33 %, log-uniform aspect 0.3–3.3,
        up to 10 tries for a rectangle that fits; in place."""
        B, _, H, W = x.shape
        dev = x.device
        hit = (torch.rand(B, generator=g, device=dev) < self.erasing).tolist()
        area = (0.02 + 0.31 * torch.rand(B, 10, generator=g, device=dev)) * (H * W)
        log_r = math.log(0.3) + (math.log(3.3) - math.log(0.3)) * torch.rand(B, 10, generator=g, device=dev)
        eh = torch.sqrt(area * torch.exp(log_r)).round().long()
        ew = torch.sqrt(area / torch.exp(log_r)).round().long()
        u = torch.rand(B, 10, 2, generator=g, device=dev)
        fill_value = torch.tensor(IMAGENET_MEAN, device=dev).view(3, 1, 1) if fill is None else fill
        eh_l, ew_l, u_l = eh.tolist(), ew.tolist(), u.tolist()
        for b in range(B):
            if not hit[b]:
                continue
            for k in range(10):
                h, w = eh_l[b][k], ew_l[b][k]
                if 0 < h < H and 0 < w < W:
                    t = int(u_l[b][k][0] * (H - h + 1))
                    x0 = int(u_l[b][k][1] * (W - w + 1))
                    x[b, :, t:t + h, x0:x0 + w] = fill_value
                    break


# ----------------------------------------------------------------------------------------------
# The loader
# ----------------------------------------------------------------------------------------------
class TensorBatchLoader:
    """P×K batches ``(images float32 [P·K, 3, H, W], pids, camids, indices)`` from a :class:`TensorStore`.

    The batches' indices come from a :class:`RandomIdentitySampler` (``.sampler``; ``fit`` calls its
    ``set_epoch`` and checkpoints its state), so they are the PIL path's; batch ``step`` of epoch ``e`` is
    augmented with :func:`batch_generator` ``(seed, e, step)``. ``device``: where the augmentation runs
    (e.g. ``"cuda"``: the uint8 batch is copied there and augmented on the GPU); ``pin_memory`` pins the
    CPU batch for an asynchronous copy.
    """

    def __init__(self, store: TensorStore, augment: BatchAugment, P: int, K: int, seed: int = 0,
                 num_replicas: int | None = None, rank: int | None = None, device=None, pin_memory: bool = False):
        self.store, self.augment, self.seed = store, augment, int(seed)
        self.sampler = RandomIdentitySampler(store.items, batch_size=P * K, num_instances=K, seed=seed,
                                             num_replicas=num_replicas, rank=rank)
        self.batch_size = P * K
        self.device = torch.device(device) if device is not None else None
        self.pin_memory = pin_memory

    def __len__(self) -> int:
        return self.sampler.batches_per_rank - self.sampler.start_batch

    def batch(self, epoch: int, step: int, indices) -> tuple:
        """Batch ``step`` of ``epoch`` made of store rows ``indices``."""
        idx = torch.as_tensor(indices, dtype=torch.long)
        raw = self.store.images.index_select(0, idx)
        dev = self.device if self.device is not None else raw.device
        if dev.type != "cpu":
            raw = raw.to(dev, non_blocking=True)
        x = self.augment(raw, batch_generator(self.seed, epoch, step, device=dev))
        if self.pin_memory and x.device.type == "cpu" and torch.cuda.is_available():
            x = x.pin_memory()
        return x, self.store.pids[idx], self.store.camids[idx], idx

    def __iter__(self):
        s = self.sampler
        epoch, start = s.epoch, s.start_batch
        for step, indices in enumerate(s.batches(epoch)[start:], start):
            yield self.batch(epoch, step, indices)
        if s.epoch == epoch:  # a complete pass moves to the next epoch, as the sampler does
            s.epoch, s.start_batch = epoch + 1, 0


def make_tensor_loader(items: Sequence, height: int, width: int, P: int, K: int, seed: int = 0,
                       band: tuple[float, float] | None = None, cache: bool = True, device=None,
                       pin_memory: bool = False, num_replicas: int | None = None, rank: int | None = None,
                       **aug) -> TensorBatchLoader:
    """The tensor-path twin of ``make_train_loader(items, build_transforms(height, width, True, **aug), P, K)``.

    ``band``: an FD view's ``(top, bottom)``. Raises ``ValueError`` for an augmentation the tensor path
    does not do (see :func:`tensor_aug_supported`).
    """
    if not tensor_aug_supported(aug):
        raise ValueError(f"the tensor loader does not do {sorted(set(aug) - SUPPORTED_AUG)}; "
                         "use reidbook.data.make_train_loader")
    sh, sw = _store_size(height, width, aug)
    store = TensorStore.build(items, sh, sw, band=band, cache=cache)
    return TensorBatchLoader(store, BatchAugment(height, width, **aug), P, K, seed=seed, num_replicas=num_replicas,
                             rank=rank, device=device, pin_memory=pin_memory)
