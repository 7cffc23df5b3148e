"""Interactive widgets: thin ``ipywidgets.interactive_output`` shells over pure, tested functions in
:mod:`reidbook.viz`. Each returns an ``ipywidgets`` box to display; the figure it draws is exactly
what the pure function returns for the slider's value, so headless runs and tests call that instead.
"""
from __future__ import annotations

__all__ = ["budget_slider", "pruning_slider"]


def _show(fig) -> None:
    import matplotlib.pyplot as plt
    from IPython.display import display

    display(fig)
    plt.close(fig)


def budget_slider(ev, curve=None, rule: str = "margin", n_examples: int = 2, topk: int = 4, steps: int = 40):
    """Chapter 07's budget slider (DaRe, paper 004 §4.2) over :func:`reidbook.viz.anytime.budget_view`.

    Moving the average budget per query (M multiply-adds, from ``C_1`` to ``C_S`` of ``ev``) updates the
    exit distribution of Eq. (3), the point on the accuracy–cost curve (``curve``: the table of
    :func:`reidbook.eval.anytime.budgeted_curve`) and a strip of easy / hard queries with their top-k.
    A dropdown picks the routing rule.
    """
    import ipywidgets as W

    from .eval.anytime import ROUTINGS
    from .viz.anytime import _check_view_args, budget_view

    _check_budget_slider_args(ev, rule, n_examples, topk, steps, ROUTINGS)
    _check_view_args(ev, float(ev.costs[0]), rule, n_examples, topk)
    lo, hi = float(ev.costs[0]) / 1e6, float(ev.costs[-1]) / 1e6
    slider = W.FloatSlider(value=(lo + hi) / 2, min=lo, max=hi, step=(hi - lo) / steps, description="budget (M)",
                           continuous_update=False, readout_format=".1f", layout=W.Layout(width="60%"))
    choice = W.Dropdown(options=list(ROUTINGS), value=rule, description="routing")

    def draw(budget_m: float, routing: str) -> None:
        _show(budget_view(ev, budget_m * 1e6, routing, curve, n_examples, topk))

    out = W.interactive_output(draw, {"budget_m": slider, "routing": choice})
    return W.VBox([W.HBox([slider, choice]), out])


def _check_budget_slider_args(ev, rule, n_examples, topk, steps, routings) -> None:
    """The budget slider's arguments, checked before any widget is built (ipywidgets' TraitError and a
    division by ``steps`` would otherwise be the message)."""
    import numpy as np

    if isinstance(steps, bool) or not isinstance(steps, (int, np.integer)) or steps < 1:
        raise ValueError(f"budget_slider: steps must be a whole number ≥ 1 (slider positions), got {steps!r}")
    if rule not in routings:
        raise ValueError(f"budget_slider: unknown routing rule {rule!r}; choose one of {', '.join(routings)}")
    costs = np.asarray(getattr(ev, "costs", []), dtype=np.float64)
    if costs.ndim != 1 or len(costs) < 2 or not np.all(np.isfinite(costs)) or not costs[-1] > costs[0]:
        raise ValueError(f"budget_slider needs an anytime evaluation whose exits cost different amounts "
                         f"(C_1 < C_S), got costs {costs.tolist()}; evaluate a model with several exits "
                         "(e.g. DaRe; see reidbook.eval.anytime.AnytimeEval)")


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

    from .profile import measure_latency
    from .prune import check_one_shot, score_channels
    from .prune.measure import check_slider_range, pruning_numbers
    from .viz.pruning import plot_pruning

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
