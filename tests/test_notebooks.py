"""Every chapter: committed clean (no outputs, no widget state, no definitions, a parameters cell),
and executed end to end with papermill in the ``smoke`` profile."""
from __future__ import annotations

import json
import re
from pathlib import Path

import pytest

# The course's designed sequence (DESIGN.md, "Chapters"); each chapter links to its neighbours in it.
SEQUENCE = ["00_data_and_evaluation", "01_baseline", "02_mgn", "03_graftednet", "04_factorized_distillation",
            "05_pruning_criteria", "06_pruning_in_practice", "07_dare", "08_capstone"]
NOTEBOOKS = sorted((Path(__file__).resolve().parent.parent / "notebooks").glob("[0-9][0-9]_*.ipynb"))
IDS = [p.stem for p in NOTEBOOKS]


def test_there_are_chapters():
    assert NOTEBOOKS, "no chapters in notebooks/"
    assert NOTEBOOKS[0].stem.startswith("00_")


@pytest.mark.parametrize("path", NOTEBOOKS, ids=IDS)
def test_notebook_is_committed_clean(path):
    nb = json.loads(path.read_text(encoding="utf-8"))
    assert "widgets" not in nb.get("metadata", {}), "widget state saved in metadata"
    tags = [t for c in nb["cells"] for t in c.get("metadata", {}).get("tags", [])]
    assert "parameters" in tags, "no cell tagged 'parameters'"
    for i, cell in enumerate(nb["cells"]):
        if cell["cell_type"] != "code":
            continue
        assert not cell.get("outputs"), f"cell {i} has outputs"
        assert not cell.get("execution_count"), f"cell {i} has an execution count"
        src = "".join(cell["source"])
        if "exercise" not in cell.get("metadata", {}).get("tags", []):
            assert not re.search(r"^(def|class)\s", src, re.M), f"cell {i} defines a function or class"
    params = next(c for c in nb["cells"] if "parameters" in c.get("metadata", {}).get("tags", []))
    src = "".join(params["source"])
    for name in ("PROFILE", "DATA", "DEVICE", "SEED"):
        assert re.search(rf"^{name}\s*=", src, re.M), f"parameters cell lacks {name}"


@pytest.mark.parametrize("path", NOTEBOOKS, ids=IDS)
def test_chapter_has_shape(path):
    """Title, learning goals, summary, exercises, further reading, and links to the neighbours."""
    nb = json.loads(path.read_text(encoding="utf-8"))
    md = "\n".join("".join(c["source"]) for c in nb["cells"] if c["cell_type"] == "markdown")
    assert re.search(r"^# ", md, re.M), "no title"
    for heading in ("Learning goals", "Summary", "Exercises", "Further reading"):
        assert heading.lower() in md.lower(), f"no '{heading}' section"
    assert path.stem in SEQUENCE, f"{path.name} is not in the course sequence {SEQUENCE}"
    i = SEQUENCE.index(path.stem)
    if i > 0:
        assert f"{SEQUENCE[i - 1]}.ipynb" in md, f"no link to the previous chapter {SEQUENCE[i - 1]}.ipynb"
    if i < len(SEQUENCE) - 1:
        assert f"{SEQUENCE[i + 1]}.ipynb" in md, f"no link to the next chapter {SEQUENCE[i + 1]}.ipynb"


@pytest.mark.slow
@pytest.mark.parametrize("path", NOTEBOOKS, ids=IDS)
def test_chapter_runs_in_smoke(path, tmp_path):
    from reidbook.course import run_chapter

    run = run_chapter(path, tmp_path, profile="smoke", html_export=False, timeout=600)
    assert run.ok, run.error
