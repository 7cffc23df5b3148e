"""Chapter 02 (MGN): exercises, predictions and the quiz (see ``ch01.py`` for the pattern).

Every exercise's ``solution`` is what a learner would write (its source is shown, collapsed), ``wrong`` a
typical mistake its check must catch, ``context`` a small stand-in for what the chapter passes: paper-size
models are built on PyTorch's ``meta`` device (shapes and parameter counts, no memory), the loss-term
exercise uses real width-1/8 models on a tiny batch.
"""
from __future__ import annotations

from ..models.mgn_paper import TABLE2, table5_row
from .core import Exercise, Prediction, Question, register as _register, right, wrong

PAPER_INPUT = (384, 128)   # MGN §4.1: the paper's input size (Table 1's map sizes are at this size)


# ----------------------------------------------------------------------------------------------
# 1. Count before you build: MGN w/ Part-4
# ----------------------------------------------------------------------------------------------
def _meta_mgn(**options):
    import torch

    from ..models import build_model

    with torch.device("meta"):
        return build_model("mgn", 10, profile="full", **options)


def _count_part4_context() -> dict:
    return {"model": _meta_mgn(variant="mgn_part4")}


def _count_part4_check(answer, model) -> object:
    n, d = (int(v) for v in answer)
    want_n, want_d = len(model.feature_names), model.feature_dim
    if (n, d) == (want_n, want_d):
        return right(f"{want_n} reduced features × {model.reduce_dim} = {want_d} test dimensions: every branch has its "
                     "own f_g, and a Part-N branch adds N stripe features f_p (Table 1's 'Dims' column).")
    stripes = sum(s.parts if s.parts > 1 else 1 for s in model.specs.values())
    if n == stripes:
        return wrong(f"{n} counts the stripes (and the Global feature) but not each part branch's own global "
                     "feature f_g: a Part-N branch gives N + 1 features.")
    if n == want_n:
        return wrong(f"{n} features is right; the dimensions are not: the test descriptor concatenates the *reduced* "
                     f"features, {model.reduce_dim}-d each at width 1.")
    return wrong(f"({n}, {d}) is not it: list the branches of MGN w/ Part-4 and count 1 feature for the Global branch "
                 "and N + 1 for a Part-N branch.")


def _count_part4_solution(model):
    # Global: f_g; Part-N: f_g and N stripe features f_p (Table 1) -> 1 + 3 + 4 + 5 for G, P2, P3, P4
    n = sum(1 + (spec.parts if spec.parts > 1 else 0) for spec in model.specs.values())
    return n, n * model.reduce_dim          # each reduced feature is 256-d at width 1


def _count_part4_wrong(model):
    n = sum(spec.parts for spec in model.specs.values())   # stripes only: forgets the part branches' f_g
    return n, n * model.reduce_dim


COUNT_PART4 = Exercise(
    id="02.count_part4", title="Count before you build",
    prompt="How many reduced features, and how many test dimensions, does 'MGN w/ Part-4' (Global, Part-2, Part-3 "
           "and Part-4 branches) have at width 1? Set my_answer = (features, dimensions).",
    hint="Table 1: a branch gives one global feature f_g, and a Part-N branch also one feature per stripe; every "
         "reduced feature has the same size.",
    check=_count_part4_check, solution=_count_part4_solution, wrong=_count_part4_wrong,
    context=_count_part4_context)


# ----------------------------------------------------------------------------------------------
# 2. Six stripes: how many rows does each see?
# ----------------------------------------------------------------------------------------------
PART6_BRANCHES = [("global", 1, True), ("part2", 2, False), ("part6", 6, False)]


def _part6_context() -> dict:
    return {"model": _meta_mgn(branches=PART6_BRANCHES), "input_size": PAPER_INPUT}


def _part6_truth(model, input_size) -> tuple[int, int]:
    from ..models.mgn import branch_table
    from ..viz.response import stripe_bounds

    row = next(r for r in branch_table(model, input_size) if r["Branch"] == "Part-6")
    h = int(row["Map Size"].split("×")[0])
    widths = {b - a for a, b in stripe_bounds(h, 6)}
    return h, max(widths)


