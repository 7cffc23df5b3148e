"""Figures: pure functions that take data and return matplotlib figures, tables or arrays.

Import the submodule you need (``from reidbook.viz import ranklist``); nothing here trains or
evaluates a model. The widgets in ``reidbook/widgets.py`` are thin shells over these functions.
"""
