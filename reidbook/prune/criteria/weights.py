"""Channel-pruning criteria computed from **weights** (pruning survey, paper 003, §3.2.1, Table 2).

Masson et al., "A survey of pruning methods for efficient person re-identification across domains"
(the course's paper 003). Notation of §3.2: a conv weight ``W ∈ R^{n_out×n_in×k×k}``; ``W_j`` is the
filter that produces output channel ``j``.

Every *criterion* here is a pure function of a weight tensor and returns one score per output
channel, **higher = more important = kept longer**. Weight tensors of any shape ``[n_out, ...]`` are
accepted (a conv's ``[n_out, n_in, k, k]``, or several coupled convs' filters concatenated along dim 1,
which is how :mod:`reidbook.prune.scoring` scores channels shared by a residual stage).

The methods that are *training procedures* (Auto-Balanced's regulariser, PSFP's progressive soft
pruning, Play-and-Prune's controller) keep their pieces here too: the regulariser as a
``penalty(model)`` that a training loop adds to its loss, the rate schedule, the controller update.
Their full training loops are strategies (:mod:`reidbook.prune.strategies`, next chapter).

Data-driven criteria (ThiNet, Channel Pruning, Entropy, Taylor, NISP) are in
:mod:`reidbook.prune.criteria.data`.
"""
from __future__ import annotations

import math
from dataclasses import dataclass, field

import torch
from torch import nn

__all__ = [
    "l1_norm", "l2_norm", "simc_similarity", "simc_clusters", "simc_scores", "fpgm_scores",
    "auto_balanced_split", "auto_balanced_lambda", "AutoBalancedRegularizer",
    "psfp_schedule_coefficients", "psfp_rate", "soft_prune_",
    "afp_unimportant", "afp_initial_threshold", "AFPRegularizer", "PruningRateController",
]


def _filters(weight: torch.Tensor) -> torch.Tensor:
    """``[n_out, ...]`` → ``[n_out, d]`` float64 (each output channel's filter flattened: ``vec(W_j)``)."""
    if weight.dim() < 2:
        raise ValueError(f"expected a weight of shape [n_out, ...] with at least 2 dims, got {tuple(weight.shape)}")
    return weight.detach().reshape(weight.shape[0], -1).double()


# ---------------------------------------------------------------------------------------------
# L1 / L2 norms (Li et al. 2017; survey Table 2, Eq. 3; PSFP's criterion)
# ---------------------------------------------------------------------------------------------
def l1_norm(weight: torch.Tensor) -> torch.Tensor:
    """L1 criterion (Li et al., "Pruning Filters for Efficient ConvNets", ICLR 2017; survey Table 2 and Eq. (3)):

        S_j = Σ_k |w_k|  over the weights of filter W_j   ( = M_{i,j} = ‖vec(W_{i,j})‖₁, Eq. 3 )

    Filters with small sums of absolute weights produce weak feature maps and are pruned first.
    """
    return _filters(weight).abs().sum(dim=1)


def l2_norm(weight: torch.Tensor) -> torch.Tensor:
    """L2 criterion, the one PSFP uses (survey Table 2 "S_j = Σ|w_k|²", §3.2.1 and Alg. 4 line 8).

        S_j = ‖vec(W_j)‖₂

    Table 2 writes the squared norm; the square root gives the same ranking and keeps the score in
    the units of the weights (so it can be compared with ``l1_norm`` in a plot).
    """
    return _filters(weight).pow(2).sum(dim=1).sqrt()


# ---------------------------------------------------------------------------------------------
# Redundant channels by cosine similarity (SIMC; Wang et al. 2019 [67]; survey Eq. 1–2, Alg. 2)
# ---------------------------------------------------------------------------------------------
def simc_similarity(weight: torch.Tensor, eps: float = 1e-12) -> torch.Tensor:
    """Eq. (2): ``SIMC(W_i, W_j) = W_i·W_j / (‖W_i‖·‖W_j‖)`` for every pair of filters → ``[n_out, n_out]``."""
    f = _filters(weight)
    f = f / f.norm(dim=1, keepdim=True).clamp_min(eps)
    return f @ f.T


