#!/usr/bin/env python
"""Regenerate README.md's results section from the course's trained models (the zoo) and its last run.

    .venv/bin/python scripts/readme_results.py [--profile quick] [--data synth] [--seed 0]
    make readme-results

Loads every model the course trained (``reidbook.compare.collect``; trained now if the course has not
run), measures them side by side (``reidbook.compare.measure``), writes figures under ``docs/figures/``
(the Pareto charts and, if ``build/course/course.json`` exists, the chapters' run times) and replaces
the text between ``<!-- results:start -->`` and ``<!-- results:end -->`` in README.md with the table,
the figures and the computed budget guide. Nothing in that section is typed by hand.
"""
from __future__ import annotations

import argparse
import json
import math
import re
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
START, END = "<!-- results:start -->", "<!-- results:end -->"


def replace_between_markers(text: str, block: str) -> str:
    """``text`` with everything between the results markers replaced by ``block`` (markers kept)."""
    pattern = re.compile(re.escape(START) + r".*?" + re.escape(END), re.S)
    if not pattern.search(text):
        raise ValueError(f"README has no {START} … {END} markers; add them where the results should go")
    return pattern.sub(lambda _: f"{START}\n{block.strip()}\n{END}", text, count=1)


def _num(v, fmt: str) -> str:
    try:
        return "—" if v is None or (isinstance(v, float) and math.isnan(v)) else format(float(v), fmt)
    except (TypeError, ValueError):
        return str(v)


def results_table(table) -> str:
    """A Markdown table: ours (mAP, Rank-1, params, MACs, latency) beside the papers' (labelled)."""
    head = ("| model | family | mAP | Rank-1 | params (M) | MACs (M) | CPU ms | input | paper mAP | paper Rank-1 "
            "| paper params (M) | paper source |")
    lines = [head, "|" + "---|" * 12]
    for _, r in table.iterrows():
        lines.append("| " + " | ".join([
            str(r["label"]), str(r["family"]), _num(r["mAP"], ".1f"), _num(r["rank1"], ".1f"),
            _num(r["params_M"], ".3f"), _num(r["MACs_M"], ".1f"), _num(r["latency_ms"], ".2f"), str(r["input"]),
            _num(r.get("paper_mAP"), ".1f"), _num(r.get("paper_rank1"), ".1f"), _num(r.get("paper_params_M"), ".2f"),
            str(r.get("paper_source")) if isinstance(r.get("paper_source"), str) else "—"]) + " |")
    return "\n".join(lines)


