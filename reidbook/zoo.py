"""The model zoo: train a model once, keep it, and load it everywhere else.

Chapters share models (the pruning chapter prunes chapter 01's baseline, the capstone compares
everything), and a re-run of a chapter should not retrain what it trained a minute ago. The zoo only
**gets, trains and loads** preset runs; the parts below it are:

* :mod:`reidbook.store` — cached entries in ``$REIDBOOK_CACHE/zoo/<kind>/<key>/`` keyed by the **full
  configuration** (model, profile, data, seed, the whole preset, the pre-training, the store version),
  checked by SHA-256 on load, committed atomically (``entry.json`` last); the data sets; the one
  saved-model format (``model.pt``, ``metrics.json``, ``history.json``, ``preset.json``);
* :mod:`reidbook.pretrain` — source-domain pre-training and ``pretrained=`` resolution;
* :func:`reidbook.engine.fit_preset` — the one training path.

A folder whose ``entry.json`` is missing (interrupted run), whose files do not match their hashes
(corruption), whose configuration differs (a hash collision or a hand edit) or whose ``model.pt``
cannot be read is never used — it is trained again, with a message saying why. Weights load with
``weights_only=True``.

Public API (CONTRIBUTING.md, "Zoo"): :func:`synthreid`, :func:`dataset`, :func:`get` → :class:`ZooEntry`,
:func:`cached`, :func:`pretrained_backbone`, plus :func:`load_entry`, :func:`train_entry` (used by the CLI).
"""
from __future__ import annotations

import json
import os
import shutil
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import torch
from torch import nn

from .presets import Preset, check_profile, get_preset, profile_width
from .pretrain import backbone_of, pretrained_backbone, resolve_pretrained
from .store import (
    MARKER,
    STORE_VERSION,
    StoreError,
    building,
    cached,
    check_entry,
    check_writable,
    commit,
    config_key,
    data_fingerprint,
    data_key,
    dataset,
    entry_dir,
    invalidate,
    is_main_process,
    load_model,
    save_model,
    synthreid,
    tag_model,
)
from .utils import resolve_device, say, seed_everything

__all__ = ["ZooEntry", "ZooError", "synthreid", "dataset", "get", "cached", "pretrained_backbone", "prepare_course",
           "COURSE_BACKBONES", "load_entry", "train_entry", "config_key", "entry_dir", "entry_path", "ZOO_VERSION"]

ZOO_VERSION = STORE_VERSION  # the store's format version (kept under its old name)


class ZooError(StoreError):
    """A zoo entry cannot be used (and cannot be retrained in this situation)."""


@dataclass
class ZooEntry:
    """A trained model from the zoo: ``model`` (in ``eval()`` mode, on CPU), its ``preset``, test ``metrics``
    (``mAP``, ``rank1`` …), training ``history`` and the ``path`` of its cache folder."""

    model: nn.Module
    preset: Preset
    metrics: dict[str, float]
    history: Any
    path: Path
    config: dict[str, Any] = field(default_factory=dict)

    def __repr__(self) -> str:
        m = {k: round(v, 4) for k, v in self.metrics.items() if k in ("mAP", "rank1")}
        return (f"ZooEntry({self.config.get('name')!r}, {self.config.get('profile')!r}, metrics={m}, "
                f"path={str(self.path)!r})")


# The source-domain backbones the chapters start from (arch, width; None = the profile's width):
# ResNet-50 for the baseline, MGN, GraftedNet's rootstock, PCB, DaRe and the pruning chapters; ResNet-18/34
# for chapter 06's Table 5 and chapter 07's sequential ensemble; FD's width-1/8 ResNet-18 teachers and student
# (presets/fd.py). ``reidbook course`` pre-trains them before the first chapter (:func:`prepare_course`).
COURSE_BACKBONES: tuple[tuple[str, float | None], ...] = (
    ("resnet50", None), ("resnet18", None), ("resnet34", None), ("resnet18", 0.125))


