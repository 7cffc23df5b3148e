"""A hand-made comparison table whose Pareto fronts and budget answers are known (tests of
``reidbook.viz.compare`` and the capstone)."""
from __future__ import annotations

import pandas as pd


def toy_table() -> pd.DataFrame:
    """Five models: ``ref`` (the reference), ``small`` and ``tiny`` (cheaper, on the front), ``worse``
    (dominated on mAP by ``small``), ``big`` (the most accurate and the dearest)."""
    return pd.DataFrame({
        "label": ["Ref", "Small", "Tiny", "Worse", "Big"],
        "family": ["reference", "pruning", "anytime", "pruning", "multi-branch"],
        "mAP": [60.0, 58.0, 40.0, 50.0, 70.0],
        "rank1": [80.0, 79.0, 60.0, 81.0, 85.0],
        "params_M": [10.0, 4.0, 1.0, 5.0, 30.0],
        "MACs_M": [100.0, 40.0, 20.0, 30.0, 300.0],
        "latency_ms": [10.0, 6.0, 2.0, 3.0, 25.0],
    }, index=["ref", "small", "tiny", "worse", "big"])
