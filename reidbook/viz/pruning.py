"""Figures for channel pruning (paper 003, chapter 05). Pure functions: data in, figure/table out.

* :func:`score_distributions` / :func:`score_distributions_grid` — each criterion's channel scores, layer by layer;
* :func:`rank_agreement` / :func:`plot_agreement` / :func:`agreement_findings` — how much two criteria agree on
  *which* channels matter (Spearman rank correlation per layer, averaged) as a heat map and as sentences
  (:func:`describe_fpgm`: FPGM against the norms, generated from the matrix);
* :func:`plot_one_shot` — one-shot pruning's mAP against multiply-adds, with and without fine-tuning;
* :func:`plot_widths` — per-layer widths before/after pruning;
* :func:`plot_sensitivity` — Li et al.'s one-layer-at-a-time sensitivity scan;
* :func:`plot_macs_vs_latency` — why 2× fewer multiply-adds is not 2× faster;
* :func:`plot_pruning` — the pruning slider's figure (its numbers: :func:`reidbook.prune.measure.pruning_numbers`);
* :func:`plot_tradeoff_grid` — the trade-off grid (:mod:`reidbook.prune.grid`) as small multiples: mAP against
  multiply-adds per criterion, after the cut and after fine-tuning (the slider's static form);

Chapter 06 (strategies, scenarios, PCB):

* :func:`plot_tradeoff` — the survey's Fig. 3: accuracy vs multiply-adds and vs parameters, networks and
  pruned models side by side (top left is best);
* :func:`plot_reconstruction` — layer-wise pruning's reconstruction error per unit, plain vs least squares;
* :func:`plot_strategy_curves` / :func:`plot_strategy_internals` — what happens during a strategy (PSFP's rate,
  Auto-Balanced's weak share);
* :func:`plot_scenarios` — the design scenarios' accuracy per method (Tables 6–7).
"""
from __future__ import annotations

import numpy as np
import torch

__all__ = ["short_name", "score_distributions", "score_distributions_grid", "rank_agreement", "plot_agreement",
           "agreement_findings", "describe_fpgm", "plot_one_shot", "plot_strategy_internals", "plot_widths",
           "plot_sensitivity", "plot_macs_vs_latency", "plot_pruning", "plot_tradeoff_grid",
           "plot_tradeoff", "plot_reconstruction",
           "plot_strategy_curves", "plot_scenarios"]


def short_name(unit: str) -> str:
    """``backbone.layer3.4.conv2`` → ``l3.4.c2`` (axis labels)."""
    s = unit.replace("residual:", "res:").replace("backbone.", "")
    return s.replace("layer", "l").replace("conv", "c")


def score_distributions(scores: dict[str, torch.Tensor], title: str = "", normalise: bool = True, ax=None):
    """Box plot of every unit's channel scores (divided by the layer's maximum if ``normalise``).

    Look for: layers whose scores are all alike (a criterion cannot tell channels apart there) and
    layers with a long low tail (many channels the criterion considers expendable).
    """
    import matplotlib.pyplot as plt

    names = list(scores)
    vals = []
    for n in names:
        v = scores[n].double().cpu().numpy()
        if normalise:
            v = v / max(float(np.abs(v).max()), 1e-300)
        vals.append(v)
    fig = None
    if ax is None:
        fig, ax = plt.subplots(figsize=(max(6, 0.28 * len(names)), 3.2))
    ax.boxplot(vals, showfliers=True, flierprops={"markersize": 2})
    ax.set_xticks(range(1, len(names) + 1), [short_name(n) for n in names], rotation=90, fontsize=7)
    ax.set_ylabel("score / layer max" if normalise else "score")
    ax.set_title(title)
    if fig is not None:
        fig.tight_layout()
    return fig if fig is not None else ax.figure


def _ranks(x: np.ndarray) -> np.ndarray:
    from scipy.stats import rankdata

    return rankdata(x)


