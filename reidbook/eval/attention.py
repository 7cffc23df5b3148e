"""Where does a saliency map look? Measured against SynthReID's person masks and part maps.

Any non-negative map over an image — a response map (channel-summed activations), a Grad-CAM, FD's
FMFB attention, a CAM per DaRe exit — is treated as a distribution of *energy* over the image. It is
first resized to the mask's size bilinearly (``align_corners=False``, as ``F.interpolate``), so a
``16×8`` feature map and a ``128×64`` mask compare pixel for pixel. Then:

* :func:`energy_share` — the fraction of the map's energy on the person (or any region). Its chance
  level is the region's area share (:func:`area_share`): a uniform map puts that much on it. A map
  "looks at the person" when its share clearly exceeds the chance level (``lift`` > 1).
* :func:`energy_pointing_game` — the energy-based pointing game of Score-CAM (Wang et al., "Score-CAM:
  Score-Weighted Visual Explanations for Convolutional Neural Networks", CVPR-W 2020, Sec. 5.2): the
  share of the energy inside the object's bounding box (here the person mask's tight box). Laxer than
  :func:`energy_share` (background inside the box counts), comparable with papers that only have boxes.
* :func:`pointing_hit` — the classic pointing game (Zhang et al., "Top-down Neural Attention by
  Excitation Backprop", ECCV 2016, Sec. 5.1): is the map's maximum on the person (within a tolerance)?
* :func:`part_shares` — the energy share of every body part (:data:`reidbook.data.PART_NAMES`), which
  answers "does MGN's upper stripe look at head and torso?".

All are pure functions of numpy arrays or torch tensors; :func:`attention_summary` averages them
over a batch of maps and masks and reports the chance levels beside them. :func:`stripe_attention`
measures a part model's map stripe by stripe (each stripe feeds its own feature), and
:func:`branch_attention` does it for every branch of an MGN.

:func:`compare_attention` measures several models on the **same** images (e.g. a network before and after
pruning) from their last feature maps (:func:`feature_map`, :func:`response_energy`), with the change in
on-person share and the maps' agreement (:func:`map_agreement`) against a reference model.
"""
from __future__ import annotations

from typing import Sequence

import numpy as np

__all__ = ["resize_map", "energy_share", "area_share", "energy_pointing_game", "pointing_hit", "part_shares",
           "part_area_shares", "attention_summary", "attention_summaries", "stripe_attention", "branch_attention",
           "feature_map", "response_energy", "map_agreement", "compare_attention", "images_and_parts"]


def _np(x, name: str) -> np.ndarray:
    if hasattr(x, "detach"):
        x = x.detach().float().cpu().numpy()
    a = np.asarray(x)
    if a.ndim == 3 and a.shape[0] == 1:
        a = a[0]
    if a.ndim != 2:
        raise ValueError(f"{name} must be a 2-D map [H, W] (or [1, H, W]), got shape {a.shape}")
    return a


def resize_map(saliency, size: tuple[int, int]) -> np.ndarray:
    """``saliency`` (``[h, w]``) resized to ``size`` = ``(H, W)`` bilinearly (``align_corners=False``), float64."""
    import torch
    import torch.nn.functional as F

    s = _np(saliency, "saliency").astype(np.float64)
    if s.shape == tuple(size):
        return s
    t = torch.from_numpy(s)[None, None]
    return F.interpolate(t, size=tuple(int(v) for v in size), mode="bilinear", align_corners=False)[0, 0].numpy()


def _energy(saliency, shape: tuple[int, int]) -> np.ndarray:
    s = resize_map(saliency, shape)
    if not np.isfinite(s).all():
        raise ValueError("saliency map has NaN or infinite values")
    if s.min() < -1e-12 * max(1.0, float(np.abs(s).max())):
        raise ValueError(f"saliency map has negative values (min {s.min():.3g}); energy needs a non-negative map: "
                         "take ReLU (Grad-CAM), the absolute value or the square first")
    s = np.clip(s, 0, None)
    if s.sum() <= 0:
        raise ValueError("saliency map has no energy (all zeros): nothing to measure")
    return s


def _mask(mask, name: str = "mask") -> np.ndarray:
    m = _np(mask, name)
    return m.astype(bool) if m.dtype == bool or m.max(initial=0) <= 1 else m > 0


def area_share(mask) -> float:
    """The region's share of the image: the energy share a uniform map would give it (chance level)."""
    return float(_mask(mask).mean())


def energy_share(saliency, mask) -> float:
    """Fraction of the (resized) map's energy on ``mask`` (bool, or a part-label map: ``> 0`` = person)."""
    m = _mask(mask)
    s = _energy(saliency, m.shape)
    return float(s[m].sum() / s.sum())


