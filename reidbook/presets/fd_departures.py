"""Departures of Factorized Distillation's presets (paper 002, §4.1), as data (:mod:`reidbook.presets.departures`).

Kept beside :mod:`reidbook.presets.fd` (which builds the presets from its ``SETTINGS``):
:func:`fd_departures` lists what ``full`` changes from §4.1 and what ``quick``/``smoke`` change from
``full`` beyond width, input size, data and epochs. ``teacher_preset``, ``student_preset`` and
``distill_preset`` attach them: every FD preset (and the ``fd_teacher`` / ``fd_student`` zoo presets)
carries its departures.
"""
from __future__ import annotations

from .departures import Departure

__all__ = ["fd_departures"]


def fd_departures(profile: str, stage: str, view: str = "holistic") -> tuple[Departure, ...]:
    """The departures of FD's ``stage`` (``teacher`` / ``student`` / ``distill``) preset at ``profile``."""
    from .fd import fd_settings

    s = fd_settings(profile)
    out = [Departure("sampler", "shuffled batches of 32 (§4.1)", f"P x K = {s.P} x {s.K} identity-balanced batches",
                     "every trainer of the course draws P x K batches")]
    if profile == "full":
        return tuple(out)
    out += [
        Departure("model_options.arch", "ResNet-101/152 teachers, R50b student (§4.1, Table 1)",
                  f"{s.teacher_arch} teachers, {s.student} student", "minutes on a CPU, not days on a GPU"),
        Departure("optimizer", "SGD, lr 0.0025, momentum 0.9", "Adam, lr 1e-3",
                  "measured in quick from the source-domain backbones",
                  "initial student 43.9 % mAP with Adam vs 36.7 % with SGD 0.05"),
        Departure("schedule", "lr halved every 20 epochs (15 for the final student)", "short warm-up, one step",
                  "a few epochs"),
        Departure("pre-training", "ImageNet weights",
                  "SynthReID's source domain" if s.pretrained == "source" else "random weights",
                  "ImageNet weights cannot be downloaded offline"),
    ]
    if stage == "distill":
        out.append(Departure("losses", "Eq. (6): L_cls summed over the batch, alpha = 4, beta = 2",
                             f"L_cls averaged, alpha = {s.alpha:g}, beta = {s.beta:g}, Eq. (3)/(4) per SR dimension",
                             "the laptop profiles' rates were tuned on the mean; see reidbook/distill/student.py"))
    elif s.cls_reduction != "sum":
        out.append(Departure("losses", "Eq. (1) summed over the batch", "averaged over the batch",
                             "the laptop profiles' learning rates were tuned on the mean"))
    if stage == "teacher" and view != "holistic":
        out.append(Departure("train_aug.pad", "10 px at 224x224 (our reading; the paper gives no magnitude)",
                             f"{'5' if profile == 'quick' else '2'} px at {s.partial_size[0]}x{s.partial_size[1]}",
                             "the same pad as the holistic views"))
        out.append(Departure("stabilised GMP", "4x4 local means, then the max (Eq. 5), on 14x14 maps",
                             f"{s.partial_size[0] // 16}x{s.partial_size[1] // 16} maps: the kernel is clipped, "
                             "the pooling is a plain average", "the small partial views of this profile"))
    return tuple(out)
