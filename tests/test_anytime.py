"""Anytime and budgeted-stream re-ID (paper 004 §4, ``reidbook.eval.anytime``): Eq. (3), conditional
rates, the three routings on hand-made streams, costs, and the budget view at the slider's extremes."""
from __future__ import annotations

import math

import numpy as np
import pytest
import torch

from reidbook.eval import anytime as A, evaluate_rank

COSTS = np.array([523.6, 1150.1, 2060.9, 2542.3]) * 1e6  # the paper code's table


# ------------------------------------------------------------------ Eq. (3)
def test_eq3_hand_values():
    # two exits, costs 1 and 2: p = (1, a)/(1 + a); budget 1.5 needs a = 1
    plan = A.exit_distribution([1.0, 2.0], 1.5)
    assert plan.a == pytest.approx(1.0, rel=1e-9)
    np.testing.assert_allclose(plan.p, [0.5, 0.5], atol=1e-9)
    # three evenly spaced exits: the middle budget is a = 1, uniform p
    plan = A.exit_distribution([1.0, 2.0, 3.0], 2.0)
    assert plan.a == pytest.approx(1.0, rel=1e-9)
    np.testing.assert_allclose(plan.p, [1 / 3] * 3, atol=1e-9)
    # p_s ∝ a^(s-1)
    plan = A.exit_distribution(COSTS, 1.6e9)
    np.testing.assert_allclose(plan.p[1:] / plan.p[:-1], plan.a, rtol=1e-9)


@pytest.mark.parametrize("budget", np.linspace(COSTS[0], COSTS[-1], 9))
def test_eq3_meets_budget(budget):
    plan = A.exit_distribution(COSTS, budget)
    assert plan.p.sum() == pytest.approx(1.0)
    assert (plan.p >= 0).all()
    assert plan.expected_cost == pytest.approx(budget, rel=1e-9)


def test_eq3_endpoints_and_monotone():
    lo, hi = A.exit_distribution(COSTS, COSTS[0]), A.exit_distribution(COSTS, COSTS[-1])
    np.testing.assert_array_equal(lo.p, [1, 0, 0, 0])
    np.testing.assert_array_equal(hi.p, [0, 0, 0, 1])
    assert lo.a == 0 and math.isinf(hi.a)
    a = [A.solve_exit_base(COSTS, b) for b in np.linspace(COSTS[0] * 1.01, COSTS[-1] * 0.99, 12)]
    assert all(x < y for x, y in zip(a, a[1:]))  # one-to-one mapping budget <-> a


@pytest.mark.parametrize("budget", [COSTS[0] * 0.9, COSTS[-1] * 1.1, float("nan")])
def test_eq3_out_of_range_budget_is_a_clear_error(budget):
    with pytest.raises(ValueError, match=r"outside \[C_1, C_S\]"):
        A.exit_distribution(COSTS, budget)


def test_bad_costs_rejected():
    with pytest.raises(ValueError, match="non-decreasing"):
        A.exit_distribution([2.0, 1.0], 1.5)


# ------------------------------------------------------------------ conditional rates
def test_conditional_exit_rates():
    q = A.conditional_exit_rates([0.4, 0.3, 0.2, 0.1])
    np.testing.assert_allclose(q, [0.4, 0.5, 2 / 3, 1.0])
    # p_s = q_s * Π_{i<s} (1 - q_i): the rates reproduce the distribution
    p = np.array([0.1, 0.2, 0.3, 0.4])
    q = A.conditional_exit_rates(p)
    reach = np.concatenate([[1.0], np.cumprod(1 - q)[:-1]])
    np.testing.assert_allclose(q * reach, p)
    np.testing.assert_allclose(A.conditional_exit_rates([1, 0, 0]), [1, 1, 1])  # unreachable stages: 1
    np.testing.assert_allclose(A.conditional_exit_rates([0, 0, 1]), [0, 0, 1])
    with pytest.raises(ValueError, match="probability vector"):
        A.conditional_exit_rates([0.5, 0.2])


