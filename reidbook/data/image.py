"""Reading person crops from disk: one image, many images (verification), and a torch ``Dataset``.

Every failure names the file: a re-ID data set has tens of thousands of crops, and "cannot identify
image file" without a path is useless. Nothing is ever skipped silently — a corrupt crop would
quietly change the query/gallery protocol and therefore every number the course reports.
"""
from __future__ import annotations

import os
from pathlib import Path
from typing import Callable, Iterable, Sequence

import torch
from PIL import Image, UnidentifiedImageError
from torch.utils.data import Dataset

from ..utils import progress

Item = tuple  # (path: str, pid: int, camid: int)


class CorruptImageError(OSError):
    """An image file exists but cannot be decoded (truncated, not an image, zero bytes...)."""


def read_image(path: str | os.PathLike) -> Image.Image:
    """Open ``path`` and fully decode it as an RGB ``PIL.Image``.

    Raises ``FileNotFoundError`` (missing file) or :class:`CorruptImageError` (undecodable file),
    both naming the path. Decoding is forced with ``convert("RGB")`` so that a truncated JPEG fails
    here and not later inside a transform or a DataLoader worker.
    """
    path = str(path)
    if not os.path.isfile(path):
        raise FileNotFoundError(
            f"image not found: {path}\n  The data set's file list points at a file that is not on disk; "
            "was the folder moved or partly copied? Reload the data set with reidbook.data.load_dataset."
        )
    try:
        with Image.open(path) as img:
            return img.convert("RGB")  # forces a full decode; returns a new, detached image
    except (UnidentifiedImageError, OSError, SyntaxError, ValueError) as e:
        size = os.path.getsize(path)
        raise CorruptImageError(
            f"corrupt or unreadable image: {path} ({size} bytes): {e}\n"
            "  Re-copy or re-extract this file from the original archive "
            "(or delete it if it is not part of the data set)."
        ) from e


def check_images(paths: Iterable[str | os.PathLike], desc: str = "checking images") -> int:
    """Decode every image in ``paths``; raise one :class:`CorruptImageError` listing all bad ones.

    Returns the number of images checked. Missing files count as bad too.
    """
    paths = list(paths)
    bad: list[str] = []
    for p in progress(paths, desc=desc, unit="img"):
        try:
            read_image(p)
        except (FileNotFoundError, CorruptImageError) as e:
            bad.append(f"{p}  ({str(e).splitlines()[0].split(': ', 1)[0]})")
    if bad:
        shown = "\n    ".join(bad[:20])
        more = f"\n    ... and {len(bad) - 20} more" if len(bad) > 20 else ""
        raise CorruptImageError(
            f"{len(bad)} of {len(paths)} images cannot be read:\n    {shown}{more}\n"
            "  Re-copy or re-extract these files from the data set's original archive."
        )
    return len(paths)


# File signatures of the image formats PIL reads in re-ID data sets (JPEG, PNG, BMP, GIF, WebP).
_MAGIC = (b"\xff\xd8\xff", b"\x89PNG\r\n\x1a\n", b"BM", b"GIF87a", b"GIF89a", b"RIFF")
_JPEG_END = b"\xff\xd9"


def file_problem(path: str | os.PathLike) -> str | None:
    """What a cheap look (size, first bytes, a JPEG's end marker) finds wrong with an image file, or ``None``.

    No pixel is decoded: it reads at most 1 KiB per file, so a whole data set is checked in well under a
    second per 10,000 images, before any training starts. Finds missing, empty, non-image and cut-off JPEG
    files; a file that passes may still fail to decode (:func:`read_image` names it then).
    """
    try:
        size = os.stat(path).st_size
    except FileNotFoundError:
        return "missing"
    except OSError as e:
        return f"unreadable ({e.strerror or e})"
    if size == 0:
        return "empty (0 bytes)"
    try:
        with open(path, "rb") as f:
            head = f.read(16)
            tail = b""
            if head.startswith(_MAGIC[0]):
                f.seek(max(0, size - 1024))
                tail = f.read()
    except OSError as e:
        return f"unreadable ({e.strerror or e})"
    if not head.startswith(_MAGIC):
        return f"not an image ({size} bytes, unknown file header)"
    if tail and _JPEG_END not in tail:
        return f"a cut-off JPEG ({size} bytes, no end-of-image marker)"
    return None


