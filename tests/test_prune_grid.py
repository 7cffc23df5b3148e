"""The pruning trade-off grid (reidbook.prune.grid) and what the slider and its static form draw from it:
cells measured per (criterion, ratio), the store's cache (a re-run loads, another configuration recomputes),
lookups at the slider's extremes, the small-multiples figure."""
from __future__ import annotations

import matplotlib

matplotlib.use("Agg")

import pytest  # noqa: E402
import torch  # noqa: E402
from test_prune_surgery import SIZE, _model  # noqa: E402

from reidbook.prune import score_channels  # noqa: E402
from reidbook.prune.grid import TradeoffGrid, model_fingerprint, scores_fingerprint, tradeoff_grid  # noqa: E402
from reidbook.prune.measure import pruning_numbers, recovery_lines  # noqa: E402
from reidbook.viz.pruning import plot_pruning, plot_tradeoff_grid  # noqa: E402


def _toy_grid() -> TradeoffGrid:
    rows = [{"method": m, "ratio": r, "params": 100, "params_ratio": 1 - r, "macs": 10, "macs_ratio": 1 - 0.8 * r,
             "mAP": 50 - 40 * r - d, "mAP_finetuned": 50 - 10 * r - d, "finetune_s": 0.1}
            for m, d in (("l1", 0.0), ("fpgm", 2.0)) for r in (0.25, 0.5, 0.75)]
    return TradeoffGrid(unpruned={"mAP": 50.0, "params": 200, "macs": 20}, rows=rows)


def test_lookup_at_the_slider_extremes_and_between_cells():
    g = _toy_grid()
    assert g.criteria == ["l1", "fpgm"] and g.ratios == [0.25, 0.5, 0.75]
    start = g.lookup("l1", 0.0)                       # the slider's left end: the unpruned model
    assert start["mAP"] == start["mAP_finetuned"] == 50.0 and start["macs_ratio"] == 1.0
    top = g.lookup("fpgm", 0.75)                      # the grid's highest ratio
    assert top["mAP"] == pytest.approx(18.0) and top["mAP_finetuned"] == pytest.approx(40.5)
    assert g.lookup("l1", 0.78)["ratio"] == 0.75      # within 0.05
    assert g.lookup("l1", 0.9) is None                # the slider's max (0.9): no cell that close
    assert g.lookup("l1", 0.375) is None and g.lookup("taylor", 0.5) is None
    assert [p["ratio"] for p in g.curve("l1")] == [0.0, 0.25, 0.5, 0.75]
    with pytest.raises(KeyError, match="no criterion"):
        g.curve("taylor")
    again = TradeoffGrid.from_dict(g.to_dict())
    assert again.rows == g.rows and again.unpruned == g.unpruned
    with pytest.raises(ValueError, match="rows"):
        TradeoffGrid.from_dict({"unpruned": {}})


def test_recovery_lines_read_only_the_fine_tuned_rows():
    lines = recovery_lines(_toy_grid().frame(), 50.0)
    assert len(lines) == 6 and lines[0].startswith("l1 at ratio 0.25: fine-tuning recovered most")
    assert "(75 % of the loss won back)" in lines[0]
    assert recovery_lines([{"method": "l1", "ratio": 0.5, "mAP": 30.0, "mAP_finetuned": float("nan")}], 50.0) == []


def test_slider_numbers_and_figures_from_the_grid():
    m = _model(50)
    scores = score_channels(m, "l1")
    g = _toy_grid()
    at0 = pruning_numbers(m, "l1", 0.0, SIZE, scores=scores, latency=False, grid=g)
    assert at0["mAP"] == 50.0 and at0["macs_ratio"] == 1.0 and len(at0["curve"]) == 4
    top = pruning_numbers(m, "l1", 0.9, SIZE, scores=scores, latency=False, grid=g)   # the slider's maximum
    assert "mAP" not in top and top["curve"][-1]["ratio"] == 0.75 and top["macs_ratio"] < 0.35
    mid = pruning_numbers(m, "l1", 0.5, SIZE, scores=scores, latency=False, grid=g)
    assert mid["mAP_cut"] == 30.0 and mid["mAP"] == 45.0
    fig = plot_pruning(mid)
    assert len(fig.axes) == 3 and fig.axes[1].get_title() == "mAP after fine-tuning: 45.0"
    assert fig.axes[2].get_title() == "l1 at 0.5: mAP 30.0 cut → 45.0 fine-tuned"
    assert len(plot_pruning(pruning_numbers(m, "l2", 0.5, SIZE, scores=score_channels(m, "l2"), latency=False,
                                            grid=g)).axes) == 2          # a criterion the grid lacks: cost only
    small = plot_tradeoff_grid(g)
    assert len(small.axes) == 2 and [a.get_title() for a in small.axes] == ["l1", "fpgm"]
    assert len(small.axes[0].lines) == 3          # after the cut, after fine-tuning, the unpruned star
    with pytest.raises(ValueError, match="no rows"):
        plot_tradeoff_grid(TradeoffGrid(unpruned={"mAP": 1.0}, rows=[]))


