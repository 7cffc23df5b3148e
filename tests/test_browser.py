"""The widgets as a person sees them: JupyterLab in headless Chromium, sliders moved, figures redrawn.

Starts JupyterLab on localhost (no token, a free port, a temporary root) and, in Debian's ``chromium``
driven by Playwright:

* ``widgets.ipynb``: :func:`reidbook.widgets.budget_slider` (chapter 07), :func:`reidbook.widgets.pruning_slider`
  (chapter 05) and :func:`reidbook.widgets.budget_guide_slider` (chapter 08's capstone): runs all cells,
  moves each slider to an extreme by typing into its readout (and the capstone's cost axis), and checks the
  figure under it changes (the PNG the kernel sent is different, and so is the screenshot);
* ``teach.ipynb``: :func:`reidbook.teach.quiz` (a right and a wrong pick show their feedback) and
  :func:`reidbook.teach.predict` (the pick is what :func:`reidbook.teach.reveal` compares with the run);
* an **exported chapter**: a small chapter executed by the course runner and exported to HTML with no
  widget state (as ``make course`` does) shows every :class:`reidbook.widgets._common.WithStatic` widget's
  static form — checked in the HTML without a browser, and rendered in the browser.

Screenshots are kept in ``build/test-artifacts/``. The browser tests are skipped with a reason when
``/usr/bin/chromium`` or the ``playwright`` package is missing — except under CI (``CI`` set), where
``.ci/run`` installs chromium and a missing browser is a failure. The exported-HTML check needs no browser
and always runs.
"""
from __future__ import annotations

import os
import shutil
import socket
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
ARTIFACTS = ROOT / "build" / "test-artifacts"
CHROMIUM = "/usr/bin/chromium"

# Chapter 08's comparison table, in miniature (what compare.measure returns).
CAPSTONE_TABLE = """import pandas as pd
table = pd.DataFrame({"label": ["Ref", "Small", "Tiny", "Big"],
                      "family": ["reference", "pruning", "anytime", "multi-branch"],
                      "mAP": [60.0, 58.0, 40.0, 70.0], "rank1": [80.0, 79.0, 60.0, 85.0],
                      "params_M": [10.0, 4.0, 1.0, 30.0], "MACs_M": [100.0, 40.0, 20.0, 300.0],
                      "latency_ms": [10.0, 6.0, 2.0, 25.0], "images_seen": [1000.0, 1500.0, 1000.0, 2000.0]},
                     index=["ref", "small", "tiny", "big"])"""

CELLS = [
    """import numpy as np
import torch
from reidbook.eval.anytime import AnytimeEval
from reidbook.models import build_model
from reidbook.widgets import budget_guide_slider, budget_slider, pruning_slider""",
    """# a small anytime evaluation: 6 identities, 4 exits whose distances get less noisy
rng = np.random.default_rng(0)
q_pids, g_pids = np.repeat(np.arange(6), 2), np.repeat(np.arange(6), 4)
base = np.abs(q_pids[:, None] - g_pids[None, :]).astype(float)
dist = np.stack([base + rng.normal(0, s, base.shape) for s in (3.0, 2.0, 1.0, 0.5)])
ev = AnytimeEval(dist, np.array([1e6, 2e6, 3e6, 4e6]), q_pids, g_pids, np.zeros_like(q_pids), np.ones_like(g_pids))
budget_slider(ev)""",
    """torch.manual_seed(0)
model = build_model("baseline", 10, profile="smoke").eval()
pruning_slider(model, criteria=("l1",), input_size=(64, 32), latency=False)""",
    CAPSTONE_TABLE + """
budget_guide_slider(table, reference="ref")""",
]

# A chapter "99" of teaching data: each quiz question's right option is "right one"; the prediction's outcome
# is option B when the run says b=True.
TEACH_SETUP = """from reidbook.teach import _load_all, predict, quiz, reveal
from reidbook.teach.core import Prediction, Question, register
_load_all()
register("99", quiz=[Question(f"Question {i + 1}: pick one", ("wrong one", "right one"), 1, f"because {i + 1}.")
                     for i in range(5)],
         predictions=[Prediction("99.guess", "Which will the run give?", ("option A", "option B"),
                                 outcome=lambda b: int(b))])"""
