"""Presets of DaRe (``reidbook/models/dare.py``, paper 004).

``full`` = the paper's §5 "Implementation details": ResNet-50 pre-trained on ImageNet (DaRe(R); pass
``model_options={"arch": "densenet201"}`` for DaRe(De)), inputs resized to 256×128, enlarged by 1.125
and randomly cropped back to 256×128, random horizontal flip; P = 18 identities × K = 4 images
(batch 72); Adam with α0 = 3·10⁻⁴, constant up to t0 = 30 000 iterations, then
α(t) = α0 · 0.001^((t−t0)/(t1−t0)) up to t1 = 60 000 (Eq. 4), β1 lowered from 0.9 to 0.5 after t0;
loss Eq. (2) with deep supervision. The "+RE" rows of Table 1 add random erasing (Zhong et al.):
``with_random_erasing(preset)``. Test features: the paper averages 10 crops (5 crops and their
flips, §5); :class:`reidbook.models.dare.TenCropEmbedding` does that, the course uses flip averaging.

``epochs`` in ``full``: Market-1501's 751 identities give ≈ 170 P×K batches an epoch with our
sampler, so 350 epochs ≈ 60 000 iterations; the schedule itself is given in iterations.

``quick`` / ``smoke`` keep the topology, the loss and the schedule's shape (constant, then the
exponential decay with the β1 switch over the second half) and shrink width (¼, ⅛), input (96×48,
64×32), data (SynthReID) and epochs; ``quick`` uses a larger lr (1e-3) because it trains for minutes,
not 60 000 iterations.
"""
from __future__ import annotations

from . import Preset
from .departures import OFFLINE_PRETRAINING, Departure, declare

__all__ = ["PRESETS", "loss_specs", "with_random_erasing", "dare_schedule"]


def loss_specs(deep_supervision: bool = True) -> list[dict]:
    """Eq. (2) as :func:`reidbook.losses.build_criterion` specs: ``ℓ_all = Σ_s ℓ_s + ℓ_fusion``.

    Each ``ℓ`` is the batch-hard soft-margin triplet loss (Hermans et al. 2017; ``soft_triplet`` in
    :mod:`reidbook.losses`). The ``stages`` term holds a list, so it is summed over the four
    stages (``DeepSupervision``). ``deep_supervision=False`` keeps only ``ℓ_fusion`` (Fig. 4's
    ablation). Departure: each ``ℓ`` averages over anchors instead of summing (a rescaling of the
    gradient, see ``reidbook.losses``).
    """
    fusion = {"name": "fusion", "loss": "soft_triplet", "weight": 1.0, "key": "fusion"}
    stages = {"name": "stages", "loss": "soft_triplet", "weight": 1.0, "key": "stages"}
    return [stages, fusion] if deep_supervision else [fusion]


def dare_schedule(t0, t1, unit: str = "iters") -> dict:
    """Eq. (4): constant to ``t0``, then ×0.001^((t−t0)/(t1−t0)) to ``t1``; β1 0.9 → 0.5 after ``t0``."""
    return {"name": "dare_exp", "t0": t0, "t1": t1, "unit": unit, "decay_to": 0.001,
            "beta1": 0.9, "beta1_after": 0.5}


def with_random_erasing(preset: Preset, p: float = 0.5) -> Preset:
    """The "+RE" variant (random erasing with probability ``p``, Zhong et al. 2017)."""
    return preset.replace(train_aug={"random_erasing": float(p)})


_ADAM = {"name": "adam", "lr": 3e-4, "weight_decay": 0.0, "betas": (0.9, 0.999)}
_AUG = {"flip": True, "random_crop": True, "resize_scale": 1.125, "random_erasing": 0.0}

PRESETS = {
    "full": Preset(
        model="dare", profile="full", model_options={"arch": "resnet50"},
        height=256, width=128, train_aug=dict(_AUG), P=18, K=4, epochs=350,
        optimizer=dict(_ADAM), schedule=dare_schedule(30_000, 60_000, "iters"),
        losses=loss_specs(True), eval_every=0,
        notes="Wang et al., Resource Aware Person Re-ID across Multiple Resolutions (CVPR 2018), §3 (model, "
              "Eq. 1-2) and §5 implementation details (P18 K4, Adam 3e-4, Eq. 4 with t0=30k, t1=60k, beta1 0.9->0.5, "
              "resize x1.125 + random crop + flip; +RE adds random erasing).",
    ),
    "quick": Preset(
        model="dare", profile="quick", model_options={"arch": "resnet50"},
        height=96, width=48, train_aug=dict(_AUG), P=16, K=4, epochs=4,  # 96x48: the course's 15 minutes
        optimizer={**_ADAM, "lr": 1e-3}, schedule=dare_schedule(2, 4, "epochs"),
        losses=loss_specs(True), eval_every=0,
        notes="DaRe recipe at width 1/4, 96x48, SynthReID quick, 4 epochs (Eq. 4 over the second half).",
    ),
    "smoke": Preset(
        model="dare", profile="smoke", model_options={"arch": "resnet50"},
        height=64, width=32, train_aug=dict(_AUG), P=8, K=4, epochs=1,
        optimizer={**_ADAM, "lr": 1e-3}, schedule=dare_schedule(0.5, 1, "epochs"),
        losses=loss_specs(True), eval_every=0,
        notes="Smoke test: DaRe recipe at width 1/8, 64x32, one epoch on SynthReID smoke.",
    ),
}

# ------------------------------------------------------------------------------ departures, as data
_TEST = Departure("test feature", "average of 10 crops (5 crops and their flips, §5)", "average with the flip",
                  "cheaper; TenCropEmbedding (reidbook.models.dare) gives the paper's")
_MEAN = Departure("losses", "Eq. (2) sums over anchors", "mean over anchors", "a rescaling of the gradient")
_OFFLINE = OFFLINE_PRETRAINING
_LR = Departure("optimizer.lr", "3e-4", "1e-3", "minutes of training, not 60 000 iterations")
PRESETS = declare(
    PRESETS, common=(_TEST, _MEAN),
    quick=(_OFFLINE, _LR, Departure("P", "18 identities x 4 images", "16 x 4", "SynthReID quick's batches"),
           Departure("schedule", "Eq. (4): constant to 30 000 iterations, decay to 60 000",
                     "the same shape in epochs: constant to 2, decay to 4", "scaled to 4 epochs")),
    smoke=(_OFFLINE, _LR, Departure("P", "18 identities x 4 images", "8 x 4", "smoke's few identities"),
           Departure("schedule", "Eq. (4): constant to 30 000 iterations, decay to 60 000",
                     "the same shape in epochs: constant to 0.5, decay to 1", "one epoch")),
)
