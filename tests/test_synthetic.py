"""SynthReID (reidbook.data.synthetic) and the colour-histogram matcher (reidbook.models.histogram).

Smoke sets are generated in pytest's tmp folders; the quick set once per session (the honesty bar
is a property of the quick set the course runs on).
"""
from __future__ import annotations

import csv
import hashlib
import json
import re
from collections import Counter, defaultdict
from dataclasses import replace
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from reidbook.data.synth_draw import Look, draw_person
from reidbook.data.synthetic import (
    GENERATOR_VERSION,
    MANIFEST_NAME,
    SIZES,
    SOURCE_CAMERAS,
    SPLIT_DIRS,
    TARGET_CAMERAS,
    SynthReIDDamagedError,
    make_synthetic,
    verify_synthetic,
)
from reidbook.models.histogram import color_histogram_features, histogram_distance

NAME = re.compile(r"^(-1|\d{4})_c([1-6])s1_(\d{6})_(\d{2})\.jpg$")
TINY = replace(SIZES["smoke"], train_ids=3, test_ids=3, distractors=2, junk=2, source_train_ids=3)


def _items(folder: Path) -> list[tuple[str, int, int]]:
    out = []
    for p in sorted(folder.glob("*.jpg")):
        m = NAME.match(p.name)
        assert m, f"bad Market name {p.name} in {folder}"
        out.append((p.name, int(m.group(1)), int(m.group(2))))
    return out


def _hashes(root: Path) -> dict[str, str]:
    return {str(p.relative_to(root)): hashlib.sha256(p.read_bytes()).hexdigest()
            for p in sorted(root.rglob("*")) if p.is_file()}


def _csv(path: Path) -> list[dict]:
    with open(path, newline="") as f:
        return list(csv.DictReader(f))


@pytest.fixture(scope="module")
def smoke(tmp_path_factory) -> Path:
    return make_synthetic(tmp_path_factory.mktemp("synth") / "smoke", "smoke", seed=0, num_workers=1)


@pytest.fixture(scope="session")
def quick(tmp_path_factory) -> Path:
    return make_synthetic(tmp_path_factory.mktemp("synthq") / "quick", "quick", seed=0)


# ---------------------------------------------------------------------------------------------- settings
def test_sizes_are_exposed():
    assert set(SIZES) == {"smoke", "quick", "full"}
    assert (SIZES["smoke"].height, SIZES["smoke"].width) == (128, 64)
    assert (SIZES["quick"].height, SIZES["quick"].width) == (128, 64)
    assert (SIZES["full"].height, SIZES["full"].width) == (256, 128)
    assert (SIZES["full"].train_ids, SIZES["full"].test_ids) == (751, 750)  # Market-1501's split
    assert SIZES["quick"].train_ids == SIZES["quick"].test_ids == 200
    assert len(TARGET_CAMERAS) == len(SOURCE_CAMERAS) == 6
    assert not set(TARGET_CAMERAS) & set(SOURCE_CAMERAS)
    for cam in TARGET_CAMERAS + SOURCE_CAMERAS:
        assert abs(sum(cam.view_probs) - 1) < 1e-9


# ---------------------------------------------------------------------------------------------- layout
def test_market_layout_and_naming(smoke):
    for sub in ("", "source"):
        for folder in SPLIT_DIRS.values():
            assert (smoke / sub / folder).is_dir()
    train, query, gallery = (_items(smoke / SPLIT_DIRS[s]) for s in ("train", "query", "gallery"))
    names = [n for n, _, _ in train + query + gallery]
    assert len(names) == len(set(names))
    assert all(p > 0 for _, p, _ in train + query)
    g_pids = Counter(p for _, p, _ in gallery)
    assert g_pids[0] == SIZES["smoke"].distractors and g_pids[-1] == SIZES["smoke"].junk
    train_ids, test_ids = {p for _, p, _ in train}, {p for _, p, _ in query}
    assert len(train_ids) == SIZES["smoke"].train_ids and len(test_ids) == SIZES["smoke"].test_ids
    assert not train_ids & test_ids
    assert {p for p in g_pids if p > 0} == test_ids
    with Image.open(smoke / "query" / query[0][0]) as im:
        assert im.size == (64, 128) and im.mode == "RGB"


def test_every_query_has_a_cross_camera_match(smoke):
    gallery = _items(smoke / "bounding_box_test")
    cams = defaultdict(set)
    for _, p, c in gallery:
        cams[p].add(c)
    query = _items(smoke / "query")
    for _, p, c in query:
        assert cams[p] - {c}, f"query of {p} in camera {c} has no gallery image in another camera"
    per_id_cams = defaultdict(set)
    for _, p, c in query:
        per_id_cams[p].add(c)
    assert all(len(per_id_cams[p] | cams[p]) >= 2 for p in per_id_cams)
    # at most one query per identity and camera, as in Market-1501
    assert len({(p, c) for _, p, c in query}) == len(query)


