"""SynthReID: a procedural pedestrian re-ID data set in Market-1501 layout, generated offline.

Real re-ID data sets cannot be downloaded in the course's sandbox and are licence-bound, so the
course runs on this generator (DESIGN.md, "SynthReID"). It is built to make the papers' phenomena
*visible*, not to look photographic:

* **identities** are parametric people (:class:`Identity`): body proportions, skin, hair, a top with
  a colour and a pattern (plain, stripes, checks, a chest mark), a bottom (trousers, shorts, skirt),
  shoes and accessories (backpack, shoulder bag, hat, hand-carried item);
* **easy** identities wear saturated, distinctive colours; **hard** ones come in *look-alike
  families*: members share dark / grey / muted clothes and differ only in small local details
  (shoes, a chest mark, a hat, a bag) — a colour histogram confuses them, part features need not;
* **six cameras** (:class:`CameraSettings`) differ in illumination and colour cast, blur and
  resolution, background and clutter, viewpoint distribution, occlusion and JPEG quality; the
  chest mark is seen only from the front and the backpack mostly from the back, so viewpoint matters;
* written in **Market-1501 layout and naming** (``bounding_box_train``, ``query``,
  ``bounding_box_test``; ``0000`` distractors and ``-1`` junk in the gallery) plus
  ``attributes.csv`` (one row per identity), ``images.csv`` (viewpoint / occluder of every image)
  and ``synthreid.json`` (the settings, seed and counts);
* **tight crops** (the person fills about 0.4 of the crop, as in a detector's box) on backgrounds that
  vary per image within a camera (window, scale, clutter, tone, texture);
* beside every image, its **part-label map** ``masks/<split folder>/<name>.png`` (8-bit PNG, values
  :data:`PART_NAMES`: 0 background, 1 head, 2 torso, 3 arms, 4 legs, 5 feet, 6 bag; the person
  mask is ``label > 0``), read with :func:`reidbook.data.load_masks`;
* a **background-swapped query** ``query_bgswap/`` (same names; ``query_bgswap.csv`` says whose
  background): each query re-drawn on another camera's background, everything else unchanged, to
  measure how much a model matches on background (:func:`reidbook.eval.background_reliance`);
* a **source domain** under ``root/source/`` with other identities and other cameras, for the
  pre-training that ImageNet weights would otherwise provide;
* **deterministic by seed** (every image has its own seeded generator, so the result does not
  depend on the number of worker processes) and fast (``quick`` in seconds).

Departure from Market-1501: identity numbers of the source domain continue after the target's so
that "disjoint identities" is visible in the file names too; every name uses sequence ``s1``.
"""
from __future__ import annotations

import contextlib
import csv
import hashlib
import io
import json
import os
import shutil
import signal
import sys
import tempfile
import threading
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path

import numpy as np
from PIL import Image

from ..utils import atomic_write_json, progress, say
from .masks import BGSWAP_DIR, MASKS_DIR  # <domain>/masks/<split folder>/<image stem>.png: the part-label map
from .synth_draw import (
    COLORS,
    EASY_COLORS,
    HAIR_COLORS,
    HARD_COLORS,
    PART_NAMES,
    SKIN_TONES,
    VIEWS,
    Look,
    apply_camera,
    background,
    camera_scene,
    downsample_labels,
    draw_occluder,
    draw_person,
    jitter_color,
)

__all__ = ["make_synthetic", "SynthSettings", "CameraSettings", "SIZES", "TARGET_CAMERAS", "SOURCE_CAMERAS",
           "Identity", "sample_identities", "identity_look", "render_image", "GENERATOR_VERSION",
           "SPLIT_DIRS", "SynthReIDDamagedError", "MANIFEST_NAME", "verify_synthetic", "render_arrays", "MASKS_DIR",
           "PART_NAMES"]

GENERATOR_VERSION = "2.0"  # 2.0: tight crops, per-image backgrounds, part masks (masks/)
SPLIT_DIRS = {"train": "bounding_box_train", "query": "query", "gallery": "bounding_box_test"}
SWAP_DOMAIN = 2  # a render task of the background-swapped query (query_bgswap/)
PERSON_ASPECT = 1.1  # a detector's box (aspect ~0.41) resized to the 1:2 crop widens the person ~1.1-1.2×
MANIFEST_NAME = "manifest.json"       # size and SHA-256 of every image (both domains), written at generation
_TMP_MARKER = ".reidbook-synth-tmp"   # in a temporary folder being generated: the pid that owns it


class SynthReIDDamagedError(ValueError):
    """A SynthReID folder whose files differ from what was generated (missing, extra, empty, changed)."""


# ----------------------------------------------------------------------------------------------
# settings
# ----------------------------------------------------------------------------------------------
@dataclass(frozen=True)
class CameraSettings:
    """One camera's nuisances. ``gain`` is the RGB colour cast; ``view_probs`` = (front, back, left, right)."""
    name: str
    gain: tuple[float, float, float]
    brightness: float
    contrast: float
    gamma: float
    blur: float                 # Gaussian radius in pixels at 64 px width
    res_factor: float           # > 1: captured at 1/res_factor resolution, upsampled
    noise: float                # sensor noise sigma, 0..255 units
    jpeg_quality: tuple[int, int]
    wall: tuple[int, int, int]
    ground: tuple[int, int, int]
    accent: tuple[int, int, int]
    horizon: float              # where the ground starts, fraction of the height
    clutter: float              # 0..1 background clutter density
    view_probs: tuple[float, float, float, float]
    occlusion: float            # probability of an occluder in front of the person
    misalign: float             # bounding-box shift/scale jitter multiplier (detector quality)