TEACH_CELLS = [TEACH_SETUP, 'quiz("99")', 'predict("99.guess")', 'reveal("99.guess", b=True)']


def _requirements() -> str | None:
    """Why the test cannot run here (None: it can)."""
    if not Path(CHROMIUM).exists():
        return f"{CHROMIUM} is missing (apt-get install -y chromium; .ci/run does it in CI)"
    try:
        import playwright.sync_api  # noqa: F401
    except ImportError:
        return "the playwright package is missing (pip install -e '.[dev]')"
    return None


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _write_notebook(folder: Path, cells=CELLS, name="widgets.ipynb") -> Path:
    import nbformat

    nb = nbformat.v4.new_notebook()
    nb.metadata = {"kernelspec": {"display_name": "Python 3", "language": "python", "name": "python3"}}
    nb.cells = [nbformat.v4.new_code_cell(src) for src in cells]
    path = folder / name
    nbformat.write(nb, str(path))
    return path


def _browser_or_skip() -> None:
    why = _requirements()
    if why:
        if os.environ.get("CI"):
            pytest.fail(f"browser test cannot run in CI: {why}")
        pytest.skip(why)


@pytest.fixture()
def lab(tmp_path):
    """A token-less JupyterLab on a free localhost port serving ``tmp_path``; yields its base URL."""
    _browser_or_skip()
    root = tmp_path / "lab"
    root.mkdir()
    _write_notebook(root)
    _write_notebook(root, TEACH_CELLS, "teach.ipynb")
    port = _free_port()
    env = {**os.environ, "JUPYTER_CONFIG_DIR": str(tmp_path / "config"), "JUPYTER_RUNTIME_DIR": str(tmp_path / "run"),
           "REIDBOOK_QUIET": "1"}
    env.pop("MPLBACKEND", None)
    cmd = [sys.executable, "-m", "jupyter", "lab", "--no-browser", f"--port={port}", "--ServerApp.ip=127.0.0.1",
           "--IdentityProvider.token=", "--ServerApp.password=", f"--ServerApp.root_dir={root}",
           f"--LabApp.workspaces_dir={tmp_path / 'workspaces'}", "--ServerApp.port_retries=0", "--allow-root"]
    log = open(tmp_path / "jupyter.log", "w")
    proc = subprocess.Popen(cmd, env=env, stdout=log, stderr=subprocess.STDOUT)
    url = f"http://127.0.0.1:{port}"
    try:
        for _ in range(120):
            if proc.poll() is not None:
                raise RuntimeError(f"JupyterLab exited: {(tmp_path / 'jupyter.log').read_text()[-2000:]}")
            try:
                urllib.request.urlopen(f"{url}/api/status", timeout=1)
                break
            except OSError:
                time.sleep(0.5)
        else:
            raise RuntimeError(f"JupyterLab did not start on {url}: {(tmp_path / 'jupyter.log').read_text()[-2000:]}")
        yield url
    finally:
        proc.terminate()
        try:
            proc.wait(timeout=20)
        except subprocess.TimeoutExpired:
            proc.kill()
        log.close()
        if ARTIFACTS.is_dir():
            shutil.copy(tmp_path / "jupyter.log", ARTIFACTS / "jupyter.log")


def _figure_src(cell) -> str:
    img = cell.locator(".jp-OutputArea-output img").last
    img.wait_for(state="visible", timeout=120_000)
    return img.get_attribute("src") or ""


def _set_slider(page, cell, value: str) -> None:
    """Type ``value`` into the cell's slider readout (what a person does to jump to an exact value)."""
    readout = cell.locator(".widget-readout").first
    readout.scroll_into_view_if_needed()
    # typed into the readout element itself: keystrokes sent to the page while a click missed the readout
    # would go to the notebook's command mode ("0", "0" restarts the kernel)
    readout.fill(value)
    readout.press("Enter")


