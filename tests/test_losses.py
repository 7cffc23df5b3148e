"""Tests for reidbook.losses: hand-computed values, gradients, invariants, numerical safety, glue.

Expected numbers are worked out by hand (in comments) or with a direct numpy transcription of the
paper's formula, never by calling the code under test.
"""
import math

import numpy as np
import pytest
import torch
import torch.nn.functional as F

from reidbook import losses as L

torch.set_num_threads(1)


def t(x, dtype=torch.float64, grad=False):
    return torch.tensor(x, dtype=dtype, requires_grad=grad)


def pids_(x):
    return torch.tensor(x, dtype=torch.long)


def val(x):
    """A scalar tensor's value as a float (detached, so no autograd warning)."""
    return float(x.detach())


def softplus(x):
    return math.log1p(math.exp(x))


# The 1-D batch used by several hand computations: identity 0 at {0, 1}, identity 1 at {3, 5}.
# Furthest positive / nearest negative per anchor:
#   0: d_ap=1, d_an=3 (to 3)   1: d_ap=1, d_an=2 (to 3)   3: d_ap=2, d_an=2 (to 1)   5: d_ap=2, d_an=4 (to 1)
X1 = [[0.0], [1.0], [3.0], [5.0]]
Y1 = [0, 0, 1, 1]


# ---------------------------------------------------------------- distances
def test_pairwise_distance_values_and_zero_diagonal():
    x = t([[0.0, 0.0], [3.0, 4.0], [0.0, 0.0]])
    d = L.pairwise_distance(x)
    assert torch.equal(d, t([[0, 5, 0], [5, 0, 5], [0, 5, 0]]))
    assert torch.equal(L.pairwise_distance(x, squared=True), t([[0, 25, 0], [25, 0, 25], [0, 25, 0]]))
    y = t([[1.0, 0.0]])
    assert torch.allclose(L.pairwise_distance(x, y), t([[1.0], [math.sqrt(4 + 16)], [1.0]]))
    with pytest.raises(ValueError, match="feature sizes"):
        L.pairwise_distance(x, t([[1.0, 2.0, 3.0]]))


def test_pairwise_distance_matches_direct_norm():
    g = torch.Generator().manual_seed(0)
    x, y = torch.randn(7, 5, generator=g, dtype=torch.float64), torch.randn(4, 5, generator=g, dtype=torch.float64)
    direct = (x[:, None, :] - y[None, :, :]).pow(2).sum(-1).sqrt()
    assert torch.allclose(L.pairwise_distance(x, y), direct, atol=1e-10)


def test_no_nan_gradient_at_zero_distance():
    # identical rows (same and different identities) and an all-zero embedding
    for x0 in ([[1.0, 2.0], [1.0, 2.0], [1.0, 2.0], [0.0, 1.0]], [[0.0, 0.0]] * 4):
        x = t(x0, dtype=torch.float32, grad=True)
        L.pairwise_distance(x).sum().backward()
        assert torch.isfinite(x.grad).all()
        for loss in (L.TripletLoss(0.3), L.TripletLoss(soft=True), L.TripletLoss(0.3, mining="all"),
                     L.ContrastiveLoss(1.0), L.QuadrupletLoss(), L.HAP2SLoss(), L.HAP2SLoss(weighting="poly"),
                     L.MagnetLoss()):
            x.grad = None
            value = loss(x, pids_([0, 0, 1, 2]))
            value.backward()
            assert torch.isfinite(value) and torch.isfinite(x.grad).all(), type(loss).__name__
    a = t([[1.0, 1.0]], grad=True)
    L.triplet_loss(a, a.detach().clone(), t([[1.0, 1.0]]), margin=1.0).backward()
    assert torch.isfinite(a.grad).all()


def test_safe_sqrt_gradient_at_zero_is_zero():
    x = t([0.0, 4.0], grad=True)
    L.safe_sqrt(x).sum().backward()
    assert x.grad.tolist() == [0.0, 0.25]   # d sqrt(x)/dx = 1/(2 sqrt 4)


