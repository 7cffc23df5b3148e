import pytest
import torch

from reidbook.models import build_model
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
    m = build_model("pcb", num_classes=751, profile="full")
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
