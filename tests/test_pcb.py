import pytest
import torch

from reidbook.models import build_model, build_paper_model
from reidbook.presets import get_preset
from reidbook.profile import count_params


@pytest.fixture(autouse=True, scope="module")
def _one_thread():
    n = torch.get_num_threads()
    torch.set_num_threads(1)  # shared test machine: avoid oversubscription
    yield
    torch.set_num_threads(n)


def _no_cls(m):
    return count_params(m) - sum(p.numel() for p in m.classifiers.parameters())


def test_pcb_param_count_full_without_classifiers():
    m = build_paper_model("pcb")
    # ResNet-50 w/o FC 23,508,032 + shared 1x1 conv 2048*256 + BN 2*256
    assert _no_cls(m) == 23_508_032 + 2048 * 256 + 512
    assert round(_no_cls(m) / 1e6, 2) == 24.03
    assert len(m.classifiers) == 6 and m.classifiers[0].bias is not None


def test_pcb_shapes_train_and_eval():
    torch.manual_seed(0)
    m = build_model("pcb", num_classes=10, profile="smoke")
    x = torch.randn(2, 3, 96, 32)
    m.train()
    out = m(x)
    assert isinstance(out["logits"], list) and len(out["logits"]) == 6
    assert all(t.shape == (2, 10) for t in out["logits"])
    m.eval()
    with torch.no_grad():
        f = m(x)
    assert f.shape == (2, 6 * m.backbone.out_channels)
    assert m.backbone(x).shape[2:] == (6, 2)  # last stride 1: 96/16 rows
    m.feature = "h"
    with torch.no_grad():
        assert m(x).shape == (2, 6 * 32)  # 256 / 8


def test_pcb_presets_and_loss():
    from reidbook.losses import build_criterion

    p = get_preset("pcb", "full")
    assert (p.height, p.width, p.epochs) == (384, 128, 60)
    assert p.optimizer["lr"] == 0.1 and p.optimizer["lr_groups"] == {"backbone": 0.01}
    s = get_preset("pcb", "smoke")
    m = build_model("pcb", num_classes=5, profile="smoke").train()
    crit = build_criterion(s.losses)
    total, parts = crit(m(torch.randn(4, 3, s.height, s.width)), torch.tensor([0, 1, 2, 3]))
    assert torch.isfinite(total)


def test_psfp_pcb_bfe_vs_bfe_lc_fc():
    """Survey Table 8: pruning the local conv + classifiers too saves parameters, not test multiply-adds
    (PCB's test feature g is taken before the local conv)."""
    from reidbook.profile import count_macs
    from reidbook.prune import C1, pcb_head_units, prune_pcb

    torch.manual_seed(0)
    m = build_model("pcb", num_classes=10, profile="smoke").eval()
    size = (96, 32)
    bfe, r1 = prune_pcb(m, C1, "bfe", epochs=2, input_size=size)
    full, r2 = prune_pcb(m, C1, "bfe+lc+fc", epochs=2, input_size=size)
    assert r1.reached and r2.reached and r1.strategy == "psfp[bfe]"
    assert count_macs(bfe, size) == count_macs(full, size)
    assert r2.params_after < r1.params_after < r1.params_before
    kept = full.local[0].out_channels
    assert kept < m.local[0].out_channels == bfe.local[0].out_channels
    assert full.local[1].num_features == kept and all(c.in_features == kept for c in full.classifiers)
    full.train()
    assert all(t.shape == (2, 10) for t in full(torch.randn(2, 3, *size))["logits"])
    full.eval().feature = "h"
    with torch.no_grad():
        assert full(torch.randn(2, 3, *size)).shape == (2, 6 * kept)
    assert pcb_head_units(m)[0].consumers == [f"classifiers.{i}" for i in range(6)]