def _wait_for_new_figure(page, cell, old: str, timeout: int = 120_000) -> str:
    """Wait until the last figure of ``cell`` is another PNG than ``old``; returns its source."""
    page.wait_for_function(
        "([el, old]) => { const i = [...el.querySelectorAll('.jp-OutputArea-output img')].pop();"
        " return i && i.getAttribute('src') !== old; }", arg=[cell.element_handle(), old], timeout=timeout)
    return _figure_src(cell)


def _until_new_figure(page, cell, old: str, act) -> str:
    """``act()`` (a user's input to the cell's widget), then wait for the cell's figure to change; ``act`` is
    repeated (up to three times) when the figure stays the same for 40 s — in about one run in four the first
    entry into the capstone's log slider was not taken while the kernel was still drawing the other sliders."""
    from playwright.sync_api import TimeoutError as PlaywrightTimeout

    for attempt in range(3):
        act()
        try:
            return _wait_for_new_figure(page, cell, old, timeout=40_000)
        except PlaywrightTimeout:
            if attempt == 2:
                raise
    raise AssertionError("unreachable")


def _move_slider_and_wait(page, cell, value: str, old: str) -> str:
    """Type ``value`` into the cell's slider and wait for its figure to change (:func:`_until_new_figure`)."""
    return _until_new_figure(page, cell, old, lambda: _set_slider(page, cell, value))


def _open_and_run_all(browser, lab: str, name: str):
    page = browser.new_page(viewport={"width": 1400, "height": 1800})
    page.goto(f"{lab}/lab/tree/{name}", wait_until="domcontentloaded", timeout=120_000)
    page.locator(".jp-Notebook .jp-CodeCell").first.wait_for(timeout=120_000)
    page.locator("#jp-main-statusbar").get_by_text("Idle").first.wait_for(timeout=120_000)
    page.locator(".lm-MenuBar-item", has_text="Run").first.click()
    page.locator('li.lm-Menu-item[data-command="runmenu:run-all"]').click()
    return page, page.locator(".jp-Notebook .jp-CodeCell")


def _wait_until_all_ran(page, cells, timeout: int = 180_000) -> None:
    """Wait until every cell of the run-all has run (no ``[*]`` prompt left) and the kernel is idle: a widget
    touched while the kernel still executes later cells sees its change queued behind them."""
    page.wait_for_function(
        "(n) => { const p = [...document.querySelectorAll('.jp-Notebook .jp-CodeCell .jp-InputPrompt')];"
        " return p.length === n && p.every(e => /\\[\\d+\\]/.test(e.textContent)); }",
        arg=cells.count(), timeout=timeout)
    page.locator("#jp-main-statusbar").get_by_text("Idle").first.wait_for(timeout=timeout)


def _select_and_wait(page, cell, label: str, old: str) -> str:
    """Pick ``label`` in the cell's first dropdown and wait for its figure to change (:func:`_until_new_figure`)."""
    return _until_new_figure(page, cell, old, lambda: cell.locator("select").first.select_option(label=label))


