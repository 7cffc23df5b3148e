"""Factorized Distillation's networks: view teachers, holistic students, FMFBs and RFBs (paper 002).

Ren & Li, "Factorized Distillation: Training Holistic Person Re-identification Model by Distilling an
Ensemble of Partial ReID Models".

* **One re-ID network per view** (§3.1, Fig. 2) — used for the seven *teachers* and for the *student*:
  ``backbone → f (feature maps) → stabilized GMP (Eq. 5) → Embedding (FC + BN) → r → FC classifier → z``,
  trained with cross-entropy (Eq. 1). ``r`` is the re-ID representation (the test-time embedding).
  ResNets use last stride 1, so every backbone has stride 16, like SqueezeNet. §4.1 says "we reset the
  stride of conv4_1 from 2 to 1"; in the ResNet paper's stage names, which MGN uses (``res_conv4_1`` =
  torchvision ``layer3[0]``), the block we reset is **conv5_1** (torchvision ``layer4[0]``), the last
  down-sampling. This is a reading: FD's names appear to count stages from conv0, and the reset it
  describes is re-ID's usual "last stride 1". Resetting ``layer3[0]`` instead would also give stride 16,
  but would run all of conv4 at stride 8 (4× its multiply-adds); parameter counts are equal either way.
* **Teachers** (§4.1): ResNet-101 or ResNet-152; embedding 512-d for the holistic view, 256-d for the
  partial views.
* **Students** (Table 1): S (SqueezeNet 1.0, 512-d), R18a / R50a / R101a / R152a (512-d), R50b / R152b
  (2048-d). Parameters without the classifier: 1.0, 11.4, 24.6, 43.5, 59.2, 27.7, 62.3 M (tested).
* **FMFB** (Feature Maps Factorization Branch, §3.3, Fig. 3), one per view ``k``: FeatSel (1×1 conv to
  512 + BN + ReLU) on the student's ``f`` → ``f^k`` → stabilized GMP → Embedding (FC + BN) → ``r^{a,k}``,
  which mimics the teacher's supervisory representation ``SR^k`` (Eq. 3).
* **RFB** (Representation Factorization Branch, §3.4), one per view: FeatSel (FC 512 + BN + ReLU; none
  for the holistic view, where student and teacher share the view) → Mapping (FC + BN) on the student's
  ``r`` → ``r^{m,k}``, which mimics ``SR^k`` (Eq. 4).

FMFBs and RFBs exist only while distilling: :meth:`FDNet.deploy` returns the plain holistic student.

Departures (laptop profiles only): at ``width < 1`` the backbone's channels, the embedding sizes
(512 → 512·width, 256 → 256·width, 2048 → 2048·width) and the FeatSel size (512 → 512·width) are all
scaled, as every model of the course does; the topology never changes. SqueezeNet has no width knob and
keeps its real size (only its embedding is scaled).
"""
from __future__ import annotations

import copy
from collections import OrderedDict
from typing import Mapping, Sequence

import torch
from torch import nn

from .base import ReIDModel, stage_modules_of
from .baseline import build_backbone
from .layers import StabilizedGMP, classifier_init, kaiming_init

__all__ = ["STUDENTS", "TEACHER_EMBEDDING", "Embedding", "FMFB", "RFB", "FDNet", "build_student",
           "build_teacher", "scaled_dim", "student_param_table", "PAPER_MARKET", "paper_table"]

# Table 1: short name -> (backbone arch, embedding dimension).
STUDENTS: dict[str, tuple[str, int]] = {
    "S": ("squeezenet1_0", 512),
    "R18a": ("resnet18", 512),
    "R50a": ("resnet50", 512),
    "R50b": ("resnet50", 2048),
    "R101a": ("resnet101", 512),
    "R152a": ("resnet152", 512),
    "R152b": ("resnet152", 2048),
}
# §4.1: "The embedding dimension for Holistic View is 512, and for Partial Views is 256."
TEACHER_EMBEDDING = {"holistic": 512, "partial": 256}
FEATSEL_CHANNELS = 512  # §4.1: "All the numbers of output channels of FeatSel blocks ... are set to 512."
GMP_KERNEL = 4          # §4.1: "The parameter of kernel size in formula 5 is set to 4."


def scaled_dim(dim: int, width: float) -> int:
    """A layer size at a width multiplier (at least 8)."""
    return max(8, int(round(dim * width)))


