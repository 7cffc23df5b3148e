"""GraftedNet (paper 000): parameter counts, shapes, deployment, ablation switches, loss wiring, lr groups."""
from __future__ import annotations

import pytest
import torch
import torch.nn.functional as F

from reidbook.engine import build_optimizer
from reidbook.models import build_model, build_paper_model
from reidbook.models.backbones import resnet50
from reidbook.models.graftednet import VARIANTS, GraftedNet, feature_names, group_conv_table, shape_table, stage_params
from reidbook.models.layers import FireModule
from reidbook.presets import get_preset
from reidbook.presets.graftednet import build_criterion, loss_specs, lr_groups, variant_overrides, variant_preset
from reidbook.profile import count_params, params_by_stage


@pytest.fixture(scope="module")
def paper_net():
    """The paper-size network (width 1), built once, never run big."""
    torch.manual_seed(0)
    return build_paper_model("graftednet")


def tiny(variant="graftednet", num_classes=10, **kw):
    torch.manual_seed(0)
    return build_model("graftednet", num_classes, profile="smoke", variant=variant, **kw)


# ------------------------------------------------------------------------------------ counts
def test_paper_parameter_counts(paper_net):
    deployed = paper_net.deploy()
    assert count_params(deployed) == 4_585_024  # deploy() drops the objective (§3.3) and the branch (§3.4)
    assert count_params(paper_net, exclude=("objective", "accompanying")) == 4_585_024
    assert round(count_params(deployed) / 1e6, 2) == 4.59  # §1, abstract: "only 4.6M"
    stages = params_by_stage(deployed)
    assert stages["conv1"] + stages["conv2"] + stages["conv3"] == 1_444_928  # §3: rootstock 1.445 M
    assert stages["reductions"] == 217_600  # Table 2: 0.218 M (g = 8)
    assert "objective" not in stages and deployed.objective is None
    # objective = nine 1×1 conv classifiers 256 → 751 with bias: 1.74 M the deployed model does not carry
    assert params_by_stage(paper_net)["objective"] == 9 * (256 * 751 + 751)
    assert round(9 * (256 * 751 + 751) / 1e6, 2) == 1.74


@pytest.mark.parametrize("groups,expected,paper", [(8, 217_600, 0.218), (4, 430_592, 0.431), (1, 1_708_544, 1.709)])
def test_reduction_parameters_by_groups(groups, expected, paper):
    net = GraftedNet(5, width=1.0, groups=groups, accompanying=False)
    assert count_params(net.reductions) == expected
    assert round(expected / 1e6, 3) == paper
    assert {m.conv.groups for m in net.reductions.values()} == {groups}
    row = next(r for r in group_conv_table() if r["g"] == groups)
    assert row["nine reductions"] == expected
    assert row["weights 768→256"] == 768 * 256 // groups


def test_fig1_stage_params():
    s = stage_params()
    assert s["res_conv4x"] + s["res_conv5x"] == 22_063_104  # §3: "22.063M parameters in res_conv4x and res_conv5x"
    assert s["res_conv1x"] + s["res_conv2x"] + s["res_conv3x"] == 1_444_928
    assert s["fire_conv4x"] == 6 * 197_184 and s["fire_conv5x"] == 557_952 + 2 * 590_720


def test_accompanying_branch_is_resnet50_conv4_conv5(paper_net):
    r = resnet50()
    assert count_params(paper_net.accompanying.layer3) == count_params(r.layer3)
    assert count_params(paper_net.accompanying.layer4) == count_params(r.layer4)
    assert paper_net.accompanying.fc.out_features == 751


# ------------------------------------------------------------------------------------ shapes
def test_graft_shapes_at_paper_size(paper_net):
    rows = {r["part"].split(" (")[0] if not r["part"].startswith("max") else r["part"]: r
            for r in shape_table(paper_net, (384, 192))}
    assert rows["rootstock"]["out"] == (512, 48, 24)
    assert rows["fire_conv4a"]["in"] == rows["fire_conv4a"]["out"] == (512, 48, 24)
    assert rows["fire_conv4b"]["in"] == (512, 24, 12)  # max pool after 4a
    assert rows["fire_conv5a"]["out"] == (768, 24, 12)
    assert rows["fire_conv5b"]["in"] == (768, 12, 6)  # max pool after 5a
    assert rows["fire_conv5c"]["out"] == (768, 12, 6)