def _part6_check(answer, model, input_size=PAPER_INPUT) -> object:
    h, rows = _part6_truth(model, input_size)
    a = int(answer)
    if a == rows:
        return right(f"the Part-6 map is {h} rows tall at {input_size[0]}×{input_size[1]} (no down-sampling in "
                     f"res_conv5_1), so each of the six stripes max-pools {rows} rows — "
                     f"{rows * 16} input rows, a thin band of the body.")
    if a * 2 == rows:
        return wrong(f"{a} rows would be a stripe of the Global branch's map (half as tall); a part branch keeps "
                     "res_conv5_1's stride at 1.")
    return wrong(f"{a} is not it: read the Part-6 row's map size in its Table 1 and divide its height by 6.")


def _part6_solution(model, input_size=(384, 128)):
    from reidbook.models.mgn import branch_table
    from reidbook.viz.response import stripe_bounds

    row = next(r for r in branch_table(model, input_size) if r["Branch"] == "Part-6")
    h = int(row["Map Size"].split("×")[0])     # 24 rows at 384×128
    a, b = stripe_bounds(h, 6)[0]              # the pooling's stripe boundaries
    return b - a


def _part6_wrong(model, input_size=PAPER_INPUT):
    return _part6_truth(model, input_size)[1] // 2     # the Global branch's 12-row map


PART6_ROWS = Exercise(
    id="02.part6_rows", title="Change the number of stripes",
    prompt="Build an MGN with a Part-6 branch instead of Part-3 (branches=[('global', 1, True), ('part2', 2, False), "
           "('part6', 6, False)]) and print its Table 1 at 384×128. How many rows of the branch's output map does "
           "each of the six stripes pool? Set my_answer to a number.",
    hint="Table 1's 'Map Size' of the Part-6 row gives the map's height; the stripes split it evenly when it divides.",
    check=_part6_check, solution=_part6_solution, wrong=_part6_wrong, context=_part6_context)


# ----------------------------------------------------------------------------------------------
# 3. Share the reductions: what it saves
# ----------------------------------------------------------------------------------------------
def _share_context() -> dict:
    return {"model": _meta_mgn()}


def _share_check(answer, model) -> object:
    one = sum(p.numel() for p in model.reductions["part3_p1"].parameters())
    conv = sum(p.numel() for n, p in model.reductions["part3_p1"].named_parameters() if p.dim() > 1)
    a = int(answer)
    if a == 2 * one:
        return right(f"{a:,} = 2 × {one:,}: the three stripes keep one reduction instead of three. Now think: one "
                     "shared 1×1 projection maps head, torso and legs into one space, so the stripe features become "
                     "less specific — the paper keeps them separate (Fig. 3).")
    if a == 3 * one:
        return wrong("sharing keeps one of the three reductions: two are saved, not three.")
    if a == 2 * conv:
        return wrong("the reduction is a 1×1 conv *and* a BatchNorm: its γ and β are parameters too.")
    return wrong(f"{a:,} is not it: a reduction is a 1×1 conv 2048→256 (no bias) + BatchNorm(256); count what "
                 "disappears when two of the three stripes reuse the first one's.")


def _share_solution(model):
    import copy

    from reidbook.profile import count_params

    shared = copy.deepcopy(model)                      # keep the original intact
    before = count_params(shared)
    shared.reductions["part3_p2"] = shared.reductions["part3_p1"]
    shared.reductions["part3_p3"] = shared.reductions["part3_p1"]
    return before - count_params(shared)               # parameters() counts a shared module once


def _share_wrong(model):
    return 3 * sum(p.numel() for p in model.reductions["part3_p1"].parameters())


