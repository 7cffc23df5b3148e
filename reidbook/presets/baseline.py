"""Presets of the ``baseline`` model (IDE / TriNet / BoT, ``reidbook/models/baseline.py``).

``full`` is the "Bag of Tricks" strong baseline (Luo et al., CVPRW 2019, §3 and §4.1): ResNet-50 with
last stride 1, BN-neck, 256×128 inputs, P=16 identities × K=4 images, Adam (lr 3.5e-4, weight decay
5e-4), a linear warm-up from 3.5e-5 over 10 epochs, lr ×0.1 at epochs 40 and 70, 120 epochs, flip +
10-pixel pad-and-crop + random erasing (p=0.5), label smoothing ε=0.1, a batch-hard triplet loss
with margin 0.3 (Hermans et al. 2017) added to the cross-entropy with weight 1, and a center loss
(Wen et al. 2016) on the same feature with weight β = 5e-4 (§3.6; its centres step with SGD lr 0.5,
:class:`reidbook.losses.CenterLoss`). At test time BoT ranks the BN-neck feature normalised, i.e. by
cosine distance (``model_options["metric"] = "cosine"``).

``quick`` and ``smoke`` keep the topology, the losses (center loss included) and the cosine test metric,
and shrink width (¼, ⅛), input (96×48, 64×32), data (SynthReID quick/smoke) and epochs; their numbers are
tuned so that ``quick`` trains in under two minutes on a 2-core CPU and clearly beats the colour-histogram
matcher (chapter 01).

:func:`loss_specs` gives the three loss choices of chapter 01's ablation (softmax / triplet / both).
"""
from __future__ import annotations

from . import Preset
from .departures import OFFLINE_PRETRAINING, Departure, declare

__all__ = ["PRESETS", "loss_specs", "BOT_CENTER_WEIGHT"]


def loss_specs(kind: str = "both", label_smoothing: float = 0.1, margin: float = 0.3,
               center: float = 0.0) -> list[dict]:
    """Loss term specs for :func:`reidbook.losses.build_criterion`.

    ``"softmax"``: IDE, cross-entropy on the classifier's logits (label-smoothed, BoT §3.4);
    ``"triplet"``: TriNet, batch-hard triplet on the pooled feature (Hermans et al. §3, Eq. (5));
    ``"both"``: their sum with weights 1 and 1. ``center > 0`` adds BoT's center loss on the triplet
    feature with that weight (BoT §3.6: 5e-4).
    """
    ce = {"name": "ce", "loss": "cross_entropy", "weight": 1.0, "key": "logits",
          "options": {"label_smoothing": label_smoothing}}
    tri = {"name": "triplet", "loss": "batch_hard_triplet", "weight": 1.0, "key": "triplet",
           "options": {"margin": margin}}
    choices = {"softmax": [ce], "triplet": [tri], "both": [ce, tri]}
    if kind not in choices:
        raise ValueError(f"unknown loss choice {kind!r}; choose one of {', '.join(choices)}")
    if center > 0:
        return choices[kind] + [{"name": "center", "loss": "center", "weight": float(center), "key": "triplet",
                                 "options": {"center_lr": 0.5}}]
    return choices[kind]


#: BoT §3.6: the center loss weight β.
BOT_CENTER_WEIGHT = 5e-4


_BOT_AUG = {"flip": True, "pad": 10, "random_crop": True, "random_erasing": 0.5}