def _box(m: np.ndarray) -> np.ndarray:
    box = np.zeros_like(m)
    ys, xs = np.nonzero(m)
    if len(ys):
        box[ys.min():ys.max() + 1, xs.min():xs.max() + 1] = True
    return box


def energy_pointing_game(saliency, mask) -> float:
    """Score-CAM's energy-based pointing game: the energy share inside the mask's tight bounding box."""
    m = _mask(mask)
    return energy_share(saliency, _box(m))


def pointing_hit(saliency, mask, tolerance: int = 0) -> bool:
    """Whether the map's maximum (after resizing) lies on ``mask`` or within ``tolerance`` pixels of it
    (Zhang et al. 2016 use 15 px at ImageNet scale; at 128×64 a few pixels is comparable)."""
    m = _mask(mask)
    s = _energy(saliency, m.shape)
    y, x = np.unravel_index(int(s.argmax()), s.shape)
    t = int(tolerance)
    return bool(m[max(0, y - t):y + t + 1, max(0, x - t):x + t + 1].any())


def _part_names() -> tuple[str, ...]:
    from ..data.masks import PART_NAMES

    return PART_NAMES


def part_shares(saliency, parts) -> dict[str, float]:
    """Energy share of every part of a part-label map (``{"background": …, "head": …, …}``; sums to 1)."""
    p = _np(parts, "parts").astype(np.int64)
    names = _part_names()
    if p.min(initial=0) < 0 or p.max(initial=0) >= len(names):
        raise ValueError(f"parts must hold labels 0..{len(names) - 1} ({', '.join(names)}), got {p.min()}..{p.max()}")
    s = _energy(saliency, p.shape)
    e = np.bincount(p.ravel(), weights=s.ravel(), minlength=len(names))
    return {n: float(v) for n, v in zip(names, e / e.sum())}


def part_area_shares(parts) -> dict[str, float]:
    """Area share of every part (the chance level of :func:`part_shares`)."""
    p = _np(parts, "parts").astype(np.int64)
    names = _part_names()
    c = np.bincount(p.ravel(), minlength=len(names))[:len(names)]
    return {n: float(v) for n, v in zip(names, c / c.sum())}


def attention_summary(saliencies: Sequence, part_maps: Sequence, tolerance: int = 0) -> dict:
    """Mean attention measures of maps over their images' part-label maps (one map per image).

    Returns ``{"n", "on_person", "chance", "lift", "pointing_box", "pointing_hit", "parts", "parts_chance"}``:
    mean on-person energy share, mean person area share (chance), their ratio, the mean energy-based
    pointing game, the fraction of pointing-game hits, and mean per-part energy and area shares.
    """
    if len(saliencies) != len(part_maps) or len(part_maps) == 0:
        raise ValueError(f"attention_summary: need as many maps as part maps (≥ 1), got {len(saliencies)} and "
                         f"{len(part_maps)}")
    on, chance, box, hit, parts, parts0 = [], [], [], [], [], []
    for s, p in zip(saliencies, part_maps):
        p = _np(p, "parts")
        person = p > 0
        on.append(energy_share(s, person))
        chance.append(person.mean())
        box.append(energy_pointing_game(s, person))
        hit.append(pointing_hit(s, person, tolerance))
        parts.append(part_shares(s, p))
        parts0.append(part_area_shares(p))
    names = _part_names()
    mean_on, mean_chance = float(np.mean(on)), float(np.mean(chance))
    return {"n": len(on), "on_person": mean_on, "chance": mean_chance,
            "lift": mean_on / mean_chance if mean_chance > 0 else float("nan"),
            "pointing_box": float(np.mean(box)), "pointing_hit": float(np.mean(hit)),
            "parts": {n: float(np.mean([d[n] for d in parts])) for n in names},
            "parts_chance": {n: float(np.mean([d[n] for d in parts0])) for n in names}}



def attention_summaries(maps, part_maps: Sequence, tolerance: int = 0) -> dict[str, dict]:
    """:func:`attention_summary` for each named set of maps (e.g. one Grad-CAM per MGN branch, ``{name: [B, H, W]}``)
    over the same images' part maps. A map with no energy (an all-zero Grad-CAM: every gradient negative) says
    nothing about where it looks: it is left out, and each summary counts them in ``"empty"``."""
    out = {}
    for name, batch in maps.items():
        if len(batch) != len(part_maps):
            raise ValueError(f"attention_summaries: {name!r} has {len(batch)} maps for {len(part_maps)} part maps")
        keep = [i for i, m in enumerate(batch) if float(np.clip(_np(m, "saliency"), 0, None).sum()) > 0]
        if not keep:
            raise ValueError(f"attention_summaries: every map of {name!r} is empty (all zeros): nothing to measure")
        out[name] = {**attention_summary([batch[i] for i in keep], [part_maps[i] for i in keep], tolerance),
                     "empty": len(batch) - len(keep)}
    return out


