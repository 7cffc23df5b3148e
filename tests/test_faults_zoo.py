"""Faults at the zoo and its store (issue 23): each gives a one-line answer (what, where, how to fix), and
nothing invalid is kept as a valid entry.

Cheap entries: ``store.cached`` toys, and one smoke baseline trained from random weights (no source-domain
pre-training) shared by the module.
"""
from __future__ import annotations

import json
import os
import stat
import time

import pytest
import torch

from reidbook import store, zoo
from reidbook.engine import fit_preset
from reidbook.presets import get_preset
from reidbook.utils import file_sha256

pytestmark = pytest.mark.usefixtures("one_thread")

RANDOM_INIT = {"pretrained": None}  # no source-domain backbone to pre-train


@pytest.fixture(scope="module")
def entry(smoke_root):
    return zoo.get("baseline", "smoke", **RANDOM_INIT)


def _rehash(folder, name):
    """Record ``name``'s current SHA-256 in entry.json (an entry intact by its hashes, whatever the file holds)."""
    marker = folder / "entry.json"
    meta = json.loads(marker.read_text())
    meta["files"][name] = file_sha256(folder / name)
    marker.write_text(json.dumps(meta))


def test_unreadable_model_pt_is_named_and_retrained(entry, monkeypatch, tmp_path):
    import shutil

    bad = tmp_path / "entry"
    shutil.copytree(entry.path, bad)
    (bad / "model.pt").write_bytes(b"garbage, not a checkpoint")
    _rehash(bad, "model.pt")  # intact by its hash: only reading it can find the fault
    with pytest.raises(zoo.ZooError) as err:
        zoo.load_entry(bad)
    msg = str(err.value)
    assert str(bad / "model.pt") in msg and "Delete" in msg and "weights_only" not in msg
    assert "\n" not in msg  # one line, not torch's text

    # zoo.get on such an entry trains it again (its docstring's promise)
    model_pt = entry.path / "model.pt"
    good, marker = model_pt.read_bytes(), (entry.path / "entry.json").read_text()
    calls = []
    monkeypatch.setattr(zoo, "train_entry", lambda *a, **kw: calls.append(kw) or "retrained")
    try:
        model_pt.write_bytes(b"garbage")
        _rehash(entry.path, "model.pt")
        assert zoo.get("baseline", "smoke", **RANDOM_INIT) == "retrained" and len(calls) == 1
    finally:
        model_pt.write_bytes(good)
        (entry.path / "entry.json").write_text(marker)


@pytest.mark.parametrize("epochs", [0, -1])
def test_zero_or_negative_epochs_are_refused_before_anything_is_saved(smoke_root, epochs):
    with pytest.raises(ValueError, match="epochs must be an integer ≥ 1"):
        zoo.get("baseline", "smoke", epochs=epochs, **RANDOM_INIT)
    assert not zoo.entry_path("baseline", "smoke", epochs=epochs, **RANDOM_INIT).exists()
    with pytest.raises(ValueError, match="epochs must be an integer ≥ 1"):
        fit_preset(torch.nn.Linear(2, 2), [], get_preset("baseline", "smoke"), epochs=epochs)


def test_a_diverged_run_keeps_no_checkpoint_and_names_its_folder(smoke_root):
    overrides = {"optimizer": {"lr": 1e4}, **RANDOM_INIT}  # finite losses, exploded weights
    folder = zoo.entry_path("baseline", "smoke", **overrides)
    with pytest.raises(FloatingPointError) as err:
        zoo.get("baseline", "smoke", **overrides)
    msg = str(err.value)
    assert "diverged" in msg and str(folder / "train") in msg and "learning rate" in msg
    assert not (folder / "train").exists()  # a rerun trains again instead of resuming a useless run
    assert not (folder / "entry.json").exists()


def test_retrain_starts_over_on_a_corrupt_resume_checkpoint(entry):
    folder = entry.path
    marker_before = json.loads((folder / "entry.json").read_text())
    (folder / "train").mkdir()
    (folder / "train" / "last.pt").write_bytes(b"half a checkpoint")
    stale = folder / ".model.pt.killed.tmp"  # left by a writer killed mid-write
    stale.write_bytes(b"x")
    old = time.time() - 3600
    os.utime(stale, (old, old))
    import subprocess
    import sys

    dead = subprocess.run([sys.executable, "-c", "import os; print(os.getpid())"], capture_output=True,
                          text=True).stdout.strip()
    fresh = folder / f".metrics.json.{dead}-abc123.tmp"  # just now, by a process that is gone (killed)
    fresh.write_bytes(b"{")
    again = zoo.get("baseline", "smoke", retrain=True, **RANDOM_INIT)
    assert again.path == folder and len(again.history) == entry.preset.epochs
    assert not (folder / "train").exists() and not stale.exists() and not fresh.exists()
    assert sorted(json.loads((folder / "entry.json").read_text())["files"]) == sorted(marker_before["files"])
    assert not list(folder.glob(".*.tmp"))


def test_entry_files_honour_the_umask(tmp_path, monkeypatch):
    monkeypatch.setenv("REIDBOOK_CACHE", str(tmp_path))
    old = os.umask(0o022)
    try:
        store.cached("toy", {"x": 1}, lambda: {"w": torch.zeros(2)})
    finally:
        os.umask(old)
    folder = store.entry_dir("toy", {"x": 1})
    for f in folder.iterdir():
        assert stat.S_IMODE(f.stat().st_mode) == 0o644, f  # readable by a class sharing the cache


def test_an_unwritable_cache_is_named_before_training(tmp_path, monkeypatch):
    blocker = tmp_path / "a-file"
    blocker.write_text("not a folder")
    monkeypatch.setenv("REIDBOOK_CACHE", str(blocker / "cache"))
    calls = []
    with pytest.raises(PermissionError, match="REIDBOOK_CACHE") as err:
        store.cached("toy", {"x": 1}, lambda: calls.append(1))
    assert str(blocker) in str(err.value) and calls == []
    with pytest.raises(PermissionError, match="REIDBOOK_CACHE"):  # before any data set or training
        zoo.get("baseline", "smoke", **RANDOM_INIT)
    with pytest.raises(PermissionError, match="REIDBOOK_CACHE"):
        zoo.train_entry("baseline", get_preset("baseline", "smoke"), pretrained=None)
    # a cache folder that exists but is a file's child path: the check names the file
    with pytest.raises(PermissionError, match="is a file"):
        store.check_writable(blocker / "zoo" / "entry")


@pytest.mark.skipif(os.name != "posix" or os.geteuid() == 0, reason="root may write anywhere")
def test_a_read_only_cache_is_refused_before_training(tmp_path, monkeypatch):
    ro = tmp_path / "ro"
    ro.mkdir()
    ro.chmod(0o555)
    monkeypatch.setenv("REIDBOOK_CACHE", str(ro))
    try:
        with pytest.raises(PermissionError, match="REIDBOOK_CACHE"):
            store.cached("toy", {"x": 1}, lambda: pytest.fail("trained in a read-only cache"))
    finally:
        ro.chmod(0o755)


def test_cuda_is_checked_even_when_the_entry_is_cached(entry, monkeypatch):
    monkeypatch.setattr(torch.cuda, "is_available", lambda: False)
    monkeypatch.setattr(zoo, "load_entry", lambda *a, **kw: pytest.fail("loaded before checking the device"))
    with pytest.raises(ValueError, match="CUDA"):
        zoo.get("baseline", "smoke", device="cuda", **RANDOM_INIT)
