"""The papers' own tables that chapters 03 and 04 read from the package (GraftedNet, FD): stored once, read
as DataFrames, and consistent with what the package computes where the paper's number is a count."""
from __future__ import annotations

import pytest

from reidbook.models import fd, graftednet as G


def test_graftednet_table2_reduction_counts_are_ours_rounded():
    t2 = G.paper_table(2)
    ours = {row["g"]: row["nine reductions"] / 1e6 for row in G.group_conv_table((1, 4, 8))}
    for label, g in (("GraftedNet", 8), ("GraftedNet (g=4)", 4), ("GraftedNet (g=1)", 1)):
        assert round(ours[g], 3) == pytest.approx(t2.loc[label, "reduction_params_M"])
    assert set(G.VARIANT_LABELS.values()) == set(t2.index)          # every Table 2 row, by our labels
    assert t2.loc["GraftedNet", "mAP"] > t2.loc["GraftedNet(-AL)", "mAP"]


def test_graftednet_table3_and_fd_tables():
    t3 = G.paper_table(3)
    assert list(t3.index) == ["SqueezeNet", "ShuffleNetV2", "MobileNetV2", "ResNet-50", "GraftedNet"]
    assert t3.loc["GraftedNet", "time_ms"] < t3.loc["ResNet-50", "time_ms"]
    assert set(fd.paper_table(3).index) >= {"holistic", "up1", "mid1", "dn1", "up2", "mid2", "dn2"}
    assert list(fd.paper_table(1).index) == list(fd.STUDENTS)
    assert fd.paper_table(7).loc["L_cls + L_attr + L_metric", "mAP"] == fd.paper_table(8).iloc[-1]["mAP"]
    for mod, n in ((G, 5), (fd, 2)):
        with pytest.raises(ValueError, match="are stored"):
            mod.paper_table(n)
