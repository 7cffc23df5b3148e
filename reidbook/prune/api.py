"""``prune(model, method, ratio=… | target_macs=…, data=…)``: score, select, cut, report.

One-shot pruning with any of the survey's criteria (paper 003, §3.2, Table 2):

1. **score** every channel of every unit in the scope (:func:`score_channels`);
2. **select** the channels to keep: the same fraction in every unit (layer-by-layer, Li et al.; the
   default) or by one ranking across all units (``global_ranking=True``; Taylor's default, survey
   Alg. 8), for a given ``ratio`` of channels or until the multiply-adds fall to ``target_macs``;
3. **cut** them out (:func:`reidbook.prune.surgery.apply_selection`) and, for ThiNet and Channel
   Pruning, **reconstruct** the next layer by least squares;
4. **report** per-unit widths, parameters and multiply-adds before and after.

The training procedures (Auto-Balanced, PSFP, Play-and-Prune, soft FPGM, iterative Taylor) reuse
the same scoring and surgery from ``reidbook.prune.strategies``; here their one-shot versions use
their criterion (ℓ1, ℓ2, ℓ1, FPGM, Taylor).
"""
from __future__ import annotations

import copy
import math
from dataclasses import asdict, dataclass, field
from typing import Callable

import torch
from torch import nn

from ..profile import count_macs, count_params
from . import criteria as C
from . import criteria_data as D
from .activations import collect_conv_samples, collect_pooled, collect_taylor
from .surgery import PruneUnit, apply_selection, find_units, unit_widths

__all__ = ["METHODS", "WEIGHT_METHODS", "DATA_METHODS", "prune", "score_channels", "select_channels",
           "MacModel", "PruneReport", "layer_sensitivity", "finetune"]

# method → (criterion, needs data, paper)
METHODS: dict[str, str] = {
    "l1": "ℓ1 norm of the filter (Li et al. 2017; Eq. 3)",
    "l2": "ℓ2 norm of the filter (PSFP's criterion; Table 2)",
    "simc": "redundant channels by cosine-similarity clusters (Wang et al.; Eq. 1–2)",
    "auto_balanced": "Auto-Balanced: ℓ1 split into weak/strong + balanced regulariser (Ding et al.; Eq. 3–10)",
    "psfp": "PSFP: ℓ2 with a progressive soft-pruning rate (He et al.; Eq. 11–12)",
    "fpgm": "FPGM: distance to the geometric median (He et al. 2019; Eq. 13–17)",
    "play_and_prune": "Play-and-Prune: ℓ1 + AFP penalty + rate controller (Singh et al.; Eq. 18–23)",
    "thinet": "ThiNet: greedy next-layer reconstruction + LS rescale (Luo et al.; Eq. 24–25)",
    "channel_pruning": "Channel Pruning: LASSO selection + LS reconstruction (He et al. 2017; Eq. 26)",
    "entropy": "Entropy of pooled activations (Luo & Wu; Eq. 27)",
    "taylor": "Taylor: |activation × gradient|, ℓ2-normalised per layer (Molchanov et al.; Eq. 28–29)",
    "nisp": "NISP: importance propagated back from the embedding (Yu et al.; Eq. 30)",
}
WEIGHT_METHODS = ("l1", "l2", "simc", "auto_balanced", "psfp", "fpgm", "play_and_prune")
DATA_METHODS = ("thinet", "channel_pruning", "entropy", "taylor", "nisp")
_RESIDUAL_OK = WEIGHT_METHODS + ("nisp",)


def _check_method(method: str) -> str:
    if method not in METHODS:
        raise ValueError(f"unknown pruning method {method!r}; reidbook knows: {', '.join(METHODS)}")
    return method


# ---------------------------------------------------------------------------------------------
# Scoring
# ---------------------------------------------------------------------------------------------
def _unit_weight(mods: dict, unit: PruneUnit) -> torch.Tensor:
    """The unit's filters, one row per channel: coupled producers' filters concatenated."""
    ws = [mods[conv].weight.detach().reshape(unit.channels, -1) for conv, _ in unit.producers]
    return torch.cat(ws, dim=1)