def _slider_test(lab, names, moves):
    """Open widgets.ipynb, run it, apply ``moves[name](page, cell, before_src) -> after_src`` to each widget
    cell in ``names`` (cells 1, 2, 3: budget, pruning, capstone) and check each figure and screenshot changed."""
    from playwright.sync_api import sync_playwright

    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    index = {"budget": 1, "pruning": 2, "capstone": 3}
    with sync_playwright() as pw:
        browser = pw.chromium.launch(executable_path=CHROMIUM, headless=True, args=["--no-sandbox"])
        try:
            page, cells = _open_and_run_all(browser, lab, "widgets.ipynb")
            _wait_until_all_ran(page, cells)
            widget_cells = {name: cells.nth(index[name]) for name in names}
            before = {name: _figure_src(cell) for name, cell in widget_cells.items()}
            for name, cell in widget_cells.items():
                cell.screenshot(path=str(ARTIFACTS / f"{name}_before.png"))
            after = {name: moves[name](page, widget_cells[name], before[name]) for name in names}
            page.screenshot(path=str(ARTIFACTS / "browser_after.png"), full_page=True)
            shots = {}
            for name, cell in widget_cells.items():
                cell.screenshot(path=str(ARTIFACTS / f"{name}_after.png"))
                shots[name] = ((ARTIFACTS / f"{name}_before.png").read_bytes(),
                               (ARTIFACTS / f"{name}_after.png").read_bytes())
        finally:
            browser.close()
    for name in names:
        assert before[name].startswith("data:image/png") or before[name].startswith("blob:"), before[name][:40]
        assert after[name] != before[name], f"the {name} slider moved but its figure did not change"
        assert shots[name][0] != shots[name][1], f"the {name} widget looks the same after moving its slider"


@pytest.mark.slow
def test_sliders_redraw_their_figures(lab):
    def budget(page, cell, old):  # the cheapest budget: everything leaves at exit 1
        _set_slider(page, cell, "1.0")
        return _wait_for_new_figure(page, cell, old)

    def pruning(page, cell, old):  # the largest pruning ratio
        _set_slider(page, cell, "0.9")
        return _wait_for_new_figure(page, cell, old)

    _slider_test(lab, ("budget", "pruning"), {"budget": budget, "pruning": pruning})


@pytest.mark.slow
def test_capstone_budget_slider_redraws_its_figure(lab):
    picks = {}

    def capstone(page, cell, old):
        picks["before"] = cell.locator(".jp-RenderedMarkdown").last.inner_text()
        moved = _move_slider_and_wait(page, cell, "0.05", old)  # 5 % of the reference's cost: nothing fits
        picks["low"] = cell.locator(".jp-RenderedMarkdown").last.inner_text()
        return _select_and_wait(page, cell, "parameters (M)", moved)  # another cost axis

    _slider_test(lab, ("capstone",), {"capstone": capstone})
    # the sentence names the pick; at 5 % of Ref's multiply-adds (5 M) no model fits
    assert "Budget 50%" in picks["before"], picks["before"]
    assert "Budget 5%" in picks["low"] and "nothing fits" in picks["low"], picks["low"]


@pytest.mark.slow
def test_quiz_and_prediction_answer_a_learner(lab):
    from playwright.sync_api import expect, sync_playwright

    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    with sync_playwright() as pw:
        browser = pw.chromium.launch(executable_path=CHROMIUM, headless=True, args=["--no-sandbox"])
        try:
            page, cells = _open_and_run_all(browser, lab, "teach.ipynb")
            quiz_cell, predict_cell, reveal_cell = cells.nth(1), cells.nth(2), cells.nth(3)
            expect(reveal_cell.locator(".jp-OutputArea-output").first).to_contain_text("You did not pick",
                                                                                   timeout=120_000)
            questions = quiz_cell.locator(".widget-radio-box")
            expect(questions).to_have_count(5, timeout=120_000)
            expect(quiz_cell).not_to_contain_text("✓ right")  # no feedback before a pick
            questions.nth(0).get_by_text("right one", exact=True).click()
            questions.nth(1).get_by_text("wrong one", exact=True).click()
            expect(quiz_cell).to_contain_text("✓ right. because 1.")
            expect(quiz_cell).to_contain_text("✗ not quite — the answer is “right one”. because 2.")

            predict_cell.get_by_text("option B", exact=True).click()
            reveal_cell.locator(".jp-InputArea-editor").click()
            page.keyboard.press("Shift+Enter")                   # run the reveal again, after the pick
            expect(reveal_cell.locator(".jp-OutputArea-output").first).to_contain_text(
                "Your prediction matches the run.", timeout=120_000)
            page.screenshot(path=str(ARTIFACTS / "teach_after.png"), full_page=True)
        finally:
            browser.close()


