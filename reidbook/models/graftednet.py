"""GraftedNet: a ResNet-50 rootstock grafted with a SqueezeNet-style scion (paper 000).

Wang, Xie, Li, Zhang, "GraftedNet: A Light-weighted and High-accuracy Network for Person
Re-identification" (``../shared/papers/000_*.txt``). Read this file beside §3 of the paper.

Architecture (§3.1, Fig. 2–3)
  * **Rootstock** (§3): ResNet-50's ``res_conv1x``–``res_conv3x`` (torchvision ``conv1 … layer2``),
    1.445 M parameters, a 512-channel map at stride 8. Its weights come from a pre-trained ResNet-50
    that is loaded *before* it is cut (the accompanying branch takes the rest of that same network).
  * **Scion** (§3.2, Fig. 3): ``fire_conv4a``–``fire_conv4f``, six fire modules (squeeze 1×1 → 64,
    expand 1×1 → 256 and 3×3 → 256, concatenated = 512 channels) and ``fire_conv5a``–``fire_conv5c``
    (squeeze 128, expand 384 + 384 = 768). An identity skip on every module whose output shape equals
    its input's (4a–4f, 5b, 5c; not 5a, which widens 512 → 768). A 3×3/2 max pool after 4a and 5a.
  * **Reduction** ×9 (§3.1, §3.3): GAP, then a 1×1 *group* convolution to 256 (``g = 8``, no bias) +
    BN + LeakyReLU(0.1), on the features of ``fire_conv4f`` (512), ``fire_conv5a``, ``fire_conv5b``,
    ``fire_conv5c`` (768) and of ``fire_conv5c`` split horizontally into 2 and into 3 parts.
  * **Objective** (§3.3, Eq. 1–2): a 1×1 conv classifier (with bias, Eq. 1's ``b``) on each of the nine
    256-d features; the joint loss is the sum of the nine softmax losses.
  * **Test feature** (Eq. 3): the nine reduced features concatenated (9 × 256 = 2304-d); the paper
    averages it with the flipped image's (done by ``reidbook.engine.extract_features``) and ranks by
    cosine similarity (``metric="cosine"``, :attr:`GraftedNet.metric`).
  * **Accompanying branch** (§3.4, Fig. 4): ResNet-50's ``res_conv4x`` + ``res_conv5x`` on the rootstock's
    output, GAP, a linear classifier, softmax. Training only: :meth:`GraftedNet.deploy` returns the
    model without it, so it is neither in the saved inference model nor in its parameter count.

Parameter counts at width 1 (tested): 4.585 M without the objective (the paper's "4.59 M"/"4.6 M");
reductions 0.218 / 0.431 / 1.709 M for ``g = 8 / 4 / 1`` (Table 2).

Training output (``model.train()``): ``{"logits": [9 × [B, C]], "accompanying": [[B, C]], "features": [B, D]}``
(``"accompanying"`` only when the branch exists). Evaluation output: the ``[B, D]`` test feature.

Departures from the paper, and why
  * Where §3.3 says "1024"/"2048" channels it contradicts §3.1 and Fig. 3 (512 / 768); we follow the
    architecture (512 / 768), which is also what reproduces the parameter counts.
  * The feature of ``fire_conv5a`` is taken *after* its max pool (the pool belongs to that stage, as
    the stride-2 conv belongs to a ResNet stage); the paper does not say.
  * Fire modules have no BN (as SqueezeNet's); with BN the total would be 4.60 M, Table 3's figure.
  * ``width < 1`` (laptop profiles) scales every channel count, including the 256-d reductions.
  * Initialisation (§4.2: new layers by He et al.'s method): fire modules use its fan-in form, with the
    expand convs of the skip-connected modules scaled by 0.1 (see :func:`_init_scion`); the
    classifiers (objective, accompanying ``fc``) use N(0, 0.001²) as MGN/PCB do, so that the ten
    softmax losses start at chance level instead of at large random logits.
"""
from __future__ import annotations

import copy
from collections import OrderedDict

import torch
from torch import nn

from .backbones import _scaled, load_pretrained, resnet50
from .base import ReIDModel
from .layers import FireModule, GlobalAvgPool, Reduction, classifier_init, horizontal_stripes

__all__ = ["GraftedNet", "VARIANTS", "VARIANT_LABELS", "build", "feature_names",
           "shape_table", "reduction_params", "group_conv_table", "stage_params", "PAPER_MARKET", "paper_table"]

