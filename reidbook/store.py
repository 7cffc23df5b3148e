"""The store: cached artefacts in ``$REIDBOOK_CACHE``, keyed by their configuration and checked on load.

Low level (below eval/prune/distill and the zoo; it imports only utils, data and torch). Every trained
artefact lives in ``$REIDBOOK_CACHE/zoo/<kind>/<key>/`` where ``key`` (:func:`config_key`) is a hash
of the **full configuration** that produced it. Change anything and you get a different folder.

A finished entry is a folder of its files and, written last (:func:`commit`), ``entry.json`` holding
the configuration and the SHA-256 of every file. :func:`check_entry` checks both: a folder whose
``entry.json`` is missing (an interrupted run), whose files do not match their hashes (corruption) or
whose configuration differs (a hash collision or a hand edit) is not an entry. :func:`cached` is the
generic train-or-load over these rules. Two processes that need the same entry at once (``reidbook course``
runs its trainings and chapters side by side) do not both train it: :func:`building` holds an exclusive
lock on the entry while it is checked and built, so the second waits, then loads what the first wrote.

One saved-model format for every trained network (zoo runs, FD teachers and students, pruned models'
metrics): :func:`save_model` writes ``model.pt`` (the CPU ``state_dict``), ``metrics.json``,
``history.json`` (the per-epoch records) and any extra JSON files; :func:`load_model` reads it back with
``weights_only=True`` and names the file and the fix when it cannot.

The data sets a run trains on are cached here too (:func:`synthreid`, :func:`dataset`), with the two
pieces of a configuration that describe them: :func:`data_key` and :func:`data_fingerprint`.

So are the test features of stored models (:func:`cached_features`, used by
:func:`reidbook.engine.extract_features`): a model written or read here carries a tag naming its entry
and its weights' digest (:func:`tag_model`), and each of its test splits is extracted once per input
size and flip/normalise options, however many chapters evaluate it.
"""
from __future__ import annotations

import contextlib
import hashlib
import json
import os
import pickle
import re
import shutil
import time
import zipfile
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable

import torch
from torch import nn

from . import __version__
from .utils import atomic_torch_save, atomic_write_json, cache_dir, file_sha256, say

__all__ = ["StoreError", "STORE_VERSION", "SYNTH_NAMES", "synthreid", "dataset", "data_key", "data_fingerprint",
           "config_key", "cache_root", "entry_dir", "check_entry", "commit", "invalidate", "cached", "check_writable",
           "is_main_process", "save_model", "load_model", "SavedModel", "MARKER", "weights_digest", "tag_model",
           "tag_derived", "entry_tag", "items_digest", "cached_features", "feature_cache_enabled", "features_config",
           "building"]

STORE_VERSION = 1  # bump when the on-disk format or the training procedure changes meaning (was ZOO_VERSION)
MARKER = "entry.json"
SYNTH_NAMES = ("synth", "synthreid", "synth-source", "synthreid-source")
_STALE_TMP_SECONDS = 300  # an atomic write's temporary file older than this belongs to a killed writer


class StoreError(RuntimeError):
    """A cache entry cannot be used (and cannot be retrained in this situation)."""


def is_main_process() -> bool:
    """Rank 0 under ``torchrun`` (or no process group): the one process that writes the store."""
    from .engine.distributed import is_main_process as main

    return main()


# ----------------------------------------------------------------------------------------------
# Data
# ----------------------------------------------------------------------------------------------
def synthreid(profile: str = "quick", seed: int = 0) -> Path:
    """SynthReID at ``profile`` size and ``seed``, generated once into ``cache_dir()/data``; its folder.

    The cache folder belongs to reidbook: if it holds a SynthReID made by another generator version
    (or an interrupted one), it is deleted and generated again, with a message.
    """
    from .data import make_synthetic

    root = cache_root() / "data" / f"synthreid-{profile}-s{seed}"
    try:
        return Path(make_synthetic(root, profile=profile, seed=seed))
    except ValueError as exc:  # "holds a different SynthReID" / "incomplete SynthReID"
        if not (root / "synthreid.json").is_file():
            raise
        say(f"[zoo] regenerating {root}: {exc}")
        shutil.rmtree(root)
        return Path(make_synthetic(root, profile=profile, seed=seed))


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


def data_key(data: str) -> str:
    """How ``data`` enters a configuration: names as given (``synthreid`` spelled ``synth``), folders as
    absolute paths."""
    if data in SYNTH_NAMES:
        return data.replace("synthreid", "synth")
    p = Path(str(data)).expanduser()
    return str(p.resolve()) if p.exists() else str(data)