def simc_clusters(weight: torch.Tensor, tau: float = 0.9) -> torch.Tensor:
    """Group filters into clusters whose average pairwise cosine similarity exceeds ``tau`` (Eq. 1).

    Eq. (1) defines the similarity of two clusters as the *mean* SIMC over their cross pairs
    (``Σ SIMC(W_i, W_j) / (|C_a|·|C_b|)``) and merges them while it is ``> τ``: average-linkage
    agglomerative clustering, which is what we run (starting from singletons, always merging the
    most similar pair first). Returns an integer cluster label per output channel (labels 0..n_f-1,
    numbered by their smallest member). A low τ gives few big clusters (high compression).
    """
    if not -1.0 <= tau <= 1.0:
        raise ValueError(f"SIMC threshold tau must be a cosine similarity in [-1, 1], got {tau}")
    sim = simc_similarity(weight)
    n = sim.shape[0]
    clusters: list[list[int]] = [[i] for i in range(n)]
    # Cluster-level similarity matrix (sum of cross similarities; divided by sizes when compared).
    total = sim.clone()
    total.fill_diagonal_(float("-inf"))
    sizes = torch.ones(n, dtype=torch.float64)
    alive = torch.ones(n, dtype=torch.bool)
    while alive.sum() > 1:
        avg = total / (sizes[:, None] * sizes[None, :])
        avg[~alive, :] = float("-inf")
        avg[:, ~alive] = float("-inf")
        best = int(torch.argmax(avg))
        a, b = divmod(best, n)
        if avg[a, b] <= tau:
            break
        a, b = min(a, b), max(a, b)
        clusters[a] += clusters[b]
        clusters[b] = []
        total[a, :] += total[b, :]
        total[:, a] += total[:, b]
        total[a, a] = float("-inf")
        sizes[a] += sizes[b]
        alive[b] = False
    labels = torch.empty(n, dtype=torch.long)
    for new, members in enumerate(sorted((c for c in clusters if c), key=min)):
        labels[members] = new
    return labels


def simc_scores(weight: torch.Tensor, tau: float = 0.9, seed: int = 0) -> torch.Tensor:
    """Channel scores from SIMC clusters (survey Alg. 2: keep one randomly sampled filter per cluster).

    Each cluster's *representative* is drawn at random (seeded); every representative scores
    ``1 + l1/max(l1)`` ∈ (1, 2] and every other member ``1 − cos(W_j, W_rep)`` < 1 − τ. So any ratio
    first removes the redundant members (most similar to their representative first), exactly the
    channels Alg. 2 prunes at threshold τ, and only then falls back to the L1 order among
    representatives (Alg. 2, line 8). ``(scores < 1).sum()`` is the number of redundant channels at τ.
    """
    labels = simc_clusters(weight, tau)
    sim = simc_similarity(weight)
    l1 = l1_norm(weight)
    g = torch.Generator().manual_seed(seed)
    scores = torch.empty(len(labels), dtype=torch.float64)
    for c in range(int(labels.max()) + 1):
        members = torch.nonzero(labels == c).flatten()
        rep = members[torch.randint(len(members), (1,), generator=g)].item()
        scores[members] = 1.0 - sim[members, rep]
        scores[rep] = 1.0 + l1[rep] / l1.max().clamp_min(1e-12)
    return scores


# ---------------------------------------------------------------------------------------------
# FPGM: distance to the geometric median (He et al., CVPR 2019 [70]; survey Eq. 13–17, Alg. 5)
# ---------------------------------------------------------------------------------------------
def fpgm_scores(weight: torch.Tensor) -> torch.Tensor:
    """FPGM criterion: ``g(W_j) = Σ_{j'∈[1,n_out]} ‖W_j − W_{j'}‖₂`` (survey Eq. 14 and 17).

    The geometric median of a layer's filters (Eq. 13–14) is the point with the smallest total
    distance to all of them; filters near it are the ones the others can best replace (Eq. 15), so
    they are pruned. Eq. (16)–(17) relax the search to the filters themselves: the filter that
    minimises ``g`` is the (approximate) median, hence *small* ``g`` = redundant = low score.
    The survey's Eq. (14)/(17) swap ``n_in``/``n_out`` and ``x``/``W_j*`` in the index sets (extraction
    garbling); we use He et al.'s definition, a sum over the layer's output filters.
    """
    f = _filters(weight)
    return torch.cdist(f, f, p=2).sum(dim=1)


