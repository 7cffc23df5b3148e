"""General figures: training curves, cost per stage, embedding scatters, tables and bars.

Pure functions: they take numbers (a :class:`~reidbook.engine.History`, dicts of counts, feature
arrays, a DataFrame) and return a matplotlib ``Figure`` (or, for :func:`embed_2d`, an array). Nothing
here trains or measures a model; chapter 01 and later chapters pass in what they measured.
"""
from __future__ import annotations

from typing import Mapping, Sequence

import numpy as np

__all__ = ["training_curves", "stage_costs", "embed_2d", "embedding_scatter", "table_figure", "bar_chart"]


def _records(history) -> list[dict]:
    """A History, a list of per-epoch dicts, or a DataFrame → list of dicts."""
    if hasattr(history, "records"):
        return list(history.records)
    if hasattr(history, "to_dict") and hasattr(history, "columns"):  # DataFrame
        frame = history.reset_index() if "epoch" not in history.columns else history
        return frame.to_dict("records")
    return [dict(r) for r in history]


def training_curves(histories, keys: Sequence[str] = ("loss",), title: str | None = None, logy: bool = False):
    """One panel per key (``"loss"``, ``"ce"``, ``"triplet"``, ``"lr"``, ``"mAP"`` …), one line per run.

    ``histories`` is one History (or list of epoch records) or a dict ``{label: History}`` to compare
    runs (chapter 01's softmax / triplet / both ablation). Epochs on the x-axis; a run without a key
    simply has no line in that panel. Returns the ``Figure``.
    """
    import matplotlib.pyplot as plt
    from matplotlib.ticker import MaxNLocator

    runs = histories if isinstance(histories, Mapping) else {"": histories}
    keys = list(keys)
    if not keys:
        raise ValueError("keys must name at least one column, e.g. ('loss',)")
    fig, axes = plt.subplots(1, len(keys), figsize=(4.2 * len(keys), 3.2), squeeze=False)
    for ax, key in zip(axes[0], keys):
        for label, hist in runs.items():
            rows = [r for r in _records(hist) if isinstance(r.get(key), (int, float))]
            if rows:
                ax.plot([r.get("epoch", i + 1) for i, r in enumerate(rows)], [r[key] for r in rows],
                        marker="o", ms=3, label=label or None)
        ax.set_xlabel("epoch")
        ax.xaxis.set_major_locator(MaxNLocator(integer=True))
        ax.set_title(key)
        if logy:
            ax.set_yscale("log")
        ax.grid(alpha=0.3)
        if any(runs) and ax.get_legend_handles_labels()[0]:
            ax.legend(fontsize=8)
    if title:
        fig.suptitle(title)
    fig.tight_layout()
    return fig


def stage_costs(params: Mapping[str, float], macs: Mapping[str, float] | None = None, title: str | None = None,
                params_unit: float = 1e6, macs_unit: float = 1e6):
    """Bar charts of parameters (and multiply-adds) per stage, e.g. from ``reidbook.profile.params_by_stage``
    and ``macs_by_stage``. Units: millions by default. Each bar is labelled with its share of the total,
    which is the point of the figure: where does a ResNet-50 keep its weights, and where does it spend its
    computation?"""
    import matplotlib.pyplot as plt

    panels = [("parameters", params, params_unit, "M" if params_unit == 1e6 else f"×{params_unit:g}")]
    if macs is not None:
        panels.append(("multiply-adds", macs, macs_unit, "M" if macs_unit == 1e6 else f"×{macs_unit:g}"))
    fig, axes = plt.subplots(1, len(panels), figsize=(4.8 * len(panels), 3.4), squeeze=False)
    for ax, (name, values, unit, label) in zip(axes[0], panels):
        names = list(values)
        vals = np.array([float(values[k]) for k in names]) / unit
        total = vals.sum()
        bars = ax.bar(names, vals, color="tab:blue" if name == "parameters" else "tab:orange")
        for b, v in zip(bars, vals):
            share = 100 * v / total if total else 0.0
            ax.annotate(f"{share:.0f}%", (b.get_x() + b.get_width() / 2, b.get_height()), ha="center",
                        va="bottom", fontsize=8)
        ax.set_ylabel(f"{name} ({label})")
        ax.set_title(f"{name}: {total:.3g} {label} in total")
        ax.tick_params(axis="x", rotation=30)
        ax.margins(y=0.15)
    if title:
        fig.suptitle(title)
    fig.tight_layout()
    return fig


def embed_2d(features, method: str = "pca", seed: int = 0, perplexity: float = 30.0) -> np.ndarray:
    """Project ``[N, D]`` features to ``[N, 2]`` with PCA or t-SNE (scikit-learn), deterministically.

    t-SNE's perplexity is clipped to ``(N - 1) / 3`` so that small sets (smoke runs) work.
    """
    x = np.asarray(features.detach().cpu() if hasattr(features, "detach") else features, dtype=np.float64)
    if x.ndim != 2 or len(x) < 3:
        raise ValueError(f"features must be [N, D] with N ≥ 3, got shape {x.shape}")
    if method == "pca":
        from sklearn.decomposition import PCA

        if x.shape[1] < 2:
            return np.concatenate([x, np.zeros_like(x)], axis=1)
        return PCA(n_components=2, random_state=seed).fit_transform(x)
    if method == "tsne":
        from sklearn.manifold import TSNE

        perp = float(min(perplexity, max(1.0, (len(x) - 1) / 3)))
        return TSNE(n_components=2, perplexity=perp, init="pca", random_state=seed).fit_transform(x)
    raise ValueError(f"method must be 'pca' or 'tsne', got {method!r}")


