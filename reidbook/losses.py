"""Every loss the course uses, each beside its equation, plus the glue that turns them into a criterion.

The pruning survey (paper 003, §2 and **Table 1**) lists the losses common in person re-ID: two
families, *metric* losses on embeddings (contrastive, triplet, triplet with margin, batch-hard
triplet, quadruplet, HAP2S, magnet) and *classification* losses on logits (cross-entropy, cosine
softmax, part-based cross-entropy); the BoT baseline adds a *center loss* (Wen et al. 2016). MGN
(paper 001, §3.2) trains with a bias-free softmax, Eq. (1),
and a batch-hard triplet loss, Eq. (2); DaRe (paper 004, §3.2) sums a batch-hard **soft-margin**
triplet loss, Eq. (2), over its four stages and the fused embedding (deep supervision).

Notation (as in the survey): ``d`` is the Euclidean distance, ``[x]_+ = max(x, 0)``, ``m`` a margin,
``f`` an embedding, ``y`` an identity label, ``W`` a classifier's weight matrix.

Conventions shared by every loss here
- Metric losses take ``(features [B, D], pids [B])``; classification losses take
  ``(logits [B, C], pids [B])``. Functions with explicit anchor/positive/negative inputs are the
  textbook forms; the ``nn.Module`` classes are the batch forms a :class:`Criterion` uses.
- **Reduction is the mean** over anchors / triplets / samples. MGN's Eq. (2) and DaRe's Eq. (2) are
  written as sums; a mean only rescales the gradient (by the batch size) and keeps the loss value
  comparable across batch sizes, which is what Hermans et al. and the BoT baseline do.
- Distances come from :func:`pairwise_distance`, whose square root has a finite gradient at zero
  distance (duplicates in a batch or a collapsed embedding would otherwise give NaN gradients).

Glue: :class:`LossTerm` (name, loss, weight, key into the model's output dict), :class:`Criterion`
(``criterion(outputs, pids) -> (total, parts)``), :class:`DeepSupervision` (a loss summed over a
list of outputs) and :func:`build_criterion` (from the preset's list of dicts).
"""
from __future__ import annotations

import math
from typing import Any, Callable, Iterable, Mapping, Sequence

import torch
import torch.nn as nn
import torch.nn.functional as F

__all__ = [
    "pairwise_distance", "safe_sqrt", "hard_example_mining",
    "cross_entropy_loss", "CrossEntropyLoss", "BiasFreeClassifier",
    "cosine_softmax_logits", "CosineSoftmaxLoss",
    "part_cross_entropy_loss", "PartCrossEntropyLoss",
    "contrastive_loss", "ContrastiveLoss",
    "triplet_loss", "batch_hard_triplet_loss", "batch_all_triplet_loss", "TripletLoss",
    "quadruplet_loss", "batch_quadruplet_loss", "QuadrupletLoss",
    "hap2s_loss", "HAP2SLoss", "magnet_loss", "MagnetLoss", "center_loss", "CenterLoss",
    "DeepSupervision", "LossTerm", "Criterion", "LOSSES", "available_losses", "build_loss",
    "build_criterion",
]


# ----------------------------------------------------------------------------------------------
# Distances
# ----------------------------------------------------------------------------------------------
def safe_sqrt(x: torch.Tensor, eps: float = 1e-12) -> torch.Tensor:
    """``sqrt(x)`` for ``x >= 0`` whose gradient is finite everywhere (0 where ``x <= eps``).

    ``d sqrt(x)/dx = 1/(2 sqrt(x))`` is infinite at 0; chained with a zero inner gradient it gives
    ``inf * 0 = NaN``. The "double where" below never evaluates ``sqrt`` at 0: entries ``<= eps``
    take ``sqrt(1)`` in the hidden branch and are then replaced by an exact 0, so their gradient is
    exactly 0 (a valid subgradient of the distance at a coincident pair). Values above ``eps`` are
    the exact square root.
    """
    mask = x > eps
    return torch.where(mask, torch.sqrt(torch.where(mask, x, torch.ones_like(x))), torch.zeros_like(x))


def pairwise_distance(x: torch.Tensor, y: torch.Tensor | None = None, squared: bool = False) -> torch.Tensor:
    """Euclidean distances ``D[i, j] = ||x_i - y_j||`` between the rows of ``x [N, D]`` and ``y [M, D]``.

    Uses ``||x||² + ||y||² − 2 x·y`` (memory ``N×M`` instead of ``N×M×D``), clamped at 0 because
    rounding can make it slightly negative; with ``y=None`` the distances of ``x`` to itself, with
    an exact zero diagonal. ``squared=True`` returns ``D²``; otherwise :func:`safe_sqrt`, so the
    gradient at zero distance is finite (no NaN).
    """
    if x.dim() != 2:
        raise ValueError(f"pairwise_distance expects features of shape [N, D], got {tuple(x.shape)}")
    same = y is None
    y = x if same else y
    if y.dim() != 2 or y.shape[1] != x.shape[1]:
        raise ValueError(f"pairwise_distance: x is {tuple(x.shape)} but y is {tuple(y.shape)}; "
                         "feature sizes must match")
    xx = x.pow(2).sum(1, keepdim=True)
    yy = y.pow(2).sum(1, keepdim=True).t()
    d2 = (xx + yy - 2.0 * (x @ y.t())).clamp(min=0.0)
    if same:  # the self-distance is exactly zero, whatever the rounding
        d2 = d2.masked_fill(torch.eye(x.shape[0], dtype=torch.bool, device=x.device), 0.0)
    return d2 if squared else safe_sqrt(d2)


