"""Chapter 01 (the baseline): exercises, predictions and the quiz. A template for every ``chNN.py``:
each exercise's ``solution`` is what a learner would write (its source is shown, collapsed), ``wrong`` a
typical mistake the check must catch, ``context`` a small stand-in for what the chapter passes."""
from __future__ import annotations

from .core import Exercise, Prediction, Question, not_attempted, register as _register, right, wrong


def _bn_neck_context() -> dict:
    import torch.nn as nn

    return {"neck": nn.BatchNorm1d(2048)}


def _bn_neck_check(answer, neck) -> object:
    want = sum(p.numel() for p in neck.parameters())
    if int(answer) == want:
        return right(f"{want:,} = 2 × {neck.num_features}: a scale γ and a shift β per channel; the running mean "
                     "and variance are buffers, not parameters.")
    if int(answer) == 2 * want:
        return wrong("that counts the running mean and variance too; they are buffers (not learned).")
    return wrong(f"{int(answer):,} is not it: a BatchNorm1d over C channels learns two numbers per channel.")


def _bn_neck_solution(neck):
    return sum(p.numel() for p in neck.parameters())   # = 2 * neck.num_features (γ and β)


def _bn_neck_wrong(neck):
    return 4 * neck.num_features   # γ, β and the running statistics


BN_NECK = Exercise(
    id="01.bn_neck", title="The BN-neck's price",
    prompt="How many parameters does the BN-neck of the paper-size baseline add (γ and β of a BatchNorm over the "
           "2048-d feature)? Set my_answer to a number.",
    hint="Count what the optimiser updates, not what the layer stores: BatchNorm keeps four vectors, two are learned.",
    check=_bn_neck_check, solution=_bn_neck_solution, wrong=_bn_neck_wrong, context=_bn_neck_context)


# ----------------------------------------------------------------------------- 01.last_stride
PAPER_INPUT = (256, 128)   # BoT §4.1: the input size of the paper-size baseline


def _stride2_conv5_macs() -> int:
    from ..models import build_paper_model
    from ..profile import macs_by_stage

    return macs_by_stage(build_paper_model("baseline", last_stride=2), PAPER_INPUT)["conv5"]


def _last_stride_context() -> dict:
    from ..models import build_paper_model
    from ..profile import macs_by_stage

    return {"macs": macs_by_stage(build_paper_model("baseline"), PAPER_INPUT)}


def _last_stride_check(answer, macs):
    value = float(answer)
    ratio = macs["conv5"] / _stride2_conv5_macs()
    if abs(value - ratio) < 0.01:
        return right(f"{ratio:.2f}×, not 4×: conv5's first block first reduces 1024 → 512 channels with a 1×1 "
                     "convolution and only then applies the stride in its 3×3 (torchvision's ResNet, 'v1.5'), so that "
                     "1×1 layer runs on conv4's map at both strides and costs the same; every other conv5 layer runs "
                     "on 4× fewer positions with last_stride=2. The parameters do not change at all.")
    if abs(value - 4.0) < 0.01:
        return wrong("4 is the ratio of the map positions (16×8 against 8×4); the exercise asks for the measured "
                     "multiply-adds of conv5: measure them with macs_by_stage on a last_stride=2 model.")
    if abs(value - 1 / ratio) < 0.01:
        return wrong("that ratio is upside down: divide the last_stride=1 cost by the last_stride=2 cost.")
    return wrong(f"{value:.2f} is not the measured ratio of conv5's multiply-adds (last_stride=1 over last_stride=2).")


def _last_stride_solution(macs):
    from reidbook.models import build_paper_model
    from reidbook.profile import macs_by_stage

    stride2 = build_paper_model("baseline", last_stride=2)
    return macs["conv5"] / macs_by_stage(stride2, (256, 128))["conv5"]


def _last_stride_wrong(macs):
    return 4.0   # the ratio of map positions, not of the measured multiply-adds