# -- an exported chapter shows the widgets' static forms -------------------------------------------
EXPORTED_CELLS = TEACH_CELLS[:3] + [CAPSTONE_TABLE + """
from reidbook.widgets import budget_guide_slider
budget_guide_slider(table, reference="ref")"""]


@pytest.fixture(scope="module")
def exported_chapter(tmp_path_factory):
    """A small chapter (quiz, prediction, capstone slider) run by the course runner and exported to HTML
    with no widget state, as ``make course`` does; its HTML page's path."""
    import nbformat

    from reidbook.course import run_chapter

    folder = tmp_path_factory.mktemp("exported")
    nb = nbformat.v4.new_notebook(metadata={"kernelspec": {"name": "python3", "display_name": "Python 3",
                                                           "language": "python"}})
    nb.cells = [nbformat.v4.new_markdown_cell("# 99 · widgets\n\nLearning goals\n- a\n- b\n- c\n"),
                nbformat.v4.new_code_cell('PROFILE = "smoke"', metadata={"tags": ["parameters"]})]
    nb.cells += [nbformat.v4.new_code_cell(src) for src in EXPORTED_CELLS]
    path = folder / "notebooks" / "99_widgets.ipynb"
    path.parent.mkdir()
    nbformat.write(nb, str(path))
    run = run_chapter(path, folder / "out", profile="smoke")
    assert run.ok, run.error
    return folder / "out" / run.html


@pytest.mark.slow
def test_exported_chapter_html_holds_each_widgets_static_form(exported_chapter):
    import nbformat

    page = exported_chapter.read_text()
    executed = nbformat.read(str(exported_chapter.with_suffix(".ipynb")), as_version=4)
    views = [o for c in executed.cells for o in c.get("outputs", [])
             if "application/vnd.jupyter.widget-view+json" in o.get("data", {})]
    assert len(views) == 3 and all("text/html" in o["data"] for o in views)  # quiz, prediction, capstone
    # the static forms are in the page: the quiz with collapsed answers, the prediction's options, the
    # capstone's range (small multiples and the table of picks)
    assert "Quiz — chapter 99" in page and page.count("<summary>answer</summary>") == 5
    assert "Predict first:" in page and "option B" in page
    assert "the guide's pick against the budget fraction" in page and "budget (× Ref)" in page
    # whatever state the kernel client saved, the page carries no widget views (empty without a kernel)
    assert 'type="application/vnd.jupyter.widget-view+json"' not in page
    assert "application/vnd.jupyter.widget-state+json" not in page


@pytest.mark.slow
def test_exported_chapter_shows_static_forms_in_a_browser(exported_chapter):
    _browser_or_skip()
    from playwright.sync_api import expect, sync_playwright

    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    with sync_playwright() as pw:
        browser = pw.chromium.launch(executable_path=CHROMIUM, headless=True, args=["--no-sandbox"])
        try:
            page = browser.new_page(viewport={"width": 1200, "height": 1600})
            page.goto(exported_chapter.as_uri(), wait_until="load", timeout=120_000)
            outputs = page.locator(".jp-OutputArea-output")  # not the cells' source, which names them too
            expect(outputs.get_by_text("Quiz — chapter 99")).to_be_visible()
            expect(outputs.get_by_text("Question 5: pick one")).to_be_visible()
            expect(outputs.get_by_text("because 1.")).to_be_hidden()  # answers stay collapsed
            expect(outputs.get_by_text("Which will the run give?")).to_be_visible()
            expect(outputs.locator("table").filter(has_text="budget (× Ref)")).to_be_visible()
            img = outputs.get_by_alt_text("the guide's pick against the budget fraction, one panel per cost axis")
            expect(img).to_be_visible()
            assert page.evaluate("(i) => i.naturalWidth", img.element_handle()) > 100  # the PNG decodes
            page.screenshot(path=str(ARTIFACTS / "exported_static_forms.png"), full_page=True)
        finally:
            browser.close()
