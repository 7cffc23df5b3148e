"""Loaders for real re-ID data sets, on small fake folder trees built here (no download)."""
from __future__ import annotations

import io
import os
from pathlib import Path

import pytest
import torch
from PIL import Image

from reidbook.data import (
    CorruptImageError,
    DatasetFormatError,
    DatasetNotFoundError,
    ImageDataset,
    ReIDDataset,
    load_dataset,
    parse_market_name,
    verify_images,
)


def _jpeg(color=(120, 30, 200), fmt="JPEG") -> bytes:
    buf = io.BytesIO()
    Image.new("RGB", (4, 8), color).save(buf, format=fmt)  # 8 tall × 4 wide, like a person crop
    return buf.getvalue()


JPEG, PNG = _jpeg(), _jpeg(fmt="PNG")


def write_split(folder: Path, names, data: bytes = JPEG) -> None:
    folder.mkdir(parents=True, exist_ok=True)
    for n in names:
        (folder / n).write_bytes(data)


MARKET = {
    "bounding_box_train": ["0002_c1s1_000451_03.jpg", "0002_c2s1_000551_01.jpg", "0007_c3s1_000101_01.jpg",
                           "0007_c6s2_000201_02.jpg", "0011_c1s1_000011_01.jpg"],
    "query": ["0003_c1s1_000001_00.jpg", "0005_c2s1_000002_00.jpg"],
    # pid 5 only in its own camera c2 → no valid match; -1 junk dropped; 0000 distractors kept
    "bounding_box_test": ["0003_c2s1_000010_01.jpg", "0003_c4s1_000011_01.jpg", "0005_c2s1_000020_01.jpg",
                          "-1_c1s1_000030_01.jpg", "-1_c3s1_000031_01.jpg", "0000_c5s1_000040_01.jpg"],
}


def make_market(top: Path, splits=MARKET, data=JPEG) -> Path:
    for split, names in splits.items():
        write_split(top / split, names, data)
    return top


# ---------------------------------------------------------------------------------------------
def test_parse_market_name():
    assert parse_market_name("0002_c1s1_000451_03.jpg") == (2, 0)
    assert parse_market_name("-1_c3s1_000031_01.jpg") == (-1, 2)
    assert parse_market_name("0001_c2_f0046182.jpg") == (1, 1)  # Duke
    assert parse_market_name("/a/b/0012_c8_x.png") == (12, 7)
    assert parse_market_name("foo.jpg") is None
    assert parse_market_name("0002_c0s1_000451_03.jpg") is None  # cameras count from 1


def test_market1501_by_name(tmp_path):
    make_market(tmp_path / "Market-1501-v15.09.15")
    (tmp_path / "Market-1501-v15.09.15" / "bounding_box_train" / "Thumbs.db").write_bytes(b"x")  # ignored
    ds = load_dataset("market1501", root=tmp_path)
    assert isinstance(ds, ReIDDataset) and ds.name == "Market-1501"
    assert ds.num_train_imgs == 5 and ds.num_train_pids == 3 and ds.num_train_cams == 4
    # train pids relabelled 0..N-1 in sorted order of the original pids; camids 0-based
    assert sorted({pid for _, pid, _ in ds.train}) == [0, 1, 2]
    assert ds.train_pid_map == {2: 0, 7: 1, 11: 2}
    assert [(Path(p).name, pid, cam) for p, pid, cam in ds.train][:3] == [
        ("0002_c1s1_000451_03.jpg", 0, 0), ("0002_c2s1_000551_01.jpg", 0, 1), ("0007_c3s1_000101_01.jpg", 1, 2)]
    # query / gallery keep original pids; junk dropped, distractors kept in gallery
    assert sorted(pid for _, pid, _ in ds.query) == [3, 5]
    assert sorted(pid for _, pid, _ in ds.gallery) == [0, 3, 3, 5]
    assert ds.info["junk_dropped"] == 2
    assert all(os.path.isfile(p) for p, _, _ in ds.train + ds.query + ds.gallery)
    # the query with no cross-camera match is kept and counted
    assert [Path(ds.query[i][0]).name for i in ds.queries_without_match()] == ["0005_c2s1_000002_00.jpg"]
    s = ds.summary()
    assert "# ids" in s and "train    |     3 |        5 |" in s
    assert "queries without a cross-camera gallery match: 1" in s and "distractors (pid 0): 1" in s


