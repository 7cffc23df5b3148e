"""The course runner: execute every chapter under one profile and write a browsable course.

``run_course(profile="quick")`` runs ``notebooks/NN_*.ipynb`` in order with papermill (injecting
``PROFILE``, ``DATA``, ``DEVICE``, ``SEED`` into each chapter's ``parameters`` cell), writes the
executed notebook and its HTML to ``build/course/``, times each chapter, and writes
``build/course/index.html``: the course map with each chapter's learning goals, links, reading time
(:func:`reading_minutes`), run time, per-cell times and the profile used, and a link to the glossary
(``notebooks/GLOSSARY.md``, copied and rendered beside the chapters by :func:`write_glossary`).
``make course`` and ``reidbook course`` both call it. Before the first chapter it runs
:func:`reidbook.zoo.prepare_course` (SynthReID and the source-domain backbones, the offline stand-in for
downloading ImageNet weights) and, outside ``full``, trains chapter 04's seven FD teachers
(:func:`reidbook.distill.pipeline.prepare_teachers`, the stand-in for downloading trained teachers), so
no chapter's time pays for another's backbone and chapter 04 fits its budget.
"""
from __future__ import annotations

import contextlib
import html
import json
import os
import re
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path

from .utils import atomic_write_json, atomic_write_text, say

__all__ = ["ChapterRun", "find_chapters", "chapter_info", "run_chapter", "run_course", "write_index",
           "cell_timings", "format_timings", "reading_minutes", "glossary_path", "glossary_entries", "write_glossary",
           "GLOSSARY", "WORDS_PER_MINUTE"]

GLOSSARY = "GLOSSARY.md"  # in the chapters' folder, so a chapter links it as GLOSSARY.md (JupyterLab, GitHub, HTML)
WORDS_PER_MINUTE = 200  # reading speed for the index page's reading time


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
    cells: list = field(default_factory=list)  # [{"cell", "first_line", "seconds"}] (cell_timings)
    events: list = field(default_factory=list)  # lost kernel messages (reidbook.course_client)
    reading_minutes: float = 0.0  # words of the chapter's markdown / WORDS_PER_MINUTE (reading_minutes)


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
        raise FileNotFoundError(f"no chapters folder at {folder}; "
                                "run from the reidbook checkout or set REIDBOOK_NOTEBOOKS")
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


def reading_minutes(path: str | os.PathLike, words_per_minute: int = WORDS_PER_MINUTE) -> float:
    """Minutes to read a chapter's prose: the words of its markdown cells (link targets, HTML tags and
    LaTeX commands left out) at ``words_per_minute``. Code and outputs are not counted."""
    import nbformat

    nb = nbformat.read(str(path), as_version=4)
    words = 0
    for cell in nb.cells:
        if cell.cell_type != "markdown":
            continue
        text = re.sub(r"\]\([^)]*\)", "]", cell.source)  # [text](target): the text only
        text = re.sub(r"<[^>]+>|\\[A-Za-z]+", " ", text)  # tags, \commands
        words += len(re.findall(r"[^\W_][\w'’-]*", text))
    return words / words_per_minute


def glossary_path(folder: str | os.PathLike | None = None) -> Path:
    """The course glossary, ``GLOSSARY.md`` in the chapters' folder (:func:`notebooks_dir`)."""
    return Path(folder or notebooks_dir()) / GLOSSARY


def glossary_entries(path: str | os.PathLike | None = None) -> dict[str, str]:
    """The glossary's entries, ``{term heading: definition}`` (each ``### `` heading and the text under it)."""
    path = Path(path) if path else glossary_path()
    entries: dict[str, str] = {}
    term = None
    for line in path.read_text(encoding="utf-8").splitlines():
        if line.startswith("### "):
            term = line[4:].strip()
            entries[term] = ""
        elif line.startswith("#"):
            term = None
        elif term is not None:
            entries[term] = (entries[term] + " " + line.strip()).strip()
    return entries


def _slug(heading: str) -> str:
    """A heading's anchor as GitHub and JupyterLab-on-GitHub spell it: lower case, punctuation dropped,
    spaces as hyphens (``"CMC / Rank-k"`` → ``"cmc--rank-k"``)."""
    text = re.sub(r"<[^>]+>", "", html.unescape(heading)).strip().lower()
    return re.sub(r"\s", "-", re.sub(r"[^\w\s-]", "", text))


