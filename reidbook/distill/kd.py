"""Plain feature distillation of any trained re-ID teacher into a small student (the capstone's MGN → ResNet-18).

**Which distillation, and why not FD's pipeline.** Factorized Distillation (paper 002, :mod:`.pipeline`)
needs *partial* teachers — one network per view of the person (holistic, up/middle/down bands) — and a
student whose FMFB/RFB blocks regress onto each teacher's attention and metric maps (Eqs. 1–6). An MGN
teacher is one network whose views (its Global and Part-2/Part-3 branches) share a backbone and are
concatenated into one embedding; FD's per-view teachers and its view-specific student heads have no
counterpart in it. So the capstone distils MGN with a plain, teacher-agnostic loss on the embedding:

**Similarity-preserving knowledge distillation** (F. Tung and G. Mori, "Similarity-Preserving Knowledge
Distillation", ICCV 2019, §3, Eqs. 1–4). For a batch of ``b`` images with student features ``Q_S``
(``b × d_S``) and teacher features ``Q_T`` (``b × d_T``):

* Eq. 1–2: ``G = Q · Qᵀ`` (``b × b``), then each row L2-normalised: ``G̃[i] = G[i] / ‖G[i]‖₂``;
* Eq. 3–4: ``L_SP = 1/b² · ‖G̃_T − G̃_S‖²_F``, added to the student's own loss with weight ``γ``.

Only the *pairwise similarities* of the batch are matched, so the two embeddings may have different
widths (MGN quick: 8 × 64 = 512 numbers; the ResNet-18 student: 128) and no projector is trained. In a
P×K batch this is exactly what a re-ID embedding is for: which images look alike. The teacher is MGN's
test-time embedding (eval mode, frozen, no gradient); the student's feature is its pre-BN global feature
(the one its triplet loss uses).

Departures from the paper (stated where they happen): the paper matches *activation maps* of a
classification network at chosen layers; we match the final embeddings (a re-ID network's output).
The paper uses γ = 3000 on CIFAR-10 activation maps; :data:`KD_WEIGHT` = 100 is ours, chosen so that the
weighted term is a tenth of the student's classification loss at the start: measured in ``quick`` (MGN
teacher, ResNet-18 student at 128×64, before the 96×48 quick inputs), L_SP = 0.0044 in the first epoch
(γ·L_SP = 0.44 beside a cross-entropy of 4.58), falling to 0.0015 in the fourth; the student reached 51.3 %
mAP against its control's 50.5 % (one seed). The teacher sees the student's batch resized bilinearly to
the teacher's own input size.

Everything trains through the one training path (:func:`reidbook.engine.fit_preset` with
``criterion=``): the student's preset gives the loader, optimiser, schedule and epochs; :class:`KDCriterion`
adds ``γ · L_SP`` to the preset's own criterion.
"""
from __future__ import annotations

import copy

import torch
import torch.nn.functional as F
from torch import nn

__all__ = ["KD_WEIGHT", "similarity_matrix", "similarity_kd_loss", "TeacherStudent", "KDCriterion", "distill_into"]

#: γ of ``γ · L_SP`` (ours; the paper's 3000 is for CIFAR activation maps, see the module docstring).
KD_WEIGHT = 100.0


def similarity_matrix(features: torch.Tensor) -> torch.Tensor:
    """Tung & Mori Eqs. 1–2: ``G = Q Qᵀ`` of a ``[b, d]`` (or ``[b, …]``, flattened) batch, rows L2-normalised."""
    q = features.reshape(features.shape[0], -1)
    return F.normalize(q @ q.t(), p=2, dim=1)


