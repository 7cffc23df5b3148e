"""Pareto charts of accuracy against cost, and the "which compression for which budget" guide.

Pure functions over the comparison table of :func:`reidbook.compare.measure` (a ``DataFrame`` indexed
by model key with ``label``, ``family``, ``mAP``, ``rank1``, ``params_M``, ``MACs_M``, ``latency_ms``):

* :func:`pareto_front` — which rows no other row beats on *both* the cost and the accuracy;
* :func:`plot_pareto` — accuracy against parameters, multiply-adds and latency, the front joined;
* :func:`budget_table` / :func:`budget_guide` — for budgets given as fractions of a reference model's
  cost, the most accurate model that fits, written out as a short guide. Every sentence of the guide is
  computed from the table; nothing in it is typed by hand. With an ``images_seen`` column the guide ends
  with the equal-budget caveat (:func:`budget_caveat`: which picks trained on more images than the reference);
* :func:`budget_pick` / :func:`budget_range` / :func:`plot_budget_range` — the budget slider's pure
  functions (chapter 08's :func:`reidbook.widgets.budget_guide_slider`): the pick at one budget fraction and
  cost axis, and the picks over the whole range (its static form);
* :func:`inspection_maps` / :func:`attention_table` — response maps and Grad-CAMs of every model on the
  same images, and their on-person shares measured against SynthReID's masks.
"""
from __future__ import annotations

import math
import textwrap
from typing import TYPE_CHECKING, Sequence

import numpy as np

from .labels import annotate_points

if TYPE_CHECKING:
    import torch

__all__ = ["AXES", "pareto_front", "plot_pareto", "budget_table", "budget_guide", "budget_caveat", "budget_pick",
           "budget_range", "plot_budget_range", "cam_target_layer", "inspection_maps", "pick_pairs", "map_agreement",
           "attention_table", "plot_inspection"]

AXES = {"params_M": "parameters (M)", "MACs_M": "multiply-adds (M)", "latency_ms": "CPU latency (ms)"}
_FAMILY_COLOURS = {"reference": "black", "multi-branch": "tab:purple", "part-based": "tab:brown",
                   "grafting": "tab:green", "distillation": "tab:orange", "pruning": "tab:red",
                   "anytime": "tab:blue"}


def pareto_front(table, cost: str, accuracy: str = "mAP") -> "np.ndarray":
    """Boolean mask of the rows on the Pareto front of (lower ``cost``, higher ``accuracy``).

    A row is on the front if no other row is at least as cheap *and* at least as accurate while being
    strictly better in one of the two. Rows with a missing value are never on it. Ties (two identical
    rows) are both on it.
    """
    c = np.asarray(table[cost], dtype=float)
    a = np.asarray(table[accuracy], dtype=float)
    ok = np.isfinite(c) & np.isfinite(a)
    front = np.zeros(len(c), dtype=bool)
    for i in np.flatnonzero(ok):
        dominated = ok & (c <= c[i]) & (a >= a[i]) & ((c < c[i]) | (a > a[i]))
        front[i] = not dominated.any()
    return front


