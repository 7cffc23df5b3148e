"""Figures of DaRe (paper 004): per-stage accuracy (Fig. 3/4), fusion weights, cost per exit, the
anytime curve (Fig. 5), budgeted-stream curves (Fig. 6), per-stage rank lists (Fig. 7), easy and hard
queries (Fig. 8), the budget view behind chapter 07's slider (and its static form over the whole range),
and a Grad-CAM per exit measured against SynthReID's person masks (:func:`query_exit_attention`), with the
sentence that reports it generated from the numbers (:func:`describe_exit_attention`).

Pure functions: they take an :class:`reidbook.eval.anytime.AnytimeEval` (or tables made from one)
and return a matplotlib ``Figure``; nothing here trains. (The per-exit CAMs run the model forward and
backward on a few query images, as :mod:`reidbook.viz.gradcam` does.)
"""
from __future__ import annotations

from typing import Mapping, Sequence

import numpy as np

from ..eval import anytime as A

__all__ = ["plot_embedding_accuracy", "plot_fusion_weights", "plot_exit_costs", "plot_anytime",
           "plot_budgeted", "plot_exit_distribution", "plot_stage_ranklists", "plot_easy_hard",
           "budget_view_data", "budget_view", "budget_range_data", "budget_range_view", "exit_top1", "exit_attention",
           "query_exit_attention", "plot_exit_cams", "describe_exit_attention", "describe_deep_supervision",
           "describe_fusion_weights", "describe_exit_costs", "describe_anytime", "describe_routing",
           "describe_easy_hard", "PAPER_FUSION_WEIGHTS"]

# §5.2: learnt w_s of DaRe(R)+RE on Market-1501 (the paper's numbers).
PAPER_FUSION_WEIGHTS = (-0.54, -0.73, -0.77, -0.51)
_RULE_STYLE = {"distance": ("tab:blue", "-"), "margin": ("tab:green", "-"), "random": ("tab:gray", "--"),
               "random_eq3": ("tab:olive", ":")}
_RULE_LABEL = {"random": "random routing (§5.3.2: two adjacent exits)",
               "random_eq3": "random exits at Eq. (3)'s rates"}
_MATCH, _MISMATCH = "#1a9850", "#d73027"


def _plt():
    import matplotlib.pyplot as plt

    return plt


def plot_embedding_accuracy(tables: Mapping[str, "object"], title: str | None = None):
    """Fig. 3 / Fig. 4: Rank-1 error and mAP of every embedding (stages 1–4 and the fusion), one bar
    group per table (``AnytimeEval.per_embedding()``), e.g. ``{"with deep supervision": …, "without": …}``."""
    plt = _plt()
    fig, axes = plt.subplots(1, 2, figsize=(10, 3.4))
    names = list(next(iter(tables.values()))["embedding"])
    x = np.arange(len(names))
    width = 0.8 / max(1, len(tables))
    for i, (label, df) in enumerate(tables.items()):
        off = (i - (len(tables) - 1) / 2) * width
        err = 100 * (1 - np.asarray(df["rank1"]))
        mAP = 100 * np.asarray(df["mAP"])
        b = axes[0].bar(x + off, err, width, label=label)
        axes[0].bar_label(b, fmt="%.1f", fontsize=7)
        b = axes[1].bar(x + off, mAP, width, label=label)
        axes[1].bar_label(b, fmt="%.1f", fontsize=7)
    for ax, lab in zip(axes, ("Rank-1 error (%) — lower is better", "mAP (%) — higher is better")):
        ax.set_xticks(x, names)
        ax.set_ylabel(lab)
        ax.grid(axis="y", alpha=0.3)
    axes[0].legend(fontsize=8)
    if title:
        fig.suptitle(title)
    fig.tight_layout()
    return fig


def plot_fusion_weights(weights: Sequence[float], paper: Sequence[float] | None = PAPER_FUSION_WEIGHTS):
    """The learnt ``w_s`` of Eq. (1), as shares ``|w_s| / Σ|w|`` beside the paper's (§5.2; only the
    ratios matter: a common scale or sign does not change the ranking)."""
    plt = _plt()
    w = np.asarray(weights, dtype=float)
    fig, ax = plt.subplots(figsize=(5.5, 3.2))
    x = np.arange(len(w))
    share = np.abs(w) / np.abs(w).sum()
    b = ax.bar(x - 0.2 if paper is not None else x, share, 0.4, label="learnt here")
    ax.bar_label(b, labels=[f"{v:+.2f}" for v in w], fontsize=8)
    if paper is not None:
        p = np.asarray(paper, dtype=float)
        b = ax.bar(x + 0.2, np.abs(p) / np.abs(p).sum(), 0.4, label="paper (Market-1501 +RE)")
        ax.bar_label(b, labels=[f"{v:+.2f}" for v in p], fontsize=8)
    ax.set_xticks(x, [f"stage {i + 1}" for i in x])
    ax.set_ylabel("|w_s| / Σ|w|  (labels: w_s)")
    ax.legend(fontsize=8)
    ax.grid(axis="y", alpha=0.3)
    fig.tight_layout()
    return fig