SHARE_REDUCTIONS = Exercise(
    id="02.share_reductions", title="Share the reductions",
    prompt="The paper insists the eight 1×1 reductions do not share weights. Make Part-3's three stripes share one "
           "reduction in a paper-size MGN (width 1) and count the parameters this saves. Set my_answer to the number. "
           "What do you expect to happen to the part features' diversity?",
    hint="model.reductions is a ModuleDict: assign the same module to two more keys, and count parameters before and "
         "after (model.parameters() yields a shared tensor once).",
    check=_share_check, solution=_share_solution, wrong=_share_wrong, context=_share_context)


# ----------------------------------------------------------------------------------------------
# 4. Implement it yourself: MGN's loss terms counted from its outputs
# ----------------------------------------------------------------------------------------------
LOSS_TERM_VARIANTS = ("mgn", "mgn_part4", "part3")


def _loss_terms_context() -> dict:
    import torch

    from ..models import build_model

    torch.manual_seed(0)
    models = {v: build_model("mgn", 10, profile="smoke", variant=v) for v in LOSS_TERM_VARIANTS}
    # 192×64 gives 12-row part maps at any width: 2, 3 and 4 stripes tile them exactly
    return {"models": models, "images": torch.randn(2, 3, 192, 64)}


def _loss_terms_truth(model) -> tuple[int, int]:
    """From the model's structure: a classifier per feature (§3.2, Eq. 1), a triplet per branch's f_g (Eq. 2)."""
    return len(model.classifiers), (len(model.specs) if model.triplet else 0)


def _loss_terms_check(answer, models=None, images=None) -> object:
    if models is None or images is None:
        ctx = _loss_terms_context()
        models, images = ctx["models"], ctx["images"]
    if not callable(answer):
        return wrong("my_answer must be your function count_loss_terms (the function itself, not a call to it).")
    got = {}
    for v, model in models.items():
        was = model.training
        try:
            got[v] = tuple(int(x) for x in answer(model, images))
        finally:
            model.train(was)
    want = {v: _loss_terms_truth(m) for v, m in models.items()}
    bad = [v for v in models if got[v] != want[v]]
    if not bad:
        table = ", ".join(f"{v}: {s} softmax + {t} triplet" for v, (s, t) in want.items())
        return right(f"{table} — a cross-entropy per classifier (on z_g for the global features, on f_p for the "
                     "stripes) and a batch-hard triplet per branch's reduced f_g. (MGN w/o TP still returns its f_g "
                     "under 'triplet'; its recipe, loss_specs('mgn_wo_tp'), has no triplet term.)")
    v = bad[0]
    (s, t), (ws, wt) = got[v], want[v]
    if s == ws + wt:
        return wrong(f"{v}: {s} softmax terms counts the reduced global features f_g as classified too; in MGN the "
                     "global softmax sits on the un-reduced z_g — one classifier per feature, not two.")
    return wrong(f"{v}: you counted {s} softmax + {t} triplet terms; the model's loss has {ws} + {wt}. Count the lists "
                 "the training-mode output holds under 'logits' and 'triplet'.")


def _loss_terms_solution(**_):
    def count_loss_terms(model, images):
        out = model.train()(images)        # training mode: a dict of what the losses read
        n_softmax = len(out["logits"])     # one cross-entropy (Eq. 1) per classifier's logits
        n_triplet = len(out["triplet"])    # one batch-hard triplet (Eq. 2) per branch's reduced f_g
        return n_softmax, n_triplet
    return count_loss_terms


def _loss_terms_wrong(**_):
    def count_loss_terms(model, images):
        out = model.train()(images)
        return len(out["logits"]) + len(out["triplet"]), len(out["triplet"])   # "softmax on every feature"
    return count_loss_terms


LOSS_TERMS = Exercise(
    id="02.loss_terms", title="MGN's loss terms, counted from its outputs",
    prompt="Write count_loss_terms(model, images) that runs an MGN-style model in training mode on a batch and returns "
           "(number of softmax terms, number of triplet terms) that MGN's loss adds for it (§3.2). The check runs it "
           "on MGN, MGN w/ Part-4 and a single Part-3 network and compares with the models' own classifiers and "
           "branches. Set my_answer = count_loss_terms.",
    hint="In train() mode the model returns a dict; each loss term reads one entry of a list in it (the docstring of "
         "reidbook.models.mgn.MGN names the keys).",
    check=_loss_terms_check, solution=_loss_terms_solution, wrong=_loss_terms_wrong, context=_loss_terms_context)