def plot_pareto(table, accuracy: str = "mAP", axes: Sequence[str] = tuple(AXES), title: str | None = None,
                annotate: bool = True):
    """One panel per cost axis (log scale): every model, coloured by family, the Pareto front joined by a
    line and its models ringed. ``accuracy`` is ``"mAP"`` or ``"rank1"`` (in %)."""
    import matplotlib.pyplot as plt
    from matplotlib.ticker import FuncFormatter, LogLocator, NullFormatter

    fig, axs = plt.subplots(1, len(axes), figsize=(4.4 * len(axes), 3.8), squeeze=False)
    fronts = {}
    for ax, cost in zip(axs[0], axes):
        front = fronts[cost] = pareto_front(table, cost, accuracy)
        for fam, g in table.groupby("family", sort=False):
            ax.scatter(g[cost], g[accuracy], s=36, color=_FAMILY_COLOURS.get(fam, "grey"), label=fam, zorder=3)
        f = table[front].sort_values(cost)
        ax.plot(f[cost], f[accuracy], "-", color="k", lw=1, alpha=0.6, zorder=2, label="Pareto front")
        ax.scatter(f[cost], f[accuracy], s=140, facecolors="none", edgecolors="k", lw=1.2, zorder=4)
        ax.set_xscale("log")
        ax.xaxis.set_major_locator(LogLocator(base=10, subs=(1.0, 2.0, 5.0)))
        ax.xaxis.set_major_formatter(FuncFormatter(lambda v, _: f"{v:g}"))
        ax.xaxis.set_minor_formatter(NullFormatter())
        ax.set_xlabel(AXES.get(cost, cost))
        ax.set_ylabel(f"{'Rank-1' if accuracy == 'rank1' else accuracy} (%)")
        ax.grid(alpha=0.3)
    handles, labels = axs[0, 0].get_legend_handles_labels()
    fig.legend(handles, labels, loc="lower center", ncol=min(len(labels), 8), fontsize=8, frameon=False)
    if title:
        fig.suptitle(title, fontsize=11)
    fig.tight_layout(rect=(0, 0.08, 1, 1))
    if annotate:  # after the layout, so that the labels are placed in the final axes (viz/labels.py)
        for ax, cost in zip(axs[0], axes):  # front models first: they get the free spots
            ok = np.isfinite(table[cost].to_numpy(float)) & np.isfinite(table[accuracy].to_numpy(float))
            rows = table[ok].assign(_front=fronts[cost][ok]).sort_values(["_front", accuracy], ascending=False)
            annotate_points(ax, rows[cost].to_numpy(float), rows[accuracy].to_numpy(float),
                            [str(r.get("label", k)) for k, r in rows.iterrows()])
    return fig


def budget_table(table, reference: str = "baseline", fractions: Sequence[float] = (0.1, 0.25, 0.5, 1.0),
                 axes: Sequence[str] = tuple(AXES), accuracy: str = "mAP"):
    """For each cost axis and budget (``fraction`` × the ``reference`` row's cost): the most accurate
    row that fits, how many fit, and its accuracy and cost relative to the reference. A ``DataFrame`` with
    one row per (axis, fraction); ``best`` is ``None`` where nothing fits."""
    import pandas as pd

    if reference not in table.index:
        raise KeyError(f"reference {reference!r} is not in the table; rows: {', '.join(map(str, table.index))}")
    ref = table.loc[reference]
    rows = []
    for cost in axes:
        for f in fractions:
            if not f > 0:
                raise ValueError(f"budget fractions must be > 0, got {f}")
            budget = f * float(ref[cost])
            fits = table[(table[cost] <= budget) & np.isfinite(table[accuracy])]
            row = {"axis": cost, "fraction": f, "budget": budget, "n_fit": len(fits), "best": None,
                   "label": None, "accuracy": math.nan, "cost": math.nan, "delta": math.nan, "cost_ratio": math.nan}
            if len(fits):
                best = fits[accuracy].astype(float).idxmax()
                b = table.loc[best]
                row.update(best=best, label=b.get("label", best), accuracy=float(b[accuracy]), cost=float(b[cost]),
                           delta=float(b[accuracy]) - float(ref[accuracy]),
                           cost_ratio=float(b[cost]) / float(ref[cost]))
            rows.append(row)
    return pd.DataFrame(rows)


def _fmt_cost(axis: str, v: float) -> str:
    unit = {"params_M": "M parameters", "MACs_M": "M multiply-adds", "latency_ms": "ms"}.get(axis, axis)
    return f"{v:.3g} {unit}"


