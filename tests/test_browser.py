"""The widgets as a person sees them: JupyterLab in headless Chromium, sliders moved, figures redrawn.

Starts JupyterLab on localhost (no token, a free port, a temporary root), opens a small notebook that
shows :func:`reidbook.widgets.budget_slider` (chapter 07) and :func:`reidbook.widgets.pruning_slider`
(chapter 05) in Debian's ``chromium`` driven by Playwright, runs all its cells, moves each slider to its
extreme by typing into the slider's readout, and checks that the figure under it changes (the PNG the
kernel sent is different, and so is the screenshot). Screenshots are kept in ``build/test-artifacts/``.

Skipped with a reason when ``/usr/bin/chromium`` or the ``playwright`` package is missing — except under
CI (``CI`` set), where ``.ci/run`` installs chromium and a missing browser is a failure.
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

CELLS = [
    """import numpy as np
import torch
from reidbook.eval.anytime import AnytimeEval
from reidbook.models import build_model
from reidbook.widgets import budget_slider, pruning_slider""",
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
]


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


def _write_notebook(folder: Path) -> Path:
    import nbformat

    nb = nbformat.v4.new_notebook()
    nb.metadata = {"kernelspec": {"display_name": "Python 3", "language": "python", "name": "python3"}}
    nb.cells = [nbformat.v4.new_code_cell(src) for src in CELLS]
    path = folder / "widgets.ipynb"
    nbformat.write(nb, str(path))
    return path


@pytest.fixture()
def lab(tmp_path):
    """A token-less JupyterLab on a free localhost port serving ``tmp_path``; yields its base URL."""
    why = _requirements()
    if why:
        if os.environ.get("CI"):
            pytest.fail(f"browser test cannot run in CI: {why}")
        pytest.skip(why)
    root = tmp_path / "lab"
    root.mkdir()
    _write_notebook(root)
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
    readout.click()
    page.keyboard.press("Control+A")
    page.keyboard.type(value)
    page.keyboard.press("Enter")


@pytest.mark.slow
def test_sliders_redraw_their_figures(lab):
    from playwright.sync_api import sync_playwright

    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    with sync_playwright() as pw:
        browser = pw.chromium.launch(executable_path=CHROMIUM, headless=True, args=["--no-sandbox"])
        try:
            page = browser.new_page(viewport={"width": 1400, "height": 1800})
            page.goto(f"{lab}/lab/tree/widgets.ipynb", wait_until="domcontentloaded", timeout=120_000)
            page.locator(".jp-Notebook .jp-CodeCell").first.wait_for(timeout=120_000)
            page.locator("#jp-main-statusbar").get_by_text("Idle").first.wait_for(timeout=120_000)
            page.locator(".lm-MenuBar-item", has_text="Run").first.click()
            page.locator('li.lm-Menu-item[data-command="runmenu:run-all"]').click()
            cells = page.locator(".jp-Notebook .jp-CodeCell")
            budget, pruning = cells.nth(1), cells.nth(2)
            before = {"budget": _figure_src(budget), "pruning": _figure_src(pruning)}
            page.screenshot(path=str(ARTIFACTS / "browser_before.png"), full_page=True)
            budget.screenshot(path=str(ARTIFACTS / "budget_before.png"))
            pruning.screenshot(path=str(ARTIFACTS / "pruning_before.png"))

            _set_slider(page, budget, "1.0")       # the cheapest budget: everything leaves at exit 1
            page.wait_for_function(
                "([el, old]) => { const i = [...el.querySelectorAll('.jp-OutputArea-output img')].pop();"
                " return i && i.getAttribute('src') !== old; }", arg=[budget.element_handle(), before["budget"]],
                timeout=120_000)
            _set_slider(page, pruning, "0.9")      # the largest pruning ratio
            page.wait_for_function(
                "([el, old]) => { const i = [...el.querySelectorAll('.jp-OutputArea-output img')].pop();"
                " return i && i.getAttribute('src') !== old; }", arg=[pruning.element_handle(), before["pruning"]],
                timeout=120_000)
            after = {"budget": _figure_src(budget), "pruning": _figure_src(pruning)}
            page.screenshot(path=str(ARTIFACTS / "browser_after.png"), full_page=True)
            shots = {}
            for name, cell in (("budget", budget), ("pruning", pruning)):
                cell.screenshot(path=str(ARTIFACTS / f"{name}_after.png"))
                shots[name] = ((ARTIFACTS / f"{name}_before.png").read_bytes(),
                               (ARTIFACTS / f"{name}_after.png").read_bytes())
        finally:
            browser.close()
    for name in ("budget", "pruning"):
        assert before[name].startswith("data:image/png") or before[name].startswith("blob:"), before[name][:40]
        assert after[name] != before[name], f"the {name} slider moved but its figure did not change"
        assert shots[name][0] != shots[name][1], f"the {name} widget looks the same after moving its slider"
