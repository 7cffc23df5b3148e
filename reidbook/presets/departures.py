"""Departures from the papers, as data.

Every preset carries ``departures``: a tuple of :class:`Departure` — *what* differs from the paper,
the paper's value, ours, why, and the measured effect where one was measured. ``full`` declares how it
departs from the paper it reproduces (e.g. P×K sampling where the paper shuffles); ``quick`` and
``smoke`` declare, on top, everything in which they differ from ``full`` other than the four things a
profile may change freely: the network width, the input size, the data and the epochs
(:data:`FREE`; a pad that scales with the input width counts as input size). The test
``tests/test_departures.py`` fails when a difference is not declared (:func:`undeclared_differences`).

Chapters print their model's table in their settings section: ``departures_table(preset)``.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Iterable, Mapping

__all__ = ["Departure", "FREE", "declare", "departures_table", "differences", "undeclared_differences"]

#: Preset fields a profile changes freely (width is ``model_options["width"]``; height/width are the input).
FREE = ("profile", "height", "width", "epochs", "eval_every", "notes", "departures")


@dataclass(frozen=True)
class Departure:
    """One way a preset departs from its paper.

    ``what``: the preset field it concerns — a field (``"optimizer"``), a field's key
    (``"optimizer.lr"``, ``"train_aug.random_erasing"``) or, for what is not a field (an evaluation or
    a model detail), a name in words (``"test feature"``). A departure on a field covers all its keys.
    ``paper`` / ``ours``: the two values, in words. ``why``: the reason. ``effect``: what was measured
    (empty when nothing was).
    """

    what: str
    paper: str
    ours: str
    why: str
    effect: str = ""

    def covers(self, key: str) -> bool:
        return key == self.what or key.startswith(self.what + ".")


#: The laptop profiles' one shared departure: ImageNet weights cannot be downloaded offline, so every
#: backbone starts from SynthReID's source domain instead (``reidbook.pretrain.pretrained_backbone``).
OFFLINE_PRETRAINING = Departure("pre-training", "ImageNet weights",
                                "SynthReID's source domain (reidbook.zoo.pretrained_backbone)",
                                "ImageNet weights cannot be downloaded offline; the source domain is the stand-in")


def declare(presets: Mapping[str, Any], common: Iterable[Departure] = (), **by_profile: Iterable[Departure]) -> dict:
    """``presets`` with ``departures`` set: ``common`` (the paper-level ones, declared by every profile)
    plus each profile's own (``quick=(...)``)."""
    common = tuple(common)
    unknown = set(by_profile) - set(presets)
    if unknown:
        raise KeyError(f"departures for unknown profiles {sorted(unknown)}; presets have {sorted(presets)}")
    return {p: preset.replace(departures=common + tuple(by_profile.get(p, ()))) for p, preset in presets.items()}


def _flat(preset) -> dict[str, Any]:
    d = {k: v for k, v in preset.to_dict().items() if k not in FREE}
    out = {}
    for k, v in d.items():
        if isinstance(v, dict):
            for kk, vv in v.items():
                if not (k == "model_options" and kk == "width"):
                    out[f"{k}.{kk}"] = vv
        else:
            out[k] = v
    return out


def differences(preset, full) -> list[str]:
    """Keys (``field`` or ``field.key``) in which ``preset`` differs from ``full``, leaving out the free
    ones (:data:`FREE`, the width) and a ``train_aug.pad`` that scales with the input width (±1 px)."""
    a, b = _flat(preset), _flat(full)
    keys = sorted(k for k in set(a) | set(b) if a.get(k) != b.get(k))
    if "train_aug.pad" in keys and a.get("train_aug.pad") is not None and b.get("train_aug.pad") is not None:
        if abs(a["train_aug.pad"] - b["train_aug.pad"] * preset.width / full.width) <= 1:
            keys.remove("train_aug.pad")
    return keys


def undeclared_differences(preset, full) -> list[str]:
    """:func:`differences` that none of ``preset.departures`` covers."""
    return [k for k in differences(preset, full) if not any(d.covers(k) for d in preset.departures)]


def departures_table(preset):
    """A table (pandas DataFrame) of ``preset.departures``: what, paper, ours, why, measured effect."""
    import pandas as pd

    rows = [{"what": d.what, "paper": d.paper, "ours": d.ours, "why": d.why, "measured effect": d.effect or "—"}
            for d in preset.departures]
    df = pd.DataFrame(rows, columns=["what", "paper", "ours", "why", "measured effect"])
    df.index = range(1, len(df) + 1)
    df.attrs["title"] = f"{preset.model} ({preset.profile}): {len(df)} departure(s) from the paper"
    return df