def rank_agreement(scores_by_method: dict[str, dict[str, torch.Tensor]]):
    """Mean over layers of the Spearman rank correlation between every pair of criteria → ``DataFrame``.

    1 = the two criteria order a layer's channels identically; 0 = unrelated orders. Layers where a
    criterion's scores are constant contribute 0 (no order at all).
    """
    import pandas as pd

    methods = list(scores_by_method)
    units = list(next(iter(scores_by_method.values())))
    mat = np.zeros((len(methods), len(methods)))
    for u in units:
        ranks = []
        for m in methods:
            r = _ranks(scores_by_method[m][u].double().cpu().numpy())
            r = r - r.mean()
            ranks.append(r / max(np.linalg.norm(r), 1e-300))
        r = np.stack(ranks)
        mat += r @ r.T
    mat /= len(units)
    np.fill_diagonal(mat, 1.0)
    return pd.DataFrame(mat, index=methods, columns=methods)


def plot_agreement(matrix, title: str = "criteria agreement (mean Spearman ρ over layers)",
                   aliases: dict[str, list[str]] | None = None):
    """Heat map of :func:`rank_agreement`. Look for blocks of criteria that agree (e.g. the norms).

    ``aliases`` maps a criterion of the matrix to others whose scores equal it **by construction** (e.g.
    ``{"l1": ["auto_balanced", "play_and_prune"]}``, from the scorer registry's ``same_as``): they are named
    in its label ("= …, identical by construction") instead of appearing as rows whose ρ = 1 would look
    like a finding."""
    import matplotlib.pyplot as plt

    n = len(matrix)
    aliases = aliases or {}
    names = [f"{m} (= {', '.join(aliases[m])})" if aliases.get(m) else str(m) for m in matrix.index]
    fig, ax = plt.subplots(figsize=(1.0 + 0.55 * n + (2.0 if aliases else 0.0), 0.8 + 0.5 * n))
    im = ax.imshow(matrix.values, vmin=-1, vmax=1, cmap="RdBu_r")
    ax.set_xticks(range(n), matrix.columns, rotation=60, ha="right")
    ax.set_yticks(range(n), names)
    for i in range(n):
        for j in range(n):
            ax.text(j, i, f"{matrix.values[i, j]:.2f}", ha="center", va="center", fontsize=7,
                    color="white" if abs(matrix.values[i, j]) > 0.6 else "black")
    fig.colorbar(im, ax=ax, shrink=0.8)
    if aliases:
        title += "\n(= …: scores identical by construction, not shown as rows)"
    ax.set_title(title, fontsize=9)
    fig.tight_layout()
    return fig


def agreement_findings(matrix, top: int = 3) -> list[str]:
    """Sentences generated from a :func:`rank_agreement` matrix (so a chapter states only what it measured):
    the ``top`` most and least agreeing pairs, and the mean ρ within the weight criteria, within the data
    criteria and between the two groups (groups from the scorer registry's ``needs``)."""
    from ..prune.scoring import SCORERS

    names = list(matrix.index)
    pairs = sorted(((float(matrix.loc[a, b]), a, b) for i, a in enumerate(names) for b in names[i + 1:]), reverse=True)
    out = []
    if pairs:
        out.append("most alike: " + "; ".join(f"{a} ~ {b} (ρ = {r:.2f})" for r, a, b in pairs[:top]))
        out.append("least alike: " + "; ".join(f"{a} ~ {b} (ρ = {r:.2f})" for r, a, b in pairs[::-1][:top]))
    kind = {m: ("weights" if SCORERS[m].needs == "weights" else "data") if m in SCORERS else None for m in names}

    def mean(sel):
        vals = [r for r, a, b in pairs if sel(kind[a], kind[b])]
        return (sum(vals) / len(vals), len(vals)) if vals else (None, 0)

    for label, sel in (("within the weight criteria", lambda x, y: x == y == "weights"),
                       ("within the data criteria", lambda x, y: x == y == "data"),
                       ("between weight and data criteria", lambda x, y: {x, y} == {"weights", "data"})):
        m, n = mean(sel)
        if m is not None:
            out.append(f"mean ρ {label}: {m:.2f} ({n} pair{'s' if n > 1 else ''})")
    return out


