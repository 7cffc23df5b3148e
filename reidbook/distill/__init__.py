"""Factorized Distillation (paper 002): partial teachers, a supervisory-representation store, a holistic student.

* :mod:`.teachers` — step 1: train one re-ID model per view (§3.1), score it on its view;
* :mod:`.store` — step 2: Eq. (2) computed once, stored with provenance, refused when it does not match;
* :mod:`.student` — step 3: FMFB/RFB losses (Eq. 3, 4), Eq. (6), the 40 % erasing rule;
* :mod:`.pipeline` — the three steps end to end, cached in the zoo; :mod:`.cli` — ``reidbook distill``.
"""
from __future__ import annotations

from ..utils import lazy_exports

_EXPORTS = {
    # store.py
    "SRStore": "store", "StoreError": "store", "dataset_fingerprint": "store", "extract_srs": "store",
    "load_store": "store", "model_fingerprint": "store", "write_store": "store",
    # student.py
    "BatchContext": "student", "DistillLoader": "student", "FDCriterion": "student", "distill_student": "student",
    "make_distill_loader": "student", "regression_loss": "student",
    # teachers.py
    "evaluate_view": "teachers", "evaluate_ensemble": "teachers", "train_view_model": "teachers",
    # pipeline.py
    "run_pipeline": "pipeline", "distilled_student": "pipeline", "initial_student": "pipeline",
    "train_teachers": "pipeline", "train_teacher": "pipeline", "supervisory_representations": "pipeline",
    "views_for": "pipeline", "FDResult": "pipeline", "Trained": "pipeline",
}

__all__ = sorted(_EXPORTS)

__getattr__, __dir__ = lazy_exports(__name__, _EXPORTS)
