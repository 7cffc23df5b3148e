"""The MGN paper's own numbers (Wang et al., ACM MM 2018, paper 001): Market-1501, as printed.

Chapter 02 reads them from here (as chapters 06–08 read the survey's and DaRe's tables from
``reidbook.prune.scenarios`` and ``reidbook.eval.anytime``) and puts them beside its own, labelled as
the paper's. They are never ours: ours come from SynthReID at the profile being run.

* :data:`TABLE2` — MGN in Table 2: single query (SQ), multiple query (MQ), each with and without
  re-ranking (RK, Zhong et al. CVPR 2017), as ``(Rank-1, mAP)`` in %.
* :data:`TABLE5` — every row of Table 5 (§4.4, the ablations), ``(Rank-1, Rank-5, Rank-10, mAP)`` in %.
  :data:`VARIANT_ROWS` maps a variant of :data:`reidbook.models.mgn.VARIANTS` to its row ("Single"
  networks and MGN's variants); :data:`BRANCH_ROWS` maps a branch of a trained MGN to its "(Branch)"
  row (a slice of MGN's descriptor).

:func:`paper_table` returns either table as a ``pandas.DataFrame``; :func:`table5_row` one row as a dict.
"""
from __future__ import annotations

__all__ = ["TABLE2", "TABLE5", "TABLE5_METRICS", "VARIANT_ROWS", "BRANCH_ROWS", "paper_table", "table5_row"]

#: Table 2, MGN's rows: (Rank-1, mAP) in % on Market-1501.
TABLE2: dict[str, tuple[float, float]] = {
    "SQ": (95.7, 86.9),
    "MQ": (96.9, 90.7),
    "SQ + RK": (96.6, 94.2),
    "MQ + RK": (97.1, 95.9),
}

TABLE5_METRICS = ("Rank-1", "Rank-5", "Rank-10", "mAP")

#: Table 5: (Rank-1, Rank-5, Rank-10, mAP) in % on Market-1501, in the paper's row order.
TABLE5: dict[str, tuple[float, float, float, float]] = {
    "ResNet-50": (87.5, 94.9, 96.7, 71.4),
    "ResNet-101": (90.4, 95.7, 97.2, 78.0),
    "ResNet-50+TP": (88.7, 96.0, 97.2, 75.0),
    "Global (Branch)": (89.8, 95.8, 97.5, 78.5),
    "Part-2 (Single)": (92.6, 97.1, 98.0, 80.2),
    "Part-2 (Branch)": (94.4, 97.9, 98.8, 83.9),
    "Part-3 (Single)": (93.1, 97.6, 98.7, 82.1),
    "Part-3 (Branch)": (94.4, 98.2, 98.8, 84.1),
    "G+P2+P3 (Single)": (94.4, 97.6, 98.5, 85.2),
    "MGN w/o Part-3": (94.4, 97.9, 98.7, 85.7),
    "MGN w/ Part-4": (95.1, 98.3, 98.9, 86.1),
    "MGN (Part2+4)": (94.8, 98.2, 98.9, 85.6),
    "MGN (Part3+4)": (95.0, 98.1, 98.8, 86.1),
    "MGN w/o TP": (95.3, 97.9, 98.7, 86.2),
    "MGN": (95.7, 98.3, 99.0, 86.9),
}

#: A network of :data:`reidbook.models.mgn.VARIANTS` → its Table 5 row ("ResNet-50+TP" is "Global (Single)").
VARIANT_ROWS: dict[str, str] = {
    "mgn": "MGN", "global": "ResNet-50+TP", "part2": "Part-2 (Single)", "part3": "Part-3 (Single)",
    "mgn_wo_part3": "MGN w/o Part-3", "mgn_part4": "MGN w/ Part-4", "part2+4": "MGN (Part2+4)",
    "part3+4": "MGN (Part3+4)", "mgn_wo_tp": "MGN w/o TP",
}

#: A branch of a trained MGN → its "(Branch)" row of Table 5.
BRANCH_ROWS: dict[str, str] = {"global": "Global (Branch)", "part2": "Part-2 (Branch)", "part3": "Part-3 (Branch)"}


def table5_row(row: str) -> dict[str, float]:
    """One row of Table 5 by its label, or by a variant name of :data:`VARIANT_ROWS`:
    ``{"Rank-1": …, "Rank-5": …, "Rank-10": …, "mAP": …}`` (the paper's %, Market-1501)."""
    label = VARIANT_ROWS.get(row, row)
    if label not in TABLE5:
        raise KeyError(f"MGN Table 5 has no row {row!r}; rows: {', '.join(TABLE5)}; "
                       f"variants: {', '.join(VARIANT_ROWS)}")
    return dict(zip(TABLE5_METRICS, TABLE5[label]))


def paper_table(n: int):
    """MGN's Table ``n`` ∈ {2, 5} (MGN's rows of Table 2) as a ``pandas.DataFrame`` of the paper's % values."""
    import pandas as pd

    if n == 2:
        return pd.DataFrame.from_dict(TABLE2, orient="index", columns=["Rank-1", "mAP"]).rename_axis("MGN")
    if n == 5:
        return pd.DataFrame.from_dict(TABLE5, orient="index", columns=list(TABLE5_METRICS)).rename_axis("Model")
    raise ValueError(f"paper_table: MGN's tables 2 and 5 are stored, not {n}")