# Table 2's rows: joint multi-level (MF) and part-based (PF) features, accompanying learning (AL), groups g.
VARIANTS: dict[str, dict] = {
    "graftednet": dict(multi_level=True, part_based=True, accompanying=True, groups=8),
    "no_mf": dict(multi_level=False, part_based=True, accompanying=True, groups=8),
    "no_pf": dict(multi_level=True, part_based=False, accompanying=True, groups=8),
    "no_mf_pf": dict(multi_level=False, part_based=False, accompanying=True, groups=8),
    "no_al": dict(multi_level=True, part_based=True, accompanying=False, groups=8),
    "g4": dict(multi_level=True, part_based=True, accompanying=True, groups=4),
    "g1": dict(multi_level=True, part_based=True, accompanying=True, groups=1),
}

VARIANT_LABELS: dict[str, str] = {
    "graftednet": "GraftedNet", "no_mf": "GraftedNet(-MF)", "no_pf": "GraftedNet(-PF)",
    "no_mf_pf": "GraftedNet(-MF-PF)", "no_al": "GraftedNet(-AL)", "g4": "GraftedNet (g=4)",
    "g1": "GraftedNet (g=1)",
}

# (name, squeeze, expand per path, max pool after it) — Fig. 3. Widths are scaled by ``width``.
_SCION = (
    ("fire_conv4a", 64, 256, True), ("fire_conv4b", 64, 256, False), ("fire_conv4c", 64, 256, False),
    ("fire_conv4d", 64, 256, False), ("fire_conv4e", 64, 256, False), ("fire_conv4f", 64, 256, False),
    ("fire_conv5a", 128, 384, True), ("fire_conv5b", 128, 384, False), ("fire_conv5c", 128, 384, False),
)
_LEVELS = ("fire_conv4f", "fire_conv5a", "fire_conv5b", "fire_conv5c")


def _init_scion(scion: nn.Module, residual_scale: float = 0.1) -> None:
    """He et al.'s initialisation (§4.2: "new layers … by [1]") in its forward-preserving fan-in form (as
    torchvision's SqueezeNet), zero biases; the expand convs of modules with an identity skip are scaled
    by ``residual_scale`` so that each such module starts close to the identity.

    Why: the scion has no BN, and every skip adds a non-negative ReLU output to its input, so with plain
    He init the map's scale grows ~70× over the nine modules (~400× with the fan-out form); the
    reductions' BN then divides the scion's gradients by that scale and it barely learns in a short run.
    Starting the residual branches small (the idea of Goyal et al.'s zero-γ and of Fixup) keeps the
    scale O(1) without changing the architecture or its parameter count.
    """
    for m in scion.modules():
        if isinstance(m, nn.Conv2d):
            nn.init.kaiming_normal_(m.weight, mode="fan_in", nonlinearity="relu")
            nn.init.zeros_(m.bias)
    with torch.no_grad():
        for m in scion.modules():
            if isinstance(m, FireModule) and m.residual:
                m.expand1x1.weight.mul_(residual_scale)
                m.expand3x3.weight.mul_(residual_scale)


def feature_names(multi_level: bool = True, part_based: bool = True) -> list[str]:
    """The features a variant extracts, in embedding order (§3.3; §4.4.1 for −MF / −PF / −MF−PF).

    −MF keeps only ``fire_conv5c`` (whole, 2 parts, 3 parts); −PF keeps the four levels, no parts;
    −MF−PF keeps one global feature of ``fire_conv5c``.
    """
    names = list(_LEVELS) if multi_level else ["fire_conv5c"]
    if part_based:
        names += [f"fire_conv5c_p{n}_{i + 1}" for n in (2, 3) for i in range(n)]
    return names


