"""ONNX export of the deployed models: parity with PyTorch (onnxruntime), no training-only parts, errors."""
from __future__ import annotations

import sys

import numpy as np
import pytest
import torch

from reidbook import export as E
from reidbook.models import build_model
from reidbook.profile import count_params

SIZE = (64, 32)


def _onnx_param_count(path) -> int:
    import onnx

    m = onnx.load(str(path))
    return int(sum(np.prod(t.dims) for t in m.graph.initializer if t.data_type == onnx.TensorProto.FLOAT))


def _build(name, **kw):
    torch.manual_seed(0)
    return build_model(name, 10, profile="smoke", **kw).eval()


def test_baseline_parity_and_dynamic_batch(tmp_path):
    model = _build("baseline")
    path = E.export_onnx(model, tmp_path / "baseline.onnx", SIZE)
    par = E.check_parity(model, path, input_size=SIZE, batch_size=3)
    assert par["ok"], par
    assert par["min_cosine"] > 0.9999 and par["max_abs"] <= 1e-4 * par["scale"]
    out = E.onnx_embed(path, torch.randn(5, 3, *SIZE))  # another batch size than the export's example
    assert out.shape == (5, model.feature_dim)
    assert not list(tmp_path.glob(".*.tmp")), "temporary export file left behind"


def test_pruned_model_is_exported_small(tmp_path):
    from reidbook.prune import prune

    model = _build("baseline")
    small, rep = prune(model, "l1", ratio=0.5, input_size=SIZE)
    path = E.export_onnx(small, tmp_path / "pruned.onnx", SIZE)
    assert E.check_parity(small, path, input_size=SIZE)["ok"]
    n_small, n_full = _onnx_param_count(path), _onnx_param_count(E.export_onnx(model, tmp_path / "full.onnx", SIZE))
    assert n_small < 0.8 * n_full  # physically fewer weights in the shipped file


def test_soft_pruned_model_is_hardened(tmp_path):
    from reidbook.prune import find_units

    model = _build("baseline")
    unit = find_units(model)[0]
    conv = model.get_submodule(unit.conv)
    bn = model.get_submodule(unit.bn)
    with torch.no_grad():  # zero two channels the way soft pruning does
        for m in (conv.weight, bn.weight, bn.bias):
            m[:2] = 0
    net = E.deployed_model(model)
    assert net.get_submodule(unit.conv).out_channels == conv.out_channels - 2
    x = torch.randn(2, 3, *SIZE)
    with torch.no_grad():
        assert torch.allclose(net(x), model(x), atol=1e-5)


def test_graftednet_ships_without_accompanying_branch(tmp_path):
    model = _build("graftednet")
    assert model.accompanying is not None
    path = E.export_onnx(model, tmp_path / "g.onnx", SIZE)
    assert E.check_parity(model, path, input_size=SIZE)["ok"]
    deployed = E.deployed_model(model)
    assert deployed.accompanying is None and model.accompanying is not None  # original untouched
    import onnx

    names = [t.name for t in onnx.load(str(path)).graph.initializer]
    assert not any("accompanying" in n or "objective" in n for n in names)
    # BN folding may shrink the file further; never more weights than the deployed model has.
    assert _onnx_param_count(path) <= count_params(deployed) < count_params(model)


@pytest.mark.parametrize("exit", [1, 2, 4])
def test_dare_exit_parity_and_cost(tmp_path, exit):
    model = _build("dare")
    net = E.deployed_model(model, exit=exit)
    x = torch.randn(2, 3, *SIZE)
    with torch.no_grad():
        ref = model.exit_embedding(model.anytime(x, upto=exit))
        assert torch.allclose(net(x), ref, atol=1e-6)
    path = E.export_onnx(model, tmp_path / f"dare{exit}.onnx", SIZE, exit=exit)
    assert E.check_parity(model, path, input_size=SIZE, exit=exit)["ok"]
    if exit < 4:
        assert count_params(net) < count_params(model)
        assert "fusion" not in " ".join(n for n, _ in net.named_parameters())
    else:
        assert count_params(net) == count_params(model)


def test_fd_student_ships_without_fmfb_rfb(tmp_path):
    model = _build("fd_student")
    model.add_branches({"holistic": 16, "up1": 8}, 16)
    assert model.has_branches
    net = E.deployed_model(model)
    assert not any(n.startswith(("fmfb", "rfb")) for n, _ in net.named_parameters())
    path = E.export_onnx(model, tmp_path / "fd.onnx", SIZE)
    assert E.check_parity(model, path, input_size=SIZE)["ok"]


def test_parity_detects_a_different_model(tmp_path):
    a, b = _build("baseline"), _build("baseline")
    with torch.no_grad():
        for p in b.parameters():
            p.add_(0.05 * torch.randn_like(p))
    path = E.export_onnx(a, tmp_path / "a.onnx", SIZE)
    assert not E.check_parity(b, path, input_size=SIZE)["ok"]


def test_ship_report_and_latency(tmp_path):
    rep = E.ship(_build("baseline"), tmp_path / "s.onnx", SIZE, rounds=1, repeats=1)
    d = rep.to_dict()
    assert rep.parity_ok and rep.onnx_bytes > 0 and rep.torch_ms > 0 and rep.onnx_ms > 0
    assert d["speedup"] == pytest.approx(rep.torch_ms / rep.onnx_ms)


def test_clear_errors(tmp_path, monkeypatch):
    with pytest.raises(KeyError, match="unknown model 'resnet9000'"):
        E.export_zoo_model("resnet9000", tmp_path / "x.onnx", profile="smoke")
    with pytest.raises(ValueError, match="exit must be in 1..4"):
        E.deployed_model(_build("dare"), exit=5)
    with pytest.raises(TypeError, match="has no exits"):
        E.deployed_model(_build("baseline"), exit=1)
    with pytest.raises(FileNotFoundError, match="no ONNX model"):
        E.onnx_session(tmp_path / "missing.onnx")
    monkeypatch.setitem(sys.modules, "onnxruntime", None)
    with pytest.raises(ImportError, match="pip install onnxruntime"):
        E.onnx_session(tmp_path / "missing.onnx")


@pytest.mark.parametrize("name,size", [("mgn", (56, 24)), ("pcb", (96, 32))])
def test_striped_models_parity(tmp_path, name, size):
    """Stripes whose count does not divide the map height are exported as equivalent slices."""
    model = _build(name)
    path = E.export_onnx(model, tmp_path / f"{name}.onnx", size)
    assert E.check_parity(model, path, input_size=size)["ok"]


def test_pool_by_slices_equals_adaptive_pooling():
    x = torch.randn(2, 3, 8, 5)
    for size in [(3, 1), (5, 2), (8, 5), (2, 3)]:
        torch.testing.assert_close(E._pool_by_slices(x, size, "avg"), torch.nn.functional.adaptive_avg_pool2d(x, size))
        torch.testing.assert_close(E._pool_by_slices(x, size, "max"), torch.nn.functional.adaptive_max_pool2d(x, size))
