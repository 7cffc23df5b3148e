"""Chapter 08's additions: the budget slider's pure functions (at its extremes), the equal-budget caveat,
measured attention per model, MGN's distillation loss (known values) and its training wrapper, the ledger's
views when there is no ledger."""
from __future__ import annotations

import math

import numpy as np
import pandas as pd
import pytest
import torch
from support.toy_table import toy_table
from torch import nn

from reidbook import compare as C
from reidbook.distill import kd
from reidbook.viz import compare as VC


def _table(images=True):
    t = toy_table()
    if images:
        t["images_seen"] = [1000.0, 1500.0, 1000.0, np.nan, 2000.0]
    return t


# ---------------------------------------------------------------------------------------------
# The budget slider
# ---------------------------------------------------------------------------------------------
def test_budget_pick_at_the_slider_extremes():
    t = _table()
    low = VC.budget_pick(t, 0.02, "params_M", "ref")          # 0.2 M: nothing fits
    assert low["best"] is None and low["n_fit"] == 0 and "nothing fits; the cheapest model is Tiny" in low["text"]
    high = VC.budget_pick(t, 3.0, "params_M", "ref")          # 30 M: everything fits, the most accurate wins
    assert high["best"] == "big" and high["n_fit"] == 5 and "take **Big**" in high["text"]
    assert "2.0×" in high["text"] and "more* training images" in high["text"]   # its caveat: twice the images
    same = VC.budget_pick(t, 1.0, "latency_ms", "ref")
    assert same["best"] == "ref" and "Equal budgets" not in same["text"]        # the reference needs no caveat
    mid = VC.budget_pick(t, 0.5, "MACs_M", "ref")             # ≤ 50 M: Small (58) beats Worse (50), Tiny (40)
    assert mid["best"] == "small" and mid["delta"] == pytest.approx(-2.0)
    with pytest.raises(KeyError, match="cost axis"):
        VC.budget_pick(t, 0.5, "watts", "ref")


def test_budget_range_covers_every_axis_and_fraction():
    t = _table()
    r = VC.budget_range(t, (0.05, 0.5, 3.0), reference="ref")
    assert list(r.index) == ["5%", "50%", "300%"] and list(r.columns) == list(VC.AXES.values())
    assert r.loc["5%", VC.AXES["params_M"]] == "—"
    assert r.loc["300%", VC.AXES["MACs_M"]] == "Big (70.0)"
    assert r.loc["50%", VC.AXES["params_M"]] == "Small (58.0)"


def test_plot_budget_range_one_panel_per_axis_and_the_mark():
    import matplotlib.pyplot as plt

    fig = VC.plot_budget_range(_table(), fractions=(0.1, 0.5, 1.0, 2.0), reference="ref", mark=(0.5, "MACs_M"))
    assert len(fig.axes) == 3
    red = [ln for ln in fig.axes[1].lines if ln.get_color() == "tab:red"]
    assert len(red) == 1 and red[0].get_xdata()[0] == 0.5
    plt.close(fig)


def test_budget_caveat_says_who_trained_longer():
    t = _table()
    text = VC.budget_caveat(t, ["small", "tiny", "worse", "big"], "ref")
    assert "Small (1.5×)" in text and "Big (2.0×)" in text
    assert "The same number as Ref: Tiny" in text and "Not recorded: Worse" in text
    assert VC.budget_caveat(_table(images=False), ["small"], "ref") == ""
    guide = VC.budget_guide(t, "ref", fractions=(0.5, 3.0))
    assert "**Equal budgets?**" in guide and "Big (2.0×)" in guide
    assert "**Equal budgets?**" not in VC.budget_guide(_table(images=False), "ref")


def test_budget_guide_slider_static_form_shows_the_range():
    pytest.importorskip("ipywidgets")
    from reidbook.widgets import budget_guide_slider

    w = budget_guide_slider(_table(), reference="ref")
    html = w._repr_mimebundle_()["text/html"]
    assert html.count("<img") == 1 and "Small (58.0)" in html and "Big (70.0)" in html
    with pytest.raises(KeyError, match="reference"):
        budget_guide_slider(_table(), reference="nope")
    with pytest.raises(ValueError, match="lo < hi"):
        budget_guide_slider(_table(), reference="ref", lo=2.0, hi=1.0)