LAST_STRIDE = Exercise(
    id="01.last_stride", title="Last stride",
    prompt="Build the paper-size baseline with last_stride=2 and divide conv5's multiply-adds in the table above "
           "(last_stride=1) by its conv5 multiply-adds. Predict the ratio before you measure it (the map has 4× fewer "
           "positions), then set my_answer to the measured ratio.",
    hint="build_paper_model(\"baseline\", last_stride=2) and macs_by_stage(model, (256, 128))[\"conv5\"]. If the ratio "
         "is not 4, look at the order of the layers in conv5's first block: where does the stride act?",
    check=_last_stride_check, solution=_last_stride_solution, wrong=_last_stride_wrong, context=_last_stride_context)


# ----------------------------------------------------------------------------- 01.batch_hard
def _toy_batches() -> list:
    """Toy P×K batches: random ones, a shuffled one, and an easy one (identities far apart: loss 0)."""
    import torch

    g = torch.Generator().manual_seed(0)
    two_by_three = torch.tensor([0, 0, 1, 1, 2, 2])
    far = torch.tensor([[0.0, 0.0], [10.0, 0.0], [0.0, 10.0]]).repeat_interleave(2, 0)
    return [
        (torch.randn(6, 2, generator=g), two_by_three, 0.3),
        (torch.randn(12, 8, generator=g), torch.arange(4).repeat_interleave(3), 0.3),
        (torch.randn(8, 4, generator=g), torch.tensor([1, 0, 1, 2, 0, 2, 3, 3]), 0.3),
        (far + 0.01 * torch.randn(6, 2, generator=g), two_by_three, 0.3),
        (torch.randn(8, 3, generator=g), torch.arange(4).repeat_interleave(2), 1.0),
    ]


def _batch_hard_slip(features, pids, margin, got) -> str | None:
    """Name the usual slip that gives ``got`` on this batch, if one does."""
    import torch

    from ..losses import hard_example_mining, pairwise_distance

    d = pairwise_distance(features)
    ap, an, _ = hard_example_mining(d, pids)
    same = (pids[:, None] == pids[None, :]) & ~torch.eye(len(pids), dtype=torch.bool)
    easy_pos = d.masked_fill(~same, float("inf")).min(1).values
    slips = {
        "no hinge: [·]_+ keeps only the anchors that still violate the margin": (margin + ap - an).mean(),
        "a sum over anchors; the loss is their mean": (margin + ap - an).clamp(min=0).sum(),
        "the nearest positive; batch-hard uses the furthest one": (margin + easy_pos - an).clamp(min=0).mean(),
    }
    for what, value in slips.items():
        if abs(float(value) - got) < 1e-4 * max(1.0, abs(got)):
            return what
    return None


def _batch_hard_check(answer):
    from ..losses import batch_hard_triplet_loss

    if not callable(answer):
        return wrong("my_answer should be your function itself (batch_hard_triplet), not its result.")
    batches = _toy_batches()
    for i, (f, p, m) in enumerate(batches, 1):
        got = answer(f.clone(), p.clone(), margin=m)
        if got is None:
            return not_attempted("your function returns None: write its body (see the prompt above).")
        got = float(got)
        want = float(batch_hard_triplet_loss(f, p, margin=m))
        if abs(got - want) > 1e-4 * max(1.0, abs(want)):
            slip = _batch_hard_slip(f, p, m, got)
            return wrong(f"toy batch {i} (pids {p.tolist()}, margin {m}): you give {got:.4f}, "
                         f"reidbook.losses.batch_hard_triplet_loss {want:.4f}"
                         + (f" — that looks like {slip}." if slip else
                            ". For every anchor: the furthest positive, the nearest negative, the hinge, the mean."))
    return right(f"your loss equals reidbook.losses.batch_hard_triplet_loss on all {len(batches)} toy batches, "
                 "including an easy batch where every anchor already clears the margin (loss 0).")


