"""The verdict rule: is a claim reproduced, contradicted, or not decided by our seeds?

Rule (Welch's unequal-variance t interval, two-sided level ``LEVEL`` = 0.95):

* ``a`` and ``b`` are the per-seed values of the claim's two configurations (``b`` multiplied by the
  claim's ``factor``, default 1); ``d = mean(a) − mean(b)`` and its standard error
  ``se = sqrt(var(a)/n_a + var(b)/n_b)`` (sample variances, ``ddof=1``); Welch–Satterthwaite degrees of
  freedom ``df``; the interval ``d ± t_{(1+LEVEL)/2, df} · se``.
* ``direction="greater"`` (``a`` should be higher): **reproduced** if the whole interval is above 0,
  **contradicted** if it is wholly below 0, else **inconclusive**.
* ``direction="less"`` (``a`` should be lower, e.g. latency): the mirror image.
* ``direction="noninferior"`` with ``margin m`` (``a`` at most ``m`` worse than ``b``): **reproduced**
  if the interval's lower end is above ``−m``, **contradicted** if its upper end is below ``−m``, else
  inconclusive.
* Fewer than two values on a side → **inconclusive** (no spread, no test) — unless the measurement is
  ``deterministic`` (a parameter count: identical over seeds), where ``se = 0`` and the interval is
  the point ``d``.

With 3 seeds a side ``df`` is at most 4 and ``t ≈ 2.78``: a difference is decided only when it is
clearly larger than the seed-to-seed noise. That is the point: a one-seed gap of two mAP points is
not evidence on its own.
"""
from __future__ import annotations

import math
from dataclasses import asdict, dataclass
from typing import Sequence

import numpy as np

__all__ = ["Verdict", "verdict", "summarize", "LEVEL", "VERDICTS"]

LEVEL = 0.95
VERDICTS = ("reproduced", "contradicted", "inconclusive")


@dataclass(frozen=True)
class Verdict:
    """The outcome of :func:`verdict`: ``verdict`` ∈ :data:`VERDICTS`, the difference ``diff`` (``a − b``),
    its standard error ``se``, Welch's ``df``, the interval ``ci`` at ``level``, and ``why`` in words."""

    verdict: str
    diff: float
    se: float
    df: float
    ci: tuple[float, float]
    level: float
    why: str

    def to_dict(self) -> dict:
        d = asdict(self)
        d["ci"] = list(self.ci)
        return d


def summarize(values: Sequence[float]) -> dict:
    """``{"values", "n", "mean", "std"}`` (sample std, ``ddof=1``; ``None`` below two values)."""
    v = [float(x) for x in values]
    n = len(v)
    return {"values": v, "n": n, "mean": float(np.mean(v)) if n else None,
            "std": float(np.std(v, ddof=1)) if n >= 2 else None}


def _check(values, name: str) -> np.ndarray:
    arr = np.asarray([float(x) for x in values], dtype=float)
    if arr.size == 0:
        raise ValueError(f"verdict: no values for {name}; run the claim's configurations first")
    if not np.isfinite(arr).all():
        raise ValueError(f"verdict: {name} holds a non-finite value ({arr.tolist()}); a run failed or diverged")
    return arr


def verdict(a: Sequence[float], b: Sequence[float], direction: str = "greater", margin: float = 0.0,
            factor: float = 1.0, level: float = LEVEL, deterministic: bool = False) -> Verdict:
    """Apply the module's rule to the per-seed values ``a`` (expected better) and ``b``."""
    from scipy import stats

    if direction not in ("greater", "less", "noninferior"):
        raise ValueError(f"direction must be 'greater', 'less' or 'noninferior', got {direction!r}")
    if not 0 < level < 1:
        raise ValueError(f"level must be in (0, 1), got {level!r}")
    if margin < 0:
        raise ValueError(f"margin must be ≥ 0, got {margin!r}")
    a, b = _check(a, "the first configuration"), _check(b, "the second configuration") * float(factor)
    diff = float(a.mean() - b.mean())
    if deterministic:
        se, df, half = 0.0, math.inf, 0.0
    elif min(a.size, b.size) < 2:
        return Verdict("inconclusive", diff, math.nan, math.nan, (math.nan, math.nan), level,
                       f"fewer than two seeds (n = {a.size}, {b.size}): no spread to test against")
    else:
        va, vb = a.var(ddof=1) / a.size, b.var(ddof=1) / b.size
        se = float(math.sqrt(va + vb))
        if se == 0.0:
            df, half = math.inf, 0.0
        else:
            df = float((va + vb) ** 2 / (va ** 2 / (a.size - 1) + vb ** 2 / (b.size - 1)))
            half = float(stats.t.ppf((1 + level) / 2, df) * se)
    lo, hi = diff - half, diff + half
    if direction == "less":  # a should be lower: the same test on −d
        lo, hi = -hi, -lo
    threshold = -margin if direction == "noninferior" else 0.0
    if lo > threshold:
        result = "reproduced"
    elif hi < threshold:
        result = "contradicted"
    else:
        result = "inconclusive"
    b_text = "b" if factor == 1 else f"{factor:g}·b"
    sign = {"greater": f"a − {b_text}", "less": f"{b_text} − a", "noninferior": f"a − {b_text}"}[direction]
    why = (f"{sign} = {(-diff if direction == 'less' else diff):.4g}, {int(level * 100)} % interval "
           f"[{lo:.4g}, {hi:.4g}] vs {threshold:g}")
    return Verdict(result, diff, se, df, (float(diff - half), float(diff + half)), level, why)
