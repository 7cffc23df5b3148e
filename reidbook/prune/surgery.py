"""Surgery: turn a channel selection into a **physically smaller** model, and save/load it.

Pruning a channel means removing the filter that produces it (conv weight row, its BN's four
entries) *and* the matching input slice of every conv that consumes it. Masks exist only while a
soft-pruning method trains (PSFP, soft FPGM: :func:`soft_prune_units`); :func:`harden` then removes
the zeroed channels for good.

Which channels may be pruned (the *scope*, survey §4.1 prunes the bottlenecks of ResNet-50):

* ``"bottleneck"`` (default): the outputs of ``conv1`` and ``conv2`` inside every torchvision
  ``Bottleneck`` (``conv1`` inside every ``BasicBlock`` — its ``conv2`` feeds the residual sum). The
  residual stream and the embedding keep their width, so heads, classifiers and checkpoints of
  the rest of the model are untouched.
* ``"residual"`` (opt-in): the channels of the residual stream of ``conv1``/``layer1``…``layer3`` of every
  ResNet in the model. They are *coupled*: every block's last conv, the downsample and the stem write
  to the same channels and the next blocks read them, so one selection must be applied to all of
  them consistently. ``layer4``'s stream is the embedding and is never pruned.
* ``"bottleneck+residual"``: both.

Two engines apply a selection, and a test checks they build the same model:
Torch-Pruning's ``DependencyGraph`` (Fang et al., "DepGraph", CVPR 2023), which finds coupled
layers by tracing the model, and a short hand-written one (:func:`prune_bottleneck` is the version
the chapter reads).
"""
from __future__ import annotations

import copy
import pickle
from dataclasses import dataclass, field
from pathlib import Path

import torch
from torch import nn
from torchvision.models.resnet import BasicBlock, Bottleneck

from ..utils import atomic_torch_save

__all__ = [
    "PruneUnit", "find_units", "SCOPES", "slice_conv_out_", "slice_conv_in_", "slice_bn_", "prune_bottleneck",
    "apply_selection", "unit_widths", "find_resnets", "example_input", "soft_prune_units", "zeroed_channels", "harden",
    "module_shapes", "apply_shapes", "save_pruned", "load_pruned", "PRUNED_FORMAT",
]

SCOPES = ("bottleneck", "residual", "bottleneck+residual")
PRUNED_FORMAT = "reidbook.pruned/1"


@dataclass
class PruneUnit:
    """A set of channels pruned together: ``producers`` write them, ``consumers`` read them.

    ``producers`` is a list of ``(conv name, bn name or None)``; ``consumers`` a list of conv names
    (qualified names in the model). ``kind`` is ``"block"`` or ``"residual"``.
    """

    name: str
    producers: list[tuple[str, str | None]]
    consumers: list[str] = field(default_factory=list)
    channels: int = 0
    kind: str = "block"

    @property
    def conv(self) -> str:
        """The first producer conv (the unit's conv in the default scope)."""
        return self.producers[0][0]

    @property
    def bn(self) -> str | None:
        return self.producers[0][1]


def find_resnets(model: nn.Module):
    """``(name, module)`` of every ResNet-like module: has conv1, bn1 and layer1…layer4 of blocks."""
    for name, m in model.named_modules():
        if all(hasattr(m, a) for a in ("conv1", "bn1", "layer1", "layer2", "layer3", "layer4")) and \
                isinstance(m.conv1, nn.Conv2d) and isinstance(m.layer1, nn.Sequential):
            yield name, m


def _block_units(model: nn.Module) -> list[PruneUnit]:
    units = []
    for name, m in model.named_modules():
        p = f"{name}." if name else ""
        if isinstance(m, Bottleneck):
            units.append(PruneUnit(p + "conv1", [(p + "conv1", p + "bn1")], [p + "conv2"], m.conv1.out_channels))
            units.append(PruneUnit(p + "conv2", [(p + "conv2", p + "bn2")], [p + "conv3"], m.conv2.out_channels))
        elif isinstance(m, BasicBlock):
            units.append(PruneUnit(p + "conv1", [(p + "conv1", p + "bn1")], [p + "conv2"], m.conv1.out_channels))
    return units


