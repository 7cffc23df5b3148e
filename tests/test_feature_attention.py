"""Feature-map attention (reidbook.eval.feature_attention): known values for the energies, the band and the
shares; GraftedNet's nine features and FD's FMFBs measured row by row on tiny models."""
from __future__ import annotations

import numpy as np
import pytest
import torch

from reidbook.eval.feature_attention import (
    band_mask,
    channel_energy,
    fmfb_attention,
    graftednet_attention,
    map_attention,
    upper_body_share,
)


def _parts(h: int = 16, w: int = 8) -> np.ndarray:
    """A toy part-label map: a person in columns 2–5, head rows 0–3, torso 4–7, legs 8–13, feet 14–15."""
    p = np.zeros((h, w), dtype=np.int64)
    p[0:4, 2:6], p[4:8, 2:6], p[8:14, 2:6], p[14:16, 2:6] = 1, 2, 4, 5
    return p


def test_channel_energy_known_values():
    x = torch.zeros(1, 2, 2, 2)
    x[0, 0, 0, 0], x[0, 1, 0, 0] = 3.0, -4.0
    assert channel_energy(x, "l2")[0, 0, 0] == pytest.approx(5.0)
    assert channel_energy(x, "l1")[0, 0, 0] == pytest.approx(7.0)
    assert channel_energy(x, "l2")[0, 1, 1] == 0.0
    with pytest.raises(ValueError, match="norm"):
        channel_energy(x, "linf")
    with pytest.raises(ValueError, match=r"\[B, C, h, w\]"):
        channel_energy(torch.zeros(2, 2), "l2")


def test_band_mask_rows():
    m = band_mask((16, 8), 0.25, 0.5)
    assert m.shape == (16, 8) and m[4:8].all() and m.sum() == 4 * 8
    with pytest.raises(ValueError, match="top < bottom"):
        band_mask((16, 8), 0.5, 0.25)


def test_upper_body_share_ignores_background_and_bag():
    parts = {"background": 0.5, "head": 0.1, "torso": 0.1, "arms": 0.0, "legs": 0.2, "feet": 0.0, "bag": 0.1}
    assert upper_body_share(parts) == pytest.approx(0.2 / 0.4)


def test_map_equal_to_the_mask_is_all_on_person_and_uniform_is_chance():
    p = _parts()
    person = torch.from_numpy((p > 0).astype(np.float32))
    maps = {"mask": person[None, None].repeat(1, 3, 1, 1), "uniform": torch.ones(1, 3, 16, 8)}
    rows = {r["map"]: r for r in map_attention(maps, [p], norm="l1")}
    chance = (p > 0).mean()
    assert rows["mask"]["on_person"] == pytest.approx(1.0)
    assert rows["mask"]["lift"] == pytest.approx(1 / chance)
    assert rows["uniform"]["on_person"] == pytest.approx(chance)
    assert rows["uniform"]["chance"] == pytest.approx(chance)
    assert rows["mask"]["top_part"] == "legs"   # the largest part takes the most of a uniform-on-person map


def test_stripes_and_bands():
    p = _parts()
    top = torch.zeros(1, 1, 16, 8)
    top[0, 0, :8, 2:6] = 1.0                      # upper half: on head and torso (32 px)
    top[0, 0, 8:, 0:2] = 1.0                      # lower half: on the background beside the legs (16 px)
    rows = map_attention({"m": top}, [p], stripes={"m": 2}, bands={"m": (0.0, 0.5)})
    assert [r["stripe"] for r in rows] == [1, 2]
    assert rows[0]["on_person"] == pytest.approx(1.0) and rows[0]["upper_body"] == pytest.approx(1.0)
    assert rows[1]["on_person"] == pytest.approx(0.0) and rows[1]["top_part"] != "background"
    assert rows[0]["band_share"] == pytest.approx(32 / 48) and rows[0]["band_chance"] == pytest.approx(0.5)
    assert rows[0]["band_lift"] == pytest.approx(64 / 48)
    with pytest.raises(KeyError, match="not given"):
        map_attention({"m": top}, [p], stripes={"other": 2})
    with pytest.raises(ValueError, match="part maps"):
        map_attention({"m": top}, [p, p])


def test_stripe_cells_follow_the_pooling_bounds_also_with_more_stripes_than_rows():
    from reidbook.eval.attention import stripe_attention
    from reidbook.eval.feature_attention import stripe_cells

    p = _parts()
    e = np.random.default_rng(0).random((4, 2)) + 0.1
    ours, theirs = stripe_cells(e, p, 2), stripe_attention(e, p, 2)
    assert [c["on_person"] for c in ours] == pytest.approx([c["on_person"] for c in theirs])
    two_rows = np.array([[1.0, 1.0], [0.0, 0.0]])          # 3 stripes of 2 rows: (0,1), (0,2), (1,2)
    cells = stripe_cells(two_rows + 1e-9, p, 3)
    assert len(cells) == 3 and cells[0]["chance"] == pytest.approx((p[:8] > 0).mean())
    assert cells[1]["chance"] == pytest.approx((p > 0).mean())