def stripe_attention(saliency, parts, stripes: int) -> list[dict]:
    """On-person and per-part energy shares of each of ``stripes`` horizontal stripes of a map.

    A part feature (PCB, MGN's Part-N branches) pools one stripe of the map, so each stripe is measured
    on its own: the stripe's rows of the map (bounds as the pooling's, :func:`reidbook.viz.response.
    stripe_bounds`: ``floor(i·h/n)`` to ``ceil((i+1)·h/n)``) against the image rows they cover. Each row
    of the result: ``{"stripe", "on_person", "chance", "lift", "parts", "parts_chance"}`` where
    ``chance`` is the person's area share within those rows.
    """
    import math

    s = _np(saliency, "saliency").astype(np.float64)
    p = _np(parts, "parts")
    h, H = s.shape[0], p.shape[0]
    if stripes < 1 or stripes > h:
        raise ValueError(f"stripes must be in 1..{h} (the map's height), got {stripes}")
    up = _energy(s, p.shape)
    out = []
    for i in range(stripes):
        a, b = math.floor(i * h / stripes), math.ceil((i + 1) * h / stripes)
        ya, yb = int(round(a * H / h)), int(round(b * H / h))
        rows_s, rows_p = up[ya:yb], p[ya:yb]
        if rows_s.sum() <= 0:
            raise ValueError(f"stripe {i + 1} of the map has no energy")
        share = float(rows_s[rows_p > 0].sum() / rows_s.sum())
        chance = float((rows_p > 0).mean())
        out.append({"stripe": i + 1, "on_person": share, "chance": chance,
                    "lift": share / chance if chance > 0 else float("nan"),
                    "parts": part_shares(rows_s, rows_p), "parts_chance": part_area_shares(rows_p)})
    return out


def branch_attention(model, images, part_maps: Sequence) -> list[dict]:
    """Where every branch of an MGN looks, measured: one row per (branch, stripe), averaged over images.

    ``images``: ``[B, 3, H, W]`` (the model's input), ``part_maps``: their part-label maps (any size;
    the maps are resized to them). The energy of a branch's map is its response, ``‖x[:, :, i, j]‖₂``
    (MGN Fig. 2/5, before the per-map normalisation used for display). The Global branch is measured
    whole (``stripe`` 0); a Part-N branch per stripe, as its features pool them. Each row:
    ``{"branch", "stripe", "on_person", "chance", "lift", "top_part", "top_part_share", "parts", "parts_chance"}``
    (``top_part``: the body part with the most energy, background excluded; ``parts_chance``: each part's
    area share within the stripe's rows, the chance level of ``parts``).
    """
    import torch

    if len(images) != len(part_maps) or len(part_maps) == 0:
        raise ValueError(f"branch_attention: need one part map per image (≥ 1), got {len(images)} images and "
                         f"{len(part_maps)} maps")
    was = model.training
    model.eval()
    try:
        with torch.no_grad():
            prm = next(model.parameters())
            maps = model.branch_maps(images.to(prm.device, prm.dtype))
    finally:
        model.train(was)
    rows = []
    names = _part_names()
    for name, m in maps.items():
        r = m.detach().float().norm(p=2, dim=1).cpu().numpy()  # [B, h, w]
        n = max(1, int(model.specs[name].parts))
        per_image = [stripe_attention(r[k], part_maps[k], n) for k in range(len(r))]
        for i in range(n):
            cells = [pi[i] for pi in per_image]
            parts = {q: float(np.mean([c["parts"][q] for c in cells])) for q in names}
            on, ch = float(np.mean([c["on_person"] for c in cells])), float(np.mean([c["chance"] for c in cells]))
            top = max(names[1:], key=lambda q: parts[q])
            parts_chance = {q: float(np.mean([c["parts_chance"][q] for c in cells])) for q in names}
            rows.append({"branch": name, "stripe": 0 if n == 1 else i + 1, "on_person": on, "chance": ch,
                         "lift": on / ch if ch > 0 else float("nan"), "top_part": top,
                         "top_part_share": parts[top], "parts": parts, "parts_chance": parts_chance})
    return rows