def _nisp(model: nn.Module, units: list[PruneUnit], data, max_batches) -> dict[str, torch.Tensor]:
    from .surgery import _resnets

    nets = list(_resnets(model))
    if not nets:
        raise ValueError("NISP needs a ResNet backbone (conv1, layer1…layer4) inside the model")
    per_conv: dict[str, torch.Tensor] = {}
    for rname, net in nets:
        pooled = collect_pooled(model, {"out": net}, data, max_batches, relu=False)["out"] if data is not None else None
        final = D.nisp_final_scores(pooled, dim=_out_width(net))
        per_conv.update(D.nisp_resnet(net, final, prefix=f"{rname}." if rname else ""))
    out = {}
    for u in units:
        missing = [c for c, _ in u.producers if c not in per_conv]
        if missing:
            raise ValueError(f"NISP has no score for {missing[0]}: it is not inside a ResNet's layer1…layer4")
        out[u.name] = sum(per_conv[c] for c, _ in u.producers)
    return out


def _out_width(net: nn.Module) -> int:
    last = net.layer4[-1]
    return (last.conv3 if hasattr(last, "conv3") else last.conv2).out_channels


def score_channels(model: nn.Module, method: str, units: list[PruneUnit] | None = None, scope: str = "bottleneck",
                   data=None, max_batches: int | None = 4, loss_fn: Callable | None = None, seed: int = 0,
                   tau: float = 0.9, bins: int = 32, n_positions: int = 1024, n_rows: int = 4000,
                   return_samples: bool = False):
    """Score every channel of every unit with ``method`` → ``{unit name: scores [channels]}`` (higher = keep).

    Weight methods need no data; ``thinet``, ``channel_pruning``, ``entropy`` and ``taylor`` need ``data``
    (an image tensor or a DataLoader of ``(images, pids, …)``; ``taylor`` also labels or ``loss_fn``);
    ``nisp`` uses data if given (final-layer ranking) and works without. ``max_batches`` bounds the
    data used. Deterministic given ``seed``.
    """
    _check_method(method)
    units = units if units is not None else find_units(model, scope)
    mods = dict(model.named_modules())
    if method not in _RESIDUAL_OK and any(u.kind == "residual" for u in units):
        raise ValueError(f"method {method!r} scores the feature maps of a single conv; it supports scope='bottleneck' "
                         f"only. For residual channels use one of {', '.join(_RESIDUAL_OK)}")
    samples = None
    if method in ("l1", "auto_balanced", "play_and_prune"):
        scores = {u.name: C.l1_norm(_unit_weight(mods, u)) for u in units}
    elif method in ("l2", "psfp"):
        scores = {u.name: C.l2_norm(_unit_weight(mods, u)) for u in units}
    elif method == "simc":
        scores = {u.name: C.simc_scores(_unit_weight(mods, u), tau=tau, seed=seed) for u in units}
    elif method == "fpgm":
        scores = {u.name: C.fpgm_scores(_unit_weight(mods, u)) for u in units}
    elif method == "entropy":
        pooled = collect_pooled(model, {u.name: mods[u.bn] for u in units}, data, max_batches)
        scores = {n: D.entropy_scores(p, bins=bins) for n, p in pooled.items()}
    elif method == "taylor":
        raw = collect_taylor(model, {u.name: mods[u.bn] for u in units}, data, loss_fn, max_batches)
        scores = {n: D.taylor_scores(r) for n, r in raw.items()}
    elif method == "nisp":
        scores = _nisp(model, units, data, max_batches)
    else:  # thinet, channel_pruning: statistics of the consumer conv
        consumers = {u.name: mods[u.consumers[0]] for u in units}
        samples = collect_conv_samples(model, consumers, data, n_positions=n_positions, max_batches=max_batches, seed=seed)
        scores = {}
        for u in units:
            patches, _ = samples[u.name]
            w = consumers[u.name].weight
            if method == "thinet":
                contrib = D.channel_contributions(patches, w, one_output_per_position=True, seed=seed)
                scores[u.name] = D.thinet_scores(contrib)
            else:
                contrib = D.channel_contributions(patches, w, n_rows=n_rows, seed=seed)
                scores[u.name] = D.channel_pruning_scores(contrib)
    scores = {u.name: scores[u.name].double().cpu() for u in units}
    return (scores, samples) if return_samples else scores


