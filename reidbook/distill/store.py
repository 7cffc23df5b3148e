"""The supervisory-representation (SR) store: Eq. (2) computed once, kept on disk with its provenance.

Paper 002, §3.2: ``SR_i^k = (θ^k(View^k(I_i)) + θ^k(flip(View^k(I_i)))) / 2`` — teacher ``k``'s
representation of view ``k`` of training image ``i``, averaged with the mirrored view. Nothing in it is
random, so it is computed **once, offline**, for the whole training set, and read while distilling
(online teachers would multiply the cost of every distillation step by the number of teachers).

A stored SR is only meaningful for the teacher and the data that produced it: row ``i`` must be image
``i`` of *this* training list, made by *this* teacher. So a store is a folder of

* ``sr_<view>.pt`` — a float32 tensor ``[N, D_k]`` per view, rows in training-list order;
* ``store.json`` — written **last**: for every view its teacher's fingerprint (SHA-256 of the teacher's
  weights), the view's band and size, the SR dimension, the SHA-256 of its ``.pt`` file; and the
  fingerprint of the training list.

:func:`load_store` refuses, with an error saying what differs and how to fix it, a folder without
``store.json`` (a half-written store: extraction was interrupted), a file whose hash does not match
(corrupt), a store made from another data set, by another teacher, or for other views. Every file is
written atomically (temporary file + rename), so a store is either complete or visibly incomplete.
"""
from __future__ import annotations

import hashlib
import json
import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Mapping, Sequence

import torch
from torch import nn

from ..data.views import View
from ..utils import atomic_torch_save, atomic_write_json, file_sha256

__all__ = ["StoreError", "SRStore", "STORE_VERSION", "dataset_fingerprint", "model_fingerprint", "extract_srs",
           "write_store", "load_store", "MANIFEST"]

STORE_VERSION = 1
MANIFEST = "store.json"


class StoreError(RuntimeError):
    """An SR store cannot be used (incomplete, corrupt, or made by another teacher / data set / view)."""


def dataset_fingerprint(items: Sequence) -> str:
    """SHA-256 of a training list: every item's file name, pid, camid and file size, in order.

    Row ``i`` of a store belongs to item ``i``; any change of order, labels or files changes this.
    """
    h = hashlib.sha256()
    for path, pid, camid in items:
        size = os.path.getsize(path) if os.path.exists(path) else -1
        h.update(f"{os.path.basename(str(path))}|{int(pid)}|{int(camid)}|{size}\n".encode())
    return h.hexdigest()


def model_fingerprint(model_or_state) -> str:
    """SHA-256 of a model's weights (names, shapes and values of its ``state_dict``): the teacher's
    checkpoint hash, independent of how the checkpoint file was written."""
    state = model_or_state.state_dict() if isinstance(model_or_state, nn.Module) else model_or_state
    h = hashlib.sha256()
    for k in sorted(state):
        t = state[k].detach().cpu().contiguous()
        h.update(f"{k}|{tuple(t.shape)}|{t.dtype}".encode())
        h.update(t.numpy().tobytes() if t.dtype != torch.bfloat16 else t.float().numpy().tobytes())
    return h.hexdigest()



def extract_srs(teacher: nn.Module, items: Sequence, view: View, device="auto", batch_size: int = 128) -> torch.Tensor:
    """Eq. (2) for every item: the teacher's flip-averaged representation of ``View^k(I_i)``, ``[N, D]``.

    Uses :func:`reidbook.engine.extract_features` with ``flip=True`` (that is exactly Eq. 2: a band is
    mirrored with its image) on the view's test-time transform (crop, resize, normalise; no augmentation).
    """
    from torch.utils.data import DataLoader

    from ..data.views import ViewDataset
    from ..engine import extract_features

    loader = DataLoader(ViewDataset(items, view), batch_size=batch_size, shuffle=False)
    feats, _, _ = extract_features(teacher, loader, device=device, flip=True, desc=f"SR {view.name}")
    return feats.float().contiguous()


@dataclass
class SRStore:
    """Loaded SRs: ``srs[view] = [N, D_k]`` tensors in :attr:`views` order, with the provenance."""

    srs: dict[str, torch.Tensor]
    data_fingerprint: str
    provenance: dict[str, dict] = field(default_factory=dict)
    path: Path | None = None

    @property
    def views(self) -> list[str]:
        return list(self.srs)

    @property
    def dims(self) -> dict[str, int]:
        return {k: int(v.shape[1]) for k, v in self.srs.items()}

    def __len__(self) -> int:
        return int(next(iter(self.srs.values())).shape[0]) if self.srs else 0

    def subset(self, views: Sequence[str]) -> "SRStore":
        """The same store restricted to ``views`` (Table 8's teacher ablation)."""
        missing = [v for v in views if v not in self.srs]
        if missing:
            raise StoreError(f"the SR store{' at ' + str(self.path) if self.path else ''} has no views {missing}; "
                             f"it holds {self.views}")
        return SRStore({v: self.srs[v] for v in views}, self.data_fingerprint,
                       {v: self.provenance.get(v, {}) for v in views}, self.path)


