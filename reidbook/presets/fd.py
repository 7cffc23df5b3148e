"""Presets of Factorized Distillation (paper 002, ``reidbook/models/fd.py``, ``reidbook/distill/``).

FD trains in three stages (§3.6), so it has three presets per profile plus the settings they share:

* :func:`teacher_preset` — a teacher of one view (step 1);
* :func:`student_preset` — the *initial* holistic student (step 1; also "the student without FD");
* :func:`distill_preset` — the final student distilled with Eq. (6) (step 3).

``full`` is §4.1: SGD, batch 32, lr 0.0025, momentum 0.9, weight decay 5e-4; teachers and the initial
student halve the learning rate every 20 epochs for 80 epochs, the final student every 15 for 50;
holistic 256×128, partial 224×224; α = 4, β = 2; the 40 % erasing rule. Augmentation per stage is
Table 2: partial teachers flip + erasing + crop + colour + rotation; holistic teacher and initial
student flip + erasing + crop; final student flip + erasing. The paper gives no magnitudes for crop,
colour and rotation; we use a 10-pixel pad-and-crop, ±0.2 colour jitter (no hue: colour is identity
evidence) and ±5° rotations.

Departures: batches are P×K identity-balanced (8 × 4 = 32, the paper's batch size) instead of shuffled,
as every trainer of the course draws them. ``quick`` / ``smoke`` keep the topology, the losses and the
stages and shrink: teachers are ResNet-18s at the profile's width (¼ in quick, ⅛ in smoke) instead of
ResNet-101/152, the student is R18a at width ⅛, inputs are 128×64 (holistic) and 48×48 (partial) in
quick, 64×32 and 32×32 in smoke, and the runs last a few epochs, not 80 (the teachers six in quick, so
that they know clearly more than the student: ``reidbook course`` trains them before the chapters,
:func:`reidbook.distill.pipeline.prepare_teachers`). Adam (lr 1e-3) replaces SGD at 0.0025, with a
short warm-up, and the backbones start from the zoo's SynthReID source-domain pre-training in quick
(ImageNet cannot be had offline) and from random weights in smoke. Distillation in both laptop profiles
takes Eq. (3)/(4) per SR dimension, warms the fresh FMFBs/RFBs up alone (six epochs at lr 1e-2 in quick)
before the joint stage, and uses α = 1, β = 0.5; ``reidbook/distill/student.py`` says why and what each
change measured. Eq. (1) is a sum over the batch: ``full`` follows it (``cls_reduction="sum"``, which also
sets L_cls against Eq. 3/4's 1/(2N) terms as written); the laptop profiles average it (their learning rates,
α and β were tuned on the mean; the sum would weigh L_cls 32× more against the regressions).

In ``quick`` the partial views are 48×48, so the partial teachers' stride-16 maps are 3×3, smaller than
stabilised GMP's 4×4 kernel (Eq. 5): the kernel is clipped to the map and the pooling is plain global
average pooling there (a declared departure; 80×80 views would give 5×5 maps and a real max over local
means, at 2.8× the teachers' cost). In ``smoke`` the same holds for 32×32 views (2×2 maps).
"""
from __future__ import annotations

from dataclasses import dataclass, field

from . import Preset, check_profile
from .fd_departures import fd_departures

__all__ = ["FDSettings", "SETTINGS", "fd_settings", "teacher_preset", "student_preset",
           "distill_preset", "TABLE2"]