def prepare_course(profile: str = "quick", seed: int = 0, device: str = "auto") -> dict[str, float]:
    """Generate SynthReID and pre-train :data:`COURSE_BACKBONES` on its source domain, once (cached).

    This is the course's "download the ImageNet weights" step: done before the chapters so that no
    chapter's run time pays for another chapter's backbone. Nothing to do in ``full`` (ImageNet weights).
    Returns seconds spent per item (0 when cached).
    """
    check_profile(profile)
    spent: dict[str, float] = {}
    t0 = time.perf_counter()
    synthreid(profile, seed)
    spent["SynthReID"] = time.perf_counter() - t0
    if profile == "full":
        return spent
    wanted = dict.fromkeys((arch, profile_width(profile) if width is None else width)
                           for arch, width in COURSE_BACKBONES)
    for arch, w in wanted:  # in smoke, width 1/8 is also the profile's: each backbone once
        t0 = time.perf_counter()
        pretrained_backbone(arch, w, profile, seed, device=device)
        spent[f"{arch} x{w:g} (source domain)"] = time.perf_counter() - t0
    return spent


# ----------------------------------------------------------------------------------------------
# Checks made before anything is loaded or trained
# ----------------------------------------------------------------------------------------------
def _check_device(device) -> torch.device:
    """``resolve_device`` that also refuses an accelerator this machine does not have (cached entry or not)."""
    dev = resolve_device(device)
    if dev.type == "cuda" and not torch.cuda.is_available():
        raise ValueError(f"device {str(device)!r} asked for CUDA, but torch sees no CUDA GPU on this machine "
                         "(torch.cuda.is_available() is False); use device 'cpu' or 'auto'")
    if dev.type == "mps" and not (getattr(torch.backends, "mps", None) and torch.backends.mps.is_available()):
        raise ValueError(f"device {str(device)!r} asked for Apple's MPS, which is not available here; "
                         "use 'cpu' or 'auto'")
    return dev


def _check_epochs(preset: Preset) -> None:
    e = preset.epochs
    if isinstance(e, bool) or not isinstance(e, int) or e < 1:
        raise ValueError(f"epochs must be an integer ≥ 1, got {e!r} ({preset.model}, {preset.profile}): a zoo "
                         "entry is a trained model; nothing was trained or saved")


def _preset(name: str, profile: str, overrides: dict) -> Preset:
    return get_preset(name, profile).replace(**overrides) if overrides else get_preset(name, profile)


def _pretrained_key(name: str, preset: Preset, pretrained, seed: int) -> Any:
    """The pre-training's config key without training it (so a cached run loads without pre-training)."""
    arch, width = backbone_of(name, preset)
    return resolve_pretrained(pretrained, arch=arch, width=width, profile=preset.profile, seed=seed, train=False)[1]


def _run_config(name: str, preset: Preset, data: str, seed: int, pretrained_key) -> dict:
    return {"name": name, "profile": preset.profile, "data": data_key(data), "seed": seed,
            "data_sha256": data_fingerprint(preset.profile, data, seed),
            "preset": preset.to_dict(), "pretrained": pretrained_key}


# ----------------------------------------------------------------------------------------------
# Train
# ----------------------------------------------------------------------------------------------
def _check_trained(model: nn.Module, preset: Preset, folder: Path) -> None:
    """Refuse to keep a diverged run: non-finite weights, or a test-time embedding that is not finite on a
    batch of random images (a finite but exploded network). Its resume checkpoints are deleted, so a rerun
    starts over instead of resuming a finished, useless run."""
    bad = [n for n, t in model.state_dict().items() if t.is_floating_point() and not bool(t.isfinite().all())]
    if not bad:
        gen = torch.Generator().manual_seed(0)  # leaves the global RNG alone
        x = torch.randn(2, 3, preset.height, preset.width, generator=gen)
        with torch.no_grad():
            out = model.eval()(x)
        outs = out.values() if isinstance(out, dict) else out if isinstance(out, (list, tuple)) else [out]
        if any(torch.is_tensor(t) and t.is_floating_point() and not bool(t.isfinite().all()) for t in outs):
            bad = ["the embedding of random images"]
    if bad:
        raise _diverged(preset, folder, f"{', '.join(bad[:3])} not finite")