TARGET_CAMERAS: tuple[CameraSettings, ...] = (
    CameraSettings("c1 sunny square", (1.06, 1.0, 0.94), 1.1, 1.05, 0.95, 0.0, 1.0, 3.0, (85, 95),
                   (170, 165, 155), (145, 142, 135), (95, 90, 85), 0.62, 0.3, (0.45, 0.35, 0.1, 0.1), 0.15, 0.8),
    CameraSettings("c2 warm street", (1.15, 1.0, 0.82), 1.0, 1.0, 1.0, 0.4, 1.0, 4.0, (75, 90),
                   (150, 130, 115), (115, 108, 100), (70, 60, 55), 0.6, 0.6, (0.2, 0.2, 0.3, 0.3), 0.25, 1.0),
    CameraSettings("c3 shaded arcade", (0.9, 0.96, 1.12), 0.8, 0.9, 1.1, 0.7, 1.3, 5.0, (70, 85),
                   (100, 105, 112), (80, 82, 88), (150, 155, 160), 0.65, 0.5, (0.15, 0.55, 0.15, 0.15), 0.3, 1.0),
    CameraSettings("c4 indoor hall", (0.95, 1.08, 0.92), 0.72, 0.85, 1.15, 0.6, 1.6, 8.0, (60, 80),
                   (135, 140, 130), (105, 105, 100), (190, 190, 175), 0.55, 0.8, (0.3, 0.3, 0.2, 0.2), 0.35, 1.2),
    CameraSettings("c5 glare gate", (1.0, 1.0, 1.05), 1.2, 0.85, 0.95, 0.9, 1.0, 4.0, (75, 95),
                   (190, 192, 195), (165, 165, 162), (110, 115, 120), 0.7, 0.2, (0.1, 0.1, 0.4, 0.4), 0.2, 0.9),
    CameraSettings("c6 far corner", (1.05, 0.97, 1.03), 0.95, 1.1, 1.0, 0.5, 1.9, 6.0, (45, 70),
                   (125, 115, 118), (90, 88, 90), (60, 100, 70), 0.58, 1.0, (0.3, 0.3, 0.2, 0.2), 0.4, 1.4),
)
# the source domain: other places, other light (night, dusk, fog...), same kind of people
SOURCE_CAMERAS: tuple[CameraSettings, ...] = (
    CameraSettings("s1 dusk", (1.1, 0.92, 1.06), 0.72, 0.95, 1.05, 0.5, 1.2, 6.0, (70, 90),
                   (110, 100, 115), (75, 72, 80), (200, 160, 100), 0.6, 0.5, (0.3, 0.3, 0.2, 0.2), 0.25, 1.0),
    CameraSettings("s2 fog", (1.0, 1.03, 1.06), 1.15, 0.65, 0.9, 1.1, 1.2, 4.0, (70, 90),
                   (175, 178, 182), (150, 153, 156), (125, 128, 132), 0.6, 0.3, (0.25, 0.25, 0.25, 0.25), 0.2, 1.0),
    CameraSettings("s3 neon night", (0.9, 0.85, 1.2), 0.65, 1.15, 1.1, 0.4, 1.4, 9.0, (55, 80),
                   (50, 50, 62), (55, 55, 58), (200, 80, 160), 0.62, 0.9, (0.35, 0.35, 0.15, 0.15), 0.3, 1.2),
    CameraSettings("s4 park", (0.96, 1.1, 0.92), 1.05, 1.0, 1.0, 0.3, 1.0, 3.0, (80, 95),
                   (105, 130, 100), (120, 115, 95), (70, 95, 60), 0.5, 0.7, (0.2, 0.2, 0.3, 0.3), 0.3, 0.9),
    CameraSettings("s5 station", (1.06, 1.03, 0.9), 0.9, 1.1, 1.0, 0.6, 1.5, 7.0, (60, 85),
                   (155, 150, 140), (130, 128, 124), (50, 70, 140), 0.55, 0.8, (0.4, 0.4, 0.1, 0.1), 0.35, 1.2),
    CameraSettings("s6 low sun", (1.18, 1.04, 0.84), 1.2, 1.1, 0.9, 0.2, 1.0, 4.0, (75, 95),
                   (185, 160, 135), (160, 140, 120), (95, 70, 50), 0.65, 0.4, (0.1, 0.2, 0.35, 0.35), 0.2, 0.9),
)


@dataclass(frozen=True)
class SynthSettings:
    """Sizes and mix of one SynthReID profile (see :data:`SIZES`). Image size is ``height × width``.

    Per-identity image counts vary uniformly around the given means: ±25 % (training) and ±60 %
    (gallery; real galleries are uneven, some people pass once, some linger).
    """
    height: int
    width: int
    train_ids: int
    test_ids: int
    train_images: int            # mean images per training identity
    query_per_id: int            # at most one query per camera, at most this many per identity
    gallery_images: int          # mean gallery images per test identity
    distractors: int             # pid 0000 gallery images (bad detections, background)
    junk: int                    # pid -1 gallery images (partial bodies; ignored by the official protocol)
    source_train_ids: int
    source_test_ids: int
    source_images: int           # mean images per source identity
    hard_fraction: float = 0.4   # fraction of identities drawn from look-alike families
    family_size: tuple[int, int] = (3, 6)
    cams_per_id: tuple[int, int] = (2, 5)
    supersample: int = 2
    num_cameras: int = 6

    @property
    def num_ids(self) -> int:
        return self.train_ids + self.test_ids


# quick: 12 training images per identity (was 16 until stop 18): every quick training's epoch is a quarter
# shorter, what the course needed to fit its 15 minutes on 2 cores (issue 22); the test split keeps its size.
SIZES: dict[str, SynthSettings] = {
    "smoke": SynthSettings(128, 64, train_ids=24, test_ids=24, train_images=7, query_per_id=2, gallery_images=7,
                           distractors=16, junk=8, source_train_ids=40, source_test_ids=0, source_images=6),
    "quick": SynthSettings(128, 64, train_ids=200, test_ids=200, train_images=12, query_per_id=3,
                           gallery_images=12, distractors=400, junk=150, source_train_ids=300, source_test_ids=60,
                           source_images=10),
    "full": SynthSettings(256, 128, train_ids=751, test_ids=750, train_images=17, query_per_id=6,
                          gallery_images=17, distractors=2793, junk=3819, source_train_ids=1500,
                          source_test_ids=300, source_images=14),
}


# ----------------------------------------------------------------------------------------------
# identities
# ----------------------------------------------------------------------------------------------
@dataclass
class Identity:
    """One person's attributes: a row of ``attributes.csv``. Colours are names from ``synth_draw``."""
    pid: int
    split: str
    difficulty: str              # "easy" or "hard"
    family: int                  # look-alike family of a hard identity, -1 for easy ones
    build: float
    height: float
    head: float
    waist: float
    skin: str
    hair_color: str
    hair_style: str
    top_color: str
    top_pattern: str
    pattern_color: str
    mark_shape: str
    sleeves: str
    bottom_type: str
    bottom_color: str
    shoe_color: str
    backpack: str                # a colour name or "none"
    shoulder_bag: str
    bag_side: int
    hat: str
    carried_item: str
    item_side: int
    look_seed: int = field(default=0)


