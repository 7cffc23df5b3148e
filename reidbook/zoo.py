"""The model zoo: train a model once, keep it, and load it everywhere else.

Chapters share models (the pruning chapter prunes chapter 01's baseline, the capstone compares
everything), and a re-run of a chapter should not retrain what it trained a minute ago. So every
trained artefact lives in ``$REIDBOOK_CACHE/zoo/<kind>/<key>/`` where ``key`` is a hash of the
**full configuration** that produced it (model, profile, data, seed, the whole preset, the
pre-training, the package version). Change anything and you get a different folder.

A finished entry is a folder of ``model.pt`` (or ``artefact.pt``), ``preset.json``, ``metrics.json``,
``history.json`` and, written last, ``entry.json`` holding the configuration and the SHA-256 of every
file. Loading checks both: a folder whose ``entry.json`` is missing (interrupted run), whose files do
not match their hashes (corruption) or whose configuration differs (a hash collision or a hand edit)
is never used — it is trained again, with a message saying why. Weights load with ``weights_only=True``.

Public API (CONTRIBUTING.md, "Zoo"): :func:`synthreid`, :func:`dataset`, :func:`get` → :class:`ZooEntry`,
:func:`cached`, :func:`pretrained_backbone`, plus :func:`load_entry`, :func:`train_entry` (used by the CLI).
"""
from __future__ import annotations

import hashlib
import json
import os
import shutil
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable

import torch
from torch import nn

from . import __version__
from .presets import Preset, check_profile, get_preset, profile_width
from .utils import atomic_torch_save, atomic_write_json, cache_dir, file_sha256, resolve_device, say, seed_everything

__all__ = ["ZooEntry", "ZooError", "synthreid", "dataset", "get", "cached", "pretrained_backbone", "prepare_course",
           "COURSE_BACKBONES", "load_entry", "train_entry", "config_key", "entry_dir", "entry_path", "ZOO_VERSION"]

ZOO_VERSION = 1  # bump when the on-disk format or the training procedure changes meaning


class ZooError(RuntimeError):
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
        return f"ZooEntry({self.config.get('name')!r}, {self.config.get('profile')!r}, metrics={m}, path={str(self.path)!r})"


# ----------------------------------------------------------------------------------------------
# Data
# ----------------------------------------------------------------------------------------------
def synthreid(profile: str = "quick", seed: int = 0) -> Path:
    """SynthReID at ``profile`` size and ``seed``, generated once into ``cache_dir()/data``; its folder.

    The cache folder belongs to the zoo: if it holds a SynthReID made by another generator version
    (or an interrupted one), it is deleted and generated again, with a message.
    """
    from .data import make_synthetic

    check_profile(profile)
    root = cache_dir() / "data" / f"synthreid-{profile}-s{seed}"
    try:
        return Path(make_synthetic(root, profile=profile, seed=seed))
    except ValueError as exc:  # "holds a different SynthReID" / "incomplete SynthReID"
        if not (root / "synthreid.json").is_file():
            raise
        say(f"[zoo] regenerating {root}: {exc}")
        shutil.rmtree(root)
        return Path(make_synthetic(root, profile=profile, seed=seed))


def _data_fingerprint(profile: str, data: str, seed: int) -> str | None:
    """SHA-256 of SynthReID's ``synthreid.json`` (generator version and settings), so that models
    trained on another generation of the data set are never mistaken for this one's."""
    if data not in ("synth", "synthreid", "synth-source", "synthreid-source"):
        return None
    return file_sha256(synthreid(profile, seed) / "synthreid.json")


def dataset(profile: str = "quick", data: str = "synth", seed: int = 0):
    """The data set a run uses: ``data="synth"`` → SynthReID(profile, seed); ``"synth-source"`` → its
    source domain; anything else → :func:`reidbook.data.load_dataset` (a name such as ``market1501``
    or a folder in Market-1501 naming)."""
    from .data import load_dataset

    if data in ("synth", "synthreid"):
        return load_dataset(synthreid(profile, seed))
    if data in ("synth-source", "synthreid-source"):  # train-only in smoke: no query/gallery needed
        return load_dataset(synthreid(profile, seed) / "source", require_test=False)
    return load_dataset(data)


