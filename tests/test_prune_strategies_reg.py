"""Pruning by regularisation: Auto-Balanced (survey Eq. 3–10) and Play-and-Prune's controller loop (Eq. 18–23)."""
import pytest
import torch
from prune_checks import SIZE, check_smaller

from reidbook.models import build_model
from reidbook.presets import get_preset
from reidbook.prune import C1, C2, auto_balanced_prune, holdout_split, play_and_prune
from reidbook.prune.strategies import BalancedPenalty, weak_share
from reidbook.prune.surgery import find_units

pytestmark = pytest.mark.usefixtures("one_thread")


def test_balanced_penalty_cancels_in_value_and_moves_weights_apart(net):
    """Eq. (9)–(10): with τ = −α·S(P)/S(R) the penalty's value is 0, yet one gradient step shrinks every
    weak (P) filter and grows every strong (R) one."""
    import copy

    m = copy.deepcopy(net)
    units = find_units(m)
    keep = {u.name: u.channels // 2 for u in units}
    pen = BalancedPenalty(m, units, keep, alpha=1.0, bn_gamma=True)
    value = pen()
    assert abs(float(value.detach())) < 1e-6 * float(abs(pen.terms()[0].detach()))
    mods = dict(m.named_modules())
    before = {u.name: mods[u.conv].weight.detach().flatten(1).norm(dim=1).clone() for u in units}
    value.backward()
    with torch.no_grad():
        for u in units:
            mods[u.conv].weight -= 1e-3 * mods[u.conv].weight.grad
    for u in units:
        after = mods[u.conv].weight.detach().flatten(1).norm(dim=1)
        p = pen.prune_masks[u.name]
        assert (after[p] < before[u.name][p]).all() and (after[~p] > before[u.name][~p]).all()
        assert mods[u.bn].weight.grad is not None  # BN γ is part of the channel's term (departure, documented)


def test_auto_balanced_zero_shot_reaches_c2(net):
    small, rep = auto_balanced_prune(net, C2, input_size=SIZE)
    check_smaller(net, small, rep, C2)
    assert rep.strategy == "auto_balanced" and rep.method == "l1"


def test_auto_balanced_training_moves_mass_out_of_the_weak_set(smoke_dataset):
    preset = get_preset("baseline", "smoke")
    size = (preset.height, preset.width)
    torch.manual_seed(0)
    model = build_model("baseline", smoke_dataset.num_train_pids, profile="smoke")
    small, rep = auto_balanced_prune(model, C1, smoke_dataset, preset, epochs=1, alpha=1.0, finetune_epochs=1,
                                     input_size=size, device="cpu", max_iters_per_epoch=2, lr_scale=1.0)
    check_smaller(model, small, rep, C1, size)
    first = rep.iterations[0]
    assert first["penalty"] is not None and first["loss"] is not None
    assert first["weak_share_after"] < first["weak_share_before"]  # the regulariser did its job
    assert rep.iterations[-1]["step"] == "fine-tune"


def test_weak_share_is_a_fraction(net):
    units = find_units(net)
    masks = {u.name: torch.arange(u.channels) < u.channels // 2 for u in units}
    assert 0.0 < weak_share(net, units, masks) < 1.0


def test_play_and_prune_controller_plays_when_accuracy_drops(net):
    """A scripted accuracy: a round that loses more than ε makes the next round prune nothing (the
    "play"), after which the rate restarts and the loop reaches the multiply-add target."""
    accs = iter([50.0, 50.0, 50.0, 45.0] + [50.0] * 40)  # ξ = 50, ε = 2: the third round falls out of tolerance
    small, rep = play_and_prune(net, C1, evaluate=lambda m: next(accs), eps=2.0, step=0.1, input_size=SIZE)
    check_smaller(net, small, rep, C1)
    recs = rep.iterations
    assert rep.notes["xi"] == 50.0
    assert recs[2]["slack"] < 0 and recs[2]["next_rate"] == 0.0 and recs[2]["pruned"]
    assert recs[3]["rate"] == 0.0 and not recs[3]["pruned"]  # play: retrain only, MACs unchanged
    assert recs[3]["macs_ratio"] == recs[2]["macs_ratio"]
    assert recs[4]["rate"] == 0.1 and recs[4]["pruned"]
    assert not any(r["forced"] for r in recs)


def test_play_and_prune_rate_follows_the_slack(net):
    accs = iter([50.0] + [51.0] * 40)  # always 1 point better than ξ: slack ε + 1 → the rate grows ×1.5 a round
    _, rep = play_and_prune(net, 0.4, evaluate=lambda m: next(accs), eps=2.0, step=0.04, max_step=0.5,
                            input_size=SIZE)
    rates = [r["rate"] for r in rep.iterations]
    assert rates[1] == pytest.approx(0.06) and rates[2] == pytest.approx(0.09)


def test_play_and_prune_forces_the_target_or_refuses(net):
    accs = iter([50.0] + [40.0] * 10)  # never within tolerance
    small, rep = play_and_prune(net, C1, evaluate=lambda m: next(accs), step=0.05, max_rounds=3, input_size=SIZE)
    assert rep.reached and rep.iterations[-1]["forced"]
    accs = iter([50.0] + [40.0] * 10)
    with pytest.raises(RuntimeError, match="max_rounds"):
        play_and_prune(net, C1, evaluate=lambda m: next(accs), max_rounds=2, force_target=False, input_size=SIZE)


def test_play_and_prune_trains_on_train_minus_holdout(smoke_dataset):
    preset = get_preset("baseline", "smoke")
    size = (preset.height, preset.width)
    train, val = holdout_split(smoke_dataset, n_ids=5, seed=0)
    held = {p for _, p, _ in val.query}
    assert len(held) == 5 and not held & {p for _, p, _ in train.train}
    assert {p for _, p, _ in val.gallery} <= held
    torch.manual_seed(0)
    model = build_model("baseline", smoke_dataset.num_train_pids, profile="smoke")
    small, rep = play_and_prune(model, 0.7, smoke_dataset, preset, eps=100.0, step=0.2, holdout_ids=5,
                                input_size=size, device="cpu", max_iters_per_epoch=1)
    check_smaller(model, small, rep, 0.7, size)
    assert all(r["loss"] is not None and 0.0 <= r["accuracy"] <= 100.0 for r in rep.iterations)


def test_bad_arguments_are_named(net):
    with pytest.raises(ValueError, match="evaluate"):
        play_and_prune(net, C1, input_size=SIZE)
    with pytest.raises(ValueError, match="scope"):
        auto_balanced_prune(net, C1, scope="residual", input_size=SIZE)
    with pytest.raises(ValueError, match="target_macs"):
        auto_balanced_prune(net, 0.0, input_size=SIZE)
