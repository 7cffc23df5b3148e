"""Architectures: the model contract, backbones, the papers' re-ID models, and the registry that builds
them by name. Names are imported on first use (:func:`reidbook.utils.lazy_exports`)."""
from __future__ import annotations

from ..utils import lazy_exports

_EXPORTS = {
    # registry.py
    "MODELS": "registry", "PAPER_NUM_CLASSES": "registry", "build_model": "registry",
    "build_paper_model": "registry", "list_models": "registry",
    # base.py (the contract)
    "Backbone": "base", "ReIDModel": "base", "AnytimeModel": "base", "deployed": "base", "metric_of": "base",
    "feature_dim_of": "base", "stage_modules_of": "base", "is_anytime": "base",
}

__all__ = sorted(_EXPORTS)

__getattr__, __dir__ = lazy_exports(__name__, _EXPORTS)
