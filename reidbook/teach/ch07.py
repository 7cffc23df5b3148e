"""Chapter 07 (DaRe, paper 004): exercises, the prediction before Fig. 6 and the quiz.

Every check judges the learner's answer against :mod:`reidbook.eval.anytime` (the chapter's own tools);
an answer that is a function is run on the chapter's numbers *and* on a small hidden case, so that a
function that happens to agree on one input is not taken for a right one. ``context()`` builds the small
stand-ins the tests use; the chapter passes its own (``ev``, ``ev.costs``, its tables)."""
from __future__ import annotations

import numpy as np

from .core import Exercise, Prediction, Question, register as _register, right, wrong


def _A():
    from ..eval import anytime as A

    return A


def _toy_eval(seed: int = 0, n_id: int = 16, dims: int = 8):
    """Three exits (costs 1, 2, 3 M) whose embeddings get less noisy with depth."""
    import torch

    rng = np.random.default_rng(seed)
    centres = rng.normal(size=(n_id, dims)) * 2
    q_pids, g_pids = np.repeat(np.arange(n_id), 2), np.repeat(np.arange(n_id), 3)
    qf, gf = [], []
    for noise in (3.0, 1.5, 0.5):
        qf.append(torch.tensor(centres[q_pids] + rng.normal(size=(len(q_pids), dims)) * noise))
        gf.append(torch.tensor(centres[g_pids] + rng.normal(size=(len(g_pids), dims)) * noise))
    return _A().AnytimeEval.from_features(qf, gf, [1e6, 2e6, 3e6], q_pids, g_pids, np.zeros(len(q_pids), int),
                                          np.ones(len(g_pids), int), names=["exit 1", "exit 2", "exit 3"])


# ---------------------------------------------------------------------------------------------------
# 1. Eq. (3) by hand
# ---------------------------------------------------------------------------------------------------
def _eq3_hand_context() -> dict:
    return {"costs": (1.0, 3.0), "budget": 2.5}


def _eq3_hand_check(answer, costs, budget):
    a, p1 = (float(v) for v in answer)
    ref = _A().exit_distribution(costs, budget)
    if np.isclose(a, ref.a, rtol=1e-3) and np.isclose(p1, ref.p[0], rtol=1e-3):
        return right(f"a = {ref.a:.4g}, p_1 = {ref.p[0]:.4g}, p_2 = {ref.p[1]:.4g}: the average cost "
                     f"{ref.p[0]:.4g}·{costs[0]:g} + {ref.p[1]:.4g}·{costs[1]:g} is the budget {budget:g}.")
    if np.isclose(p1, ref.p[1], rtol=1e-3):
        return wrong(f"p_1 = {p1:.4g} is the share of the dearer exit: with Eq. (3), p_1 = 1/Z and p_2 = a/Z, and a "
                     "budget near the dearer exit's cost sends most queries there.")
    cost = costs[0] * p1 + costs[1] * (1 - p1)
    return wrong(f"with p_1 = {p1:.4g} the average cost is {cost:.4g}, not {budget:g}; and a must equal p_2 / p_1 "
                 "(Eq. 3 with two exits: p = (1, a) / (1 + a)).")


def _eq3_hand_solution(costs, budget):
    # two exits: p = (1, a) / (1 + a), so the average cost is C_1 + (C_2 - C_1) · a / (1 + a) = budget
    f = (budget - costs[0]) / (costs[1] - costs[0])   # = a / (1 + a) = p_2
    a = f / (1 - f)
    return a, 1 / (1 + a)


def _eq3_hand_wrong(costs, budget):
    f = (budget - costs[0]) / (costs[1] - costs[0])
    return f / (1 - f), f   # p_2 given as p_1


