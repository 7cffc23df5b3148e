"""Chapter 05's pruning slider: a thin shell over :mod:`reidbook.prune.measure` and :mod:`reidbook.viz.pruning`."""
from __future__ import annotations

from ._common import WithStatic, _show, figure_html

__all__ = ["pruning_slider"]


def pruning_slider(model, criteria=("l1", "l2", "fpgm", "simc", "nisp"), input_size=(128, 64), data=None,
                   metrics: dict | None = None, max_ratio: float = 0.9, step: float = 0.05, latency: bool = True,
                   batch_size: int = 1, grid=None, scores: dict | None = None, **prune_options) -> WithStatic:
    """Chapter 05's pruning slider (paper 003): :func:`reidbook.prune.measure.pruning_numbers` drawn by
    :func:`reidbook.viz.pruning.plot_pruning`.

    A ratio slider (fraction of the channels removed, 0 … ``max_ratio`` < 1) and a criterion dropdown →
    per-layer widths, parameters, multiply-adds, measured latency (``batch_size`` images) and, where
    ``metrics[(criterion, ratio)]`` holds a cached fine-tuned model's mAP, that mAP. Scores are
    computed once per criterion (data criteria use ``data``) and the unpruned latency once; ``scores``
    (``{criterion: score_channels(...)}``, e.g. the chapter's) are reused instead. Bad arguments
    (an empty or unknown criterion, a training procedure, ``max_ratio`` ≥ 1) are refused before anything is
    computed.

    ``grid`` (a :class:`reidbook.prune.grid.TradeoffGrid`, the chapter's cached criterion × ratio measurements)
    makes it show the trade-off: beside the cost, the criterion's mAP against MACs before and after the short
    fine-tuning, the slider's position on it, and the measured mAPs where the slider sits on a grid ratio.
    Returns a :class:`reidbook.widgets._common.WithStatic`: live in JupyterLab; in an exported page, the grid as
    small multiples (:func:`reidbook.viz.pruning.plot_tradeoff_grid`), or without a grid the figure at the
    slider's start.
    """
    import ipywidgets as W

    from ..profile import measure_latency
    from ..prune import check_one_shot, score_channels
    from ..prune.measure import check_slider_range, pruning_numbers
    from ..viz.pruning import plot_pruning, plot_tradeoff_grid

    criteria = (criteria,) if isinstance(criteria, str) else tuple(criteria)
    if not criteria:
        raise ValueError("pruning_slider needs at least one criterion, e.g. criteria=('l1', 'fpgm')")
    for c in criteria:
        check_one_shot(c)
    check_slider_range(max_ratio, step)
    if isinstance(batch_size, bool) or not isinstance(batch_size, int) or batch_size < 1:
        raise ValueError(f"batch_size (images per latency measurement) must be an integer ≥ 1, got {batch_size!r}")
    cache: dict = {c: v for c, v in (scores or {}).items() if c in criteria}
    ref = measure_latency(model, input_size, batch_size, repeats=5)["median_ms"] if latency else None
    slider = W.FloatSlider(value=min(0.5, max_ratio), min=0.0, max=max_ratio, step=step, description="ratio",
                           continuous_update=False, readout_format=".2f", layout=W.Layout(width="50%"))
    choice = W.Dropdown(options=list(criteria), value=criteria[0], description="criterion")

    def figure(ratio: float, criterion: str):
        if criterion not in cache:
            cache[criterion] = score_channels(model, criterion, data=data)
        nums = pruning_numbers(model, criterion, ratio, input_size, scores=cache[criterion], data=data,
                               latency=latency, batch_size=batch_size, reference_latency_ms=ref, metrics=metrics,
                               grid=grid, **prune_options)
        return plot_pruning(nums)

    def draw(ratio: float, criterion: str) -> None:
        _show(figure(ratio, criterion))

    out = W.interactive_output(draw, {"ratio": slider, "criterion": choice})
    box = W.VBox([W.HBox([slider, choice]), out])
    if grid is not None and grid.rows:
        static = figure_html(plot_tradeoff_grid(grid), alt="pruning trade-off: mAP against multiply-adds kept, "
                                                           "per criterion, before and after fine-tuning")
        note = ("<p><i>Static view of the pruning slider: the measured trade-off grid (run the notebook to move "
                "the slider).</i></p>")
    else:
        static = figure_html(figure(slider.value, choice.value), alt="pruning slider at its start")
        note = f"<p><i>Static view of the pruning slider at {choice.value}, ratio {slider.value:.2f}.</i></p>"
    return WithStatic(box, note + static)
