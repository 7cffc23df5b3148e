"""scripts/readme_results.py: the README's results section is replaced between its markers, from a table."""
from __future__ import annotations

import importlib.util
from pathlib import Path

import pandas as pd
import pytest

ROOT = Path(__file__).resolve().parent.parent
spec = importlib.util.spec_from_file_location("readme_results", ROOT / "scripts" / "readme_results.py")
rr = importlib.util.module_from_spec(spec)
spec.loader.exec_module(rr)


def test_replace_between_markers_keeps_the_rest():
    text = f"intro\n{rr.START}\nold numbers\n{rr.END}\nafter\n"
    out = rr.replace_between_markers(text, "new table")
    assert out == f"intro\n{rr.START}\nnew table\n{rr.END}\nafter\n"
    assert rr.replace_between_markers(out, "again").count(rr.START) == 1
    with pytest.raises(ValueError, match="markers"):
        rr.replace_between_markers("no markers here", "x")


def test_readme_has_the_markers():
    text = (ROOT / "README.md").read_text(encoding="utf-8")
    assert text.count(rr.START) == 1 and text.count(rr.END) == 1 and text.index(rr.START) < text.index(rr.END)


def test_results_table_marks_missing_paper_numbers():
    t = pd.DataFrame({"label": ["Baseline", "DaRe exit 1"], "family": ["reference", "anytime"], "mAP": [51.234, 30.0],
                      "rank1": [70.0, 50.0], "params_M": [5.9, 0.4], "MACs_M": [310.0, 40.0], "latency_ms": [9.1, 2.2],
                      "input": ["128×64", "128×64"], "paper_mAP": [69.16, float("nan")],
                      "paper_rank1": [85.07, float("nan")], "paper_params_M": [23.48, float("nan")],
                      "paper_source": ["paper 003, Table 5", float("nan")]})
    md = rr.results_table(t).splitlines()
    assert len(md) == 4 and md[0].startswith("| model |")
    assert "| Baseline | reference | 51.2 | 70.0 |" in md[2] and "69.2" in md[2] and "paper 003, Table 5" in md[2]
    assert md[3].endswith("| — | — | — | — |")


@pytest.mark.slow
def test_script_end_to_end_in_smoke(tmp_path):
    readme = tmp_path / "README.md"
    readme.write_text(f"# x\n{rr.START}\nold\n{rr.END}\nrest\n", encoding="utf-8")
    assert rr.main(["--profile", "smoke", "--readme", str(readme), "--figures", str(tmp_path / "figs"),
                    "--course", str(tmp_path / "missing.json")]) == 0
    text = readme.read_text(encoding="utf-8")
    assert "old" not in text and "| model |" in text and "rest" in text
    assert "![Pareto fronts, mAP](figs/pareto_map.png)" in text and (tmp_path / "figs" / "pareto_rank1.png").is_file()
    assert "Which compression for which budget" in text