def course_times_figure(course: dict, path: Path) -> Path:
    """Bar chart of each chapter's run time in the last course run, titled with its wall clock."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    ch = course["chapters"]
    # SynthReID, source backbones, FD teachers, the chapters' models: trained in the lanes beside the chapters
    prep = sum(course.get("prepare_seconds", {}).values())
    names = [c["name"] for c in ch] + (["preparation (every model the chapters load)"] if prep else [])
    minutes = [c["seconds"] / 60 for c in ch] + ([prep / 60] if prep else [])
    colors = ["tab:blue" if c["ok"] else "tab:red" for c in ch] + (["tab:gray"] if prep else [])
    fig, ax = plt.subplots(figsize=(8, 3.4))
    ax.barh(names[::-1], minutes[::-1], color=colors[::-1])
    ax.set_xlabel("minutes")
    items = (course["total_seconds"] + prep) / 60
    wall = (course.get("wall_seconds") or {}).get("total")
    lanes = (course.get("wall_seconds") or {}).get("lanes", 1)
    if wall:  # the items ran `lanes` side by side: the wall clock is what a learner waits
        title = (f"make course ({course['profile']}): {wall / 60:.1f} min wall clock, {lanes} items side by side\n"
                 f"(the bars, each item's own time, sum to {items:.1f} min)")
    else:
        title = (f"make course: {items:.1f} min in all,\n{prep / 60:.1f} of them preparation "
                 f"(profile {course['profile']})")
    ax.set_title(title, fontsize=10)
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)
    return path


def headline(profile: str) -> str:
    """The budget-matched headline from the claims ledger (:func:`reidbook.compare.budget_matched_headline`),
    or the sentence saying why there is none (not run yet, stale)."""
    from reidbook import compare

    ledger, note = compare.ledger_state(profile)
    return note if ledger is None else compare.budget_matched_headline(ledger)


def claims_section(profile: str) -> str:
    """The claims ledger's table (``reidbook claims --table``), or a sentence saying why there is none."""
    from reidbook.claims import CLAIMS, claims_table_markdown, is_stale, load_ledger

    ledger = load_ledger(profile, missing_ok=True)
    head = f"### The papers' claims over seeds, at equal budgets (`assets/claims/{profile}.json`)"
    if ledger is None:
        return f"{head}\n\nNot run yet: `make claims` writes it."
    if is_stale(ledger):
        return f"{head}\n\nThe ledger was made with other presets (stale): run `make claims`."
    runnable = [c.id for c in CLAIMS if c.runnable]
    missing = [c for c in runnable if c not in ledger.claims]
    note = (f"{len(runnable) - len(missing)} of the {len(runnable)} runnable claims are in the ledger"
            + (f"; not yet run: {', '.join(f'`{c}`' for c in missing)} (`make claims` adds them)." if missing else "."))
    return f"{head}\n\n{note}\n\n{claims_table_markdown(ledger).strip()}"


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--profile", default="quick")
    ap.add_argument("--data", default="synth")
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--device", default="auto")
    ap.add_argument("--readme", default=str(ROOT / "README.md"))
    ap.add_argument("--figures", default=str(ROOT / "docs" / "figures"))
    ap.add_argument("--course", default=str(ROOT / "build" / "course" / "course.json"))
    ap.add_argument("--threads", type=int, default=1)
    args = ap.parse_args(argv)

    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    from reidbook import compare
    from reidbook.utils import atomic_write_text
    from reidbook.viz import compare as VC

    readme = Path(args.readme)
    text = readme.read_text(encoding="utf-8")
    replace_between_markers(text, "")  # fail early if the markers are missing
    figs = Path(args.figures)
    figs.mkdir(parents=True, exist_ok=True)
    contenders = compare.collect(args.profile, args.data, args.seed, args.device)
    table = compare.measure(contenders, threads=args.threads, rounds=3, repeats=3)
    full = compare.with_paper(table)
    made = []
    for acc in ("mAP", "rank1"):
        fig = VC.plot_pareto(table, acc, title=f"{'Rank-1' if acc == 'rank1' else acc} against cost "
                                                f"({args.profile}, {args.data})")
        p = figs / f"pareto_{acc.lower()}.png"
        fig.savefig(p, dpi=110)
        plt.close(fig)
        made.append(p)
    course_file = Path(args.course)
    course = json.loads(course_file.read_text()) if course_file.is_file() else None
    if course:
        made.append(course_times_figure(course, figs / "course_times.png"))
    rel = lambda p: Path(p).resolve().relative_to(readme.resolve().parent).as_posix()  # noqa: E731
    parts = [f"Measured by `make readme-results` (`scripts/readme_results.py`) on the models of the course's "
             f"`{args.profile}` run on `{args.data}`: every model on the same test split, costs measured in one run "
             f"(batch 1, {args.threads} CPU thread{'s' if args.threads > 1 else ''}). Ours are narrow models "
             "on SynthReID; the **paper** columns are the papers' own Market-1501 numbers, for reference.", "",
             headline(args.profile), "",
             "**Per-chapter runs** (a second view: one seed, each model on its own chapter's budget, so a model "
             "that trained longer may win by the training, not the compression):", "",
             results_table(full), "", f"![Pareto fronts, mAP]({rel(made[0])})", "",
             f"![Pareto fronts, Rank-1]({rel(made[1])})", ""]
    if course:
        parts += [f"![Chapter run times]({rel(made[2])})", ""]
    parts += ["**Which compression for which budget** (computed from the per-chapter table above):", "",
              VC.budget_guide(table, reference="baseline"), "", claims_section(args.profile)]
    atomic_write_text(readme, replace_between_markers(text, "\n".join(parts)))
    print(f"updated {readme} ({len(table)} models); figures: {', '.join(str(p) for p in made)}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
