"""Presets of the ``light`` models (SqueezeNet / ShuffleNetV2 / MobileNetV2 + re-ID head).

GraftedNet (paper 000) fine-tunes these on Market-1501 for its Table 3 but does not list their
settings; we use GraftedNet's own recipe (§4.2): SGD, momentum 0.9, weight decay 5e-4, batch 32,
80 epochs, lr 0.01 for the ImageNet-initialised trunk and 0.1 for the new layers, ×0.1 at epochs
40 and 60, random crop + flip + random erasing, softmax (cross-entropy) only. Departure: §4.2 trains
at 384×192; Table 3 times a smaller model at the papers' usual 256×128, which we keep for ``full``.

The architecture is chosen with ``model_options={"arch": ...}`` (default SqueezeNet 1.0, Table 3's
first row), e.g. ``zoo.get("light", model_options={"arch": "mobilenet_v2"})``.
"""
from __future__ import annotations

from . import Preset
from .departures import OFFLINE_PRETRAINING, Departure, declare

__all__ = ["PRESETS"]

_SOFTMAX = [{"name": "ce", "loss": "cross_entropy", "weight": 1.0, "key": "logits", "options": {}}]
_NEW_LAYERS_LR = {"backbone": 0.01, "neck": 0.1, "classifier": 0.1}

PRESETS = {
    "full": Preset(
        model="light", profile="full", model_options={"arch": "squeezenet1_0"},
        height=256, width=128, train_aug={"flip": True, "pad": 10, "random_crop": True, "random_erasing": 0.5},
        P=8, K=4, epochs=80,
        optimizer={"name": "sgd", "lr": 0.1, "momentum": 0.9, "weight_decay": 5e-4, "lr_groups": dict(_NEW_LAYERS_LR)},
        schedule={"name": "step", "milestones": [40, 60], "gamma": 0.1},
        losses=[dict(t) for t in _SOFTMAX], eval_every=20,
        notes="GraftedNet (paper 000) §4.2 training recipe, applied to the Table 3 light networks.",
    ),
    "quick": Preset(
        model="light", profile="quick", model_options={"arch": "squeezenet1_0"},
        height=96, width=48, train_aug={"flip": True, "pad": 4, "random_crop": True, "random_erasing": 0.5},
        P=8, K=4, epochs=10,
        optimizer={"name": "sgd", "lr": 0.05, "momentum": 0.9, "weight_decay": 5e-4,
                   "lr_groups": {"backbone": 0.01, "neck": 0.05, "classifier": 0.05}},
        schedule={"name": "step", "milestones": [7], "gamma": 0.1},
        losses=[dict(t) for t in _SOFTMAX], eval_every=0,
        notes="GraftedNet §4.2 recipe shortened for SynthReID quick on a CPU.",
    ),
    "smoke": Preset(
        model="light", profile="smoke", model_options={"arch": "squeezenet1_0"},
        height=64, width=32, train_aug={"flip": True, "pad": 2, "random_crop": True, "random_erasing": 0.5},
        P=8, K=4, epochs=1,
        optimizer={"name": "sgd", "lr": 0.05, "momentum": 0.9, "weight_decay": 5e-4,
                   "lr_groups": {"backbone": 0.01, "neck": 0.05, "classifier": 0.05}},
        schedule={"name": "constant"},
        losses=[dict(t) for t in _SOFTMAX], eval_every=0,
        notes="Smoke test: one epoch on SynthReID smoke.",
    ),
}

# ------------------------------------------------------------------------------ departures, as data
_PK = Departure("sampler", "shuffled batches of 32 (GraftedNet §4.2)", "P x K = 8 x 4", "the course's sampler")
_INPUT = Departure("input", "384x192 (GraftedNet §4.2)", "256x128", "Table 3 times the light nets at the usual 256x128")
_OFFLINE = OFFLINE_PRETRAINING
_LR = Departure("optimizer", "0.1 new layers / 0.01 trunk", "0.05 new layers / 0.01 trunk", "short CPU runs")
PRESETS = declare(
    PRESETS, common=(_PK, _INPUT),
    quick=(_OFFLINE, _LR,
           Departure("schedule", "x0.1 at epochs 40 and 60 of 80", "x0.1 at epoch 7 of 10", "10 epochs")),
    smoke=(_OFFLINE, _LR, Departure("schedule", "x0.1 at epochs 40 and 60 of 80", "constant", "one epoch")),
)
