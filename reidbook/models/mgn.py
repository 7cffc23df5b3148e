"""Multiple Granularity Network (MGN) and the variants of its ablation study.

Wang, Yuan, Chen, Li, Zhou, "Learning Discriminative Features with Multiple Granularities for
Person Re-Identification", ACM MM 2018 (paper 001 in ``../shared/papers``).

Architecture (§3.1, Fig. 3, Table 1)
  * A ResNet-50 trunk shared up to and including ``res_conv4_1`` (torchvision ``layer3[0]``).
  * Branches, each a *deep copy* of the rest of conv4 (``layer3[1:]``) and of conv5 (``layer4``),
    all starting from the same pretrained weights (§4.1):
      - **Global**: conv5 keeps its stride-2 down-sampling → a 12×4 map at 384×128;
      - **Part-N** (N = 2, 3): no down-sampling in ``res_conv5_1`` → a 24×8 map, split into N stripes.
  * Global max pooling (GMP) of each branch's map gives ``z_g`` (2048-d); GMP of each horizontal
    stripe of a part map gives ``z_p``.
  * Eight *separate* reductions (1×1 conv 2048→256 + BN + ReLU, no shared weights) give
    ``f_g^G, f_g^P2, f_g^P3`` and the five part features ``f_p``.

Losses (§3.2, "classification before metric")
  * Softmax with bias-free classifiers, Eq. (1), on the three **2048-d** ``z_g`` and the five
    256-d ``f_p`` (8 classifiers, none shared).
  * Batch-hard triplet, Eq. (2), margin α = 1.2 (§4.1), on the three 256-d ``f_g``; no triplet on parts.
  * "MGN w/o TP" (Table 5, §4.4 "Triplet Loss") drops the triplets and puts the softmax on the
    reduced 256-d ``f_g`` instead of ``z_g``.
  * As term specs: :func:`reidbook.presets.mgn.loss_specs` (the model gives the outputs, the preset
    the recipe).

Test-time feature (§3.1, §4.1): the concatenation of all reduced features (8 × 256 = 2048-d for MGN);
averaging with the horizontally flipped image is done by ``reidbook.engine.extract_features``.

One class, :class:`MGN`, builds MGN and every Table 5 variant from a list of :class:`BranchSpec`
(``VARIANTS``). A single-branch MGN *is* a single network: trunk + one branch = a ResNet-50, which is
what Table 5's "(Single)" rows are.

Departures from the paper, all for the laptop profiles only: at ``width < 1`` every channel count of
the ResNet (2048 → 2048·width) **and** the reduction size (256 → 256·width, option ``reduce_dim``) are
scaled by the width multiplier; the topology (branches, strides, parts, losses) never changes.
"""
from __future__ import annotations

import copy
from collections import OrderedDict
from dataclasses import dataclass

import torch
from torch import nn

from .backbones import load_pretrained, resnet50
from .base import ReIDModel
from .layers import GlobalMaxPool, Reduction, classifier_init, horizontal_stripes

__all__ = ["BranchSpec", "VARIANTS", "VARIANT_LABELS", "MGN", "build", "branch_table"]


@dataclass(frozen=True)
class BranchSpec:
    """One branch of MGN.

    ``name``: module key (``"global"``, ``"part2"`` …); ``parts``: horizontal stripes of its map
    (1 = global only, Table 1's "Part No."); ``downsample``: keep the stride-2 ``res_conv5_1``
    (True for the Global branch, False for Part-N branches, §3.1).
    """

    name: str
    parts: int
    downsample: bool

    def __post_init__(self):
        if self.parts < 1:
            raise ValueError(f"branch {self.name!r}: parts must be ≥ 1, got {self.parts}")
        if not self.name.isidentifier():
            raise ValueError(f"branch name {self.name!r} must be a Python identifier (it names modules)")


GLOBAL = BranchSpec("global", 1, True)


def part(n: int) -> BranchSpec:
    """A Part-N branch: N stripes, no down-sampling in ``res_conv5_1`` (§3.1)."""
    return BranchSpec(f"part{n}", n, False)