# ---------------------------------------------------------------------------------------------
# Attention per model
# ---------------------------------------------------------------------------------------------
def test_attention_table_known_values():
    parts = np.zeros((8, 4), np.uint8)
    parts[2:6, 1:3] = 2                         # the person: 8 of 32 pixels
    on = (parts > 0).astype(float)[None]          # a map exactly on the person
    flat = np.ones((1, 8, 4))                     # uniform: chance
    empty = np.zeros((1, 8, 4))                   # an empty CAM
    raw = {"ref": on, "uniform": flat}
    cams = {"ref": on, "uniform": empty}
    t = VC.attention_table(raw, cams, [parts], [parts], reference="ref")
    assert t.loc["ref", "on_person_response"] == pytest.approx(1.0)
    assert t.loc["uniform", "on_person_response"] == pytest.approx(0.25)
    assert t.loc["uniform", "chance_query"] == pytest.approx(0.25)
    assert math.isnan(t.loc["uniform", "on_person_gradcam"])
    assert t.loc["ref", "agreement_response"] == pytest.approx(1.0)


# ---------------------------------------------------------------------------------------------
# MGN distilled: similarity-preserving KD
# ---------------------------------------------------------------------------------------------
def test_similarity_kd_loss_known_values():
    a = torch.tensor([[1.0, 0.0], [0.0, 1.0]])
    assert kd.similarity_kd_loss(a, a).item() == pytest.approx(0.0)
    # a wider teacher with the same pairwise similarities costs nothing: only similarities are matched
    assert kd.similarity_kd_loss(a, torch.cat([a, torch.zeros(2, 3)], 1) * 3).item() == pytest.approx(0.0, abs=1e-7)
    # student sees both images alike (G̃ rows [1/√2, 1/√2]), teacher tells them apart (rows [1, 0], [0, 1])
    same = torch.tensor([[1.0, 0.0], [1.0, 0.0]])
    want = 2 * ((1 - 2 ** -0.5) ** 2 + 0.5) / 4
    assert kd.similarity_kd_loss(same, a).item() == pytest.approx(want)
    with pytest.raises(ValueError, match="same images"):
        kd.similarity_kd_loss(torch.ones(3, 2), torch.ones(2, 2))


class _Net(nn.Module):
    def __init__(self, d):
        super().__init__()
        self.fc = nn.Linear(12, d)
        self.bn = nn.BatchNorm1d(d)
        self.cls = nn.Linear(d, 3)

    def forward(self, x):
        f = self.bn(self.fc(x.flatten(1)))
        return {"logits": [self.cls(f)], "triplet": [f]} if self.training else f


def test_teacher_student_keeps_the_teacher_frozen_and_in_eval():
    torch.manual_seed(0)
    pair = kd.TeacherStudent(_Net(4), _Net(6), teacher_size=(2, 2)).train()
    stats = pair.teacher.bn.running_mean.clone()
    x = torch.randn(5, 3, 2, 2)
    out = pair(x)
    assert set(out) >= {"logits", "triplet", "kd_student", "kd_teacher"}
    assert out["kd_student"].shape == (5, 4) and out["kd_teacher"].shape == (5, 6)
    assert not pair.teacher.training and not any(p.requires_grad for p in pair.teacher.parameters())
    torch.testing.assert_close(pair.teacher.bn.running_mean, stats)           # teacher statistics untouched
    crit = kd.KDCriterion(lambda o, p: (o["logits"][0].sum() * 0, {"ce": 0.0}), weight=2.0)
    total, parts = crit(out, torch.zeros(5, dtype=torch.long))
    assert total.item() == pytest.approx(2.0 * parts["kd"]) and parts["kd"] > 0
    total.backward()
    assert pair.student.fc.weight.grad is not None and pair.teacher.fc.weight.grad is None
    assert pair.eval()(x).shape == (5, 4)                                       # eval: the student's embedding


