"""Departures as data (``reidbook.presets.departures``): every preset declares how it departs from its paper,
and a ``quick`` / ``smoke`` preset differs from ``full`` only in width, input size, data and epochs unless a
declared departure covers the difference."""
from __future__ import annotations

import importlib
import pkgutil

import pytest

import reidbook.presets as P
from reidbook.presets import Departure, departures_table, get_preset
from reidbook.presets.departures import declare, differences, undeclared_differences


def _preset_sets():
    """Every ``PRESETS`` dict of the package, by module, and FD's function-built stages exactly as
    ``teacher_preset`` / ``student_preset`` / ``distill_preset`` return them (they attach their departures)."""
    from reidbook.data.views import VIEW_NAMES
    from reidbook.presets import fd

    out = {}
    for info in pkgutil.iter_modules(P.__path__):
        mod = importlib.import_module(f"reidbook.presets.{info.name}")
        if hasattr(mod, "PRESETS"):
            out[info.name] = mod.PRESETS
    profiles = ("smoke", "quick", "full")
    for view in VIEW_NAMES:
        out[f"fd.teacher[{view}]"] = {p: fd.teacher_preset(view, p) for p in profiles}
    out["fd.student"] = {p: fd.student_preset(p) for p in profiles}
    out["fd.distill"] = {p: fd.distill_preset(p) for p in profiles}
    return out


SETS = _preset_sets()


@pytest.mark.parametrize("name", sorted(SETS))
@pytest.mark.parametrize("profile", ["quick", "smoke"])
def test_laptop_profiles_declare_every_difference_from_full(name, profile):
    presets = SETS[name]
    missing = undeclared_differences(presets[profile], presets["full"])
    assert not missing, (f"{name}/{profile} differs from full in {missing} without a declared departure; add a "
                         "Departure(what=<that key or its field>, ...) to the preset")


@pytest.mark.parametrize("name", sorted(SETS))
def test_departures_are_complete_records(name):
    for profile, preset in SETS[name].items():
        assert all(isinstance(d, Departure) for d in preset.departures), (name, profile)
        for d in preset.departures:
            assert d.what and d.paper and d.ours and d.why, (name, profile, d)
        # a laptop profile keeps full's own departures from the paper (it is full, shrunk)
        if profile != "full":
            full_whats = {d.what for d in SETS[name]["full"].departures}
            assert full_whats <= {d.what for d in preset.departures}, (name, profile)


def test_the_check_catches_an_undeclared_change():
    full, quick = get_preset("pcb", "full"), get_preset("pcb", "quick")
    assert undeclared_differences(quick, full) == []
    sneaky = quick.replace(K=2, train_aug={"random_erasing": 0.5})
    assert undeclared_differences(sneaky, full) == ["K", "train_aug.random_erasing"]
    # width, input size, epochs and a pad that scales with the input are free
    free = full.replace(height=96, width=32, epochs=1, model_options={"width": 0.125}, departures=())
    assert differences(free, full) == []
    bot = get_preset("baseline", "full")  # pad 10 at 128 px wide
    assert differences(bot.replace(width=64, train_aug={"pad": 5}), bot) == []
    assert differences(bot.replace(width=64, train_aug={"pad": 9}), bot) == ["train_aug.pad"]
    # a departure on a field covers its keys
    covered = sneaky.replace(departures=sneaky.departures + (Departure("train_aug", "a", "b", "c"),
                                                             Departure("K", "4", "2", "test")))
    assert undeclared_differences(covered, full) == []


def test_full_declares_its_own_departures_from_the_paper():
    assert any(d.what == "sampler" for d in get_preset("pcb", "full").departures)  # P x K where PCB shuffles
    assert any(d.what == "sampler" for d in get_preset("graftednet", "full").departures)
    assert any(d.what == "test feature" for d in get_preset("dare", "full").departures)  # flip, not 10 crops
    assert any(d.what == "member head" for d in get_preset("seq_ensemble", "full").departures)


def test_fd_stage_presets_carry_their_departures():
    """FD's three stage builders attach their departures themselves: a chapter or the zoo that calls them
    gets the table (not an empty one), and the partial teachers of ``quick`` declare the clipped GMP kernel."""
    from reidbook.presets import fd

    for build in (lambda p: fd.teacher_preset("up1", p), fd.student_preset, fd.distill_preset):
        assert any(d.what == "sampler" for d in build("full").departures)
        assert len(build("quick").departures) > len(build("full").departures)
    assert any(d.what == "stabilised GMP" for d in fd.teacher_preset("up1", "quick").departures)
    assert not any(d.what == "stabilised GMP" for d in fd.teacher_preset("holistic", "quick").departures)
    assert get_preset("fd_student", "quick").departures == fd.student_preset("quick").departures
    assert "alpha = 1" in departures_table(fd.distill_preset("quick")).to_string()
    assert fd.distill_preset("quick").to_dict() == fd.distill_preset("quick").replace(departures=()).to_dict()


def test_departures_table_and_zoo_key():
    p = get_preset("graftednet", "quick")
    df = departures_table(p)
    assert list(df.columns) == ["what", "paper", "ours", "why", "measured effect"]
    assert len(df) == len(p.departures) and "part stripes" in set(df["what"])
    assert "departures" not in p.to_dict()  # documentation: editing it retrains nothing
    with pytest.raises(KeyError, match="unknown profiles"):
        declare({"full": p}, quick=())


@pytest.mark.parametrize("chapter", ["02_mgn", "03_graftednet", "04_factorized_distillation", "05_pruning_criteria",
                                     "06_pruning_in_practice", "07_dare"])
def test_chapters_print_their_departures_and_do_not_cite_design(chapter):
    """Each model chapter shows its preset's departures in its settings section (a cell calling
    ``departures_table`` before the first training), and cites no DESIGN.md (a learner does not have it)."""
    import json
    from pathlib import Path

    nb = json.loads((Path(__file__).resolve().parents[1] / "notebooks" / f"{chapter}.ipynb").read_text())
    code = ["".join(c["source"]) for c in nb["cells"] if c["cell_type"] == "code"]
    shows = [i for i, s in enumerate(code) if "departures_table(" in s]
    trains = [i for i, s in enumerate(code) if "zoo.get(" in s or "train_teachers(" in s or "initial_student(" in s]
    assert shows and (not trains or shows[0] < trains[0]), chapter
    assert not any("DESIGN.md" in "".join(c["source"]) for c in nb["cells"]), chapter
