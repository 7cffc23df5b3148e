"""Fault injection (issues 23 and 25): every expected fault ends in one line (what, where, how to fix)
with a non-zero status; nothing reidbook did not create is deleted or overwritten; interruptions
(SIGINT, SIGTERM, SIGKILL) leave no process and no temporary folder, and the same command resumes.

In-process tests call ``reidbook.cli.main``; the signal tests run ``python -m reidbook.cli`` as a child.
"""
from __future__ import annotations

import json
import os
import pickle
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest
import torch

from reidbook.cli import NOT_TRAINED_BY_TRAIN, OUT_MARKER, main, set_threads, threads_per_job

torch.set_num_threads(1)


# ----------------------------------------------------------------------------------------------
# helpers
# ----------------------------------------------------------------------------------------------
def run(capsys, *argv) -> tuple[int, str, str]:
    """``main(argv)`` → (status, stdout, stderr); a bad command line (argparse's exit) gives its status."""
    try:
        code = main([str(a) for a in argv])
    except SystemExit as exc:
        code = exc.code
    out, err = capsys.readouterr()
    return code, out, err


def one_line_error(capsys, *argv, status: int = 1) -> str:
    """Run a command that must fail: exactly one line on stderr, status ``status``; returns the line."""
    code, _, err = run(capsys, *argv)
    lines = err.strip().splitlines()
    assert code == status, err
    assert len(lines) == 1, err
    assert "Traceback" not in err
    return lines[0]


def snapshot(folder: Path) -> dict[str, tuple[int, int]]:
    """Every file under ``folder`` with its size and modification time (to prove nothing changed)."""
    return {str(p.relative_to(folder)): (p.stat().st_size, p.stat().st_mtime_ns)
            for p in sorted(folder.rglob("*")) if p.is_file()}


TRAIN = ["train", "baseline", "--profile", "smoke", "--device", "cpu", "--epochs", "1"]


@pytest.fixture(scope="module")
def trained(tmp_path_factory, smoke_root):
    """A model folder written by ``reidbook train --out`` (smoke baseline, one epoch), once per module."""
    out = tmp_path_factory.mktemp("trained") / "model"
    assert main(TRAIN + ["--out", str(out)]) == 0
    return out


@pytest.fixture
def market_copy(smoke_root, tmp_path):
    """SynthReID smoke's train/query/gallery copied to a plain folder in Market-1501 layout."""
    dst = tmp_path / "market"
    for split in ("bounding_box_train", "query", "bounding_box_test"):
        shutil.copytree(smoke_root / split, dst / split)
    return dst


# ----------------------------------------------------------------------------------------------
# Data loss: --out writes only what reidbook created
# ----------------------------------------------------------------------------------------------
def test_out_refuses_a_folder_reidbook_did_not_create(tmp_path, capsys):
    project = tmp_path / "project"
    (project / "train").mkdir(parents=True)
    (project / "train" / "notes.txt").write_text("my own work")
    (project / "README").write_text("mine")
    before = snapshot(tmp_path)
    line = one_line_error(capsys, *TRAIN, "--out", project)
    assert f"--out {project} is not empty and was not created by reidbook" in line and "choose a new or empty" in line
    assert snapshot(tmp_path) == before  # nothing deleted, nothing written


def test_out_dot_inside_a_project_is_refused(tmp_path, capsys, monkeypatch):
    (tmp_path / "train").mkdir()
    (tmp_path / "train" / "data.csv").write_text("1,2\n")
    before = snapshot(tmp_path)
    monkeypatch.chdir(tmp_path)
    line = one_line_error(capsys, *TRAIN, "--out", ".")
    assert "--out . is not empty and was not created by reidbook" in line
    assert snapshot(tmp_path) == before


