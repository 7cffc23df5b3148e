"""Chapter 08 (the capstone): exercises, the prediction and the quiz.

The exercises are the capstone's ideas as things a learner computes or writes, checked against the
package's own functions: a Pareto front by hand on a toy table with a dominated model, the guide's pick at
a budget, which model runs its arithmetic slowest (the axes disagree), the parity test of an exported
model, and the similarity-preserving distillation loss that compresses MGN. Each ``solution`` is what a
learner would write; ``wrong`` is a typical mistake the check must catch; ``context`` is a small stand-in
for what the chapter passes (the chapter passes its own table).
"""
from __future__ import annotations

from .core import Exercise, Prediction, Question, register as _register, right, wrong


# ----------------------------------------------------------------------------------------------
# 1 · The Pareto front by hand (a toy table with a dominated model)
# ----------------------------------------------------------------------------------------------
def _toy_context() -> dict:
    import pandas as pd

    toy = pd.DataFrame({"params_M": [25.0, 12.0, 5.0, 21.0, 70.0], "mAP": [69.0, 67.0, 60.0, 64.0, 87.0]},
                       index=["ResNet-50", "pruned C1", "GraftedNet-like", "ResNet-34", "MGN"])
    return {"toy": toy}


def _front(toy) -> list[str]:
    from ..viz.compare import pareto_front

    return sorted(toy.index[pareto_front(toy, "params_M")])


def _pareto_check(answer, toy):
    names = sorted(str(a) for a in answer)
    truth = _front(toy)
    unknown = [n for n in names if n not in toy.index]
    if unknown:
        return wrong(f"{unknown} are not rows of the table; use the row names ({', '.join(toy.index)}).")
    dominated = [n for n in names if n not in truth]
    if dominated:
        n = dominated[0]
        by = [m for m in toy.index if m != n and toy.loc[m, "params_M"] <= toy.loc[n, "params_M"]
              and toy.loc[m, "mAP"] >= toy.loc[n, "mAP"]]
        return wrong(f"{n} is dominated: {by[0]} has no more parameters and at least its mAP. A dominated model is "
                     "never the best choice, whatever the budget.")
    if names != truth:
        return wrong(f"you left out a model that nothing dominates ({len(truth)} are on the front): for each model, "
                     "look for another that is at least as small *and* at least as accurate.")
    return right(f"the front is {', '.join(truth)}. Every model on it is the best choice for some budget of "
                 "parameters; the one left out is never the best: a smaller model is also more accurate.")


def _pareto_solution(toy):
    front = []
    for name in toy.index:
        c, a = toy.loc[name, "params_M"], toy.loc[name, "mAP"]
        others = toy.drop(index=name)
        beaten = ((others["params_M"] <= c) & (others["mAP"] >= a)
                  & ((others["params_M"] < c) | (others["mAP"] > a))).any()
        if not beaten:
            front.append(name)
    return front


def _pareto_wrong(toy):
    return list(toy.index)   # every model: forgets that one is dominated


PARETO = Exercise(
    id="08.pareto_toy", title="The Pareto front by hand",
    prompt="In the toy table (parameters in millions, mAP in %), which models are on the Pareto front of (fewer "
           "parameters, higher mAP)? Set my_answer to a list of row names.",
    hint="A model is off the front when another model has at most its parameters and at least its mAP (one of the "
         "two strictly). Sort by parameters and walk up: each model must beat the best mAP seen so far.",
    check=_pareto_check, solution=_pareto_solution, wrong=_pareto_wrong, context=_toy_context)


# ----------------------------------------------------------------------------------------------
# 2 · The guide's pick at one budget
# ----------------------------------------------------------------------------------------------
def _table_context() -> dict:
    import pandas as pd

    table = pd.DataFrame({"label": ["Baseline", "Pruned", "Tiny", "Big"], "mAP": [60.0, 58.0, 40.0, 70.0],
                          "params_M": [10.0, 4.0, 1.0, 30.0], "MACs_M": [100.0, 40.0, 20.0, 300.0],
                          "latency_ms": [10.0, 9.0, 2.0, 25.0]}, index=["baseline", "pruned", "tiny", "big"])
    return {"table": table}