def _diverged(preset: Preset, folder: Path, what: str) -> FloatingPointError:
    shutil.rmtree(folder / "train", ignore_errors=True)
    return FloatingPointError(
        f"training {preset.model} ({preset.profile}) diverged: {what}. Nothing was saved, and its resume "
        f"checkpoints in {folder / 'train'} were deleted so that a rerun starts over. Lower the learning rate "
        f"(now {preset.optimizer.get('lr')}) or add warm-up.")


def _deployed(model: nn.Module) -> nn.Module:
    """``model.deploy()`` (the inference model without training-only parts) if the model has one, in eval mode."""
    return (model.deploy() if hasattr(model, "deploy") else model).eval()


def train_entry(name: str, preset: Preset, data: str = "synth", seed: int = 0, device: str = "auto",
                pretrained="auto", folder: Path | None = None, evaluate: bool = True,
                resume: bool = True) -> ZooEntry:
    """Train ``name`` with ``preset`` on ``data`` and write an entry folder (the zoo's or ``folder``).

    Steps: check the device, the epochs and that the folder can be written; build the data set and the
    model (with its pre-trained backbone); :func:`reidbook.engine.fit_preset` (checkpoints in
    ``folder/train``, so an interrupted run resumes; ``resume=False`` starts over); check the run did not
    diverge; :func:`reidbook.eval.evaluate_model` on query/gallery with the model's metric; save
    (:func:`reidbook.store.save_model`) and commit.
    """
    from .engine import fit_preset
    from .eval import evaluate_model, scalar_metrics
    from .models import build_model

    dev = _check_device(device)
    _check_epochs(preset)
    check_writable(folder)  # the cache (or the given folder) before the data set is generated into it
    ds = dataset(preset.profile, data, seed)
    arch, width = backbone_of(name, preset)
    pre_key = _pretrained_key(name, preset, pretrained, seed)
    config = _run_config(name, preset, data, seed, pre_key)
    folder = Path(folder) if folder is not None else entry_dir(name, config)
    check_writable(folder)
    build_pre, _ = resolve_pretrained(pretrained, arch=arch, width=width, profile=preset.profile, seed=seed,
                                      device=device)
    seed_everything(seed)
    model = build_model(name, ds.num_train_pids, profile=preset.profile, pretrained=build_pre, **preset.model_options)
    say(f"[zoo] training {name} ({preset.profile}, {data}, seed {seed}) on {dev}: {len(ds.train)} images, "
        f"{ds.num_train_pids} identities, {preset.epochs} epochs -> {folder}")
    evaluate_fn = None
    if evaluate and preset.eval_every:
        def evaluate_fn(m):
            return scalar_metrics(evaluate_model(m, ds, preset.height, preset.width, device=dev))
    t0 = time.perf_counter()
    history = fit_preset(model, ds.train, preset, seed=seed, device=dev, checkpoint_dir=folder / "train",
                         resume=resume, evaluate=evaluate_fn)
    train_seconds = time.perf_counter() - t0
    # Training-only parts (GraftedNet's accompanying branch, CONTRIBUTING "Models") are neither
    # evaluated nor saved; a model may name its paper's metric (GraftedNet §4.2: cosine).
    model = _deployed(model.cpu().eval())
    _check_trained(model, preset, folder)
    tag_model(model, folder)  # so this first evaluation's test features are kept (store.cached_features)
    metrics = {}
    if evaluate:
        try:
            # evaluate_model scores with the model's own metric
            metrics = scalar_metrics(evaluate_model(model, ds, preset.height, preset.width, device=dev))
        except ValueError as exc:
            if "non-finite" not in str(exc) and "NaN" not in str(exc):
                raise
            raise _diverged(preset, folder, f"the test images' features are not finite ({exc})") from None
        model = model.cpu().eval()
    metrics["train_seconds"] = train_seconds
    if is_main_process():
        files = save_model(folder, model, metrics, history, preset=preset.to_dict())
        commit(folder, name, config, files,
               {"num_classes": ds.num_train_pids, "feature_dim": getattr(model, "feature_dim", None)})
    return ZooEntry(model, preset, metrics, history, folder, config)