# ---------------------------------------------------------------------------------------------
# Auto-Balanced filter pruning (Ding et al., AAAI 2018 [68]; survey Eq. 3–10, Alg. 3)
# ---------------------------------------------------------------------------------------------
def auto_balanced_split(weight: torch.Tensor, n_keep: int) -> tuple[torch.Tensor, float]:
    """Eq. (3)–(5): ``M_j = ‖vec(W_j)‖₁``, threshold ``θ`` such that ``n_keep`` channels remain.

    Returns ``(prune_mask, theta)``: ``prune_mask[j]`` is True for the weak subset ``P`` (``M_j < θ``),
    False for the strong subset ``R`` (``M_j > θ``). θ is the midpoint between the weakest kept and the
    strongest pruned norms, so ties are broken by index order, never by a filter being in both sets.
    """
    m = l1_norm(weight)
    n = len(m)
    if not 0 <= n_keep <= n:
        raise ValueError(f"n_keep must be in [0, {n}], got {n_keep}")
    order = torch.argsort(m, descending=True, stable=True)
    prune = torch.ones(n, dtype=torch.bool)
    prune[order[:n_keep]] = False
    if n_keep == 0:
        theta = float(m.max()) * 1.0001 + 1e-12
    elif n_keep == n:
        theta = float(m.min()) * 0.9999
    else:
        theta = 0.5 * float(m[order[n_keep - 1]] + m[order[n_keep]])
    return prune, theta


def auto_balanced_lambda(m: torch.Tensor, theta: float, prune_mask: torch.Tensor, eps: float = 1e-8) -> torch.Tensor:
    """Eq. (6): the per-filter factor of the L2 adjustment

        λ_j = 1 + log(θ / (M_j + ε))     for W_j ∈ P  (weak: λ ≥ 1, pushed towards zero, harder the weaker)
        λ_j = −1 − log(M_j / (θ + ε))    for W_j ∈ R  (strong: λ ≤ −1, a *negative* penalty that grows them)
    """
    m = m.double()
    lam_p = 1.0 + torch.log(theta / (m + eps))
    lam_r = -1.0 - torch.log(m / (theta + eps) + eps)
    return torch.where(prune_mask, lam_p, lam_r)


class AutoBalancedRegularizer:
    """Auto-Balanced's regulariser, Eq. (7)–(10), as a ``penalty(model)`` to add to the training loss.

        S(P_i) = Σ_{W_j∈P_i} λ_j ‖vec(W_j)‖₂² ,  S(R_i) likewise      (Eq. 7);  S(P), S(R) = Σ_i …  (Eq. 8)
        L = L₀ + α·S(P) + τ·S(R),   τ = −α·S(P)/S(R)                  (Eq. 9–10)

    τ is recomputed at every call from the current weights and *detached*: the two terms then
    cancel in value (the loss is L₀) while their gradients shrink the weak filters and grow the
    strong ones — the "balance" of the method's name. ``split(model)`` draws the P/R subsets with the
    L1 norm (Eq. 3–5) at the start of a pruning iteration; the λ factors (Eq. 6) are frozen there, as
    the subsets are (departure: Ding et al. re-derive them at every iteration; so does a strategy that
    calls ``split`` every iteration).

    ``convs`` maps a name to a ``nn.Conv2d``; ``keep`` maps the same names to the number of channels
    to keep (the vector r of Alg. 3).
    """

    def __init__(self, convs: dict[str, nn.Conv2d], keep: dict[str, int], alpha: float = 1e-4):
        missing = set(convs) - set(keep)
        if missing:
            raise ValueError(f"AutoBalancedRegularizer: no keep count for {sorted(missing)[:3]}")
        self.convs, self.keep, self.alpha = dict(convs), dict(keep), float(alpha)
        self.prune_masks: dict[str, torch.Tensor] = {}
        self.lambdas: dict[str, torch.Tensor] = {}
        self.thetas: dict[str, float] = {}
        self.split()

    def split(self) -> None:
        """Eq. (3)–(6): re-divide every layer's filters into P (to prune) and R (to keep)."""
        for name, conv in self.convs.items():
            mask, theta = auto_balanced_split(conv.weight, self.keep[name])
            self.prune_masks[name], self.thetas[name] = mask, theta
            self.lambdas[name] = auto_balanced_lambda(l1_norm(conv.weight), theta, mask)

    def terms(self) -> tuple[torch.Tensor, torch.Tensor]:
        """``(S(P), S(R))`` of Eq. (7)–(8), differentiable w.r.t. the conv weights."""
        sp = sr = 0.0
        for name, conv in self.convs.items():
            w = conv.weight
            sq = w.reshape(w.shape[0], -1).pow(2).sum(dim=1)
            lam = self.lambdas[name].to(w.device, w.dtype)
            mask = self.prune_masks[name].to(w.device)
            sp = sp + (lam * sq * mask).sum()
            sr = sr + (lam * sq * ~mask).sum()
        return sp, sr

    def penalty(self, model: nn.Module | None = None) -> torch.Tensor:
        """``α·S(P) + τ·S(R)`` with τ of Eq. (10) (``model`` is accepted for a uniform interface)."""
        sp, sr = self.terms()
        if not torch.is_tensor(sr) or float(sr.detach()) == 0.0:
            return self.alpha * sp
        tau = (-self.alpha * sp / sr).detach()
        return self.alpha * sp + tau * sr

    __call__ = penalty