def check_files(paths: Iterable[str | os.PathLike], what: str = "images",
                fix: str = "re-copy or re-extract these files from the data set's original archive, or delete "
                           "them if they are not part of it") -> int:
    """:func:`file_problem` for every path; one :class:`CorruptImageError` naming every bad file.

    Returns the number of files checked. ``what`` names the set in the message; ``fix`` says what to do.
    """
    paths = list(paths)
    bad = [(str(p), why) for p in paths if (why := file_problem(p)) is not None]
    if bad:
        shown = "\n    ".join(f"{p}: {why}" for p, why in bad[:10])
        more = f"\n    ... and {len(bad) - 10} more" if len(bad) > 10 else ""
        raise CorruptImageError(f"{len(bad)} of {len(paths)} {what} are damaged:\n    {shown}{more}\n  Fix: {fix}.")
    return len(paths)


def _to_tensor(img: Image.Image) -> torch.Tensor:
    """Default when no transform is given: float32 CHW tensor in [0, 1]."""
    from torchvision.transforms.v2 import functional as F

    return F.to_dtype(F.to_image(img), torch.float32, scale=True)


class ImageDataset(Dataset):
    """``items`` = ``[(path, pid, camid), ...]`` → ``ds[i] == (image_tensor, pid, camid, i)``.

    Args:
        items: the split to read (``ReIDDataset.train``, ``.query`` or ``.gallery``).
        transform: called on the decoded RGB ``PIL.Image`` (e.g. :func:`build_transforms`); ``None``
            gives a float tensor in [0, 1] at the image's own size.
        cache: keep every decoded image in memory after its first read. Quick-profile training
            re-reads the same few thousand small crops every epoch, so this removes JPEG decoding
            from all epochs but the first. The cache lives in the process that reads: with
            DataLoader workers, use ``persistent_workers=True`` (``make_train_loader`` does) or each
            epoch's fresh workers start empty.

    The returned index ``i`` lets callers map a sample back to its item (e.g. for rank lists).
    """

    def __init__(self, items: Sequence[Item], transform: Callable | None = None, cache: bool = False):
        self.items = [(str(p), int(pid), int(cam)) for p, pid, cam in items]
        self.transform = transform
        self.cache = cache
        self._cache: dict[int, Image.Image] = {}

    def __len__(self) -> int:
        return len(self.items)

    def load(self, index: int) -> Image.Image:
        """The decoded RGB image of item ``index`` (from the cache when enabled)."""
        if self.cache:
            img = self._cache.get(index)
            if img is None:
                img = self._cache[index] = read_image(self.items[index][0])
            return img
        return read_image(self.items[index][0])

    def __getitem__(self, index: int):
        if not -len(self) <= index < len(self):
            raise IndexError(f"index {index} out of range for an ImageDataset of {len(self)} items")
        index = index % len(self)
        path, pid, camid = self.items[index]
        img = self.load(index)
        x = self.transform(img) if self.transform is not None else _to_tensor(img)
        return x, pid, camid, index

    @property
    def pids(self) -> list[int]:
        return [pid for _, pid, _ in self.items]

    @property
    def camids(self) -> list[int]:
        return [cam for _, _, cam in self.items]

    def __repr__(self) -> str:
        return f"ImageDataset({len(self)} items, cache={self.cache}, transform={self.transform!r})"


def image_size(path: str | os.PathLike) -> tuple[int, int]:
    """``(width, height)`` of an image without decoding its pixels."""
    with Image.open(Path(path)) as img:
        return img.size