def describe_fpgm(matrix, norms=("l1", "l2")) -> str:
    """A sentence generated from a :func:`rank_agreement` matrix: how closely FPGM (which ranks by redundancy, the
    distance to the other filters, not by size) follows the norm criteria on this model. Thresholds on the mean ρ
    with the norms: ≥ 0.7 "much like the norms", ≥ 0.3 "only partly", else "largely independently"."""
    names = list(matrix.index)
    if "fpgm" not in names:
        raise KeyError(f"the agreement matrix has no 'fpgm' row; it has {names}")
    here = [n for n in norms if n in names and n != "fpgm"]
    if not here:
        raise KeyError(f"the agreement matrix has none of the norm criteria {list(norms)}; it has {names}")
    rhos = {n: float(matrix.loc["fpgm", n]) for n in here}
    mean = sum(rhos.values()) / len(rhos)
    how = ("much like the norms: on this model the filters far from the others are mostly the large ones"
           if mean >= 0.7 else
           "only partly like the norms: redundancy and size pick different channels in many layers" if mean >= 0.3
           else "largely independently of the norms: redundancy and size pick different channels")
    with_ = " and ".join(f"{n.upper()} at ρ = {r:.2f}" for n, r in rhos.items())
    return f"FPGM agrees with {with_}: it ranks channels {how}."


def score_distributions_grid(scores_by_method: dict, methods, normalise: bool = True):
    """:func:`score_distributions` of several criteria stacked on shared layer axes (one panel a criterion)."""
    import matplotlib.pyplot as plt

    methods = list(methods)
    fig, axes = plt.subplots(len(methods), 1, figsize=(11, 2.7 * len(methods)), sharex=True, squeeze=False)
    for ax, method in zip(axes[:, 0], methods):
        score_distributions(scores_by_method[method], method, normalise=normalise, ax=ax)
    fig.tight_layout()
    return fig


def plot_one_shot(df, unpruned: float, metric: str = "mAP"):
    """One-shot pruning: ``df[metric]`` (no fine-tuning, circles) and ``df[metric + "_finetuned"]`` (squares) against
    ``df["MACs_ratio"]``, one line per ``df["method"]``; the unpruned value as a horizontal line."""
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(6, 3.6))
    ft = f"{metric}_finetuned"
    for method, g in df.groupby("method", sort=False):
        ax.plot(g["MACs_ratio"], g[metric], "o-", label=f"{method} (no fine-tuning)")
        if ft in g and g[ft].notna().any():
            ax.plot(g["MACs_ratio"], g[ft], "s", ms=8, label=f"{method} + short fine-tuning")
    ax.axhline(unpruned, color="k", lw=0.8, label="unpruned")
    ax.set_xlabel("multiply-adds kept (fraction)")
    ax.set_ylabel(f"{metric} (%)")
    ax.legend(fontsize=7)
    fig.tight_layout()
    return fig


def plot_widths(widths_before: dict[str, int], widths_after: dict[str, int], title: str = "", ax=None):
    """Bars of every unit's width before (grey) and after (colour) pruning."""
    import matplotlib.pyplot as plt

    names = list(widths_before)
    x = np.arange(len(names))
    fig = None
    if ax is None:
        fig, ax = plt.subplots(figsize=(max(6, 0.28 * len(names)), 3.0))
    ax.bar(x, [widths_before[n] for n in names], color="0.85", label="before")
    ax.bar(x, [widths_after[n] for n in names], color="C0", label="after")
    ax.set_xticks(x, [short_name(n) for n in names], rotation=90, fontsize=7)
    ax.set_ylabel("channels")
    ax.legend(fontsize=8)
    ax.set_title(title)
    if fig is not None:
        fig.tight_layout()
    return fig if fig is not None else ax.figure


def plot_sensitivity(df, metric_name: str = "mAP (%)"):
    """Li et al.'s sensitivity curves: metric vs fraction of one layer's channels removed, one line per layer."""
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(6, 3.6))
    for unit, g in df.groupby("unit", sort=False):
        g = g.sort_values("ratio")
        ax.plot(g["ratio"], g["metric"], marker="o", ms=3, label=short_name(unit))
    ax.set_xlabel("fraction of the layer's channels removed (alone, no fine-tuning)")
    ax.set_ylabel(metric_name)
    ax.legend(fontsize=7, ncol=2)
    fig.tight_layout()
    return fig


