"""How the teaching aids appear in a chapter: checks print a verdict, hints and solutions are collapsed
``<details>`` blocks (closed by default in JupyterLab *and* in the exported HTML), quizzes and predictions
are choice widgets that carry a static form (:class:`reidbook.widgets._common.WithStatic`) so a page
without widget state still shows the questions, the answers (collapsed) and the explanations."""
from __future__ import annotations

import html as _html

from ..widgets._common import WithStatic
from .core import PREDICTIONS, QUIZZES, Verdict, exercise, not_attempted, solution_source

__all__ = ["check", "hint", "solution", "quiz", "predict", "reveal", "Details"]


class Details:
    """A collapsed block: ``<details><summary>title</summary>body</details>`` (HTML) / plain text."""

    def __init__(self, title: str, body_html: str, text: str):
        self.title, self.body_html, self.text = title, body_html, text

    def _repr_html_(self) -> str:
        return f"<details><summary><b>{_html.escape(self.title)}</b></summary>{self.body_html}</details>"

    def __repr__(self) -> str:
        return f"{self.title} (collapsed; open it in JupyterLab or the HTML page)"


def check(id_: str, answer, **context) -> Verdict:
    """Judge ``answer`` to exercise ``id_`` (``None`` = not answered yet, which is not an error)."""
    ex = exercise(id_)
    if answer is None:
        return not_attempted(ex.prompt)
    try:
        return ex.check(answer, **context)
    except Exception as err:  # a learner's answer of the wrong kind: say so instead of a traceback
        return Verdict(False, f"the check could not use this answer ({type(err).__name__}: {err}); "
                              f"{ex.hint}")


def hint(id_: str) -> Details:
    """Exercise ``id_``'s hint, collapsed."""
    ex = exercise(id_)
    return Details(f"Hint — {ex.title}", f"<p>{_html.escape(ex.hint)}</p>", ex.hint)


def solution(id_: str) -> Details:
    """Exercise ``id_``'s reference solution (tested: it passes the check), as source code, collapsed."""
    src = solution_source(id_)
    return Details(f"Solution — {exercise(id_).title}", f"<pre><code>{_html.escape(src)}</code></pre>", src)


def _quiz_static(chapter: str) -> str:
    items = []
    for q in QUIZZES[chapter]:
        opts = "".join(f"<li>{_html.escape(o)}</li>" for o in q.options)
        ans = f"<b>{_html.escape(q.options[q.answer])}</b> — {_html.escape(q.why)}"
        items.append(f"<li><p>{_html.escape(q.prompt)}</p><ol type='a'>{opts}</ol>"
                     f"<details><summary>answer</summary><p>{ans}</p></details></li>")
    return f"<div class='reidbook-quiz'><p><b>Quiz — chapter {chapter}</b></p><ol>{''.join(items)}</ol></div>"


def quiz_feedback(chapter: str, question: int, choice: int) -> str:
    """The feedback for picking option ``choice`` of question ``question`` (0-based) in ``chapter``'s quiz:
    right or wrong, then the explanation (pure; the widget shows it)."""
    q = QUIZZES[chapter][question]
    if not 0 <= choice < len(q.options):
        raise ValueError(f"question {question + 1} has options 0–{len(q.options) - 1}, got {choice}")
    verdict = "✓ right" if choice == q.answer else f"✗ not quite — the answer is “{q.options[q.answer]}”"
    return f"{verdict}. {q.why}"


def quiz(chapter: str):
    """Chapter ``chapter``'s five-question quiz: one choice per question, feedback on each choice."""
    import ipywidgets as W

    from . import _load_all

    _load_all()
    if chapter not in QUIZZES:
        raise KeyError(f"no quiz for chapter {chapter!r}; chapters with a quiz: {', '.join(sorted(QUIZZES))}")
    rows = []
    for i, q in enumerate(QUIZZES[chapter]):
        pick = W.RadioButtons(options=[(o, j) for j, o in enumerate(q.options)], value=None,
                              layout=W.Layout(width="auto"))
        fb = W.HTML("")

        def on_pick(change, i=i, fb=fb):
            if change["new"] is not None:
                fb.value = f"<i>{_html.escape(quiz_feedback(chapter, i, change['new']))}</i>"

        pick.observe(on_pick, names="value")
        rows.append(W.VBox([W.HTML(f"<b>{i + 1}.</b> {_html.escape(q.prompt)}"), pick, fb]))
    return WithStatic(W.VBox([W.HTML(f"<b>Quiz — chapter {chapter}</b>"), *rows]), _quiz_static(chapter))


_PICKS: dict[str, object] = {}


def predict(id_: str):
    """Ask prediction ``id_`` before its result: a choice widget (static form: the question and options)."""
    import ipywidgets as W

    from . import _load_all

    _load_all()
    if id_ not in PREDICTIONS:
        raise KeyError(f"no prediction {id_!r}; known: {', '.join(sorted(PREDICTIONS))}")
    p = PREDICTIONS[id_]
    pick = W.RadioButtons(options=[(o, j) for j, o in enumerate(p.options)], value=None, layout=W.Layout(width="auto"))
    _PICKS[id_] = pick
    opts = "".join(f"<li>{_html.escape(o)}</li>" for o in p.options)
    static = (f"<div class='reidbook-predict'><p><b>Predict first:</b> {_html.escape(p.prompt)}</p>"
              f"<ol type='a'>{opts}</ol><p><i>Pick one before you read on; the chapter reveals the run's answer "
              "below.</i></p></div>")
    return WithStatic(W.VBox([W.HTML(f"<b>Predict first:</b> {_html.escape(p.prompt)}"), pick]), static)


def reveal_text(id_: str, outcome: int, picked: int | None = None) -> str:
    """The sentence that reveals prediction ``id_``: what the run gave (``outcome``, an option index
    computed from the chapter's numbers by ``Prediction.outcome``) and how the learner's pick compares."""
    p = PREDICTIONS[id_]
    if not 0 <= outcome < len(p.options):
        raise ValueError(f"prediction {id_}: outcome {outcome} is not an index of its {len(p.options)} options")
    said = f"This run: “{p.options[outcome]}”."
    if picked is None:
        you = " (You did not pick an option above.)"
    elif picked == outcome:
        you = " Your prediction matches the run."
    else:
        you = f" You predicted “{p.options[picked]}”."
    return said + you + (f" {p.why}" if p.why else "")


def reveal(id_: str, **values) -> None:
    """Reveal prediction ``id_``: compute the outcome from the chapter's ``values`` and compare it with the
    learner's pick (if :func:`predict` was shown in this kernel), and print the sentence (returns nothing, so
    a cell ending in ``reveal(...)`` shows it once; :func:`reveal_text` gives the sentence as a value)."""
    from . import _load_all

    _load_all()
    p = PREDICTIONS[id_]
    outcome = int(p.outcome(**values))
    pick = _PICKS.get(id_)
    print(reveal_text(id_, outcome, getattr(pick, "value", None)))