def _batch_hard_solution():
    import torch

    def batch_hard_triplet(features, pids, margin=0.3):
        d = torch.cdist(features, features)                                # D[a, j] = ‖f_a − f_j‖
        same = pids[:, None] == pids[None, :]
        hardest_pos = d.masked_fill(~same, float("-inf")).max(1).values    # furthest positive
        hardest_neg = d.masked_fill(same, float("inf")).min(1).values      # nearest negative
        return (margin + hardest_pos - hardest_neg).clamp(min=0).mean()    # hinge, mean over anchors

    return batch_hard_triplet


def _batch_hard_wrong():
    import torch

    def batch_hard_triplet(features, pids, margin=0.3):
        d = torch.cdist(features, features)
        same = pids[:, None] == pids[None, :]
        hardest_pos = d.masked_fill(~same, float("-inf")).max(1).values
        hardest_neg = d.masked_fill(same, float("inf")).min(1).values
        return (margin + hardest_pos - hardest_neg).mean()                 # the hinge forgotten

    return batch_hard_triplet


BATCH_HARD = Exercise(
    id="01.batch_hard", title="Batch-hard triplet on a toy batch",
    prompt="Write batch_hard_triplet(features, pids, margin=0.3): features is a [B, D] tensor, pids the [B] identity "
           "labels of a P×K batch (every identity at least twice). Return L_BH of the formula in section 1, averaged "
           "over the anchors, with Euclidean distances. The check compares it with reidbook.losses' batch-hard "
           "triplet loss on several toy batches.",
    hint="Build the B×B distance matrix first (torch.cdist). For each anchor (row), mask it to the same identity and "
         "take the maximum, mask it to the other identities and take the minimum; then margin + max − min, the hinge, "
         "and the mean.",
    check=_batch_hard_check, solution=_batch_hard_solution, wrong=_batch_hard_wrong)


# ----------------------------------------------------------------------------- runs: a stand-in zoo for the tests
def _fake_get(name, profile="smoke", data="synth", seed=0, device="auto", **overrides):
    """A stand-in for ``zoo.get`` in the tests: the preset the real call would train, a real (untrained) small model,
    and made-up metrics (the checks judge the experiment's set-up; its numbers are only reported)."""
    from types import SimpleNamespace

    from ..models import build_model
    from ..presets import get_preset

    preset = get_preset(name, profile).replace(**overrides) if overrides else get_preset(name, profile)
    model = build_model(name, 10, profile=profile, **preset.model_options).eval()
    made_up = 0.40 if not overrides else 0.37
    return SimpleNamespace(model=model, preset=preset, metrics={"mAP": made_up, "rank1": made_up + 0.2},
                           config={"name": name, "profile": profile, "data": data, "seed": seed})


def _runs_context() -> dict:
    from types import SimpleNamespace

    return {"reference": _fake_get("baseline", "smoke"), "zoo": SimpleNamespace(get=_fake_get),
            "profile": "smoke", "data": "synth", "seed": 0}


def _is_run(answer) -> bool:
    return all(hasattr(answer, k) for k in ("preset", "metrics", "model"))


_NOT_A_RUN = "my_answer should be the trained run that zoo.get(...) returns (it has .model, .preset and .metrics)."


def _differences(preset, want) -> list[str]:
    """The preset fields in which ``preset`` differs from ``want`` (compared as the zoo stores them, JSON: a run
    loaded from the cache has lists where a fresh preset has tuples)."""
    import json

    a, b = (json.loads(json.dumps(p.to_dict(), default=str)) for p in (preset, want))
    return sorted(k for k in a if a[k] != b.get(k))


def _same_run_setting(answer, reference) -> str | None:
    """A sentence if ``answer`` was trained on other data or with another seed than ``reference``."""
    a, b = getattr(answer, "config", None) or {}, getattr(reference, "config", None) or {}
    for key in ("profile", "data", "seed"):
        if key in a and key in b and a[key] != b[key]:
            return f"this run's {key} is {a[key]!r}, the chapter's is {b[key]!r}: compare like with like."
    return None