def plot_exit_costs(names: Sequence[str], macs_full: Sequence[float], paper_macs_m: Sequence[float] | None,
                    macs_here: Sequence[float], latency_ms: Sequence[float], here_label: str = "this chapter's model"):
    """Left: cumulative multiply-adds per exit of the paper-size model at 256×128, measured, beside the
    paper code's table. Right: measured CPU latency against multiply-adds of the model we run (time
    follows multiply-adds)."""
    plt = _plt()
    fig, axes = plt.subplots(1, 2, figsize=(10.5, 3.4))
    x = np.arange(len(names))
    ax = axes[0]
    b = ax.bar(x - 0.2, np.asarray(macs_full) / 1e6, 0.4, label="measured (torchvision ResNet-50)")
    ax.bar_label(b, fmt="%.0f", fontsize=7)
    if paper_macs_m is not None:
        b = ax.bar(x + 0.2, paper_macs_m, 0.4, label="paper code's table")
        ax.bar_label(b, fmt="%.0f", fontsize=7)
    ax.set_xticks(x, names, fontsize=8)
    ax.set_ylabel("cumulative MACs (M), 256×128")
    ax.legend(fontsize=8)
    ax.grid(axis="y", alpha=0.3)
    ax = axes[1]
    m = np.asarray(macs_here) / 1e6
    t = np.asarray(latency_ms)
    ax.plot(m, t, "o", color="tab:red")
    for n, mi, ti in zip(names, m, t):
        ax.annotate(n, (mi, ti), fontsize=7, xytext=(3, -8), textcoords="offset points")
    if len(m) > 1:
        k, c = np.polyfit(m, t, 1)
        xs = np.linspace(0, m.max() * 1.05, 10)
        ax.plot(xs, k * xs + c, ":", color="gray", label=f"fit: {k:.3f} ms/M MACs + {c:.2f} ms")
        ax.legend(fontsize=8)
    ax.set_xlabel(f"cumulative MACs (M), {here_label}")
    ax.set_ylabel("CPU latency per image (ms)")
    ax.grid(alpha=0.3)
    fig.tight_layout()
    return fig


def plot_anytime(curves: Mapping[str, "object"], metric: str = "rank1", paper_note: bool = True):
    """Fig. 5: accuracy against a per-query budget (tables of :func:`reidbook.eval.anytime.anytime_curve`
    on one budget grid), one step curve per model."""
    plt = _plt()
    fig, ax = plt.subplots(figsize=(6.5, 3.8))
    for name, df in curves.items():
        ax.step(np.asarray(df["budget"]) / 1e6, 100 * np.asarray(df[metric]), where="post", label=name)
    ax.set_xlabel("budget per query (M multiply-adds)")
    ax.set_ylabel(f"{'Rank-1' if metric == 'rank1' else metric} (%)")
    ax.grid(alpha=0.3)
    ax.legend(fontsize=8)
    ax.set_title("Anytime re-ID: the most recent embedding when the budget runs out", fontsize=10)
    fig.tight_layout()
    return fig


def plot_budgeted(curve, ev: "A.AnytimeEval | None" = None, metric: str = "rank1", others: Mapping | None = None,
                  point: tuple[float, float] | None = None, ax=None):
    """Fig. 6: accuracy against the realised average cost of a budgeted stream, one line per routing
    (``budgeted_curve``'s table; ``random`` is the paper's baseline, whose expectation is the chord
    between adjacent single exits); dots: the single exits of ``ev``; ``others``: name → (costs, accuracies)
    of other models' exits; ``point``: a highlighted (cost, accuracy) (the slider's)."""
    plt = _plt()
    own = ax is None
    if own:
        fig, ax = plt.subplots(figsize=(6.5, 3.8))
    for rule, df in curve.groupby("rule", sort=False):
        colour, ls = _RULE_STYLE.get(rule, (None, "-"))
        ax.plot(df["cost"] / 1e6, 100 * df[metric], ls, marker=".", color=colour,
                label=_RULE_LABEL.get(rule, f"{rule} routing"))
    if ev is not None:
        acc = [r.rank(1) if metric == "rank1" else r.mAP for r in ev.results]
        ax.plot(ev.costs / 1e6, 100 * np.asarray(acc), "o", color="black", ms=6, label="single exits")
        for n, c, a in zip(ev.names, ev.costs, acc):
            ax.annotate(n, (c / 1e6, 100 * a), fontsize=7, xytext=(4, -10), textcoords="offset points")
    for name, (costs, accs) in (others or {}).items():
        ax.plot(np.asarray(costs) / 1e6, 100 * np.asarray(accs), "s", mfc="none", label=name)
    if point is not None:
        ax.plot([point[0] / 1e6], [100 * point[1]], "*", color="red", ms=14, label="this budget")
    ax.set_xlabel("average cost per query (M multiply-adds)")
    ax.set_ylabel(f"{'Rank-1' if metric == 'rank1' else metric} (%)")
    ax.grid(alpha=0.3)
    ax.legend(fontsize=7)
    if own:
        ax.set_title("Budgeted stream re-ID", fontsize=10)
        fig.tight_layout()
        return fig
    return ax.figure