# ------------------------------------------------------------------ confidences
def test_confidences_by_hand():
    d = np.array([[1.0, 2.0, 5.0],
                  [3.0, 0.5, 0.7]])
    g = np.array([7, 7, 8])
    np.testing.assert_allclose(A.confidence(d, "distance"), [-1.0, -0.5])
    # row 0: nearest is pid 7 at 1.0, nearest other identity (8) at 5.0 -> 4.0
    # row 1: nearest is pid 7 at 0.5, nearest other identity (8) at 0.7 -> 0.2
    np.testing.assert_allclose(A.confidence(d, "margin", g), [4.0, 0.2])
    with pytest.raises(ValueError, match="g_pids"):
        A.confidence(d, "margin")
    with pytest.raises(ValueError, match="routing rule"):
        A.confidence(d, "oracle")


def test_confidences_leave_out_each_querys_junk():
    """The released code computes confidences on the gallery without the query's same-identity,
    same-camera items (``get_junk``): a hand-made 2 × 4 matrix where the junk item is the nearest."""
    d = np.array([[0.1, 1.0, 2.0, 4.0],
                  [0.2, 0.3, 3.0, 0.9]])
    g_pids, g_cams = np.array([5, 5, 6, 7]), np.array([0, 1, 0, 0])
    q_pids, q_cams = np.array([5, 6]), np.array([0, 0])
    junk = A.junk_mask(q_pids, g_pids, q_cams, g_cams)
    # query 0 (pid 5, cam 0): gallery 0 is junk; query 1 (pid 6, cam 0): gallery 2 is junk
    np.testing.assert_array_equal(junk, [[True, False, False, False], [False, False, True, False]])
    # distance: nearest remaining item 1.0 (q0) and 0.2 (q1)
    np.testing.assert_allclose(A.confidence(d, "distance", g_pids, junk=junk), [-1.0, -0.2])
    np.testing.assert_allclose(A.confidence(d, "distance", g_pids), [-0.1, -0.2])  # whole gallery
    # margin: q0 nearest is pid 5 at 1.0, nearest other identity (6) at 2.0 -> 1.0 (with the junk
    # item it would be 2.0 - 0.1); q1 nearest pid 5 at 0.2, other (7) at 0.9 -> 0.7
    np.testing.assert_allclose(A.confidence(d, "margin", g_pids, junk=junk), [1.0, 0.7])
    np.testing.assert_allclose(A.confidence(d, "margin", g_pids), [1.9, 0.7])
    # junk images (pid -1) are left out for every query
    assert A.junk_mask([1], [-1, 1], [0], [1]).tolist() == [[True, False]]
    with pytest.raises(ValueError, match="junk mask"):
        A.confidence(d, "distance", junk=junk[:, :2])
    # AnytimeEval uses the junk-free gallery by default
    ev = A.AnytimeEval(d[None], [1.0], q_pids, g_pids, q_cams, g_cams)
    np.testing.assert_allclose(ev.confidences("distance")[0], [-1.0, -0.2])
    np.testing.assert_allclose(ev.confidences("distance", exclude_junk=False)[0], [-0.1, -0.2])


# ------------------------------------------------------------------ the paper's random baseline (§5.3.2)
def test_random_plan_mixes_the_two_adjacent_exits():
    """``get_p_given_budget_random`` of the released code: p on the two exits around the budget."""
    c = np.array([1.0, 2.0, 4.0, 8.0])
    np.testing.assert_allclose(A.random_exit_distribution(c, 3.0).p, [0, 0.5, 0.5, 0])
    np.testing.assert_allclose(A.random_exit_distribution(c, 1.25).p, [0.75, 0.25, 0, 0])
    np.testing.assert_allclose(A.random_exit_distribution(c, 7.0).p, [0, 0, 0.25, 0.75])
    np.testing.assert_allclose(A.random_exit_distribution(c, 2.0).p, [0, 1, 0, 0])
    np.testing.assert_allclose(A.random_exit_distribution(c, 8.0).p, [0, 0, 0, 1])
    for b in np.linspace(1, 8, 15):
        plan = A.random_exit_distribution(c, b)
        assert plan.expected_cost == pytest.approx(b) and np.isnan(plan.a)
        assert np.count_nonzero(plan.p) <= 2  # never more than two exits, unlike Eq. (3)
    assert np.count_nonzero(A.exit_distribution(c, 3.0).p) == 4
    assert A.plan_for(c, 3.0, "random").p.tolist() == [0, 0.5, 0.5, 0]
    np.testing.assert_allclose(A.plan_for(c, 3.0, "random_eq3").p, A.exit_distribution(c, 3.0).p)
    with pytest.raises(ValueError, match=r"outside \[C_1, C_S\]"):
        A.random_exit_distribution(c, 9.0)


