"""How long a pruned model is fine-tuned, per profile: ``FINETUNE[profile] = (epochs, iterations cap per epoch)``.

Used after one-shot pruning and for PSFP's soft-pruning epochs (:mod:`reidbook.compare`). ``smoke`` keeps it
to a few steps; ``quick`` fine-tunes one whole epoch (12 iterations left the ℓ1 @C1 model at half the
baseline's mAP, 24 vs 49 %); ``full`` retrains for real (pruning survey §4: 30 epochs).

Not a model preset (there is no ``PRESETS`` here): a budget that the comparison applies to any model's preset.
"""
from __future__ import annotations

__all__ = ["FINETUNE", "finetune_budget"]

FINETUNE: dict[str, tuple[int, int | None]] = {"smoke": (1, 2), "quick": (1, None), "full": (30, None)}


def finetune_budget(profile: str) -> tuple[int, int | None]:
    """``(epochs, max_iters_per_epoch or None)`` of fine-tuning at ``profile``."""
    from . import check_profile

    return FINETUNE[check_profile(profile)]
