"""The pruning trade-off grid (chapter 05): accuracy against cost for every (criterion, ratio), before and
after a short fine-tuning — measured once, cached in the store, read by the pruning slider.

The survey's Tables 5–7 compare criteria *after retraining*; Li et al. (ICLR 2017, §4.2) show the curve of
accuracy against the fraction pruned, with and without retraining. The grid is that figure in miniature:
for each criterion of ``criteria`` and each ratio of ``ratios`` (fraction of every unit's channels removed,
one-shot, :func:`reidbook.prune.prune`), it records the parameters and multiply-adds kept, the metric right
after the cut (``mAP``) and after a short fine-tuning (``mAP_finetuned``; the ``finetune`` callable says how
short). It reuses the channel scores the chapter already computed (``scores``), so a cell costs one cut, one
fine-tuning and two evaluations.

:func:`tradeoff_grid` computes it, or loads it from the store (:func:`reidbook.store.cached`, kind
``prune_grid``) when the same configuration was measured before: the key holds a fingerprint of the model's
weights and of the scores, the criteria, the ratios and the input size, plus what the caller says identifies
the rest (the evaluation set, the fine-tuning budget). :class:`TradeoffGrid` is the result: pure data
(JSON), with :meth:`TradeoffGrid.lookup` for the slider and :meth:`TradeoffGrid.frame` for tables and plots.
"""
from __future__ import annotations

import hashlib
import json
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable

from torch import nn

__all__ = ["GRID_KIND", "TradeoffGrid", "tradeoff_grid", "model_fingerprint", "scores_fingerprint"]

GRID_KIND = "prune_grid"


@dataclass
class TradeoffGrid:
    """Accuracy against cost per (criterion, ratio). ``unpruned``: ``{"mAP", "params", "macs"}`` of the model
    before pruning; ``rows``: one dict per cell with ``method``, ``ratio``, ``params``, ``params_ratio``,
    ``macs``, ``macs_ratio``, ``mAP`` (after the cut), ``mAP_finetuned`` (after the short fine-tuning) and
    ``finetune_s``; ``seconds``: what computing the whole grid took (``loaded`` says whether this one came
    from the store). Metrics are in % (as the chapters print them)."""
    unpruned: dict
    rows: list[dict]
    seconds: float = 0.0
    config: dict = field(default_factory=dict)
    loaded: bool = False

    @property
    def criteria(self) -> list[str]:
        return list(dict.fromkeys(r["method"] for r in self.rows))

    @property
    def ratios(self) -> list[float]:
        return sorted({float(r["ratio"]) for r in self.rows})

    def frame(self):
        """The rows as a ``DataFrame`` (columns also named as :func:`reidbook.viz.pruning.plot_one_shot` reads
        them: ``MACs_ratio``, ``params_M``)."""
        import pandas as pd

        df = pd.DataFrame(self.rows)
        if len(df):
            df["MACs_ratio"] = df["macs_ratio"]
            df["params_M"] = df["params"] / 1e6
        return df

    def curve(self, criterion: str) -> list[dict]:
        """The criterion's points from the unpruned model (ratio 0, MACs 1) to its highest ratio."""
        if criterion not in self.criteria:
            raise KeyError(f"the grid has no criterion {criterion!r}; it has {', '.join(self.criteria)}")
        start = {"method": criterion, "ratio": 0.0, "params_ratio": 1.0, "macs_ratio": 1.0,
                 "mAP": self.unpruned["mAP"], "mAP_finetuned": self.unpruned["mAP"]}
        return [start] + sorted((r for r in self.rows if r["method"] == criterion), key=lambda r: r["ratio"])

    def lookup(self, criterion: str, ratio: float, tolerance: float = 0.05) -> dict | None:
        """The measured cell nearest ``ratio`` (within ``tolerance``) for ``criterion``; ratio 0 is the unpruned
        model (nothing cut, nothing fine-tuned). ``None`` where the grid has no cell that close, or no such
        criterion (the slider then shows cost only)."""
        if criterion not in self.criteria:
            return None
        near = [(abs(p["ratio"] - float(ratio)), p) for p in self.curve(criterion)]
        d, best = min(near, key=lambda t: t[0])
        return dict(best) if d <= tolerance + 1e-9 else None

    def to_dict(self) -> dict:
        return {"unpruned": self.unpruned, "rows": self.rows, "seconds": self.seconds, "config": self.config}

    @classmethod
    def from_dict(cls, d: dict, loaded: bool = False) -> "TradeoffGrid":
        for k in ("unpruned", "rows"):
            if k not in d:
                raise ValueError(f"a trade-off grid needs {k!r}; got keys {sorted(d)}")
        return cls(unpruned=dict(d["unpruned"]), rows=[dict(r) for r in d["rows"]], seconds=float(d.get("seconds", 0)),
                   config=dict(d.get("config", {})), loaded=loaded)


def _digest(parts) -> str:
    h = hashlib.sha256()
    for p in parts:
        h.update(p if isinstance(p, bytes) else str(p).encode())
    return h.hexdigest()[:16]