_SHOES = ["black", "white", "red", "dark brown", "grey", "blue", "beige"]


def _pick(rng: np.random.Generator, names, p=None) -> str:
    names = list(names)
    return names[int(rng.choice(len(names), p=p))]


def _opt(rng: np.random.Generator, prob: float, names) -> str:
    return _pick(rng, names) if rng.random() < prob else "none"


def _body(rng: np.random.Generator) -> dict:
    return dict(build=round(float(rng.uniform(0.85, 1.2)), 3), height=round(float(rng.uniform(0.92, 1.04)), 3),
                head=round(float(rng.uniform(0.9, 1.12)), 3), waist=round(float(rng.uniform(0.47, 0.53)), 3),
                skin=_pick(rng, SKIN_TONES), hair_color=_pick(rng, HAIR_COLORS),
                hair_style=_pick(rng, ["short", "long", "ponytail", "bald"], [0.5, 0.25, 0.13, 0.12]))


def _easy(rng: np.random.Generator, pid: int, split: str) -> Identity:
    """A distinctive person: saturated top, often a pattern, accessories in any colour."""
    top = _pick(rng, EASY_COLORS)
    pattern = _pick(rng, ["plain", "stripes", "checks", "chest_mark"], [0.35, 0.25, 0.15, 0.25])
    return Identity(
        pid, split, "easy", -1, **_body(rng), top_color=top, top_pattern=pattern,
        pattern_color=_pick(rng, [c for c in COLORS if c != top]),
        mark_shape=_pick(rng, ["circle", "square", "triangle", "bar"]),
        sleeves=_pick(rng, ["long", "short"]), bottom_type=_pick(rng, ["trousers", "shorts", "skirt"], [0.6, 0.2, 0.2]),
        bottom_color=_pick(rng, EASY_COLORS) if rng.random() < 0.6 else _pick(rng, HARD_COLORS),
        shoe_color=_pick(rng, _SHOES), backpack=_opt(rng, 0.3, COLORS), shoulder_bag=_opt(rng, 0.2, COLORS),
        bag_side=int(rng.choice([-1, 1])), hat=_opt(rng, 0.2, COLORS), carried_item=_opt(rng, 0.15, COLORS),
        item_side=int(rng.choice([-1, 1])), look_seed=int(rng.integers(2**31)))


def _hard_family(rng: np.random.Generator, pids: list[int], split: str, family: int) -> list[Identity]:
    """Look-alikes: one dark/muted outfit, skin and hair colour; members differ only in local details
    (shoes, chest mark, hat, bags, hair style, sleeve length)."""
    body = _body(rng)
    template = dict(top_color=_pick(rng, HARD_COLORS), bottom_color=_pick(rng, HARD_COLORS),
                    bottom_type=_pick(rng, ["trousers", "shorts", "skirt"], [0.8, 0.1, 0.1]),
                    mark_shape=_pick(rng, ["circle", "square", "triangle", "bar"]))
    muted = list(HARD_COLORS)
    look_seed = int(rng.integers(2**31))  # shared: the family's clothes get the very same shades
    out = []
    for pid in pids:
        mark = rng.random() < 0.5
        own = {"build": round(float(body["build"] * rng.uniform(0.95, 1.05)), 3),  # shapes a histogram barely sees
               "hair_style": _pick(rng, ["short", "long", "ponytail", "bald"], [0.5, 0.25, 0.13, 0.12])}
        out.append(Identity(
            pid, split, "hard", family, **{**body, **own}, sleeves=_pick(rng, ["long", "short"], [0.6, 0.4]),
            top_pattern="chest_mark" if mark else "plain",
            pattern_color=_pick(rng, EASY_COLORS) if mark else template["top_color"],
            shoe_color=_pick(rng, _SHOES), backpack=_opt(rng, 0.3, muted), shoulder_bag=_opt(rng, 0.25, COLORS),
            bag_side=int(rng.choice([-1, 1])), hat=_opt(rng, 0.3, COLORS), carried_item=_opt(rng, 0.2, COLORS),
            item_side=int(rng.choice([-1, 1])), look_seed=look_seed, **template))
    return out


def sample_identities(pids: list[int], split: str, hard_fraction: float, family_size: tuple[int, int],
                      rng: np.random.Generator) -> list[Identity]:
    """Identities for ``pids`` in one split: ~``hard_fraction`` of them in look-alike families.

    Families never cross splits, so a test family's look-alikes are all in the test gallery.
    """
    n_hard = int(round(hard_fraction * len(pids)))
    order = [int(p) for p in rng.permutation(np.asarray(pids, dtype=np.int64))]
    out: list[Identity] = []
    i, fam = 0, 0
    while i < n_hard:
        k = min(int(rng.integers(family_size[0], family_size[1] + 1)), n_hard - i)
        out += _hard_family(rng, order[i:i + k], split,
                            fam + 1000 * (split != "train") + 2000 * split.startswith("source"))
        i, fam = i + k, fam + 1
    out += [_easy(rng, pid, split) for pid in order[n_hard:]]
    return sorted(out, key=lambda t: t.pid)


def identity_look(ident: Identity) -> Look:
    """The drawable :class:`~reidbook.data.synth_draw.Look` of an identity (colours slightly jittered)."""
    rng = np.random.default_rng(ident.look_seed)

    def col(name: str, amount: float = 10):
        return None if name == "none" else jitter_color(COLORS.get(name) or HAIR_COLORS.get(name), rng, amount)

    return Look(build=ident.build, height=ident.height, head=ident.head, waist=ident.waist,
                skin=jitter_color(SKIN_TONES[ident.skin], rng, 8),
                hair=jitter_color(HAIR_COLORS[ident.hair_color], rng, 8),
                hair_style=ident.hair_style, top=col(ident.top_color), top_pattern=ident.top_pattern,
                pattern=col(ident.pattern_color), mark_shape=ident.mark_shape, sleeves=ident.sleeves,
                bottom=col(ident.bottom_color), bottom_type=ident.bottom_type,
                shoes=col(ident.shoe_color),
                backpack=col(ident.backpack), bag=col(ident.shoulder_bag), bag_side=ident.bag_side,
                hat=col(ident.hat), item=col(ident.carried_item), item_side=ident.item_side)