def _residual_units(model: nn.Module) -> list[PruneUnit]:
    units = []
    for rname, net in find_resnets(model):
        p = f"{rname}." if rname else ""
        cur = PruneUnit(f"residual:{p}conv1", [(p + "conv1", p + "bn1")], [], net.conv1.out_channels, "residual")
        for lname in ("layer1", "layer2", "layer3", "layer4"):
            for i, block in enumerate(getattr(net, lname)):
                b = f"{p}{lname}.{i}."
                cur.consumers.append(b + "conv1")
                if block.downsample is not None:
                    cur.consumers.append(b + "downsample.0")
                    units.append(cur)
                    cur = PruneUnit(f"residual:{p}{lname}", [(b + "downsample.0", b + "downsample.1")], [],
                                    block.downsample[0].out_channels, "residual")
                elif i == 0:
                    cur.name = f"residual:{p}{lname}"  # stem and this stage share their channels
                last = "conv3" if isinstance(block, Bottleneck) else "conv2"
                cur.producers.append((b + last, b + last.replace("conv", "bn")))
        # ``cur`` now holds layer4's stream = the embedding: never pruned.
    return units


def find_units(model: nn.Module, scope: str = "bottleneck") -> list[PruneUnit]:
    """The prunable units of ``model`` in ``scope`` (see the module docstring), in forward order."""
    if scope not in SCOPES:
        raise ValueError(f"unknown pruning scope {scope!r}; use one of {SCOPES}")
    units = []
    if "bottleneck" in scope:
        units += _block_units(model)
    if "residual" in scope:
        units += _residual_units(model)
    if not units:
        raise ValueError(f"no prunable channels in scope {scope!r}: the model ({type(model).__name__}) contains no "
                         "torchvision Bottleneck/BasicBlock ResNet (reidbook.models.backbones)")
    return units


# ---------------------------------------------------------------------------------------------
# Hand-written surgery: slicing tensors
# ---------------------------------------------------------------------------------------------
def _idx(keep, device) -> torch.Tensor:
    return torch.as_tensor(keep, dtype=torch.long, device=device)


@torch.no_grad()
def slice_conv_out_(conv: nn.Conv2d, keep) -> None:
    """Keep only output channels ``keep`` of ``conv`` (weight rows and bias), in place."""
    k = _idx(keep, conv.weight.device)
    conv.weight = nn.Parameter(conv.weight[k].clone())
    if conv.bias is not None:
        conv.bias = nn.Parameter(conv.bias[k].clone())
    conv.out_channels = len(k)


@torch.no_grad()
def slice_conv_in_(conv: nn.Conv2d, keep) -> None:
    """Keep only input channels ``keep`` of ``conv`` (weight columns), in place (``groups`` must be 1)."""
    if conv.groups != 1:
        raise ValueError("hand-written surgery supports groups=1 convs only; use engine='torch_pruning'")
    k = _idx(keep, conv.weight.device)
    conv.weight = nn.Parameter(conv.weight[:, k].clone())
    conv.in_channels = len(k)


@torch.no_grad()
def slice_bn_(bn: nn.BatchNorm2d, keep) -> None:
    """Keep only channels ``keep`` of ``bn`` (γ, β, running mean and variance), in place."""
    k = _idx(keep, bn.weight.device)
    bn.weight = nn.Parameter(bn.weight[k].clone())
    bn.bias = nn.Parameter(bn.bias[k].clone())
    bn.running_mean = bn.running_mean[k].clone()
    bn.running_var = bn.running_var[k].clone()
    bn.num_features = len(k)


def prune_bottleneck(block: Bottleneck, keep1, keep2) -> Bottleneck:
    """The surgery the chapter shows: keep channels ``keep1`` of ``conv1`` and ``keep2`` of ``conv2``.

    conv1 loses filters, bn1 their statistics, conv2 the matching input slices; conv2 loses filters,
    bn2 theirs, conv3 the matching inputs. The block's input and output (the residual stream) keep
    their width, so it drops back into the network unchanged. Returns a pruned *copy*.
    """
    b = copy.deepcopy(block)
    slice_conv_out_(b.conv1, keep1)
    slice_bn_(b.bn1, keep1)
    slice_conv_in_(b.conv2, keep1)
    slice_conv_out_(b.conv2, keep2)
    slice_bn_(b.bn2, keep2)
    slice_conv_in_(b.conv3, keep2)
    return b


def _hand_apply(model: nn.Module, unit: PruneUnit, keep) -> None:
    mods = dict(model.named_modules())
    for conv, bn in unit.producers:
        slice_conv_out_(mods[conv], keep)
        if bn is not None:
            slice_bn_(mods[bn], keep)
    for conv in unit.consumers:
        slice_conv_in_(mods[conv], keep)


def example_input(model: nn.Module, input_size) -> torch.Tensor:
    """A zero image batch of one at ``input_size`` (``(H, W)`` or ``(C, H, W)``) on the model's device."""
    try:
        p = next(model.parameters())
        dev = p.device
    except StopIteration:
        dev = torch.device("cpu")
    size = tuple(input_size)
    if len(size) == 2:
        size = (3, *size)
    return torch.zeros(1, *size, device=dev)


