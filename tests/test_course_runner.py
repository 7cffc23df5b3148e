"""The course runner never waits silently: per-cell limits, a timed-out cell fails its chapter (named,
with its cell and what to do), and chapter 07's widget cells run many times without a stall.

The stall these tests guard against (issue 22): nbclient mimics the front end of an ``Output`` widget
(``interactive_output``, our sliders) by *sending* comm messages on the shell socket while it waits for
the cell's ``execute_reply`` on that same socket; a send can swallow the socket's edge-triggered wake-up
for a reply arriving at that moment, and one long poll then sleeps until the cell's time limit — when
pyzmq's final check finds the reply and the cell "completes". Measured: 2 of 3 runs of 20 slider cells
stalled once for the whole limit while the kernel sat idle.
"""
from __future__ import annotations

import asyncio
import json
import types
from queue import Empty

import nbformat
import pytest

from reidbook.course import cell_timings, format_timings, run_chapter, run_course, write_index
from reidbook.course_client import CELL_LIMITS, cell_kind, cell_timeout

KERNEL_META = {"kernelspec": {"name": "python3", "display_name": "Python 3", "language": "python"},
               "language_info": {"name": "python"}}


def _chapter(folder, name, cells, profile="smoke"):
    """A chapter notebook: title + goals, a parameters cell, then ``cells`` (source or (source, metadata))."""
    nb = nbformat.v4.new_notebook(metadata=KERNEL_META)
    nb.cells = [nbformat.v4.new_markdown_cell(f"# {name[:2]} · test\n\nLearning goals\n- one\n- two\n- three\n"),
                nbformat.v4.new_code_cell(f'PROFILE = "{profile}"\nDATA = "synth"\nDEVICE = "auto"\nSEED = 0',
                                          metadata={"tags": ["parameters"]})]
    for c in cells:
        src, meta = (c, {}) if isinstance(c, str) else c
        nb.cells.append(nbformat.v4.new_code_cell(src, metadata=meta))
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / f"{name}.ipynb"
    nbformat.write(nb, str(path))
    return path


# -- limits ------------------------------------------------------------------------------------
def test_cell_kinds_and_limits(monkeypatch):
    monkeypatch.delenv("REIDBOOK_CELL_TIMEOUT_SCALE", raising=False)
    assert cell_kind('budget_slider(ev, curve, rule="margin")') == "widget"
    assert cell_kind("pruning_slider(model, criteria=('l1',))") == "widget"
    assert cell_kind('entry = zoo.get("dare", PROFILE)') == "training"
    assert cell_kind("history = fit_preset(model, ds.train, preset)") == "training"
    assert cell_kind("contenders = compare.collect(PROFILE, DATA, SEED)") == "training"  # trains what is missing
    assert cell_kind("fig = V.plot_anytime(curves)") == "other"
    assert cell_timeout("budget_slider(ev)", {}, "quick") == CELL_LIMITS["quick"]["widget"] == 60
    assert cell_timeout('zoo.get("mgn")', {}, "quick") == 900
    assert cell_timeout("x = 1", {}, "smoke") == 120
    assert cell_timeout('zoo.get("mgn")', {}, "full") is None  # a researcher's GPU run is not cut short
    # a ceiling replaces the limit of non-widget cells only; explicit limits win over everything
    assert cell_timeout("x = 1", {}, "quick", ceiling=600) == 600
    assert cell_timeout("budget_slider(ev)", {}, "quick", ceiling=600) == 60
    assert cell_timeout("x = 1", {"tags": ["timeout-7"]}, "quick") == 7
    assert cell_timeout("x = 1", {"reidbook": {"timeout": 42}}, "quick") == 42
    monkeypatch.setenv("REIDBOOK_CELL_TIMEOUT_SCALE", "2.5")
    assert cell_timeout("budget_slider(ev)", {}, "quick") == 150
    monkeypatch.setenv("REIDBOOK_CELL_TIMEOUT_SCALE", "slow")
    with pytest.raises(ValueError, match="REIDBOOK_CELL_TIMEOUT_SCALE"):
        cell_timeout("x = 1", {}, "quick")