def test_grid_measures_every_cell_and_is_cached(tmp_path, monkeypatch):
    monkeypatch.setenv("REIDBOOK_CACHE", str(tmp_path))
    m = _model(50)
    scores = {c: score_channels(m, c) for c in ("l1", "fpgm")}
    calls = {"eval": 0, "ft": 0}

    def evaluate(model):     # a stand-in metric that falls with the model's size: mAP ∝ parameters
        calls["eval"] += 1
        return {"mAP": sum(p.numel() for p in model.parameters()) / 1e6}

    def finetune(model):
        calls["ft"] += 1
        with torch.no_grad():
            model.classifier.weight.mul_(2.0)   # changes the parameter values, not their count

    args = dict(scores=scores, evaluate=evaluate, finetune=finetune, input_size=SIZE, key={"evalset": "toy"})
    g = tradeoff_grid(m, ("l1", "fpgm"), (0.75, 0.25), **args)
    assert not g.loaded and calls == {"eval": 1 + 2 * 4, "ft": 4}
    assert [(r["method"], r["ratio"]) for r in g.rows] == [("l1", 0.25), ("l1", 0.75), ("fpgm", 0.25),
                                                         ("fpgm", 0.75)]
    for r in g.rows:
        assert r["macs_ratio"] < 1 and r["mAP"] < g.unpruned["mAP"] and r["finetune_s"] >= 0
    assert g.rows[1]["macs_ratio"] < g.rows[0]["macs_ratio"]
    assert sum(p.numel() for p in m.parameters()) / 1e4 == pytest.approx(g.unpruned["mAP"])  # input untouched
    again = tradeoff_grid(m, ("l1", "fpgm"), (0.25, 0.75), **args)
    assert again.loaded and again.rows == g.rows and calls["ft"] == 4      # loaded: nothing re-measured
    tradeoff_grid(m, ("l1",), (0.25, 0.75), **{**args, "scores": {"l1": scores["l1"]}})
    assert calls["ft"] == 6                                                 # another configuration: measured
    tradeoff_grid(m, ("l1", "fpgm"), (0.25, 0.75), **{**args, "key": {"evalset": "other"}})
    assert calls["ft"] == 10


def test_grid_refuses_what_it_cannot_measure():
    m = _model(18)
    s = {"l1": score_channels(m, "l1")}
    kw = dict(scores=s, evaluate=lambda x: {"mAP": 0.5}, finetune=lambda x: None, input_size=SIZE)
    with pytest.raises(ValueError, match="reuses the chapter's scores"):
        tradeoff_grid(m, ("l1", "fpgm"), (0.5,), **kw)
    with pytest.raises(ValueError, match="progressive_soft_prune"):
        tradeoff_grid(m, ("psfp",), (0.5,), **kw)
    for bad in ((), (0.0, 0.5), (1.0,)):
        with pytest.raises(ValueError, match="ratios"):
            tradeoff_grid(m, ("l1",), bad, **kw)
    with pytest.raises(ValueError, match="at least one criterion"):
        tradeoff_grid(m, (), (0.5,), **kw)


def test_fingerprints_follow_weights_and_scores():
    a, b = _model(18), _model(18)
    assert model_fingerprint(a) == model_fingerprint(b)
    with torch.no_grad():
        b.classifier.weight[0, 0] += 1e-3
    assert model_fingerprint(a) != model_fingerprint(b)
    s = score_channels(a, "l1")
    tiny = {k: v * (1 + 1e-9) for k, v in s.items()}   # the last bits of a float sum
    assert scores_fingerprint(s) == scores_fingerprint(tiny)
    assert scores_fingerprint(s) != scores_fingerprint({k: -v for k, v in s.items()})


def test_slider_carries_the_grid_as_its_static_form():
    pytest.importorskip("ipywidgets")
    from reidbook.widgets import pruning_slider
    from reidbook.widgets._common import WithStatic

    m = _model(50)
    w = pruning_slider(m, criteria=("l1", "fpgm"), input_size=SIZE, latency=False, grid=_toy_grid(),
                       scores={"l1": score_channels(m, "l1")})
    assert isinstance(w, WithStatic) and "trade-off grid" in w.html and w.html.count("<img") == 1
    bundle = w._repr_mimebundle_()
    assert "application/vnd.jupyter.widget-view+json" in bundle and bundle["text/html"] == w.html
    slider = w.widget.children[0].children[0]
    assert slider.min == 0.0 and slider.max == 0.9
    plain = pruning_slider(m, criteria="l1", input_size=SIZE, latency=False)
    assert "ratio 0.50" in plain.html and "<img" in plain.html   # no grid: the figure at the start


def test_spread_and_fpgm_sentences_follow_the_numbers():
    import pandas as pd

    from reidbook.prune.measure import describe_spread
    from reidbook.viz.pruning import describe_fpgm

    lines = describe_spread(_toy_grid().frame())
    assert len(lines) == 3 and lines[0].startswith("at ratio 0.25: after the cut the criteria span 2.0 mAP points "
                                                   "(l1 best, fpgm worst); after fine-tuning 2.0 points")
    assert lines[0].endswith("about as far apart")
    closer = [{"method": "l1", "ratio": 0.5, "mAP": 30.0, "mAP_finetuned": 44.0},
              {"method": "taylor", "ratio": 0.5, "mAP": 10.0, "mAP_finetuned": 43.0}]
    assert describe_spread(closer)[0].endswith("1.0 points (l1 best, taylor worst) — closer together")
    assert describe_spread(closer[:1]) == []           # one criterion: nothing to compare
    names = ["l1", "l2", "fpgm"]
    m = pd.DataFrame([[1, .9, .8], [.9, 1, .75], [.8, .75, 1]], index=names, columns=names)
    assert describe_fpgm(m) == "FPGM agrees with L1 at ρ = 0.80 and L2 at ρ = 0.75: it ranks channels much like the " \
                               "norms: on this model the filters far from the others are mostly the large ones."
    m.loc["fpgm", ["l1", "l2"]] = [0.1, 0.2]
    assert "largely independently" in describe_fpgm(m)
    with pytest.raises(KeyError, match="no 'fpgm'"):
        describe_fpgm(m.drop(index="fpgm"))