def test_graftednet_attention_measures_its_nine_features():
    from reidbook.models import build_model

    torch.manual_seed(0)
    model = build_model("graftednet", 5, profile="smoke")
    x = torch.randn(2, 3, 64, 32)
    rows = graftednet_attention(model, x, [_parts(), _parts()])
    assert [r["feature"] for r in rows] == list(model.feature_names)     # 4 levels + 2 + 3 stripes
    assert len(rows) == 9 and all(0.0 <= r["on_person"] <= 1.0 for r in rows)
    assert model.training                                                 # the mode is restored


def test_fmfb_attention_has_a_band_per_partial_view():
    from reidbook.data.views import make_views
    from reidbook.models.fd import build_student

    torch.manual_seed(0)
    student = build_student(5, width=0.125, arch="R18a", sr_dims={"holistic": 8, "up1": 4, "dn1": 4})
    views = make_views((64, 32), (32, 32), ["holistic", "up1", "dn1"])
    rows = {r["map"]: r for r in fmfb_attention(student, torch.randn(2, 3, 64, 32), [_parts(), _parts()], views)}
    assert list(rows) == ["holistic", "up1", "dn1", "student"]
    assert "band_share" in rows["up1"] and "band_share" in rows["dn1"] and "band_share" not in rows["holistic"]
    assert rows["up1"]["band_chance"] == pytest.approx(0.25)


def _row(name, stripe=0, on=0.5, chance=0.4, top="torso", upper=0.5, band=None):
    r = {"map": name, "feature": name if stripe == 0 else f"{name}_{stripe}", "stripe": stripe, "on_person": on,
         "chance": chance, "lift": on / chance, "top_part": top, "top_part_share": 0.3, "upper_body": upper}
    if band is not None:
        r.update(band_share=band[0], band_chance=band[1], band_lift=band[0] / band[1])
    return r


def test_captions_follow_the_numbers():
    from reidbook.eval.feature_attention import describe_fmfb_attention, describe_graftednet_attention

    looks = [_row("fire_conv4f", on=0.8), _row("fire_conv5c", on=0.9),
             _row("fire_conv5c_p3", 1, top="head"), _row("fire_conv5c_p3", 2), _row("fire_conv5c_p3", 3, top="legs")]
    text = describe_graftednet_attention(looks, 8)
    assert "80% (fire_conv4f) to 90% (fire_conv5c)" in text and "they respond on the body" in text
    assert "head (30%" in text and text.index("head") < text.index("legs")
    blind = [_row("fire_conv4f", on=0.41), _row("fire_conv5c", on=0.42)]
    assert "does not (yet) look at the person" in describe_graftednet_attention(blind, 8)

    fmfb = [_row("up1", upper=0.9, band=(0.6, 0.25)), _row("dn1", upper=0.2, band=(0.5, 0.25)),
            _row("student", upper=0.5)]
    text = describe_fmfb_attention(fmfb, 4)
    assert "2 of the 2 partial" in text and "is reproduced here" in text and "do sit higher" in text
    flat = [_row("up1", upper=0.5, band=(0.26, 0.25)), _row("dn1", upper=0.5, band=(0.25, 0.25))]
    text = describe_fmfb_attention(flat, 4)
    assert "not reproduced here" in text and "do not sit clearly higher" in text


def test_graftednet_response_figure_has_a_column_per_map():
    pytest.importorskip("matplotlib")
    import matplotlib

    matplotlib.use("Agg")
    from reidbook.models import build_model
    from reidbook.viz.grafting import feature_response_figure

    model = build_model("graftednet", 5, profile="smoke")
    fig = feature_response_figure(model, torch.randn(2, 3, 64, 32))
    assert len(fig.axes) == 2 * (1 + 4 + 2)          # image, four levels, fire_conv5c in 2 and in 3 stripes
    assert model.training


def test_fmfb_caption_ignores_nan_bands_of_dataframe_records():
    import pandas as pd

    from reidbook.eval.feature_attention import describe_fmfb_attention

    rows = [_row("holistic"), _row("up1", upper=0.9, band=(0.6, 0.25)), _row("dn1", upper=0.2, band=(0.5, 0.25)),
            _row("student")]
    records = pd.DataFrame(rows).to_dict("records")          # holistic/student get band_share = NaN
    text = describe_fmfb_attention(records, 4)
    assert "2 of the 2 partial" in text and "nan" not in text
