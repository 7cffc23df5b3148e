"""Chapter 06 (pruning strategies, design scenarios, PCB): exercises, the prediction and the quiz.

The exercises are the strategies' equations as code a learner writes and a check runs against the
package's own implementation (survey Eq. 6, 11–12, 21–23) or against a count (the unknowns of the two
least-squares reconstructions). Each ``solution`` is what a learner would write; ``wrong`` is a typical
mistake the check must catch.
"""
from __future__ import annotations

from .core import Exercise, Prediction, Question, register as _register, right, wrong

# ----------------------------------------------------------------------------------------------
# 1 · Play-and-Prune's pruning-rate controller (survey Eq. 21–23)
# ----------------------------------------------------------------------------------------------
_PRC_CASES = ((50.0, 2.0, 50.0), (50.0, 2.0, 51.0), (50.0, 2.0, 49.0), (50.0, 2.0, 47.0), (30.0, 1.0, 28.5))


def _prc_check(answer, threshold: float = 0.05, lam: float = 1e-4):
    from ..prune.criteria.weights import PruningRateController

    for xi, eps, acc in _PRC_CASES:
        ref = PruningRateController(xi=xi, eps=eps, delta_w=1.0 / eps, lam=lam, threshold=threshold).update(acc)
        got = tuple(float(v) for v in answer(xi, eps, acc, threshold, lam))
        if len(got) != 2:
            return wrong("return two numbers: the new threshold W_A and the new λ_A.")
        if abs(got[0] - ref[0]) > 1e-9 or abs(got[1] - ref[1]) > 1e-12:
            where = f"ξ = {xi}, ε = {eps}, accuracy {acc} (floor ξ − ε = {xi - eps})"
            if acc < xi - eps:
                return wrong(f"at {where} you return W_A = {got[0]:.4g}, λ_A = {got[1]:.3g}; below the floor Eq. 22 "
                             "clamps T_r at 0 (and Eq. 23 λ_A at 0): the controller stops pruning.")
            return wrong(f"at {where} you return ({got[0]:.4g}, {got[1]:.3g}); Eq. 21–23 give "
                         f"({ref[0]:.4g}, {ref[1]:.3g}). W_A = δ_w·T_r·W'_A with δ_w = 1/ε.")
    return right("with δ_w = 1/ε an accuracy exactly at ξ keeps the rate (T_r = ε), a better one raises it, a worse "
                 "one lowers it, and beyond the tolerance ε the rate — and λ_A — drop to 0: the controller stops "
                 "pruning and only retrains (a 'play' round) until accuracy is back within ε.")


def _prc_solution():
    def my_prc(xi, eps, accuracy, threshold, lam):
        slack = accuracy - (xi - eps)            # accuracy above the tolerated floor ξ − ε
        t_r = slack if slack > 0 else 0.0        # Eq. 22
        new_threshold = (1.0 / eps) * t_r * threshold   # Eq. 21 with δ_w = 1/ε
        lambda_a = slack * lam if slack > 0 else 0.0    # Eq. 23
        return new_threshold, lambda_a
    return my_prc


def _prc_wrong():
    def my_prc(xi, eps, accuracy, threshold, lam):
        slack = accuracy - (xi - eps)            # no clamp: a large drop gives a negative rate
        return (1.0 / eps) * slack * threshold, slack * lam
    return my_prc


PRC = Exercise(
    id="06.prc_update", title="Play-and-Prune's controller",
    prompt="Write my_prc(xi, eps, accuracy, threshold, lam) → (new_threshold, lambda_a): one update of "
           "Play-and-Prune's pruning-rate controller (survey Eq. 21–23, δ_w = 1/ε), given the unpruned accuracy "
           "ξ, the tolerance ε, the current accuracy C(#w), the previous threshold W'_A and λ. Then say what it "
           "does when accuracy drops by more than ε.",
    hint="Everything hangs on the slack C(#w) − (ξ − ε): how far the accuracy is above the lowest accuracy you "
         "accept. Read Eq. 22 and 23 for what happens when it is negative.",
    check=_prc_check, solution=_prc_solution, wrong=_prc_wrong)


# ----------------------------------------------------------------------------------------------
# 2 · The unknowns of ThiNet's and Channel Pruning's least squares (§3.2.2)
# ----------------------------------------------------------------------------------------------
def _recon_context() -> dict:
    import torch.nn as nn

    return {"conv": nn.Conv2d(16, 32, 3, bias=False), "n_keep": 8}


