"""The scorer registry: every criterion of the pruning survey applied to a whole model (paper 003, §3.2, Table 2).

A **scorer** turns a model and its prunable units (:func:`reidbook.prune.surgery.find_units`) into one score
per channel of every unit, higher = kept longer. All scorers have one signature,
``fn(ctx: ScoringContext) -> {unit name: scores [channels]}``, and carry their description (paper, section,
equation), whether they need data, and the **strategy the survey pairs them with** (Table 2's "strategy"
column). :func:`score_channels` dispatches through the registry and :data:`METHODS` lists it, so a criterion
registered with :func:`register_scorer` is scored, listed and documented in one place.

The pure criteria (a weight tensor or collected statistics in, scores out) are in
:mod:`reidbook.prune.criteria`; the statistics come from :mod:`reidbook.prune.activations`.

Three entries are **training procedures** whose channel ranking is a plain norm (Auto-Balanced and
Play-and-Prune rank by ℓ1, PSFP by ℓ2): their scores equal those of ``l1`` / ``l2`` by construction
(``same_as``), and :func:`reidbook.prune.prune` refuses them, naming the strategy function that runs them.
"""
from __future__ import annotations

from dataclasses import dataclass, field
from functools import cached_property
from typing import Callable

import torch
from torch import nn

from . import criteria as C
from .activations import collect_conv_samples, collect_pooled, collect_taylor
from .surgery import PruneUnit, find_resnets, find_units

__all__ = ["Scorer", "ScoringContext", "SCORERS", "register_scorer", "get_scorer", "check_method", "score_channels",
           "unit_filters", "METHODS", "WEIGHT_METHODS", "DATA_METHODS", "TRAINING_PROCEDURES", "distinct_methods",
           "identical_by_construction",
           "STRATEGY_FUNCTIONS"]

# The strategies of the survey's Table 2 ("strategy" column) and the function that runs each.
STRATEGY_FUNCTIONS = {
    "once": "reidbook.prune.strategies.prune_once",
    "iterative": "reidbook.prune.strategies.prune_iterative",
    "auto_balanced": "reidbook.prune.strategies.auto_balanced_prune",
    "play_and_prune": "reidbook.prune.strategies.play_and_prune",
    "layerwise": "reidbook.prune.strategies.prune_layerwise",
    "psfp": "reidbook.prune.strategies.progressive_soft_prune",
}


@dataclass
class ScoringContext:
    """What a scorer may read: the model, the units to score, calibration ``data`` (an image tensor or
    ``(images, pids, …)`` batches; at most ``max_batches``), a ``loss_fn`` (Taylor), the ``seed`` and the
    criterion's ``options`` (``tau``, ``bins``, ``n_positions``, ``n_rows``). A scorer may leave statistics
    it collected in ``cache`` (ThiNet / Channel Pruning leave ``"conv_samples"`` for the reconstruction)."""

    model: nn.Module
    units: list[PruneUnit]
    data: object = None
    max_batches: int | None = 4
    loss_fn: Callable | None = None
    seed: int = 0
    options: dict = field(default_factory=dict)
    cache: dict = field(default_factory=dict)

    @cached_property
    def modules(self) -> dict[str, nn.Module]:
        return dict(self.model.named_modules())

    def option(self, name: str, default):
        return self.options.get(name, default)


@dataclass(frozen=True)
class Scorer:
    """One criterion of the registry: ``fn(ctx) → {unit: scores}`` and its description.

    ``needs``: ``"weights"``, ``"data"`` or ``"data (optional)"``. ``strategy``: the survey's pairing (a key of
    :data:`STRATEGY_FUNCTIONS`). ``same_as``: another scorer whose scores this one equals by construction.
    ``procedure``: for a training procedure, the function that runs it (``prune`` refuses the method).
    ``residual_ok``: it can score channels written by several coupled convs (``scope="residual"``).
    """

    name: str
    fn: Callable[[ScoringContext], dict]
    title: str
    paper: str
    where: str
    needs: str
    strategy: str
    same_as: str | None = None
    procedure: str | None = None
    residual_ok: bool = False

    @property
    def needs_data(self) -> bool:
        return self.needs == "data"

    def describe(self) -> str:
        return f"{self.title} ({self.paper}; {self.where})"

    def __call__(self, ctx: ScoringContext) -> dict:
        return self.fn(ctx)


