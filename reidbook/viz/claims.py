"""A claim's seed distribution, with this chapter's own run drawn over it.

:func:`claim_figure` takes one claim of the ledger (``reidbook.claims.load_ledger(profile).claim(id)``,
a plain dict: this module imports nothing from ``reidbook.claims``) and draws, per configuration, every
seed's value (seaborn strip plot) and their mean ± standard deviation (point plot); a *live* run — the
single-seed number a chapter just measured — is overlaid as a star. The title carries the verdict, the
paper's numbers go in the caption line, so the reader sees at once whether the chapter's run is typical
of the seed distribution or an outlier.
"""
from __future__ import annotations

from typing import Mapping

__all__ = ["claim_figure", "claim_frame", "percent_metric"]


def percent_metric(metric: str) -> bool:
    """Whether ``metric`` is a fraction shown in percent (mAP, Rank-k, mINP; also ``"fusion/mAP"``)."""
    return metric.split("/")[-1] in ("mAP", "mAP_official", "mINP") or metric.split("/")[-1].startswith("rank")


def claim_frame(claim: Mapping):
    """The claim's per-seed values as a long table: ``configuration, seed, value`` (percent where the
    metric is a fraction)."""
    import pandas as pd

    rows = []
    for cfg in claim["configs"]:
        scale = 100.0 if percent_metric(cfg.get("metric") or claim["metric"]) else 1.0
        for seed, v in zip(cfg.get("seeds", range(len(cfg.get("values", [])))), cfg.get("values", [])):
            rows.append({"configuration": cfg["label"], "seed": int(seed), "value": scale * float(v)})
    return pd.DataFrame(rows, columns=["configuration", "seed", "value"])


def claim_figure(claim: Mapping, live: Mapping[str, float] | None = None, stale: bool = False, ax=None):
    """Strip + point plot of ``claim``'s per-seed values per configuration, ``live`` (``{label: value}``,
    the same units as the ledger: fractions for mAP) as stars, the verdict in the title. ``stale=True``
    says in the title that the ledger was made with other presets. Returns the ``Figure``.

    Raises ``ValueError`` for a claim with no measured values (not runnable, or not run yet) and for a
    ``live`` label that is not one of the claim's configurations.
    """
    import matplotlib.pyplot as plt
    import seaborn as sns

    frame = claim_frame(claim)
    if frame.empty:
        raise ValueError(f"claim {claim.get('id')!r} has no measured values ({claim.get('status', 'not run')}); "
                         "run `make claims`")
    labels = [c["label"] for c in claim["configs"]]
    live = dict(live or {})
    unknown = set(live) - set(labels)
    if unknown:
        raise ValueError(f"live values for {sorted(unknown)}, but the claim's configurations are {labels}")
    metric = claim["metric"]
    scale = 100.0 if percent_metric(metric) else 1.0
    if ax is None:
        fig, ax = plt.subplots(figsize=(1.8 + 1.7 * len(labels), 3.4))
    else:
        fig = ax.figure
    sns.stripplot(data=frame, x="configuration", y="value", order=labels, ax=ax, color="0.35", size=6,
                  jitter=0.08, alpha=0.8, label="seeds (ledger)")
    sns.pointplot(data=frame, x="configuration", y="value", order=labels, ax=ax, errorbar="sd", color="C0",
                  markers="_", markersize=18, linestyles="none", capsize=0.15, label="mean ± std")
    for i, label in enumerate(labels):
        if label in live:
            ax.scatter([i], [scale * float(live[label])], marker="*", s=180, color="C3", zorder=5,
                       label="this run" if i == min(labels.index(k) for k in live) else None, gid="live")
    verdict = (claim.get("verdict") or {}).get("verdict", "not run")
    ax.set_title(f"{claim.get('id', '')}: {verdict}" + (" (stale ledger: run `make claims`)" if stale else ""),
                 fontsize=9)
    ax.set_xlabel("")
    ax.set_ylabel(metric + (" (%)" if scale == 100.0 else ""))
    paper = claim.get("paper_numbers") or {}
    vals = paper.get("values") or []
    if any(v is not None for v in vals):
        ax.text(0.0, -0.22, f"paper: {' vs '.join('–' if v is None else f'{v:g}' for v in vals)} "
                f"({paper.get('source', '')})", transform=ax.transAxes, fontsize=7, va="top")
    handles, names = ax.get_legend_handles_labels()
    seen = {}
    for h, n in zip(handles, names):
        seen.setdefault(n, h)
    ax.legend(seen.values(), seen.keys(), fontsize=7, loc="best")
    fig.tight_layout()
    return fig
