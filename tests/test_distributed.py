"""Multi-process training: ``torchrun --nproc_per_node=2`` on CPU (gloo) with the real engine.

The ranks start from *different* random weights (the demo seeds each rank differently); DDP must
broadcast rank 0's, average gradients, and leave both ranks with identical weights. Only rank 0
may write the checkpoint.
"""
from __future__ import annotations

import json
import os
import subprocess
import sys

import pytest
import torch

from reidbook.engine.checkpoint import read_checkpoint


@pytest.mark.slow
def test_torchrun_two_cpu_processes_train_identical_weights_and_only_rank0_writes(tmp_path):
    tests = os.path.dirname(os.path.abspath(__file__))  # support/ (test support) lives beside this file
    env = {**os.environ, "OMP_NUM_THREADS": "1", "REIDBOOK_QUIET": "1", "MASTER_ADDR": "127.0.0.1",
           "PYTHONPATH": os.pathsep.join(filter(None, [tests, os.environ.get("PYTHONPATH")]))}
    cmd = [sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc_per_node=2",
           "-m", "support.distributed_demo", "--epochs", "2", "--out", str(tmp_path), "--report",
           "--device", "cpu"]
    proc = subprocess.run(cmd, env=env, capture_output=True, text=True, timeout=240)
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-3000:]
    assert "world size 2" in proc.stdout

    w0 = torch.load(tmp_path / "rank0.pt", weights_only=True)
    w1 = torch.load(tmp_path / "rank1.pt", weights_only=True)
    assert w0.keys() == w1.keys()
    for k in w0:  # parameters and BN statistics alike
        assert torch.equal(w0[k], w1[k]), k

    r0 = json.loads((tmp_path / "rank0.json").read_text())
    r1 = json.loads((tmp_path / "rank1.json").read_text())
    assert r0["world_size"] == r1["world_size"] == 2
    # files each process moved into the checkpoint folder (its atomic writes' renames): rank 0 only
    assert r0["checkpoints_written"] == 2 and r1["checkpoints_written"] == 0
    # the logged loss is all-reduced, so both ranks record the same history
    assert [h["loss"] for h in r0["history"]] == [h["loss"] for h in r1["history"]]
    assert r0["history"][0]["images"] == 2 * r0["history"][0]["iters"] * 16  # images of both ranks

    assert sorted(p.name for p in (tmp_path / "ckpt").iterdir()) == ["last.pt"]
    ckpt = read_checkpoint(tmp_path / "ckpt" / "last.pt")
    assert ckpt["epoch"] == 2 and len(ckpt["rng"]) == 2  # one RNG state per rank
    for k in w0:
        assert torch.equal(ckpt["model"][k], w0[k]), k