def _data_key(data: str) -> str:
    """How ``data`` enters a configuration: names as given, folders as absolute paths."""
    if data in ("synth", "synthreid", "synth-source", "synthreid-source"):
        return data.replace("synthreid", "synth")
    p = Path(str(data)).expanduser()
    return str(p.resolve()) if p.exists() else str(data)


# ----------------------------------------------------------------------------------------------
# Keys, folders, integrity
# ----------------------------------------------------------------------------------------------
def _jsonable(obj: Any) -> Any:
    return json.loads(json.dumps(obj, sort_keys=True, default=str))


def config_key(kind: str, config: dict) -> str:
    """A short stable hash of ``kind`` + ``config`` (JSON with sorted keys; tuples become lists)."""
    text = json.dumps({"kind": kind, "config": _jsonable(config), "zoo": ZOO_VERSION}, sort_keys=True)
    return hashlib.sha256(text.encode()).hexdigest()[:16]


def entry_dir(kind: str, config: dict) -> Path:
    """The cache folder of the entry ``(kind, config)`` (it may not exist yet)."""
    return cache_dir() / "zoo" / kind / config_key(kind, config)



def _check_entry(folder: Path, kind: str, config: dict) -> tuple[dict | None, str]:
    """``(entry, "")`` if ``folder`` holds a complete, intact entry for ``config``, else ``(None, why)``."""
    marker = folder / "entry.json"
    if not folder.exists():
        return None, "missing"
    if not marker.exists():
        return None, f"{folder} has no entry.json (an interrupted run?)"
    try:
        entry = json.loads(marker.read_text())
    except (OSError, json.JSONDecodeError) as exc:
        return None, f"{marker} is unreadable ({exc})"
    if entry.get("kind") != kind or entry.get("config") != _jsonable(config):
        return None, f"{marker} describes another configuration"
    for name, digest in entry.get("files", {}).items():
        f = folder / name
        if not f.exists():
            return None, f"{f} is missing"
        if file_sha256(f) != digest:
            return None, f"{f} does not match its recorded SHA-256 (corrupt or modified)"
    return entry, ""


def _commit(folder: Path, kind: str, config: dict, files: list[str], extra: dict | None = None) -> dict:
    """Write ``entry.json`` last: from now on the folder is a valid entry."""
    entry = {"kind": kind, "config": _jsonable(config), "reidbook": __version__, "zoo": ZOO_VERSION,
             "created": time.strftime("%Y-%m-%d %H:%M:%S"),
             "files": {name: file_sha256(folder / name) for name in files}, **(extra or {})}
    atomic_write_json(folder / "entry.json", entry)
    return entry


def _is_main_process() -> bool:
    return not (torch.distributed.is_available() and torch.distributed.is_initialized()) or \
        torch.distributed.get_rank() == 0


def _invalidate(folder: Path, why: str) -> None:
    if why != "missing":
        say(f"[zoo] not using {folder}: {why}; training it again.")
        marker = folder / "entry.json"
        if marker.exists() and _is_main_process():
            marker.unlink()


# ----------------------------------------------------------------------------------------------
# Generic train-or-load
# ----------------------------------------------------------------------------------------------
def _default_save(obj: Any, folder: Path) -> list[str]:
    atomic_torch_save(obj, folder / "artefact.pt")
    return ["artefact.pt"]


def _default_load(folder: Path) -> Any:
    return torch.load(folder / "artefact.pt", map_location="cpu", weights_only=True)