def _recon_check(answer, conv, n_keep):
    kh, kw = conv.kernel_size
    want = (n_keep, conv.out_channels * n_keep * kh * kw)
    got = tuple(int(v) for v in answer)
    if len(got) != 2:
        return wrong("give two counts: (ThiNet's unknowns, Channel Pruning's unknowns).")
    if got == want:
        return right(f"ThiNet fits {want[0]} numbers (one scale per kept input channel, Luo et al. Eq. 6); Channel "
                     f"Pruning refits the whole kernel, {conv.out_channels} × {n_keep} × {kh} × {kw} = {want[1]:,} "
                     "(He et al. Eq. 1). Far more freedom to reconstruct Y — and far more samples needed before the "
                     "fit generalises beyond them (prune_layerwise falls back to scaling when they are too few).")
    if got[0] != want[0]:
        return wrong(f"ThiNet's rescaling: {got[0]} is not it — one factor ŵ_c per *kept input channel* c.")
    if got[1] == n_keep * kh * kw:
        return wrong("that is one output channel's kernel; the refit solves for every output channel of the next "
                     "conv.")
    return wrong(f"Channel Pruning: {got[1]:,} is not it — the new weight has shape [out, kept in, kh, kw].")


def _recon_solution(conv, n_keep):
    kh, kw = conv.kernel_size
    thinet = n_keep                                   # one scale per kept input channel
    channel_pruning = conv.out_channels * n_keep * kh * kw   # the whole kernel on the kept channels
    return thinet, channel_pruning


def _recon_wrong(conv, n_keep):
    kh, kw = conv.kernel_size
    return n_keep, n_keep * kh * kw


RECON = Exercise(
    id="06.recon_unknowns", title="How many unknowns does each reconstruction fit?",
    prompt="The next conv `conv` keeps `n_keep` of its input channels. Set my_answer = (ThiNet's unknowns, Channel "
           "Pruning's unknowns): how many numbers does each least-squares reconstruction solve for?",
    hint="ThiNet (Luo et al. Eq. 6) rescales what each kept channel contributes; Channel Pruning (He et al. Eq. 1) "
         "refits the next layer's weights. Count the entries of what each one returns.",
    check=_recon_check, solution=_recon_solution, wrong=_recon_wrong, context=_recon_context)


# ----------------------------------------------------------------------------------------------
# 3 · Auto-Balanced's λ factors (survey Eq. 6)
# ----------------------------------------------------------------------------------------------
def _lambda_reference(m, n_keep):
    from ..prune.criteria.weights import auto_balanced_lambda, auto_balanced_split

    weak, theta = auto_balanced_split(m.view(-1, 1, 1, 1), n_keep)   # a 1×1×1 filter's ℓ1 norm is |value|
    return auto_balanced_lambda(m, theta, weak), weak, theta


def _lambda_check(answer):
    import torch

    m = torch.tensor([1.4, 7.5, 0.2, 3.0, 0.9, 1.6], dtype=torch.float64)   # not sorted, on purpose
    for n_keep in (3, 1, 5):
        ref, weak, theta = _lambda_reference(m, n_keep)
        got = torch.as_tensor(answer(m.clone(), n_keep), dtype=torch.float64)
        if got.shape != ref.shape:
            return wrong(f"return one λ per filter: {tuple(ref.shape)} values, got {tuple(got.shape)}.")
        if torch.allclose(got, ref, atol=1e-6):
            continue
        if (got[weak] > 0).all() and (got[~weak] < 0).all():
            return wrong(f"keeping {n_keep}: the split is right but the values are not (θ = {theta:g}, the midpoint "
                         "between the weakest kept and the strongest pruned norm; then Eq. 6).")
        if torch.allclose(got[weak], ref[weak], atol=1e-6):
            return wrong(f"keeping {n_keep}: the weak set P is right; the strong set R is not (got "
                         f"{[round(v, 3) for v in got[~weak].tolist()]}): its λ is negative, −1 − log(M_j/θ), so the "
                         "penalty *grows* the strong filters.")
        return wrong(f"keeping {n_keep} of norms {m.tolist()} you give {[round(v, 3) for v in got.tolist()]}; the "
                     f"weak set is the {len(m) - n_keep} smallest norms, θ = {theta:g}, and Eq. 6 gives "
                     f"{[round(v, 3) for v in ref.tolist()]}.")
    return right("weak filters get λ ≥ 1 (the weaker, the harder they are pushed to zero), strong ones λ ≤ −1 (a "
                 "negative penalty that grows them, the more the stronger): with τ = −α·S(P)/S(R) the two terms "
                 "cancel in value but not in gradient.")