def test_random_curve_is_the_chord_between_adjacent_exits():
    """Fig. 6's straight lines: random routing's accuracy at a budget is the linear interpolation of the
    two single exits around it; its simulated coins average to the same line."""
    ev = _toy_eval()
    acc = np.array([r.rank(1) for r in ev.results])
    maps = np.array([r.mAP for r in ev.results])
    budgets = [1.0, 1.25, 1.5, 2.0, 2.6, 3.0]
    df = A.budgeted_curve(ev, budgets, rules=("random",))
    want = np.interp(budgets, ev.costs, acc)
    np.testing.assert_allclose(df.rank1, want, atol=1e-12)
    np.testing.assert_allclose(df.mAP, np.interp(budgets, ev.costs, maps), atol=1e-12)
    np.testing.assert_allclose(df.cost, budgets)
    # the simulated coins (one per query, as the released code) agree on average
    sim = A.budgeted_curve(ev, budgets, rules=("random",), seeds=range(300), random_expected=False)
    np.testing.assert_allclose(sim.rank1, want, atol=0.02)
    np.testing.assert_allclose(sim.cost, budgets, rtol=0.02)
    # and the exits a simulated stream uses are the two around the budget only
    used = np.unique(A.budgeted_stream(ev, 2.5, "random", seed=3).exits)
    assert set(used.tolist()) <= {2, 3}
    # blind exits at Eq. (3)'s rates use all three exits at the same budget
    assert len(np.unique(A.budgeted_stream(ev, 2.0, "random_eq3", seed=3).exits)) == 3


# ------------------------------------------------------------------ routing
def test_distance_routing_by_hand():
    # two stages, q_1 = 0.5: exit if fewer than 0.5·(n+1) of the n earlier confidences are higher
    conf = np.array([[3.0, 1.0, 2.0, 5.0, 0.0, 2.0]])
    exits = A.route_stream(conf, [0.5, 1.0], "distance")
    # q0: first query (n=0, 0 < 0.5) -> exits. q1: {3} has 1 higher, 1 < 1? no -> on.
    # q2: {3,1}: 1 higher < 1.5 -> exits. q3: {3,1,2}: 0 higher < 2 -> exits.
    # q4: {3,1,2,5}: 4 higher < 2.5? no -> on. q5 (a tie): {3,1,2,5,0}: 2 higher (3, 5) < 3 -> exits.
    np.testing.assert_array_equal(exits, [1, 2, 1, 1, 2, 1])


def test_routing_threshold_is_running_quantile_of_earlier_queries_at_that_stage():
    rng = np.random.default_rng(0)
    conf = rng.normal(size=(3, 50))
    q = np.array([0.3, 0.6, 1.0])
    exits = A.route_stream(conf, q, "margin")
    hist = [[], []]
    for i in range(50):
        want = 3
        for s in range(2):
            c = conf[s, i]
            # exit iff c is at least the empirical (1 - q_s)-quantile of the earlier confidences and c
            leave = np.sum(np.asarray(hist[s]) > c) < q[s] * (len(hist[s]) + 1)
            hist[s].append(c)
            if leave:
                want = s + 1
                break
        assert exits[i] == want, i