SCORERS: dict[str, Scorer] = {}
METHODS: dict[str, str] = {}  # name → description (kept in step with SCORERS by register_scorer)


def register_scorer(name: str, *, title: str, paper: str, where: str, needs: str, strategy: str,
                    same_as: str | None = None, procedure: str | None = None, residual_ok: bool = False):
    """Decorator: register ``fn(ctx) -> {unit: scores}`` as the scorer ``name`` (listed in :data:`METHODS`)."""
    if needs not in ("weights", "data", "data (optional)"):
        raise ValueError(f"register_scorer({name!r}): needs must be 'weights', 'data' or 'data (optional)', "
                         f"got {needs!r}")
    if strategy not in STRATEGY_FUNCTIONS:
        raise ValueError(f"register_scorer({name!r}): strategy must be one of {', '.join(STRATEGY_FUNCTIONS)}, "
                         f"got {strategy!r}")

    def wrap(fn):
        SCORERS[name] = Scorer(name, fn, title, paper, where, needs, strategy, same_as, procedure, residual_ok)
        METHODS[name] = SCORERS[name].describe()
        return fn

    return wrap


def check_method(method: str) -> str:
    """``method`` if it is a registered scorer, else a ``ValueError`` listing the registry."""
    if method not in SCORERS:
        raise ValueError(f"unknown pruning method {method!r}; reidbook knows: {', '.join(SCORERS)}")
    return method


def get_scorer(method: str) -> Scorer:
    return SCORERS[check_method(method)]


def distinct_methods(methods=None) -> list[str]:
    """``methods`` (default: all) without those whose scores equal another's by construction (``same_as``)."""
    methods = list(SCORERS) if methods is None else list(methods)
    return [m for m in methods if SCORERS[m].same_as is None or SCORERS[m].same_as not in methods]


def identical_by_construction(methods=None) -> dict[str, list[str]]:
    """``{shown method: [methods whose scores equal it by construction]}`` among ``methods`` (default: all), for
    labelling a comparison of criteria (e.g. ``{"l1": ["auto_balanced", "play_and_prune"], "l2": ["psfp"]}``)."""
    methods = list(SCORERS) if methods is None else list(methods)
    out: dict[str, list[str]] = {}
    for m in methods:
        same = SCORERS[m].same_as
        if same is not None and same in methods:
            out.setdefault(same, []).append(m)
    return out


def unit_filters(modules: dict[str, nn.Module], unit: PruneUnit) -> torch.Tensor:
    """The unit's filters, one row per channel: coupled producers' filters concatenated along dim 1."""
    ws = [modules[conv].weight.detach().reshape(unit.channels, -1) for conv, _ in unit.producers]
    return torch.cat(ws, dim=1)


# ---------------------------------------------------------------------------------------------
# Weight criteria (survey §3.2.1)
# ---------------------------------------------------------------------------------------------
def _per_unit(ctx: ScoringContext, fn) -> dict:
    return {u.name: fn(unit_filters(ctx.modules, u)) for u in ctx.units}


@register_scorer("l1", title="ℓ1 norm of the filter", paper="Li et al., ICLR 2017", where="survey Table 2, Eq. 3",
                 needs="weights", strategy="once", residual_ok=True)
def _l1(ctx):
    return _per_unit(ctx, C.l1_norm)


@register_scorer("l2", title="ℓ2 norm of the filter (PSFP's criterion)", paper="He et al. 2018",
                 where="survey Table 2, Alg. 4", needs="weights", strategy="once", residual_ok=True)
def _l2(ctx):
    return _per_unit(ctx, C.l2_norm)


@register_scorer("simc", title="redundant channels by cosine-similarity clusters", paper="Wang et al. 2019",
                 where="survey Eq. 1–2, Alg. 2", needs="weights", strategy="once", residual_ok=True)
def _simc(ctx):
    tau = ctx.option("tau", 0.9)
    return _per_unit(ctx, lambda w: C.simc_scores(w, tau=tau, seed=ctx.seed))


