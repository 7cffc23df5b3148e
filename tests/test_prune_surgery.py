"""Surgery makes models physically smaller, keeps untouched channels exact, and saves/loads safely."""
import copy

import pytest
import torch
from torch import nn

from reidbook.models import backbones as B
from reidbook.profile import count_macs, count_params
from reidbook.prune import (
    MacModel,
    apply_selection,
    find_units,
    harden,
    load_pruned,
    prune,
    prune_bottleneck,
    save_pruned,
    score_channels,
    select_channels,
    soft_prune_units,
    unit_widths,
)

SIZE = (64, 32)


class TinyReID(nn.Module):
    """A re-ID model around a backbone (as the baseline is): backbone → GAP → BN → classifier."""

    def __init__(self, backbone, num_classes=5):
        super().__init__()
        self.backbone = backbone
        self.bn = nn.BatchNorm1d(backbone.out_channels)
        self.classifier = nn.Linear(backbone.out_channels, num_classes, bias=False)

    def forward(self, x):
        f = self.bn(self.backbone(x).mean(dim=(2, 3)))
        return {"logits": [self.classifier(f)], "triplet": [f]} if self.training else f


def _model(depth=50):
    torch.manual_seed(0)
    m = TinyReID(B.build_resnet(depth, width=1 / 8))
    with torch.no_grad():  # non-trivial BN statistics so that slicing mistakes would show
        for mod in m.modules():
            if isinstance(mod, nn.BatchNorm2d):
                mod.running_mean.uniform_(-0.1, 0.1)
                mod.running_var.uniform_(0.5, 1.5)
                mod.weight.uniform_(0.5, 1.5)
                mod.bias.uniform_(-0.1, 0.1)
    return m.eval()


def test_units_of_the_default_scope():
    m = _model(50)
    units = find_units(m)
    assert len(units) == 2 * 16  # conv1 and conv2 of the 16 bottlenecks
    assert units[0].name == "backbone.layer1.0.conv1" and units[0].consumers == ["backbone.layer1.0.conv2"]
    assert len(find_units(_model(18))) == 8  # BasicBlock: conv1 only
    res = find_units(m, "residual")
    assert [u.name for u in res] == ["residual:backbone.conv1", "residual:backbone.layer1",
                                     "residual:backbone.layer2", "residual:backbone.layer3"]
    assert len(res[1].producers) == 4  # downsample + three conv3 write layer1's stream
    with pytest.raises(ValueError, match="unknown pruning scope"):
        find_units(m, "everything")


@pytest.mark.parametrize("depth,scope", [(50, "bottleneck"), (50, "bottleneck+residual"), (18, "residual")])
def test_torch_pruning_engine_equals_hand_surgery(depth, scope):
    m = _model(depth)
    a, ra = prune(m, "l1", ratio=0.4, input_size=SIZE, scope=scope, engine="torch_pruning")
    b, rb = prune(m, "l1", ratio=0.4, input_size=SIZE, scope=scope, engine="hand")
    sa, sb = a.state_dict(), b.state_dict()
    assert sa.keys() == sb.keys() and all(torch.equal(sa[k], sb[k]) for k in sa)
    assert ra.widths_after == rb.widths_after
    assert a.bn.num_features == m.bn.num_features  # the embedding keeps its width
    x = torch.randn(2, 3, *SIZE)
    assert torch.equal(a(x), b(x))


def test_hand_bottleneck_surgery_matches_engine_on_one_block():
    m = _model(50)
    units = [u for u in find_units(m) if u.name.startswith("backbone.layer2.1.")]
    keep = {units[0].name: [0, 2, 5, 7], units[1].name: [1, 3, 4, 6, 7]}
    engine = apply_selection(copy.deepcopy(m), units, keep, input_size=SIZE)
    block = prune_bottleneck(m.backbone.layer2[1], keep[units[0].name], keep[units[1].name])
    se, sb = engine.backbone.layer2[1].state_dict(), block.state_dict()
    assert all(torch.equal(se[k], sb[k]) for k in se)
    assert block.conv2.weight.shape == (5, 4, 3, 3) and block.conv3.in_channels == 5


