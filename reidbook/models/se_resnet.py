"""SE-ResNet-50: ResNet-50 with squeeze-and-excitation blocks (Hu, Shen, Sun, "Squeeze-and-Excitation
Networks", CVPR 2018, §3 and Fig. 3), the second backbone of the pruning survey's PCB experiments
(paper 003, §5, Table 8, "SE-ResNet50" rows, reference [78]).

In the course, "SE-ResNet" means only this network. (DaRe's paper calls its sequential ensemble of
ResNets "SE-ResNets"; the course names that baseline :mod:`reidbook.models.seq_ensemble`.)

**SE block (Hu et al. §3, Eq. 2–4; Fig. 3, "SE-ResNet module").** On the residual branch of every
bottleneck, after its last BN and before the addition of the identity:
``s = σ(W_2 · ReLU(W_1 · GAP(u)))``, ``ũ_c = s_c · u_c``, with ``W_1: C → C/r`` and ``W_2: C/r → C``
(fully connected, with biases, here as 1×1 convolutions: the same parameters), reduction ``r = 16``.

**Size.** At width 1, 50 layers, r = 16: 26,039,024 parameters without the classifier (ResNet-50's
23,508,032 + 2,531,008 in the 16 SE blocks); with a 1000-way fc, 28,088,024 (Hu et al. Table 2:
28.1 M for SE-ResNet-50, against 25.6 M for ResNet-50). The survey's PCB row on it (27.7 M) is this backbone
without fc + PCB's local conv + six 751-way classifiers = 27.72 M (see :mod:`reidbook.models.pcb`).

**Build.** :func:`se_resnet50` builds :class:`reidbook.models.backbones.ResNet` and turns every
bottleneck into an :class:`SEBottleneck` *in place* (a subclass of torchvision's ``Bottleneck`` with an
``se`` child), so module names stay torchvision's (``layer1.0.conv1`` …, plus ``layer1.0.se.fc1``):
the pruning code (``reidbook.prune``: bottleneck-internal channels conv1/conv2) and stage accounting
work unchanged. The SE block acts on the block's output channels, which bottleneck-scope pruning keeps.

Pretrained weights: torchvision has no SE-ResNet-50; ``pretrained`` may be ``None``, a path or a state
dict in these module names (e.g. converted from another library's ImageNet weights). A plain ResNet-50
state dict loads too (e.g. the zoo's source-domain backbone): the SE blocks then keep their
initialisation (reported by :func:`se_resnet50`'s ``missing_se`` attribute). ``"imagenet"`` is refused.
"""
from __future__ import annotations

import torch
from torch import nn
from torchvision.models.resnet import Bottleneck

from . import backbones as B

__all__ = ["SEModule", "SEBottleneck", "se_resnet50", "add_squeeze_excitation", "SE_REDUCTION"]

SE_REDUCTION = 16  # Hu et al. §6.1 / Table 10: r = 16 for every SE-ResNet


class SEModule(nn.Module):
    """Squeeze (global average pooling) and excitation (FC C→C/r, ReLU, FC C/r→C, sigmoid), then scale
    the input channels by the excitation (Hu et al. Eq. 2–4)."""

    def __init__(self, channels: int, reduction: int = SE_REDUCTION):
        super().__init__()
        if reduction < 1:
            raise ValueError(f"SE reduction ratio must be >= 1, got {reduction}")
        hidden = max(1, channels // reduction)
        self.pool = nn.AdaptiveAvgPool2d(1)
        self.fc1 = nn.Conv2d(channels, hidden, 1, bias=True)
        self.relu = nn.ReLU(inplace=True)
        self.fc2 = nn.Conv2d(hidden, channels, 1, bias=True)
        self.gate = nn.Sigmoid()

    def forward(self, u: torch.Tensor) -> torch.Tensor:
        return u * self.gate(self.fc2(self.relu(self.fc1(self.pool(u)))))


class SEBottleneck(Bottleneck):
    """torchvision's ``Bottleneck`` with an SE block on the residual branch before the addition
    (Hu et al. Fig. 3, right). Built by :func:`add_squeeze_excitation` from a plain bottleneck."""

    se: SEModule

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        identity = x if self.downsample is None else self.downsample(x)
        out = self.relu(self.bn1(self.conv1(x)))
        out = self.relu(self.bn2(self.conv2(out)))
        out = self.se(self.bn3(self.conv3(out)))
        return self.relu(out + identity)


def add_squeeze_excitation(net: nn.Module, reduction: int = SE_REDUCTION) -> nn.Module:
    """Turn every torchvision ``Bottleneck`` of ``net`` into an :class:`SEBottleneck` in place (module
    names unchanged, an ``se`` child added); returns ``net``. A net without bottlenecks is an error."""
    n = 0
    for m in list(net.modules()):
        if type(m) is Bottleneck:
            m.se = SEModule(m.bn3.num_features, reduction)
            m.__class__ = SEBottleneck
            n += 1
    if n == 0:
        raise ValueError(f"{type(net).__name__} has no torchvision Bottleneck to add squeeze-and-excitation to "
                         "(SE-ResNet here is built on ResNet-50/101/152)")
    return net


def se_resnet50(width: float = 1.0, last_stride: int = 2, pretrained=None,
                reduction: int = SE_REDUCTION) -> B.ResNet:
    """SE-ResNet-50 feature extractor (no classifier), with the same interface as
    :func:`reidbook.models.backbones.resnet50` (width multiplier, last stride, ``stages()`` …)."""
    if isinstance(pretrained, str) and pretrained == "imagenet":
        raise B.PretrainedWeightsUnavailable(
            "torchvision has no ImageNet weights for SE-ResNet-50: pass pretrained=<path or state dict> with "
            "weights in reidbook's module names (layerN.i.conv1 … layerN.i.se.fc1/fc2), or None")
    net = add_squeeze_excitation(B.ResNet(50, width=width, last_stride=last_stride), reduction)
    net.missing_se = []
    if pretrained is not None:
        if not isinstance(pretrained, dict):
            pretrained = torch.load(pretrained, map_location="cpu", weights_only=True)
        own = net.state_dict()
        net.missing_se = sorted(k for k in own if ".se." in k and k not in pretrained)
        B.load_pretrained(net, {**{k: own[k] for k in net.missing_se}, **pretrained}, arch="se_resnet50")
    return net
