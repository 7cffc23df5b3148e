"""``build_model(name, ...)``: one entry point for every architecture in the course.

Each name maps to ``"module:function"``; the module is imported only when that model is asked for,
so the registry never pulls in code a chapter does not use. Every builder has the signature
``build(num_classes, profile="full", pretrained=None, **options)`` (see CONTRIBUTING.md).
"""
from __future__ import annotations

import importlib

from torch import nn

MODELS: dict[str, str] = {
    "baseline": "reidbook.models.baseline:build",
    "mgn": "reidbook.models.mgn:build",
    "graftednet": "reidbook.models.graftednet:build",
    "dare": "reidbook.models.dare:build",
    "se_resnets": "reidbook.models.seresnets:build",
    "fd_student": "reidbook.models.fd:build_student",
    "fd_teacher": "reidbook.models.fd:build_teacher",
    "pcb": "reidbook.models.pcb:build",
    "light": "reidbook.models.light:build",
}


def list_models() -> list[str]:
    """The names :func:`build_model` accepts."""
    return sorted(MODELS)


def build_model(name: str, num_classes: int, profile: str = "full", pretrained=None, **options) -> nn.Module:
    """Build the model ``name`` for ``num_classes`` training identities at ``profile``'s width.

    In ``eval()`` mode the model returns its paper's test-time embedding ``[B, D]``; in ``train()``
    mode a dict of what its losses need. Unknown names raise a ``KeyError`` listing the valid ones.
    """
    if name not in MODELS:
        raise KeyError(f"unknown model {name!r}; reidbook knows {', '.join(list_models())}")
    if not isinstance(num_classes, int) or num_classes < 1:
        raise ValueError(f"num_classes must be a positive int (training identities), got {num_classes!r}")
    module_name, fn_name = MODELS[name].split(":")
    builder = getattr(importlib.import_module(module_name), fn_name)
    return builder(num_classes, profile=profile, pretrained=pretrained, **options)
