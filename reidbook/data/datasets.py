"""Real person re-ID data sets on disk: Market-1501, DukeMTMC-reID, CUHK03-NP, MSMT17, any Market-style folder.

Every loader returns a :class:`ReIDDataset` with three lists of ``(path, pid, camid)``:

* ``train`` — pids relabelled to ``0..N-1`` (classification targets), camids from 0;
* ``query`` / ``gallery`` — the original pids (so query and gallery stay comparable), camids from 0.

The protocol these lists serve is the Market-1501 one (Zheng et al., ICCV 2015, Sec. 3; see
``shared/specs/evaluation.md``): junk images (pid ``-1``) are dropped when loading, distractors
(pid ``0``) stay in the gallery as negatives, and evaluation ignores gallery images of the query's
own identity seen by the query's own camera. A query whose identity has no gallery image from
another camera cannot be scored; it is kept (evaluation skips it) and counted in ``summary()``.

The data sets are licence-bound and are not redistributed: reidbook only reads copies the user
already has, and says where to request one when a folder is missing.
"""
from __future__ import annotations

import os
import re
from collections import defaultdict
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Iterable, Sequence

from .image import check_files, check_images

Item = tuple  # (path: str, pid: int, camid: int)

IMAGE_EXTS = (".jpg", ".jpeg", ".png", ".bmp")
# Market naming: <pid>_c<camera>... e.g. 0002_c1s1_000451_03.jpg (Market), 0001_c2_f0046182.jpg
# (Duke), 0001_c1_1.png (CUHK03-NP). Only the pid and the 1-based camera number are read.
MARKET_NAME = re.compile(r"^(-?\d+)_c(\d+)")
MARKET_PATTERN_HELP = "<pid>_c<camera>..., e.g. 0002_c1s1_000451_03.jpg (pid -1 = junk, 0 = distractor, cameras from 1)"


class DatasetNotFoundError(FileNotFoundError):
    """The data set's folder (or one of its parts) is not where we looked."""


class DatasetFormatError(ValueError):
    """The folder exists but its content does not follow the expected layout or file naming."""


# --------------------------------------------------------------------------------------------
# The container
# --------------------------------------------------------------------------------------------
@dataclass
class ReIDDataset:
    """Train / query / gallery lists of ``(path, pid, camid)`` plus where they came from.

    ``info`` holds loader facts worth reporting (junk images dropped, variant, version...).
    ``train_pid_map`` maps each original train pid to its relabelled class index.
    """

    name: str
    root: str
    train: list[Item]
    query: list[Item]
    gallery: list[Item]
    info: dict[str, Any] = field(default_factory=dict)
    train_pid_map: dict[int, int] = field(default_factory=dict)

    @property
    def num_train_pids(self) -> int:
        return len({pid for _, pid, _ in self.train})

    @property
    def num_train_cams(self) -> int:
        return len({cam for _, _, cam in self.train})

    @property
    def num_train_imgs(self) -> int:
        return len(self.train)

    @property
    def has_masks(self) -> bool:
        """Whether person masks and part maps lie beside the images (SynthReID's ``masks/``; real data sets
        have none). Read them with :func:`reidbook.data.load_masks`."""
        return os.path.isdir(os.path.join(self.root, "masks"))

    @property
    def num_query_pids(self) -> int:
        return len({pid for _, pid, _ in self.query})

    @property
    def num_gallery_pids(self) -> int:
        return len({pid for _, pid, _ in self.gallery})

    def queries_without_match(self) -> list[int]:
        """Indices of queries with no gallery image of their pid from another camera.

        Under the Market-1501 protocol such a query has no valid match and evaluation skips it.
        """
        cams_of = defaultdict(set)
        for _, pid, cam in self.gallery:
            cams_of[pid].add(cam)
        return [i for i, (_, pid, cam) in enumerate(self.query) if not (cams_of.get(pid, set()) - {cam})]

    def summary(self) -> str:
        """A torchreid-style table of ids / images / cameras per split, plus protocol notes."""
        rows = [("train", self.train), ("query", self.query), ("gallery", self.gallery)]
        line = "  " + "-" * 44
        out = [f"=> {self.name}  ({self.root})", line, "  subset   | # ids | # images | # cameras", line]
        for split, items in rows:
            ids = len({p for _, p, _ in items})
            cams = len({c for _, _, c in items})
            out.append(f"  {split:<8} | {ids:5d} | {len(items):8d} | {cams:9d}")
        out.append(line)
        n_distr = sum(1 for _, p, _ in self.gallery if p == 0)
        if n_distr:
            out.append(f"  gallery distractors (pid 0): {n_distr}")
        for key, label in (("junk_dropped", "junk images dropped (pid -1)"),
                           ("distractors_dropped", "distractor images dropped from train/query (pid 0)")):
            if self.info.get(key):
                out.append(f"  {label}: {self.info[key]}")
        n_nomatch = len(self.queries_without_match())
        if n_nomatch:
            out.append(f"  queries without a cross-camera gallery match: {n_nomatch} "
                       "(kept; evaluation skips them)")
        return "\n".join(out)

    def __str__(self) -> str:
        return self.summary()


