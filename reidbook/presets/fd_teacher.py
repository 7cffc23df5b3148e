"""Presets of ``fd_teacher`` for ``zoo.get`` / ``reidbook train``: FD's holistic teacher, defined in
:mod:`reidbook.presets.fd` (partial-view teachers need their view's crop: ``reidbook.distill.pipeline``)."""
from ..profiles import PROFILES
from .fd import teacher_preset
from .fd_departures import fd_departures

PRESETS = {p: teacher_preset("holistic", p).replace(departures=fd_departures(p, "teacher")) for p in PROFILES}
