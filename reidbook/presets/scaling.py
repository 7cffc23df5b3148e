"""Training a preset ``k`` times as long: its epochs *and* every time of its learning-rate schedule, together.

A schedule's times (milestones, step size, warm-up, DaRe's ``t0``/``t1``) are absolute, in epochs or
iterations (:func:`reidbook.engine.optim.build_scheduler`), so an ``epochs`` override alone does not
lengthen the schedule. For most presets the added epochs then run at the last, decayed rate; for DaRe's
``dare_exp`` (§5: constant until ``t0``, exponential decay to 1/1000 at ``t1``) they run at 1e-6, and
"twice as long" changes nothing — measured at stop 19 on quick SynthReID (seed 0): 8 epochs with the
4-epoch schedule gave stage 4 44.2 % and the fusion 40.4 % mAP, the 4-epoch model's 44.2 % and 40.3 %,
while 8 epochs with the schedule stretched to match gave 46.0 % and 44.4 %.

:func:`scaled_training` is what a claim with a ``train_scale`` (a declared departure,
:class:`reidbook.claims.registry.Claim`) passes to the zoo.
"""
from __future__ import annotations

from typing import Any

__all__ = ["TIME_KEYS", "scale_schedule", "scaled_training"]

#: The schedule fields that are times (epochs or iterations, per the spec's ``unit``).
TIME_KEYS = ("milestones", "step_size", "warmup", "t0", "t1")


def _scale_time(value, factor: float):
    if isinstance(value, (list, tuple)):
        return [_scale_time(v, factor) for v in value]
    scaled = value * factor
    return int(round(scaled)) if isinstance(value, int) and not isinstance(value, bool) else float(scaled)


def scale_schedule(spec: dict[str, Any] | None, factor: float) -> dict[str, Any] | None:
    """``spec`` with every time field (:data:`TIME_KEYS`) multiplied by ``factor`` (integers stay integers,
    rounded); rates, factors and the unit are kept. ``None`` (no schedule) stays ``None``."""
    if not factor > 0:
        raise ValueError(f"a training scale must be > 0, got {factor}")
    if spec is None:
        return None
    return {k: (_scale_time(v, factor) if k in TIME_KEYS else v) for k, v in spec.items()}


def scaled_training(preset, factor: float) -> dict[str, Any]:
    """The zoo overrides that train ``preset`` ``factor`` times as long: ``{"epochs": round(epochs × factor)
    (at least 1), "schedule": scale_schedule(preset.schedule, factor)}``."""
    if not factor > 0:
        raise ValueError(f"a training scale must be > 0, got {factor}")
    return {"epochs": max(1, int(round(preset.epochs * factor))), "schedule": scale_schedule(preset.schedule, factor)}
