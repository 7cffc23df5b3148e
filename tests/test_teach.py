"""Teaching aids (reidbook.teach): every exercise's solution passes its check and its typical mistake fails
it; every chapter's quiz has five well-formed questions; every prediction's outcome is an option; the
widgets carry a static form that shows the questions without widget state."""
from __future__ import annotations

import html
import json
import re
from pathlib import Path

import pytest

from reidbook.teach import EXERCISES, PREDICTIONS, QUIZZES, _load_all, check, hint, solution
from reidbook.teach.core import Verdict

_load_all()

ROOT = Path(__file__).resolve().parents[1]
NOTEBOOKS = sorted((ROOT / "notebooks").glob("[0-9][0-9]_*.ipynb"))
CHAPTERS = [nb.name[:2] for nb in NOTEBOOKS]


def _code(nb: Path) -> str:
    cells = json.loads(nb.read_text())["cells"]
    return "\n".join("".join(c["source"]) for c in cells if c["cell_type"] == "code")


@pytest.mark.parametrize("eid", sorted(EXERCISES))
def test_the_solution_passes_and_a_wrong_answer_fails(eid):
    ex = EXERCISES[eid]
    ctx = ex.context()
    good = ex.solution(**ctx)
    v = check(eid, good, **ctx)
    assert isinstance(v, Verdict) and v.ok and v.attempted, f"{eid}: the reference solution fails its check: {v}"
    bad = ex.wrong(**ctx)
    v = check(eid, bad, **ctx)
    assert not v.ok and v.attempted and v.why, f"{eid}: the check accepts a wrong answer: {v}"


@pytest.mark.parametrize("eid", sorted(EXERCISES))
def test_every_exercise_has_a_hint_and_a_shown_solution(eid):
    ex = EXERCISES[eid]
    assert ex.hint and ex.prompt and ex.title
    assert "<details>" in hint(eid)._repr_html_()
    sol = solution(eid)._repr_html_()
    assert sol.startswith("<details>") and "def " in sol     # the reference solution's source, collapsed
    v = check(eid, None, **ex.context())
    assert not v.attempted and not v.ok                       # unanswered is not an error


def test_quizzes_have_five_answerable_questions():
    from reidbook.teach import quiz_feedback

    assert sorted(QUIZZES) == CHAPTERS, f"chapters without a quiz: {sorted(set(CHAPTERS) - set(QUIZZES))}"
    for chapter, qs in QUIZZES.items():
        assert len(qs) == 5
        for i, q in enumerate(qs):
            assert 2 <= len(q.options) <= 5 and q.why
            assert quiz_feedback(chapter, i, q.answer).startswith("✓")
            other = (q.answer + 1) % len(q.options)
            assert quiz_feedback(chapter, i, other).startswith("✗")


def test_quiz_and_prediction_widgets_carry_their_static_form():
    pytest.importorskip("ipywidgets")
    from reidbook.teach import predict, quiz

    for chapter, qs in QUIZZES.items():
        bundle = quiz(chapter)._repr_mimebundle_()
        assert "application/vnd.jupyter.widget-view+json" in bundle
        assert all(html.escape(q.options[q.answer]) in bundle["text/html"] for q in qs)
    for pid in PREDICTIONS:
        bundle = predict(pid)._repr_mimebundle_()
        assert "Predict first" in bundle["text/html"]


def test_unknown_ids_are_named():
    with pytest.raises(KeyError, match="known exercises"):
        check("99.nothing", 1)


@pytest.mark.parametrize("nb", NOTEBOOKS, ids=lambda p: p.stem)
def test_each_chapter_shows_its_exercises_predictions_and_quiz(nb):
    """Every registered exercise is checked, hinted and solved in its chapter; the chapter asks at least one
    prediction and reveals it, and ends with its quiz. (Ids in the notebook must exist: unknown ones fail.)"""
    code, ch = _code(nb), nb.name[:2]
    mine = sorted(e for e in EXERCISES if e.startswith(ch + "."))
    assert mine, f"chapter {ch} has no registered exercise"
    for eid in mine:
        for fn in ("check", "hint", "solution"):
            assert re.search(rf'{fn}\(\s*"{re.escape(eid)}"', code), f"{nb.name} never calls {fn}(\"{eid}\")"
    for used in re.findall(r'(?:check|hint|solution)\(\s*"([0-9]{2}\.[a-z0-9_]+)"', code):
        assert used in EXERCISES, f"{nb.name} uses unknown exercise {used!r}"
    preds = re.findall(r'predict\(\s*"([0-9]{2}\.[a-z0-9_]+)"', code)
    assert preds, f"chapter {ch} asks no prediction"
    for pid in preds:
        assert pid in PREDICTIONS and re.search(rf'reveal\(\s*"{re.escape(pid)}"', code), pid
    assert re.search(rf'quiz\(\s*"{ch}"\s*\)', code), f"{nb.name} has no quiz(\"{ch}\")"
