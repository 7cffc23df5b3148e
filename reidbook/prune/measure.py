"""What the pruning slider shows (chapter 05): prune a model at a ratio and measure it.

:func:`pruning_numbers` does the computing (prune, count, time); :func:`reidbook.viz.pruning.plot_pruning`
draws its result, and :func:`reidbook.widgets.pruning_slider` puts the two behind a slider.
"""
from __future__ import annotations

from torch import nn

from ..eval.subset import evaluation_subset  # noqa: F401  (moved to reidbook.eval.subset; kept here for old imports)
from .api import check_one_shot, prune

__all__ = ["pruning_numbers", "check_slider_range", "recovery", "describe_recovery", "recovery_lines",
           "describe_spread",
           "evaluation_subset"]


def check_slider_range(max_ratio: float, step: float) -> None:
    """A ratio slider from 0 to ``max_ratio`` by ``step`` must only offer ratios :func:`pruning_numbers` accepts:
    ``0 < max_ratio < 1`` (removing every channel leaves no network) and ``0 < step ≤ max_ratio``."""
    if not 0.0 < float(max_ratio) < 1.0:
        raise ValueError(f"max_ratio must be in (0, 1): the slider's top value is a fraction of channels removed, and "
                         f"removing all of them (1.0) leaves no network; got {max_ratio}. Try max_ratio=0.9.")
    if not 0.0 < float(step) <= float(max_ratio):
        raise ValueError(f"step must be in (0, max_ratio={max_ratio}], got {step}")


def pruning_numbers(model: nn.Module, criterion: str, ratio: float, input_size=(128, 64), scores: dict | None = None,
                    data=None, latency: bool = True, batch_size: int = 1, reference_latency_ms: float | None = None,
                    metrics: dict | None = None, repeats: int = 5, grid=None, **prune_options) -> dict:
    """Prune ``model`` by ``criterion`` at ``ratio`` (fraction of the channels removed, in [0, 1)) and measure it.

    Returns ``criterion``, ``ratio``, ``params``, ``params_ratio``, ``macs``, ``macs_ratio``, ``widths_before``,
    ``widths`` (after), and, if ``latency``, ``latency_ms`` (median, ``batch_size`` images) and
    ``latency_ratio`` (vs ``reference_latency_ms``, measured here if not given). ``metrics`` maps
    ``(criterion, ratio)`` → mAP of a cached fine-tuned model; the nearest ratio within 0.05 is returned as
    ``mAP``. ``scores`` (from :func:`reidbook.prune.score_channels`) avoids re-scoring on every slider move.
    """
    from ..profile import measure_latency

    check_one_shot(criterion)
    size = tuple(input_size)
    if len(size) not in (2, 3) or not all(isinstance(v, int) and v > 0 for v in size):
        raise ValueError(f"input_size must be (H, W) or (C, H, W) of positive integers, got {input_size!r}")
    if isinstance(batch_size, bool) or not isinstance(batch_size, int) or batch_size < 1:
        raise ValueError(f"batch_size (images per latency measurement) must be an integer ≥ 1, got {batch_size!r}")
    bad = [k for k in (metrics or {}) if not (isinstance(k, tuple) and len(k) == 2)]
    if bad:
        raise ValueError(f"metrics maps (criterion, ratio) → mAP, e.g. {{('l1', 0.6): 41.2}}; got key {bad[0]!r}")
    pruned, rep = prune(model, criterion, ratio=ratio, data=data, input_size=input_size, scores=scores,
                        **prune_options)
    nums = {"criterion": criterion, "ratio": float(ratio), "params": rep.params_after, "params_ratio": rep.params_ratio,
            "macs": rep.macs_after, "macs_ratio": rep.macs_ratio, "widths_before": rep.widths_before,
            "widths": rep.widths_after}
    if latency:
        if reference_latency_ms is None:
            reference_latency_ms = measure_latency(model, input_size, batch_size, repeats=repeats)["median_ms"]
        nums["latency_ms"] = measure_latency(pruned, input_size, batch_size, repeats=repeats)["median_ms"]
        nums["latency_ratio"] = nums["latency_ms"] / reference_latency_ms
    if metrics:
        near = [(abs(r - ratio), v) for (c, r), v in metrics.items() if c == criterion and abs(r - ratio) <= 0.05]
        if near:
            nums["mAP"] = float(min(near)[1])
    if grid is not None and criterion in grid.criteria:
        nums["curve"] = grid.curve(criterion)
        cell = grid.lookup(criterion, ratio)
        if cell is not None:
            nums["mAP_cut"], nums["mAP"] = float(cell["mAP"]), float(cell["mAP_finetuned"])
            nums["grid_ratio"] = float(cell["ratio"])
    return nums


