"""Re-ID under a computational budget: anytime and budgeted-stream inference (paper 004, §4, §5.3).

A model with several **exits** (DaRe: after each of its 4 stages, the last one using the fusion;
the paper's sequential ensemble of ResNets: after each member network) gives a query an embedding
after ``C_s`` multiply-adds (``C_1 < … < C_S``, cumulative). Two settings (§4):

* **Anytime** (§4.1, Fig. 5): the budget of a query is unknown in advance; when it runs out, the most
  recent embedding is used. For a per-query budget ``b`` that means the deepest exit with
  ``C_s ≤ b`` (no exit fits → no answer, a miss). :func:`anytime_curve`.
* **Budgeted stream** (§4.2, Fig. 6): queries arrive one by one and only the *average* cost must stay
  within ``B``. The target exit distribution is ``p_s = a^(s−1)/Z`` (Eq. 3) with ``a`` chosen so that
  ``Σ_s p_s C_s = B`` (:func:`exit_distribution`), i.e. conditional exit rates ``q_1 = p_1``,
  ``q_s = p_s / (1 − Σ_{i<s} p_i)`` (:func:`conditional_exit_rates`). At stage ``s`` a query exits
  if its confidence is among the top ``q_s`` of the confidences that earlier queries had at that
  stage (:func:`route_stream`). Confidences (:func:`confidence`): ``distance`` (closeness of the
  nearest gallery item), ``margin`` (distance to the nearest gallery item of another identity than
  the nearest one, minus the nearest distance; uses gallery labels).
* **Random routing** (§5.3.2, the paper's baseline, ``random``): "randomly deciding to exit queries at
  either one of the two corresponding stages" around the budget — the released code's
  ``get_p_given_budget_random``: for ``C_k ≤ B < C_{k+1}``, ``p_k = (C_{k+1} − B)/(C_{k+1} − C_k)``,
  ``p_{k+1} = 1 − p_k`` (:func:`random_exit_distribution`), each query flipping its own coin. Its
  expected accuracy is the chord between the two single exits (:func:`random_chord`): the straight
  lines of Fig. 6. ``random_eq3`` (not in the paper) draws blind exits from Eq. (3)'s distribution
  instead: the same exit fractions as ``distance``/``margin``, so it isolates what the confidence adds.
  A curve drawn through a budget grid is that straight line only if the grid holds the exits' costs
  (:func:`budget_grid` with ``include_exits=True``); :func:`chord_deviation` measures it, and
  :func:`routing_gaps` counts the budgets at which each rule lies above or below random routing.

Rules where the paper is silent (and why):
  * The threshold at stage ``s`` is the running ``(1 − q_s)``-quantile of the confidences earlier
    queries had at that stage, counted with the query's own (see :func:`route_stream`), so that a
    stream exits *at least* a fraction ``q_s`` at each stage it reaches, in expectation. The released
    code takes ``sorted(conf)[int((n − 1)·q_s)]`` of the confidences including the query's own.
    Neither enforces the budget: a finite stream's realised average cost can exceed ``B`` (the
    queries that reach a later stage are not an exchangeable sample of the stream). Measure it:
    :attr:`StreamResult.overrun` and the ``overrun`` column of :func:`budgeted_curve`; chapter 07
    prints the largest one of its run.
  * Hence the first query to reach a stage (no earlier confidences) **exits** there if ``q_s > 0``
    (as in the released code).
  * The last stage always exits (``q_S = 1``). ``q_s = 0`` never exits, ``q_s = 1`` always does.
  * A budget outside ``[C_1, C_S]`` is an error (no exit distribution meets it); clamp it yourself.
  * Confidences are computed, as in the released code, on the gallery *without* the query's junk
    items (same identity **and** same camera: the items the Market-1501 protocol does not score;
    ``exclude_junk=True``, the default). ``exclude_junk=False`` uses the whole gallery: what a
    deployed system that knows neither the query's identity nor its camera could compute.

Costs: :func:`exit_costs` measures cumulative multiply-adds per exit with :mod:`reidbook.profile`
on the actual model and input; :data:`PAPER_RESNET50_MACS_M` is the paper code's table for
ResNet-50 at 256×128 (Caffe-style, netscope). Our torchvision-style ResNet-50 measures between
−1.9 % (exit 1) and +5.2 % (exit 4) of it (chapter 07 prints the ratio per exit).
:func:`exit_latency` measures CPU time per exit, to show that time follows multiply-adds.
"""
from __future__ import annotations

import bisect
import math
from dataclasses import dataclass, field
from typing import Sequence

import numpy as np
import torch
from torch import nn

from ..models.base import is_anytime
from .distance import compute_distmat
from .metrics import RankResult, evaluate_rank

__all__ = [
    "PAPER_RESNET50_MACS_M", "ROUTINGS", "exit_costs", "exit_latency", "exit_names", "exit_slots",
    "ExitEmbeddings", "exit_features", "AnytimeEval", "anytime_curve",
    "ExitPlan", "exit_distribution", "random_exit_distribution", "plan_for", "random_chord",
    "solve_exit_base", "conditional_exit_rates", "expected_cost", "ALL_ROUTINGS", "junk_mask",
    "confidence", "route_stream", "StreamResult", "budgeted_stream", "budgeted_curve", "budget_grid",
    "chord_deviation", "routing_gaps", "easy_hard_queries", "fusion_fixes",
]