def verify_images(dataset: ReIDDataset | Sequence[Item]) -> int:
    """Open and decode every image of ``dataset`` (all splits) or of a list of items.

    Raises :class:`~reidbook.data.image.CorruptImageError` naming every unreadable path;
    returns the number of images checked.
    """
    if isinstance(dataset, ReIDDataset):
        items = [*dataset.train, *dataset.query, *dataset.gallery]
        desc = f"checking {dataset.name}"
    else:
        items, desc = list(dataset), "checking images"
    return check_images((p for p, _, _ in items), desc=desc)


# --------------------------------------------------------------------------------------------
# Parsing helpers
# --------------------------------------------------------------------------------------------
def parse_market_name(filename: str) -> tuple[int, int] | None:
    """``"0002_c1s1_000451_03.jpg"`` → ``(2, 0)`` (pid, 0-based camid); ``None`` if it does not match."""
    m = MARKET_NAME.match(os.path.basename(filename))
    if m is None or int(m.group(2)) < 1:
        return None
    return int(m.group(1)), int(m.group(2)) - 1


def _list_images(folder: Path) -> list[str]:
    with os.scandir(folder) as it:
        return sorted(e.path for e in it if e.is_file() and e.name.lower().endswith(IMAGE_EXTS))


def _malformed_error(folder: Path, bad: list[str], total: int, pattern: str) -> DatasetFormatError:
    shown = "\n    ".join(os.path.basename(b) for b in bad[:8])
    more = f"\n    ... and {len(bad) - 8} more" if len(bad) > 8 else ""
    return DatasetFormatError(
        f"{len(bad)} of {total} image names in {folder} do not follow the expected naming:\n"
        f"    {shown}{more}\n  expected: {pattern}\n"
        "  Rename the files (or move them out of the folder) so the identity and camera can be read."
    )


def _read_market_folder(folder: Path, split: str, pattern: str = MARKET_PATTERN_HELP) -> list[Item]:
    """All images of one split folder in Market naming, as ``(path, pid, camid)`` (junk included)."""
    if not folder.is_dir():
        raise DatasetNotFoundError(f"the {split} folder is missing: {folder}")
    paths = _list_images(folder)
    if not paths:
        hint = ("" if split == "bounding_box_train" else
                "\n  (A train-only folder, e.g. a pre-training domain? Pass require_test=False.)")
        raise DatasetFormatError(f"the {split} folder is empty (no {'/'.join(IMAGE_EXTS)} images): {folder}{hint}")
    items, bad = [], []
    for p in paths:
        parsed = parse_market_name(p)
        if parsed is None:
            bad.append(p)
        else:
            items.append((p, *parsed))
    if bad:
        raise _malformed_error(folder, bad, len(paths), pattern)
    return items


