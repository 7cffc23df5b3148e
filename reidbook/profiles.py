"""The course's three sizes of everything: ``smoke``, ``quick`` and ``full``.

This module sits at the bottom of the package (it imports nothing from reidbook), so that the data,
the model registry, the presets and every command line can name the profiles and their network width
without importing each other.

* ``smoke`` — seconds; the test suite executes every chapter at this size (networks at 1/8 width);
* ``quick`` — the course on a laptop CPU (networks at 1/4 width);
* ``full`` — the papers' settings (width 1).
"""
from __future__ import annotations

__all__ = ["PROFILES", "check_profile", "profile_width"]

PROFILES: tuple[str, ...] = ("smoke", "quick", "full")

_WIDTH = {"smoke": 0.125, "quick": 0.25, "full": 1.0}


def check_profile(profile: str) -> str:
    """``profile`` itself if it is one of :data:`PROFILES`, else a ``ValueError`` naming the valid ones."""
    if profile not in PROFILES:
        raise ValueError(f"unknown profile {profile!r}; choose one of {', '.join(PROFILES)}")
    return profile


def profile_width(profile: str) -> float:
    """Channel-width multiplier of a profile's networks: full 1, quick 1/4, smoke 1/8."""
    return _WIDTH[check_profile(profile)]