@dataclass(frozen=True)
class FDSettings:
    """What the three stages of one profile share (§4.1)."""

    teacher_arch: str = "resnet101"         # §4.1: ResNet-101 or ResNet-152 teachers
    student: str = "R50b"                   # Table 1 short name
    width: float = 1.0                      # channel multiplier of teachers and student
    student_width: float | None = None      # the student's own multiplier (None: ``width``)
    holistic_size: tuple[int, int] = (256, 128)
    partial_size: tuple[int, int] = (224, 224)
    alpha: float = 4.0                      # Eq. (6)
    beta: float = 2.0                       # Eq. (6)
    erase_threshold: float = 0.4            # §4.1: ignore a view's regressions if > 40 % of it is erased
    regression: str = "sum"                 # Eq. (3)/(4) as written; "mean": per SR dimension (departure)
    cls_reduction: str = "sum"              # Eq. (1) as written: Σ over the batch; "mean": averaged (departure)
    branch_warmup_epochs: int = 0           # new FMFBs/RFBs fitted alone, student frozen, before Eq. 6 (departure)
    branch_warmup_lr: float | None = None   # the warm-up's learning rate (None: the distillation preset's)
    pretrained: str | None = "imagenet"     # backbones: "imagenet", "source" (SynthReID source domain) or None
    teacher_epochs: int = 80
    student_epochs: int = 80
    distill_epochs: int = 50
    P: int = 8
    K: int = 4
    notes: str = ""
    extra: dict = field(default_factory=dict)

    @property
    def s_width(self) -> float:
        return self.width if self.student_width is None else self.student_width


SETTINGS = {
    "full": FDSettings(notes="Factorized Distillation §4.1 (paper 002)."),
    "quick": FDSettings(teacher_arch="resnet18", student="R18a", width=0.25, student_width=0.125,
                        holistic_size=(128, 64), partial_size=(48, 48), pretrained="source", alpha=1.0, beta=0.5,
                        teacher_epochs=6, student_epochs=3, distill_epochs=4, regression="mean",
                        cls_reduction="mean", branch_warmup_epochs=6, branch_warmup_lr=1e-2,
                        notes="§4.1 at laptop scale: width-¼ ResNet-18 teachers, width-⅛ R18a student, "
                              "SynthReID quick."),
    "smoke": FDSettings(teacher_arch="resnet18", student="R18a", width=0.125, student_width=0.125,
                        holistic_size=(64, 32), partial_size=(32, 32), pretrained=None, alpha=1.0, beta=0.5,
                        teacher_epochs=1, student_epochs=1, distill_epochs=1, regression="mean",
                        cls_reduction="mean", branch_warmup_epochs=1, branch_warmup_lr=1e-2,
                        notes="Smoke test: width-⅛ ResNet-18 teachers and R18a student, one epoch each."),
}

# Table 2: which random operations each stage uses (build_transforms keyword arguments, full scale).
TABLE2 = {
    "partial_teacher": {"flip": True, "random_erasing": 0.5, "random_crop": True, "pad": 10,
                        "color_jitter": 0.2, "rotation": 5.0},
    "holistic_teacher": {"flip": True, "random_erasing": 0.5, "random_crop": True, "pad": 10},
    "final_student": {"flip": True, "random_erasing": 0.5, "random_crop": False},
}
_PAD = {"full": 10, "quick": 5, "smoke": 2}


def fd_settings(profile: str) -> FDSettings:
    return SETTINGS[check_profile(profile)]


def _optimizer(profile: str, stage: str) -> dict:
    if profile == "full":
        return {"name": "sgd", "lr": 0.0025, "momentum": 0.9, "weight_decay": 5e-4}
    # Laptop profiles: Adam. Measured in quick from the source-domain backbones (stop 13): SGD 0.05 for the
    # teachers and the initial student (0.01 for distillation) gave an initial student of 36.7 % mAP against
    # Adam's 43.9 %, and no better distillation (33.2 % vs a 46.9 % control). Distillation at 1e-3 rather
    # than 5e-4: FD and its control both gained 1.5–2 points in a two-epoch run (stop 15).
    return {"name": "adam", "lr": 1e-3, "weight_decay": 5e-4}


def _schedule(profile: str, stage: str, epochs: int) -> dict:
    if profile == "full":  # §4.1: halve every 20 epochs (teachers, initial student) / every 15 (final student)
        return {"name": "step", "step_size": 15 if stage == "distill" else 20, "gamma": 0.5}
    if profile == "smoke":
        return {"name": "constant"}
    return {"name": "warmup_step", "warmup": 0.3, "warmup_factor": 0.1, "milestones": [max(1, epochs - 1)],
            "gamma": 0.5}