def cached(kind: str, config: dict, train_fn: Callable[[], Any], load_fn: Callable[[Path], Any] | None = None,
           save_fn: Callable[[Any, Path], list[str]] | None = None, retrain: bool = False) -> Any:
    """Train-or-load for artefacts that are not a plain preset run (pruned models, FD students …).

    ``config`` (JSON-able) identifies the artefact completely. If the entry exists and is intact,
    ``load_fn(folder)`` is returned (default: ``torch.load(folder/"artefact.pt", weights_only=True)``).
    Otherwise ``obj = train_fn()`` is saved with ``save_fn(obj, folder) -> [file names]`` (default: the
    object, which must hold only tensors/containers/numbers, to ``artefact.pt``) and ``obj`` is returned.
    If ``load_fn`` fails on an intact entry (e.g. the code changed shape), the artefact is retrained.
    :func:`entry_dir` gives the folder in advance (for checkpoints).
    """
    folder = entry_dir(kind, config)
    load_fn = load_fn or _default_load
    save_fn = save_fn or _default_save
    if not retrain:
        entry, why = _check_entry(folder, kind, config)
        if entry is not None:
            try:
                return load_fn(folder)
            except Exception as exc:  # noqa: BLE001 - any failure means "retrain", with a message
                why = f"loading it failed ({type(exc).__name__}: {exc})"
        _invalidate(folder, why)
    obj = train_fn()
    if _is_main_process():
        folder.mkdir(parents=True, exist_ok=True)
        files = save_fn(obj, folder)
        _commit(folder, kind, config, list(files))
    return obj


# ----------------------------------------------------------------------------------------------
# Pre-training on SynthReID's source domain (the offline stand-in for ImageNet)
# ----------------------------------------------------------------------------------------------
# Recipe (see _source_recipe): the BoT losses on the source identities, SGD, a short warm-up, a step.
_SOURCE_EPOCHS = {"smoke": 1, "quick": 10, "full": 30}


def _build_trunk(arch: str, width: float) -> nn.Module:
    from .models.backbones import zero_init_residual
    from .models.baseline import BACKBONES, build_backbone
    from .models.light import LIGHT_ARCHS, build_light_trunk

    if arch in BACKBONES:
        trunk = build_backbone(arch, width=width, last_stride=2)
        zero_init_residual(trunk)  # from scratch: start every residual block as the identity
        return trunk
    if arch in LIGHT_ARCHS:
        return build_light_trunk(arch, width=width)
    raise KeyError(f"no source-domain pre-training for arch {arch!r}; known: {', '.join(BACKBONES + LIGHT_ARCHS)}")


def _source_recipe(profile: str) -> Preset:
    """How a backbone is pre-trained on SynthReID's source domain (the offline stand-in for ImageNet).

    The BoT losses (label-smoothed softmax + batch-hard triplet, margin 0.3) with SGD: measured on a
    width-¼ ResNet-50 at 128×64 (stop 13), Adam at 3.5e-4…3e-3 left softmax near chance for the first
    epochs, while SGD 0.05 with zero-initialised residual blocks learns from the first epoch (target-domain
    mAP 7.9 % → 48.8 % over 10 epochs trained from scratch on the target itself). From this backbone the
    quick baseline reaches 48.5 % mAP in 4 target epochs (25.1 % from stop 12's Adam/softmax backbone,
    36.1 % for the colour histogram); used directly it scores 9.9 %. Ten epochs in quick:
    the cost is paid once per architecture, cached, and ``reidbook course`` pays it before the chapters.
    """
    base = get_preset("baseline", profile)
    epochs = _SOURCE_EPOCHS[profile]
    return base.replace(epochs=epochs, P=8, K=4,
                        optimizer={"name": "sgd", "lr": 0.05, "momentum": 0.9, "weight_decay": 5e-4},
                        schedule={"name": "warmup_step", "warmup": 0.5, "warmup_factor": 0.1,
                                  "milestones": [max(1, int(epochs * 0.75))], "gamma": 0.1},
                        losses=[{"name": "ce", "loss": "cross_entropy", "key": "logits",
                                 "options": {"label_smoothing": 0.1}},
                                {"name": "triplet", "loss": "batch_hard_triplet", "key": "triplet",
                                 "options": {"margin": 0.3}}],
                        train_aug={**base.train_aug, "random_erasing": 0.0}, eval_every=0,
                        notes="Source-domain pre-training (BoT losses, SGD, zero-init residuals on SynthReID/source), "
                              "stand-in for ImageNet.")