# ----------------------------------------------------------------------------------------------
# 5. Softmax on 256-d: which metric does the triplet move more?
# ----------------------------------------------------------------------------------------------
def _which_moved(with_tp, without_tp) -> tuple[float, float]:
    return (100 * (with_tp["rank1"] - without_tp["rank1"]), 100 * (with_tp["mAP"] - without_tp["mAP"]))


def _triplet_context() -> dict:
    return {"with_tp": {"rank1": 0.62, "mAP": 0.41}, "without_tp": {"rank1": 0.61, "mAP": 0.37}}


def _norm_metric(a: str) -> str:
    a = str(a).strip().lower().replace("-", "").replace(" ", "")
    return {"rank1": "rank1", "r1": "rank1", "map": "mAP"}.get(a, a)


def _triplet_check(answer, with_tp, without_tp=None) -> object:
    if without_tp is None:
        return wrong("train MGN w/o TP first (the commented lines of the exercise cell) and pass its metrics as "
                     "without_tp; then compare.")
    dr, dm = _which_moved(with_tp, without_tp)
    a = _norm_metric(answer)
    if a not in ("rank1", "mAP"):
        return wrong(f"answer 'rank1' or 'mAP', not {answer!r}.")
    moved = "mAP" if abs(dm) > abs(dr) else "rank1"
    said = f"with the triplet, Rank-1 moved {dr:+.1f} and mAP {dm:+.1f} points in this run"
    with_p, without_p = table5_row("mgn"), table5_row("mgn_wo_tp")
    paper = f"{with_p['Rank-1'] - without_p['Rank-1']:+.1f} / {with_p['mAP'] - without_p['mAP']:+.1f}"
    why = ("mAP scores every true match's rank, Rank-1 only the first: a metric loss that pulls all of a person's "
           "images together tends to show in mAP." if moved == "mAP" else
           "Here Rank-1 moved more, unlike the paper, where mAP (which scores every true match's rank) moved more.")
    if abs(abs(dm) - abs(dr)) < 1e-9 or a == moved:
        return right(f"{said} (the paper's Table 5: {paper}). {why} One seed is noisy: the claims section's ledger "
                     "says whether the effect holds over seeds.")
    return wrong(f"{said}: compare the absolute changes again.")


def _triplet_solution(with_tp, without_tp):
    d_rank1 = with_tp["rank1"] - without_tp["rank1"]
    d_map = with_tp["mAP"] - without_tp["mAP"]
    return "mAP" if abs(d_map) > abs(d_rank1) else "rank1"


def _triplet_wrong(with_tp, without_tp):
    return "rank1" if _triplet_solution(with_tp, without_tp) == "mAP" else "mAP"


TRIPLET_EFFECT = Exercise(
    id="02.triplet_effect", title="Softmax on 256-d (MGN w/o TP)",
    prompt="Train the 'MGN w/o TP' variant (variant_preset('mgn_wo_tp', PROFILE)) and compare it with MGN: which "
           "metric does the triplet loss move more, Rank-1 or mAP? Set my_answer to 'rank1' or 'mAP'.",
    hint="Subtract the w/o TP model's metrics from MGN's (both are fractions in .metrics) and compare the absolute "
         "differences.",
    check=_triplet_check, solution=_triplet_solution, wrong=_triplet_wrong, context=_triplet_context)


# ----------------------------------------------------------------------------------------------
# 6. Re-ranking
# ----------------------------------------------------------------------------------------------
def _rerank_context() -> dict:
    import numpy as np

    rng = np.random.default_rng(0)
    g_pids = np.repeat(np.arange(10), 4)
    centres = rng.normal(size=(10, 16))
    gf = centres[g_pids] + 0.8 * rng.normal(size=(40, 16))
    q_pids = np.arange(10)
    qf = centres[q_pids] + 0.8 * rng.normal(size=(10, 16))
    return {"qf": qf.astype("float32"), "gf": gf.astype("float32"), "q_pids": q_pids, "g_pids": g_pids,
            "q_cams": np.zeros(10, int), "g_cams": np.ones(40, int)}