def _test_cost(run) -> tuple[int, int]:
    """Test-time parameters (the classifier excluded) and multiply-adds of a trained run's model."""
    from ..profile import count_macs, count_params

    model = run.model
    params = count_params(model) - (count_params(model.classifier) if hasattr(model, "classifier") else 0)
    return params, count_macs(model, run.preset.input_size)


# ----------------------------------------------------------------------------- 01.label_smoothing
def _smoothing(preset):
    for term in preset.losses:
        if term.get("loss") == "cross_entropy":
            return float(term.get("options", {}).get("label_smoothing", 0.0))
    return None


def _label_smoothing_check(answer, reference, **_):
    if not _is_run(answer):
        return wrong(_NOT_A_RUN)
    p, ref = answer.preset, reference.preset
    eps = _smoothing(p)
    if p.model != ref.model:
        return wrong(f"this is a {p.model!r} run; the exercise changes the chapter's {ref.model!r} (BoT) run.")
    if eps is None:
        return wrong("this run has no cross-entropy term: label smoothing lives in the softmax loss. Keep BoT's "
                     "loss terms and change ε only.")
    if eps != 0.0:
        return wrong(f"this run still smooths the labels (ε = {eps}); set label_smoothing=0.0.")
    want = ref.replace(losses=[{**t, "options": {**t.get("options", {}), "label_smoothing": 0.0}}
                               if t.get("loss") == "cross_entropy" else t for t in ref.losses])
    changed = _differences(p, want)
    if changed:
        names = {t.get("name") for t in ref.losses} - {t.get("name") for t in p.losses}
        dropped = f" (the term(s) {', '.join(sorted(names))} of the chapter's preset are missing)" if names else ""
        return wrong(f"besides ε, this run changes {', '.join(changed)}{dropped}: then the comparison does not "
                     "isolate label smoothing. Start from the preset's own loss terms (preset.losses).")
    other = _same_run_setting(answer, reference)
    if other:
        return wrong(other)
    a, b = answer.metrics["mAP"], reference.metrics["mAP"]
    return right(f"the same run with ε = 0: mAP {a:.1%}, against {b:.1%} with ε = 0.1 ({100 * (a - b):+.1f} points). "
                 "That is one seed each: train both again with another SEED (or read the claims ledger's spread) "
                 "before you call the difference real.")


def _label_smoothing_solution(zoo, profile, data, seed, **_):
    from reidbook.presets.baseline import BOT_CENTER_WEIGHT, loss_specs

    # every term of the preset kept (BoT's center loss too), only ε changed
    losses = loss_specs("both", label_smoothing=0.0, center=BOT_CENTER_WEIGHT)
    return zoo.get("baseline", profile, data, seed, losses=losses)


def _label_smoothing_wrong(zoo, profile, data, seed, **_):
    from reidbook.presets.baseline import loss_specs

    return zoo.get("baseline", profile, data, seed, losses=loss_specs("both", label_smoothing=0.0))  # center loss lost


LABEL_SMOOTHING = Exercise(
    id="01.label_smoothing", title="Label smoothing",
    prompt="Train the BoT baseline again with label smoothing switched off (ε = 0) and everything else as the "
           "chapter's preset has it, through zoo.get(\"baseline\", PROFILE, DATA, SEED, losses=...). Set my_answer to "
           "the run. The check says whether the experiment changes ε alone and prints the two mAPs: is the "
           "difference larger than what changing SEED alone gives?",
    hint="The preset's loss terms come from reidbook.presets.baseline.loss_specs; print preset.losses to see every "
         "term the chapter trains with, and keep all of them.",
    check=_label_smoothing_check, solution=_label_smoothing_solution, wrong=_label_smoothing_wrong,
    context=_runs_context)