class GraftedNet(ReIDModel):
    """GraftedNet (paper 000, §3, Fig. 2–4); see the module docstring for the parts and equations.

    Parameters
    ----------
    num_classes: training identities (classifier outputs).
    width: channel multiplier (1 = the paper's network).
    groups: groups ``g`` of the reductions' 1×1 convolution (Table 2: 8, 4, 1).
    multi_level, part_based: the MF / PF switches of Table 2.
    accompanying: build the accompanying branch (False = "−AL").
    reduce_dim: size of each reduced feature (default 256·width).
    pretrained: ``None``, ``"imagenet"``, a path or a torchvision-style ResNet-50 state dict; loaded into
        the whole ResNet-50 before it is cut into rootstock and accompanying branch.
    """

    metric = "cosine"  # §4.2: "The cosine similarity is used for evaluating."

    def __init__(self, num_classes: int, width: float = 1.0, groups: int = 8, multi_level: bool = True,
                 part_based: bool = True, accompanying: bool = True, reduce_dim: int | None = None,
                 pretrained=None):
        super().__init__()
        self.num_classes, self.width, self.groups = num_classes, width, groups
        self.multi_level, self.part_based = multi_level, part_based
        # 1) The whole ResNet-50, pre-trained, then cut after res_conv3x (§3: "rootstock").
        resnet = resnet50(width=width, last_stride=2)
        if pretrained is not None:
            load_pretrained(resnet, pretrained, arch="resnet50")
        self.rootstock = nn.Sequential(OrderedDict(
            conv1=resnet.conv1, bn1=resnet.bn1, relu=resnet.relu, maxpool=resnet.maxpool,
            layer1=resnet.layer1, layer2=resnet.layer2))
        c3 = resnet.stage_channels["conv3"]
        # 2) The scion (§3.2). fire_conv4x expands to c3 so that the rootstock's map fits ("affinity").
        self.scion = nn.Sequential()
        c_in = c3
        self.channels: OrderedDict[str, int] = OrderedDict(rootstock=c3)
        for name, sq, ex, pool in _SCION:
            e = c3 // 2 if name.startswith("fire_conv4") else _scaled(ex, width)
            fire = FireModule(c_in, _scaled(sq, width), e, e, residual=(c_in == 2 * e))
            self.scion.add_module(name, fire)
            if pool:
                self.scion.add_module(f"pool{name[-2:]}", nn.MaxPool2d(3, stride=2, padding=1))
            c_in = self.channels[name] = 2 * e
        _init_scion(self.scion)
        # 3) Reductions and objective (§3.1, §3.3): one of each per feature, none shared.
        self.feature_names = feature_names(multi_level, part_based)
        self.reduce_dim = reduce_dim if reduce_dim is not None else _scaled(256, width)
        self.pool = GlobalAvgPool()
        self.reductions = nn.ModuleDict({
            n: Reduction(self.channels[n[:11]], self.reduce_dim, groups=groups, bias=False, act="leaky")
            for n in self.feature_names})
        self.objective = nn.ModuleDict({n: nn.Conv2d(self.reduce_dim, num_classes, 1) for n in self.feature_names})
        for conv in self.objective.values():
            classifier_init(conv)  # see the module docstring ("Departures")
        self.feature_dim = self.reduce_dim * len(self.feature_names)
        # 4) Accompanying branch (§3.4): the rest of the same pre-trained ResNet-50 + GAP + linear.
        if accompanying:
            fc = nn.Linear(resnet.out_channels, num_classes)
            classifier_init(fc)
            self.accompanying = nn.Sequential(OrderedDict(
                layer3=resnet.layer3, layer4=resnet.layer4, pool=GlobalAvgPool(), fc=fc))
        else:
            self.accompanying = None

    @property
    def has_accompanying(self) -> bool:
        return self.accompanying is not None

    # ------------------------------------------------------------------ pieces of the forward pass
    def scion_maps(self, r: torch.Tensor) -> "OrderedDict[str, torch.Tensor]":
        """Every fire module's output map from the rootstock's map ``r``; 4a and 5a after their pools."""
        maps: OrderedDict[str, torch.Tensor] = OrderedDict()
        x, last = r, None
        for name, module in self.scion.named_children():
            x = module(x)
            if name.startswith("pool"):
                maps[last] = x
            else:
                maps[name], last = x, name
        return maps

    def pooled(self, maps: "dict[str, torch.Tensor]") -> "OrderedDict[str, torch.Tensor]":
        """GAP of the multi-level maps and of ``fire_conv5c``'s 2 and 3 horizontal parts, by feature name."""
        z: OrderedDict[str, torch.Tensor] = OrderedDict()
        for n in self.feature_names:
            if "_p" not in n:
                z[n] = self.pool(maps[n])
        if self.part_based:
            for parts in (2, 3):
                for i, zp in enumerate(horizontal_stripes(maps["fire_conv5c"], parts, pool="avg")):
                    z[f"fire_conv5c_p{parts}_{i + 1}"] = zp
        return z

    def forward_all(self, x: torch.Tensor) -> dict:
        """Every intermediate: rootstock map ``r``, scion ``maps``, pooled ``z`` and reduced ``f`` (dicts)."""
        r = self.rootstock(x)
        maps = self.scion_maps(r)
        z = self.pooled(maps)
        f = OrderedDict((n, self.reductions[n](z[n])) for n in self.feature_names)
        return {"r": r, "maps": maps, "z": z, "f": f}

    def forward(self, x: torch.Tensor):
        out = self.forward_all(x)
        f = out["f"]
        emb = torch.cat([f[n] for n in self.feature_names], dim=1)  # Eq. (3)
        if not self.training:
            return emb
        if self.objective is None:
            raise RuntimeError("this GraftedNet was deployed (deploy() drops the objective's classifiers and the "
                               "accompanying branch, §3.3–3.4): it only embeds. Train the model build_model returns.")
        logits = [self.objective[n](f[n][:, :, None, None]).flatten(1) for n in self.feature_names]
        result = {"logits": logits, "features": emb}
        if self.accompanying is not None:
            result["accompanying"] = [self.accompanying(out["r"])]
        return result

    # ------------------------------------------------------------------ deployment and accounting
    def deploy(self) -> "GraftedNet":
        """A copy for inference, without the accompanying branch (§3.4: "removing it in testing") and
        without the objective's nine classifiers (§3.3: the test feature is the concatenation of the
        nine reduced features; the classifiers only train them — 1.74 M parameters at 751 classes).

        The copy shares nothing with ``self`` (so training can go on); neither part is copied. The
        deployed copy embeds; in ``train()`` mode it refuses (nothing to train it with).
        """
        held = {k: self._modules.pop(k, None) for k in ("accompanying", "objective")}
        try:
            deployed = copy.deepcopy(self)
        finally:
            self._modules.update(held)
        deployed._modules["accompanying"] = None
        deployed._modules["objective"] = None
        return deployed.train(self.training)

    def stage_modules(self) -> "OrderedDict[str, list[nn.Module]]":
        """Named stages for the profiler (Fig. 1): ResNet stages of the rootstock, fire stages, heads."""
        r = self.rootstock
        fires = dict(self.scion.named_children())
        out = OrderedDict(conv1=[r.conv1, r.bn1], conv2=[r.layer1], conv3=[r.layer2],
                          fire_conv4=[m for n, m in fires.items() if n.startswith("fire_conv4")],
                          fire_conv5=[m for n, m in fires.items() if n.startswith("fire_conv5")],
                          reductions=[self.reductions])
        if self.objective is not None:
            out["objective"] = [self.objective]
        if self.accompanying is not None:
            out["accompanying"] = [self.accompanying]
        return out

    def embedding_slices(self) -> "OrderedDict[str, slice]":
        """Where each of the features lies in the test embedding."""
        d = self.reduce_dim
        return OrderedDict((n, slice(i * d, (i + 1) * d)) for i, n in enumerate(self.feature_names))


