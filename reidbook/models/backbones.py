"""Backbones with named stages: ResNet-18/34/50/101/152 (width multiplier, last stride), SqueezeNet, DenseNet-201.

Every compression paper in the course cuts a backbone somewhere: MGN branches after
``res_conv4_1``, GraftedNet keeps ``conv1…conv3`` as its rootstock, DaRe puts a head after every
stage, the pruning survey thins the bottlenecks. So each backbone here exposes its stages by the
names the papers use (``conv1`` … ``conv5``) through :meth:`stages` and :meth:`forward_stages`.

Two departures from torchvision, both made so that the course runs on a laptop:

* ``width``: every channel count (stem and the four stages) is multiplied by ``width``. ``width=1``
  is exactly torchvision's network and loads its ImageNet ``state_dict`` unchanged; ``width=1/4``
  is the ``quick`` profile's network, the same topology with 16× fewer multiply-adds.
* ``last_stride``: the stride of conv5's first block (2 in He et al.; 1 in PCB, FD's teachers and
  many re-ID baselines, which keeps a 2× larger final map).

Module names follow torchvision (``conv1``, ``bn1``, ``layer1`` … ``layer4``) so state dicts match.
"""
from __future__ import annotations

import os
from collections import OrderedDict
from pathlib import Path
from typing import Callable

import torch
from torch import nn
from torchvision.models import resnet as tv_resnet

from .base import Backbone, run_stages

__all__ = [
    "ResNet", "resnet18", "resnet34", "resnet50", "resnet101", "resnet152", "build_resnet",
    "SqueezeNetBackbone", "squeezenet1_0", "squeezenet1_1", "DenseNetBackbone", "densenet201",
    "load_pretrained", "PretrainedWeightsUnavailable", "RESNET_SPECS", "zero_init_residual", "run_stages",
]

# depth → (block type, blocks per stage). He et al. 2016, Table 1.
RESNET_SPECS: dict[int, tuple[type[nn.Module], list[int]]] = {
    18: (tv_resnet.BasicBlock, [2, 2, 2, 2]),
    34: (tv_resnet.BasicBlock, [3, 4, 6, 3]),
    50: (tv_resnet.Bottleneck, [3, 4, 6, 3]),
    101: (tv_resnet.Bottleneck, [3, 4, 23, 3]),
    152: (tv_resnet.Bottleneck, [3, 8, 36, 3]),
}

STAGE_NAMES = ("conv1", "conv2", "conv3", "conv4", "conv5")


class PretrainedWeightsUnavailable(RuntimeError):
    """Raised when ImageNet weights were asked for but cannot be had (offline, or width ≠ 1)."""


def _scaled(channels: int, width: float) -> int:
    """Channel count at a width multiplier; at least 4 so group/BN arithmetic stays sane."""
    return max(4, int(round(channels * width)))