# ---------------------------------------------------------------- classification losses
def test_cross_entropy_by_hand_and_label_smoothing():
    logits, y = t([[1.0, 2.0, 3.0], [0.0, 0.0, 0.0]]), pids_([2, 0])
    z = math.exp(1) + math.exp(2) + math.exp(3)
    logp0 = [1 - math.log(z), 2 - math.log(z), 3 - math.log(z)]
    logp1 = [-math.log(3)] * 3
    plain = (-logp0[2] - logp1[0]) / 2
    assert L.cross_entropy_loss(logits, y) == pytest.approx(plain, abs=1e-12)
    # ε = 0 is exactly the plain loss; ε = 0.1: q = 0.9·onehot + 0.1/3
    assert L.cross_entropy_loss(logits, y, label_smoothing=0.0) == pytest.approx(plain, abs=1e-12)
    eps = 0.1
    smooth = (-sum(((1 - eps) * (k == 2) + eps / 3) * logp0[k] for k in range(3))
              - sum(((1 - eps) * (k == 0) + eps / 3) * logp1[k] for k in range(3))) / 2
    assert L.CrossEntropyLoss(eps)(logits, y) == pytest.approx(smooth, abs=1e-12)
    assert L.cross_entropy_loss(logits, y, eps) == pytest.approx(float(F.cross_entropy(logits, y, label_smoothing=eps)))


def test_cross_entropy_rejects_out_of_range_pids():
    with pytest.raises(ValueError, match="num_classes"):
        L.cross_entropy_loss(torch.zeros(2, 3), pids_([0, 3]))
    with pytest.raises(ValueError, match="label_smoothing"):
        L.CrossEntropyLoss(1.0)


def test_bias_free_classifier():
    clf = L.BiasFreeClassifier(8, 5)
    assert clf.bias is None and clf.weight.shape == (5, 8)
    assert clf.weight.std().item() < 0.01
    assert torch.equal(clf(torch.zeros(2, 8)), torch.zeros(2, 5))   # no bias: zero feature → zero logits


def test_cosine_softmax_by_hand():
    loss = L.CosineSoftmaxLoss(2, 2, init_scale=16.0).double()
    assert val(loss.scale.detach()) == pytest.approx(16.0, rel=1e-6)
    with torch.no_grad():
        loss.weight.copy_(t([[1.0, 0.0], [0.0, 2.0]]))   # normalised: e1, e2
    f = t([[3.0, 4.0]])                                   # normalised: (0.6, 0.8)
    # logits κ·cos = (9.6, 12.8); −log softmax_0 = log(1 + e^{3.2})  (κ = 16 up to float32 storage)
    assert val(loss(f, pids_([0])).detach()) == pytest.approx(math.log1p(math.exp(3.2)), rel=1e-6)
    assert torch.allclose(loss.logits(10 * f), loss.logits(f))   # invariant to the feature norm
    loss(f, pids_([0])).backward()
    assert loss.rho.grad is not None and loss.weight.grad is not None


def test_part_cross_entropy_is_sum_over_parts():
    parts = [t([[0.0, 0.0]]), t([[0.0, math.log(3.0)]])]
    # part 1: p = (1/2, 1/2) → log 2 ; part 2: p_0 = 1/(1+3) → log 4
    assert val(L.part_cross_entropy_loss(parts, pids_([0]))) == pytest.approx(math.log(2) + math.log(4))
    assert val(L.PartCrossEntropyLoss()(parts, pids_([0]))) == pytest.approx(math.log(8))
    with pytest.raises(TypeError):
        L.part_cross_entropy_loss(torch.zeros(1, 2), pids_([0]))


# ---------------------------------------------------------------- metric losses: values
def test_contrastive_by_hand():
    f1, f2 = t([[0.0, 0.0], [0.0, 0.0]]), t([[3.0, 4.0], [0.3, 0.4]])
    # positive pair d=5 → 25 ; negative pair d=0.5, m=1 → (1−0.5)² = 0.25 ; 1/(2N) → (25.25)/4
    assert val(L.contrastive_loss(f1, f2, t([0.0, 1.0]), margin=1.0)) == pytest.approx(6.3125)
    # batch form on X1: pairs (0,1) pos d=1 ; (3,5) pos d=2 ; negatives d = 3,5,2,4 (all ≥ m=2.5 except 2)
    expected = 0.5 * (1 + 4 + (2.5 - 2.0) ** 2) / 6
    assert val(L.ContrastiveLoss(2.5)(t(X1), pids_(Y1))) == pytest.approx(expected)