def test_psfp_pcb_l1_vs_l2_and_bad_part():
    """Table 9: the criterion is a switch; both reach the target with the same widths."""
    import pytest

    from reidbook.prune import C1, prune_pcb

    torch.manual_seed(0)
    m = build_model("pcb", num_classes=10, profile="smoke").eval()
    a, ra = prune_pcb(m, C1, criterion="l1", epochs=1, input_size=(96, 32))
    b, rb = prune_pcb(m, C1, criterion="l2", epochs=1, input_size=(96, 32))
    assert ra.method == "l1" and rb.method == "l2" and ra.macs_after == rb.macs_after
    with pytest.raises(ValueError, match="part"):
        prune_pcb(m, C1, part="head")
    with pytest.raises(ValueError, match="not a PCB"):
        prune_pcb(build_model("baseline", 10, profile="smoke"), C1, part="bfe+lc+fc", input_size=(64, 32))


# --------------------------------------------------------------------------------------------- Table 8's sizes
def test_survey_table8_size_is_pcb_plus_torchvisions_unused_fc():
    """Survey Table 8: PCB (ResNet50) 27.2 M = our PCB with six 751-way classifiers + the 1000-way fc
    that the authors' model object holds but never runs; PCB (SE-ResNet50) 27.7 M = SE-ResNet-50
    without fc + local conv + classifiers."""
    from reidbook.models.pcb import SURVEY_COUNTED_UNUSED_FC

    with torch.device("meta"):
        m = build_model("pcb", num_classes=751, profile="full")
        se = build_model("pcb", num_classes=751, profile="full", arch="se_resnet50")
    assert round(count_params(m) / 1e6, 2) == 25.19
    assert SURVEY_COUNTED_UNUSED_FC == 2_049_000
    assert round((count_params(m) + SURVEY_COUNTED_UNUSED_FC) / 1e6, 1) == 27.2
    assert count_params(se.backbone) == 26_039_024  # Hu et al.: 28.1 M with its 1000-way fc
    assert count_params(se.backbone) + SURVEY_COUNTED_UNUSED_FC == 28_088_024
    assert round(count_params(se) / 1e6, 1) == 27.7
    assert count_params(se) - count_params(m) == count_params(se.backbone) - count_params(m.backbone)


def test_se_block_known_values_and_names():
    from torchvision.models.resnet import Bottleneck

    from reidbook.models.se_resnet import SEBottleneck, SEModule, se_resnet50

    se = SEModule(32, reduction=16)
    assert se.fc1.out_channels == 2 and se.fc2.out_channels == 32
    torch.nn.init.zeros_(se.fc2.weight)
    torch.nn.init.zeros_(se.fc2.bias)
    u = torch.randn(2, 32, 3, 3)
    torch.testing.assert_close(se(u), 0.5 * u)  # σ(0) = ½ on every channel
    with torch.no_grad():
        se.fc2.bias[:3] = torch.tensor([1e4, -1e4, 0.0])
    out = se(u)
    torch.testing.assert_close(out[:, 0], u[:, 0])
    torch.testing.assert_close(out[:, 1], 0 * u[:, 1])
    net = se_resnet50(width=0.125)
    blocks = [m for m in net.modules() if isinstance(m, Bottleneck)]
    assert len(blocks) == 16 and all(isinstance(b, SEBottleneck) for b in blocks)
    names = dict(net.named_modules())
    assert "layer1.0.conv1" in names and "layer4.2.se.fc2" in names  # torchvision names kept
    # SE on the residual branch, before the addition: gate at ½ halves the branch, not the identity
    b = blocks[1]
    for p in b.se.fc2.parameters():
        torch.nn.init.zeros_(p)
    b.eval()
    x = torch.randn(1, b.conv1.in_channels, 4, 4)
    with torch.no_grad():
        branch = b.bn3(b.conv3(b.relu(b.bn2(b.conv2(b.relu(b.bn1(b.conv1(x))))))))
        torch.testing.assert_close(b(x), torch.relu(0.5 * branch + x))
    with pytest.raises(Exception, match="no ImageNet weights"):
        se_resnet50(pretrained="imagenet")