class Embedding(nn.Sequential):
    """The Embedding (and Mapping) block of Fig. 2 / Fig. 3: an FC layer and a BN layer."""

    def __init__(self, in_features: int, out_features: int):
        super().__init__(OrderedDict(fc=nn.Linear(in_features, out_features), bn=nn.BatchNorm1d(out_features)))
        kaiming_init(self)
        self.out_features = out_features


class FMFB(nn.Module):
    """Feature Maps Factorization Branch for one view (§3.3, Fig. 3).

    ``FeatSel`` (1×1 conv ``C → 512`` + BN + ReLU) selects the view-relevant part of the student's maps
    ``f`` as ``f^k``; stabilized GMP and an Embedding (FC + BN) map ``f^k`` to ``r^{a,k}`` of the teacher's
    SR size. :meth:`maps` returns ``f^k`` (Fig. 4's attention is its channel-wise L1 norm).
    """

    def __init__(self, in_channels: int, out_dim: int, channels: int = FEATSEL_CHANNELS, kernel: int = GMP_KERNEL):
        super().__init__()
        self.featsel = nn.Sequential(OrderedDict(conv=nn.Conv2d(in_channels, channels, 1, bias=False),
                                                 bn=nn.BatchNorm2d(channels), relu=nn.ReLU(inplace=True)))
        kaiming_init(self.featsel)
        self.pool = StabilizedGMP(kernel)
        self.embedding = Embedding(channels, out_dim)

    def maps(self, f: torch.Tensor) -> torch.Tensor:
        return self.featsel(f)

    def forward(self, f: torch.Tensor) -> torch.Tensor:
        return self.embedding(self.pool(self.featsel(f)))


class RFB(nn.Module):
    """Representation Factorization Branch for one view (§3.4, Fig. 3).

    ``FeatSel`` (FC ``D → 512`` + BN + ReLU; omitted for the holistic view: "RFB for Holistic View has no
    FeatSel block") then ``Mapping`` (FC + BN) from the student's representation ``r`` to ``r^{m,k}``.
    """

    def __init__(self, in_dim: int, out_dim: int, featsel: bool = True, channels: int = FEATSEL_CHANNELS):
        super().__init__()
        if featsel:
            self.featsel = nn.Sequential(OrderedDict(fc=nn.Linear(in_dim, channels), bn=nn.BatchNorm1d(channels),
                                                     relu=nn.ReLU(inplace=True)))
            kaiming_init(self.featsel)
            in_dim = channels
        else:
            self.featsel = nn.Identity()
        self.mapping = Embedding(in_dim, out_dim)

    def forward(self, r: torch.Tensor) -> torch.Tensor:
        return self.mapping(self.featsel(r))