def test_out_refuses_a_train_folder_it_did_not_create(tmp_path, capsys):
    out = tmp_path / "run"
    (out / "train").mkdir(parents=True)
    (out / OUT_MARKER).write_text("{}")  # the folder is ours, its train/ is not
    (out / "train" / "keep.txt").write_text("keep")
    line = one_line_error(capsys, *TRAIN, "--out", out)
    assert f"{out / 'train'} exists and was not created by reidbook" in line and "move it elsewhere" in line
    assert (out / "train" / "keep.txt").read_text() == "keep"


def test_out_over_a_trained_model_needs_force(trained, tmp_path, capsys):
    out = tmp_path / "model"
    shutil.copytree(trained, out)
    (out / "my-notes.txt").write_text("not reidbook's")
    before = snapshot(out)
    line = one_line_error(capsys, *TRAIN, "--out", out)
    assert f"--out {out} already holds a trained model (entry.json); pass --force to replace it" in line
    assert snapshot(out) == before
    code, text, _ = run(capsys, *TRAIN, "--out", out, "--force")
    assert code == 0 and "mAP" in text
    assert (out / "my-notes.txt").read_text() == "not reidbook's"  # --force replaces only reidbook's files
    assert (out / "entry.json").stat().st_mtime_ns != before["entry.json"][1]
    assert (out / OUT_MARKER).is_file() and not (out / "train").exists()


def test_out_must_be_a_folder(tmp_path, capsys):
    f = tmp_path / "file.txt"
    f.write_text("data")
    line = one_line_error(capsys, *TRAIN, "--out", f)
    assert f"--out {f} is a file, not a folder" in line
    line = one_line_error(capsys, *TRAIN, "--out", f / "sub")
    assert f"{f} is a file, not a folder" in line
    assert f.read_text() == "data" and sorted(p.name for p in tmp_path.iterdir()) == ["file.txt"]


def test_force_without_out_is_explained(capsys):
    assert "--force only applies with --out" in one_line_error(capsys, *TRAIN, "--force")


# ----------------------------------------------------------------------------------------------
# Corrupt data is found before training, and named
# ----------------------------------------------------------------------------------------------
@pytest.mark.parametrize("split,damage,why", [("bounding_box_train", b"", "empty (0 bytes)"),
                                              ("query", b"<html>not found</html>", "not an image"),
                                              ("bounding_box_test", None, "a cut-off JPEG")])
def test_damaged_images_stop_training_before_it_starts(market_copy, tmp_path, capsys, split, damage, why):
    victim = [p for p in sorted((market_copy / split).glob("*.jpg")) if not p.name.startswith(("-1_", "0000_"))][3]
    victim.write_bytes(victim.read_bytes()[:200] if damage is None else damage)
    out = tmp_path / "o"
    line = one_line_error(capsys, *TRAIN, "--data", market_copy, "--out", out)
    assert f"{victim}: {why}" in line and "1 of " in line and "Fix: re-copy or re-extract" in line
    assert not (out / "model.pt").exists() and not (out / "train" / "last.pt").exists()  # nothing trained


def test_synth_over_a_damaged_synthreid_names_the_files(smoke_root, tmp_path, capsys):
    root = tmp_path / "synth"
    shutil.copytree(smoke_root, root)
    empty = sorted((root / "bounding_box_train").glob("*.jpg"))[0]
    empty.write_bytes(b"")
    renamed = sorted((root / "query").glob("*.jpg"))[0]
    renamed.rename(root / "query" / "renamed.jpg")
    before = snapshot(root)
    line = one_line_error(capsys, "synth", root, "--profile", "smoke")
    assert f"the SynthReID at {root} is damaged: 3 file(s)" in line
    assert f"bounding_box_train/{empty.name} is empty" in line and f"query/{renamed.name} is missing" in line
    assert "query/renamed.jpg is not part of the data set" in line
    assert f"Fix: delete the folder {root} and run `reidbook synth {root} --profile smoke --seed 0` again" in line
    assert snapshot(root) == before  # reported, not "repaired" behind the user's back


