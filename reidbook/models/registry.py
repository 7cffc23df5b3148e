"""``build_model(name, ...)``: one entry point for every architecture in the course.

Each name maps to ``"module:function"``; the module is imported only when that model is asked for,
so the registry never pulls in code a chapter does not use. Every builder has the signature
``build(num_classes, width=1.0, pretrained=None, **options)``: the profile's channel width is resolved
here, once (:func:`reidbook.profiles.profile_width`), and passed down (see CONTRIBUTING.md).
"""
from __future__ import annotations

import importlib

from torch import nn

from ..profiles import profile_width

__all__ = ["MODELS", "PAPER_NUM_CLASSES", "build_model", "build_paper_model", "list_models"]

#: Classifier size of the papers' models: Market-1501's 751 training identities (Zheng et al., ICCV 2015),
#: the data set every paper of the course reports its parameter counts on.
PAPER_NUM_CLASSES = 751

MODELS: dict[str, str] = {
    "baseline": "reidbook.models.baseline:build",
    "mgn": "reidbook.models.mgn:build",
    "graftednet": "reidbook.models.graftednet:build",
    "dare": "reidbook.models.dare:build",
    "seq_ensemble": "reidbook.models.seq_ensemble:build",
    "fd_student": "reidbook.models.fd:build_student",
    "fd_teacher": "reidbook.models.fd:build_teacher",
    "pcb": "reidbook.models.pcb:build",
    "light": "reidbook.models.light:build",
}


def list_models() -> list[str]:
    """The names :func:`build_model` accepts."""
    return sorted(MODELS)


def build_model(name: str, num_classes: int, profile: str = "full", pretrained=None, width: float | None = None,
                **options) -> nn.Module:
    """Build the model ``name`` for ``num_classes`` training identities at ``profile``'s width.

    ``width`` (a channel multiplier) overrides the profile's. In ``eval()`` mode the model returns its
    paper's test-time embedding ``[B, D]``; in ``train()`` mode a dict of what its losses need. Unknown
    names raise a ``KeyError`` listing the valid ones.
    """
    if name not in MODELS:
        raise KeyError(f"unknown model {name!r}; reidbook knows {', '.join(list_models())}")
    if not isinstance(num_classes, int) or num_classes < 1:
        raise ValueError(f"num_classes must be a positive int (training identities), got {num_classes!r}")
    width = profile_width(profile) if width is None else float(width)
    if not width > 0:
        raise ValueError(f"width must be a positive channel multiplier, got {width!r}")
    module_name, fn_name = MODELS[name].split(":")
    builder = getattr(importlib.import_module(module_name), fn_name)
    return builder(num_classes, width=width, pretrained=pretrained, **options)


def build_paper_model(name: str, **options) -> nn.Module:
    """``name`` at the papers' size: full width and a classifier for :data:`PAPER_NUM_CLASSES` identities.

    What the chapters count parameters and multiply-adds on when they compare with the papers' tables
   . ``options`` go to the
    builder (``arch=``, ``variant=``, ``last_stride=`` ...); build it under ``torch.device("meta")`` to
    count without allocating.
    """
    return build_model(name, PAPER_NUM_CLASSES, profile="full", **options)
