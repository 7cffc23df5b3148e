"""The model contract (reidbook/models/base.py): every registered model keeps it, the registry resolves
the width once, and the helpers give modules without the contract its defaults."""
from __future__ import annotations

from collections import OrderedDict

import pytest
import torch
from torch import nn

from reidbook.models import MODELS, PAPER_NUM_CLASSES, build_model, build_paper_model, list_models
from reidbook.models.backbones import ResNet, resnet18
from reidbook.models.base import (
    METRICS,
    AnytimeModel,
    Backbone,
    ReIDModel,
    deployed,
    feature_dim_of,
    is_anytime,
    metric_of,
    stage_modules_of,
)
from reidbook.profiles import PROFILES, profile_width

torch.set_num_threads(1)
X = torch.randn(2, 3, 96, 32)  # tall enough for PCB's six stripes at width 1/8


@pytest.mark.parametrize("name", sorted(MODELS))
def test_every_registered_model_keeps_the_contract(name):
    torch.manual_seed(0)
    model = build_model(name, 4, profile="smoke")
    assert isinstance(model, ReIDModel)
    assert metric_of(model) in METRICS
    net = deployed(model).eval()
    assert isinstance(net, ReIDModel)
    with torch.no_grad():
        emb = net(X)
    assert emb.shape == (2, model.feature_dim) == (2, feature_dim_of(model))
    stages = stage_modules_of(model)
    assert stages and all(isinstance(v, list) and all(isinstance(m, nn.Module) for m in v) for v in stages.values())
    # every parameter of the deployed network's submodules belongs to some stage
    staged = {id(p) for mods in stage_modules_of(net).values() for m in mods for p in m.parameters()}
    assert {id(p) for m in net.children() for p in m.parameters()} <= staged
    if is_anytime(model):
        embs = model.eval().anytime(X)
        assert len(embs) == model.num_exits == len(model.exit_names())
        assert len(model.all_embeddings(X)) == model.num_exits + int(model.has_fusion)
        assert torch.allclose(model.exit_embedding(embs), emb, atol=1e-5)


def test_backbones_keep_the_backbone_contract():
    net = resnet18(width=0.125)
    assert isinstance(net, Backbone) and list(net.stage_channels) == ["conv1", "conv2", "conv3", "conv4", "conv5"]
    outs = net.forward_stages(X, upto="conv3")
    assert list(outs) == ["conv1", "conv2", "conv3"]  # later stages are not run
    assert outs["conv3"].shape[1] == net.stage_channels["conv3"]
    assert list(stage_modules_of(net)) == list(net.stage_channels)


@pytest.mark.parametrize("arch", ["resnet18", "squeezenet1_0", "densenet201", "shufflenet_v2", "mobilenet_v2"])
def test_every_backbone_names_its_stages_and_their_channels(arch):
    from reidbook.models.baseline import BACKBONES, build_backbone
    from reidbook.models.light import build_light_trunk

    torch.manual_seed(0)
    net = (build_backbone(arch, width=0.125) if arch in BACKBONES else build_light_trunk(arch, width=0.25)).eval()
    assert isinstance(net, Backbone)
    assert list(net.stage_channels) == list(net.stages()) == list(stage_modules_of(net))
    with torch.no_grad():
        outs = net.forward_stages(X)
    assert {k: v.shape[1] for k, v in outs.items()} == dict(net.stage_channels)
    assert list(net.stage_channels.values())[-1] == net.out_channels


def test_modules_without_the_contract_get_its_defaults():
    plain = nn.Sequential(OrderedDict(a=nn.Linear(3, 4), b=nn.ReLU()))
    assert deployed(plain) is plain and metric_of(plain) == "euclidean" and feature_dim_of(plain) is None
    assert list(stage_modules_of(plain)) == ["a", "b"] and not is_anytime(plain)
    assert issubclass(AnytimeModel, ReIDModel)


def test_registry_resolves_the_width_once():
    for profile in PROFILES:
        assert build_model("mgn", 3, profile=profile).width == profile_width(profile)
    assert build_model("mgn", 3, profile="smoke", width=0.25).width == 0.25  # explicit width wins
    assert build_model("baseline", 3, profile="quick").backbone.width == 0.25
    with pytest.raises(ValueError, match="width"):
        build_model("baseline", 3, width=0)
    with pytest.raises(ValueError, match="profile"):
        build_model("baseline", 3, profile="huge")
    with pytest.raises(KeyError, match="baseline"):
        build_model("nosuchnet", 3)
    assert list_models() == sorted(MODELS)


def test_paper_size_models_have_markets_751_identities():
    assert PAPER_NUM_CLASSES == 751  # Market-1501's training identities (Zheng et al. 2015)
    with torch.device("meta"):
        net = build_paper_model("baseline", arch="resnet18")
    assert isinstance(net.backbone, ResNet) and net.backbone.width == 1.0
    assert net.classifier.out_features == 751


def test_metric_is_read_through_wrappers_and_checked():
    g = build_model("graftednet", 3, profile="smoke")
    assert metric_of(g) == "cosine" and metric_of(build_model("baseline", 3, profile="smoke")) == "euclidean"
    assert metric_of(nn.DataParallel(g)) == "cosine"  # .module
    from reidbook.models.dare import TenCropEmbedding

    assert metric_of(TenCropEmbedding(g, (64, 32))) == "cosine"  # .model
    g.metric = "manhattan"
    with pytest.raises(ValueError, match="manhattan"):
        metric_of(g)
