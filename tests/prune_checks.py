"""Checks shared by the pruning-strategy tests (imported by tests/test_prune_strategies*.py)."""
import torch

from reidbook.profile import count_macs, count_params

SIZE = (64, 32)


def check_smaller(model, small, rep, target, size=SIZE):
    """A strategy's result reached its multiply-add target, is physically smaller, and still runs."""
    assert rep.reached and rep.macs_ratio <= target + 1e-9
    assert count_macs(small, size) == rep.macs_after <= target * count_macs(model, size)
    assert count_params(small) == rep.params_after < count_params(model)
    small.eval()
    with torch.no_grad():
        assert torch.isfinite(small(torch.randn(2, 3, *size))).all()