# Table 5's rows that are a network of their own. "ResNet-50" (softmax only) is the course's
# ``baseline`` model; the "(Branch)" rows are slices of a trained MGN's feature (see
# ``MGN.embedding_slices``); "G+P2+P3 (Single)" concatenates the three single networks' features.
VARIANTS: dict[str, dict] = {
    "mgn": dict(branches=(GLOBAL, part(2), part(3))),
    "global": dict(branches=(GLOBAL,)),            # "Global (Single)" = "ResNet-50+TP"
    "part2": dict(branches=(part(2),)),            # "Part-2 (Single)"
    "part3": dict(branches=(part(3),)),            # "Part-3 (Single)"
    "mgn_wo_part3": dict(branches=(GLOBAL, part(2))),
    "mgn_part4": dict(branches=(GLOBAL, part(2), part(3), part(4))),
    "part2+4": dict(branches=(GLOBAL, part(2), part(4))),
    "part3+4": dict(branches=(GLOBAL, part(3), part(4))),
    "mgn_wo_tp": dict(branches=(GLOBAL, part(2), part(3)), triplet=False, softmax_on_reduced=True),
}

VARIANT_LABELS: dict[str, str] = {
    "mgn": "MGN", "global": "Global (Single) = ResNet-50+TP", "part2": "Part-2 (Single)",
    "part3": "Part-3 (Single)", "mgn_wo_part3": "MGN w/o Part-3", "mgn_part4": "MGN w/ Part-4",
    "part2+4": "MGN (Part2+4)", "part3+4": "MGN (Part3+4)", "mgn_wo_tp": "MGN w/o TP",
}


def _variant(name: str) -> dict:
    if name not in VARIANTS:
        raise KeyError(f"unknown MGN variant {name!r}; variants are {', '.join(VARIANTS)}")
    return {"triplet": True, "softmax_on_reduced": False, **VARIANTS[name]}


def _no_downsampling(layer4: nn.Sequential) -> nn.Sequential:
    """Set ``res_conv5_1``'s strides to 1 (3×3 conv and projection shortcut); weights are unchanged,
    so pretrained weights still apply (§3.1: "no down-sampling operations in res_conv5_1 block")."""
    first = layer4[0]
    first.conv2.stride = (1, 1)  # torchvision's Bottleneck (v1.5) strides the 3×3 conv
    if first.downsample is not None:
        first.downsample[0].stride = (1, 1)
    return layer4