# ---------------------------------------------------------------------------------------------
# Any model's response map, and models compared on the same images (chapters 05/06: before and
# after pruning)
# ---------------------------------------------------------------------------------------------
def feature_map(model, images):
    """The last feature map ``[B, C, h, w]`` that ``model`` pools into its embedding, in eval mode and without
    gradients: ``model.feature_map(x)`` where the model defines it (PCB), else ``model.backbone(x)`` (the
    baseline and every model built on a backbone, pruned ones included — pruning keeps the module names)."""
    import torch

    fn = getattr(model, "feature_map", None)
    if fn is None:
        backbone = getattr(model, "backbone", None)
        if backbone is None:
            raise TypeError(f"{type(model).__name__} has neither .feature_map(x) nor .backbone: no single "
                            "feature map to measure (MGN: use branch_attention)")
        fn = backbone
    was = model.training
    model.eval()
    try:
        with torch.no_grad():
            prm = next(model.parameters())
            out = fn(images.to(prm.device, prm.dtype))
    finally:
        model.train(was)
    if out.dim() != 4:
        raise ValueError(f"{type(model).__name__}'s feature map has shape {tuple(out.shape)}; expected [B, C, h, w]")
    return out


def response_energy(model, images) -> np.ndarray:
    """``‖x[:, :, i, j]‖₂`` of :func:`feature_map` per position → ``[B, h, w]`` (the raw response, as
    :func:`branch_attention` measures it: no per-map normalisation, so the energy shares are the map's own;
    :func:`reidbook.eval.feature_attention.channel_energy`)."""
    from .feature_attention import channel_energy

    return channel_energy(feature_map(model, images), "l2")


def map_agreement(a, b) -> float:
    """Pearson correlation of two maps of one image after resizing ``b`` to ``a``'s size (1 = the same places
    light up in the same proportions; 0 = unrelated; ``nan`` when either map is constant)."""
    x = _np(a, "a").astype(np.float64).ravel()
    y = resize_map(b, _np(a, "a").shape).ravel()
    if x.std() == 0 or y.std() == 0:
        return float("nan")
    return float(np.corrcoef(x, y)[0, 1])


def compare_attention(models, images, part_maps: Sequence, reference: str | None = None) -> list[dict]:
    """Where several models look on the **same** images, measured: one row per model of ``models``
    (``{name: model}``, in order) from its last feature map (:func:`feature_map`, L2 energy over channels):
    :func:`reidbook.eval.feature_attention.map_attention`'s ``on_person``, ``chance``, ``lift``, ``top_part``,
    ``upper_body``, plus — against ``reference`` (default: the first model) — ``delta_on_person`` (difference
    of the mean on-person shares), ``agreement`` (mean :func:`map_agreement` with the reference's map of the
    same image) and ``more_on_person`` (fraction of images whose on-person share is higher than the
    reference's). Models may differ in width (pruned vs un-pruned) and map size: every map is measured at
    the part maps' size."""
    from .feature_attention import map_attention

    models = dict(models)
    if not models:
        raise ValueError("compare_attention needs at least one model")
    ref = next(iter(models)) if reference is None else reference
    if ref not in models:
        raise KeyError(f"reference {ref!r} is not one of the models {list(models)}")
    if len(images) != len(part_maps) or len(part_maps) == 0:
        raise ValueError(f"compare_attention: need one part map per image (≥ 1), got {len(images)} images and "
                         f"{len(part_maps)} maps")
    fmaps = {name: feature_map(m, images) for name, m in models.items()}
    rows = map_attention(fmaps, part_maps, norm="l2")
    energy = {name: f.detach().float().norm(p=2, dim=1).cpu().numpy() for name, f in fmaps.items()}
    person = [_np(p, "parts") > 0 for p in part_maps]
    share = {name: [energy_share(e[k], person[k]) for k in range(len(person))] for name, e in energy.items()}
    out = []
    for row in rows:
        name = row["map"]
        same = [map_agreement(energy[ref][k], energy[name][k]) for k in range(len(person))]
        out.append({"model": name, **{k: v for k, v in row.items() if k not in ("map", "stripe", "parts")},
                    "delta_on_person": row["on_person"] - float(np.mean(share[ref])),
                    "agreement": float("nan") if all(np.isnan(same)) else float(np.nanmean(same)),
                    "more_on_person": float(np.mean([a > b for a, b in zip(share[name], share[ref])]))})
    return out


def images_and_parts(dataset, items: Sequence, height: int, width: int):
    """``(images, part_maps)`` for ``items`` of ``dataset`` (e.g. the first queries of the test split): the images
    as the test transform gives them (``[B, 3, height, width]``, normalised) and their part-label maps
    (:func:`reidbook.data.load_part_map`; a data set without masks raises its
    :class:`~reidbook.data.masks.MasksNotAvailableError`)."""
    import torch

    from ..data import ImageDataset, build_transforms, load_part_map

    items = list(items)
    if not items:
        raise ValueError("images_and_parts needs at least one item (path, pid, camid)")
    ds = ImageDataset(items, build_transforms(height, width, is_train=False))
    return torch.stack([ds[i][0] for i in range(len(items))]), [load_part_map(dataset, it) for it in items]
