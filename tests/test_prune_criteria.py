"""Each pruning criterion on hand-made weights/activations whose answer is known (paper 003, §3.2)."""
import math

import pytest
import torch
from torch import nn

from reidbook.models import backbones as B
from reidbook.prune import METHODS, SCORERS, TRAINING_PROCEDURES, criteria as C, prune, register_scorer, score_channels
from reidbook.prune.activations import collect_pooled, collect_taylor
from reidbook.prune.criteria import data as D


def test_l1_l2_known_values_and_zero_filter_first():
    w = torch.zeros(3, 2, 1, 1)
    w[0] = torch.tensor([[[1.0]], [[-2.0]]])
    w[2] = torch.tensor([[[3.0]], [[4.0]]])
    assert C.l1_norm(w).tolist() == [3.0, 0.0, 7.0]
    assert C.l2_norm(w).tolist() == pytest.approx([math.sqrt(5), 0.0, 5.0])
    assert int(torch.argmin(C.l1_norm(w))) == 1  # the zero filter is pruned first


def test_simc_groups_duplicate_filters():
    torch.manual_seed(0)
    base = torch.randn(4, 8, 3, 3)
    w = torch.cat([base, base[1:2] * 2.0, base[1:2] * 0.5])  # filters 4, 5 duplicate filter 1 (cos = 1)
    labels = C.simc_clusters(w, tau=0.95)
    assert labels[1] == labels[4] == labels[5]
    assert len(set(labels.tolist())) == 4  # the four random filters are far apart
    s = C.simc_scores(w, tau=0.95, seed=0)
    assert int((s < 1).sum()) == 2  # exactly two redundant channels at this τ
    cluster = [1, 4, 5]
    assert sum(float(s[i]) >= 1 for i in cluster) == 1  # one representative kept per cluster
    assert torch.equal(s, C.simc_scores(w, tau=0.95, seed=0))  # seeded representative
    with pytest.raises(ValueError, match="tau"):
        C.simc_clusters(w, tau=2.0)


def test_fpgm_geometric_median_on_a_line():
    # 1-D filters at 0, 1, 2, 10: Σ distances = 13, 11, 11, 27 → the two middle ones are the median.
    w = torch.tensor([0.0, 1.0, 2.0, 10.0]).view(4, 1, 1, 1)
    assert C.fpgm_scores(w).tolist() == [13.0, 11.0, 11.0, 27.0]
    # A duplicated filter among spread ones is closest to the others in total → pruned before the outlier.
    w2 = torch.tensor([[0.0, 0.0], [1.0, 0.0], [0.0, 1.0], [0.0, 1.0], [9.0, 9.0]]).view(5, 2, 1, 1)
    s = C.fpgm_scores(w2)
    assert int(torch.argmax(s)) == 4


def test_auto_balanced_split_lambda_and_balanced_gradients():
    conv = nn.Conv2d(2, 6, 1, bias=False)
    with torch.no_grad():
        conv.weight.copy_(torch.arange(1, 7, dtype=torch.float32).view(6, 1, 1, 1).repeat(1, 2, 1, 1) * 0.1)
    mask, theta = C.auto_balanced_split(conv.weight, n_keep=4)
    assert mask.tolist() == [True, True, False, False, False, False]
    lam = C.auto_balanced_lambda(C.l1_norm(conv.weight), theta, mask)
    assert (lam[mask] >= 1).all() and (lam[~mask] <= -1).all()
    reg = C.AutoBalancedRegularizer({"c": conv}, {"c": 4}, alpha=0.1)
    pen = reg.penalty()
    assert abs(float(pen.detach())) < 1e-6  # Eq. (10): τ balances the two terms in value …
    pen.backward()
    g = (conv.weight.grad * conv.weight).sum(dim=(1, 2, 3))
    assert (g[mask] > 0).all() and (g[~mask] < 0).all()  # … but weak filters shrink, strong ones grow