# -- a timed-out cell is a failure -----------------------------------------------------------------
@pytest.mark.slow
def test_timed_out_cell_fails_the_chapter_and_the_course(tmp_path):
    nbs = tmp_path / "notebooks"
    _chapter(nbs, "00_fine", ["print('fine')"])
    _chapter(nbs, "01_stuck", ["print('before')", ("import time\ntime.sleep(60)", {"tags": ["timeout-2"]}),
                               "print('never')"])
    out = tmp_path / "out"
    with pytest.raises(RuntimeError, match="01_stuck"):  # `make course` exits non-zero
        run_course("smoke", notebooks=nbs, out=out, prepare=False, html_export=False, timings=True)
    meta = json.loads((out / "course.json").read_text())
    fine, stuck = meta["chapters"]
    assert fine["ok"] and not stuck["ok"]
    # cell 3 of the chapter (0: title, 1: parameters, 2: print, 3: sleep), its first line, its limit, what to do
    for text in ("01_stuck", "cell 3", "import time", "2 s limit", "timed out", "REIDBOOK_CELL_TIMEOUT_SCALE",
                 "--chapters 01"):
        assert text in stuck["error"], text
    page = (out / "index.html").read_text()
    assert "failed" in page and "cell 3" in page
    executed = nbformat.read(str(out / "01_stuck.ipynb"), as_version=4)
    marked = [c for c in executed.cells if (c.metadata.get("papermill") or {}).get("status") == "timed out"]
    assert len(marked) == 1 and marked[0].source.startswith("import time")
    assert not any("never" in str(c.get("outputs")) for c in executed.cells)  # later cells did not run


# -- per-cell timings ------------------------------------------------------------------------------
@pytest.mark.slow
def test_cell_timings_are_kept_and_printed(tmp_path):
    path = _chapter(tmp_path / "nb", "00_timed", ["import time\ntime.sleep(1.5)\nprint('slept')", "x = 2"])
    run = run_chapter(path, tmp_path / "out", profile="smoke", html_export=False)
    assert run.ok, run.error
    assert [c["cell"] for c in run.cells] == [1, 2, 3]  # chapter indices: the injected cell is left out
    assert run.cells[1]["first_line"] == "import time" and run.cells[1]["seconds"] >= 1.5
    assert cell_timings(tmp_path / "out" / "00_timed.ipynb") == run.cells
    text = format_timings([run])
    assert "00_timed" in text and "import time" in text and "cell   2" in text
    page = write_index([run], tmp_path / "out", "smoke", "synth").read_text()
    assert "time per cell" in page and "<code>import time</code>" in page


# -- lost replies ---------------------------------------------------------------------------------
class _SilentShell:
    """A shell channel on which the reply never comes."""

    async def get_msg(self, timeout=None):
        await asyncio.sleep(min(timeout or 0.01, 0.01))
        raise Empty


def _client(**traits):
    from reidbook.course_client import GuardedClient

    nb = nbformat.v4.new_notebook(metadata=KERNEL_META)
    client = GuardedClient(types.SimpleNamespace(nb=nb), **traits)
    client.kc = types.SimpleNamespace(shell_channel=_SilentShell(), is_alive=lambda: True)
    return client, nb


@pytest.mark.parametrize("error", [False, True])
def test_idle_kernel_without_reply_completes_the_cell_from_its_outputs(error):
    events: list = []
    client, nb = _client(reply_grace=0.05, poll_interval=0.01, events=events)
    cell = nbformat.v4.new_code_cell("budget_slider(ev)")
    cell.outputs = [nbformat.v4.new_output("display_data", data={"text/plain": "fig"})]
    if error:
        cell.outputs.append(nbformat.v4.new_output("error", ename="ValueError", evalue="bad", traceback=["tb"]))
    nb.cells.append(cell)

    async def scenario():
        idle = asyncio.get_running_loop().create_future()
        idle.set_result(None)  # IOPub said idle
        alive = asyncio.ensure_future(asyncio.sleep(3600))
        reply = await client._async_poll_for_reply("m1", cell, 30, idle, alive)
        await asyncio.sleep(0)
        return reply, alive.cancelled()

    reply, alive_cancelled = asyncio.run(scenario())
    assert reply["parent_header"]["msg_id"] == "m1" and alive_cancelled
    assert reply["content"]["status"] == ("error" if error else "ok")
    if error:
        assert reply["content"]["ename"] == "ValueError"
    assert events and events[0]["kind"] == "lost-reply" and events[0]["cell"] == 0


def test_busy_kernel_without_reply_times_out():
    from nbclient.exceptions import CellTimeoutError

    client, nb = _client(reply_grace=0.05, poll_interval=0.01, events=[])
    cell = nbformat.v4.new_code_cell("train_forever()")
    nb.cells.append(cell)

    async def scenario():
        busy = asyncio.ensure_future(asyncio.sleep(3600))  # no idle: the kernel is still working
        alive = asyncio.ensure_future(asyncio.sleep(3600))
        try:
            await client._async_poll_for_reply("m1", cell, 0.2, busy, alive)
        finally:
            busy.cancel()

    async def is_alive():
        return True

    client.kc.is_alive = is_alive
    with pytest.raises(CellTimeoutError):
        asyncio.run(scenario())