def test_metadata_and_attributes_match_the_images(smoke):
    meta = json.loads((smoke / "synthreid.json").read_text())
    assert meta["version"] == GENERATOR_VERSION and meta["seed"] == 0 and meta["profile"] == "smoke"
    assert meta["settings"]["height"] == 128 and len(meta["cameras"]) == 6
    for split, folder in SPLIT_DIRS.items():
        assert meta["counts"]["target"][split]["images"] == len(list((smoke / folder).glob("*.jpg")))
        assert meta["counts"]["source"][split]["images"] == len(list((smoke / "source" / folder).glob("*.jpg")))
    rows = _csv(smoke / "attributes.csv")
    by_split = defaultdict(set)
    for r in rows:
        by_split[r["split"]].add(int(r["pid"]))
    assert by_split["train"] == {p for _, p, _ in _items(smoke / "bounding_box_train")}
    assert by_split["test"] == {p for _, p, _ in _items(smoke / "query")}
    assert len(rows) == len({r["pid"] for r in rows})
    assert {r["difficulty"] for r in rows} == {"easy", "hard"}
    for col in ("top_color", "top_pattern", "bottom_type", "bottom_color", "shoe_color", "backpack",
                "shoulder_bag", "hat", "carried_item", "hair_style", "skin"):
        assert all(r[col] for r in rows), col
    # hard identities come in look-alike families that share their clothes
    fam = defaultdict(list)
    for r in rows:
        if r["difficulty"] == "hard":
            fam[r["family"]].append(r)
    assert any(len(m) >= 2 for m in fam.values())
    for members in fam.values():
        assert len({(m["top_color"], m["bottom_color"], m["bottom_type"], m["split"]) for m in members}) == 1
    images = _csv(smoke / "images.csv")
    assert len(images) == sum(meta["counts"]["target"][s]["images"] for s in SPLIT_DIRS)
    assert {r["view"] for r in images} <= {"front", "back", "left", "right"}


def test_source_domain_is_disjoint(smoke):
    src = smoke / "source"
    s_train = {p for _, p, _ in _items(src / "bounding_box_train")}
    t_all = {int(r["pid"]) for r in _csv(smoke / "attributes.csv")}
    assert len(s_train) == SIZES["smoke"].source_train_ids
    assert not s_train & t_all
    assert {int(r["pid"]) for r in _csv(src / "attributes.csv")} == s_train
    meta = json.loads((src / "synthreid.json").read_text())
    assert meta["domain"] == "source" and meta["source_cameras"] != meta["cameras"]


# ---------------------------------------------------------------------------------------------- determinism
def test_deterministic_by_seed_and_independent_of_workers(smoke, tmp_path):
    again = make_synthetic(tmp_path / "again", "smoke", seed=0, num_workers=2)
    assert _hashes(again) == _hashes(smoke)  # byte-identical JPEGs, CSVs and JSON


def test_other_seed_other_data(tmp_path):
    a = _hashes(make_synthetic(tmp_path / "a", "smoke", seed=0, settings=TINY))
    b = _hashes(make_synthetic(tmp_path / "b", "smoke", seed=1, settings=TINY))
    assert a != b


def test_idempotent_and_atomic(tmp_path):
    root = make_synthetic(tmp_path / "d", "smoke", seed=0, settings=TINY)
    stamp = {p: p.stat().st_mtime_ns for p in root.rglob("*")}
    assert make_synthetic(root, "smoke", seed=0, settings=TINY) == root
    assert {p: p.stat().st_mtime_ns for p in root.rglob("*")} == stamp  # nothing rewritten
    assert [p.name for p in tmp_path.iterdir()] == ["d"]  # no temporary folder left behind
    with pytest.raises(ValueError, match="different SynthReID"):
        make_synthetic(root, "smoke", seed=1, settings=TINY)
    gone = next(root.glob("query/*.jpg"))
    gone.unlink()
    with pytest.raises(SynthReIDDamagedError, match=f"query/{gone.name} is missing"):  # a ValueError
        make_synthetic(root, "smoke", seed=0, settings=TINY)


