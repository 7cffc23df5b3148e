"""Presets of ``fd_student`` for ``zoo.get`` / ``reidbook train``: FD's *initial* student (step 1 of §3.6),
defined with its declared departures in :mod:`reidbook.presets.fd` (the distilled student comes from
``reidbook.distill.pipeline``)."""
from ..profiles import PROFILES
from .fd import student_preset

PRESETS = {p: student_preset(p) for p in PROFILES}