def test_triplet_value_and_hand_gradient():
    a, p, n = t([[0.0, 0.0]], grad=True), t([[3.0, 0.0]], grad=True), t([[0.0, 4.0]], grad=True)
    assert val(L.triplet_loss(a, p, n)) == 0.0                 # d_ap = 3 < d_an = 4
    loss = L.triplet_loss(a, p, n, margin=2.0)                   # [2 + 3 − 4]_+ = 1
    assert val(loss) == pytest.approx(1.0)
    loss.backward()
    # ∂/∂a = (a−p)/3 − (a−n)/4 = (−1, 0) − (0, −1) ; ∂/∂p = −(a−p)/3 ; ∂/∂n = (a−n)/4
    assert a.grad.tolist() == [[-1.0, 1.0]]
    assert p.grad.tolist() == [[1.0, 0.0]]
    assert n.grad.tolist() == [[0.0, -1.0]]


def test_batch_hard_triplet_value_and_hand_gradient():
    x = t(X1, grad=True)
    # gaps d_ap − d_an = (−2, −1, 0, −2); margin 0.5 → hinge (0, 0, 0.5, 0); mean 0.125
    loss = L.batch_hard_triplet_loss(x, pids_(Y1), margin=0.5)
    assert val(loss) == pytest.approx(0.125)
    loss.backward()
    # only anchor x=3 is active: (0.5 + |3−5| − |3−1|)/4 → ∂/∂x3 = (−1 − 1)/4, ∂/∂x5 = 1/4, ∂/∂x1 = 1/4
    assert x.grad.flatten().tolist() == pytest.approx([0.0, 0.25, -0.5, 0.25])
    soft = (2 * softplus(-2) + softplus(-1) + softplus(0)) / 4
    assert val(L.batch_hard_triplet_loss(t(X1), pids_(Y1), soft=True)) == pytest.approx(soft)
    assert val(L.TripletLoss(margin=None)(t(X1), pids_(Y1))) == pytest.approx(soft)


def test_batch_all_triplet_by_hand():
    # 8 valid triplets; only (a=3, p=5, n=1) is active: 0.5 + 2 − 2 = 0.5
    assert val(L.batch_all_triplet_loss(t(X1), pids_(Y1), margin=0.5)) == pytest.approx(0.5 / 8)
    assert val(L.batch_all_triplet_loss(t(X1), pids_(Y1), margin=0.5, nonzero_only=True)) == pytest.approx(0.5)
    assert val(L.TripletLoss(0.5, mining="all")(t(X1), pids_(Y1))) == pytest.approx(0.0625)


def test_batch_hard_invariants():
    g = torch.Generator().manual_seed(1)
    centres = torch.tensor([[0.0, 0.0], [10.0, 0.0], [0.0, 10.0]])
    y = torch.arange(3).repeat_interleave(4)
    x = centres[y] + 0.1 * torch.randn(12, 2, generator=g)       # tight, far-apart clusters
    assert val(L.batch_hard_triplet_loss(x, y, margin=1.0)) == 0.0
    assert val(L.batch_all_triplet_loss(x, y, margin=1.0)) == 0.0
    soft = L.batch_hard_triplet_loss(x, y, soft=True)
    assert 0.0 < val(soft) < 1e-3                               # soft margin: small but never zero
    for seed in range(5):                                         # soft margin > 0 on random batches too
        r = torch.randn(12, 4, generator=torch.Generator().manual_seed(seed))
        assert val(L.batch_hard_triplet_loss(r, y, soft=True)) > 0.0
    # a batch without any positive pair has no valid anchor: zero loss that still backpropagates
    z = torch.randn(3, 2, requires_grad=True)
    out = L.batch_hard_triplet_loss(z, pids_([0, 1, 2]))
    out.backward()
    assert val(out) == 0.0 and torch.equal(z.grad, torch.zeros(3, 2))