def test_psfp_schedule_hits_its_three_conditions():
    goal, n, d = 0.4, 40, 0.125
    assert C.psfp_rate(0, goal, n, d) == pytest.approx(0.0, abs=1e-12)
    assert C.psfp_rate(n * d, goal, n, d) == pytest.approx(goal / 4, rel=1e-6)
    assert C.psfp_rate(n, goal, n, d) == pytest.approx(goal, rel=1e-6)
    rates = [C.psfp_rate(e, goal, n, d) for e in range(n + 1)]
    assert all(b >= a for a, b in zip(rates, rates[1:]))
    with pytest.raises(ValueError, match="decay"):
        C.psfp_rate(1, goal, n, 0.3)
    with pytest.raises(ValueError, match="goal"):
        C.psfp_rate(1, 1.2, n, d)


def test_soft_prune_zeroes_conv_and_bn():
    conv, bn = nn.Conv2d(3, 4, 3), nn.BatchNorm2d(4)
    with torch.no_grad():
        bn.bias.fill_(0.5)
    C.soft_prune_(conv, bn, [1, 3])
    assert conv.weight[[1, 3]].abs().sum() == 0 and conv.bias[[1, 3]].abs().sum() == 0
    assert bn.weight[[1, 3]].abs().sum() == 0 and bn.bias[[1, 3]].abs().sum() == 0
    assert conv.weight[0].abs().sum() > 0 and float(bn.bias[0].detach()) == 0.5


def test_play_and_prune_afp_and_controller():
    conv = nn.Conv2d(1, 10, 1, bias=False)
    with torch.no_grad():
        conv.weight.copy_(torch.arange(10, dtype=torch.float32).view(10, 1, 1, 1))
    u = C.afp_unimportant(conv.weight, 0.3)
    assert u.nonzero().flatten().tolist() == [0, 1, 2]
    reg = C.AFPRegularizer({"c": conv}, alpha=0.3, lambda_a=0.5)
    assert float(reg.penalty()) == pytest.approx(0.5 * (0 + 1 + 2))
    th = C.afp_initial_threshold(C.l1_norm(conv.weight), 0.3, bins=9)
    assert 2.0 <= th <= 3.0
    prc = C.PruningRateController(xi=80.0, eps=2.0, delta_w=0.5, lam=1e-3, threshold=th)
    w_a, lam_a = prc.update(79.0)  # slack = 79 − 78 = 1
    assert w_a == pytest.approx(0.5 * 1.0 * th) and lam_a == pytest.approx(1e-3)
    assert prc.update(77.0) == (0.0, 0.0)  # below tolerance: stop pruning, no penalty


def test_thinet_removes_the_channel_that_contributes_nothing_and_rescales():
    torch.manual_seed(0)
    x = torch.randn(200, 4, dtype=torch.float64)
    x[:, 2] = 0.0  # channel 2 never contributes to the next layer
    x[:, 3] = x[:, 1]  # channel 3 contributes exactly what channel 1 does
    order = D.thinet_greedy(x, 2)
    assert order[0] == 2
    scores = D.thinet_scores(x)
    assert int(torch.argmin(scores)) == 2
    # keep 0 and 1 (drop 2 and 3): ŷ = x0 + 2·x1 → least-squares scales (1, 2)
    assert D.thinet_scales(x, [0, 1]).tolist() == pytest.approx([1.0, 2.0], abs=1e-4)


def test_channel_contributions_sum_to_the_conv_output():
    torch.manual_seed(0)
    conv = nn.Conv2d(3, 5, 3, padding=1, bias=False)
    patches = torch.randn(7, 3, 9)
    y = patches.reshape(7, -1) @ conv.weight.detach().reshape(5, -1).T
    z = D.channel_contributions(patches, conv.weight)  # every (position, output) row
    assert torch.allclose(z.sum(dim=1).view(7, 5), y.double(), atol=1e-5)


def test_channel_pruning_lasso_path_and_least_squares():
    torch.manual_seed(0)
    z = torch.randn(300, 5, dtype=torch.float64)
    z[:, 4] = 0.0  # a channel that contributes nothing is never selected
    z[:, 3] *= 0.01  # a tiny contribution leaves the support first among the live channels
    s = D.channel_pruning_scores(z)
    assert float(s[4]) == 0.0
    assert int(torch.argsort(s)[1]) == 3
    # LASSO at λ = 0 is least squares: y = Σ z_c → β = 1 on the live channels
    g, r = z.T @ z / 300, z.T @ z.sum(1) / 300
    beta = D.lasso_fista(g[:4, :4], r[:4], [0.0], iters=20000, tol=1e-12)[:, 0]
    assert beta.tolist() == pytest.approx([1.0] * 4, abs=1e-3)
    # least_squares_weights recovers a linear layer exactly
    w = torch.randn(3, 2 * 4)
    p = torch.randn(100, 2, 4)
    w_hat = D.least_squares_weights(p, p.reshape(100, -1) @ w.T, ridge=0.0)
    assert torch.allclose(w_hat.float(), w, atol=1e-4)