def plot_exit_distribution(plan: "A.ExitPlan", realised: Sequence[float] | None = None,
                           names: Sequence[str] | None = None, ax=None):
    """Target exit distribution ``p_s`` (Eq. 3) and, if given, the fractions a stream realised."""
    plt = _plt()
    own = ax is None
    if own:
        fig, ax = plt.subplots(figsize=(5, 3.2))
    S = len(plan.p)
    x = np.arange(S)
    names = list(names) if names is not None else [f"exit {s + 1}" for s in range(S)]
    ax.bar(x - 0.2, plan.p, 0.4, label="target p_s" + ("" if np.isnan(plan.a) else " (Eq. 3)"))
    if realised is not None:
        ax.bar(x + 0.2, realised, 0.4, label="realised")
    ax.set_xticks(x, [n.replace(" (fusion)", "\n(fusion)") for n in names], fontsize=8)
    ax.set_ylim(0, 1.05)
    ax.set_ylabel("fraction of queries")
    a = "∞" if np.isinf(plan.a) else f"{plan.a:.3g}"
    a = "adjacent exits" if np.isnan(plan.a) else f"a = {a}"
    ax.set_title(f"exits at B = {plan.budget / 1e6:.1f} M MACs ({a})", fontsize=9)
    ax.legend(fontsize=7)
    if own:
        fig.tight_layout()
        return fig
    return ax.figure


def _image(path: str, size=(128, 64)):
    from PIL import Image

    with Image.open(path) as im:
        return np.asarray(im.convert("RGB").resize((size[1], size[0])))


def _frame(ax, colour: str, width: float = 3.0) -> None:
    ax.set_xticks([]), ax.set_yticks([])
    for s in ax.spines.values():
        s.set_visible(True)
        s.set_edgecolor(colour)
        s.set_linewidth(width)


def _strip_row(axes, ev: "A.AnytimeEval", query: int, exit_: int, topk: int, label: str) -> None:
    """One row: the query, then its top-k under the distances of exit ``exit_`` (1-based)."""
    from .ranklist import rank_list

    rl = rank_list(ev.distmats[exit_ - 1], ev.q_pids, ev.g_pids, ev.q_camids, ev.g_camids, query, topk)
    axes[0].imshow(_image(ev.query_items[query][0]))
    _frame(axes[0], "black", 2.0)
    axes[0].set_title(f"{label}\nexit {exit_}", fontsize=7)
    for k, ax in enumerate(axes[1:]):
        if k < len(rl["index"]):
            ax.imshow(_image(ev.gallery_items[int(rl["index"][k])][0]))
            _frame(ax, _MATCH if rl["match"][k] else _MISMATCH)
            ax.set_title(str(k + 1), fontsize=7)
        else:
            ax.axis("off")


def plot_stage_ranklists(ev: "A.AnytimeEval", queries: Sequence[int], topk: int = 5, image_size=(128, 64)):
    """Fig. 7: for each query, its top-k under every embedding (stages 1–4 and the fusion)."""
    from .ranklist import plot_ranklist

    if ev.query_items is None or ev.gallery_items is None:
        raise ValueError("rank lists need the data set items: build the AnytimeEval with AnytimeEval.from_model")
    if len(queries) == 0:
        # a short run can have no query that the fusion fixes (fusion_fixes returns []): say so, as
        # plot_easy_hard does, instead of failing on an empty stack
        fig, ax = _plt().subplots(figsize=(6, 1))
        ax.axis("off")
        ax.text(0.5, 0.5, "no such queries in this run: the fusion fixes no earlier embedding's rank-1 error",
                ha="center", va="center")
        return fig
    dm = ev.embedding_distmats if ev.embedding_distmats is not None else ev.distmats
    names = ev.embedding_names or ev.names
    rows, labels = [], []
    for q in queries:
        for e, n in enumerate(names):
            rows.append(dm[e, q])
            labels.append(n)
    stacked = np.stack(rows)
    items = [ev.query_items[q] for q in queries for _ in names]
    return plot_ranklist(stacked, items, ev.gallery_items, range(len(rows)), topk=topk, image_size=image_size,
                         row_labels=labels)


