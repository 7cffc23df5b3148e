"""Factorized Distillation's views (Fig. 1) and random erasing that reports its rectangle (§4.1)."""
from __future__ import annotations

import random

import pytest
import torch
from PIL import Image

from reidbook.data.views import (
    VIEW_NAMES,
    DistillDataset,
    RandomErasingWithBox,
    crop_view,
    erased_fraction,
    erased_fractions,
    make_views,
    view_rows,
    view_transform,
)


def test_seven_views_bands_and_sizes():
    views = make_views()
    assert [v.name for v in views] == ["holistic", "up1", "mid1", "dn1", "up2", "mid2", "dn2"]
    by = {v.name: v for v in views}
    assert by["holistic"].size == (256, 128) and not by["holistic"].partial
    assert all(by[n].size == (224, 224) and by[n].partial for n in VIEW_NAMES[1:])
    # Fig. 1: 4 stripes (Up1 1/4-2/4, Mid1 2/4-3/4, Dn1 3/4-4/4), 7 stripes (Up2 1/7-3/7, ...)
    assert [view_rows(by[n], 256) for n in ("holistic", "up1", "mid1", "dn1")] == [
        (0, 256), (64, 128), (128, 192), (192, 256)]
    assert [view_rows(by[n], 7 * 20) for n in ("up2", "mid2", "dn2")] == [(20, 60), (60, 100), (100, 140)]
    with pytest.raises(KeyError, match="unknown view"):
        make_views(names=["head"])


def test_crop_view_tensor_and_pil_agree_and_transform_size():
    (up1,) = make_views((64, 32), (24, 24), ["up1"])
    t = torch.arange(3 * 128 * 64, dtype=torch.uint8).reshape(3, 128, 64)
    img = Image.fromarray(t.permute(1, 2, 0).numpy())
    a = crop_view(t, up1)
    b = torch.from_numpy(__import__("numpy").array(crop_view(img, up1))).permute(2, 0, 1)
    assert a.shape == (3, 32, 64) and torch.equal(a, b)
    assert torch.equal(a, t[:, 32:64])
    x = view_transform(up1, is_train=False)(img)
    assert x.shape == (3, 24, 24)
    x = view_transform(up1, is_train=True, flip=True, pad=2, random_crop=True, random_erasing=0.5,
                       color_jitter=0.2, rotation=5)(img)
    assert x.shape == (3, 24, 24)


def test_erasing_reports_its_box():
    torch.manual_seed(0)
    rng_state = random.getstate()
    random.seed(1)
    er = RandomErasingWithBox(p=1.0, value=0.0)
    for _ in range(20):
        x = torch.ones(3, 64, 32)
        y, box = er(x)
        assert box is not None
        t, left, h, w = box
        assert (y[:, t:t + h, left:left + w] == 0).all()
        assert int((y == 0).all(0).sum()) == h * w  # nothing else erased
        assert 0.02 * 64 * 32 * 0.5 <= h * w <= 0.33 * 64 * 32 * 1.5  # area within the scale (rounding)
    assert RandomErasingWithBox(p=0.0)(torch.ones(3, 8, 8))[1] is None
    random.setstate(rng_state)
    with pytest.raises(ValueError):
        RandomErasingWithBox(p=1.5)


def test_erased_fraction_known_values():
    views = {v.name: v for v in make_views((64, 32), (16, 16))}
    H, W = 64, 32
    assert erased_fraction(None, views["up1"], H, W) == 0.0
    assert erased_fraction((16, 0, 16, 32), views["up1"], H, W) == 1.0          # exactly Up1's band
    assert erased_fraction((0, 0, 16, 32), views["up1"], H, W) == 0.0           # the top stripe only
    assert erased_fraction((16, 0, 16, 16), views["up1"], H, W) == 0.5          # left half of the band
    assert erased_fraction((24, 0, 16, 32), views["up1"], H, W) == 0.5          # lower half of the band
    assert erased_fraction((16, 0, 16, 32), views["holistic"], H, W) == 0.25
    fr = erased_fractions((16, 0, 16, 32), list(views.values()), H, W)
    assert fr.shape == (7,) and fr[1] == 1.0 and fr[2] == 0.0


def test_distill_dataset_fractions_match_erased_pixels(smoke_dataset):
    views = make_views((64, 32), (16, 16))
    ds = DistillDataset(smoke_dataset.train[:8], views, 64, 32, flip=True, erasing=1.0)
    random.seed(3)
    torch.manual_seed(3)
    for i in range(8):
        x, pid, cam, idx, fr = ds[i]
        assert x.shape == (3, 64, 32) and idx == i and fr.shape == (7,)
        erased = (x == 0).all(0)  # the fill is 0 (the mean pixel once normalised)
        for k, v in enumerate(views):
            r0, r1 = view_rows(v, 64)
            measured = float(erased[r0:r1].float().mean())
            assert measured >= float(fr[k]) - 1e-6  # every reported pixel is erased
            assert measured <= float(fr[k]) + 0.05  # (a few natural zero pixels at most)