def budget_guide(table, reference: str = "baseline", fractions: Sequence[float] = (0.1, 0.25, 0.5, 1.0),
                 axes: Sequence[str] = tuple(AXES), accuracy: str = "mAP") -> str:
    """"Which compression for which budget", as Markdown computed from ``table``.

    One section per cost axis: for each budget (a fraction of the reference model's cost) the best model
    that fits, its accuracy and how it compares with the reference; then the models that are on the
    Pareto front of every axis, and the best model overall.
    """
    bt = budget_table(table, reference, fractions, axes, accuracy)
    ref = table.loc[reference]
    acc_name = "Rank-1" if accuracy == "rank1" else accuracy
    ref_label = ref.get("label", reference)
    lines = [f"*Computed from the table: budgets are fractions of **{ref_label}**'s cost "
             f"({acc_name} {float(ref[accuracy]):.1f} %).*", ""]
    for cost in axes:
        lines.append(f"**Budget in {AXES.get(cost, cost)}** ({ref_label}: {_fmt_cost(cost, float(ref[cost]))})")
        for _, r in bt[bt["axis"] == cost].iterrows():
            head = f"- ≤ {r['fraction']:.0%} ({_fmt_cost(cost, r['budget'])}): "
            if int(r["n_fit"]) == 0:
                cheapest = table[cost].astype(float).idxmin()
                lines.append(head + f"nothing fits; the cheapest model is {table.loc[cheapest].get('label', cheapest)} "
                             f"({_fmt_cost(cost, float(table.loc[cheapest, cost]))}).")
                continue
            verdict = "matches or beats" if r["delta"] >= 0 else f"loses {-r['delta']:.1f} points against"
            lines.append(head + f"**{r['label']}** — {acc_name} {r['accuracy']:.1f} % at "
                         f"{r['cost_ratio']:.0%} of the cost; it {verdict} {ref_label} "
                         f"({int(r['n_fit'])} of {len(table)} models fit).")
        lines.append("")
    on_all = np.ones(len(table), dtype=bool)
    for cost in axes:
        on_all &= pareto_front(table, cost, accuracy)
    names = [str(table.iloc[i].get("label", table.index[i])) for i in np.flatnonzero(on_all)]
    lines.append(f"**On the Pareto front of every axis**: {', '.join(names) if names else 'no model'}.")
    best = table[accuracy].astype(float).idxmax()
    lines.append(f"**Most accurate overall**: {table.loc[best].get('label', best)} ({acc_name} "
                 f"{float(table.loc[best, accuracy]):.1f} %, " +
                 ", ".join(f"{float(table.loc[best, c]) / float(ref[c]):.0%} of the reference's "
                           f"{AXES.get(c, c).split(' (')[0]}" for c in axes) + ").")
    caveat = budget_caveat(table, [k for k in bt["best"].dropna().unique()] + [best], reference)
    if caveat:
        lines += ["", caveat]
    return "\n".join(lines)


def budget_caveat(table, keys: Sequence[str], reference: str = "baseline") -> str:
    """The equal-budget caveat for the guide's picks ``keys``: each pick's training images against the
    reference's (the table's ``images_seen`` column), and what that means for reading the guide. Empty when
    the table has no ``images_seen`` column. A pick that saw more images than the reference may owe its
    accuracy to the longer training rather than to its compression (issue of budgets, not of methods)."""
    if "images_seen" not in table.columns or reference not in table.index:
        return ""
    ref_n = float(table.loc[reference, "images_seen"])
    ref_label = table.loc[reference].get("label", reference)
    keys = list(dict.fromkeys(k for k in keys if k in table.index and k != reference))
    if not np.isfinite(ref_n):
        return (f"**Equal budgets?** {ref_label}'s training images are not recorded, so the picks' training "
                "budgets cannot be compared with it.")
    more, less, same, unknown = [], [], [], []
    for k in keys:
        n = float(table.loc[k, "images_seen"])
        lab = str(table.loc[k].get("label", k))
        if not np.isfinite(n):
            unknown.append(lab)
        elif n > ref_n * 1.001:
            more.append(f"{lab} ({n / ref_n:.1f}×)")
        elif n < ref_n * 0.999:
            less.append(f"{lab} ({n / ref_n:.2f}×)")
        else:
            same.append(lab)
    parts = [f"**Equal budgets?** These runs are each chapter's own, trained for different numbers of images "
             f"({ref_label}: {ref_n:,.0f})."]
    if more:
        parts.append(f"Picks that saw *more* training images than {ref_label}: {', '.join(more)} — part of their "
                     "accuracy may be the longer training, not the compression.")
    if less:
        parts.append(f"Picks that saw fewer: {', '.join(less)}.")
    if same:
        parts.append(f"The same number as {ref_label}: {', '.join(same)}.")
    if unknown:
        parts.append(f"Not recorded: {', '.join(unknown)}.")
    parts.append("Only a comparison at equal budgets (the claims ledger) separates the method from the training.")
    return " ".join(parts)


