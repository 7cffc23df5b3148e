"""Chapter 04 (Factorized Distillation, paper 002): exercises, the prediction and the quiz (pattern: :mod:`.ch01`).

Each ``solution`` is what a learner would write (its source is shown, collapsed); each ``wrong`` a typical
mistake that the check must catch; each ``context`` a small stand-in for what the chapter passes."""
from __future__ import annotations

from .core import Exercise, Prediction, Question, register as _register, right, wrong


# ------------------------------------------------------------------ 1. stabilised max pooling, implemented
def _gmp_context() -> dict:
    return {"kernel": 4}


def _gmp_maps():
    import torch

    g = torch.Generator().manual_seed(0)
    return [torch.rand(2, 3, 12, 6, generator=g), torch.rand(2, 3, 8, 4, generator=g) ** 4,
            torch.rand(1, 2, 3, 3, generator=g)]   # the last is smaller than the kernel: clipped


def _gmp_check(answer, kernel) -> object:
    import torch

    from ..models.layers import StabilizedGMP

    ref = StabilizedGMP(kernel)
    for x in _gmp_maps():
        got, want = answer(x, kernel), ref(x)
        if tuple(got.shape) != tuple(want.shape):
            return wrong(f"for a {tuple(x.shape)} map you return shape {tuple(got.shape)}; pooling gives one value "
                         f"per image and channel, {tuple(want.shape)}.")
        if not torch.allclose(got, want, atol=1e-6):
            small = x.shape[2] < kernel or x.shape[3] < kernel
            if torch.allclose(got, x.amax(dim=(2, 3)), atol=1e-6):
                return wrong("that is plain GMP: Eq. 5 takes the max over k×k local *averages* (stride 1).")
            if torch.allclose(got, x.mean(dim=(2, 3)), atol=1e-6) and not small:
                return wrong("that is GAP: average over k×k windows first, then take the max over the windows.")
            if small:
                return wrong(f"right on large maps, not on a {x.shape[2]}×{x.shape[3]} map smaller than the kernel: "
                             "clip the kernel to the map (then it is one average, GAP).")
            return wrong(f"on a {tuple(x.shape)} map your values differ from reidbook's StabilizedGMP by up to "
                         f"{(got - want).abs().max().item():.3g}.")
    return right("the max over stride-1 k×k local means (Eq. 5), with the kernel clipped to small maps — equal to "
                 "reidbook.models.layers.StabilizedGMP on every map tried.")


def _gmp_solution(kernel):
    import torch.nn.functional as F

    def stabilised_gmp(x, k):
        kh, kw = min(k, x.shape[2]), min(k, x.shape[3])            # clip the kernel to small maps
        return F.avg_pool2d(x, (kh, kw), stride=1).amax(dim=(2, 3))  # max over the local means (Eq. 5)
    return stabilised_gmp


def _gmp_wrong(kernel):
    return lambda x, k: x.amax(dim=(2, 3))   # plain GMP


STABILISED_GMP = Exercise(
    id="04.stabilised_gmp", title="Stabilised max pooling",
    prompt="Implement stabilised_gmp(x, k) for feature maps x of shape [B, C, h, w]: Eq. (5), GMP(AvgPool_{k×k, "
           "stride 1}(x)), returning [B, C]. On a map smaller than k, clip the kernel to the map. Set my_answer "
           "to your function.",
    hint="torch.nn.functional.avg_pool2d with stride=1 gives every k×k local mean; then reduce with amax over the "
         "two spatial dimensions.",
    check=_gmp_check, solution=_gmp_solution, wrong=_gmp_wrong, context=_gmp_context)


# ------------------------------------------------------------------ 2. an erased fraction by hand
def _erase_context() -> dict:
    return {"box": (20, 0, 10, 16), "height": 64, "width": 32, "view": "up1"}


def _erase_truth(box, height, width, view) -> float:
    from ..data.views import erased_fraction, make_views

    (v,) = make_views((height, width), (16, 16), [view])
    return erased_fraction(box, v, height, width)


def _erase_check(answer, box, height, width, view) -> object:
    want, got = _erase_truth(box, height, width, view), float(answer)
    if abs(got - want) < 1e-6:
        return right(f"{want:.4g}: the box covers {box[2]} of the band's rows and {box[3]} of its {width} columns "
                     "(reidbook.data.views.erased_fraction).")
    if abs(got - box[2] * box[3] / (height * width)) < 1e-6:
        return wrong("that is the erased share of the whole image; divide by the band's area, not the image's.")
    if abs(got - 100 * want) < 1e-4:
        return wrong("give a fraction (0–1), not a percentage.")
    return wrong(f"{got:.4g} is not it: intersect the box's rows with the band's rows first, then its columns "
                 "with the image's.")


def _erase_solution(box, height, width, view):
    top, left, h, w = box
    r0, r1 = height // 4, height // 2                    # Up1: the second of four stripes (rows 16–32)
    rows = max(0, min(top + h, r1) - max(top, r0))       # rows of the box inside the band
    cols = max(0, min(left + w, width) - max(left, 0))
    return rows * cols / ((r1 - r0) * width)