def test_damaged_files_are_named_with_the_fix(tmp_path):
    root = make_synthetic(tmp_path / "d", "smoke", seed=0, settings=TINY)
    manifest = json.loads((root / MANIFEST_NAME).read_text())["files"]
    assert set(manifest) == {str(p.relative_to(root)) for p in [*root.rglob("*.jpg"), *root.rglob("masks/*/*.png")]}
    assert verify_synthetic(root) == []
    empty, renamed, changed = sorted(root.glob("bounding_box_train/*.jpg"))[:3]
    empty.write_bytes(b"")
    renamed.rename(renamed.with_name("x" + renamed.name))
    data = bytearray(changed.read_bytes())
    data[len(data) // 2] ^= 0xFF  # same size, other bytes: only the hash sees it
    changed.write_bytes(bytes(data))
    cheap = verify_synthetic(root, hashes=False)
    expected_size = manifest['bounding_box_train/' + empty.name][0]
    assert f"bounding_box_train/{empty.name} is empty (0 bytes; expected {expected_size})" in cheap
    assert f"bounding_box_train/{renamed.name} is missing" in cheap
    assert f"bounding_box_train/x{renamed.name} is not part of the data set (renamed or added?)" in cheap
    assert len(cheap) == 3
    assert (f"bounding_box_train/{changed.name} changed (its SHA-256 differs from the manifest)"
            in verify_synthetic(root))
    with pytest.raises(SynthReIDDamagedError) as e:
        make_synthetic(root, "smoke", seed=0, settings=TINY, verify=True)
    text = str(e.value)
    assert f"{root} is damaged: 4 file(s)" in text and empty.name in text and changed.name in text
    assert f"Fix: delete the folder {root} and run `reidbook synth {root} --profile smoke --seed 0` again" in text


def test_stale_temporary_folders_of_dead_runs_are_removed(tmp_path):
    import subprocess
    import sys

    from reidbook.data.synthetic import _TMP_MARKER, _owner

    dead = subprocess.run([sys.executable, "-c", "import os; print(os.getpid())"], capture_output=True, text=True)
    stale = tmp_path / ".d.tmp-dead"
    stale.mkdir()
    (stale / _TMP_MARKER).write_text(json.dumps({**_owner(), "pid": int(dead.stdout), "started": "1"}))
    alive = tmp_path / ".d.tmp-alive"  # a run in progress (this very process)
    alive.mkdir()
    (alive / _TMP_MARKER).write_text(json.dumps(_owner()))
    foreign = tmp_path / ".d.tmp-foreign"  # no marker: not ours, never touched
    foreign.mkdir()
    make_synthetic(tmp_path / "d", "smoke", seed=0, settings=TINY)
    assert sorted(p.name for p in tmp_path.iterdir()) == [".d.tmp-alive", ".d.tmp-foreign", "d"]


def test_clear_errors(tmp_path):
    (tmp_path / "mine").mkdir()
    (tmp_path / "mine" / "notes.txt").write_text("not a data set")
    with pytest.raises(FileExistsError, match="not a SynthReID"):
        make_synthetic(tmp_path / "mine", "smoke")
    with pytest.raises(ValueError, match="unknown SynthReID profile"):
        make_synthetic(tmp_path / "x", "huge")
    assert (tmp_path / "mine" / "notes.txt").read_text() == "not a data set"


def test_loads_with_the_market_loader(smoke):
    from reidbook.data import load_dataset

    ds = load_dataset(smoke)
    meta = json.loads((smoke / "synthreid.json").read_text())["counts"]["target"]
    assert ds.num_train_pids == SIZES["smoke"].train_ids
    assert len(ds.train) == meta["train"]["images"] and len(ds.query) == meta["query"]["images"]


# ---------------------------------------------------------------------------------------------- drawing
def _look(**kw) -> Look:
    base = dict(build=1.0, height=1.0, head=1.0, waist=0.5, skin=(200, 150, 120), hair=(30, 20, 20),
                hair_style="short", top=(100, 100, 100), top_pattern="plain", pattern=(0, 255, 0),
                mark_shape="square", sleeves="long", bottom=(40, 40, 40), bottom_type="trousers",
                shoes=(10, 10, 10), backpack=None, bag=None, bag_side=1, hat=None, item=None, item_side=1)
    return Look(**{**base, **kw})


def _count(look: Look, view: str, rgb) -> int:
    img = Image.new("RGB", (128, 256), (255, 255, 255))
    draw_person(img, look, view, 64, 10, 236, np.random.default_rng(0))
    return int((np.asarray(img) == np.asarray(rgb, np.uint8)).all(-1).sum())


def test_details_depend_on_viewpoint():
    mark = _look(top_pattern="chest_mark")
    assert _count(mark, "front", (0, 255, 0)) > 50
    assert _count(mark, "back", (0, 255, 0)) == _count(mark, "left", (0, 255, 0)) == 0
    pack = _look(backpack=(255, 0, 255))
    back, side, front = (_count(pack, v, (255, 0, 255)) for v in ("back", "right", "front"))
    assert back > side > 0 and back > 3 * front > 0  # the whole bag from the back, its straps from the front


# ---------------------------------------------------------------------------------------------- histogram matcher
def test_histogram_features_shapes_and_inputs(smoke):
    paths = sorted((smoke / "query").glob("*.jpg"))[:3]
    f = color_histogram_features(paths, bins=(8, 3, 3), stripes=6)
    assert f.shape == (3, 6 * 72) and f.dtype == np.float32
    np.testing.assert_allclose((f ** 2).reshape(3, 6, 72).sum(-1), 1, atol=1e-5)  # each stripe sums to 1
    arrays = [np.asarray(Image.open(p).convert("RGB")) for p in paths]
    np.testing.assert_array_equal(color_histogram_features(arrays), color_histogram_features(paths))
    np.testing.assert_array_equal(color_histogram_features(np.stack(arrays)), color_histogram_features(paths))
    with pytest.raises(ValueError, match="bins"):
        color_histogram_features(paths, bins=(0, 3, 3))
    with pytest.raises(FileNotFoundError, match="nope.jpg"):
        color_histogram_features([smoke / "nope.jpg"])


def test_histogram_distances_known_values():
    p = np.array([[0.5, 0.5, 0.0, 0.0]])
    q = np.array([[0.5, 0.0, 0.5, 0.0], [0.5, 0.5, 0.0, 0.0]])
    fp, fq = np.sqrt(p), np.sqrt(q)
    np.testing.assert_allclose(histogram_distance(fp, fq, "l1"), [[1.0, 0.0]], atol=1e-6)
    np.testing.assert_allclose(histogram_distance(fp, fq, "chi2"), [[0.5, 0.0]], atol=1e-6)
    np.testing.assert_allclose(histogram_distance(fp, fq, "euclidean"), [[1.0, 0.0]], atol=1e-6)
    with pytest.raises(ValueError, match="unknown histogram distance"):
        histogram_distance(fp, fq, "cosine-ish")


# ---------------------------------------------------------------------------------------------- the quick set
def test_quick_sizes(quick):
    c = json.loads((quick / "synthreid.json").read_text())["counts"]
    t, s = c["target"], c["source"]
    # 12 images per training identity on average (SynthSettings "quick", cut from 16 for the course's time)
    assert t["train"]["ids"] == 200 and 2100 <= t["train"]["images"] <= 2800
    assert t["query"]["ids"] == 200 and 450 <= t["query"]["images"] <= 650
    assert 2700 <= t["gallery"]["images"] <= 3300 and t["gallery"]["distractors"] > 0 and t["gallery"]["junk"] > 0
    assert s["train"]["ids"] == 300 and 2500 <= s["train"]["images"] <= 3500


def test_cameras_have_their_own_viewpoints(quick):
    views = defaultdict(Counter)
    for r in _csv(quick / "images.csv"):
        if r["kind"] == "person":
            views[int(r["cam"])][r["view"]] += 1
    frac = {c: {v: n / sum(cnt.values()) for v, n in cnt.items()} for c, cnt in views.items()}
    assert frac[3]["back"] > 2 * frac[5]["back"]                        # c3 mostly sees backs
    assert frac[5]["left"] + frac[5]["right"] > 2 * (frac[1]["left"] + frac[1]["right"])  # c5 sides


def _ap_per_query(quick: Path, **kw):
    from reidbook.eval import evaluate_rank

    q, g = _items(quick / "query"), _items(quick / "bounding_box_test")
    qf = color_histogram_features([quick / "query" / n for n, _, _ in q], **kw)
    gf = color_histogram_features([quick / "bounding_box_test" / n for n, _, _ in g], **kw)
    res = evaluate_rank(histogram_distance(qf, gf), np.array([p for _, p, _ in q]), np.array([p for _, p, _ in g]),
                        np.array([c for _, _, c in q]), np.array([c for _, _, c in g]))
    return res, q


def test_histogram_honesty_bar(quick):
    """A colour histogram is far from chance and far from perfect, and queries spread from easy to hard."""
    res, q = _ap_per_query(quick)
    ap = np.asarray(res.all_AP)
    assert len(ap) == len(q)
    assert 0.15 <= res.mAP <= 0.5, res.mAP
    assert ap.std() > 0.15
    assert np.mean(ap < 0.2) >= 0.2 and np.mean(ap > 0.8) >= 0.08
    diff = {int(r["pid"]): r["difficulty"] for r in _csv(quick / "attributes.csv")}
    hard = np.array([diff[p] == "hard" for _, p, _ in q])
    assert ap[~hard].mean() > ap[hard].mean() + 0.15  # easy identities are easy, look-alikes are hard
    # the cameras' colour casts and exposure matter: without grey-world normalisation it falls apart
    raw, _ = _ap_per_query(quick, normalize=False)
    assert raw.mAP < 0.5 * res.mAP
