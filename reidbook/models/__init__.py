"""Architectures: backbones, the papers' re-ID models, and the registry that builds them by name."""
from .registry import MODELS, PAPER_NUM_CLASSES, build_model, build_paper_model, list_models

__all__ = ["MODELS", "PAPER_NUM_CLASSES", "build_model", "build_paper_model", "list_models"]
