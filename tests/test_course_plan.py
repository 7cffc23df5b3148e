"""The course's preparation plan: jobs in lanes, in the order their needs allow; one entry built once even
when two processes ask for it at the same moment; the jobs name entries the chapters really ask for."""
from __future__ import annotations

import json
import multiprocessing
from concurrent.futures import ProcessPoolExecutor

import nbformat
import pytest
from support.plan_jobs import build_once, stamp

from reidbook import compare, zoo
from reidbook.cli import available_cores
from reidbook.course import trained_in
from reidbook.course_plan import Job, _contender, _zoo, course_jobs, critical_path, lanes_for, run_jobs


def test_two_processes_asking_for_one_entry_train_it_once(tmp_path):
    log = tmp_path / "trained.log"
    with ProcessPoolExecutor(2, mp_context=multiprocessing.get_context("spawn")) as pool:
        results = list(pool.map(build_once, [tmp_path / "cache"] * 2, [log] * 2))
    assert results == [42, 42]
    assert len(log.read_text().split()) == 1  # the second process waited for the lock, then loaded the entry


def _times(folder, label):
    return json.loads((folder / f"{label}.json").read_text())


def test_jobs_run_side_by_side_after_what_they_need_and_a_failure_skips_its_dependants(tmp_path, capsys):
    f = str(tmp_path)
    jobs = [Job("a", stamp, {"folder": f, "label": "a", "seconds": 1.0}, cost=10),
            Job("b", stamp, {"folder": f, "label": "b", "seconds": 1.0}, cost=9),
            Job("after a", stamp, {"folder": f, "label": "after_a"}, needs=("a",)),
            Job("broken", stamp, {"folder": f, "label": "broken", "fail": True}),
            Job("after broken", stamp, {"folder": f, "label": "after_broken"}, needs=("broken",))]
    spent = run_jobs(jobs, "smoke", lanes=2, threads=1)
    assert set(spent) == {"a", "b", "after a"}
    a, b, after = _times(tmp_path, "a"), _times(tmp_path, "b"), _times(tmp_path, "after_a")
    assert a["pid"] != b["pid"] and a["start"] < b["end"] and b["start"] < a["end"]  # side by side
    assert after["start"] >= a["end"]
    assert a["threads"] == "1"  # each lane's share of the cores
    assert not (tmp_path / "after_broken.json").exists()
    out = capsys.readouterr().out
    assert "preparing broken failed" in out and "fails on purpose" in out and "after broken" in out


def test_critical_path_is_the_longest_chain_of_work_a_job_holds_up():
    jobs = [Job("head", stamp, cost=5), Job("tail", stamp, needs=("head",), cost=20),
            Job("lone", stamp, cost=10), Job("last", stamp, needs=("tail", "lone"), cost=1)]
    assert critical_path(jobs) == {"last": 1, "tail": 21, "lone": 11, "head": 26}


def test_the_job_that_holds_up_most_starts_first_and_a_job_alone_gets_every_core(tmp_path):
    f = str(tmp_path)
    # by cost alone "lone" and "other" would start first; "head" holds up a 20-unit chain, so it goes first
    jobs = [Job("lone", stamp, {"folder": f, "label": "lone", "seconds": 0.6}, cost=10),
            Job("other", stamp, {"folder": f, "label": "other", "seconds": 0.1}, cost=8),
            Job("head", stamp, {"folder": f, "label": "head", "seconds": 0.6}, cost=5),
            Job("tail", stamp, {"folder": f, "label": "tail", "seconds": 0.1}, needs=("head",), cost=20),
            Job("end", stamp, {"folder": f, "label": "end", "seconds": 0.1}, needs=("tail", "lone", "other"), cost=1)]
    run_jobs(jobs, "smoke", lanes=2, threads=1)
    t = {k: _times(tmp_path, k) for k in ("lone", "other", "head", "tail", "end")}
    assert t["other"]["start"] >= min(t["head"]["end"], t["lone"]["end"])  # third in line
    assert t["head"]["start"] < t["other"]["start"]
    assert t["head"]["threads"] == "1" and t["lone"]["threads"] == "1"
    # "end" starts with nothing beside it and nothing else to start: it has every core
    assert t["end"]["threads"] == str(available_cores())


def test_one_lane_runs_in_order_here(tmp_path):
    f = str(tmp_path)
    jobs = [Job("x", stamp, {"folder": f, "label": "x", "seconds": 0.0}),
            Job("y", stamp, {"folder": f, "label": "y", "seconds": 0.0}, needs=("x",))]
    assert set(run_jobs(jobs, "smoke", lanes=1)) == {"x", "y"}
    assert _times(tmp_path, "y")["start"] >= _times(tmp_path, "x")["end"]
    with pytest.raises(ValueError, match="unknown jobs"):
        run_jobs([Job("z", stamp, {}, needs=("nothing",))], "smoke", lanes=1)