EQ3_BY_HAND = Exercise(
    id="07.eq3_by_hand", title="Eq. (3) by hand",
    prompt="Two exits cost C_1 = 1 and C_2 = 3 and the average budget is 2.5. Which a and p_1 does Eq. (3) give? "
           "Set my_answer = (a, p_1).",
    hint="With two exits Eq. (3) is p = (1, a)/(1 + a). Write the average cost p_1·C_1 + p_2·C_2 in terms of a and "
         "set it equal to the budget.",
    check=_eq3_hand_check, solution=_eq3_hand_solution, wrong=_eq3_hand_wrong, context=_eq3_hand_context)


# ---------------------------------------------------------------------------------------------------
# 2. Eq. (3)'s solver
# ---------------------------------------------------------------------------------------------------
def _paper_costs() -> np.ndarray:
    return np.asarray(_A().PAPER_RESNET50_MACS_M, dtype=np.float64) * 1e6


def _solver_context() -> dict:
    return {"costs": _paper_costs()}


def _solver_check(answer, costs):
    A = _A()
    if not callable(answer):
        return wrong("my_answer should be your function my_exit_distribution(costs, budget) -> p, not its result.")
    for c in (np.asarray(costs, dtype=np.float64), np.array([1.0, 2.0, 4.0, 8.0, 9.0])):
        for b in np.linspace(c[0], c[-1], 7):
            p = np.asarray(answer(c, float(b)), dtype=np.float64)
            ref = A.exit_distribution(c, float(b)).p
            where = f"for costs {np.round(c / c[0], 3).tolist()}·C_1 and budget {b / c[0]:.4g}·C_1"
            if p.shape != ref.shape:
                return wrong(f"{where} your function returned {p.shape[0] if p.ndim else 'a scalar'} values; "
                             f"it must return one p_s per exit ({len(c)}).")
            if abs(p.sum() - 1) > 1e-4 or (p < -1e-9).any():
                return wrong(f"{where} p sums to {p.sum():.4g} (or has a negative entry): it must be a distribution.")
            if abs(p @ c - b) > 1e-4 * c[-1]:
                return wrong(f"{where} the average cost Σ p_s C_s is {p @ c / c[0]:.4g}·C_1, not the budget: solve "
                             "for the a whose distribution spends exactly the budget.")
            if np.abs(p - ref).max() > 1e-3:
                return wrong(f"{where} p = {np.round(p, 3).tolist()} meets the budget, but it is not Eq. (3)'s "
                             f"shape p_s = a^(s-1)/Z (which gives {np.round(ref, 3).tolist()}): every exit gets a "
                             "share, each a times the one before. Spending the budget on the two exits around it "
                             "is random routing's plan, not Eq. (3).")
    return right("your solver matches reidbook.eval.anytime.exit_distribution at every budget from C_1 to C_S "
                 "(including both ends: a = 0 and a → ∞). The average cost rises monotonically with a, which is why "
                 "bisection finds the one a per budget.")


def _solver_solution(costs):
    def my_exit_distribution(costs, budget):
        c = np.asarray(costs, dtype=float)
        s = np.arange(len(c))

        def p_of(log_a):  # Eq. (3): p_s = a^(s-1) / Z, computed in log space (a spans many decades)
            w = np.exp(s * log_a - (s * log_a).max())
            return w / w.sum()

        lo, hi = -60.0, 60.0  # the average cost p(a) · C rises monotonically with a: bisect on log a
        for _ in range(200):
            mid = (lo + hi) / 2
            if p_of(mid) @ c < budget:
                lo = mid
            else:
                hi = mid
        return p_of((lo + hi) / 2)

    return my_exit_distribution


def _solver_wrong(costs):
    def adjacent_mix(costs, budget):  # meets the budget with the two exits around it (random routing's plan)
        c = np.asarray(costs, dtype=float)
        k = min(int(np.searchsorted(c, budget, side="right")) - 1, len(c) - 2)
        p = np.zeros(len(c))
        p[k] = (c[k + 1] - budget) / (c[k + 1] - c[k])
        p[k + 1] = 1 - p[k]
        return p

    return adjacent_mix


