"""Checkpoints that resume a run exactly and refuse the wrong model.

A checkpoint is one ``.pt`` file holding, as plain tensors, numbers, strings, lists and dicts only
(so it loads with ``torch.load(weights_only=True)``, which cannot run code hidden in a file):

- ``model`` (state dict), ``model_class``, ``config`` and its ``config_fingerprint``;
- ``optimizer``, ``scheduler`` (and ``criterion`` when the loss has parameters) state dicts;
- ``epoch`` (completed epochs), ``history`` (the per-epoch records), ``sampler`` (the P×K sampler's
  ``state_dict()``) and ``rng`` (Python ``random``, NumPy, torch CPU and CUDA generator states,
  converted to tensors; one entry per process under DDP).

It is written through a temporary file and an atomic rename (``reidbook.utils.atomic_torch_save``),
so a crash mid-write leaves the previous checkpoint intact. Loading compares the model class, the
config and every parameter's name and shape before touching the model, and says what differs.
"""
from __future__ import annotations

import hashlib
import json
import random
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch import nn

from reidbook.utils import atomic_torch_save

__all__ = [
    "save_checkpoint", "load_checkpoint", "read_checkpoint", "CheckpointError", "CheckpointMismatchError",
    "capture_rng_state", "restore_rng_state", "config_fingerprint", "unwrap_model", "FORMAT",
]

FORMAT = "reidbook-checkpoint/1"


class CheckpointError(RuntimeError):
    """A checkpoint file is missing, unreadable or not a reidbook checkpoint."""


class CheckpointMismatchError(ValueError):
    """A checkpoint belongs to another model architecture or configuration."""


def unwrap_model(model: nn.Module) -> nn.Module:
    """The bare model inside ``DistributedDataParallel`` / ``DataParallel`` / ``torch.compile`` wrappers."""
    while True:
        inner = getattr(model, "module", None) if isinstance(
            model, (nn.parallel.DistributedDataParallel, nn.DataParallel)) else getattr(model, "_orig_mod", None)
        if inner is None:
            return model
        model = inner


# ----------------------------------------------------------------------------------------------
# Plain values (weights_only-safe) and fingerprints
# ----------------------------------------------------------------------------------------------
def _plain(obj: Any) -> Any:
    """Recursively turn NumPy values/arrays into Python numbers/tensors (which ``weights_only``
    loading accepts); refuse anything else, since it would not load back."""
    if obj is None or isinstance(obj, torch.Tensor):
        return obj
    for kind in (bool, int, float, str):  # subclasses (TorchVersion, IntEnum) would not load back
        if isinstance(obj, kind):
            return kind(obj)
    if isinstance(obj, np.generic):
        return obj.item()
    if isinstance(obj, np.ndarray):
        return torch.from_numpy(np.ascontiguousarray(obj))
    if isinstance(obj, Path):
        return str(obj)
    if isinstance(obj, dict):
        return {(k if isinstance(k, (str, int)) else str(k)): _plain(v) for k, v in obj.items()}
    if isinstance(obj, (list, tuple)):
        out = [_plain(v) for v in obj]
        return tuple(out) if isinstance(obj, tuple) else out
    raise TypeError(f"cannot store a {type(obj).__name__} in a weights_only checkpoint: {obj!r:.80}; "
                    "convert it to numbers, strings, lists, dicts or tensors")


def _json_ready(obj: Any) -> Any:
    if isinstance(obj, torch.Tensor):
        return obj.tolist()
    if isinstance(obj, dict):
        return {str(k): _json_ready(v) for k, v in sorted(obj.items(), key=lambda kv: str(kv[0]))}
    if isinstance(obj, (list, tuple)):
        return [_json_ready(v) for v in obj]
    return obj


def config_fingerprint(config: Any) -> str:
    """A short SHA-1 of the config's canonical JSON (same config → same fingerprint)."""
    text = json.dumps(_json_ready(_plain(config)), sort_keys=True, default=str)
    return hashlib.sha1(text.encode()).hexdigest()[:16]


def _flatten(d: Any, prefix: str = "") -> dict[str, Any]:
    if isinstance(d, dict):
        out = {}
        for k, v in d.items():
            out.update(_flatten(v, f"{prefix}{k}."))
        return out or {prefix.rstrip("."): {}}
    return {prefix.rstrip("."): _json_ready(d)}


def _config_diff(saved: Any, here: Any, limit: int = 8) -> list[str]:
    a, b = _flatten(_json_ready(_plain(saved))), _flatten(_json_ready(_plain(here)))
    lines = [f"{k}: checkpoint={a.get(k, '<absent>')!r}, here={b.get(k, '<absent>')!r}"
             for k in sorted(set(a) | set(b)) if a.get(k, "<absent>") != b.get(k, "<absent>")]
    return lines[:limit] + ([f"... and {len(lines) - limit} more"] if len(lines) > limit else [])


