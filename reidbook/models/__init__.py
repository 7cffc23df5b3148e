"""Architectures: backbones, the papers' re-ID models, and the registry that builds them by name."""
from .registry import MODELS, build_model, list_models

__all__ = ["MODELS", "build_model", "list_models"]