# ----------------------------------------------------------------------------------------------
# The budget slider (chapter 08): budget fraction × cost axis → the model the guide picks
# ----------------------------------------------------------------------------------------------
def _key_or_none(v):
    """A table key, or ``None`` where pandas turned "nothing fits" into NaN."""
    import pandas as pd

    return None if v is None or (not isinstance(v, str) and pd.isna(v)) else v


def budget_pick(table, fraction: float, axis: str = "MACs_M", reference: str = "baseline",
                accuracy: str = "mAP") -> dict:
    """What the guide picks at one slider position: the most accurate model whose ``axis`` cost is at most
    ``fraction`` × the ``reference``'s. A dict: ``best`` (key or ``None`` if nothing fits), ``label``,
    ``accuracy``, ``cost``, ``budget``, ``n_fit``, ``delta`` (points vs the reference), ``cost_ratio`` and
    ``text`` (one sentence, with the equal-budget caveat for the pick when the table has ``images_seen``)."""
    if axis not in table.columns:
        raise KeyError(f"cost axis {axis!r} is not a column of the table; axes: {', '.join(AXES)}")
    row = budget_table(table, reference, (float(fraction),), (axis,), accuracy).iloc[0].to_dict()
    row["best"] = _key_or_none(row["best"])
    acc_name = "Rank-1" if accuracy == "rank1" else accuracy
    ref_label = table.loc[reference].get("label", reference)
    head = f"Budget {fraction:.0%} of {ref_label}'s {AXES.get(axis, axis).split(' (')[0]} " \
           f"(≤ {_fmt_cost(axis, row['budget'])}): "
    if row["best"] is None:
        cheapest = table[axis].astype(float).idxmin()
        row["text"] = head + (f"nothing fits; the cheapest model is {table.loc[cheapest].get('label', cheapest)} "
                              f"({_fmt_cost(axis, float(table.loc[cheapest, axis]))}).")
        return row
    verdict = "matches or beats" if row["delta"] >= 0 else f"loses {-row['delta']:.1f} points against"
    text = (head + f"take **{row['label']}** — {acc_name} {row['accuracy']:.1f} % at {row['cost_ratio']:.0%} of the "
            f"cost; it {verdict} {ref_label} ({int(row['n_fit'])} of {len(table)} models fit).")
    if row["best"] != reference:
        caveat = budget_caveat(table, [row["best"]], reference)
        if caveat:
            text += " " + caveat
    row["text"] = text
    return row


def budget_range(table, fractions: Sequence[float] = (0.05, 0.1, 0.25, 0.5, 0.75, 1.0, 1.5),
                 axes: Sequence[str] = tuple(AXES), reference: str = "baseline", accuracy: str = "mAP"):
    """The slider's whole range as a table (the widget's static form): one row per budget fraction, one
    column per cost axis, each cell the model picked (``"—"`` where nothing fits) and its accuracy."""
    import pandas as pd

    bt = budget_table(table, reference, fractions, axes, accuracy)
    cells = {}
    for _, r in bt.iterrows():
        cells.setdefault(f"{r['fraction']:.0%}", {})[AXES.get(r["axis"], r["axis"])] = \
            "—" if _key_or_none(r["best"]) is None else f"{r['label']} ({r['accuracy']:.1f})"
    out = pd.DataFrame.from_dict(cells, orient="index")
    out.index.name = f"budget (× {table.loc[reference].get('label', reference)})"
    return out