def random_look(rng: np.random.Generator) -> Look:
    """A passer-by (occluders, distractors): an identity that belongs to no split."""
    ident = _easy(rng, 0, "none") if rng.random() < 0.5 else _hard_family(rng, [0], "none", -1)[0]
    return identity_look(ident)


# ----------------------------------------------------------------------------------------------
# the plan: which image of whom, where, from which side
# ----------------------------------------------------------------------------------------------
@dataclass(frozen=True)
class Job:
    """One image to render. ``kind`` is ``"person"``, ``"distractor"`` (pid 0) or ``"junk"`` (pid -1)."""
    uid: int                    # index in the domain's plan: the image's own random stream
    split: str                  # "train", "query", "gallery"
    name: str                   # Market-1501 file name
    pid: int
    cam: int                    # 1-based, as in the file name
    view: str
    occluder: str               # "none", "pole", "low", "person"
    kind: str


def market_name(pid: int, cam: int, frame: int, n: int) -> str:
    """``0002_c1s1_000451_03.jpg``; junk is ``-1_c1s1_…``, distractors ``0000_…``."""
    head = "-1" if pid < 0 else f"{pid:04d}"
    return f"{head}_c{cam}s1_{frame:06d}_{n:02d}.jpg"


def _around(rng: np.random.Generator, mean: int, spread: float = 0.25) -> int:
    """An image count uniformly within ±``spread`` of ``mean`` (at least 1)."""
    lo, hi = max(1, int(round(mean * (1 - spread)))), max(1, int(round(mean * (1 + spread))))
    return int(rng.integers(lo, hi + 1))


def _spread(rng: np.random.Generator, n: int, cams: list[int]) -> list[int]:
    """``n`` images over ``cams``: one per camera first, the rest with uneven (Dirichlet) weights."""
    out = list(cams[:n])
    if n > len(cams):
        w = rng.dirichlet(np.ones(len(cams)))
        out += [cams[int(i)] for i in rng.choice(len(cams), n - len(cams), p=w)]
    return out


def plan_domain(identities: list[Identity], cameras: tuple[CameraSettings, ...], settings: SynthSettings,
                rng: np.random.Generator, train_mean: int, gallery_mean: int, distractors: int,
                junk: int) -> list[Job]:
    """Every image of one domain: per identity, the cameras that saw it, one tracklet per camera.

    A tracklet has a dominant viewpoint drawn from the camera's distribution (people walk past a
    camera in one direction) and increasing frame numbers. Test identities are seen by ≥ 2
    cameras; at most one query per camera (as in Market-1501), and every camera that saw the
    identity also has ≥ 1 gallery image, so every query has a cross-camera true match.
    """
    nc = len(cameras)
    jobs: list[Job] = []
    taken: set[str] = set()

    def add(split, pid, cam, view, frame, n, kind):
        name = market_name(pid, cam, frame, n)
        assert name not in taken, name
        taken.add(name)
        cs = cameras[cam - 1]
        occ = "none"
        if rng.random() < cs.occlusion:
            occ = _pick(rng, ["pole", "low", "person"], [0.35, 0.3, 0.35])
        jobs.append(Job(len(jobs), split, name, pid, cam, view, occ, kind))

    for ident in identities:
        lo, hi = settings.cams_per_id
        k = int(np.clip(rng.integers(lo, hi + 1), 2, nc))
        cams = sorted(int(c) + 1 for c in rng.choice(nc, k, replace=False))
        track = {}
        for c in cams:
            main = VIEWS[int(rng.choice(4, p=cameras[c - 1].view_probs))]
            track[c] = [main, int(rng.integers(0, 150_000))]

        def one(split, c, track=track, ident=ident):
            t = track[c]
            view = t[0] if rng.random() < 0.75 else VIEWS[int(rng.choice(4, p=cameras[c - 1].view_probs))]
            t[1] += int(rng.integers(4, 40))
            add(split, ident.pid, c, view, t[1], int(rng.integers(1, 5)), "person")

        if ident.split == "train":
            for c in sorted(_spread(rng, _around(rng, train_mean), list(rng.permutation(cams)))):
                one("train", int(c))
        else:
            qcams = sorted(int(c) for c in rng.choice(cams, min(settings.query_per_id, k), replace=False))
            for c in qcams:
                one("query", c)
            n_g = max(k, _around(rng, gallery_mean, 0.6))  # real galleries are very uneven
            for c in sorted(_spread(rng, n_g, list(rng.permutation(cams)))):
                one("gallery", int(c))
    counters = {c: int(rng.integers(0, 1000)) for c in range(1, nc + 1)}
    for kind, pid, count in (("distractor", 0, distractors), ("junk", -1, junk)):
        for _ in range(count):
            c = int(rng.integers(1, nc + 1))
            counters[c] += int(rng.integers(5, 60))
            add("gallery", pid, c, VIEWS[int(rng.integers(4))], counters[c], int(rng.integers(1, 9)), kind)
    return jobs


