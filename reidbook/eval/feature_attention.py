"""Where a model's feature maps look, measured: any ``{name: [B, C, h, w]}`` maps against SynthReID's masks.

:func:`reidbook.eval.attention.branch_attention` measures an MGN's branches; this module measures any set
of named feature maps, as the models without branches expose them — GraftedNet's four levels
(``fire_conv4f`` … ``fire_conv5c``, paper 000 §3.3, whose last map also feeds the 2- and 3-stripe part
features) and Factorized Distillation's FMFB maps ``f^k`` and the student's own ``f`` (paper 002 §3.3,
Fig. 4). Each map becomes an *energy* map over the image:

* ``norm="l2"`` — the response, ``‖x[:, :, i, j]‖₂`` over channels (MGN Fig. 2/5's definition);
* ``norm="l1"`` — ``Σ_c |x[c, i, j]|``, FD Fig. 4's "L1 norm along the channels".

Both are measured *before* any display normalisation (min–max scaling would change the shares). A map
is measured whole, or per horizontal stripe when its feature pools stripes (``stripes={name: n}``; bounds
as the pooling's, :func:`reidbook.models.layers.stripe_rows`, so a map with fewer rows than stripes —
GraftedNet in ``smoke`` — is measured as its features see it, overlaps included); a map that should cover
one band of the body (an FD partial view, ``bands={name: (top, bottom)}`` as fractions of the height)
also gets the share of its energy inside that band against the band's area share (:func:`band_mask`).
"""
from __future__ import annotations

from typing import Mapping, Sequence

import numpy as np

from .attention import _energy, energy_share, part_area_shares, part_shares

__all__ = ["NORMS", "UPPER_BODY", "channel_energy", "band_mask", "stripe_cells", "map_attention", "upper_body_share",
           "graftednet_attention", "fmfb_attention", "describe_graftednet_attention", "describe_fmfb_attention"]

NORMS = ("l1", "l2")
#: Body parts above the hips (:data:`reidbook.data.PART_NAMES`): what an "Up" view's band mostly holds.
UPPER_BODY = ("head", "torso", "arms")


def channel_energy(feature_map, norm: str = "l2") -> np.ndarray:
    """``[B, C, h, w]`` → ``[B, h, w]`` non-negative energy: the L2 (``"l2"``) or L1 (``"l1"``) norm over channels."""
    import torch

    if norm not in NORMS:
        raise ValueError(f"norm must be one of {NORMS}, got {norm!r}")
    x = feature_map if isinstance(feature_map, torch.Tensor) else torch.as_tensor(np.asarray(feature_map))
    if x.dim() != 4:
        raise ValueError(f"channel_energy expects a [B, C, h, w] feature map, got shape {tuple(x.shape)}")
    x = x.detach().float()
    e = x.abs().sum(dim=1) if norm == "l1" else x.norm(p=2, dim=1)
    return e.cpu().numpy()


def band_mask(shape: tuple[int, int], top: float, bottom: float) -> np.ndarray:
    """Bool ``[H, W]``: the rows ``round(top·H)`` to ``round(bottom·H)`` (fractions of the height, as an FD
    view's band, :class:`reidbook.data.views.View`)."""
    if not 0.0 <= top < bottom <= 1.0:
        raise ValueError(f"a band needs 0 <= top < bottom <= 1 (fractions of the height), got {top}, {bottom}")
    H, W = int(shape[0]), int(shape[1])
    m = np.zeros((H, W), dtype=bool)
    m[int(round(top * H)):max(int(round(bottom * H)), int(round(top * H)) + 1)] = True
    return m


def upper_body_share(parts: Mapping[str, float]) -> float:
    """The share of a map's *on-person* energy on head, torso and arms (:data:`UPPER_BODY`), from a
    ``parts`` dict of :func:`reidbook.eval.attention.part_shares` (bag and background left out)."""
    body = {k: v for k, v in parts.items() if k not in ("background", "bag")}
    total = sum(body.values())
    return float(sum(body.get(k, 0.0) for k in UPPER_BODY) / total) if total > 0 else float("nan")


def stripe_cells(energy, parts, stripes: int) -> list[dict]:
    """On-person and per-part shares of each of ``stripes`` horizontal stripes of one energy map ``[h, w]``,
    with the adaptive pooling's row bounds (also when ``stripes > h``: stripes then share rows). Each:
    ``{"stripe", "on_person", "chance", "parts"}`` (``chance``: the person's area share in those rows)."""
    from ..models.layers import stripe_rows

    e, p = np.asarray(energy, dtype=np.float64), np.asarray(parts)
    h, H = e.shape[0], p.shape[0]
    if stripes < 1:
        raise ValueError(f"stripes must be >= 1, got {stripes}")
    up = _energy(e, p.shape)
    out = []
    for i, (a, b) in enumerate(stripe_rows(h, stripes)):
        ya, yb = int(round(a * H / h)), max(int(round(b * H / h)), int(round(a * H / h)) + 1)
        rows_s, rows_p = up[ya:yb], p[ya:yb]
        if rows_s.sum() <= 0:
            raise ValueError(f"stripe {i + 1} of the map has no energy")
        out.append({"stripe": i + 1, "on_person": float(rows_s[rows_p > 0].sum() / rows_s.sum()),
                    "chance": float((rows_p > 0).mean()), "parts": part_shares(rows_s, rows_p),
                    "parts_chance": part_area_shares(rows_p)})
    return out


