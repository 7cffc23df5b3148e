"""Chapter 00 (the data and the yardstick): exercises, the prediction and the quiz.

Exercises: the histogram matcher under cosine distance (``00.cosine``), one query's mAP by hand
(``00.tiny_map``), average precision written as a function (``00.ap_by_hand``, checked against
:func:`reidbook.eval.evaluate_rank` on edge cases), re-ranking with λ = 1 (``00.rerank_lambda``).
Each check recomputes the truth from what the chapter passes (or from a fixed case), so it holds on any
data set and profile.
"""
from __future__ import annotations

import numpy as np

from .core import Exercise, Prediction, Question, not_attempted, register as _register, right, wrong


# ----------------------------------------------------------------------------- 00.cosine
def _mAP(distmat, q_pids, g_pids, q_cams, g_cams) -> float:
    from ..eval import evaluate_rank

    return float(evaluate_rank(distmat, q_pids, g_pids, q_cams, g_cams).mAP)


def _cosine_context() -> dict:
    """A small histogram-matcher case: 6 people, one query and three gallery crops each (random colours)."""
    from ..models.histogram import color_histogram_features

    rng = np.random.default_rng(0)
    base = rng.integers(0, 256, size=(6, 1, 1, 3))
    q = np.clip(base + rng.normal(0, 40, size=(6, 32, 16, 3)), 0, 255).astype(np.uint8)
    g = np.clip(np.repeat(base, 3, 0) + rng.normal(0, 40, size=(18, 32, 16, 3)), 0, 255).astype(np.uint8)
    return {"qf": color_histogram_features(q, size=(32, 16)), "gf": color_histogram_features(g, size=(32, 16)),
            "q_pids": np.arange(6), "g_pids": np.repeat(np.arange(6), 3),
            "q_cams": np.zeros(6, int), "g_cams": np.tile([1, 2, 3], 6)}


def _cosine_truth(qf, gf, q_pids, g_pids, q_cams, g_cams) -> tuple[str, float, float]:
    from ..eval import compute_distmat

    euc = _mAP(compute_distmat(qf, gf, metric="euclidean"), q_pids, g_pids, q_cams, g_cams)
    cos = _mAP(compute_distmat(qf, gf, metric="cosine"), q_pids, g_pids, q_cams, g_cams)
    way = "same" if abs(cos - euc) < 1e-4 else ("up" if cos > euc else "down")
    return way, euc, cos


def _cosine_check(answer, qf, gf, q_pids, g_pids, q_cams, g_cams):
    if not isinstance(answer, str) or answer.strip().lower() not in ("up", "down", "same"):
        return wrong(f"answer with one word, \"up\", \"down\" or \"same\" (got {answer!r}).")
    way, euc, cos = _cosine_truth(qf, gf, q_pids, g_pids, q_cams, g_cams)
    norms = np.linalg.norm(np.asarray(qf, dtype=np.float64), axis=1)
    equal_norms = bool(np.allclose(norms, norms[0], rtol=1e-4))
    said = f"mAP {euc:.2%} with Euclidean distance, {cos:.2%} with cosine"
    if answer.strip().lower() != way:
        return wrong("not on these features. Compute both mAPs (compute_distmat(..., metric=...), then "
                     "evaluate_rank) and compare them before you explain it.")
    if way == "same" and equal_norms:
        return right(f"{said}. Every feature row has the same length ({norms[0]:.3f}: each stripe's square-rooted "
                     "histogram has unit norm), and for vectors of equal length ‖a − b‖² = 2‖a‖² − 2 a·b, so the "
                     "Euclidean distance is a monotone function of the cosine: the same rankings, the same mAP. "
                     "A normalised distance helps when lengths carry nuisance (a colour cast or exposure that scales "
                     "a feature); these histograms are normalised already.")
    return right(f"{said}. Cosine ignores each feature's length; it helps when the length carries nuisance "
                 "(exposure, a colour cast) rather than identity.")


def _cosine_solution(qf, gf, q_pids, g_pids, q_cams, g_cams):
    from reidbook.eval import compute_distmat, evaluate_rank

    euclidean = evaluate_rank(compute_distmat(qf, gf, metric="euclidean"), q_pids, g_pids, q_cams, g_cams).mAP
    cosine = evaluate_rank(compute_distmat(qf, gf, metric="cosine"), q_pids, g_pids, q_cams, g_cams).mAP
    if abs(cosine - euclidean) < 1e-4:
        return "same"      # the rows all have the same norm: both distances rank the gallery identically
    return "up" if cosine > euclidean else "down"


def _cosine_wrong(**context):
    way = _cosine_truth(**context)[0]
    return "up" if way != "up" else "down"   # "normalising always helps"


