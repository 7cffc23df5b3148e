"""MGN (paper 001): parameter count, Table 1 map sizes, outputs, loss wiring, variants, training steps."""
from __future__ import annotations

import pytest
import torch
import torch.nn.functional as F

from reidbook.losses import batch_hard_triplet_loss, build_criterion as losses_build_criterion
from reidbook.models import build_model, build_paper_model
from reidbook.models.backbones import resnet50
from reidbook.models.mgn import MGN, VARIANTS, BranchSpec, branch_table, build
from reidbook.presets import get_preset
from reidbook.presets.mgn import build_criterion, loss_specs, variant_preset
from reidbook.profile import count_params, params_by_stage

torch.set_num_threads(1)
C = 7  # training identities of the tiny models


def tiny(variant="mgn", **kw) -> MGN:
    torch.manual_seed(0)
    return build(C, 0.125, variant=variant, **kw)


def pk_batch(P=4, K=4, size=(64, 32), seed=0):
    g = torch.Generator().manual_seed(seed)
    return torch.randn(P * K, 3, *size, generator=g), torch.arange(P).repeat_interleave(K)


def test_paper_size_parameter_count_without_classifiers():
    with torch.device("meta"):  # shapes only: no memory, no initialisation cost
        m = build_paper_model("mgn")
    assert m.width == 1.0 and m.reduce_dim == 256 and m.feature_dim == 2048
    assert count_params(m, exclude=("classifiers",)) == 68_807_744  # DESIGN.md: 68.81 M
    by = params_by_stage(m)
    assert sum(by.values()) == count_params(m)
    # trunk conv1–conv3 is ResNet-50's 1.445 M; three identical branches; eight 2048→256 reductions
    assert by["conv1"] + by["conv2"] + by["conv3"] == 1_444_928
    assert by["branch:global"] == by["branch:part2"] == by["branch:part3"] == 20_550_656
    assert by["reductions"] == 8 * (2048 * 256 + 2 * 256)
    # classifiers: bias-free, on 3 × 2048-d z_g and 5 × 256-d f_p (§3.2)
    assert by["classifiers"] == (3 * 2048 + 5 * 256) * 751


def test_table1_map_sizes_and_dims_at_384x128():
    rows = {r["Branch"]: r for r in branch_table(tiny(), (384, 128))}
    assert rows["Global"]["Map Size"] == "12 × 4" and rows["Global"]["Part No."] == 1
    assert rows["Part-2"]["Map Size"] == "24 × 8" and rows["Part-3"]["Map Size"] == "24 × 8"
    full = {r["Branch"]: r for r in branch_table(build(10, 0.125, reduce_dim=256), (384, 128))}
    assert [full[b]["Dims"] for b in ("Global", "Part-2", "Part-3")] == ["256", "256*2+256", "256*3+256"]


