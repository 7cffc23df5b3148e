"""Deep Anytime Re-ID (DaRe): an embedding after every stage, fused, each one trained.

Paper 004: Y. Wang, L. Wang, Y. You, X. Zou, V. Chen, S. Li, G. Huang, B. Hariharan, K. Q. Weinberger,
"Resource Aware Person Re-identification across Multiple Resolutions" (CVPR 2018), code name DaRe.

Architecture (§3.1, Fig. 2). A ResNet-50 (or DenseNet-201: DaRe(De), §5) has four stages after its
stem, each halving the resolution (``conv2`` … ``conv5`` in He et al.'s naming, ``layer1`` …
``layer4`` in torchvision's). After stage ``s`` a **head** maps the stage's feature map to an
embedding ``φ_s``:

    global average pooling → FC 1024 + BN + ReLU → FC 128          (§3.1)

and the test-time embedding is the **fusion**

    φ_fusion(x) = Σ_{s=1}^{4} w_s φ_s(x)                            (Eq. 1)

with four learnable scalars ``w_s``. Training (§3.2, Eq. 2) puts a batch-hard soft-margin triplet
loss on every ``φ_s`` (*deep supervision*) and on ``φ_fusion`` and sums them; see
:func:`reidbook.presets.dare.loss_specs` and ``reidbook.losses.batch_hard_triplet_loss(..., soft=True)``.

Outputs (CONTRIBUTING.md, "Models"):
  * ``train()``: ``{"stages": [φ_1, φ_2, φ_3, φ_4], "fusion": φ_fusion}`` — the five embeddings;
  * ``eval()``: ``φ_fusion`` ``[B, 128]``;
  * :meth:`DaRe.anytime` (any mode): run the backbone stage by stage and **stop after stage
    ``upto``**, returning ``[φ_1, …, φ_upto]``; later stages are never run (§4.1, anytime re-ID).
    :meth:`DaRe.exit_embedding` turns them into the embedding an exit uses (``φ_s``, or the fusion
    once all four stages have run, as in Fig. 2's caption).

Departures from the paper, and why:
  * The paper's text says "1204 units" for the first FC layer; that is a typo for 1024 (the
    released code and the parameter count, 27.98 M for ResNet-50, both say 1024). The first FC
    keeps its bias (the count includes it) even though BN follows.
  * The paper does not say how ``w_s`` start; we start them at ``1/4`` (the fusion is then the mean
    of the stage embeddings, on the same scale as each of them). The paper reports learnt weights of
    −0.54, −0.73, −0.77, −0.51 on Market-1501 with random erasing (§5.2): only their ratios matter.
  * ``width`` (a channel multiplier for the ``quick``/``smoke`` profiles) shrinks the backbone and
    the heads' 1024 hidden units alike (but never below 128); the 128-d embedding is kept.
"""
from __future__ import annotations

from collections import OrderedDict
from typing import Sequence

import torch
from torch import nn

from .base import AnytimeModel, Backbone, ReIDModel, feature_dim_of, metric_of, stage_modules_of
from .layers import GlobalAvgPool, kaiming_init

__all__ = ["DaRe", "EmbeddingHead", "TenCropEmbedding", "build", "build_backbone", "DARE_STAGES", "ARCHS"]

# The four stages DaRe taps (He et al.'s conv2_x … conv5_x), in the backbone's naming.
DARE_STAGES = ("conv2", "conv3", "conv4", "conv5")
ARCHS = ("resnet18", "resnet34", "resnet50", "resnet101", "resnet152", "densenet201")


class EmbeddingHead(nn.Module):
    """DaRe's per-stage head (§3.1): ``GAP → Linear(C, hidden) + BN + ReLU → Linear(hidden, dim)``.

    The two FC layers only bring every stage to a common embedding size (§3.1). The same head ends
    each member of the sequential-ensemble baseline.
    """

    def __init__(self, in_channels: int, hidden: int = 1024, dim: int = 128):
        super().__init__()
        self.pool = GlobalAvgPool()
        self.fc1 = nn.Linear(in_channels, hidden)
        self.bn = nn.BatchNorm1d(hidden)
        self.relu = nn.ReLU(inplace=True)
        self.fc2 = nn.Linear(hidden, dim)
        kaiming_init(self)

    def forward(self, fmap: torch.Tensor) -> torch.Tensor:
        return self.fc2(self.relu(self.bn(self.fc1(self.pool(fmap)))))


