"""Chapter 08's budget slider: a thin shell over :func:`reidbook.viz.compare.budget_pick` and
:func:`reidbook.viz.compare.plot_budget_range`."""
from __future__ import annotations

from ._common import WithStatic, _show, figure_html

__all__ = ["budget_guide_slider"]


def budget_guide_slider(table, reference: str = "baseline", accuracy: str = "mAP", lo: float = 0.02,
                        hi: float | None = None, value: float = 0.5, steps: int = 60, static_fractions=None):
    """A budget fraction (log slider, ``lo`` … ``hi`` × the ``reference``'s cost) and a cost axis (parameters,
    multiply-adds, latency) → the model the guide picks (:func:`~reidbook.viz.compare.budget_pick`: one sentence,
    with the equal-budget caveat for the pick) and the pick's accuracy across all budgets with the slider's
    position marked (:func:`~reidbook.viz.compare.plot_budget_range`). ``hi=None``: just above the most
    expensive model's cost ratio on any axis, so that the top of the slider fits every model.

    Returns a :class:`~reidbook.widgets._common.WithStatic` whose static form (an exported page) shows the
    whole range: the small multiples over every axis and the table of picks at ``static_fractions``
    (:func:`~reidbook.viz.compare.budget_range`; default 5 %, 10 %, 25 %, 50 %, 100 % and ``hi``).
    Bad arguments are refused before anything is built.
    """
    import html

    import ipywidgets as W
    import numpy as np
    from IPython.display import Markdown, display

    from ..viz.compare import AXES, budget_pick, budget_range, plot_budget_range

    if reference not in table.index:
        raise KeyError(f"reference {reference!r} is not in the table; rows: {', '.join(map(str, table.index))}")
    axes = [a for a in AXES if a in table.columns]
    if hi is None:
        ratios = [float(np.nanmax(table[a].astype(float))) / float(table.loc[reference, a]) for a in axes]
        hi = float(np.ceil(max(ratios + [1.0]) * 11) / 10)
    if static_fractions is None:
        static_fractions = (0.05, 0.1, 0.25, 0.5, 1.0, hi)
    if not 0 < lo < hi:
        raise ValueError(f"budget_guide_slider needs 0 < lo < hi (fractions of the reference's cost), got {lo}, {hi}")
    if isinstance(steps, bool) or not isinstance(steps, int) or steps < 2:
        raise ValueError(f"budget_guide_slider: steps must be a whole number ≥ 2, got {steps!r}")
    fractions = tuple(np.geomspace(lo, hi, 41))
    static = (figure_html(plot_budget_range(table, fractions, axes, reference, accuracy),
                          alt="the guide's pick against the budget fraction, one panel per cost axis") +
              budget_range(table, static_fractions, axes, reference, accuracy).to_html())
    slider = W.FloatLogSlider(value=float(np.clip(value, lo, hi)), base=10, min=float(np.log10(lo)),
                              max=float(np.log10(hi)), step=float(np.log10(hi / lo) / steps), description="budget ×",
                              continuous_update=False, readout_format=".2f", layout=W.Layout(width="55%"))
    choice = W.Dropdown(options=[(AXES[a], a) for a in axes], value=axes[min(1, len(axes) - 1)], description="cost")

    def draw(fraction: float, axis: str) -> None:
        display(Markdown(budget_pick(table, fraction, axis, reference, accuracy)["text"]))
        _show(plot_budget_range(table, fractions, axes, reference, accuracy, mark=(fraction, axis)))

    out = W.interactive_output(draw, {"fraction": slider, "axis": choice})
    ref_label = html.escape(str(table.loc[reference].get("label", reference)))
    title = W.HTML(f"<b>Budget guide</b>: budgets are fractions of {ref_label}'s cost")
    return WithStatic(W.VBox([title, W.HBox([slider, choice]), out]), static)