# ----------------------------------------------------------------------------------------------
# rendering one job
# ----------------------------------------------------------------------------------------------
def render_arrays(job: Job, look: Look | None, cam: CameraSettings, scene: Image.Image, settings: SynthSettings,
                  rng: np.random.Generator, bg_scene: Image.Image | None = None,
                  bg_cam: CameraSettings | None = None) -> tuple[np.ndarray, np.ndarray]:
    """One image ``uint8 [H, W, 3]`` (before JPEG) and its part-label map ``uint8 [H, W]`` (0 = background).

    ``person``: the identity's look in a tight box, as a detector's: drawn 0.93–1.0 × ``look.height``
    crop heights tall and :data:`PERSON_ASPECT` × wider, shifted and scaled as an imperfect detector would.
    ``distractor`` (0000): background only, a far-away passer-by, or a box that misses the person.
    ``junk`` (-1): a box on a fragment of a passer-by (head and shoulders, or legs).
    The label map marks the crop's subject (for a distractor or junk, the passer-by it shows); what
    stands in front of it (occluders) is background. The background is drawn from its own random
    stream, so ``bg_scene``/``bg_cam`` (another camera's scene and palette) change the background
    and nothing else: person, pose, occluders and the camera's light, blur and noise stay the same.
    """
    S = settings.supersample
    H2, W2 = settings.height * S, settings.width * S
    bg_rng = np.random.default_rng(int(rng.integers(2**63)))  # the background's own stream
    img = background(scene if bg_scene is None else bg_scene, cam if bg_cam is None else bg_cam, W2, H2, bg_rng)
    labels = Image.new("L", (W2, H2), 0)
    m = cam.misalign
    if job.kind == "person":
        hp = H2 * look.height * rng.uniform(0.93, 1.0) * (1 + float(np.clip(rng.normal(0, 0.04 * m), -0.1, 0.1)))
        cx = W2 / 2 + float(np.clip(rng.normal(0, 0.05 * m), -0.15, 0.15)) * W2
        top = (H2 - hp) / 2 + float(np.clip(rng.normal(0, 0.03 * m), -0.08, 0.08)) * H2
        draw_person(img, look, job.view, cx, top, hp, rng, labels=labels, aspect=PERSON_ASPECT)
    else:
        other = random_look(rng)
        r = rng.random()
        if job.kind == "junk":
            hp = H2 * rng.uniform(1.8, 3.0)
            top = -rng.uniform(0, hp - H2)
            draw_person(img, other, job.view, W2 / 2 + rng.normal(0, 0.1) * W2, top, hp, rng, labels=labels)
        elif r < 0.35:
            pass  # a box on the background
        elif r < 0.7:
            hp = H2 * rng.uniform(0.3, 0.55)
            draw_person(img, other, job.view, rng.uniform(0.2, 0.8) * W2, rng.uniform(0.1, 0.9) * (H2 - hp), hp, rng,
                        labels=labels)
        else:
            draw_person(img, other, job.view, W2 * (0.5 + rng.choice([-1, 1]) * rng.uniform(0.55, 0.8)),
                        rng.uniform(0, 0.1) * H2, H2 * rng.uniform(0.85, 1.0), rng, labels=labels)
    if job.occluder != "none":
        draw_occluder(img, job.occluder, cam, rng, other=random_look(rng) if job.occluder == "person" else None,
                      labels=labels)
    out = (settings.height, settings.width)
    return apply_camera(img, cam, out, rng), downsample_labels(labels, out)


def render_image(job: Job, look: Look | None, cam: CameraSettings, scene: Image.Image, settings: SynthSettings,
                 rng: np.random.Generator, bg_scene: Image.Image | None = None,
                 bg_cam: CameraSettings | None = None) -> tuple[bytes, bytes]:
    """The JPEG bytes of one image and the PNG bytes of its part-label map (see :func:`render_arrays`)."""
    arr, labels = render_arrays(job, look, cam, scene, settings, rng, bg_scene, bg_cam)
    buf = io.BytesIO()
    Image.fromarray(arr).save(buf, "JPEG", quality=int(rng.integers(cam.jpeg_quality[0], cam.jpeg_quality[1] + 1)))
    png = io.BytesIO()
    Image.fromarray(labels, "L").save(png, "PNG", compress_level=1)  # 7 values: level 1 is nearly as small
    return buf.getvalue(), png.getvalue()


def mask_name(image_name: str) -> str:
    """The part-label map's file name for an image: ``0002_c1s1_000451_03.jpg`` → ``0002_c1s1_000451_03.png``."""
    return os.path.splitext(image_name)[0] + ".png"


# Worker state: set once per process by _init_worker (the plan can be large; send it once).
_CTX: dict = {}


def _init_worker(ctx: dict, parent_pid: int | None = None) -> None:
    _CTX.clear()
    _CTX.update(ctx)
    _CTX["scenes"] = {}
    if parent_pid is not None:  # a render process: it ends with the command that started it
        signal.signal(signal.SIGINT, signal.SIG_IGN)  # Ctrl-C is the parent's to handle (it stops the pool)
        signal.signal(signal.SIGTERM, signal.SIG_DFL)  # not the parent's handler (inherited through fork)
        if hasattr(signal, "pthread_sigmask"):  # forked while the parent held them back (see _render_all)
            signal.pthread_sigmask(signal.SIG_UNBLOCK, {signal.SIGINT, signal.SIGTERM})
        _die_with_parent(parent_pid)


def _die_with_parent(parent_pid: int) -> None:
    """End this worker when ``parent_pid`` ends, however it ends (SIGKILL included).

    Linux: ``prctl(PR_SET_PDEATHSIG, SIGKILL)`` makes the kernel kill us with our parent. Everywhere (and
    in case the parent died before the call): a daemon thread checks every half second that the parent
    is still our parent, and exits the process otherwise.
    """
    if sys.platform.startswith("linux"):
        try:
            import ctypes

            libc = ctypes.CDLL(None, use_errno=True)
            libc.prctl(1, signal.SIGKILL, 0, 0, 0)  # PR_SET_PDEATHSIG = 1
        except (OSError, AttributeError):
            pass
    if os.getppid() != parent_pid:
        os._exit(1)

    def watch() -> None:
        while True:
            time.sleep(0.5)
            if os.getppid() != parent_pid:
                os._exit(1)

    threading.Thread(target=watch, name="reidbook-parent-watch", daemon=True).start()


def _scene(domain: int, cam: int) -> Image.Image:
    """The street scene of camera ``cam`` (1-based) of a domain, drawn once per process."""
    key = (domain, cam)
    if key not in _CTX["scenes"]:
        st: SynthSettings = _CTX["settings"]
        srng = np.random.default_rng([_CTX["seed"], domain, 1, cam])
        _CTX["scenes"][key] = camera_scene(_CTX["cameras"][domain][cam - 1], st.height * st.supersample,
                                           st.width * st.supersample, srng)
    return _CTX["scenes"][key]


def swap_camera(seed: int, job: Job, num_cameras: int) -> int:
    """The camera (1-based, never ``job.cam``) whose background replaces the query's in ``query_bgswap/``."""
    k = int(np.random.default_rng([seed, 0, 3, job.uid]).integers(1, num_cameras))
    return (job.cam - 1 + k) % num_cameras + 1