def pretrained_backbone(arch: str = "resnet50", width: float | None = None, profile: str = "quick", seed: int = 0,
                        device: str = "auto") -> dict:
    """A backbone state dict pre-trained on SynthReID's source domain (``root/source/``), cached.

    The backbone (torchvision module names, so it loads wherever an ImageNet state dict would) gets a
    GAP → BN-neck → classifier head and is trained with :func:`_source_recipe` (label-smoothed softmax +
    batch-hard triplet, SGD) over the source identities (smoke 1, quick 10, full 30 epochs), input size
    as the baseline preset of ``profile``. The head is discarded. Width defaults to the profile's.
    """
    width = profile_width(profile) if width is None else float(width)
    recipe = _source_recipe(profile)
    config = {"arch": arch, "width": width, "profile": profile, "seed": seed, "recipe": recipe.to_dict(),
              "data_sha256": _data_fingerprint(profile, "synth-source", seed)}

    def train() -> dict:
        from .models.baseline import Baseline

        src = dataset(profile, "synth-source", seed)
        seed_everything(seed)
        model = Baseline(src.num_train_pids, _build_trunk(arch, width))
        say(f"[zoo] pre-training {arch} (width {width:g}) on SynthReID's source domain "
            f"({len(src.train)} images, {src.num_train_pids} identities, {recipe.epochs} epochs)")
        _fit(model, src, recipe, device=device, seed=seed, checkpoint_dir=None, evaluate=False)
        return {k: v.detach().cpu() for k, v in model.backbone.state_dict().items()}

    return cached("backbone", config, train)


# The source-domain backbones the chapters start from (arch, width; None = the profile's width):
# ResNet-50 for the baseline, MGN, GraftedNet's rootstock, PCB, DaRe and the pruning chapters; ResNet-18/34
# for chapter 06's Table 5 and chapter 07's SE-ResNets; FD's width-1/8 ResNet-18 teachers and student
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
    wanted = dict.fromkeys((arch, profile_width(profile) if width is None else width) for arch, width in COURSE_BACKBONES)
    for arch, w in wanted:  # in smoke, width 1/8 is also the profile's: each backbone once
        t0 = time.perf_counter()
        pretrained_backbone(arch, w, profile, seed, device=device)
        spent[f"{arch} x{w:g} (source domain)"] = time.perf_counter() - t0
    return spent


# ----------------------------------------------------------------------------------------------
# Preset runs
# ----------------------------------------------------------------------------------------------
_DEFAULT_ARCH = {"light": "squeezenet1_0"}


def _model_arch(name: str, preset: Preset) -> str:
    opts = preset.model_options
    return opts.get("arch") or opts.get("backbone") or _DEFAULT_ARCH.get(name, "resnet50")


def _resolve_pretrained(name: str, preset: Preset, pretrained, seed: int, device) -> tuple[Any, Any]:
    """``(value for build_model, JSON key for the config)``.

    ``"auto"``: smoke/quick → ``"source"``; full → ``"imagenet"``. ``"source"`` → the cached
    :func:`pretrained_backbone` of the model's arch and width. ``None`` → random init.
    """
    if pretrained == "auto":
        pretrained = "imagenet" if preset.profile == "full" else "source"
    if pretrained is None or pretrained == "imagenet":
        return pretrained, pretrained
    if pretrained == "source":
        arch = _model_arch(name, preset)
        width = preset.model_options.get("width", profile_width(preset.profile))
        state = pretrained_backbone(arch, width, preset.profile, seed, device=device)
        return state, {"source": arch, "width": width, "seed": seed,
                       "recipe": _source_recipe(preset.profile).to_dict()}
    if isinstance(pretrained, (str, os.PathLike)):
        p = Path(pretrained).expanduser().resolve()
        if not p.exists():
            raise FileNotFoundError(f"pretrained weights {p} do not exist")
        return str(p), {"file": str(p), "sha256": file_sha256(p)}
    if isinstance(pretrained, dict):
        h = hashlib.sha256()
        for k in sorted(pretrained):
            h.update(k.encode())
            h.update(pretrained[k].detach().cpu().contiguous().numpy().tobytes())
        return pretrained, {"state_dict_sha256": h.hexdigest()}
    raise TypeError(f"pretrained must be 'auto', 'source', 'imagenet', None, a path or a state dict, "
                    f"got {type(pretrained).__name__}")