EQ3_SOLVER = Exercise(
    id="07.eq3_solver", title="Eq. (3)'s solver",
    prompt="Write my_exit_distribution(costs, budget) returning the exit distribution p (one p_s per exit) of Eq. (3), "
           "p_s = a^(s-1)/Z, with a chosen so that Σ_s p_s C_s = budget, for any budget from C_1 to C_S. Set "
           "my_answer = my_exit_distribution (the function); the check compares it with reidbook.eval.anytime on "
           "the chapter's exit costs.",
    hint="The average cost increases with a, from C_1 (a = 0) to C_S (a → ∞): one a per budget. Search for it by "
         "bisection on log a, and compute p in log space so that a = e^40 does not overflow.",
    check=_solver_check, solution=_solver_solution, wrong=_solver_wrong, context=_solver_context)


# ---------------------------------------------------------------------------------------------------
# 3. Conditional exit rates
# ---------------------------------------------------------------------------------------------------
def _rates_context() -> dict:
    return {"p": np.array([0.1, 0.2, 0.3, 0.4])}


def _rates_check(answer, p):
    A = _A()
    if not callable(answer):
        return wrong("my_answer should be your function my_rates(p) -> q, not its result.")
    for case in (np.asarray(p, dtype=np.float64), np.array([0.5, 0.25, 0.25, 0.0]), np.array([0.5, 0.5, 0.0, 0.0])):
        got = np.asarray(answer(case), dtype=np.float64)
        ref = A.conditional_exit_rates(case)
        if got.shape != ref.shape or not np.allclose(got, ref, atol=1e-9):
            extra = (" A stage that no query reaches gets q_s = 1 (nobody is left to stay)."
                     if np.any(np.cumsum(case)[:-1] >= 1 - 1e-12) else
                     " q_s divides p_s by the share of queries that *reach* stage s: 1 − Σ_{i<s} p_i (not ≤ s).")
            return wrong(f"for p = {case.tolist()} you give q = {np.round(got, 4).tolist()}, expected "
                         f"{np.round(ref, 4).tolist()}.{extra}")
    return right("q_1 = p_1, q_s = p_s / (1 − Σ_{i<s} p_i), and q_S = 1: of the queries still there at stage s, that "
                 "fraction leaves. Routing compares each query with this rate, not with p_s.")


def _rates_solution(p):
    def my_rates(p):
        p = np.asarray(p, dtype=float)
        reach = 1 - np.concatenate([[0.0], np.cumsum(p)[:-1]])   # share of queries that reach stage s
        q = np.ones_like(p)                                        # a stage nobody reaches: q_s = 1
        np.divide(p, reach, out=q, where=reach > 1e-12)
        q[-1] = 1.0                                                # everyone left exits at the last stage
        return np.clip(q, 0, 1)

    return my_rates


def _rates_wrong(p):
    return lambda p: np.asarray(p) / np.maximum(1 - np.cumsum(p), 1e-12)  # divides by 1 − Σ_{i≤s}, not Σ_{i<s}


RATES = Exercise(
    id="07.conditional_rates", title="Conditional exit rates",
    prompt="Write my_rates(p) returning q_s, the fraction of the queries that reach stage s which should leave there "
           "(§4.2), for an exit distribution p. A stage that no query reaches gets q_s = 1. Set my_answer = my_rates.",
    hint="Of all queries a fraction 1 − Σ_{i<s} p_i is still there at stage s, and p_s of all queries must leave "
         "there.",
    check=_rates_check, solution=_rates_solution, wrong=_rates_wrong, context=_rates_context)


# ---------------------------------------------------------------------------------------------------
# 4. Does the order of the stream matter?
# ---------------------------------------------------------------------------------------------------
def _order_context() -> dict:
    ev = _toy_eval()
    return {"ev": ev, "budget": float((ev.costs[0] + ev.costs[-1]) / 2)}


