"""Chapter 03 (GraftedNet, paper 000): exercises, the prediction and the quiz (pattern: :mod:`.ch01`).

Each ``solution`` is what a learner would write (its source is shown, collapsed); each ``wrong`` a typical
mistake that the check must catch; each ``context`` a small stand-in for what the chapter passes."""
from __future__ import annotations

from .core import Exercise, Prediction, Question, register as _register, right, wrong


# ------------------------------------------------------------------ 1. a group-conv reduction, implemented
def _reduction_context() -> dict:
    return {"cases": [(512, 256, 8), (768, 256, 8), (768, 256, 1), (64, 32, 4)]}


def _reduction_check(answer, cases) -> object:
    from ..models.graftednet import reduction_params

    for c_in, c_out, g in cases:
        want, got = reduction_params([c_in], c_out, g), int(answer(c_in, c_out, g))
        if got != want:
            if got == c_in * c_out + 2 * c_out:
                return wrong(f"for C_in={c_in}, C_out={c_out}, g={g} you count {got:,}, the dense 1×1 conv: each of "
                             f"the g groups connects only C_in/g inputs to C_out/g outputs.")
            if got == c_in * c_out // g:
                return wrong(f"for g={g} the group conv's weights are right ({got:,}), but the reduction also has a "
                             "BatchNorm with two learned vectors of C_out.")
            return wrong(f"for C_in={c_in}, C_out={c_out}, g={g} you give {got:,}; measured on the real module: "
                         f"{want:,}.")
    return right("C_in·C_out/g group-conv weights (no bias) + 2·C_out for BN's γ and β — equal to the real "
                 "modules' count for every case tried.")


def _reduction_solution(cases):
    def reduction_parameters(c_in, c_out, groups):
        return c_in * c_out // groups + 2 * c_out   # g groups of (C_in/g → C_out/g) weights, + BN's γ and β
    return reduction_parameters


def _reduction_wrong(cases):
    return lambda c_in, c_out, groups: c_in * c_out + 2 * c_out   # forgets the groups


GROUP_REDUCTION = Exercise(
    id="03.group_reduction", title="A group-conv reduction's parameters",
    prompt="Implement reduction_parameters(c_in, c_out, groups): the number of learned parameters of one of "
           "GraftedNet's reductions — a 1×1 convolution with `groups` groups and no bias, followed by BatchNorm. "
           "Set my_answer to your function.",
    hint="Draw the weight matrix of a 1×1 conv as C_out × C_in; with g groups only g blocks on its diagonal are "
         "kept. Then add what BatchNorm learns (not what it stores).",
    check=_reduction_check, solution=_reduction_solution, wrong=_reduction_wrong, context=_reduction_context)


# ------------------------------------------------------------------ 2. nine reductions at g = 2, a number
def _nine_context() -> dict:
    return {"in_channels": [512] + [768] * 8, "out_channels": 256}


def _nine_check(answer, in_channels, out_channels) -> object:
    from ..models.graftednet import reduction_params

    want = reduction_params(in_channels, out_channels, groups=2)
    got = int(answer)
    if got == want:
        return right(f"{want:,} parameters: half the dense reductions' weights plus nine BatchNorms — measured on "
                     "real modules by reidbook.models.graftednet.reduction_params.")
    if got == want - 9 * 2 * out_channels:
        return wrong("the group-conv weights are right; add the nine BatchNorms' γ and β.")
    if got == reduction_params(in_channels, out_channels, groups=1):
        return wrong("that is g = 1 (dense); with g = 2 each output sees half of the inputs.")
    return wrong(f"{got:,} is not it: sum one reduction per feature; the inputs are 512 channels for fire_conv4f "
                 "and 768 for the eight features taken from fire_conv5x.")


