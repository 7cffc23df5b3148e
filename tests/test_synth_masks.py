"""SynthReID's person masks and part-label maps (synth_draw labels, synthetic masks/, data.masks loaders)."""
from __future__ import annotations

import shutil
from dataclasses import replace
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from reidbook.data import load_dataset
from reidbook.data.masks import (
    PART_LABELS,
    PART_NAMES,
    MasksNotAvailableError,
    has_masks,
    load_masks,
    load_part_map,
    mask_path,
    part_mask,
)
from reidbook.data.synth_draw import Look, camera_scene, downsample_labels, draw_occluder, draw_person
from reidbook.data.synthetic import (
    SIZES,
    SPLIT_DIRS,
    TARGET_CAMERAS,
    _build_domain,
    identity_look,
    make_synthetic,
    render_arrays,
)

TINY = replace(SIZES["smoke"], train_ids=3, test_ids=4, distractors=3, junk=2, source_train_ids=3)
WHITE = (255, 255, 255)


def _look(**kw) -> Look:
    base = dict(build=1.0, height=1.0, head=1.0, waist=0.5, skin=(200, 150, 120), hair=(30, 20, 20),
                hair_style="long", top=(100, 100, 100), top_pattern="chest_mark", pattern=(0, 255, 0),
                mark_shape="square", sleeves="short", bottom=(40, 40, 40), bottom_type="trousers",
                shoes=(10, 10, 10), backpack=(255, 0, 255), bag=(0, 0, 250), bag_side=1, hat=(250, 250, 0),
                item=(0, 250, 250), item_side=-1)
    return Look(**{**base, **kw})


def _draw(look: Look, view: str, seed: int = 0):
    img = Image.new("RGB", (128, 256), WHITE)
    lab = Image.new("L", img.size, 0)
    draw_person(img, look, view, 64, 10, 236, np.random.default_rng(seed), labels=lab)
    return np.asarray(img), np.asarray(lab)


@pytest.fixture(scope="module")
def tiny(tmp_path_factory) -> Path:
    return make_synthetic(tmp_path_factory.mktemp("masks") / "tiny", "smoke", seed=0, settings=TINY, num_workers=1)


# ---------------------------------------------------------------------------------------------- drawing
@pytest.mark.parametrize("view", ["front", "back", "left", "right"])
def test_parts_tile_exactly_the_drawn_person(view):
    look = _look()
    img, lab = _draw(look, view)
    drawn = (img != np.array(WHITE, np.uint8)).any(-1)
    np.testing.assert_array_equal(lab > 0, drawn)  # the label map covers exactly the painted pixels
    assert set(np.unique(lab)) <= set(range(len(PART_NAMES)))
    colours = {  # what each part may be painted with (shaded variants: far limbs, backpack pocket)
        "head": [look.skin, look.hair, look.hat, tuple(int(v * 0.7) for v in look.hat)],
        "feet": [look.shoes],
        "bag": [look.backpack, look.bag, look.item, tuple(int(v * 0.75) for v in look.backpack),
                tuple(int(v * 0.8) for v in look.backpack)],
    }
    for part, allowed in colours.items():
        px = img[lab == PART_LABELS[part]]
        ok = np.zeros(len(px), bool)
        for c in allowed:
            ok |= (np.abs(px.astype(int) - np.array(c)) <= 1).all(-1)
        assert ok.all(), (view, part, np.unique(px[~ok], axis=0)[:5])
    for part in ("head", "torso", "arms", "legs", "feet"):
        assert (lab == PART_LABELS[part]).sum() > 50, (view, part)
    assert (lab == PART_LABELS["bag"]).sum() > 50  # backpack / straps, shoulder bag, carried item


def test_chest_mark_is_torso_and_green_only_on_the_torso():
    img, lab = _draw(_look(backpack=None, bag=None), "front")
    green = (img == np.array((0, 255, 0), np.uint8)).all(-1)
    assert green.sum() > 50 and (lab[green] == PART_LABELS["torso"]).all()


def test_occluders_clear_the_mask():
    cam = TARGET_CAMERAS[0]
    img, _ = Image.new("RGB", (128, 256), WHITE), None
    lab = Image.new("L", img.size, 0)
    draw_person(img, _look(), "front", 64, 10, 236, np.random.default_rng(0), labels=lab)
    before = np.asarray(lab).copy()
    draw_occluder(img, "pole", cam, np.random.default_rng(3), labels=lab)
    after = np.asarray(lab)
    covered = (np.asarray(img) != np.array(WHITE, np.uint8)).any(-1)
    assert (after <= before).all() and (after > 0).sum() < (before > 0).sum()  # the pole hid part of the person
    assert ((after > 0) <= covered).all()
    # a passer-by in front is drawn in colour but is no part of *the* person
    img2, lab2 = Image.new("RGB", (128, 256), WHITE), Image.new("L", (128, 256), 0)
    draw_occluder(img2, "person", cam, np.random.default_rng(1), other=_look(), labels=lab2)
    assert (np.asarray(img2) != 255).any() and not np.asarray(lab2).any()