def _shuffled(ev, budget):
    order = np.random.default_rng(1).permutation(len(ev.q_pids))
    return _A().budgeted_stream(ev, budget, "margin", order=order)


def _order_check(answer, ev, budget):
    A = _A()
    cost, rank1 = (float(v) for v in (answer if not hasattr(answer, "realised_cost")
                                      else (answer.realised_cost, answer.rank1)))
    ref, stored = _shuffled(ev, budget), A.budgeted_stream(ev, budget, "margin")
    if np.isclose(cost, ref.realised_cost, rtol=1e-6) and np.isclose(rank1, ref.rank1, atol=1e-9):
        same = np.isclose(ref.realised_cost, stored.realised_cost) and np.isclose(ref.rank1, stored.rank1)
        return right(f"shuffled: cost {ref.realised_cost / 1e6:.3f} M, Rank-1 {ref.rank1:.3f}; stored order: "
                     f"{stored.realised_cost / 1e6:.3f} M, {stored.rank1:.3f}"
                     + (" — the same here; try another seed." if same else
                        " — each query is compared with the confidences of the queries before it, so the order "
                        "changes who leaves early, the realised cost and the accuracy."))
    if np.isclose(cost, stored.realised_cost, rtol=1e-6) and np.isclose(rank1, stored.rank1, atol=1e-9):
        return wrong("those are the numbers of the stream in its stored order: pass order=… to budgeted_stream.")
    return wrong(f"cost {cost:.4g} and Rank-1 {rank1:.4g} are not the shuffled margin stream's: use rule \"margin\", "
                 "the budget given, and order=np.random.default_rng(1).permutation(len(ev.q_pids)); give the cost "
                 "in multiply-adds and Rank-1 as a fraction.")


def _order_solution(ev, budget):
    from reidbook.eval import anytime as A

    order = np.random.default_rng(1).permutation(len(ev.q_pids))
    s = A.budgeted_stream(ev, budget, "margin", order=order)
    return s.realised_cost, s.rank1


def _order_wrong(ev, budget):
    s = _A().budgeted_stream(ev, budget, "margin")
    return s.realised_cost, s.rank1


STREAM_ORDER = Exercise(
    id="07.stream_order", title="Does the order of the stream matter?",
    prompt="Route the chapter's queries with margin routing at the middle budget B_mid, in the order "
           "np.random.default_rng(1).permutation(len(ev.q_pids)) instead of the stored one. Set my_answer = "
           "(realised cost in multiply-adds, Rank-1 as a fraction) of that stream, then compare with the stored order.",
    hint="budgeted_stream takes an order argument: the sequence in which the queries arrive.",
    check=_order_check, solution=_order_solution, wrong=_order_wrong, context=_order_context)


# ---------------------------------------------------------------------------------------------------
# 5. Where does the sequential ensemble win? (anytime curves)
# ---------------------------------------------------------------------------------------------------
def _curve(budgets, costs, acc):
    import pandas as pd

    rows = []
    for b in budgets:
        s = int(np.searchsorted(costs, b, side="right"))
        rows.append({"budget": float(b), "exit": s, "rank1": 0.0 if s == 0 else acc[s - 1],
                     "mAP": 0.0 if s == 0 else acc[s - 1] / 2})
    return pd.DataFrame(rows)


def _ahead_context() -> dict:
    budgets = np.linspace(0, 10, 21)
    return {"dare_curve": _curve(budgets, [1, 2, 3, 4], [0.3, 0.5, 0.6, 0.7]),
            "ens_curve": _curve(budgets, [2, 5, 9], [0.55, 0.62, 0.75])}


def _ahead_ref(dare_curve, ens_curve) -> np.ndarray:
    d, e = np.asarray(dare_curve["rank1"]), np.asarray(ens_curve["rank1"])
    return np.asarray(dare_curve["budget"])[e > d]