# ---------------------------------------------------------------------------------------------
# The ledger's views, without a ledger
# ---------------------------------------------------------------------------------------------
def test_ledger_state_without_a_ledger(tmp_path):
    ledger, sentence = C.ledger_state("quick", path=tmp_path / "none.json")
    assert ledger is None and "not yet run" in sentence and "make claims" in sentence


def test_new_contenders_are_known():
    for key in ("mgn_pruned_l1_c1", "mgn_kd_r18", "resnet18"):
        assert key in C.CONTENDERS
    assert C.CONTENDERS["mgn_pruned_l1_c1"][2] == "mgn" and C.CONTENDERS["mgn_kd_r18"][2] == "mgn"
    with pytest.raises(ValueError, match="MGN-distilled"):
        C.is_cached("mgn_kd_r18", "smoke")


@pytest.mark.slow
def test_mgn_compressed_smoke():
    """MGN pruned (backbone and branches, one-shot L1 to C1) and distilled into ResNet-18 in smoke: both smaller
    than MGN, the student trained on exactly as many images as its control, and both loaded again from the zoo."""
    cs = C.collect("smoke", include=["mgn", "mgn_pruned_l1_c1", "resnet18", "mgn_kd_r18"])
    t = C.measure(cs, rounds=1, repeats=1)
    assert t.loc["mgn_pruned_l1_c1", "MACs_M"] <= 0.5 * t.loc["mgn", "MACs_M"] + 1e-6
    assert t.loc["mgn_kd_r18", "params_M"] < 0.5 * t.loc["mgn", "params_M"]
    assert t.loc["mgn_kd_r18", "images_seen"] == t.loc["resnet18", "images_seen"] > 0
    assert t.loc["mgn_pruned_l1_c1", "images_seen"] > t.loc["mgn", "images_seen"]   # MGN's + its fine-tuning
    assert t[["mAP", "rank1"]].notna().all().all()
    again = {c.key: c for c in C.collect("smoke", include=["mgn_pruned_l1_c1", "mgn_kd_r18"])}
    x = torch.randn(2, 3, 64, 32)
    with torch.no_grad():
        for c in cs[1:]:
            if c.key in again:
                torch.testing.assert_close(again[c.key].model(x), c.model(x))
    bg = C.background_table(cs, "smoke")
    assert list(bg.index) == list(t.index) and bg.filter(like="mAP").notna().all().all()


def _mgn_table():
    return pd.DataFrame({
        "label": ["MGN", "MGN pruned", "R18", "R18 ← MGN"], "mAP": [50.0, 44.0, 40.0, 43.5],
        "rank1": [70.0, 65.0, 60.0, 62.0], "params_M": [10.0, 5.0, 2.0, 2.0], "MACs_M": [400.0, 190.0, 90.0, 90.0],
        "latency_ms": [9.0, 6.0, 2.0, 2.0], "images_seen": [4000.0, 5000.0, 3000.0, 3000.0]},
        index=["mgn", "mgn_pruned_l1_c1", "resnet18", "mgn_kd_r18"])


def test_mgn_compression_sentences_are_computed():
    rows, text = C.mgn_compression(_mgn_table())
    assert list(rows.index) == ["mgn", "mgn_pruned_l1_c1", "resnet18", "mgn_kd_r18"]
    assert "48% of MGN's multiply-adds and 50% of its parameters, mAP 44.0 % against MGN's 50.0 % (-6.0 points)" in text
    assert "the same 3,000 training images" in text and "reaches 40.0 %: the teacher adds +3.5 points" in text
    t = _mgn_table()
    t.loc["mgn_kd_r18", "images_seen"] = 6000.0
    assert "(unequal)" in C.mgn_compression(t)[1]
    assert "nothing to compare" in C.mgn_compression(t.drop(index="mgn"))[1]


