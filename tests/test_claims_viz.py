"""reidbook.viz.claims: a claim's seed distribution with a live run drawn over it."""
import numpy as np
import pytest

from reidbook.viz.claims import claim_figure, claim_frame, percent_metric

CLAIM = {"id": "mgn.vs_global", "metric": "mAP", "verdict": {"verdict": "reproduced"},
         "paper_numbers": {"source": "MGN Table 5", "values": [86.9, 75.0]},
         "configs": [{"label": "MGN", "metric": "mAP", "seeds": [0, 1, 2], "values": [0.50, 0.52, 0.54]},
                     {"label": "Global", "metric": "mAP", "seeds": [0, 1, 2], "values": [0.40, 0.41, 0.45]}]}


def test_frame_is_long_and_in_percent():
    f = claim_frame(CLAIM)
    assert len(f) == 6 and list(f.columns) == ["configuration", "seed", "value"]
    assert f[f.configuration == "MGN"]["value"].tolist() == pytest.approx([50.0, 52.0, 54.0])
    assert percent_metric("fusion/mAP") and percent_metric("rank1") and not percent_metric("latency_ms")


def test_figure_draws_every_seed_and_the_live_point():
    import matplotlib.pyplot as plt

    fig = claim_figure(CLAIM, live={"Global": 0.47})
    ax = fig.axes[0]
    live = [c for c in ax.collections if c.get_gid() == "live"]
    assert len(live) == 1 and np.allclose(live[0].get_offsets(), [[1, 47.0]])
    # the strip plot's points: one per seed and configuration, at the ledger's values
    ys = sorted(float(y) for c in ax.collections if c.get_gid() != "live" for _, y in c.get_offsets())
    assert ys == pytest.approx(sorted([50, 52, 54, 40, 41, 45]))
    assert "reproduced" in ax.get_title() and ax.get_ylabel() == "mAP (%)"
    assert "86.9 vs 75" in " ".join(t.get_text() for t in ax.texts)
    plt.close(fig)
    fig = claim_figure(CLAIM, stale=True)
    assert "stale" in fig.axes[0].get_title()
    plt.close(fig)


def test_bad_input_is_refused():
    with pytest.raises(ValueError, match="make claims"):
        claim_figure({"id": "x", "metric": "mAP", "status": "not runnable: test",
                      "configs": [{"label": "a"}, {"label": "b"}]})
    with pytest.raises(ValueError, match="configurations"):
        claim_figure(CLAIM, live={"Nope": 0.5})