def data_fingerprint(profile: str, data: str, seed: int) -> str | None:
    """SHA-256 of SynthReID's ``synthreid.json`` (generator version and settings), so that models
    trained on another generation of the data set are never mistaken for this one's; ``None`` for
    other data sets (their folder is in :func:`data_key`)."""
    if data not in SYNTH_NAMES:
        return None
    return file_sha256(synthreid(profile, seed) / "synthreid.json")


# ----------------------------------------------------------------------------------------------
# Keys, folders, integrity
# ----------------------------------------------------------------------------------------------
def _jsonable(obj: Any) -> Any:
    return json.loads(json.dumps(obj, sort_keys=True, default=str))


def config_key(kind: str, config: dict) -> str:
    """A short stable hash of ``kind`` + ``config`` (JSON with sorted keys; tuples become lists)."""
    text = json.dumps({"kind": kind, "config": _jsonable(config), "zoo": STORE_VERSION}, sort_keys=True)
    return hashlib.sha256(text.encode()).hexdigest()[:16]


def _cache_fix() -> str:
    return ("Set REIDBOOK_CACHE to a writable folder (e.g. `export REIDBOOK_CACHE=$HOME/reidbook-cache`) "
            "or fix the folder's permissions.")


def cache_root() -> Path:
    """:func:`reidbook.utils.cache_dir`, with a clear error (naming ``REIDBOOK_CACHE``) when it cannot be made."""
    try:
        return cache_dir()
    except OSError as exc:
        where = os.environ.get("REIDBOOK_CACHE", "~/.cache/reidbook")
        raise PermissionError(f"cannot create reidbook's cache folder {where} ({type(exc).__name__}: {exc}). "
                              f"{_cache_fix()}") from None


def entry_dir(kind: str, config: dict) -> Path:
    """The cache folder of the entry ``(kind, config)`` (it may not exist yet)."""
    return cache_root() / "zoo" / kind / config_key(kind, config)


def check_entry(folder: Path, kind: str, config: dict) -> tuple[dict | None, str]:
    """``(entry, "")`` if ``folder`` holds a complete, intact entry for ``config``, else ``(None, why)``
    (``why == "missing"`` when the folder does not exist)."""
    folder = Path(folder)
    marker = folder / MARKER
    if not folder.exists():
        return None, "missing"
    if not marker.exists():
        return None, f"{folder} has no {MARKER} (an interrupted run?)"
    try:
        entry = json.loads(marker.read_text())
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as exc:
        return None, f"{marker} is unreadable ({exc})"
    if not isinstance(entry, dict) or entry.get("kind") != kind or entry.get("config") != _jsonable(config):
        return None, f"{marker} describes another configuration"
    for name, digest in entry.get("files", {}).items():
        f = folder / name
        if not f.exists():
            return None, f"{f} is missing"
        if file_sha256(f) != digest:
            return None, f"{f} does not match its recorded SHA-256 (corrupt or modified)"
    return entry, ""


def _writer_alive(tmp: Path) -> bool:
    """Whether the process named in an atomic write's temporary file (``.<name>.<pid>-<random>.tmp``) runs."""
    match = re.match(r"^\..+\.(\d+)-[^.]*\.tmp$", tmp.name)
    if match is None:
        return True  # not ours to judge by name: only its age can tell
    pid = int(match.group(1))
    if pid == os.getpid():
        return True
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except OSError:  # exists, owned by someone else
        return True
    return True


def _remove_stale_tmp(folder: Path) -> None:
    """Delete temporary files (``.<name>.*.tmp``) that a killed atomic write left in ``folder``: those whose
    writer process is gone, and any older than a few minutes (a second process writing the same entry right
    now keeps its own)."""
    now = time.time()
    for tmp in folder.glob(".*.tmp"):
        try:
            if tmp.is_file() and (not _writer_alive(tmp) or now - tmp.stat().st_mtime > _STALE_TMP_SECONDS):
                tmp.unlink()
        except OSError:  # gone already (another process cleaned it)
            pass


def commit(folder: Path, kind: str, config: dict, files: list[str], extra: dict | None = None) -> dict:
    """Write ``entry.json`` last: from now on ``folder`` is a valid entry of ``(kind, config)``."""
    folder = Path(folder)
    _remove_stale_tmp(folder)
    entry = {"kind": kind, "config": _jsonable(config), "reidbook": __version__, "zoo": STORE_VERSION,
             "created": time.strftime("%Y-%m-%d %H:%M:%S"),
             "files": {name: file_sha256(folder / name) for name in files}, **(extra or {})}
    atomic_write_json(folder / MARKER, entry)
    return entry