# ---------------------------------------------------------------------------------------------
# Multiply-add model: exact for convs, computed from one traced forward
# ---------------------------------------------------------------------------------------------
class MacModel:
    """Multiply-adds of ``model`` as a function of how many channels each unit keeps.

    One forward (with hooks) records every conv's output size; a conv's multiply-adds are then
    ``in·out/groups · k_h·k_w · H_out·W_out`` with ``in``/``out`` reduced by the units it consumes/produces.
    Everything else (linear layers; element-wise ops are not counted, profile.py's convention) is a
    constant, so ``macs(widths)`` equals :func:`reidbook.profile.count_macs` of the pruned model.
    """

    def __init__(self, model: nn.Module, units: list[PruneUnit], input_size=(256, 128)):
        self.units = units
        self.base = count_macs(model, input_size)
        mods = dict(model.named_modules())
        area: dict[str, int] = {}
        handles = [m.register_forward_hook(lambda m, i, o, n=n: area.__setitem__(n, o.shape[2] * o.shape[3]))
                   for n, m in mods.items() if isinstance(m, nn.Conv2d)]
        from .surgery import _example

        try:
            was = model.training
            model.eval()
            with torch.no_grad():
                model(_example(model, input_size))
            model.train(was)
        finally:
            for h in handles:
                h.remove()
        self.convs = {}  # name → [in, out, k·k·area/groups, in_unit, out_unit]
        for n, m in mods.items():
            if isinstance(m, nn.Conv2d) and n in area:
                self.convs[n] = [m.in_channels, m.out_channels,
                                 m.kernel_size[0] * m.kernel_size[1] * area[n] / m.groups, None, None]
        for u in units:
            for conv, _ in u.producers:
                self.convs[conv][4] = u.name
            for conv in u.consumers:
                self.convs[conv][3] = u.name
        self.full = {u.name: u.channels for u in units}
        self.other = self.base - self._conv_macs(self.full)

    def _conv_macs(self, widths: dict[str, int]) -> float:
        total = 0.0
        for cin, cout, per, iu, ou in self.convs.values():
            i = widths[iu] if iu is not None else cin
            o = widths[ou] if ou is not None else cout
            total += i * o * per
        return total

    def macs(self, widths: dict[str, int]) -> int:
        """Multiply-adds of one image when unit ``u`` keeps ``widths[u]`` channels (others: all)."""
        w = dict(self.full)
        w.update(widths)
        return int(round(self.other + self._conv_macs(w)))


# ---------------------------------------------------------------------------------------------
# Selection
# ---------------------------------------------------------------------------------------------
def _top(scores: torch.Tensor, n_keep: int) -> list[int]:
    # stable: among equal scores the lower index is kept (deterministic)
    order = torch.argsort(scores, descending=True, stable=True)
    return sorted(order[:n_keep].tolist())


def _uniform_widths(units, ratio: float, min_channels: int, round_to: int = 1) -> dict[str, int]:
    out = {}
    for u in units:
        n = u.channels - int(math.floor(ratio * u.channels + 1e-9))
        if round_to > 1:  # round the kept count *up* to a multiple (monotone in ratio)
            n = min(u.channels, int(math.ceil(n / round_to)) * round_to)
        out[u.name] = max(min(min_channels, u.channels), n)
    return out


def _global_order(units, scores) -> list[str]:
    """Unit names of all channels sorted from least to most important (ties: unit order, index)."""
    flat = [(float(s), ui, ci) for ui, u in enumerate(units) for ci, s in enumerate(scores[u.name].tolist())]
    flat.sort()
    return [units[ui].name for _, ui, _ in flat]


def _global_widths(units, order: list[str], n_remove: int, min_channels: int) -> dict[str, int]:
    widths = {u.name: u.channels for u in units}
    removed = 0
    for name in order:
        if removed >= n_remove:
            break
        if widths[name] > min_channels:
            widths[name] -= 1
            removed += 1
    return widths