def _ahead_check(answer, dare_curve, ens_curve):
    if not callable(answer):
        return wrong("my_answer should be your function my_ahead(dare_curve, ens_curve) -> budgets.")
    hidden = _ahead_context()
    for ctx in ({"dare_curve": dare_curve, "ens_curve": ens_curve}, hidden):
        got = np.sort(np.asarray(answer(**ctx), dtype=np.float64).ravel())
        ref = _ahead_ref(**ctx)
        if got.shape != ref.shape or not np.allclose(got, ref):
            ties = np.asarray(ctx["ens_curve"]["rank1"]) == np.asarray(ctx["dare_curve"]["rank1"])
            why = (" Where both curves are equal (e.g. below both first exits, where neither answers) the ensemble "
                   "is not ahead." if ties.any() and len(got) > len(ref) else "")
            return wrong(f"you give {len(got)} budgets, the ensemble is strictly ahead at {len(ref)} of the "
                         f"{len(ctx['dare_curve'])}.{why}")
    ref = _ahead_ref(dare_curve, ens_curve)
    where = (f"from {ref.min() / 1e6:.1f} to {ref.max() / 1e6:.1f} M multiply-adds (not necessarily one interval)"
             if len(ref) else "nowhere on this grid")
    return right(f"the ensemble answers better at {len(ref)} of the {len(dare_curve)} budgets, {where}. Read the exit "
                 "costs table: each step of a curve is an exit becoming affordable.")


def _ahead_solution(dare_curve, ens_curve):
    def my_ahead(dare_curve, ens_curve):
        ahead = ens_curve["rank1"].to_numpy() > dare_curve["rank1"].to_numpy()   # same budget grid, row by row
        return dare_curve["budget"].to_numpy()[ahead]

    return my_ahead


def _ahead_wrong(dare_curve, ens_curve):
    return lambda dare_curve, ens_curve: dare_curve["budget"].to_numpy()[
        ens_curve["rank1"].to_numpy() >= dare_curve["rank1"].to_numpy()]


ENSEMBLE_AHEAD = Exercise(
    id="07.ensemble_ahead", title="Where does the sequential ensemble win?",
    prompt="Write my_ahead(dare_curve, ens_curve) returning the budgets (of the two anytime curves, computed on the "
           "same budget grid) at which the sequential ensemble's Rank-1 is higher than DaRe's. Set my_answer = "
           "my_ahead; then explain with the exit costs table why those budgets are where they are.",
    hint="Compare the two rank1 columns row by row; equal is not ahead.",
    check=_ahead_check, solution=_ahead_solution, wrong=_ahead_wrong, context=_ahead_context)


# ---------------------------------------------------------------------------------------------------
# 6. Which embedding gains most (deep supervision; then random erasing)
# ---------------------------------------------------------------------------------------------------
def _table(maps):
    import pandas as pd

    names = ["stage 1", "stage 2", "stage 3", "stage 4", "fusion"]
    return pd.DataFrame({"embedding": names, "rank1": np.asarray(maps) * 1.5, "rank5": np.asarray(maps) * 1.8,
                         "mAP": maps})


def _gain_context() -> dict:
    return {"before": _table([0.05, 0.10, 0.30, 0.40, 0.42]), "after": _table([0.20, 0.18, 0.33, 0.44, 0.46])}


def _gain_ref(before, after) -> str:
    gain = after.set_index("embedding")["mAP"] - before.set_index("embedding")["mAP"]
    return str(gain.idxmax())