def test_identity_skips_where_shapes_match(paper_net):
    fires = {n: m for n, m in paper_net.scion.named_children() if isinstance(m, FireModule)}
    assert list(fires) == [f"fire_conv4{c}" for c in "abcdef"] + [f"fire_conv5{c}" for c in "abc"]
    assert {n for n, m in fires.items() if not m.residual} == {"fire_conv5a"}
    assert fires["fire_conv4a"].squeeze.out_channels == 64 and fires["fire_conv4a"].out_channels == 512
    assert fires["fire_conv5b"].squeeze.out_channels == 128 and fires["fire_conv5b"].out_channels == 768
    names = [n for n, _ in paper_net.scion.named_children()]
    assert names.index("pool4a") == names.index("fire_conv4a") + 1
    assert names.index("pool5a") == names.index("fire_conv5a") + 1


def test_fire_module_rejects_a_skip_with_different_shapes():
    with pytest.raises(ValueError, match="skip"):
        FireModule(512, 128, 384, 384, residual=True)


def test_train_and_eval_outputs():
    net = tiny(num_classes=7)
    x = torch.randn(4, 3, 64, 32)
    net.train()
    out = net(x)
    assert set(out) == {"logits", "accompanying", "features"}
    assert len(out["logits"]) == 9 and all(t.shape == (4, 7) for t in out["logits"])
    assert out["accompanying"][0].shape == (4, 7)
    net.eval()
    emb = net(x)
    assert emb.shape == (4, 9 * net.reduce_dim) and net.feature_dim == emb.shape[1]
    assert net.feature_names == feature_names(True, True)
    assert net.metric == "cosine"


# ------------------------------------------------------------------------------------ deployment
def test_deploy_drops_the_accompanying_branch():
    net = tiny()
    net.eval()
    x = torch.randn(2, 3, 64, 32)
    ref = net(x)
    deployed = net.deploy()
    assert deployed.accompanying is None and not deployed.has_accompanying
    assert deployed.objective is None
    assert not any(k.startswith(("accompanying", "objective")) for k in deployed.state_dict())
    assert count_params(deployed) == count_params(net) - count_params(net.accompanying) - count_params(net.objective)
    assert net.accompanying is not None and net.objective is not None  # the training model keeps both
    assert torch.allclose(deployed(x), ref)
    deployed.train()
    with pytest.raises(RuntimeError, match="deployed"):
        deployed(x)
    # the copy shares no parameters with the training model
    assert not ({id(p) for p in deployed.parameters()} & {id(p) for p in net.parameters()})
    # a deployed state dict loads into another deployed model (what the zoo does)
    GraftedNet(10, width=0.125, accompanying=False).deploy().load_state_dict(deployed.state_dict())


# ------------------------------------------------------------------------------------ ablation switches
@pytest.mark.parametrize("variant,n_features,acc", [
    ("graftednet", 9, True), ("no_mf", 6, True), ("no_pf", 4, True), ("no_mf_pf", 1, True), ("no_al", 9, False),
    ("g4", 9, True), ("g1", 9, True)])
def test_ablation_switches(variant, n_features, acc):
    net = tiny(variant)
    assert len(net.feature_names) == n_features == len(net.reductions) == len(net.objective)
    assert net.has_accompanying is acc
    assert {m.conv.groups for m in net.reductions.values()} == {VARIANTS[variant]["groups"]}
    net.train()
    out = net(torch.randn(2, 3, 64, 32))
    assert len(out["logits"]) == n_features
    assert ("accompanying" in out) is acc
    net.eval()
    assert net(torch.randn(2, 3, 64, 32)).shape[1] == n_features * net.reduce_dim


def test_ablation_feature_sets():
    assert feature_names(False, True) == ["fire_conv5c"] + [f"fire_conv5c_p{n}_{i}" for n in (2, 3)
                                                            for i in range(1, n + 1)]
    assert feature_names(True, False) == ["fire_conv4f", "fire_conv5a", "fire_conv5b", "fire_conv5c"]
    assert feature_names(False, False) == ["fire_conv5c"]


def test_unknown_variant_and_bad_groups():
    with pytest.raises(KeyError, match="variants are"):
        build_model("graftednet", 5, profile="smoke", variant="nope")
    with pytest.raises(ValueError, match="divisible"):
        build_model("graftednet", 5, profile="smoke", groups=7)


# ------------------------------------------------------------------------------------ loss wiring
def test_joint_loss_is_the_sum_of_nine_softmax_plus_accompanying():
    net = tiny(num_classes=6)
    net.train()
    pids = torch.tensor([0, 1, 2, 3, 4, 5])
    out = net(torch.randn(6, 3, 64, 32))
    total, parts = build_criterion(True)(out, pids)
    by_hand = sum(F.cross_entropy(logits, pids) for logits in out["logits"])  # Eq. (2)
    acc = F.cross_entropy(out["accompanying"][0], pids)  # §3.4
    assert parts["softmax"] == pytest.approx(float(by_hand.detach()), rel=1e-5)
    assert parts["accompanying"] == pytest.approx(float(acc.detach()), rel=1e-5)
    assert float(total.detach()) == pytest.approx(float((by_hand + acc).detach()), rel=1e-5)