def test_quadruplet_by_hand():
    a, p, n, k = t([[0.0, 0.0]]), t([[1.0, 0.0]]), t([[0.0, 2.0]]), t([[0.0, 2.5]])
    # d_ap=1, d_an=2, d_nk=0.5: [1 + 1 − 2]_+ + [0.5 + 1 − 0.5]_+ = 0 + 1
    assert val(L.quadruplet_loss(a, p, n, k, 1.0, 0.5)) == pytest.approx(1.0)
    # batch form: ids {0,1}, {10,11}, {12,14}
    x, y = t([[0.0], [1.0], [10.0], [11.0], [12.0], [14.0]]), pids_([0, 0, 1, 1, 2, 2])
    # first term per anchor: 0, 0, 0, [1+1−1]=1, [1+2−1]=2, 0 → 3/6
    # nearest negative pair for id-0 anchors: |11−12| = 1 → [0.5 + 1 − 1] = 0.5 twice → 1/6
    assert val(L.batch_quadruplet_loss(x, y, 1.0, 0.5)) == pytest.approx(0.5 + 1 / 6)
    assert val(L.QuadrupletLoss(1.0, 0.5)(x, y)) == pytest.approx(2 / 3)


def _hap2s_numpy(x, y, margin, weighting, sigma=0.5, alpha=10.0):
    """Direct transcription of Yu et al.'s point-to-set distance with raw (unnormalised) weights."""
    x, y = np.asarray(x, float), np.asarray(y)
    out = []
    for a in range(len(x)):
        pos = [i for i in range(len(x)) if y[i] == y[a] and i != a]
        neg = [i for i in range(len(x)) if y[i] != y[a]]
        d = lambda i, a=a: float(np.linalg.norm(x[a] - x[i]))
        if weighting == "exp":
            wp, wn = [math.exp(d(i) / sigma) for i in pos], [math.exp(-d(i) / sigma) for i in neg]
        else:
            wp, wn = [(d(i) + 1) ** alpha for i in pos], [(d(i) + 1) ** (-alpha) for i in neg]
        dsp = sum(w * d(i) for w, i in zip(wp, pos)) / sum(wp)
        dsn = sum(w * d(i) for w, i in zip(wn, neg)) / sum(wn)
        out.append(max(margin + dsp - dsn, 0.0))
    return float(np.mean(out))


def test_hap2s_matches_formula_and_limits():
    x = [[0.0, 0.0], [1.0, 0.5], [0.2, 1.5], [2.0, 2.0], [2.5, 1.0], [1.5, 2.5]]
    y = [0, 0, 0, 1, 1, 1]
    for w in ("exp", "poly"):
        got = val(L.hap2s_loss(t(x), pids_(y), margin=1.0, weighting=w, sigma=0.7, alpha=3.0))
        assert got == pytest.approx(_hap2s_numpy(x, y, 1.0, w, sigma=0.7, alpha=3.0), rel=1e-10)
    # σ → 0 recovers batch hard; α = 0 is the plain point-to-set mean
    hard = val(L.batch_hard_triplet_loss(t(x), pids_(y), margin=1.0))
    assert val(L.hap2s_loss(t(x), pids_(y), margin=1.0, sigma=1e-3)) == pytest.approx(hard, abs=1e-6)
    d = L.pairwise_distance(t(x)).numpy()
    same = np.equal.outer(y, y)
    mean = np.mean([max(1.0 + d[a][same[a] & (np.arange(6) != a)].mean() - d[a][~same[a]].mean(), 0) for a in range(6)])
    assert val(L.hap2s_loss(t(x), pids_(y), margin=1.0, weighting="poly", alpha=0.0)) == pytest.approx(mean)
    with pytest.raises(ValueError, match="weighting"):
        L.HAP2SLoss(weighting="linear")


