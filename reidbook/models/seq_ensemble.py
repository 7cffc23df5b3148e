"""The sequential ensemble of ResNets: the anytime baseline of DaRe (paper 004, §5.3.1, Fig. 5).

The paper calls it "SE-ResNets" (Sequential Ensemble); the course says *sequential ensemble* and keeps
"SE-ResNet" for squeeze-and-excitation networks (:mod:`reidbook.models.se_resnet`). The baseline is a
sequential ensemble of a ResNet-18, a ResNet-34 and a ResNet-50, each trained on
its own with the triplet loss of Hermans et al.; at test time they run one after another, smallest
first, and when the budget runs out the answer of the last network that finished is used.

So an exit here is a whole network: exit ``k`` has run members ``1 … k`` one after another and uses
member ``k``'s embedding; its cost is the **sum** of the members' costs (nothing is shared — the
contrast with DaRe, whose exits share one trunk).

Each member is a ResNet ending in DaRe's head (GAP → FC 1024 + BN + ReLU → FC 128), trained alone
with the batch-hard soft-margin triplet loss (Hermans et al. 2017, "[17]" in the paper).

How it is built and trained: ``build_model("seq_ensemble", n, arch="resnet18")`` is a one-member
ensemble (one zoo run per member, so each is trained separately, with its own source-domain
pre-trained backbone); :meth:`SequentialEnsemble.chain` joins the trained members in ascending size.
Departure: the paper does not say which head its ResNets carry; we use DaRe's so that member
ResNet-50 differs from DaRe only by the missing intermediate heads and fusion.
"""
from __future__ import annotations

from typing import Sequence

import torch
from torch import nn

from .base import AnytimeModel, ReIDModel
from .dare import EmbeddingHead, build_backbone

__all__ = ["EmbeddingNet", "SequentialEnsemble", "build", "ENSEMBLE_ARCHS"]

ENSEMBLE_ARCHS = ("resnet18", "resnet34", "resnet50")


class EmbeddingNet(ReIDModel):
    """One member: ``backbone → EmbeddingHead`` (TriNet-style, Hermans et al. §3; DaRe's head)."""

    def __init__(self, backbone: nn.Module, hidden: int = 1024, dim: int = 128):
        super().__init__()
        self.backbone = backbone
        self.head = EmbeddingHead(backbone.out_channels, hidden, dim)
        self.feature_dim = dim

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.head(self.backbone(x))


class SequentialEnsemble(AnytimeModel):
    """A sequential ensemble of separately trained embedding networks (paper 004, §5.3.1).

    ``train()`` mode (one member only): ``{"triplet": [f]}``. ``eval()`` mode: the last member's
    embedding. :meth:`anytime` runs members ``1 … upto`` and returns their embeddings; it has the
    same interface as :meth:`reidbook.models.dare.DaRe.anytime`, so anytime evaluation treats both alike.
    """

    def __init__(self, members: Sequence[EmbeddingNet], names: Sequence[str] | None = None):
        super().__init__()
        if not members:
            raise ValueError("SequentialEnsemble needs at least one member network")
        self.members = nn.ModuleList(members)
        self.names = list(names) if names is not None else [f"member{i + 1}" for i in range(len(members))]
        dims = {m.feature_dim for m in members}
        if len(dims) != 1:
            raise ValueError(f"sequential-ensemble members must share one embedding size, got {sorted(dims)}")
        self.feature_dim = dims.pop()
        self.num_exits = len(self.members)

    @classmethod
    def chain(cls, *ensembles: "SequentialEnsemble") -> "SequentialEnsemble":
        """Join trained (one-member) ensembles, in the order given (ascending size, §5.3.1)."""
        members, names = [], []
        for e in ensembles:
            members += list(e.members)
            names += list(e.names)
        return cls(members, names).eval()

    def anytime(self, x: torch.Tensor, upto: int | None = None) -> list[torch.Tensor]:
        """Embeddings of members ``1 … upto``, run one after another; later members never run."""
        upto = self.num_exits if upto is None else int(upto)
        if not 1 <= upto <= self.num_exits:
            raise ValueError(f"SequentialEnsemble.anytime: upto must be in 1..{self.num_exits}, got {upto}")
        return [m(x) for m in list(self.members)[:upto]]

    def exit_embedding(self, embeddings: Sequence[torch.Tensor]) -> torch.Tensor:
        """The most recent result: the embedding of the last member run."""
        return embeddings[-1]

    def all_embeddings(self, x: torch.Tensor) -> list[torch.Tensor]:
        return self.anytime(x)

    def exit_names(self) -> list[str]:
        """The members' names (their architectures), smallest first."""
        return list(self.names)

    def forward(self, x: torch.Tensor):
        if self.training:
            if self.num_exits != 1:
                raise RuntimeError("the ensemble's members are trained separately (§5.3.1): train one-member "
                                   "ensembles (build_model('seq_ensemble', n, arch=...)) and chain them")
            return {"triplet": [self.members[0](x)]}
        return self.members[-1](x)



def build(num_classes: int, width: float = 1.0, pretrained=None, arch: str = "resnet50",
          hidden: int = 1024, dim: int = 128) -> SequentialEnsemble:
    """Registry builder (``build_model("seq_ensemble", ...)``): a one-member ensemble of ``arch``
    (``resnet18`` / ``resnet34`` / ``resnet50``); chain trained members with :meth:`SequentialEnsemble.chain`.
    Width and the head's hidden size as in :func:`reidbook.models.dare.build`."""
    w = float(width)
    net = EmbeddingNet(build_backbone(arch, w, pretrained), hidden=max(dim, int(round(hidden * w))), dim=dim)
    return SequentialEnsemble([net], [arch])