def select_channels(units: list[PruneUnit], scores: dict[str, torch.Tensor], ratio: float | None = None,
                    target_macs: float | None = None, mac_model: MacModel | None = None,
                    global_ranking: bool = False, min_channels: int = 1, round_to: int = 1) -> dict[str, list[int]]:
    """Which channels each unit keeps → ``{unit: sorted kept indices}``.

    ``ratio`` ∈ [0, 1): fraction of channels removed (per unit, or of all channels with
    ``global_ranking``). ``target_macs`` ∈ (0, 1]: fraction of the original multiply-adds to keep
    (needs ``mac_model``); the smallest uniform ratio / number of globally ranked removals that
    reaches it is found by bisection. Every unit keeps at least ``min_channels``. ``round_to`` > 1
    rounds each unit's kept count up to a multiple (hardware-friendly widths; uniform ranking only).
    """
    if round_to > 1 and global_ranking:
        raise ValueError("round_to works with per-layer (uniform) selection only; use global_ranking=False")
    if (ratio is None) == (target_macs is None):
        raise ValueError("give exactly one of ratio= (fraction of channels to remove, in [0, 1)) "
                         "or target_macs= (fraction of multiply-adds to keep, in (0, 1])")
    if ratio is not None and not (0.0 <= ratio < 1.0):
        raise ValueError(f"pruning ratio must be in [0, 1) (fraction of channels removed), got {ratio}")
    if target_macs is not None and not (0.0 < target_macs <= 1.0):
        raise ValueError(f"target_macs must be in (0, 1] (fraction of the original multiply-adds kept), got {target_macs}")
    if min_channels < 1:
        raise ValueError(f"min_channels must be ≥ 1, got {min_channels}")
    order = _global_order(units, scores) if global_ranking else None
    total = sum(u.channels for u in units)

    def widths_for(x: float) -> dict[str, int]:
        if global_ranking:
            return _global_widths(units, order, int(math.floor(x * total + 1e-9)), min_channels)
        return _uniform_widths(units, x, min_channels, round_to)

    if target_macs is not None:
        if mac_model is None:
            raise ValueError("target_macs needs a MacModel (prune() builds one)")
        goal = target_macs * mac_model.base
        if mac_model.macs(widths_for(1.0 - 1e-9)) > goal:
            floor = mac_model.macs(widths_for(1.0 - 1e-9)) / mac_model.base
            raise ValueError(f"target_macs={target_macs} is out of reach in this scope: keeping {min_channels} "
                             f"channel(s) per unit still costs {floor:.3f} of the original multiply-adds. "
                             "Ask for more, or widen the scope (scope='bottleneck+residual').")
        lo, hi = 0.0, 1.0 - 1e-9
        if mac_model.macs(widths_for(0.0)) <= goal:
            hi = 0.0
        for _ in range(40):
            if hi - lo < 1.0 / (4 * total):
                break
            mid = 0.5 * (lo + hi)
            lo, hi = (lo, mid) if mac_model.macs(widths_for(mid)) <= goal else (mid, hi)
        widths = widths_for(hi)
    else:
        widths = widths_for(ratio)
    return {u.name: _top(scores[u.name], widths[u.name]) for u in units}


# ---------------------------------------------------------------------------------------------
# Report and the one-call API
# ---------------------------------------------------------------------------------------------
@dataclass
class PruneReport:
    """What :func:`prune` did: per-unit widths and the model's cost before and after."""

    method: str
    scope: str
    ratio: float | None
    target_macs: float | None
    input_size: tuple
    widths_before: dict[str, int]
    widths_after: dict[str, int]
    params_before: int
    params_after: int
    macs_before: int
    macs_after: int
    keep: dict[str, list[int]] = field(repr=False, default_factory=dict)

    @property
    def macs_ratio(self) -> float:
        return self.macs_after / self.macs_before

    @property
    def params_ratio(self) -> float:
        return self.params_after / self.params_before

    @property
    def channel_ratio(self) -> float:
        """Fraction of the scoped channels removed."""
        return 1.0 - sum(self.widths_after.values()) / max(1, sum(self.widths_before.values()))

    def to_dict(self) -> dict:
        d = asdict(self)
        d.update(macs_ratio=self.macs_ratio, params_ratio=self.params_ratio, channel_ratio=self.channel_ratio)
        return d

    def table(self):
        """Per-unit widths as a ``pandas.DataFrame`` (before, after, kept fraction)."""
        import pandas as pd

        df = pd.DataFrame({"before": self.widths_before, "after": self.widths_after})
        df["kept"] = df["after"] / df["before"]
        return df

    def summary(self) -> str:
        return (f"{self.method} ({self.scope}): params {self.params_before / 1e6:.3f}M → {self.params_after / 1e6:.3f}M "
                f"(×{self.params_ratio:.3f}), MACs {self.macs_before / 1e9:.3f}G → {self.macs_after / 1e9:.3f}G "
                f"(×{self.macs_ratio:.3f}) at {self.input_size[0]}×{self.input_size[1]}")


