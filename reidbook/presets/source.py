"""Presets of source-domain pre-training: how a backbone is pre-trained on SynthReID's source domain
(``synthreid/source/``, the offline stand-in for ImageNet in ``smoke`` and ``quick``).

The trained network is a :class:`~reidbook.models.baseline.Baseline` (backbone → GAP → BN-neck →
classifier; the head is discarded), so ``model`` is ``"baseline"`` and the input size is the baseline
preset's. The recipe: the BoT losses (label-smoothed softmax + batch-hard triplet, margin 0.3) with
SGD 0.05, a half-epoch warm-up and one step (×0.1 at ¾ of the epochs), P=8 × K=4, no random erasing.

Measured on a width-¼ ResNet-50 at 128×64 (stop 13): Adam at 3.5e-4…3e-3 left softmax near chance for
the first epochs, while SGD 0.05 with zero-initialised residual blocks learns from the first epoch
(target-domain mAP 7.9 % → 48.8 % over 10 epochs trained from scratch on the target itself). From this
backbone the quick baseline reaches 48.5 % mAP in 4 target epochs (25.1 % from stop 12's Adam/softmax
backbone, 36.1 % for the colour histogram); used directly it scores 9.9 %. Ten epochs in quick: the cost
is paid once per architecture, cached, and ``reidbook course`` pays it before the chapters.

``full`` exists for completeness (30 epochs); ``full`` runs start from ImageNet weights instead.
"""
from __future__ import annotations

import dataclasses

from . import PROFILES, Preset
from .baseline import PRESETS as _BASELINE
from .departures import Departure

__all__ = ["PRESETS", "SOURCE_EPOCHS", "SOURCE_GRAD_CLIP", "source_recipe"]

SOURCE_EPOCHS = {"smoke": 1, "quick": 10, "full": 30}
# BatchNorm-free trunks (SqueezeNet) diverge under this recipe's SGD 0.05 (issue 25, measured in smoke,
# squeezenet1_0, first 25 iterations): loss 8.05 → 1.4e4 at iteration 5, weights |w| 0.6 → 3e3, every
# ReLU dead (loss stuck at chance 3.99), and the saved finite-but-huge backbone made `reidbook train light`
# fail with a NaN loss at its first iteration. lr 0.01 / 0.005 do not diverge but stay at chance (3.99 /
# 4.01 after 50 iterations); clipping the gradient norm at 5 learns (3.6 after 40 iterations).
# Per architecture (the recipe is shared); only these archs' cache keys hold it.
SOURCE_GRAD_CLIP = {"squeezenet1_0": 5.0, "squeezenet1_1": 5.0}


def source_recipe(profile: str) -> Preset:
    """The source-domain pre-training preset of ``profile`` (see the module docstring)."""
    base = _BASELINE[profile]
    epochs = SOURCE_EPOCHS[profile]
    # the optimiser replaced whole (Preset.replace would merge BoT's Adam betas into the SGD dict)
    # (and without the baseline's test metric, which pre-training never uses: the cache key stays the recipe's)
    base = dataclasses.replace(base, optimizer={"name": "sgd", "lr": 0.05, "momentum": 0.9, "weight_decay": 5e-4},
                               model_options={k: v for k, v in base.model_options.items() if k != "metric"})
    return base.replace(epochs=epochs, P=8, K=4,
                        departures=(_STAND_IN,) + (() if profile == "full" else (_SCHEDULE,)),
                        schedule={"name": "warmup_step", "warmup": 0.5, "warmup_factor": 0.1,
                                  "milestones": [max(1, int(epochs * 0.75))], "gamma": 0.1},
                        losses=[{"name": "ce", "loss": "cross_entropy", "key": "logits",
                                 "options": {"label_smoothing": 0.1}},
                                {"name": "triplet", "loss": "batch_hard_triplet", "key": "triplet",
                                 "options": {"margin": 0.3}}],
                        train_aug={**base.train_aug, "random_erasing": 0.0}, eval_every=0,
                        notes="Source-domain pre-training (BoT losses, SGD, zero-init residuals on SynthReID/source), "
                              "stand-in for ImageNet.")


_STAND_IN = Departure("pre-training", "ImageNet classification weights (every paper of the course)",
                      "this recipe on SynthReID's source domain: BoT losses, SGD, zero-initialised residual blocks",
                      "ImageNet weights cannot be downloaded offline",
                      "quick baseline from this backbone: 48.5 % mAP in 4 epochs; used directly: 9.9 %")

_SCHEDULE = Departure("schedule", "x0.1 at epoch 22 of full's 30", "x0.1 at 3/4 of the profile's epochs",
                      "the same shape over fewer epochs")

PRESETS = {p: source_recipe(p) for p in PROFILES}