def plot_easy_hard(ev: "A.AnytimeEval", groups: Mapping[str, Sequence[int]], exits: Sequence[int], topk: int = 5):
    """Fig. 8: rows of easy queries (exited at stage 1) and hard ones (needed the last stage), each with
    its top-k under the exit it used (green = same identity)."""
    plt = _plt()
    rows = [(name, q) for name, qs in groups.items() for q in qs]
    if not rows:
        fig, ax = plt.subplots(figsize=(6, 1))
        ax.axis("off")
        ax.text(0.5, 0.5, "no such queries at this budget", ha="center", va="center")
        return fig
    fig, axes = plt.subplots(len(rows), topk + 1, figsize=(0.9 * (topk + 1), 1.75 * len(rows)), squeeze=False)
    for r, (name, q) in enumerate(rows):
        _strip_row(axes[r], ev, q, int(exits[q]), topk, name)
    fig.tight_layout()
    return fig


def _check_view_args(ev: "A.AnytimeEval", budget, rule: str, n_examples, topk: int = 1) -> None:
    """Clear errors for the budget view's arguments (what the slider would otherwise fail on deep inside)."""
    try:
        ok = bool(np.isfinite(float(budget)))
    except (TypeError, ValueError):
        ok = False
    if not ok:
        raise ValueError(f"budget must be a finite number of multiply-adds per query (between C_1 = "
                         f"{float(ev.costs[0]):.4g} and C_S = {float(ev.costs[-1]):.4g}), got {budget!r}")
    if rule not in A.ALL_ROUTINGS:
        raise ValueError(f"unknown routing rule {rule!r}; choose one of {', '.join(A.ALL_ROUTINGS)}")
    for name, value, low in (("n_examples", n_examples, 0), ("topk", topk, 1)):
        if isinstance(value, bool) or not isinstance(value, (int, np.integer)) or value < low:
            raise ValueError(f"{name} must be a whole number ≥ {low}, got {value!r}")


def budget_view_data(ev: "A.AnytimeEval", budget: float, rule: str = "margin", n_examples: int = 2,
                     seed: int = 0) -> dict:
    """What the budget slider shows for average budget ``budget``: the plan (Eq. 3), the stream's
    exits and realised cost/accuracy, and easy / hard example queries. The budget is clamped to
    ``[C_1, C_S]`` (the slider's range); a NaN or infinite one, an unknown rule or a negative
    ``n_examples`` is refused with a ValueError."""
    _check_view_args(ev, budget, rule, n_examples)
    b = float(np.clip(budget, ev.costs[0], ev.costs[-1]))
    res = A.budgeted_stream(ev, b, rule, seed)
    eh = A.easy_hard_queries(ev, res.exits, rule if rule != "random" else "margin", n_examples)
    return {"budget": b, "plan": res.plan, "stream": res, "realised": res.exit_fractions,
            "cost": res.realised_cost, "rank1": res.rank1, "mAP": res.mAP, "easy": eh["easy"], "hard": eh["hard"]}


def budget_view(ev: "A.AnytimeEval", budget: float, rule: str = "margin", curve=None, n_examples: int = 2,
                topk: int = 4, seed: int = 0):
    """The figure behind the budget slider: exit distribution (target and realised), the point on the
    accuracy–cost curve, and easy / hard example queries with their top-``topk``."""
    _check_view_args(ev, budget, rule, n_examples, topk)
    plt = _plt()
    d = budget_view_data(ev, budget, rule, n_examples, seed)
    pics = ev.query_items is not None and ev.gallery_items is not None
    n_strip = max(len(d["easy"]), len(d["hard"]), 1) if pics else 0
    fig = plt.figure(figsize=(10, 3.4 + 1.6 * n_strip), layout="constrained")
    gs = fig.add_gridspec(1 + n_strip, 2 * (topk + 1), height_ratios=[2.2] + [1] * n_strip)
    ax0 = fig.add_subplot(gs[0, : topk + 1])
    plot_exit_distribution(d["plan"], d["realised"], ev.names, ax=ax0)
    ax1 = fig.add_subplot(gs[0, topk + 1:])
    if curve is not None:
        plot_budgeted(curve[curve["rule"] == rule], ev, point=(d["cost"], d["rank1"]), ax=ax1)
    else:
        ax1.plot([d["cost"] / 1e6], [100 * d["rank1"]], "*", color="red", ms=14)
        ax1.set_xlabel("average cost (M MACs)")
        ax1.set_ylabel("Rank-1 (%)")
    ax1.set_title(f"{rule}: cost {d['cost'] / 1e6:.1f} M, Rank-1 {100 * d['rank1']:.1f} %, "
                  f"mAP {100 * d['mAP']:.1f} %", fontsize=9)
    # easy queries (left half) and hard ones (right half), each with its top-k at the exit it used
    for col, name in ((0, "easy"), (topk + 1, "hard")):
        for r in range(n_strip):
            axes = [fig.add_subplot(gs[1 + r, col + k]) for k in range(topk + 1)]
            if r < len(d[name]):
                q = d[name][r]
                _strip_row(axes, ev, q, int(d["stream"].exits[q]), topk, name)
            else:
                for ax in axes:
                    ax.axis("off")
                if r == 0:
                    axes[0].text(0, 0.5, f"no {name} query at this budget", fontsize=8, transform=axes[0].transAxes)
    return fig