def test_downsample_labels_known_values():
    lab = np.zeros((4, 4), np.uint8)
    lab[0, 0] = lab[0, 1] = 3
    lab[1, 0] = 2          # block (0, 0): 3 of 4 person, arms (3) and torso (2) -> the higher label, arms
    lab[2, 2] = 5          # block (1, 1): 1 of 4 person -> background
    lab[2:, :2] = [[1, 0], [0, 1]]  # block (1, 0): half of it head -> head (half counts as person)
    np.testing.assert_array_equal(downsample_labels(Image.fromarray(lab), (2, 2)), [[3, 0], [1, 0]])
    np.testing.assert_array_equal(downsample_labels(Image.fromarray(lab), (4, 4)), lab)


# ---------------------------------------------------------------------------------------------- rendering
def test_person_pixels_are_the_person_and_differ_from_background():
    """Re-render the same crop on another camera's background: only pixels off the mask change."""
    st = TINY
    idents, jobs = _build_domain(st, 0, 0, 1)
    looks = {i.pid: identity_look(i) for i in idents}
    scenes = [camera_scene(c, st.height * 2, st.width * 2, np.random.default_rng(i))
              for i, c in enumerate(TARGET_CAMERAS)]
    checked = 0
    for job in [j for j in jobs if j.kind == "person" and j.occluder == "none"][:6]:
        cam, other = TARGET_CAMERAS[job.cam - 1], TARGET_CAMERAS[job.cam % 6]
        a, lab = render_arrays(job, looks[job.pid], cam, scenes[job.cam - 1], st, np.random.default_rng(job.uid))
        b, lab_b = render_arrays(job, looks[job.pid], cam, scenes[job.cam - 1], st, np.random.default_rng(job.uid),
                                 bg_scene=scenes[job.cam % 6], bg_cam=other)
        np.testing.assert_array_equal(lab, lab_b)
        person = lab > 0
        assert 0.15 < person.mean() < 0.7
        # the camera's blur and resolution loss mix pixels across the outline (up to ~5 px at 64 px
        # width): compare pixels at least 6 px inside the mask / outside it
        inner = _erode(person, 6)
        outer = _erode(~person, 2, border=False)
        assert inner.sum() > 50 and outer.sum() > 100
        np.testing.assert_array_equal(a[inner], b[inner])
        assert (a[outer] != b[outer]).any(-1).mean() > 0.8
        checked += 1
    assert checked >= 3


def _erode(m: np.ndarray, r: int, border: bool = True) -> np.ndarray:
    """``m`` shrunk by ``r`` pixels (4-neighbourhood); with ``border`` the image border counts as outside."""
    out = m.copy()
    if border:
        out[:r], out[-r:], out[:, :r], out[:, -r:] = False, False, False, False
    for _ in range(r):
        out[1:] &= out[:-1].copy()
        out[:-1] &= out[1:].copy()
        out[:, 1:] &= out[:, :-1].copy()
        out[:, :-1] &= out[:, 1:].copy()
    return out


# ---------------------------------------------------------------------------------------------- files and loaders
def test_every_image_has_its_part_map(tiny):
    n = 0
    for sub in ("", "source"):
        for folder in SPLIT_DIRS.values():
            for img in sorted((tiny / sub / folder).glob("*.jpg")):
                mp = mask_path(img)
                assert mp == tiny / sub / "masks" / folder / (img.stem + ".png") and mp.is_file()
                with Image.open(mp) as m, Image.open(img) as im:
                    assert m.mode == "L" and m.size == im.size
                n += 1
    assert n > 30
    ds = load_dataset(tiny)
    assert ds.has_masks and has_masks(ds) and has_masks(tiny)
    shares = []
    for item in ds.query + ds.train:
        m = load_masks(ds, item)
        assert m.person.dtype == bool and m.parts.dtype == np.uint8 and m.person.shape == (128, 64)
        np.testing.assert_array_equal(m.person, m.parts > 0)
        np.testing.assert_array_equal(part_mask(m.parts, "person"), m.person)
        shares.append(m.person.mean())
    assert 0.25 < np.mean(shares) < 0.6  # tight crops: the person is a large share of each one
    assert np.array_equal(load_part_map(None, ds.query[0][0]), load_masks(ds, ds.query[0]).parts)
    with pytest.raises(ValueError, match="unknown part"):
        part_mask(m.parts, "tail")


def test_deterministic_masks(tiny, tmp_path):
    again = make_synthetic(tmp_path / "again", "smoke", seed=0, settings=TINY, num_workers=2)
    for p in sorted((tiny / "masks").rglob("*.png")):
        assert (again / p.relative_to(tiny)).read_bytes() == p.read_bytes()