def _render_chunk(tasks: list[tuple[int, Job]]) -> list[tuple[str, int, str]]:
    """Render and write ``(domain, job)`` pairs; a domain is 0 (target) or 1 (source), or
    :data:`SWAP_DOMAIN`: a target query re-drawn on another camera's background into ``query_bgswap/``.

    Returns the manifest rows ``(path relative to the data set root, size, SHA-256)`` of the files written.
    """
    st: SynthSettings = _CTX["settings"]
    seed = _CTX["seed"]
    rows: list[tuple[str, int, str]] = []
    for task, job in tasks:
        domain = 0 if task == SWAP_DOMAIN else task
        cams = _CTX["cameras"][domain]
        bg = {}
        if task == SWAP_DOMAIN:  # same random stream as the query: only the background differs
            other = swap_camera(seed, job, st.num_cameras)
            bg = {"bg_scene": _scene(domain, other), "bg_cam": cams[other - 1]}
        rng = np.random.default_rng([seed, domain, 2, job.uid])
        data, mask = render_image(job, _CTX["looks"][domain].get(job.pid), cams[job.cam - 1], _scene(domain, job.cam),
                                  st, rng, **bg)
        folder = BGSWAP_DIR if task == SWAP_DOMAIN else SPLIT_DIRS[job.split]
        rel = f"{folder}/{job.name}"
        for r, b in ((rel, data), (f"{MASKS_DIR}/{folder}/{mask_name(job.name)}", mask)):
            with open(Path(_CTX["dirs"][domain]) / r, "wb") as f:
                f.write(b)
            rows.append((("source/" if domain else "") + r, len(b), hashlib.sha256(b).hexdigest()))
    return rows


# ----------------------------------------------------------------------------------------------
# writing a data set
# ----------------------------------------------------------------------------------------------
def _write_csv(path: Path, rows: list[dict]) -> None:
    with open(path, "w", newline="") as f:
        w = csv.DictWriter(f, fieldnames=list(rows[0]))
        w.writeheader()
        w.writerows(rows)


def _domain_counts(jobs: list[Job]) -> dict:
    out = {}
    for split in SPLIT_DIRS:
        js = [j for j in jobs if j.split == split]
        out[split] = {"images": len(js), "ids": len({j.pid for j in js if j.kind == "person"})}
    out["gallery"]["distractors"] = sum(j.kind == "distractor" for j in jobs)
    out["gallery"]["junk"] = sum(j.kind == "junk" for j in jobs)
    return out


def _expected_meta(profile: str, seed: int, settings: SynthSettings) -> dict:
    """What ``synthreid.json`` records about how the data set was made (counts are added later)."""
    return json.loads(json.dumps({
        "name": "SynthReID", "version": GENERATOR_VERSION, "profile": profile, "seed": int(seed),
        "settings": asdict(settings), "cameras": [asdict(c) for c in TARGET_CAMERAS[:settings.num_cameras]],
        "source_cameras": [asdict(c) for c in SOURCE_CAMERAS[:settings.num_cameras]],
        "layout": "Market-1501", "source_dir": "source",
    }))


def _expected_files(root: Path) -> dict[str, tuple[int | None, str | None]]:
    """``{path relative to root: (size, SHA-256)}`` from ``manifest.json``; for a data set generated before
    manifests existed, the names from ``images.csv`` with unknown size and hash."""
    manifest = root / MANIFEST_NAME
    if manifest.is_file():
        files = json.loads(manifest.read_text())["files"]
        return {rel: (int(size), str(digest)) for rel, (size, digest) in files.items()}
    out: dict[str, tuple[int | None, str | None]] = {}
    for sub in ("", "source/"):
        with open(root / sub / "images.csv", newline="") as f:
            for row in csv.DictReader(f):
                out[f"{sub}{row['folder']}/{row['name']}"] = (None, None)
    return out


def _actual_files(root: Path) -> dict[str, int]:
    """``{path relative to root: size}`` of every (non-hidden) file in the split folders of both domains
    (images and their part masks)."""
    out: dict[str, int] = {}
    for sub in ("", "source/"):
        folders = [*SPLIT_DIRS.values(), *([BGSWAP_DIR] if not sub else [])]
        for folder in [*folders, *(f"{MASKS_DIR}/{v}" for v in folders)]:
            d = root / sub / folder
            if not d.is_dir():
                continue
            with os.scandir(d) as it:
                for e in it:
                    if not e.name.startswith(".") and e.is_file():
                        out[f"{sub}{folder}/{e.name}"] = e.stat().st_size
    return out


def verify_synthetic(root: str | os.PathLike, hashes: bool = True) -> list[str]:
    """What is wrong with the SynthReID at ``root``, one string per damaged file (empty: intact).

    Every image is compared with ``manifest.json`` (written at generation): missing files, files that are
    not part of the data set (e.g. renamed ones), sizes and, with ``hashes=True``, SHA-256 digests. A
    data set from before manifests existed is checked against ``images.csv``: names, and no empty file.
    """
    root = Path(root)
    try:
        expected = _expected_files(root)
    except (OSError, ValueError, KeyError, TypeError) as e:
        return [f"{MANIFEST_NAME} / images.csv unreadable ({type(e).__name__}: {e})"]
    actual = _actual_files(root)
    problems = []
    for rel in sorted(set(expected) - set(actual)):
        problems.append(f"{rel} is missing")
    for rel in sorted(set(actual) - set(expected)):
        problems.append(f"{rel} is not part of the data set (renamed or added?)")
    for rel in sorted(set(expected) & set(actual)):
        size, digest = expected[rel]
        have = actual[rel]
        if have == 0:
            problems.append(f"{rel} is empty (0 bytes{'' if size is None else f'; expected {size}'})")
        elif size is not None and have != size:
            problems.append(f"{rel} has {have} bytes, expected {size}")
        elif hashes and digest is not None:
            with open(root / rel, "rb") as f:
                if hashlib.sha256(f.read()).hexdigest() != digest:
                    problems.append(f"{rel} changed (its SHA-256 differs from the manifest)")
    return problems


def _damaged_error(root: Path, meta: dict, problems: list[str]) -> SynthReIDDamagedError:
    shown = "; ".join(problems[:6]) + (f"; … and {len(problems) - 6} more" if len(problems) > 6 else "")
    return SynthReIDDamagedError(
        f"the SynthReID at {root} is damaged: {len(problems)} file(s) differ from what was generated: {shown}. "
        f"Fix: delete the folder {root} and run `reidbook synth {root} --profile {meta.get('profile')} --seed "
        f"{meta.get('seed')}` again (the same seed gives the same files back).")