# -- chapter 07's widget cells, many times ---------------------------------------------------------
SLIDER_SETUP = '''import numpy as np
from reidbook import zoo
from reidbook.eval import anytime as A
from reidbook.presets import get_preset
from reidbook.viz import anytime as V
from reidbook.widgets import budget_slider
preset = get_preset("dare", PROFILE)
ds = zoo.dataset(PROFILE, DATA, SEED)
dare = zoo.get("dare", PROFILE, DATA, SEED, device=DEVICE).model
ev = A.AnytimeEval.from_model(dare, ds, preset.height, preset.width, device=DEVICE)
curve = A.budgeted_curve(ev, A.budget_grid(ev.costs, 5), seeds=(0, 1, 2))
B_mid = float((ev.costs[0] + ev.costs[-1]) / 2)'''


@pytest.mark.slow
def test_chapter_07_slider_section_runs_20_times_without_a_stall(tmp_path):
    """Chapter 07's slider section (its last figure and its budget slider), 20 times in smoke. A stalled
    cell would sit at its 60 s widget limit with the kernel idle (then "complete"); the runner's short
    polls read every reply within a second (a recovered wake-up is noted as a "late-reply" event)."""
    cells = [SLIDER_SETUP]
    for _ in range(20):
        cells += ['fig = V.budget_view(ev, B_mid, "margin", curve)', 'budget_slider(ev, curve, rule="margin")']
    path = _chapter(tmp_path / "nb", "07_sliders", cells)
    run = run_chapter(path, tmp_path / "out", profile="smoke", html_export=False)
    assert run.ok, run.error
    assert not [e for e in run.events if e["kind"] != "late-reply"], run.events
    executed = nbformat.read(str(tmp_path / "out" / "07_sliders.ipynb"), as_version=4)
    sliders = [c for c in executed.cells if c.source.startswith("budget_slider")]
    assert len(sliders) == 20
    for c in sliders:
        seconds = c.metadata["papermill"]["duration"]
        # a stalled cell sits at its widget limit (60 s); these draw in about a second
        assert seconds < 30, f"cell {executed.cells.index(c)} took {seconds:.0f} s: the runner waited on an idle kernel"
        assert any(o.get("output_type") == "execute_result" for o in c.outputs)  # the widget was displayed


# -- progress bars in executed chapters ------------------------------------------------------------
def test_progress_is_plain_text_rate_limited_and_kept_in_executed_chapters(monkeypatch):
    from reidbook.utils import TEXT_INTERVAL, progress, progress_mode

    monkeypatch.delenv("REIDBOOK_QUIET", raising=False)
    monkeypatch.setenv("REIDBOOK_PROGRESS", "text")
    assert progress_mode() == "text"
    bar = progress(range(3), desc="x")
    from tqdm.notebook import tqdm_notebook

    assert not isinstance(bar, tqdm_notebook) and bar.leave and bar.mininterval == TEXT_INTERVAL >= 5
    bar.close()
    monkeypatch.setenv("REIDBOOK_QUIET", "1")
    assert progress_mode() == "off" and progress(range(3)).disable


@pytest.mark.slow
def test_executed_chapter_saves_the_final_state_of_its_progress_bars(tmp_path, monkeypatch):
    monkeypatch.delenv("REIDBOOK_QUIET", raising=False)  # the kernel inherits the environment
    path = _chapter(tmp_path / "nb", "00_bars", [
        "import time\nfrom reidbook.utils import progress\nfor i in progress(range(40), desc='long loop'):\n"
        "    time.sleep(0.1)",
        "for i in progress(range(5), desc='short loop'):\n    pass"])
    run = run_chapter(path, tmp_path / "out", profile="smoke", html_export=False)
    assert run.ok, run.error
    nb = nbformat.read(str(tmp_path / "out" / "00_bars.ipynb"), as_version=4)
    long_out = "".join(o.get("text", "") for o in nb.cells[3].outputs)
    short_out = "".join(o.get("text", "") for o in nb.cells[4].outputs)
    assert "long loop: 100%" in long_out and "40/40" in long_out, long_out  # its final state
    assert "0%|" not in long_out.replace("100%|", "")  # earlier redraws were collapsed
    assert not any(o.get("output_type") == "display_data" for o in nb.cells[3].outputs)  # no widget
    assert "short loop" not in short_out  # loops shorter than the delay print nothing