def test_real_data_sets_have_no_masks(tiny, tmp_path):
    real = tmp_path / "Market-1501-like"
    for folder in SPLIT_DIRS.values():
        shutil.copytree(tiny / folder, real / folder)
    ds = load_dataset(real)
    assert not ds.has_masks
    with pytest.raises(MasksNotAvailableError, match="has no person masks.*Only SynthReID"):
        load_masks(ds, ds.query[0])
    # a SynthReID folder with one map missing names that file
    broken = tmp_path / "broken"
    shutil.copytree(tiny, broken)
    ds = load_dataset(broken)
    mask_path(ds.query[0][0]).unlink()
    with pytest.raises(MasksNotAvailableError, match="is missing"):
        load_masks(ds, ds.query[0])


# ---------------------------------------------------------------------------------------------- background swap
def test_bgswap_query_changes_the_background_only(tiny):
    from reidbook.data import load_bgswap_query

    ds = load_dataset(tiny)
    swapped = load_bgswap_query(ds)
    assert [Path(p).name for p, _, _ in swapped] == [Path(p).name for p, _, _ in ds.query]
    assert [it[1:] for it in swapped] == [it[1:] for it in ds.query]
    rows = {r.split(",")[0]: r.split(",") for r in (tiny / "query_bgswap.csv").read_text().splitlines()[1:]}
    inner_diff, outer_diff = [], []
    for (p, pid, cam), (ps, _, _) in zip(ds.query, swapped):
        assert int(rows[Path(p).name][3]) != cam + 1  # another camera's background
        m, ms = load_masks(ds, (p, pid, cam)), load_masks(ds, (ps, pid, cam))
        np.testing.assert_array_equal(m.parts, ms.parts)  # the same person, pixel for pixel
        a = np.asarray(Image.open(p).convert("RGB"), np.float64)
        b = np.asarray(Image.open(ps).convert("RGB"), np.float64)
        inner, outer = _erode(m.person, 6), _erode(~m.person, 2, border=False)
        inner_diff.append(np.abs(a - b)[inner].mean())
        outer_diff.append(np.abs(a - b)[outer].mean())
    # JPEG blocks mix a little background into the person's pixels; the background itself changes a lot
    assert np.mean(inner_diff) < 3 and np.mean(outer_diff) > 8 * np.mean(inner_diff)


def test_real_data_sets_have_no_bgswap(tiny, tmp_path):
    from reidbook.data import load_bgswap_query

    real = tmp_path / "real"
    for folder in SPLIT_DIRS.values():
        shutil.copytree(tiny / folder, real / folder)
    with pytest.raises(MasksNotAvailableError, match="no background-swapped query"):
        load_bgswap_query(load_dataset(real))


def test_reliance_from_features_known_values():
    from reidbook.eval import reliance_from_features

    g = np.eye(4)
    g_pids, g_cams = np.arange(4), np.ones(4, int)
    q = np.eye(4)[:2]                   # queries 0 and 1 equal their gallery match: mAP 1
    q_swap = np.eye(4)[[1, 0]]          # after the swap each query equals the other one's match: mAP < 1
    r = reliance_from_features(q, q_swap, g, np.arange(2), g_pids, np.zeros(2, int), g_cams)
    assert r["mAP"] == pytest.approx(1.0) and r["mAP_swap"] == pytest.approx(0.5)  # the match drops to rank 2
    assert r["drop"] == pytest.approx(0.5) and r["relative_drop"] == pytest.approx(0.5)
    assert r["rank1"] == 1.0 and r["rank1_swap"] == 0.0


def test_describe_reliance_reads_the_sign_of_the_drop():
    from reidbook.eval.background import describe_reliance

    def r(m, m_swap, same=0.5, same_swap=0.2):
        return {"mAP": m, "mAP_swap": m_swap, "drop": m - m_swap, "top1_same_camera": same,
                "top1_same_camera_swap": same_swap}

    text = describe_reliance({"A": r(0.40, 0.30), "B": r(0.42, 0.418), "C": r(0.30, 0.35)})
    assert ("A: 40.0 → 30.0 % mAP with the background swapped (-10.0 points) — part of what it matches is "
            "background.") in text
    assert "B: 42.0 → 41.8 % mAP" in text and "contributes little" in text
    assert "C: 30.0 → 35.0 % mAP with the background swapped (+5.0 points) — its own camera's background" in text
    assert "for 50% of the queries, 20% after the swap" in text
    assert text.endswith("The swap moves B's mAP least.")
    assert "least" not in describe_reliance({"A": r(0.4, 0.3)})
    assert describe_reliance({"baseline": r(0.4, 0.3)}).startswith("Baseline: 40.0 → 30.0 % mAP")
    bare = {"mAP": 0.3, "mAP_swap": 0.35, "drop": -0.05}      # a table's columns without the same-camera rates
    assert describe_reliance({"x": bare}).endswith("its own camera's background was misleading it.")
    with pytest.raises(ValueError, match="no results"):
        describe_reliance({})