def budget_range_data(ev: "A.AnytimeEval", rule: str = "margin", n: int = 5, seed: int = 0) -> list[dict]:
    """The budget slider's range in ``n`` positions, ``C_1`` … ``C_S`` evenly spaced
    (:func:`reidbook.eval.anytime.budget_grid`): for each, :func:`budget_view_data` without example queries
    (budget, plan, stream, realised exit fractions, cost, Rank-1, mAP)."""
    if isinstance(n, bool) or not isinstance(n, (int, np.integer)) or n < 2:
        raise ValueError(f"budget_range_data: n (budgets shown from C_1 to C_S) must be a whole number ≥ 2, got {n!r}")
    _check_view_args(ev, float(ev.costs[0]), rule, 0)
    return [budget_view_data(ev, float(b), rule, 0, seed) for b in A.budget_grid(ev.costs, int(n))]


def budget_range_view(ev: "A.AnytimeEval", curve=None, rule: str = "margin", n: int = 5, metric: str = "rank1",
                      seed: int = 0):
    """The budget slider's static form: the whole range at once instead of one position.

    Top: small multiples of the exit distribution (target ``p_s`` and the stream's realised fractions) at
    ``n`` budgets from ``C_1`` to ``C_S``; bottom: the accuracy–cost curves of ``curve`` (every rule in
    it, :func:`plot_budgeted`) with the ``n`` positions of ``rule``'s stream marked and numbered as the
    panels above. What a reader of the exported page sees where the live slider would be."""
    plt = _plt()
    data = budget_range_data(ev, rule, n, seed)
    fig = plt.figure(figsize=(max(10.0, 2.1 * len(data)), 6.6), layout="constrained")
    gs = fig.add_gridspec(2, len(data), height_ratios=[1, 1.6])
    label = "Rank-1" if metric == "rank1" else metric
    for i, d in enumerate(data):
        ax = fig.add_subplot(gs[0, i])
        plot_exit_distribution(d["plan"], d["realised"], [f"{s + 1}" for s in range(ev.num_exits)], ax=ax)
        ax.set_title(f"({i + 1}) B = {d['budget'] / 1e6:.1f} M\n{label} {100 * d[metric]:.1f} %", fontsize=8)
        if i:
            ax.set_ylabel("")
            ax.get_legend().remove()
        ax.set_xlabel("exit", fontsize=7)
    ax = fig.add_subplot(gs[1, :])
    if curve is not None:
        plot_budgeted(curve, ev, metric=metric, ax=ax)
    costs = [d["cost"] / 1e6 for d in data]
    accs = [100 * d[metric] for d in data]
    ax.plot(costs, accs, "*", color="red", ms=13, label=f"{rule}: the slider's positions (1)–({len(data)})")
    for i, (c, a) in enumerate(zip(costs, accs)):
        ax.annotate(f"({i + 1})", (c, a), fontsize=8, color="red", xytext=(0, 7), textcoords="offset points",
                    ha="center")
    ax.set_xlabel("average cost per query (M multiply-adds)")
    ax.set_ylabel(f"{label} (%)")
    ax.grid(alpha=0.3)
    ax.legend(fontsize=7)
    fig.suptitle(f"The budget slider's range ({rule} routing): {len(data)} budgets from C_1 = "
                 f"{ev.costs[0] / 1e6:.1f} M to C_S = {ev.costs[-1] / 1e6:.1f} M", fontsize=10)
    return fig


# ----------------------------------------------------------------------------------------------
# What each exit looks at: a Grad-CAM per exit, measured against the person masks
# ----------------------------------------------------------------------------------------------
def exit_top1(ev: "A.AnytimeEval", queries) -> np.ndarray:
    """``[S, n]``: the gallery index of each query's nearest gallery item under each exit's distances, with the
    query's junk items (same identity and camera) left out as the protocol does."""
    q = np.asarray(list(queries), dtype=np.int64)
    junk = A.junk_mask(ev.q_pids[q], ev.g_pids, ev.q_camids[q], ev.g_camids)
    return np.stack([np.where(junk, np.inf, d[q]).argmin(1) for d in ev.distmats])


