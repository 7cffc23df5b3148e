"""Interactive widgets: thin ``ipywidgets.interactive_output`` shells over pure, tested functions in
:mod:`reidbook.viz`. Each returns an ``ipywidgets`` box to display; the figure it draws is exactly
what the pure function returns for the slider's value, so headless runs and tests call that instead.

One module per chapter's widget: :mod:`.anytime` (07's budget slider), :mod:`.pruning` (05's pruning slider),
:mod:`.capstone` (08's budget guide slider).
"""
from __future__ import annotations

from .anytime import budget_slider
from .capstone import budget_guide_slider
from .pruning import pruning_slider

__all__ = ["budget_guide_slider", "budget_slider", "pruning_slider"]