# The paper code's cumulative multiply-adds (millions) per exit of DaRe(R) at 256×128 (DARENet's
# budgeted_stream/main.py, FLOPs = [523568640, 1150094336, 2060915200, 2542295040], Caffe-style ResNet-50).
PAPER_RESNET50_MACS_M = (523.6, 1150.1, 2060.9, 2542.3)

ROUTINGS = ("distance", "margin", "random")  # the paper's three (Fig. 6)
ALL_ROUTINGS = (*ROUTINGS, "random_eq3")     # + blind exits at Eq. (3)'s rates (a control of ours)


# ----------------------------------------------------------------------------------------------
# Exits of a model: which embedding each exit uses, what it costs
# ----------------------------------------------------------------------------------------------
def _num_exits(model: nn.Module) -> int:
    if not is_anytime(model):
        raise TypeError(f"{type(model).__name__} has no anytime forward; anytime evaluation needs a model with "
                        "anytime(x, upto) and num_exits (DaRe, SequentialEnsemble)")
    return int(model.num_exits)


def exit_slots(model: nn.Module) -> list[int]:
    """Index, in ``model.all_embeddings(x)``, of the embedding each exit uses.

    DaRe: stages 1 … S−1, then the fusion (index S); the sequential ensemble: member 1 … S."""
    n = _num_exits(model)
    return [*range(n - 1), n] if model.has_fusion else list(range(n))


def exit_names(model: nn.Module, embeddings: bool = False) -> list[str]:
    """Names of the exits (``embeddings=True``: of every embedding in ``all_embeddings``)."""
    n = _num_exits(model)
    if embeddings and model.has_fusion:
        return [*(f"stage {i + 1}" for i in range(n)), "fusion"]
    return model.exit_names()


def _exit_forward(model: nn.Module, s: int):
    return lambda x: model.exit_embedding(model.anytime(x, upto=s))


def exit_costs(model: nn.Module, input_size=(256, 128)) -> np.ndarray:
    """``C_s``: cumulative multiply-adds of one image up to and including exit ``s`` (an array of
    length ``num_exits``), measured by :func:`reidbook.profile.count_macs` on the anytime forward."""
    from ..profile import count_macs

    return np.array([count_macs(model, input_size, forward=_exit_forward(model, s))
                     for s in range(1, _num_exits(model) + 1)], dtype=np.float64)


def exit_latency(model: nn.Module, input_size=(256, 128), batch_size: int = 1, threads: int | None = 1,
                 rounds: int = 5, repeats: int = 3) -> np.ndarray:
    """Measured CPU milliseconds per exit (median over ``rounds``; the exits are measured round-robin
    so that machine load affects all alike), with :func:`reidbook.profile.measure_latency`."""
    from ..profile import measure_latency

    n = _num_exits(model)
    samples: list[list[float]] = [[] for _ in range(n)]
    for _ in range(max(1, rounds)):
        for s in range(1, n + 1):
            r = measure_latency(model, input_size, batch_size, threads, warmup=1, repeats=repeats,
                                forward=_exit_forward(model, s))
            samples[s - 1].append(r["median_ms"])
    return np.array([float(np.median(v)) for v in samples])


# ----------------------------------------------------------------------------------------------
# Features at every exit
# ----------------------------------------------------------------------------------------------
class ExitEmbeddings(nn.Module):
    """Wraps an anytime model so that ``forward`` returns all its embeddings concatenated
    (``[B, E·D]``), which :func:`reidbook.engine.extract_features` then extracts (flip-averaged) in one pass."""

    def __init__(self, model: nn.Module):
        super().__init__()
        self.model = model
        self.num_embeddings = len(exit_names(model, embeddings=True))
        self.feature_dim = model.feature_dim * self.num_embeddings
        self.train(model.training)  # so that restoring the wrapper's mode restores the model's

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return torch.cat(self.model.all_embeddings(x), dim=1)


def exit_features(model: nn.Module, items: Sequence[tuple], height: int, width: int, device="auto",
                  flip: bool = True, batch_size: int = 128) -> torch.Tensor:
    """Every embedding of ``model.all_embeddings`` for data set ``items`` ``(path, pid, camid)``:
    a tensor ``[E, N, D]`` (DaRe: E = 5, the four stages and the fusion). For a stored model the features are
    kept in the store (:func:`reidbook.store.tag_derived`): chapter 07 and chapter 08's exits share them."""
    from torch.utils.data import DataLoader

    from ..data import ImageDataset, build_transforms
    from ..engine import extract_features
    from ..store import tag_derived

    wrapper = tag_derived(ExitEmbeddings(model), model, "all_embeddings")
    loader = DataLoader(ImageDataset(list(items), build_transforms(height, width, is_train=False)),
                        batch_size=batch_size, shuffle=False, num_workers=0)
    feats = extract_features(wrapper, loader, device=device, flip=flip)[0].float().cpu()
    return feats.reshape(feats.shape[0], wrapper.num_embeddings, model.feature_dim).permute(1, 0, 2).contiguous()