def _erase_wrong(box, height, width, view):
    return box[2] * box[3] / (height * width)            # share of the whole image


ERASED_FRACTION = Exercise(
    id="04.erased_fraction", title="Erased fraction by hand",
    prompt="A 64×32 holistic image, erasing box (top=20, left=0, h=10, w=16). What fraction of Up1's band "
           "(rows 16–32, full width) is erased? Set my_answer to a fraction.",
    hint="Only the part of the box inside the band counts; the band is the denominator.",
    check=_erase_check, solution=_erase_solution, wrong=_erase_wrong, context=_erase_context)


# ------------------------------------------------------------------ 3. an R34a student, predicted
def _r34_context() -> dict:
    return {"embedding": 512}


def _r34_truth(embedding) -> float:
    import torch

    from ..models.backbones import resnet34
    from ..models.fd import FDNet
    from ..profile import count_params

    with torch.device("meta"):
        net = FDNet(751, resnet34(last_stride=1), embedding)
    return count_params(net, exclude=("classifier",)) / 1e6


def _r34_check(answer, embedding) -> object:
    want, got = _r34_truth(embedding), float(answer)
    if abs(got - want) <= 0.01 * want:
        return right(f"{want:.3f} M: the backbone plus a {embedding}→{embedding} FC (weights and bias) and its "
                     "BatchNorm (γ, β); the classifier is left out, as in Table 1.")
    if abs(got / 1e6 - want) <= 0.01 * want:
        return wrong("give millions, not a count of parameters.")
    return wrong(f"{got:.3f} M is more than 1 % off: count the backbone's parameters, then the embedding "
                 "(Linear + BatchNorm1d), and leave out the identity classifier.")


def _r34_solution(embedding):
    backbone = 21.28e6                                   # ResNet-34's convolutions and BNs, without its fc
    fc = embedding * embedding + embedding               # the embedding's FC: weights and bias
    bn = 2 * embedding                                   # its BatchNorm: γ and β
    return (backbone + fc + bn) / 1e6


def _r34_wrong(embedding):
    return 21.8 + 0.39   # torchvision's ResNet-34 with its 1000-way fc, plus a 751-way classifier


R34A = Exercise(
    id="04.r34a_params", title="A new student: R34a",
    prompt="Table 1 has no ResNet-34 student. Predict the parameters (in millions, classifier excluded) of an "
           "\"R34a\": a ResNet-34 backbone (21.28 M without its fc) + a 512→512 embedding FC + BN. Set my_answer "
           "to a number; the check builds it (FDNet with reidbook.models.backbones.resnet34) and counts.",
    hint="A Linear layer has in·out weights and out biases; a BatchNorm1d learns two vectors.",
    check=_r34_check, solution=_r34_solution, wrong=_r34_wrong, context=_r34_context)


# ------------------------------------------------------------------ 4. which teachers for Group 1 alone
def _group_context() -> dict:
    return {}


def _group_check(answer) -> object:
    from ..data.views import GROUPS

    got = [str(v) for v in answer]
    want = list(GROUPS["group1"])
    if sorted(got) == sorted(want):
        return right(f"views={want}: Partial Group 1 without the holistic teacher. Run distilled_student(..., "
                     "views=my_answer, ...) and compare with the 'Hol' row of section 8.")
    if "holistic" in got:
        return wrong("that keeps the holistic teacher; the question is what Group 1 gives *without* it.")
    return wrong(f"{got} is not Group 1: Fig. 1 cuts the crop into 4 stripes and keeps stripes 2–4 "
                 "(reidbook.data.views.GROUPS).")


def _group_solution():
    return ["up1", "mid1", "dn1"]   # Partial Group 1 (Fig. 1: stripes 2, 3, 4 of 4)


def _group_wrong():
    return ["holistic", "up1", "mid1", "dn1"]


GROUP1_ALONE = Exercise(
    id="04.group1_alone", title="Where is the knowledge?",
    prompt="To distil from Partial Group 1 alone (no holistic teacher), which views do you pass to "
           "distilled_student(..., views=...)? Set my_answer to the list; then run it (a full distillation, "
           "cached) and compare with section 8's 'Hol' row: does Group 1 alone help more or less than the "
           "holistic teacher alone?",
    hint="Section 2's table lists the views; Group 1 cuts the crop into four stripes.",
    check=_group_check, solution=_group_solution, wrong=_group_wrong, context=_group_context)


# ------------------------------------------------------------------ 5. the 40 % threshold, estimated
def _kept_context() -> dict:
    return {"threshold": 0.1, "height": 128, "width": 64, "erasing": 0.5}


def _kept_reference(threshold, height, width, erasing, samples: int = 4000) -> float:
    import random

    import torch

    from ..data.views import RandomErasingWithBox, erased_fractions, make_views

    views = make_views((height, width), (48, 48))
    er, rng = RandomErasingWithBox(p=erasing), random.Random(12345)
    fr = torch.stack([erased_fractions(er.sample_box(height, width, rng), views, height, width)
                      for _ in range(samples)])
    return float((fr <= threshold).float().mean())