def _lambda_solution():
    import torch

    def my_lambda(m, n_keep):
        order = torch.argsort(m, descending=True)
        weak = torch.ones(len(m), dtype=torch.bool)
        weak[order[:n_keep]] = False                         # keep the n_keep largest ℓ1 norms (set R)
        theta = 0.5 * float(m[order[n_keep - 1]] + m[order[n_keep]])   # between kept and pruned (Eq. 3–5)
        lam_weak = 1.0 + torch.log(theta / m)                # Eq. 6, W_j ∈ P
        lam_strong = -1.0 - torch.log(m / theta)             # Eq. 6, W_j ∈ R
        return torch.where(weak, lam_weak, lam_strong)
    return my_lambda


def _lambda_wrong():
    import torch

    def my_lambda(m, n_keep):
        theta = float(m.median())                            # not where the cut falls
        return 1.0 + torch.log(theta / m)                    # and one formula for both sets
    return my_lambda


LAMBDA = Exercise(
    id="06.balanced_lambda", title="Auto-Balanced's split and λ factors",
    prompt="Write my_lambda(m, n_keep) → a tensor of λ_j: m holds a layer's filters' ℓ1 norms M_j (in no "
           "particular order), the layer keeps its n_keep strongest filters (set R) and prunes the rest (set P). Put "
           "the threshold θ midway between the weakest kept and the strongest pruned norm (Eq. 3–5), then give "
           "every filter its factor of Eq. 6.",
    hint="Sort the norms to find which filters are kept and where θ falls; Eq. 6 has one formula per set, both "
         "logarithms of the ratio between M_j and θ, and the strong set's λ is negative (torch.where picks per "
         "filter).",
    check=_lambda_check, solution=_lambda_solution, wrong=_lambda_wrong)


# ----------------------------------------------------------------------------------------------
# 4 · PSFP's schedule (survey Eq. 11–12)
# ----------------------------------------------------------------------------------------------
_PSFP_CASES = ((0.5, 10), (0.3, 8), (0.7, 24))


def _psfp_check(answer):
    from ..prune.criteria import psfp_rate

    for goal, n in _PSFP_CASES:
        start, end, quarter = (float(answer(e, goal, n)) for e in (0, n, n / 8))
        if abs(start) > 1e-6:
            return wrong(f"P'(0) must be 0 (nothing pruned before training); yours gives {start:.4f}.")
        if abs(end - goal) > 1e-6:
            return wrong(f"P'(N) must be the goal {goal}; yours gives {end:.4f} at epoch {n}.")
        if abs(quarter - goal / 4) > 1e-4:
            return wrong(f"Eq. 12's third condition: a quarter of the goal after D = 1/8 of training, P'({n / 8:g}) = "
                         f"{goal / 4:.4f}; yours gives {quarter:.4f}." + (" A linear ramp reaches only an eighth."
                                                                         if abs(quarter - goal / 8) < 1e-4 else ""))
        for e in range(n + 1):
            if abs(float(answer(e, goal, n)) - psfp_rate(e, goal, n)) > 1e-4:
                return wrong(f"the three conditions hold but epoch {e} gives {float(answer(e, goal, n)):.4f}, Eq. 11 "
                             f"{psfp_rate(e, goal, n):.4f}: the schedule is a·exp(−k·e) + b.")
    return right("three conditions fix Eq. 11's three unknowns: b = −a, b(1 − u) = goal, (1 − u^D)/(1 − u) = 1/4 with "
                 "u = exp(−kN). The rate climbs fast early — when the network can still recover — and slowly near "
                 "the end.")


def _psfp_solution():
    import math

    def my_schedule(epoch, goal, n_epochs, decay=0.125):
        # Eq. 11: P'(e) = a·exp(−k·e) + b. Eq. 12: P'(0) = 0 → a = −b; P'(N) = goal; P'(N·D) = goal / 4.
        # With u = exp(−k·N): b·(1 − u) = goal and b·(1 − u^D) = goal / 4 → (1 − u^D) / (1 − u) = 1/4.
        lo, hi = 1e-300, 1.0 - 1e-12
        for _ in range(200):                          # bisection: the left side falls from 1 to D as u → 1
            u = (lo + hi) / 2
            lo, hi = (u, hi) if (1 - u ** decay) / (1 - u) > 0.25 else (lo, u)
        b = goal / (1 - u)
        k = -math.log(u) / n_epochs
        return b - b * math.exp(-k * epoch)
    return my_schedule


def _psfp_wrong():
    def my_schedule(epoch, goal, n_epochs):
        return goal * epoch / n_epochs               # a linear ramp
    return my_schedule