def write_glossary(out_dir: str | os.PathLike, notebooks: str | os.PathLike | None = None) -> str | None:
    """Copy the glossary into ``out_dir`` (``GLOSSARY.md``, for the executed notebooks' links) and render it
    as ``GLOSSARY.html`` (every term heading an anchor); returns the HTML's name, or ``None`` when the
    chapters' folder has no glossary."""
    import mistune

    source = glossary_path(notebooks)
    if not source.is_file():
        return None
    out_dir = Path(out_dir)
    text = source.read_text(encoding="utf-8")
    atomic_write_text(out_dir / GLOSSARY, text)
    body = re.sub(r"<(h[1-4])>(.*?)</\1>", lambda m: f'<{m[1]} id="{_slug(m[2])}">{m[2]}</{m[1]}>',
                  mistune.html(text))
    page = (f'<!doctype html><html><head><meta charset="utf-8"><title>reidbook — glossary</title>'
            f"<style>{_PAGE_CSS}</style></head><body><p><a href=\"index.html\">← the course</a></p>{body}"
            "</body></html>")
    atomic_write_text(out_dir / "GLOSSARY.html", page)
    return "GLOSSARY.html"


_PAGE_CSS = "body{font-family:system-ui,sans-serif;max-width:920px;margin:2em auto;padding:0 1em;color:#222}"


def run_chapter(path: str | os.PathLike, out_dir: str | os.PathLike, profile: str = "quick", data: str = "synth",
                device: str = "auto", seed: int = 0, timeout: int | None = None,
                html_export: bool = True) -> ChapterRun:
    """Execute one chapter with papermill into ``out_dir`` (executed ``.ipynb`` + ``.html``).

    Each cell runs under its own time limit (:func:`reidbook.course_client.cell_timeout`: seconds for a
    widget cell, minutes for a training cell; ``timeout``, when given, replaces the limit of the
    non-widget cells). A cell past its limit fails the chapter with a message naming the cell and what
    to do. The run records every cell's time (``ChapterRun.cells``) and any lost kernel message
    (``ChapterRun.events``).
    """
    import papermill as pm
    from nbclient.exceptions import CellTimeoutError

    from .course_client import cell_timeout, register_engine

    path = Path(path)
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    title, goals = chapter_info(path)
    executed = out_dir / path.name
    run = ChapterRun(name=path.stem, title=title, goals=goals, notebook=executed.name, profile=profile,
                     reading_minutes=round(reading_minutes(path), 1))
    state: dict = {"cell": None}
    events: list[dict] = []

    def on_cell_start(cell=None, cell_index=None, **_):
        state["cell"] = cell_index

    def timeout_func(cell):
        return cell_timeout(cell.source, cell.metadata, profile, ceiling=timeout)

    engine = register_engine()
    t0 = time.perf_counter()
    with _kernel_environment():
        try:
            pm.execute_notebook(str(path), str(executed),
                                parameters=dict(PROFILE=profile, DATA=data, DEVICE=device, SEED=seed),
                                cwd=str(path.parent), kernel_name="python3", progress_bar=False, log_output=False,
                                engine_name=engine, execution_timeout=KERNEL_REQUEST_TIMEOUT, timeout_func=timeout_func,
                                on_cell_start=on_cell_start, events=events, iopub_timeout=IOPUB_TIMEOUT,
                                coalesce_streams=True)
        except CellTimeoutError as exc:
            run.ok = False
            run.error = _timeout_message(path, executed, state["cell"], profile, timeout, exc)
        except Exception as exc:  # papermill.PapermillExecutionError names the failing cell
            run.ok = False
            run.error = f"{type(exc).__name__}: {str(exc)[-2000:]}"
    run.seconds = time.perf_counter() - t0
    if executed.exists():
        run.cells = cell_timings(executed)
        if not run.ok and state["cell"] is not None and "timed out" in run.error:
            _mark_timed_out(executed, state["cell"], run.error)
    run.events = [{**e, "cell": _source_index(executed, e["cell"])} for e in events] if executed.exists() else events
    if executed.exists():
        run.extra["trained"] = trained_in(executed)
    if html_export and executed.exists():
        run.html = _to_html(executed)
    return run


# What the store prints when it trains rather than loads (reidbook.zoo, .pretrain, .distill.pipeline, .compare).
_TRAINED = re.compile(r"^\[(?:zoo|fd|compare)\] (?:training|pre-training|distilling) (.+?)(?: on | ->|$)", re.M)