# ----------------------------------------------------------------------------------------------
# A model's exits evaluated once, reused by every curve
# ----------------------------------------------------------------------------------------------
@dataclass
class AnytimeEval:
    """Per-exit query × gallery distances and costs: everything the anytime and budgeted settings need.

    ``distmats``: ``[S, Q, G]`` (exit ``s`` answers with block ``s``); ``costs``: ``[S]`` cumulative
    multiply-adds ``C_s``; labels of queries and gallery; ``names`` of the exits; optional data set
    ``query_items`` / ``gallery_items`` (for pictures); optional ``embedding_distmats`` /
    ``embedding_names`` for *every* embedding of the model (DaRe: stages 1–4 and the fusion; Fig. 3
    and Fig. 7 show stage 4 alone too). ``results[s]`` is exit ``s``'s :class:`RankResult`.
    """

    distmats: np.ndarray
    costs: np.ndarray
    q_pids: np.ndarray
    g_pids: np.ndarray
    q_camids: np.ndarray
    g_camids: np.ndarray
    names: list[str] = field(default_factory=list)
    query_items: list | None = None
    gallery_items: list | None = None
    embedding_distmats: np.ndarray | None = field(default=None, repr=False)
    embedding_names: list[str] = field(default_factory=list)
    results: list[RankResult] = field(default_factory=list, repr=False)

    def __post_init__(self):
        self.distmats = np.asarray(self.distmats, dtype=np.float32)
        self.costs = np.asarray(self.costs, dtype=np.float64)
        for k in ("q_pids", "g_pids", "q_camids", "g_camids"):
            setattr(self, k, np.asarray(getattr(self, k)))
        if self.distmats.ndim != 3:
            raise ValueError(f"distmats must be [exits, queries, gallery], got shape {self.distmats.shape}")
        S, Q, G = self.distmats.shape
        if self.costs.shape != (S,):
            raise ValueError(f"{S} exits but {self.costs.shape} costs")
        _check_costs(self.costs)
        if len(self.q_pids) != Q or len(self.g_pids) != G:
            raise ValueError(f"distmats are {Q}×{G} but there are {len(self.q_pids)} query "
                             f"and {len(self.g_pids)} gallery labels")
        self.names = list(self.names) or [f"exit {s + 1}" for s in range(S)]
        if not self.results:
            self.results = [evaluate_rank(d, self.q_pids, self.g_pids, self.q_camids, self.g_camids)
                            for d in self.distmats]
        valid = self.results[0].valid
        self._ap = np.zeros((S, Q))
        for s, r in enumerate(self.results):
            self._ap[s, valid] = r.all_AP
        self._hit1 = np.stack([r.first_hit == 1 for r in self.results]) & valid[None]
        self._conf: dict[tuple, np.ndarray] = {}
        self._emb_results: list[RankResult] | None = None

    @classmethod
    def from_features(cls, q_feats, g_feats, costs, q_pids, g_pids, q_camids, g_camids, names=(),
                      slots: Sequence[int] | None = None, embedding_names=(), metric: str = "euclidean",
                      **kw) -> "AnytimeEval":
        """From ``[E, N, D]`` query/gallery embeddings; ``slots``: which embedding each exit uses
        (default: embedding ``s`` for exit ``s``)."""
        slots = list(range(len(q_feats))) if slots is None else list(slots)
        emb = np.stack([compute_distmat(q, g, metric=metric) for q, g in zip(q_feats, g_feats)]).astype(np.float32)
        return cls(emb[slots], costs, q_pids, g_pids, q_camids, g_camids, list(names),
                   embedding_distmats=emb, embedding_names=list(embedding_names), **kw)

    @classmethod
    def from_model(cls, model: nn.Module, dataset, height: int, width: int, device="auto", flip: bool = True,
                   costs=None, metric: str | None = None) -> "AnytimeEval":
        """Extract every embedding of ``model`` for ``dataset.query`` / ``dataset.gallery``, measure the
        exit costs at ``height × width`` (unless ``costs`` is given) and evaluate each exit with
        ``metric`` (default: the model's own, :func:`reidbook.eval.model_metric`)."""
        from .evaluate import model_metric

        metric = model_metric(model) if metric is None else metric
        qf = exit_features(model, dataset.query, height, width, device, flip)
        gf = exit_features(model, dataset.gallery, height, width, device, flip)
        costs = exit_costs(model, (height, width)) if costs is None else costs
        lab = lambda items, i: np.array([it[i] for it in items])  # noqa: E731
        return cls.from_features(qf, gf, costs, lab(dataset.query, 1), lab(dataset.gallery, 1),
                                 lab(dataset.query, 2), lab(dataset.gallery, 2), names=exit_names(model),
                                 slots=exit_slots(model), embedding_names=exit_names(model, embeddings=True),
                                 metric=metric, query_items=list(dataset.query), gallery_items=list(dataset.gallery))

    def embedding_results(self) -> list[RankResult]:
        """:class:`RankResult` of every embedding (``embedding_distmats``; the exits if there are none)."""
        if self.embedding_distmats is None:
            return self.results
        if self._emb_results is None:
            self._emb_results = [evaluate_rank(d, self.q_pids, self.g_pids, self.q_camids, self.g_camids)
                                 for d in self.embedding_distmats]
        return self._emb_results

    def per_embedding(self):
        """Fig. 3's table: Rank-1, Rank-5, mAP of every embedding (DaRe: stages 1–4 and the fusion)."""
        import pandas as pd

        names = self.embedding_names or self.names
        return pd.DataFrame([{"embedding": n, "rank1": r.rank(1), "rank5": r.rank(min(5, r.max_rank)), "mAP": r.mAP}
                             for n, r in zip(names, self.embedding_results())])

    @property
    def num_exits(self) -> int:
        return self.distmats.shape[0]

    @property
    def valid(self) -> np.ndarray:
        return self.results[0].valid

    def per_exit(self):
        """A table: exit name, cost ``C_s``, Rank-1, Rank-5, mAP."""
        import pandas as pd

        return pd.DataFrame([{"exit": n, "MACs_M": c / 1e6, "rank1": r.rank(1), "rank5": r.rank(min(5, r.max_rank)),
                              "mAP": r.mAP} for n, c, r in zip(self.names, self.costs, self.results)])

    def correct(self) -> np.ndarray:
        """``[S, Q]`` bool: the query's nearest (protocol-filtered) gallery item is a true match at exit ``s``."""
        return self._hit1.copy()

    def confidences(self, rule: str, exclude_junk: bool = True) -> np.ndarray:
        """``[S, Q]`` confidences of :func:`confidence` at every exit (cached). ``exclude_junk``: leave
        out each query's junk gallery items (same identity and camera), as the released code does."""
        key = (rule, bool(exclude_junk))
        if key not in self._conf:
            junk = junk_mask(self.q_pids, self.g_pids, self.q_camids, self.g_camids) if exclude_junk else None
            self._conf[key] = np.stack([confidence(d, rule, self.g_pids, junk=junk) for d in self.distmats])
        return self._conf[key]

    def combine(self, exits: np.ndarray) -> dict:
        """Rank-1 and mAP when query ``i`` is answered by exit ``exits[i]`` (1-based), from the per-exit
        per-query values (exactly what :func:`evaluate_rank` gives on the composed distances)."""
        idx = np.asarray(exits) - 1
        q = np.arange(len(idx))
        v = self.valid
        return {"rank1": float(self._hit1[idx, q][v].mean()), "mAP": float(self._ap[idx, q][v].mean())}


