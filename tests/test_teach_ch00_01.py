"""Chapters 00 and 01's checks beyond "the solution passes, one wrong answer fails" (tests/test_teach.py): each
recognises the usual slips and names them, an unwritten function is "not answered yet" (not wrong), and the
predictions' outcomes are computed from the numbers at their boundaries."""
from __future__ import annotations

import numpy as np
import pytest
import torch

from reidbook.teach import EXERCISES, PREDICTIONS, _load_all, check

_load_all()


def _ctx(eid):
    return EXERCISES[eid].context()


# ----------------------------------------------------------------------------- chapter 00
def test_cosine_on_histogram_features_is_the_same_ranking():
    ctx = _ctx("00.cosine")
    norms = np.linalg.norm(ctx["qf"], axis=1)
    assert np.allclose(norms, norms[0], rtol=1e-4)           # the reason the answer is "same"
    assert check("00.cosine", "same", **ctx).ok
    assert check("00.cosine", " Same ", **ctx).ok
    assert not check("00.cosine", "down", **ctx).ok
    v = check("00.cosine", 0.5, **ctx)
    assert not v.ok and "one word" in v.why


def test_cosine_differs_when_lengths_differ():
    ctx = _ctx("00.cosine")
    scale = np.linspace(0.2, 5.0, len(ctx["gf"]))[:, None]   # lengths that carry nuisance
    ctx = {**ctx, "gf": ctx["gf"] * scale}
    truth = EXERCISES["00.cosine"].solution(**ctx)
    assert truth in ("up", "down")
    assert check("00.cosine", truth, **ctx).ok and not check("00.cosine", "same", **ctx).ok


def test_tiny_map_names_the_official_ap():
    ctx = _ctx("00.tiny_map")
    # hits at ranks 2 and 4 after the removal: official AP = mean((P@1 + P@2) / 2, (P@3 + P@4) / 2), P@0 = 1
    official = ((0 + 1 / 2) / 2 + (1 / 3 + 2 / 4) / 2) / 2
    v = check("00.tiny_map", official, **ctx)
    assert not v.ok and "official" in v.why
    assert check("00.tiny_map", 0.5, **ctx).ok


def test_ap_by_hand_unwritten_is_not_attempted_and_a_result_is_not_a_function():
    v = check("00.ap_by_hand", lambda matches: None)
    assert not v.ok and not v.attempted
    v = check("00.ap_by_hand", 0.5)
    assert not v.ok and v.attempted and "function" in v.why


def test_ap_by_hand_catches_an_off_by_one_rank():
    def zero_based(matches):
        ranks = np.flatnonzero(np.asarray(matches, bool))       # ranks from 0: P@k_j = j / k_j with k from 0
        return float(np.mean(np.arange(1, len(ranks) + 1) / np.maximum(ranks, 1)))

    v = check("00.ap_by_hand", zero_based)
    assert not v.ok and "matches" in v.why


def test_rerank_lambda_one_is_the_mAP_without_reranking():
    from reidbook.eval import evaluate_rank

    ctx = _ctx("00.rerank_lambda")
    before = evaluate_rank(ctx["distmat"], ctx["q_pids"], ctx["g_pids"], ctx["q_cams"], ctx["g_cams"]).mAP
    assert check("00.rerank_lambda", before, **ctx).ok
    assert not check("00.rerank_lambda", before - 0.1, **ctx).ok


@pytest.mark.parametrize("ratio, option", [(0.5, 0), (0.79, 0), (1.0, 1), (1.25, 1), (2.0, 2), (3.0, 2), (3.5, 3)])
def test_naive_vs_chance_outcome(ratio, option):
    assert PREDICTIONS["00.naive_vs_chance"].outcome(mAP=ratio * 0.02, chance_mAP=0.02) == option


# ----------------------------------------------------------------------------- chapter 01
def test_which_loss_outcome_is_the_best_run():
    out = PREDICTIONS["01.which_loss"].outcome
    assert out(softmax=0.5, triplet=0.3, both=0.4) == 0
    assert out(softmax=0.2, triplet=0.3, both=0.25) == 1
    assert out(softmax=0.2, triplet=0.3, both=0.45) == 2


def test_last_stride_inverted_ratio_is_named():
    ctx = _ctx("01.last_stride")
    ratio = EXERCISES["01.last_stride"].solution(**ctx)
    assert 3.0 < ratio < 4.0                                   # one 1x1 layer of conv5 runs before the stride
    v = check("01.last_stride", 1 / ratio, **ctx)
    assert not v.ok and "upside down" in v.why


def test_batch_hard_names_the_nearest_positive_slip():
    def easiest_positive(features, pids, margin=0.3):
        d = torch.cdist(features, features)
        same = (pids[:, None] == pids[None, :]) & ~torch.eye(len(pids), dtype=torch.bool)
        pos = d.masked_fill(~same, float("inf")).min(1).values
        neg = d.masked_fill(pids[:, None] == pids[None, :], float("inf")).min(1).values
        return (margin + pos - neg).clamp(min=0).mean()

    v = check("01.batch_hard", easiest_positive)
    assert not v.ok and "nearest positive" in v.why
    assert not check("01.batch_hard", lambda f, p, margin=0.3: None).attempted


def test_run_checks_refuse_other_seeds_and_non_runs():
    ex = EXERCISES["01.lighter_backbone"]
    ctx = ex.context()
    other_seed = ctx["zoo"].get("baseline", "smoke", "synth", 1, model_options={"arch": "resnet18"})
    v = check("01.lighter_backbone", other_seed, **ctx)
    assert not v.ok and "seed" in v.why
    v = check("01.label_smoothing", 0.41, **ctx)
    assert not v.ok and "zoo.get" in v.why


def test_label_smoothing_still_on_is_named():
    ctx = _ctx("01.label_smoothing")
    same = ctx["zoo"].get("baseline", "smoke", "synth", 0)           # the preset itself: ε = 0.1
    v = check("01.label_smoothing", same, **ctx)
    assert not v.ok and "still smooths" in v.why


@pytest.mark.parametrize("chapter", ["00_data_and_evaluation", "01_baseline"])
def test_chapters_cite_no_design_and_01_prints_its_departures_before_training(chapter):
    """Chapter 01 shows its preset's departures (issue 18) before the first zoo.get; neither chapter cites DESIGN.md,
    which a learner does not have; chapter 01 picks its rank-list queries with reidbook.eval.picks."""
    import json
    from pathlib import Path

    nb = json.loads((Path(__file__).resolve().parents[1] / "notebooks" / f"{chapter}.ipynb").read_text())
    code = ["".join(c["source"]) for c in nb["cells"] if c["cell_type"] == "code"]
    assert not any("DESIGN.md" in "".join(c["source"]) for c in nb["cells"])
    if chapter == "01_baseline":
        shows = [i for i, s in enumerate(code) if "departures_table(preset)" in s]
        trains = [i for i, s in enumerate(code) if "zoo.get(" in s]
        assert shows and trains and shows[0] < trains[0]
        assert any("pick_queries(" in s for s in code) and not any("order[len(order) // 2]" in s for s in code)


def test_a_run_loaded_from_the_cache_compares_equal_to_a_fresh_one():
    """The zoo rebuilds a cached run's preset from JSON (lists where the preset has tuples): not a 'change'."""
    import json

    from reidbook.presets import Preset

    ctx = _ctx("01.lighter_backbone")
    good = EXERCISES["01.lighter_backbone"].solution(**ctx)
    good.preset = Preset(**json.loads(json.dumps(good.preset.to_dict())))
    assert check("01.lighter_backbone", good, **ctx).ok