# ----------------------------------------------------------------------------------------------
# One line, not a traceback
# ----------------------------------------------------------------------------------------------
def test_unwritable_cache_is_found_before_training(capsys, monkeypatch, tmp_path):
    f = tmp_path / "a-file"
    f.write_text("x")
    monkeypatch.setenv("REIDBOOK_CACHE", str(f / "cache"))
    line = one_line_error(capsys, *TRAIN)
    assert f"the cache folder {f / 'cache'} cannot be created (Not a directory)" in line
    assert "set REIDBOOK_CACHE to a folder you can write" in line
    readonly = tmp_path / "ro"
    readonly.mkdir()
    if os.geteuid() == 0:  # root ignores file modes: a sysfs folder refuses even root
        readonly = Path("/sys/kernel")
        if not readonly.is_dir():
            pytest.skip("needs a folder this user cannot write")
    else:
        readonly.chmod(0o500)
    monkeypatch.setenv("REIDBOOK_CACHE", str(readonly))
    line = one_line_error(capsys, *TRAIN)
    assert f"the cache folder {readonly} cannot be written" in line and "REIDBOOK_CACHE" in line


def test_permission_error_while_writing_is_one_line(tmp_path, capsys, monkeypatch):
    import reidbook.utils as utils

    def refuse(path, data):
        raise PermissionError(13, "Permission denied", str(path))

    monkeypatch.setattr(utils, "atomic_write_bytes", refuse)
    out = tmp_path / "o"
    line = one_line_error(capsys, *TRAIN, "--out", out)
    assert line.startswith("reidbook train: error: Permission denied: ") and str(out) in line
    assert "make it writable" in line and "REIDBOOK_CACHE" in line


@pytest.mark.parametrize("exc,expected", [
    (FloatingPointError("non-finite training loss at epoch 2/4, iteration 3/9: loss=nan\nFixes: lower the lr"),
     "non-finite training loss at epoch 2/4, iteration 3/9: loss=nan Fixes: lower the lr"),
    (pickle.UnpicklingError("Weights only load failed. ... re-running with weights_only=False ..."),
     "a file could not be read as a safe PyTorch file"),
    (PermissionError(13, "Permission denied", "/cache/zoo/x/model.pt"),
     "Permission denied: /cache/zoo/x/model.pt; make it writable"),
    (NotADirectoryError(20, "Not a directory", "/data/file/sub"), "Not a directory: /data/file/sub; a part of"),
    (OSError(28, "No space left on device", "/cache/zoo/x/model.pt"),
     "No space left on device: /cache/zoo/x/model.pt; free some disk space"),
])
def test_expected_faults_are_one_line(capsys, monkeypatch, exc, expected):
    import reidbook.cli as cli

    def fail(args):
        raise exc

    monkeypatch.setattr(cli, "cmd_models", fail)
    line = one_line_error(capsys, "models")
    assert line.startswith(f"reidbook models: error: {expected}")
    assert "weights_only=False" not in line


def test_a_bug_keeps_its_traceback(monkeypatch):
    import reidbook.cli as cli

    def bug(args):
        raise AttributeError("'NoneType' object has no attribute 'x'")

    monkeypatch.setattr(cli, "cmd_models", bug)
    with pytest.raises(AttributeError):  # not an expected fault: hiding it would hide the bug
        main(["models"])


def test_debug_shows_the_traceback(tmp_path, capsys):
    f = tmp_path / "file"
    f.write_text("x")
    with pytest.raises(NotADirectoryError, match="is a file"):
        main(["--debug"] + TRAIN + ["--out", str(f)])


def test_unreadable_model_file_names_the_path(trained, tmp_path, capsys):
    from reidbook.utils import file_sha256

    out = tmp_path / "model"
    shutil.copytree(trained, out)
    (out / "model.pt").write_bytes(b"\x80\x04garbage, not a torch file")
    entry = json.loads((out / "entry.json").read_text())
    entry["files"]["model.pt"] = file_sha256(out / "model.pt")  # hashes agree: only loading can tell
    (out / "entry.json").write_text(json.dumps(entry))
    line = one_line_error(capsys, "eval", out, "--device", "cpu")
    assert f"cannot read the weights in {out / 'model.pt'}" in line and "train again" in line
    assert "weights_only=False" not in line