# ----------------------------------------------------------------------------------------------
# Anytime (§4.1, Fig. 5)
# ----------------------------------------------------------------------------------------------
def anytime_curve(ev: AnytimeEval, budgets: Sequence[float]):
    """Accuracy for a per-query budget: every query uses the deepest exit with ``C_s ≤ budget``;
    below ``C_1`` there is no answer (Rank-1 = mAP = 0). A table with ``budget, exit, rank1, mAP``.
    A NaN or infinite budget is refused (NaN would silently pick the full model)."""
    import pandas as pd

    budgets = list(np.atleast_1d(np.asarray(budgets, dtype=np.float64)))
    bad = [i for i, b in enumerate(budgets) if not np.isfinite(b)]
    if bad:
        raise ValueError(f"anytime_curve: budgets must be finite numbers of multiply-adds per query; got "
                         f"{budgets[bad[0]]} at position {bad[0]} (exit costs run from {float(ev.costs[0]):.4g} "
                         f"to {float(ev.costs[-1]):.4g})")
    rows = []
    for b in budgets:
        s = int(np.searchsorted(ev.costs, float(b) * (1 + 1e-12), side="right"))  # exits with C_s ≤ b
        if s == 0:
            rows.append({"budget": float(b), "exit": 0, "rank1": 0.0, "mAP": 0.0})
        else:
            r = ev.results[s - 1]
            rows.append({"budget": float(b), "exit": s, "rank1": r.rank(1), "mAP": r.mAP})
    return pd.DataFrame(rows)


# ----------------------------------------------------------------------------------------------
# Budgeted stream (§4.2, Eq. 3)
# ----------------------------------------------------------------------------------------------
def _check_costs(costs) -> np.ndarray:
    c = np.asarray(costs, dtype=np.float64)
    if c.ndim != 1 or len(c) < 1:
        raise ValueError(f"costs must be a 1-D list of per-exit costs, got shape {c.shape}")
    if np.any(c <= 0) or np.any(np.diff(c) < 0):
        raise ValueError(f"exit costs must be positive and non-decreasing (C_s ≤ C_s+1), got {c.tolist()}")
    return c


def _eq3(a: float, S: int) -> np.ndarray:
    """Eq. (3): ``p_s = a^(s−1) / Z``, ``Z = Σ_s a^(s−1)``; ``a = 0`` → all at exit 1, ``a = ∞`` → all at exit S."""
    if a == 0:
        p = np.zeros(S)
        p[0] = 1.0
        return p
    if math.isinf(a):
        p = np.zeros(S)
        p[-1] = 1.0
        return p
    logw = np.arange(S) * math.log(a)
    w = np.exp(logw - logw.max())  # stable for very large or small a
    return w / w.sum()


def expected_cost(p, costs) -> float:
    """``C̄ = Σ_s p_s C_s`` (§4.2)."""
    return float(np.dot(np.asarray(p, dtype=np.float64), _check_costs(costs)))


