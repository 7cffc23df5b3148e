"""Chapter 07's views over the whole budget range (``reidbook.viz.anytime.budget_range_view``: the budget
slider's static form) and the routing comparisons its sentences are generated from
(``reidbook.eval.anytime.routing_gaps``, ``chord_deviation``, ``budget_grid(include_exits=True)``)."""
from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
import torch

from reidbook.eval import anytime as A


def _toy_eval(seed: int = 0, n_id: int = 12, dims: int = 8) -> A.AnytimeEval:
    """Three exits whose embeddings get less noisy with depth (costs 1, 2, 3)."""
    rng = np.random.default_rng(seed)
    centres = rng.normal(size=(n_id, dims)) * 2
    q_pids, g_pids = np.repeat(np.arange(n_id), 2), np.repeat(np.arange(n_id), 3)
    qf, gf = [], []
    for noise in (3.0, 1.5, 0.5):
        qf.append(torch.tensor(centres[q_pids] + rng.normal(size=(len(q_pids), dims)) * noise))
        gf.append(torch.tensor(centres[g_pids] + rng.normal(size=(len(g_pids), dims)) * noise))
    return A.AnytimeEval.from_features(qf, gf, [1.0, 2.0, 3.0], q_pids, g_pids, np.zeros(len(q_pids), int),
                                       np.ones(len(g_pids), int), names=["e1", "e2", "e3"])


def test_budget_grid_with_the_exits_bends_where_the_chord_does():
    c = [1.0, 1.5, 4.0]
    np.testing.assert_allclose(A.budget_grid(c, 4), [1, 2, 3, 4])
    np.testing.assert_allclose(A.budget_grid(c, 4, include_exits=True), [1, 1.5, 2, 3, 4])
    ev = _toy_eval()
    curve = A.budgeted_curve(ev, A.budget_grid(ev.costs, 4, include_exits=True), rules=("random",))
    assert A.chord_deviation(ev, curve) == pytest.approx(0, abs=1e-12)  # the exact expectation is the chord
    # simulated coins are off the line by their noise; a table without random rows has no chord
    sim = A.budgeted_curve(ev, [1.5, 2.5], rules=("random",), random_expected=False, seeds=(1,))
    assert A.chord_deviation(ev, sim) > 0
    assert np.isnan(A.chord_deviation(ev, A.budgeted_curve(ev, [1.5], rules=("margin",))))


def test_routing_gaps_on_a_hand_made_table():
    rows = []
    for b, r, m, d in [(1, .2, .2, .2), (2, .5, .6, .4), (3, .6, .7, .6), (4, .8, .8, .8)]:
        rows += [{"rule": "random", "budget": b, "rank1": r}, {"rule": "margin", "budget": b, "rank1": m},
                 {"rule": "distance", "budget": b, "rank1": d}]
    gaps = A.routing_gaps(pd.DataFrame(rows)).set_index("rule")
    # only budgets 2 and 3 count (at C_1 and C_S every rule uses the same single exit)
    assert gaps.loc["margin", "budgets"] == 2 and gaps.loc["margin", "above"] == 2
    assert gaps.loc["margin", "mean_gap"] == pytest.approx(0.1)
    assert gaps.loc["distance", "below"] == 1 and gaps.loc["distance", "above"] == 0
    assert gaps.loc["distance", "min_gap"] == pytest.approx(-0.1)
    assert gaps.loc["distance", "max_gap"] == pytest.approx(0)
    assert gaps.loc["margin", "mid_gap"] == pytest.approx(0.1)  # nearest the middle (2.5): budget 2
    with pytest.raises(ValueError, match="no 'random' rows"):
        A.routing_gaps(pd.DataFrame(rows[1:2]))


@pytest.mark.parametrize("rule", A.ROUTINGS)
def test_budget_range_at_its_extremes(rule):
    import matplotlib.pyplot as plt

    from reidbook.viz.anytime import budget_range_data, budget_range_view

    ev = _toy_eval()
    data = budget_range_data(ev, rule, n=5)
    assert [d["budget"] for d in data] == pytest.approx([1.0, 1.5, 2.0, 2.5, 3.0])
    np.testing.assert_allclose(data[0]["realised"], [1, 0, 0])    # C_1: every query at the first exit
    np.testing.assert_allclose(data[-1]["realised"], [0, 0, 1])   # C_S: every query at the last
    assert data[0]["rank1"] == pytest.approx(ev.results[0].rank(1))
    assert data[-1]["rank1"] == pytest.approx(ev.results[-1].rank(1))
    curve = A.budgeted_curve(ev, A.budget_grid(ev.costs, 5, include_exits=True))
    for c in (None, curve):
        fig = budget_range_view(ev, c, rule, n=5)
        assert len(fig.axes) == 6   # five small multiples and the curve
        star = [ln for ln in fig.axes[-1].lines if ln.get_marker() == "*"][0]
        np.testing.assert_allclose(star.get_xdata(), [d["cost"] / 1e6 for d in data])
        plt.close(fig)
    with pytest.raises(ValueError, match="whole number ≥ 2"):
        budget_range_data(ev, rule, n=1)
