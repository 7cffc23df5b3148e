"""PCB: Part-based Convolutional Baseline (Sun et al., "Beyond Part Models: Person Retrieval with Refined
Part Pooling", ECCV 2018, §3.1 and Fig. 2), the strong baseline the pruning survey prunes (paper 003, §5,
Table 8).

``images → ResNet-50 (last stride 1) → T [B, 2048, 24, 8] → 6 horizontal stripes, average pooled → g_i
[B, 2048] → dropout → shared 1×1 conv 2048→256 + BN + ReLU → h_i [B, 256] → classifier_i → logits_i``

* **Backbone**: ResNet-50 without its global pooling and FC; the last down-sampling (``layer4``) is
  removed (stride 1, PCB §3.1), so a 384×128 input gives a 24×8 map.
* **Stripes**: the map is split into p = 6 horizontal stripes, each average-pooled to a column vector g_i.
* **Local conv (LC)**: one 1×1 conv reducing 2048 → 256, then BN and ReLU. PCB's Fig. 2 draws one per
  stripe; like the issue and the survey's PCB (Table 8, "LC"), we *share* it across the six stripes —
  this is the reading that gives the 24.03 M parameters without classifiers quoted for PCB (ResNet-50
  without FC 23,508,032 + conv 524,288 + BN 512 = 24,032,832).
* **Classifiers (FC)**: six linear layers with bias (PCB: "a fully-connected layer followed by softmax"),
  each trained with cross-entropy on its own stripe; the six losses are **summed** (the criterion's
  list key, :class:`reidbook.losses.DeepSupervision`), as the authors' trainer back-propagates each of
  them with weight 1 (``trainers_partloss.py``; it only *prints* their mean). Dropout (p = 0.5) acts
  on the pooled stripes g, before the local conv, where the authors' ``resnet.py`` puts it
  (``x = self.drop(x); x = self.local_conv(x)``); training only.
* **Size (survey Table 8: 27.2 M).** Our PCB has 24.03 M parameters without classifiers and 25.19 M
  with six 751-way classifiers. The survey's 27.2 M is that **plus torchvision's unused 1000-way fc**
  (2048·1000 + 1000 = 2.049 M): the authors' model keeps ``self.base = resnet50(...)`` whole and stops
  at its avgpool, so counting ``model.parameters()`` includes the fc it never runs — 27.24 M
  (:data:`SURVEY_COUNTED_UNUSED_FC`). The SE-ResNet-50 row (27.7 M) reads the other way: SE-ResNet-50
  without its fc (26.04 M) + local conv + six classifiers = 27.72 M (:mod:`reidbook.models.se_resnet`).
* **Test feature**: PCB §3.1: "during testing, either the 6 pieces of g or h are concatenated"; g is
  reported as slightly more accurate, h as more compact. Default ``feature="g"`` (6·2048 = 12,288-d at
  width 1); ``feature="h"`` gives 6·256 = 1,536-d.

Width: the profile's multiplier (``reidbook.profiles.profile_width``) scales the backbone and the
local conv (256·w); the topology is the same at every profile.
"""
from __future__ import annotations

from collections import OrderedDict

import torch
from torch import nn

from .base import ReIDModel, stage_modules_of
from .baseline import build_backbone
from .layers import classifier_init, kaiming_init

__all__ = ["PCB", "build", "SURVEY_COUNTED_UNUSED_FC"]

#: Parameters of torchvision ResNet-50's 1000-way fc (2048·1000 weights + 1000 biases): unused by PCB,
#: but counted in the survey's Table 8 (27.2 M) because the authors' model object holds it.
SURVEY_COUNTED_UNUSED_FC = 2048 * 1000 + 1000


class PCB(ReIDModel):
    """PCB with ``parts`` stripes (see the module docstring for the paper and the departures)."""

    def __init__(self, num_classes: int, backbone: nn.Module, parts: int = 6, local_dim: int = 256,
                 dropout: float = 0.5, feature: str = "g"):
        super().__init__()
        if feature not in ("g", "h"):
            raise ValueError(f"PCB test feature must be 'g' (pooled stripes) or 'h' (after the 1×1 conv), "
                             f"got {feature!r}")
        if parts < 1:
            raise ValueError(f"PCB needs at least one stripe, got parts={parts}")
        self.backbone = backbone
        self.parts, self.feature = int(parts), feature
        dim = backbone.out_channels
        self.pool = nn.AdaptiveAvgPool2d((self.parts, 1))
        self.local = nn.Sequential(nn.Conv2d(dim, local_dim, 1, bias=False), nn.BatchNorm2d(local_dim),
                                   nn.ReLU(inplace=True))
        kaiming_init(self.local)
        self.dropout = nn.Dropout(dropout)
        self.classifiers = nn.ModuleList(nn.Linear(local_dim, num_classes) for _ in range(self.parts))
        for c in self.classifiers:
            classifier_init(c)
        self.num_classes = num_classes
        self.feature_dim = self.parts * (dim if feature == "g" else local_dim)  # the test feature's size

    def feature_map(self, x: torch.Tensor) -> torch.Tensor:
        """The backbone's map T ``[B, C, H, W]``, checked to have at least one row per stripe."""
        h_map = self.backbone(x)
        if h_map.shape[2] < self.parts:
            raise ValueError(f"PCB: the feature map has height {h_map.shape[2]} < {self.parts} stripes; "
                             "use taller inputs (PCB uses 384×128)")
        return h_map

    def stripes(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """``(g, h)``: pooled stripes ``[B, C, p, 1]`` and their reduced version ``[B, local_dim, p, 1]``."""
        g = self.pool(self.feature_map(x))
        return g, self.local(g)

    def forward(self, x: torch.Tensor):
        if not self.training and self.feature == "g":
            # the test feature g needs neither the local conv nor the classifiers: they cost nothing at test time
            return self.pool(self.feature_map(x)).flatten(1)  # [B, C·p]
        if not self.training:
            return self.stripes(x)[1].flatten(1)
        g = self.pool(self.feature_map(x))
        h = self.local(self.dropout(g))  # the authors' order: dropout on g, then the local conv
        logits = [self.classifiers[i](h[:, :, i, 0]) for i in range(self.parts)]
        return {"logits": logits}

    def stage_modules(self) -> "OrderedDict[str, list[nn.Module]]":
        """Backbone stages plus ``head`` (local conv, classifiers) for per-stage cost accounting."""
        out = OrderedDict(stage_modules_of(self.backbone))
        out["head"] = [self.local, self.classifiers]
        return out


def build(num_classes: int, width: float = 1.0, pretrained=None, arch: str = "resnet50",
          last_stride: int = 1, parts: int = 6, local_dim: int = 256,
          dropout: float = 0.5, feature: str = "g") -> PCB:
    """Registry builder (``build_model("pcb", ...)``); ``arch``: ``resnet50`` (PCB) or ``se_resnet50``
    (survey Table 8's SE-ResNet50 rows). ``width`` is the channel multiplier
    (``build_model`` passes the profile's); the local conv has ``round(local_dim · width)`` channels (at least 1)."""
    w = float(width)
    backbone = build_backbone(arch, width=w, last_stride=last_stride, pretrained=pretrained)
    return PCB(num_classes, backbone, parts=parts, local_dim=max(1, int(round(local_dim * w))), dropout=dropout,
               feature=feature)
