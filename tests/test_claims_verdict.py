"""The verdict rule (reidbook.claims.verdicts) on known values, and the registry's shape."""
import math

import pytest
from scipy import stats

from reidbook.claims import CLAIMS, get_claim, verdict
from reidbook.claims.registry import BUDGET_FIELDS, DIRECTIONS, PAPERS


def test_separated_seeds_reproduce():
    v = verdict([0.60, 0.61, 0.62], [0.50, 0.51, 0.52])
    assert v.verdict == "reproduced"
    assert v.diff == pytest.approx(0.10)
    # equal variances 1e-4 each: se = sqrt(2e-4/3); Welch df = 4 (equal n, equal variance)
    assert v.se == pytest.approx(math.sqrt(2e-4 / 3))
    assert v.df == pytest.approx(4.0)
    half = stats.t.ppf(0.975, 4) * v.se
    assert v.ci == pytest.approx((0.10 - half, 0.10 + half))


def test_overlapping_seeds_are_inconclusive():
    v = verdict([0.50, 0.60, 0.55], [0.52, 0.58, 0.50])
    assert v.verdict == "inconclusive"
    assert v.ci[0] < 0 < v.ci[1]


def test_reversed_seeds_contradict():
    assert verdict([0.50, 0.51, 0.52], [0.60, 0.61, 0.62]).verdict == "contradicted"


def test_less_is_the_mirror_of_greater():
    assert verdict([10.0, 11.0, 12.0], [20.0, 21.0, 22.0], direction="less").verdict == "reproduced"
    assert verdict([20.0, 21.0, 22.0], [10.0, 11.0, 12.0], direction="less").verdict == "contradicted"


def test_noninferiority_uses_the_margin():
    a, b = [0.595, 0.600, 0.605], [0.600, 0.605, 0.610]   # a is 0.005 worse, noise ~0.005
    assert verdict(a, b, direction="noninferior", margin=0.05).verdict == "reproduced"
    assert verdict(a, b, direction="greater").verdict == "inconclusive"
    far = [0.40, 0.41, 0.42]
    assert verdict(far, b, direction="noninferior", margin=0.05).verdict == "contradicted"


def test_factor_scales_the_second_configuration():
    # 4.6 M vs 24.2 M parameters: under a quarter (deterministic counts, no spread needed)
    v = verdict([4.6], [24.2], direction="less", factor=0.25, deterministic=True)
    assert v.verdict == "reproduced" and v.diff == pytest.approx(4.6 - 6.05)
    assert verdict([7.0], [24.2], direction="less", factor=0.25, deterministic=True).verdict == "contradicted"


def test_one_seed_is_inconclusive_and_bad_input_is_refused():
    assert verdict([0.9], [0.1]).verdict == "inconclusive"
    with pytest.raises(ValueError, match="non-finite"):
        verdict([0.5, float("nan")], [0.4, 0.5])
    with pytest.raises(ValueError, match="no values"):
        verdict([], [0.4, 0.5])
    with pytest.raises(ValueError, match="direction"):
        verdict([0.5, 0.6], [0.4, 0.5], direction="bigger")


def test_registry_is_complete_data():
    ids = [c.id for c in CLAIMS]
    assert len(ids) == len(set(ids))
    for c in CLAIMS:
        assert c.paper in PAPERS and c.direction in DIRECTIONS and c.where and c.statement
        assert c.status == "runnable" or c.status.startswith("not runnable: ")
        vals = c.paper_numbers.get("values")
        assert c.paper_numbers.get("source") and isinstance(vals, list) and len(vals) == 2
    # the list, at least
    for cid in ("mgn.vs_global", "mgn.vs_baseline", "mgn.triplet_helps", "graftednet.al_helps",
                "graftednet.mf_helps", "graftednet.pf_helps", "graftednet.g8_vs_g1", "graftednet.vs_resnet50_params",
                "graftednet.vs_resnet50_latency", "fd.vs_control", "fd.all_views_vs_holistic",
                "survey.pruned_r50_vs_r18", "survey.scenario1_vs_2", "survey.pcb_bfe_vs_all",
                "dare.fusion_vs_best_stage", "dare.deep_supervision_early", "dare.vs_seq_ensemble",
                "dare.distance_vs_random", "dare.margin_vs_random", "baseline.triplet_helps_softmax",
                "baseline.softmax_helps_triplet"):
        get_claim(cid)
    with pytest.raises(KeyError, match="mgn.vs_global"):
        get_claim("mgn.nonsense")
    # the paper's Table 5 numbers, as read from the paper
    assert get_claim("mgn.vs_global").paper_numbers["values"] == [86.9, 75.0]
    assert set(BUDGET_FIELDS) == {"height", "width", "P", "K", "epochs"}