def invalidate(folder: Path, why: str) -> None:
    """Say why ``folder`` is not used and remove its ``entry.json`` (rank 0), so it is trained again."""
    if why != "missing":
        say(f"[zoo] not using {folder}: {why}; training it again.")
        marker = Path(folder) / MARKER
        if marker.exists() and is_main_process():
            marker.unlink()


def check_writable(folder: Path | None = None) -> Path:
    """Fail early, before any training, if ``folder`` (default: the cache) cannot be written; returns it.

    The nearest existing folder on the way must be a writable folder. Raises ``PermissionError`` naming
    the folder and ``REIDBOOK_CACHE``."""
    base = Path(folder) if folder is not None else cache_root()
    probe = base
    while not probe.exists() and probe != probe.parent:  # the nearest existing ancestor must be writable
        probe = probe.parent
    problem = ""
    if not probe.is_dir():
        problem = f"{probe} is a file, not a folder"
    elif not os.access(probe, os.W_OK | os.X_OK):
        problem = f"{probe} is not writable by this user"
    if problem:
        raise PermissionError(f"cannot write {base}: {problem}; nothing was trained. {_cache_fix()}")
    return base


@contextlib.contextmanager
def building(folder: Path):
    """Hold an exclusive lock on entry ``folder`` while it is checked and (re)built.

    The lock is ``fcntl.flock`` on a sibling file ``.<key>.lock`` (released by the kernel if the process
    dies, so a killed run never leaves a stale lock). A second process asking for the same entry says it
    waits, waits, then finds the entry finished and loads it. Entries are built in dependency order (a
    pruned model needs its base model, a model its backbone; never the reverse), so locks nest without
    cycles. No lock under ``torchrun`` with several processes (every rank builds the entry together; a
    lock would deadlock them) nor where ``fcntl`` does not exist (Windows).
    """
    try:
        import fcntl
    except ImportError:  # Windows: no advisory locks; concurrent runs may train an entry twice (atomic writes)
        fcntl = None
    if fcntl is None or int(os.environ.get("WORLD_SIZE", "1")) > 1:
        yield
        return
    folder = Path(folder)
    folder.parent.mkdir(parents=True, exist_ok=True)
    with open(folder.parent / f".{folder.name}.lock", "a+") as fh:
        try:
            fcntl.flock(fh, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            say(f"[zoo] waiting: another process is building {folder}")
            fcntl.flock(fh, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(fh, fcntl.LOCK_UN)


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
    with building(folder):
        return _cached_locked(kind, config, folder, train_fn, load_fn or _default_load, save_fn or _default_save,
                              retrain)


def _cached_locked(kind, config, folder, train_fn, load_fn, save_fn, retrain):
    """:func:`cached`'s body, run while the entry's lock is held."""
    if not retrain:
        entry, why = check_entry(folder, kind, config)
        if entry is not None:
            try:
                return load_fn(folder)
            except Exception as exc:  # noqa: BLE001 - any failure means "retrain", with a message
                why = f"loading it failed ({type(exc).__name__}: {exc})"
        invalidate(folder, why)
    check_writable(folder)
    obj = train_fn()
    if is_main_process():
        folder.mkdir(parents=True, exist_ok=True)
        files = save_fn(obj, folder)
        commit(folder, kind, config, list(files))
    return obj


# ----------------------------------------------------------------------------------------------
# The saved-model format
# ----------------------------------------------------------------------------------------------
@dataclass
class SavedModel:
    """What :func:`load_model` read: the ``model`` (weights loaded, CPU, eval mode), ``metrics``, the
    per-epoch ``history`` records and the ``extra`` JSON files asked for (``{name: value or None}``)."""

    model: nn.Module
    metrics: dict
    history: list[dict]
    extra: dict[str, Any] = field(default_factory=dict)


def save_model(folder: Path, model: nn.Module, metrics: dict, history, **extra) -> list[str]:
    """Write a trained network to ``folder``: ``model.pt`` (its ``state_dict`` on CPU), ``metrics.json``,
    ``history.json`` (a History or a list of records) and ``<name>.json`` for every ``extra`` value that is
    not empty. Each file atomically; returns the file names (for :func:`commit`). Resume checkpoints
    (``folder/train``) are deleted: the entry no longer needs them."""
    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    atomic_torch_save({k: v.detach().cpu() for k, v in model.state_dict().items()}, folder / "model.pt")
    atomic_write_json(folder / "metrics.json", metrics)
    records = history.records if hasattr(history, "records") else list(history)
    atomic_write_json(folder / "history.json", records)
    files = ["model.pt", "metrics.json", "history.json"]
    for name, value in extra.items():
        if value:
            atomic_write_json(folder / f"{name}.json", value)
            files.append(f"{name}.json")
    shutil.rmtree(folder / "train", ignore_errors=True)
    tag_model(model, folder)
    return files


def _read_json(path: Path, fix: str) -> Any:
    try:
        return json.loads(path.read_text())
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise StoreError(f"cannot read {path} ({type(exc).__name__}: {exc}). {fix}") from exc


def load_model(folder: Path, model: nn.Module, extra: tuple[str, ...] = ()) -> SavedModel:
    """Read what :func:`save_model` wrote into ``model`` (``weights_only=True``).

    Raises :class:`StoreError` naming the file and the fix (delete the folder, train again) when a file is
    missing or unreadable, or the weights do not fit ``model``."""
    folder = Path(folder)
    fix = f"Delete {folder} and train again."
    path = folder / "model.pt"
    try:
        state = torch.load(path, map_location="cpu", weights_only=True)
    except FileNotFoundError as exc:
        raise StoreError(f"{path} is missing. {fix}") from exc
    except (pickle.UnpicklingError, RuntimeError, EOFError, OSError, ValueError, zipfile.BadZipFile) as exc:
        # torch's own text is pages long and suggests weights_only=False, which would run a pickle payload
        raise StoreError(f"cannot read the weights in {path}: it is not a state dict that reidbook wrote "
                         f"(torch.load raised {type(exc).__name__}; the file is corrupt, truncated or foreign). "
                         f"{fix}") from None
    if not isinstance(state, dict):
        raise StoreError(f"{path} holds a {type(state).__name__}, not a state dict. {fix}")
    try:
        model.load_state_dict(state)
    except RuntimeError as exc:
        raise StoreError(f"the weights in {path} do not fit the model ({exc}). {fix}") from exc
    metrics = _read_json(folder / "metrics.json", fix)
    history = _read_json(folder / "history.json", fix)
    extras = {name: (_read_json(folder / f"{name}.json", fix) if (folder / f"{name}.json").exists() else None)
              for name in extra}
    return SavedModel(tag_model(model, folder).eval(), metrics, history, extras)


# ----------------------------------------------------------------------------------------------
# Test-split features, extracted once per model (issue 22)
# ----------------------------------------------------------------------------------------------
FEATURES_KIND = "features"
FEATURES_VERSION = 1  # bump when extract_features' output changes meaning
ENTRY_ATTR = "reidbook_entry"  # the tag a stored model carries: {"kind", "key", "class", "weights"}


def weights_digest(model: nn.Module) -> str:
    """SHA-256 of a model's ``state_dict`` (names, dtypes, shapes and bytes; parameters and buffers such as
    BatchNorm's running statistics): equal digests, equal weights."""
    h = hashlib.sha256()
    for name, t in model.state_dict().items():
        t = t.detach().cpu().contiguous()
        h.update(f"{name}|{t.dtype}|{tuple(t.shape)}|".encode())
        h.update(t.reshape(-1).view(torch.uint8).numpy().tobytes())
    return h.hexdigest()


def tag_model(model: nn.Module, folder: Path) -> nn.Module:
    """Mark ``model`` as the network of the store entry ``folder`` (``…/<kind>/<key>``) with the digest of
    the weights it holds now; :func:`save_model` and :func:`load_model` do it. Only a tagged model whose
    weights are still these (:func:`entry_tag`) has its test features cached (:func:`cached_features`)."""
    folder = Path(folder)
    try:
        digest = weights_digest(model)
    except (RuntimeError, TypeError):  # a tensor that has no plain bytes (e.g. quantised): not cacheable
        return model
    tag = {"kind": folder.parent.name, "key": folder.name, "class": type(model).__qualname__, "weights": digest}
    object.__setattr__(model, ENTRY_ATTR, tag)  # a plain attribute: not a parameter, copied by deepcopy
    from .engine.extract import set_feature_cache

    set_feature_cache(cached_features)  # the engine, below the store, reads the cache through this hook
    return model


def tag_derived(derived: nn.Module, source: nn.Module, variant: str) -> nn.Module:
    """Mark ``derived`` — a network computed deterministically from ``source``'s weights (its deployed form,
    one of DaRe's exits) — as ``variant`` of ``source``'s store entry, with ``derived``'s own class and weight
    digest, so that its test features are cached like a stored model's (:func:`cached_features`). Nothing
    happens when ``source`` is not an unchanged stored model, or when ``derived`` already carries a valid tag
    (a deep copy of a tagged model does). Returns ``derived``."""
    tag = entry_tag(source)
    if tag is None or entry_tag(derived) is not None:
        return derived
    try:
        digest = weights_digest(derived)
    except (RuntimeError, TypeError):
        return derived
    if type(derived) is type(source) and digest == tag["weights"]:  # the same network again (a deployed model's
        object.__setattr__(derived, ENTRY_ATTR, dict(tag))            # deploy()): the same features
        return derived
    variant = f"{tag['variant']}/{variant}" if tag.get("variant") else variant
    object.__setattr__(derived, ENTRY_ATTR, {**tag, "class": type(derived).__qualname__, "weights": digest,
                                             "variant": variant})
    from .engine.extract import set_feature_cache

    set_feature_cache(cached_features)
    return derived


def entry_tag(model: nn.Module) -> dict | None:
    """The store entry ``model`` came from, if it still holds that entry's weights unchanged and nothing
    rewires its forward pass; ``None`` otherwise (an untagged, fine-tuned, pruned or hooked model, or a
    copy of another class): such a model's features are never taken from the cache."""
    tag = getattr(model, ENTRY_ATTR, None)
    if not isinstance(tag, dict) or tag.get("class") != type(model).__qualname__:
        return None
    if any(m._forward_hooks or m._forward_pre_hooks or "forward" in vars(m) for m in model.modules()):
        return None  # hooks (Grad-CAM's, a pruning mask's) or a replaced forward change what the model returns
    try:
        return tag if weights_digest(model) == tag.get("weights") else None
    except (RuntimeError, TypeError):
        return None


def items_digest(items) -> str:
    """SHA-256 of a split: every item's ``(path, pid, camid)`` with the file's size and modification time, so
    a regenerated data set (same paths, new pixels) is a different split."""
    h = hashlib.sha256()
    for path, pid, camid in items:
        try:
            st = os.stat(path)
            stamp = f"{st.st_size}:{st.st_mtime_ns}"
        except OSError:
            stamp = "missing"
        h.update(f"{path}|{int(pid)}|{int(camid)}|{stamp}\n".encode())
    return h.hexdigest()


def feature_cache_enabled() -> bool:
    """``False`` when ``REIDBOOK_FEATURE_CACHE=0`` (extract every time)."""
    return os.environ.get("REIDBOOK_FEATURE_CACHE", "1") not in ("0", "false", "False", "no")


def features_config(tag: dict, items, options: dict) -> dict:
    """The configuration of one feature set: the model entry (kind, key, class, weights), the split (its
    :func:`items_digest` and size) and the extraction ``options`` (input transform, flip, normalise)."""
    return {"model": tag, "split": items_digest(items), "n": len(items), "options": options,
            "version": FEATURES_VERSION}


def cached_features(model: nn.Module, items, options: dict, compute: Callable[[], tuple]) -> tuple:
    """``compute()`` → ``(features [N, D] float32, pids [N], camids [N])`` for the split ``items``, kept in
    the store (``zoo/features/<key>/``) when ``model`` is an unchanged stored model (:func:`entry_tag`),
    so a second chapter evaluating the same zoo model on the same split with the same ``options`` reads
    them instead of running the model. Any other model (or ``REIDBOOK_FEATURE_CACHE=0``) just computes.
    The key holds the model entry and its weights' digest: retraining the entry (new weights) or changing
    the model in place gives another key. Returned in the order ``compute`` gives (dataset order)."""
    tag = entry_tag(model) if feature_cache_enabled() else None
    if tag is None:
        return compute()
    config = features_config(tag, items, options)
    try:
        folder = entry_dir(FEATURES_KIND, config)
    except OSError:  # no cache folder can be made: extract, as without a cache
        return compute()
    entry, _ = check_entry(folder, FEATURES_KIND, config)
    if entry is not None:
        try:
            out = torch.load(folder / "features.pt", map_location="cpu", weights_only=True)
            return out["features"], out["pids"].numpy(), out["camids"].numpy()
        except Exception:  # noqa: BLE001 - an unreadable cache file only means "extract again"
            pass
    feats, pids, camids = compute()
    if is_main_process():
        try:  # a cache that cannot be written costs the saving, never the result
            folder.mkdir(parents=True, exist_ok=True)
            atomic_torch_save({"features": feats.float().contiguous(),
                               "pids": torch.as_tensor(pids, dtype=torch.int64),
                               "camids": torch.as_tensor(camids, dtype=torch.int64)}, folder / "features.pt")
            commit(folder, FEATURES_KIND, config, ["features.pt"])
        except OSError as exc:
            say(f"[store] test features not cached in {folder} ({type(exc).__name__}: {exc})")
    return feats, pids, camids