@torch.no_grad()
def _reconstruct(model: nn.Module, units: list[PruneUnit], keep: dict[str, list[int]], samples, method: str,
                 seed: int, original: dict[str, torch.Tensor]) -> None:
    """ThiNet's per-channel LS rescaling / Channel Pruning's LS refit of each unit's consumer conv.

    ``original`` holds each consumer's unpruned weight. Statistics come from the unpruned model (one
    pass), not layer by layer as in the papers — a departure that keeps one-shot pruning to one data
    pass; the layer-by-layer version is a strategy (next chapter).
    """
    mods = dict(model.named_modules())
    kept_out = {u.conv: keep[u.name] for u in units}  # a consumer may itself produce a pruned unit
    for u in units:
        cname = u.consumers[0]
        conv = mods[cname]
        patches, outputs = samples[u.name]
        k = keep[u.name]
        if len(k) == patches.shape[1]:
            continue
        if method == "thinet":
            contrib = D.channel_contributions(patches, original[cname], one_output_per_position=True, seed=seed)
            scale = D.thinet_scales(contrib, k)
            conv.weight.mul_(scale.to(conv.weight).view(1, -1, 1, 1))
        else:
            out_idx = kept_out.get(cname, list(range(outputs.shape[1])))
            w = D.least_squares_weights(patches[:, k, :], outputs[:, out_idx], bias=conv.bias)
            conv.weight.copy_(w.reshape(conv.weight.shape).to(conv.weight))


def prune(model: nn.Module, method: str, ratio: float | None = None, target_macs: float | None = None,
          data=None, input_size=(256, 128), scope: str = "bottleneck", engine: str = "torch_pruning",
          global_ranking: bool | None = None, min_channels: int = 1, scores: dict | None = None,
          reconstruct: bool | None = None, inplace: bool = False, seed: int = 0, max_batches: int | None = 4,
          loss_fn: Callable | None = None, round_to: int = 1, **options) -> tuple[nn.Module, PruneReport]:
    """Prune ``model`` with ``method`` once, physically. Returns ``(pruned model, PruneReport)``.

    ``ratio`` ∈ [0, 1) = fraction of the scoped channels removed, or ``target_macs`` ∈ (0, 1] = fraction
    of the multiply-adds (at ``input_size``) to keep — exactly one. ``method`` ∈ :data:`METHODS`.
    ``global_ranking`` defaults to True for Taylor (ranked across layers), False otherwise.
    ``reconstruct`` (default True for thinet / channel_pruning) refits the next conv by least squares.
    ``round_to`` rounds kept widths up to a multiple (e.g. 8: CPU kernels like such widths).
    ``scores`` may pass precomputed :func:`score_channels` output (the slider does). The input model
    is untouched unless ``inplace``. ``options`` go to :func:`score_channels` (``tau``, ``bins``, …).
    """
    _check_method(method)
    if (ratio is None) == (target_macs is None):
        raise ValueError("prune() needs exactly one of ratio= (fraction of channels removed, in [0, 1)) "
                         "or target_macs= (fraction of multiply-adds kept, in (0, 1])")
    if ratio is not None and not (0.0 <= ratio < 1.0):
        raise ValueError(f"pruning ratio must be in [0, 1) (fraction of channels removed), got {ratio}")
    if target_macs is not None and not (0.0 < target_macs <= 1.0):
        raise ValueError(f"target_macs must be in (0, 1] (fraction of the original multiply-adds kept), got {target_macs}")
    units = find_units(model, scope)
    global_ranking = (method == "taylor") if global_ranking is None else global_ranking
    reconstruct = (method in ("thinet", "channel_pruning")) if reconstruct is None else reconstruct
    samples = None
    if scores is None or (reconstruct and method in ("thinet", "channel_pruning")):
        got, samples = score_channels(model, method, units, data=data, max_batches=max_batches, loss_fn=loss_fn,
                                      seed=seed, return_samples=True, **options)
        scores = scores if scores is not None else got
    missing = [u.name for u in units if u.name not in scores]
    if missing:
        raise ValueError(f"scores missing for units {missing[:3]} (computed for another model or scope?)")
    mm = MacModel(model, units, input_size)
    keep = select_channels(units, scores, ratio, target_macs, mm, global_ranking, min_channels, round_to)
    widths_before = unit_widths(model, units)
    params_before = count_params(model)
    original = {}
    if reconstruct and samples is not None:
        mods = dict(model.named_modules())
        original = {u.consumers[0]: mods[u.consumers[0]].weight.detach().clone() for u in units}
    out = model if inplace else copy.deepcopy(model)
    apply_selection(out, units, keep, engine=engine, input_size=input_size)
    if original:
        _reconstruct(out, units, keep, samples, method, seed, original)
    report = PruneReport(method, scope, ratio, target_macs, tuple(input_size), widths_before, unit_widths(out, units),
                         params_before, count_params(out), mm.base, count_macs(out, input_size), keep)
    return out, report