class MGN(ReIDModel):
    """MGN with any list of branches (MGN §3.1, Fig. 3; Table 5 variants).

    ``forward`` in ``eval()`` mode returns the test feature ``[B, D]``: every reduced feature,
    concatenated branch by branch (``f_g`` then ``f_p1 … f_pN``), ``D = 256 · Σ(1 + N_parts>1)``.

    In ``train()`` mode it returns a dict:
      * ``"logits"``: list of ``[B, num_classes]``, one per classifier, in ``self.feature_names``
        order (softmax on ``z_g`` for global features, on ``f_p`` for parts; on ``f_g`` when
        ``softmax_on_reduced``);
      * ``"triplet"``: list of the branches' reduced global features ``f_g`` ``[B, 256]``;
      * ``"features"``: the concatenated embedding ``[B, D]`` (as at test time, train-mode BN).
    """

    def __init__(self, num_classes: int, branches=VARIANTS["mgn"]["branches"], width: float = 1.0,
                 reduce_dim: int | None = None, softmax_on_reduced: bool = False, triplet: bool = True,
                 pretrained=None):
        super().__init__()
        branches = tuple(branches)
        if not branches:
            raise ValueError("MGN needs at least one branch")
        names = [b.name for b in branches]
        if len(set(names)) != len(names):
            raise ValueError(f"branch names must be unique, got {names}")
        self.specs = OrderedDict((b.name, b) for b in branches)
        self.num_classes, self.width = num_classes, width
        self.softmax_on_reduced, self.triplet = softmax_on_reduced, triplet

        # 1) Build and load the backbone *before* copying branches (§4.1: every branch starts from
        #    the same pretrained weights of the layers after res_conv4_1).
        backbone = resnet50(width=width, last_stride=2)
        if pretrained is not None:
            load_pretrained(backbone, pretrained, arch="resnet50")
        # 2) Shared trunk: conv1 … conv3 and res_conv4_1 (torchvision names, so state dicts read alike).
        self.trunk = nn.Sequential(OrderedDict(
            conv1=backbone.conv1, bn1=backbone.bn1, relu=backbone.relu, maxpool=backbone.maxpool,
            layer1=backbone.layer1, layer2=backbone.layer2,
            layer3=nn.Sequential(OrderedDict([("0", backbone.layer3[0])])),
        ))
        # 3) Branches: deep copies of res_conv4_2 … res_conv4_6 and conv5 (keys layer3.1 … layer3.5).
        rest4 = nn.Sequential(OrderedDict((str(i), blk) for i, blk in enumerate(backbone.layer3) if i > 0))
        self.branches = nn.ModuleDict()
        for spec in branches:
            layer4 = copy.deepcopy(backbone.layer4)
            if not spec.downsample:
                _no_downsampling(layer4)
            self.branches[spec.name] = nn.Sequential(OrderedDict(layer3=copy.deepcopy(rest4), layer4=layer4))

        # 4) Heads: one reduction and one bias-free classifier per feature, none shared (Fig. 3 caption).
        c = backbone.out_channels
        self.in_dim = c
        self.reduce_dim = reduce_dim if reduce_dim is not None else max(8, int(round(256 * width)))
        self.pool = GlobalMaxPool()
        self.feature_names: list[str] = []
        for spec in branches:
            self.feature_names.append(f"{spec.name}_g")
            if spec.parts > 1:
                self.feature_names += [f"{spec.name}_p{i + 1}" for i in range(spec.parts)]
        self.reductions = nn.ModuleDict({n: Reduction(c, self.reduce_dim) for n in self.feature_names})
        self.classifiers = nn.ModuleDict()
        for n in self.feature_names:
            on_z = n.endswith("_g") and not softmax_on_reduced  # 2048-d z_g, else 256-d f
            dim = c if on_z else self.reduce_dim
            self.classifiers[n] = nn.Linear(dim, num_classes, bias=False)  # Eq. (1): no bias, after [38]
            classifier_init(self.classifiers[n])
        self.feature_dim = self.reduce_dim * len(self.feature_names)

    # ------------------------------------------------------------------ pieces of the forward pass
    def branch_maps(self, x: torch.Tensor) -> "OrderedDict[str, torch.Tensor]":
        """Each branch's output map ``[B, C, h, w]`` (res_conv5_3 of that branch), by branch name."""
        shared = self.trunk(x)
        return OrderedDict((name, branch(shared)) for name, branch in self.branches.items())

    def pooled(self, maps: "dict[str, torch.Tensor]") -> "OrderedDict[str, torch.Tensor]":
        """GMP of every map (``z_g``) and of every stripe of the part maps (``z_p``), by feature name."""
        z: OrderedDict[str, torch.Tensor] = OrderedDict()
        for name, spec in self.specs.items():
            z.update(self.pooled_branch(maps[name], spec))
        return z

    def pooled_branch(self, m: torch.Tensor, spec: BranchSpec) -> "OrderedDict[str, torch.Tensor]":
        """``z_g`` = GMP of the whole map; for a Part-N branch also ``z_p1 … z_pN`` = GMP of N stripes."""
        z = OrderedDict([(f"{spec.name}_g", self.pool(m))])
        if spec.parts > 1:
            for i, zp in enumerate(horizontal_stripes(m, spec.parts, pool="max")):
                z[f"{spec.name}_p{i + 1}"] = zp
        return z

    def reduced(self, z: "dict[str, torch.Tensor]") -> "OrderedDict[str, torch.Tensor]":
        """The 1×1 reductions ``f = ReLU(BN(W z))`` (2048 → 256), one per feature."""
        return OrderedDict((n, self.reductions[n](z[n])) for n in self.feature_names)

    def forward_all(self, x: torch.Tensor) -> dict:
        """Every intermediate: ``maps``, ``z`` (pooled) and ``f`` (reduced), each keyed by name."""
        maps = self.branch_maps(x)
        z = self.pooled(maps)
        return {"maps": maps, "z": z, "f": self.reduced(z)}

    def forward(self, x: torch.Tensor):
        out = self.forward_all(x)
        z, f = out["z"], out["f"]
        emb = torch.cat([f[n] for n in self.feature_names], dim=1)
        if not self.training:
            return emb
        logits = []
        for n in self.feature_names:
            # §3.2: softmax on 2048-d z_g (global) and on 256-d f_p (parts); "w/o TP" on 256-d f_g.
            src = z[n] if (n.endswith("_g") and not self.softmax_on_reduced) else f[n]
            logits.append(self.classifiers[n](src))
        return {"logits": logits, "triplet": [f[f"{b}_g"] for b in self.specs], "features": emb}

    # ------------------------------------------------------------------ descriptions
    def embedding_slices(self) -> "OrderedDict[str, slice]":
        """Where each branch's features lie in the test embedding (Table 5's "(Branch)" rows)."""
        out, start = OrderedDict(), 0
        for name, spec in self.specs.items():
            n = 1 + (spec.parts if spec.parts > 1 else 0)
            out[name] = slice(start, start + n * self.reduce_dim)
            start += n * self.reduce_dim
        return out

    def branch_embedding(self, x: torch.Tensor, branch: str) -> torch.Tensor:
        """One branch's part of the embedding, computing only the trunk and that branch (Grad-CAM)."""
        spec = self.specs[branch]
        m = self.branches[branch](self.trunk(x))
        z = self.pooled_branch(m, spec)
        return torch.cat([self.reductions[n](v) for n, v in z.items()], dim=1)

    def stage_modules(self) -> "OrderedDict[str, list[nn.Module]]":
        """Named stages for the profiler: the shared trunk, each branch, the reductions, the classifiers."""
        t = self.trunk
        out = OrderedDict(conv1=[t.conv1, t.bn1], conv2=[t.layer1], conv3=[t.layer2], conv4_1=[t.layer3])
        for name, branch in self.branches.items():
            out[f"branch:{name}"] = [branch]
        out["reductions"] = [self.reductions]
        out["classifiers"] = [self.classifiers]
        return out


