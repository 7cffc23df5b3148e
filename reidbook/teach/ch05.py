"""Chapter 05 (pruning criteria and surgery): exercises, the prediction and the quiz.

The exercises are the criteria and the surgery as things a learner computes or writes, checked against the
package's own implementation: L1 and FPGM by hand on a four-filter conv (survey Eq. 3, Eq. 14/17), a criterion
of one's own, the units of the residual scope, where a global ranking cuts, soft pruning made hard. Each
``solution`` is what a learner would write; ``wrong`` is a typical mistake the check must catch; ``context``
is a small stand-in for what the chapter passes (the chapter passes its trained baseline).
"""
from __future__ import annotations

from .core import Exercise, Prediction, Question, register as _register, right, wrong

# ----------------------------------------------------------------------------------------------
# 1 · L1 and FPGM by hand on a four-filter conv (survey Eq. 3; He et al. 2019, survey Eq. 14/17)
# ----------------------------------------------------------------------------------------------
_FILTERS = ((-3.0, -3.0), (0.0, -3.0), (0.0, 1.0), (3.0, -3.0))


def _by_hand_context() -> dict:
    import torch

    return {"weight": torch.tensor(_FILTERS).reshape(4, 1, 1, 2)}


def _as_scores(answer, key: str):
    import torch

    if not isinstance(answer, dict) or key not in answer:
        raise ValueError(f"my_answer must be a dict with keys 'l1' and 'fpgm' (four numbers each); no {key!r}")
    v = torch.as_tensor(answer[key], dtype=torch.float64).flatten()
    if v.numel() != 4:
        raise ValueError(f"my_answer[{key!r}] needs one score per filter (4), got {v.numel()}")
    return v


def _by_hand_check(answer, weight):
    import torch

    from ..prune.criteria.weights import fpgm_scores, l1_norm, l2_norm

    l1, fp = _as_scores(answer, "l1"), _as_scores(answer, "fpgm")
    ref_l1, ref_fp = l1_norm(weight).double(), fpgm_scores(weight).double()
    if not torch.allclose(l1, ref_l1, atol=0.01):
        if torch.allclose(l1, l2_norm(weight).double(), atol=0.01):
            return wrong("your 'l1' are the filters' Euclidean (L2) lengths; L1 adds the absolute values of the "
                         "weights, |w₁| + |w₂|.")
        return wrong(f"'l1' is not right: L1 of a filter is the sum of its weights' absolute values (Li et al., "
                     f"survey Eq. 3); check the filter(s) {[j + 1 for j in range(4) if abs(l1[j] - ref_l1[j]) > .01]}.")
    if not torch.allclose(fp, ref_fp, atol=0.01):
        f = weight.reshape(4, -1).double()
        if torch.allclose(fp, (torch.cdist(f, f) ** 2).sum(1), atol=0.01):
            return wrong("your 'fpgm' sums *squared* distances; FPGM sums the Euclidean distances themselves "
                         "(‖W_j − W_j'‖₂, He et al. Eq. 6 / survey Eq. 14).")
        return wrong("'l1' is right; 'fpgm' is not: for each filter, add its Euclidean distances to the other three "
                     "(the distances here are whole numbers).")
    drop_l1, drop_fp = int(ref_l1.argmin()) + 1, int(ref_fp.argmin()) + 1
    return right(f"L1 = {[int(v) for v in ref_l1.tolist()]}, FPGM = {[int(v) for v in ref_fp.tolist()]}. L1 would "
                 f"cut filter {drop_l1} (the smallest), FPGM filter {drop_fp}: it is the one nearest the others' "
                 "geometric median, so the others can stand in for it — even though it is not the smallest. That "
                 "is why the two criteria can disagree (section 3).")


def _by_hand_solution(weight):
    # the filters, flattened: W1 = (-3, -3), W2 = (0, -3), W3 = (0, 1), W4 = (3, -3)
    l1 = [3 + 3, 0 + 3, 0 + 1, 3 + 3]      # |w1| + |w2| per filter
    # distances: W1–W2 3, W1–W3 5, W1–W4 6, W2–W3 4, W2–W4 3, W3–W4 5 (3-4-5 triangles)
    fpgm = [3 + 5 + 6, 3 + 4 + 3, 5 + 4 + 5, 6 + 3 + 5]
    return {"l1": l1, "fpgm": fpgm}