class ResNet(Backbone):
    """He et al., "Deep Residual Learning for Image Recognition" (CVPR 2016), without the classifier.

    Stages (the names the re-ID papers use):
      ``conv1`` = conv 7×7/2 + BN + ReLU + max-pool 3×3/2 (stride 4),
      ``conv2`` = ``layer1`` (stride 4), ``conv3`` = ``layer2`` (stride 8),
      ``conv4`` = ``layer3`` (stride 16), ``conv5`` = ``layer4`` (stride 32, or 16 with ``last_stride=1``).

    ``forward`` returns conv5's feature map ``[B, C, H/32, W/32]``.
    """

    def __init__(self, depth: int = 50, width: float = 1.0, last_stride: int = 2):
        super().__init__()
        if depth not in RESNET_SPECS:
            raise ValueError(f"ResNet depth {depth} is not one of {sorted(RESNET_SPECS)}")
        if not 0 < width <= 4:
            raise ValueError(f"width multiplier must be in (0, 4], got {width}")
        if last_stride not in (1, 2):
            raise ValueError(f"last_stride must be 1 or 2, got {last_stride}")
        block, layers = RESNET_SPECS[depth]
        self.depth, self.width, self.last_stride = depth, width, last_stride
        self.block = block
        self.inplanes = _scaled(64, width)
        self.conv1 = nn.Conv2d(3, self.inplanes, kernel_size=7, stride=2, padding=3, bias=False)
        self.bn1 = nn.BatchNorm2d(self.inplanes)
        self.relu = nn.ReLU(inplace=True)
        self.maxpool = nn.MaxPool2d(kernel_size=3, stride=2, padding=1)
        planes = [_scaled(p, width) for p in (64, 128, 256, 512)]
        self.layer1 = self._make_layer(block, planes[0], layers[0], stride=1)
        self.layer2 = self._make_layer(block, planes[1], layers[1], stride=2)
        self.layer3 = self._make_layer(block, planes[2], layers[2], stride=2)
        self.layer4 = self._make_layer(block, planes[3], layers[3], stride=last_stride)
        self.stage_channels = OrderedDict(
            conv1=self.inplanes_stem,
            conv2=planes[0] * block.expansion, conv3=planes[1] * block.expansion,
            conv4=planes[2] * block.expansion, conv5=planes[3] * block.expansion,
        )
        self.out_channels = self.stage_channels["conv5"]
        self._init_weights()

    @property
    def inplanes_stem(self) -> int:
        return self.conv1.out_channels

    def _make_layer(self, block, planes: int, blocks: int, stride: int) -> nn.Sequential:
        downsample = None
        if stride != 1 or self.inplanes != planes * block.expansion:
            downsample = nn.Sequential(
                nn.Conv2d(self.inplanes, planes * block.expansion, 1, stride=stride, bias=False),
                nn.BatchNorm2d(planes * block.expansion),
            )
        mods = [block(self.inplanes, planes, stride, downsample)]
        self.inplanes = planes * block.expansion
        mods += [block(self.inplanes, planes) for _ in range(1, blocks)]
        return nn.Sequential(*mods)

    def _init_weights(self) -> None:
        # torchvision's initialisation: Kaiming-normal convs, BN γ=1 β=0.
        for m in self.modules():
            if isinstance(m, nn.Conv2d):
                nn.init.kaiming_normal_(m.weight, mode="fan_out", nonlinearity="relu")
            elif isinstance(m, nn.BatchNorm2d):
                nn.init.ones_(m.weight)
                nn.init.zeros_(m.bias)

    def stages(self) -> "OrderedDict[str, nn.Module]":
        """The five stages as modules, in order, named ``conv1`` … ``conv5``."""
        stem = nn.Sequential(OrderedDict(conv=self.conv1, bn=self.bn1, relu=self.relu, pool=self.maxpool))
        return OrderedDict(conv1=stem, conv2=self.layer1, conv3=self.layer2, conv4=self.layer3, conv5=self.layer4)

    def stage_modules(self) -> "OrderedDict[str, list[nn.Module]]":
        """Stage name → the actual submodules (for parameter/MAC accounting by stage)."""
        return OrderedDict(conv1=[self.conv1, self.bn1], conv2=[self.layer1], conv3=[self.layer2],
                           conv4=[self.layer3], conv5=[self.layer4])

    def forward_stages(self, x: torch.Tensor, upto: str = "conv5") -> "OrderedDict[str, torch.Tensor]":
        """Run stage by stage and return every stage's output up to and including ``upto``.

        Stages after ``upto`` are not run (DaRe's anytime inference relies on this).
        """
        if upto not in STAGE_NAMES:
            raise ValueError(f"unknown stage {upto!r}; stages are {STAGE_NAMES}")
        return super().forward_stages(x, upto)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = self.maxpool(self.relu(self.bn1(self.conv1(x))))
        return self.layer4(self.layer3(self.layer2(self.layer1(x))))


def zero_init_residual(model: nn.Module) -> int:
    """Zero the scale γ of the last BN in every residual block; returns how many blocks were changed.

    Goyal et al., "Accurate, Large Minibatch SGD: Training ImageNet in 1 Hour" (2017), §5.1: with
    γ = 0 each block starts as the identity, so a deep ResNet begins training as a shallow one and
    its early iterations are not spent undoing the noise of sixteen random residual branches
    (torchvision's ``zero_init_residual=True``). Measured here (width-¼ ResNet-50, SynthReID quick,
    SGD 0.05, 3 epochs): mAP 11.9 % with it against 7.5 % without. Used when training from scratch
    (the source-domain pre-training of :func:`reidbook.zoo.pretrained_backbone`); it changes no shape.
    """
    n = 0
    for m in model.modules():
        if isinstance(m, tv_resnet.Bottleneck):
            nn.init.zeros_(m.bn3.weight)
            n += 1
        elif isinstance(m, tv_resnet.BasicBlock):
            nn.init.zeros_(m.bn2.weight)
            n += 1
    return n


def build_resnet(depth: int, width: float = 1.0, last_stride: int = 2, pretrained=None) -> ResNet:
    """A :class:`ResNet` of the given depth; ``pretrained`` as in :func:`load_pretrained`."""
    model = ResNet(depth, width=width, last_stride=last_stride)
    if pretrained is not None:
        load_pretrained(model, pretrained, arch=f"resnet{depth}")
    return model


def resnet18(width: float = 1.0, last_stride: int = 2, pretrained=None) -> ResNet:
    return build_resnet(18, width, last_stride, pretrained)


def resnet34(width: float = 1.0, last_stride: int = 2, pretrained=None) -> ResNet:
    return build_resnet(34, width, last_stride, pretrained)


