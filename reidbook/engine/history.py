"""The training history: one plain record per epoch, for plots, tables and checkpoints.

A record is a flat dict of JSON numbers and strings, e.g.::

    {"epoch": 3, "loss": 2.41, "ce": 1.93, "triplet": 0.48, "lr": 0.01, "lr/base": 0.01,
     "lr/scion": 0.1, "seconds": 12.5, "images_per_s": 245.0, "iters": 40, "mAP": 0.52}

``epoch`` counts completed epochs from 1; ``loss`` is the epoch's mean total loss and each loss part
(the criterion's ``parts``) its mean unweighted value; ``lr`` is the first ("base") group's learning
rate at the epoch's last iteration and ``lr/<group>`` every group's; evaluation metrics appear in the
epochs they were computed. Being plain, a history goes into a ``weights_only=True`` checkpoint and a
JSON file unchanged.
"""
from __future__ import annotations

import json
import math
from pathlib import Path
from typing import Any, Iterator

__all__ = ["History", "plain_number"]


def plain_number(value: Any) -> Any:
    """A Python ``int``/``float``/``bool``/``str`` from a tensor/NumPy scalar, or ``None`` if not a scalar."""
    if isinstance(value, (bool, int, float, str)):
        return value
    numel = getattr(value, "numel", None) or (lambda: getattr(value, "size", None))  # torch / numpy
    if hasattr(value, "item") and numel() == 1:
        return value.item()
    return None


class History:
    """A list of per-epoch records with ``to_frame()``, ``to_json()`` and ``state_dict()``."""

    def __init__(self, records: list[dict[str, Any]] | None = None):
        self.records: list[dict[str, Any]] = [dict(r) for r in (records or [])]

    # -- building --------------------------------------------------------------------------------
    def append(self, record: dict[str, Any]) -> None:
        clean = {}
        for k, v in record.items():
            v = plain_number(v)
            if v is not None:
                clean[str(k)] = v
        self.records.append(clean)

    # -- reading ---------------------------------------------------------------------------------
    def __len__(self) -> int:
        return len(self.records)

    def __iter__(self) -> Iterator[dict[str, Any]]:
        return iter(self.records)

    def __getitem__(self, i):
        return self.records[i]

    def __repr__(self) -> str:
        last = self.records[-1] if self.records else {}
        shown = {k: (round(v, 4) if isinstance(v, float) else v) for k, v in last.items()
                 if k in ("epoch", "loss", "lr", "mAP", "rank1")}
        return f"History({len(self)} epochs, last={shown})"

    @property
    def last(self) -> dict[str, Any]:
        return self.records[-1] if self.records else {}

    def column(self, key: str) -> list[Any]:
        """The values of ``key`` in the epochs that have it (e.g. ``history.column("mAP")``)."""
        return [r[key] for r in self.records if key in r]

    def best(self, key: str = "mAP", mode: str = "max") -> dict[str, Any] | None:
        """The record with the best ``key`` (``mode`` ``"max"`` or ``"min"``), or ``None``."""
        rows = [r for r in self.records if isinstance(r.get(key), (int, float)) and not math.isnan(r[key])]
        if not rows:
            return None
        return (max if mode == "max" else min)(rows, key=lambda r: r[key])

    def to_frame(self):
        """A pandas ``DataFrame``, one row per epoch, indexed by ``epoch``."""
        import pandas as pd

        frame = pd.DataFrame.from_records(self.records)
        return frame.set_index("epoch") if "epoch" in frame.columns else frame

    # -- persistence -----------------------------------------------------------------------------
    def state_dict(self) -> list[dict[str, Any]]:
        return [dict(r) for r in self.records]

    def load_state_dict(self, state: list[dict[str, Any]]) -> None:
        self.records = [dict(r) for r in state]

    @classmethod
    def from_state(cls, state: list[dict[str, Any]] | None) -> "History":
        return cls(list(state or []))

    def to_json(self, path: str | Path | None = None) -> str:
        """The records as JSON text; written atomically to ``path`` if given."""
        text = json.dumps(self.records, indent=1)
        if path is not None:
            from reidbook.utils import atomic_write_text

            atomic_write_text(path, text + "\n")
        return text

    @classmethod
    def from_json(cls, path_or_text: str | Path) -> "History":
        p = Path(path_or_text) if not str(path_or_text).lstrip().startswith("[") else None
        text = p.read_text() if p is not None else str(path_or_text)
        return cls(json.loads(text))