def plot_budget_range(table, fractions: Sequence[float] = tuple(np.geomspace(0.02, 2.0, 41)),
                      axes: Sequence[str] = tuple(AXES), reference: str = "baseline", accuracy: str = "mAP",
                      mark: tuple[float, str] | None = None):
    """Small multiples, one panel per cost axis: the accuracy of the model the guide picks against the budget
    fraction (log scale; a step wherever the pick changes, labelled with the new pick). ``mark=(fraction,
    axis)`` draws the slider's position as a vertical line on that axis's panel."""
    import matplotlib.pyplot as plt
    from matplotlib.ticker import FuncFormatter, NullFormatter

    bt = budget_table(table, reference, fractions, axes, accuracy)
    fig, axs = plt.subplots(1, len(axes), figsize=(4.2 * len(axes), 3.4), squeeze=False, sharey=True)
    for ax, cost in zip(axs[0], axes):
        d = bt[bt["axis"] == cost]
        ax.step(d["fraction"], d["accuracy"], where="post", color="tab:blue")
        prev, n_picks = None, 0
        for _, r in d.iterrows():
            if _key_or_none(r["best"]) is not None and r["best"] != prev:
                ax.plot(r["fraction"], r["accuracy"], "o", color="tab:blue", ms=4)
                # successive picks' labels alternate below and above the step, so close picks do not collide
                ax.annotate(textwrap.fill(str(r["label"]), 18), (r["fraction"], r["accuracy"]), fontsize=6,
                            xytext=(3, -9 if n_picks % 2 == 0 else 5), textcoords="offset points",
                            va="top" if n_picks % 2 == 0 else "bottom")
                n_picks += 1
            prev = r["best"]
        ax.axvline(1.0, color="k", lw=0.8, ls=":", alpha=0.6)
        if mark is not None and mark[1] == cost:
            ax.axvline(mark[0], color="tab:red", lw=1.2)
        ax.set_xscale("log")
        # a log axis spanning about one decade labels its minor ticks too, and they collide: fixed, plain ticks
        ticks = [t for t in (0.02, 0.05, 0.1, 0.25, 0.5, 1.0, 2.0) if min(fractions) <= t <= max(fractions)]
        ax.set_xticks(ticks)
        ax.xaxis.set_major_formatter(FuncFormatter(lambda v, _: f"{v:g}"))
        ax.xaxis.set_minor_formatter(NullFormatter())
        ax.set_xlabel(f"budget: fraction of the reference's {AXES.get(cost, cost).split(' (')[0]}")
        ax.grid(alpha=0.3)
    axs[0, 0].set_ylabel(f"{'Rank-1' if accuracy == 'rank1' else accuracy} of the pick (%)")
    fig.suptitle(f"The model the guide picks, per budget (reference: {table.loc[reference].get('label', reference)})",
                 fontsize=10)
    fig.tight_layout()
    return fig


# ----------------------------------------------------------------------------------------------
# Where do the models look? The same images through uncompressed and compressed models
# ----------------------------------------------------------------------------------------------
def cam_target_layer(model, input_size) -> "torch.nn.Module":
    """The module whose output is the model's last spatial feature map (at least 2×2) on the way to the
    embedding — the layer Grad-CAM and response maps are taken at. Found by running one image and
    keeping the last module to *finish* with a 4-D output (so a whole backbone or stage beats its last
    ReLU); pooled stripes and 1×1 maps are skipped."""
    import torch

    from ..profile import run_once

    done: list = []
    root = model

    def hook(mod, args, out):
        if mod is not root and isinstance(out, torch.Tensor) and out.dim() == 4 and min(out.shape[2:]) >= 2:
            done.append(mod)

    run_once(model, input_size, hook)
    if not done:
        raise ValueError(f"{type(model).__name__} produces no spatial map of at least 2×2 at input {input_size}")
    return done[-1]


