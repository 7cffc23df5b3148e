"""Chapter 06's measures on known values: attention of several models on the same images
(reidbook.eval.attention.compare_attention, map_agreement, feature_map), the sentences generated from it and
from Table 5 (reidbook.prune.verdicts), the before/after figure, and chapter 06's teaching data."""
from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
import torch
from torch import nn

from reidbook.eval.attention import compare_attention, feature_map, map_agreement, response_energy
from reidbook.prune.verdicts import describe_attention_change, describe_table5


class _Channel(nn.Module):
    """A 'backbone' whose feature map is ``scale · |x[:, c]|`` (one channel of the image, stride 1)."""

    def __init__(self, c: int, scale: float = 1.0):
        super().__init__()
        self.c, self.w = c, nn.Parameter(torch.tensor(float(scale)))

    def forward(self, x):
        return (self.w * x[:, self.c:self.c + 1].abs())


class _Net(nn.Module):
    def __init__(self, c: int, scale: float = 1.0):
        super().__init__()
        self.backbone = _Channel(c, scale)


def _toy():
    """Two 8×4 images: the person is the top half (part label 2 = torso); channel 0 equals the person mask,
    channel 1 is uniform, channel 2 is the background only."""
    parts = np.zeros((8, 4), dtype=np.int64)
    parts[:4] = 2
    person = torch.from_numpy(parts > 0).float()
    img = torch.stack([person + 1e-9, torch.ones(8, 4), 1 - person + 1e-9])
    return torch.stack([img, img]), [parts, parts]


def test_map_agreement_known_values():
    a = np.arange(12, dtype=float).reshape(3, 4)
    assert map_agreement(a, a) == pytest.approx(1.0)
    assert map_agreement(a, 2 * a + 5) == pytest.approx(1.0)        # scale and offset do not matter
    assert map_agreement(a, a.max() - a) == pytest.approx(-1.0)      # the opposite places light up
    assert np.isnan(map_agreement(a, np.ones((3, 4))))              # a constant map has no pattern
    assert map_agreement(np.kron(a, np.ones((2, 2))), a) > 0.95      # b is resized to a's size first


def test_feature_map_needs_a_backbone_or_feature_map():
    x, _ = _toy()
    assert feature_map(_Net(0), x).shape == (2, 1, 8, 4)
    assert response_energy(_Net(0), x).shape == (2, 8, 4)
    with pytest.raises(TypeError, match="neither .feature_map"):
        feature_map(nn.Linear(2, 2), x)


def test_feature_map_of_the_course_models():
    from reidbook.models import build_model

    for name in ("baseline", "pcb"):
        m = build_model(name, 5, profile="smoke")
        f = feature_map(m, torch.randn(2, 3, 96, 32))
        assert f.dim() == 4 and f.shape[0] == 2
        assert m.training                                             # the model's mode is restored


def test_compare_attention_known_values():
    x, parts = _toy()
    rows = {r["model"]: r for r in compare_attention(
        {"on person": _Net(0), "uniform": _Net(1), "background": _Net(2), "on person ×3": _Net(0, 3.0)}, x, parts)}
    on, uni, bg, scaled = rows["on person"], rows["uniform"], rows["background"], rows["on person ×3"]
    assert on["on_person"] == pytest.approx(1.0, abs=1e-6) and on["chance"] == pytest.approx(0.5)
    assert uni["on_person"] == pytest.approx(0.5, abs=1e-6)           # a uniform map gets the area share
    assert bg["on_person"] == pytest.approx(0.0, abs=1e-6)
    assert on["delta_on_person"] == 0.0 and on["agreement"] == pytest.approx(1.0)
    assert bg["delta_on_person"] == pytest.approx(-1.0, abs=1e-6) and bg["agreement"] == pytest.approx(-1.0)
    assert np.isnan(uni["agreement"])                                 # constant map
    assert scaled["agreement"] == pytest.approx(1.0) and scaled["more_on_person"] == 0.0
    assert bg["more_on_person"] == 0.0 and on["top_part"] == "torso"
    ref_bg = {r["model"]: r for r in compare_attention({"on": _Net(0), "bg": _Net(2)}, x, parts, reference="bg")}
    assert ref_bg["on"]["delta_on_person"] == pytest.approx(1.0, abs=1e-6) and ref_bg["on"]["more_on_person"] == 1.0
    with pytest.raises(KeyError, match="reference"):
        compare_attention({"a": _Net(0)}, x, parts, reference="b")
    with pytest.raises(ValueError, match="one part map per image"):
        compare_attention({"a": _Net(0)}, x, parts[:1])


def _rows(**on):
    return [{"model": k, "on_person": v, "chance": 0.4, "lift": v / 0.4, "top_part": "torso", "agreement": 0.9,
             "more_on_person": 0.5} for k, v in on.items()]


