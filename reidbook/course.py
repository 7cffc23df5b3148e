"""The course runner: execute every chapter under one profile and write a browsable course.

``run_course(profile="quick")`` runs ``notebooks/NN_*.ipynb`` in order with papermill (injecting
``PROFILE``, ``DATA``, ``DEVICE``, ``SEED`` into each chapter's ``parameters`` cell), writes the
executed notebook and its HTML to ``build/course/``, times each chapter, and writes
``build/course/index.html``: the course map with each chapter's learning goals, links, run time and
the profile used. ``make course`` and ``reidbook course`` both call it. Before the first chapter it
runs :func:`reidbook.zoo.prepare_course` (SynthReID and the source-domain backbones, the offline
stand-in for downloading ImageNet weights) and, outside ``full``, trains chapter 04's seven FD teachers
(:func:`reidbook.distill.pipeline.prepare_teachers`, the stand-in for downloading trained teachers), so
no chapter's time pays for another's backbone and chapter 04 fits its budget.
"""
from __future__ import annotations

import html
import json
import os
import re
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path

from .utils import atomic_write_json, atomic_write_text, say

__all__ = ["ChapterRun", "find_chapters", "chapter_info", "run_chapter", "run_course", "write_index"]


@dataclass
class ChapterRun:
    name: str
    title: str
    goals: list[str]
    notebook: str
    html: str | None = None
    seconds: float = 0.0
    ok: bool = True
    error: str = ""
    profile: str = "quick"
    extra: dict = field(default_factory=dict)


def notebooks_dir() -> Path:
    """The chapters' folder: ``$REIDBOOK_NOTEBOOKS`` or ``notebooks/`` of the source checkout."""
    env = os.environ.get("REIDBOOK_NOTEBOOKS")
    if env:
        return Path(env)
    here = Path(__file__).resolve().parent.parent / "notebooks"
    return here if here.is_dir() else Path.cwd() / "notebooks"


def find_chapters(folder: str | os.PathLike | None = None, only: list[str] | None = None) -> list[Path]:
    """Chapter notebooks ``NN_*.ipynb`` in order; ``only`` keeps those whose name starts with a given prefix."""
    folder = Path(folder) if folder else notebooks_dir()
    if not folder.is_dir():
        raise FileNotFoundError(f"no chapters folder at {folder}; run from the reidbook checkout or set REIDBOOK_NOTEBOOKS")
    paths = sorted(p for p in folder.glob("[0-9][0-9]_*.ipynb"))
    if only:
        paths = [p for p in paths if any(p.stem.startswith(o) for o in only)]
        if not paths:
            raise ValueError(f"no chapter in {folder} matches {only}")
    return paths


def chapter_info(path: str | os.PathLike) -> tuple[str, list[str]]:
    """Title (first ``# `` heading) and learning goals (bullets under a "Learning goals" heading or line)."""
    import nbformat

    nb = nbformat.read(str(path), as_version=4)
    title, goals = Path(path).stem, []
    for cell in nb.cells:
        if cell.cell_type != "markdown":
            continue
        text = cell.source
        m = re.search(r"^#\s+(.+)$", text, re.M)
        if m and title == Path(path).stem:
            title = m.group(1).strip()
        g = re.search(r"learning goals\W*\n((?:\s*[-*]\s+.+\n?)+)", text, re.I)
        if g and not goals:
            goals = [re.sub(r"^\s*[-*]\s+", "", line).strip() for line in g.group(1).strip().splitlines()]
        if title != Path(path).stem and goals:
            break
    return title, goals


def run_chapter(path: str | os.PathLike, out_dir: str | os.PathLike, profile: str = "quick", data: str = "synth",
                device: str = "auto", seed: int = 0, timeout: int = 1800, html_export: bool = True) -> ChapterRun:
    """Execute one chapter with papermill into ``out_dir`` (executed ``.ipynb`` + ``.html``)."""
    import papermill as pm

    path = Path(path)
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    title, goals = chapter_info(path)
    executed = out_dir / path.name
    run = ChapterRun(name=path.stem, title=title, goals=goals, notebook=executed.name, profile=profile)
    t0 = time.perf_counter()
    # The kernel inherits our environment: a headless MPLBACKEND (e.g. Agg, set by tests) would keep
    # figures out of the executed notebook, so the kernel gets Jupyter's inline backend instead.
    saved_backend = os.environ.pop("MPLBACKEND", None)
    try:
        pm.execute_notebook(str(path), str(executed), parameters=dict(PROFILE=profile, DATA=data, DEVICE=device, SEED=seed),
                            cwd=str(path.parent), kernel_name="python3", progress_bar=False,
                            execution_timeout=timeout, log_output=False)
    except Exception as exc:  # papermill.PapermillExecutionError names the failing cell
        run.ok = False
        run.error = f"{type(exc).__name__}: {str(exc)[-2000:]}"
    finally:
        if saved_backend is not None:
            os.environ["MPLBACKEND"] = saved_backend
    run.seconds = time.perf_counter() - t0
    if html_export and executed.exists():
        run.html = _to_html(executed)
    return run