def _magnet_numpy(x, y, alpha):
    """Rippel et al.'s objective with one cluster per identity, written out per sample."""
    x, y = np.asarray(x, float), np.asarray(y)
    classes = sorted(set(y.tolist()))
    mu = {c: x[y == c].mean(0) for c in classes}
    var = sum(((x[i] - mu[y[i]]) ** 2).sum() for i in range(len(x))) / (len(x) - 1)
    out = []
    for i in range(len(x)):
        num = math.exp(-((x[i] - mu[y[i]]) ** 2).sum() / (2 * var) - alpha)
        den = sum(math.exp(-((x[i] - mu[c]) ** 2).sum() / (2 * var)) for c in classes if c != y[i])
        out.append(max(-math.log(num / den), 0.0))
    return float(np.mean(out))


def test_magnet_matches_formula():
    x = [[0.0, 0.0], [1.0, 0.0], [2.0, 1.0], [3.0, 1.5], [0.5, 2.0], [1.0, 3.0]]
    y = [0, 0, 1, 1, 2, 2]
    for alpha in (0.0, 1.0):
        assert val(L.magnet_loss(t(x), pids_(y), alpha)) == pytest.approx(_magnet_numpy(x, y, alpha), rel=1e-10)
    assert val(L.MagnetLoss()(t(x), pids_([0] * 6))) == 0.0     # one identity: nothing to discriminate


# ---------------------------------------------------------------- gradients (finite differences, double)
@pytest.mark.parametrize("name,fn", [
    ("distance", lambda x, y: L.pairwise_distance(x)),
    ("contrastive", lambda x, y: L.ContrastiveLoss(3.0)(x, y)),
    ("batch_hard", lambda x, y: L.batch_hard_triplet_loss(x, y, margin=10.0)),
    ("batch_hard_soft", lambda x, y: L.batch_hard_triplet_loss(x, y, soft=True)),
    ("batch_all", lambda x, y: L.batch_all_triplet_loss(x, y, margin=1.0)),
    ("quadruplet", lambda x, y: L.batch_quadruplet_loss(x, y, 5.0, 5.0)),
    ("hap2s_exp", lambda x, y: L.hap2s_loss(x, y, margin=5.0)),
    ("hap2s_poly", lambda x, y: L.hap2s_loss(x, y, margin=5.0, weighting="poly", alpha=2.0)),
    ("magnet", lambda x, y: L.magnet_loss(x, y, 5.0)),
    ("cross_entropy_ls", lambda x, y: L.cross_entropy_loss(x, y, 0.1)),
])
def test_gradcheck(name, fn):
    x = torch.randn(9, 4, dtype=torch.float64, generator=torch.Generator().manual_seed(3), requires_grad=True)
    y = pids_([0, 0, 0, 1, 1, 1, 2, 2, 3])
    assert torch.autograd.gradcheck(lambda z: fn(z, y), (x,), eps=1e-6, atol=1e-5)


def test_gradcheck_explicit_forms_and_cosine_softmax():
    g = torch.Generator().manual_seed(4)
    a, p, n, k = (torch.randn(3, 4, dtype=torch.float64, generator=g, requires_grad=True) for _ in range(4))
    assert torch.autograd.gradcheck(lambda *z: L.triplet_loss(*z, margin=10.0), (a, p, n))
    assert torch.autograd.gradcheck(lambda *z: L.quadruplet_loss(*z, 10.0, 10.0), (a, p, n, k))
    assert torch.autograd.gradcheck(lambda u, v: L.contrastive_loss(u, v, t([0.0, 1.0, 1.0]), 5.0), (a, p))
    w = torch.randn(5, 4, dtype=torch.float64, generator=g, requires_grad=True)
    s = t(7.0, grad=True)
    assert torch.autograd.gradcheck(
        lambda f, w, s: L.cross_entropy_loss(L.cosine_softmax_logits(f, w, s), pids_([0, 3, 4])), (a, w, s))