def exit_attention(model, images, references, part_maps, method: str = "gradcam") -> dict:
    """A Grad-CAM per exit of ``model`` for ``images`` (:func:`reidbook.viz.gradcam.exit_cams`; ``references``:
    one per exit, embeddings or images) measured against ``part_maps`` (one part-label map per image) with
    :func:`reidbook.eval.attention.attention_summary`. Returns ``{"cams": {exit: [B, H, W]}, "table"}``; the
    table has one row per exit: ``exit, n, empty, on_person, chance, lift, pointing_box, pointing_hit,
    top_part, top_part_share`` and the energy share of every body part. An all-zero CAM (no region raises
    the similarity) cannot be measured: it is left out and counted in ``empty``."""
    import pandas as pd

    from ..data.masks import PART_NAMES
    from ..eval.attention import attention_summary
    from .gradcam import exit_cams

    if len(images) != len(part_maps) or len(part_maps) == 0:
        raise ValueError(f"exit_attention: need one part map per image (≥ 1), got {len(images)} images and "
                         f"{len(part_maps)} part maps")
    cams = exit_cams(model, images, references, method)
    rows = []
    for name, maps in cams.items():
        keep = [k for k in range(len(maps)) if float(maps[k].sum()) > 0]
        row = {"exit": name, "n": len(keep), "empty": len(maps) - len(keep)}
        if keep:
            m = attention_summary([maps[k] for k in keep], [part_maps[k] for k in keep])
            top = max(PART_NAMES[1:], key=lambda q: m["parts"][q])
            row.update({k: m[k] for k in ("on_person", "chance", "lift", "pointing_box", "pointing_hit")},
                       top_part=top, top_part_share=m["parts"][top], **{q: m["parts"][q] for q in PART_NAMES[1:]})
        rows.append(row)
    return {"cams": cams, "table": pd.DataFrame(rows)}


def query_exit_attention(model, ev: "A.AnytimeEval", dataset, height: int, width: int, n: int = 32,
                         method: str = "gradcam") -> dict:
    """:func:`exit_attention` on the first ``n`` queries of ``ev`` (the same queries at every exit), each exit's
    CAM explaining the cosine similarity to the query's top-1 gallery match *under that exit's distances*
    (:func:`exit_top1`) — what retrieval at that exit used. ``dataset`` must have SynthReID's masks.
    Returns ``{"queries", "images", "cams", "table"}``."""
    import torch

    from ..data import ImageDataset, build_transforms
    from ..data.masks import load_part_map

    if ev.query_items is None or ev.gallery_items is None:
        raise ValueError("per-exit CAMs need the data set items: build the AnytimeEval with AnytimeEval.from_model")
    if isinstance(n, bool) or not isinstance(n, (int, np.integer)) or n < 1:
        raise ValueError(f"n (queries measured) must be a whole number ≥ 1, got {n!r}")
    queries = list(range(min(int(n), len(ev.q_pids))))
    tf = build_transforms(height, width, is_train=False)
    qset, gset = ImageDataset([ev.query_items[q] for q in queries], tf), ImageDataset(list(ev.gallery_items), tf)
    images = torch.stack([qset[i][0] for i in range(len(queries))])
    refs = [torch.stack([gset[int(g)][0] for g in top]) for top in exit_top1(ev, queries)]
    parts = [load_part_map(dataset, ev.query_items[q]) for q in queries]
    out = exit_attention(model, images, refs, parts, method)
    return {"queries": queries, "images": images, **out}


def plot_exit_cams(images, cams, table=None, n_show: int = 4, alpha: float = 0.5):
    """The first ``n_show`` images, then one Grad-CAM per exit; column titles carry the measured on-person
    share against chance (``table`` of :func:`exit_attention`) over all the measured images."""
    from collections import OrderedDict

    from .response import plot_maps, to_display

    k = min(int(n_show), len(images))
    titles = {}
    if table is not None:
        for r in table.itertuples():
            titles[r.exit] = (f"{r.exit}\n{100 * r.on_person:.0f} % on person\n(chance {100 * r.chance:.0f} %)"
                              if r.n else f"{r.exit}\n(all maps empty)")
    maps = OrderedDict((titles.get(name, name), np.asarray(m[:k])) for name, m in cams.items())
    return plot_maps(to_display(images[:k]), maps, alpha=alpha)


def describe_exit_attention(table, lift_floor: float = 1.25, tol: float = 0.02) -> str:
    """The sentences that report :func:`exit_attention`'s table, generated from its numbers: per exit the
    on-person share against chance and the top body part; whether the share rises, falls or stays (within
    ``tol``) from the first exit to the last; which exits look at the person clearly more than a uniform
    map (``lift ≥ lift_floor``); and how many CAMs were empty."""
    rows = [r for r in table.itertuples() if r.n]
    if not rows:
        return "Every CAM was empty (no region raised the similarity to the top-1 match): nothing to measure."
    parts = "; ".join(f"{r.exit}: {100 * r.on_person:.0f} % on the person (chance {100 * r.chance:.0f} %, "
                      f"{r.lift:.2f}×), most on the {r.top_part} ({100 * r.top_part_share:.0f} % of its energy)"
                      for r in rows)
    first, last = rows[0], rows[-1]
    d = last.on_person - first.on_person
    trend = (f"from {first.exit} to {last.exit} the on-person share "
             + (f"rises by {100 * d:.0f} points" if d > tol else
                f"falls by {100 * -d:.0f} points" if d < -tol else f"stays within {100 * tol:.0f} points"))
    clear = [r.exit for r in rows if r.lift >= lift_floor]
    looks = (f"{', '.join(clear)} put{'s' if len(clear) == 1 else ''} at least {lift_floor:g}× chance on the person"
             if clear else f"no exit puts {lift_floor:g}× chance on the person: these maps do not single out the body")
    empty = sum(int(r.empty) for r in table.itertuples())
    tail = f" {empty} empty CAM{'s' if empty != 1 else ''} (no region raised the similarity) were left out." if empty \
        else ""
    return f"Grad-CAM per exit over {rows[0].n + rows[0].empty} queries — {parts}. Then {trend}; {looks}.{tail}"