# ----------------------------------------------------------------------------------------------
# Builder
# ----------------------------------------------------------------------------------------------
def build(num_classes: int, width: float = 1.0, pretrained=None, variant: str = "graftednet",
          groups: int | None = None, multi_level: bool | None = None,
          part_based: bool | None = None, accompanying: bool | None = None,
          reduce_dim: int | None = None) -> GraftedNet:
    """Registry builder (``build_model("graftednet", ...)``).

    ``variant`` names a Table 2 row (:data:`VARIANTS`); the explicit switches override it. ``width``
    is the channel multiplier (``build_model`` passes the profile's).
    """
    if variant not in VARIANTS:
        raise KeyError(f"unknown GraftedNet variant {variant!r}; variants are {', '.join(VARIANTS)}")
    cfg = dict(VARIANTS[variant])
    for k, v in dict(groups=groups, multi_level=multi_level, part_based=part_based,
                     accompanying=accompanying).items():
        if v is not None:
            cfg[k] = v
    return GraftedNet(num_classes, width=float(width), reduce_dim=reduce_dim, pretrained=pretrained, **cfg)


# ----------------------------------------------------------------------------------------------
# Tables the chapter shows (computed from models, never typed in)
# ----------------------------------------------------------------------------------------------
@torch.no_grad()
def shape_table(model: GraftedNet, input_size=(384, 192)) -> list[dict]:
    """The graft, step by step: every part's input and output shape for one image, and whether a skip fits.

    At 384×192 and width 1: rootstock 3×384×192 → 512×48×24; fire_conv4a 512 → 512 (skip), pool → 24×12;
    … fire_conv5a 512 → 768 (no skip), pool → 6×3 … — the "affinity" of §1 is that the rootstock's 512
    channels are exactly what fire_conv4a takes and gives back.
    """
    was = model.training
    model.eval()
    try:
        p = next(model.parameters())
        x = torch.zeros(1, 3, *input_size, device=p.device, dtype=p.dtype)
        rows = []
        r = model.rootstock(x)
        rows.append({"part": "rootstock (res_conv1x–3x)", "in": tuple(x.shape[1:]), "out": tuple(r.shape[1:]),
                     "skip": "—", "params": sum(q.numel() for q in model.rootstock.parameters())})
        h = r
        for name, m in model.scion.named_children():
            y = m(h)
            skip = ("yes" if m.residual else "no (shapes differ)") if isinstance(m, FireModule) else "—"
            label = name if isinstance(m, FireModule) else f"max pool 3×3/2 ({name})"
            rows.append({"part": label, "in": tuple(h.shape[1:]), "out": tuple(y.shape[1:]), "skip": skip,
                         "params": sum(q.numel() for q in m.parameters())})
            h = y
    finally:
        model.train(was)
    return rows