# ----------------------------------------------------------------------------------------------
# RNG state as tensors
# ----------------------------------------------------------------------------------------------
def capture_rng_state() -> dict[str, Any]:
    """Python, NumPy, torch CPU (and CUDA) generator states, as tensors and numbers."""
    version, mt, gauss = random.getstate()
    np_name, np_keys, np_pos, np_has_gauss, np_gauss = np.random.get_state()
    state = {
        "python": {"version": int(version), "state": torch.tensor(mt, dtype=torch.int64), "gauss": gauss},
        "numpy": {"name": str(np_name), "keys": torch.from_numpy(np_keys.astype(np.int64)), "pos": int(np_pos),
                  "has_gauss": int(np_has_gauss), "cached_gaussian": float(np_gauss)},
        "torch": torch.get_rng_state(),
    }
    if torch.cuda.is_available() and torch.cuda.is_initialized():
        state["cuda"] = [s.cpu() for s in torch.cuda.get_rng_state_all()]
    return state


def restore_rng_state(state: dict[str, Any]) -> None:
    """Inverse of :func:`capture_rng_state` (CUDA states are restored only when CUDA is present)."""
    py = state["python"]
    random.setstate((py["version"], tuple(int(x) for x in py["state"].tolist()), py["gauss"]))
    npst = state["numpy"]
    np.random.set_state((npst["name"], npst["keys"].numpy().astype(np.uint32), npst["pos"], npst["has_gauss"],
                         npst["cached_gaussian"]))
    torch.set_rng_state(state["torch"].cpu())
    if "cuda" in state and torch.cuda.is_available():
        cuda_states = state["cuda"]
        if len(cuda_states) == torch.cuda.device_count():
            torch.cuda.set_rng_state_all(cuda_states)


# ----------------------------------------------------------------------------------------------
# Save / load
# ----------------------------------------------------------------------------------------------
def _class_name(model: nn.Module) -> str:
    cls = type(unwrap_model(model))
    return f"{cls.__module__}.{cls.__qualname__}"


def _state_dict_or_none(obj) -> Any:
    return None if obj is None else obj.state_dict()


def save_checkpoint(path: str | Path, model: nn.Module, optimizer: torch.optim.Optimizer | None = None,
                    scheduler: Any = None, epoch: int = 0, history: Any = None, sampler_state: dict | None = None,
                    rng_state: Any = None, config: dict | None = None, criterion: nn.Module | None = None,
                    extra: dict | None = None) -> Path:
    """Write a checkpoint atomically (see the module docstring for what it holds); returns the path.

    ``history``: a :class:`~reidbook.engine.history.History` or a list of records. ``rng_state``:
    :func:`capture_rng_state` (default: captured now) or a list of them (one per DDP rank).
    ``extra``: more plain values to keep (e.g. the zoo's metrics).
    """
    if history is not None and hasattr(history, "state_dict"):
        history = history.state_dict()
    criterion_state = None
    if isinstance(criterion, nn.Module) and len(criterion.state_dict()):
        criterion_state = criterion.state_dict()
    bare = unwrap_model(model)
    ckpt = {
        "format": FORMAT,
        "torch_version": str(torch.__version__),
        "model_class": _class_name(bare),
        "model": {k: v.detach().cpu() for k, v in bare.state_dict().items()},
        "config": _plain(config) if config is not None else None,
        "config_fingerprint": config_fingerprint(config) if config is not None else None,
        "optimizer": _state_dict_or_none(optimizer),
        "scheduler": _plain(_state_dict_or_none(scheduler)),
        "scheduler_class": None if scheduler is None else type(scheduler).__name__,
        "criterion": criterion_state,
        "epoch": int(epoch),
        "history": _plain(history) if history is not None else [],
        "sampler": _plain(sampler_state),
        "rng": _plain(rng_state if rng_state is not None else capture_rng_state()),
        "extra": _plain(extra) if extra is not None else {},
    }
    return atomic_torch_save(ckpt, path)