def trained_in(executed: str | os.PathLike) -> list[str]:
    """What an executed chapter trained itself (not loaded from the zoo), from its printed messages: after
    ``reidbook course``'s preparation this is empty unless :func:`reidbook.course_plan.course_jobs` missed it."""
    import nbformat

    nb = nbformat.read(str(executed), as_version=4)
    found = []
    for cell in nb.cells:
        for o in cell.get("outputs", []):
            if o.get("output_type") == "stream":
                found += [m.group(1).strip() for m in _TRAINED.finditer(o.get("text", ""))]
    return list(dict.fromkeys(found))


# The kernel_info request at the end of a chapter and kernel start-up: seconds.
KERNEL_REQUEST_TIMEOUT = 120
# How long to wait for the kernel's IOPub "idle" after a cell's reply before noting it lost.
IOPUB_TIMEOUT = 30


@contextlib.contextmanager
def _kernel_environment():
    """The environment a chapter's kernel inherits.

    * ``MPLBACKEND`` removed: a headless backend (e.g. Agg, set by tests) would keep figures out of the
      executed notebook, so the kernel gets Jupyter's inline backend instead;
    * ``REIDBOOK_PROGRESS=text``: nobody watches an executed chapter's progress bars live, so they are
      plain text, rate-limited, and their last state (100 %, final loss) is what the saved notebook shows
      (:func:`reidbook.utils.progress`), not a widget saved at "0%".
    """
    saved = {k: os.environ.get(k) for k in ("MPLBACKEND", "REIDBOOK_PROGRESS")}
    os.environ.pop("MPLBACKEND", None)
    os.environ.setdefault("REIDBOOK_PROGRESS", "text")
    try:
        yield
    finally:
        for k, v in saved.items():
            if v is None:
                os.environ.pop(k, None)
            else:
                os.environ[k] = v


def _injected_index(nb) -> int | None:
    return next((i for i, c in enumerate(nb.cells) if "injected-parameters" in c.metadata.get("tags", [])), None)


def _source_index(executed: Path, index: int | None) -> int | None:
    """The index in the chapter's own notebook of cell ``index`` of the executed one (papermill inserts
    its ``injected-parameters`` cell after the ``parameters`` cell)."""
    import nbformat

    if index is None:
        return None
    injected = _injected_index(nbformat.read(str(executed), as_version=4))
    return index - 1 if injected is not None and index > injected else index


def _first_line(source: str) -> str:
    return next((line.strip() for line in source.splitlines() if line.strip()), "")[:100]


def cell_timings(executed: str | os.PathLike) -> list[dict]:
    """Per code cell of an executed chapter: ``{"cell": index in the chapter, "first_line", "seconds"}``
    (papermill's per-cell duration; the injected-parameters cell is left out)."""
    import nbformat

    nb = nbformat.read(str(executed), as_version=4)
    injected = _injected_index(nb)
    rows = []
    for i, c in enumerate(nb.cells):
        if c.cell_type != "code" or i == injected:
            continue
        seconds = (c.metadata.get("papermill") or {}).get("duration")
        if seconds is None:
            continue
        rows.append({"cell": i - 1 if injected is not None and i > injected else i,
                     "first_line": _first_line(c.source), "seconds": round(float(seconds), 2)})
    return rows


def _timeout_message(path: Path, executed: Path, index: int | None, profile: str, ceiling: int | None, exc) -> str:
    """What a learner reads when a cell ran past its limit: chapter, cell, limit, and what to do."""
    import nbformat

    from .course_client import cell_kind, cell_timeout

    if index is None or not executed.exists():
        return f"{path.stem}: a cell timed out ({exc})"
    cell = nbformat.read(str(executed), as_version=4).cells[index]
    limit = cell_timeout(cell.source, cell.metadata, profile, ceiling=ceiling)
    kind = cell_kind(cell.source)
    where = _source_index(executed, index)
    return (f"{path.stem}: cell {where} ({kind} cell, `{_first_line(cell.source)}`) timed out: it ran past its "
            f"{limit} s limit and was stopped; the chapter is not complete. What to do: open {executed.name} and "
            f"look at cell {where}'s output. If the machine is just slow or busy, raise every limit with "
            "REIDBOOK_CELL_TIMEOUT_SCALE=2 (or this cell's metadata reidbook.timeout) and run the chapter again "
            f"(`reidbook course --profile {profile} --chapters {path.stem[:2]}`); if the cell's output is complete, "
            "the kernel stopped answering: run the chapter again and report it.")