# ----------------------------------------------------------------------------- 01.lighter_backbone
def _cost_sentence(answer, reference, what: str) -> str:
    pa, ma = _test_cost(answer)
    pr, mr = _test_cost(reference)
    a, b = answer.metrics["mAP"], reference.metrics["mAP"]
    cheaper = pa < pr and ma < mr
    if cheaper and a >= b:
        verdict = "it is cheaper on both counts and no worse on mAP in this run (one seed: check another)"
    elif cheaper:
        verdict = (f"you bought {pr / pa:.1f}× fewer parameters and {mr / ma:.1f}× fewer MACs with "
                   f"{100 * (b - a):.1f} mAP points")
    else:
        verdict = "it is not cheaper on both counts: read the numbers before you call it light"
    return (f"{what}: {pa / 1e6:.2f} M parameters at test time (classifier excluded) against {pr / 1e6:.2f} M, "
            f"{ma / 1e6:.1f} M MACs against {mr / 1e6:.1f} M, mAP {a:.1%} against {b:.1%}: {verdict}. Latency is the "
            "third number: measure both with measure_latency, as in section 6.")


def _lighter_backbone_check(answer, reference, **_):
    if not _is_run(answer):
        return wrong(_NOT_A_RUN)
    p, ref = answer.preset, reference.preset
    if p.model != "baseline":
        return wrong(f"this is a {p.model!r} run; the exercise keeps the baseline and changes its backbone only.")
    arch = p.model_options.get("arch")
    if arch != "resnet18":
        return wrong(f"this run's backbone is {arch!r}; ask for model_options={{'arch': 'resnet18'}}.")
    changed = _differences(p, ref.replace(model_options={"arch": "resnet18"}))
    if changed:
        return wrong(f"besides the backbone, this run changes {', '.join(changed)}: then the comparison does not "
                     "isolate the backbone.")
    other = _same_run_setting(answer, reference)
    if other:
        return wrong(other)
    return right(_cost_sentence(answer, reference, "ResNet-18 against the chapter's ResNet-50"))


def _lighter_backbone_solution(zoo, profile, data, seed, **_):
    return zoo.get("baseline", profile, data, seed, model_options={"arch": "resnet18"})


def _lighter_backbone_wrong(zoo, profile, data, seed, **_):
    from reidbook.presets.baseline import loss_specs

    # two changes at once: the backbone and (by rebuilding the losses) the center loss
    return zoo.get("baseline", profile, data, seed, model_options={"arch": "resnet18"}, losses=loss_specs("both"))


LIGHTER_BACKBONE = Exercise(
    id="01.lighter_backbone", title="A lighter backbone",
    prompt="Train the baseline on a ResNet-18 instead of the ResNet-50, everything else as in the chapter "
           "(zoo.get(\"baseline\", PROFILE, DATA, SEED, model_options=...)), and set my_answer to the run. The check "
           "compares its mAP, parameters and multiply-adds with the chapter's run: which of them did you buy, and with "
           "which?",
    hint="model_options is merged into the preset's, so naming the arch alone keeps last_stride, the BN-neck and "
         "the metric.",
    check=_lighter_backbone_check, solution=_lighter_backbone_solution, wrong=_lighter_backbone_wrong,
    context=_runs_context)


# ----------------------------------------------------------------------------- 01.light_network
def _light_network_check(answer, reference, **_):
    if not _is_run(answer):
        return wrong(_NOT_A_RUN)
    p = answer.preset
    if p.model != "light":
        return wrong(f"this is a {p.model!r} run; the light networks are the model \"light\".")
    arch = p.model_options.get("arch")
    if arch != "mobilenet_v2":
        return wrong(f"this run is {arch!r} (the light preset's default is SqueezeNet); ask for "
                     "model_options={'arch': 'mobilenet_v2'}.")
    other = _same_run_setting(answer, reference)
    if other:
        return wrong(other)
    return right(_cost_sentence(answer, reference, "MobileNetV2 against the chapter's BoT ResNet-50")
                 + " (The light preset trains with its own recipe, GraftedNet's §4.2: softmax only.)")


def _light_network_solution(zoo, profile, data, seed, **_):
    return zoo.get("light", profile, data, seed, model_options={"arch": "mobilenet_v2"})