def _fit(model: nn.Module, ds, preset: Preset, device, seed: int, checkpoint_dir: Path | None,
         evaluate: bool = True):
    """Train ``model`` on ``ds.train`` with ``preset`` through :func:`reidbook.engine.fit_preset`; its History."""
    from .engine import fit_preset

    evaluate_fn = None
    if evaluate and preset.eval_every:
        from .eval import evaluate_model, scalar_metrics

        def evaluate_fn(m):
            return scalar_metrics(evaluate_model(m, ds, preset.height, preset.width, device=device))
    return fit_preset(model, ds.train, preset, seed=seed, device=device, checkpoint_dir=checkpoint_dir,
                      evaluate=evaluate_fn)


def _run_config(name: str, preset: Preset, data: str, seed: int, pretrained_key) -> dict:
    return {"name": name, "profile": preset.profile, "data": _data_key(data), "seed": seed,
            "data_sha256": _data_fingerprint(preset.profile, data, seed),
            "preset": preset.to_dict(), "pretrained": pretrained_key}


def train_entry(name: str, preset: Preset, data: str = "synth", seed: int = 0, device: str = "auto",
                pretrained="auto", folder: Path | None = None, evaluate: bool = True) -> ZooEntry:
    """Train ``name`` with ``preset`` on ``data`` and write an entry folder (the zoo's or ``folder``).

    Steps: build the data set, the model (with its pre-trained backbone), the P×K loader, criterion,
    optimiser and schedule from the preset; :func:`reidbook.engine.fit` (checkpoints in ``folder/train``,
    so an interrupted run resumes); :func:`reidbook.eval.evaluate_model` on query/gallery; save.
    """
    from .eval import evaluate_model, scalar_metrics
    from .models import build_model

    dev = resolve_device(device)
    ds = dataset(preset.profile, data, seed)
    build_pre, pre_key = _resolve_pretrained(name, preset, pretrained, seed, device)
    config = _run_config(name, preset, data, seed, pre_key)
    folder = Path(folder) if folder is not None else entry_dir(name, config)
    seed_everything(seed)
    model = build_model(name, ds.num_train_pids, profile=preset.profile, pretrained=build_pre, **preset.model_options)
    say(f"[zoo] training {name} ({preset.profile}, {data}, seed {seed}) on {dev}: {len(ds.train)} images, "
        f"{ds.num_train_pids} identities, {preset.epochs} epochs -> {folder}")
    t0 = time.perf_counter()
    history = _fit(model, ds, preset, device=dev, seed=seed, checkpoint_dir=folder / "train", evaluate=evaluate)
    train_seconds = time.perf_counter() - t0
    # Training-only parts (GraftedNet's accompanying branch, CONTRIBUTING "Models") are neither
    # evaluated nor saved; a model may name its paper's metric (GraftedNet §4.2: cosine).
    model = _deployed(model.cpu().eval())
    metrics = {}
    if evaluate:
        metrics = scalar_metrics(evaluate_model(model, ds, preset.height, preset.width, device=dev,
                                                metric=getattr(model, "metric", "euclidean")))
        model = model.cpu().eval()
    metrics["train_seconds"] = train_seconds
    if _is_main_process():
        _save_run(folder, name, config, model, preset, metrics, history, ds.num_train_pids)
    return ZooEntry(model, preset, metrics, history, folder, config)


def _deployed(model: nn.Module) -> nn.Module:
    """``model.deploy()`` (the inference model without training-only parts) if the model has one, in eval mode."""
    return (model.deploy() if hasattr(model, "deploy") else model).eval()


def _save_run(folder: Path, name: str, config: dict, model: nn.Module, preset: Preset, metrics: dict, history,
              num_classes: int) -> None:
    folder.mkdir(parents=True, exist_ok=True)
    atomic_torch_save({k: v.detach().cpu() for k, v in model.state_dict().items()}, folder / "model.pt")
    atomic_write_json(folder / "preset.json", preset.to_dict())
    atomic_write_json(folder / "metrics.json", metrics)
    history.to_json(folder / "history.json")
    _commit(folder, name, config, ["model.pt", "preset.json", "metrics.json", "history.json"],
            {"num_classes": num_classes, "feature_dim": getattr(model, "feature_dim", None)})
    shutil.rmtree(folder / "train", ignore_errors=True)  # resume checkpoints are not needed any more


