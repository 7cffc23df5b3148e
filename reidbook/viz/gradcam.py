"""Grad-CAM for re-ID embeddings (with the ``grad-cam`` package, ``pytorch_grad_cam``).

Grad-CAM (Selvaraju et al., ICCV 2017, Eq. 1–2) weights a layer's activation maps by the spatially
averaged gradient of a scalar *target* and keeps the positive part. A re-ID model has no class score at
test time, so the target here is what retrieval uses: the **cosine similarity of the image's embedding
to a reference embedding** (e.g. the query's, when explaining a gallery match). The map then says which
regions made this image look like the reference.

For a multi-branch model (MGN) one CAM per branch: :class:`BranchEmbedding` wraps the model so that its
output is only that branch's part of the embedding (``f_g`` and its ``f_p``), and the CAM is taken at
the last block of that branch. Each CAM thus explains one branch's embedding.

For an anytime model (DaRe) one CAM per exit: :class:`ExitEmbedding` restricts the model to the
embedding exit ``s`` answers with (``model.exit_embedding(model.anytime(x, upto=s))``), and the CAM is
taken at the last block of stage ``s`` — the map that embedding is pooled from (:func:`exit_cams`).

Note: the reference must differ from the image's own embedding — at ``f = f_ref`` the cosine is at its
maximum and its gradient is zero (an empty CAM).
"""
from __future__ import annotations

from collections import OrderedDict
from typing import Sequence

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from ..models.mgn import MGN

__all__ = ["CosineSimilarityTarget", "BranchEmbedding", "embedding_cam", "branch_cams", "plot_branch_cams",
           "ExitEmbedding", "exit_cams"]


class CosineSimilarityTarget:
    """A ``pytorch_grad_cam`` target: ``cos(f(x), f_ref)`` for one image's embedding ``f(x)``."""

    def __init__(self, reference: torch.Tensor):
        self.reference = reference.detach().flatten()

    def __call__(self, model_output: torch.Tensor) -> torch.Tensor:
        ref = self.reference.to(model_output.device, model_output.dtype)
        if model_output.shape[-1] != ref.shape[0]:
            raise ValueError(f"embedding has {model_output.shape[-1]} dims but the reference has {ref.shape[0]}")
        return F.cosine_similarity(model_output, ref, dim=-1)


class BranchEmbedding(nn.Module):
    """MGN restricted to one branch: ``x → concat(f_g, f_p1 … f_pN)`` of that branch (trunk + branch only)."""

    def __init__(self, model: nn.Module, branch: str):
        super().__init__()
        if not isinstance(model, MGN):
            raise TypeError(f"{type(model).__name__} has no branches; "
                            "BranchEmbedding needs an MGN (reidbook.models.mgn)")
        if branch not in model.branches:
            raise KeyError(f"model has no branch {branch!r}; branches: {list(model.branches)}")
        self.model, self.branch = model, branch
        self.train(model.training)  # so that restoring the wrapper's mode restores the model's

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.model.branch_embedding(x, self.branch)

    def target_layer(self) -> nn.Module:
        """The last bottleneck of the branch's conv5 (its output map)."""
        return self.model.branches[self.branch].layer4[-1]


def embedding_cam(model: nn.Module, images: torch.Tensor, references: torch.Tensor,
                  target_layer: nn.Module, method: str = "gradcam") -> np.ndarray:
    """CAMs ``[B, H, W]`` in [0, 1] of ``model``'s embedding of ``images`` w.r.t. ``references`` ``[B, D]``
    (or one ``[D]`` for all), taken at ``target_layer``. ``method``: ``gradcam`` or ``gradcam++``."""
    from pytorch_grad_cam import GradCAM, GradCAMPlusPlus

    cams = {"gradcam": GradCAM, "gradcam++": GradCAMPlusPlus}
    if method not in cams:
        raise ValueError(f"unknown CAM method {method!r}; choose one of {', '.join(cams)}")
    if references.dim() == 1:
        references = references[None].expand(images.shape[0], -1)
    if references.shape[0] != images.shape[0]:
        raise ValueError(f"{images.shape[0]} images but {references.shape[0]} references")
    was = model.training
    p = next(model.parameters())
    try:
        with cams[method](model=model, target_layers=[target_layer]) as cam:
            out = cam(input_tensor=images.to(p.device, p.dtype),
                      targets=[CosineSimilarityTarget(r) for r in references])
    finally:
        model.train(was)
    return np.asarray(out, dtype=np.float32)