def write_store(folder, srs: Mapping[str, torch.Tensor], data_fingerprint: str,
                provenance: Mapping[str, Mapping]) -> list[str]:
    """Write ``srs`` (``{view: [N, D]}``) and its manifest to ``folder``; returns the file names.

    ``provenance[view]`` must hold ``teacher_sha256`` and ``view`` (the :class:`View` as a dict); the
    manifest is written after every tensor file, so an interrupted write leaves no manifest.
    """
    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    (folder / MANIFEST).unlink(missing_ok=True)  # rewriting: invalid until the new manifest lands
    rows = {int(t.shape[0]) for t in srs.values()}
    if len(rows) != 1:
        raise ValueError(f"every view's SRs must have one row per training image; got row counts {sorted(rows)}")
    views = {}
    for name, t in srs.items():
        if not torch.isfinite(t).all():
            raise ValueError(f"SRs of view {name!r} contain NaN/inf; the teacher has diverged — retrain it")
        prov = dict(provenance.get(name, {}))
        if "teacher_sha256" not in prov:
            raise ValueError(f"provenance of view {name!r} lacks 'teacher_sha256'")
        fname = f"sr_{name}.pt"
        atomic_torch_save(t.detach().cpu().float().contiguous(), folder / fname)
        views[name] = {**prov, "file": fname, "sha256": file_sha256(folder / fname), "dim": int(t.shape[1])}
    # "order" keeps the views' order (the JSON writer sorts dict keys)
    atomic_write_json(folder / MANIFEST, {"version": STORE_VERSION, "num_items": rows.pop(), "order": list(views),
                                          "data_fingerprint": data_fingerprint, "views": views})
    return [MANIFEST] + [v["file"] for v in views.values()]


def load_store(folder, data_fingerprint: str | None = None, teachers: Mapping[str, str] | None = None,
               views: Mapping[str, Mapping] | None = None) -> SRStore:
    """Read a store, checking it against what the caller expects.

    ``data_fingerprint``: :func:`dataset_fingerprint` of the training list to distil on;
    ``teachers``: ``{view: teacher fingerprint}``; ``views``: ``{view: View.to_dict()}``. Each given
    expectation is checked, and every file's SHA-256. Raises :class:`StoreError` naming the problem.
    """
    folder = Path(folder)
    fix = (f"Delete {folder} and extract the SRs again (reidbook.distill.pipeline.supervisory_representations "
           "or `reidbook distill`).")
    manifest = folder / MANIFEST
    if not folder.is_dir():
        raise StoreError(f"no SR store at {folder}. Extract one first (step 2 of §3.6).")
    if not manifest.is_file():
        raise StoreError(f"the SR store at {folder} is incomplete: it has no {MANIFEST} (its extraction was "
                         f"interrupted, or it is still being written), so it is not used. {fix}")
    try:
        meta = json.loads(manifest.read_text())
    except (OSError, json.JSONDecodeError) as exc:
        raise StoreError(f"{manifest} is unreadable ({exc}). {fix}") from exc
    if meta.get("version") != STORE_VERSION:
        raise StoreError(f"{manifest} has store version {meta.get('version')}, this reidbook reads {STORE_VERSION}. "
                         f"{fix}")
    if data_fingerprint is not None and meta.get("data_fingerprint") != data_fingerprint:
        raise StoreError(f"the SR store at {folder} was extracted from another training set (fingerprint "
                         f"{str(meta.get('data_fingerprint'))[:12]}… ≠ {data_fingerprint[:12]}…): its rows would "
                         f"belong to other images. {fix}")
    stored = meta.get("views", {})
    for name, sha in (teachers or {}).items():
        if name not in stored:
            raise StoreError(f"the SR store at {folder} has no view {name!r} (it holds {list(stored)}). {fix}")
        if stored[name].get("teacher_sha256") != sha:
            raise StoreError(f"the SRs of view {name!r} at {folder} were made by another teacher (weights "
                             f"{str(stored[name].get('teacher_sha256'))[:12]}… ≠ {sha[:12]}…). {fix}")
    for name, spec in (views or {}).items():
        if name not in stored:
            raise StoreError(f"the SR store at {folder} has no view {name!r} (it holds {list(stored)}). {fix}")
        if stored[name].get("view") != dict(spec):
            raise StoreError(f"view {name!r} of the SR store at {folder} is {stored[name].get('view')}, "
                             f"expected {dict(spec)}. {fix}")
    srs, prov = {}, {}
    for name in meta.get("order", list(stored)):
        info = stored[name]
        path = folder / info["file"]
        if not path.is_file():
            raise StoreError(f"{path} is missing from the SR store. {fix}")
        if file_sha256(path) != info["sha256"]:
            raise StoreError(f"{path} does not match the SHA-256 recorded in {MANIFEST} (corrupt or modified). {fix}")
        t = torch.load(path, map_location="cpu", weights_only=True)
        if tuple(t.shape) != (meta["num_items"], info["dim"]):
            raise StoreError(f"{path} has shape {tuple(t.shape)}, expected {(meta['num_items'], info['dim'])}. {fix}")
        srs[name] = t
        prov[name] = {k: v for k, v in info.items() if k not in ("file", "sha256")}
    return SRStore(srs, meta["data_fingerprint"], prov, folder)
