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
