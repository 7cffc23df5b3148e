"""Chapter 05's pruning slider: a thin shell over :mod:`reidbook.prune.measure` and :mod:`reidbook.viz.pruning`."""
from __future__ import annotations

from ._common import _show

__all__ = ["pruning_slider"]


def pruning_slider(model, criteria=("l1", "l2", "fpgm", "simc", "nisp"), input_size=(128, 64), data=None,
                   metrics: dict | None = None, max_ratio: float = 0.9, step: float = 0.05, latency: bool = True,
                   batch_size: int = 1, **prune_options):
    """Chapter 05's pruning slider (paper 003): :func:`reidbook.prune.measure.pruning_numbers` drawn by
    :func:`reidbook.viz.pruning.plot_pruning`.

    A ratio slider (fraction of the channels removed, 0 … ``max_ratio`` < 1) and a criterion dropdown →
    per-layer widths, parameters, multiply-adds, measured latency (``batch_size`` images) and, where
    ``metrics[(criterion, ratio)]`` holds a cached fine-tuned model's mAP, that mAP. Scores are
    computed once per criterion (data criteria use ``data``) and the unpruned latency once. Bad arguments
    (an empty or unknown criterion, a training procedure, ``max_ratio`` ≥ 1) are refused before anything is
    computed.
    """
    import ipywidgets as W

    from ..profile import measure_latency
    from ..prune import check_one_shot, score_channels
    from ..prune.measure import check_slider_range, pruning_numbers
    from ..viz.pruning import plot_pruning

    criteria = (criteria,) if isinstance(criteria, str) else tuple(criteria)
    if not criteria:
        raise ValueError("pruning_slider needs at least one criterion, e.g. criteria=('l1', 'fpgm')")
    for c in criteria:
        check_one_shot(c)
    check_slider_range(max_ratio, step)
    if isinstance(batch_size, bool) or not isinstance(batch_size, int) or batch_size < 1:
        raise ValueError(f"batch_size (images per latency measurement) must be an integer ≥ 1, got {batch_size!r}")
    cache: dict = {}
    ref = measure_latency(model, input_size, batch_size, repeats=5)["median_ms"] if latency else None
    slider = W.FloatSlider(value=min(0.5, max_ratio), min=0.0, max=max_ratio, step=step, description="ratio",
                           continuous_update=False, readout_format=".2f", layout=W.Layout(width="50%"))
    choice = W.Dropdown(options=list(criteria), value=criteria[0], description="criterion")

    def draw(ratio: float, criterion: str) -> None:
        if criterion not in cache:
            cache[criterion] = score_channels(model, criterion, data=data)
        nums = pruning_numbers(model, criterion, ratio, input_size, scores=cache[criterion], data=data,
                               latency=latency, batch_size=batch_size, reference_latency_ms=ref, metrics=metrics,
                               **prune_options)
        _show(plot_pruning(nums))

    out = W.interactive_output(draw, {"ratio": slider, "criterion": choice})
    return W.VBox([W.HBox([slider, choice]), out])