def resnet50(width: float = 1.0, last_stride: int = 2, pretrained=None) -> ResNet:
    return build_resnet(50, width, last_stride, pretrained)


def resnet101(width: float = 1.0, last_stride: int = 2, pretrained=None) -> ResNet:
    return build_resnet(101, width, last_stride, pretrained)


def resnet152(width: float = 1.0, last_stride: int = 2, pretrained=None) -> ResNet:
    return build_resnet(152, width, last_stride, pretrained)


# ----------------------------------------------------------------------------------------------
# SqueezeNet (Iandola et al. 2016) and DenseNet-201 (Huang et al. 2017), wrapped with stages.
# ----------------------------------------------------------------------------------------------
class SqueezeNetBackbone(Backbone):
    """torchvision's SqueezeNet ``features`` (no classifier), with named stages split at the max-pools.

    SqueezeNet 1.0: conv1 (conv 7×7/2 + ReLU), then stages separated by the three 3×3/2 max-pools;
    we name the pieces ``conv1``, ``fire2_4`` … as ``stage1`` … ``stage4`` (each ends before a pool).
    Used by FD's student "S" and as a light re-ID baseline in GraftedNet's Table 3.
    """

    def __init__(self, version: str = "1_0"):
        super().__init__()
        from torchvision.models import squeezenet

        if version not in ("1_0", "1_1"):
            raise ValueError(f"SqueezeNet version must be '1_0' or '1_1', got {version!r}")
        self.version = version
        net = squeezenet.SqueezeNet(version=version)
        self.features = net.features
        self.out_channels = 512
        pools = [i for i, m in enumerate(self.features) if isinstance(m, nn.MaxPool2d)]
        bounds = [0, *pools, len(self.features)]
        self._splits = [(bounds[i], bounds[i + 1]) for i in range(len(bounds) - 1)]
        self.stage_channels = OrderedDict()
        for i, (a, b) in enumerate(self._splits):
            ch = None
            for m in list(self.features)[a:b]:
                ch = getattr(m, "out_channels", None) or _fire_out(m) or ch
            self.stage_channels[f"stage{i + 1}"] = ch

    def stages(self) -> "OrderedDict[str, nn.Module]":
        return OrderedDict((f"stage{i + 1}", nn.Sequential(*list(self.features)[a:b]))
                           for i, (a, b) in enumerate(self._splits))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.features(x)


def _fire_out(m: nn.Module) -> int | None:
    if hasattr(m, "expand1x1") and hasattr(m, "expand3x3"):
        return m.expand1x1.out_channels + m.expand3x3.out_channels
    return None


def squeezenet1_0(pretrained=None) -> SqueezeNetBackbone:
    model = SqueezeNetBackbone("1_0")
    if pretrained is not None:
        load_pretrained(model, pretrained, arch="squeezenet1_0")
    return model


def squeezenet1_1(pretrained=None) -> SqueezeNetBackbone:
    model = SqueezeNetBackbone("1_1")
    if pretrained is not None:
        load_pretrained(model, pretrained, arch="squeezenet1_1")
    return model


class DenseNetBackbone(Backbone):
    """torchvision's DenseNet ``features`` with stages ``conv1`` (stem), ``conv2`` … ``conv5`` (dense block
    1–4; the transition layers end blocks 1–3), final BN + ReLU applied at the end of ``conv5``.

    ``width`` multiplies the growth rate and the stem width (DaRe(De) in the ``quick`` profile).
    """

    def __init__(self, block_config=(6, 12, 48, 32), growth_rate: int = 32, num_init_features: int = 64,
                 width: float = 1.0):
        super().__init__()
        from torchvision.models import densenet

        self.width = width
        net = densenet.DenseNet(growth_rate=_scaled(growth_rate, width), block_config=block_config,
                                num_init_features=_scaled(num_init_features, width))
        f = net.features
        self.features = f
        self._stage_names = OrderedDict(
            conv1=["conv0", "norm0", "relu0", "pool0"],
            conv2=["denseblock1", "transition1"], conv3=["denseblock2", "transition2"],
            conv4=["denseblock3", "transition3"], conv5=["denseblock4", "norm5"],
        )
        self.stage_channels = OrderedDict()
        with torch.no_grad():
            x = torch.zeros(1, 3, 64, 32)
            for name, stage in self.stages().items():
                x = stage(x)
                self.stage_channels[name] = x.shape[1]
        self.out_channels = self.stage_channels["conv5"]

    def stages(self) -> "OrderedDict[str, nn.Module]":
        out = OrderedDict()
        for name, parts in self._stage_names.items():
            mods = [getattr(self.features, p) for p in parts]
            if name == "conv5":
                mods.append(nn.ReLU(inplace=False))
            out[name] = nn.Sequential(*mods)
        return out

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return torch.relu(self.features(x))