def apply_selection(model: nn.Module, units: list[PruneUnit], keep: dict[str, list[int]],
                    engine: str = "torch_pruning", input_size=(64, 32)) -> nn.Module:
    """Remove every channel of each unit not in ``keep[unit.name]``, **in place**, and return the model.

    ``engine="torch_pruning"`` builds Torch-Pruning's dependency graph once and prunes each unit's
    group (found from its first producer, so the engine itself checks the coupling we declared);
    ``engine="hand"`` slices the unit's producers and consumers directly.
    """
    if engine not in ("torch_pruning", "hand"):
        raise ValueError(f"unknown surgery engine {engine!r}; use 'torch_pruning' or 'hand'")
    todo = [(u, sorted(int(i) for i in keep[u.name])) for u in units if u.name in keep]
    todo = [(u, k) for u, k in todo if len(k) < u.channels]
    for u, k in todo:
        if not k:
            raise ValueError(f"unit {u.name}: at least one channel must be kept")
    if not todo:
        return model
    if engine == "hand":
        for u, k in todo:
            _hand_apply(model, u, k)
        return model
    import torch_pruning as tp

    was = model.training
    model.eval()
    try:
        dg = tp.DependencyGraph().build_dependency(model, example_inputs=example_input(model, input_size),
                                                   verbose=False)
    finally:
        model.train(was)
    mods = dict(model.named_modules())
    for u, k in todo:
        kept = set(k)
        drop = [i for i in range(u.channels) if i not in kept]
        group = dg.get_pruning_group(mods[u.conv], tp.prune_conv_out_channels, idxs=drop)
        group.prune()
    return model


def unit_widths(model: nn.Module, units: list[PruneUnit]) -> dict[str, int]:
    """Current number of channels of every unit (read from its first producer conv)."""
    mods = dict(model.named_modules())
    return {u.name: mods[u.conv].out_channels for u in units}


# ---------------------------------------------------------------------------------------------
# Soft pruning (masks during training) and hardening
# ---------------------------------------------------------------------------------------------
@torch.no_grad()
def soft_prune_units(model: nn.Module, units: list[PruneUnit], prune: dict[str, list[int]]) -> None:
    """Zero the filters, conv biases and BN γ/β of the channels ``prune[unit]`` (PSFP/FPGM soft pruning)."""
    from .criteria import soft_prune_

    mods = dict(model.named_modules())
    for u in units:
        idx = prune.get(u.name)
        if idx is None or len(idx) == 0:
            continue
        for conv, bn in u.producers:
            soft_prune_(mods[conv], mods[bn] if bn else None, idx)


@torch.no_grad()
def zeroed_channels(model: nn.Module, units: list[PruneUnit]) -> dict[str, list[int]]:
    """Channels of each unit whose filters (all producers) *and* BN γ, β are exactly zero."""
    mods = dict(model.named_modules())
    out = {}
    for u in units:
        dead = torch.ones(u.channels, dtype=torch.bool)
        for conv, bn in u.producers:
            w = mods[conv].weight
            dead &= (w.reshape(w.shape[0], -1) == 0).all(dim=1).cpu()
            if bn is not None:
                dead &= ((mods[bn].weight == 0) & (mods[bn].bias == 0)).cpu()
        out[u.name] = torch.nonzero(dead).flatten().tolist()
    return out


def harden(model: nn.Module, scope: str = "bottleneck", engine: str = "torch_pruning", input_size=(64, 32),
           min_channels: int = 1) -> nn.Module:
    """Turn a soft-pruned model into a physically smaller one: remove every zeroed channel (in place).

    A zeroed channel (filter, conv bias, BN γ and β all 0) outputs exactly 0 after BN, so removing it
    does not change the network's output. At least ``min_channels`` per unit are kept.
    """
    units = find_units(model, scope)
    return apply_selection(model, units, kept_after_zeroing(model, units, min_channels), engine=engine,
                           input_size=input_size)


def kept_after_zeroing(model: nn.Module, units, min_channels: int = 1) -> dict[str, list[int]]:
    """``{unit: indices of the channels that are not zeroed}``, topped up with the lowest zeroed indices
    so that every unit keeps at least ``min_channels`` (a layer with no channel would cut the network)."""
    dead = zeroed_channels(model, units)
    keep = {}
    for u in units:
        d = set(dead[u.name])
        k = [i for i in range(u.channels) if i not in d]
        if len(k) < min_channels:
            k = sorted(k + sorted(d)[:min_channels - len(k)])
        keep[u.name] = k
    return keep