def _mark_timed_out(executed: Path, index: int, message: str) -> None:
    """Record in the executed notebook that cell ``index`` was stopped (papermill marks it "completed")."""
    import nbformat

    nb = nbformat.read(str(executed), as_version=4)
    cell = nb.cells[index]
    cell.metadata.setdefault("papermill", {})["status"] = "timed out"
    note = nbformat.v4.new_output("stream", name="stderr", text=f"[reidbook course] {message}\n")
    cell.setdefault("outputs", []).append(note)
    atomic_write_text(executed, nbformat.writes(nb))


def _to_html(executed: Path) -> str:
    """Export an executed chapter to HTML beside it; returns the page's name.

    The page has no kernel behind it, so the widgets' saved state (which the kernel client may have stored
    in the notebook's metadata) is left out: nbconvert then shows each widget's next representation — a
    :class:`reidbook.widgets._common.WithStatic` widget's static form — instead of a view that needs the
    widget manager's JavaScript from the internet and a kernel to move."""
    import nbformat
    from nbconvert import HTMLExporter

    nb = nbformat.read(str(executed), as_version=4)
    nb.metadata.pop("widgets", None)
    body, _ = HTMLExporter().from_notebook_node(nb)
    # a chapter links the glossary as GLOSSARY.md (right in JupyterLab); the exported page links its HTML
    body = re.sub(r'href="(?:\./)?GLOSSARY\.md(#[^"]*)?"', lambda m: f'href="GLOSSARY.html{m[1] or ""}"', body)
    target = executed.with_suffix(".html")
    atomic_write_text(target, body)
    return target.name


def write_index(runs: list[ChapterRun], out_dir: str | os.PathLike, profile: str, data: str,
                prepared: dict[str, float] | None = None, wall: dict | None = None) -> Path:
    """The course map: one card per chapter with goals, links, run time and status; ``wall`` holds the
    wall-clock seconds of the preparation and the chapters and how many ran side by side (``lanes``)."""
    out_dir = Path(out_dir)
    total = sum(r.seconds for r in runs)
    prep = sum((prepared or {}).values())
    prep_items = ", ".join(f"{k} {v:.0f} s" for k, v in (prepared or {}).items()) or "nothing"
    wall = wall or {}
    clock = ""
    if "total" in wall:
        lanes = wall.get("lanes", 1)
        clock = (f"Wall clock: {wall['total'] / 60:.1f} min in all"
                 + (f", preparation and chapters {lanes} side by side (each with its share of the cores; a "
                    "chapter starts when what it loads is prepared); the times here are each item's own"
                    if lanes > 1 else "") + ".")
    glossary = ('<p>Words you meet in the chapters: <a href="GLOSSARY.html">the glossary</a>.</p>'
                if (out_dir / "GLOSSARY.html").is_file() else "")
    cards = []
    for r in runs:
        goals = "".join(f"<li>{html.escape(g)}</li>" for g in r.goals)
        link = f'<a href="{html.escape(r.html)}">read</a>' if r.html else ""
        nb = f'<a href="{html.escape(r.notebook)}">notebook</a>'
        status = "ok" if r.ok else f'<span class="fail">failed</span><pre>{html.escape(r.error[-1500:])}</pre>'
        trained = r.extra.get("trained") or []
        trained_html = (f'<p class="meta">trained in the chapter (not prepared): {html.escape("; ".join(trained))}</p>'
                        if trained else "")
        cards.append(f"""<section class="card"><h2>{html.escape(r.title)}</h2>
<p class="meta">{html.escape(r.name)} · profile <b>{html.escape(r.profile)}</b> · {_reading(r)} · """
                     f"""ran in {r.seconds:.0f} s"""
                     f""" · {status} · {link} {nb}</p>
<ul>{goals}</ul>{trained_html}{_events_html(r)}{_timings_html(r)}</section>""")
    page = f"""<!doctype html><html><head><meta charset="utf-8"><title>reidbook — the course</title>
<style>body{{font-family:system-ui,sans-serif;max-width:920px;margin:2em auto;padding:0 1em;color:#222}}
.card{{border:1px solid #ddd;border-radius:8px;padding:0.6em 1.2em;margin:1em 0}}.meta{{color:#555}}
.fail{{color:#b00;font-weight:bold}}.warn{{color:#a60}}pre{{white-space:pre-wrap;font-size:80%}}
table.cells{{border-collapse:collapse;font-size:85%}}
table.cells td,table.cells th{{padding:1px 8px;text-align:left}}td.num{{text-align:right}}</style></head><body>
<h1>reidbook — compressing person re-identification models</h1>
<p>Executed with profile <b>{html.escape(profile)}</b> on data <b>{html.escape(data)}</b>;
{len(runs)} chapters, {total / 60:.1f} minutes of running in all (about
{sum(r.reading_minutes for r in runs):.0f} minutes of reading), {time.strftime('%Y-%m-%d %H:%M')}.
Before them: {prep / 60:.1f} minutes of preparation ({html.escape(prep_items)}). {html.escape(clock)}
Reading time counts each chapter's prose at {WORDS_PER_MINUTE} words a minute; run time is measured.</p>
{glossary}
{''.join(cards)}</body></html>"""
    target = out_dir / "index.html"
    atomic_write_text(target, page)
    atomic_write_json(out_dir / "course.json", {"profile": profile, "data": data, "total_seconds": total,
                                                 "prepare_seconds": prepared or {}, "wall_seconds": wall,
                                                 "chapters": [asdict(r) for r in runs]})
    return target