def test_entropy_dead_channel_is_zero_and_uniform_is_log_bins():
    pooled = torch.zeros(64, 3)
    pooled[:, 1] = torch.arange(64, dtype=torch.float32)  # spread evenly over 8 bins
    pooled[:, 2] = torch.tensor([0.0, 1.0]).repeat(32)  # two values
    e = D.entropy_scores(pooled, bins=8)
    assert e.tolist() == pytest.approx([0.0, math.log(8), math.log(2)])


def _tiny_net():
    torch.manual_seed(0)
    return nn.Sequential(nn.Conv2d(3, 4, 3, padding=1), nn.BatchNorm2d(4), nn.ReLU(), nn.Conv2d(4, 2, 1),
                         nn.AdaptiveAvgPool2d(1), nn.Flatten())


def test_taylor_channel_without_gradient_scores_zero_and_layer_norm_is_one():
    net = _tiny_net()
    with torch.no_grad():
        net[3].weight[:, 2] = 0.0  # channel 2 feeds nothing → ∂C/∂H = 0
    x = torch.randn(8, 3, 8, 8)
    raw = collect_taylor(net, {"bn": net[1]}, x, loss_fn=lambda m, im, p: m(im).pow(2).sum())["bn"]
    assert float(raw[2]) == 0.0 and (raw[[0, 1, 3]] > 0).all()
    assert float(D.taylor_scores(raw).norm()) == pytest.approx(1.0)
    assert net.training  # mode restored (Sequential defaults to train)


def test_pooled_activations_dead_channel_entropy_zero():
    net = _tiny_net()
    with torch.no_grad():
        net[1].weight[1] = 0.0
        net[1].bias[1] = -1.0  # ReLU(−1) = 0 everywhere: a dead channel
    pooled = collect_pooled(net, {"bn": net[1]}, torch.randn(16, 3, 8, 8))["bn"]
    e = D.entropy_scores(pooled)
    assert float(e[1]) == 0.0 and (e[[0, 2, 3]] > 0).all()


def test_nisp_propagation_known_value_and_dead_path():
    conv = nn.Conv2d(2, 3, 1, bias=False)
    with torch.no_grad():
        conv.weight.copy_(torch.tensor([[1.0, -2.0], [0.0, 1.0], [3.0, 0.0]]).view(3, 2, 1, 1))
    s = D.nisp_propagate(conv, torch.tensor([1.0, 2.0, 3.0]))
    assert s.tolist() == [1 + 9, 2 + 2]  # Σ_o |W_oc| s_o
    net = B.resnet50(width=1 / 8).eval()
    with torch.no_grad():
        net.layer4[2].conv2.weight[:, 3] = 0.0  # channel 3 of layer4.2.conv1 feeds nothing
    scores = D.nisp_resnet(net, D.nisp_final_scores(None, dim=net.out_channels))
    assert float(scores["layer4.2.conv1"][3]) == 0.0
    assert len(scores["layer1.0.conv2"]) == net.layer1[0].conv2.out_channels


@pytest.mark.parametrize("method", ["thinet", "channel_pruning", "entropy", "taylor", "nisp", "simc"])
def test_data_scores_deterministic_given_seed(method):
    torch.manual_seed(1)
    net = B.resnet18(width=1 / 8).eval()
    x = torch.randn(6, 3, 32, 16)
    kw = {"loss_fn": lambda m, im, p: m(im).pow(2).mean()} if method == "taylor" else {}
    a = score_channels(net, method, data=x, seed=3, **kw)
    b = score_channels(net, method, data=x, seed=3, **kw)
    assert a.keys() == b.keys() and all(torch.equal(a[k], b[k]) for k in a)
    assert all(len(v) == net.get_submodule(k).out_channels for k, v in a.items())