# ---------------------------------------------------------------- glue
def test_deep_supervision_sums():
    f1, f2 = t(X1), t(X1) * 2                                    # scaling by 2 doubles hinge-free gaps
    y = pids_(Y1)
    ds = L.DeepSupervision(L.TripletLoss(margin=0.5))
    expected = val(L.batch_hard_triplet_loss(f1, y, 0.5)) + val(L.batch_hard_triplet_loss(f2, y, 0.5))
    assert val(ds([f1, f2], y)) == pytest.approx(expected)
    assert val(ds(f1, y)) == pytest.approx(0.125)
    with pytest.raises(ValueError):
        ds([], y)


def test_criterion_weighted_sum_parts_and_deep_supervision():
    torch.manual_seed(0)
    logits = [torch.randn(4, 3, requires_grad=True), torch.randn(4, 3, requires_grad=True)]
    feats = t(X1, dtype=torch.float32, grad=True)
    y = pids_(Y1)
    crit = L.build_criterion([
        {"name": "ce", "loss": "cross_entropy", "weight": 1.0, "key": "logits", "options": {"label_smoothing": 0.1}},
        {"name": "tri", "loss": "batch_hard_triplet", "weight": 2.0, "key": "triplet", "options": {"margin": 0.5}},
    ])
    total, parts = crit({"logits": logits, "triplet": feats}, y)
    ce = sum(val(F.cross_entropy(lg, y, label_smoothing=0.1)) for lg in logits)
    assert parts["ce"] == pytest.approx(ce, rel=1e-6)
    assert parts["tri"] == pytest.approx(0.125)
    assert val(total) == pytest.approx(ce + 2.0 * 0.125, rel=1e-6)
    assert all(isinstance(v, float) for v in parts.values())
    total.backward()
    assert all(lg.grad is not None for lg in logits) and feats.grad is not None
    # part CE consumes the list itself (same value as deep supervision of CE)
    pce = L.Criterion([L.LossTerm("pce", L.PartCrossEntropyLoss(0.1), key="logits")])
    assert pce({"logits": logits}, y)[1]["pce"] == pytest.approx(ce, rel=1e-6)
    # any callable (tensor, pids) -> scalar is a loss; a list output is summed over
    plain = L.Criterion([L.LossTerm("sum", lambda o, p: o.sum(), weight=0.5, key="triplet")])
    assert val(plain({"triplet": [feats, feats]}, y)[0]) == pytest.approx(0.5 * 2 * 9.0)


def test_criterion_errors():
    with pytest.raises(ValueError, match="cross_entropy"):       # lists the valid names
        L.build_criterion([{"loss": "arcface"}])
    with pytest.raises(ValueError, match="unknown fields"):
        L.build_criterion([{"loss": "triplet", "margin": 0.3}])
    with pytest.raises(TypeError, match="triplet"):
        L.build_criterion([{"loss": "triplet", "options": {"marginn": 0.3}}])
    with pytest.raises(ValueError, match="unique"):
        L.Criterion([L.LossTerm("a", L.CrossEntropyLoss()), L.LossTerm("a", L.CrossEntropyLoss())])
    crit = L.build_criterion([{"name": "id", "loss": "cross_entropy"},
                              {"name": "tri", "loss": "triplet", "key": "feat"}])
    with pytest.raises(KeyError, match="feat"):
        crit({"logits": torch.zeros(2, 3)}, pids_([0, 1]))
    with pytest.raises(TypeError, match="train"):
        crit(torch.zeros(2, 3), pids_([0, 1]))
    bad = {"logits": torch.tensor([[float("nan"), 0.0]]), "feat": torch.zeros(1, 2)}
    with pytest.raises(FloatingPointError, match="'id'"):
        crit(bad, pids_([0]))


def test_criterion_owns_loss_parameters_and_registry():
    crit = L.build_criterion([{"name": "cos", "loss": "cosine_softmax", "key": "feat",
                               "options": {"in_features": 4, "num_classes": 3}}])
    assert sum(p.numel() for p in crit.parameters()) == 3 * 4 + 1
    total, parts = crit({"feat": torch.randn(6, 4)}, pids_([0, 0, 1, 1, 2, 2]))
    total.backward()
    assert set(parts) == {"cos"}
    for name in L.available_losses():
        assert name in L.LOSSES
    assert isinstance(L.build_loss("soft_triplet"), L.TripletLoss) and L.build_loss("soft_triplet").soft
    assert L.build_loss("batch_all_triplet").mining == "all"


