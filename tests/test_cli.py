"""The ``reidbook`` command, run in-process through ``main([...])`` at smoke size."""
from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys

import pytest
import torch

from reidbook.cli import main

torch.set_num_threads(1)

COMMANDS = ["synth", "train", "eval", "course", "prune", "distill", "models"]


def test_help_everywhere(capsys):
    with pytest.raises(SystemExit) as exc:
        main(["--help"])
    assert exc.value.code == 0
    top = capsys.readouterr().out
    for cmd in COMMANDS:
        assert cmd in top
        with pytest.raises(SystemExit) as exc:
            main([cmd, "--help"])
        assert exc.value.code == 0
        assert "usage: reidbook " + cmd in capsys.readouterr().out


def test_synth_on_existing_dataset_is_a_noop(smoke_root, capsys):
    assert main(["synth", str(smoke_root), "--profile", "smoke"]) == 0
    assert str(smoke_root) in capsys.readouterr().out


def test_train_then_eval_a_folder(smoke_root, tmp_path, capsys):
    out = tmp_path / "run"
    assert main(["train", "baseline", "--profile", "smoke", "--out", str(out), "--device", "cpu",
                 "--option", "last_stride=2"]) == 0
    text = capsys.readouterr().out
    assert "mAP" in text and str(out) in text
    entry = json.loads((out / "entry.json").read_text())
    assert entry["config"]["preset"]["model_options"]["last_stride"] == 2
    metrics = json.loads((out / "metrics.json").read_text())
    assert main(["eval", str(out), "--device", "cpu"]) == 0
    text = capsys.readouterr().out
    assert f"{100 * metrics['mAP']:6.2f} %" in text  # same model, same data → same mAP
    assert main(["eval", str(out / "model.pt"), "--rerank"]) == 0
    assert "re-ranked" in capsys.readouterr().out


def test_clear_errors(tmp_path, capsys):
    assert main(["train", "nosuchnet", "--profile", "smoke"]) == 1
    err = capsys.readouterr().err
    assert "unknown model 'nosuchnet'" in err and "baseline" in err
    assert main(["eval", str(tmp_path / "missing-folder")]) == 1
    assert "no model folder" in capsys.readouterr().err
    (tmp_path / "empty").mkdir()
    assert main(["eval", str(tmp_path / "empty")]) == 1
    assert "entry.json" in capsys.readouterr().err
    assert main(["train", "baseline", "--profile", "smoke", "--epochs", "0"]) == 1
    assert "--epochs" in capsys.readouterr().err
    with pytest.raises(SystemExit):
        main(["train", "baseline", "--profile", "huge"])


def test_models_lists_names(capsys):
    assert main(["models"]) == 0
    out = capsys.readouterr().out
    assert "baseline" in out and "Bag of Tricks" in out


def test_missing_subcommand_module_is_a_clear_error(capsys, monkeypatch):
    # Point the prune sub-command at a module that cannot be imported (as when an optional part of the
    # package is absent): the CLI must still build and say which module is missing.
    import reidbook.cli as cli

    monkeypatch.setitem(cli._EXTERNAL, "prune", ("reidbook.no_such_module", "prune (missing)"))
    assert main(["prune"]) == 2
    assert "reidbook.no_such_module" in capsys.readouterr().err


@pytest.mark.slow
@pytest.mark.skipif(shutil.which("torchrun") is None
                    and not os.path.exists(os.path.join(os.path.dirname(sys.executable), "torchrun")),
                    reason="torchrun not installed")
def test_train_under_torchrun(smoke_root, tmp_path):
    torchrun = shutil.which("torchrun") or os.path.join(os.path.dirname(sys.executable), "torchrun")
    out = tmp_path / "ddp"
    env = {**os.environ, "OMP_NUM_THREADS": "1", "REIDBOOK_QUIET": "1"}
    proc = subprocess.run([torchrun, "--nproc_per_node=2", "--master_port=29531", "-m", "reidbook.cli", "train",
                           "baseline", "--profile", "smoke", "--device", "cpu", "--epochs", "1", "--out", str(out)],
                          env=env, capture_output=True, text=True, timeout=600)
    assert proc.returncode == 0, proc.stderr[-3000:]
    assert (out / "entry.json").is_file()  # written once, by rank 0
    assert proc.stdout.count("baseline (smoke") == 1  # only rank 0 reports
