"""The model contract: what the chapters, the evaluation, the profiler, the exporter and the zoo may ask
of a model, written as base classes instead of prose (CONTRIBUTING.md, "Models").

* :class:`Backbone` — a feature-map network cut into named stages: ``stages()``, ``stage_channels``,
  ``out_channels``, ``forward_stages(x, upto)`` and ``stage_modules()`` (for per-stage accounting).
* :class:`ReIDModel` — a re-ID model: ``eval()`` → ``forward(x)`` is the paper's test-time embedding
  ``[B, feature_dim]``; ``train()`` → the dict its criterion reads. It says which distance ranks its
  embeddings (:attr:`~ReIDModel.metric`), which inference model it deploys as (:meth:`~ReIDModel.deploy`)
  and how it splits into stages (:meth:`~ReIDModel.stage_modules`).
* :class:`AnytimeModel` — a re-ID model with early exits (DaRe, the sequential ensemble of ResNets):
  ``anytime(x, upto)``, ``exit_embedding``, ``all_embeddings``, ``num_exits``, ``exit_names()`` and :attr:`has_fusion`.

Code that may receive *any* ``nn.Module`` (a pruned copy, a torchvision network, an ONNX wrapper) asks
through the functions at the bottom (:func:`deployed`, :func:`metric_of`, :func:`feature_dim_of`,
:func:`stage_modules_of`, :func:`is_anytime`), which give the contract's defaults to modules that do not
keep it. ``tests/test_model_contract.py`` builds every registered model and checks that it keeps it.
"""
from __future__ import annotations

from collections import OrderedDict
from typing import Sequence

import torch
from torch import nn

__all__ = ["Backbone", "run_stages", "ReIDModel", "AnytimeModel", "METRICS", "deployed", "metric_of", "feature_dim_of",
           "stage_modules_of", "is_anytime"]

#: The distances a model may ask its embeddings to be ranked with (``reidbook.eval.compute_distmat``).
METRICS = ("euclidean", "sqeuclidean", "cosine")


def run_stages(stages: "OrderedDict[str, nn.Module]", x: torch.Tensor,
               upto: str | None) -> "OrderedDict[str, torch.Tensor]":
    """Run ``stages`` in order, keeping each output, and stop after the stage named ``upto`` (``None``: all)."""
    out: OrderedDict[str, torch.Tensor] = OrderedDict()
    for name, stage in stages.items():
        x = stage(x)
        out[name] = x
        if name == upto:
            break
    return out


class Backbone(nn.Module):
    """A network mapping images to a feature map ``[B, out_channels, h, w]``, in named stages.

    Subclasses set ``stage_channels`` (stage name → output channels, in order) and ``out_channels``
    and implement :meth:`stages` and ``forward``.
    """

    stage_channels: "OrderedDict[str, int]"
    out_channels: int

    def stages(self) -> "OrderedDict[str, nn.Module]":
        """The stages as modules, in order."""
        raise NotImplementedError(f"{type(self).__name__} must implement stages()")

    def forward_stages(self, x: torch.Tensor, upto: str | None = None) -> "OrderedDict[str, torch.Tensor]":
        """Every stage's output up to and including ``upto`` (all stages when ``None``); the stages
        after ``upto`` are not run (DaRe's anytime inference relies on this)."""
        return run_stages(self.stages(), x, upto)

    def stage_modules(self) -> "OrderedDict[str, list[nn.Module]]":
        """Stage name → the submodules holding its parameters (for accounting by stage).
        Default: each stage's module."""
        return OrderedDict((name, [module]) for name, module in self.stages().items())


class ReIDModel(nn.Module):
    """A re-ID model of the course (see the module docstring for the contract).

    Subclasses set ``feature_dim`` (the size of the test-time embedding) in ``__init__``.
    """

    #: Distance the paper ranks this model's embeddings with (one of :data:`METRICS`).
    metric: str = "euclidean"
    feature_dim: int

    def deploy(self) -> nn.Module:
        """The inference model, without training-only parts (GraftedNet's accompanying branch, FD's
        FMFB/RFB). Default: the model itself."""
        return self

    def stage_modules(self) -> "OrderedDict[str, list[nn.Module]]":
        """Named stages for per-stage parameter and multiply-add accounting. Default: the top-level children."""
        return OrderedDict((name, [module]) for name, module in self.named_children())


class AnytimeModel(ReIDModel):
    """A re-ID model with ``num_exits`` early exits (paper 004, DaRe; and its sequential ensemble of ResNets).

    ``anytime(x, upto)`` runs only what exits ``1 … upto`` need and returns their embeddings;
    ``exit_embedding(embeddings)`` is the one an exit after ``len(embeddings)`` of them uses;
    ``all_embeddings(x)`` every embedding of one full pass (with the fusion, if any, last).
    """

    num_exits: int
    #: True when the last exit uses a fusion of all exits' embeddings (DaRe's Eq. 1), an extra entry of
    #: ``all_embeddings``.
    has_fusion: bool = False

    def anytime(self, x: torch.Tensor, upto: int | None = None) -> list[torch.Tensor]:
        raise NotImplementedError(f"{type(self).__name__} must implement anytime()")

    def exit_embedding(self, embeddings: Sequence[torch.Tensor]) -> torch.Tensor:
        raise NotImplementedError(f"{type(self).__name__} must implement exit_embedding()")

    def all_embeddings(self, x: torch.Tensor) -> list[torch.Tensor]:
        raise NotImplementedError(f"{type(self).__name__} must implement all_embeddings()")

    def exit_names(self) -> list[str]:
        """One label per exit, for tables and figures. Default: ``exit 1`` … ``exit S``."""
        return [f"exit {i + 1}" for i in range(self.num_exits)]


# ----------------------------------------------------------------------------------------------
# The contract asked of any module (defaults for those that do not keep it)
# ----------------------------------------------------------------------------------------------
def deployed(model: nn.Module) -> nn.Module:
    """``model.deploy()`` for a :class:`ReIDModel`, else the module itself."""
    return model.deploy() if isinstance(model, ReIDModel) else model


def metric_of(model: nn.Module) -> str:
    """The distance ``model``'s embeddings are ranked with (GraftedNet and FD: ``"cosine"``).

    Wrappers that hold the model as ``.model`` or ``.module`` (``DataParallel``, exit and crop wrappers)
    are looked through; ``"euclidean"`` for a module without the contract. A metric outside
    :data:`METRICS` is an error."""
    for m in (model, getattr(model, "model", None), getattr(model, "module", None)):
        if isinstance(m, ReIDModel):
            if m.metric not in METRICS:
                raise ValueError(f"{type(m).__name__}.metric = {m.metric!r} is not a known distance; "
                                 f"use one of {METRICS}")
            return m.metric
    return "euclidean"


def feature_dim_of(model: nn.Module) -> int | None:
    """Size of ``model``'s test-time embedding, or ``None`` for a module without the contract."""
    return int(model.feature_dim) if isinstance(model, ReIDModel) else None


def stage_modules_of(model: nn.Module) -> "OrderedDict[str, list[nn.Module]]":
    """``model.stage_modules()`` for a :class:`ReIDModel` or :class:`Backbone`, else its top-level children."""
    if isinstance(model, (ReIDModel, Backbone)):
        return model.stage_modules()
    return OrderedDict((name, [module]) for name, module in model.named_children())


def is_anytime(model: nn.Module) -> bool:
    """True for a model with early exits (:class:`AnytimeModel`)."""
    return isinstance(model, AnytimeModel)