def _gain_check(answer, before, after):
    if not callable(answer):
        return wrong("my_answer should be your function my_biggest_gain(before, after) -> embedding name.")
    for ctx in ({"before": before, "after": after}, _gain_context()):
        got, ref = str(answer(**ctx)), _gain_ref(**ctx)
        if got != ref:
            best = str(ctx["after"].set_index("embedding")["mAP"].idxmax())
            why = (" That is the best embedding after the change, not the one that gained most."
                   if got == best else "")
            return wrong(f"you name {got!r}; the largest mAP gain is {ref!r}.{why}")
    gain = after.set_index("embedding")["mAP"] - before.set_index("embedding")["mAP"]
    ref = _gain_ref(before, after)
    return right(f"{ref} gains most here ({100 * gain[ref]:+.1f} mAP points). Apply the same function to a DaRe "
                 "trained with random erasing against this chapter's DaRe.")


def _gain_solution(before, after):
    def my_biggest_gain(before, after):
        gain = after.set_index("embedding")["mAP"] - before.set_index("embedding")["mAP"]
        return gain.idxmax()

    return my_biggest_gain


def _gain_wrong(before, after):
    return lambda before, after: after.set_index("embedding")["mAP"].idxmax()


BIGGEST_GAIN = Exercise(
    id="07.biggest_gain", title="Which embedding gains most?",
    prompt="Write my_biggest_gain(before, after) returning the name of the embedding whose mAP rises most from table "
           "`before` to table `after` (tables of AnytimeEval.per_embedding()). The check runs it on this chapter's "
           "deep-supervision ablation (before: fusion loss only, after: with deep supervision). Then train DaRe with "
           "random erasing (zoo.get(\"dare\", PROFILE, train_aug={\"random_erasing\": 0.5}), the +RE rows of Table 1) "
           "and ask the same question of SynthReID's occluded images.",
    hint="Index both tables by embedding and subtract; the largest difference, not the largest value after.",
    check=_gain_check, solution=_gain_solution, wrong=_gain_wrong, context=_gain_context)


# ---------------------------------------------------------------------------------------------------
# 7. DaRe(De): the dearest exit
# ---------------------------------------------------------------------------------------------------
def _densenet_costs() -> np.ndarray:
    import torch

    from ..models import build_paper_model

    with torch.device("meta"):
        model = build_paper_model("dare", arch="densenet201")
    return _A().exit_costs(model, (256, 128))


def _dearest_context() -> dict:
    return {"costs": np.array([820e6, 1360e6, 2580e6, 2800e6])}


def _dearest_check(answer, costs=None):
    c = _densenet_costs() if costs is None else np.asarray(costs, dtype=np.float64)
    step = np.diff(np.concatenate([[0.0], c]))
    ref = int(step.argmax()) + 1
    got = int(answer)
    if got == ref:
        return right(f"exit {ref}: its own step costs {step[ref - 1] / 1e6:.0f} M multiply-adds of the "
                     f"{c[-1] / 1e6:.0f} M total (steps: {', '.join(f'{v / 1e6:.0f}' for v in step)} M).")
    if got == len(c):
        return wrong("the last exit always has the largest *cumulative* cost; the question is which exit's own step "
                     "(C_s − C_{s−1}) is dearest.")
    if not 1 <= got <= len(c):
        return wrong(f"there is no exit {got}: the exits are numbered 1 to {len(c)}.")
    return wrong(f"exit {got}'s own step is {step[got - 1] / 1e6:.0f} M multiply-adds; compare C_s − C_{{s−1}} over "
                 "all exits.")


def _dearest_solution(costs=None):
    import torch

    from reidbook.eval import anytime as A
    from reidbook.models import build_paper_model

    if costs is None:
        with torch.device("meta"):
            costs = A.exit_costs(build_paper_model("dare", arch="densenet201"), (256, 128))
    step = np.diff(np.concatenate([[0.0], costs]))   # C_s − C_{s−1}, with C_0 = 0
    return int(step.argmax()) + 1


def _dearest_wrong(costs=None):
    return len(costs)  # the largest cumulative cost


