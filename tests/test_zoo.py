"""The model zoo: train once, load after; keys follow the full config; corrupt entries are never used."""
from __future__ import annotations

import json

import pytest
import torch

from reidbook import zoo
from reidbook.models import backbones as B
from reidbook.pretrain import build_trunk

torch.set_num_threads(1)


@pytest.fixture(scope="module")
def smoke_entry(smoke_root):
    return zoo.get("baseline", "smoke")


def test_synthreid_is_generated_once(smoke_root):
    assert (smoke_root / "synthreid.json").is_file()
    assert zoo.synthreid("smoke") == smoke_root
    ds = zoo.dataset("smoke")
    assert ds.num_train_pids > 0 and ds.query and ds.gallery
    src = zoo.dataset("smoke", "synth-source")
    assert not set(p for p, _, _ in src.train) & set(p for p, _, _ in ds.train)


def test_get_trains_saves_and_loads(smoke_entry, monkeypatch):
    e = smoke_entry
    assert 0.0 <= e.metrics["mAP"] <= 1.0 and 0.0 <= e.metrics["rank1"] <= 1.0
    for name in ("model.pt", "preset.json", "metrics.json", "history.json", "entry.json"):
        assert (e.path / name).is_file()
    assert not (e.path / "train").exists()  # resume checkpoints removed after success
    assert len(e.history) == e.preset.epochs
    assert not e.model.training

    def no_training(*a, **kw):
        raise AssertionError("a cached entry must be loaded, not retrained")

    monkeypatch.setattr(zoo, "train_entry", no_training)
    again = zoo.get("baseline", "smoke")
    assert again.path == e.path and again.metrics == json.loads((e.path / "metrics.json").read_text())
    for k, v in e.model.state_dict().items():
        assert torch.equal(again.model.state_dict()[k], v)
    x = torch.randn(2, 3, e.preset.height, e.preset.width)
    with torch.no_grad():
        assert torch.allclose(again.model(x), e.model(x))


def test_key_follows_the_config(smoke_root):
    p = zoo.get_preset("baseline", "smoke")
    base = {"name": "baseline", "preset": p.to_dict()}
    assert zoo.config_key("baseline", base) == zoo.config_key("baseline", json.loads(json.dumps(base)))
    other = {**base, "preset": p.replace(epochs=2).to_dict()}
    assert zoo.config_key("baseline", base) != zoo.config_key("baseline", other)
    assert zoo.config_key("baseline", base) != zoo.config_key("mgn", base)


def test_unknown_override_is_refused():
    with pytest.raises(KeyError, match="no field"):
        zoo.get("baseline", "smoke", epochz=3)


def test_corrupt_entry_is_refused_then_retrained(smoke_entry, monkeypatch):
    # a copy of the entry, corrupted: load_entry names the problem
    import shutil

    bad = smoke_entry.path.parent / "corrupt-copy"
    shutil.copytree(smoke_entry.path, bad, dirs_exist_ok=True)
    data = bytearray((bad / "model.pt").read_bytes())
    data[len(data) // 2] ^= 0xFF
    (bad / "model.pt").write_bytes(bytes(data))
    with pytest.raises(zoo.ZooError, match="SHA-256"):
        zoo.load_entry(bad)
    (bad / "entry.json").unlink()
    with pytest.raises(zoo.ZooError, match="entry.json"):
        zoo.load_entry(bad)
    shutil.rmtree(bad)


def test_get_retrains_a_mismatched_entry(smoke_entry, monkeypatch):
    marker = smoke_entry.path / "entry.json"
    saved = marker.read_text()
    entry = json.loads(saved)
    entry["config"]["seed"] = 12345  # someone edited it: it no longer describes this run
    marker.write_text(json.dumps(entry))
    calls = []
    monkeypatch.setattr(zoo, "train_entry", lambda *a, **kw: calls.append(a) or "retrained")
    try:
        assert zoo.get("baseline", "smoke") == "retrained" and len(calls) == 1
    finally:
        marker.write_text(saved)


def test_cached_trains_once_and_survives_corruption(tmp_path, monkeypatch):
    monkeypatch.setenv("REIDBOOK_CACHE", str(tmp_path))
    calls = []

    def train():
        calls.append(1)
        return {"w": torch.arange(4.0)}

    cfg = {"what": "toy", "ratio": 0.5}
    a = zoo.cached("toy", cfg, train)
    b = zoo.cached("toy", cfg, train)
    assert torch.equal(a["w"], b["w"]) and len(calls) == 1
    folder = zoo.entry_dir("toy", cfg)
    (folder / "artefact.pt").write_bytes(b"garbage")
    c = zoo.cached("toy", cfg, train)
    assert len(calls) == 2 and torch.equal(c["w"], a["w"])
    # a load_fn that fails (e.g. the code changed shape) means: train again
    d = zoo.cached("toy", cfg, train, load_fn=lambda f: (_ for _ in ()).throw(RuntimeError("shape changed")))
    assert len(calls) == 3 and torch.equal(d["w"], a["w"])
    zoo.cached("toy", {**cfg, "ratio": 0.6}, train)
    assert len(calls) == 4


def test_pretrained_backbone_fits_the_model(smoke_root):
    state = zoo.pretrained_backbone("resnet50", None, "smoke")
    net = B.resnet50(width=0.125, last_stride=1, pretrained=state)
    assert torch.equal(net.conv1.weight, state["conv1.weight"])
    assert zoo.pretrained_backbone("resnet50", None, "smoke")["conv1.weight"].equal(state["conv1.weight"])


def test_imagenet_in_full_offline_is_a_clear_error(monkeypatch):
    import urllib.error

    from torchvision import models as tvm

    monkeypatch.delenv("REIDBOOK_WEIGHTS", raising=False)
    monkeypatch.setattr(type(tvm.ResNet50_Weights.IMAGENET1K_V1), "get_state_dict",
                        lambda *a, **kw: (_ for _ in ()).throw(urllib.error.URLError("offline")))
    preset = zoo.get_preset("baseline", "full")
    with pytest.raises(B.PretrainedWeightsUnavailable, match="source"):
        from reidbook.models import build_model

        build_model("baseline", 5, profile="full", pretrained="imagenet", **preset.model_options)


def test_prepare_course_pretrains_every_course_backbone_once(smoke_root, monkeypatch):
    calls = []
    real = zoo.pretrained_backbone
    monkeypatch.setattr(zoo, "pretrained_backbone", lambda *a, **kw: calls.append(a[:2]) or real(*a, **kw))
    spent = zoo.prepare_course("smoke")
    # smoke's own width is 1/8, so FD's width-1/8 ResNet-18 is the same backbone: trained once
    assert calls == [("resnet50", 0.125), ("resnet18", 0.125), ("resnet34", 0.125)]
    assert list(spent) == ["SynthReID"] + [f"{a} x0.125 (source domain)" for a, _ in calls]
    # full starts from ImageNet: only the data is prepared
    monkeypatch.setattr(zoo, "synthreid", lambda profile, seed=0: smoke_root)
    calls.clear()
    assert list(zoo.prepare_course("full")) == ["SynthReID"] and calls == []


def test_source_trunk_starts_its_residual_blocks_as_identities():
    trunk = build_trunk("resnet50", 0.125)
    block = trunk.layer1[1]  # no downsample: out = relu(x + F(x)) with F's last BN scale at zero
    x = torch.randn(2, block.conv1.in_channels, 8, 4).relu()
    with torch.no_grad():
        assert torch.allclose(block.eval()(x), x)
    assert B.zero_init_residual(B.resnet18(width=0.125)) == 8  # every BasicBlock of ResNet-18