def test_first_query_and_last_stage_rules():
    conf = np.array([[-5.0, 9.0], [-5.0, 9.0], [0.0, 0.0]])
    # first query reaching each stage exits there, whatever its confidence
    np.testing.assert_array_equal(A.route_stream(conf, [0.1, 0.1, 1.0], "distance")[:1], [1])
    # nobody may exit early (q_s = 0): everybody reaches, and exits at, the last stage
    np.testing.assert_array_equal(A.route_stream(conf, [0.0, 0.0, 1.0], "distance"), [3, 3])
    np.testing.assert_array_equal(A.route_stream(conf, [0.0, 0.0, 1.0], "random"), [3, 3])
    # q_1 = 1: all exit at stage 1
    np.testing.assert_array_equal(A.route_stream(conf, [1.0, 0.5, 1.0], "margin"), [1, 1])
    # stage 2 compares with the confidences of the queries that reached stage 2 only
    conf = np.array([[9.0, 0.0, 0.0, 0.0], [0.0, 5.0, 1.0, 6.0], [0.0, 0.0, 0.0, 0.0]])
    # stage 1 (q=0.5): q0 first -> exits; q1: {9} higher, 1 < 1? no; q2: {9,0}: 1 < 1.5 -> exits (tie
    # with q1); q3: {9,0,0}: 1 < 2 -> exits. Stage 2 (q=0.5) saw only q1: first there -> exits.
    np.testing.assert_array_equal(A.route_stream(conf, [0.5, 0.5, 1.0], "distance"), [1, 2, 1, 1])
    np.testing.assert_array_equal(A.route_stream(conf[:0], [1.0], "distance") if False else
                                  A.route_stream(np.zeros((0, 3)), [1.0], "random"), [1, 1, 1])


def test_random_routing_rates():
    p = np.array([0.4, 0.3, 0.2, 0.1])
    exits = A.route_stream(np.zeros((4, 20000)), A.conditional_exit_rates(p), "random", seed=1)
    np.testing.assert_allclose(np.bincount(exits - 1) / len(exits), p, atol=0.015)


@pytest.mark.parametrize("rule", ["distance", "margin", "random", "random_eq3"])
def test_realised_cost_within_budget_in_expectation(rule):
    """Simulated stream: i.i.d. confidences; averaged over streams the realised cost does not exceed B."""
    costs = np.array([1.0, 2.0, 3.0, 4.0])
    for budget in (1.3, 2.0, 2.5, 3.6):
        plan = A.plan_for(costs, budget, rule)
        per_query = []
        for seed in range(20):
            conf = np.random.default_rng(seed).normal(size=(4, 400))
            per_query.append(costs[A.route_stream(conf, plan.q, rule, seed) - 1])
        per_query = np.concatenate(per_query)
        # "in expectation": the mean over 8000 queries, up to 3 standard errors of sampling noise
        tol = 3 * per_query.std() / math.sqrt(len(per_query))
        assert per_query.mean() <= budget + tol, (budget, per_query.mean(), tol)
        assert per_query.mean() >= budget - 0.1 * (costs[-1] - costs[0])  # and it uses the budget


# ------------------------------------------------------------------ a small evaluation by hand
def _toy_eval(seed: int = 0, n_id: int = 12, dims: int = 8) -> A.AnytimeEval:
    """Three exits whose embeddings get less noisy with depth: exit 3 is best."""
    rng = np.random.default_rng(seed)
    centres = rng.normal(size=(n_id, dims)) * 2
    q_pids, g_pids = np.repeat(np.arange(n_id), 2), np.repeat(np.arange(n_id), 3)
    q_cams, g_cams = np.zeros(len(q_pids), int), np.ones(len(g_pids), int)
    qf, gf = [], []
    for noise in (3.0, 1.5, 0.5):
        qf.append(torch.tensor(centres[q_pids] + rng.normal(size=(len(q_pids), dims)) * noise))
        gf.append(torch.tensor(centres[g_pids] + rng.normal(size=(len(g_pids), dims)) * noise))
    return A.AnytimeEval.from_features(qf, gf, [1.0, 2.0, 3.0], q_pids, g_pids, q_cams, g_cams,
                                       names=["e1", "e2", "e3"])


def test_stream_accuracy_equals_evaluate_rank_on_the_answers():
    ev = _toy_eval()
    for rule in A.ROUTINGS:
        res = A.budgeted_stream(ev, 2.0, rule)
        composed = ev.distmats[res.exits - 1, np.arange(len(res.exits))]
        ref = evaluate_rank(composed, ev.q_pids, ev.g_pids, ev.q_camids, ev.g_camids)
        assert res.rank1 == pytest.approx(ref.rank(1)) and res.mAP == pytest.approx(ref.mAP)
        fast = ev.combine(res.exits)
        assert fast["rank1"] == pytest.approx(res.rank1) and fast["mAP"] == pytest.approx(res.mAP)
        assert res.realised_cost == pytest.approx(ev.costs[res.exits - 1].mean())
        assert res.exit_fractions.sum() == pytest.approx(1.0)


