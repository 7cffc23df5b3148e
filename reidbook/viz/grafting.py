"""Figures of chapter 03 (GraftedNet, paper 000): pure functions from numbers to matplotlib figures.

* :func:`stage_params_figure` — Fig. 1: parameters per ResNet-50 stage (blue) beside the designed fire
  stages (brown), from :func:`reidbook.models.graftednet.stage_params`.
* :func:`group_conv_mask` / :func:`group_conv_figure` — which inputs a 1×1 group convolution connects to
  which outputs (block-diagonal for ``g > 1``), the arithmetic behind §4.4.3.
* :func:`curves_figure` — training-loss curves of several runs (with / without accompanying learning).
* :func:`metric_bars` — mAP / rank-1 bars of several runs (Table 2's ablation).
* :func:`cost_figure` — Table 3 as a picture: latency against parameters, one point per model.
* :func:`feature_response_figure` — where GraftedNet's features respond: the four levels' response maps and
  ``fire_conv5c``'s 2- and 3-stripe part maps over the images (MGN Fig. 5's definition, per map / per stripe).
"""
from __future__ import annotations

from typing import Mapping, Sequence

import numpy as np

__all__ = ["stage_params_figure", "group_conv_mask", "group_conv_figure", "curves_figure", "metric_bars",
           "cost_figure", "feature_response_figure", "RESNET_COLOUR", "FIRE_COLOUR"]

RESNET_COLOUR = "#4c72b0"  # Fig. 1's blue bars
FIRE_COLOUR = "#a0522d"    # Fig. 1's brown bars


def stage_params_figure(stage_params: Mapping[str, int], title: str = "Parameters per stage (Fig. 1)"):
    """Bars of parameters (millions) per stage; names starting with ``fire`` are drawn brown, others blue.

    Look at: res_conv4x and res_conv5x hold almost all of ResNet-50's parameters; the fire stages that
    replace them are an order of magnitude smaller.
    """
    import matplotlib.pyplot as plt

    if not stage_params:
        raise ValueError("no stages to draw")
    names = list(stage_params)
    values = np.array([stage_params[n] for n in names], dtype=float) / 1e6
    colours = [FIRE_COLOUR if n.startswith("fire") else RESNET_COLOUR for n in names]
    fig, ax = plt.subplots(figsize=(7, 3.2))
    bars = ax.bar(range(len(names)), values, color=colours)
    for b, v in zip(bars, values):
        ax.text(b.get_x() + b.get_width() / 2, v, f"{v:.3f}", ha="center", va="bottom", fontsize=8)
    ax.set_xticks(range(len(names)), names, rotation=20, ha="right", fontsize=8)
    ax.set_ylabel("parameters (M)")
    ax.set_title(title, fontsize=10)
    ax.spines[["top", "right"]].set_visible(False)
    fig.tight_layout()
    return fig


def group_conv_mask(in_channels: int, out_channels: int, groups: int) -> np.ndarray:
    """``[out, in]`` 0/1 matrix: 1 where a 1×1 conv with ``groups`` groups has a weight.

    Group ``k`` maps inputs ``[k·C_in/g, (k+1)·C_in/g)`` to outputs ``[k·C_out/g, (k+1)·C_out/g)``,
    so the matrix is block-diagonal with ``g`` blocks and ``C_in·C_out/g`` ones.
    """
    if groups < 1 or in_channels % groups or out_channels % groups:
        raise ValueError(f"groups={groups} must be ≥ 1 and divide {in_channels} and {out_channels}")
    mask = np.zeros((out_channels, in_channels), dtype=np.uint8)
    ci, co = in_channels // groups, out_channels // groups
    for k in range(groups):
        mask[k * co:(k + 1) * co, k * ci:(k + 1) * ci] = 1
    return mask


def group_conv_figure(groups: Sequence[int] = (1, 4, 8), in_channels: int = 48, out_channels: int = 16):
    """One connectivity matrix per ``g`` (small channel counts so the blocks are visible).

    Look at: the dark area (the weights) shrinks by ``g``: every output sees only ``C_in/g`` inputs.
    """
    import matplotlib.pyplot as plt

    groups = list(groups)
    if not groups:
        raise ValueError("no group counts to draw")
    fig, axes = plt.subplots(1, len(groups), figsize=(3.2 * len(groups), 1.9), squeeze=False)
    for ax, g in zip(axes[0], groups):
        m = group_conv_mask(in_channels, out_channels, g)
        ax.imshow(m, cmap="Greys", vmin=0, vmax=1, aspect="auto", interpolation="nearest")
        ax.set_title(f"g = {g}: {int(m.sum())} of {m.size} weights", fontsize=9)
        ax.set_xlabel(f"{in_channels} inputs", fontsize=8)
        ax.set_ylabel(f"{out_channels} outputs", fontsize=8)
        ax.set_xticks([]), ax.set_yticks([])
    fig.tight_layout()
    return fig