def build(num_classes: int, width: float = 1.0, pretrained=None, variant: str = "mgn",
          branches=None, reduce_dim: int | None = None,
          softmax_on_reduced: bool | None = None, triplet: bool | None = None) -> MGN:
    """Registry builder (``build_model("mgn", ...)``).

    ``variant`` names a Table 5 setting (``VARIANTS``); ``branches`` (a list of :class:`BranchSpec` or
    ``(name, parts, downsample)`` tuples) overrides it, e.g. for the exercises. ``width`` is the
    channel multiplier (``build_model`` passes the profile's). ``pretrained``: ``None``, ``"imagenet"``, a
    path or a torchvision-style ResNet-50 state dict, loaded before the branches are copied.
    """
    cfg = _variant(variant)
    if branches is not None:
        cfg["branches"] = tuple(b if isinstance(b, BranchSpec) else BranchSpec(*b) for b in branches)
    if softmax_on_reduced is not None:
        cfg["softmax_on_reduced"] = softmax_on_reduced
    if triplet is not None:
        cfg["triplet"] = triplet
    return MGN(num_classes, cfg["branches"], width=float(width), reduce_dim=reduce_dim,
               softmax_on_reduced=cfg["softmax_on_reduced"], triplet=cfg["triplet"], pretrained=pretrained)


@torch.no_grad()
def branch_table(model: MGN, input_size=(384, 128)) -> list[dict]:
    """MGN's Table 1 computed from a model: per branch its parts, output map size, feature dims, features.

    At 384×128 and width 1 this reproduces the paper's table (Global 12×4, 256; Part-2 24×8, 256·2+256; …).
    """
    was = model.training
    model.eval()
    try:
        p = next(model.parameters())
        maps = model.branch_maps(torch.zeros(1, 3, *input_size, device=p.device, dtype=p.dtype))
    finally:
        model.train(was)
    rows = []
    d = model.reduce_dim
    for name, spec in model.specs.items():
        h, w = maps[name].shape[2:]
        n_parts = spec.parts if spec.parts > 1 else 0
        label = "Global" if name == "global" else name.replace("part", "Part-")
        feats = [f"f_g^{label}"] + ([f"f_p{i + 1}^{label}" for i in range(n_parts)] if n_parts else [])
        rows.append({"Branch": label, "Part No.": spec.parts, "Map Size": f"{h} × {w}",
                     "Channels": maps[name].shape[1],
                     "Dims": f"{d}" if not n_parts else f"{d}*{n_parts}+{d}",
                     "Total dims": d * (1 + n_parts), "Feature": ", ".join(feats)})
    return rows