def branch_cams(model: nn.Module, images: torch.Tensor, references: torch.Tensor,
                branches: Sequence[str] | None = None, method: str = "gradcam") -> "OrderedDict[str, np.ndarray]":
    """One CAM per MGN branch: ``{branch: [B, H, W]}``.

    ``references``: full test embeddings ``[B, D]`` or ``[D]`` (e.g. ``model(query)``); each branch's
    target uses that branch's slice of them (``model.embedding_slices()``).
    """
    slices = model.embedding_slices()
    out = OrderedDict()
    for name in branches or list(slices):
        wrapper = BranchEmbedding(model, name)
        out[name] = embedding_cam(wrapper, images, references[..., slices[name]], wrapper.target_layer(), method)
    return out


def plot_branch_cams(model: nn.Module, images: torch.Tensor, references: torch.Tensor,
                     row_titles: Sequence[str] | None = None, title: str | None = None, alpha: float = 0.5):
    """Image, then one Grad-CAM per branch (cosine similarity of that branch's embedding to the reference)."""
    from .response import plot_maps, to_display

    cams = branch_cams(model, images, references)
    maps = OrderedDict((("Global" if n == "global" else n.replace("part", "Part-")), v) for n, v in cams.items())
    return plot_maps(to_display(images), maps, alpha=alpha, row_titles=row_titles, title=title)


class ExitEmbedding(nn.Module):
    """An anytime model (DaRe) restricted to exit ``s`` (1-based): ``x → model.exit_embedding(model.anytime(x, s))``
    — stage ``s``'s embedding, or the fusion at the last exit. Stages after ``s`` are not run."""

    def __init__(self, model: nn.Module, s: int):
        super().__init__()
        from ..models.base import is_anytime

        if not is_anytime(model) or not hasattr(model, "stage_names"):
            raise TypeError(f"{type(model).__name__} has no exits over backbone stages; ExitEmbedding needs an "
                            "anytime model with stage_names (DaRe, reidbook.models.dare)")
        if not 1 <= int(s) <= model.num_exits:
            raise ValueError(f"exit must be in 1..{model.num_exits}, got {s}")
        self.model, self.s = model, int(s)
        self.train(model.training)  # so that restoring the wrapper's mode restores the model's

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.model.exit_embedding(self.model.anytime(x, upto=self.s))

    def target_layer(self) -> nn.Module:
        """The last block of stage ``s`` of the backbone (the map that exit's head pools). At the last exit
        the fused embedding also depends on the earlier stages' embeddings; the CAM at this layer shows
        the part of its gradient that flows through the last stage."""
        from ..models.base import stage_modules_of

        layer = stage_modules_of(self.model.backbone)[self.model.stage_names[self.s - 1]][-1]
        children = list(layer.children()) if isinstance(layer, nn.Sequential) else []
        return children[-1] if children else layer


def exit_cams(model: nn.Module, images: torch.Tensor, references: Sequence[torch.Tensor],
              method: str = "gradcam") -> "OrderedDict[str, np.ndarray]":
    """One Grad-CAM per exit of an anytime model: ``{exit name: [B, H, W]}`` for ``images`` ``[B, 3, H, W]``.

    ``references``: one entry per exit, each either reference embeddings ``[B, D]`` / ``[D]`` *at that exit*
    or reference images ``[B, 3, H, W]`` (embedded at that exit, in eval mode) — e.g. each query's top-1
    gallery match under that exit's distances, so that every CAM explains what that exit's retrieval used.
    """
    if len(references) != model.num_exits:
        raise ValueError(f"exit_cams needs one reference per exit ({model.num_exits}), got {len(references)}")
    out = OrderedDict()
    for s, (name, ref) in enumerate(zip(model.exit_names(), references), start=1):
        wrapper = ExitEmbedding(model, s)
        if ref.dim() == 4:
            was = model.training
            model.eval()
            try:
                with torch.no_grad():
                    p = next(model.parameters())
                    ref = wrapper(ref.to(p.device, p.dtype))
            finally:
                model.train(was)
        out[name] = embedding_cam(wrapper, images, ref, wrapper.target_layer(), method)
    return out