def solve_exit_base(costs, budget: float, tol: float = 1e-12) -> float:
    """The ``a ≥ 0`` of Eq. (3) with ``Σ_s p_s(a) C_s = budget`` (``inf`` for ``budget = C_S``).

    ``C̄(a)`` increases monotonically from ``C_1`` (``a = 0``) to ``C_S`` (``a → ∞``), so there is
    exactly one ``a`` per budget in ``[C_1, C_S]`` (the paper's "one-to-one mapping"); found by
    bisection on ``log a``. A budget outside that range raises ``ValueError``.
    """
    c = _check_costs(costs)
    b = float(budget)
    lo_c, hi_c = c[0], c[-1]
    span = max(hi_c - lo_c, 1e-300)
    if not math.isfinite(b) or b < lo_c - 1e-9 * hi_c or b > hi_c + 1e-9 * hi_c:
        raise ValueError(f"budget {b:.6g} is outside [C_1, C_S] = [{lo_c:.6g}, {hi_c:.6g}]: no exit distribution "
                         "has that average cost. Give a budget between the cheapest and the dearest exit "
                         "(or clamp it: np.clip(budget, costs[0], costs[-1])).")
    if b <= lo_c or span <= 1e-300:
        return 0.0
    if b >= hi_c:
        return math.inf
    lo, hi = -60.0, 60.0  # log a; C̄ is within 1e-20 relative of C_1 / C_S at the ends for S ≤ 10^3
    while expected_cost(_eq3(math.exp(hi), len(c)), c) < b:
        hi *= 2
    while expected_cost(_eq3(math.exp(lo), len(c)), c) > b:
        lo *= 2
    for _ in range(200):
        mid = 0.5 * (lo + hi)
        if expected_cost(_eq3(math.exp(mid), len(c)), c) < b:
            lo = mid
        else:
            hi = mid
        if hi - lo < tol:
            break
    return math.exp(0.5 * (lo + hi))


def conditional_exit_rates(p) -> np.ndarray:
    """``q_1 = p_1``, ``q_s = p_s / (1 − Σ_{i<s} p_i)`` (§4.2): the fraction of the queries that reach
    stage ``s`` which should exit there. ``q_S = 1``; a stage no query reaches gets ``q_s = 1``."""
    p = np.asarray(p, dtype=np.float64)
    if p.ndim != 1 or np.any(p < -1e-12) or abs(p.sum() - 1) > 1e-6:
        raise ValueError(f"p must be a probability vector over the exits, got {p.tolist()}")
    remaining = 1.0 - np.concatenate([[0.0], np.cumsum(p)[:-1]])
    with np.errstate(divide="ignore", invalid="ignore"):
        q = np.where(remaining > 1e-12, p / np.maximum(remaining, 1e-300), 1.0)
    q = np.clip(q, 0.0, 1.0)
    q[-1] = 1.0
    return q


@dataclass
class ExitPlan:
    """The target of a budget: Eq. (3)'s base ``a``, exit distribution ``p``, conditional rates ``q``."""

    budget: float
    a: float
    p: np.ndarray
    q: np.ndarray
    costs: np.ndarray

    @property
    def expected_cost(self) -> float:
        return expected_cost(self.p, self.costs)


def exit_distribution(costs, budget: float) -> ExitPlan:
    """Eq. (3) solved for ``budget``: :class:`ExitPlan` with ``p_s = a^(s−1)/Z`` and ``Σ p_s C_s = budget``."""
    c = _check_costs(costs)
    a = solve_exit_base(c, budget)
    p = _eq3(a, len(c))
    return ExitPlan(float(budget), a, p, conditional_exit_rates(p), c)


def random_exit_distribution(costs, budget: float) -> ExitPlan:
    """§5.3.2's random baseline (released code: ``get_p_given_budget_random``): all queries exit at the
    two exits around the budget, ``C_k ≤ B < C_{k+1}``, with ``p_k = (C_{k+1} − B)/(C_{k+1} − C_k)`` and
    ``p_{k+1} = 1 − p_k`` (``B = C_S``: all at exit ``S``), so that ``Σ p_s C_s = B``. ``a`` is NaN (no Eq. 3)."""
    c = _check_costs(costs)
    b = float(budget)
    if not math.isfinite(b) or b < c[0] - 1e-9 * c[-1] or b > c[-1] + 1e-9 * c[-1]:
        raise ValueError(f"budget {b:.6g} is outside [C_1, C_S] = [{c[0]:.6g}, {c[-1]:.6g}]: no mix of exits "
                         "has that average cost. Clamp it: np.clip(budget, costs[0], costs[-1]).")
    p = np.zeros(len(c))
    k = int(np.searchsorted(c, b, side="right")) - 1  # C_k ≤ B < C_{k+1} (0-based k)
    k = min(max(k, 0), len(c) - 1)
    if k == len(c) - 1 or c[k + 1] == c[k]:
        p[k] = 1.0
    else:
        p[k] = (c[k + 1] - b) / (c[k + 1] - c[k])
        p[k + 1] = 1.0 - p[k]
    return ExitPlan(b, math.nan, p, conditional_exit_rates(p), c)


def plan_for(costs, budget: float, rule: str) -> ExitPlan:
    """The exit distribution a routing ``rule`` targets: the adjacent-exit mix of
    :func:`random_exit_distribution` for ``random`` (the paper's baseline), Eq. (3) for the others."""
    if rule not in ALL_ROUTINGS:
        raise ValueError(f"unknown routing rule {rule!r}; choose one of {', '.join(ALL_ROUTINGS)}")
    return random_exit_distribution(costs, budget) if rule == "random" else exit_distribution(costs, budget)