def _pick(table, fraction=0.5, axis="MACs_M"):
    from ..viz.compare import budget_pick

    return budget_pick(table, fraction, axis, "baseline")["best"]


def _pick_check(answer, table):
    want = _pick(table)
    if answer == want:
        return right(f"{table.loc[want, 'label']}: of the models with at most half the baseline's multiply-adds it "
                     f"is the most accurate ({table.loc[want, 'mAP']:.1f} %). VC.budget_pick gives the same, with "
                     "the equal-budget caveat.")
    if answer in table.index and float(table.loc[answer, "MACs_M"]) > 0.5 * float(table.loc["baseline", "MACs_M"]):
        return wrong(f"{answer} does not fit: it needs {table.loc[answer, 'MACs_M']:.0f} M multiply-adds, the budget "
                     f"is half the baseline's ({0.5 * table.loc['baseline', 'MACs_M']:.0f} M).")
    if answer in table.index:
        return wrong(f"{answer} fits, but another model that fits is more accurate.")
    return wrong(f"{answer!r} is not a key of the table ({', '.join(table.index)}).")


def _pick_solution(table):
    budget = 0.5 * table.loc["baseline", "MACs_M"]
    fits = table[table["MACs_M"] <= budget]
    return fits["mAP"].idxmax()


def _pick_wrong(table):
    return table["mAP"].idxmax()   # the most accurate model, ignoring the budget


PICK = Exercise(
    id="08.budget_pick", title="The guide's pick at half the multiply-adds",
    prompt="Your device allows half of the baseline's multiply-adds per image. Which model of the table does the "
           "guide pick? Set my_answer to its key (the table's index, e.g. 'baseline').",
    hint="First keep the rows whose MACs_M is at most half the baseline's, then take the most accurate of those.",
    check=_pick_check, solution=_pick_solution, wrong=_pick_wrong, context=_table_context)


# ----------------------------------------------------------------------------------------------
# 3 · The axes disagree: which model runs its arithmetic slowest?
# ----------------------------------------------------------------------------------------------
def _slowest(table):
    return (table["latency_ms"] / table["MACs_M"]).idxmax()


def _slow_check(answer, table):
    want = _slowest(table)
    rate = table["latency_ms"] / table["MACs_M"] * 1000
    if answer == want:
        return right(f"{table.loc[want, 'label']} needs {rate[want]:.0f} µs per million multiply-adds (the fastest: "
                     f"{rate.min():.0f}). Multiply-adds do not say how well a layer's shape runs on a CPU (thin or "
                     "grouped convolutions, many small layers), which is why the latency front differs.")
    if answer == table["latency_ms"].idxmax():
        return wrong("that is the slowest model, not the slowest per multiply-add: divide latency by MACs_M.")
    return wrong(f"{answer!r} is not it: compute latency_ms / MACs_M for every row and take the largest.")


def _slow_solution(table):
    per_mac = table["latency_ms"] / table["MACs_M"]
    return per_mac.idxmax()


def _slow_wrong(table):
    return table["latency_ms"].idxmax()   # the slowest model overall


SLOW = Exercise(
    id="08.slowest_arithmetic", title="Latency per multiply-add",
    prompt="Which model of the table runs its arithmetic slowest on this CPU, i.e. has the most milliseconds per "
           "million multiply-adds? Set my_answer to its key.",
    hint="Latency divided by multiply-adds, per row; a small model can be slow per operation.",
    check=_slow_check, solution=_slow_solution, wrong=_slow_wrong, context=_table_context)


# ----------------------------------------------------------------------------------------------
# 4 · Parity of an exported model (export.TOLERANCE)
# ----------------------------------------------------------------------------------------------
def _parity_cases():
    import numpy as np

    rng = np.random.default_rng(0)
    a = rng.normal(size=(4, 16)).astype(np.float32) * 5
    return [(a, a.copy(), True), (a, a + 1e-5, True), (a, a + 0.01, False), (a, -a, False),
            (a, a * 1.001, False), (a / 100, a / 100 + 5e-5, True)]


#: ``reidbook.export.TOLERANCE`` (teach sits below export in the layers; tests/test_capstone.py checks they agree).
TOLERANCE = {"max_abs_rel": 1e-4, "min_cosine": 0.9999}