@register_scorer("auto_balanced", title="Auto-Balanced: ℓ1 split into weak/strong + balanced regulariser",
                 paper="Ding et al., AAAI 2018", where="survey Eq. 3–10, Alg. 3", needs="weights",
                 strategy="auto_balanced", same_as="l1", procedure=STRATEGY_FUNCTIONS["auto_balanced"],
                 residual_ok=True)
def _auto_balanced(ctx):
    return _l1(ctx)


@register_scorer("psfp", title="PSFP: ℓ2 with a progressive soft-pruning rate", paper="He et al. 2018",
                 where="survey Eq. 11–12, Alg. 4", needs="weights", strategy="psfp", same_as="l2",
                 procedure=STRATEGY_FUNCTIONS["psfp"], residual_ok=True)
def _psfp(ctx):
    return _l2(ctx)


@register_scorer("fpgm", title="FPGM: distance to the geometric median", paper="He et al., CVPR 2019",
                 where="survey Table 2, Eq. 13–17, Alg. 5", needs="weights", strategy="iterative", residual_ok=True)
def _fpgm(ctx):
    return _per_unit(ctx, C.fpgm_scores)


@register_scorer("play_and_prune", title="Play-and-Prune: ℓ1 + AFP penalty + rate controller",
                 paper="Singh et al., IJCAI 2019", where="survey Eq. 18–23, Alg. 6", needs="weights",
                 strategy="play_and_prune", same_as="l1", procedure=STRATEGY_FUNCTIONS["play_and_prune"],
                 residual_ok=True)
def _play_and_prune(ctx):
    return _l1(ctx)


# ---------------------------------------------------------------------------------------------
# Data criteria (survey §3.2.2–3.2.3)
# ---------------------------------------------------------------------------------------------
def _conv_samples(ctx: ScoringContext):
    """Input patches and outputs of every unit's consumer conv (ThiNet, Channel Pruning), cached in ``ctx``."""
    if "conv_samples" not in ctx.cache:
        consumers = {u.name: ctx.modules[u.consumers[0]] for u in ctx.units}
        ctx.cache["conv_samples"] = collect_conv_samples(ctx.model, consumers, ctx.data,
                                                         n_positions=ctx.option("n_positions", 1024),
                                                         max_batches=ctx.max_batches, seed=ctx.seed)
    return ctx.cache["conv_samples"]


@register_scorer("thinet", title="ThiNet: greedy next-layer reconstruction + LS rescale", paper="Luo et al., ICCV 2017",
                 where="survey Eq. 24–25", needs="data", strategy="layerwise")
def _thinet(ctx):
    samples = _conv_samples(ctx)
    out = {}
    for u in ctx.units:
        w = ctx.modules[u.consumers[0]].weight
        contrib = C.channel_contributions(samples[u.name][0], w, one_output_per_position=True, seed=ctx.seed)
        out[u.name] = C.thinet_scores(contrib)
    return out


@register_scorer("channel_pruning", title="Channel Pruning: LASSO selection + LS reconstruction",
                 paper="He et al., ICCV 2017", where="survey Eq. 26", needs="data", strategy="layerwise")
def _channel_pruning(ctx):
    samples = _conv_samples(ctx)
    out = {}
    for u in ctx.units:
        w = ctx.modules[u.consumers[0]].weight
        contrib = C.channel_contributions(samples[u.name][0], w, n_rows=ctx.option("n_rows", 4000), seed=ctx.seed)
        out[u.name] = C.channel_pruning_scores(contrib)
    return out


@register_scorer("entropy", title="Entropy of pooled activations", paper="Luo & Wu 2017", where="survey Eq. 27, Alg. 7",
                 needs="data", strategy="once")
def _entropy(ctx):
    pooled = collect_pooled(ctx.model, {u.name: ctx.modules[u.bn] for u in ctx.units}, ctx.data, ctx.max_batches)
    return {n: C.entropy_scores(p, bins=ctx.option("bins", 32)) for n, p in pooled.items()}


@register_scorer("taylor", title="Taylor: |activation × gradient|, ℓ2-normalised per layer",
                 paper="Molchanov et al., ICLR 2017", where="survey Eq. 28–29, Alg. 8", needs="data",
                 strategy="iterative")