def map_attention(maps: Mapping[str, object], part_maps: Sequence, norm: str = "l2",
                  stripes: Mapping[str, int] | None = None,
                  bands: Mapping[str, tuple[float, float]] | None = None) -> list[dict]:
    """One row per (map, stripe), averaged over the images: where each named feature map's energy lies.

    ``maps``: ``{name: [B, C, h, w]}`` (e.g. ``GraftedNet.forward_all(x)["maps"]``, ``FDNet.view_maps(x)``);
    ``part_maps``: the ``B`` images' part-label maps (:func:`reidbook.data.load_masks`, any size: the maps
    are resized to them). ``stripes``: maps measured per stripe (``stripe`` 1..n; whole maps have ``0``).

    Each row: ``{"map", "stripe", "on_person", "chance", "lift", "top_part", "top_part_share", "upper_body",
    "parts"}`` and, for maps in ``bands``, ``"band_share"`` (energy inside the band), ``"band_chance"`` (the
    band's area share) and ``"band_lift"``. ``top_part`` is the body part with the most energy (background
    excluded); ``upper_body`` the share of the on-person energy on head, torso and arms.
    """
    from .attention import _part_names

    stripes, bands = dict(stripes or {}), dict(bands or {})
    unknown = (set(stripes) | set(bands)) - set(maps)
    if unknown:
        raise KeyError(f"stripes/bands name maps that are not given: {sorted(unknown)}; maps are {list(maps)}")
    names = _part_names()
    rows = []
    for name, fmap in maps.items():
        energy = channel_energy(fmap, norm)
        if len(energy) != len(part_maps) or len(part_maps) == 0:
            raise ValueError(f"map_attention: map {name!r} has {len(energy)} images but {len(part_maps)} part maps "
                             "were given (need one per image, at least one)")
        n = max(1, int(stripes.get(name, 1)))
        per_image = [stripe_cells(energy[k], part_maps[k], n) for k in range(len(energy))]
        band = None
        if name in bands:
            band = [(energy_share(energy[k], band_mask(np.shape(part_maps[k]), *bands[name])),
                     float(band_mask(np.shape(part_maps[k]), *bands[name]).mean())) for k in range(len(energy))]
        for i in range(n):
            cells = [pi[i] for pi in per_image]
            parts = {q: float(np.mean([c["parts"][q] for c in cells])) for q in names}
            on, ch = float(np.mean([c["on_person"] for c in cells])), float(np.mean([c["chance"] for c in cells]))
            top = max(names[1:], key=lambda q: parts[q])
            row = {"map": name, "stripe": 0 if n == 1 else i + 1, "on_person": on, "chance": ch,
                   "lift": on / ch if ch > 0 else float("nan"), "top_part": top, "top_part_share": parts[top],
                   "upper_body": upper_body_share(parts), "parts": parts}
            if band is not None:
                bs, bc = float(np.mean([b[0] for b in band])), float(np.mean([b[1] for b in band]))
                row.update(band_share=bs, band_chance=bc, band_lift=bs / bc if bc > 0 else float("nan"))
            rows.append(row)
    return rows


def _eval_maps(model, images, fn):
    import torch

    was = model.training
    model.eval()
    try:
        with torch.no_grad():
            prm = next(model.parameters())
            return fn(images.to(prm.device, prm.dtype))
    finally:
        model.train(was)


def graftednet_attention(model, images, part_maps: Sequence) -> list[dict]:
    """Where each of a GraftedNet's features looks (paper 000 §3.3): one row per feature, in the order of
    ``model.feature_names`` — the multi-level features measured on their whole map (``fire_conv4f`` …
    ``fire_conv5c``), the part-based ones per stripe of ``fire_conv5c`` (``fire_conv5c_p2`` stripes 1–2,
    ``fire_conv5c_p3`` stripes 1–3), with the L2 response as energy. Rows as :func:`map_attention`'s, plus
    ``"feature"`` (the feature's name, e.g. ``fire_conv5c_p3_2``). ``images``: the model's input ``[B, 3, H, W]``.
    """
    if len(images) != len(part_maps) or len(part_maps) == 0:
        raise ValueError(f"graftednet_attention: need one part map per image (>= 1), got {len(images)} images and "
                         f"{len(part_maps)} part maps")
    maps = _eval_maps(model, images, lambda x: model.forward_all(x)["maps"])
    chosen, stripes = {}, {}
    for n in model.feature_names:
        if "_p" in n:
            key = n.rsplit("_", 1)[0]                  # fire_conv5c_p3_2 -> fire_conv5c_p3
            chosen[key] = maps["fire_conv5c"]
            stripes[key] = int(key[-1])
        else:
            chosen[n] = maps[n]
    rows = map_attention(chosen, part_maps, norm="l2", stripes=stripes)
    for r in rows:
        r["feature"] = r["map"] if r["stripe"] == 0 else f"{r['map']}_{r['stripe']}"
    return rows


