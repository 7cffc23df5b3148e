"""Chapter 07's views over the whole budget range (``reidbook.viz.anytime.budget_range_view``: the budget
slider's static form) and the routing comparisons its sentences are generated from
(``reidbook.eval.anytime.routing_gaps``, ``chord_deviation``, ``budget_grid(include_exits=True)``)."""
from __future__ import annotations

import re

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


# ------------------------------------------------------------------ a Grad-CAM per exit, measured
def _tiny_dare():
    from reidbook.models import build_model

    torch.manual_seed(0)
    return build_model("dare", 6, profile="smoke").eval()


def _person_parts(n: int, h: int = 64, w: int = 32) -> list[np.ndarray]:
    """Part maps with a person in the middle columns: head, torso, legs bands (labels 1, 2, 4)."""
    p = np.zeros((h, w), dtype=np.int64)
    p[4:14, 12:20], p[14:36, 10:22], p[36:60, 11:21] = 1, 2, 4
    return [p.copy() for _ in range(n)]


def test_exit_embedding_is_the_exit_the_evaluation_uses():
    from reidbook.eval.anytime import exit_slots
    from reidbook.viz.gradcam import ExitEmbedding

    model = _tiny_dare()
    x = torch.randn(2, 3, 64, 32)
    with torch.no_grad():
        every = model.all_embeddings(x)
        for s, slot in enumerate(exit_slots(model), start=1):
            torch.testing.assert_close(ExitEmbedding(model, s)(x), every[slot])
    assert isinstance(ExitEmbedding(model, 1).target_layer(), torch.nn.Module)
    with pytest.raises(ValueError, match="exit must be in 1..4"):
        ExitEmbedding(model, 5)
    with pytest.raises(TypeError, match="anytime model"):
        ExitEmbedding(torch.nn.Linear(2, 2), 1)


def test_exit_attention_measures_every_exit_on_the_same_images():
    from reidbook.viz.anytime import exit_attention, plot_exit_cams

    model = _tiny_dare()
    torch.manual_seed(1)
    images, refs = torch.randn(3, 3, 64, 32), [torch.randn(3, 3, 64, 32) for _ in range(4)]
    parts = _person_parts(3)
    out = exit_attention(model, images, refs, parts)
    assert list(out["cams"]) == model.exit_names()
    for m in out["cams"].values():
        assert m.shape == (3, 64, 32) and m.min() >= 0
    t = out["table"]
    assert list(t["exit"]) == model.exit_names() and ((t["n"] + t["empty"]) == 3).all()
    measured = t[t["n"] > 0]
    assert len(measured) > 0
    chance = float((parts[0] > 0).mean())
    np.testing.assert_allclose(measured["chance"], chance)   # the person's area share: a uniform map's share
    assert ((measured["on_person"] >= 0) & (measured["on_person"] <= 1)).all()
    body = measured[["head", "torso", "arms", "legs", "feet", "bag"]].sum(axis=1)
    np.testing.assert_allclose(body, measured["on_person"])  # the parts tile the person
    fig = plot_exit_cams(images, out["cams"], t, n_show=2)
    assert len(fig.axes) == 2 * 5
    import matplotlib.pyplot as plt

    plt.close(fig)
    with pytest.raises(ValueError, match="one part map per image"):
        exit_attention(model, images, refs, parts[:2])


def test_exit_top1_leaves_out_junk():
    from reidbook.viz.anytime import exit_top1

    ev = _toy_eval()
    top = exit_top1(ev, [0, 1, 5])
    assert top.shape == (3, 3)
    for s in range(3):
        for i, q in enumerate([0, 1, 5]):
            d = ev.distmats[s, q].astype(float).copy()
            d[(ev.g_pids == ev.q_pids[q]) & (ev.g_camids == ev.q_camids[q])] = np.inf
            assert top[s, i] == int(d.argmin())
    # a gallery item with the query's identity *and* camera is never the top-1
    ev.g_camids[:] = 0
    ev.q_camids[:] = 0
    top = exit_top1(ev, range(4))
    assert (ev.g_pids[top] != ev.q_pids[:4][None]).all()


def test_describe_exit_attention_follows_the_numbers():
    from reidbook.viz.anytime import describe_exit_attention

    def table(shares, lifts, empty=(0, 0)):
        return pd.DataFrame({"exit": ["stage 1", "fusion"], "n": [10 - e for e in empty], "empty": list(empty),
                             "on_person": shares, "chance": [0.4, 0.4], "lift": lifts,
                             "top_part": ["torso", "legs"], "top_part_share": [0.3, 0.2]})

    up = describe_exit_attention(table([0.40, 0.60], [1.0, 1.5]))
    assert "rises by 20 points" in up and "fusion puts at least 1.25× chance" in up and "stage 1: 40 %" in up
    down = describe_exit_attention(table([0.60, 0.41], [1.5, 1.02]))
    assert "falls by 19 points" in down and "stage 1 puts" in down
    flat = describe_exit_attention(table([0.40, 0.41], [1.0, 1.02], empty=(0, 3)))
    assert "stays within 2 points" in flat and "no exit puts" in flat and "3 empty CAMs" in flat
    assert "nothing to measure" in describe_exit_attention(table([np.nan, np.nan], [np.nan, np.nan], (10, 10)))


