"""The capstone's comparison: Pareto fronts, the budget guide, parameter accounting, paper rows, collect."""
from __future__ import annotations

import math

import numpy as np
import pandas as pd
import pytest
import torch
from support.toy_table import toy_table
from torch import nn

from reidbook import compare as C
from reidbook.viz import compare as VC


def _table():
    """A hand-made table whose fronts and budget answers are known (tests/support/toy_table.py)."""
    return toy_table()


def test_pareto_front_hand_made():
    t = _table()
    # params: Worse (5 M, 50) is dominated by Small (4 M, 58); everything else is on the front
    assert list(t.index[VC.pareto_front(t, "params_M")]) == ["ref", "small", "tiny", "big"]
    # MACs: Worse (30, 50) is cheaper than Small (40, 58), so both are on the front
    assert list(t.index[VC.pareto_front(t, "MACs_M")]) == ["ref", "small", "tiny", "worse", "big"]
    # Rank-1 vs params: Worse (5 M, 81) dominates Ref (10 M, 80)
    assert "ref" not in t.index[VC.pareto_front(t, "params_M", "rank1")]


def test_pareto_front_ties_and_missing():
    t = pd.DataFrame({"c": [1.0, 1.0, 2.0, np.nan], "a": [5.0, 5.0, 4.0, 9.0]})
    assert VC.pareto_front(t, "c", "a").tolist() == [True, True, False, False]


def test_budget_table_known_answers():
    bt = VC.budget_table(_table(), "ref", fractions=(0.1, 0.5, 1.0), axes=("params_M",))
    got = dict(zip(bt["fraction"], bt["best"]))
    assert got == {0.1: "tiny", 0.5: "small", 1.0: "ref"}
    row = bt[bt["fraction"] == 0.5].iloc[0]
    assert row["n_fit"] == 3 and row["delta"] == pytest.approx(-2.0) and row["cost_ratio"] == pytest.approx(0.4)


def test_budget_table_nothing_fits_and_errors():
    bt = VC.budget_table(_table(), "ref", fractions=(0.05,), axes=("MACs_M",))
    assert bt["n_fit"].iloc[0] == 0 and math.isnan(bt["accuracy"].iloc[0])
    with pytest.raises(KeyError, match="reference 'nope'"):
        VC.budget_table(_table(), "nope")
    with pytest.raises(ValueError, match="> 0"):
        VC.budget_table(_table(), "ref", fractions=(0.0,))


def test_budget_guide_is_computed_from_the_table():
    t = _table()
    text = VC.budget_guide(t, "ref", fractions=(0.05, 0.5))
    assert "**Small** — mAP 58.0 % at 40% of the cost; it loses 2.0 points against Ref" in text
    assert "nothing fits; the cheapest model is Tiny" in text
    assert "**Most accurate overall**: Big" in text
    assert "Pareto front of every axis**: Ref, Small, Tiny, Big" in text
    t.loc["small", "mAP"] = 65.0  # change the table, the guide follows
    assert "**Small** — mAP 65.0 %" in VC.budget_guide(t, "ref", fractions=(0.5,))


def test_plot_pareto_draws_every_axis():
    import matplotlib.pyplot as plt

    fig = VC.plot_pareto(_table(), "rank1")
    assert len(fig.axes) == 3
    assert [ax.get_xlabel() for ax in fig.axes] == list(VC.AXES.values())
    plt.close(fig)


def test_inference_params_counts_what_runs():
    class Net(nn.Module):
        def __init__(self):
            super().__init__()
            self.conv = nn.Conv2d(3, 4, 3)          # 3*4*9 + 4 = 112
            self.classifier = nn.Linear(4, 10)      # never runs in eval
            self.pool = nn.AdaptiveAvgPool2d(1)

        def forward(self, x):
            f = self.pool(self.conv(x)).flatten(1)
            return f if not self.training else self.classifier(f)

    assert C.inference_params(Net(), (8, 8)) == 112


def test_inference_params_dare_exit_and_graftednet():
    from reidbook.export import deployed_model
    from reidbook.models import build_model
    from reidbook.profile import count_params

    dare = build_model("dare", 10, profile="smoke")
    full = C.inference_params(deployed_model(dare, exit=4), (64, 32))
    assert full == count_params(dare)
    assert C.inference_params(deployed_model(dare, exit=1), (64, 32)) < full / 2
    g = build_model("graftednet", 10, profile="smoke")
    assert C.inference_params(deployed_model(g), (64, 32)) == count_params(deployed_model(g), exclude=("objective",))


