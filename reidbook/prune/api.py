"""``prune(model, method, ratio=… | target_macs=…, data=…)``: score, select, cut, report.

One-shot pruning with any of the survey's criteria (paper 003, §3.2, Table 2):

1. **score** every channel of every unit in the scope (:func:`reidbook.prune.scoring.score_channels`, the
   scorer registry);
2. **select** the channels to keep (:func:`reidbook.prune.selection.select_channels`): the same fraction in
   every unit (layer-by-layer, Li et al.; the default) or by one ranking across all units
   (``global_ranking=True``; Taylor's default, survey Alg. 8), for a given ``ratio`` of channels or until
   the multiply-adds fall to ``target_macs``;
3. **cut** them out (:func:`reidbook.prune.surgery.apply_selection`) and, for ThiNet and Channel
   Pruning, **reconstruct** the next layer by least squares;
4. **report** per-unit widths, parameters and multiply-adds before and after (:class:`PruneReport`).

The three training procedures (Auto-Balanced, PSFP, Play-and-Prune) are not one-shot cuts: ``prune``
refuses them and names the strategy that runs them (:mod:`reidbook.prune.strategies`).
"""
from __future__ import annotations

import copy
from typing import Callable

import torch
from torch import nn

from ..profile import count_macs, count_params
from . import criteria as C
from .report import PruneReport
from .scoring import get_scorer, score_channels
from .selection import MacModel, select_channels
from .surgery import PruneUnit, apply_selection, find_units, unit_widths

__all__ = ["prune", "layer_sensitivity", "check_one_shot"]


def check_one_shot(method: str) -> str:
    """``method`` if :func:`prune` can apply it in one cut; a training procedure is refused with the function
    that runs it (Auto-Balanced, PSFP and Play-and-Prune prune *while training*, survey §3.4)."""
    scorer = get_scorer(method)
    if scorer.procedure is not None:
        raise ValueError(f"method {method!r} is a training procedure ({scorer.title}; {scorer.where}), not a one-shot "
                         f"cut: run it with {scorer.procedure}(model, target_macs, dataset, preset, ...). To cut once "
                         f"by its ranking alone, use method={scorer.same_as!r} (the same scores).")
    return method


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
            contrib = C.channel_contributions(patches, original[cname], one_output_per_position=True, seed=seed)
            scale = C.thinet_scales(contrib, k)
            conv.weight.mul_(scale.to(conv.weight).view(1, -1, 1, 1))
        else:
            out_idx = kept_out.get(cname, list(range(outputs.shape[1])))
            w = C.least_squares_weights(patches[:, k, :], outputs[:, out_idx], bias=conv.bias)
            conv.weight.copy_(w.reshape(conv.weight.shape).to(conv.weight))


def prune(model: nn.Module, method: str, ratio: float | None = None, target_macs: float | None = None,
          data=None, input_size=(256, 128), scope: str = "bottleneck", engine: str = "torch_pruning",
          global_ranking: bool | None = None, min_channels: int = 1, scores: dict | None = None,
          reconstruct: bool | None = None, inplace: bool = False, seed: int = 0, max_batches: int | None = 4,
          loss_fn: Callable | None = None, round_to: int = 1, rounding: str = "floor",
          **options) -> tuple[nn.Module, PruneReport]:
    """Prune ``model`` with ``method`` once, physically. Returns ``(pruned model, PruneReport)``.

    ``ratio`` ∈ [0, 1) = fraction of the scoped channels removed, or ``target_macs`` ∈ (0, 1] = fraction
    of the multiply-adds (at ``input_size``) to keep — exactly one. ``method`` ∈
    :data:`reidbook.prune.METHODS`, except the training procedures (``auto_balanced``, ``psfp``,
    ``play_and_prune``), which are refused with the strategy function that runs them.
    ``global_ranking`` defaults to True for Taylor (ranked across layers), False otherwise.
    ``reconstruct`` (default True for thinet / channel_pruning) refits the next conv by least squares.
    ``round_to`` rounds kept widths up to a multiple (e.g. 8: CPU kernels like such widths).
    ``rounding`` (with ``ratio``): ``"floor"`` removes ``⌊ratio·n⌋`` channels of every unit, ``"total"``
    exactly ``round(ratio·channels)`` in all (:func:`reidbook.prune.selection.uniform_widths`).
    ``scores`` may pass precomputed :func:`score_channels` output (the slider does). The input model
    is untouched unless ``inplace``. ``options`` go to :func:`score_channels` (``tau``, ``bins``, …).
    """
    check_one_shot(method)
    if (ratio is None) == (target_macs is None):
        raise ValueError("prune() needs exactly one of ratio= (fraction of channels removed, in [0, 1)) "
                         "or target_macs= (fraction of multiply-adds kept, in (0, 1])")
    if ratio is not None and not (0.0 <= ratio < 1.0):
        raise ValueError(f"pruning ratio must be in [0, 1) (fraction of channels removed), got {ratio}")
    if target_macs is not None and not (0.0 < target_macs <= 1.0):
        raise ValueError(f"target_macs must be in (0, 1] (fraction of the original multiply-adds kept), "
                         f"got {target_macs}")
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
    keep = select_channels(units, scores, ratio, target_macs, mm, global_ranking, min_channels, round_to, rounding)
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
    report = PruneReport(method=method, input_size=tuple(input_size), params_before=params_before,
                         params_after=count_params(out), macs_before=mm.base, macs_after=count_macs(out, input_size),
                         scope=scope, ratio=ratio, target_macs=target_macs, widths_before=widths_before,
                         widths_after=unit_widths(out, units), keep=keep)
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
