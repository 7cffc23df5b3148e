"""benchmarks/bench_gpu.py runs end to end on a CPU with tiny sizes (the GPU figures need a GPU)."""
from __future__ import annotations

import importlib.util
from pathlib import Path

import pytest
import torch

BENCH = Path(__file__).resolve().parent.parent / "benchmarks" / "bench_gpu.py"


@pytest.fixture(scope="module")
def bench():
    spec = importlib.util.spec_from_file_location("bench_gpu", BENCH)
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    return mod


@pytest.mark.usefixtures("one_thread")
def test_bench_gpu_trains_baseline_mgn_and_dare_on_cpu(bench, smoke_root, capsys):
    rows = bench.main(["--device", "cpu", "--size", "48x16", "--width", "0.125", "--iters", "2", "--warmup", "1",
                       "--P", "4", "--K", "2", "--data-profile", "smoke"])
    out = capsys.readouterr().out
    assert [r["model"] for r in rows] == ["baseline", "mgn", "dare"]
    for r in rows:
        assert r["size"] == "48x16" and r["batch"] == 8 and r["iters"] == 2
        assert r["images_per_s"] > 0 and r["peak_mb"] > 0 and r["amp"] == "off"  # no autocast on CPU
        assert f"{r['model']:<9}" in out
    assert rows[1]["params_m"] > rows[0]["params_m"]  # MGN's three branches outweigh the baseline
    assert "device: CPU" in out


def test_amp_is_bfloat16_on_a_capable_gpu_and_never_on_cpu():
    from reidbook.engine.trainer import amp_dtype

    assert amp_dtype("auto", torch.device("cpu")) is None and amp_dtype(True, torch.device("cpu")) is None
    assert amp_dtype(False, torch.device("cuda")) is None
    with pytest.raises(ValueError, match="amp must be"):
        amp_dtype("fp8", torch.device("cuda"))
    if torch.cuda.is_available() and torch.cuda.is_bf16_supported():
        assert amp_dtype("auto", torch.device("cuda")) is torch.bfloat16