def test_paper_rows_are_labelled():
    p = C.paper_rows()
    assert set(p.index) == set(C.PAPER)
    assert p.loc["mgn", "paper_mAP"] == 86.9 and p.loc["mgn", "paper_rank1"] == 95.7
    assert p.loc["graftednet", "paper_params_M"] == 4.60
    assert all(isinstance(s, str) and "paper 00" in s for s in p["paper_source"])
    ours = pd.DataFrame({"mAP": [1.0, 2.0]}, index=["baseline", "not_in_a_paper"])
    both = C.with_paper(ours)
    assert both.loc["baseline", "paper_mAP"] == 69.16 and math.isnan(both.loc["not_in_a_paper", "paper_mAP"])


def test_collect_unknown_contender():
    with pytest.raises(KeyError, match="unknown contender"):
        C.collect("smoke", include=["resnet9000"])


@pytest.mark.slow
def test_collect_and_measure_smoke():
    """Smoke-size models from the session zoo: every row has accuracy and cost; DaRe's exits grow."""
    cs = C.collect("smoke", include=["baseline", "pruned_l1_c1", "dare_exit1", "dare_exit2", "dare_exit4"])
    t = C.measure(cs, rounds=1, repeats=1)
    assert list(t.index) == ["baseline", "pruned_l1_c1", "dare_exit1", "dare_exit2", "dare_exit4"]
    assert t[["mAP", "rank1", "params_M", "MACs_M", "latency_ms"]].notna().all().all()
    assert t.loc["pruned_l1_c1", "MACs_M"] <= 0.5 * t.loc["baseline", "MACs_M"] + 1e-6
    assert t.loc["dare_exit1", "MACs_M"] < t.loc["dare_exit2", "MACs_M"] < t.loc["dare_exit4", "MACs_M"]
    again = C.collect("smoke", include=["pruned_l1_c1"])[0]  # loaded from the zoo: the same model
    x = torch.randn(2, 3, 64, 32)
    with torch.no_grad():
        torch.testing.assert_close(again.model(x), cs[1].model(x))


def test_map_agreement_known_values():
    rng = np.random.default_rng(0)
    a = rng.random((3, 8, 4))
    got = VC.map_agreement({"ref": a, "same": a.copy(), "flipped": 1 - a, "scaled": 0.5 * a + 0.1}, "ref")
    assert got["same"] == pytest.approx(1.0) and got["scaled"] == pytest.approx(1.0)
    assert got["flipped"] == pytest.approx(-1.0)


def test_cam_target_layer_is_the_last_spatial_map():
    from reidbook.export import deployed_model
    from reidbook.models import build_model
    from reidbook.models.backbones import ResNet
    from reidbook.models.layers import FireModule

    assert isinstance(VC.cam_target_layer(build_model("baseline", 10, profile="smoke"), (128, 64)), ResNet)
    assert isinstance(VC.cam_target_layer(build_model("graftednet", 10, profile="smoke"), (128, 64)), FireModule)
    dare = build_model("dare", 10, profile="smoke")
    exit2 = deployed_model(dare, exit=2)
    assert VC.cam_target_layer(exit2, (128, 64)) is exit2.stages["conv3"]  # the last stage this exit runs


def test_pick_pairs(smoke_dataset):
    qs, ms = VC.pick_pairs(smoke_dataset, n=3, seed=1)
    assert len({q[1] for q in qs}) == 3
    assert all(q[1] == m[1] and q[2] != m[2] for q, m in zip(qs, ms))
    with pytest.raises(ValueError, match="asked for"):
        VC.pick_pairs(smoke_dataset, n=10_000)


@pytest.mark.slow
def test_only_cached_leaves_out_what_the_zoo_lacks(tmp_path, monkeypatch):
    from reidbook import zoo

    monkeypatch.setenv("REIDBOOK_CACHE", str(tmp_path))  # an empty zoo: nothing is cached
    assert not C.is_cached("pcb", "smoke") and not C.is_cached("pcb_psfp_c1", "smoke")
    assert C.collect("smoke", include=["pcb", "pcb_psfp_c1"], only_cached=["pcb", "pcb_psfp_c1"]) == []
    zoo.get("pcb", "smoke")
    assert C.is_cached("pcb", "smoke") and not C.is_cached("pcb_psfp_c1", "smoke")
    with pytest.raises(ValueError, match="FD student"):
        C.is_cached("fd_student", "smoke")