def test_describe_attention_reads_the_table():
    att = pd.DataFrame({"on_person_response": [0.5, 0.7, 0.3], "chance_query": [0.4, 0.4, 0.4],
                        "on_person_gradcam": [0.5, 0.6, 0.2], "chance_match": [0.4, 0.4, 0.4],
                        "agreement_response": [1.0, 0.8, 0.1], "agreement_gradcam": [1.0, 0.5, 0.2]},
                       index=pd.Index(["Ref", "A", "B"], name="model"))
    bg = pd.DataFrame({"label": ["Ref", "A", "B"], "mAP": [50.0, 55.0, 30.0], "mAP_swap": [45.0, 54.0, 10.0],
                       "drop": [5.0, 1.0, 20.0]}, index=["ref", "a", "b"])
    j = C.attention_and_background(att, bg)
    assert j.loc["A", "on_person_response"] == pytest.approx(70.0) and j.loc["B", "drop (points)"] == 20.0
    text = C.describe_attention(j, "Ref")
    assert "most **A** (70 %" in text and "least **B** (30 %)" in text
    assert "2 of 3 models put more than 1.1× chance on the person" in text
    assert "costs **B** 20.0 mAP points" in text and "**A** 1.0 (the least)" in text
    assert "ρ between on-person share and drop is -1.00: models that look more at the person lose less" in text
    assert "highest **A** (+0.80), lowest **B** (+0.10)" in text


def test_departures_of_the_compared_models():
    d = C.departures_of("quick", ["baseline", "mgn", "mgn_pruned_l1_c1", "mgn_kd_r18", "dare_exit1", "dare_exit4"])
    assert {"baseline", "mgn", "dare", "pruned models", "ResNet-18 ← MGN"} <= set(d["model"])
    assert (d["model"] == "dare").sum() == len(__import__("reidbook.presets", fromlist=["get_preset"])
                                               .get_preset("dare", "quick").departures)   # DaRe's once, not per exit
    assert list(d.columns) == ["model", "what", "paper", "ours", "why", "measured effect"]


def test_budget_matched_and_claims_summary_from_a_ledger():
    from reidbook.claims.ledger import Ledger

    def cfg(label, model, mean, seen):
        return {"label": label, "model": model, "metric": None, "mean": mean, "std": 0.01, "values": [mean] * 3,
                "images_seen": [seen] * 3, "cpu_seconds": 60.0}

    claims = {
        "mgn.vs_baseline": {"paper": "mgn", "where": "Table 5", "statement": "MGN beats the baseline.", "metric": "mAP",
                            "status": "runnable", "budget": {"equal": True}, "verdict": {"verdict": "reproduced"},
                            "configs": [cfg("MGN", "mgn", 0.5, 4096), cfg("baseline", "baseline", 0.45, 4096)]},
        "x.unequal": {"paper": "fd", "where": "T3", "statement": "Unequal.", "metric": "mAP", "status": "runnable",
                      "budget": {"equal": False}, "verdict": {"verdict": "inconclusive"},
                      "configs": [cfg("a", "fd_student", 0.5, 1), cfg("b", "fd_student", 0.4, 2)]},
        "y.not": {"paper": "dare", "where": "F5", "statement": "Not runnable.", "metric": "mAP",
                  "status": "not runnable: too slow", "configs": []},
    }
    ledger = Ledger({"settings": {"profile": "quick", "seeds": [0, 1, 2]}, "provenance": {}, "claims": claims})
    bm = C.budget_matched(ledger)
    assert list(bm["claim"]) == ["mgn.vs_baseline"] * 2                 # only equal budgets
    assert bm["mean"].tolist() == pytest.approx([50.0, 45.0]) and bm["images_seen"].tolist() == [4096, 4096]
    sentence, df = C.claims_summary(ledger)
    assert sentence == "3 claims in the ledger: 1 reproduced, 1 inconclusive, 1 not runnable."
    head = C.budget_matched_headline(ledger, claims=("mgn.vs_baseline", "x.unequal", "z.missing"))
    assert "- MGN 50.0 ± 1.0 % mAP (4,096 images) vs baseline 45.0 ± 1.0 % mAP (4,096 images): **reproduced**" in head
    assert "3 seeds" in head and "Not in the ledger at equal budgets yet: `x.unequal`, `z.missing`" in head
    assert list(df["verdict"]) == ["reproduced", "inconclusive", "not runnable"]


def test_the_parity_exercise_uses_the_export_tolerance():
    from reidbook import export
    from reidbook.teach import ch08

    assert ch08.TOLERANCE == export.TOLERANCE