def _light_network_wrong(zoo, profile, data, seed, **_):
    return zoo.get("light", profile, data, seed)   # the light preset's default network, SqueezeNet


LIGHT_NETWORK = Exercise(
    id="01.light_network", title="Light networks",
    prompt="Train the MobileNetV2 that GraftedNet's Table 3 compares with (zoo.get(\"light\", PROFILE, DATA, SEED, "
           "model_options=...)) and set my_answer to the run. Where does it sit on the cost/accuracy plane, against "
           "the chapter's BoT baseline?",
    hint="The \"light\" preset chooses its network with model_options={\"arch\": ...}; its default is not MobileNetV2.",
    check=_light_network_check, solution=_light_network_solution, wrong=_light_network_wrong, context=_runs_context)


# ----------------------------------------------------------------------------- prediction
LOSS_ORDER = ("softmax", "triplet", "both")


def _which_loss_outcome(softmax: float, triplet: float, both: float) -> int:
    values = (softmax, triplet, both)
    return max(range(3), key=lambda i: values[i])


WHICH_LOSS = Prediction(
    id="01.which_loss",
    prompt="Same network, same data, same schedule; only the loss differs. Which run reaches the highest mAP?",
    options=("softmax alone (IDE)", "triplet alone (TriNet)", "both together (BoT)"),
    outcome=_which_loss_outcome,
    why="The combination gives the feature an identity signal and a distance signal at once; over a short budget the "
        "softmax often converges faster than the triplet loss. One run per loss cannot separate an effect from seed "
        "noise: the claims ledger below compares them over several seeds.")


# ----------------------------------------------------------------------------- quiz
QUIZ = (
    Question("At test time, which vector does the BoT baseline use to rank the gallery?",
             ("the classifier logits", "the feature f before the BN-neck",
              "the BN-neck feature f_bn (the classifier is dropped)", "the concatenation of f and the logits"),
             2, "The classifier only exists to train the identities it has seen; a test person is new. BoT ranks by "
                "f_bn, the feature the classifier saw, normalised (cosine); f is what the triplet loss trains."),
    Question("For each anchor, the batch-hard triplet loss uses …",
             ("a random positive and a random negative", "the nearest positive and the furthest negative",
              "the furthest positive and the nearest negative in the batch", "every positive and every negative"),
             2, "Hardest pair: the positive that is furthest away and the negative that is closest. Averaging over "
                "every triplet (batch-all) dilutes the few informative ones with many easy ones."),
    Question("Why can the label-smoothed cross-entropy not reach zero?",
             ("because of weight decay", "its target is not one-hot: its minimum is the entropy of the smoothed target",
              "the BN-neck prevents it", "the classifier has no bias"),
             1, "With ε > 0 the target spreads ε/N over the other classes; cross-entropy is lowest when the prediction "
                "equals the target, and then it equals the target's entropy, which is above zero."),
    Question("Setting last_stride=1 instead of 2 in the ResNet-50 …",
             ("adds parameters to conv5", "keeps the parameters and raises conv5's multiply-adds (a 2× larger map each "
              "way)", "halves the feature dimension", "removes the downsampling of conv4"),
             1, "A stride changes where a convolution is evaluated, not its weights: the same parameters run on 16×8 "
                "positions instead of 8×4 at 256×128 input."),
    Question("A ResNet-50 keeps most parameters in conv4–conv5. Where does it spend its multiply-adds?",
             ("almost all in conv5", "spread over all stages, the early high-resolution ones included",
              "almost all in the classifier", "only in the 3×3 convolutions"),
             1, "Early stages have few channels but large maps, late stages many channels on small maps: parameters "
                "and computation live in different places, so compressing one is not compressing the other."),
)

_register("01", exercises=[BN_NECK, LAST_STRIDE, BATCH_HARD, LABEL_SMOOTHING, LIGHTER_BACKBONE, LIGHT_NETWORK],
          quiz=QUIZ, predictions=[WHICH_LOSS])