def _reading(r: ChapterRun) -> str:
    return f"read in about {max(1, round(r.reading_minutes))} min" if r.reading_minutes else "reading time unknown"


def _events_html(r: ChapterRun) -> str:
    if not r.events:
        return ""
    what = {"lost-reply": "the kernel went idle but its reply never came; the cell was completed from its outputs",
            "lost-idle": "the kernel's idle message never came after the reply; later outputs may be missing",
            "late-reply": "the cell's reply was read seconds after it was sent (a missed wake-up, recovered)"}
    items = "".join(f"<li>cell {e.get('cell')}: {html.escape(what.get(e.get('kind'), str(e.get('kind'))))} "
                    f"(after {e.get('seconds')} s)</li>" for e in r.events)
    return f'<p class="warn">Kernel messages lost while running this chapter:</p><ul>{items}</ul>'


def _timings_html(r: ChapterRun) -> str:
    """A collapsible per-cell time table (slowest first marked), from ``ChapterRun.cells``."""
    if not r.cells:
        return ""
    rows = "".join(f"<tr><td>{c['cell']}</td><td><code>{html.escape(c['first_line'])}</code></td>"
                   f"<td class=\"num\">{c['seconds']:.1f}</td></tr>" for c in r.cells)
    slowest = max(r.cells, key=lambda c: c["seconds"])
    return (f"<details><summary>time per cell ({len(r.cells)} cells; slowest: cell {slowest['cell']}, "
            f"{slowest['seconds']:.0f} s)</summary><table class=\"cells\"><tr><th>cell</th><th>first line</th>"
            f"<th>seconds</th></tr>{rows}</table></details>")


def format_timings(runs: list[ChapterRun]) -> str:
    """The per-cell time table of every chapter as text (``reidbook course --timings``)."""
    lines = []
    for r in runs:
        lines.append(f"{r.name}: {r.seconds:.0f} s{'' if r.ok else ' (FAILED)'}")
        for c in r.cells:
            lines.append(f"  cell {c['cell']:>3}  {c['seconds']:8.1f} s  {c['first_line'][:70]}")
    return "\n".join(lines)


