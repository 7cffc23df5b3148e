"""Presets of PCB (``reidbook/models/pcb.py``).

``full`` follows PCB (Sun et al., ECCV 2018, §4.1 "Implementation details"): 384×128 inputs, SGD with
momentum 0.9 and weight decay 5e-4, learning rate 0.1 for the new layers and 0.01 for the ImageNet
backbone, 60 epochs, ×0.1 after 40; batch 64; cross-entropy on each of the six stripes. The survey
(paper 003, §4, "PCB images are resized to 384×128") trains it the same way before PSFP pruning.
Departure: reidbook's loaders sample P×K batches (16×4 = 64 images) where PCB samples 64 at random;
flip is the only augmentation, as in PCB.

``quick`` / ``smoke`` keep the topology (six stripes need a feature map ≥ 6 rows: height ≥ 96 at
last stride 1) and shrink width (¼, ⅛), input (96×32 in both: a 6×2 map, one row a stripe; quick was 192×64
until stop 17, four times the pixels, too slow for chapter 08's two minutes), data and epochs.
"""
from __future__ import annotations

from . import Preset
from .departures import OFFLINE_PRETRAINING, Departure, declare

__all__ = ["PRESETS", "loss_specs", "LR_GROUPS"]

LR_GROUPS = {"backbone": 0.01}  # PCB §4.1: pre-trained layers at 0.1× the new layers' rate


def loss_specs(label_smoothing: float = 0.0) -> list[dict]:
    """Six cross-entropies, one per stripe's logits (PCB §3.1), **summed** by the criterion (a list key:
    :class:`reidbook.losses.DeepSupervision`), as the authors' trainer back-propagates each of the six."""
    return [{"name": "ce", "loss": "cross_entropy", "weight": 1.0, "key": "logits",
             "options": {"label_smoothing": label_smoothing}}]


# PCB §4.1 / the authors' PCB.py: RectScale + RandomHorizontalFlip only (no crop, no erasing).
_FLIP_ONLY = {"flip": True, "pad": 0, "random_crop": False, "random_erasing": 0.0}

_SGD = {"name": "sgd", "lr": 0.1, "momentum": 0.9, "weight_decay": 5e-4, "lr_groups": dict(LR_GROUPS)}

PRESETS = {
    "full": Preset(
        model="pcb", profile="full", model_options={"parts": 6, "feature": "g"},
        height=384, width=128, train_aug=dict(_FLIP_ONLY), P=16, K=4, epochs=60,
        optimizer=dict(_SGD, lr_groups=dict(LR_GROUPS)),
        schedule={"name": "step", "milestones": [40], "gamma": 0.1},
        losses=loss_specs(), eval_every=20,
        notes="PCB, Sun et al. ECCV 2018, §3.1 (architecture) and §4.1 (training: SGD, lr 0.1 new / 0.01 "
              "backbone, 60 epochs, x0.1 at 40, 384x128); survey 003 §4 (PCB input 384x128).",
    ),
    "quick": Preset(
        model="pcb", profile="quick", model_options={"parts": 6, "feature": "g"},
        height=96, width=32, train_aug=dict(_FLIP_ONLY), P=8, K=4, epochs=4,
        optimizer=dict(_SGD, lr=0.05, lr_groups=dict(LR_GROUPS)),
        schedule={"name": "step", "milestones": [3], "gamma": 0.1},
        losses=loss_specs(), eval_every=0,
        notes="PCB recipe at width 1/4, 96x32 (6x2 map, one row a stripe), SynthReID quick, few epochs.",
    ),
    "smoke": Preset(
        model="pcb", profile="smoke", model_options={"parts": 6, "feature": "g"},
        height=96, width=32, train_aug=dict(_FLIP_ONLY), P=8, K=4, epochs=1,
        optimizer=dict(_SGD, lr=0.05, lr_groups=dict(LR_GROUPS)),
        schedule={"name": "constant"},
        losses=loss_specs(), eval_every=0,
        notes="Smoke test: PCB at width 1/8, 96x32 (6x2 map, one row a stripe), one epoch on SynthReID smoke.",
    ),
}

# ------------------------------------------------------------------------------ departures, as data
_PK = Departure("sampler", "64 images drawn at random (PCB §4.1)", "P x K identity-balanced batches",
                "every trainer of the course draws P x K batches (reidbook.data.RandomIdentitySampler)")
_TEST = Departure("test feature", "g, L2-normalised (the authors' resnet.py: out0 = x / ||x||)",
                  "g as is, ranked by Euclidean distance", "the paper does not say; kept as the model's metric")
_OFFLINE = OFFLINE_PRETRAINING
_P8 = Departure("P", "batch 64", "8 identities x 4 images", "batch 32 for a CPU step")
PRESETS = declare(
    PRESETS, common=(_PK, _TEST),
    quick=(_OFFLINE, _P8,
           Departure("optimizer.lr", "0.1 new layers / 0.01 backbone", "0.05 new layers / 0.01 backbone",
                     "a four-epoch run from a source-domain backbone was unstable at 0.1"),
           Departure("schedule", "x0.1 at epoch 40 of 60", "x0.1 at epoch 3 of 4", "scaled to 4 epochs")),
    smoke=(_OFFLINE, _P8,
           Departure("optimizer.lr", "0.1 new layers / 0.01 backbone", "0.05 new layers / 0.01 backbone",
                     "one epoch on random weights"),
           Departure("schedule", "x0.1 at epoch 40 of 60", "constant", "one epoch")),
)
