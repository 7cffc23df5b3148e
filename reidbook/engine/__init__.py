"""The engine: ``fit`` and ``fit_preset`` (the one way to train from a preset), optimisers and schedules,
checkpoints, multi-process training, feature extraction.

Names are imported lazily (PEP 562), so ``import reidbook.engine`` stays cheap and a module still
being written elsewhere (e.g. ``extract.py``) does not break the others.
"""
from __future__ import annotations

from ..utils import lazy_exports

_EXPORTS = {
    # trainer.py
    "fit": "trainer",
    "iters_per_epoch": "trainer",
    "Hook": "trainer",
    "TrainState": "trainer",
    "CheckpointHook": "trainer",
    "EpochEndHook": "trainer",
    # recipe.py
    "fit_preset": "recipe",
    "preset_loader": "recipe",
    "Penalised": "recipe",
    # history.py
    "History": "history",
    # optim.py
    "build_optimizer": "optim",
    "build_scheduler": "optim",
    "param_groups": "optim",
    "current_lrs": "optim",
    # checkpoint.py
    "save_checkpoint": "checkpoint",
    "load_checkpoint": "checkpoint",
    "read_checkpoint": "checkpoint",
    "CheckpointError": "checkpoint",
    "CheckpointMismatchError": "checkpoint",
    "config_fingerprint": "checkpoint",
    "unwrap_model": "checkpoint",
    # distributed.py
    "init_distributed": "distributed",
    "cleanup_distributed": "distributed",
    "is_main_process": "distributed",
    "get_rank": "distributed",
    "get_world_size": "distributed",
    "launch_train": "distributed",
    # extract.py (owned by the evaluation helper)
    "extract_features": "extract",
}

__all__ = sorted(_EXPORTS)


__getattr__, __dir__ = lazy_exports(__name__, _EXPORTS)