def model_fingerprint(model: nn.Module) -> str:
    """A short hash of a model's state (names, shapes, values): the same trained weights give the same key."""
    parts = []
    for name, t in model.state_dict().items():
        parts += [name, tuple(t.shape), t.detach().cpu().contiguous().numpy().tobytes()]
    return _digest(parts)


def scores_fingerprint(scores: dict) -> str:
    """A short hash of channel scores (``{unit: tensor}``), each value to 5 significant digits (so that the last
    bits of a data criterion's float sums do not change the key)."""
    parts = []
    for unit in sorted(scores):
        parts += [unit] + [f"{v:.5g}" for v in scores[unit].detach().double().cpu().flatten().tolist()]
    return _digest(parts)


def _check(criteria, ratios, scores) -> tuple[tuple[str, ...], tuple[float, ...]]:
    from .api import check_one_shot

    criteria = (criteria,) if isinstance(criteria, str) else tuple(criteria)
    if not criteria:
        raise ValueError("tradeoff_grid needs at least one criterion, e.g. criteria=('l1', 'fpgm')")
    for c in criteria:
        check_one_shot(c)
    missing = [c for c in criteria if c not in (scores or {})]
    if missing:
        raise ValueError(f"tradeoff_grid reuses the chapter's scores: scores has no {', '.join(missing)} "
                         f"(pass scores={{criterion: reidbook.prune.score_channels(model, criterion, …)}})")
    ratios = tuple(float(r) for r in ratios)
    if not ratios or not all(0.0 < r < 1.0 for r in ratios):
        raise ValueError(f"ratios must be fractions of channels removed in (0, 1) (0 is the unpruned model, "
                         f"which the grid always has), got {ratios}")
    return criteria, tuple(sorted(set(ratios)))


def tradeoff_grid(model: nn.Module, criteria, ratios, *, scores: dict, evaluate: Callable[[nn.Module], dict],
                  finetune: Callable[[nn.Module], object], input_size=(128, 64), data=None, seed: int = 0,
                  key: dict | None = None, metric: str = "mAP", **prune_options) -> TradeoffGrid:
    """Measure (or load) the trade-off grid of ``model``: every criterion × ratio, before and after fine-tuning.

    ``scores``: ``{criterion: score_channels(...)}`` as the chapter computed them (reused, not recomputed).
    ``evaluate(model) -> {metric: value in [0, 1], …}`` (e.g. :func:`reidbook.eval.evaluate_model` bound to an
    evaluation set); ``finetune(model)`` trains a pruned copy in place (e.g. :func:`reidbook.prune.finetune`
    bound to the data set, preset and a number of iterations). ``data``: calibration batches for the data
    criteria. ``key``: JSON-able description of what the callables do (the evaluation set, the fine-tuning
    budget, the profile): with it the grid is cached in the store under that key plus the model's and the
    scores' fingerprints, the criteria, ratios and input size; without it nothing is cached.
    """
    from ..store import cached
    from ..utils import atomic_write_json
    from .api import prune

    criteria, ratios = _check(criteria, ratios, scores)

    def compute() -> dict:
        t0 = time.perf_counter()
        rows = []
        unpruned_metric = 100.0 * float(evaluate(model)[metric])
        rep0 = None
        for method in criteria:
            for r in ratios:
                small, rep = prune(model, method, ratio=r, data=data, input_size=input_size, scores=scores[method],
                                   seed=seed, **prune_options)
                rep0 = rep0 or rep
                row = {"method": method, "ratio": r, "params": rep.params_after, "params_ratio": rep.params_ratio,
                       "macs": rep.macs_after, "macs_ratio": rep.macs_ratio,
                       metric: 100.0 * float(evaluate(small)[metric])}
                t1 = time.perf_counter()
                finetune(small)
                row["finetune_s"] = time.perf_counter() - t1
                row[f"{metric}_finetuned"] = 100.0 * float(evaluate(small.eval())[metric])
                rows.append(row)
        unpruned = {metric: unpruned_metric, "params": rep0.params_before, "macs": rep0.macs_before}
        return {"unpruned": unpruned, "rows": rows, "seconds": time.perf_counter() - t0}

    if key is None:
        return TradeoffGrid.from_dict(compute())
    config = {"model": model_fingerprint(model), "scores": {c: scores_fingerprint(scores[c]) for c in criteria},
              "criteria": list(criteria), "ratios": list(ratios), "input_size": list(input_size), "seed": seed,
              "metric": metric, "prune_options": prune_options, **json.loads(json.dumps(key, default=str))}
    loaded = {"flag": True}

    def compute_flagged() -> dict:
        loaded["flag"] = False
        return {**compute(), "config": config}

    def save(obj: dict, folder: Path) -> list[str]:
        atomic_write_json(folder / "grid.json", obj)
        return ["grid.json"]

    def load(folder: Path) -> dict:
        return json.loads((folder / "grid.json").read_text())

    obj = cached(GRID_KIND, config, compute_flagged, load_fn=load, save_fn=save)
    return TradeoffGrid.from_dict(obj, loaded=loaded["flag"])