# ----------------------------------------------------------------------------------------------
# Chapter 07's sentences, generated from its numbers (nothing typed in that the run computes)
# ----------------------------------------------------------------------------------------------
def _pts(x: float) -> str:
    return f"{100 * x:.1f}"


def describe_deep_supervision(with_ds, without_ds, metric: str = "mAP") -> str:
    """Fig. 3/4 in words: two ``AnytimeEval.per_embedding()`` tables (with deep supervision, fusion loss only).
    Says how stage 1 and the fusion move without the per-stage losses, whether stage 3 beats stage 4 and
    whether the fusion beats the best single stage — each as this run has it."""
    a, b = with_ds.set_index("embedding")[metric], without_ds.set_index("embedding")[metric]
    names = list(a.index)
    first, fusion, stages = names[0], names[-1], names[:-1]
    best = max(stages, key=lambda n: a[n])
    d1, df = a[first] - b[first], a[fusion] - b[fusion]
    def word(d: float) -> str:
        if abs(d) <= 0.005:
            return f"about the same: {abs(100 * d):.1f} points apart"
        return f"{'better' if d > 0 else 'worse'} by {abs(100 * d):.1f} points"

    out = [f"With deep supervision {first} reaches {_pts(a[first])} % {metric} against {_pts(b[first])} % with the "
           f"fusion loss only ({word(d1)}), and the fusion {_pts(a[fusion])} % against {_pts(b[fusion])} % "
           f"({word(df)})."]
    beats = a[fusion] >= a[best]
    fusion_vs_best = (f"the fusion {'is at least as good as' if beats else 'is below'} the best single stage, {best} "
                      f"({_pts(a[fusion])} vs {_pts(a[best])} %).")
    if len(stages) >= 4:
        s3, s4 = stages[2], stages[3]
        out.append(f"{s3.capitalize()} {'beats' if a[s3] > a[s4] else 'does not beat'} {s4} ({_pts(a[s3])} vs "
                   f"{_pts(a[s4])} %); {fusion_vs_best}")
    else:
        out.append(fusion_vs_best[0].upper() + fusion_vs_best[1:])
    return " ".join(out)


def describe_fusion_weights(weights, per_embedding, metric: str = "mAP") -> str:
    """Whether the stage with the largest learnt ``|w_s|`` (Eq. 1) is the most accurate single stage, as in the
    paper's weights (§5.2)."""
    w = np.abs(np.asarray(weights, dtype=float))
    acc = per_embedding.set_index("embedding")[metric]
    stages = list(acc.index)[: len(w)]
    big, best = stages[int(w.argmax())], max(stages, key=lambda n: acc[n])
    share = w / w.sum()
    return (f"The largest |w_s| here is {big}'s ({100 * share.max():.0f} % of Σ|w|); the most accurate single stage is "
            f"{best} ({_pts(acc[best])} % {metric})" + (": the fusion leans on it, as in the paper." if big == best else
                                                         ": unlike the paper's, the weights do not follow accuracy."))


def describe_exit_costs(costs_full, paper_macs_m, macs_here, latency_ms) -> str:
    """Our measured multiply-adds against the paper code's table (ratio range per exit) and how well a straight
    line in multiply-adds explains the measured latency (R² of the least-squares fit)."""
    ratio = np.asarray(costs_full, dtype=float) / 1e6 / np.asarray(paper_macs_m, dtype=float) - 1
    m, t = np.asarray(macs_here, dtype=float) / 1e6, np.asarray(latency_ms, dtype=float)
    k, c = np.polyfit(m, t, 1)
    resid = t - (k * m + c)
    r2 = 1 - float(resid @ resid) / max(float(((t - t.mean()) ** 2).sum()), 1e-300)
    return (f"Our torchvision-style ResNet-50 measures between {100 * ratio.min():+.1f} % and "
            f"{100 * ratio.max():+.1f} % of the paper code's multiply-adds per exit (from "
            f"{float(costs_full[0]) / 1e6:.0f} to {float(costs_full[-1]) / 1e6:.0f} M). Latency against "
            f"multiply-adds: {k:.3f} ms per M plus {c:.2f} ms, "
            f"R² = {r2:.2f}" + (" — time follows multiply-adds here." if r2 >= 0.9 else
                                " — a weak fit on this (busy?) machine: time does not simply follow multiply-adds "
                                "here."))


