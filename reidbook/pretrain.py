"""Source-domain pre-training: the backbones every laptop-profile model starts from, and the one place
that turns a ``pretrained=`` argument into weights and a cache key.

Layer: beside eval/prune/distill (it uses models, presets, the engine and the store; the zoo, FD and
the pruning scenarios use it). The recipe itself is a preset (:mod:`reidbook.presets.source`).

* :func:`pretrained_backbone` — a backbone trained on SynthReID's source domain, cached in the store
  (kind ``backbone``);
* :func:`resolve_pretrained` — ``"auto"`` / ``"source"`` / ``"imagenet"`` / ``None`` / a path / a state
  dict → ``(value for build_model, JSON key for a configuration)``;
* :func:`backbone_of` — the architecture and width a preset's model is built with.
"""
from __future__ import annotations

import hashlib
import os
from pathlib import Path
from typing import Any

from torch import nn

from .presets import profile_width
from .presets.source import SOURCE_GRAD_CLIP, source_recipe
from .store import cached, data_fingerprint, dataset
from .utils import file_sha256, say, seed_everything

__all__ = ["pretrained_backbone", "resolve_pretrained", "backbone_of", "build_trunk", "PRETRAINED_CHOICES"]

PRETRAINED_CHOICES = ("auto", "source", "imagenet", None)
_DEFAULT_ARCH = {"light": "squeezenet1_0"}


def build_trunk(arch: str, width: float) -> nn.Module:
    """A randomly initialised backbone to pre-train (ResNets: every residual block starts as the identity)."""
    from .models.backbones import zero_init_residual
    from .models.baseline import BACKBONES, build_backbone
    from .models.light import LIGHT_ARCHS, build_light_trunk

    if arch in BACKBONES:
        trunk = build_backbone(arch, width=width, last_stride=2)
        zero_init_residual(trunk)  # from scratch: start every residual block as the identity
        return trunk
    if arch in LIGHT_ARCHS:
        return build_light_trunk(arch, width=width)
    known = ", ".join(dict.fromkeys(BACKBONES + LIGHT_ARCHS))
    raise KeyError(f"no source-domain pre-training for arch {arch!r}; known: {known}")


def _check_finite(model: nn.Module, what: str) -> None:
    bad = [n for n, p in model.state_dict().items() if p.is_floating_point() and not bool(p.isfinite().all())]
    if bad:
        raise FloatingPointError(f"{what} has non-finite weights ({', '.join(bad[:3])}…): training diverged; "
                                 "nothing was saved. Lower the learning rate of the recipe.")


def pretrained_backbone(arch: str = "resnet50", width: float | None = None, profile: str = "quick", seed: int = 0,
                        device: str = "auto") -> dict:
    """A backbone state dict pre-trained on SynthReID's source domain (``root/source/``), cached.

    The backbone (torchvision module names, so it loads wherever an ImageNet state dict would) gets a
    GAP → BN-neck → classifier head and is trained with :func:`reidbook.presets.source.source_recipe`
    (label-smoothed softmax + batch-hard triplet, SGD) over the source identities (smoke 1, quick 10,
    full 30 epochs; gradient norm clipped for BN-free trunks, ``SOURCE_GRAD_CLIP``), input size as the
    baseline preset of ``profile``. The head is discarded. Width
    defaults to the profile's.
    """
    from .engine import fit_preset

    width = profile_width(profile) if width is None else float(width)
    recipe = source_recipe(profile)
    config = {"arch": arch, "width": width, "profile": profile, "seed": seed, "recipe": recipe.to_dict(),
              "data_sha256": data_fingerprint(profile, "synth-source", seed)}
    grad_clip = SOURCE_GRAD_CLIP.get(arch)
    if grad_clip is not None:  # only BN-free trunks: every other backbone keeps its cache key
        config["grad_clip"] = grad_clip

    def train() -> dict:
        from .models.baseline import Baseline

        src = dataset(profile, "synth-source", seed)
        seed_everything(seed)
        model = Baseline(src.num_train_pids, build_trunk(arch, width))
        say(f"[zoo] pre-training {arch} (width {width:g}) on SynthReID's source domain "
            f"({len(src.train)} images, {src.num_train_pids} identities, {recipe.epochs} epochs)")
        fit_preset(model, src.train, recipe, seed=seed, device=device, grad_clip=grad_clip)
        _check_finite(model.backbone, f"the source-domain {arch} backbone")
        return {k: v.detach().cpu() for k, v in model.backbone.state_dict().items()}

    return cached("backbone", config, train)


def backbone_of(name: str, preset) -> tuple[str, float]:
    """``(arch, width)`` of the backbone model ``name`` is built with under ``preset`` (its
    ``model_options``' ``arch`` or ``backbone``, else the model's default; width: the option or the profile's)."""
    opts = preset.model_options
    arch = opts.get("arch") or opts.get("backbone") or _DEFAULT_ARCH.get(name, "resnet50")
    return arch, opts.get("width", profile_width(preset.profile))


def resolve_pretrained(pretrained, *, arch: str, width: float, profile: str, seed: int = 0, device="auto",
                       train: bool = True) -> tuple[Any, Any]:
    """``(value for build_model, JSON key for a configuration)`` of a ``pretrained`` argument.

    ``"auto"``: smoke/quick → ``"source"``; full → ``"imagenet"``. ``"source"`` → the cached
    :func:`pretrained_backbone` of ``arch`` at ``width`` (``train=False``: its key only, value ``None``,
    so that a cached run is loaded without pre-training anything). ``"imagenet"`` / ``None`` pass
    through. A path → itself, keyed by its SHA-256; a state dict → itself, keyed by a hash of its tensors.
    """
    if pretrained == "auto":
        pretrained = "imagenet" if profile == "full" else "source"
    if pretrained is None or pretrained == "imagenet":
        return pretrained, pretrained
    if pretrained == "source":
        key = {"source": arch, "width": width, "seed": seed, "recipe": source_recipe(profile).to_dict()}
        return (pretrained_backbone(arch, width, profile, seed, device=device) if train else None), key
    if isinstance(pretrained, (str, os.PathLike)):
        p = Path(pretrained).expanduser().resolve()
        if not p.exists():
            raise FileNotFoundError(f"pretrained weights {p} do not exist; give a state-dict file, or one of "
                                    "'auto', 'source', 'imagenet', 'none'")
        return str(p), {"file": str(p), "sha256": file_sha256(p)}
    if isinstance(pretrained, dict):
        h = hashlib.sha256()
        for k in sorted(pretrained):
            h.update(k.encode())
            h.update(pretrained[k].detach().cpu().contiguous().numpy().tobytes())
        return pretrained, {"state_dict_sha256": h.hexdigest()}
    raise TypeError(f"pretrained must be 'auto', 'source', 'imagenet', None, a path or a state dict, "
                    f"got {type(pretrained).__name__}")