PRESETS = {
    "full": Preset(
        model="baseline", profile="full",
        model_options={"arch": "resnet50", "last_stride": 1, "bnneck": True, "metric": "cosine"},
        height=256, width=128, train_aug=dict(_BOT_AUG), P=16, K=4, epochs=120,
        optimizer={"name": "adam", "lr": 3.5e-4, "weight_decay": 5e-4, "betas": (0.9, 0.999)},
        schedule={"name": "warmup_step", "milestones": [40, 70], "gamma": 0.1,
                  "warmup": 10, "warmup_factor": 0.1},
        losses=loss_specs("both", center=BOT_CENTER_WEIGHT), eval_every=40,
        notes="Luo et al., Bag of Tricks and a Strong Baseline for Deep Person Re-ID (CVPRW 2019), "
              "§3 (tricks, §3.6 center loss) and §4.1 (settings); triplet: Hermans et al. 2017, §3.",
    ),
    "quick": Preset(
        model="baseline", profile="quick",
        model_options={"arch": "resnet50", "last_stride": 1, "bnneck": True, "metric": "cosine"},
        # 96x48 (stop 17; was 128x64): 1.8x the training images/s of a width-1/4 ResNet-50 on 2 cores
        # (benchmarks/bench_train.py --size), so that the whole course fits its 15 minutes; the numbers
        # measured below are stop 13's, at 128x64.
        height=96, width=48, train_aug={"flip": True, "pad": 4, "random_crop": True, "random_erasing": 0.0},
        P=8, K=4, epochs=4,
        # Departures from BoT for a 4-epoch CPU run (measured, stop 13, from the source-domain backbone,
        # flip-averaged on the test split): SGD 0.05 reaches mAP 48.5 % where BoT's Adam recipe reached
        # 25.1 %; random erasing, a regulariser for 120-epoch runs, is left out because four epochs never
        # reach the over-fitting it fights.
        optimizer={"name": "sgd", "lr": 0.05, "momentum": 0.9, "weight_decay": 5e-4},
        schedule={"name": "warmup_step", "milestones": [3], "gamma": 0.1,
                  "warmup": 0.5, "warmup_factor": 0.1},
        losses=loss_specs("both", center=BOT_CENTER_WEIGHT), eval_every=0,
        notes="BoT losses and BN-neck at width 1/4, 96x48, on SynthReID quick, 4 epochs of SGD from the "
              "source-domain backbone (tuned for a 2-core CPU).",
    ),
    "smoke": Preset(
        model="baseline", profile="smoke",
        model_options={"arch": "resnet50", "last_stride": 1, "bnneck": True, "metric": "cosine"},
        height=64, width=32, train_aug={"flip": True, "pad": 2, "random_crop": True, "random_erasing": 0.5},
        P=8, K=4, epochs=1,
        optimizer={"name": "adam", "lr": 1e-3, "weight_decay": 5e-4, "betas": (0.9, 0.999)},
        schedule={"name": "constant"},
        losses=loss_specs("both", center=BOT_CENTER_WEIGHT), eval_every=0,
        notes="Smoke test: BoT recipe at width 1/8, 64x32, one epoch on SynthReID smoke.",
    ),
}

# ------------------------------------------------------------------------------ departures, as data
_OFFLINE = OFFLINE_PRETRAINING
PRESETS = declare(
    PRESETS,
    quick=(_OFFLINE,
           Departure("optimizer", "Adam, lr 3.5e-4 (BoT §4.1)", "SGD, lr 0.05, momentum 0.9",
                     "BoT's recipe needs its 120 epochs; four CPU epochs need a faster start",
                     "mAP 48.5 % (SGD 0.05) vs 25.1 % (BoT's Adam) after 4 epochs from the source-domain backbone"),
           Departure("schedule", "warm-up 10 epochs, x0.1 at epochs 40 and 70 of 120",
                     "warm-up 0.5 epoch, x0.1 at epoch 3 of 4", "the schedule's shape scaled to 4 epochs"),
           Departure("train_aug.random_erasing", "0.5", "0",
                     "a regulariser for 120-epoch runs; four epochs never reach the over-fitting it fights"),
           Departure("P", "16 identities x 4 images", "8 x 4", "batch 32 for a CPU step")),
    smoke=(_OFFLINE,
           Departure("optimizer.lr", "3.5e-4", "1e-3", "one epoch: a larger step so that the loss moves"),
           Departure("schedule", "warm-up 10 epochs, x0.1 at epochs 40 and 70", "constant", "one epoch"),
           Departure("P", "16 identities x 4 images", "8 x 4", "batch 32 for a CPU step")),
)