def test_loss_specs_follow_the_accompanying_switch():
    assert [s["key"] for s in loss_specs(True)] == ["logits", "accompanying"]
    assert [s["key"] for s in loss_specs(False)] == ["logits"]
    net = tiny("no_al")
    net.train()
    out = net(torch.randn(4, 3, 64, 32))
    build_criterion(False)(out, torch.arange(4))
    with pytest.raises(KeyError, match="accompanying"):
        build_criterion(True)(out, torch.arange(4))


def test_training_lowers_the_loss():
    """Fitting one fixed batch: the mean loss of the last 5 of 40 steps is well below the first 5's.
    (Five SGD steps on a tiny batch-norm net once went 13.865 → 13.882 on another CPU: a knife-edge.
    Forty steps on a batch the net can memorise leave a margin far above cross-CPU noise, and a broken
    backward, optimiser or lr-group wiring still fails: the loss would then stay put.)"""
    torch.manual_seed(0)
    net = tiny(num_classes=4)
    net.train()
    x, pids = torch.randn(8, 3, 64, 32), torch.tensor([0, 0, 1, 1, 2, 2, 3, 3])
    crit = build_criterion(True)
    opt = build_optimizer(net, {"name": "sgd", "lr": 0.01, "momentum": 0.9, "lr_groups": lr_groups()})
    losses = []
    for _ in range(40):
        loss, _ = crit(net(x), pids)
        losses.append(float(loss.detach()))
        opt.zero_grad()
        loss.backward()
        opt.step()
    first, last = sum(losses[:5]) / 5, sum(losses[-5:]) / 5
    assert last < 0.5 * first, (first, last)


# ------------------------------------------------------------------------------------ lr groups and presets
def _groups(net, spec):
    opt = build_optimizer(net, spec)
    return {g["name"]: g for g in opt.param_groups}


def test_learning_rate_groups_of_section_4_2():
    net = tiny()
    spec = get_preset("graftednet", "full").optimizer
    groups = _groups(net, spec)
    assert groups["base"]["lr"] == 0.1 and groups["rootstock"]["lr"] == 0.01 and groups["accompanying"]["lr"] == 0.01
    ids = {k: {id(p) for p in g["params"]} for k, g in groups.items()}
    assert ids["rootstock"] == {id(p) for p in net.rootstock.parameters()}
    assert ids["accompanying"] == {id(p) for p in net.accompanying.parameters()}
    new = [net.scion, net.reductions, net.objective]
    assert ids["base"] == {id(p) for m in new for p in m.parameters()}
    assert sum(len(v) for v in ids.values()) == len(list(net.parameters()))


def test_no_al_preset_has_no_accompanying_group():
    p = variant_preset("no_al", "smoke")
    assert p.model_options["variant"] == "no_al" and "accompanying" not in p.optimizer["lr_groups"]
    assert [s["name"] for s in p.losses] == ["softmax"]
    groups = _groups(tiny("no_al"), p.optimizer)
    assert set(groups) == {"base", "rootstock"}
    with pytest.raises(KeyError):
        variant_overrides("nope")


def test_full_preset_is_section_4_2():
    p = get_preset("graftednet", "full")
    assert (p.height, p.width, p.batch_size, p.epochs) == (384, 192, 32, 80)
    assert p.optimizer["name"] == "sgd" and p.optimizer["momentum"] == 0.9 and p.optimizer["weight_decay"] == 5e-4
    assert p.schedule == {"name": "step", "milestones": [40, 60], "gamma": 0.1}
    assert p.train_aug["flip"] and p.train_aug["random_crop"] and p.train_aug["random_erasing"] > 0
    for profile in ("smoke", "quick", "full"):
        assert get_preset("graftednet", profile).model_options["variant"] == "graftednet"


# ------------------------------------------------------------------------------------ pre-training
def test_pretrained_weights_fill_rootstock_and_accompanying_before_the_cut():
    torch.manual_seed(1)
    ref = resnet50(width=0.125)
    state = ref.state_dict()
    net = build_model("graftednet", 3, profile="smoke", pretrained=state)
    assert torch.equal(net.rootstock.conv1.weight, state["conv1.weight"])
    assert torch.equal(net.rootstock.layer2[0].conv1.weight, state["layer2.0.conv1.weight"])
    assert torch.equal(net.accompanying.layer3[0].conv1.weight, state["layer3.0.conv1.weight"])
    assert torch.equal(net.accompanying.layer4[2].conv3.weight, state["layer4.2.conv3.weight"])