COSINE = Exercise(
    id="00.cosine", title="Cosine instead of Euclidean",
    prompt="Score the colour-histogram matcher with metric=\"cosine\" in compute_distmat instead of the Euclidean "
           "distance. Does mAP go \"up\", \"down\" or stay the \"same\"? Set my_answer to that word, then explain "
           "why (the check tells you whether the word is right and what explains it).",
    hint="Before you guess, look at the lengths of the feature rows: np.linalg.norm(qf, axis=1). How does "
         "‖a − b‖² relate to a·b when ‖a‖ = ‖b‖?",
    check=_cosine_check, solution=_cosine_solution, wrong=_cosine_wrong, context=_cosine_context)


# ----------------------------------------------------------------------------- 00.tiny_map
def _tiny_context() -> dict:
    """The chapter's tiny case: one query (person 1, camera 0), six gallery items in rank order."""
    return {"distmat": np.arange(6, dtype=float)[None, :], "q_pid": 1, "q_cam": 0,
            "g_pids": np.array([2, 1, 1, 3, 1, 4]), "g_cams": np.array([1, 0, 1, 1, 2, 1])}


def _tiny_truth(distmat, q_pid, q_cam, g_pids, g_cams):
    from ..eval import evaluate_rank

    r = evaluate_rank(distmat, np.array([q_pid]), g_pids, np.array([q_cam]), g_cams, max_rank=1)
    return float(r.mAP), float(r.mAP_official)


def _tiny_check(answer, distmat, q_pid, q_cam, g_pids, g_cams):
    value = float(answer)
    truth, official = _tiny_truth(distmat, q_pid, q_cam, g_pids, g_cams)
    if np.isclose(value, truth, atol=1e-3):
        return right(f"mAP = {truth:.4f}: with the same-camera image of person {q_pid} removed, the hits sit at ranks "
                     "k_j of the shortened list and AP is the mean of j / k_j over them (one query, so mAP = AP).")
    # the usual slips, recognised
    order = np.argsort(distmat[0], kind="stable")
    rel_all = (np.asarray(g_pids)[order] == q_pid)
    ranks_all = np.flatnonzero(rel_all) + 1
    kept_junk = float(np.mean(np.arange(1, len(ranks_all) + 1) / ranks_all)) if len(ranks_all) else np.nan
    if np.isclose(value, kept_junk, atol=1e-3):
        return wrong("that keeps the gallery image of the query's person taken by the query's own camera; the "
                     "protocol removes it before ranks are counted.")
    if np.isclose(value, official, atol=1e-3):
        return wrong("that is the official (trapezoidal) Market-1501 AP; the exercise asks for the common AP, "
                     "the mean of P@k at each hit.")
    return wrong(f"{value:.4f} is not it. Remove the junk item, list the ranks k_j of the remaining hits, "
                 "and average j / k_j.")


def _tiny_solution(**case):
    # gallery in rank order: pid/cam 2/1, 1/0, 1/1, 3/1, 1/2, 4/1; the query is person 1 seen by camera 0.
    # 1/0 is the query's person on the query's camera: removed. What is left: 2, 1, 3, 1, 4.
    # hits at ranks k_1 = 2 and k_2 = 4: P@2 = 1/2, P@4 = 2/4
    return (1 / 2 + 2 / 4) / 2


def _tiny_wrong(**case):
    return (1 / 2 + 2 / 3 + 3 / 5) / 3   # the same-camera image of person 1 counted as a hit


TINY_MAP = Exercise(
    id="00.tiny_map", title="mAP by hand for one query",
    prompt="One query (person 1, camera 0) and six gallery items, already in rank order: pids 2, 1, 1, 3, 1, 4 from "
           "cameras 1, 0, 1, 1, 2, 1. Work out the (common) mAP by hand and set my_answer to it.",
    hint="Apply the protocol first: which gallery item shows the query's person seen by the query's camera? Then "
         "P@k at each remaining hit, then the mean.",
    check=_tiny_check, solution=_tiny_solution, wrong=_tiny_wrong, context=_tiny_context)


# ----------------------------------------------------------------------------- 00.ap_by_hand
#: The cases the check runs: edge cases first (one item, all hits, the only hit last), then ordinary lists.
_AP_CASES = (
    [True], [True, True, True], [False, False, False, True], [False, True],
    [True, False, False, False], [False, True, False, True, False], [1, 0, 1, 1, 0, 0, 1],
)


def _reidbook_ap(matches) -> float:
    """AP of one ranked boolean list by reidbook's own metric (evaluate_rank on a one-query problem)."""
    from ..eval import evaluate_rank

    m = np.asarray(matches, dtype=bool)
    g_pids = np.where(m, 1, 2 + np.arange(len(m)))        # strangers all differ from the query's person
    r = evaluate_rank(np.arange(len(m), dtype=float)[None, :], np.array([1]), g_pids,
                      np.array([0]), np.ones(len(m), int), max_rank=1)
    return float(r.all_AP[0])