def test_untouched_channels_are_identical_before_fine_tuning():
    m = _model(50)
    units = find_units(m)
    u1, u2 = units[2], units[3]  # layer1.1.conv1 and layer1.1.conv2
    keep = {u1.name: [0, 3, 4, 6]}
    small = apply_selection(copy.deepcopy(m), units, keep, input_size=SIZE)
    x = torch.randn(3, 3, *SIZE)
    got = {}

    def grab(tag):
        return lambda mod, i, o: got.__setitem__(tag, o)

    h = [m.backbone.layer1[1].bn1.register_forward_hook(grab("orig")),
         small.backbone.layer1[1].bn1.register_forward_hook(grab("small"))]
    with torch.no_grad():
        m(x), small(x)
    for hh in h:
        hh.remove()
    assert torch.equal(got["orig"][:, keep[u1.name]], got["small"])
    # pruning conv2's outputs leaves conv2's kept outputs exact too (its input is unchanged)
    keep2 = {u2.name: [1, 2, 7]}
    small2 = apply_selection(copy.deepcopy(m), units, keep2, input_size=SIZE)
    h = [m.backbone.layer1[1].bn2.register_forward_hook(grab("orig")),
         small2.backbone.layer1[1].bn2.register_forward_hook(grab("small"))]
    with torch.no_grad():
        m(x), small2(x)
    for hh in h:
        hh.remove()
    assert torch.equal(got["orig"][:, keep2[u2.name]], got["small"])


def test_soft_pruned_channels_harden_to_the_same_function():
    m = _model(50)
    units = find_units(m)
    scores = score_channels(m, "l2", units)
    keep = select_channels(units, scores, ratio=0.5)
    drop = {u.name: [i for i in range(u.channels) if i not in set(keep[u.name])] for u in units}
    soft_prune_units(m, units, drop)
    x = torch.randn(2, 3, *SIZE)
    with torch.no_grad():
        before = m(x)
    hard = harden(copy.deepcopy(m), input_size=SIZE)
    assert unit_widths(hard, units) == {u.name: len(keep[u.name]) for u in units}
    with torch.no_grad():
        assert torch.allclose(hard(x), before, atol=1e-5)
    assert count_params(hard) < count_params(m)


def test_mac_model_is_exact_and_target_is_reached():
    m = _model(50)
    for scope in ("bottleneck", "bottleneck+residual"):
        small, rep = prune(m, "fpgm", target_macs=0.5, input_size=SIZE, scope=scope)
        assert rep.macs_after == count_macs(small, SIZE)
        assert 0.45 <= rep.macs_ratio <= 0.5
    units = find_units(m)
    mm = MacModel(m, units, SIZE)
    assert mm.macs({}) == count_macs(m, SIZE)
    batches = [(torch.randn(4, 3, *SIZE), torch.tensor([0, 1, 2, 3]))]  # default loss: CE on the logits
    taylor, rep = prune(m, "taylor", target_macs=0.6, input_size=SIZE, data=batches)
    assert rep.macs_ratio <= 0.6 and len(set(rep.table()["kept"].round(3))) > 1  # uneven: ranked across layers


def test_ratio_zero_is_identity_and_max_ratio_keeps_one_channel():
    m = _model(50)
    same, rep = prune(m, "l1", ratio=0.0, input_size=SIZE)
    assert rep.params_after == rep.params_before
    x = torch.randn(2, 3, *SIZE)
    assert torch.equal(same(x), m(x))
    tiny, rep = prune(m, "l1", ratio=0.99, input_size=SIZE)
    assert set(rep.widths_after.values()) == {1}
    assert tiny(x).shape == m(x).shape


def test_pruned_model_saves_and_loads_weights_only(tmp_path):
    m = _model(50)
    small, rep = prune(m, "l1", ratio=0.5, input_size=SIZE, scope="bottleneck+residual")
    path = save_pruned(small, tmp_path / "pruned.pt", extra={"method": "l1", "ratio": 0.5})
    payload = torch.load(path, weights_only=True)  # plain types and tensors only
    assert payload["format"] == "reidbook.pruned/1"
    again = load_pruned(path, _model(50))
    x = torch.randn(2, 3, *SIZE)
    assert torch.equal(again.eval()(x), small(x))
    assert again.pruned_extra["method"] == "l1"
    with pytest.raises(ValueError, match="do not fit|does not have"):
        load_pruned(path, _model(18))
    (tmp_path / "junk.pt").write_bytes(b"not a checkpoint")
    with pytest.raises(ValueError, match=r"junk\.pt cannot be read as a reidbook pruned model.*save it again"):
        load_pruned(tmp_path / "junk.pt", _model(50))
    (tmp_path / "cut.pt").write_bytes(path.read_bytes()[:100])  # a truncated file
    with pytest.raises(ValueError, match="damaged"):
        load_pruned(tmp_path / "cut.pt", _model(50))


