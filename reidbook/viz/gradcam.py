"""Grad-CAM for re-ID embeddings (with the ``grad-cam`` package, ``pytorch_grad_cam``).

Grad-CAM (Selvaraju et al., ICCV 2017, Eq. 1–2) weights a layer's activation maps by the spatially
averaged gradient of a scalar *target* and keeps the positive part. A re-ID model has no class score at
test time, so the target here is what retrieval uses: the **cosine similarity of the image's embedding
to a reference embedding** (e.g. the query's, when explaining a gallery match). The map then says which
regions made this image look like the reference.

For a multi-branch model (MGN) one CAM per branch: :class:`BranchEmbedding` wraps the model so that its
output is only that branch's part of the embedding (``f_g`` and its ``f_p``), and the CAM is taken at
the last block of that branch. Each CAM thus explains one branch's embedding.

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

__all__ = ["CosineSimilarityTarget", "BranchEmbedding", "embedding_cam", "branch_cams", "plot_branch_cams"]


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