def _by_hand_wrong(weight):
    import torch

    f = weight.reshape(4, -1).double()
    return {"l1": [6, 3, 1, 6], "fpgm": (torch.cdist(f, f) ** 2).sum(1).tolist()}   # squared distances


BY_HAND = Exercise(
    id="05.l1_fpgm_by_hand", title="L1 and FPGM scores for a 4-filter conv",
    prompt="A conv has four filters of two weights each (shape [4, 1, 1, 2]): W1 = (−3, −3), W2 = (0, −3), "
           "W3 = (0, 1), W4 = (3, −3). With pencil and paper, compute each filter's L1 score and its FPGM score, "
           "and set my_answer = {'l1': [four numbers], 'fpgm': [four numbers]}. Which filter does each criterion "
           "remove first?",
    hint="L1 (survey Eq. 3) looks at one filter at a time. FPGM (survey Eq. 14/17) looks at a filter against the "
         "others: the sum of its Euclidean distances to them. Draw the four points; the distances form 3-4-5 "
         "triangles.",
    check=_by_hand_check, solution=_by_hand_solution, wrong=_by_hand_wrong, context=_by_hand_context)


# ----------------------------------------------------------------------------------------------
# 2 · A criterion of one's own
# ----------------------------------------------------------------------------------------------
def _own_context() -> dict:
    import torch

    g = torch.Generator().manual_seed(0)
    scale = torch.linspace(0.1, 2.0, 16).reshape(16, 1, 1, 1)
    return {"weight": torch.randn(16, 8, 3, 3, generator=g) * scale}


def _spearman(a, b) -> float:
    import numpy as np
    from scipy.stats import spearmanr

    a, b = np.asarray(a, dtype=float), np.asarray(b, dtype=float)
    return float(spearmanr(a, b)[0])


def _own_check(answer, weight):
    import torch

    from ..prune.criteria.weights import fpgm_scores, l1_norm

    s = torch.as_tensor(answer(weight.clone()), dtype=torch.float64).flatten()
    n = weight.shape[0]
    if s.numel() != n:
        return wrong(f"return one score per output channel ({n} here), got {s.numel()} numbers: reduce every "
                     "dimension but the first.")
    if not torch.isfinite(s).all():
        return wrong("some scores are not finite (nan or inf); a criterion must rank every channel.")
    if float(s.std()) == 0.0:
        return wrong("every channel gets the same score: your criterion cannot tell channels apart.")
    rho_l1 = _spearman(s.numpy(), l1_norm(weight).double().numpy())
    rho_fp = _spearman(s.numpy(), fpgm_scores(weight).double().numpy())
    if rho_l1 < 0:
        return wrong(f"your scores rank the *smallest* filters first (Spearman ρ with L1 = {rho_l1:.2f}); higher "
                     "must mean keep.")
    return right(f"a valid criterion: one finite score per channel, higher = keep. On this conv it agrees with L1 "
                 f"at ρ = {rho_l1:.2f} and with FPGM at ρ = {rho_fp:.2f}; register it with "
                 "reidbook.prune.register_scorer to prune with it.")


def _own_solution(weight):
    def my_criterion(weight):
        # the largest absolute weight of each filter (higher = keep)
        return weight.reshape(weight.shape[0], -1).abs().max(dim=1).values
    return my_criterion


def _own_wrong(weight):
    def my_criterion(weight):
        return -weight.reshape(weight.shape[0], -1).abs().sum(dim=1)   # −L1: keeps the smallest filters
    return my_criterion


OWN = Exercise(
    id="05.own_criterion", title="A criterion of your own",
    prompt="Write my_criterion(weight): a conv weight [n_out, n_in, k, k] → one score per output channel (higher = "
           "keep), e.g. the largest absolute weight of each filter. The check tests it on one of the baseline's "
           "convs and tells you how it agrees with L1 and FPGM.",
    hint="Flatten every filter to a row (weight.reshape(n_out, -1)) and reduce each row to one number. Check the sign: "
         "the channels with the *lowest* scores are the ones removed.",
    check=_own_check, solution=_own_solution, wrong=_own_wrong, context=_own_context)