def _nine_solution(in_channels, out_channels):
    return sum(c * out_channels // 2 + 2 * out_channels for c in in_channels)   # g = 2, plus BN's γ and β


def _nine_wrong(in_channels, out_channels):
    return sum(c * out_channels // 2 for c in in_channels)   # forgets the BatchNorms


NINE_REDUCTIONS = Exercise(
    id="03.nine_reductions_g2", title="Nine reductions at g = 2",
    prompt="How many parameters do GraftedNet's nine reductions (width 1, 256 outputs each) have with g = 2? "
           "Which map does each of the nine features come from, and how many channels does it have? Set "
           "my_answer to a number.",
    hint="Section 4 lists the nine features and section 2's shape table their maps' channels; your function "
         "from the previous exercise does one reduction.",
    check=_nine_check, solution=_nine_solution, wrong=_nine_wrong, context=_nine_context)


# ------------------------------------------------------------------ 3. graft onto a shallower rootstock
def _cut_context() -> dict:
    return {"rootstock_channels": 256, "scion_channels": 512, "map_size": (32, 16)}


def _cut_check(answer, rootstock_channels, scion_channels, map_size) -> object:
    import torch

    x = torch.randn(1, rootstock_channels, *map_size)
    try:
        with torch.no_grad():
            y = answer(x)
    except RuntimeError as err:
        return wrong(f"it does not graft: a {rootstock_channels}-channel map does not fit its first conv ({err}).")
    if y.shape[1] != scion_channels:
        return wrong(f"it grafts, but gives {y.shape[1]} channels; fire_conv4b–4f expect {scion_channels}.")
    if getattr(answer, "residual", False):
        return wrong("an identity skip cannot join a module that changes the shape.")
    return right(f"a fire module that takes {rootstock_channels} channels and expands to {scion_channels} joins the "
                 "shallower rootstock; like fire_conv5a, it changes the shape, so it gets no skip.")


def _cut_solution(rootstock_channels, scion_channels, map_size):
    from reidbook.models.layers import FireModule

    half = scion_channels // 2
    return FireModule(rootstock_channels, 64, half, half, residual=False)   # 256 → 512, no skip (shapes differ)


def _cut_wrong(rootstock_channels, scion_channels, map_size):
    from reidbook.models.layers import FireModule

    return FireModule(scion_channels, 64, scion_channels // 2, scion_channels // 2, residual=True)   # the original 4a


CUT_ELSEWHERE = Exercise(
    id="03.cut_elsewhere", title="Cut elsewhere",
    prompt="A rootstock of res_conv1x–2x only ends in a 256-channel map at stride 4. Build the fire module "
           "(reidbook.models.layers.FireModule) that must replace fire_conv4a so that fire_conv4b–4f still get "
           "512 channels. Set my_answer to the module; then count your design's parameters with count_params.",
    hint="Affinity is a matter of shapes: what goes in is the rootstock's output, what comes out is what "
         "fire_conv4b takes. When in and out differ, can the module keep its identity skip?",
    check=_cut_check, solution=_cut_solution, wrong=_cut_wrong, context=_cut_context)


# ------------------------------------------------------------------ 4. the gap, read off the run
def _gap_context() -> dict:
    return {"map_al": 0.433, "map_no_al": 0.412}


def _gap_check(answer, map_al, map_no_al) -> object:
    want = 100 * (map_al - map_no_al)
    got = float(answer)
    if abs(got - want) <= 0.05:
        return right(f"{want:+.1f} mAP points. One seed cannot say whether that is more than seed-to-seed noise: "
                     "re-run section 5 with SEED = 1 (or read the claims section's seeds).")
    if abs(got - want / 100) <= 0.0005:
        return wrong("that is a fraction; give percentage points (mAP × 100).")
    if abs(got + want) <= 0.05:
        return wrong("the sign: GraftedNet (with the branch) minus GraftedNet(−AL).")
    return wrong(f"{got:+.2f} is not this run's gap; take the two mAPs of section 5's table.")


def _gap_solution(map_al, map_no_al):
    return 100 * (map_al - map_no_al)   # runs["GraftedNet"].metrics["mAP"] − runs["GraftedNet(-AL)"].metrics["mAP"]


def _gap_wrong(map_al, map_no_al):
    return 100 * (map_no_al - map_al)


AL_GAP = Exercise(
    id="03.al_gap", title="Noise: what did the branch buy?",
    prompt="From section 5's runs, how many mAP points (percentage points, GraftedNet minus GraftedNet(−AL)) "
           "did accompanying learning buy in this run? Set my_answer to a number. Then re-run section 5 with "
           "SEED = 1: is the gap larger than the change between seeds?",
    hint="Each run's metrics are in runs[name].metrics, as fractions.",
    check=_gap_check, solution=_gap_solution, wrong=_gap_wrong, context=_gap_context)


# ------------------------------------------------------------------ 5. a MobileNetV2 scion
def _mbv2_context() -> dict:
    return {"in_channels": 512, "map_size": (16, 8)}


def _mbv2_check(answer, in_channels, map_size) -> object:
    import torch
    from torchvision.models.mobilenetv2 import InvertedResidual

    blocks = sum(isinstance(m, InvertedResidual) for m in answer.modules())
    if blocks != 9:
        return wrong(f"the scion has {blocks} inverted-residual blocks; GraftedNet's plan has nine modules "
                     "(fire_conv4a–4f, 5a–5c).")
    with torch.no_grad():
        y = answer(torch.randn(1, in_channels, *map_size))
    want = (1, 768, -(-map_size[0] // 4), -(-map_size[1] // 4))
    if tuple(y.shape) != want:
        return wrong(f"output {tuple(y.shape)}, expected {want}: 768 channels after fire_conv5x, and the map halved "
                     "twice (after 4a and after 5a).")
    from ..profile import count_params

    return right(f"the same channel plan in {count_params(answer) / 1e6:.2f} M parameters; compare with the fire "
                 "scion's count and with its multiply-adds (reidbook.profile.count_macs).")


def _mbv2_solution(in_channels, map_size):
    import torch.nn as nn
    from torchvision.models.mobilenetv2 import InvertedResidual

    def ir(c_in, c_out):
        return InvertedResidual(c_in, c_out, stride=1, expand_ratio=6)

    return nn.Sequential(ir(in_channels, 512), nn.MaxPool2d(3, stride=2, padding=1),   # 4a + its pool
                         *[ir(512, 512) for _ in range(5)],                              # 4b–4f
                         ir(512, 768), nn.MaxPool2d(3, stride=2, padding=1),             # 5a + its pool
                         ir(768, 768), ir(768, 768))                                     # 5b, 5c


def _mbv2_wrong(in_channels, map_size):
    import torch.nn as nn
    from torchvision.models.mobilenetv2 import InvertedResidual

    return nn.Sequential(InvertedResidual(in_channels, 512, stride=1, expand_ratio=6))   # the stub: one block


MBV2_SCION = Exercise(
    id="03.mobilenet_scion", title="A MobileNetV2 scion",
    prompt="Replace the fire modules by MobileNetV2 inverted-residual blocks "
           "(torchvision.models.mobilenetv2.InvertedResidual, expansion 6) with GraftedNet's channel plan: "
           "512 → 512 six times with a 3×3/2 max pool after the first, 512 → 768, a pool, 768 → 768 twice. Set "
           "my_answer to the nn.Sequential; then compare its parameters and multiply-adds with the fire scion's.",
    hint="Nine blocks, two pools, in the order of section 2's shape table; InvertedResidual adds its own skip "
         "when input and output shapes agree.",
    check=_mbv2_check, solution=_mbv2_solution, wrong=_mbv2_wrong, context=_mbv2_context)


# ------------------------------------------------------------------ the prediction before section 5's result
def _al_outcome(map_al: float, map_no_al: float, margin: float = 0.01) -> int:
    d = map_al - map_no_al
    return 0 if d > margin else (2 if d < -margin else 1)


AL_PREDICTION = Prediction(
    id="03.al_helps",
    prompt="GraftedNet and GraftedNet(−AL) train for the same few epochs from the same seed. In this short CPU "
           "run, what will accompanying learning do to the deployed model's mAP?",
    options=("help: GraftedNet beats GraftedNet(−AL) by more than 1 mAP point",
             "nothing measurable: the two are within 1 point of each other",
             "hurt: GraftedNet(−AL) is better by more than 1 point"),
    outcome=_al_outcome,
    why="The paper measures +3.3 points after 80 epochs (Table 2); one short run on one seed can differ either way "
        "— the claims section shows the spread over seeds.")


QUIZ = (
    Question("Where are most of ResNet-50's parameters?",
             ("in conv1 and res_conv2x, which see the largest maps", "in res_conv4x and res_conv5x",
              "spread evenly over the five stages"), 1,
             "Parameters grow with channels (C_in·C_out·k²), not with map size: the last two stages hold about 22 of "
             "23.5 M. Multiply-adds are the other way round — the early stages run on large maps."),
    Question("A 1×1 group convolution from 768 to 256 channels with g = 8 has how many weights compared with g = 1?",
             ("the same", "one eighth", "one sixty-fourth"), 1,
             "Each of the 8 groups maps 96 inputs to 32 outputs: 8 · 96 · 32 = 768 · 256 / 8."),
    Question("Why can fire_conv5a have no identity skip?",
             ("it is the first module after a pool", "its output has 768 channels and its input 512",
              "skips only fit 3×3 convolutions"), 1,
             "y = fire(x) + x needs equal shapes; fire_conv5a changes 512 channels into 768."),
    Question("What does deploy() remove from a trained GraftedNet?",
             ("the rootstock", "the accompanying branch and the nine classifiers", "the reductions"), 1,
             "The test feature is the concatenation of the nine reduced features (Eq. 3); the classifiers and the "
             "senior branch only shape training."),
    Question("GraftedNet has about a fifth of ResNet-50's parameters. Its CPU latency is therefore…",
             ("about a fifth of ResNet-50's", "not predicted by the parameters: the rootstock computes on large maps",
              "higher than ResNet-50's, always"), 1,
             "Latency follows multiply-adds and memory traffic; GraftedNet keeps ResNet-50's first three stages, "
             "where most of the computation is."),
)

_register("03", exercises=[GROUP_REDUCTION, NINE_REDUCTIONS, CUT_ELSEWHERE, AL_GAP, MBV2_SCION],
          quiz=QUIZ, predictions=[AL_PREDICTION])