def read_checkpoint(path: str | Path, map_location: Any = "cpu") -> dict[str, Any]:
    """The raw checkpoint dict, loaded with ``weights_only=True``; clear errors for a missing/corrupt file."""
    path = Path(path)
    if not path.is_file():
        raise CheckpointError(f"checkpoint {path} does not exist; train first (or pass resume=False)")
    try:
        ckpt = torch.load(path, map_location=map_location, weights_only=True)
    except Exception as err:  # pickle/zip errors vary by torch version
        raise CheckpointError(
            f"cannot read checkpoint {path} ({type(err).__name__}: {str(err)[:200]}); the file is corrupt, "
            "truncated or not a torch checkpoint: delete it and train again") from err
    if not isinstance(ckpt, dict) or ckpt.get("format") != FORMAT:
        raise CheckpointError(f"{path} is not a reidbook checkpoint (no format {FORMAT!r}); "
                              "for a bare state dict use model.load_state_dict(torch.load(path, weights_only=True))")
    return ckpt


def _check_model(path: Path, ckpt: dict, model: nn.Module) -> None:
    saved_cls, here_cls = ckpt.get("model_class"), _class_name(model)
    saved, here = ckpt["model"], unwrap_model(model).state_dict()
    missing = [k for k in here if k not in saved]
    unexpected = [k for k in saved if k not in here]
    shapes = [f"{k}: checkpoint {tuple(saved[k].shape)} vs model {tuple(here[k].shape)}"
              for k in here if k in saved and tuple(saved[k].shape) != tuple(here[k].shape)]
    if saved_cls == here_cls and not (missing or unexpected or shapes):
        return
    lines = [f"checkpoint {path} does not fit this model:"]
    if saved_cls != here_cls:
        lines.append(f"  written for {saved_cls}, this model is {here_cls}")
    if missing:
        lines.append(f"  {len(missing)} parameter(s)/buffer(s) of the model are not in the checkpoint, "
                     f"e.g. {missing[:3]}")
    if unexpected:
        lines.append(f"  {len(unexpected)} entries of the checkpoint are not in the model, e.g. {unexpected[:3]}")
    if shapes:
        lines.append(f"  {len(shapes)} shape(s) differ, e.g. " + "; ".join(shapes[:3]))
    lines.append("  build the model with the same architecture/width/num_classes, or use another checkpoint")
    raise CheckpointMismatchError("\n".join(lines))


def load_checkpoint(path: str | Path, model: nn.Module, optimizer: torch.optim.Optimizer | None = None,
                    scheduler: Any = None, expected_config: dict | None = None, criterion: nn.Module | None = None,
                    map_location: Any = "cpu") -> dict[str, Any]:
    """Load a checkpoint into ``model`` (and ``optimizer``/``scheduler``/``criterion`` if given).

    Refuses (``CheckpointMismatchError``, before changing anything) a checkpoint whose model class,
    parameter names or shapes differ from ``model``'s, or whose config differs from
    ``expected_config`` (the message lists the differing keys). Returns the checkpoint dict, whose
    ``epoch``, ``history``, ``sampler``, ``rng``, ``config`` and ``extra`` the caller may use.
    """
    path = Path(path)
    ckpt = read_checkpoint(path, map_location=map_location)
    if expected_config is not None and ckpt.get("config_fingerprint") != config_fingerprint(expected_config):
        diff = _config_diff(ckpt.get("config"), expected_config)
        raise CheckpointMismatchError(
            f"checkpoint {path} was written for another configuration; differences:\n  " + "\n  ".join(diff)
            + "\n  use a fresh checkpoint folder for a new configuration (or resume=False to start over)")
    _check_model(path, ckpt, model)
    unwrap_model(model).load_state_dict(ckpt["model"])
    if optimizer is not None:
        if ckpt.get("optimizer") is None:
            raise CheckpointError(f"checkpoint {path} holds no optimizer state")
        saved_groups = ckpt["optimizer"]["param_groups"]
        if [len(g["params"]) for g in saved_groups] != [len(g["params"]) for g in optimizer.param_groups]:
            raise CheckpointMismatchError(
                f"checkpoint {path}: optimizer parameter groups differ (checkpoint "
                f"{[(g.get('name'), len(g['params'])) for g in saved_groups]}, here "
                f"{[(g.get('name'), len(g['params'])) for g in optimizer.param_groups]}); "
                "build the optimizer with the same spec (lr_groups, no_decay_bn_bias)")
        optimizer.load_state_dict(ckpt["optimizer"])
    if scheduler is not None and ckpt.get("scheduler") is not None:
        saved_kind, here_kind = ckpt.get("scheduler_class"), type(scheduler).__name__
        if saved_kind not in (None, here_kind):
            raise CheckpointMismatchError(f"checkpoint {path} holds a {saved_kind} schedule, not a {here_kind}; "
                                          "build the scheduler with the same spec")
        scheduler.load_state_dict(ckpt["scheduler"])
    if criterion is not None and ckpt.get("criterion") is not None:
        criterion.load_state_dict(ckpt["criterion"])
    return ckpt
