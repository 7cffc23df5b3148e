"""The course map (build/course/index.html): every chapter's title, learning goals, run time, profile, links."""
from __future__ import annotations

import json

import pytest

from reidbook.course import ChapterRun, chapter_info, find_chapters, write_index


def test_index_lists_goals_time_profile_and_links(tmp_path):
    runs = [ChapterRun("00_data", "00 · Data", ["read CMC", "compute mAP"], "00_data.ipynb", "00_data.html", 61.2,
                       profile="quick"),
            ChapterRun("01_base", "01 · Baseline", ["train a baseline"], "01_base.ipynb", None, 5.0, ok=False,
                       error="PapermillExecutionError: boom", profile="quick")]
    page = write_index(runs, tmp_path, "quick", "synth").read_text()
    for text in ("00 · Data", "<li>read CMC</li>", "<li>compute mAP</li>", "profile <b>quick</b>", "61 s",
                 'href="00_data.html"', 'href="00_data.ipynb"', "01 · Baseline", "failed", "boom"):
        assert text in page, text
    meta = json.loads((tmp_path / "course.json").read_text())
    assert meta["profile"] == "quick" and [c["name"] for c in meta["chapters"]] == ["00_data", "01_base"]
    assert meta["total_seconds"] == pytest.approx(66.2)


def test_index_shows_the_preparation_step(tmp_path):
    runs = [ChapterRun("00_data", "00 · Data", ["read CMC"], "00_data.ipynb", "00_data.html", 61.2)]
    page = write_index(runs, tmp_path, "quick", "synth",
                       {"SynthReID": 6.0, "resnet50 x0.25 (source domain)": 114.0}).read_text()
    assert "2.0 minutes of preparation" in page and "resnet50 x0.25 (source domain) 114 s" in page
    meta = json.loads((tmp_path / "course.json").read_text())
    assert meta["prepare_seconds"]["SynthReID"] == 6.0


@pytest.mark.parametrize("path", find_chapters(), ids=lambda p: p.stem)
def test_every_chapter_states_title_and_goals(path):
    title, goals = chapter_info(path)
    assert title != path.stem and title.startswith(path.stem[:2]), title
    assert len(goals) >= 3, (f"{path.name}: the index page needs its learning goals "
                             "(a bullet list after 'Learning goals')")


def test_index_shows_cell_times_and_lost_kernel_messages(tmp_path):
    run = ChapterRun("07_dare", "07 · DaRe", ["route queries"], "07_dare.ipynb", "07_dare.html", 90.0,
                     cells=[{"cell": 2, "first_line": "import numpy as np", "seconds": 3.0},
                            {"cell": 6, "first_line": "dare_entry = zoo.get(...)", "seconds": 70.5}],
                     events=[{"cell": 32, "kind": "lost-reply", "seconds": 30.0}])
    page = write_index([run], tmp_path, "quick", "synth").read_text()
    assert "time per cell (2 cells; slowest: cell 6, 70 s)" in page and "<code>import numpy as np</code>" in page
    assert "Kernel messages lost" in page and "cell 32" in page and "its reply never came" in page
    meta = json.loads((tmp_path / "course.json").read_text())
    chapter = meta["chapters"][0]
    assert chapter["cells"][1]["seconds"] == 70.5 and chapter["events"][0]["cell"] == 32


def test_reading_time_counts_the_prose_at_200_words_a_minute(tmp_path):
    import nbformat

    from reidbook.course import WORDS_PER_MINUTE, reading_minutes

    nb = nbformat.v4.new_notebook()
    nb.cells = [nbformat.v4.new_markdown_cell(" ".join(["word"] * 300) + " [a link](https://example.org/a/b/c)"),
                nbformat.v4.new_markdown_cell("<b>bold</b> $\\frac{a}{b}$ " + " ".join(["more"] * 97)),
                nbformat.v4.new_code_cell(" ".join(["code"] * 1000))]  # code is not prose
    path = tmp_path / "00_x.ipynb"
    nbformat.write(nb, str(path))
    # 300 + "a link" (2) + "bold" + "a", "b" + 97 = 402 words; the URL and \frac are not words
    assert WORDS_PER_MINUTE == 200
    assert reading_minutes(path) == pytest.approx(402 / 200)
    assert reading_minutes(path, words_per_minute=100) == pytest.approx(4.02)


def test_index_shows_reading_and_run_time_and_failed_chapters(tmp_path):
    runs = [ChapterRun("00_data", "00 · Data", ["read CMC"], "00_data.ipynb", "00_data.html", 61.2,
                       reading_minutes=7.6),
            ChapterRun("07_dare", "07 · DaRe", ["route"], "07_dare.ipynb", None, 300.0, ok=False,
                       error="07_dare: cell 32 (widget cell, `budget_slider(ev)`) timed out", reading_minutes=11.4)]
    page = write_index(runs, tmp_path, "quick", "synth").read_text()
    assert "read in about 8 min" in page and "ran in 61 s" in page
    assert "read in about 11 min" in page and "ran in 300 s" in page
    assert "200 words a minute" in page and "about\n19 minutes of reading" in page
    assert 'class="fail">failed' in page and "cell 32 (widget cell" in page
    meta = json.loads((tmp_path / "course.json").read_text())
    assert [c["reading_minutes"] for c in meta["chapters"]] == [7.6, 11.4]


def test_exported_page_shows_a_widgets_static_form_even_when_its_state_was_saved(tmp_path):
    """The kernel client may save widget state in the executed chapter; the page has no kernel, so the
    export leaves the state out and nbconvert shows the next representation: WithStatic's static HTML."""
    import nbformat

    from reidbook.course import _to_html

    view = {"version_major": 2, "version_minor": 0, "model_id": "abc123"}
    nb = nbformat.v4.new_notebook()
    cell = nbformat.v4.new_code_cell("quiz('01')")
    cell.outputs = [nbformat.v4.new_output("display_data", data={
        "application/vnd.jupyter.widget-view+json": view, "text/plain": "VBox(...)",
        "text/html": "<div class='reidbook-quiz'>STATIC QUIZ</div>"})]
    nb.cells = [cell]
    nb.metadata["widgets"] = {"application/vnd.jupyter.widget-state+json": {
        "version_major": 2, "version_minor": 0,
        "state": {"abc123": {"model_name": "VBoxModel", "model_module": "@jupyter-widgets/controls",
                             "model_module_version": "2.0.0", "state": {}}}}}
    path = tmp_path / "00_x.ipynb"
    nbformat.write(nb, str(path))
    page = (tmp_path / _to_html(path)).read_text()
    assert "STATIC QUIZ" in page
    assert "application/vnd.jupyter.widget-view+json" not in page
    assert nbformat.read(str(path), as_version=4).metadata["widgets"]  # the executed notebook is left as it was