def random_chord(ev: "AnytimeEval", budgets: Sequence[float]):
    """The expectation of random routing (§5.3.2) at each budget, computed exactly: cost ``Σ p_s C_s``
    (= the budget) and ``Σ p_s acc_s`` — the straight line between the two single exits around the
    budget (Fig. 6). A table ``rule, budget, cost, overrun, rank1, mAP``."""
    import pandas as pd

    acc = {"rank1": np.array([r.rank(1) for r in ev.results]), "mAP": np.array([r.mAP for r in ev.results])}
    rows = []
    for b in budgets:
        p = random_exit_distribution(ev.costs, b).p
        cost = float(p @ ev.costs)
        rows.append({"rule": "random", "budget": float(b), "cost": cost, "overrun": cost / float(b) - 1.0,
                     "rank1": float(p @ acc["rank1"]), "mAP": float(p @ acc["mAP"])})
    return pd.DataFrame(rows)


def junk_mask(q_pids, g_pids, q_camids, g_camids) -> np.ndarray:
    """``[Q, G]`` bool: gallery item ``j`` is junk for query ``i`` — same identity **and** same camera
    (Market-1501 protocol; the released DaRe code's ``get_junk``), or a junk image (pid ``-1``)."""
    qp, gp = np.asarray(q_pids), np.asarray(g_pids)
    qc, gc = np.asarray(q_camids), np.asarray(g_camids)
    return ((qp[:, None] == gp[None, :]) & (qc[:, None] == gc[None, :])) | (gp[None, :] == -1)


def confidence(distmat, rule: str, g_pids=None, junk=None) -> np.ndarray:
    """How sure a query's answer is, per query row of ``distmat`` ``[Q, G]`` (higher = easier).

    ``distance``: ``−d_q``, minus the distance to the nearest gallery item (§4.2: a close nearest
    neighbour probably is a match). ``margin``: ``d'_q − d_q`` where ``d'_q`` is the
    distance to the nearest gallery item whose identity differs from the nearest item's (the paper's
    margin of certainty; needs ``g_pids``). ``random`` / ``random_eq3``: zeros (routing ignores them).
    ``junk``: an optional ``[Q, G]`` bool mask (:func:`junk_mask`) of gallery items left out for each
    query, as the released code does (``valid_idx``); a query whose gallery is all junk gets confidence −∞.
    """
    d = np.asarray(distmat, dtype=np.float64)
    if d.ndim != 2 or d.shape[1] < 1:
        raise ValueError(f"distmat must be [queries, gallery] with a non-empty gallery, got {d.shape}")
    if rule in ("random", "random_eq3"):
        return np.zeros(d.shape[0])
    if rule not in ROUTINGS:
        raise ValueError(f"unknown routing rule {rule!r}; choose one of {', '.join(ALL_ROUTINGS)}")
    if junk is not None:
        junk = np.asarray(junk, dtype=bool)
        if junk.shape != d.shape:
            raise ValueError(f"junk mask has shape {junk.shape}, distmat {d.shape}: build it with "
                             "junk_mask(q_pids, g_pids, q_camids, g_camids)")
        d = np.where(junk, np.inf, d)
    nn_idx = d.argmin(1)
    d1 = d[np.arange(len(d)), nn_idx]
    if rule == "distance":
        return -d1
    if rule == "margin":
        if g_pids is None:
            raise ValueError("margin confidence needs the gallery labels g_pids")
        g = np.asarray(g_pids)
        if len(g) != d.shape[1]:
            raise ValueError(f"{d.shape[1]} gallery columns but {len(g)} gallery labels")
        other = g[None, :] != g[nn_idx][:, None]
        d2 = np.where(other, d, np.inf).min(1)
        # a gallery of one identity has no "other": infinitely certain, capped for arithmetic
        finite = d[np.isfinite(d)]
        cap = (finite.max() if finite.size else 0.0) + 1.0
        out = np.where(np.isfinite(d2), d2, cap) - d1
        return np.where(np.isfinite(d1), out, -np.inf)