def _rerank_truth(qf, gf, q_pids, g_pids, q_cams, g_cams) -> tuple[float, float]:
    from ..eval import evaluate_features

    plain = evaluate_features(qf, gf, q_pids, g_pids, q_cams, g_cams)["mAP"]
    rk = evaluate_features(qf, gf, q_pids, g_pids, q_cams, g_cams, rerank=True)["mAP"]
    return 100 * plain, 100 * rk


def _rerank_check(answer, qf, gf, q_pids, g_pids, q_cams, g_cams) -> object:
    plain, rk = _rerank_truth(qf, gf, q_pids, g_pids, q_cams, g_cams)
    a = float(answer)
    if abs(a - (rk - plain)) <= 0.05:
        return right(f"re-ranking moves mAP from {plain:.1f} to {rk:.1f} % ({rk - plain:+.1f} points; the paper's "
                     f"Table 2: {TABLE2['SQ'][1]} → {TABLE2['SQ + RK'][1]} on Market-1501). k-reciprocal re-ranking "
                     "uses the gallery's own neighbourhoods — it costs a pass over the gallery per query, so it is "
                     "not free at test time.")
    if abs(a - (rk - plain) / 100) <= 5e-4 and abs(rk - plain) > 0.05:
        return wrong("that looks like a fraction: give the change in percentage points (× 100).")
    if abs(a - rk) <= 0.05:
        return wrong(f"{a:.1f} is the re-ranked mAP itself; the exercise asks for the change from the plain mAP.")
    return wrong(f"{a:+.2f} is not the change: evaluate the same features with rerank=False and rerank=True and "
                 "subtract (in points).")


def _rerank_solution(qf, gf, q_pids, g_pids, q_cams, g_cams):
    from reidbook.eval import evaluate_features

    plain = evaluate_features(qf, gf, q_pids, g_pids, q_cams, g_cams)
    reranked = evaluate_features(qf, gf, q_pids, g_pids, q_cams, g_cams, rerank=True)
    return 100 * (reranked["mAP"] - plain["mAP"])      # change in percentage points


def _rerank_wrong(qf, gf, q_pids, g_pids, q_cams, g_cams):
    return _rerank_truth(qf, gf, q_pids, g_pids, q_cams, g_cams)[1]       # the re-ranked mAP, not the change


RERANK = Exercise(
    id="02.rerank", title="Re-ranking",
    prompt="Evaluate MGN's features with evaluate_features(..., rerank=True) and compare with the plain evaluation: by "
           "how many percentage points does re-ranking change mAP? Set my_answer to the change (e.g. 3.2). Compare "
           "with the paper's Table 2 re-ranking rows.",
    hint="Same features, two calls: rerank=False and rerank=True; both return mAP as a fraction.",
    check=_rerank_check, solution=_rerank_solution, wrong=_rerank_wrong, context=_rerank_context)


# ----------------------------------------------------------------------------------------------
# Predictions
# ----------------------------------------------------------------------------------------------
def _gap_outcome(mgn_mAP: float, baseline_mAP: float, points: float = 2.0) -> int:
    gap = 100 * (float(mgn_mAP) - float(baseline_mAP))
    return 0 if gap > points else (2 if gap < -points else 1)


VS_BASELINE = Prediction(
    id="02.vs_baseline",
    prompt="MGN and the chapter-01 baseline are trained for the same number of epochs, on the same data, at the same "
           "input size. How will MGN's mAP compare with the baseline's?",
    options=("MGN higher by more than 2 points", "within 2 points of each other",
             "the baseline higher by more than 2 points"),
    outcome=_gap_outcome,
    why="One seed each cannot separate a gap of a few points from seed-to-seed noise; the claims section below reads "
        "the ledger's seeds (claim mgn.vs_baseline).")