def embedding_scatter(features, pids: Sequence[int], method: str = "pca", max_ids: int = 12, seed: int = 0,
                      title: str | None = None, normalize: bool = True):
    """A 2-D scatter of embeddings coloured by identity (at most ``max_ids`` identities, chosen by seed).

    Good features form one tight cluster per colour; with ``normalize`` the features are L2-normalised
    first (rankings use the direction far more than the length).
    """
    import matplotlib.pyplot as plt

    x = np.asarray(features.detach().cpu() if hasattr(features, "detach") else features, dtype=np.float64)
    pids = np.asarray(pids)
    if len(x) != len(pids):
        raise ValueError(f"{len(x)} features but {len(pids)} pids")
    ids = np.unique(pids)
    rng = np.random.default_rng(seed)
    chosen = np.sort(rng.choice(ids, size=min(max_ids, len(ids)), replace=False))
    keep = np.isin(pids, chosen)
    x, pids = x[keep], pids[keep]
    if normalize:
        x = x / np.maximum(np.linalg.norm(x, axis=1, keepdims=True), 1e-12)
    xy = embed_2d(x, method=method, seed=seed)
    fig, ax = plt.subplots(figsize=(5.2, 4.4))
    cmap = plt.get_cmap("tab20" if len(chosen) > 10 else "tab10")
    for i, pid in enumerate(chosen):
        m = pids == pid
        ax.scatter(xy[m, 0], xy[m, 1], s=18, color=cmap(i % cmap.N), label=str(pid))
    ax.set_title(title or f"{method.upper()} of the embeddings, {len(chosen)} identities")
    ax.set_xticks([])
    ax.set_yticks([])
    if len(chosen) <= 20:
        ax.legend(fontsize=7, ncol=2, title="identity", title_fontsize=7, loc="best", markerscale=0.8)
    fig.tight_layout()
    return fig


def table_figure(table, title: str | None = None, fmt: str = "{:.3g}", highlight: Mapping[str, str] | None = None,
                 col_width: float = 1.3):
    """Render a table (a DataFrame, or a dict ``{row: {column: value}}``) as a figure.

    ``highlight`` maps a column to ``"max"`` or ``"min"``: that column's best cell is bold. Floats are
    formatted with ``fmt``. For slides and the course's HTML, where a figure travels better than a frame.
    """
    import matplotlib.pyplot as plt
    import pandas as pd

    df = table if isinstance(table, pd.DataFrame) else pd.DataFrame.from_dict(table, orient="index")
    cells = [[fmt.format(v) if isinstance(v, (float, np.floating)) else str(v) for v in row] for row in df.values]
    fig, ax = plt.subplots(figsize=(max(3.0, col_width * (len(df.columns) + 1)), 0.45 * (len(df) + 1) + 0.6))
    ax.axis("off")
    tab = ax.table(cellText=cells, rowLabels=[str(i) for i in df.index], colLabels=[str(c) for c in df.columns],
                   loc="center", cellLoc="center")
    tab.auto_set_font_size(False)
    tab.set_fontsize(9)
    tab.scale(1.0, 1.3)
    for col, mode in (highlight or {}).items():
        if col not in df.columns:
            raise KeyError(f"highlight column {col!r} is not in the table ({list(df.columns)})")
        values = pd.to_numeric(df[col], errors="coerce").to_numpy()
        if np.all(np.isnan(values)):
            continue
        r = int(np.nanargmax(values) if mode == "max" else np.nanargmin(values))
        tab[(r + 1, list(df.columns).index(col))].set_text_props(fontweight="bold")
    if title:
        ax.set_title(title)
    fig.tight_layout()
    return fig


def bar_chart(values: Mapping[str, float], ylabel: str = "", title: str | None = None,
              reference: Mapping[str, float] | None = None, fmt: str = "{:.1f}", scale: float = 1.0):
    """Bars of ``{label: value}`` (× ``scale``, e.g. 100 for %), each labelled; ``reference`` draws
    dashed horizontal lines ``{label: value}`` (e.g. the colour-histogram matcher's mAP)."""
    import matplotlib.pyplot as plt

    names = list(values)
    vals = [float(values[k]) * scale for k in names]
    fig, ax = plt.subplots(figsize=(max(3.5, 1.1 * len(names) + 1.5), 3.3))
    bars = ax.bar(names, vals, color=plt.get_cmap("tab10")(np.arange(len(names)) % 10))
    for b, v in zip(bars, vals):
        ax.annotate(fmt.format(v), (b.get_x() + b.get_width() / 2, b.get_height()), ha="center", va="bottom",
                    fontsize=8)
    for i, (label, v) in enumerate((reference or {}).items()):
        ax.axhline(float(v) * scale, ls="--", color="0.3", lw=1)
        # labels alternate between the left and the right end, so that two close lines stay readable
        x, ha = (-0.45, "left") if i % 2 == 0 else (len(names) - 0.55, "right")
        ax.annotate(f"{label}: {fmt.format(float(v) * scale)}", (x, float(v) * scale), ha=ha, va="bottom",
                    fontsize=8, color="0.2", zorder=5)
    ax.set_ylabel(ylabel)
    if title:
        ax.set_title(title)
    ax.margins(y=0.15)
    fig.tight_layout()
    return fig