def _load(items, size):
    import torch

    from ..data import build_transforms, read_image

    tf = build_transforms(size[0], size[1], is_train=False)
    return torch.stack([tf(read_image(path)) for path, *_ in items])


def inspection_maps(models: dict, queries, matches, display_size=(128, 64), method: str = "gradcam",
                    keep_raw: bool = False):
    """Response maps of the ``queries`` and Grad-CAMs of their ``matches`` for every model.

    ``models``: ``{label: (model, (H, W))}``, each fed at its own input size; ``queries`` / ``matches``:
    data-set items ``(path, pid, camid)`` (a query and a gallery image of the same person). Returns
    ``(query_images, match_images, responses, cams)``: images ``[B, h, w, 3]`` at ``display_size`` and
    ``{label: [B, h, w]}`` maps in [0, 1]. The response (MGN Fig. 5) is ‖feature‖₂ at each position of the
    model's last map (:func:`cam_target_layer`); the CAM explains the *cosine similarity of the match's
    embedding to the query's* (Grad-CAM for embeddings, :mod:`reidbook.viz.gradcam`).
    ``keep_raw=True`` adds a fifth item: the responses *before* the per-map [0, 1] scaling (the raw ‖feature‖₂,
    upsampled), which is what energy shares must be measured on (:func:`attention_table`).
    """
    from collections import OrderedDict

    import torch
    import torch.nn.functional as F

    from .gradcam import embedding_cam
    from .response import response_map, to_display

    responses, cams, raw = OrderedDict(), OrderedDict(), OrderedDict()
    up = lambda m: F.interpolate(torch.as_tensor(m)[:, None].float(), size=tuple(display_size), mode="bilinear",  # noqa: E731
                                 align_corners=False)[:, 0].clamp(0, 1).numpy()
    for label, (model, size) in models.items():
        q, g = _load(queries, size), _load(matches, size)
        layer = cam_target_layer(model, size)
        grabbed = {}
        h = layer.register_forward_hook(lambda m, a, o, grabbed=grabbed: grabbed.__setitem__("map", o.detach()))
        model.eval()
        try:
            with torch.no_grad():
                ref = model(q)
        finally:
            h.remove()
        responses[label] = up(response_map(grabbed["map"]))
        raw[label] = F.interpolate(grabbed["map"].float().norm(p=2, dim=1)[:, None], size=tuple(display_size),
                                   mode="bilinear", align_corners=False)[:, 0].clamp_min(0).numpy()
        cams[label] = up(embedding_cam(model, g, ref, layer, method))
    qd = to_display(F.interpolate(_load(queries, display_size), size=tuple(display_size)))
    gd = to_display(F.interpolate(_load(matches, display_size), size=tuple(display_size)))
    return (qd, gd, responses, cams, raw) if keep_raw else (qd, gd, responses, cams)


def pick_pairs(dataset, n: int = 3, seed: int = 0) -> tuple[list, list]:
    """``n`` queries of distinct identities (drawn with ``seed``) and, for each, a gallery image of the
    same person from another camera (its true match): ``(queries, matches)`` as data-set items."""
    rng = np.random.default_rng(seed)
    by_pid: dict = {}
    for g in dataset.gallery:
        by_pid.setdefault(g[1], []).append(g)
    queries, matches, seen = [], [], set()
    for i in rng.permutation(len(dataset.query)):
        q = dataset.query[int(i)]
        cands = [g for g in by_pid.get(q[1], []) if g[2] != q[2]]
        if q[1] in seen or not cands:
            continue
        seen.add(q[1])
        queries.append(q)
        matches.append(cands[int(rng.integers(len(cands)))])
        if len(queries) == n:
            break
    if len(queries) < n:
        raise ValueError(f"only {len(queries)} queries have a match from another camera; asked for {n}")
    return queries, matches