# ---------------------------------------------------------------------------------------------
# Save / load: per-module shapes + state dict (weights_only-safe)
# ---------------------------------------------------------------------------------------------
def module_shapes(model: nn.Module) -> dict[str, dict]:
    """Channel counts of every conv, BN and linear layer: the structure a pruned model differs by."""
    out = {}
    for name, m in model.named_modules():
        if isinstance(m, nn.Conv2d):
            out[name] = {"type": "Conv2d", "in": m.in_channels, "out": m.out_channels, "groups": m.groups}
        elif isinstance(m, nn.modules.batchnorm._BatchNorm):
            out[name] = {"type": type(m).__name__, "num_features": m.num_features}
        elif isinstance(m, nn.Linear):
            out[name] = {"type": "Linear", "in": m.in_features, "out": m.out_features}
    return out


def _set_module(model: nn.Module, name: str, new: nn.Module) -> None:
    parent_name, _, child = name.rpartition(".")
    parent = model.get_submodule(parent_name) if parent_name else model
    setattr(parent, child, new)


def apply_shapes(model: nn.Module, shapes: dict[str, dict]) -> nn.Module:
    """Resize the layers of a freshly built ``model`` to ``shapes`` (from :func:`module_shapes`), in place.

    Resized layers are new modules with the same kernel, stride, padding, bias, eps and momentum;
    their values are meant to be overwritten by ``load_state_dict`` right after.
    """
    mods = dict(model.named_modules())
    for name, spec in shapes.items():
        m = mods.get(name)
        if m is None:
            raise ValueError(f"pruned checkpoint has a layer {name!r} that this model does not have: "
                             "was it saved from another architecture?")
        shape = (spec.get("in"), spec.get("out"))  # Conv2d and Linear; BatchNorm has num_features
        if spec["type"] == "Conv2d" and isinstance(m, nn.Conv2d) and (m.in_channels, m.out_channels) != shape:
            new = nn.Conv2d(spec["in"], spec["out"], m.kernel_size, m.stride, m.padding, m.dilation, spec["groups"],
                            bias=m.bias is not None, padding_mode=m.padding_mode)
            _set_module(model, name, new.to(m.weight.device))
        elif spec["type"].startswith("BatchNorm") and isinstance(m, nn.modules.batchnorm._BatchNorm) \
                and m.num_features != spec["num_features"]:
            new = type(m)(spec["num_features"], eps=m.eps, momentum=m.momentum, affine=m.affine,
                          track_running_stats=m.track_running_stats)
            _set_module(model, name, new.to(m.weight.device if m.weight is not None else "cpu"))
        elif spec["type"] == "Linear" and isinstance(m, nn.Linear) and (m.in_features, m.out_features) != shape:
            new = nn.Linear(spec["in"], spec["out"], bias=m.bias is not None)
            _set_module(model, name, new.to(m.weight.device))
    return model


def save_pruned(model: nn.Module, path, extra: dict | None = None) -> Path:
    """Save a pruned model atomically: ``{"format", "shapes", "state_dict", "extra"}``, loadable with
    ``torch.load(..., weights_only=True)`` (ints, strings and tensors only)."""
    payload = {"format": PRUNED_FORMAT, "shapes": module_shapes(model),
               "state_dict": {k: v.detach().cpu() for k, v in model.state_dict().items()},
               "extra": dict(extra or {})}
    return atomic_torch_save(payload, path)


def load_pruned(path, model: nn.Module, map_location="cpu") -> nn.Module:
    """Load a pruned model saved by :func:`save_pruned` into a freshly built ``model`` of the same
    architecture (e.g. ``build_model(name, num_classes, profile)``): resize its layers, then load the
    weights (strict). Returns the model; ``model.pruned_extra`` holds the saved ``extra`` dict."""
    path = Path(path)
    if not path.exists():
        raise FileNotFoundError(f"no pruned model at {path}")
    try:
        payload = torch.load(path, map_location=map_location, weights_only=True)
    except (pickle.UnpicklingError, RuntimeError, EOFError, ValueError) as e:  # truncated, junk, or not weights-only
        raise ValueError(f"{path} cannot be read as a reidbook pruned model ({type(e).__name__}); it is damaged or "
                         "not a file saved by reidbook.prune.save_pruned — prune and save it again") from e
    if not isinstance(payload, dict) or payload.get("format") != PRUNED_FORMAT:
        raise ValueError(f"{path} is not a reidbook pruned model (format {PRUNED_FORMAT!r}); "
                         "save it with reidbook.prune.save_pruned")
    apply_shapes(model, payload["shapes"])
    try:
        model.load_state_dict(payload["state_dict"], strict=True)
    except RuntimeError as e:
        raise ValueError(f"pruned weights in {path} do not fit this model: {e}. Build the same architecture "
                         "(name, num_classes, profile/width) it was pruned from.") from e
    model.pruned_extra = payload.get("extra", {})
    return model
