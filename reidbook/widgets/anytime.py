"""Chapter 07's budget slider (DaRe): a thin shell over :func:`reidbook.viz.anytime.budget_view`."""
from __future__ import annotations

from ._common import WithStatic, _show, figure_html

__all__ = ["budget_slider"]


def budget_slider(ev, curve=None, rule: str = "margin", n_examples: int = 2, topk: int = 4, steps: int = 40,
                  static_budgets: int = 5):
    """Chapter 07's budget slider (DaRe, paper 004 §4.2) over :func:`reidbook.viz.anytime.budget_view`.

    Moving the average budget per query (M multiply-adds, from ``C_1`` to ``C_S`` of ``ev``) updates the
    exit distribution of Eq. (3), the point on the accuracy–cost curve (``curve``: the table of
    :func:`reidbook.eval.anytime.budgeted_curve`) and a strip of easy / hard queries with their top-k.
    A dropdown picks the routing rule.

    Returns a :class:`reidbook.widgets._common.WithStatic`: the live widget in JupyterLab, and in an
    exported page (no widget state) the whole range instead of one frame —
    :func:`reidbook.viz.anytime.budget_range_view` at ``static_budgets`` budgets from ``C_1`` to ``C_S``
    for ``rule``, with the accuracy–cost curve and those positions marked.
    """
    import ipywidgets as W

    from ..eval.anytime import ROUTINGS
    from ..viz.anytime import _check_view_args, budget_range_view, budget_view

    _check_budget_slider_args(ev, rule, n_examples, topk, steps, ROUTINGS)
    _check_view_args(ev, float(ev.costs[0]), rule, n_examples, topk)
    static = figure_html(budget_range_view(ev, curve, rule, static_budgets),
                         alt=f"budget slider ({rule}): exit distributions and accuracy at {static_budgets} budgets "
                             "from C_1 to C_S")
    lo, hi = float(ev.costs[0]) / 1e6, float(ev.costs[-1]) / 1e6
    slider = W.FloatSlider(value=(lo + hi) / 2, min=lo, max=hi, step=(hi - lo) / steps, description="budget (M)",
                           continuous_update=False, readout_format=".1f", layout=W.Layout(width="60%"))
    choice = W.Dropdown(options=list(ROUTINGS), value=rule, description="routing")

    def draw(budget_m: float, routing: str) -> None:
        _show(budget_view(ev, budget_m * 1e6, routing, curve, n_examples, topk))

    out = W.interactive_output(draw, {"budget_m": slider, "routing": choice})
    return WithStatic(W.VBox([W.HBox([slider, choice]), out]), static)


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