def load_entry(path: str | os.PathLike) -> ZooEntry:
    """Load an entry folder written by :func:`get` / ``reidbook train`` (or its ``model.pt``).

    Raises :class:`ZooError` naming the problem if the folder is incomplete, corrupt, or its weights
    do not fit the model its configuration describes.
    """
    from .engine.history import History
    from .models import build_model

    folder = Path(path).expanduser()
    if folder.is_file():
        folder = folder.parent
    marker = folder / "entry.json"
    if not marker.exists():
        raise ZooError(f"{folder} is not a reidbook model folder (no entry.json); give a folder written by "
                       "`reidbook train --out` or the zoo")
    entry = json.loads(marker.read_text())
    _, why = _check_entry(folder, entry.get("kind"), entry.get("config", {}))
    if why:
        raise ZooError(f"cannot use {folder}: {why}. Delete the folder and train again.")
    cfg = entry["config"]
    preset = Preset(**{**cfg["preset"]})
    model = _deployed(build_model(cfg["name"], int(entry["num_classes"]), profile=preset.profile,
                                  **preset.model_options))
    state = torch.load(folder / "model.pt", map_location="cpu", weights_only=True)
    try:
        model.load_state_dict(state)
    except RuntimeError as exc:
        raise ZooError(f"the weights in {folder / 'model.pt'} do not fit the {cfg['name']!r} model its "
                       f"entry.json describes ({exc}). Delete the folder and train again.") from exc
    metrics = json.loads((folder / "metrics.json").read_text())
    history = History.from_json(folder / "history.json")
    return ZooEntry(model.eval(), preset, metrics, history, folder, cfg)


def get(name: str, profile: str = "quick", data: str = "synth", seed: int = 0, device: str = "auto",
        pretrained="auto", retrain: bool = False, **overrides) -> ZooEntry:
    """A trained ``name`` at ``profile`` on ``data``: loaded from the zoo, or trained with its preset now.

    ``overrides`` change preset fields (``epochs=3``, ``losses=loss_specs("softmax")``,
    ``model_options={"arch": "resnet18"}`` — dicts are merged) and so the cache key. ``pretrained``:
    ``"auto"`` (source-domain pre-training in smoke/quick, ImageNet in full), ``"source"``,
    ``"imagenet"``, ``None``, a path or a state dict. ``retrain=True`` ignores a cached entry.
    """
    preset = get_preset(name, profile).replace(**overrides) if overrides else get_preset(name, profile)
    _, pre_key = _peek_pretrained_key(name, preset, pretrained, seed)
    config = _run_config(name, preset, data, seed, pre_key)
    folder = entry_dir(name, config)
    if not retrain:
        entry, why = _check_entry(folder, name, config)
        if entry is not None:
            try:
                return load_entry(folder)
            except ZooError as exc:
                why = str(exc)
        _invalidate(folder, why)
    return train_entry(name, preset, data, seed, device, pretrained, folder=folder)


def entry_path(name: str, profile: str = "quick", data: str = "synth", seed: int = 0, pretrained="auto",
               **overrides) -> Path:
    """The cache folder :func:`get` with these arguments uses, without loading or training anything
    (it may not exist yet: ``(entry_path(...) / "entry.json").exists()`` says whether it was trained)."""
    preset = get_preset(name, profile).replace(**overrides) if overrides else get_preset(name, profile)
    _, pre_key = _peek_pretrained_key(name, preset, pretrained, seed)
    return entry_dir(name, _run_config(name, preset, data, seed, pre_key))


def _peek_pretrained_key(name: str, preset: Preset, pretrained, seed: int) -> tuple[Any, Any]:
    """The pre-training's config key without training it (so a cached run loads without pre-training)."""
    if pretrained == "auto":
        pretrained = "imagenet" if preset.profile == "full" else "source"
    if pretrained == "source":
        arch = _model_arch(name, preset)
        width = preset.model_options.get("width", profile_width(preset.profile))
        return None, {"source": arch, "width": width, "seed": seed, "recipe": _source_recipe(preset.profile).to_dict()}
    return _resolve_pretrained(name, preset, pretrained, seed, "cpu")
