"""What a pruning run did: one report base for one-shot pruning and for the strategies (paper 003, §4–5).

:class:`PruneReport` (:func:`reidbook.prune.prune`) and :class:`StrategyReport` (every strategy of
:mod:`reidbook.prune.strategies`) share :class:`CostReport`: the method, the input size at which the
multiply-adds are counted, parameters and multiply-adds before and after, their ratios, ``to_dict`` and a
one-line ``summary``.
"""
from __future__ import annotations

from dataclasses import asdict, dataclass, field

__all__ = ["CostReport", "PruneReport", "StrategyReport"]


@dataclass
class CostReport:
    """Cost of a model before and after pruning (parameters; multiply-adds of one image at ``input_size``)."""

    method: str
    input_size: tuple
    params_before: int
    params_after: int
    macs_before: int
    macs_after: int

    @property
    def macs_ratio(self) -> float:
        return self.macs_after / self.macs_before

    @property
    def params_ratio(self) -> float:
        return self.params_after / self.params_before

    def _derived(self) -> dict:
        return {"macs_ratio": self.macs_ratio, "params_ratio": self.params_ratio}

    def to_dict(self) -> dict:
        d = asdict(self)
        d.update(self._derived())
        return d

    def _label(self) -> str:
        return self.method

    def summary(self) -> str:
        return (f"{self._label()}: params {self.params_before / 1e6:.3f}M → {self.params_after / 1e6:.3f}M "
                f"(×{self.params_ratio:.3f}), MACs {self.macs_before / 1e9:.3f}G → {self.macs_after / 1e9:.3f}G "
                f"(×{self.macs_ratio:.3f}) at {self.input_size[0]}×{self.input_size[1]}")


@dataclass
class PruneReport(CostReport):
    """What :func:`reidbook.prune.prune` did: per-unit widths and the cost before and after."""

    scope: str
    ratio: float | None
    target_macs: float | None
    widths_before: dict[str, int]
    widths_after: dict[str, int]
    keep: dict[str, list[int]] = field(repr=False, default_factory=dict)

    @property
    def channel_ratio(self) -> float:
        """Fraction of the scoped channels removed."""
        return 1.0 - sum(self.widths_after.values()) / max(1, sum(self.widths_before.values()))

    def _derived(self) -> dict:
        return {**super()._derived(), "channel_ratio": self.channel_ratio}

    def _label(self) -> str:
        return f"{self.method} ({self.scope})"

    def table(self):
        """Per-unit widths as a ``pandas.DataFrame`` (before, after, kept fraction)."""
        import pandas as pd

        df = pd.DataFrame({"before": self.widths_before, "after": self.widths_after})
        df["kept"] = df["after"] / df["before"]
        return df


@dataclass
class StrategyReport(CostReport):
    """What a strategy did: its name, the multiply-add target and one record per pruning iteration (or epoch)."""

    strategy: str
    target_macs: float
    iterations: list[dict] = field(default_factory=list)
    notes: dict = field(default_factory=dict)

    @property
    def reached(self) -> bool:
        """Whether the multiply-add target was met (small float slack)."""
        return self.macs_ratio <= self.target_macs + 1e-9

    def _derived(self) -> dict:
        return {**super()._derived(), "reached": self.reached}

    def _label(self) -> str:
        return f"{self.strategy}/{self.method}, {len(self.iterations)} step(s), target ≤ {self.target_macs:.3f}"