# ----------------------------------------------------------------------------------------------
# 3 · The residual scope's units
# ----------------------------------------------------------------------------------------------
def _small_model():
    import torch

    from ..models import build_model

    torch.manual_seed(0)
    return build_model("baseline", 10, profile="smoke").eval()


def _scope_context() -> dict:
    return {"model": _small_model()}


def _scope_check(answer, model):
    from ..prune import find_units

    want = len(find_units(model, "bottleneck+residual"))
    base = len(find_units(model, "bottleneck"))
    got = int(answer)
    if got == want:
        return right(f"{base} bottleneck units + {want - base} residual ones = {want}: the stem's output and the "
                     "outputs of stages 1–3 (each stage's blocks share one residual stream, so its channels are cut "
                     "together in every conv3, downsample and next conv1). Stage 4's stream is the embedding, which "
                     "keeps its width. Cutting the residual stream is what lets pruning reach conv3 and the "
                     "downsample convs, which the default scope never touches: try it, and compare the latency "
                     "ratio with the MAC ratio.")
    if got == base + 5:
        return wrong("one too many: stage 4's residual stream is the embedding the head reads; reidbook keeps it.")
    if got == base + 16:
        return wrong("not one unit per block: the blocks of a stage add into one residual stream, so they share "
                     "one group of channels.")
    return wrong(f"{got} is not it; the default scope has {base} units (conv1 and conv2 of every bottleneck). "
                 "Count what the residual scope adds.")


def _scope_solution(model):
    bottleneck_units = 2 * (3 + 4 + 6 + 3)    # conv1 and conv2 of the 16 bottlenecks
    residual_units = 1 + 3                    # the stem's output and stages 1–3 (stage 4 is the embedding)
    return bottleneck_units + residual_units


def _scope_wrong(model):
    return 2 * 16 + 16       # one residual unit per block


SCOPE = Exercise(
    id="05.residual_scope", title="The units of the residual scope",
    prompt="With scope='bottleneck+residual', reidbook also prunes the residual stream. Without running "
           "find_units: how many prunable units does the ResNet-50 baseline then have? Set my_answer to the number.",
    hint="A unit is a group of channels that must be cut together. Inside a stage, every block adds its output to the "
         "same residual stream. And the last stage's stream is what the head pools into the embedding.",
    check=_scope_check, solution=_scope_solution, wrong=_scope_wrong, context=_scope_context)


# ----------------------------------------------------------------------------------------------
# 4 · Where a global ranking cuts
# ----------------------------------------------------------------------------------------------
def _stage_of(unit: str) -> str:
    return next(p for p in unit.split(".") if p.startswith("layer"))


def _global_cut(model, scores, input_size) -> dict[str, float]:
    from ..prune import prune

    _, rep = prune(model, "l1", ratio=0.5, global_ranking=True, scores=scores, input_size=input_size)
    before, after = {}, {}
    for u, w in rep.widths_before.items():
        st = _stage_of(u)
        before[st] = before.get(st, 0) + w
        after[st] = after.get(st, 0) + rep.widths_after[u]
    return {st: 1.0 - after[st] / before[st] for st in before}


def _global_context() -> dict:
    from ..prune import score_channels

    model = _small_model()
    return {"model": model, "scores": score_channels(model, "l1"), "input_size": (64, 32)}


def _global_check(answer, model, scores, input_size):
    cut = _global_cut(model, scores, input_size)
    worst = max(cut, key=cut.get)
    shares = ", ".join(f"{st} {v:.0%}" for st, v in cut.items())
    if str(answer).strip() == worst:
        return right(f"with one L1 ranking across layers, the channels removed per stage are: {shares}. Raw L1 "
                     "norms are not comparable across layers (a filter's norm grows with its number of inputs and "
                     "with how its layer was trained), so a global ranking empties some stages far more than "
                     "others — which is why Taylor normalises its scores per layer before ranking them together.")
    if str(answer).strip() not in cut:
        return wrong(f"answer with a stage name, one of {', '.join(cut)}.")
    return wrong(f"{answer} loses {cut[str(answer).strip()]:.0%} of its channels; another stage loses more. Read "
                 "report.widths_before / widths_after and add them up per stage.")


