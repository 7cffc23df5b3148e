"""Attention against SynthReID's ground truth (reidbook.eval.attention) and background reliance
(reidbook.eval.background): known values on hand-made arrays, and the probes on a smoke set."""
from __future__ import annotations

import numpy as np
import pytest

from reidbook.eval.attention import (
    area_share,
    attention_summary,
    energy_pointing_game,
    energy_share,
    part_area_shares,
    part_shares,
    pointing_hit,
    resize_map,
)
from reidbook.eval.background import top1_same_camera
from reidbook.models.histogram import NAIVE_BINS, NAIVE_STRIPES, naive_histogram_features


# ---------------------------------------------------------------------------------------------- naive matcher
def test_naive_histogram_features_are_per_stripe_histograms():
    rng = np.random.default_rng(0)
    imgs = rng.integers(0, 256, (3, 128, 64, 3), dtype=np.uint8)
    f = naive_histogram_features(imgs)
    nb = int(np.prod(NAIVE_BINS))
    assert NAIVE_BINS == (8, 4, 8) and NAIVE_STRIPES == 4
    assert f.shape == (3, NAIVE_STRIPES * nb) and f.dtype == np.float32
    np.testing.assert_allclose(f.reshape(3, NAIVE_STRIPES, nb).sum(-1), 1, atol=1e-5)
    # a single-colour image puts all of each stripe's mass in one bin, the same bin in every stripe
    flat = naive_histogram_features(np.full((1, 128, 64, 3), (200, 30, 30), np.uint8)).reshape(NAIVE_STRIPES, nb)
    assert (flat.max(1) == pytest.approx(1.0)) and len(set(flat.argmax(1))) == 1


def test_top1_same_camera_known_values():
    d = np.array([[0.1, 0.5, 0.9], [0.9, 0.5, 0.1]])
    g_cams = np.array([0, 1, 1])
    assert top1_same_camera(d, [0, 1], g_cams) == 1.0  # both nearest items share the query's camera
    assert top1_same_camera(d, [1, 0], g_cams) == 0.0
    # the protocol ignores the query's own identity on its own camera: the next nearest item counts
    # (query 0 -> item 1 on camera 1: another camera; query 1 -> item 1, a stranger on its own camera)
    assert top1_same_camera(d, [0, 1], g_cams, q_pids=[7, 8], g_pids=[7, 9, 8]) == 0.5
    with pytest.raises(ValueError, match="distmat"):
        top1_same_camera(d, [0], g_cams)


# ---------------------------------------------------------------------------------------------- attention measures


def _parts() -> np.ndarray:
    """A 128×64 part map: a head block, a torso block, legs; the rest background."""
    p = np.zeros((128, 64), np.uint8)
    p[8:24, 24:40] = 1      # head
    p[24:64, 16:48] = 2     # torso
    p[64:120, 20:44] = 4    # legs
    return p


def test_map_equal_to_the_mask_is_all_on_the_person():
    p = _parts()
    person = p > 0
    assert energy_share(person.astype(float), person) == pytest.approx(1.0)
    assert energy_share(person.astype(float), p) == pytest.approx(1.0)  # a part map works as a mask
    assert energy_pointing_game(person.astype(float), person) == pytest.approx(1.0)
    assert pointing_hit(person.astype(float), person)


def test_uniform_map_gives_the_area_share():
    p = _parts()
    person = p > 0
    assert area_share(person) == pytest.approx(person.mean())
    assert energy_share(np.ones((128, 64)), person) == pytest.approx(person.mean())
    assert energy_share(np.ones((16, 8)), person) == pytest.approx(person.mean())  # resized first
    shares, areas = part_shares(np.ones((128, 64)), p), part_area_shares(p)
    assert shares == pytest.approx(areas) and sum(shares.values()) == pytest.approx(1.0)
    assert areas["head"] == pytest.approx(16 * 16 / (128 * 64)) and areas["arms"] == 0
    # the box holds the person and some background: between the person's area share and 1
    box = energy_pointing_game(np.ones((128, 64)), person)
    assert box == pytest.approx((112 * 32) / (128 * 64)) and box > person.mean()


def test_map_on_the_head_only():
    p = _parts()
    head = (p == 1).astype(np.float32)
    s = part_shares(head, p)
    assert s["head"] == pytest.approx(1.0) and s["torso"] == 0 and s["background"] == 0
    assert energy_share(head, p > 0) == pytest.approx(1.0)
    bg = (p == 0).astype(float)
    assert energy_share(bg, p > 0) == 0 and not pointing_hit(bg * np.arange(64)[None, :], p > 0)