# ---------------------------------------------------------------------------------------------
# PSFP: progressive soft filter pruning (He et al. 2018 [36]; survey Eq. 11–12, Alg. 4)
# ---------------------------------------------------------------------------------------------
def psfp_schedule_coefficients(goal: float, n_epochs: int, decay: float = 0.125) -> tuple[float, float, float]:
    """Solve Eq. (12) for ``(a, b, k)`` of the rate schedule ``P'(epoch) = a·e^{−k·epoch} + b`` (Eq. 11).

    The survey's Eq. (12) lost a line and a factor in extraction ("0 = a + b; P_i/4 = e^{−k·N·D} + b").
    We use the original PSFP conditions (three equations for three unknowns):

        P'(0) = 0  → a + b = 0;   P'(N) = P_i;   P'(N·D) = P_i / 4

    i.e. the rate starts at 0, reaches a quarter of the goal after the fraction ``D`` of training and
    the goal ``P_i`` at the last epoch ``N``. With ``u = e^{−kN}``: ``(1 − u^D)/(1 − u) = 1/4``, which has a
    solution in (0, 1) iff ``0 < D < 1/4``; we find ``u`` by bisection.
    """
    if not 0.0 <= goal < 1.0:
        raise ValueError(f"PSFP goal pruning rate must be in [0, 1), got {goal}")
    if n_epochs < 1:
        raise ValueError(f"PSFP needs n_epochs ≥ 1, got {n_epochs}")
    if not 0.0 < decay < 0.25:
        raise ValueError(f"PSFP decay D must be in (0, 0.25) so that P'(N·D) = P/4 has a solution, got {decay}")
    if goal == 0.0:
        return 0.0, 0.0, 1.0

    def f(u: float) -> float:
        return (1.0 - u**decay) / (1.0 - u) - 0.25

    lo, hi = 1e-300, 1.0 - 1e-12  # f(lo) ≈ 0.75 > 0, f(hi) ≈ D − 0.25 < 0
    for _ in range(200):
        mid = 0.5 * (lo + hi)
        lo, hi = (mid, hi) if f(mid) > 0 else (lo, mid)
    u = 0.5 * (lo + hi)
    k = -math.log(u) / n_epochs
    b = goal / (1.0 - u)
    return -b, b, k


def psfp_rate(epoch: float, goal: float, n_epochs: int, decay: float = 0.125) -> float:
    """Eq. (11): the pruning rate ``P'_i`` to apply at ``epoch`` (0 at the start, ``goal`` at ``n_epochs``)."""
    a, b, k = psfp_schedule_coefficients(goal, n_epochs, decay)
    epoch = min(max(float(epoch), 0.0), float(n_epochs))
    return float(min(goal, max(0.0, a * math.exp(-k * epoch) + b)))


@torch.no_grad()
def soft_prune_(conv: nn.Conv2d, bn: nn.BatchNorm2d | None, prune_idx) -> None:
    """Soft pruning (PSFP Alg. 4 line 11, FPGM Alg. 5 line 9): zero the filters in place, keep the shape.

    The BN's weight and bias of those channels are zeroed with them: otherwise the BN bias alone
    would keep the "pruned" channel alive (a constant feature map), and removing it at the end would
    change the network's output. Zeroed channels may grow back while training continues.
    """
    idx = torch.as_tensor(prune_idx, dtype=torch.long, device=conv.weight.device)
    conv.weight[idx] = 0
    if conv.bias is not None:
        conv.bias[idx] = 0
    if bn is not None:
        bn.weight[idx] = 0
        bn.bias[idx] = 0