def _to_html(executed: Path) -> str:
    import nbformat
    from nbconvert import HTMLExporter

    nb = nbformat.read(str(executed), as_version=4)
    body, _ = HTMLExporter().from_notebook_node(nb)
    target = executed.with_suffix(".html")
    atomic_write_text(target, body)
    return target.name


def write_index(runs: list[ChapterRun], out_dir: str | os.PathLike, profile: str, data: str,
                prepared: dict[str, float] | None = None) -> Path:
    """The course map: one card per chapter with goals, links, run time and status."""
    out_dir = Path(out_dir)
    total = sum(r.seconds for r in runs)
    prep = sum((prepared or {}).values())
    prep_items = ", ".join(f"{k} {v:.0f} s" for k, v in (prepared or {}).items()) or "nothing"
    cards = []
    for r in runs:
        goals = "".join(f"<li>{html.escape(g)}</li>" for g in r.goals)
        link = f'<a href="{html.escape(r.html)}">read</a>' if r.html else ""
        nb = f'<a href="{html.escape(r.notebook)}">notebook</a>'
        status = "ok" if r.ok else f'<span class="fail">failed</span><pre>{html.escape(r.error[-800:])}</pre>'
        cards.append(f"""<section class="card"><h2>{html.escape(r.title)}</h2>
<p class="meta">{html.escape(r.name)} · profile <b>{html.escape(r.profile)}</b> · {r.seconds:.0f} s · {status} · {link} {nb}</p>
<ul>{goals}</ul></section>""")
    page = f"""<!doctype html><html><head><meta charset="utf-8"><title>reidbook — the course</title>
<style>body{{font-family:system-ui,sans-serif;max-width:920px;margin:2em auto;padding:0 1em;color:#222}}
.card{{border:1px solid #ddd;border-radius:8px;padding:0.6em 1.2em;margin:1em 0}}.meta{{color:#555}}
.fail{{color:#b00;font-weight:bold}}pre{{white-space:pre-wrap;font-size:80%}}</style></head><body>
<h1>reidbook — compressing person re-identification models</h1>
<p>Executed with profile <b>{html.escape(profile)}</b> on data <b>{html.escape(data)}</b>;
{len(runs)} chapters, {total / 60:.1f} minutes in all, {time.strftime('%Y-%m-%d %H:%M')}.
Before them: {prep / 60:.1f} minutes of preparation ({html.escape(prep_items)}).</p>
{''.join(cards)}</body></html>"""
    target = out_dir / "index.html"
    atomic_write_text(target, page)
    atomic_write_json(out_dir / "course.json", {"profile": profile, "data": data, "total_seconds": total,
                                                 "prepare_seconds": prepared or {}, "chapters": [asdict(r) for r in runs]})
    return target


def run_course(profile: str = "quick", data: str = "synth", out: str | os.PathLike = "build/course",
               chapters: list[str] | None = None, device: str = "auto", seed: int = 0,
               notebooks: str | os.PathLike | None = None, html_export: bool = True,
               prepare: bool = True) -> list[ChapterRun]:
    """Execute every chapter in order under ``profile`` and write ``out/index.html``.

    A failing chapter is recorded (and shown on the index page) and the rest still run; the function
    raises ``RuntimeError`` at the end if any chapter failed, so ``make course`` exits non-zero.
    """
    from .presets import check_profile

    check_profile(profile)
    out = Path(out)
    runs: list[ChapterRun] = []
    paths = find_chapters(notebooks, chapters)
    prepared: dict[str, float] = {}
    if prepare:
        from . import zoo

        say(f"[reidbook course] preparing SynthReID and the source-domain backbones ({profile}) …")
        prepared = zoo.prepare_course(profile, seed, device)
        if profile != "full":  # full trains its ResNet-101 teachers in chapter 04, on the researcher's GPU
            from .distill.pipeline import prepare_teachers

            say(f"[reidbook course] training the Factorized Distillation teachers ({profile}) …")
            prepared.update(prepare_teachers(profile, data, seed, device))
        say(f"[reidbook course] prepared in {sum(prepared.values()):.0f} s")
    for path in paths:
        say(f"[reidbook course] {path.stem} ({profile}) …")
        run = run_chapter(path, out, profile, data, device, seed, html_export=html_export)
        say(f"[reidbook course] {path.stem}: {'ok' if run.ok else 'FAILED'} in {run.seconds:.0f} s")
        runs.append(run)
        write_index(runs, out, profile, data, prepared)
    index = write_index(runs, out, profile, data, prepared)
    print(f"[reidbook course] wrote {index.resolve()} ({sum(r.seconds for r in runs) / 60:.1f} min of chapters, "
          f"{sum(prepared.values()) / 60:.1f} min of preparation)")
    failed = [r.name for r in runs if not r.ok]
    if failed:
        raise RuntimeError(f"chapters failed: {', '.join(failed)} — see {index} and the executed notebooks in {out}")
    return runs