def _ap_cases() -> list:
    rng = np.random.default_rng(7)
    cases = [list(c) for c in _AP_CASES]
    for n in (20, 50):
        m = rng.random(n) < 0.3
        m[rng.integers(n)] = True
        cases.append(m)                                     # a numpy bool array, as a real ranking gives
    return cases


def _ap_check(answer):
    if not callable(answer):
        return wrong("my_answer should be your function itself (average_precision), not its result.")
    for case in _ap_cases():
        got = answer(case)
        if got is None:
            return not_attempted("your function returns None: write its body (see the prompt above).")
        want = _reidbook_ap(case)
        if not np.isclose(float(got), want, atol=1e-6):
            shown = [int(x) for x in np.asarray(case, dtype=bool)]
            return wrong(f"for matches {shown} your function gives {float(got):.4f}, reidbook's metric {want:.4f}. "
                         "Average the precision at the ranks of the hits only, P@k_j = j / k_j.")
    return right(f"your AP agrees with reidbook's evaluate_rank on all {len(_ap_cases())} cases, including a "
                 "single item, all hits, and the only hit at the end of the list.")


def _ap_solution():
    def average_precision(matches):
        m = np.asarray(matches, dtype=bool)
        hit_ranks = np.flatnonzero(m) + 1               # k_1 < … < k_H, ranks from 1
        j = np.arange(1, len(hit_ranks) + 1)            # the j-th hit
        return float(np.mean(j / hit_ranks))            # mean of P@k_j = j / k_j

    return average_precision


def _ap_wrong():
    def average_precision(matches):
        m = np.asarray(matches, dtype=float)
        return float(np.mean(np.cumsum(m) / np.arange(1, len(m) + 1)))   # precision at every rank, not at the hits

    return average_precision


AP_BY_HAND = Exercise(
    id="00.ap_by_hand", title="Average precision, written by you",
    prompt="Write average_precision(matches): matches is one query's ranked gallery as booleans (True = a true "
           "match), with junk already removed and at least one True. Return the common (non-interpolated) AP. "
           "The check compares your function with reidbook's metric on several lists, edge cases included.",
    hint="Only the ranks of the hits matter: find them (ranks count from 1), the precision at the j-th hit is "
         "j divided by its rank, and AP is the mean over the hits.",
    check=_ap_check, solution=_ap_solution, wrong=_ap_wrong)


# ----------------------------------------------------------------------------- 00.rerank_lambda
def _rerank_context() -> dict:
    """Clustered features for 8 people (one query, three gallery crops each), and their distance matrices."""
    from ..eval import compute_distmat

    rng = np.random.default_rng(3)
    centres = rng.normal(size=(8, 16))
    qf = centres + 0.9 * rng.normal(size=(8, 16))
    gf = np.repeat(centres, 3, 0) + 0.9 * rng.normal(size=(24, 16))
    qf, gf = qf.astype(np.float32), gf.astype(np.float32)
    return {"distmat": compute_distmat(qf, gf), "q_q": compute_distmat(qf, qf), "g_g": compute_distmat(gf, gf),
            "q_pids": np.arange(8), "g_pids": np.repeat(np.arange(8), 3),
            "q_cams": np.zeros(8, int), "g_cams": np.tile([1, 2, 3], 8)}


def _rerank_mAP(lam, distmat, q_q, g_g, q_pids, g_pids, q_cams, g_cams, k1, k2) -> float:
    from ..eval import re_ranking

    return _mAP(re_ranking(distmat, q_q, g_g, k1=k1, k2=k2, lambda_value=lam), q_pids, g_pids, q_cams, g_cams)


def _rerank_check(answer, distmat, q_q, g_g, q_pids, g_pids, q_cams, g_cams, k1=20, k2=6):
    value = float(answer)
    args = (distmat, q_q, g_g, q_pids, g_pids, q_cams, g_cams, k1, k2)
    truth = _rerank_mAP(1.0, *args)
    before = _mAP(distmat, q_pids, g_pids, q_cams, g_cams)
    if np.isclose(value, truth, atol=1e-4):
        return right(f"mAP {truth:.2%} with λ = 1, and {before:.2%} before re-ranking: d* = (1 − λ) d_J + λ d is the "
                     "original distance when λ = 1 (reidbook uses its square, scaled by a constant per query "
                     "row, which changes no ranking), so the ranking, and the mAP, are the ones without re-ranking.")
    if np.isclose(value, _rerank_mAP(0.0, *args), atol=1e-4):
        return wrong("that is λ = 0, the Jaccard distance alone; λ is the weight of the original distance.")
    return wrong(f"{value:.4f} is not what λ = 1 gives. Write out d* = (1 − λ) d_J + λ d for λ = 1: which "
                 "distance is left, and which earlier result ranks by it?")