def test_se_resnet50_loads_a_plain_resnet50_state():
    from reidbook.models.backbones import resnet50
    from reidbook.models.se_resnet import se_resnet50

    torch.manual_seed(0)
    plain = resnet50(width=0.125).state_dict()
    net = se_resnet50(width=0.125, pretrained=plain)
    assert len(net.missing_se) == 4 * 16 and all(".se." in k for k in net.missing_se)
    torch.testing.assert_close(net.state_dict()["layer2.1.conv2.weight"], plain["layer2.1.conv2.weight"])


def test_psfp_cut_of_pcb_on_se_resnet50():
    """Survey Table 8, "PSFP + PCB (BFE) SE-ResNet50": the prune API cuts the bottlenecks of the SE
    backbone; the SE blocks (on the block outputs) keep their width and the model still runs."""
    from reidbook.models.se_resnet import SEBottleneck
    from reidbook.profile import count_macs
    from reidbook.prune import C1, prune_pcb

    torch.manual_seed(0)
    m = build_model("pcb", num_classes=10, profile="smoke", arch="se_resnet50").eval()
    size = (96, 32)
    pruned, rep = prune_pcb(m, C1, "bfe", epochs=1, input_size=size)
    assert rep.reached and rep.params_after < rep.params_before
    assert count_macs(pruned, size) < count_macs(m, size)
    blocks = [b for b in pruned.modules() if isinstance(b, SEBottleneck)]
    assert len(blocks) == 16
    assert any(b.conv2.out_channels < b2.conv2.out_channels
               for b, b2 in zip(blocks, [b for b in m.modules() if isinstance(b, SEBottleneck)]))
    assert all(b.se.fc1.in_channels == b.conv3.out_channels for b in blocks)
    with torch.no_grad():
        assert pruned(torch.randn(2, 3, *size)).shape == (2, 6 * pruned.backbone.out_channels)


def test_pcb_dropout_acts_on_g_before_the_local_conv():
    """The authors' resnet.py: ``x = self.drop(x); x = self.local_conv(x)`` on the pooled stripes."""
    torch.manual_seed(0)
    m = build_model("pcb", num_classes=5, profile="smoke").train()
    seen = {}
    m.local.register_forward_hook(lambda mod, inp, out: seen.__setitem__("g", inp[0].detach()))
    m.classifiers[0].register_forward_hook(lambda mod, inp, out: seen.__setitem__("h", inp[0].detach()))
    x = torch.rand(4, 3, 96, 32)
    m.eval()
    m.feature = "h"
    with torch.no_grad():
        m(x)
    base = (seen["g"] == 0).float().mean().item()  # channels a random-init ReLU leaves at 0
    assert base < 0.5
    m.train()
    with torch.no_grad():
        m(x)
    zero_g = (seen["g"] == 0).float().mean().item()
    assert abs(zero_g - (base + 0.5 * (1 - base))) < 0.1  # dropout p = 0.5 on g, in training only


def test_se_resnet50_is_a_backbone_the_zoo_can_pretrain():
    """``se_resnet50`` is a backbone name like the ResNets: the baseline builds on it and the source-domain
    pre-training starts it with identity residual blocks (bn3 zeroed: the SE gate then scales zeros)."""
    from reidbook.models.baseline import BACKBONES
    from reidbook.models.se_resnet import SEBottleneck
    from reidbook.pretrain import build_trunk

    assert "se_resnet50" in BACKBONES
    m = build_model("baseline", 5, profile="smoke", arch="se_resnet50")
    assert any(isinstance(b, SEBottleneck) for b in m.backbone.modules())
    trunk = build_trunk("se_resnet50", 0.125)
    blocks = [b for b in trunk.modules() if isinstance(b, SEBottleneck)]
    assert len(blocks) == 16 and all(float(b.bn3.weight.abs().sum()) == 0 for b in blocks)