PSFP = Exercise(
    id="06.psfp_schedule", title="PSFP's pruning-rate schedule",
    prompt="Write my_schedule(epoch, goal, n_epochs) → the PSFP rate P'(epoch) of Eq. 11, a·exp(−k·epoch) + b, with "
           "a, b, k fixed by Eq. 12's three conditions: P'(0) = 0, P'(N) = goal, P'(N·D) = goal/4 with D = 1/8.",
    hint="Substitute u = exp(−k·N): the conditions become b = −a, b·(1 − u) = goal and b·(1 − u^D) = goal/4. Divide "
         "the last two and solve the one equation left in u numerically (bisection on (0, 1)).",
    check=_psfp_check, solution=_psfp_solution, wrong=_psfp_wrong)


# ----------------------------------------------------------------------------------------------
# Prediction and quiz
# ----------------------------------------------------------------------------------------------
def _pruned_vs_small(best_pruned: float, small: float, tolerance: float = 1.0) -> int:
    """0: the best pruned ResNet-50 beats ResNet-18 by more than ``tolerance`` mAP points; 1: within it; 2: ResNet-18
    ahead by more than it."""
    d = float(best_pruned) - float(small)
    return 0 if d > tolerance else (2 if d < -tolerance else 1)


PRUNED_VS_SMALL = Prediction(
    id="06.pruned_vs_small",
    prompt="Every pruned ResNet-50 below keeps about half of its multiply-adds and gets the same short training "
           "budget; ResNet-18 is trained with the baseline's full recipe. On our data, which comes out ahead (mAP)?",
    options=("the best pruned ResNet-50, by more than 1 mAP point (the survey's Fig. 3)",
             "neither: within 1 mAP point of each other",
             "ResNet-18, by more than 1 mAP point"),
    outcome=_pruned_vs_small,
    why="The survey's pruned ResNet-50s start from a network trained for epochs on ImageNet and fine-tuned for tens "
        "of epochs; ours get the short budget printed in the setup cell. The verdicts of section 6 say which of the "
        "two halves of that difference — the starting network or the retraining — decides it here.")

QUIZ = (
    Question("PCB's test feature is pooled *before* its local conv (LC). What does pruning LC + FC besides the "
             "backbone save at test time?",
             ("multiply-adds and parameters", "parameters only: the test feature never passes through LC and FC",
              "nothing at all", "multiply-adds only"), 1,
             "LC and the six FC layers only run in training; pruning them shrinks the stored model but not the "
             "arithmetic per query (Table 8: same test MACs, fewer parameters)."),
    Question("Which strategy zeroes the weakest filters after every epoch, lets them grow back while training, and "
             "removes them only at the end?",
             ("one-shot L1", "iterative Taylor", "PSFP (soft, progressive)", "ThiNet (layer-wise reconstruction)"), 2,
             "Soft pruning keeps zeroed filters trainable, so a filter cut too early can recover; its rate follows "
             "Eq. 11 up to the goal. One-shot and iterative pruning remove filters for good."),
    Question("In design scenario 3, where is the network pruned and retrained?",
             ("on the source domain, then fine-tuned on the target",
              "fine-tuned on the target first, then pruned and retrained on the target",
              "pruned on the target without any fine-tuning",
              "pruned on the source, fine-tuned on the target, pruned again on the target"), 1,
             "Scenario 1 prunes on the source then fine-tunes; 2 prunes on both; 3 adapts to the target first and "
             "prunes there; 4 prunes on the target and then fine-tunes there."),
    Question("Two models need the same multiply-adds per image. Which statement about their CPU latency holds?",
             ("it is the same: latency is proportional to multiply-adds",
              "it can differ: layer shapes, memory traffic and per-layer overheads matter, so latency must be measured",
              "the model with more layers is always faster",
              "the model with more parameters is always slower"), 1,
             "Multiply-adds count arithmetic, not how well each layer shape runs; section 3 measures how much of each "
             "model's multiply-add saving became speed on this machine."),
    Question("Auto-Balanced's τ = −α·S(P)/S(R) makes its two penalty terms cancel in value. Why train with them?",
             ("they have no effect; the cancellation makes them useless",
              "their gradients do not cancel: weak filters shrink and strong ones grow, moving information to the "
              "filters that stay",
              "they replace BatchNorm", "they only lower the learning rate"), 1,
             "The loss value stays L₀, but the gradient of α·S(P) pushes P towards zero while τ·S(R) (τ < 0, λ ≤ −1 "
             "on R) pushes R up: the weak set empties before it is cut, so the cut removes little."),
)

_register("06", exercises=[PRC, RECON, LAMBDA, PSFP], quiz=QUIZ, predictions=[PRUNED_VS_SMALL])