def test_market_other_folder_names_and_env(tmp_path, monkeypatch):
    make_market(tmp_path / "market1501" / "Market-1501-v15.09.15")  # torchreid's layout
    monkeypatch.setenv("REIDBOOK_DATA", str(tmp_path))
    assert load_dataset("Market-1501").num_train_imgs == 5


def test_dukemtmcreid(tmp_path):
    duke = {"bounding_box_train": ["0001_c2_f0046182.jpg", "0001_c8_f0000001.jpg", "0004_c5_f0000002.jpg"],
            "query": ["0005_c1_f0000003.jpg"], "bounding_box_test": ["0005_c7_f0000004.jpg", "0009_c1_f00005.jpg"]}
    make_market(tmp_path / "DukeMTMC-reID", duke)
    ds = load_dataset("dukemtmcreid", root=tmp_path)
    assert ds.name == "DukeMTMC-reID"
    assert [(pid, cam) for _, pid, cam in ds.train] == [(0, 1), (0, 7), (1, 4)]
    assert ds.query[0][1:] == (5, 0) and ds.queries_without_match() == []


def test_cuhk03np_variants(tmp_path):
    base = tmp_path / "cuhk03-np"
    for variant, n in (("labeled", 3), ("detected", 2)):
        split = {"bounding_box_train": [f"{i + 1:04d}_c{i % 2 + 1}_{i}.png" for i in range(n)],
                 "query": ["0100_c1_1.png"], "bounding_box_test": ["0100_c2_1.png"]}
        make_market(base / variant, split, data=PNG)
    lab = load_dataset("cuhk03np", root=tmp_path)
    det = load_dataset("cuhk03-np", root=tmp_path, variant="detected")
    assert (lab.num_train_imgs, det.num_train_imgs) == (3, 2)
    assert "labeled" in lab.name and det.info["variant"] == "detected"
    assert load_dataset(base, variant="detected").num_train_imgs == 2  # the folder as a path
    with pytest.raises(ValueError, match="labeled.*detected"):
        load_dataset("cuhk03np", root=tmp_path, variant="both")
    (base / "detected" / "bounding_box_train").rename(base / "detected" / "elsewhere")
    with pytest.raises(DatasetNotFoundError, match="detected"):
        load_dataset("cuhk03np", root=tmp_path, variant="detected")


def _msmt_tree(top: Path, train_dir="train", test_dir="test") -> Path:
    lists = {
        "train": [("0000/0000_000_01_0303morning_0015_0.jpg", 0), ("0000/0000_001_05_0303morning_0016_0.jpg", 0),
                  ("0001/0001_000_15_0303noon_0001_1.jpg", 1)],
        "val": [("0002/0002_000_03_0303noon_0002_0.jpg", 2)],
        "query": [("0000/0000_000_02_0303morning_0001_0.jpg", 0)],
        "gallery": [("0000/0000_003_04_0303morning_0002_0.jpg", 0), ("0001/0001_003_02_0303morning_0003_0.jpg", 1)],
    }
    for split, entries in lists.items():
        img_dir = top / (train_dir if split in ("train", "val") else test_dir)
        for rel, _ in entries:
            (img_dir / rel).parent.mkdir(parents=True, exist_ok=True)
            (img_dir / rel).write_bytes(JPEG)
        (top / f"list_{split}.txt").write_text("".join(f"{rel} {pid}\n" for rel, pid in entries))
    return top