def test_pruned_model_trains_with_its_head():
    m = _model(50).train()
    small, _ = prune(m, "l1", ratio=0.5, input_size=SIZE)
    small.train()
    out = small(torch.randn(4, 3, *SIZE))
    loss = nn.functional.cross_entropy(out["logits"][0], torch.tensor([0, 1, 2, 3]))
    loss.backward()
    assert all(p.grad is not None for p in small.parameters() if p.requires_grad)


def test_pruning_view_at_slider_extremes_and_agreement():
    import matplotlib

    matplotlib.use("Agg")
    from reidbook.prune import score_channels
    from reidbook.prune.measure import pruning_numbers
    from reidbook.viz.pruning import plot_agreement, plot_pruning, rank_agreement, score_distributions

    m = _model(50)
    scores = score_channels(m, "l1")
    nums = pruning_numbers(m, "l1", 0.0, SIZE, scores=scores, latency=True, repeats=1, metrics={("l1", 0.0): 55.0})
    assert nums["params_ratio"] == 1.0 and nums["macs_ratio"] == 1.0 and nums["mAP"] == 55.0
    assert nums["latency_ms"] > 0 and plot_pruning(nums).axes[1].get_title() == "mAP after fine-tuning: 55.0"
    nums = pruning_numbers(m, "l1", 0.9, SIZE, scores=scores, latency=False)
    assert nums["macs_ratio"] < 0.35 and min(nums["widths"].values()) >= 1 and "latency_ms" not in nums
    assert len(plot_pruning(nums).axes[1].patches) == 2  # params and MACs bars, no latency bar
    for bad, match in ((dict(input_size=(64,)), "input_size"), (dict(input_size=(0, 32)), "input_size"),
                       (dict(batch_size=0), "batch_size"), (dict(metrics={"l1": 3.0}), r"\(criterion, ratio\)"),
                       (dict(ratio=1.0), r"\[0, 1\)"), (dict(criterion="psfp"), "progressive_soft_prune")):
        args = {"model": m, "criterion": "l1", "ratio": 0.5, "input_size": SIZE, "scores": scores, "latency": False,
                **bad}
        with pytest.raises(ValueError, match=match):
            pruning_numbers(**args)
    rev = {k: -v for k, v in scores.items()}
    agree = rank_agreement({"l1": scores, "same": scores, "reversed": rev})
    assert agree.loc["l1", "same"] == pytest.approx(1.0) and agree.loc["l1", "reversed"] == pytest.approx(-1.0)
    assert plot_agreement(agree) is not None and score_distributions(scores) is not None


def test_pruned_baseline_evaluates_like_any_model_after_save_load(smoke_dataset, tmp_path):
    from reidbook.eval import evaluate_model
    from reidbook.models import build_model
    from reidbook.presets import get_preset
    from reidbook.prune import finetune
    from reidbook.prune.activations import calibration_batches

    preset = get_preset("baseline", "smoke")
    size = (preset.height, preset.width)
    torch.manual_seed(0)
    model = build_model("baseline", smoke_dataset.num_train_pids, profile="smoke").eval()
    calib = calibration_batches(smoke_dataset.train, *size, n_images=16, seed=0)
    assert all(torch.equal(a[0], b[0]) for a, b in zip(calib, calibration_batches(smoke_dataset.train, *size,
                                                                                  n_images=16, seed=0)))
    small, rep = prune(model, "taylor", target_macs=0.7, data=calib, input_size=size)  # CE on the logits
    assert rep.macs_ratio <= 0.7
    path = save_pruned(small, tmp_path / "baseline_taylor.pt")
    again = load_pruned(path, build_model("baseline", smoke_dataset.num_train_pids, profile="smoke")).eval()
    a = evaluate_model(small, smoke_dataset, *size, device="cpu")
    b = evaluate_model(again, smoke_dataset, *size, device="cpu")
    assert a["mAP"] == pytest.approx(b["mAP"]) and 0.0 <= a["mAP"] <= 1.0
    hist = finetune(small, smoke_dataset, preset, epochs=1, device="cpu", max_iters_per_epoch=1)
    assert len(hist.records) == 1 and not small.training