def _parity_check(answer, cases=None):
    cases = _parity_cases() if cases is None else cases
    for i, (torch_f, onnx_f, want) in enumerate(cases):
        got = bool(answer(torch_f, onnx_f))
        if got != want:
            return wrong(f"case {i + 1}: your function says {got}, the tolerance says {want}. Both conditions must "
                         f"hold: max |Δ| ≤ {TOLERANCE['max_abs_rel']:g} × max(1, max |f|) and every image's cosine ≥ "
                         f"{TOLERANCE['min_cosine']}.")
    return right(f"all {len(cases)} cases agree with export.check_parity's rule: an absolute bound scaled by the "
                 "embedding's size, and an angle bound (ranking by distance or angle is then unchanged).")


def _parity_solution():
    import numpy as np

    def parity_ok(torch_f, onnx_f):
        scale = max(1.0, float(np.abs(torch_f).max()))
        max_abs = float(np.abs(onnx_f - torch_f).max())
        cos = (torch_f * onnx_f).sum(1) / (np.linalg.norm(torch_f, axis=1) * np.linalg.norm(onnx_f, axis=1))
        return max_abs <= 1e-4 * scale and float(cos.min()) >= 0.9999
    return parity_ok


def _parity_wrong():
    import numpy as np

    def parity_ok(torch_f, onnx_f):   # the angle only: a scaled embedding passes
        cos = (torch_f * onnx_f).sum(1) / (np.linalg.norm(torch_f, axis=1) * np.linalg.norm(onnx_f, axis=1))
        return float(cos.min()) >= 0.9999
    return parity_ok


PARITY = Exercise(
    id="08.parity", title="Parity of an exported model",
    prompt="Write parity_ok(torch_f, onnx_f) → bool for two [N, D] arrays of embeddings of the same images (PyTorch "
           "and onnxruntime), applying export.TOLERANCE as section 5 states it. Set my_answer to the function.",
    hint="Two conditions, both needed: the largest absolute difference against 1e-4 × max(1, largest |value|), and "
         "the smallest per-image cosine against 0.9999.",
    check=_parity_check, solution=_parity_solution, wrong=_parity_wrong, context=lambda: {})


# ----------------------------------------------------------------------------------------------
# 5 · The loss that distils MGN (Tung & Mori 2019, Eqs. 1–4)
# ----------------------------------------------------------------------------------------------
def _kd_check(answer):
    import torch

    from ..distill.kd import similarity_kd_loss

    g = torch.Generator().manual_seed(0)
    for b, ds, dt in ((4, 3, 5), (6, 8, 2)):
        s, t = torch.randn(b, ds, generator=g), torch.randn(b, dt, generator=g)
        got, want = float(answer(s, t)), float(similarity_kd_loss(s, t))
        if abs(got - want) > 1e-5 * max(1.0, abs(want)):
            q = lambda f: f @ f.t()  # noqa: E731
            if abs(got - float((q(t) - q(s)).pow(2).sum() / b ** 2)) < 1e-5 * max(1.0, abs(got)):
                return wrong("you compare G = Q Qᵀ without normalising each row (Eq. 2): the two networks' "
                             "features have different scales, so the rows must be L2-normalised first.")
            return wrong(f"for a batch of {b} you get {got:.5f}, Eq. 4 gives {want:.5f}: G = Q Qᵀ, rows "
                         "L2-normalised, then the squared Frobenius distance divided by b².")
    return right("it matches reidbook.distill.kd.similarity_kd_loss: only the batch's pairwise similarities are "
                 "matched, so the student (128 numbers) and MGN (512) need no projector.")


def _kd_solution():
    import torch.nn.functional as F

    def sp_loss(student, teacher):
        b = student.shape[0]
        gs = F.normalize(student @ student.t(), dim=1)
        gt = F.normalize(teacher @ teacher.t(), dim=1)
        return (gt - gs).pow(2).sum() / b ** 2
    return sp_loss


def _kd_wrong():
    def sp_loss(student, teacher):   # no row normalisation (Eq. 2 forgotten)
        b = student.shape[0]
        return (teacher @ teacher.t() - student @ student.t()).pow(2).sum() / b ** 2
    return sp_loss