def test_msmt17_v1_and_v2(tmp_path):
    _msmt_tree(tmp_path / "MSMT17_V1")
    ds = load_dataset("msmt17", root=tmp_path)
    assert ds.name == "MSMT17_V1" and ds.num_train_pids == 3 and ds.num_train_imgs == 4  # train + val
    assert [(pid, cam) for _, pid, cam in ds.train] == [(0, 0), (0, 4), (1, 14), (2, 2)]
    assert [(pid, cam) for _, pid, cam in ds.query] == [(0, 1)]  # pid 0 is a person here, not a distractor
    assert [(pid, cam) for _, pid, cam in ds.gallery] == [(0, 3), (1, 1)]
    assert load_dataset("msmt17", root=tmp_path, use_val=False).num_train_pids == 2
    assert all(os.path.isfile(p) for p, _, _ in ds.train + ds.query + ds.gallery)

    _msmt_tree(tmp_path / "v2" / "MSMT17_V2", "mask_train_v2", "mask_test_v2")
    ds2 = load_dataset("msmt17", root=tmp_path / "v2")
    assert ds2.name == "MSMT17_V2" and ds2.num_train_imgs == 4
    assert load_dataset("msmt17", root=tmp_path, version="V1").name == "MSMT17_V1"
    assert load_dataset("MSMT17_V2", root=tmp_path / "v2").name == "MSMT17_V2"
    with pytest.raises(DatasetNotFoundError):
        load_dataset("msmt17", root=tmp_path, version="V2")
    assert load_dataset(tmp_path / "v2" / "MSMT17_V2").name == "MSMT17_V2"  # path


def test_msmt17_malformed_list_and_missing_images(tmp_path):
    top = _msmt_tree(tmp_path / "MSMT17_V1")
    (top / "list_query.txt").write_text("0000/0000_000_02_0303morning_0001_0.jpg\n")  # no label
    with pytest.raises(DatasetFormatError, match=r"list_query\.txt[\s\S]*line 1"):
        load_dataset("msmt17", root=tmp_path)
    top = _msmt_tree(tmp_path / "b" / "MSMT17_V1")
    (top / "list_gallery.txt").write_text("0009/0009_000_02_x_0_0.jpg 9\n")
    with pytest.raises(DatasetNotFoundError, match="0009_000_02_x_0_0.jpg"):
        load_dataset("msmt17", root=tmp_path / "b")


def test_any_market_style_folder_by_path(tmp_path):
    top = make_market(tmp_path / "my_set")
    (top / "attributes.csv").write_text("pid,top\n")  # extra files (SynthReID) are fine
    ds = load_dataset(str(top))
    assert ds.name == "my_set" and ds.root == str(top) and ds.num_train_pids == 3
    assert load_dataset("my_set", root=tmp_path).num_train_pids == 3  # relative to root


def test_missing_dataset_message(tmp_path):
    with pytest.raises(DatasetNotFoundError) as e:
        load_dataset("market1501", root=tmp_path)
    msg = str(e.value)
    for needle in ("Market-1501", str(tmp_path.resolve()), "bounding_box_train", "query", "bounding_box_test",
                   "Market-1501-v15.09.15", "https://", "does not redistribute", "REIDBOOK_DATA"):
        assert needle in msg, needle
    for name, needle in (("dukemtmcreid", "withdrawn"), ("msmt17", "list_train.txt"), ("cuhk03np", "labeled/")):
        with pytest.raises(DatasetNotFoundError, match=needle):
            load_dataset(name, root=tmp_path)
    with pytest.raises(DatasetNotFoundError, match="market1501.*dukemtmcreid"):
        load_dataset(tmp_path / "nowhere")


def test_malformed_names(tmp_path):
    top = make_market(tmp_path / "bad")
    write_split(top / "bounding_box_train", ["foo.jpg", "0002_x_1.jpg", "0003_c0s1_000001_01.jpg"])
    with pytest.raises(DatasetFormatError) as e:
        load_dataset(top)
    msg = str(e.value)
    assert "3 of 8" in msg and "foo.jpg" in msg and "0002_x_1.jpg" in msg and "0003_c0s1_000001_01.jpg" in msg
    assert "<pid>_c<camera>" in msg and "bounding_box_train" in msg