def _kept_check(answer, threshold, height, width, erasing) -> object:
    want, got = _kept_reference(threshold, height, width, erasing), float(answer)
    if abs(got - want) <= 0.04:
        at40 = _kept_reference(0.4, height, width, erasing)
        return right(f"about {want:.0%} of (sample, view) pairs keep their regression terms at a {threshold:.0%} "
                     f"threshold (4000 sampled boxes); at 40 % it is {at40:.0%}.")
    if abs(got - _kept_reference(0.4, height, width, erasing)) <= 0.02:
        return wrong("that is the fraction kept at the paper's 40 %; set the threshold to 0.1.")
    return wrong(f"{got:.3f} is more than 0.04 from the estimate with 4000 boxes: count a pair as kept when its "
                 "erased fraction is at most the threshold, over all samples and all seven views.")


def _kept_solution(threshold, height, width, erasing):
    import random

    import torch

    from reidbook.data.views import RandomErasingWithBox, erased_fractions, make_views

    views = make_views((height, width), (48, 48))
    er, rng = RandomErasingWithBox(p=erasing), random.Random(0)
    fr = torch.stack([erased_fractions(er.sample_box(height, width, rng), views, height, width) for _ in range(500)])
    return float((fr <= threshold).float().mean())   # the fraction of (sample, view) pairs kept


def _kept_wrong(threshold, height, width, erasing):
    return _kept_solution(0.4, height, width, erasing)


KEPT = Exercise(
    id="04.kept_threshold", title="Threshold: what does 10 % keep?",
    prompt="The 40 % rule is a hyper-parameter. With erasing probability 0.5 (the final student's) on the "
           "holistic image, estimate with 500 sampled erasing boxes (RandomErasingWithBox.sample_box and "
           "erased_fractions) the fraction of (sample, view) pairs that keep their regression terms when the "
           "threshold is 0.1. Set my_answer to that fraction.",
    hint="A pair is kept when its view's erased fraction is at most the threshold; a sample without erasing "
         "(sample_box returns None) keeps all seven.",
    check=_kept_check, solution=_kept_solution, wrong=_kept_wrong, context=_kept_context)


# ------------------------------------------------------------------ the prediction before section 7's result
def _fd_outcome(map_fd: float, map_control: float, margin: float = 0.01) -> int:
    d = map_fd - map_control
    return 0 if d > margin else (2 if d < -margin else 1)


FD_PREDICTION = Prediction(
    id="04.fd_vs_control",
    prompt="The same initial student trains for the same epochs twice: with Eq. (6) (FD) and with L_cls only (the "
           "control). What will FD do to its mAP in this run?",
    options=("FD beats the control by more than 1 mAP point", "the two are within 1 point of each other",
             "the control beats FD by more than 1 point"),
    outcome=_fd_outcome,
    why="The paper's gain (Table 7: 78.2 → 85.08 for R50b) is measured against the initial student; against a "
        "control trained as long, part of any gain is just more training — the claims section shows the spread "
        "over seeds.")


QUIZ = (
    Question("What does a teacher's supervisory representation SR (Eq. 2) hold for a training image?",
             ("the class probabilities of the teacher",
              "the teacher embedding of its view, averaged with that of the mirrored view",
              "the feature map of the teacher"), 1,
             "SR^k_i = ½(θ^k(View^k(I_i)) + θ^k(flip(View^k(I_i)))): an embedding, computed once and stored."),
    Question("How does the FMFB differ from the RFB?",
             ("the FMFB regresses the SR from the feature maps of the student, the RFB from its embedding",
              "the FMFB is used at test time", "the RFB has no learnable layers"), 0,
             "FMFB: 1×1 FeatSel conv → stabilised GMP → FC+BN on f; RFB: FC+BN+ReLU → FC+BN on r. Both are dropped "
             "after training."),
    Question("Why does the student not grow with the number of teachers?",
             ("the teachers share weights", "FD factorizes: each view gets a small branch used only in training",
              "only the holistic teacher is distilled"), 1,
             "The branches are removed by deploy(); the deployed student is the initial student's architecture."),
    Question("A random erasing covers 60 % of Up1's band. What happens to that sample during distillation?",
             ("it is dropped from the batch", "its L_attr and L_metric for Up1 are ignored; L_cls and the other views "
              "stay", "its erased pixels are restored"), 1,
             "The 40 % rule (§4.1) drops only the regressions of the views whose band is mostly hidden."),
    Question("On a 3×3 feature map, stabilised GMP with a 4×4 kernel (clipped) is…",
             ("global max pooling", "global average pooling", "undefined"), 1,
             "One clipped window covers the whole map: the max over one local mean is that mean — GAP."),
)

_register("04", exercises=[STABILISED_GMP, ERASED_FRACTION, R34A, GROUP1_ALONE, KEPT],
          quiz=QUIZ, predictions=[FD_PREDICTION])