def run_course(profile: str = "quick", data: str = "synth", out: str | os.PathLike = "build/course",
               chapters: list[str] | None = None, device: str = "auto", seed: int = 0,
               notebooks: str | os.PathLike | None = None, html_export: bool = True,
               prepare: bool = True, timings: bool = False, lanes: int | None = None) -> list[ChapterRun]:
    """Execute every chapter under ``profile`` and write ``out/index.html``.

    In smoke and quick the preparation (:func:`reidbook.course_plan.course_jobs`: the source-domain
    backbones, FD's teachers and every model the chapters train) and the chapters are one plan of jobs run
    ``lanes`` side by side, each lane with ``cores / lanes`` threads (:func:`reidbook.course_plan.run_jobs`):
    a chapter starts as soon as what it loads is prepared (:func:`reidbook.course_plan.chapter_jobs`), and
    trains whatever was not (listed on its card). In ``full`` only SynthReID is prepared (ImageNet
    backbones; each model trains in its chapter, on the GPU). ``lanes`` defaults to
    :func:`reidbook.course_plan.lanes_for` (2 on a CPU with ≥ 2 cores; 1, in order, on a GPU).

    A failing chapter (an error, or a cell past its time limit) is recorded with its cell and shown on
    the index page, and the rest still run; the function raises ``RuntimeError`` at the end if any
    chapter failed, so ``make course`` exits non-zero. Every chapter's per-cell time table is kept in the
    index page (and ``course.json``); ``timings=True`` also prints it (``reidbook course --timings``).
    """
    from .course_plan import chapter_jobs, course_jobs, lanes_for, run_jobs
    from .presets import check_profile

    check_profile(profile)
    out = Path(out)
    paths = find_chapters(notebooks, chapters)
    lanes = lanes_for(device, lanes)
    prepared: dict[str, float] = {}
    wall: dict = {"lanes": lanes}
    t0 = time.perf_counter()
    prep_jobs = []
    if prepare:
        from . import zoo

        say(f"[reidbook course] generating SynthReID ({profile}) …")
        if profile == "full":
            prepared = zoo.prepare_course(profile, seed, device)
        else:
            from .store import synthreid

            synthreid(profile, seed)
            prepared["SynthReID"] = time.perf_counter() - t0
            prep_jobs = course_jobs(profile)
    out.mkdir(parents=True, exist_ok=True)
    write_glossary(out, notebooks)  # before the chapters: their pages link it
    runs: dict[str, ChapterRun] = {}

    def on_done(job, seconds: float, result) -> None:
        if not isinstance(result, ChapterRun):
            prepared[job.name] = seconds
            return
        _report(result)
        runs[result.name] = result
        wall["total"] = time.perf_counter() - t0
        write_index([runs[p.stem] for p in paths if p.stem in runs], out, profile, data, prepared, wall)

    jobs = prep_jobs + chapter_jobs(paths, out, profile, html_export, prep_jobs, _last_times(out))
    say(f"[reidbook course] {len(prep_jobs)} trainings and {len(paths)} chapters, {lanes} side by side …")
    run_jobs(jobs, profile, data, seed, device, lanes=lanes, quiet=True, on_done=on_done)
    for path in paths:  # a chapter whose job could not run at all (its worker died) is a failed chapter
        if path.stem not in runs:
            title, goals = chapter_info(path)
            runs[path.stem] = ChapterRun(name=path.stem, title=title, goals=goals, notebook=path.name, ok=False,
                                         error="the chapter did not run: its worker process failed (see the "
                                               "messages above)", profile=profile)
    ordered = [runs[p.stem] for p in paths]
    wall["total"] = time.perf_counter() - t0
    index = write_index(ordered, out, profile, data, prepared, wall)
    print(f"[reidbook course] wrote {index.resolve()} in {wall['total'] / 60:.1f} min ({lanes} side by side; "
          f"{sum(prepared.values()) / 60:.1f} min of preparation and {sum(r.seconds for r in ordered) / 60:.1f} min "
          "of chapters, each item's own time)", flush=True)
    if timings:
        print(format_timings(ordered), flush=True)
    failed = [r.name for r in ordered if not r.ok]
    if failed:
        raise RuntimeError(f"chapters failed: {', '.join(failed)} — see {index} and the executed notebooks in {out}")
    return ordered


def _report(run: ChapterRun) -> None:
    say(f"[reidbook course] {run.name}: {'ok' if run.ok else 'FAILED'} in {run.seconds:.0f} s")
    if not run.ok:
        print(f"[reidbook course] {run.error}", flush=True)
    for e in run.events:
        print(f"[reidbook course] {run.name}: cell {e.get('cell')}: {e.get('kind')} after {e.get('seconds')} s "
              "(see the index page)", flush=True)
    if run.extra.get("trained"):
        say(f"[reidbook course] {run.name} trained what the preparation had not: {'; '.join(run.extra['trained'])}")


def _last_times(out: Path) -> dict[str, float]:
    """Seconds per chapter of the last run in ``out/course.json`` (longest first), or nothing."""
    try:
        return {c["name"]: float(c["seconds"]) for c in json.loads((out / "course.json").read_text())["chapters"]}
    except (OSError, ValueError, KeyError, TypeError):
        return {}