def test_nan_pretrained_weights_are_refused_before_training(tmp_path, capsys):
    state = {"conv1.weight": torch.full((4, 3, 7, 7), float("nan")), "bn1.weight": torch.ones(4)}
    path = tmp_path / "nan.pth"
    torch.save(state, path)
    line = one_line_error(capsys, *TRAIN, "--pretrained", path, "--out", tmp_path / "o")
    assert f"--pretrained {path} holds NaN or infinite values in 1 of 2 tensors (e.g. conv1.weight)" in line
    assert "--pretrained auto" in line


def test_pretrained_text_file(tmp_path, capsys):
    text = tmp_path / "weights.txt"
    text.write_text("hello, these are not weights\n")
    line = one_line_error(capsys, *TRAIN, "--pretrained", text)
    assert f"--pretrained {text} is not a PyTorch weights file" in line and "torch.save(model.state_dict()" in line
    assert "weights_only=False" not in line
    line = one_line_error(capsys, *TRAIN, "--pretrained", tmp_path / "missing.pth")
    assert "no such file" in line and "auto, source, imagenet, none" in line


def test_bad_options_and_seed(capsys):
    line = one_line_error(capsys, *TRAIN, "--option", "num_classes=3")
    assert "--option num_classes=… cannot be set" in line
    line = one_line_error(capsys, *TRAIN, "--option", "profile=full")
    assert "use --profile" in line
    line = one_line_error(capsys, *TRAIN, "--option", "nonsense=1")
    assert "unknown --option nonsense for model 'baseline'; it accepts" in line and "last_stride" in line
    for bad in ("-1", "x", str(2**32)):
        line = one_line_error(capsys, *TRAIN[:-2], "--seed", bad, status=2)
        assert "--seed" in line and "reidbook train --help" in line
    line = one_line_error(capsys, *TRAIN, "--threads", "0", status=2)
    assert "--threads must be a whole number ≥ 1" in line


def test_load_dataset_none():
    from reidbook.data import load_dataset

    with pytest.raises(TypeError, match=r"load_dataset needs a data set name \(market1501.*got None"):
        load_dataset(None)


def test_synth_errors_name_the_data_set_not_a_temporary_folder(tmp_path, capsys, monkeypatch):
    f = tmp_path / "file"
    f.write_text("x")
    line = one_line_error(capsys, "synth", f / "data", "--profile", "smoke")
    assert f"cannot write SynthReID at {f / 'data'}" in line and ".tmp" not in line
    from reidbook.data import synthetic

    def disk_full(tasks):
        raise OSError(28, "No space left on device", str(tmp_path / ".d.tmp-xyz" / "query" / "0001.jpg"))

    monkeypatch.setattr(synthetic, "_render_chunk", disk_full)
    line = one_line_error(capsys, "synth", tmp_path / "d", "--profile", "smoke", "--workers", "1")
    assert f"could not write SynthReID at {tmp_path / 'd'} (No space left on device)" in line
    assert ".tmp" not in line and "partial data set was removed" in line
    assert sorted(p.name for p in tmp_path.iterdir()) == ["file"]  # no temporary folder left


def test_fd_student_points_at_the_command_that_trains_it(capsys):
    line = one_line_error(capsys, "train", "fd_student", "--profile", "smoke")
    assert "'fd_student' is not trained by `reidbook train`" in line and "reidbook distill --profile smoke" in line
    code, out, _ = run(capsys, "models")
    assert code == 0
    lines = out.splitlines()
    for name, how in NOT_TRAINED_BY_TRAIN.items():
        i = next(i for i, ln in enumerate(lines) if ln.startswith(name + " "))
        assert f"not trained by `reidbook train`: use {how}" in lines[i + 1]


