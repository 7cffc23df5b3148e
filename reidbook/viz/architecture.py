"""Architecture diagrams drawn from a model (not pasted images): MGN's Fig. 3 from an :class:`MGN`.

Every number in the figure (channels, map sizes, feature dimensions, which loss sees which feature) is
read from the model and one forward pass at ``input_size``, so the diagram of a variant, of a narrow
``quick`` model or of an exercise's 6-stripe branch is right by construction.
"""
from __future__ import annotations

import torch

__all__ = ["mgn_layout", "plot_mgn_architecture"]


@torch.no_grad()
def mgn_layout(model, input_size=(384, 128)) -> dict:
    """What the diagram shows, computed from ``model``: trunk output, and per branch its map, pooled and
    reduced features with the loss on each (``softmax`` on z_g or f_g, ``triplet`` on f_g, ``softmax``
    on f_p)."""
    was = model.training
    model.eval()
    try:
        p = next(model.parameters())
        x = torch.zeros(1, 3, *input_size, device=p.device, dtype=p.dtype)
        shared = model.trunk(x)
        maps = model.branch_maps(x)
    finally:
        model.train(was)
    branches = []
    for name, spec in model.specs.items():
        c, h, w = maps[name].shape[1:]
        g_loss = f"softmax on z_g ({c})" if not model.softmax_on_reduced else f"softmax on f_g ({model.reduce_dim})"
        feats = [{"name": f"{name}_g", "pooled": c, "reduced": model.reduce_dim,
                  "losses": [g_loss] + (["triplet"] if model.triplet else [])}]
        for i in range(spec.parts if spec.parts > 1 else 0):
            feats.append({"name": f"{name}_p{i + 1}", "pooled": c, "reduced": model.reduce_dim,
                          "losses": [f"softmax on f_p ({model.reduce_dim})"]})
        branches.append({"name": name, "parts": spec.parts, "downsample": spec.downsample,
                         "map": (c, h, w), "features": feats})
    return {"input": (3, *input_size), "trunk": tuple(shared.shape[1:]), "branches": branches,
            "feature_dim": model.feature_dim, "num_classes": model.num_classes}


def _box(ax, x, y, w, h, text, colour, fontsize=7):
    from matplotlib.patches import FancyBboxPatch

    ax.add_patch(FancyBboxPatch((x, y), w, h, boxstyle="round,pad=0.02", fc=colour, ec="black", lw=0.7))
    ax.text(x + w / 2, y + h / 2, text, ha="center", va="center", fontsize=fontsize)


def _arrow(ax, x0, y0, x1, y1):
    ax.annotate("", xy=(x1, y1), xytext=(x0, y0), arrowprops=dict(arrowstyle="->", lw=0.7))


_COLOURS = {"global": "#fdd49e", "part": "#c6dbef", "trunk": "#d9d9d9", "head": "#e5f5e0", "loss": "#fcbba1"}


def plot_mgn_architecture(model, input_size=(384, 128), title: str | None = None):
    """MGN Fig. 3 drawn from ``model``: shared trunk, one row per branch (map size, stride), pooled
    features, the separate 1×1 reductions, the loss on each feature (red tags) and the concatenated
    test feature."""
    import matplotlib.pyplot as plt

    lay = mgn_layout(model, input_size)
    rows = sum(len(b["features"]) for b in lay["branches"]) + len(lay["branches"]) - 1
    fig, ax = plt.subplots(figsize=(12, 0.42 * rows + 1.6))
    ax.set_xlim(0, 12.4)
    ax.set_ylim(-0.6, rows + 0.6)
    ax.axis("off")
    cin, hin, win = lay["input"]
    tc, th, tw = lay["trunk"]
    mid = rows / 2
    _box(ax, 0.0, mid - 0.5, 1.0, 1.0, f"input\n{cin}×{hin}×{win}", "white")
    _box(ax, 1.3, mid - 0.9, 1.5, 1.8, f"shared trunk\nconv1–conv3\n+ res_conv4_1\n{tc}×{th}×{tw}", _COLOURS["trunk"])
    _arrow(ax, 1.0, mid, 1.3, mid)
    y = rows
    feat_rows = []
    red = dict(color="#b2182b", fontsize=6.5, va="center")
    for b in lay["branches"]:
        n = len(b["features"])
        top, bottom = y, y - n
        yc = (top + bottom) / 2 - 0.5
        colour = _COLOURS["global"] if b["parts"] == 1 else _COLOURS["part"]
        c, h, w = b["map"]
        stride = "res_conv5_1 stride 2" if b["downsample"] else "no down-sampling"
        label = "Global" if b["name"] == "global" else b["name"].replace("part", "Part-")
        _box(ax, 3.2, yc + 0.05, 2.2, 0.9, f"{label} branch\nres_conv4_2 … conv5\n({stride})\nmap {c}×{h}×{w}",
             colour, 6.5)
        _arrow(ax, 2.8, mid, 3.2, yc + 0.5)
        for k, f in enumerate(b["features"]):
            fy = top - k - 1 + 0.1
            pool = "GMP (whole map)" if k == 0 else f"GMP stripe {k}/{b['parts']}"
            _box(ax, 5.9, fy, 1.5, 0.75, f"{pool}\nz: {f['pooled']}-d", colour, 6.5)
            _arrow(ax, 5.4, yc + 0.5, 5.9, fy + 0.37)
            _box(ax, 8.1, fy, 1.5, 0.75, f"1×1 conv+BN+ReLU\nf: {f['reduced']}-d", _COLOURS["head"], 6.5)
            _arrow(ax, 7.4, fy + 0.37, 8.1, fy + 0.37)
            on_z = [loss.split(" on ")[0] for loss in f["losses"] if "on z" in loss]
            on_f = [loss.split(" on ")[0] for loss in f["losses"] if "on z" not in loss]
            if on_z:
                ax.text(7.45, fy + 0.62, " + ".join(on_z), **red)
            if on_f:
                ax.text(9.65, fy + 0.62, " + ".join(on_f), **red)
            feat_rows.append(fy + 0.37)
        y = bottom - 1
    _box(ax, 11.0, mid - 0.9, 1.3, 1.8, f"concat\nall f\n→ {lay['feature_dim']}-d\ntest feature", "white")
    for fy in feat_rows:
        _arrow(ax, 9.6, fy, 11.0, mid)
    ax.set_title(title or f"MGN as built: {len(lay['branches'])} branches, {len(feat_rows)} reduced features, "
                 f"input {hin}×{win}; red = the loss each feature is trained with", fontsize=9)
    fig.tight_layout()
    return fig