@pytest.mark.parametrize("size", [(64, 32), (96, 48), (128, 64), (160, 64)])
def test_output_shapes_at_several_input_sizes(size):
    m = tiny()
    d = m.reduce_dim
    x, _ = pk_batch(2, 2, size)
    maps = m.branch_maps(x)
    gh, gw = maps["global"].shape[2:]
    assert maps["part2"].shape[2:] == maps["part3"].shape[2:] == (2 * gh, 2 * gw) or gh * 32 >= size[0]
    assert maps["part2"].shape[2:] == (size[0] // 16, size[1] // 16)
    m.train()
    out = m(x)
    assert set(out) == {"logits", "triplet", "features"}
    assert len(out["logits"]) == 8 and all(t.shape == (4, C) for t in out["logits"])
    assert len(out["triplet"]) == 3 and all(t.shape == (4, d) for t in out["triplet"])
    assert out["features"].shape == (4, 8 * d)
    m.eval()
    with torch.no_grad():
        emb = m(x)
    assert emb.shape == (4, m.feature_dim) == (4, 8 * d)


def test_eval_embedding_is_concat_of_reduced_features_and_branch_slices():
    m = tiny().eval()
    x, _ = pk_batch(2, 2)
    with torch.no_grad():
        emb = m(x)
        f = m.forward_all(x)["f"]
        assert torch.allclose(emb, torch.cat([f[n] for n in m.feature_names], 1))
        assert m.feature_names == ["global_g", "part2_g", "part2_p1", "part2_p2",
                                   "part3_g", "part3_p1", "part3_p2", "part3_p3"]
        for name, sl in m.embedding_slices().items():
            assert torch.allclose(emb[:, sl], m.branch_embedding(x, name), atol=1e-6)
    assert (emb >= 0).all()  # reductions end with ReLU (§3.1)


def test_pooling_is_global_max_and_stripe_max():
    m = tiny().eval()
    x, _ = pk_batch(1, 2)
    with torch.no_grad():
        out = m.forward_all(x)
    p3 = out["maps"]["part3"]
    assert torch.equal(out["z"]["part3_g"], p3.amax(dim=(2, 3)))
    h = p3.shape[2]
    assert h % 3 != 0 or torch.equal(out["z"]["part3_p2"], p3[:, :, h // 3: 2 * h // 3].amax(dim=(2, 3)))
    p2 = out["maps"]["part2"]
    assert torch.equal(out["z"]["part2_p1"], p2[:, :, : p2.shape[2] // 2].amax(dim=(2, 3)))


def test_loss_wiring_softmax_on_2048_global_and_256_parts_triplet_on_reduced_globals():
    m = tiny()
    c, d = m.in_dim, m.reduce_dim
    for n, clf in m.classifiers.items():
        assert clf.bias is None  # bias-free softmax, Eq. (1)
        assert clf.in_features == (c if n.endswith("_g") else d), n
    m.train()
    x, y = pk_batch()
    torch.manual_seed(1)
    out = m(x)
    ref = m.forward_all(x)  # same batch → same train-mode BN statistics
    for n, logit in zip(m.feature_names, out["logits"]):
        src = ref["z"][n] if n.endswith("_g") else ref["f"][n]
        assert torch.allclose(logit, m.classifiers[n](src), atol=1e-5), n
    for b, f in zip(m.specs, out["triplet"]):
        assert torch.allclose(f, ref["f"][f"{b}_g"], atol=1e-6)

    crit = build_criterion("mgn")
    total, parts = crit(out, y)
    with torch.no_grad():
        ce = sum(F.cross_entropy(lg, y) for lg in out["logits"])
        tri = sum(batch_hard_triplet_loss(f, y, margin=1.2) for f in out["triplet"])
    assert parts["softmax"] == pytest.approx(float(ce), rel=1e-5)
    assert parts["triplet"] == pytest.approx(float(tri), rel=1e-5)
    assert float(total.detach()) == pytest.approx(float(ce + tri), rel=1e-5)


def test_which_loss_reaches_which_reduction():
    """Softmax reaches the part reductions but not the global ones (it sits on z_g, before them);
    the triplet reaches the global reductions only. In "MGN w/o TP" softmax reaches all of them."""
    x, y = pk_batch()
    m = tiny().train()
    out = m(x)
    losses_build_criterion([loss_specs("mgn")[0]])(out, y)[0].backward()
    g = {n: r.conv.weight.grad for n, r in m.reductions.items()}
    assert all(g[n] is None or g[n].abs().sum() == 0 for n in m.feature_names if n.endswith("_g"))
    assert all(g[n].abs().sum() > 0 for n in m.feature_names if not n.endswith("_g"))

    m.zero_grad(set_to_none=True)
    out = m(x)
    losses_build_criterion([loss_specs("mgn")[1]])(out, y)[0].backward()
    assert all(m.reductions[n].conv.weight.grad.abs().sum() > 0 for n in m.feature_names if n.endswith("_g"))
    assert all(m.reductions[n].conv.weight.grad is None for n in m.feature_names if not n.endswith("_g"))
    assert all(clf.weight.grad is None for clf in m.classifiers.values())

    wo = tiny("mgn_wo_tp").train()
    assert all(clf.in_features == wo.reduce_dim for clf in wo.classifiers.values())
    assert [s["loss"] for s in loss_specs("mgn_wo_tp")] == ["cross_entropy"]
    build_criterion("mgn_wo_tp")(wo(x), y)[0].backward()
    assert all(r.conv.weight.grad.abs().sum() > 0 for r in wo.reductions.values())


@pytest.mark.parametrize("variant,n_feats,branches", [
    ("mgn", 8, ["global", "part2", "part3"]), ("global", 1, ["global"]), ("part2", 3, ["part2"]),
    ("part3", 4, ["part3"]), ("mgn_wo_part3", 4, ["global", "part2"]),
    ("mgn_part4", 13, ["global", "part2", "part3", "part4"]), ("part2+4", 9, ["global", "part2", "part4"]),
    ("part3+4", 10, ["global", "part3", "part4"]), ("mgn_wo_tp", 8, ["global", "part2", "part3"]),
])
def test_table5_variants(variant, n_feats, branches):
    m = tiny(variant)
    assert list(m.branches) == branches
    assert len(m.feature_names) == n_feats and m.feature_dim == n_feats * m.reduce_dim
    x, y = pk_batch(2, 2)
    out = m.train()(x)
    assert len(out["logits"]) == n_feats and len(out["triplet"]) == len(branches)
    assert torch.isfinite(build_criterion(variant)(out, y)[0])
    # global branches keep res_conv5_1's stride 2, part branches do not (§3.1)
    for name, spec in m.specs.items():
        assert m.branches[name].layer4[0].conv2.stride == ((2, 2) if spec.downsample else (1, 1))


def test_single_global_network_is_a_resnet50():
    """Table 5: "ResNet-50+TP can be regarded as Global (Single)": trunk + one global branch = ResNet-50."""
    with torch.device("meta"):
        m, r = build(10, variant="global"), resnet50()
    assert count_params(m, exclude=("classifiers", "reductions")) == count_params(r)


def test_pretrained_weights_are_loaded_before_branches_are_copied():
    torch.manual_seed(3)
    src = resnet50(width=0.125)
    state = {k: v + 0.5 for k, v in src.state_dict().items() if v.is_floating_point()}
    state.update({k: v for k, v in src.state_dict().items() if not v.is_floating_point()})
    m = build(C, 0.125, pretrained=state)
    assert torch.equal(m.trunk.conv1.weight, state["conv1.weight"])
    assert torch.equal(m.trunk.layer3[0].conv1.weight, state["layer3.0.conv1.weight"])
    for name, br in m.branches.items():
        for k, v in br.state_dict().items():
            assert torch.equal(v, state[k]), (name, k)  # same keys as torchvision: layer3.1 …, layer4.*
    # deep copies: training one branch does not touch another
    m.branches["part2"].layer4[0].conv1.weight.data.zero_()
    assert m.branches["global"].layer4[0].conv1.weight.abs().sum() > 0


def test_a_few_sgd_steps_lower_the_loss():
    m = tiny().train()
    crit = build_criterion("mgn")
    # random init and random images: z_g has a norm of ~40, so a smaller lr than the paper's 0.01
    # (which starts from ImageNet weights) keeps these few steps on a fixed batch stable.
    opt = torch.optim.SGD(m.parameters(), lr=0.003, momentum=0.9, weight_decay=5e-4)
    x, y = pk_batch()
    losses = []
    for _ in range(24):  # 12 steps left a 6 % margin on a wandering trajectory: averages over 4 steps now
        loss, _ = crit(m(x), y)
        opt.zero_grad()
        loss.backward()
        opt.step()
        losses.append(float(loss.detach()))
    assert sum(losses[-4:]) < 0.85 * sum(losses[:4]), losses


def test_registry_options_and_errors():
    m = build_model("mgn", C, profile="smoke", variant="part3")
    assert list(m.branches) == ["part3"] and m.width == 0.125
    assert build_model("mgn", C, profile="quick").width == 0.25
    assert build_model("mgn", C, profile="smoke", width=0.25).width == 0.25 and build(C).width == 1.0
    custom = build(C, 0.125, branches=[("global", 1, True), ("part6", 6, False)])
    assert len(custom.feature_names) == 1 + 7
    with pytest.raises(KeyError, match="unknown MGN variant"):
        build(C, 0.125, variant="mgn9")
    with pytest.raises(ValueError, match="parts"):
        BranchSpec("bad", 0, False)
    with pytest.raises(ValueError, match="unique"):
        MGN(C, [BranchSpec("a", 1, True), BranchSpec("a", 2, False)], width=0.125)
    assert set(VARIANTS) >= {"mgn", "global", "part2", "part3", "mgn_wo_part3", "mgn_part4",
                             "part2+4", "part3+4", "mgn_wo_tp"}


def test_presets_full_is_the_papers_section_4_1():
    p = get_preset("mgn", "full")
    assert (p.height, p.width, p.P, p.K, p.epochs) == (384, 128, 16, 4, 80)
    assert p.train_aug["flip"] and not p.train_aug["random_crop"] and p.train_aug["random_erasing"] == 0
    assert p.optimizer == {"name": "sgd", "lr": 0.01, "momentum": 0.9, "weight_decay": 5e-4}
    assert p.schedule == {"name": "step", "milestones": [40, 60], "gamma": 0.1}
    assert {s["loss"]: s["options"] for s in p.losses} == {"cross_entropy": {}, "batch_hard_triplet": {"margin": 1.2}}
    for prof in ("smoke", "quick"):
        q = get_preset("mgn", prof)
        assert q.model_options == {"variant": "mgn"} and q.losses == p.losses  # topology and losses unchanged
    v = variant_preset("mgn_wo_tp", "quick")
    assert v.model_options["variant"] == "mgn_wo_tp" and len(v.losses) == 1
    assert (v.epochs, v.height) == (get_preset("mgn", "quick").epochs, get_preset("mgn", "quick").height)