def _finish(name: str, root: Path, train: list[Item], query: list[Item], gallery: list[Item],
            info: dict | None = None, has_distractors: bool = True, require_test: bool = True) -> ReIDDataset:
    """Drop junk (pid -1) everywhere and distractors (pid 0) outside the gallery; relabel train pids.

    Distractors are kept in the gallery (negatives for every query) but are no identity, so they
    can be neither a training class nor a query. ``has_distractors=False`` (MSMT17, whose labels
    start at 0) treats pid 0 as an ordinary identity. ``require_test=False`` accepts an empty
    query and gallery (a train-only domain).
    """
    info = dict(info or {})
    lo = 1 if has_distractors else 0
    junk = sum(1 for items in (train, query, gallery) for _, pid, _ in items if pid == -1)
    distr = sum(1 for items in (train, query) for _, pid, _ in items if pid == 0) if has_distractors else 0
    train = [it for it in train if it[1] >= lo]
    query = [it for it in query if it[1] >= lo]
    gallery = [it for it in gallery if it[1] >= 0]
    for split, items in (("train", train), ("query", query), ("gallery", gallery)):
        if not items and (split == "train" or require_test):
            raise DatasetFormatError(
                f"{name}: the {split} split has no usable images after dropping junk (pid -1)"
                f"{' and distractors (pid 0)' if split != 'gallery' and has_distractors else ''}; "
                f"check the folder {root}"
            )
    pid_map = {pid: i for i, pid in enumerate(sorted({pid for _, pid, _ in train}))}
    train = [(p, pid_map[pid], cam) for p, pid, cam in train]
    info.update(junk_dropped=junk, distractors_dropped=distr)
    return ReIDDataset(name=name, root=str(root), train=train, query=query, gallery=gallery,
                       info=info, train_pid_map=pid_map)


def _child(parent: Path, *names: str) -> Path | None:
    """The first existing child of ``parent`` among ``names`` (case-insensitive), or ``None``."""
    if not parent.is_dir():
        return None
    with os.scandir(parent) as it:
        lower = {e.name.lower(): Path(e.path) for e in it}
    for n in names:
        hit = parent / n if (parent / n).exists() else lower.get(n.lower())
        if hit is not None and hit.exists():
            return hit
    return None


# --------------------------------------------------------------------------------------------
# Loaders
# --------------------------------------------------------------------------------------------
MARKET_SPLITS = ("bounding_box_train", "query", "bounding_box_test")


def read_market_style(folder: str | os.PathLike, name: str | None = None, info: dict | None = None,
                      pattern: str = MARKET_PATTERN_HELP, require_test: bool = True) -> ReIDDataset:
    """A folder in Market-1501 layout: ``bounding_box_train/``, ``query/``, ``bounding_box_test/``.

    Serves Market-1501, DukeMTMC-reID, each CUHK03-NP variant, SynthReID and any folder that
    follows Market naming (``<pid>_c<camera>...``). ``require_test=False`` reads a train-only folder
    (missing or empty ``query/`` and ``bounding_box_test/`` give empty lists), e.g. SynthReID's
    source domain, which is only used for pre-training.
    """
    folder = Path(folder)
    splits = []
    for s in MARKET_SPLITS:
        optional = not require_test and s != "bounding_box_train"
        empty = not (folder / s).is_dir() or not _list_images(folder / s)
        splits.append([] if optional and empty else _read_market_folder(folder / s, s, pattern))
    return _finish(name or folder.name, folder, *splits, info, require_test=require_test)