def test_architecture_list_has_no_duplicates():
    from reidbook.pretrain import build_trunk

    with pytest.raises(KeyError) as e:
        build_trunk("no-such-arch", 0.125)
    known = str(e.value).split("known: ")[1].rstrip("'\"").split(", ")
    assert len(known) == len(set(known)) and "squeezenet1_0" in known


# ----------------------------------------------------------------------------------------------
# Budget slider and anytime curve: bad arguments are refused with a message
# ----------------------------------------------------------------------------------------------
@pytest.fixture
def anytime_ev():
    from reidbook.eval.anytime import AnytimeEval

    rng = np.random.default_rng(0)
    q_pids, g_pids = np.arange(6), np.repeat(np.arange(6), 2)
    d = rng.random((3, 6, 12)).astype(np.float32)
    d[:, np.arange(6), 2 * np.arange(6)] -= 0.5  # each query's first gallery image is a good match
    return AnytimeEval(d, [1e6, 2e6, 3e6], q_pids, g_pids, np.zeros(6, int), np.ones(12, int))


def test_anytime_curve_refuses_nan_and_inf(anytime_ev):
    from reidbook.eval.anytime import anytime_curve

    ok = anytime_curve(anytime_ev, [0.5e6, 2e6, 3e6])
    assert list(ok["exit"]) == [0, 2, 3]
    for bad in (float("nan"), float("inf"), -float("inf")):
        with pytest.raises(ValueError,
                           match=r"budgets must be finite numbers .* at position 1 .*exit costs run from 1e\+06"):
            anytime_curve(anytime_ev, [2e6, bad])


def test_budget_view_and_slider_arguments(anytime_ev):
    pytest.importorskip("ipywidgets")
    from reidbook.viz.anytime import budget_view_data
    from reidbook.widgets import budget_slider

    assert budget_view_data(anytime_ev, 1e9)["budget"] == 3e6  # clamped to the slider's range
    with pytest.raises(ValueError, match="budget must be a finite number of multiply-adds per query"):
        budget_view_data(anytime_ev, float("nan"))
    with pytest.raises(ValueError, match="unknown routing rule 'fastest'"):
        budget_view_data(anytime_ev, 2e6, rule="fastest")
    with pytest.raises(ValueError, match="n_examples must be a whole number ≥ 0"):
        budget_view_data(anytime_ev, 2e6, n_examples=-1)
    with pytest.raises(ValueError, match="steps must be a whole number ≥ 1"):
        budget_slider(anytime_ev, steps=0)
    with pytest.raises(ValueError, match="unknown routing rule 'fastest'"):
        budget_slider(anytime_ev, rule="fastest")
    with pytest.raises(ValueError, match="topk must be a whole number ≥ 1"):
        budget_slider(anytime_ev, topk=0)
    one_exit = type(anytime_ev)(anytime_ev.distmats[:1], [1e6], anytime_ev.q_pids, anytime_ev.g_pids,
                                anytime_ev.q_camids, anytime_ev.g_camids)
    with pytest.raises(ValueError, match=r"exits cost different amounts \(C_1 < C_S\)"):
        budget_slider(one_exit)
    assert budget_slider(anytime_ev, steps=1) is not None  # the extreme that divided by zero before


# ----------------------------------------------------------------------------------------------
# Threads
# ----------------------------------------------------------------------------------------------
def test_threads_per_job_divides_the_cores():
    assert [threads_per_job(j, cores=2) for j in (1, 2, 3)] == [2, 1, 1]
    assert [threads_per_job(j, cores=16) for j in (1, 2, 3, 4, 32)] == [16, 8, 5, 4, 1]
    assert 1 <= threads_per_job(1) <= (os.cpu_count() or 1)
    for bad in (0, -1, 1.5, True):
        with pytest.raises(ValueError, match="jobs must be a whole number ≥ 1"):
            threads_per_job(bad)


