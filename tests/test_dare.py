"""DaRe (paper 004): heads, fusion (Eq. 1), anytime forward, loss (Eq. 2), parameter count, presets,
and the sequential-ensemble baseline (the paper's "SE-ResNets")."""
from __future__ import annotations

import pytest
import torch

from reidbook.losses import batch_hard_triplet_loss, build_criterion
from reidbook.models import build_model, build_paper_model
from reidbook.models.dare import TenCropEmbedding
from reidbook.models.seq_ensemble import SequentialEnsemble
from reidbook.presets import get_preset
from reidbook.presets.dare import loss_specs
from reidbook.profile import count_params


@pytest.fixture(scope="module")
def dare():
    torch.manual_seed(0)
    return build_model("dare", 8, profile="smoke")  # width 1/8


def test_paper_size_parameter_count():
    m = build_paper_model("dare")
    assert count_params(m) / 1e6 == pytest.approx(27.98, abs=0.005)
    # 23.508 M backbone + 4 heads (FC 1024 with bias + BN + FC 128) + 4 fusion weights
    heads = sum((c + 1) * 1024 + 2 * 1024 + 1024 * 128 + 128 for c in (256, 512, 1024, 2048))
    assert count_params(m) == count_params(m.backbone) + heads + 4
    assert [h.fc1.in_features for h in m.heads] == [256, 512, 1024, 2048]
    assert all(h.fc1.out_features == 1024 and h.fc2.out_features == 128 for h in m.heads)


def test_head_shapes_train_and_eval(dare):
    x = torch.randn(4, 3, 64, 32)
    dare.train()
    out = dare(x)
    assert set(out) == {"stages", "fusion"}
    assert len(out["stages"]) == 4 and all(f.shape == (4, 128) for f in out["stages"])
    assert out["fusion"].shape == (4, 128)
    dare.eval()
    with torch.no_grad():
        assert dare(x).shape == (4, 128)
    assert dare.feature_dim == 128


def test_fusion_is_weighted_sum(dare):
    dare.eval()
    with torch.no_grad():
        dare.fusion_weights.copy_(torch.tensor([0.5, -1.0, 2.0, 0.25]))
        x = torch.randn(3, 3, 64, 32)
        phis = dare.anytime(x)
        want = 0.5 * phis[0] - phis[1] + 2 * phis[2] + 0.25 * phis[3]
        torch.testing.assert_close(dare(x), want)
        torch.testing.assert_close(dare.all_embeddings(x)[-1], want)
        dare.fusion_weights.fill_(0.25)
    assert dare.fusion_weights.requires_grad  # learnable scalars


@pytest.mark.parametrize("upto", [1, 2, 3, 4])
def test_anytime_stops_after_stage(dare, upto):
    """Stopping after stage s runs no later backbone stage and no later head."""
    dare.eval()
    ran = []
    mods = {"conv3": dare.backbone.layer2, "conv4": dare.backbone.layer3, "conv5": dare.backbone.layer4,
            **{f"head{i + 1}": h for i, h in enumerate(dare.heads)}}
    hooks = [m.register_forward_hook(lambda mod, i, o, n=n: ran.append(n)) for n, m in mods.items()]
    try:
        with torch.no_grad():
            out = dare.anytime(torch.randn(2, 3, 64, 32), upto=upto)
    finally:
        for h in hooks:
            h.remove()
    assert len(out) == upto
    later_stages = ["conv3", "conv4", "conv5"][upto - 1:]
    assert not set(ran) & set(later_stages)
    assert not set(ran) & {f"head{i}" for i in range(upto + 1, 5)}
    assert {f"head{i}" for i in range(1, upto + 1)} <= set(ran)
    # and the embeddings are those of the full pass
    with torch.no_grad():
        full = dare.anytime(torch.zeros(2, 3, 64, 32))
        part = dare.anytime(torch.zeros(2, 3, 64, 32), upto=upto)
    for a, b in zip(part, full):
        torch.testing.assert_close(a, b)
    # the exit embedding: the latest stage's, or the fusion after all four
    emb = dare.exit_embedding(part)
    torch.testing.assert_close(emb, dare.fuse(full) if upto == 4 else part[-1])


def test_anytime_rejects_bad_stage(dare):
    with pytest.raises(ValueError, match="upto"):
        dare.anytime(torch.zeros(1, 3, 64, 32), upto=5)


def test_densenet_variant():
    torch.manual_seed(0)
    m = build_model("dare", 8, profile="smoke", arch="densenet201").eval()
    with torch.no_grad():
        out = m.anytime(torch.randn(2, 3, 64, 32), upto=2)
        assert len(out) == 2 and out[0].shape == (2, 128)
        assert m(torch.randn(2, 3, 64, 32)).shape == (2, 128)
    assert [h.fc1.in_features for h in m.heads] == [m.backbone.stage_channels[s] for s in m.stage_names]
    with pytest.raises(KeyError, match="backbone"):
        build_model("dare", 8, profile="smoke", arch="vgg16")


