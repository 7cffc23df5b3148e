"""The profiles at the bottom (reidbook/profiles.py): one list, one width table, clear errors; presets
re-export them and give the input size as one pair."""
from __future__ import annotations

import re
from pathlib import Path

import pytest

import reidbook.presets as presets
from reidbook.presets import Preset, get_preset
from reidbook.profiles import PROFILES, check_profile, profile_width

ROOT = Path(__file__).resolve().parents[1]


def test_profiles_and_widths():
    assert PROFILES == ("smoke", "quick", "full")
    assert [profile_width(p) for p in PROFILES] == [0.125, 0.25, 1.0]
    assert check_profile("quick") == "quick"
    with pytest.raises(ValueError, match="smoke, quick, full"):
        check_profile("Quick")
    # the old import path keeps working and names the same objects
    assert presets.PROFILES is PROFILES and presets.profile_width is profile_width


def test_the_profile_list_is_written_once():
    """No module but profiles.py spells the three profiles as a tuple or list literal."""
    pattern = re.compile(r"""[(\[]\s*["']smoke["']\s*,\s*["']quick["']\s*,\s*["']full["']\s*[)\]]""")
    offenders = [str(p.relative_to(ROOT)) for p in sorted((ROOT / "reidbook").rglob("*.py"))
                 if p.name != "profiles.py" and pattern.search(p.read_text())]
    assert not offenders, f"use reidbook.profiles.PROFILES instead of a literal in {offenders}"


def test_get_preset_errors_and_input_size():
    p = get_preset("baseline", "smoke")
    assert isinstance(p, Preset) and p.input_size == (p.height, p.width)
    assert get_preset("mgn", "full").input_size == (384, 128)  # MGN §4.1
    with pytest.raises(ValueError, match="profile"):
        get_preset("baseline", "medium")
    with pytest.raises(KeyError, match="no presets for model"):
        get_preset("nosuchnet", "smoke")
    with pytest.raises(KeyError, match="settings, not a model's presets"):
        get_preset("fd", "smoke")