def route_stream(conf, q, rule: str = "distance", seed: int = 0) -> np.ndarray:
    """Exit stage (1-based) of each query of a stream, seen one at a time in row order (§4.2).

    ``conf``: ``[S, Q]`` (or ``[S−1, Q]``) confidences per stage (higher = easier; unused by
    ``random``); ``q``: conditional exit rates from :func:`conditional_exit_rates`.
    ``distance`` / ``margin``: at stage ``s < S`` the query exits if its confidence ``c`` is in the top
    ``q_s`` fraction of the running distribution of confidences at that stage: with ``n`` earlier
    queries having reached stage ``s`` and ``j`` of them more confident than ``c``, it exits iff
    ``j < q_s · (n + 1)`` — ``c`` is at or above the empirical ``(1 − q_s)``-quantile of the earlier
    confidences together with its own. Consequences: the first query at a stage (``n = 0``) exits
    whenever ``q_s > 0``; ``q_s = 0`` never exits, ``q_s = 1`` always does; and for a stream of
    exchangeable queries a query exits with probability ``⌈q_s(n+1)⌉/(n+1) ≥ q_s`` (at most
    ``1/(n+1)`` more) at each stage. That does not bound the realised average cost: the confidences
    of the queries that reach stage ``s`` depend on who left before, and a finite stream can spend
    more than the budget (:attr:`StreamResult.overrun` measures it). (The plain
    ``np.quantile`` of the earlier ones alone exits slightly *fewer* than ``q_s`` when ``q_s > ½``.)
    ``random`` / ``random_eq3``: exit at stage ``s`` with probability ``q_s`` (seeded), one coin per
    query and stage as in the released code; the two differ only in the plan their ``q`` comes from
    (:func:`plan_for`). Stage ``S`` always exits.
    """
    q = np.asarray(q, dtype=np.float64)
    S = len(q)
    if rule not in ALL_ROUTINGS:
        raise ValueError(f"unknown routing rule {rule!r}; choose one of {', '.join(ALL_ROUTINGS)}")
    conf = np.asarray(conf, dtype=np.float64)
    if conf.ndim != 2 or conf.shape[0] < S - 1:
        raise ValueError(f"conf must be [stages, queries] with at least {S - 1} stages, got {conf.shape}")
    Q = conf.shape[1]
    exits = np.full(Q, S, dtype=np.int64)
    if rule in ("random", "random_eq3"):
        u = np.random.default_rng(seed).random((Q, S))
        for i in range(Q):
            for s in range(S - 1):
                if u[i, s] < q[s]:
                    exits[i] = s + 1
                    break
        return exits
    history: list[list[float]] = [[] for _ in range(S)]
    for i in range(Q):
        for s in range(S - 1):
            c = float(conf[s, i])
            n = len(history[s])
            more_confident = n - bisect.bisect_right(history[s], c)
            leave = more_confident < q[s] * (n + 1)
            bisect.insort(history[s], c)
            if leave:
                exits[i] = s + 1
                break
    return exits


@dataclass
class StreamResult:
    """One budgeted stream: the plan, each query's exit (1-based), the realised average cost and the
    accuracy of the answers (``result``: :func:`evaluate_rank` on the distances each query was answered with)."""

    plan: ExitPlan
    rule: str
    exits: np.ndarray
    realised_cost: float
    result: RankResult

    @property
    def overrun(self) -> float:
        """``realised cost / budget − 1``: positive when the stream spent more than its budget."""
        return self.realised_cost / self.plan.budget - 1.0

    @property
    def exit_fractions(self) -> np.ndarray:
        return np.bincount(self.exits - 1, minlength=len(self.plan.p)) / len(self.exits)

    @property
    def rank1(self) -> float:
        return self.result.rank(1)

    @property
    def mAP(self) -> float:
        return self.result.mAP


def budgeted_stream(ev: AnytimeEval, budget: float, rule: str = "distance", seed: int = 0,
                    order: Sequence[int] | None = None, exclude_junk: bool = True) -> StreamResult:
    """Route ``ev``'s queries (in ``order``, default as stored) under average budget ``budget`` with
    ``rule`` (its plan: :func:`plan_for`) and score the answers with :func:`evaluate_rank`."""
    plan = plan_for(ev.costs, budget, rule)
    order = np.arange(len(ev.q_pids)) if order is None else np.asarray(order)
    conf = ev.confidences(rule, exclude_junk)[:, order]
    exits = np.empty(len(order), dtype=np.int64)
    exits[order] = route_stream(conf, plan.q, rule, seed)
    composed = ev.distmats[exits - 1, np.arange(len(exits))]
    result = evaluate_rank(composed, ev.q_pids, ev.g_pids, ev.q_camids, ev.g_camids)
    return StreamResult(plan, rule, exits, float(ev.costs[exits - 1].mean()), result)


def budget_grid(costs, n: int = 13, include_exits: bool = False) -> np.ndarray:
    """``n`` budgets from ``C_1`` to ``C_S``, evenly spaced; ``include_exits=True`` adds every exit's
    cost ``C_s`` (sorted, without duplicates), so that a curve drawn through the grid bends where random
    routing's chord does (at the single exits) instead of cutting the corner between two grid points."""
    c = _check_costs(costs)
    grid = np.linspace(c[0], c[-1], int(n))
    return np.unique(np.concatenate([grid, c])) if include_exits else grid


def chord_deviation(ev: AnytimeEval, curve, metric: str = "rank1") -> float:
    """Largest ``|accuracy − chord|`` of ``curve``'s ``random`` rows, where the chord is the straight line
    between the two single exits around each budget (``np.interp`` over ``(C_s, acc_s)``): 0 when the
    table holds random routing's exact expectation (:func:`random_chord`), the size of the coins' noise
    when it was simulated. NaN when the table has no ``random`` rows."""
    acc = np.array([r.rank(1) if metric == "rank1" else r.mAP for r in ev.results])
    rows = curve[curve["rule"] == "random"]
    if rows.empty:
        return float("nan")
    line = np.interp(np.asarray(rows["cost"], dtype=np.float64), ev.costs, acc)
    return float(np.abs(np.asarray(rows[metric], dtype=np.float64) - line).max())


