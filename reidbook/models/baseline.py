"""The re-ID baseline every compression paper starts from: IDE / TriNet / "Bag of Tricks".

Three papers define what "a strong baseline" means in this course:

* **IDE** (Zheng et al., "Person Re-identification: Past, Present and Future", 2016, §4.1): an
  ImageNet CNN fine-tuned as an *identity classifier*; at test time the pooled feature (pool5) is
  the descriptor. Softmax (cross-entropy) only.
* **TriNet** (Hermans et al., "In Defense of the Triplet Loss for Person Re-ID", 2017, §3): the same
  backbone trained with the *batch-hard triplet loss* on P×K batches; the embedding is the descriptor.
* **BoT** (Luo et al., "Bag of Tricks and a Strong Baseline for Deep Person Re-ID", CVPRW 2019):
  both losses together, ``last_stride=1``, a **BN-neck** between the triplet feature and a bias-free
  classifier, label smoothing, warm-up, random erasing. The BN-neck feature is used at test time.

Architecture (one forward):
``backbone → GAP → [embedding FC+BN+ReLU] → f (triplet) → [BN-neck] → f_bn → classifier (no bias) → logits``.

Training outputs (CONTRIBUTING.md "Models"): ``{"logits": [logits], "triplet": [f]}``, lists of one
tensor so that the same criterion code handles multi-branch models. Evaluation output: ``f_bn`` if
the BN-neck is on (BoT §3.5: "we use f_i for inference"), else the pooled/embedded ``f`` (IDE, TriNet).
"""
from __future__ import annotations

from collections import OrderedDict

import torch
from torch import nn

from . import backbones as B
from .base import ReIDModel, stage_modules_of
from .layers import BNNeck, GlobalAvgPool, GlobalMaxPool, classifier_init, kaiming_init

__all__ = ["Baseline", "build", "build_backbone", "BACKBONES"]

RESNETS = ("resnet18", "resnet34", "resnet50", "resnet101", "resnet152")
BACKBONES = RESNETS + ("se_resnet50", "densenet201", "squeezenet1_0", "squeezenet1_1")


def build_backbone(arch: str, width: float = 1.0, last_stride: int = 2, pretrained=None) -> nn.Module:
    """A feature-map backbone by name (``resnet18`` … ``resnet152``, ``se_resnet50``, ``densenet201``,
    ``squeezenet1_0/1_1``).

    ``pretrained`` is ``None``, ``"imagenet"``, a path or a state dict (see
    :func:`reidbook.models.backbones.load_pretrained`). SqueezeNet has no width multiplier or last
    stride (it is already the "light" network of GraftedNet's Table 3), so those options are ignored
    for it; DenseNet ignores ``last_stride``.
    """
    if arch in RESNETS:
        return getattr(B, arch)(width=width, last_stride=last_stride, pretrained=pretrained)
    if arch == "se_resnet50":  # squeeze-and-excitation (Hu et al. 2018): the pruning survey's second PCB backbone
        from .se_resnet import se_resnet50

        return se_resnet50(width=width, last_stride=last_stride, pretrained=pretrained)
    if arch == "densenet201":
        return B.densenet201(width=width, pretrained=pretrained)
    if arch in ("squeezenet1_0", "squeezenet1_1"):
        return getattr(B, arch)(pretrained=pretrained)
    raise KeyError(f"unknown backbone arch {arch!r} for the baseline; choose one of {', '.join(BACKBONES)}")


class Baseline(ReIDModel):
    """IDE / TriNet / BoT baseline (see the module docstring for the papers and sections).

    Parameters
    ----------
    num_classes: training identities (classifier outputs).
    backbone: a module mapping images to ``[B, C, h, w]`` with ``out_channels = C``.
    embedding_dim: 0 = no embedding layer (BoT, IDE with pool5); ``D > 0`` adds ``Linear(C, D) + BN + ReLU``
        (the IDE variant with a bottleneck FC, e.g. 512 in Zheng et al.'s code; TriNet's 1024-d FC).
    bnneck: put a BN-neck (BoT §3.5) between the triplet feature and the classifier.
    pool: ``"avg"`` (all three papers) or ``"max"``.
    """

    def __init__(self, num_classes: int, backbone: nn.Module, embedding_dim: int = 0, bnneck: bool = True,
                 pool: str = "avg", metric: str = "euclidean"):
        super().__init__()
        if pool not in ("avg", "max"):
            raise ValueError(f"pool must be 'avg' or 'max', got {pool!r}")
        if metric not in ("euclidean", "cosine"):
            raise ValueError(f"metric must be 'euclidean' or 'cosine', got {metric!r}")
        # BoT §3.5 / its code (TEST.FEAT_NORM): the BN-neck feature, L2-normalised, i.e. ranked by cosine
        self.metric = metric
        self.backbone = backbone
        self.pool = GlobalAvgPool() if pool == "avg" else GlobalMaxPool()
        dim = backbone.out_channels
        if embedding_dim:
            self.embedding = nn.Sequential(nn.Linear(dim, embedding_dim, bias=False),
                                           nn.BatchNorm1d(embedding_dim), nn.ReLU(inplace=True))
            kaiming_init(self.embedding)
            dim = embedding_dim
        else:
            self.embedding = nn.Identity()
        self.neck = BNNeck(dim) if bnneck else nn.Identity()
        # Bias-free classifier (BoT §3.5: a bias would shift the class hyper-planes away from the
        # origin that the BN-neck's normalised feature is centred on).
        self.classifier = nn.Linear(dim, num_classes, bias=False)
        classifier_init(self.classifier)
        self.feature_dim = dim
        self.num_classes = num_classes
        self.bnneck = bool(bnneck)

    def features(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """``(f, f_bn)``: the pooled (embedded) feature and its BN-neck version."""
        f = self.embedding(self.pool(self.backbone(x)))
        return f, self.neck(f)

    def forward(self, x: torch.Tensor):
        f, f_bn = self.features(x)
        if not self.training:
            return f_bn  # identical to f when bnneck=False
        return {"logits": [self.classifier(f_bn)], "triplet": [f]}

    def stage_modules(self) -> "OrderedDict[str, list[nn.Module]]":
        """Backbone stages plus ``head`` (embedding, neck, classifier) for per-stage cost accounting."""
        out = OrderedDict(stage_modules_of(self.backbone))
        out["head"] = [self.embedding, self.neck, self.classifier]
        return out


def build(num_classes: int, width: float = 1.0, pretrained=None, arch: str = "resnet50",
          last_stride: int = 1, embedding_dim: int = 0, bnneck: bool = True, pool: str = "avg",
          metric: str = "euclidean") -> Baseline:
    """Registry builder (``build_model("baseline", ...)``, which passes the profile's ``width``);
    ``last_stride=1`` and ``bnneck=True`` are BoT's choices (pass ``last_stride=2, bnneck=False`` for
    the plain IDE/TriNet network); ``metric="cosine"`` ranks by the normalised feature (BoT's test setting)."""
    backbone = build_backbone(arch, width=float(width), last_stride=last_stride, pretrained=pretrained)
    return Baseline(num_classes, backbone, embedding_dim=embedding_dim, bnneck=bnneck, pool=pool, metric=metric)