def similarity_kd_loss(student: torch.Tensor, teacher: torch.Tensor) -> torch.Tensor:
    """Tung & Mori Eqs. 3–4: ``1/b² · ‖G̃_T − G̃_S‖²_F`` for features of the same ``b`` images (widths may differ)."""
    if student.shape[0] != teacher.shape[0]:
        raise ValueError(f"similarity_kd_loss needs the same images on both sides: batch {student.shape[0]} "
                         f"(student) vs {teacher.shape[0]} (teacher)")
    b = student.shape[0]
    return (similarity_matrix(teacher) - similarity_matrix(student)).pow(2).sum() / (b * b)


class TeacherStudent(nn.Module):
    """A student trained beside a frozen teacher. ``train()`` mode: the student's own outputs plus
    ``"kd_student"`` (``outputs[feature_key][0]``, the student's feature) and ``"kd_teacher"`` (the
    teacher's test-time embedding of the same images, resized to ``teacher_size``; no gradient).
    ``eval()`` mode: the student's embedding only. The teacher stays in eval mode (its batch norms keep
    their statistics) and its parameters are frozen, so the optimiser never sees them."""

    def __init__(self, student: nn.Module, teacher: nn.Module, teacher_size=None, feature_key: str = "triplet"):
        super().__init__()
        self.student = student
        self.teacher = copy.deepcopy(teacher).eval()
        for p in self.teacher.parameters():
            p.requires_grad_(False)
        self.teacher_size = None if teacher_size is None else tuple(int(v) for v in teacher_size)
        self.feature_key = feature_key

    def train(self, mode: bool = True):
        super().train(mode)
        self.teacher.eval()
        return self

    def forward(self, x: torch.Tensor):
        if not self.training:
            return self.student(x)
        out = self.student(x)
        if not isinstance(out, dict) or self.feature_key not in out:
            raise KeyError(f"the student's train-mode outputs have no {self.feature_key!r} feature "
                           f"(keys: {list(out) if isinstance(out, dict) else type(out).__name__})")
        feat = out[self.feature_key]
        with torch.no_grad():
            xt = x if self.teacher_size in (None, tuple(x.shape[-2:])) else \
                F.interpolate(x, size=self.teacher_size, mode="bilinear", align_corners=False)
            t = self.teacher(xt)
        return {**out, "kd_student": feat[0] if isinstance(feat, (list, tuple)) else feat, "kd_teacher": t}


class KDCriterion(nn.Module):
    """``base(outputs, pids) + weight · similarity_kd_loss(outputs["kd_student"], outputs["kd_teacher"])``;
    the parts gain ``"kd"`` (unweighted). An ``nn.Module`` holding ``base``, so a base criterion with
    parameters (BoT's center loss) is still optimised."""

    def __init__(self, base: nn.Module, weight: float = KD_WEIGHT):
        super().__init__()
        if not weight >= 0:
            raise ValueError(f"the distillation weight must be ≥ 0, got {weight}")
        self.base, self.weight = base, float(weight)

    def forward(self, outputs, pids):
        total, parts = self.base(outputs, pids)
        kd = similarity_kd_loss(outputs["kd_student"], outputs["kd_teacher"])
        parts = {**parts, "kd": float(kd.detach())}
        return total + self.weight * kd, parts


def distill_into(student: nn.Module, teacher: nn.Module, items, preset, *, teacher_size=None,
                 weight: float = KD_WEIGHT, seed: int = 0, device="auto", checkpoint_dir=None, **fit_options):
    """Train ``student`` on ``items`` with its ``preset`` plus ``weight`` · L_SP towards ``teacher``
    (through :func:`reidbook.engine.fit_preset`, ``criterion=`` :class:`KDCriterion`). Returns the
    History; ``student`` is trained in place (its weights are the wrapper's)."""
    from ..engine import fit_preset
    from ..losses import build_criterion

    pair = TeacherStudent(student, teacher, teacher_size)
    return fit_preset(pair, items, preset, seed=seed, device=device, checkpoint_dir=checkpoint_dir,
                      criterion=KDCriterion(build_criterion(preset.losses), weight),
                      desc=f"{getattr(preset, 'model', 'student')} ← teacher (similarity-preserving KD)",
                      **fit_options)
