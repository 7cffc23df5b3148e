"""The pruning chapters' evaluation subset (reidbook.eval.subset): which identities it keeps, per profile."""
from __future__ import annotations

import types

import pytest

from reidbook.eval.subset import EvaluationSet, evaluation_set, evaluation_subset

DS = types.SimpleNamespace(query=[("a", 3, 0), ("b", 1, 0), ("c", 2, 1)],
                           gallery=[("d", 1, 1), ("e", 3, 1), ("f", 9, 0), ("g", 2, 0)])


def test_subset_keeps_the_first_identities_queries_and_gallery():
    sub = evaluation_subset(DS, 2)
    assert [q[1] for q in sub.query] == [1, 2] and [g[1] for g in sub.gallery] == [1, 2]
    assert sub.n_ids == 2 and "first 2 test identities" in sub.summary()
    assert sub.summary().startswith("evaluation set: 2 queries, 2 gallery images")
    whole = evaluation_subset(DS, None)
    assert len(whole.gallery) == 4 and whole.n_ids is None and "whole test split" in whole.summary()


def test_evaluation_set_restricts_only_in_quick():
    assert evaluation_set(DS, "quick", quick_ids=1).query == [("b", 1, 0)]
    for profile in ("smoke", "full"):
        assert len(evaluation_set(DS, profile, quick_ids=1).gallery) == 4


def test_bad_input_is_named():
    with pytest.raises(ValueError, match="n_ids"):
        evaluation_subset(DS, 0)
    with pytest.raises(ValueError, match="profile"):
        evaluation_set(DS, "medium")
    with pytest.raises(TypeError, match=r"\.query"):
        evaluation_subset(object(), 2)


def test_old_import_path_still_works():
    from reidbook.eval import evaluation_set as lazy
    from reidbook.prune.measure import evaluation_subset as old

    assert old is evaluation_subset and lazy is evaluation_set
    assert isinstance(old(DS, 1), EvaluationSet)