def _taylor(ctx):
    raw = collect_taylor(ctx.model, {u.name: ctx.modules[u.bn] for u in ctx.units}, ctx.data, ctx.loss_fn,
                         ctx.max_batches)
    return {n: C.taylor_scores(r) for n, r in raw.items()}


def _out_width(net: nn.Module) -> int:
    last = net.layer4[-1]
    return (last.conv3 if hasattr(last, "conv3") else last.conv2).out_channels


# NISP is described in the survey's text (Eq. 30) but has no row in Table 2; Yu et al. prune every layer at
# once from the propagated scores and then fine-tune, hence "once".
@register_scorer("nisp", title="NISP: importance propagated back from the embedding", paper="Yu et al., CVPR 2018",
                 where="survey Eq. 30", needs="data (optional)", strategy="once", residual_ok=True)
def _nisp(ctx):
    nets = list(find_resnets(ctx.model))
    if not nets:
        raise ValueError("NISP needs a ResNet backbone (conv1, layer1…layer4) inside the model")
    per_conv: dict[str, torch.Tensor] = {}
    for rname, net in nets:
        pooled = (collect_pooled(ctx.model, {"out": net}, ctx.data, ctx.max_batches, relu=False)["out"]
                  if ctx.data is not None else None)
        final = C.nisp_final_scores(pooled, dim=_out_width(net))
        per_conv.update(C.nisp_resnet(net, final, prefix=f"{rname}." if rname else ""))
    out = {}
    for u in ctx.units:
        missing = [c for c, _ in u.producers if c not in per_conv]
        if missing:
            raise ValueError(f"NISP has no score for {missing[0]}: it is not inside a ResNet's layer1…layer4")
        out[u.name] = sum(per_conv[c] for c, _ in u.producers)
    return out


WEIGHT_METHODS = tuple(n for n, s in SCORERS.items() if s.needs == "weights")
DATA_METHODS = tuple(n for n, s in SCORERS.items() if s.needs != "weights")
TRAINING_PROCEDURES = tuple(n for n, s in SCORERS.items() if s.procedure is not None)


def score_channels(model: nn.Module, method: str, units: list[PruneUnit] | None = None, scope: str = "bottleneck",
                   data=None, max_batches: int | None = 4, loss_fn: Callable | None = None, seed: int = 0,
                   return_samples: bool = False, **options):
    """Score every channel of every unit with the registered scorer ``method`` → ``{unit: scores [channels]}``.

    Weight methods need no data; ``thinet``, ``channel_pruning``, ``entropy`` and ``taylor`` need ``data``
    (an image tensor or a DataLoader of ``(images, pids, …)``; ``taylor`` also labels or ``loss_fn``);
    ``nisp`` uses data if given (final-layer ranking) and works without. ``max_batches`` bounds the
    data used. ``options`` are the criterion's (``tau`` for SIMC, ``bins`` for Entropy, ``n_positions`` /
    ``n_rows`` for ThiNet / Channel Pruning). Deterministic given ``seed``. With ``return_samples`` →
    ``(scores, conv samples or None)`` (the samples ThiNet / Channel Pruning reconstruct from).
    """
    scorer = get_scorer(method)
    units = units if units is not None else find_units(model, scope)
    if not scorer.residual_ok and any(u.kind == "residual" for u in units):
        ok = [n for n, s in SCORERS.items() if s.residual_ok]
        raise ValueError(f"method {method!r} scores the feature maps of a single conv; it supports scope='bottleneck' "
                         f"only. For residual channels use one of {', '.join(ok)}")
    unknown = set(options) - {"tau", "bins", "n_positions", "n_rows"}
    if unknown:
        raise ValueError(f"score_channels: unknown option(s) {sorted(unknown)}; criteria options are tau (simc), "
                         "bins (entropy), n_positions and n_rows (thinet, channel_pruning)")
    ctx = ScoringContext(model, units, data, max_batches, loss_fn, seed, dict(options))
    got = scorer(ctx)
    scores = {u.name: got[u.name].double().cpu() for u in units}
    return (scores, ctx.cache.get("conv_samples")) if return_samples else scores