def test_every_method_prunes_and_bad_inputs_raise():
    net = B.resnet18(width=1 / 8).eval()
    x = torch.randn(4, 3, 32, 16)
    assert len(METHODS) == 12  # the survey's eleven + plain L2
    for method in METHODS:
        kw = {"loss_fn": lambda m, im, p: m(im).pow(2).mean()} if method == "taylor" else {}
        if method in TRAINING_PROCEDURES:  # never a one-shot cut labelled with the method's name
            fn = {"auto_balanced": "auto_balanced_prune", "psfp": "progressive_soft_prune",
                  "play_and_prune": "play_and_prune"}[method]
            with pytest.raises(ValueError, match=rf"training procedure.*reidbook\.prune\.strategies\.{fn}\("):
                prune(net, method, ratio=0.5, data=x, input_size=(32, 16))
            continue
        small, rep = prune(net, method, ratio=0.5, data=x, input_size=(32, 16), **kw)
        assert rep.params_after < rep.params_before and small(x).shape == net(x).shape
        assert rep.method == method
    with pytest.raises(ValueError, match="unknown pruning method"):
        prune(net, "l3", ratio=0.5)
    with pytest.raises(ValueError, match=r"\[0, 1\)"):
        prune(net, "l1", ratio=1.0)
    with pytest.raises(ValueError, match=r"\(0, 1\]"):
        prune(net, "l1", target_macs=0.0)
    with pytest.raises(ValueError, match="exactly one"):
        prune(net, "l1", ratio=0.2, target_macs=0.5)
    with pytest.raises(ValueError, match="needs data"):
        prune(net, "entropy", ratio=0.2)
    with pytest.raises(ValueError, match="out of reach"):
        prune(net, "l1", target_macs=0.05, input_size=(32, 16))
    with pytest.raises(ValueError, match="scope='bottleneck' only"):
        prune(net, "entropy", ratio=0.2, data=x, scope="residual")


def test_scorer_registry_lists_describes_and_dispatches():
    """One registry: every criterion has one signature, a description (paper, section, equation) and the
    survey's strategy; METHODS lists it; score_channels and prune dispatch through it."""
    from reidbook.prune import default_strategy, distinct_methods, find_units

    assert list(METHODS) == list(SCORERS)
    for name, s in SCORERS.items():
        assert ("Eq." in s.where or "Table" in s.where) and s.paper and METHODS[name] == s.describe()
    # Table 2's "strategy" column: FPGM and Taylor iterative, L1/SIMC/Entropy once, ThiNet/CP layer-wise …
    table2 = {"l1": "once", "simc": "once", "entropy": "once", "taylor": "iterative", "fpgm": "iterative",
              "play_and_prune": "play_and_prune", "auto_balanced": "auto_balanced", "thinet": "layerwise",
              "channel_pruning": "layerwise", "psfp": "psfp"}
    assert {m: default_strategy(m) for m in table2} == table2
    assert set(TRAINING_PROCEDURES) == {"auto_balanced", "psfp", "play_and_prune"}
    net = B.resnet18(width=1 / 8).eval()
    units = find_units(net)
    for m in TRAINING_PROCEDURES:  # identical by construction to their criterion, and listed as such
        same = SCORERS[m].same_as
        a, b = score_channels(net, m, units), score_channels(net, same, units)
        assert all(torch.equal(a[u], b[u]) for u in a)
    assert set(distinct_methods()) == set(METHODS) - set(TRAINING_PROCEDURES)

    @register_scorer("test_index", title="channel index", paper="none", where="test, Eq. 0", needs="weights",
                     strategy="once")
    def _index(ctx):
        return {u.name: torch.arange(u.channels, dtype=torch.float64) for u in ctx.units}

    try:
        assert "test_index" in METHODS
        small, rep = prune(net, "test_index", ratio=0.5, input_size=(32, 16))
        chans = {u.name: u.channels for u in units}
        assert all(k == list(range(chans[n] - len(k), chans[n])) for n, k in rep.keep.items())  # highest indices kept
        assert rep.method == "test_index"
    finally:
        SCORERS.pop("test_index")
        METHODS.pop("test_index")
    with pytest.raises(ValueError, match="unknown option"):
        score_channels(net, "simc", units, taus=0.5)