def test_eq2_loss_with_and_without_deep_supervision(dare):
    torch.manual_seed(1)
    dare.train()
    x, pids = torch.randn(8, 3, 64, 32), torch.arange(4).repeat_interleave(2)
    out = dare(x)
    total, parts = build_criterion(loss_specs(True))(out, pids)
    want = sum(batch_hard_triplet_loss(f, pids, None, soft=True) for f in out["stages"]) \
        + batch_hard_triplet_loss(out["fusion"], pids, None, soft=True)
    torch.testing.assert_close(total, want)
    assert set(parts) == {"stages", "fusion"}
    total_f, parts_f = build_criterion(loss_specs(False))(out, pids)
    assert set(parts_f) == {"fusion"}
    torch.testing.assert_close(total_f, batch_hard_triplet_loss(out["fusion"], pids, None, soft=True))


def test_training_lowers_the_loss():
    torch.manual_seed(0)
    m = build_model("dare", 4, profile="smoke").train()
    crit = build_criterion(loss_specs(True))
    opt = torch.optim.Adam(m.parameters(), lr=1e-3)
    x, pids = torch.randn(8, 3, 64, 32), torch.arange(4).repeat_interleave(2)
    losses = []
    for _ in range(12):  # one fixed batch: averages of 3 steps, a margin far above cross-CPU noise
        loss, _ = crit(m(x), pids)
        losses.append(float(loss.detach()))
        opt.zero_grad()
        loss.backward()
        opt.step()
    assert sum(losses[-3:]) < 0.5 * sum(losses[:3]), losses
    assert m.fusion_weights.grad is not None


def test_ten_crop_feature(dare):
    dare.eval()
    tc = TenCropEmbedding(dare, (64, 32))
    x = torch.randn(2, 3, 72, 36)  # 1.125 × the crop
    with torch.no_grad():
        f = tc(x)
        assert f.shape == (2, 128)
        # crop = whole image: the five crops coincide, leaving the image and its mirror image
        want = (dare(x) + dare(x.flip(-1))) / 2
        torch.testing.assert_close(TenCropEmbedding(dare, (72, 36))(x), want, atol=1e-5, rtol=1e-5)
    with pytest.raises(ValueError, match="smaller than the crop"):
        tc(torch.randn(1, 3, 32, 16))


def test_presets():
    full = get_preset("dare", "full")
    assert (full.P, full.K, full.height, full.width) == (18, 4, 256, 128)
    assert full.optimizer["name"] == "adam" and full.optimizer["lr"] == 3e-4
    s = full.schedule
    assert (s["name"], s["t0"], s["t1"], s["unit"], s["decay_to"], s["beta1"], s["beta1_after"]) == \
        ("dare_exp", 30_000, 60_000, "iters", 0.001, 0.9, 0.5)
    assert full.train_aug["resize_scale"] == 1.125 and full.train_aug["flip"]
    assert [t["key"] for t in full.losses] == ["stages", "fusion"]
    from reidbook.presets.dare import with_random_erasing

    assert with_random_erasing(full).train_aug["random_erasing"] == 0.5
    for profile in ("smoke", "quick"):
        p = get_preset("dare", profile)
        assert p.losses == full.losses and p.schedule["name"] == "dare_exp"
    se = get_preset("seq_ensemble", "quick")
    assert se.model == "seq_ensemble" and [t["key"] for t in se.losses] == ["triplet"]
    assert se.optimizer == get_preset("dare", "quick").optimizer


def test_schedule_from_preset_switches_beta1():
    from reidbook.engine import build_optimizer, build_scheduler

    m = build_model("dare", 4, profile="smoke")
    p = get_preset("dare", "full")
    opt = build_optimizer(m, p.optimizer)
    sched = build_scheduler(opt, p.schedule, epochs=p.epochs, iters_per_epoch=200)
    assert sched.factor(30_000) == 1.0
    assert sched.factor(45_000) == pytest.approx(0.001 ** 0.5)
    assert sched.factor(60_000) == pytest.approx(0.001)
    assert sched.beta1_at(29_999) == 0.9 and sched.beta1_at(30_000) == 0.5


def test_sequential_ensemble_members_and_chain():
    torch.manual_seed(0)
    members = [build_model("seq_ensemble", 4, profile="smoke", arch=a) for a in ("resnet18", "resnet34", "resnet50")]
    m18 = members[0].train()
    out = m18(torch.randn(4, 3, 64, 32))
    assert set(out) == {"triplet"} and out["triplet"][0].shape == (4, 128)
    se = SequentialEnsemble.chain(*members)
    assert se.names == ["resnet18", "resnet34", "resnet50"] and se.num_exits == 3
    ran = []
    hooks = [m.register_forward_hook(lambda mod, i, o, k=k: ran.append(k)) for k, m in enumerate(se.members)]
    with torch.no_grad():
        embs = se.anytime(torch.randn(2, 3, 64, 32), upto=2)
    for h in hooks:
        h.remove()
    assert ran == [0, 1] and len(embs) == 2  # ResNet-50 never ran
    x = torch.randn(2, 3, 64, 32)
    with torch.no_grad():
        torch.testing.assert_close(se(x), se.members[2](x))
        torch.testing.assert_close(se.exit_embedding(se.anytime(x)), se.members[2](x))
    se.train()
    with pytest.raises(RuntimeError, match="separately"):
        se(x)