# ----------------------------------------------------------------------------------------------- center loss
def test_center_loss_known_values_and_bot_update():
    """Wen et al. 2016 / BoT §3.6: L_C = (1/B) Σ ||f_i − c_{y_i}||²; the centres then take BoT's SGD step
    (lr 0.5 on the unweighted loss): c_j += 0.5 · (2/B) · Σ_{y_i=j} (f_i − c_j)."""
    from reidbook.losses import CenterLoss, build_criterion, center_loss

    f = torch.tensor([[1.0, 0.0], [3.0, 0.0], [0.0, 2.0], [0.0, 0.0]], requires_grad=True)
    pids = torch.tensor([0, 0, 1, 1])
    c = torch.tensor([[1.0, 1.0], [0.0, 1.0]])
    # squared distances: 1, 5, 1, 1 -> mean 2
    assert center_loss(f, pids, c).item() == pytest.approx(2.0)
    loss = CenterLoss(num_classes=2, feat_dim=2, center_lr=0.5)
    loss.centers.copy_(c)
    value = loss(f, pids)
    assert value.item() == pytest.approx(2.0)
    value.backward()
    # dL/df_i = (2/B)(f_i − c_{y_i})
    torch.testing.assert_close(f.grad, 0.5 * (f.detach() - c[pids]))
    # c_0 += 0.5·(2/4)·((0,-1) + (2,-1)) = (0.5, -0.5); c_1 += 0.25·((0,1) + (0,-1)) = 0
    torch.testing.assert_close(loss.centers, torch.tensor([[1.5, 0.5], [0.0, 1.0]]))
    # eval mode: no update
    loss.eval()
    before = loss.centers.clone()
    loss(f.detach(), pids)
    torch.testing.assert_close(loss.centers, before)
    # repeated steps pull the centres to the class means (the fixed point of the update)
    loss.train()
    for _ in range(200):
        loss(f.detach(), pids)
    torch.testing.assert_close(loss.centers, torch.tensor([[2.0, 0.0], [0.0, 1.0]]), atol=1e-4, rtol=0)
    assert loss(f.detach(), pids).item() == pytest.approx((1 + 1 + 1 + 1) / 4, abs=1e-3)
    # registry name, lazy size, state dict round trip
    crit = build_criterion([{"name": "center", "loss": "center", "weight": 5e-4, "key": "triplet"}])
    crit({"triplet": [torch.randn(6, 3)]}, torch.tensor([0, 1, 2, 5, 5, 1]))
    centers = crit.terms[0].loss.centers
    assert centers.shape == (6, 3)
    fresh = build_criterion([{"name": "center", "loss": "center", "weight": 5e-4, "key": "triplet"}])
    fresh.load_state_dict(crit.state_dict())
    torch.testing.assert_close(fresh.terms[0].loss.centers, centers)
    with pytest.raises(ValueError, match="dimensions"):
        crit({"triplet": [torch.randn(6, 4)]}, torch.tensor([0, 1, 2, 5, 5, 1]))


def test_bot_preset_has_center_loss_and_cosine_test_metric():
    """BoT §3.6 (center loss, β = 5e-4, centres at SGD lr 0.5) and its normalised test feature."""
    from reidbook.eval import model_metric
    from reidbook.losses import CenterLoss, build_criterion
    from reidbook.models import build_model
    from reidbook.presets import get_preset

    p = get_preset("baseline", "full")
    center = [t for t in p.losses if t["loss"] == "center"]
    assert len(center) == 1 and center[0]["weight"] == 5e-4 and center[0]["key"] == "triplet"
    assert center[0]["options"]["center_lr"] == 0.5
    assert isinstance(build_criterion(p.losses).terms[-1].loss, CenterLoss)
    assert p.model_options["metric"] == "cosine"
    options = get_preset("baseline", "smoke").model_options
    assert model_metric(build_model("baseline", 5, profile="smoke", **options)) == "cosine"