def test_pruning_slider_refuses_ranges_it_cannot_draw():
    """`pruning_slider(max_ratio=1.0)` built a slider whose top value the pruning refuses; an empty criteria
    list gave an IndexError. Both are refused up front, with the valid range."""
    from reidbook.widgets import pruning_slider

    m = _model(50)
    with pytest.raises(ValueError, match=r"max_ratio must be in \(0, 1\)"):
        pruning_slider(m, criteria=("l1",), input_size=SIZE, max_ratio=1.0, latency=False)
    with pytest.raises(ValueError, match="at least one criterion"):
        pruning_slider(m, criteria=(), input_size=SIZE, latency=False)
    with pytest.raises(ValueError, match="unknown pruning method"):
        pruning_slider(m, criteria=("l7",), input_size=SIZE, latency=False)
    with pytest.raises(ValueError, match="progressive_soft_prune"):
        pruning_slider(m, criteria=("psfp",), input_size=SIZE, latency=False)
    with pytest.raises(ValueError, match="step must be in"):
        pruning_slider(m, criteria=("l1",), input_size=SIZE, max_ratio=0.5, step=0.6, latency=False)
    box = pruning_slider(m, criteria="l1", input_size=SIZE, max_ratio=0.3, latency=False).widget
    slider = box.children[0].children[0]
    assert slider.max == 0.3 and slider.value == 0.3  # the default 0.5 is clipped into the range


def test_chapter_05_helpers_generate_what_they_measure():
    import matplotlib

    matplotlib.use("Agg")
    import types

    import pandas as pd

    from reidbook.prune import count_steps, identical_by_construction, prune_iterative
    from reidbook.prune.measure import describe_recovery, evaluation_subset, recovery
    from reidbook.viz import pruning as vp

    assert recovery(40.0, 45.0, 50.0) == pytest.approx(0.5)
    assert describe_recovery(40.0, 49.0, 50.0).startswith("fine-tuning recovered most of what pruning cost")
    assert describe_recovery(40.0, 42.0, 50.0).startswith("fine-tuning recovered part of")
    assert "(20 % of the loss won back)" in describe_recovery(40.0, 42.0, 50.0)
    assert describe_recovery(40.0, 39.0, 50.0).startswith("fine-tuning recovered none (it got worse)")
    assert describe_recovery(4.8, 4.6, 4.6).startswith("pruning cost nothing to recover here: mAP 4.8 after the cut")
    ds = types.SimpleNamespace(query=[("a", 3, 0), ("b", 1, 0), ("c", 2, 1)],
                               gallery=[("d", 1, 1), ("e", 3, 1), ("f", 9, 0)])
    sub = evaluation_subset(ds, 2)
    assert [q[1] for q in sub.query] == [1, 2] and [g[1] for g in sub.gallery] == [1]
    assert len(evaluation_subset(ds, None).gallery) == 3
    with pytest.raises(ValueError, match="n_ids"):
        evaluation_subset(ds, 0)
    m = _model(50)
    scores = {k: score_channels(m, k) for k in ("l1", "l2", "fpgm", "psfp", "auto_balanced")}
    assert identical_by_construction(scores) == {"l1": ["auto_balanced"], "l2": ["psfp"]}
    agree = vp.rank_agreement({k: scores[k] for k in ("l1", "l2", "fpgm")})
    known = pd.DataFrame([[1.0, 0.9, 0.1], [0.9, 1.0, 0.3], [0.1, 0.3, 1.0]], index=["l1", "l2", "taylor"],
                         columns=["l1", "l2", "taylor"])
    assert vp.agreement_findings(known, top=1) == [
        "most alike: l1 ~ l2 (ρ = 0.90)", "least alike: l1 ~ taylor (ρ = 0.10)",
        "mean ρ within the weight criteria: 0.90 (1 pair)", "mean ρ between weight and data criteria: 0.20 (2 pairs)"]
    fig = vp.plot_agreement(agree, aliases={"l1": ["auto_balanced"]})
    assert fig.axes[0].get_yticklabels()[0].get_text() == "l1 (= auto_balanced)"
    assert len(vp.score_distributions_grid(scores, ["l1", "fpgm"]).axes) == 2
    df = pd.DataFrame({"method": ["l1", "l1"], "ratio": [0.3, 0.6], "MACs_ratio": [0.7, 0.4], "mAP": [40.0, 30.0],
                       "mAP_finetuned": [float("nan"), 35.0]})
    assert len(vp.plot_one_shot(df, 45.0).axes[0].lines) == 3  # circles, the fine-tuned square, the unpruned line
    _, rep = prune_iterative(m, "l1", 0.6, step=0.1, input_size=SIZE)
    assert count_steps(m, 0.6, 0.1, SIZE) == len(rep.iterations)  # uniform channels: the plan is exact