def test_budget_extremes_give_the_single_exits():
    ev = _toy_eval()
    for rule in A.ROUTINGS:
        lo, hi = A.budgeted_stream(ev, ev.costs[0], rule), A.budgeted_stream(ev, ev.costs[-1], rule)
        assert (lo.exits == 1).all() and (hi.exits == 3).all()
        assert lo.rank1 == pytest.approx(ev.results[0].rank(1))
        assert hi.rank1 == pytest.approx(ev.results[-1].rank(1))
    df = A.budgeted_curve(ev, A.budget_grid(ev.costs, 5), seeds=(0, 1))
    assert set(df.rule) == set(A.ROUTINGS) and len(df) == 15
    assert (df.cost <= ev.costs[-1] + 1e-9).all()


def test_anytime_curve_uses_deepest_exit_within_budget():
    ev = _toy_eval()
    df = A.anytime_curve(ev, [0.5, 1.0, 1.99, 2.0, 3.0, 10.0])
    assert df.exit.tolist() == [0, 1, 1, 2, 3, 3]
    assert df.rank1[0] == 0 and df.mAP[0] == 0
    assert df.rank1[4] == pytest.approx(ev.results[2].rank(1))


def test_easy_and_hard_queries():
    ev = _toy_eval()
    exits = A.budgeted_stream(ev, 2.0, "margin").exits
    eh = A.easy_hard_queries(ev, exits, "margin", n=50)
    right = ev.correct()
    assert all(exits[i] == 1 and right[0, i] for i in eh["easy"])
    assert all(exits[i] == 3 and right[2, i] and not right[:2, i].any() for i in eh["hard"])
    conf = ev.confidences("margin")[0, eh["easy"]]
    assert (np.diff(conf) <= 0).all()  # most confident first


# ------------------------------------------------------------------ costs on real (tiny) models
def test_exit_costs_dare_and_sequential_ensemble():
    from reidbook.models import build_model
    from reidbook.models.seq_ensemble import SequentialEnsemble
    from reidbook.profile import count_macs

    torch.manual_seed(0)
    dare = build_model("dare", 4, profile="smoke").eval()
    c = A.exit_costs(dare, (64, 32))
    assert len(c) == 4 and (np.diff(c) > 0).all()
    assert c[-1] == count_macs(dare, (64, 32))  # the last exit is the whole (fused) forward
    assert A.exit_names(dare) == ["stage 1", "stage 2", "stage 3", "stage 4 (fusion)"]
    assert A.exit_slots(dare) == [0, 1, 2, 4]
    members = [build_model("seq_ensemble", 4, profile="smoke", arch=a) for a in ("resnet18", "resnet34")]
    se = SequentialEnsemble.chain(*members)
    cs = A.exit_costs(se, (64, 32))
    singles = [count_macs(m, (64, 32)) for m in members]
    np.testing.assert_allclose(cs, np.cumsum(singles))  # nothing shared: costs add up
    lat = A.exit_latency(dare, (64, 32), rounds=1, repeats=1)
    assert lat.shape == (4,) and (lat > 0).all()


def test_paper_table():
    assert A.PAPER_RESNET50_MACS_M == (523.6, 1150.1, 2060.9, 2542.3)


# ------------------------------------------------------------------ the budget view behind the slider
def _with_images(ev: A.AnytimeEval, tmp_path) -> A.AnytimeEval:
    from PIL import Image

    def items(pids, cams, tag):
        out = []
        for i, (p, c) in enumerate(zip(pids, cams)):
            path = tmp_path / f"{tag}{i}.png"
            Image.new("RGB", (8, 16), (int(p) * 20 % 255, 80, 160)).save(path)
            out.append((str(path), int(p), int(c)))
        return out

    ev.query_items = items(ev.q_pids, ev.q_camids, "q")
    ev.gallery_items = items(ev.g_pids, ev.g_camids, "g")
    return ev