KD = Exercise(
    id="08.kd_loss", title="Similarity-preserving distillation (the MGN student's loss)",
    prompt="Write sp_loss(student, teacher) for two [b, d] feature batches of the same images (d may differ): Tung & "
           "Mori's similarity-preserving loss, Eqs. 1–4. Set my_answer to the function.",
    hint="G = Q Qᵀ is b × b whatever d is; normalise each row of G to unit length; the loss is the squared "
         "Frobenius distance of the two normalised matrices divided by b².",
    check=_kd_check, solution=_kd_solution, wrong=_kd_wrong, context=lambda: {})


# ----------------------------------------------------------------------------------------------
# The prediction (before MGN's compression results)
# ----------------------------------------------------------------------------------------------
def _mgn_outcome(mgn: float, pruned: float, student: float, points: float = 2.0) -> int:
    """0: pruning keeps more of MGN's mAP; 1: the student does; 2: within ``points`` of each other."""
    gap = 100 * (float(pruned) - float(student)) if max(pruned, student) <= 1 else float(pruned) - float(student)
    if abs(gap) <= points:
        return 2
    return 0 if gap > 0 else 1


MGN_COMPRESSED = Prediction(
    id="08.mgn_compressed",
    prompt="MGN is compressed two ways: its backbone and branches pruned one-shot (L1) to half its multiply-adds, "
           "then fine-tuned for one short epoch; and distilled into a ResNet-18 trained as long as the ResNet-18 "
           "without a teacher. Which keeps more of MGN's mAP?",
    options=("the pruned MGN, by more than 2 points", "the distilled ResNet-18, by more than 2 points",
             "about the same (within 2 points)"),
    outcome=_mgn_outcome,
    why="The pruned MGN keeps MGN's architecture and most of its weights but loses half its channels at once; the "
        "student keeps nothing of MGN but its notion of which images look alike. Compare the student with its "
        "control too: only that difference is the teacher's.")


# ----------------------------------------------------------------------------------------------
# Quiz
# ----------------------------------------------------------------------------------------------
QUIZ = (
    Question("Model A has 5 M parameters and 60 % mAP, model B 8 M and 58 %. On the (parameters, mAP) axes:",
             ("A dominates B", "B dominates A", "neither dominates the other"), 0,
             "A is smaller and more accurate, so no parameter budget makes B the better choice; B is off the front."),
    Question("A model is on the Pareto front for multiply-adds but not for latency. The most likely reason:",
             ("its multiply-adds were counted wrongly",
              "its layers run slowly on this CPU for their arithmetic (thin, grouped or many small layers)",
              "latency is always proportional to multiply-adds"), 1,
             "Multiply-adds count arithmetic; latency also depends on memory traffic and how well each layer shape "
             "maps onto the CPU's kernels, so the two fronts can differ."),
    Question("The FD student trained longer than the baseline and is more accurate. What does that show about "
             "factorized distillation?",
             ("that FD beats the baseline", "nothing yet: the gain may be the longer training; compare with the same "
              "student trained as long without FD", "that longer training never helps"), 1,
             "Only an equal-budget control separates the method from the budget (issue of budgets, not of methods); "
             "the claims ledger makes such comparisons over seeds."),
    Question("Why is only the deployed form of a model exported to ONNX?",
             ("ONNX cannot store classifiers",
              "training-only parts (classifiers, accompanying branches, FMFB/RFB, later exits) never run at test "
              "time and would only add size and latency",
              "the deployed form is more accurate"), 1,
             "What ships is what runs at test time; the parameter counts of the table are counted the same way."),
    Question("A model's mAP falls a lot when the query's background is swapped for another camera's. It:",
             ("matches partly on the background (the look of a camera) rather than on the person",
              "is more robust than a model whose mAP does not change",
              "has too few parameters"), 0,
             "Only the background differs between the two queries, so the drop is what the background contributed; "
             "a high on-person share of its maps should go with a small drop."),
)

_register("08", exercises=[PARETO, PICK, SLOW, PARITY, KD], quiz=QUIZ, predictions=[MGN_COMPRESSED])