def _look_outcome(global_share: float, part_share: float, points: float = 2.0) -> int:
    gap = 100 * (float(global_share) - float(part_share))
    return 0 if gap > points else (1 if gap < -points else 2)


ON_PERSON = Prediction(
    id="02.on_person",
    prompt="Which branch puts the larger share of its response on the person (measured against SynthReID's masks, "
           "averaged over query images): the Global branch, or the Part-3 branch over its three stripes?",
    options=("the Global branch", "the Part-3 branch", "about the same (within 2 points)"),
    outcome=_look_outcome,
    why="Compare each share with its chance level too: a share is only 'on the person' when it clearly exceeds the "
        "person's share of the pixels.")


def _erasing_outcome(share_without: float, share_with: float, points: float = 2.0) -> int:
    gap = 100 * (float(share_with) - float(share_without))
    return 0 if gap > points else (2 if gap < -points else 1)


ERASING = Prediction(
    id="02.erasing",
    prompt="Two baselines are trained the same way except for random erasing (a random rectangle of each training "
           "image overwritten with noise: p = 0.5 for one, never for the other). On the same query images, how will "
           "the share of the response's energy on the person of the one with erasing compare?",
    options=("it rises by more than 2 points", "it moves by at most 2 points",
             "it falls by more than 2 points"),
    outcome=_erasing_outcome,
    why="Erasing hides random patches, person and background alike; whether that pushes a model onto the person "
        "depends on what else can carry the match. One seed each: a small move is within seed-to-seed noise.")


# ----------------------------------------------------------------------------------------------
# Quiz
# ----------------------------------------------------------------------------------------------
QUIZ = [
    Question("Up to where do MGN's three branches share their weights?",
             ("only conv1", "up to and including res_conv4_1", "the whole of conv4", "nothing: three separate ResNets"),
             1, "The trunk is shared up to res_conv4_1; every branch has its own copy of the rest of conv4 and "
                "of conv5, all initialised from the same pretrained weights (§3.1). That is why MGN costs nearly three "
                "ResNet-50 tails."),
    Question("Why does MGN put no triplet loss on the part features?",
             ("they have no identity labels",
              "the content of a stripe shifts with misalignment, which corrupts the distances of the triplet",
              "the triplet loss is too slow on 256-d features",
              "the triplet loss needs 2048-d features"),
             1, "§3.2: stripes of misaligned detections contain different body regions, so distances between part "
                "features of one person are unreliable for a metric loss; softmax on each stripe still works."),
    Question("'Classification before metric': in MGN (with the triplet), which feature does a Global classifier see?",
             ("the reduced 256-d f_g", "the un-reduced 2048-d z_g", "the 2048-d concatenated test descriptor",
              "the five part features"),
             1, "Softmax on the pooled 2048-d z_g, triplet on the reduced 256-d f_g; only 'MGN w/o TP' moves the "
                "softmax to f_g. Confusing the two miscounts MGN's loss terms."),
    Question("A map puts 40 % of its energy on the person, who covers 40 % of the image's pixels. What does it say?",
             ("the map looks at the person", "the map looks no more at the person than a uniform map would",
              "the map ignores the person", "nothing: 40 % is below half"),
             1, "The chance level of an energy share is the region's area share: a uniform map gets exactly that. Only "
                "a share clearly above the area share (lift > 1) says the map prefers the person."),
    Question("Swapping only the query images' backgrounds (same person, pose and light) drops a model's mAP by 15 "
             "points. What does that measure?",
             ("the resolution of the model", "how much the model matches on background rather than on the person",
              "the difficulty of the gallery", "nothing: the gallery changed too"),
             1, "The gallery and the people are the same; only the background differs, so the drop is what the "
                "background contributed to the matches (reidbook.eval.background)."),
]

_register("02", exercises=[COUNT_PART4, PART6_ROWS, SHARE_REDUCTIONS, LOSS_TERMS, TRIPLET_EFFECT, RERANK],
          quiz=QUIZ, predictions=[VS_BASELINE, ON_PERSON, ERASING])