def curves_figure(histories: Mapping[str, Sequence[Mapping]], keys: Sequence[str] = ("softmax",),
                  title: str = "training loss per epoch"):
    """One line per (run, key): the per-epoch value of ``key`` in each run's history records.

    ``histories``: run label → list of epoch records (``History.records``). Missing keys are skipped.
    """
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(6, 3.2))
    drawn = 0
    for label, records in histories.items():
        for key in keys:
            ys = [r[key] for r in records if key in r]
            if ys:
                ax.plot(range(1, len(ys) + 1), ys, marker="o", label=f"{label}: {key}")
                drawn += 1
    if not drawn:
        raise ValueError(f"none of the histories has any of the keys {list(keys)}")
    ax.set_xlabel("epoch")
    ax.set_ylabel("loss")
    ax.set_title(title, fontsize=10)
    ax.legend(fontsize=8)
    ax.spines[["top", "right"]].set_visible(False)
    fig.tight_layout()
    return fig


def metric_bars(results: Mapping[str, Mapping[str, float]], metrics: Sequence[str] = ("mAP", "rank1"),
                title: str = "", paper: Mapping[str, Mapping[str, float]] | None = None):
    """Grouped bars (in %) of ``metrics`` per run; ``paper`` (same shape) draws the paper's values as
    hollow markers beside ours, labelled as the paper's.
    """
    import matplotlib.pyplot as plt

    names = list(results)
    if not names:
        raise ValueError("no results to draw")
    x = np.arange(len(names))
    w = 0.8 / len(metrics)
    fig, ax = plt.subplots(figsize=(max(5, 1.3 * len(names)), 3.3))
    for i, m in enumerate(metrics):
        vals = [100 * float(results[n][m]) for n in names]
        bars = ax.bar(x + i * w - 0.4 + w / 2, vals, w, label=f"{m} (ours)")
        for b, v in zip(bars, vals):
            ax.text(b.get_x() + b.get_width() / 2, v, f"{v:.1f}", ha="center", va="bottom", fontsize=7)
        if paper:
            pv = [100 * float(paper[n][m]) if n in paper and m in paper[n] else np.nan for n in names]
            ax.plot(x + i * w - 0.4 + w / 2, pv, "o", mfc="none", color=bars[0].get_facecolor(),
                    label=f"{m} (paper, Market-1501)")
    ax.set_xticks(x, names, rotation=15, ha="right", fontsize=8)
    ax.set_ylabel("%")
    ax.set_title(title, fontsize=10)
    ax.legend(fontsize=7, ncol=2)
    ax.spines[["top", "right"]].set_visible(False)
    fig.tight_layout()
    return fig


def cost_figure(table, latency_column: str | None = None, highlight: str | None = "GraftedNet",
                title: str = "Table 3: parameters vs CPU latency"):
    """Scatter of latency (ms) against parameters (M), one labelled point per row of a
    :func:`reidbook.profile.cost_table` frame (``params_M`` and a ``latency_ms_b*`` column)."""
    import matplotlib.pyplot as plt

    if latency_column is None:
        cols = [c for c in table.columns if str(c).startswith("latency_ms")]
        if not cols:
            raise ValueError(f"no latency column in {list(table.columns)}")
        latency_column = cols[0]
    fig, ax = plt.subplots(figsize=(5.5, 3.4))
    for name, row in table.iterrows():
        hl = name == highlight
        ax.scatter(row["params_M"], row[latency_column], s=60 if hl else 30,
                   color=FIRE_COLOUR if hl else RESNET_COLOUR, zorder=3)
        ax.annotate(str(name), (row["params_M"], row[latency_column]), textcoords="offset points",
                    xytext=(5, 4), fontsize=8)
    ax.set_xlabel("parameters (M)")
    ax.set_ylabel(f"{latency_column} (ms)")
    ax.set_title(title, fontsize=10)
    ax.grid(alpha=0.3)
    fig.tight_layout()
    return fig


def feature_response_figure(model, images, title: str | None = None, alpha: float = 0.5):
    """One row per image: the image, the response map (``‖x[:, :, i, j]‖₂``, normalised per map) of each
    multi-level feature's map, and ``fire_conv5c``'s map normalised per stripe for the 2- and 3-stripe part
    features (stripe bounds drawn). ``images``: the model's normalised input ``[B, 3, H, W]``; ``model``: a
    :class:`reidbook.models.graftednet.GraftedNet`. The energy that :mod:`reidbook.eval.feature_attention`
    measures is the same response before the normalisation."""
    import torch

    from .response import plot_maps, response_map, to_display

    was = model.training
    model.eval()
    try:
        with torch.no_grad():
            prm = next(model.parameters())
            maps = model.forward_all(images.to(prm.device, prm.dtype))["maps"]
    finally:
        model.train(was)
    size = tuple(images.shape[-2:])
    heat, parts = {}, {}
    for n in model.feature_names:
        if "_p" not in n:
            heat[n] = response_map(maps[n], 1, size).cpu().numpy()
    if model.part_based:
        for k in (2, 3):
            label = f"fire_conv5c\n{k} stripes"  # two lines: the panel titles are narrow
            heat[label] = response_map(maps["fire_conv5c"], k, size).cpu().numpy()
            parts[label] = k
    return plot_maps(to_display(images.cpu()), heat, alpha=alpha, parts=parts, title=title)