def _rerank_solution(distmat, q_q, g_g, q_pids, g_pids, q_cams, g_cams, **_):
    from reidbook.eval import evaluate_rank

    # λ = 1 leaves d* = d: the ranking, and so the mAP, are those of the matcher without re-ranking
    return evaluate_rank(distmat, q_pids, g_pids, q_cams, g_cams).mAP


def _rerank_wrong(distmat, q_q, g_g, q_pids, g_pids, q_cams, g_cams, k1=20, k2=6):
    return _rerank_mAP(0.0, distmat, q_q, g_g, q_pids, g_pids, q_cams, g_cams, k1, k2)   # λ read as the Jaccard weight


RERANK_LAMBDA = Exercise(
    id="00.rerank_lambda", title="Re-ranking with λ = 1",
    prompt="Before you run it: what mAP must k-reciprocal re-ranking give with λ = 1 on the histogram matcher? Set "
           "my_answer to that number, then confirm it with re_ranking(..., lambda_value=1.0).",
    hint="Put λ = 1 into d* = (1 − λ) d_J + λ d. The number is one the chapter has already printed.",
    check=_rerank_check, solution=_rerank_solution, wrong=_rerank_wrong, context=_rerank_context)


# ----------------------------------------------------------------------------- prediction
def _naive_outcome(mAP: float, chance_mAP: float) -> int:
    ratio = mAP / max(chance_mAP, 1e-12)
    if ratio < 0.8:
        return 0
    if ratio <= 1.25:
        return 1
    return 2 if ratio <= 3.0 else 3


NAIVE_VS_CHANCE = Prediction(
    id="00.naive_vs_chance",
    prompt="A plain colour histogram of the whole crop (HSV, four stripes, cosine), with no knowledge of people: "
           "how does its mAP compare with a random ranking's?",
    options=("below chance (under 0.8× a random ranking's mAP)", "about chance (0.8× to 1.25×)",
             "somewhat better (1.25× to 3×)", "far better (over 3×)"),
    outcome=_naive_outcome,
    why="A matcher that sees the whole crop matches whatever fills it: when backgrounds or a camera's colour cast "
        "dominate, strangers from the same camera look closest. The two diagnostics above say which it is.")


# ----------------------------------------------------------------------------- quiz
QUIZ = (
    Question("The gallery holds an image of the query's person taken by the query's own camera. What does the "
             "Market-1501 protocol do with it?",
             ("counts it as a hit", "counts it as a miss", "removes it before the ranks are counted",
              "keeps it but moves it to the end of the list"),
             2, "Same person, same camera is too easy (same scene, often the same moment), so it is removed — "
                "neither rewarded nor punished. Removing it shortens the list, which changes the ranks of the "
                "later hits."),
    Question("After the removal, a query's only two true matches sit at ranks 1 and 4. What is its (common) AP?",
             ("0.50", "0.75", "0.625", "1.00"),
             1, "AP = (P@1 + P@4) / 2 = (1/1 + 2/4) / 2 = 0.75. Only the ranks of the hits enter, and the j-th hit "
                "contributes j / k_j."),
    Question("A matcher has Rank-1 90 % but mAP 40 %. What does that say?",
             ("its first answer is usually right, but many other true matches sit far down the list",
              "it is wrong for 60 % of the queries",
              "mAP only looks at the first hit, so the two cannot disagree",
              "the two were computed on different queries"),
             0, "Rank-1 asks only whether the first item is a hit; AP rewards finding *every* true match early. A "
                "model can nail the easiest view of a person and miss the other cameras' views."),
    Question("A query's INP is H / k_H. What does a low INP mean?",
             ("the first hit is far down the list", "the last true match is far down the list: finding all of "
              "them costs many inspections", "the query has few true matches", "the gallery is small"),
             1, "INP divides the number of hits by the rank of the last one: it is the share of inspected items "
                "that were hits when the last match is found. mINP averages it over queries (Ye et al.)."),
    Question("k-reciprocal re-ranking treats a gallery image as a close neighbour of the query when …",
             ("its original distance is below a threshold",
              "each is among the k nearest neighbours of the other",
              "it comes from the same camera",
              "it has the same colour histogram"),
             1, "Reciprocity is what re-ranking adds: being in the query's top k is not enough, the query must also "
                "be in the image's top k. The Jaccard distance over such neighbourhoods is mixed with the original "
                "distance by λ."),
)

_register("00", exercises=[COSINE, TINY_MAP, AP_BY_HAND, RERANK_LAMBDA], quiz=QUIZ, predictions=[NAIVE_VS_CHANCE])