def _check_existing(root: Path, want: dict, verify: bool = False) -> bool:
    """True if ``root`` already holds this exact, intact data set; raise if it holds something else or is
    damaged (:class:`SynthReIDDamagedError` names the files). Sizes and names are always checked (cheap);
    ``verify=True`` also compares every file's SHA-256 with the manifest."""
    if not root.exists():
        return False
    if not root.is_dir():
        raise FileExistsError(f"SynthReID target {root} exists and is not a folder; pass another root.")
    meta_path = root / "synthreid.json"
    if not meta_path.is_file():
        if any(root.iterdir()):
            raise FileExistsError(
                f"{root} is not empty and has no synthreid.json, so it is not a SynthReID folder; refusing to "
                "overwrite it. Pass an empty or non-existing folder to make_synthetic(root=...).")
        return False
    try:
        have = json.loads(meta_path.read_text())
    except (OSError, ValueError) as e:
        raise ValueError(f"{meta_path} is unreadable ({e}); delete the folder {root} and generate again.") from e
    have_core = {k: have.get(k) for k in want}
    if have_core != want:
        diff = [k for k in want if have.get(k) != want[k]]
        raise ValueError(
            f"{root} holds a different SynthReID (differs in: {', '.join(diff)}; it has profile="
            f"{have.get('profile')!r}, seed={have.get('seed')}, version={have.get('version')!r}). "
            "Use another root for these arguments, or delete that folder to regenerate it.")
    problems = verify_synthetic(root, hashes=verify)
    for name in ("attributes.csv", "source/attributes.csv"):
        if not (root / name).is_file():
            problems.append(f"{name} is missing")
    if problems:
        raise _damaged_error(root, have, problems)
    return True


def _build_domain(settings: SynthSettings, seed: int, domain: int, first_pid: int) -> tuple[list[Identity], list[Job]]:
    """Identities and plan of the target (``domain=0``) or source (``domain=1``) domain."""
    rng = np.random.default_rng([seed, domain, 0])
    if domain == 0:
        n_tr, n_te = settings.train_ids, settings.test_ids
        tr_mean, ga_mean = settings.train_images, settings.gallery_images
        n_dis, n_junk, cams = settings.distractors, settings.junk, TARGET_CAMERAS
    else:
        n_tr, n_te, tr_mean = settings.source_train_ids, settings.source_test_ids, settings.source_images
        ga_mean, n_dis, n_junk, cams = settings.source_images, 0, 0, SOURCE_CAMERAS
    pids = first_pid + rng.permutation(n_tr + n_te)
    tr, te = sorted(int(p) for p in pids[:n_tr]), sorted(int(p) for p in pids[n_tr:])
    idents = sample_identities(tr, "train", settings.hard_fraction, settings.family_size, rng)
    idents += sample_identities(te, "test", settings.hard_fraction, settings.family_size, rng)
    idents.sort(key=lambda t: t.pid)
    jobs = plan_domain(idents, cams[:settings.num_cameras], settings, rng, tr_mean, ga_mean, n_dis, n_junk)
    return idents, jobs


def _render_all(ctx: dict, chunks: list, workers: int):
    """Yield each chunk's manifest rows, rendered here (``workers == 1``) or by a pool of processes that
    ignore Ctrl-C, die with this process and are terminated (not awaited) when anything goes wrong."""
    if workers == 1:
        _init_worker(ctx)
        for c in chunks:
            yield _render_chunk(c)
        return
    import multiprocessing

    # Ctrl-C / SIGTERM held back while the workers are forked: delivered during fork, Python would run the
    # handler inside an at-fork hook, which swallows the KeyboardInterrupt (measured: 1 run in 4 then
    # finished with status 0). Pending signals arrive right after, in this frame.
    held = {signal.SIGINT, signal.SIGTERM}
    mask = signal.pthread_sigmask(signal.SIG_BLOCK, held) if hasattr(signal, "pthread_sigmask") else None
    try:
        pool = multiprocessing.get_context().Pool(workers, initializer=_init_worker, initargs=(ctx, os.getpid()))
    finally:
        if mask is not None:
            signal.pthread_sigmask(signal.SIG_SETMASK, mask)
    try:
        yield from pool.imap(_render_chunk, chunks)
        pool.close()
    except BaseException:
        pool.terminate()
        raise
    finally:
        pool.join()


def _process_start(pid: int) -> str | None:
    """The start time of process ``pid`` (Linux ``/proc``), which tells a reused pid from the original."""
    try:
        with open(f"/proc/{pid}/stat") as f:
            return f.read().rsplit(")", 1)[1].split()[19]
    except (OSError, IndexError):
        return None


def _owner() -> dict:
    import socket

    return {"pid": os.getpid(), "started": _process_start(os.getpid()), "host": socket.gethostname()}


def _alive(owner: dict) -> bool:
    """Whether the process that wrote ``owner`` (see :func:`_owner`) still runs (another host: assume so)."""
    import socket

    if owner.get("host") != socket.gethostname():
        return True
    pid = int(owner.get("pid", -1))
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    started = _process_start(pid)
    return started is None or owner.get("started") in (None, started)


def _remove_stale_tmp(root: Path) -> None:
    """Delete temporary folders ``.<root name>.tmp-*`` left by generations of ``root`` that died (SIGKILL,
    power loss). Only folders holding our marker whose process is gone: nothing else is touched."""
    for d in root.parent.glob(f".{root.name}.tmp-*"):
        marker = d / _TMP_MARKER
        if not marker.is_file():
            continue
        try:
            owner = json.loads(marker.read_text())
        except (OSError, ValueError):
            continue
        if not _alive(owner):
            shutil.rmtree(d, ignore_errors=True)
            say(f"removed {d}: a temporary folder left by an interrupted SynthReID run (pid {owner.get('pid')})")


def default_workers(num_images: int) -> int:
    """Processes used when ``num_workers=None``: one for small sets, else up to 8 cores."""
    return 1 if num_images < 2000 else max(1, min(8, os.cpu_count() or 1))


