"""Attention against SynthReID's ground truth (reidbook.eval.attention) and background reliance
(reidbook.eval.background): known values on hand-made arrays, and the probes on a smoke set."""
from __future__ import annotations

import numpy as np
import pytest

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
