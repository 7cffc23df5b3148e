"""reidbook.eval.picks: the best / median / worst query by AP, on known values, with ties, with the valid mask of
a real evaluation, and with clear errors for inputs that cannot be picked from."""
from __future__ import annotations

import numpy as np
import pytest

from reidbook.eval import evaluate_rank
from reidbook.eval.picks import PICK_NAMES, pick_queries, query_ap


def test_known_values_without_a_mask():
    picks = pick_queries([0.5, 1.0, 0.1, 0.7, 0.3])
    assert list(picks) == list(PICK_NAMES)
    # ascending: 0.1 (2), 0.3 (4), 0.5 (0), 0.7 (3), 1.0 (1) -> median is position 5 // 2 = 2 -> query 0
    assert picks == {"best": 1, "median": 0, "worst": 2}


def test_even_count_takes_the_upper_median():
    assert pick_queries([0.4, 0.1, 0.9, 0.2])["median"] == 0      # ascending 0.1, 0.2, 0.4, 0.9 -> third


def test_ties_go_to_the_first_query():
    picks = pick_queries([0.2, 1.0, 0.2, 1.0, 0.5])
    assert picks["best"] == 1 and picks["worst"] == 0
    assert pick_queries([0.3, 0.3, 0.3])["median"] == 1             # stable order: 0, 1, 2


def test_one_query_is_all_three():
    assert pick_queries([0.25]) == {"best": 0, "median": 0, "worst": 0}


def test_the_mask_maps_back_to_query_positions():
    valid = np.array([False, True, True, False, True])
    picks = pick_queries([0.9, 0.1, 0.5], valid)
    assert picks == {"best": 1, "median": 4, "worst": 2}
    assert pick_queries([0.9, 0.1, 0.5], np.array([1, 2, 4])) == picks
    assert query_ap([0.9, 0.1, 0.5], valid, 4) == 0.5
    with pytest.raises(ValueError, match="no true match"):
        query_ap([0.9, 0.1, 0.5], valid, 3)


def test_with_a_real_evaluation():
    rng = np.random.default_rng(0)
    q_pids, q_cams = np.array([0, 1, 2, 3, 9]), np.zeros(5, dtype=int)          # pid 9 has no match
    g_pids, g_cams = np.repeat([0, 1, 2, 3, 4], 3), np.ones(15, dtype=int)
    result = evaluate_rank(rng.random((5, 15)), q_pids, g_pids, q_cams, g_cams)
    assert not result.valid[4]
    picks = pick_queries(result.all_AP, result.valid)
    assert 4 not in picks.values()
    aps = {name: query_ap(result.all_AP, result.valid, q) for name, q in picks.items()}
    assert aps["best"] == result.all_AP.max() and aps["worst"] == result.all_AP.min()
    assert aps["worst"] <= aps["median"] <= aps["best"]


@pytest.mark.parametrize("ap, valid, message", [
    ([], None, "empty"),
    ([0.1, np.nan], None, "non-finite"),
    ([[0.1, 0.2]], None, "1-D"),
    ([0.1, 0.2], np.array([True, False, False]), "valid marks 1 queries but ap_per_query has 2"),
    ([0.1, 0.2], np.array([2, 1]), "increasing"),
    ([0.1, 0.2], np.array([0.0, 1.0]), "bool mask"),
])
def test_bad_input_is_named(ap, valid, message):
    with pytest.raises(ValueError, match=message):
        pick_queries(ap, valid)