class DaRe(AnytimeModel):
    """Deep Anytime Re-ID (paper 004, §3, Fig. 2, Eq. 1). See the module docstring.

    Parameters
    ----------
    backbone: a backbone with ``forward_stages(x, upto)`` and ``stage_channels`` naming ``conv1`` …
        ``conv5`` (our ResNets and DenseNet-201, :mod:`reidbook.models.backbones`).
    hidden, dim: the heads' hidden units (1024) and embedding size (128).

    With or without deep supervision the architecture is the same; only the loss differs
    (:func:`reidbook.presets.dare.loss_specs`).
    """

    def __init__(self, backbone: nn.Module, hidden: int = 1024, dim: int = 128, stages: Sequence[str] = DARE_STAGES):
        super().__init__()
        missing = [s for s in stages if s not in (backbone.stage_channels if isinstance(backbone, Backbone) else {})]
        if missing:
            raise ValueError(f"DaRe needs a backbone with stages {list(stages)}; "
                             f"{type(backbone).__name__} lacks {missing}")
        self.backbone = backbone
        self.stage_names = tuple(stages)
        self.heads = nn.ModuleList(EmbeddingHead(backbone.stage_channels[s], hidden, dim) for s in self.stage_names)
        # Eq. (1)'s learnable scalars w_s (start: the mean of the stage embeddings; see module docstring).
        self.fusion_weights = nn.Parameter(torch.full((len(self.stage_names),), 1.0 / len(self.stage_names)))
        self.feature_dim = dim
        self.num_exits = len(self.stage_names)

    has_fusion = True  # the last exit uses Eq. (1)'s fusion of all stage embeddings

    def exit_names(self) -> list[str]:
        """``stage 1`` … ``stage S-1``, ``stage S (fusion)``: the last exit ranks with the fusion."""
        return [*(f"stage {i + 1}" for i in range(self.num_exits - 1)), f"stage {self.num_exits} (fusion)"]

    # -- the pieces ------------------------------------------------------------------------------
    def fuse(self, embeddings: Sequence[torch.Tensor]) -> torch.Tensor:
        """Eq. (1): ``φ_fusion = Σ_s w_s φ_s`` (needs all ``S`` stage embeddings)."""
        if len(embeddings) != self.num_exits:
            raise ValueError(f"the fusion needs all {self.num_exits} stage embeddings, got {len(embeddings)}")
        return sum(w * e for w, e in zip(self.fusion_weights, embeddings))

    def anytime(self, x: torch.Tensor, upto: int | None = None) -> list[torch.Tensor]:
        """Run stage by stage and stop after stage ``upto`` (1 … 4): ``[φ_1, …, φ_upto]`` (§4.1).

        Backbone stages and heads after ``upto`` are never run, so the cost is that of exit ``upto``.
        """
        upto = self.num_exits if upto is None else int(upto)
        if not 1 <= upto <= self.num_exits:
            raise ValueError(f"DaRe.anytime: upto must be a stage in 1..{self.num_exits}, got {upto}")
        fmaps = self.backbone.forward_stages(x, upto=self.stage_names[upto - 1])
        return [head(fmaps[name]) for head, name in zip(self.heads, self.stage_names[:upto])]

    def exit_embedding(self, embeddings: Sequence[torch.Tensor]) -> torch.Tensor:
        """The embedding an exit after ``len(embeddings)`` stages uses: the latest ``φ_s``, or the
        fusion once every stage has run (Fig. 2's caption: the newest embedding, the fused one after
        a full pass)."""
        return self.fuse(embeddings) if len(embeddings) == self.num_exits else embeddings[-1]

    def all_embeddings(self, x: torch.Tensor) -> list[torch.Tensor]:
        """``[φ_1, φ_2, φ_3, φ_4, φ_fusion]``: every stage's embedding and the fusion, one pass."""
        phis = self.anytime(x)
        return [*phis, self.fuse(phis)]

    def forward(self, x: torch.Tensor):
        *phis, fused = self.all_embeddings(x)
        if not self.training:
            return fused
        return {"stages": phis, "fusion": fused}

    # -- bookkeeping -----------------------------------------------------------------------------
    def stage_modules(self) -> "OrderedDict[str, list[nn.Module]]":
        """Backbone stages, then each head (for per-stage cost accounting; the S fusion weights are the
        model's own parameters, in no stage)."""
        out = OrderedDict(stage_modules_of(self.backbone))
        for i, head in enumerate(self.heads, 1):
            out[f"head{i}"] = [head]
        return out


def build_backbone(arch: str, width: float, pretrained=None) -> nn.Module:
    """A ResNet (last stride 2, as in He et al. and DaRe) or DenseNet-201 by name."""
    from . import backbones as B

    if arch == "densenet201":
        return B.densenet201(width=width, pretrained=pretrained)
    if arch in ARCHS:
        return getattr(B, arch)(width=width, last_stride=2, pretrained=pretrained)
    raise KeyError(f"DaRe has no backbone {arch!r}; choose one of {', '.join(ARCHS)}")


def build(num_classes: int, width: float = 1.0, pretrained=None, arch: str = "resnet50",
          hidden: int = 1024, dim: int = 128) -> DaRe:
    """Registry builder (``build_model("dare", ...)``): DaRe(R) with ``arch="resnet50"``, DaRe(De) with
    ``arch="densenet201"``. ``num_classes`` is unused (DaRe has no classifier: triplet losses only).
    ``width`` is the channel multiplier (``build_model`` passes the profile's); the heads' hidden size
    scales with it (at least ``dim``)."""
    w = float(width)
    backbone = build_backbone(arch, w, pretrained)
    return DaRe(backbone, hidden=max(dim, int(round(hidden * w))), dim=dim)


class TenCropEmbedding(ReIDModel):
    """Test-time 10-crop feature (§5: "the average over embedding vectors of five crops and their
    flips", following Hermans et al. and Krizhevsky et al.).

    Wraps a model whose ``eval()`` output is an embedding. Its input is the image resized to
    ``scale`` × the crop size (1.125, as in training); it returns the mean embedding of the four
    corner crops, the centre crop and their horizontal flips, each ``size = (h, w)``. Use it with
    ``extract_features(..., flip=False)`` (the flips are already inside).
    """

    def __init__(self, model: nn.Module, size: tuple[int, int]):
        super().__init__()
        self.model = model
        self.size = (int(size[0]), int(size[1]))
        self.feature_dim = feature_dim_of(model)
        self.metric = metric_of(model)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        from torchvision.transforms.v2 import functional as TF

        h, w = self.size
        if x.shape[-2] < h or x.shape[-1] < w:
            raise ValueError(f"TenCropEmbedding: images {tuple(x.shape[-2:])} are smaller than the crop {self.size}; "
                             "resize them to 1.125x the crop size first")
        crops = TF.ten_crop(x, [h, w])
        return torch.stack([self.model(c) for c in crops]).mean(0)
