"""The teaching aids every chapter shares: exercises with a hint, a hidden solution and a check; a
prediction asked before a key result and revealed after it; a five-question quiz with feedback.

Everything a chapter shows is *data* in ``reidbook/teach/chNN.py`` (one file per chapter), registered
here, and displayed by :mod:`reidbook.teach.show`. The data is tested: every exercise's solution passes its
check and a wrong answer fails it (``tests/test_teach.py``), every quiz has five questions with an answer and
an explanation, every prediction names the outcome it will be compared with.

How a chapter uses it::

    from reidbook.teach import check, hint, solution, quiz, predict, reveal
    my_answer = None            # the learner fills this in (cell tagged `exercise`)
    check("01.bn_neck", my_answer, model=paper)
    hint("01.bn_neck")          # collapsed <details> in JupyterLab and in the HTML
    solution("01.bn_neck")      # the reference solution's source, collapsed
"""
from __future__ import annotations

import inspect
import textwrap
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

__all__ = ["Verdict", "right", "wrong", "not_attempted", "Exercise", "Question", "Prediction",
           "EXERCISES", "QUIZZES", "PREDICTIONS", "register", "exercise", "solution_source"]


@dataclass(frozen=True)
class Verdict:
    """What a check says: ``ok`` (right or not) and ``why`` (one or two sentences a learner can act on).
    ``attempted`` is False while the answer is still the placeholder ``None``."""
    ok: bool
    why: str
    attempted: bool = True

    def __bool__(self) -> bool:
        return self.ok

    def __str__(self) -> str:
        if not self.attempted:
            return f"… not answered yet: {self.why}"
        return f"{'✓ right' if self.ok else '✗ not yet'}: {self.why}"

    def _repr_html_(self) -> str:
        import html
        colour = "#2a7a2a" if self.ok else ("#777" if not self.attempted else "#b03030")
        return f'<p style="color:{colour}"><b>{html.escape(str(self).split(":")[0])}</b>: {html.escape(self.why)}</p>'

    def __repr__(self) -> str:
        return str(self)


def right(why: str) -> Verdict:
    """A correct answer, with what it means."""
    return Verdict(True, why)


def wrong(why: str) -> Verdict:
    """A wrong answer, with why and where to look."""
    return Verdict(False, why)


def not_attempted(what: str) -> Verdict:
    """The answer is still ``None``: say what to fill in (not an error, so a chapter runs top to bottom)."""
    return Verdict(False, what, attempted=False)


@dataclass(frozen=True)
class Exercise:
    """One exercise of a chapter.

    ``check(answer, **context) -> Verdict`` judges an answer; ``solution(**context)`` computes the
    reference answer (its source is what :func:`reidbook.teach.solution` shows); ``wrong(**context)`` returns
    an answer the check must reject (the tests run both); ``context()`` builds a small context the tests
    use (a tiny model, a toy batch) — chapters pass their own. ``prompt`` is the task in one paragraph,
    ``hint`` a nudge that does not give the answer away.
    """
    id: str
    title: str
    prompt: str
    hint: str
    check: Callable[..., Verdict]
    solution: Callable[..., Any]
    wrong: Callable[..., Any]
    context: Callable[[], dict] = field(default=lambda: {})

    @property
    def chapter(self) -> str:
        return self.id.split(".", 1)[0]


@dataclass(frozen=True)
class Question:
    """A quiz question: ``options`` (2–5 strings), ``answer`` (index of the right one), ``why`` (the
    explanation shown after any choice: why the right one is right, and the usual misconception)."""
    prompt: str
    options: tuple[str, ...]
    answer: int
    why: str


@dataclass(frozen=True)
class Prediction:
    """A question asked *before* a key result (``options`` to choose from); after the result, the chapter
    calls :func:`reidbook.teach.reveal` with the option the run produced, computed from its numbers
    (``outcome(**values) -> index into options``)."""
    id: str
    prompt: str
    options: tuple[str, ...]
    outcome: Callable[..., int]
    why: str = ""


EXERCISES: dict[str, Exercise] = {}
QUIZZES: dict[str, tuple[Question, ...]] = {}
PREDICTIONS: dict[str, Prediction] = {}


def register(chapter: str, exercises=(), quiz=(), predictions=()) -> None:
    """Add a chapter's teaching data (called at the bottom of each ``chNN.py``). Ids must start with the
    chapter ("01.bn_neck"), be unique, and a quiz must have five questions."""
    for e in exercises:
        _check_id(e.id, chapter, EXERCISES)
        EXERCISES[e.id] = e
    for p in predictions:
        _check_id(p.id, chapter, PREDICTIONS)
        PREDICTIONS[p.id] = p
    if quiz:
        quiz = tuple(quiz)
        if len(quiz) != 5:
            raise ValueError(f"chapter {chapter}'s quiz has {len(quiz)} questions; it must have 5")
        for q in quiz:
            if not 0 <= q.answer < len(q.options):
                raise ValueError(f"chapter {chapter}: quiz answer {q.answer} is not an index of {q.options}")
        QUIZZES[chapter] = quiz


def _check_id(id_: str, chapter: str, table: dict) -> None:
    if not id_.startswith(chapter + "."):
        raise ValueError(f"teaching id {id_!r} must start with its chapter, e.g. {chapter}.something")
    if id_ in table:
        raise ValueError(f"teaching id {id_!r} is registered twice")


def exercise(id_: str) -> Exercise:
    """The exercise ``id_``, with a clear error naming the known ones."""
    from . import _load_all

    _load_all()
    if id_ not in EXERCISES:
        known = ", ".join(sorted(EXERCISES)) or "none"
        raise KeyError(f"no exercise {id_!r}; known exercises: {known}")
    return EXERCISES[id_]


def solution_source(id_: str) -> str:
    """The reference solution's source code (the body of ``Exercise.solution``), as a learner would type it."""
    src = textwrap.dedent(inspect.getsource(exercise(id_).solution))
    return src.rstrip() + "\n"
