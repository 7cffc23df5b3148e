"""Interactive widgets: thin ``ipywidgets.interactive_output`` shells over pure, tested functions in
:mod:`reidbook.viz`. Each returns an ``ipywidgets`` box to display; the figure it draws is exactly
what the pure function returns for the slider's value, so headless runs and tests call that instead.
"""
from __future__ import annotations

__all__ = ["budget_slider"]


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
    from .viz.anytime import budget_view

    lo, hi = float(ev.costs[0]) / 1e6, float(ev.costs[-1]) / 1e6
    slider = W.FloatSlider(value=(lo + hi) / 2, min=lo, max=hi, step=(hi - lo) / steps, description="budget (M)",
                           continuous_update=False, readout_format=".1f", layout=W.Layout(width="60%"))
    choice = W.Dropdown(options=list(ROUTINGS), value=rule, description="routing")

    def draw(budget_m: float, routing: str) -> None:
        _show(budget_view(ev, budget_m * 1e6, routing, curve, n_examples, topk))

    out = W.interactive_output(draw, {"budget_m": slider, "routing": choice})
    return W.VBox([W.HBox([slider, choice]), out])
