"""Presets of the members of DaRe's sequential-ensemble baseline (the paper's "SE-ResNets";
``reidbook/models/seq_ensemble.py``; paper 004, §5.3.1).

The three ResNets are trained separately with one and the same triplet loss (Hermans et al.): each
member (``model_options={"arch": "resnet18" | "resnet34" | "resnet50"}``) is trained with DaRe's own
recipe (:mod:`reidbook.presets.dare`: data, augmentation, optimiser, Eq. 4's schedule) and the
batch-hard soft-margin triplet loss on its one embedding. Only the loss list and the model differ.
"""
from __future__ import annotations

from ..profiles import PROFILES
from .dare import PRESETS as _DARE
from .departures import Departure

_HEAD = Departure("member head", "not given (§5.3.1)", "DaRe's head (GAP, FC 1024 + BN + ReLU, FC 128)",
                  "so that the ResNet-50 member differs from DaRe only by the missing intermediate heads and fusion")

__all__ = ["PRESETS", "ENSEMBLE_ARCHS", "loss_specs"]

ENSEMBLE_ARCHS = ("resnet18", "resnet34", "resnet50")


def loss_specs() -> list[dict]:
    """The triplet loss of Hermans et al. ("[17]" in the paper): batch-hard soft-margin on the embedding."""
    return [{"name": "triplet", "loss": "soft_triplet", "weight": 1.0, "key": "triplet"}]


def _member(profile: str):
    base = _DARE[profile]
    return base.replace(model="seq_ensemble", losses=loss_specs(), model_options={"arch": "resnet50"},
                        departures=(*base.departures, _HEAD),
                        notes="Sequential-ensemble member (the paper's SE-ResNets, 004 §5.3.1) trained with DaRe's "
                              "recipe: " + base.notes)


PRESETS = {p: _member(p) for p in PROFILES}