def layer_sensitivity(model: nn.Module, evaluate: Callable[[nn.Module], float], ratios=(0.25, 0.5, 0.75),
                      method: str = "l1", units: list[str] | None = None, scope: str = "bottleneck",
                      data=None, engine: str = "hand", key: str | None = None, **options):
    """Li et al.'s sensitivity analysis (ICLR 2017, §4.1 Fig. 2): prune **one** unit at a time at each
    ratio, without fine-tuning, and measure ``evaluate(pruned_model)`` (e.g. mAP).

    Returns a ``pandas.DataFrame`` with columns ``unit, ratio, metric`` (and the unpruned metric at
    ratio 0). Layers whose metric falls fast are *sensitive* and should be pruned less. If
    ``evaluate`` returns a dict (e.g. :func:`reidbook.eval.evaluate_model`), ``key`` picks the metric.
    """
    import pandas as pd

    from ..utils import progress

    all_units = find_units(model, scope)
    chosen = [u for u in all_units if units is None or u.name in units]
    if units is not None and len(chosen) != len(set(units)):
        unknown = sorted(set(units) - {u.name for u in chosen})
        raise ValueError(f"unknown units {unknown[:3]}; units are e.g. {[u.name for u in all_units[:3]]}")
    scores = score_channels(model, method, chosen, data=data, **options)

    def metric(m):
        out = evaluate(m)
        return float(out[key] if key is not None else out)

    base = metric(model)
    rows = [{"unit": u.name, "ratio": 0.0, "metric": base} for u in chosen]
    for u in progress(chosen, desc="sensitivity"):
        for r in ratios:
            keep = select_channels([u], {u.name: scores[u.name]}, ratio=r)
            pruned = apply_selection(copy.deepcopy(model), [u], keep, engine=engine)
            rows.append({"unit": u.name, "ratio": float(r), "metric": metric(pruned)})
    return pd.DataFrame(rows)


def finetune(model: nn.Module, dataset, preset, epochs: int = 1, lr_scale: float = 0.1, device="auto", seed: int = 0,
             max_iters_per_epoch: int | None = None):
    """Fine-tune a pruned model with its preset's losses and optimiser (learning rate × ``lr_scale``,
    constant) for ``epochs`` epochs on ``dataset.train`` via :func:`reidbook.engine.fit` → ``History``.

    Li et al. (§4) and the survey (Table 2, "prune in one step") retrain briefly after pruning at a
    small learning rate; the pruned model trains in place (and is left in ``eval()`` mode).
    """
    from ..data import build_transforms, make_train_loader
    from ..engine import build_optimizer, fit
    from ..losses import build_criterion

    tf = build_transforms(preset.height, preset.width, is_train=True, **preset.train_aug)
    loader = make_train_loader(dataset.train, tf, preset.P, preset.K, seed=seed, cache=True)
    criterion = build_criterion(preset.losses)
    spec = dict(preset.optimizer)
    spec["lr"] = spec["lr"] * lr_scale
    spec.pop("lr_groups", None)
    optimizer = build_optimizer(model, spec, criterion)
    history = fit(model, loader, criterion, optimizer, None, epochs=epochs, device=device, seed=seed,
                  max_iters_per_epoch=max_iters_per_epoch, desc="fine-tune")
    model.eval()
    return history
