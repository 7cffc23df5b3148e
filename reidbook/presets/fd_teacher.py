"""Presets of ``fd_teacher`` for ``zoo.get`` / ``reidbook train``: FD's holistic teacher, defined (with its
declared departures) in :mod:`reidbook.presets.fd` (partial-view teachers need their view's crop:
``reidbook.distill.pipeline``)."""
from ..profiles import PROFILES
from .fd import teacher_preset

PRESETS = {p: teacher_preset("holistic", p) for p in PROFILES}