def _aug(kind: str, profile: str) -> dict:
    aug = dict(TABLE2[kind])
    if aug.get("random_crop"):
        aug["pad"] = _PAD[profile]
    return aug


_CE = [{"name": "cls", "loss": "cross_entropy", "weight": 1.0, "key": "logits"}]  # Eq. (1), averaged


def _ce(s: FDSettings) -> list[dict]:
    """Eq. (1)'s term. ``cls_reduction="sum"`` (``full``): the paper's Σ over the batch = the mean × N with
    the fixed batch N = P·K (its lr 0.0025 on a sum is 0.08 on a mean, a usual SGD rate for re-ID);
    ``"mean"`` (laptop profiles, whose rates were tuned on the mean): the averaged loss."""
    if s.cls_reduction == "mean":
        return list(_CE)
    return [{**_CE[0], "weight": float(s.P * s.K)}]


def teacher_preset(view: str = "holistic", profile: str = "quick") -> Preset:
    """Step 1: the teacher of ``view`` (Fig. 2 training system, Eq. 1; Table 2's first two columns), with its
    declared departures (:func:`reidbook.presets.fd_departures.fd_departures`)."""
    s = fd_settings(profile)
    partial = view != "holistic"
    h, w = s.partial_size if partial else s.holistic_size
    return Preset(model="fd_teacher", profile=profile,
                  model_options={"arch": s.teacher_arch, "view": view, "width": s.width},
                  height=h, width=w, train_aug=_aug("partial_teacher" if partial else "holistic_teacher", profile),
                  P=s.P, K=s.K, epochs=s.teacher_epochs, optimizer=_optimizer(profile, "teacher"),
                  schedule=_schedule(profile, "teacher", s.teacher_epochs), losses=_ce(s),
                  notes=f"FD teacher for view {view}: §3.1, §4.1, Table 2. {s.notes}",
                  departures=fd_departures(profile, "teacher", view))


def student_preset(profile: str = "quick") -> Preset:
    """Step 1: the initial holistic student (same system as the holistic teacher, Table 2's middle column)."""
    s = fd_settings(profile)
    h, w = s.holistic_size
    return Preset(model="fd_student", profile=profile, model_options={"arch": s.student, "width": s.s_width},
                  height=h, width=w, train_aug=_aug("holistic_teacher", profile), P=s.P, K=s.K,
                  epochs=s.student_epochs, optimizer=_optimizer(profile, "student"),
                  schedule=_schedule(profile, "student", s.student_epochs), losses=_ce(s),
                  notes=f"FD initial student {s.student}: §3.6 step 1, §4.1. {s.notes}",
                  departures=fd_departures(profile, "student"))


def distill_preset(profile: str = "quick") -> Preset:
    """Step 3: the final student, initialised from the initial student, trained with Eq. (6).

    ``losses`` lists the three terms with Eq. (6)'s weights (α, β; divided by K in the criterion).
    """
    s = fd_settings(profile)
    h, w = s.holistic_size
    losses = _ce(s) + [{"name": "attr", "loss": "fd_attr", "weight": s.alpha, "key": "attr"},
                          {"name": "metric", "loss": "fd_metric", "weight": s.beta, "key": "metric"}]
    return Preset(model="fd_student", profile=profile, model_options={"arch": s.student, "width": s.s_width},
                  height=h, width=w, train_aug=_aug("final_student", profile), P=s.P, K=s.K,
                  epochs=s.distill_epochs, optimizer=_optimizer(profile, "distill"),
                  schedule=_schedule(profile, "distill", s.distill_epochs), losses=losses,
                  notes=f"FD final student: §3.6 step 3, Eq. (6), §4.1 (40 % erasing rule). {s.notes}",
                  departures=fd_departures(profile, "distill"))