def plot_macs_vs_latency(df, batch_cols=None):
    """Measured latency ratio vs multiply-add ratio (both pruned/original); the diagonal is "latency ∝ MACs".

    ``df`` has columns ``macs_ratio`` and one ``latency_ratio_b<B>`` per batch size. Points above the
    diagonal: less speed-up than the MAC count promises.
    """
    import matplotlib.pyplot as plt

    cols = batch_cols or [c for c in df.columns if c.startswith("latency_ratio")]
    fig, ax = plt.subplots(figsize=(4.4, 4))
    ax.plot([0, 1], [0, 1], "k--", lw=1, label="latency ∝ MACs")
    for c in cols:
        ax.plot(df["macs_ratio"], df[c], "o-", label=c.replace("latency_ratio_", "batch "))
    ax.set_xlim(0, 1.05)
    ax.set_ylim(0, 1.3)
    ax.set_xlabel("multiply-adds (pruned / original)")
    ax.set_ylabel("measured latency (pruned / original)")
    ax.legend(fontsize=8)
    fig.tight_layout()
    return fig


def plot_pruning(numbers: dict):
    """The pruning slider's figure from :func:`reidbook.prune.measure.pruning_numbers`: per-unit widths before
    (grey) and after, and parameters, multiply-adds (and latency, when measured) as fractions of the unpruned
    model; the title carries the fine-tuned mAP when ``numbers`` has one. When ``numbers`` has the trade-off
    grid's ``curve``, a third panel draws it (mAP against MACs kept, after the cut and after fine-tuning) with
    the slider's position as a vertical line at its MACs."""
    import matplotlib.pyplot as plt

    latency = "latency_ratio" in numbers
    curve = numbers.get("curve")
    if curve:
        fig, (a1, a2, a3) = plt.subplots(1, 3, figsize=(14, 3.4), gridspec_kw={"width_ratios": [3, 1, 1.4]})
    else:
        fig, (a1, a2) = plt.subplots(1, 2, figsize=(11, 3.4), gridspec_kw={"width_ratios": [3, 1]})
    plot_widths(numbers["widths_before"], numbers["widths"],
                f"{numbers['criterion']}, {numbers['ratio']:.0%} of channels removed", ax=a1)
    labels = ["params", "MACs"] + (["latency"] if latency else [])
    vals = [numbers["params_ratio"], numbers["macs_ratio"]] + ([numbers["latency_ratio"]] if latency else [])
    a2.barh(labels, vals, color=["C1", "C2", "C3"][:len(vals)])
    a2.axvline(1.0, color="k", lw=0.8)
    for i, v in enumerate(vals):
        a2.text(v, i, f" {v:.2f}", va="center", fontsize=8)
    a2.set_xlim(0, 1.35)
    a2.set_xlabel("pruned / original")
    if "mAP" in numbers:
        a2.set_title(f"mAP after fine-tuning: {numbers['mAP']:.1f}", fontsize=9)
    if curve:
        title = numbers["criterion"]
        if "mAP_cut" in numbers:
            title += (f" at {numbers['grid_ratio']:g}: mAP {numbers['mAP_cut']:.1f} cut → "
                      f"{numbers['mAP']:.1f} fine-tuned")
        _tradeoff_panel(a3, curve, title)
        a3.axvline(numbers["macs_ratio"], color="0.3", lw=1, ls=":", label="this ratio")
        a3.legend(fontsize=6, loc="lower right")
    fig.tight_layout()
    return fig


def _tradeoff_panel(ax, curve: list[dict], title: str, metric: str = "mAP", ylim=None) -> None:
    """One criterion's trade-off: ``metric`` after the cut (circles) and after fine-tuning (squares) against the
    MACs kept; the unpruned model is the point at 1.0 (a star)."""
    pts = sorted(curve, key=lambda p: -p["macs_ratio"])
    x = [p["macs_ratio"] for p in pts]
    ax.plot(x, [p[metric] for p in pts], "o--", color="C0", ms=4, label="after the cut")
    ax.plot(x, [p[f"{metric}_finetuned"] for p in pts], "s-", color="C3", ms=4, label="after fine-tuning")
    top = pts[0]
    if top["ratio"] == 0:
        ax.plot([top["macs_ratio"]], [top[metric]], "k*", ms=9, label="unpruned")
    for p in pts[1:]:
        ax.annotate(f"{p['ratio']:g}", (p["macs_ratio"], p[f"{metric}_finetuned"]), textcoords="offset points",
                    xytext=(0, 4), ha="center", fontsize=6, color="C3")
    ax.set_xlim(1.05, 0)  # cheaper to the right
    if ylim is not None:
        ax.set_ylim(*ylim)
    ax.set_xlabel("multiply-adds kept")
    ax.set_ylabel(f"{metric} (%)")
    ax.set_title(title, fontsize=9)
    ax.grid(alpha=0.3)