def test_describe_attention_change_from_the_numbers():
    lines = describe_attention_change(_rows(R50=0.50, L1=0.51, PSFP=0.49), "R50", ["L1", "PSFP"])
    assert lines[0].startswith("R50 puts 50% of its response energy on the person, who covers 40% of the pixels "
                               "(1.25× what a map")
    assert "L1: 51% on the person (+1.0 points), maps agree with R50's at r = 0.90" in lines[1]
    assert lines[-1] == ("pruning barely moved attention: every pruned model's on-person share is within 2 points "
                         "of R50's (largest change +1.0 points)")
    moved = describe_attention_change(_rows(R50=0.50, L1=0.60, PSFP=0.40, AB=0.505), "R50", ["L1", "PSFP", "AB"])
    assert moved[-1] == ("pruning moved attention towards the person for L1; away from it for PSFP; within 2 points "
                         "for AB")
    with pytest.raises(KeyError, match="no attention row"):
        describe_attention_change(_rows(R50=0.5), "R50", ["L1"])


def test_describe_table5_from_the_numbers():
    t5 = pd.DataFrame({"kind": ["network", "network", "pruned R50", "pruned R50"], "mAP": [50.0, 40.0, 38.0, 43.5],
                       "MACs_M": [400.0, 180.0, 200.0, 205.0]}, index=["ResNet-50", "ResNet-18", "L1", "PSFP"])
    lines = describe_table5(t5)
    assert lines[0] == ("best pruned ResNet-50: PSFP, mAP 43.5 at 205 M multiply-adds; ResNet-18: mAP 40.0 at 180 M "
                        "→ the pruned model is 3.5 points above ResNet-18")
    assert lines[1] == ("1 of 2 pruned ResNet-50s beat ResNet-18; the un-pruned ResNet-50 itself: mAP 50.0 "
                        "(+10.0 points vs ResNet-18)")
    t5.loc["PSFP", "mAP"] = 39.0
    assert "1.0 points below ResNet-18" in describe_table5(t5)[0]
    with pytest.raises(KeyError, match="ResNet-34"):
        describe_table5(t5, small="ResNet-34")


def test_plot_model_responses_draws_one_column_per_model():
    import matplotlib

    matplotlib.use("Agg")
    from reidbook.viz.attention import plot_model_responses

    x, _ = _toy()
    fig = plot_model_responses({"a": _Net(0), "b": _Net(2)}, x, max_images=1)
    assert len(fig.axes) == 3                                         # image + two models, one row
    import matplotlib.pyplot as plt

    plt.close(fig)


def test_chapter06_prediction_outcome_and_exercise_contexts():
    from reidbook.teach import PREDICTIONS, _load_all
    from reidbook.teach.core import EXERCISES

    _load_all()
    p = PREDICTIONS["06.pruned_vs_small"]
    assert [p.outcome(best_pruned=b, small=40.0) for b in (41.5, 40.9, 39.1, 38.5)] == [0, 1, 1, 2]
    assert {e for e in EXERCISES if e.startswith("06.")} == {"06.prc_update", "06.recon_unknowns",
                                                            "06.balanced_lambda", "06.psfp_schedule"}
    # the chapter passes a real consumer conv of the baseline: the count scales with it
    ex = EXERCISES["06.recon_unknowns"]
    conv = nn.Conv2d(64, 64, 3, bias=False)
    assert ex.solution(conv=conv, n_keep=32) == (32, 64 * 32 * 9)
    assert ex.check((32, 64 * 32 * 9), conv=conv, n_keep=32).ok
    assert not ex.check((32, 32 * 9), conv=conv, n_keep=32).ok


def test_describe_reconstruction_and_single_scenario_tables():
    from reidbook.prune.verdicts import describe_reconstruction, describe_scenarios

    recs = [{"unit": "a", "err_plain": 0.4, "err_recon": 0.1}, {"unit": "b", "err_plain": 0.2, "err_recon": 0.25},
            {"unit": "c", "err_plain": 0.3, "err_recon": 0.2}, {"unit": "fine-tune", "loss": 1.0}]
    lines = describe_reconstruction(recs)
    assert lines[0] == ("least squares lowered the next layer's relative error at 2 of 3 units (median 0.300 → 0.200 "
                        "on the calibration samples)")
    assert lines[1] == "hardest unit after reconstruction: b (0.200 → 0.250)"
    assert describe_reconstruction([{"unit": "a", "err_plain": 0.4}]) == ["no unit was reconstructed (selection only)"]
    # chapter 06 in quick: only scenario 3 (section 2's models) — nothing to compare, said so
    only3 = pd.DataFrame({"scenario": [3, 3], "method": ["l1", "psfp"], "target": [0.5, 0.5], "mAP": [4.0, 5.0]})
    assert describe_scenarios(only3, source="ours: ") == [
        "ours: only scenario 3 measured for each method and target at this profile: no scenarios to compare"]