def map_agreement(maps: dict, reference: str) -> dict:
    """Mean Pearson correlation, image by image, between each model's maps and the ``reference``
    model's (1 = the same places light up; 0 = unrelated). ``{label: float}``."""
    ref = np.asarray(maps[reference], dtype=float)
    out = {}
    for label, m in maps.items():
        m = np.asarray(m, dtype=float)
        cs = []
        for a, b in zip(ref, m):
            a, b = a.ravel() - a.mean(), b.ravel() - b.mean()
            d = np.linalg.norm(a) * np.linalg.norm(b)
            cs.append(float(a @ b / d) if d > 0 else 0.0)
        out[label] = float(np.mean(cs))
    return out


def attention_table(raw_responses: dict, cams: dict, query_parts, match_parts, reference: str):
    """Where each model looks, measured against SynthReID's masks (:mod:`reidbook.eval.attention`), beside how
    much its maps agree with the ``reference`` model's. One row per model (a ``DataFrame`` indexed by label):

    * ``on_person_response`` — share of the raw response map's energy on the person in the queries
      (``raw_responses``: :func:`inspection_maps` with ``keep_raw=True``), against ``chance_query`` (the
      person's share of the image: what a uniform map gives);
    * ``on_person_gradcam`` — the same for the Grad-CAMs on the matches (``cams``, min-max scaled per image
      as the Grad-CAM library returns them), against ``chance_match``; NaN for a model whose CAMs are empty
      (no region raises the similarity at that layer);
    * ``agreement_response`` / ``agreement_gradcam`` — :func:`map_agreement` with the reference's maps.

    ``query_parts`` / ``match_parts``: the part-label maps of the same images (``reidbook.data.load_part_map``).
    """
    import pandas as pd

    from ..eval.attention import area_share, energy_share

    def shares(maps, parts):
        out = []
        for m, p in zip(maps, parts):
            try:
                out.append(energy_share(m, p))
            except ValueError:  # an all-zero map has no energy to share out
                out.append(float("nan"))
        return float(np.nanmean(out)) if not all(np.isnan(out)) else float("nan")

    agree_r, agree_c = map_agreement(raw_responses, reference), map_agreement(cams, reference)
    rows = {}
    for label in raw_responses:
        rows[label] = {"on_person_response": shares(raw_responses[label], query_parts),
                       "chance_query": float(np.mean([area_share(p) for p in query_parts])),
                       "on_person_gradcam": shares(cams[label], match_parts),
                       "chance_match": float(np.mean([area_share(p) for p in match_parts])),
                       "agreement_response": agree_r[label], "agreement_gradcam": agree_c[label]}
    df = pd.DataFrame.from_dict(rows, orient="index")
    df.index.name = "model"
    return df


def plot_inspection(query_images, match_images, responses: dict, cams: dict, row_titles=None, alpha: float = 0.5):
    """Two rows per person: the query with each model's response map, then its gallery match with each
    model's Grad-CAM (similarity to the query). Columns: the image, then one model each."""
    import matplotlib.pyplot as plt

    from .response import overlay

    B, H, W = query_images.shape[:3]
    labels = list(responses)
    cols = 1 + len(labels)
    fig, axes = plt.subplots(2 * B, cols, figsize=(1.25 * cols, 2.3 * B * H / W * 0.55 + 0.6), squeeze=False)
    for b in range(B):
        for r, (img, maps, kind) in enumerate(((query_images, responses, "query · response"),
                                               (match_images, cams, "match · Grad-CAM"))):
            row = axes[2 * b + r]
            row[0].imshow(img[b])
            row[0].set_ylabel((f"{row_titles[b]}\n" if row_titles is not None else "") + kind, fontsize=7)
            for c, label in enumerate(labels, start=1):
                row[c].imshow(overlay(img[b], maps[label][b], alpha))
            for ax in row:
                ax.set_xticks([]), ax.set_yticks([])
    for c, name in enumerate(["image", *labels]):
        axes[0, c].set_title(textwrap.fill(str(name), 14), fontsize=7)
    fig.tight_layout()
    return fig