def make_synthetic(root: str | os.PathLike, profile: str = "quick", seed: int = 0, num_workers: int | None = None,
                   settings: SynthSettings | None = None, verify: bool = False) -> Path:
    """Generate SynthReID at ``root`` (Market-1501 layout) and its source domain at ``root/source``.

    Args:
        root: the data set folder (created; must be absent, empty, or this very data set).
        profile: ``"smoke"``, ``"quick"`` or ``"full"`` — the sizes in :data:`SIZES`.
        seed: everything (identities, plan, every pixel) follows from it; same seed → identical bytes.
        num_workers: processes for rendering (``None``: :func:`default_workers`). The output does not
            depend on it.
        settings: override the profile's :class:`SynthSettings` (e.g. ``replace(SIZES["quick"], test_ids=50)``).
        verify: over an existing data set, also compare every file's SHA-256 with ``manifest.json``
            (names and sizes are always checked).

    Returns ``root``. If ``root`` already holds the same intact data set, nothing is done; a damaged one
    raises :class:`SynthReIDDamagedError` naming the files. The set is written into a temporary sibling
    folder (marked with the owner's pid) and renamed into place at the end, so an interrupted run never
    leaves a half-written data set at ``root``; temporary folders of runs that died are removed by the
    next run. Render processes end with the process that started them.
    """
    if settings is None:
        if profile not in SIZES:
            raise ValueError(f"unknown SynthReID profile {profile!r}; choose one of {sorted(SIZES)} "
                             "or pass settings=SynthSettings(...)")
        settings = SIZES[profile]
    if not 1 <= settings.num_cameras <= len(TARGET_CAMERAS):
        raise ValueError(f"num_cameras must be 1..{len(TARGET_CAMERAS)}, got {settings.num_cameras}")
    root = Path(root).expanduser().absolute()
    want = _expected_meta(profile, seed, settings)
    if _check_existing(root, want, verify=verify):
        return root

    target_ids, target_jobs = _build_domain(settings, seed, 0, first_pid=1)
    source_ids, source_jobs = _build_domain(settings, seed, 1, first_pid=settings.num_ids + 1)
    total = len(target_jobs) + len(source_jobs)
    workers = default_workers(total) if num_workers is None else max(1, int(num_workers))

    tmp = None
    try:
        root.parent.mkdir(parents=True, exist_ok=True)
        _remove_stale_tmp(root)
        tmp = Path(tempfile.mkdtemp(prefix=f".{root.name}.tmp-", dir=root.parent))
        umask = os.umask(0)
        os.umask(umask)
        tmp.chmod(0o777 & ~umask)  # mkdtemp makes it private (0700); the data set is readable as the umask says
        atomic_write_json(tmp / _TMP_MARKER, _owner())
    except OSError as e:
        if tmp is not None:
            shutil.rmtree(tmp, ignore_errors=True)
        raise OSError(e.errno, f"cannot write SynthReID at {root}: {e.strerror or e} in {root.parent}. Fix: choose "
                               "a folder you can write (or set REIDBOOK_CACHE to one)") from None
    try:
        dirs = {0: tmp, 1: tmp / "source"}
        for d in dirs.values():
            for folder in SPLIT_DIRS.values():
                (d / folder).mkdir(parents=True, exist_ok=True)
                (d / MASKS_DIR / folder).mkdir(parents=True, exist_ok=True)
        swaps = [j for j in target_jobs if j.split == "query"] if settings.num_cameras > 1 else []
        for folder in (BGSWAP_DIR, f"{MASKS_DIR}/{BGSWAP_DIR}"):
            (tmp / folder).mkdir(parents=True, exist_ok=True)
        ctx = {"settings": settings, "seed": seed, "dirs": {k: str(v) for k, v in dirs.items()},
               "cameras": {0: TARGET_CAMERAS, 1: SOURCE_CAMERAS},
               "looks": {0: {i.pid: identity_look(i) for i in target_ids},
                         1: {i.pid: identity_look(i) for i in source_ids}}}
        tasks = [(0, j) for j in target_jobs] + [(1, j) for j in source_jobs] + [(SWAP_DOMAIN, j) for j in swaps]
        chunk = 64
        chunks = [tasks[i:i + chunk] for i in range(0, len(tasks), chunk)]
        bar = progress(total=len(tasks), desc=f"SynthReID {profile}", unit="img")
        files: dict[str, list] = {}
        # closing(): an interruption anywhere in this loop stops the workers *before* tmp is removed below
        with contextlib.closing(_render_all(ctx, chunks, workers)) as rendered:
            for rows in rendered:
                files.update((rel, [size, digest]) for rel, size, digest in rows)
                bar.update(len(rows))
        bar.close()
        for d, idents, jobs in ((dirs[0], target_ids, target_jobs), (dirs[1], source_ids, source_jobs)):
            _write_csv(d / "attributes.csv", [asdict(i) for i in idents])
            _write_csv(d / "images.csv", [{"folder": SPLIT_DIRS[j.split], "name": j.name, "pid": j.pid, "cam": j.cam,
                                           "view": j.view, "occluder": j.occluder, "kind": j.kind} for j in jobs])
        if swaps:
            _write_csv(tmp / "query_bgswap.csv", [{"name": j.name, "pid": j.pid, "cam": j.cam,
                                                   "background_cam": swap_camera(seed, j, settings.num_cameras)}
                                                  for j in swaps])
        meta = {**want, "counts": {"target": _domain_counts(target_jobs), "source": _domain_counts(source_jobs)},
                "bgswap": {"folder": BGSWAP_DIR, "images": len(swaps),
                           "note": "the query re-drawn on another camera's background; person, pose, occluders, "
                                   "light and noise unchanged"}}
        atomic_write_json(tmp / MANIFEST_NAME, {"format": "synthreid-manifest/1", "files": dict(sorted(files.items()))})
        atomic_write_json(dirs[1] / "synthreid.json", {**meta, "domain": "source"})
        atomic_write_json(tmp / "synthreid.json", {**meta, "domain": "target"})  # last: marks completion
        if root.exists():  # an empty folder (checked above), or a concurrent run finished first
            if (root / "synthreid.json").exists() and _check_existing(root, want):
                shutil.rmtree(tmp, ignore_errors=True)
                return root
            root.rmdir()
        (tmp / _TMP_MARKER).unlink()
        os.replace(tmp, root)
    except OSError as e:
        shutil.rmtree(tmp, ignore_errors=True)
        raise OSError(e.errno, f"could not write SynthReID at {root} ({e.strerror or e}); the partial data set "
                               "was removed. Fix: free disk space or choose a folder you can write, then run "
                               "again") from None
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise
    say(f"SynthReID ({profile}, seed {seed}): {total} images in {root}")
    return root
