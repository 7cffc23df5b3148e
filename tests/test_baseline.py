"""Backbones load torchvision's weights; the baseline/light models, their outputs and presets."""
from __future__ import annotations

import urllib.error

import pytest
import torch
from torchvision import models as tvm

from reidbook.models import backbones as B, build_model, build_paper_model
from reidbook.presets import PROFILES, get_preset
from reidbook.profile import count_params

torch.set_num_threads(1)
X = torch.randn(2, 3, 64, 32)


def _tv_resnet_map(net, x):
    x = net.maxpool(net.relu(net.bn1(net.conv1(x))))
    return net.layer4(net.layer3(net.layer2(net.layer1(x))))


@pytest.mark.parametrize("depth", [18, 34, 50, 101, 152])
def test_resnet_loads_torchvision_state_dict(depth):
    torch.manual_seed(depth)
    tv = getattr(tvm, f"resnet{depth}")(weights=None).eval()
    ours = getattr(B, f"resnet{depth}")(width=1.0, pretrained=tv.state_dict()).eval()
    with torch.no_grad():
        assert torch.equal(ours(X), _tv_resnet_map(tv, X))


@pytest.mark.parametrize("version", ["1_0", "1_1"])
def test_squeezenet_loads_torchvision_state_dict(version):
    tv = getattr(tvm, f"squeezenet{version}")(weights=None).eval()
    ours = getattr(B, f"squeezenet{version}")(pretrained=tv.state_dict()).eval()
    with torch.no_grad():
        assert torch.equal(ours(X), tv.features(X))


def test_densenet201_loads_torchvision_state_dict():
    tv = tvm.densenet201(weights=None).eval()
    ours = B.densenet201(pretrained=tv.state_dict()).eval()
    with torch.no_grad():
        assert torch.equal(ours(X), torch.relu(tv.features(X)))


def test_imagenet_offline_gives_clear_message(monkeypatch):
    monkeypatch.delenv("REIDBOOK_WEIGHTS", raising=False)

    def offline(self, *a, **kw):
        raise urllib.error.URLError("no network")

    monkeypatch.setattr(type(tvm.ResNet18_Weights.IMAGENET1K_V1), "get_state_dict", offline)
    with pytest.raises(B.PretrainedWeightsUnavailable, match="resnet18.*REIDBOOK_WEIGHTS.*source"):
        B.resnet18(pretrained="imagenet")
    with pytest.raises(B.PretrainedWeightsUnavailable, match="width"):
        B.resnet18(width=0.25, pretrained="imagenet")


def test_imagenet_from_local_file(tmp_path, monkeypatch):
    tv = tvm.resnet18(weights=None)
    torch.save(tv.state_dict(), tmp_path / "resnet18.pth")
    monkeypatch.setenv("REIDBOOK_WEIGHTS", str(tmp_path))
    ours = B.resnet18(pretrained="imagenet").eval()
    with torch.no_grad():
        assert torch.equal(ours(X), _tv_resnet_map(tv.eval(), X))


def test_wrong_width_state_dict_is_refused():
    with pytest.raises(ValueError, match="do not fit"):
        B.resnet50(width=0.25, pretrained=B.resnet50(width=0.125).state_dict())


# ---------------------------------------------------------------------------------------------
# Baseline
# ---------------------------------------------------------------------------------------------
def test_baseline_paper_size_params():
    m = build_paper_model("baseline")
    assert count_params(m.backbone) == 23_508_032  # ResNet-50 without fc (DESIGN.md)
    assert count_params(m.classifier) == 2048 * 751  # bias-free
    assert m.classifier.bias is None
    assert m.feature_dim == 2048
    assert m.backbone.last_stride == 1  # BoT default


def test_baseline_outputs_train_and_eval():
    m = build_model("baseline", 10, profile="smoke")
    m.train()
    out = m(X)
    assert set(out) == {"logits", "triplet"}
    assert out["logits"][0].shape == (2, 10) and out["triplet"][0].shape == (2, m.feature_dim)
    m.eval()
    with torch.no_grad():
        f, f_bn = m.features(X)
        assert torch.equal(m(X), f_bn)  # BoT: the BN-neck feature at test time
        assert not torch.allclose(f, f_bn)


def test_baseline_without_bnneck_returns_pooled_feature():
    m = build_model("baseline", 10, profile="smoke", bnneck=False, last_stride=2).eval()
    with torch.no_grad():
        pooled = m.backbone(X).mean(dim=(2, 3))
        assert torch.allclose(m(X), pooled)


def test_baseline_embedding_and_arch_options():
    m = build_model("baseline", 10, profile="smoke", arch="resnet18", embedding_dim=32).eval()
    assert m.feature_dim == 32
    with torch.no_grad():
        assert m(X).shape == (2, 32)
    with pytest.raises(KeyError, match="resnet50"):
        build_model("baseline", 10, arch="vgg16")


def test_baseline_takes_a_backbone_state_dict():
    src = B.resnet50(width=0.125, last_stride=1)
    m = build_model("baseline", 10, profile="smoke", pretrained=src.state_dict())
    for k, v in src.state_dict().items():
        assert torch.equal(m.backbone.state_dict()[k], v)


@pytest.mark.parametrize("kind", ["softmax", "triplet", "both"])
def test_baseline_loss_goes_down(kind):
    from reidbook.losses import build_criterion
    from reidbook.presets.baseline import loss_specs

    torch.manual_seed(0)
    m = build_model("baseline", 4, profile="smoke", arch="resnet18").train()
    crit = build_criterion(loss_specs(kind))
    x = torch.randn(16, 3, 64, 32)
    pids = torch.arange(4).repeat_interleave(4)
    opt = torch.optim.Adam(m.parameters(), lr=1e-3)
    losses = []
    for _ in range(12):  # averages over 3 steps of one fixed batch: not a knife-edge on another CPU
        total, parts = crit(m(x), pids)
        opt.zero_grad()
        total.backward()
        opt.step()
        losses.append(total.item())
    assert sum(losses[-3:]) < 0.85 * sum(losses[:3]), losses


