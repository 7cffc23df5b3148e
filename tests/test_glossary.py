"""The course glossary (notebooks/GLOSSARY.md): the terms learners meet, each defined briefly with its
source; linked from every chapter and from the index page; rendered beside the exported chapters."""
from __future__ import annotations

import re

import nbformat
import pytest

from reidbook.course import (
    ChapterRun,
    _slug,
    _to_html,
    find_chapters,
    glossary_entries,
    glossary_path,
    write_glossary,
    write_index,
)

# The terms issue 21 names, and those the course's own chapters lean on; (what to find in a heading).
REQUIRED = ["IDE", "BN-neck", "MACs", "mINP", "SR", "FMFB", "C1 / C2", "Anytime vs budgeted", "mAP", "CMC / Rank-k",
            "Re-ranking", "Batch-hard triplet", "PK sampling", "GMP / GAP", "Stabilised GMP",
            "Grafting / scion / rootstock", "FPGM", "Soft pruning", "PSFP", "Design scenario", "Early exit", "Budget",
            "Pareto front", "Grad-CAM", "Response map", "On-person share", "Background reliance", "Departure",
            "Profile", "Claims ledger"]
# A definition cites where it comes from: a paper (section, author) or the course module that implements it.
CITATION = re.compile(r"\bSec\. \d|\bet al\.|`reidbook[.\w]*`|\breidbook\.\w+")


def _heading_for(term: str, headings) -> str | None:
    return next((h for h in headings if h == term or h.startswith(term + " ") or h.startswith(term + "(")), None)


def test_glossary_defines_every_required_term_briefly_with_its_source():
    entries = glossary_entries()
    assert len(entries) >= len(REQUIRED)
    for term in REQUIRED:
        heading = _heading_for(term, entries)
        assert heading is not None, f"GLOSSARY.md has no entry for {term!r} (a '### {term}' heading)"
        words = len(entries[heading].split())
        assert 10 <= words <= 110, f"{heading!r}: {words} words; a glossary entry is a short definition"
        assert CITATION.search(entries[heading]), f"{heading!r} cites no paper section, author or reidbook module"


def test_glossary_entries_parse_headings_and_bodies(tmp_path):
    path = tmp_path / "GLOSSARY.md"
    path.write_text("# Glossary\n\nintro\n\n## Group\n\n### A term\nfirst line\nsecond line\n\n### B\nbody b\n"
                    "## Next group\ntext not in B\n")
    assert glossary_entries(path) == {"A term": "first line second line", "B": "body b"}


def test_slugs_are_githubs():
    assert _slug("CMC / Rank-k") == "cmc--rank-k"
    assert _slug("mINP (mean inverse negative penalty)") == "minp-mean-inverse-negative-penalty"
    assert _slug("Anytime vs budgeted re-ID") == "anytime-vs-budgeted-re-id"


def test_write_glossary_copies_and_renders_it_with_anchors(tmp_path):
    assert write_glossary(tmp_path) == "GLOSSARY.html"
    assert (tmp_path / "GLOSSARY.md").read_text() == glossary_path().read_text()
    page = (tmp_path / "GLOSSARY.html").read_text()
    for heading in glossary_entries():
        assert f'id="{_slug(heading)}"' in page, heading
    assert 'href="index.html"' in page
    assert write_glossary(tmp_path / "elsewhere", notebooks=tmp_path / "no-such-folder") is None


def test_exported_chapter_links_the_rendered_glossary(tmp_path):
    nb = nbformat.v4.new_notebook()
    nb.cells = [nbformat.v4.new_markdown_cell("See the [glossary](GLOSSARY.md) and [mINP](GLOSSARY.md#minp).")]
    path = tmp_path / "00_x.ipynb"
    nbformat.write(nb, str(path))
    page = (tmp_path / _to_html(path)).read_text()
    assert 'href="GLOSSARY.html"' in page and 'href="GLOSSARY.html#minp"' in page
    assert "GLOSSARY.md" not in page


def test_index_links_the_glossary_when_it_was_written(tmp_path):
    runs = [ChapterRun("00_data", "00 · Data", ["read CMC"], "00_data.ipynb", "00_data.html", 61.2)]
    assert "GLOSSARY.html" not in write_index(runs, tmp_path, "quick", "synth").read_text()
    write_glossary(tmp_path)
    assert 'href="GLOSSARY.html"' in write_index(runs, tmp_path, "quick", "synth").read_text()


@pytest.mark.parametrize("path", find_chapters(), ids=lambda p: p.stem)
def test_every_chapter_links_the_glossary(path):
    nb = nbformat.read(str(path), as_version=4)
    prose = "\n".join(c.source for c in nb.cells if c.cell_type == "markdown")
    assert re.search(r"\]\((?:\./)?GLOSSARY\.md(?:#[\w-]+)?\)", prose), (
        f"{path.name}: link the course glossary from the chapter's prose, e.g. "
        "'Terms are defined in the [glossary](GLOSSARY.md).'")


def test_every_glossary_anchor_a_chapter_links_exists():
    anchors = {_slug(h) for h in glossary_entries()}
    broken = []
    for path in find_chapters():
        nb = nbformat.read(str(path), as_version=4)
        for cell in nb.cells:
            if cell.cell_type == "markdown":
                broken += [f"{path.name}: #{a}" for a in re.findall(r"GLOSSARY\.md#([\w-]+)", cell.source)
                           if a not in anchors]
    assert not broken, ("links to glossary entries that do not exist (an anchor is the GitHub slug of a '### ' "
                        f"heading): {broken}")