def _global_solution(model, scores, input_size):
    from reidbook.prune import prune

    small, report = prune(model, "l1", ratio=0.5, global_ranking=True, scores=scores, input_size=input_size)
    removed = {}
    for unit, before in report.widths_before.items():
        stage = unit.split(".")[1]                       # backbone.layer3.4.conv2 → layer3
        b, a = removed.get(stage, (0, 0))
        removed[stage] = (b + before, a + report.widths_after[unit])
    return max(removed, key=lambda st: 1 - removed[st][1] / removed[st][0])


def _global_wrong(model, scores, input_size):
    cut = _global_cut(model, scores, input_size)
    return min(cut, key=cut.get)          # the stage that keeps the most


GLOBAL = Exercise(
    id="05.global_ranking", title="Where does a global L1 ranking cut?",
    prompt="Prune the baseline with L1 at ratio 0.5 and global_ranking=True (one ranking across all layers instead "
           "of the same ratio in every layer), reusing the chapter's scores. Which stage (layer1 … layer4) loses "
           "the largest fraction of its channels? Set my_answer to its name, e.g. 'layer2'.",
    hint="prune(...) returns (model, report); report.widths_before and report.widths_after give every unit's "
         "width; the stage is the part of the unit's name that starts with 'layer'.",
    check=_global_check, solution=_global_solution, wrong=_global_wrong, context=_global_context)


# ----------------------------------------------------------------------------------------------
# 5 · Soft pruning, then hard: the same embeddings
# ----------------------------------------------------------------------------------------------
def _soft_context() -> dict:
    return {"model": _small_model(), "input_size": (64, 32)}


def _soft_check(answer, model, input_size):
    import torch

    soft, hard = answer
    n = lambda m: sum(p.numel() for p in m.parameters())  # noqa: E731
    if n(hard) >= n(soft):
        return wrong(f"the second model is not smaller ({n(hard):,} vs {n(soft):,} parameters): harden() removes the "
                     "zeroed channels physically; did you pass the model you soft-pruned, after harden?")
    if n(soft) != n(model):
        return wrong("the first model should be the soft-pruned copy: same shapes as the original, some filters "
                     "zeroed.")
    torch.manual_seed(0)
    x = torch.randn(4, 3, *input_size)
    with torch.no_grad():
        d = (soft.eval()(x) - hard.eval()(x)).abs().max().item()
    if d > 1e-4:
        return wrong(f"the embeddings differ by up to {d:.3g}: zero the filter *and* its BN γ and β "
                     "(soft_prune_units does), otherwise the channel still outputs β after BatchNorm.")
    return right(f"{n(soft):,} → {n(hard):,} parameters, embeddings equal up to {d:.1e}: a zeroed channel (filter, "
                 "BN γ and β all 0) outputs exactly 0, so removing it changes nothing. This is how PSFP and FPGM's "
                 "soft pruning end: train with zeroed filters, then harden.")