# ------------------------------------------------------------------------------------ initialisation
def test_scion_scale_stays_bounded_at_init():
    """The BN-free scion must not blow the map's scale up (see ``_init_scion``)."""
    net = GraftedNet(5, width=0.25, accompanying=False).train()
    with torch.no_grad():
        out = net.forward_all(torch.randn(4, 3, 64, 32))
    r = out["r"].pow(2).mean().sqrt()
    assert out["maps"]["fire_conv5c"].pow(2).mean().sqrt() < 20 * r


# ------------------------------------------------------------------------------------ figures
def test_grafting_figures():
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    import numpy as np
    import pandas as pd

    from reidbook.viz import grafting as vg

    for g in (1, 16):
        m = vg.group_conv_mask(48, 16, g)
        assert m.sum() == 48 * 16 // g and m.shape == (16, 48)
    assert np.array_equal(vg.group_conv_mask(4, 4, 4), np.eye(4, dtype=np.uint8))
    with pytest.raises(ValueError):
        vg.group_conv_mask(48, 16, 5)
    figs = [vg.stage_params_figure({"res_conv1x": 10, "fire_conv4x": 5}), vg.group_conv_figure((1, 16)),
            vg.curves_figure({"a": [{"softmax": 3.0}, {"softmax": 2.0}], "b": [{"loss": 1.0}]}),
            vg.metric_bars({"x": {"mAP": 0.5, "rank1": 0.6}}, paper={"x": {"mAP": 0.8, "rank1": 0.9}}),
            vg.cost_figure(pd.DataFrame({"params_M": [1.0, 4.6], "latency_ms_b1": [3.0, 9.0]},
                                        index=["a", "GraftedNet"]))]
    assert all(f.axes for f in figs)
    with pytest.raises(ValueError):
        vg.curves_figure({"a": [{"loss": 1.0}]}, keys=("softmax",))
    with pytest.raises(ValueError):
        vg.stage_params_figure({})
    plt.close("all")


@pytest.mark.parametrize("profile", ["smoke", "quick", "full"])
def test_table2_variants_keep_their_profiles_learning_rates(profile):
    base = get_preset("graftednet", profile).optimizer["lr_groups"]
    assert variant_preset("no_mf", profile).optimizer["lr_groups"] == base  # same rates as the model it ablates
    assert variant_preset("no_al", profile).optimizer["lr_groups"] == {"rootstock": base["rootstock"]}
    assert base["accompanying"] == (0.1 if profile == "quick" else 0.01)  # quick's departure, §4.2 elsewhere


# ------------------------------------------------------------------------------------ the model's own metric
def test_evaluation_takes_the_models_metric(smoke_dataset):
    """§4.2 "The cosine similarity is used for evaluating": ``reidbook eval``, the zoo and the comparison
    call ``evaluate_model`` without a metric, which must then rank by the model's (cosine), not Euclidean."""
    import numpy as np

    from reidbook.engine import extract_features  # noqa: F401
    from reidbook.eval import evaluate_model, model_metric

    net = tiny(num_classes=smoke_dataset.num_train_pids).deploy().eval()
    assert model_metric(net) == "cosine" and model_metric(torch.nn.Linear(2, 2)) == "euclidean"
    small = type("DS", (), {"query": smoke_dataset.query[:8], "gallery": smoke_dataset.gallery[:40]})()
    own = evaluate_model(net, small, 64, 32, device="cpu")
    cos = evaluate_model(net, small, 64, 32, device="cpu", metric="cosine")
    euc = evaluate_model(net, small, 64, 32, device="cpu", metric="euclidean")
    np.testing.assert_allclose(own["distmat"], cos["distmat"])
    assert not np.allclose(own["distmat"], euc["distmat"])
    assert own["distmat"].max() <= 2.0 + 1e-5  # a cosine distance, 1 − cos ∈ [0, 2]
    bad = tiny().deploy()
    bad.metric = "manhattan"
    with pytest.raises(ValueError, match="manhattan"):
        model_metric(bad)


def test_overlapping_stripes_are_reported():
    """quick feeds 128×64: fire_conv5c is 4×2, and three adaptive-pooled stripes of 4 rows share rows."""
    from reidbook.models import layers

    assert layers.stripe_rows(4, 3) == [(0, 2), (1, 3), (2, 4)] and layers.stripes_overlap(4, 3)
    assert layers.stripe_rows(12, 3) == [(0, 4), (4, 8), (8, 12)] and not layers.stripes_overlap(12, 3)
    assert not layers.stripes_overlap(4, 2) and not layers.stripes_overlap(24, 6)
    layers._WARNED_OVERLAP.discard((4, 3))
    net = tiny().eval()
    with pytest.warns(UserWarning, match="3 horizontal stripes of a 4-row map overlap"):
        with torch.no_grad():
            net(torch.randn(1, 3, 128, 64))