def test_threads_flag_and_omp_num_threads(monkeypatch):
    before = torch.get_num_threads()
    try:
        assert set_threads(2) == 2 and torch.get_num_threads() == 2
        monkeypatch.setenv("OMP_NUM_THREADS", "1")
        assert set_threads(None) == 1
        monkeypatch.setenv("OMP_NUM_THREADS", "many")
        with pytest.raises(ValueError, match="OMP_NUM_THREADS='many' is not a whole number"):
            set_threads(None)
        monkeypatch.delenv("OMP_NUM_THREADS")
        assert set_threads(None) == 1  # unset: torch's current setting is kept
    finally:
        torch.set_num_threads(before)


# ----------------------------------------------------------------------------------------------
# Every listed model trains from the CLI (or the CLI names the command that does)
# ----------------------------------------------------------------------------------------------
@pytest.mark.slow
def test_every_listed_model_trains_from_the_cli(smoke_root, tmp_path, capsys):
    from reidbook.models import list_models

    code, listing, _ = run(capsys, "models")
    names = [ln.split()[0] for ln in listing.splitlines() if ln and not ln.startswith(" ")]
    assert names == list_models()
    for name in names:
        if name in NOT_TRAINED_BY_TRAIN:
            line = one_line_error(capsys, "train", name, "--profile", "smoke")
            assert "reidbook distill" in line
            continue
        out = tmp_path / name
        code, text, err = run(capsys, "train", name, "--profile", "smoke", "--device", "cpu", "--out", out)
        assert code == 0, f"{name}: {err}"
        assert f"{name} (smoke, synth, seed 0)" in text
        metrics = json.loads((out / "metrics.json").read_text())
        assert 0.0 < metrics["mAP"] <= 1.0, name
        code, text, err = run(capsys, "eval", out, "--device", "cpu")
        assert code == 0, f"{name}: {err}"
        assert f"{100 * metrics['mAP']:6.2f} %" in text, name  # the entry loads and scores the same


# ----------------------------------------------------------------------------------------------
# Interruptions: SIGINT, SIGTERM, SIGKILL of child processes
# ----------------------------------------------------------------------------------------------
def _env(quiet: bool = True) -> dict:
    env = {**os.environ, "OMP_NUM_THREADS": "1", "PYTHONUNBUFFERED": "1"}
    env["REIDBOOK_QUIET"] = "1" if quiet else "0"
    return env


def _start(*argv, quiet: bool = True) -> subprocess.Popen:
    return subprocess.Popen([sys.executable, "-m", "reidbook.cli", *map(str, argv)], env=_env(quiet),
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)


def _children(pid: int) -> set[int]:
    """Pids whose parent is ``pid`` (Linux /proc)."""
    kids = set()
    for d in Path("/proc").iterdir():
        if d.name.isdigit():
            try:
                stat = (d / "stat").read_text()
            except OSError:
                continue
            if int(stat.rsplit(")", 1)[1].split()[1]) == pid:
                kids.add(int(d.name))
    return kids


def _alive(pid: int) -> bool:
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return False
    return stat.rsplit(")", 1)[1].split()[0] != "Z"


def _wait_for(predicate, proc: subprocess.Popen, timeout: float = 240.0, what: str = "") -> None:
    t0 = time.monotonic()
    while not predicate():
        if proc.poll() is not None:
            pytest.fail(f"the command ended before {what}: {proc.communicate()[1][-2000:]}")
        if time.monotonic() - t0 > timeout:
            proc.kill()
            pytest.fail(f"timed out waiting for {what}")
        time.sleep(0.02)


needs_proc = pytest.mark.skipif(not Path("/proc/self/stat").exists(), reason="needs Linux /proc")