def routing_gaps(curve, metric: str = "rank1", against: str = "random", tol: float = 0.005):
    """How each routing rule of ``curve`` (:func:`budgeted_curve`'s table) compares with ``against`` at the
    same budgets strictly between ``C_1`` and ``C_S`` (at the two ends every rule answers with the same
    single exit). One row per rule: ``rule, budgets, above, below, mean_gap, min_gap, max_gap, mid_gap``
    — ``above`` / ``below``: budgets where the rule's ``metric`` is more than ``tol`` above / below
    ``against``'s; gaps in the metric's units (fractions), ``mid_gap`` at the budget nearest the middle
    of the range. (Budgets, not realised costs, are matched: the realised cost column says how far
    each stream strayed from its budget.)"""
    import pandas as pd

    if against not in set(curve["rule"]):
        raise ValueError(f"routing_gaps: the table has no {against!r} rows to compare with "
                         f"(rules: {', '.join(map(str, curve['rule'].unique()))})")
    base = curve[curve["rule"] == against].set_index("budget")[metric]
    lo, hi = float(base.index.min()), float(base.index.max())
    inner = [b for b in base.index if lo < b < hi] or list(base.index)
    mid = min(inner, key=lambda b: abs(b - (lo + hi) / 2))
    rows = []
    for rule, df in curve[curve["rule"] != against].groupby("rule", sort=False):
        gap = (df.set_index("budget")[metric] - base).reindex(inner).dropna()
        if gap.empty:
            continue
        rows.append({"rule": rule, "budgets": len(gap), "above": int((gap > tol).sum()),
                     "below": int((gap < -tol).sum()), "mean_gap": float(gap.mean()), "min_gap": float(gap.min()),
                     "max_gap": float(gap.max()), "mid_gap": float(gap.get(mid, np.nan))})
    return pd.DataFrame(rows, columns=["rule", "budgets", "above", "below", "mean_gap", "min_gap", "max_gap",
                                       "mid_gap"])


def budgeted_curve(ev: AnytimeEval, budgets: Sequence[float] | None = None, rules: Sequence[str] = ROUTINGS,
                   seeds: Sequence[int] = (0,), random_expected: bool = True, exclude_junk: bool = True):
    """Fig. 6: for every budget and rule, the realised average cost and the Rank-1 / mAP of a stream
    (averaged over ``seeds``: random routing's coins and, for the other rules, the stream's order;
    seed 0 keeps the stored order). ``random`` with ``random_expected=True`` is the exact expectation
    of its coins (:func:`random_chord`: the paper's straight lines); ``False`` simulates the coins.
    A table ``rule, budget, cost, overrun, rank1, mAP`` (``overrun`` = cost / budget − 1, of the mean cost)."""
    import pandas as pd

    budgets = budget_grid(ev.costs) if budgets is None else budgets
    frames = []
    for rule in rules:
        if rule == "random" and random_expected:
            frames.append(random_chord(ev, budgets))
            continue
        conf = ev.confidences(rule, exclude_junk)
        rows = []
        for b in budgets:
            plan = plan_for(ev.costs, b, rule)
            acc = []
            for seed in seeds:
                order = np.arange(conf.shape[1]) if seed == 0 or rule in ("random", "random_eq3") else \
                    np.random.default_rng(seed).permutation(conf.shape[1])
                exits = np.empty(len(order), dtype=np.int64)
                exits[order] = route_stream(conf[:, order], plan.q, rule, seed)
                acc.append({"cost": float(ev.costs[exits - 1].mean()), **ev.combine(exits)})
            mean = {k: float(np.mean([a[k] for a in acc])) for k in ("cost", "rank1", "mAP")}
            rows.append({"rule": rule, "budget": float(b), "cost": mean["cost"],
                         "overrun": mean["cost"] / float(b) - 1.0, "rank1": mean["rank1"], "mAP": mean["mAP"]})
        frames.append(pd.DataFrame(rows))
    return pd.concat(frames, ignore_index=True)


def easy_hard_queries(ev: AnytimeEval, exits: np.ndarray, rule: str = "margin", n: int = 4) -> dict:
    """Fig. 8: "easy" queries exit at stage 1 and are right there (most confident first); "hard" ones
    go to the last stage and are right only there (wrong at every earlier exit). Query indices."""
    exits = np.asarray(exits)
    right = ev.correct()
    conf = ev.confidences(rule if rule in ROUTINGS and rule != "random" else "margin")
    easy = np.flatnonzero((exits == 1) & right[0])
    easy = easy[np.argsort(-conf[0, easy], kind="stable")][:n]
    S = ev.num_exits
    hard = np.flatnonzero((exits == S) & right[-1] & ~right[:-1].any(0))
    hard = hard[np.argsort(conf[0, hard], kind="stable")][:n]
    return {"easy": easy.tolist(), "hard": hard.tolist()}


def fusion_fixes(ev: AnytimeEval, n: int = 3) -> list[int]:
    """Fig. 7's choice: queries the last embedding (the fusion) gets right at rank 1 while some earlier
    embedding gets wrong, those with the most wrong embeddings first (then in query order)."""
    res = ev.embedding_results()
    right = np.stack([r.first_hit == 1 for r in res]) & ev.valid[None]
    wrong_before = (~right[:-1]).sum(0)
    cand = np.flatnonzero(right[-1] & (wrong_before > 0))
    return cand[np.argsort(-wrong_before[cand], kind="stable")][:n].tolist()