class FDNet(ReIDModel):
    """The single-view re-ID network of Fig. 2 (teachers and students), with optional FMFBs/RFBs.

    Parameters
    ----------
    num_classes: training identities (the FC classifier's outputs).
    backbone: maps images to ``f = [B, C, h, w]`` and has ``out_channels = C``.
    embedding_dim: size of ``r`` (the Embedding block's FC + BN).
    name: e.g. ``"R18a"`` or ``"teacher:up1"`` (for tables).

    ``eval()`` mode: ``forward(x) = r`` ``[B, embedding_dim]`` (the paper averages it with the flipped
    image's and ranks by cosine distance, §4.1 "Verification Method": hence ``metric = "cosine"``).
    ``train()`` mode: ``{"logits": [z], "embedding": r}`` plus, once :meth:`add_branches` was called,
    ``"attr": [r^{a,k} for k in views]`` and ``"metric": [r^{m,k} for k in views]`` in :attr:`view_names` order.
    """

    metric = "cosine"

    def __init__(self, num_classes: int, backbone: nn.Module, embedding_dim: int, name: str = "fd"):
        super().__init__()
        self.backbone = backbone
        self.pool = StabilizedGMP(GMP_KERNEL)
        self.embedding = Embedding(backbone.out_channels, embedding_dim)
        self.classifier = nn.Linear(embedding_dim, num_classes)
        classifier_init(self.classifier)
        self.feature_dim = embedding_dim
        self.num_classes = num_classes
        self.name = name
        self.view_names: list[str] = []
        self.fmfb: nn.ModuleDict | None = None
        self.rfb: nn.ModuleDict | None = None

    # -- distillation branches -----------------------------------------------------------------
    def add_branches(self, sr_dims: Mapping[str, int], featsel_channels: int = FEATSEL_CHANNELS) -> "FDNet":
        """Attach one FMFB and one RFB per view (``{view: SR dimension}``, in the store's order). New layers
        are Kaiming-initialised; the student itself is untouched (§3.6: it starts from the initial student)."""
        self.view_names = list(sr_dims)
        c, d = self.backbone.out_channels, self.feature_dim
        self.fmfb = nn.ModuleDict({k: FMFB(c, int(n), featsel_channels) for k, n in sr_dims.items()})
        self.rfb = nn.ModuleDict({k: RFB(d, int(n), featsel=(k != "holistic"), channels=featsel_channels)
                                  for k, n in sr_dims.items()})
        return self

    @property
    def has_branches(self) -> bool:
        return self.fmfb is not None

    def deploy(self) -> "FDNet":
        """A copy without FMFBs and RFBs — the plain holistic student (§3.6: they are for training only)."""
        saved = {k: self._modules.pop(k, None) for k in ("fmfb", "rfb")}
        try:
            deployed = copy.deepcopy(self)
        finally:
            self._modules.update(saved)
        deployed._modules["fmfb"] = None
        deployed._modules["rfb"] = None
        deployed.view_names = []
        return deployed.train(self.training)

    # -- forward ---------------------------------------------------------------------------------
    def feature_maps(self, x: torch.Tensor) -> torch.Tensor:
        """The backbone's maps ``f`` ``[B, C, h, w]`` (stride 16)."""
        return self.backbone(x)

    def represent(self, f: torch.Tensor) -> torch.Tensor:
        """``r = Embedding(StabilizedGMP(f))``."""
        return self.embedding(self.pool(f))

    def view_maps(self, x: torch.Tensor) -> "OrderedDict[str, torch.Tensor]":
        """``f^k`` of every FMFB (Fig. 4), plus the student's own ``f`` under ``"student"``."""
        if not self.has_branches:
            raise RuntimeError(f"{self.name} has no FMFBs; call add_branches(...) (or use a distilled student "
                               "before deploy())")
        f = self.feature_maps(x)
        out = OrderedDict((k, self.fmfb[k].maps(f)) for k in self.view_names)
        out["student"] = f
        return out

    def forward(self, x: torch.Tensor):
        f = self.feature_maps(x)
        r = self.represent(f)
        if not self.training:
            return r
        out = {"logits": [self.classifier(r)], "embedding": r}
        if self.has_branches:
            out["attr"] = [self.fmfb[k](f) for k in self.view_names]
            out["metric"] = [self.rfb[k](r) for k in self.view_names]
        return out

    def stage_modules(self) -> "OrderedDict[str, list[nn.Module]]":
        out = OrderedDict(stage_modules_of(self.backbone))
        out["embedding"] = [self.embedding]
        out["classifier"] = [self.classifier]
        if self.has_branches:
            out["fmfb"] = [self.fmfb]
            out["rfb"] = [self.rfb]
        return out


# ----------------------------------------------------------------------------------------------
# Builders (registry: fd_student, fd_teacher)
# ----------------------------------------------------------------------------------------------
def build_student(num_classes: int, width: float = 1.0, pretrained=None, arch: str = "R18a",
                  embedding_dim: int | None = None,
                  sr_dims: Mapping[str, int] | None = None, featsel_channels: int | None = None) -> FDNet:
    """A Table 1 student (``arch`` in S, R18a, R50a, R50b, R101a, R152a, R152b) at channel multiplier ``width``.

    ``pretrained`` goes to the backbone (None, ``"imagenet"``, a path or a state dict). ``sr_dims`` (a
    ``{view: SR dimension}`` dict) attaches the FMFBs and RFBs for distillation.
    """
    if arch not in STUDENTS:
        raise KeyError(f"unknown FD student {arch!r}; Table 1 has {', '.join(STUDENTS)}")
    w = float(width)
    backbone_arch, dim = STUDENTS[arch]
    backbone = build_backbone(backbone_arch, width=w, last_stride=1, pretrained=pretrained)
    net = FDNet(num_classes, backbone, embedding_dim or scaled_dim(dim, w), name=arch)
    if sr_dims:
        net.add_branches(sr_dims, featsel_channels or scaled_dim(FEATSEL_CHANNELS, w))
    return net