def _ranges(budgets: np.ndarray, mask: np.ndarray) -> list[tuple[float, float]]:
    out, start = [], None
    for i, m in enumerate(mask):
        if m and start is None:
            start = i
        if start is not None and (not m or i == len(mask) - 1):
            end = i if m else i - 1
            out.append((float(budgets[start]), float(budgets[end])))
            start = None
    return out


def describe_anytime(ev: "A.AnytimeEval", ev_other: "A.AnytimeEval", dare_curve, other_curve,
                     other: str = "the sequential ensemble", metric: str = "rank1") -> str:
    """Fig. 5 in words: what DaRe's second exit costs against the other model's, at how many budgets of the two
    curves (one grid) each model answers better, where, and which of the two full models is more accurate."""
    b = np.asarray(dare_curve["budget"], dtype=float)
    d, o = np.asarray(dare_curve[metric], dtype=float), np.asarray(other_curve[metric], dtype=float)
    ahead, behind = o > d, d > o
    where = ", ".join(f"{lo / 1e6:.0f}–{hi / 1e6:.0f} M" for lo, hi in _ranges(b, ahead)) or "nowhere"
    name = "Rank-1" if metric == "rank1" else metric
    full_d = ev.results[-1].rank(1) if metric == "rank1" else ev.results[-1].mAP
    full_o = ev_other.results[-1].rank(1) if metric == "rank1" else ev_other.results[-1].mAP
    out = []
    if len(ev.costs) > 1 and len(ev_other.costs) > 1:
        out.append(f"DaRe's second exit costs {ev.costs[1] / 1e6:.1f} M multiply-adds, {other}'s "
                   f"{ev_other.costs[1] / 1e6:.1f} M ({ev_other.costs[1] / ev.costs[1]:.1f}× as much).")
    out.append(f"Over {len(b)} budgets, {other} answers better at {int(ahead.sum())} ({where}) and DaRe at "
               f"{int(behind.sum())}; with every exit affordable, DaRe's {name} is {_pts(full_d)} % and {other}'s "
               f"{_pts(full_o)} %.")
    return " ".join(out)


def describe_routing(ev: "A.AnytimeEval", curve, metric: str = "rank1") -> str:
    """Fig. 6 in words: whether random routing's curve is the straight line between the single exits (largest
    deviation), and, for each confidence rule, at how many budgets between ``C_1`` and ``C_S`` it lies above
    or below random routing (:func:`reidbook.eval.anytime.routing_gaps`), and margin against distance."""
    name = "Rank-1" if metric == "rank1" else metric
    dev = A.chord_deviation(ev, curve, metric)
    out = []
    if np.isfinite(dev):
        out.append("Random routing's points lie on the straight lines between the single exits (largest deviation "
                   f"{100 * dev:.2f} points)." if dev < 1e-6 else
                   f"Random routing's points are off the straight lines by up to {100 * dev:.2f} points "
                   "(simulated coins).")
        gaps = A.routing_gaps(curve, metric)
        for r in gaps.itertuples():
            out.append(f"{r.rule.capitalize()} routing is above random at {r.above} of {r.budgets} budgets between C_1 "
                       f"and C_S and below at {r.below} (mean {100 * r.mean_gap:+.1f} {name} points).")
    rules = set(curve["rule"])
    if {"margin", "distance"} <= rules:
        g = A.routing_gaps(curve, metric, against="distance").set_index("rule")
        if "margin" in g.index:
            r = g.loc["margin"]
            out.append(f"Margin against distance: above at {int(r.above)}, below at {int(r.below)} of "
                       f"{int(r.budgets)} budgets (mean {100 * r.mean_gap:+.1f} points).")
    return " ".join(out)


def describe_easy_hard(exit_by_kind) -> str:
    """Whether the routing sent SynthReID's *easy* identities' queries out earlier than its *hard* ones: the
    share of each kind that left at the first exit and at the last (a crosstab, rows = kinds, normalised)."""
    if not hasattr(exit_by_kind, "loc"):
        return str(exit_by_kind)
    t = exit_by_kind
    first, last = t.columns[0], t.columns[-1]
    parts = [f"{100 * t.loc[k, first]:.0f} % of the {k} identities' queries left at {first} and "
             f"{100 * t.loc[k, last]:.0f} % needed {last}" for k in t.index]
    verdict = ""
    if {"easy", "hard"} <= set(t.index):
        earlier = t.loc["easy", first] > t.loc["hard", first]
        verdict = (" The routing does send the easy ones out earlier." if earlier else
                   " The routing does not send the easy ones out earlier than the hard ones.")
    return "; ".join(parts) + "." + verdict