def _soft_solution(model, input_size):
    import copy

    from reidbook.prune import find_units, harden, score_channels, soft_prune_units

    soft = copy.deepcopy(model).eval()
    units = find_units(soft)
    scores = score_channels(soft, "l2", units)
    weakest = {u.name: scores[u.name].argsort()[: len(scores[u.name]) // 2].tolist() for u in units}
    soft_prune_units(soft, units, weakest)                       # zero half of every unit's filters
    hard = harden(copy.deepcopy(soft), input_size=input_size)    # then remove them physically
    return soft, hard


def _soft_wrong(model, input_size):
    import copy

    from reidbook.prune import find_units, score_channels, soft_prune_units

    soft = copy.deepcopy(model).eval()
    units = find_units(soft)
    scores = score_channels(soft, "l2", units)
    soft_prune_units(soft, units, {u.name: scores[u.name].argsort()[:1].tolist() for u in units})
    return soft, copy.deepcopy(model)           # forgot to harden: the "pruned" model is the original


SOFT = Exercise(
    id="05.soft_then_hard", title="Soft pruning, then hard",
    prompt="Soft-prune a copy of the model (reidbook.prune.soft_prune_units: zero, do not remove, the weakest half "
           "of every unit's filters by L2), then make a physically smaller model from it with "
           "reidbook.prune.harden. Set my_answer = (soft_model, hard_model); the check compares their embeddings.",
    hint="soft_prune_units(model, units, {unit name: [channel indices]}) works in place, and so does harden(model, "
         "input_size=...): work on copies (copy.deepcopy) so that each model stays what it is.",
    check=_soft_check, solution=_soft_solution, wrong=_soft_wrong, context=_soft_context)


# ----------------------------------------------------------------------------------------------
# The prediction and the quiz
# ----------------------------------------------------------------------------------------------
def _recovery_outcome(recovered: float) -> int:
    import math

    if math.isnan(recovered) or recovered >= 0.95:   # nan: the cut cost nothing, so nothing was left to win back
        return 3
    return 2 if recovered > 0.5 else 1 if recovered > 0.05 else 0


RECOVERY = Prediction(
    id="05.recovery",
    prompt="L1 removes the grid's largest share of every unit's channels (three quarters in quick) and mAP falls. Then "
           "the pruned model is fine-tuned for a fraction of an epoch at a tenth of the training learning rate. How "
           "much of the mAP it lost comes back?",
    options=("almost none (less than 5 %)", "part of it (5–50 %)", "most of it (50–95 %)", "all of it (95 % or more)"),
    outcome=_recovery_outcome,
    why="The kept channels still compute what they computed before the cut; what is lost is the removed channels' "
        "contribution to the next layer, and a few hundred images of training re-balance the survivors. The survey's "
        "tables retrain for many epochs; here the grid measures what a short fine-tuning buys at each ratio.")

QUIZ = (
    Question("Which filters does FPGM remove first?",
             ("the filters with the smallest L1 norm",
              "the filters nearest the geometric median of their layer’s filters: the others can replace them",
              "the filters whose activations have the lowest entropy",
              "the filters farthest from all the others"), 1,
             "FPGM (He et al. 2019) scores a filter by its summed distance to the others; a small sum means it sits "
             "near the geometric median and is redundant — whatever its size. The by-hand exercise shows a filter "
             "that L1 keeps and FPGM cuts."),
    Question("Which of these criteria needs data (images passed through the network) to score channels?",
             ("L1", "FPGM", "Taylor", "SIMC"), 2,
             "Taylor multiplies each feature map by the loss gradient with respect to it (survey Eq. 28–29), so it "
             "needs images and labels; L1, FPGM and SIMC read the weights only."),
    Question("Surgery removes half of conv1's filters inside a bottleneck. What else must change for the block to "
             "run?",
             ("nothing", "bn1’s entries and conv2’s input channels, for the same indices",
              "conv3's output channels", "the block's input width"), 1,
             "A removed output channel of conv1 disappears from bn1 and from the input of conv2; the block's input "
             "and output keep their width (the residual stream is untouched in the default scope)."),
    Question("Pruning halves a model's multiply-adds. Its measured CPU latency at batch 1…",
             ("halves exactly", "usually falls by less than half: unpruned layers, memory-bound operations and "
              "per-layer overheads remain", "always rises", "does not change"), 1,
             "MACs count arithmetic only; BatchNorm, ReLU, residual additions and the fixed cost of each layer stay, "
             "and thinner convolutions use the CPU less efficiently (section 7 measures it)."),
    Question("Why does the agreement plot not show Auto-Balanced, PSFP and Play-and-Prune as rows?",
             ("they were too slow to score",
              "their channel scores are L1’s or L2’s by construction, so a ρ = 1 with the norms would be no finding",
              "they disagree with every other criterion", "they need a GPU"), 1,
             "The three are training procedures: they rank channels by ℓ1 (Auto-Balanced, Play-and-Prune) or ℓ2 "
             "(PSFP) and differ in how they train before the cut (chapter 06). Their rows would repeat the norms'."),
)

_register("05", exercises=[BY_HAND, OWN, SCOPE, GLOBAL, SOFT], quiz=QUIZ, predictions=[RECOVERY])