@pytest.mark.parametrize("profile", ["smoke", "quick"])
def test_course_jobs_name_real_entries_and_their_needs(profile):
    jobs = course_jobs(profile)
    names = [j.name for j in jobs]
    assert len(names) == len(set(names))
    assert all(n in names for j in jobs for n in j.needs)
    zoo_jobs = [j for j in jobs if j.fn is _zoo]
    # each zoo job's overrides make a valid preset with its own cache folder (no two jobs train one entry)
    paths = {zoo.entry_path(j.kwargs["name"], profile, "synth", 0, **j.kwargs["overrides"]) for j in zoo_jobs}
    assert len(paths) == len(zoo_jobs)
    assert zoo.entry_path("baseline", profile) in paths  # the default baseline, which five chapters load
    contender_keys = [k for j in jobs if j.fn is _contender for k in j.kwargs["keys"]]
    assert sorted(contender_keys) == sorted(compare.CONTENDERS)  # each of chapter 08's models, once
    assert sum(j.name.startswith("FD teacher") for j in jobs) == 7
    assert course_jobs("full") == []


def test_lanes(monkeypatch):
    assert lanes_for("cpu", 3) == 3
    with pytest.raises(ValueError, match="lanes"):
        lanes_for("cpu", 0)
    monkeypatch.setattr("reidbook.cli.available_cores", lambda: 1)
    assert lanes_for("cpu") == 1
    monkeypatch.setattr("reidbook.cli.available_cores", lambda: 2)
    assert lanes_for("cpu") == 2


def test_trained_in_lists_what_an_executed_chapter_trained(tmp_path):
    nb = nbformat.v4.new_notebook()
    cell = nbformat.v4.new_code_cell("x")
    cell.outputs = [nbformat.v4.new_output("stream", name="stdout", text=(
        "[zoo] training mgn (quick, synth, seed 0) on cpu: 3000 images, 150 identities, 4 epochs -> /c/zoo/mgn/ab\n"
        "epoch 1 …\n[fd] training the teacher up1 (resnet18, 48x48)\n"
        "[zoo] pre-training resnet50 (width 0.25) on SynthReID's source domain\n"
        "[zoo] training mgn (quick, synth, seed 0) on cpu: again\n"))]
    loaded = nbformat.v4.new_code_cell("y")
    loaded.outputs = [nbformat.v4.new_output("stream", name="stdout", text="ZooEntry('mgn', 'quick', …)\n")]
    nb.cells = [cell, loaded]
    path = tmp_path / "07_x.ipynb"
    nbformat.write(nb, str(path))
    assert trained_in(path) == ["mgn (quick, synth, seed 0)", "the teacher up1 (resnet18, 48x48)",
                                "resnet50 (width 0.25)"]


def test_chapters_wait_only_for_what_they_load_and_the_capstone_for_everything(tmp_path):
    from pathlib import Path

    from reidbook.course_plan import chapter_jobs

    prep = course_jobs("quick")
    paths = [Path(f"{n}.ipynb") for n in ("00_data", "01_baseline", "04_fd", "07_dare", "08_capstone")]
    jobs = {j.name: j for j in chapter_jobs(paths, tmp_path, "quick", prepared=prep, costs={"08_capstone": 99.0})}
    assert jobs["chapter 00_data"].needs == ()
    assert set(jobs["chapter 01_baseline"].needs) == {"baseline", "baseline softmax", "baseline triplet"}
    assert sum(n.startswith("FD teacher") for n in jobs["chapter 04_fd"].needs) == 7
    assert {"DaRe", "sequential ensemble resnet50"} <= set(jobs["chapter 07_dare"].needs)
    capstone = jobs["chapter 08_capstone"]
    assert set(capstone.needs) == {j.name for j in prep} | {f"chapter {p.stem}" for p in paths[:-1]}
    assert capstone.cost == 99.0


def test_a_contender_job_measures_background_reliance_for_chapter_08(smoke_dataset, monkeypatch):
    """Chapter 08's background table is measured by the preparation (one job per model), so the chapter loads
    it: after the job, the table is read without running background_reliance."""
    _contender(("resnet18",), "smoke", "synth", 0, "cpu")
    monkeypatch.setattr("reidbook.eval.background.background_reliance",
                        lambda *a, **k: pytest.fail("measured again in the chapter"))
    table = compare.background_table(compare.collect("smoke", include=["resnet18"], device="cpu"), "smoke")
    assert list(table.index) == ["resnet18"] and {"mAP", "mAP_swap", "drop"} <= set(table.columns)
