"""Chapter 02's lesson (issue 20): one model's mAP, on-person share and background reliance as a row
(reidbook.eval.remedy.attention_and_reliance) on known maps, and the sentences read from two rows and from
a paper figure's lifts."""
from __future__ import annotations

import numpy as np
import pytest
import torch
from torch import nn

from reidbook.eval.remedy import attention_and_reliance, describe_paper_attention, describe_remedy


class _Channel(nn.Module):
    """A 'backbone' whose feature map is ``|x[:, c]|`` (one channel of the image, stride 1)."""

    def __init__(self, c: int):
        super().__init__()
        self.c, self.w = c, nn.Parameter(torch.tensor(1.0))

    def forward(self, x):
        return self.w * x[:, self.c:self.c + 1].abs()


class _Net(nn.Module):
    def __init__(self, c: int):
        super().__init__()
        self.backbone = _Channel(c)


def _toy():
    """Two 8×4 images, the person the top half; channel 0 = the person, 1 = uniform, 2 = the background."""
    parts = np.zeros((8, 4), dtype=np.int64)
    parts[:4] = 2
    person = torch.from_numpy(parts > 0).float()
    img = torch.stack([person + 1e-9, torch.ones(8, 4), 1 - person + 1e-9])
    return torch.stack([img, img]), [parts, parts]


REL = {"mAP": 0.40, "mAP_swap": 0.42, "drop": -0.02}


def test_attention_and_reliance_known_values():
    x, parts = _toy()
    on = attention_and_reliance(_Net(0), None, x, parts, 8, 4, reliance=REL)
    uniform = attention_and_reliance(_Net(1), None, x, parts, 8, 4, reliance=REL)
    bg = attention_and_reliance(_Net(2), None, x, parts, 8, 4, reliance=REL)
    assert on["on_person"] == pytest.approx(1.0) and on["lift"] == pytest.approx(2.0)
    assert uniform["on_person"] == pytest.approx(0.5) and uniform["lift"] == pytest.approx(1.0)
    assert bg["on_person"] == pytest.approx(0.0, abs=1e-6) and bg["pointing_hit"] == 0.0
    assert on["chance"] == pytest.approx(0.5) and on["pointing_hit"] == 1.0
    assert on["mAP"] == 0.40 and on["mAP_swap"] == 0.42 and on["swap_change"] == pytest.approx(0.02)
    with pytest.raises(ValueError, match="one part map per image"):
        attention_and_reliance(_Net(0), None, x, parts[:1], 8, 4, reliance=REL)
    with pytest.raises(KeyError, match="mAP_swap"):
        attention_and_reliance(_Net(0), None, x, parts, 8, 4, reliance={"mAP": 0.4})


def test_attention_and_reliance_of_a_smoke_baseline(smoke_dataset, net):
    from reidbook.eval.attention import images_and_parts

    images, parts = images_and_parts(smoke_dataset, smoke_dataset.query[:3], 64, 32)
    row = attention_and_reliance(net, smoke_dataset, images, parts, 64, 32, device="cpu")
    assert set(row) == {"mAP", "mAP_swap", "swap_change", "on_person", "chance", "lift", "pointing_hit"}
    assert 0 < row["mAP"] <= 1 and 0 < row["mAP_swap"] <= 1
    assert row["swap_change"] == pytest.approx(row["mAP_swap"] - row["mAP"])
    assert 0 <= row["on_person"] <= 1 and 0 < row["chance"] < 1
    assert row["lift"] == pytest.approx(row["on_person"] / row["chance"])
    assert row["chance"] == pytest.approx(np.mean([(p > 0).mean() for p in parts]))


def _row(mAP, on, swap, chance=0.4):
    return {"mAP": mAP, "on_person": on, "chance": chance, "lift": on / chance, "swap_change": swap}


def test_describe_remedy_reads_each_direction():
    text = describe_remedy(_row(0.40, 0.40, 0.02), _row(0.45, 0.50, 0.005))
    assert "With random erasing, the baseline's mAP rises (40.0 → 45.0 %, +5.0 points)." in text
    assert "on-person share rises (40 → 50 %, +10 points; chance 40 %, lift 1.00 → 1.25): the response moves " \
           "towards the person." in text
    assert "changes its mAP by +2.0 points without random erasing and +0.5 with it: the background moves its " \
           "matches less." in text
    worse = describe_remedy(_row(0.40, 0.40, 0.0), _row(0.35, 0.30, -0.03))
    assert "mAP falls (40.0 → 35.0 %, -5.0 points)" in worse and "moves off the person" in worse
    assert "the background moves its matches more." in worse    # -3 points is more reliance than 0, by size
    mixed = describe_remedy(_row(0.40, 0.40, 0.02), _row(0.43, 0.41, 0.025))
    assert "mAP rises" in mixed and "share stays (40 → 41 %" in mixed and "does not move towards" in mixed
    assert "stays about the same" in mixed


def test_describe_remedy_says_plainly_when_nothing_moved():
    text = describe_remedy(_row(0.40, 0.40, 0.02), _row(0.405, 0.41, 0.015), fix="random erasing")
    assert text.startswith("Nothing moved: with random erasing, the baseline's mAP (40.0 → 40.5 %), its on-person "
                           "share (40 → 41 %; chance 40 %) and the mAP change under the background swap (+2.0 → +1.5 "
                           "points) all stay within the tolerances (1 point of mAP, 2 points of share).")
    assert "does not change what the baseline matches on" in text
    with pytest.raises(KeyError, match="after lacks"):
        describe_remedy(_row(0.4, 0.4, 0.0), {"mAP": 0.4})


def test_describe_paper_attention_verdicts():
    assert "is reproduced" in describe_paper_attention({"Global": 1.3, "Part-2": 1.4})
    part = describe_paper_attention({"Global": 1.0, "Part-3": 1.15})
    assert "partly reproduced" in part and "only Part-3 clearly prefers the person" in part
    assert "Global 1.00, Part-3 1.15" in part
    assert "is not reproduced" in describe_paper_attention({"Global": 1.02, "Part-2": 0.98, "Part-3": 1.05})
    with pytest.raises(ValueError, match="no lifts"):
        describe_paper_attention({})


def test_chapter02_erasing_prediction_reads_the_share_change():
    from reidbook.teach import PREDICTIONS, _load_all

    _load_all()
    outcome = PREDICTIONS["02.erasing"].outcome
    assert outcome(share_without=0.40, share_with=0.45) == 0      # rises by 5 points
    assert outcome(share_without=0.40, share_with=0.41) == 1      # within 2 points
    assert outcome(share_without=0.40, share_with=0.30) == 2      # falls by 10 points