def _read_msmt_list(list_file: Path, image_dir: Path) -> list[Item]:
    """MSMT17 list file lines ``0000/0000_000_01_0303morning_0015_0.jpg 0`` → items.

    The pid is the list's label; the camera is the name's third ``_`` field (1..15).
    """
    items, bad = [], []
    for ln, line in enumerate(list_file.read_text().splitlines(), 1):
        if not line.strip():
            continue
        parts = line.split()
        fields = os.path.basename(parts[0]).split("_")
        if len(parts) != 2 or len(fields) < 3 or not parts[1].lstrip("-").isdigit() or not fields[2].isdigit():
            bad.append(f"line {ln}: {line.strip()}")
            continue
        items.append((str(image_dir / parts[0]), int(parts[1]), int(fields[2]) - 1))
    if bad:
        shown = "\n    ".join(bad[:8])
        raise DatasetFormatError(
            f"{len(bad)} malformed lines in {list_file}:\n    {shown}\n"
            "  expected: '<pid folder>/<pid>_<index>_<camera>_<date>_<...>.jpg <pid>', "
            "e.g. '0000/0000_000_01_0303morning_0015_0.jpg 0'"
        )
    if not items:
        raise DatasetFormatError(f"the MSMT17 list file is empty: {list_file}")
    missing = [p for p, _, _ in items[:: max(1, len(items) // 50)] if not os.path.isfile(p)]
    if missing:
        raise DatasetNotFoundError(
            f"{list_file.name} lists images that are not on disk, e.g. {missing[0]}\n"
            f"  expected the images under {image_dir}"
        )
    return items


MSMT_VERSIONS = {"V1": ("train", "test"), "V2": ("mask_train_v2", "mask_test_v2")}


def read_msmt17(folder: str | os.PathLike, use_val: bool = True, version: str | None = None) -> ReIDDataset:
    """MSMT17 (Wei et al., CVPR 2018) from its list files, V1 (``train/``, ``test/``) or V2
    (``mask_train_v2/``, ``mask_test_v2/``) layout.

    ``use_val=True`` trains on ``list_train.txt`` + ``list_val.txt`` (1,041 identities), the common
    protocol; ``False`` keeps the validation identities out. ``version`` (``"V1"``/``"V2"``) insists
    on one layout; ``None`` takes V1's if present, else V2's.
    """
    folder = Path(folder)
    versions = {v: d for v, d in MSMT_VERSIONS.items() if version is None or v == version}
    for version, (tr, te) in versions.items():  # noqa: B007 (`version` is used after the loop)
        train_dir, test_dir = _child(folder, tr), _child(folder, te)
        if train_dir and test_dir:
            break
    else:
        raise DatasetFormatError(
            f"{folder} has MSMT17 list files but neither train/ + test/ (V1) nor "
            "mask_train_v2/ + mask_test_v2/ (V2) image folders"
        )
    lists = {k: _child(folder, f"list_{k}.txt") for k in ("train", "val", "query", "gallery")}
    for k in ("train", "query", "gallery"):
        if lists[k] is None:
            raise DatasetNotFoundError(f"MSMT17 list file missing: {folder / f'list_{k}.txt'}")
    train = _read_msmt_list(lists["train"], train_dir)
    if use_val and lists["val"] is not None:
        train += _read_msmt_list(lists["val"], train_dir)
    query = _read_msmt_list(lists["query"], test_dir)
    gallery = _read_msmt_list(lists["gallery"], test_dir)
    return _finish(f"MSMT17_{version}", folder, train, query, gallery,
                   {"version": version, "use_val": use_val}, has_distractors=False)


def read_folder(path: str | os.PathLike, variant: str = "labeled", use_val: bool = True,
                require_test: bool = True) -> ReIDDataset:
    """Read whatever re-ID layout ``path`` holds: Market-style, MSMT17 lists, or CUHK03-NP variants."""
    path = Path(path).expanduser()
    if (path / "bounding_box_train").is_dir():
        return read_market_style(path, require_test=require_test)
    if _child(path, "list_train.txt"):
        return read_msmt17(path, use_val=use_val)
    if _child(path, variant) and (_child(path, variant) / "bounding_box_train").is_dir():
        return read_market_style(_child(path, variant), name=f"{path.name}-{variant}", info={"variant": variant})
    have = sorted(e.name + ("/" if e.is_dir() else "") for e in os.scandir(path))[:12]
    raise DatasetFormatError(
        f"{path} is not a re-ID data set folder I can read. It contains: {', '.join(have) or '(nothing)'}\n"
        f"  expected Market-1501 layout:\n{_tree('<folder>')}"
    )


# --------------------------------------------------------------------------------------------
# Known names → where to look, how to get them
# --------------------------------------------------------------------------------------------
def _tree(top: str, splits: Sequence[str] = MARKET_SPLITS, example: str = "0002_c1s1_000451_03.jpg") -> str:
    return "\n".join([f"    {top}/"] + [f"      {s}/   ({example}, ...)" for s in splits])


@dataclass(frozen=True)
class _Known:
    title: str
    folders: tuple[str, ...]  # relative to root, tried in order
    url: str
    terms: str
    tree: str


KNOWN_DATASETS: dict[str, _Known] = {
    "market1501": _Known(
        "Market-1501", ("Market-1501-v15.09.15", "market1501/Market-1501-v15.09.15", "market1501", "Market-1501"),
        "https://zheng-lab.cecs.anu.edu.au/Project/project_reid.html",
        "released by Zheng et al. for non-commercial research; request/download it from the authors' page",
        _tree("Market-1501-v15.09.15"),
    ),
    "dukemtmcreid": _Known(
        "DukeMTMC-reID", ("DukeMTMC-reID", "dukemtmc-reid/DukeMTMC-reID", "dukemtmcreid", "dukemtmc-reid"),
        "https://github.com/layumi/DukeMTMC-reID_evaluation",
        "the DukeMTMC data were withdrawn by Duke University in 2019; use it only if you hold a copy "
        "under its original research terms",
        _tree("DukeMTMC-reID", example="0001_c2_f0046182.jpg"),
    ),
    "cuhk03np": _Known(
        "CUHK03-NP", ("cuhk03-np", "CUHK03-NP", "cuhk03np", "cuhk03/cuhk03-np"),
        "https://github.com/zhunzhong07/person-re-ranking/tree/master/CUHK03-NP",
        "the new-protocol split by Zhong et al. of CUHK03 (Li et al.), whose images are licensed for "
        "research by CUHK (http://www.ee.cuhk.edu.hk/~xgwang/CUHK_identification.html)",
        "    cuhk03-np/\n      labeled/   bounding_box_train/ query/ bounding_box_test/   (0001_c1_1.png, ...)\n"
        "      detected/  bounding_box_train/ query/ bounding_box_test/",
    ),
    "msmt17": _Known(
        "MSMT17", ("MSMT17_V1", "msmt17/MSMT17_V1", "MSMT17_V2", "msmt17/MSMT17_V2", "MSMT17", "msmt17"),
        "https://www.pkuvmc.com/dataset.html",
        "released by Peking University on request, after signing its licence agreement",
        "    MSMT17_V1/   list_train.txt list_val.txt list_query.txt list_gallery.txt train/ test/\n"
        "    MSMT17_V2/   the same list files, mask_train_v2/ mask_test_v2/",
    ),
}
ALIASES = {
    "market": "market1501", "market-1501": "market1501", "market1501": "market1501",
    "duke": "dukemtmcreid", "dukemtmc": "dukemtmcreid", "dukemtmc-reid": "dukemtmcreid", "dukemtmcreid": "dukemtmcreid",
    "cuhk03": "cuhk03np", "cuhk03-np": "cuhk03np", "cuhk03np": "cuhk03np",
    "msmt17": "msmt17", "msmt": "msmt17", "msmt17_v1": "msmt17", "msmt17_v2": "msmt17",
}


def default_root() -> Path:
    """Where known data sets are looked for: ``$REIDBOOK_DATA``, else ``./data``."""
    return Path(os.environ.get("REIDBOOK_DATA", "data")).expanduser()


def _not_found(key: str, root: Path, tried: Iterable[Path]) -> DatasetNotFoundError:
    k = KNOWN_DATASETS[key]
    looked = "\n    ".join(str(t) for t in tried)
    return DatasetNotFoundError(
        f"{k.title} not found under {root.resolve()}.\n  Looked in:\n    {looked}\n"
        f"  Expected layout (inside root):\n{k.tree}\n"
        f"  Get it from {k.url} ({k.terms}). reidbook does not redistribute it.\n"
        "  Pass root=... or set $REIDBOOK_DATA to the folder that holds it, or give the data set's "
        "folder path directly. Without it, the course runs on SynthReID (reidbook.data.make_synthetic)."
    )


def _load_known(key: str, root: Path, variant: str, use_val: bool, version: str | None) -> ReIDDataset:
    k = KNOWN_DATASETS[key]
    folders, v = k.folders, None
    if key == "msmt17" and version is not None:
        v = version.upper().lstrip("_")
        if v not in MSMT_VERSIONS:
            raise ValueError(f"unknown MSMT17 version {version!r}; use 'V1' or 'V2'")
        folders = tuple(f for f in folders if v in f.upper() or "_V" not in f.upper())
    tried = []
    for rel in folders:
        base = root / rel
        tried.append(base)
        if not base.is_dir():
            continue
        if key == "cuhk03np":
            sub = _child(base, variant)
            if sub is not None and (sub / "bounding_box_train").is_dir():
                return read_market_style(sub, name=f"CUHK03-NP ({variant})", info={"variant": variant},
                                         pattern=MARKET_PATTERN_HELP.replace("0002_c1s1_000451_03.jpg",
                                                                             "0001_c1_1.png"))
            tried[-1] = base / variant
        elif key == "msmt17":
            if _child(base, "list_train.txt"):
                return read_msmt17(base, use_val=use_val, version=v)
            if (base / "bounding_box_train").is_dir():  # a copy converted to Market layout
                return read_market_style(base, name="MSMT17")
        elif (base / "bounding_box_train").is_dir():
            return read_market_style(base, name=k.title)
    raise _not_found(key, root, tried)


def load_dataset(name_or_path: str | os.PathLike, root: str | os.PathLike | None = None, *,
                 variant: str = "labeled", version: str | None = None, use_val: bool = True,
                 check_images: bool = False, require_test: bool = True, check_files: bool = True) -> ReIDDataset:
    """Load a re-ID data set by name (``market1501``, ``dukemtmcreid``, ``cuhk03np``, ``msmt17``)
    from ``root`` (default ``$REIDBOOK_DATA`` or ``./data``), or read a folder path in Market layout
    (also an MSMT17 or CUHK03-NP folder).

    Args:
        variant: CUHK03-NP boxes, ``"labeled"`` (hand-drawn) or ``"detected"`` (DPM detector).
        version: MSMT17 ``"V1"`` or ``"V2"``; ``None`` takes the first found (V1 first).
        use_val: MSMT17: train on train + val lists (the common protocol).
        check_images: decode every image now and raise naming the corrupt ones (slow on big sets).
        check_files: look at every image file cheaply (size, header, a JPEG's end marker; no decoding) and
            raise naming the damaged ones, so a bad image is found now and not after a training run.
        require_test: a folder path may lack query/gallery images when ``False`` (a train-only
            domain such as SynthReID's ``source/`` in ``smoke``); known data sets always need them.
    """
    if not isinstance(name_or_path, (str, os.PathLike)) or not str(name_or_path).strip():
        raise TypeError(f"load_dataset needs a data set name ({', '.join(KNOWN_DATASETS)}) or the path of a folder "
                        f"in Market-1501 layout, got {name_or_path!r}; e.g. load_dataset('market1501') or "
                        "load_dataset(reidbook.zoo.synthreid('smoke'))")
    if variant not in ("labeled", "detected"):
        raise ValueError(f"CUHK03-NP variant must be 'labeled' or 'detected', not {variant!r}")
    key = ALIASES.get(str(name_or_path).lower().replace(" ", ""))
    if key is not None and "/" not in str(name_or_path) and os.sep not in str(name_or_path):
        if key == "msmt17" and version is None and str(name_or_path).lower().endswith(("_v1", "_v2")):
            version = str(name_or_path)[-2:].upper()  # "msmt17_v2" names the version
        ds = _load_known(key, Path(root).expanduser() if root is not None else default_root(),
                         variant, use_val, version)
    else:
        path = Path(name_or_path).expanduser()
        if root is not None and not path.is_absolute():
            path = Path(root).expanduser() / path
        if not path.is_dir():
            raise DatasetNotFoundError(
                f"no data set called {str(name_or_path)!r}: it is neither a known name "
                f"({', '.join(KNOWN_DATASETS)}) nor an existing folder ({path.resolve()})."
            )
        ds = read_folder(path, variant=variant, use_val=use_val, require_test=require_test)
    if check_files:
        _check_dataset_files(ds)
    if check_images:
        verify_images(ds)
    return ds


def _check_dataset_files(ds: ReIDDataset) -> None:
    """:func:`~reidbook.data.image.check_files` over train, query and gallery, with the fix that fits."""
    import json

    root = Path(ds.root)
    info = None
    try:
        info = json.loads((root / "synthreid.json").read_text())
    except (OSError, ValueError):
        pass
    if isinstance(info, dict):
        top = root.parent if info.get("domain") == "source" else root
        fix = (f"this is SynthReID: delete the folder {top} and run `reidbook synth {top} --profile "
               f"{info.get('profile')} --seed {info.get('seed')}` again (the zoo regenerates its own copy by itself)")
    else:
        fix = "re-copy or re-extract these files from the data set's original archive"
    paths = [p for items in (ds.train, ds.query, ds.gallery) for p, _, _ in items]
    check_files(paths, what=f"images of {ds.name} ({root})", fix=fix)