def test_resizing_is_bilinear_and_accepts_torch():
    import torch

    m = np.zeros((4, 2))
    m[:2] = 1.0  # energy on the upper half of a 4x2 map
    up = resize_map(m, (128, 64))
    assert up.shape == (128, 64) and up.min() >= 0
    upper = np.zeros((128, 64), bool)
    upper[:64] = True
    assert 0.85 < energy_share(m, upper) < 1.0  # bilinear interpolation blurs the boundary a little
    assert energy_share(torch.tensor(m)[None], upper) == pytest.approx(energy_share(m, upper))
    np.testing.assert_allclose(resize_map(np.ones((3, 5)), (7, 9)), 1.0)


def test_pointing_hit_tolerance_and_bad_maps():
    person = np.zeros((10, 10), bool)
    person[5, 5] = True
    peak = np.zeros((10, 10))
    peak[5, 7] = 1
    assert not pointing_hit(peak, person) and pointing_hit(peak, person, tolerance=2)
    with pytest.raises(ValueError, match="negative"):
        energy_share(-peak, person)
    with pytest.raises(ValueError, match="no energy"):
        energy_share(np.zeros((10, 10)), person)
    with pytest.raises(ValueError, match="2-D"):
        energy_share(np.ones((2, 3, 10, 10)), person)


def test_attention_summary_averages_and_reports_chance():
    p = _parts()
    maps = [(p > 0).astype(float), np.ones((16, 8))]
    s = attention_summary(maps, [p, p])
    chance = (p > 0).mean()
    assert s["n"] == 2 and s["chance"] == pytest.approx(chance)
    assert s["on_person"] == pytest.approx((1 + chance) / 2)
    # a uniform map's maximum is its first pixel (top-left corner, background): one hit of two
    assert s["lift"] == pytest.approx(s["on_person"] / chance) and s["pointing_hit"] == 0.5
    assert sum(s["parts"].values()) == pytest.approx(1.0) and s["parts_chance"]["head"] > 0
    with pytest.raises(ValueError, match="as many maps"):
        attention_summary(maps, [p])


def test_stripe_attention_known_values():
    from reidbook.eval.attention import stripe_attention

    p = _parts()
    uniform = stripe_attention(np.ones((24, 8)), p, 3)
    assert [r["stripe"] for r in uniform] == [1, 2, 3]
    # stripes of 24 map rows: 0-8, 8-16, 16-24 -> image rows 0-43, 43-85, 85-128 (rounded)
    for r, (a, b) in zip(uniform, [(0, 43), (43, 85), (85, 128)]):
        assert r["chance"] == pytest.approx((p[a:b] > 0).mean())
        assert r["on_person"] == pytest.approx(r["chance"], abs=1e-9)
    exact = stripe_attention((p > 0).astype(float), p, 2)
    assert all(r["on_person"] == pytest.approx(1.0) for r in exact)
    top = stripe_attention((p == 1).astype(float) + 1e-9, p, 3)[0]["parts"]
    assert top["head"] > 0.9
    with pytest.raises(ValueError, match="stripes"):
        stripe_attention(np.ones((2, 8)), p, 3)


def test_branch_attention_on_a_small_mgn():
    import torch

    from reidbook.eval.attention import branch_attention
    from reidbook.models import build_model

    torch.manual_seed(0)
    model = build_model("mgn", num_classes=5, profile="smoke")
    p = _parts()
    rows = branch_attention(model, torch.randn(2, 3, 128, 64), [p, p])
    names = [(r["branch"], r["stripe"]) for r in rows]
    parts = {name: spec.parts for name, spec in model.specs.items()}
    assert len(rows) == sum(max(1, n) for n in parts.values())
    assert sum(1 for _, s in names if s == 0) == sum(1 for n in parts.values() if n <= 1)
    for r in rows:
        assert 0 <= r["on_person"] <= 1 and 0 < r["chance"] < 1
        assert sum(r["parts"].values()) == pytest.approx(1.0) and r["top_part"] != "background"
    for r in rows:  # the chance level of the part shares: area shares within the stripe's rows
        assert sum(r["parts_chance"].values()) == pytest.approx(1.0)
        assert r["parts_chance"]["background"] == pytest.approx(1 - r["chance"])
    with pytest.raises(ValueError, match="one part map per image"):
        branch_attention(model, torch.randn(2, 3, 128, 64), [p])


def test_attention_summaries_leave_out_empty_maps_and_count_them():
    from reidbook.eval.attention import attention_summaries

    p = _parts()
    on = (p > 0).astype(float)
    out = attention_summaries({"a": [on, np.zeros_like(on)], "b": [np.ones((16, 8)), on]}, [p, p])
    assert out["a"]["n"] == 1 and out["a"]["empty"] == 1 and out["a"]["on_person"] == pytest.approx(1.0)
    assert out["b"]["n"] == 2 and out["b"]["empty"] == 0
    assert out["b"]["on_person"] == pytest.approx(((p > 0).mean() + 1) / 2)
    with pytest.raises(ValueError, match="every map of 'c' is empty"):
        attention_summaries({"c": [np.zeros_like(on)]}, [p])
    with pytest.raises(ValueError, match="1 maps for 2 part maps"):
        attention_summaries({"d": [on]}, [p, p])
