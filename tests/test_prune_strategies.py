import pytest
import torch

from reidbook.models import build_model
from reidbook.presets import get_preset
from reidbook.prune.strategies import C1, C2, prune_iterative, prune_once, progressive_soft_prune

from prune_checks import SIZE, check_smaller


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
    assert ratios[0] >= 1 - (1 - 0.05) ** 2 - 0.02 - 1e-9 and ratios[0] < 1  # first step ≈ 10 % of MACs


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
