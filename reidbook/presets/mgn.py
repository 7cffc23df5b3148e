"""Presets of the ``mgn`` model (``reidbook/models/mgn.py``) and its Table 5 variants.

``full`` is MGN §4.1: ResNet-50 (ImageNet weights), 384×128 inputs, random horizontal flip as the only
augmentation, P=16 identities × K=4 images, SGD (momentum 0.9, weight decay 5e-4), lr 0.01 divided by
10 after 40 and 60 epochs, 80 epochs; softmax on every classifier + batch-hard triplet with margin 1.2.

``quick`` and ``smoke`` keep the topology and the losses; they shrink the width (¼, ⅛), the input, the
data (SynthReID quick / smoke) and the epochs so that chapter 02 fits its 3-minute budget on a
2-core CPU. They start from the zoo's source-domain pre-trained backbone (the offline stand-in for
ImageNet), as the paper starts from ImageNet weights.

:func:`variant_preset` gives the preset of any Table 5 variant (same recipe, another ``variant`` and the
matching losses, e.g. no triplet for ``mgn_wo_tp``).
"""
from __future__ import annotations

from ..losses import Criterion, build_criterion as _build_criterion
from ..models.mgn import VARIANTS
from . import Preset, get_preset
from .departures import OFFLINE_PRETRAINING, Departure, declare

__all__ = ["PRESETS", "build_criterion", "loss_specs", "variant_preset"]


def loss_specs(variant: str = "mgn", margin: float = 1.2) -> list[dict]:
    """MGN §3.2 as ``reidbook.losses`` term specs: softmax (Eq. 1) summed over every classifier's logits,
    plus batch-hard triplet (Eq. 2, margin 1.2, §4.1) summed over the branches' ``f_g`` — no triplet
    for ``mgn_wo_tp``. Equal weights: the paper adds the losses without tuning weights (§3.2)."""
    if variant not in VARIANTS:
        raise KeyError(f"unknown MGN variant {variant!r}; Table 5 has {', '.join(VARIANTS)}")
    specs = [{"name": "softmax", "loss": "cross_entropy", "weight": 1.0, "key": "logits", "options": {}}]
    if VARIANTS[variant].get("triplet", True):  # models.mgn: every variant but mgn_wo_tp has a triplet loss
        specs.append({"name": "triplet", "loss": "batch_hard_triplet", "weight": 1.0, "key": "triplet",
                      "options": {"margin": margin}})
    return specs


def build_criterion(variant: str = "mgn", margin: float = 1.2) -> Criterion:
    """The :class:`reidbook.losses.Criterion` for an MGN variant."""
    return _build_criterion(loss_specs(variant, margin))


_FLIP_ONLY = {"flip": True, "pad": 0, "random_crop": False, "random_erasing": 0.0}  # §4.1

PRESETS = {
    "full": Preset(
        model="mgn", profile="full", model_options={"variant": "mgn"},
        height=384, width=128, train_aug=dict(_FLIP_ONLY), P=16, K=4, epochs=80,
        optimizer={"name": "sgd", "lr": 0.01, "momentum": 0.9, "weight_decay": 5e-4},
        schedule={"name": "step", "milestones": [40, 60], "gamma": 0.1},
        losses=loss_specs("mgn"), eval_every=20,
        notes="Wang et al., MGN (ACM MM 2018), §4.1 (implementation) and §3.2 (losses, margin 1.2).",
    ),
    "quick": Preset(
        model="mgn", profile="quick", model_options={"variant": "mgn"},
        height=96, width=48, train_aug=dict(_FLIP_ONLY), P=16, K=4, epochs=4,
        optimizer={"name": "sgd", "lr": 0.01, "momentum": 0.9, "weight_decay": 5e-4},
        schedule={"name": "step", "milestones": [3], "gamma": 0.1},
        losses=loss_specs("mgn"), eval_every=0,
        # Budget (measured on an idle 2-core CPU: MGN at width 1/4 and 128x64 trains ~110 img/s, i.e.
        # ~28 s per SynthReID-quick epoch; 96x48 costs 0.61x of that): 4 epochs at 96x48 leave room in
        # chapter 02's 3 minutes for the equal-budget baseline, evaluation and the figures.
        notes="MGN §4.1 recipe at width 1/4, 96x48, on SynthReID quick; epochs cut to fit chapter 02's "
              "3-minute budget on a 2-core CPU (lr step at 3/4 of training, as the paper's 60 of 80).",
    ),
    "smoke": Preset(
        model="mgn", profile="smoke", model_options={"variant": "mgn"},
        height=64, width=32, train_aug=dict(_FLIP_ONLY), P=8, K=4, epochs=1,
        optimizer={"name": "sgd", "lr": 0.01, "momentum": 0.9, "weight_decay": 5e-4},
        schedule={"name": "constant"},
        losses=loss_specs("mgn"), eval_every=0,
        notes="Smoke test: MGN at width 1/8, 64x32, one epoch on SynthReID smoke.",
    ),
}


def variant_preset(variant: str, profile: str = "quick") -> Preset:
    """The ``mgn`` preset of ``profile`` for a Table 5 ``variant`` (§4.4: "other unrelated settings … are
    the same as MGN implementation in Section 4.1"): only ``model_options`` and ``losses`` change."""
    base = get_preset("mgn", profile)
    return base.replace(model_options={"variant": variant}, losses=loss_specs(variant))

# ------------------------------------------------------------------------------ departures, as data
_MEAN = Departure("losses", "Eq. (1)-(2) written as sums over the batch", "means over the batch",
                  "keeps the loss comparable across batch sizes; a constant factor the learning rate absorbs")
_OFFLINE = OFFLINE_PRETRAINING
PRESETS = declare(
    PRESETS, common=(_MEAN,),
    quick=(_OFFLINE,
           Departure("schedule", "x0.1 at epochs 40 and 60 of 80", "x0.1 at epoch 3 of 4", "scaled to 4 epochs")),
    smoke=(_OFFLINE,
           Departure("schedule", "x0.1 at epochs 40 and 60 of 80", "constant", "one epoch"),
           Departure("P", "16 identities x 4 images (§4.1)", "8 x 4", "smoke's few identities"),
           Departure("part stripes", "disjoint stripes of a 24-row map (384x128)",
                     "3 stripes of a 4-row map (64x32) overlap under adaptive pooling",
                     "smoke's input; a warning says so (reidbook.models.layers.stripes_overlap)")),
)