# ---------------------------------------------------------------------------------------------
# Play and Prune (Singh et al., IJCAI 2019 [69]; survey Eq. 18–23, Alg. 6)
# ---------------------------------------------------------------------------------------------
def afp_unimportant(weight: torch.Tensor, alpha: float) -> torch.Tensor:
    """Eq. (18): ``U_i = σ_{top α%}(sort(|W_1|, …, |W_n|))`` — the α fraction of filters with the
    smallest L1 norms, returned as a boolean mask over output channels (the criterion is ``l1_norm``)."""
    if not 0.0 <= alpha <= 1.0:
        raise ValueError(f"Play-and-Prune alpha (fraction of unimportant filters) must be in [0, 1], got {alpha}")
    m = l1_norm(weight)
    n_u = int(math.floor(alpha * len(m)))
    mask = torch.zeros(len(m), dtype=torch.bool)
    mask[torch.argsort(m, stable=True)[:n_u]] = True
    return mask


def afp_initial_threshold(norms: torch.Tensor, fraction: float, bins: int = 100) -> float:
    """The first epoch's weight threshold ``W_A``: a binary search on the histogram of filter L1 norms
    (survey §3.2.1, after Eq. 19) for the value below which ``fraction`` of the filters lie."""
    norms = norms.detach().double().flatten()
    hist = torch.histc(norms, bins=bins, min=float(norms.min()), max=float(norms.max()))
    cdf = torch.cumsum(hist, 0) / hist.sum()
    edges = torch.linspace(float(norms.min()), float(norms.max()), bins + 1, dtype=torch.float64)
    lo, hi = 0, bins - 1
    while lo < hi:  # first bin whose cumulative share reaches the fraction
        mid = (lo + hi) // 2
        lo, hi = (mid + 1, hi) if cdf[mid] < fraction else (lo, mid)
    return float(edges[lo + 1])


class AFPRegularizer:
    """Eq. (19): ``C(Θ) + λ_A‖U‖₁`` — an L1 penalty on the unimportant filters only, as ``penalty(model)``.

    ``convs`` maps names to convs; ``alpha`` is the fraction marked unimportant per layer (Eq. 18);
    ``lambda_a`` is set by the :class:`PruningRateController` each epoch. ``select()`` re-draws U.
    """

    def __init__(self, convs: dict[str, nn.Conv2d], alpha: float = 0.1, lambda_a: float = 1e-4):
        self.convs, self.alpha, self.lambda_a = dict(convs), float(alpha), float(lambda_a)
        self.masks: dict[str, torch.Tensor] = {}
        self.select()

    def select(self) -> None:
        for name, conv in self.convs.items():
            self.masks[name] = afp_unimportant(conv.weight, self.alpha)

    def penalty(self, model: nn.Module | None = None) -> torch.Tensor:
        total = 0.0
        for name, conv in self.convs.items():
            w = conv.weight
            l1 = w.reshape(w.shape[0], -1).abs().sum(dim=1)
            total = total + (l1 * self.masks[name].to(w.device)).sum()
        return self.lambda_a * total

    __call__ = penalty


@dataclass
class PruningRateController:
    """Play-and-Prune's Pruning Rate Controller (PRC), survey Eq. (21)–(23).

        T_r = C(#w) − (ξ − ε)   if positive, else 0                       (Eq. 22)
        W_A = δ_w × T_r × W'_A                                             (Eq. 21)
        λ_A = (C(#w) − (ξ − ε)) × λ   if positive, else 0                 (Eq. 23)

    ``xi`` = accuracy (e.g. mAP, in %) of the unpruned model, ``eps`` = tolerated drop (same unit),
    ``C(#w)`` = accuracy of the current model. Eq. (23) as printed ("C(#w) − (ξ − ε) × λ") lost its
    parentheses; the original multiplies the whole slack by λ. Eq. (21) we read literally: the new
    threshold is the previous one ``W'_A`` scaled by ``δ_w·T_r`` (more slack → prune more aggressively;
    no slack → threshold 0, nothing more is pruned). ``update`` returns ``(W_A, λ_A)``.
    """

    xi: float
    eps: float
    delta_w: float = 1.0
    lam: float = 1e-4
    threshold: float = 0.0
    history: list = field(default_factory=list)

    def slack(self, accuracy: float) -> float:
        return float(accuracy) - (self.xi - self.eps)

    def update(self, accuracy: float) -> tuple[float, float]:
        s = self.slack(accuracy)
        tr = s if s > 0 else 0.0
        self.threshold = self.delta_w * tr * self.threshold
        lambda_a = s * self.lam if s > 0 else 0.0
        self.history.append({"accuracy": float(accuracy), "T_r": tr, "W_A": self.threshold, "lambda_A": lambda_a})
        return self.threshold, lambda_a