def test_loss_specs_unknown():
    from reidbook.presets.baseline import loss_specs

    assert [t["loss"] for t in loss_specs("both")] == ["cross_entropy", "batch_hard_triplet"]
    with pytest.raises(ValueError, match="softmax"):
        loss_specs("arcface")


# ---------------------------------------------------------------------------------------------
# Light networks (GraftedNet Table 3)
# ---------------------------------------------------------------------------------------------
@pytest.mark.parametrize("arch", ["squeezenet1_0", "squeezenet1_1", "shufflenet_v2", "mobilenet_v2"])
def test_light_outputs(arch):
    m = build_model("light", 10, profile="smoke", arch=arch)
    out = m.train()(X)
    assert out["logits"][0].shape == (2, 10)
    with torch.no_grad():
        assert m.eval()(X).shape == (2, m.feature_dim)


@pytest.mark.parametrize("arch,tv_name", [("shufflenet_v2", "shufflenet_v2_x1_0"), ("mobilenet_v2", "mobilenet_v2")])
def test_light_trunk_loads_torchvision_state_dict(arch, tv_name):
    from reidbook.models.light import build_light_trunk

    tv = getattr(tvm, tv_name)(weights=None).eval()
    trunk = build_light_trunk(arch, width=1.0, pretrained=tv.state_dict()).eval()
    with torch.no_grad():
        ref = tv.features(X) if arch == "mobilenet_v2" else \
            tv.conv5(tv.stage4(tv.stage3(tv.stage2(tv.maxpool(tv.conv1(X))))))
        assert torch.equal(trunk(X), ref)


def test_light_param_counts_without_classifier():
    # torchvision ImageNet nets minus their 1000-way classifier (+ our 2·C BN-neck).
    counts = {a: count_params(build_paper_model("light", arch=a), exclude=("classifier", "neck"))
              for a in ("squeezenet1_0", "shufflenet_v2", "mobilenet_v2")}
    assert counts == {"squeezenet1_0": 735_424, "shufflenet_v2": 1_253_604, "mobilenet_v2": 2_223_872}


# ---------------------------------------------------------------------------------------------
# Presets
# ---------------------------------------------------------------------------------------------
@pytest.mark.parametrize("model", ["baseline", "light"])
def test_presets_exist_and_keep_topology(model):
    ps = [get_preset(model, p) for p in PROFILES]
    assert all(p.model == model for p in ps)
    assert len({p.model_options.get("arch") for p in ps}) == 1
    assert len({tuple(t["loss"] for t in p.losses) for p in ps}) == 1


def test_full_baseline_preset_is_bot():
    p = get_preset("baseline", "full")
    assert (p.height, p.width, p.P, p.K, p.epochs) == (256, 128, 16, 4, 120)
    assert p.optimizer["name"] == "adam" and p.optimizer["lr"] == 3.5e-4
    assert p.schedule["milestones"] == [40, 70] and p.schedule["warmup"] == 10
    assert p.train_aug["random_erasing"] == 0.5
    assert p.losses[0]["options"]["label_smoothing"] == 0.1
    assert "Bag of Tricks" in p.notes


# ---------------------------------------------------------------------------------------------
# Figures of chapter 01 (reidbook.viz.plots): pure functions, small and edge-case inputs
# ---------------------------------------------------------------------------------------------
def test_plots_return_figures():
    import matplotlib

    matplotlib.use("Agg")
    import numpy as np

    from reidbook.engine.history import History
    from reidbook.viz import plots

    h = History([{"epoch": 1, "loss": 3.0, "ce": 2.0}, {"epoch": 2, "loss": 2.0, "ce": 1.5, "mAP": 0.3}])
    fig = plots.training_curves({"a": h, "b": h.records}, keys=("loss", "mAP", "absent"))
    assert len(fig.axes) == 3 and len(fig.axes[0].lines) == 2 and len(fig.axes[1].lines) == 2
    assert len(fig.axes[2].lines) == 0
    with pytest.raises(ValueError):
        plots.training_curves(h, keys=())
    fig = plots.stage_costs({"conv1": 10, "conv2": 30}, {"conv1": 0, "conv2": 0})
    assert len(fig.axes) == 2
    rng = np.random.default_rng(0)
    for method in ("pca", "tsne"):
        xy = plots.embed_2d(rng.normal(size=(5, 8)), method=method)
        assert xy.shape == (5, 2) and np.isfinite(xy).all()
    with pytest.raises(ValueError):
        plots.embed_2d(rng.normal(size=(5, 8)), method="umap")
    fig = plots.embedding_scatter(rng.normal(size=(40, 8)), np.repeat(np.arange(8), 5), max_ids=100)
    assert len(fig.axes[0].collections) == 8  # all identities when max_ids exceeds them
    fig = plots.table_figure({"a": {"mAP": 0.5}, "b": {"mAP": 0.7}}, highlight={"mAP": "max"})
    with pytest.raises(KeyError):
        plots.table_figure({"a": {"mAP": 0.5}}, highlight={"rank1": "max"})
    fig = plots.bar_chart({"x": 0.2, "y": 0.4}, scale=100, reference={"floor": 0.1})
    assert len(fig.axes[0].patches) == 2