def recovery(pruned: float, finetuned: float, unpruned: float) -> float:
    """The share of the metric lost by pruning that fine-tuning won back: ``(finetuned − pruned) / (unpruned −
    pruned)`` (1 = all of it, 0 = none, < 0 = worse than before; ``nan`` when pruning lost nothing)."""
    lost = unpruned - pruned
    return float("nan") if abs(lost) < 1e-12 else (finetuned - pruned) / lost


def describe_recovery(pruned: float, finetuned: float, unpruned: float, what: str = "mAP") -> str:
    """One sentence, generated from the numbers, saying how much of the pruning loss fine-tuning recovered."""
    if pruned >= unpruned - 0.05:  # nothing lost at the precision shown
        return (f"pruning cost nothing to recover here: {what} {pruned:.1f} after the cut vs {unpruned:.1f} unpruned; "
                f"fine-tuning moved it to {finetuned:.1f}")
    r = recovery(pruned, finetuned, unpruned)
    word = ("all" if r >= 0.95 else "most" if r > 0.5 else "about half" if r >= 0.45 else "part" if r > 0.05
            else "none" if r >= -0.05 else "none (it got worse)")
    return (f"fine-tuning recovered {word} of what pruning cost: {what} {pruned:.1f} after the cut → {finetuned:.1f} "
            f"after fine-tuning, {unpruned:.1f} unpruned ({100 * r:.0f} % of the loss won back)")


def recovery_lines(rows, unpruned: float, what: str = "mAP") -> list[str]:
    """One :func:`describe_recovery` sentence per fine-tuned row of ``rows`` (a ``DataFrame`` or dicts with
    ``method``, ``ratio``, ``what`` and ``what + "_finetuned"``; rows without a fine-tuned value are skipped),
    prefixed with the criterion and ratio."""
    import math

    records = rows.to_dict("records") if hasattr(rows, "to_dict") else list(rows)
    out = []
    for r in records:
        ft = r.get(f"{what}_finetuned")
        if ft is None or (isinstance(ft, float) and math.isnan(ft)):
            continue
        out.append(f"{r['method']} at ratio {r['ratio']}: " + describe_recovery(r[what], ft, unpruned, what))
    return out


def describe_spread(rows, what: str = "mAP") -> list[str]:
    """How far apart the criteria are at each ratio, after the cut and after fine-tuning — one sentence per ratio
    measured for at least two criteria, generated from ``rows`` (a ``DataFrame`` or dicts with ``method``,
    ``ratio``, ``what`` and ``what + "_finetuned"``). This is what the survey's conclusion (after retraining the
    criteria end up close, its Tables 5–7) is compared with."""
    import math

    records = rows.to_dict("records") if hasattr(rows, "to_dict") else list(rows)
    out = []
    for ratio in sorted({r["ratio"] for r in records}):
        cell = [r for r in records if r["ratio"] == ratio]
        ft = [r for r in cell if not (r.get(f"{what}_finetuned") is None
                                       or (isinstance(r[f"{what}_finetuned"], float)
                                           and math.isnan(r[f"{what}_finetuned"])))]
        if len(cell) < 2:
            continue
        cut = max(cell, key=lambda r: r[what]), min(cell, key=lambda r: r[what])
        text = (f"at ratio {ratio:g}: after the cut the criteria span {cut[0][what] - cut[1][what]:.1f} {what} points "
                f"({cut[0]['method']} best, {cut[1]['method']} worst)")
        if len(ft) >= 2:
            best = max(ft, key=lambda r: r[f"{what}_finetuned"])
            worst = min(ft, key=lambda r: r[f"{what}_finetuned"])
            gap_cut, gap_ft = cut[0][what] - cut[1][what], best[f"{what}_finetuned"] - worst[f"{what}_finetuned"]
            trend = "closer together" if gap_ft < gap_cut - 0.5 else "further apart" if gap_ft > gap_cut + 0.5 else \
                "about as far apart"
            text += (f"; after fine-tuning {gap_ft:.1f} points ({best['method']} best, {worst['method']} worst) — "
                     f"{trend}")
        out.append(text)
    return out
