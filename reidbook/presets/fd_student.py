"""Presets of ``fd_student`` for ``zoo.get`` / ``reidbook train``: FD's *initial* student (step 1 of §3.6),
defined in :mod:`reidbook.presets.fd` (the distilled student comes from ``reidbook.distill.pipeline``)."""
from ..profiles import PROFILES
from .fd import student_preset
from .fd_departures import fd_departures

PRESETS = {p: student_preset(p).replace(departures=fd_departures(p, "student")) for p in PROFILES}
