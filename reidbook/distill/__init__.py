"""Factorized Distillation (paper 002): partial teachers, a supervisory-representation store, a holistic student.

* :mod:`.teachers` — step 1: train one re-ID model per view (§3.1), score it on its view;
* :mod:`.store` — step 2: Eq. (2) computed once, stored with provenance, refused when it does not match;
* :mod:`.student` — step 3: FMFB/RFB losses (Eq. 3, 4), Eq. (6), the 40 % erasing rule;
* :mod:`.pipeline` — the three steps end to end, cached in the zoo; :mod:`.cli` — ``reidbook distill``.
"""
from __future__ import annotations

from .store import SRStore, StoreError, dataset_fingerprint, extract_srs, load_store, model_fingerprint, write_store
from .student import BatchContext, DistillLoader, FDCriterion, distill_student, make_distill_loader, regression_loss
from .teachers import evaluate_ensemble, evaluate_view, train_view_model

__all__ = ["SRStore", "StoreError", "dataset_fingerprint", "extract_srs", "load_store", "model_fingerprint",
           "write_store", "BatchContext", "DistillLoader", "FDCriterion", "distill_student", "make_distill_loader",
           "regression_loss", "evaluate_view", "evaluate_ensemble", "train_view_model", "run_pipeline", "distilled_student",
           "initial_student", "train_teachers", "supervisory_representations"]


def __getattr__(name: str):
    if name in ("run_pipeline", "distilled_student", "initial_student", "train_teachers", "train_teacher",
                "supervisory_representations", "views_for", "FDResult", "Trained"):
        from . import pipeline

        return getattr(pipeline, name)
    raise AttributeError(f"module 'reidbook.distill' has no attribute {name!r}")