def _pid_masks(pids: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """``(same [B, B] without the diagonal, different [B, B])`` identity masks."""
    same = pids.view(-1, 1) == pids.view(1, -1)
    eye = torch.eye(pids.numel(), dtype=torch.bool, device=pids.device)
    return same & ~eye, ~same


def _check_metric_inputs(features: torch.Tensor, pids: torch.Tensor, who: str) -> None:
    if features.dim() != 2:
        raise ValueError(f"{who}: features must be [B, D], got {tuple(features.shape)} "
                         "(flatten pooled feature maps first)")
    if pids.dim() != 1 or pids.numel() != features.shape[0]:
        raise ValueError(f"{who}: pids must be [B] with B = {features.shape[0]}, got {tuple(pids.shape)}")


def _zero_like_graph(features: torch.Tensor) -> torch.Tensor:
    """A zero loss that still belongs to the graph (so ``backward`` works on an all-easy batch)."""
    return features.sum() * 0.0


def hard_example_mining(dist: torch.Tensor, pids: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """Batch-hard mining (Hermans et al. 2017): for each anchor ``a`` the **furthest positive**
    ``max_{y_p = y_a, p≠a} d(a, p)`` and the **nearest negative** ``min_{y_n ≠ y_a} d(a, n)``.

    Returns ``(dist_ap [B], dist_an [B], valid [B])``; ``valid`` is False for an anchor with no
    positive or no negative in the batch (its entries are 0 and must be ignored).
    """
    pos, neg = _pid_masks(pids)
    ninf = torch.finfo(dist.dtype).min
    dist_ap = torch.where(pos, dist, torch.full_like(dist, ninf)).max(1).values
    dist_an = torch.where(neg, dist, torch.full_like(dist, torch.finfo(dist.dtype).max)).min(1).values
    valid = pos.any(1) & neg.any(1)
    zero = torch.zeros_like(dist_ap)
    return torch.where(valid, dist_ap, zero), torch.where(valid, dist_an, zero), valid


# ----------------------------------------------------------------------------------------------
# Classification losses
# ----------------------------------------------------------------------------------------------
def _check_logits(logits: torch.Tensor, pids: torch.Tensor, who: str) -> None:
    if logits.dim() != 2:
        raise ValueError(f"{who}: logits must be [B, C], got {tuple(logits.shape)}")
    if pids.dim() != 1 or pids.numel() != logits.shape[0]:
        raise ValueError(f"{who}: pids must be [B] with B = {logits.shape[0]}, got {tuple(pids.shape)}")
    if pids.numel() and (int(pids.min()) < 0 or int(pids.max()) >= logits.shape[1]):
        raise ValueError(
            f"{who}: identity labels must lie in [0, {logits.shape[1] - 1}] for a classifier with "
            f"{logits.shape[1]} classes, got [{int(pids.min())}, {int(pids.max())}]; build the model with "
            "num_classes = dataset.num_train_pids (train pids are relabelled to 0..N-1)")


def cross_entropy_loss(logits: torch.Tensor, pids: torch.Tensor, label_smoothing: float = 0.0) -> torch.Tensor:
    """Softmax cross-entropy, optionally with label smoothing.

    Survey (003) Table 1, "Cross-Entropy"; MGN (001) Eq. (1):
        ``L_CE = −1/N Σ_i log( exp(W_{y_i}ᵀ f_i) / Σ_k exp(W_kᵀ f_i) )``.
    Label smoothing (Szegedy et al., "Rethinking the Inception Architecture", CVPR 2016, §7) replaces
    the one-hot target by ``q_k = (1 − ε) δ_{k, y} + ε / C``:
        ``L = −1/N Σ_i Σ_k q_k log p_k(f_i)``;
    the BoT re-ID baseline (Luo et al. 2019) uses ε = 0.1. ε = 0 is the plain loss above.
    Written out by hand (the course teaches it); equals ``F.cross_entropy(..., label_smoothing=ε)``.
    """
    _check_logits(logits, pids, "cross_entropy_loss")
    if not 0.0 <= label_smoothing < 1.0:
        raise ValueError(f"label_smoothing must be in [0, 1), got {label_smoothing}")
    log_p = F.log_softmax(logits, dim=1)
    nll = -log_p.gather(1, pids.view(-1, 1).long()).squeeze(1)      # −log p_y
    if label_smoothing == 0.0:
        return nll.mean()
    uniform = -log_p.mean(1)                                          # −(1/C) Σ_k log p_k
    return ((1.0 - label_smoothing) * nll + label_smoothing * uniform).mean()


class CrossEntropyLoss(nn.Module):
    """Module form of :func:`cross_entropy_loss` for a :class:`Criterion` (``label_smoothing`` = ε)."""

    def __init__(self, label_smoothing: float = 0.0):
        super().__init__()
        if not 0.0 <= label_smoothing < 1.0:
            raise ValueError(f"label_smoothing must be in [0, 1), got {label_smoothing}")
        self.label_smoothing = float(label_smoothing)

    def forward(self, logits: torch.Tensor, pids: torch.Tensor) -> torch.Tensor:
        return cross_entropy_loss(logits, pids, self.label_smoothing)

    def extra_repr(self) -> str:
        return f"label_smoothing={self.label_smoothing}"


class BiasFreeClassifier(nn.Linear):
    """The identity classifier ``logits = W f`` **without a bias** (MGN §3.2 after its ref. [38]).

    Just ``nn.Linear(in_features, num_classes, bias=False)``: dropping the bias makes every class
    a direction in feature space, so the softmax decision depends on the angle to ``W_k`` and the
    feature norm only, which matches the Euclidean/cosine test-time retrieval better. Weights are
    initialised ``N(0, 0.001²)`` as in the BoT baseline (a tiny start keeps the early logits flat).
    Any model may equally write ``nn.Linear(d, C, bias=False)``; this class only names the idea.
    """

    def __init__(self, in_features: int, num_classes: int, std: float = 0.001):
        super().__init__(in_features, num_classes, bias=False)
        nn.init.normal_(self.weight, std=std)


def cosine_softmax_logits(features: torch.Tensor, weight: torch.Tensor, scale: torch.Tensor | float) -> torch.Tensor:
    """Logits ``κ · W̃_kᵀ f̃`` of the cosine softmax classifier (``~`` = L2-normalised)."""
    return scale * F.normalize(features, dim=1) @ F.normalize(weight, dim=1).t()


class CosineSoftmaxLoss(nn.Module):
    """Cosine softmax classifier + cross-entropy (Wojke & Bewley, "Deep Cosine Metric Learning for
    Person Re-identification", WACV 2018).

    Survey (003) Table 1, "Classification Cosine Softmax":
        ``L_CCE = −1/N Σ_i log( exp(κ W̃_{y_i}ᵀ f̃_i) / Σ_k exp(κ W̃_kᵀ f̃_i) )``,
    with normalised class weights ``W̃_k`` and features ``f̃_i`` and a **learnable scale** κ > 0.
    Because both are unit vectors, the classifier separates identities by angle, i.e. by the
    cosine similarity used at test time.

    Takes ``(features [B, D], pids)`` and owns ``weight [C, D]`` and κ, so its parameters must be
    given to the optimiser (a :class:`Criterion` is an ``nn.Module``: pass ``criterion.parameters()``).
    Departure: we parametrise ``κ = softplus(ρ)`` to keep it positive under SGD and start it at
    ``init_scale`` (our choice, 16); the paper only requires κ to be a free, learned parameter.
    """

    def __init__(self, in_features: int, num_classes: int, init_scale: float = 16.0,
                 label_smoothing: float = 0.0):
        super().__init__()
        if init_scale <= 0:
            raise ValueError(f"init_scale must be > 0, got {init_scale}")
        self.weight = nn.Parameter(torch.randn(num_classes, in_features) * 0.01)
        # inverse softplus so that softplus(rho) == init_scale
        self.rho = nn.Parameter(torch.tensor(init_scale + math.log(-math.expm1(-init_scale))))
        self.label_smoothing = float(label_smoothing)

    @property
    def scale(self) -> torch.Tensor:
        return F.softplus(self.rho)

    def logits(self, features: torch.Tensor) -> torch.Tensor:
        return cosine_softmax_logits(features, self.weight, self.scale)

    def forward(self, features: torch.Tensor, pids: torch.Tensor) -> torch.Tensor:
        return cross_entropy_loss(self.logits(features), pids, self.label_smoothing)


def part_cross_entropy_loss(part_logits: Sequence[torch.Tensor], pids: torch.Tensor,
                            label_smoothing: float = 0.0) -> torch.Tensor:
    """Part-based cross-entropy (PCB, Sun et al. ECCV 2018): one classifier per horizontal part.

    Survey (003) Table 1, "Part-Based Cross-Entropy": ``L_PCE = Σ_{p=1}^{P} L^p_CE``, the **sum**
    of the cross-entropy of each part's logits (a list of ``P`` tensors ``[B, C]``).
    """
    if isinstance(part_logits, torch.Tensor) or not len(part_logits):
        raise TypeError("part_cross_entropy_loss expects a non-empty list of per-part logits [B, C]")
    return sum(cross_entropy_loss(lg, pids, label_smoothing) for lg in part_logits)


class PartCrossEntropyLoss(CrossEntropyLoss):
    """Module form of :func:`part_cross_entropy_loss`; consumes the whole list of part logits."""

    accepts_list = True

    def forward(self, part_logits: Sequence[torch.Tensor], pids: torch.Tensor) -> torch.Tensor:
        return part_cross_entropy_loss(part_logits, pids, self.label_smoothing)


# ----------------------------------------------------------------------------------------------
# Metric losses: pairs, triplets, quadruplets (explicit inputs) and their batch forms
# ----------------------------------------------------------------------------------------------
def _row_distance(a: torch.Tensor, b: torch.Tensor) -> torch.Tensor:
    """``||a_i − b_i||`` row by row, with the safe square root."""
    return safe_sqrt((a - b).pow(2).sum(-1))


def contrastive_loss(f1: torch.Tensor, f2: torch.Tensor, y: torch.Tensor, margin: float = 1.0) -> torch.Tensor:
    """Contrastive loss (Hadsell, Chopra & LeCun, "Dimensionality Reduction by Learning an
    Invariant Mapping", CVPR 2006) on explicit pairs ``(f1_i, f2_i)``.

    ``y_i = 0`` for a positive (same identity) pair, ``1`` for a negative pair (the survey's and
    Hadsell's convention). With ``d_i = ||f1_i − f2_i||``:
        ``L = 1/(2N) Σ_i [ (1 − y_i) d_i² + y_i max(0, m − d_i)² ]``.
    Departure: the survey's Table 1 prints the hinge as ``max(0, m − d²)``; we follow Hadsell et al.
    (hinge on the distance, then squared), whose gradient vanishes smoothly at the margin.
    """
    d = _row_distance(f1, f2)
    y = y.to(d.dtype)
    return 0.5 * ((1 - y) * d.pow(2) + y * (margin - d).clamp(min=0).pow(2)).mean()


class ContrastiveLoss(nn.Module):
    """Batch form of :func:`contrastive_loss`: every pair ``i < j`` of the batch is a pair,
    ``y = [pid_i ≠ pid_j]``, averaged over the pairs (a Siamese network seeing all pairs at once)."""

    def __init__(self, margin: float = 1.0):
        super().__init__()
        self.margin = float(margin)

    def forward(self, features: torch.Tensor, pids: torch.Tensor) -> torch.Tensor:
        _check_metric_inputs(features, pids, "ContrastiveLoss")
        d = pairwise_distance(features)
        iu = torch.triu_indices(len(pids), len(pids), offset=1, device=features.device)
        d = d[iu[0], iu[1]]
        neg = (pids[iu[0]] != pids[iu[1]]).to(d.dtype)
        if d.numel() == 0:
            return _zero_like_graph(features)
        return 0.5 * ((1 - neg) * d.pow(2) + neg * (self.margin - d).clamp(min=0).pow(2)).mean()

    def extra_repr(self) -> str:
        return f"margin={self.margin}"


def triplet_loss(fa: torch.Tensor, fp: torch.Tensor, fn: torch.Tensor, margin: float = 0.0) -> torch.Tensor:
    """Triplet loss on explicit triplets (anchor, positive, negative), ``y_a = y_p ≠ y_n``.

    Survey (003) Table 1: "Triplet" (its ref. [47], Ding et al. 2015) is
        ``L_T = 1/N_T Σ [ d(f_a, f_p) − d(f_a, f_n) ]_+``   (``margin = 0``),
    and "Triplet Loss with Margin" (ref. [7], Cheng et al. 2016)
        ``L_T = 1/N_T Σ [ m + d(f_a, f_p) − d(f_a, f_n) ]_+``.
    (Cheng et al. add a second, positive-pair term ``[d(f_a,f_p) − τ]_+``; Table 1 and we keep only
    the margin triplet.) Gradient where the hinge is active: ``∂L/∂f_p = −u_ap/N_T``,
    ``∂L/∂f_n = u_an/N_T``, ``∂L/∂f_a = (u_ap − u_an)/N_T`` with unit vectors ``u_ap = (f_a−f_p)/d_ap``.
    """
    return (margin + _row_distance(fa, fp) - _row_distance(fa, fn)).clamp(min=0).mean()


def batch_hard_triplet_loss(features: torch.Tensor, pids: torch.Tensor, margin: float | None = 0.3,
                            soft: bool = False) -> torch.Tensor:
    """Batch-hard triplet loss (Hermans, Beyer & Leibe, "In Defense of the Triplet Loss for Person
    Re-Identification", 2017) on a P×K batch.

    Survey (003) Table 1 "Metric Learning Semi-Hard Triplet" and MGN (001) Eq. (2):
        ``L_BH = 1/N Σ_a [ m + max_{y_p = y_a} d(f_a, f_p) − min_{y_n ≠ y_a} d(f_a, f_n) ]_+``
    (furthest positive, nearest negative of every anchor; MGN uses m = 1.2, BoT 0.3).
    Soft margin (``soft=True`` or ``margin=None``; Hermans et al. §2, used by DaRe (004) Eq. (2)):
        ``L_BH,soft = 1/N Σ_a ln(1 + exp( max_p d(f_a, f_p) − min_n d(f_a, f_n) ))``,
    which never reaches zero and keeps pulling already-correct triplets together. Computed with
    ``softplus`` (stable for large arguments). Anchors with no positive or no negative in the batch
    are skipped; the mean is over the remaining ones.
    """
    _check_metric_inputs(features, pids, "batch_hard_triplet_loss")
    dist_ap, dist_an, valid = hard_example_mining(pairwise_distance(features), pids)
    if not bool(valid.any()):
        return _zero_like_graph(features)
    gap = (dist_ap - dist_an)[valid]
    if soft or margin is None:
        return F.softplus(gap).mean()
    return (margin + gap).clamp(min=0).mean()


def batch_all_triplet_loss(features: torch.Tensor, pids: torch.Tensor, margin: float | None = 0.3,
                           soft: bool = False, nonzero_only: bool = False) -> torch.Tensor:
    """Batch-all triplet loss (Hermans et al. 2017): every valid triplet of the batch,
        ``L_BA = 1/N_T Σ_{a, p≠a, n : y_a = y_p ≠ y_n} [ m + d(f_a, f_p) − d(f_a, f_n) ]_+``
    (``softplus`` instead of the hinge when ``soft``). ``nonzero_only=True`` averages over the
    active triplets only (Hermans et al.'s "BA≠0"), so easy triplets do not dilute the gradient.
    Uses a ``B×B×B`` mask: meant for re-ID batch sizes (P×K ≤ a few hundred).
    """
    _check_metric_inputs(features, pids, "batch_all_triplet_loss")
    dist = pairwise_distance(features)
    pos, neg = _pid_masks(pids)
    valid = pos.unsqueeze(2) & neg.unsqueeze(1)                     # [a, p, n]
    if not bool(valid.any()):
        return _zero_like_graph(features)
    gap = (dist.unsqueeze(2) - dist.unsqueeze(1))[valid]            # d(a,p) − d(a,n)
    losses = F.softplus(gap) if (soft or margin is None) else (margin + gap).clamp(min=0)
    if nonzero_only and not soft and margin is not None:
        active = losses > 0
        return losses[active].mean() if bool(active.any()) else _zero_like_graph(features)
    return losses.mean()


class TripletLoss(nn.Module):
    """Batch triplet loss for a :class:`Criterion`: ``(features, pids) -> loss``.

    ``mining="hard"`` → :func:`batch_hard_triplet_loss`, ``"all"`` → :func:`batch_all_triplet_loss`;
    ``soft=True`` (or ``margin=None``) → the soft-margin ``ln(1 + exp(·))`` variant.
    """

    def __init__(self, margin: float | None = 0.3, mining: str = "hard", soft: bool = False,
                 nonzero_only: bool = False):
        super().__init__()
        if mining not in ("hard", "all"):
            raise ValueError(f"TripletLoss: mining must be 'hard' or 'all', got {mining!r}")
        self.margin, self.mining, self.soft, self.nonzero_only = margin, mining, bool(soft), nonzero_only

    def forward(self, features: torch.Tensor, pids: torch.Tensor) -> torch.Tensor:
        if self.mining == "hard":
            return batch_hard_triplet_loss(features, pids, self.margin, self.soft)
        return batch_all_triplet_loss(features, pids, self.margin, self.soft, self.nonzero_only)

    def extra_repr(self) -> str:
        return f"margin={self.margin}, mining={self.mining!r}, soft={self.soft}"


def quadruplet_loss(fa: torch.Tensor, fp: torch.Tensor, fn: torch.Tensor, fk: torch.Tensor,
                    margin1: float = 1.0, margin2: float = 0.5) -> torch.Tensor:
    """Quadruplet loss (Chen, Chen, Zhang & Huang, "Beyond Triplet Loss: a Deep Quadruplet Network
    for Person Re-identification", CVPR 2017) on explicit quadruplets, ``y_a = y_p ≠ y_n ≠ y_k``
    (and ``y_k ≠ y_a``). Survey (003) Table 1:
        ``L_quad = 1/N Σ [ m1 + d(f_a, f_p) − d(f_a, f_n) ]_+ + 1/N Σ [ m2 + d(f_a, f_p) − d(f_n, f_k) ]_+``.
    The second term compares a positive pair with a negative pair that shares **no** sample with it,
    which pushes intra-class distances below inter-class distances globally (m2 < m1: a weaker push).
    Departure: Chen et al. learn the metric ``d`` with a small network and use an adaptive margin;
    as in the survey's table we use the Euclidean distance and fixed margins.
    """
    d_ap = _row_distance(fa, fp)
    return ((margin1 + d_ap - _row_distance(fa, fn)).clamp(min=0).mean()
            + (margin2 + d_ap - _row_distance(fn, fk)).clamp(min=0).mean())


def batch_quadruplet_loss(features: torch.Tensor, pids: torch.Tensor, margin1: float = 1.0,
                          margin2: float = 0.5) -> torch.Tensor:
    """Batch-hard form of :func:`quadruplet_loss` on a P×K batch (needs P ≥ 3 for the second term).

    For every anchor: the furthest positive ``d_ap``, the nearest negative ``d_an`` and the
    nearest **negative pair** ``min d(f_n, f_k)`` over ``y_n ≠ y_k`` with both ``≠ y_a``:
        ``1/N Σ_a [m1 + d_ap − d_an]_+ + 1/N Σ_a [m2 + d_ap − min_{n,k} d(f_n, f_k)]_+``.
    This is the hard-mining idea of Chen et al. (§3.3, margin-based online hard negative mining)
    applied the Hermans way; anchors lacking a positive/negative (pair) are skipped in that term.
    """
    _check_metric_inputs(features, pids, "batch_quadruplet_loss")
    dist = pairwise_distance(features)
    dist_ap, dist_an, valid = hard_example_mining(dist, pids)
    if not bool(valid.any()):
        return _zero_like_graph(features)
    first = (margin1 + dist_ap - dist_an)[valid].clamp(min=0).mean()
    _, neg = _pid_masks(pids)
    pair_ok = neg.unsqueeze(0) & neg.unsqueeze(2) & neg.unsqueeze(1)   # [a, n, k]: y_n≠y_a, y_k≠y_a, y_n≠y_k
    big = torch.finfo(dist.dtype).max
    d_nk = torch.where(pair_ok, dist.unsqueeze(0).expand_as(pair_ok), torch.full_like(pair_ok, big, dtype=dist.dtype))
    d_nk = d_nk.flatten(1).min(1).values
    ok2 = valid & pair_ok.flatten(1).any(1)
    second = (margin2 + dist_ap - d_nk)[ok2].clamp(min=0).mean() if bool(ok2.any()) else _zero_like_graph(features)
    return first + second


class QuadrupletLoss(nn.Module):
    """Module form of :func:`batch_quadruplet_loss` (``margin1``, ``margin2``)."""

    def __init__(self, margin1: float = 1.0, margin2: float = 0.5):
        super().__init__()
        self.margin1, self.margin2 = float(margin1), float(margin2)

    def forward(self, features: torch.Tensor, pids: torch.Tensor) -> torch.Tensor:
        return batch_quadruplet_loss(features, pids, self.margin1, self.margin2)

    def extra_repr(self) -> str:
        return f"margin1={self.margin1}, margin2={self.margin2}"


def hap2s_loss(features: torch.Tensor, pids: torch.Tensor, margin: float = 0.5, weighting: str = "exp",
               sigma: float = 0.5, alpha: float = 10.0, detach_weights: bool = False) -> torch.Tensor:
    """Hard-aware point-to-set (HAP2S) loss (Yu, Liu, Yan, Wang, Lin & Lin, "Hard-Aware Point-to-Set
    Deep Metric for Person Re-identification", ECCV 2018).

    Survey (003) Table 1: ``L_HAP2S = 1/N Σ_a [ m + d(f_a, S_p) − d(f_a, S_n) ]_+`` with the
    point-to-set distance a weighted mean over the anchor's positive set ``S_p`` (other images of
    its identity) or negative set ``S_n``:
        ``d(f_a, S) = Σ_{x∈S} w_x d(f_a, x) / Σ_{x∈S} w_x``,
    where harder samples weigh more — far positives, near negatives:
        exponential (``weighting="exp"``): ``w_p = exp(d_ap / σ)``,   ``w_n = exp(−d_an / σ)``;
        polynomial (``weighting="poly"``): ``w_p = (d_ap + 1)^α``,   ``w_n = (d_an + 1)^(−α)``.
    σ → 0 (or α → ∞) recovers batch-hard (max / min); σ → ∞ (α = 0) the plain set mean.
    (Table 1 prints max/min around the set distances, a typo carried from the batch-hard row.)
    Normalised weights are computed as a masked softmax of ``±d/σ`` or ``±α log(1 + d)``, which is
    the same ratio without overflow. Gradients flow through the weights (``detach_weights=True``
    treats them as constants). Defaults σ = 0.5, α = 10 are our reading of the paper's settings.
    """
    _check_metric_inputs(features, pids, "hap2s_loss")
    if weighting not in ("exp", "poly"):
        raise ValueError(f"hap2s_loss: weighting must be 'exp' or 'poly', got {weighting!r}")
    dist = pairwise_distance(features)
    pos, neg = _pid_masks(pids)
    valid = pos.any(1) & neg.any(1)
    if not bool(valid.any()):
        return _zero_like_graph(features)
    score = dist / sigma if weighting == "exp" else alpha * torch.log1p(dist)
    if detach_weights:
        score = score.detach()
    ninf = torch.full_like(dist, float("-inf"))
    w_p = torch.softmax(torch.where(pos, score, ninf), dim=1).nan_to_num(0.0)    # far positives weigh more
    w_n = torch.softmax(torch.where(neg, -score, ninf), dim=1).nan_to_num(0.0)   # near negatives weigh more
    d_sp, d_sn = (w_p * dist).sum(1), (w_n * dist).sum(1)
    return (margin + d_sp - d_sn)[valid].clamp(min=0).mean()


class HAP2SLoss(nn.Module):
    """Module form of :func:`hap2s_loss`."""

    def __init__(self, margin: float = 0.5, weighting: str = "exp", sigma: float = 0.5, alpha: float = 10.0,
                 detach_weights: bool = False):
        super().__init__()
        if weighting not in ("exp", "poly"):
            raise ValueError(f"HAP2SLoss: weighting must be 'exp' or 'poly', got {weighting!r}")
        self.kw = dict(margin=margin, weighting=weighting, sigma=sigma, alpha=alpha, detach_weights=detach_weights)

    def forward(self, features: torch.Tensor, pids: torch.Tensor) -> torch.Tensor:
        return hap2s_loss(features, pids, **self.kw)

    def extra_repr(self) -> str:
        return ", ".join(f"{k}={v!r}" for k, v in self.kw.items())


def magnet_loss(features: torch.Tensor, pids: torch.Tensor, alpha: float = 1.0, eps: float = 1e-8) -> torch.Tensor:
    """Magnet loss (Rippel, Paluri, Dollár & Bourdev, "Metric Learning with Adaptive Density
    Discrimination", ICLR 2016), batch version.

    Survey (003) Table 1, "Magnet":
        ``L_mag = 1/N Σ_i [ −log( exp(−d(f_i, µ(f_i))/(2σ²) − m) / Σ_k exp(−d(f_i, µ_k)/(2σ²)) ) ]_+``
    with ``µ(f_i)`` the mean of ``f_i``'s cluster, ``σ² = 1/(N−1) Σ_i d(f_i, µ(f_i))`` the variance of
    all samples about their own cluster mean, ``m`` (= ``alpha``) a margin, and ``d`` the **squared**
    Euclidean distance (as in Rippel et al.). The loss is a margin-ed negative log-likelihood that
    ``f_i`` belongs to its own cluster under isotropic Gaussians of shared variance σ².

    Departures (a practical batch version): Rippel et al. keep K clusters per class found by k-means
    over the whole training set (re-computed periodically) and sample batches of nearby clusters;
    here each identity in the batch is **one cluster** whose mean is computed from the batch itself
    (a P×K sampler gives K samples per mean). As in the original (and unlike Table 1's Σ over all C),
    the denominator runs over the **other** identities' clusters; σ² is clamped at ``eps`` (a batch
    of singletons has σ² = 0). Gradients flow through the means and σ², as in the original.
    """
    _check_metric_inputs(features, pids, "magnet_loss")
    classes, inverse = torch.unique(pids, return_inverse=True)
    if classes.numel() < 2:
        return _zero_like_graph(features)
    onehot = F.one_hot(inverse, classes.numel()).to(features.dtype)           # [B, C]
    means = (onehot.t() @ features) / onehot.sum(0, keepdim=True).t()        # [C, D]
    d2 = pairwise_distance(features, means, squared=True)                     # [B, C]
    own = onehot.bool()
    d_own = d2[own]                                                           # [B]
    var = (d_own.sum() / max(features.shape[0] - 1, 1)).clamp(min=eps)
    logit = -d2 / (2 * var)
    numerator = logit[own] - alpha
    denominator = torch.logsumexp(logit.masked_fill(own, float("-inf")), dim=1)
    return (denominator - numerator).clamp(min=0).mean()                      # −log(num/den), hinged


class MagnetLoss(nn.Module):
    """Module form of :func:`magnet_loss` (``alpha`` = the margin m)."""

    def __init__(self, alpha: float = 1.0):
        super().__init__()
        self.alpha = float(alpha)

    def forward(self, features: torch.Tensor, pids: torch.Tensor) -> torch.Tensor:
        return magnet_loss(features, pids, self.alpha)

    def extra_repr(self) -> str:
        return f"alpha={self.alpha}"


# ----------------------------------------------------------------------------------------------
# Glue: deep supervision, loss terms, criteria, the registry
# ----------------------------------------------------------------------------------------------
def center_loss(features: torch.Tensor, pids: torch.Tensor, centers: torch.Tensor) -> torch.Tensor:
    """Center loss (Wen et al., "A Discriminative Feature Learning Approach for Deep Face Recognition",
    ECCV 2016, Eq. 2), in the BoT baseline's normalisation (Luo et al. CVPRW 2019, §3.6, Eq. 7 and its
    code): ``L_C = (1/B) Σ_i ||f_i − c_{y_i}||²`` (Wen et al. write ``½ Σ_i``; a constant factor)."""
    _check_metric_inputs(features, pids, "center_loss")
    return (features - centers[pids]).pow(2).sum(1).mean()


class CenterLoss(nn.Module):
    """Center loss on an embedding (see :func:`center_loss`): pulls each feature to its identity's centre
    ``c_y``; BoT adds it to softmax + triplet with weight ``β = 5e-4`` (§3.6).

    **Centres** are a buffer ``[C, D]``, not trained by the model's optimiser: after each training call
    they take BoT's own step, plain SGD with ``center_lr = 0.5`` on the *unweighted* loss (BoT's code
    divides the centre gradients by β and steps a separate ``SGD(lr=0.5)``):
    ``c_j ← c_j + center_lr · (2/B) · Σ_{i: y_i=j} (f_i − c_j)`` — Wen et al.'s update (§3.2, Eq. 4)
    with BoT's rate. The loss itself back-propagates to the features only.

    ``num_classes`` may be left ``None``: the buffer then grows to the largest label seen (new centres
    drawn from N(0, 1) as BoT's ``torch.randn`` init); ``feat_dim`` is read from the first batch.
    """

    def __init__(self, num_classes: int | None = None, feat_dim: int | None = None, center_lr: float = 0.5,
                 seed: int = 0):
        super().__init__()
        if not center_lr >= 0:
            raise ValueError(f"center_lr must be >= 0, got {center_lr}")
        self.center_lr = float(center_lr)
        self._gen = torch.Generator().manual_seed(int(seed))
        n, d = int(num_classes or 0), int(feat_dim or 0)
        self.register_buffer("centers", torch.randn(n, d, generator=self._gen) if n and d else torch.zeros(0, d))

    def _grow(self, num: int, dim: int, like: torch.Tensor) -> None:
        c = self.centers
        if c.shape[1] not in (0, dim) and c.shape[0] > 0:
            raise ValueError(f"CenterLoss: features have {dim} dimensions but the centres {c.shape[1]}")
        if c.shape[0] >= num and c.shape[1] == dim:
            return
        new = torch.randn(num - c.shape[0] if c.shape[1] == dim else num, dim, generator=self._gen)
        keep = c if c.shape[1] == dim else c.new_zeros(0, dim)
        self.centers = torch.cat([keep.to(like), new.to(like)], 0)

    def _load_from_state_dict(self, state_dict, prefix, *args, **kwargs):
        key = prefix + "centers"
        if key in state_dict:  # a checkpoint's centres define the size
            self.centers = torch.empty_like(state_dict[key])
        super()._load_from_state_dict(state_dict, prefix, *args, **kwargs)

    def forward(self, features: torch.Tensor, pids: torch.Tensor) -> torch.Tensor:
        _check_metric_inputs(features, pids, "CenterLoss")
        self._grow(int(pids.max()) + 1, features.shape[1], features.detach())
        centers = self.centers.to(features.dtype)
        loss = center_loss(features, pids, centers)
        if self.training and self.center_lr > 0:
            with torch.no_grad():
                f = features.detach().to(self.centers.dtype)
                diff = torch.zeros_like(self.centers).index_add_(0, pids, f - self.centers[pids])
                self.centers += self.center_lr * 2.0 / features.shape[0] * diff
        return loss


class DeepSupervision(nn.Module):
    """Apply ``loss`` to every output in a list and **sum**: ``L = Σ_s loss(outputs_s, pids)``.

    DaRe (004) §3.2: ``ℓ_all = Σ_{s=1}^{4} ℓ_s + ℓ_fusion``; MGN (001) §3.2 likewise sums its
    softmax losses over 8 features (3 global, 5 local) and its triplet losses over the 3 global ones;
    PCB sums its 6 stripes' cross-entropies. A single tensor is passed through.
    """

    def __init__(self, loss: Callable[[Any, torch.Tensor], torch.Tensor]):
        super().__init__()
        self.loss = loss

    def forward(self, outputs: torch.Tensor | Sequence[torch.Tensor], pids: torch.Tensor) -> torch.Tensor:
        if isinstance(outputs, torch.Tensor):
            return self.loss(outputs, pids)
        if not len(outputs):
            raise ValueError("DeepSupervision got an empty list of outputs")
        return sum(self.loss(o, pids) for o in outputs)


class LossTerm(nn.Module):
    """One weighted term of a criterion: ``weight * loss(outputs[key], pids)``.

    ``loss`` is a callable ``(tensor, pids) -> scalar`` (usually one of the modules above). If
    ``outputs[key]`` is a list (several branches, parts or stages) the loss is applied to each
    element and summed (:class:`DeepSupervision`), unless the loss itself consumes lists
    (``loss.accepts_list``, e.g. :class:`PartCrossEntropyLoss`).
    """

    def __init__(self, name: str, loss: Callable, weight: float = 1.0, key: str = "logits"):
        super().__init__()
        if not callable(loss):
            raise TypeError(f"LossTerm {name!r}: loss must be callable, got {type(loss).__name__}")
        self.name, self.weight, self.key = str(name), float(weight), str(key)
        self.loss = loss  # registered as a sub-module when it is one (its parameters then train)

    def forward(self, outputs: Mapping[str, Any], pids: torch.Tensor) -> torch.Tensor:
        if self.key not in outputs:
            raise KeyError(f"loss term {self.name!r} reads outputs[{self.key!r}], but the model returned the "
                           f"keys {sorted(outputs)}; fix the term's 'key' (or put the model in train() mode)")
        value = outputs[self.key]
        if isinstance(value, (list, tuple)) and not getattr(self.loss, "accepts_list", False):
            return DeepSupervision(self.loss)(value, pids)
        return self.loss(value, pids)

    def extra_repr(self) -> str:
        return f"name={self.name!r}, weight={self.weight}, key={self.key!r}"


class Criterion(nn.Module):
    """A model's training objective: ``total = Σ_t weight_t · loss_t(outputs[key_t], pids)``.

    ``criterion(outputs: dict, pids) -> (total: Tensor, parts: dict[str, float])`` where ``parts``
    maps each term's name to its **unweighted** value (a float, for logging and plots), so
    ``total == Σ_t weight_t · parts[name_t]``. A non-finite term raises ``FloatingPointError``
    naming it. It is an ``nn.Module``: losses with parameters (:class:`CosineSoftmaxLoss`) move
    with ``.to(device)`` and train when ``criterion.parameters()`` is given to the optimiser.
    """

    def __init__(self, terms: Iterable[LossTerm]):
        super().__init__()
        terms = list(terms)
        if not terms:
            raise ValueError("Criterion needs at least one LossTerm")
        names = [t.name for t in terms]
        if len(set(names)) != len(names):
            raise ValueError(f"Criterion: loss term names must be unique, got {names}")
        self.terms = nn.ModuleList(terms)

    def forward(self, outputs: Mapping[str, Any], pids: torch.Tensor) -> tuple[torch.Tensor, dict[str, float]]:
        if not isinstance(outputs, Mapping):
            raise TypeError(f"Criterion expects the model's train-mode dict of outputs, got {type(outputs).__name__}; "
                            "call model.train() before computing the training loss")
        total, parts = None, {}
        for term in self.terms:
            value = term(outputs, pids)
            v = float(value.detach())
            if not math.isfinite(v):
                raise FloatingPointError(
                    f"loss term {term.name!r} ({type(term.loss).__name__} on outputs[{term.key!r}]) is {v}; "
                    "training diverged: lower the learning rate, check the inputs for NaN, or add warm-up")
            parts[term.name] = v
            total = term.weight * value if total is None else total + term.weight * value
        return total, parts


# name -> factory(**options) returning a (tensor|list, pids) -> scalar callable
LOSSES: dict[str, Callable[..., nn.Module]] = {
    "cross_entropy": CrossEntropyLoss,
    "part_cross_entropy": PartCrossEntropyLoss,
    "cosine_softmax": CosineSoftmaxLoss,
    "contrastive": ContrastiveLoss,
    "triplet": TripletLoss,
    "batch_hard_triplet": lambda margin=0.3, **kw: TripletLoss(margin=margin, mining="hard", **kw),
    "soft_triplet": lambda **kw: TripletLoss(margin=None, mining="hard", soft=True, **kw),
    "batch_all_triplet": lambda margin=0.3, **kw: TripletLoss(margin=margin, mining="all", **kw),
    "quadruplet": QuadrupletLoss,
    "hap2s": HAP2SLoss,
    "magnet": MagnetLoss,
    "center": CenterLoss,
}


def available_losses() -> list[str]:
    """The loss names :func:`build_loss` and :func:`build_criterion` accept."""
    return sorted(LOSSES)


def build_loss(name: str, **options: Any) -> nn.Module:
    """A loss from the registry by name, e.g. ``build_loss("cross_entropy", label_smoothing=0.1)``."""
    if name not in LOSSES:
        raise ValueError(f"unknown loss {name!r}; valid loss names: {', '.join(available_losses())}")
    try:
        return LOSSES[name](**options)
    except TypeError as err:
        raise TypeError(f"bad options {options} for loss {name!r}: {err}") from err


_SPEC_KEYS = {"name", "loss", "weight", "key", "options"}


def build_criterion(specs: Iterable[Mapping[str, Any] | LossTerm]) -> Criterion:
    """A :class:`Criterion` from a preset's list of term specs, e.g.
    ``[{"name": "ce", "loss": "cross_entropy", "weight": 1.0, "key": "logits",
    "options": {"label_smoothing": 0.1}}, {"name": "tri", "loss": "batch_hard_triplet",
    "key": "triplet", "options": {"margin": 1.2}}]``. A ready :class:`LossTerm` passes through;
    ``name`` defaults to the loss name, ``weight`` to 1, ``key`` to ``"logits"``.
    """
    terms = []
    for i, spec in enumerate(specs):
        if isinstance(spec, LossTerm):
            terms.append(spec)
            continue
        if not isinstance(spec, Mapping) or "loss" not in spec:
            raise ValueError(f"loss spec #{i} must be a dict with at least a 'loss' name, got {spec!r}")
        unknown = set(spec) - _SPEC_KEYS
        if unknown:
            raise ValueError(f"loss spec #{i} ({spec['loss']!r}) has unknown fields {sorted(unknown)}; "
                             f"allowed: {sorted(_SPEC_KEYS)}")
        loss = build_loss(spec["loss"], **dict(spec.get("options") or {}))
        terms.append(LossTerm(spec.get("name", spec["loss"]), loss, spec.get("weight", 1.0), spec.get("key", "logits")))
    return Criterion(terms)