# ----------------------------------------------------------------------------------------------
# Load, get
# ----------------------------------------------------------------------------------------------
def load_entry(path: str | os.PathLike) -> ZooEntry:
    """Load an entry folder written by :func:`get` / ``reidbook train`` (or its ``model.pt``).

    Raises :class:`ZooError` naming the folder, the problem and the fix if the folder is incomplete,
    corrupt, unreadable, or its weights do not fit the model its configuration describes.
    """
    from .engine.history import History
    from .models import build_model

    folder = Path(path).expanduser()
    if folder.is_file():
        folder = folder.parent
    marker = folder / MARKER
    if not marker.exists():
        raise ZooError(f"{folder} is not a reidbook model folder (no {MARKER}); give a folder written by "
                       "`reidbook train --out` or the zoo")
    try:
        entry = json.loads(marker.read_text())
        kind, cfg = entry["kind"], entry["config"]
        preset = Preset(**cfg["preset"])
        num_classes = int(entry["num_classes"])
    except (OSError, UnicodeDecodeError, ValueError, KeyError, TypeError) as exc:
        raise ZooError(f"cannot use {folder}: {marker} is unreadable or incomplete ({type(exc).__name__}: {exc}). "
                       "Delete the folder and train again.") from exc
    _, why = check_entry(folder, kind, cfg)
    if why:
        raise ZooError(f"cannot use {folder}: {why}. Delete the folder and train again.")
    model = _deployed(build_model(cfg["name"], num_classes, profile=preset.profile, **preset.model_options))
    try:
        saved = load_model(folder, model)
    except StoreError as exc:
        raise ZooError(f"cannot use {folder} ({cfg['name']!r}): {exc}") from None
    return ZooEntry(saved.model, preset, saved.metrics, History(saved.history), folder, cfg)


def get(name: str, profile: str = "quick", data: str = "synth", seed: int = 0, device: str = "auto",
        pretrained="auto", retrain: bool = False, **overrides) -> ZooEntry:
    """A trained ``name`` at ``profile`` on ``data``: loaded from the zoo, or trained with its preset now.

    ``overrides`` change preset fields (``epochs=3``, ``losses=loss_specs("softmax")``,
    ``model_options={"arch": "resnet18"}`` — dicts are merged) and so the cache key. ``pretrained``:
    ``"auto"`` (source-domain pre-training in smoke/quick, ImageNet in full), ``"source"``,
    ``"imagenet"``, ``None``, a path or a state dict. ``retrain=True`` ignores a cached entry and its
    resume checkpoint (training starts over). An entry that cannot be used (incomplete, corrupt, or a
    ``model.pt`` that cannot be read) is trained again, with a message. The device is checked first,
    whether the entry is cached or not; ``epochs`` must be ≥ 1.
    """
    _check_device(device)
    preset = _preset(name, profile, overrides)
    _check_epochs(preset)
    config = _run_config(name, preset, data, seed, _pretrained_key(name, preset, pretrained, seed))
    folder = entry_dir(name, config)
    with building(folder):  # a second process asking for this entry now waits, then loads it
        if not retrain:
            entry, why = check_entry(folder, name, config)
            if entry is not None:
                try:
                    return load_entry(folder)
                except ZooError as exc:
                    why = str(exc)
            invalidate(folder, why)
        return train_entry(name, preset, data, seed, device, pretrained, folder=folder, resume=not retrain)


def entry_path(name: str, profile: str = "quick", data: str = "synth", seed: int = 0, pretrained="auto",
               **overrides) -> Path:
    """The cache folder :func:`get` with these arguments uses, without loading or training anything
    (it may not exist yet: ``(entry_path(...) / "entry.json").exists()`` says whether it was trained)."""
    preset = _preset(name, profile, overrides)
    return entry_dir(name, _run_config(name, preset, data, seed, _pretrained_key(name, preset, pretrained, seed)))