def densenet201(width: float = 1.0, pretrained=None) -> DenseNetBackbone:
    model = DenseNetBackbone((6, 12, 48, 32), width=width)
    if pretrained is not None:
        load_pretrained(model, pretrained, arch="densenet201")
    return model


# ----------------------------------------------------------------------------------------------
# Pretrained weights: torchvision's weights API online, a local file offline, or a state dict.
# ----------------------------------------------------------------------------------------------
_TV_WEIGHTS: dict[str, Callable[[], object]] = {
    "resnet18": lambda: tv_resnet.ResNet18_Weights.IMAGENET1K_V1,
    "resnet34": lambda: tv_resnet.ResNet34_Weights.IMAGENET1K_V1,
    "resnet50": lambda: tv_resnet.ResNet50_Weights.IMAGENET1K_V1,
    "resnet101": lambda: tv_resnet.ResNet101_Weights.IMAGENET1K_V1,
    "resnet152": lambda: tv_resnet.ResNet152_Weights.IMAGENET1K_V1,
}


def _tv_weights(arch: str):
    if arch in _TV_WEIGHTS:
        return _TV_WEIGHTS[arch]()
    from torchvision.models import densenet, squeezenet

    return {
        "squeezenet1_0": squeezenet.SqueezeNet1_0_Weights.IMAGENET1K_V1,
        "squeezenet1_1": squeezenet.SqueezeNet1_1_Weights.IMAGENET1K_V1,
        "densenet201": densenet.DenseNet201_Weights.IMAGENET1K_V1,
    }[arch]


def _imagenet_state_dict(arch: str) -> dict:
    """ImageNet weights from ``$REIDBOOK_WEIGHTS/<arch>.pth`` if present, else torchvision's weights API."""
    local = os.environ.get("REIDBOOK_WEIGHTS")
    if local:
        path = Path(local).expanduser() / f"{arch}.pth"
        if path.exists():
            return torch.load(path, map_location="cpu", weights_only=True)
    weights = _tv_weights(arch)
    try:
        return weights.get_state_dict(progress=False)
    except Exception as exc:  # offline: urllib raises URLError / OSError
        raise PretrainedWeightsUnavailable(
            f"could not fetch ImageNet weights for {arch} ({type(exc).__name__}: {exc}).\n"
            f"Fix: go online once (torchvision caches them), or put the file from {weights.url} at "
            f"$REIDBOOK_WEIGHTS/{arch}.pth, or pass pretrained='source' through the zoo to start from a "
            f"backbone pre-trained on SynthReID's source domain (what the course does offline)."
        ) from exc


def _strip_classifier(state: dict, model: nn.Module) -> dict:
    own = model.state_dict()
    return {k: v for k, v in state.items() if k in own}


def load_pretrained(model: nn.Module, pretrained, arch: str | None = None, strict: bool = True) -> nn.Module:
    """Load weights into a backbone.

    ``pretrained`` is ``"imagenet"`` (torchvision's weights; width 1 only), a path to a ``.pth`` file
    (loaded with ``weights_only=True``), or a state dict. Classifier keys (``fc.*``, ``classifier.*``)
    are ignored; any other missing or mis-shaped key is an error naming the keys.
    """
    if isinstance(pretrained, (str, os.PathLike)) and str(pretrained) == "imagenet":
        if getattr(model, "width", 1.0) != 1.0:
            raise PretrainedWeightsUnavailable(
                f"ImageNet weights exist only at width 1; this {arch} has width {model.width}. "
                "Use the source-domain pre-training (reidbook.zoo.pretrained_backbone) for narrow nets.")
        state = _imagenet_state_dict(arch or type(model).__name__.lower())
    elif isinstance(pretrained, (str, os.PathLike)):
        path = Path(pretrained).expanduser()
        if not path.exists():
            raise FileNotFoundError(f"pretrained weights file {path} does not exist")
        state = torch.load(path, map_location="cpu", weights_only=True)
        if isinstance(state, dict) and "model" in state and isinstance(state["model"], dict):
            state = state["model"]
    elif isinstance(pretrained, dict):
        state = pretrained
    else:
        raise TypeError(f"pretrained must be 'imagenet', a path or a state dict, got {type(pretrained).__name__}")
    state = _strip_classifier(state, model)
    own = model.state_dict()
    missing = [k for k in own if k not in state]
    bad = [k for k in state if state[k].shape != own[k].shape]
    if strict and (missing or bad):
        raise ValueError(
            f"pretrained weights do not fit this {arch or type(model).__name__}: "
            f"{len(missing)} missing keys (e.g. {missing[:3]}), {len(bad)} shape mismatches "
            f"(e.g. {[(k, tuple(state[k].shape), tuple(own[k].shape)) for k in bad[:3]]}). "
            "Were they saved for another depth or width?")
    model.load_state_dict(state, strict=False)
    return model
