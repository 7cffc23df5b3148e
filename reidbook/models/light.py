"""Light-weight ImageNet networks with a re-ID head: SqueezeNet, ShuffleNetV2, MobileNetV2.

GraftedNet (paper 000, §4.4 and Table 3) compares its grafted network with three off-the-shelf
light networks fine-tuned on Market-1501: SqueezeNet (Iandola et al. 2016; 1.05 M parameters,
65.8 % mAP in the paper), ShuffleNet (Zhang et al. 2018; 1.34 M, 71.6 %) and MobileNetV2 (Sandler
et al. 2018; 2.75 M, 73.6 %). This module builds them from torchvision's definitions with the same
re-ID head as the baseline:

``trunk → GAP → f (triplet) → BN-neck → f_bn → bias-free classifier → logits``.

Departures, and why:

* The paper uses ShuffleNet v1 (its ref. [4]); torchvision ships **ShuffleNetV2** (Ma et al. 2018),
  which we use instead (same family, same budget; v2's own paper is GraftedNet's ref. [8]).
* GraftedNet fine-tunes the light nets with a softmax head only; we add the BoT BN-neck so every
  model of the course shares one head and one criterion (the preset's ``losses`` choose softmax only).
* Width: ShuffleNetV2 and MobileNetV2 take the profile's width multiplier (their papers' own
  "×0.5"/"width multiplier" knob). SqueezeNet has no such knob and is built at its real size.

Names of the trunk's modules follow torchvision, so its ImageNet ``state_dict`` loads at width 1.
"""
from __future__ import annotations

from collections import OrderedDict

import torch
from torch import nn

from . import backbones as B
from .base import Backbone
from .baseline import Baseline

__all__ = ["ShuffleNetV2Trunk", "MobileNetV2Trunk", "build_light_trunk", "LIGHT_ARCHS", "build"]

LIGHT_ARCHS = ("squeezenet1_0", "squeezenet1_1", "shufflenet_v2", "mobilenet_v2")

# ShuffleNetV2 ×1.0 (Ma et al. 2018, Table 5): stem 24, stages 116/232/464, conv5 1024.
_SHUFFLE_CHANNELS = (24, 116, 232, 464, 1024)
_SHUFFLE_REPEATS = (4, 8, 4)


def _even(c: float, minimum: int = 8) -> int:
    """Channel count rounded to a multiple of 4 (ShuffleNetV2 splits channels in halves)."""
    return max(minimum, int(round(c / 4.0)) * 4)


class ShuffleNetV2Trunk(Backbone):
    """torchvision's ShuffleNetV2 without ``fc``; stages ``conv1`` (conv+max-pool), ``stage2…4``, ``conv5``."""

    def __init__(self, width: float = 1.0):
        super().__init__()
        from torchvision.models import shufflenetv2

        chans = list(_SHUFFLE_CHANNELS) if width == 1.0 else \
            [_even(_SHUFFLE_CHANNELS[0] * max(width, 0.5))] + [_even(c * width) for c in _SHUFFLE_CHANNELS[1:4]] + \
            [_even(_SHUFFLE_CHANNELS[4] * width, 64)]
        net = shufflenetv2.ShuffleNetV2(list(_SHUFFLE_REPEATS), chans)
        self.width = width
        for name in ("conv1", "maxpool", "stage2", "stage3", "stage4", "conv5"):
            setattr(self, name, getattr(net, name))
        self.out_channels = chans[-1]
        self.stage_channels = OrderedDict(conv1=chans[0], stage2=chans[1], stage3=chans[2], stage4=chans[3],
                                          conv5=chans[4])

    def stages(self) -> "OrderedDict[str, nn.Module]":
        return OrderedDict(conv1=nn.Sequential(self.conv1, self.maxpool), stage2=self.stage2,
                           stage3=self.stage3, stage4=self.stage4, conv5=self.conv5)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        for stage in self.stages().values():
            x = stage(x)
        return x


class MobileNetV2Trunk(Backbone):
    """torchvision's MobileNetV2 ``features`` (no classifier), split by resolution into ``conv1…conv5``."""

    _SPLITS = OrderedDict(conv1=(0, 2), conv2=(2, 4), conv3=(4, 7), conv4=(7, 14), conv5=(14, 19))

    def __init__(self, width: float = 1.0):
        super().__init__()
        from torchvision.models import mobilenetv2

        net = mobilenetv2.MobileNetV2(width_mult=width)
        self.width = width
        self.features = net.features
        self.out_channels = net.last_channel  # 1280 for width ≤ 1 (Sandler et al. keep the last conv wide)
        self.stage_channels = OrderedDict((k, self.features[b - 1].out_channels) for k, (a, b) in self._SPLITS.items())

    def stages(self) -> "OrderedDict[str, nn.Module]":
        return OrderedDict((k, nn.Sequential(*list(self.features)[a:b])) for k, (a, b) in self._SPLITS.items())

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.features(x)


def _imagenet_state(arch: str) -> dict:
    """ImageNet weights for ShuffleNetV2 / MobileNetV2 through torchvision's weights API."""
    from torchvision.models import mobilenetv2, shufflenetv2

    weights = {"shufflenet_v2": shufflenetv2.ShuffleNet_V2_X1_0_Weights.IMAGENET1K_V1,
               "mobilenet_v2": mobilenetv2.MobileNet_V2_Weights.IMAGENET1K_V1}[arch]
    try:
        return weights.get_state_dict(progress=False)
    except Exception as exc:  # offline
        raise B.PretrainedWeightsUnavailable(
            f"could not fetch ImageNet weights for {arch} ({type(exc).__name__}: {exc}). Fix: go online "
            f"once, pass a local file path as pretrained=, or use pretrained='source' through the zoo.") from exc


def build_light_trunk(arch: str, width: float = 1.0, pretrained=None) -> nn.Module:
    """The feature-map trunk of a light network by name (one of :data:`LIGHT_ARCHS`)."""
    if arch in ("squeezenet1_0", "squeezenet1_1"):
        return getattr(B, arch)(pretrained=pretrained)
    if arch == "shufflenet_v2":
        trunk = ShuffleNetV2Trunk(width)
    elif arch == "mobilenet_v2":
        trunk = MobileNetV2Trunk(width)
    else:
        raise KeyError(f"unknown light arch {arch!r}; choose one of {', '.join(LIGHT_ARCHS)}")
    if pretrained is not None:
        if isinstance(pretrained, str) and pretrained == "imagenet":
            if width != 1.0:
                raise B.PretrainedWeightsUnavailable(
                    f"ImageNet weights for {arch} exist only at width 1, not {width}; use pretrained='source'.")
            pretrained = _imagenet_state(arch)
        B.load_pretrained(trunk, pretrained, arch=arch)
    return trunk


def build(num_classes: int, width: float = 1.0, pretrained=None, arch: str = "squeezenet1_0",
          bnneck: bool = True) -> Baseline:
    """Registry builder (``build_model("light", n, arch="mobilenet_v2")``): a light trunk + the BoT head.

    Training output ``{"logits": [l], "triplet": [f]}``; evaluation output the BN-neck feature.
    """
    trunk = build_light_trunk(arch, width=float(width), pretrained=pretrained)
    model = Baseline(num_classes, trunk, embedding_dim=0, bnneck=bnneck, pool="avg")
    model.arch = arch
    return model