@pytest.mark.parametrize("rule", A.ROUTINGS)
def test_budget_view_at_the_slider_extremes(tmp_path, rule):
    import matplotlib.pyplot as plt

    from reidbook.viz.anytime import budget_view, budget_view_data

    ev = _with_images(_toy_eval(), tmp_path)
    curve = A.budgeted_curve(ev, A.budget_grid(ev.costs, 4))
    lo = budget_view_data(ev, ev.costs[0], rule)
    np.testing.assert_allclose(lo["realised"], [1, 0, 0])
    np.testing.assert_allclose(lo["plan"].p, [1, 0, 0])
    assert lo["cost"] == ev.costs[0] and lo["hard"] == []
    assert lo["rank1"] == pytest.approx(ev.results[0].rank(1))
    hi = budget_view_data(ev, ev.costs[-1] * 10, rule)  # beyond the range: clamped to C_S
    np.testing.assert_allclose(hi["realised"], [0, 0, 1])
    assert hi["cost"] == ev.costs[-1] and hi["easy"] == []
    assert hi["rank1"] == pytest.approx(ev.results[-1].rank(1))
    for b in (ev.costs[0], 2.0, ev.costs[-1]):
        fig = budget_view(ev, b, rule, curve, n_examples=2, topk=3)
        assert len(fig.axes) >= 2
        plt.close(fig)


def test_budget_slider_widget_builds():
    pytest.importorskip("ipywidgets")
    from reidbook.widgets import budget_slider

    box = budget_slider(_toy_eval())
    slider = box.widget.children[0].children[0]
    assert slider.min == pytest.approx(1e-6) and slider.max == pytest.approx(3e-6)
    bundle = box._repr_mimebundle_()  # live in JupyterLab, the range as a picture in an exported page
    assert "application/vnd.jupyter.widget-view+json" in bundle
    static = bundle["text/html"]
    assert static.startswith("<img src=\"data:image/png;base64,") and "from C_1 to C_S" in static


def test_fusion_fixes_choice():
    ev = _toy_eval()
    right = ev.correct()
    for q in A.fusion_fixes(ev, 10):
        assert right[-1, q] and not right[:-1, q].all()


def test_stage_ranklists_with_no_fixed_query_says_so():
    """A short run can have no query that the fusion fixes; Fig. 7 then says so instead of failing."""
    import matplotlib

    matplotlib.use("Agg")
    from reidbook.viz import anytime as VA

    ev = _toy_eval()
    ev.query_items = [("q.jpg", 0, 0)] * len(ev.q_pids)
    ev.gallery_items = [("g.jpg", 0, 1)] * len(ev.g_pids)
    fig = VA.plot_stage_ranklists(ev, [], topk=3)
    assert "no such queries" in " ".join(t.get_text() for ax in fig.axes for t in ax.texts)


def test_exit_features_on_smoke_data(smoke_dataset):
    """One extraction pass gives every embedding; the fusion slot equals the model's eval output."""
    from reidbook.engine import extract_features  # noqa: F401  (the path exit_features uses)
    from reidbook.eval import evaluate_model
    from reidbook.models import build_model

    torch.manual_seed(0)
    dare = build_model("dare", smoke_dataset.num_train_pids, profile="smoke").eval()
    items = smoke_dataset.query[:6]
    f = A.exit_features(dare, items, 64, 32, device="cpu", flip=True)
    assert f.shape == (5, 6, 128)
    from reidbook.data import ImageDataset, build_transforms

    x = torch.stack([ImageDataset(items, build_transforms(64, 32, is_train=False))[i][0] for i in range(6)])
    with torch.no_grad():
        want = (dare(x) + dare(x.flip(-1))) / 2
    torch.testing.assert_close(f[4], want, atol=1e-4, rtol=1e-4)
    small = type("DS", (), {"query": smoke_dataset.query[:20], "gallery": smoke_dataset.gallery})()
    ev = A.AnytimeEval.from_model(dare, small, 64, 32, device="cpu")
    assert ev.distmats.shape == (4, 20, len(smoke_dataset.gallery))
    assert ev.embedding_distmats.shape[0] == 5 and len(ev.per_embedding()) == 5
    np.testing.assert_array_equal(ev.distmats[3], ev.embedding_distmats[4])  # exit 4 answers with the fusion
    assert evaluate_model  # evaluation helpers import