def plot_tradeoff_grid(grid, metric: str = "mAP"):
    """Small multiples of a :class:`reidbook.prune.grid.TradeoffGrid`: one panel per criterion, ``metric``
    against the multiply-adds kept across the grid's ratios, after the cut and after the short fine-tuning
    (the pruning slider's static form). Shared axes, so the panels compare at a glance."""
    import matplotlib.pyplot as plt

    crits = grid.criteria
    if not crits:
        raise ValueError("the trade-off grid has no rows to draw")
    vals = [grid.unpruned[metric]] + [r[k] for r in grid.rows for k in (metric, f"{metric}_finetuned")]
    lo, hi = min(vals), max(vals)
    pad = 0.08 * max(hi - lo, 1.0)
    fig, axes = plt.subplots(1, len(crits), figsize=(0.4 + 3.0 * len(crits), 3.0), sharey=True, squeeze=False)
    for ax, c in zip(axes[0], crits):
        _tradeoff_panel(ax, grid.curve(c), c, metric, ylim=(max(0.0, lo - pad), hi + pad))
    for ax in axes[0][1:]:
        ax.set_ylabel("")
    axes[0][0].legend(fontsize=7, loc="lower left")
    ratios = ", ".join(f"{r:g}" for r in grid.ratios)
    fig.suptitle(f"{metric} against multiply-adds kept, pruning ratios {ratios} (labels: ratio)", fontsize=9)
    fig.tight_layout()
    return fig


# ---------------------------------------------------------------------------------------------
# Chapter 06: strategies, scenarios, PCB
# ---------------------------------------------------------------------------------------------
def plot_tradeoff(df, metrics=(("MACs_M", "mAP"), ("params_M", "rank1")), label: str = "model", kind: str = "kind",
                  title: str = ""):
    """The survey's Fig. 3: one panel per ``(x, y)`` pair of columns of ``df`` (default: mAP vs multiply-adds,
    Rank-1 vs parameters), one point per row, labelled by ``df[label]``. Rows whose ``df[kind]`` is
    ``"network"`` (un-pruned ResNets) are drawn as squares, the others (pruned) as circles.
    Look for: the top-left corner (accurate and cheap) — a pruned ResNet-50 there beats a small ResNet."""
    import matplotlib.pyplot as plt

    fig, axes = plt.subplots(1, len(metrics), figsize=(5.2 * len(metrics), 3.8))
    axes = np.atleast_1d(axes)
    for ax, (x, y) in zip(axes, metrics):
        for i, row in enumerate(df.to_dict("records")):
            is_net = row.get(kind) == "network"
            ax.plot(row[x], row[y], "s" if is_net else "o", ms=8 if is_net else 7,
                    color="0.3" if is_net else f"C{i % 10}", label=row[label])
            ax.annotate(str(row[label]), (row[x], row[y]), textcoords="offset points", xytext=(5, 4), fontsize=7)
        ax.set_xlabel(x.replace("_", " "))
        ax.set_ylabel(y)
        ax.grid(alpha=0.3)
    if title:
        fig.suptitle(title, fontsize=10)
    fig.tight_layout()
    return fig


def plot_reconstruction(records, title: str = "layer-wise pruning: next layer's relative reconstruction error"):
    """Bars of ``err_plain`` (kept channels, old weights) and ``err_recon`` (after least squares) per unit, from
    a layer-wise :class:`~reidbook.prune.strategies.StrategyReport`'s ``iterations`` (log scale).
    Look for: how much the least-squares step recovers, and which layers stay hard to reconstruct."""
    import matplotlib.pyplot as plt

    recs = [r for r in records if "err_plain" in r]
    x = np.arange(len(recs))
    fig, ax = plt.subplots(figsize=(max(6, 0.3 * len(recs)), 3.2))
    ax.bar(x - 0.2, [r["err_plain"] for r in recs], 0.4, color="0.7", label="plain selection")
    if any("err_recon" in r for r in recs):
        ax.bar(x + 0.2, [r.get("err_recon", np.nan) for r in recs], 0.4, color="C0", label="+ least squares")
    ax.set_yscale("log")
    ax.set_xticks(x, [short_name(r["unit"]) for r in recs], rotation=90, fontsize=7)
    ax.set_ylabel("‖Y − Ŷ‖² / ‖Y‖²")
    ax.legend(fontsize=8)
    ax.set_title(title, fontsize=9)
    fig.tight_layout()
    return fig