def fmfb_attention(student, images, part_maps: Sequence, views: Sequence) -> list[dict]:
    """Where each FMFB of a distilled FD student looks (paper 002 §3.3, Fig. 4), measured: one row per view
    of ``student.view_names`` plus ``"student"`` (its own maps ``f``), with Fig. 4's L1 norm over channels as
    energy, and — for each partial view — the energy inside that view's band (``views``:
    :class:`reidbook.data.views.View` objects; Up views should sit on the upper body). Rows as
    :func:`map_attention`'s. ``student`` must still have its FMFBs (before ``deploy()``)."""
    if len(images) != len(part_maps) or len(part_maps) == 0:
        raise ValueError(f"fmfb_attention: need one part map per image (>= 1), got {len(images)} images and "
                         f"{len(part_maps)} part maps")
    maps = _eval_maps(student, images, student.view_maps)
    bands = {v.name: (v.top, v.bottom) for v in views if v.partial and v.name in maps}
    return map_attention(maps, part_maps, norm="l1", bands=bands)


# ------------------------------------------------------------------ captions generated from the measures
def _has(row: Mapping, key: str) -> bool:
    v = row.get(key)
    return v is not None and not (isinstance(v, float) and np.isnan(v))


LOOKS = 1.25  #: a map "looks at" a region when its energy share is at least 1.25× the region's area share


def describe_graftednet_attention(rows: Sequence[dict], n_images: int) -> str:
    """Chapter 03's caption from :func:`graftednet_attention`'s rows: on-person shares of the multi-level
    features against chance, and the top body part of each stripe of the finest part feature."""
    levels = [r for r in rows if r["stripe"] == 0]
    parts = [r for r in rows if r["stripe"] > 0]
    out = []
    if levels:
        lo, hi = min(levels, key=lambda r: r["on_person"]), max(levels, key=lambda r: r["on_person"])
        out.append(f"Over {n_images} query images, the whole-map features put {lo['on_person']:.0%} "
                   f"({lo['feature']}) to {hi['on_person']:.0%} ({hi['feature']}) of their response on the person, "
                   f"who covers {levels[0]['chance']:.0%} of the pixels: "
                   + ("they respond on the body." if lo["lift"] >= LOOKS else
                      "some respond on the body (lift ≥ 1.25×), others barely more than a map that looks everywhere."
                      if hi["lift"] >= LOOKS else
                      "barely more than a map that looks everywhere — this model does not (yet) look at the person."))
    if parts:
        finest = [r for r in parts if r["map"] == parts[-1]["map"]]
        out.append(f"The {len(finest)} stripes of {finest[0]['map']}, top to bottom, respond most on: "
                   + "; ".join(f"{r['top_part']} ({r['top_part_share']:.0%} of the stripe's energy; "
                               f"{r['on_person']:.0%} on the person vs {r['chance']:.0%} chance)"
                               for r in finest) + ".")
    return " ".join(out)


def describe_fmfb_attention(rows: Sequence[dict], n_images: int) -> str:
    """Chapter 04's caption from :func:`fmfb_attention`'s rows: does each partial view's FMFB sit in its own
    band (Fig. 4), and do the Up views' FMFBs sit on the upper body more than the Dn views'?"""
    by = {r["map"]: r for r in rows}
    partial = [r for r in rows if _has(r, "band_share")]   # records of a DataFrame carry NaN where a map has no band
    out = []
    if partial:
        inside = [r for r in partial if r["band_lift"] >= LOOKS]
        out.append(f"Over {n_images} query images, {len(inside)} of the {len(partial)} partial views' FMFBs put "
                   f"clearly more of their energy in their own band than its area share (≥ {LOOKS}×): "
                   + ", ".join(f"{r['map']} {r['band_share']:.0%} vs {r['band_chance']:.0%}" for r in partial) + ".")
        out.append("Fig. 4's pattern — each partial FMFB lights its own band — is "
                   + ("reproduced here." if len(inside) == len(partial) else
                      "partly reproduced here." if inside else "not reproduced here."))
    ups = [by[k] for k in by if k.startswith("up")]
    dns = [by[k] for k in by if k.startswith("dn")]
    if ups and dns:
        u = float(np.mean([r["upper_body"] for r in ups]))
        d = float(np.mean([r["upper_body"] for r in dns]))
        own = f", the student's own maps {by['student']['upper_body']:.0%}" if "student" in by else ""
        out.append(f"Of their on-person energy, the Up views' FMFBs put {u:.0%} on head, torso and arms, the Dn "
                   f"views' {d:.0%}{own}"
                   + (": the Up views do sit higher on the body." if u > d + 0.05 else
                      ": the Up views do not sit clearly higher on the body than the Dn views."))
    if "student" in by:
        s = by["student"]
        out.append(f"The student's own maps put {s['on_person']:.0%} of their energy on the person "
                   f"({s['chance']:.0%} chance).")
    return " ".join(out)