DEAREST_EXIT = Exercise(
    id="07.dearest_exit", title="DaRe(De): the dearest exit",
    prompt="Build DaRe on DenseNet-201 (build_paper_model(\"dare\", arch=\"densenet201\") on the meta device) and "
           "measure its exit costs at 256×128 with A.exit_costs. Which exit (1–4) adds the most multiply-adds of its "
           "own (C_s − C_{s−1})? Set my_answer to its number.",
    hint="exit_costs are cumulative: take the differences (with C_0 = 0) before looking for the largest.",
    check=_dearest_check, solution=_dearest_solution, wrong=_dearest_wrong, context=_dearest_context)


# ---------------------------------------------------------------------------------------------------
# The prediction before Fig. 6, and the quiz
# ---------------------------------------------------------------------------------------------------
def _margin_vs_random(gap: float, tol: float = 0.01) -> int:
    """``gap``: margin routing's Rank-1 minus random routing's at the middle budget (fractions)."""
    return 0 if gap > tol else (2 if gap < -tol else 1)


MARGIN_VS_RANDOM = Prediction(
    id="07.margin_vs_random",
    prompt="At the middle budget (C_1 + C_S)/2, how will margin routing's Rank-1 compare with random routing's "
           "(every query sent at random to one of the two exits around the budget)?",
    options=("margin more than 1 point above random", "within 1 point of each other",
             "margin more than 1 point below random"),
    outcome=_margin_vs_random,
    why="In the paper (Fig. 6) margin routing lies above random routing at every budget between the exits: knowing "
        "which queries are easy, it answers them early and spends the budget on the hard ones. It can only do that "
        "if the early exits answer some queries right, and if its confidence tells those apart.")

QUIZ = [
    Question("Why does DaRe put a loss on every stage's embedding (deep supervision)?",
             ("to make the fused embedding larger", "so that each early embedding identifies people on its own and "
              "can serve as an exit", "to reduce the number of multiply-adds", "because the fusion has no loss"),
             1, "Trained only through the fusion, an early stage learns what helps the fusion, not to rank people by "
                "itself — and an early exit answers with that stage alone (Fig. 4)."),
    Question("In the anytime setting (§4.1), what does the model answer with when a query's budget runs out?",
             ("the fusion of all stages", "the embedding of the most recent exit that fitted the budget",
              "a random exit", "nothing until the full network has run"),
             1, "The budget is not known in advance; the deepest exit computed so far answers. Below C_1 there is no "
                "answer at all."),
    Question("Eq. (3) is solved for a budget equal to C_1, the cost of the first exit. What are a and p?",
             ("a = 1, p uniform", "a = 0, every query exits at stage 1", "a → ∞, every query exits at the last stage",
              "no solution exists"),
             1, "The average cost can only be C_1 if every query leaves at exit 1: p_1 = 1, which is a = 0. At C_S "
                "it is the other end, a → ∞."),
    Question("Why are the sequential ensemble's later exits dearer than DaRe's at the same depth?",
             ("its networks are deeper", "its members share nothing: each later exit pays for every earlier network "
              "too", "it uses larger images", "it evaluates with re-ranking"),
             1, "ResNet-18, -34 and -50 run one after another; the cost of exit 3 is the sum of all three. DaRe's "
                "exits are taps on one trunk, so exit s costs only up to stage s and its head."),
    Question("Random routing spends a budget between C_k and C_{k+1} on those two exits. Where does its expected "
             "accuracy lie on the accuracy–cost plot?",
             ("on the straight line between the two single exits", "above the better of the two exits",
              "at the first exit's accuracy", "on Eq. (3)'s curve"),
             0, "Each query is answered by exit k with probability p_k and by exit k+1 otherwise, blind to the query: "
                "the expectation is the chord between the two dots. A routing that knows which queries are easy lies "
                "above it."),
]

_register("07", exercises=[EQ3_BY_HAND, EQ3_SOLVER, RATES, STREAM_ORDER, ENSEMBLE_AHEAD, BIGGEST_GAIN, DEAREST_EXIT],
          quiz=QUIZ, predictions=[MARGIN_VS_RANDOM])
