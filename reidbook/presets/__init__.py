"""Every model's hyper-parameters per profile, in one place.

``get_preset(model, profile)`` returns a :class:`Preset`. Each model has a module
``reidbook/presets/<model>.py`` with ``PRESETS = {"smoke": Preset(...), "quick": ..., "full": ...}``;
``full`` is the paper's setting (its section cited in ``notes``). Between profiles the width, the
input size, the data and the epochs change freely; anything else that differs from ``full`` — and
anything in which ``full`` departs from its paper — is declared in the preset's ``departures``
(:mod:`reidbook.presets.departures`; ``departures_table(preset)`` prints them, a test enforces it).
"""
from __future__ import annotations

import dataclasses
import importlib
from dataclasses import dataclass, field
from typing import Any

from ..profiles import PROFILES, check_profile, profile_width

__all__ = ["PROFILES", "Preset", "Departure", "check_profile", "departures_table", "get_preset", "profile_width"]


@dataclass
class Preset:
    """How to build and train one model at one profile (see CONTRIBUTING.md, "Presets").

    ``height`` and ``width`` are the **input image** size in pixels (:attr:`input_size`); the network's
    channel multiplier is another thing, ``model_options["width"]`` or the profile's
    (:func:`reidbook.profiles.profile_width`).
    """

    model: str
    profile: str
    model_options: dict[str, Any] = field(default_factory=dict)
    height: int = 256   # input image height (pixels)
    width: int = 128    # input image width (pixels), not the channel multiplier
    train_aug: dict[str, Any] = field(default_factory=dict)
    P: int = 16
    K: int = 4
    epochs: int = 60
    optimizer: dict[str, Any] = field(default_factory=lambda: {"name": "sgd", "lr": 0.01})
    schedule: dict[str, Any] = field(default_factory=lambda: {"name": "constant"})
    losses: list[dict[str, Any]] = field(default_factory=list)
    eval_every: int = 0
    notes: str = ""
    departures: tuple = ()  # of Departure: documentation, not configuration (left out of to_dict)

    @property
    def batch_size(self) -> int:
        return self.P * self.K

    @property
    def input_size(self) -> tuple[int, int]:
        """``(height, width)`` of the input images, as :mod:`reidbook.profile` and the exporter take it."""
        return (self.height, self.width)

    def replace(self, **changes) -> "Preset":
        """A copy with some fields changed; nested dicts given as ``optimizer={"lr": ...}`` are merged."""
        merged = {}
        for k, v in changes.items():
            if not hasattr(self, k):
                raise KeyError(f"Preset has no field {k!r}; fields: {[f.name for f in dataclasses.fields(self)]}")
            cur = getattr(self, k)
            merged[k] = {**cur, **v} if isinstance(cur, dict) and isinstance(v, dict) else v
        return dataclasses.replace(self, **merged)

    def to_dict(self) -> dict[str, Any]:
        """The configuration as plain data (what the zoo keys and saves); ``departures`` are left out, so
        that documenting a departure retrains nothing."""
        d = dataclasses.asdict(self)
        d.pop("departures", None)
        return d


def get_preset(model: str, profile: str = "quick") -> Preset:
    """The preset of ``model`` at ``profile``; a clear error for an unknown model or profile."""
    check_profile(profile)
    try:
        module = importlib.import_module(f"reidbook.presets.{model}")
    except ModuleNotFoundError as exc:
        if exc.name != f"reidbook.presets.{model}":
            raise
        raise KeyError(f"no presets for model {model!r}; add reidbook/presets/{model}.py") from None
    if not hasattr(module, "PRESETS"):
        raise KeyError(f"reidbook.presets.{model} holds settings, not a model's presets; "
                       f"see its docstring for the functions that build them")
    return dataclasses.replace(module.PRESETS[profile])


from .departures import Departure, departures_table  # noqa: E402  (a leaf module: no cycle)