def build_teacher(num_classes: int, width: float = 1.0, pretrained=None, arch: str = "resnet101",
                  view: str = "holistic", embedding_dim: int | None = None) -> FDNet:
    """The teacher of one view (§3.1, §4.1): ``arch`` (ResNet-101/152 in the paper) with last stride 1,
    stabilized GMP and a 512-d (holistic) or 256-d (partial) embedding, scaled by the width."""
    from ..data.views import VIEW_BANDS

    if view not in VIEW_BANDS:
        raise KeyError(f"unknown view {view!r}; FD's views are {', '.join(VIEW_BANDS)}")
    w = float(width)
    backbone = build_backbone(arch, width=w, last_stride=1, pretrained=pretrained)
    dim = embedding_dim or scaled_dim(TEACHER_EMBEDDING["holistic" if view == "holistic" else "partial"], w)
    net = FDNet(num_classes, backbone, dim, name=f"teacher:{view}")
    net.view = view
    return net


def student_param_table(arches: Sequence[str] = tuple(STUDENTS), width: float = 1.0) -> "OrderedDict[str, int]":
    """Parameters of each student without its classifier (Table 1 / Table 3's "Param" column)."""
    def without_classifier(net: nn.Module) -> int:
        return sum(p.numel() for n, p in net.named_parameters() if not n.startswith("classifier"))

    with torch.device("meta"):  # shapes only: no memory, no initialisation cost
        return OrderedDict((a, without_classifier(build_student(1, width=width, arch=a))) for a in arches)


# ----------------------------------------------------------------------------------------------
# The paper's own numbers (Market-1501), typed in once here; chapters and claims read them
# ----------------------------------------------------------------------------------------------
#: Factorized Distillation's tables on Market-1501 — the *paper's* numbers, never ours. Table 1: students'
#: parameters (M, classifier excluded); Table 3: ResNet-101 teachers, each on its own view, and students
#: without / with FD; Tables 7 (losses) and 8 (teachers): the R50b student. Rank-1 and mAP in %.
PAPER_MARKET = {
    1: {"columns": ["model", "backbone", "embedding", "params_M"],
        "rows": [["S", "SqueezeNet", 512, 1.0], ["R18a", "ResNet-18", 512, 11.4], ["R50a", "ResNet-50", 512, 24.6],
                 ["R50b", "ResNet-50", 2048, 27.7], ["R101a", "ResNet-101", 512, 43.5],
                 ["R152a", "ResNet-152", 512, 59.2], ["R152b", "ResNet-152", 2048, 62.3]]},
    3: {"columns": ["model", "rank1", "mAP"],
        "rows": [["holistic", 91.95, 81.27], ["up1", 73.93, 47.23], ["mid1", 76.78, 56.77], ["dn1", 71.64, 52.45],
                 ["up2", 69.92, 43.79], ["mid2", 62.08, 40.32], ["dn2", 45.37, 27.42],
                 ["S", 82.45, 62.40], ["S+FD", 91.48, 77.92], ["R18a", 87.83, 70.73], ["R18a+FD", 93.11, 82.50]]},
    7: {"columns": ["model", "rank1", "mAP"],
        "rows": [["L_cls", 90.94, 78.2], ["L_cls + L_attr", 93.32, 84.69], ["L_cls + L_metric", 92.96, 83.76],
                 ["L_cls + L_attr + L_metric", 94.18, 85.08]]},
    8: {"columns": ["model", "rank1", "mAP"],
        "rows": [["None", 90.94, 78.2], ["Hol", 92.1, 82.64], ["Hol+PartialG1", 93.82, 84.4],
                 ["Hol+PartialG1+PartialG2", 94.18, 85.08]]},
}


def paper_table(n: int):
    """FD's Table ``n`` ∈ {1, 3, 7, 8} on Market-1501 as a ``pandas.DataFrame`` indexed by model (the
    *paper's* numbers: :data:`PAPER_MARKET`; Table 3 holds the ResNet-101 teachers and the S and R18a rows)."""
    import pandas as pd

    if n not in PAPER_MARKET:
        raise ValueError(f"paper_table: FD's tables {sorted(PAPER_MARKET)} are stored, not {n}")
    t = PAPER_MARKET[n]
    return pd.DataFrame(t["rows"], columns=t["columns"]).set_index("model")