@pytest.mark.slow
@needs_proc
@pytest.mark.parametrize("sig,status", [(signal.SIGINT, 130), (signal.SIGTERM, 143)])
def test_train_interrupted_then_resumed(smoke_root, tmp_path, sig, status):
    out = tmp_path / "run"
    argv = ["train", "baseline", "--profile", "smoke", "--device", "cpu", "--epochs", "6", "--out", out]
    proc = _start(*argv)
    ckpt = out / "train" / "last.pt"
    _wait_for(ckpt.is_file, proc, what="the first checkpoint")
    proc.send_signal(sig)
    _, err = proc.communicate(timeout=120)
    lines = err.strip().splitlines()
    assert proc.returncode == status, err
    assert len(lines) == 1 and "Traceback" not in err, err
    name = signal.Signals(sig).name
    assert lines[0].startswith(f"reidbook train: interrupted ({name}) at epoch "), lines[0]
    assert f"saved in {ckpt}; run the same command again to resume" in lines[0]
    assert ckpt.is_file() and not (out / "entry.json").exists()
    assert not _alive(proc.pid)
    assert not list(out.rglob("*.tmp")) and not list(out.rglob(".*.tmp"))  # no half-written file
    from reidbook.engine.checkpoint import read_checkpoint

    done = int(read_checkpoint(ckpt)["epoch"])
    assert 1 <= done < 6 and f"at epoch {done + 1}/6" in lines[0]
    again = _start(*argv, quiet=False)
    text, err = again.communicate(timeout=600)
    assert again.returncode == 0, err
    assert f"resumed from {ckpt} after epoch {done}/6" in text
    assert "mAP" in text and (out / "entry.json").is_file() and not (out / "train").exists()
    assert len(json.loads((out / "history.json").read_text())) == 6


def _synth_temp(parent: Path) -> list[Path]:
    return [p for p in parent.iterdir() if ".tmp-" in p.name]


@pytest.mark.slow
@needs_proc
@pytest.mark.parametrize("sig,status", [(signal.SIGINT, 130), (signal.SIGTERM, 143)])
def test_synth_interrupted_leaves_nothing_then_reruns(tmp_path, sig, status):
    from reidbook.data import verify_synthetic

    root = tmp_path / "synth"
    proc = _start("synth", root, "--profile", "smoke", "--workers", "2")
    _wait_for(lambda: _synth_temp(tmp_path) and len(_children(proc.pid)) >= 2, proc, what="the render workers")
    workers = _children(proc.pid)
    proc.send_signal(sig)
    _, err = proc.communicate(timeout=120)
    lines = err.strip().splitlines()
    assert proc.returncode == status, err
    assert len(lines) == 1 and "Traceback" not in err, err
    assert lines[0] == (f"reidbook synth: interrupted ({signal.Signals(sig).name}); nothing was left at {root} "
                        "(the partial data set was removed); run the same command again to generate it")
    time.sleep(0.5)
    assert not [w for w in workers if _alive(w)]  # no render process left
    assert list(tmp_path.iterdir()) == []  # no temporary folder, no partial data set
    again = _start("synth", root, "--profile", "smoke", "--workers", "2")
    _, err = again.communicate(timeout=600)
    assert again.returncode == 0, err
    assert verify_synthetic(root) == [] and [p.name for p in tmp_path.iterdir()] == ["synth"]


@pytest.mark.slow
@needs_proc
def test_synth_killed_workers_end_and_the_next_run_cleans_up(tmp_path):
    from reidbook.data import verify_synthetic

    root = tmp_path / "synth"
    proc = _start("synth", root, "--profile", "smoke", "--workers", "2")
    _wait_for(lambda: _synth_temp(tmp_path) and len(_children(proc.pid)) >= 2, proc, what="the render workers")
    workers = _children(proc.pid)
    stale = _synth_temp(tmp_path)
    proc.kill()  # SIGKILL: no clean-up code runs in the parent
    proc.communicate(timeout=60)
    t0 = time.monotonic()
    while [w for w in workers if _alive(w)] and time.monotonic() - t0 < 10:
        time.sleep(0.1)
    assert not [w for w in workers if _alive(w)]  # the workers ended with their parent
    assert _synth_temp(tmp_path) == stale  # its temporary folder is left behind ...
    again = _start("synth", root, "--profile", "smoke", "--workers", "2")
    _, err = again.communicate(timeout=600)
    assert again.returncode == 0, err
    assert _synth_temp(tmp_path) == []  # ... and the next run recognises it as its own and removes it
    assert verify_synthetic(root) == []