def reduction_params(in_channels, out_channels: int = 256, groups: int = 8) -> int:
    """Parameters of GraftedNet's reductions for the given input channel counts, measured on real modules:
    ``Σ_i (C_i · out / g + 2 · out)`` (group-conv weights + BN's γ and β)."""
    return sum(sum(p.numel() for p in Reduction(c, out_channels, groups=groups, bias=False, act="leaky").parameters())
               for c in in_channels)


def group_conv_table(groups=(1, 4, 8), width: float = 1.0) -> list[dict]:
    """§4.4.3's arithmetic for each ``g``: weights of one 768→256 and one 512→256 reduction, and of all nine.

    A 1×1 group conv splits ``C_in`` inputs and ``C_out`` outputs into ``g`` groups, each group mapping
    ``C_in/g → C_out/g``: ``C_in · C_out / g`` weights instead of ``C_in · C_out``.
    """
    c4, c5, d = _scaled(512, width), _scaled(768, width), _scaled(256, width)
    ins = [c4] + [c5] * 8
    rows = []
    for g in groups:
        rows.append({"g": g, "weights 512→256": c4 * d // g, "weights 768→256": c5 * d // g,
                     "BN (9 × 2·256)": 9 * 2 * d, "nine reductions": reduction_params(ins, d, g)})
    return rows


def stage_params(width: float = 1.0) -> "OrderedDict[str, int]":
    """Fig. 1's bars from real models: parameters per ResNet-50 stage and per designed fire stage
    (no stage shares a module with another, so each stage's parameters are summed on their own)."""
    def params(modules) -> int:
        return sum(p.numel() for m in modules for p in m.parameters())

    out = OrderedDict((f"res_{k}x", params(v)) for k, v in resnet50(width=width).stage_modules().items())
    fire = GraftedNet(1, width=width, accompanying=False).stage_modules()
    out["fire_conv4x"] = params(fire["fire_conv4"])
    out["fire_conv5x"] = params(fire["fire_conv5"])
    return out


# ----------------------------------------------------------------------------------------------
# The paper's own numbers (Market-1501), typed in once here; chapters and claims read them
# ----------------------------------------------------------------------------------------------
#: GraftedNet's Tables 2 and 3 on Market-1501 — the *paper's* numbers (§4.4, §4.5), never ours. Rows are
#: labelled as :data:`VARIANT_LABELS` (Table 2) and as the chapter's cost table (Table 3); mAP and Rank-1 in
#: %, reductions' and networks' parameters in M, time in ms per image on the paper's 16-core Xeon.
PAPER_MARKET = {
    2: {"columns": ["model", "mAP", "rank1", "reduction_params_M"],
        "rows": [["GraftedNet", 81.58, 93.02, 0.218], ["GraftedNet(-MF)", 74.27, 89.88, None],
                 ["GraftedNet(-PF)", 72.14, 88.00, None], ["GraftedNet(-MF-PF)", 67.19, 85.07, None],
                 ["GraftedNet(-AL)", 78.28, 91.24, None], ["GraftedNet (g=4)", 81.63, 93.14, 0.431],
                 ["GraftedNet (g=1)", 82.01, 92.87, 1.709]]},
    3: {"columns": ["model", "rank1", "mAP", "params_M", "time_ms"],
        "rows": [["SqueezeNet", 85.04, 65.82, 1.05, 44.92], ["ShuffleNetV2", 88.87, 71.63, 1.34, 49.33],
                 ["MobileNetV2", 88.15, 73.64, 2.75, 106.17], ["ResNet-50", 91.83, 78.67, 24.23, 408.64],
                 ["GraftedNet", 93.02, 81.58, 4.60, 268.57]]},
}


def paper_table(n: int):
    """GraftedNet's Table ``n`` ∈ {2, 3} on Market-1501 as a ``pandas.DataFrame`` indexed by model (the
    *paper's* numbers: :data:`PAPER_MARKET`)."""
    import pandas as pd

    if n not in PAPER_MARKET:
        raise ValueError(f"paper_table: GraftedNet's tables {sorted(PAPER_MARKET)} are stored, not {n}")
    t = PAPER_MARKET[n]
    return pd.DataFrame(t["rows"], columns=t["columns"]).set_index("model")
