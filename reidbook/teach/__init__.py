"""Teaching aids: exercises (hint, hidden solution, check), predictions and quizzes — data per chapter in
``chNN.py``, shown by :mod:`.show`. See :mod:`.core` for how a chapter uses them."""
from __future__ import annotations

import importlib
import pkgutil

from .core import EXERCISES, PREDICTIONS, QUIZZES, Exercise, Prediction, Question, Verdict, exercise
from .show import check, hint, predict, quiz, quiz_feedback, reveal, reveal_text, solution

__all__ = ["check", "hint", "solution", "quiz", "quiz_feedback", "predict", "reveal", "reveal_text",
           "exercise", "Exercise", "Question", "Prediction", "Verdict", "EXERCISES", "QUIZZES", "PREDICTIONS"]

_LOADED = False


def _load_all() -> None:
    """Import every ``chNN`` module once, so each registers its chapter's data."""
    global _LOADED
    if _LOADED:
        return
    for m in sorted(pkgutil.iter_modules(__path__), key=lambda m: m.name):
        if m.name.startswith("ch"):
            importlib.import_module(f"{__name__}.{m.name}")
    _LOADED = True