# ------------------------------------------------------------------ chapter 07's sentences follow the numbers
def _emb(maps):
    return pd.DataFrame({"embedding": ["stage 1", "stage 2", "stage 3", "stage 4", "fusion"], "mAP": maps})


def test_describe_deep_supervision_and_fusion_weights():
    from reidbook.viz.anytime import describe_deep_supervision, describe_fusion_weights

    text = describe_deep_supervision(_emb([0.20, 0.3, 0.5, 0.4, 0.55]), _emb([0.05, 0.1, 0.3, 0.42, 0.50]))
    assert "stage 1 reaches 20.0 % mAP against 5.0 %" in text and "better by 15.0 points" in text
    assert "Stage 3 beats stage 4" in text and "at least as good as the best single stage, stage 3" in text
    text = describe_deep_supervision(_emb([0.05, 0.3, 0.3, 0.4, 0.35]), _emb([0.10, 0.1, 0.3, 0.42, 0.50]))
    assert "worse by 5.0 points" in text and "does not beat" in text and "is below the best single stage" in text
    text = describe_deep_supervision(_emb([0.05, 0.3, 0.3, 0.4, 0.35]), _emb([0.052, 0.1, 0.3, 0.42, 0.35]))
    assert "(about the same: 0.2 points apart)" in text and "(about the same: 0.0 points apart)" in text
    assert "the fusion leans on it" in describe_fusion_weights([-0.1, -0.2, -0.6, -0.1], _emb([.1, .2, .5, .4, .6]))
    assert "do not follow accuracy" in describe_fusion_weights([-0.9, -0.2, -0.1, -0.1], _emb([.1, .2, .5, .4, .6]))


def test_describe_exit_costs_anytime_routing_and_easy_hard():
    from reidbook.viz.anytime import describe_anytime, describe_easy_hard, describe_exit_costs, describe_routing

    text = describe_exit_costs(np.array([510, 1200, 2100, 2600]) * 1e6, (500, 1200, 2000, 2600), [1e6, 2e6, 3e6, 4e6],
                               [1.0, 2.0, 3.0, 4.0])
    assert "between +0.0 % and +5.0 %" in text
    assert "R² = 1.00" in text and "time follows" in text
    ev, other = _toy_eval(), _toy_eval(seed=1)
    other.costs = np.array([2.0, 5.0, 9.0])
    budgets = np.linspace(0, 10, 11)
    d, o = A.anytime_curve(ev, budgets), A.anytime_curve(other, budgets)
    text = describe_anytime(ev, other, d, o)
    assert "2.5× as much" in text
    ahead = int((o.rank1 > d.rank1).sum())
    assert f"answers better at {ahead} " in text and "Over 11 budgets" in text
    curve = A.budgeted_curve(ev, A.budget_grid(ev.costs, 5, include_exits=True))
    text = describe_routing(ev, curve)
    assert "lie on the straight lines" in text and "Margin routing is above random at" in text
    assert re.search(r"Margin against distance: above at \d+, below at \d+ of \d+ budgets", text)
    kinds = pd.DataFrame({"stage 1": [0.6, 0.1], "stage 4 (fusion)": [0.2, 0.7]}, index=["easy", "hard"])
    assert "does send the easy ones out earlier" in describe_easy_hard(kinds)
    assert "does not send" in describe_easy_hard(kinds.iloc[::-1].set_axis(["easy", "hard"]))
    assert describe_easy_hard("no difficulty labels") == "no difficulty labels"


def test_chapter_07_reads_every_dare_claim_of_the_registry():
    """The claims section names real claim ids (a renamed id would only print "not in the ledger"), and all
    of DaRe's claims appear in it."""
    import json
    import re
    from pathlib import Path

    from reidbook.claims.registry import CLAIMS

    nb = Path(__file__).resolve().parents[1] / "notebooks" / "07_dare.ipynb"
    code = "\n".join("".join(c["source"]) for c in json.loads(nb.read_text())["cells"] if c["cell_type"] == "code")
    used = set(re.findall(r'"(dare\.[a-z0-9_]+)"', code))
    assert used == {c.id for c in CLAIMS if c.id.startswith("dare.")}


def test_the_margin_vs_random_prediction_is_revealed_from_the_gap():
    from reidbook.teach import PREDICTIONS, _load_all, reveal_text

    _load_all()
    p = PREDICTIONS["07.margin_vs_random"]
    assert [p.outcome(gap=g) for g in (0.05, 0.011, 0.0, -0.009, -0.05)] == [0, 0, 1, 1, 2]
    assert reveal_text("07.margin_vs_random", p.outcome(gap=0.05), picked=0).startswith(f"This run: “{p.options[0]}”")
