"""Factorized Distillation's networks: Table 1 parameter counts, stabilized GMP (Eq. 5), FMFB, RFB, deploy."""
from __future__ import annotations

import pytest
import torch
import torch.nn.functional as F

from reidbook.models import build_model, build_paper_model
from reidbook.models.fd import build_student, student_param_table
from reidbook.models.layers import StabilizedGMP
from reidbook.profile import count_params

# Table 1 / Table 3 "Param (M)" (students without their classifier).
PAPER = {"S": 1.0, "R18a": 11.4, "R50a": 24.6, "R50b": 27.7, "R101a": 43.5, "R152a": 59.2, "R152b": 62.3}


def test_student_parameter_counts_match_table_1():
    got = student_param_table()
    for arch, millions in PAPER.items():
        assert got[arch] / 1e6 == pytest.approx(millions, abs=0.06), arch


def test_teacher_parameter_counts_match_table_3():
    # Table 3: ResNet-101 teachers 43.5 M (holistic, 512-d) and 43.0 M (partial, 256-d).
    with torch.device("meta"):
        hol = count_params(build_paper_model("fd_teacher", arch="resnet101", view="holistic"), exclude=("classifier",))
        part = count_params(build_paper_model("fd_teacher", arch="resnet101", view="dn2"), exclude=("classifier",))
    assert hol / 1e6 == pytest.approx(43.5, abs=0.06) and part / 1e6 == pytest.approx(43.0, abs=0.06)
    assert hol - part == (2048 * 256 + 256 + 2 * 256)  # the embedding FC + BN difference, 512 vs 256


def test_stabilized_gmp_is_gmp_of_avgpool():
    x = torch.zeros(1, 2, 8, 4)
    x[0, 0, 3, 1] = 16.0  # one spike: GMP sees 16, the 4×4 mean around it 1
    x[0, 1] = 2.0
    p = StabilizedGMP(4)(x)
    assert torch.allclose(p, torch.tensor([[1.0, 2.0]]))
    y = torch.randn(2, 3, 9, 5)
    assert torch.allclose(StabilizedGMP(4)(y), F.avg_pool2d(y, 4, stride=1).amax(dim=(2, 3)))


def test_backbone_stride_16_and_eval_embedding():
    s = build_student(10, arch="R18a", width=0.125).eval()
    assert s.feature_maps(torch.randn(2, 3, 64, 32)).shape[-2:] == (4, 2)  # last stride 1: /16
    assert s(torch.randn(2, 3, 64, 32)).shape == (2, s.feature_dim)
    t = build_model("fd_teacher", 10, profile="smoke", arch="resnet18", view="up1")
    assert t.feature_dim == 32  # 256 · 1/8
    sq = build_model("fd_student", 10, profile="smoke", arch="S").eval()
    # SqueezeNet is "stride 16" too (§4.1), up to its unpadded 7×7 conv and ceil-mode pools: 256×128 → 15×7
    assert sq.feature_maps(torch.randn(1, 3, 256, 128)).shape[-2:] == (15, 7)


def test_branches_train_outputs_and_deploy():
    torch.manual_seed(0)
    dims = {"holistic": 16, "up1": 8, "dn2": 8}
    s = build_student(10, arch="R18a", width=0.125, sr_dims=dims, featsel_channels=24)
    assert isinstance(s.rfb["holistic"].featsel, torch.nn.Identity)  # §3.4: no FeatSel for the holistic RFB
    assert isinstance(s.rfb["up1"].featsel, torch.nn.Sequential)
    assert s.fmfb["up1"].featsel.conv.kernel_size == (1, 1) and s.fmfb["up1"].featsel.conv.out_channels == 24
    s.train()
    out = s(torch.randn(4, 3, 64, 32))
    assert out["logits"][0].shape == (4, 10)
    assert [a.shape[1] for a in out["attr"]] == [16, 8, 8] == [m.shape[1] for m in out["metric"]]
    maps = s.view_maps(torch.randn(2, 3, 64, 32))
    assert list(maps) == ["holistic", "up1", "dn2", "student"] and maps["up1"].shape[1] == 24
    s.eval()
    x = torch.randn(3, 3, 64, 32)
    d = s.deploy()
    assert d.fmfb is None and d.rfb is None and s.fmfb is not None
    plain = build_student(10, arch="R18a", width=0.125)
    assert count_params(d) == count_params(plain) < count_params(s)
    assert torch.allclose(d(x), s(x))
    with pytest.raises(KeyError, match="Table 1"):
        build_student(10, arch="R34a")