def test_empty_and_missing_splits(tmp_path):
    top = make_market(tmp_path / "a")
    for f in (top / "query").iterdir():
        f.unlink()
    with pytest.raises(DatasetFormatError, match=r"query folder is empty"):
        load_dataset(top)
    top = make_market(tmp_path / "b")
    for f in (top / "bounding_box_test").iterdir():
        f.unlink()
    (top / "bounding_box_test").rmdir()
    with pytest.raises(DatasetNotFoundError, match="bounding_box_test"):
        load_dataset(top)
    junk_train = dict(MARKET, bounding_box_train=["-1_c1s1_000001_01.jpg", "0000_c1s1_000002_01.jpg"])
    with pytest.raises(DatasetFormatError, match="train split has no usable images"):
        load_dataset(make_market(tmp_path / "c", junk_train))
    with pytest.raises(DatasetFormatError, match="not a re-ID data set folder"):
        load_dataset(tmp_path / "c" / "query")


def test_corrupt_images_are_named(tmp_path):
    top = make_market(tmp_path / "m")
    bad1 = top / "bounding_box_test" / "0003_c2s1_000010_01.jpg"
    bad2 = top / "query" / "0003_c1s1_000001_00.jpg"
    bad1.write_bytes(b"this is not a jpeg")
    bad2.write_bytes(JPEG[: len(JPEG) // 3])  # truncated
    with pytest.raises(CorruptImageError) as e:  # the cheap check (header, JPEG end marker) finds both
        load_dataset(top)
    text = str(e.value)
    assert "2 of 11" in text and f"{bad1}: not an image" in text and f"{bad2}: a cut-off JPEG" in text
    assert "Fix: re-copy" in text
    ds = load_dataset(top, check_files=False)  # listing only: nothing opened
    with pytest.raises(CorruptImageError) as e:
        load_dataset(top, check_files=False, check_images=True)  # full decoding finds them too
    assert str(bad1) in str(e.value) and str(bad2) in str(e.value) and "2 of 11" in str(e.value)
    with pytest.raises(CorruptImageError, match="2 of 11"):
        verify_images(ds)
    assert verify_images(ds.train) == 5
    gal = ImageDataset(ds.gallery)
    i = [p for p, _, _ in ds.gallery].index(str(bad1))
    with pytest.raises(CorruptImageError, match=str(bad1)):
        gal[i]


def test_image_dataset_items_and_cache(tmp_path):
    ds = load_dataset(make_market(tmp_path / "m"))
    plain = ImageDataset(ds.train)
    x, pid, camid, index = plain[3]
    assert x.shape == (3, 8, 4) and x.dtype == torch.float32 and 0 <= x.min() and x.max() <= 1
    assert (pid, camid, index) == (ds.train[3][1], ds.train[3][2], 3)
    assert plain[-1][3] == len(ds.train) - 1
    with pytest.raises(IndexError):
        plain[len(ds.train)]
    seen = []
    cached = ImageDataset(ds.train, transform=lambda im: (seen.append(im.size), torch.zeros(1))[1], cache=True)
    assert cached[0][1] == ds.train[0][1] and seen == [(4, 8)]  # transform gets the PIL image
    os.unlink(ds.train[0][0])  # the decoded image is in memory: no re-read
    assert cached[0][0].shape == (1,)
    with pytest.raises(FileNotFoundError, match=Path(ds.train[0][0]).name):
        plain[0]


def test_train_only_folder(tmp_path):
    """A pre-training domain (SynthReID's source/ in smoke) has train images only."""
    top = make_market(tmp_path / "source", {"bounding_box_train": MARKET["bounding_box_train"], "query": []})
    with pytest.raises(DatasetFormatError, match="require_test=False"):
        load_dataset(top)
    ds = load_dataset(top, require_test=False)
    assert ds.num_train_pids == 3 and ds.query == [] and ds.gallery == []
    assert "query    |     0 |        0 |" in ds.summary()
    for f in (top / "bounding_box_train").iterdir():
        f.unlink()
    with pytest.raises(DatasetFormatError, match="bounding_box_train folder is empty"):
        load_dataset(top, require_test=False)
