import pytest
import torch
from prune_checks import SIZE, check_smaller

from reidbook.models import build_model
from reidbook.presets import get_preset
from reidbook.prune.strategies import C1, C2, progressive_soft_prune, prune_iterative, prune_once

pytestmark = pytest.mark.usefixtures("one_thread")


def test_prune_once_reaches_c1_without_training(net):
    small, rep = prune_once(net, "l1", C1, input_size=SIZE)
    check_smaller(net, small, rep, C1)
    assert len(rep.iterations) == 1


def test_iterative_reaches_target_in_small_steps(net):
    small, rep = prune_iterative(net, "l2", 0.7, step=0.05, input_size=SIZE)
    check_smaller(net, small, rep, 0.7)
    ratios = [r["macs_ratio"] for r in rep.iterations]
    assert len(ratios) >= 3 and all(a > b for a, b in zip(ratios, ratios[1:]))  # monotone, several steps
    assert [r["clipped"] for r in rep.iterations] == [False] * (len(ratios) - 1) + [True]  # only the last is clipped


@pytest.mark.parametrize("method", ["l1", "taylor"])  # spread over units / one ranking across units
def test_an_iterative_step_removes_the_fraction_it_names(net, method):
    """A "5 % step" removes 5 % of the current channels (up to half a channel), not 5 % of each unit's
    inputs and outputs (a 10 % multiply-add cut, which removed ≈7.8 % of a ResNet-50's channels)."""
    from reidbook.prune import find_units

    torch.manual_seed(0)
    kw = {"data": [(torch.randn(8, 3, *SIZE), torch.arange(8))]} if method == "taylor" else {}
    n0 = sum(u.channels for u in find_units(net))
    _, rep = prune_iterative(net, method, 0.6, step=0.05, input_size=SIZE, **kw)
    n = n0
    for r in rep.iterations:
        if not r["clipped"]:
            assert abs(r["channel_ratio"] - 0.05) <= 0.5 / n + 1e-12, r
        n = round(n * (1 - r["channel_ratio"]))
    assert any(not r["clipped"] for r in rep.iterations)


def test_a_step_on_paper_size_resnet50_is_five_percent():
    from reidbook.models.backbones import resnet50
    from reidbook.prune import find_units, uniform_widths

    units = find_units(resnet50(width=1.0))
    total = sum(u.channels for u in units)
    kept = sum(uniform_widths(units, 0.05, rounding="total").values())
    assert abs((total - kept) / total - 0.05) <= 0.5 / total  # 5 % of the 15 104 bottleneck channels
    kept_floor = sum(uniform_widths(units, 0.05).values())  # per-unit floor: what "floor" rounding gives
    assert (total - kept_floor) / total < 0.05


def test_psfp_schedule_is_progressive_and_hardens_to_c2(net):
    small, rep = progressive_soft_prune(net, C2, epochs=3, input_size=SIZE)
    check_smaller(net, small, rep, C2)
    rates = [r["rate"] for r in rep.iterations]
    assert rates == sorted(rates) and rates[0] < rates[-1]
    soft, rep2 = progressive_soft_prune(net, C2, epochs=2, criterion="fpgm", progressive=False, input_size=SIZE)
    assert rep2.strategy == "soft" and rep2.iterations[0]["rate"] == rep2.iterations[1]["rate"] and rep2.reached


def test_strategies_retrain_through_engine_fit(net, smoke_dataset):
    preset = get_preset("baseline", "smoke")
    size = (preset.height, preset.width)
    model = build_model("baseline", smoke_dataset.num_train_pids, profile="smoke")
    small, rep = prune_iterative(model, "l1", 0.8, step=0.1, dataset=smoke_dataset, preset=preset, input_size=size,
                                 device="cpu", max_iters_per_epoch=1)
    assert rep.reached and all(r["loss"] is not None for r in rep.iterations)
    small, rep = progressive_soft_prune(model, C1, dataset=smoke_dataset, preset=preset, epochs=2, input_size=size,
                                        device="cpu", max_iters_per_epoch=1)
    check_smaller(model, small, rep, C1)
    assert all(r["loss"] is not None for r in rep.iterations)


def test_bad_target_is_named(net):
    with pytest.raises(ValueError, match="target_macs"):
        prune_once(net, "l1", 1.5, input_size=SIZE)
    with pytest.raises(ValueError, match="criterion"):
        progressive_soft_prune(net, C1, criterion="taylor", input_size=SIZE)


def test_psfp_prunes_pcb_backbone():
    torch.manual_seed(0)
    pcb = build_model("pcb", 10, profile="smoke").eval()
    size = (96, 32)
    small, rep = progressive_soft_prune(pcb, C1, epochs=2, input_size=size)  # PCB (BFE), survey Table 8
    assert rep.reached and rep.params_after < rep.params_before
    with torch.no_grad():
        assert small(torch.randn(2, 3, *size)).shape == (2, 6 * small.backbone.out_channels)


def test_psfp_rate_is_progressive_when_trained(smoke_dataset):
    """engine.fit numbers epochs from 1: the schedule of Eq. (11) must see 1 … N, ending at the goal."""
    preset = get_preset("baseline", "smoke")
    size = (preset.height, preset.width)
    model = build_model("baseline", smoke_dataset.num_train_pids, profile="smoke")
    small, rep = progressive_soft_prune(model, C1, dataset=smoke_dataset, preset=preset, epochs=3, input_size=size,
                                        device="cpu", max_iters_per_epoch=1)
    rates = [r["rate"] for r in rep.iterations]
    assert [r["step"] for r in rep.iterations] == [1, 2, 3]
    assert 0 < rates[0] < rates[1] < rates[2] and rep.reached


def test_strategy_pairing_is_checked_not_replaced(net):
    """A strategy never runs another method under this one's name (survey Table 2's pairings)."""
    from reidbook.prune.scenarios import check_pairing

    with pytest.raises(ValueError, match="soft pruning"):
        check_pairing("taylor", "psfp")
    with pytest.raises(ValueError, match="ℓ1 by definition"):
        check_pairing("fpgm", "auto_balanced")
    with pytest.raises(ValueError, match="training procedure"):
        check_pairing("psfp", "once")
    with pytest.raises(ValueError, match="progressive_soft_prune"):
        prune_once(net, "psfp", C1, input_size=SIZE)
    check_pairing("fpgm", "iterative")