def plot_strategy_curves(curves: dict, xlabel: str = "epoch", ylabel: str = "", title: str = "", ax=None):
    """Line plot of named sequences ``{name: (xs, ys)}`` (e.g. PSFP's rate per epoch next to the schedule of
    Eq. 11, or Auto-Balanced's weak share before/after each epoch)."""
    import matplotlib.pyplot as plt

    fig = None
    if ax is None:
        fig, ax = plt.subplots(figsize=(5, 3.2))
    for name, (xs, ys) in curves.items():
        ax.plot(list(xs), list(ys), "o-" if len(list(xs)) < 30 else "-", ms=4, label=name)
    ax.set_xlabel(xlabel)
    ax.set_ylabel(ylabel)
    ax.set_title(title, fontsize=9)
    ax.legend(fontsize=8)
    ax.grid(alpha=0.3)
    ax.ticklabel_format(axis="y", useOffset=False)
    if fig is not None:
        fig.tight_layout()
    return fig if fig is not None else ax.figure


def plot_strategy_internals(auto_balanced, psfp):
    """What happened inside two strategies, from their reports' ``iterations``: Auto-Balanced's weak set's share of
    the ℓ1 mass before/after each regularised epoch (Eq. 7–10), and PSFP's rate applied after each epoch next to
    the schedule of Eq. (11) that ends at the same goal."""
    import matplotlib.pyplot as plt

    from ..prune.criteria import psfp_rate

    fig, (a1, a2) = plt.subplots(1, 2, figsize=(10, 3.3))
    ab = [r for r in auto_balanced.iterations if "weak_share_before" in r]
    if ab:
        shares = [ab[0]["weak_share_before"]] + [r["weak_share_after"] for r in ab]
        plot_strategy_curves({"weak set's share of ℓ1 mass": ([0] + [r["step"] for r in ab], shares)},
                             "epoch", "share", "Auto-Balanced (Eq. 7–10)", ax=a1)
    ps = psfp.iterations
    if ps:
        goal = ps[-1]["rate"]
        xs = [i / 10 for i in range(0, 10 * len(ps) + 1)]
        plot_strategy_curves({"Eq. (11) schedule": (xs, [psfp_rate(x, goal, len(ps)) for x in xs]),
                              "rate applied": ([r["step"] for r in ps], [r["rate"] for r in ps])},
                             "epoch", "fraction of filters zeroed", "PSFP (Eq. 11–12)", ax=a2)
    fig.tight_layout()
    return fig


def plot_scenarios(df, value: str = "mAP", title: str = ""):
    """Grouped bars of ``df[value]`` per design scenario (x) and method (colour); ``df`` has columns
    ``scenario``, ``method`` and ``value`` (optionally ``target`` — one panel per target, e.g. C1 and C2).
    Look for: which scenario keeps the most accuracy for each method."""
    import matplotlib.pyplot as plt

    targets = sorted(df["target"].unique(), reverse=True) if "target" in df else [None]
    fig, axes = plt.subplots(1, len(targets), figsize=(4.6 * len(targets), 3.4), squeeze=False)
    methods = list(dict.fromkeys(df["method"]))
    for ax, t in zip(axes[0], targets):
        sub = df if t is None else df[df["target"] == t]
        scen = sorted(sub["scenario"].unique())
        w = 0.8 / max(1, len(methods))
        for j, m in enumerate(methods):
            vals = [sub[(sub["scenario"] == s) & (sub["method"] == m)][value] for s in scen]
            ys = [float(v.iloc[0]) if len(v) else np.nan for v in vals]
            ax.bar(np.arange(len(scen)) + (j - (len(methods) - 1) / 2) * w, ys, w, label=m, color=f"C{j}")
        ax.set_xticks(range(len(scen)), [f"scenario {s}" for s in scen])
        ax.set_ylabel(value)
        ax.set_title(f"{title} (MACs kept ≤ {t:.2f})" if t is not None else title, fontsize=9)
        ax.legend(fontsize=8)
    fig.tight_layout()
    return fig

