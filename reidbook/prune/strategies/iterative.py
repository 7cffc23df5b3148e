"""Iterative pruning (paper 003, §3.4 and Table 2: Taylor, FPGM; §4: "about 5 % of the channels" per iteration;
Molchanov et al. 2017, Alg. 8 of the survey)."""
from __future__ import annotations

import copy

from torch import nn

from ...profile import count_macs, count_params
from ..api import check_one_shot, prune
from ..report import StrategyReport
from ..scoring import get_scorer, score_channels
from ..surgery import find_units
from .common import C1, check_target, retrain

__all__ = ["prune_iterative", "count_steps"]

_SCORE_OPTIONS = ("tau", "bins", "n_positions", "n_rows", "max_batches", "loss_fn")  # score_channels' own


def prune_iterative(model: nn.Module, method: str, target_macs: float = C1, step: float = 0.05, dataset=None,
                    preset=None, epochs_per_step: int = 1, data=None, input_size=(256, 128), scope: str = "bottleneck",
                    lr_scale: float = 0.1, device="auto", seed: int = 0, max_iters_per_epoch: int | None = None,
                    max_steps: int = 200, **options) -> tuple[nn.Module, StrategyReport]:
    """Iterative pruning: repeat *re-rank on the current model → remove a step of channels → retrain
    ``epochs_per_step``* until the multiply-adds reach ``target_macs`` of the original.

    **What a step removes.** ``step`` is a fraction of the channels the scope *currently* has: an iteration
    removes ``round(step · C)`` of the current ``C`` scoped channels (at least one) — by one ranking across
    units when the method ranks globally (Taylor), otherwise spread over the units in proportion to their
    widths (:func:`reidbook.prune.selection.uniform_widths` with ``rounding="total"``). So "5 %" removes 5 %
    of the channels, up to half a channel (it is *not* a 5 % cut of each unit's inputs and outputs, which
    would remove ≈7.8 % of a ResNet-50's channels). The **last** step is clipped: when a full step would go
    below the target, it removes the fewest channels that reach it (``record["clipped"]``). Every record
    holds the realised fraction ``channel_ratio`` of the step, the multiply-adds and parameters so far and
    the retraining loss. Data criteria re-score on ``data`` each step. The input model is untouched.
    """
    target = check_target(target_macs)
    check_one_shot(method)
    if not 0.0 < step < 1.0:
        raise ValueError(f"step must be in (0, 1) (fraction of the current channels removed per iteration), got {step}")
    if get_scorer(method).needs_data and data is None:
        raise ValueError(f"method {method!r} scores channels from data: pass data= (images or a loader)")
    base_macs, base_params = count_macs(model, input_size), count_params(model)
    goal = target * base_macs
    cur, cur_macs, records = copy.deepcopy(model), base_macs, []
    score_kw = {k: options[k] for k in _SCORE_OPTIONS if k in options}
    for i in range(1, max_steps + 1):
        if cur_macs <= goal:
            break
        units = find_units(cur, scope)
        n_now = sum(u.channels for u in units)
        ratio = max(step, 1.0 / n_now) if round(step * n_now) < 1 else step
        scores = score_channels(cur, method, units, data=data, seed=seed, **score_kw)  # once a step
        common = dict(data=data, input_size=input_size, scope=scope, seed=seed, scores=scores, **options)
        nxt, rep = prune(cur, method, ratio=ratio, rounding="total", **common)
        clipped = rep.macs_after <= goal
        if clipped:  # the last step: no further than the target
            nxt, rep = prune(cur, method, target_macs=min(1.0, goal / cur_macs), **common)
        if rep.macs_after >= rep.macs_before:
            raise RuntimeError(f"iterative pruning stalled at step {i} (MACs ×{cur_macs / base_macs:.3f}); the target "
                               f"{target} may be out of reach in scope {scope!r}")
        cur, cur_macs = nxt, rep.macs_after
        loss = retrain(cur, dataset, preset, epochs_per_step, lr_scale, device, seed + i, max_iters_per_epoch)
        records.append({"step": i, "step_ratio": step, "channel_ratio": rep.channel_ratio, "clipped": clipped,
                        "macs_ratio": cur_macs / base_macs, "params_ratio": rep.params_after / base_params,
                        "loss": loss})
    else:
        if cur_macs > goal:
            raise RuntimeError(f"iterative pruning did not reach target_macs={target} in {max_steps} steps; "
                               "raise max_steps or step")
    cur.eval()
    return cur, StrategyReport(method=method, input_size=tuple(input_size), params_before=base_params,
                               params_after=count_params(cur), macs_before=base_macs,
                               macs_after=count_macs(cur, input_size), strategy="iterative", target_macs=target,
                               iterations=records)


def count_steps(model: nn.Module, target_macs: float, step: float = 0.05, input_size=(256, 128),
                scope: str = "bottleneck") -> int:
    """How many iterations :func:`prune_iterative` needs to reach ``target_macs`` with steps of ``step`` when the
    channels go uniformly (no pruning done: the widths are simulated on :class:`~reidbook.prune.MacModel`). A
    method that ranks across units (Taylor) removes the same number of channels per step, so its count is close.
    Use it to split a training budget over the steps."""
    from ..selection import MacModel, uniform_widths

    target = check_target(target_macs)
    units = find_units(model, scope)
    mm = MacModel(model, units, input_size)

    class _Unit:  # a unit's name and current width, as uniform_widths reads them
        def __init__(self, name, channels):
            self.name, self.channels = name, channels

    cur = [_Unit(u.name, u.channels) for u in units]
    for i in range(1, 10_000):
        n_now = sum(u.channels for u in cur)
        ratio = max(step, 1.0 / n_now) if round(step * n_now) < 1 else step
        widths = uniform_widths(cur, ratio, rounding="total")
        if mm.macs(widths) <= target * mm.base or widths == {u.name: u.channels for u in cur}:
            return i
        cur = [_Unit(u.name, widths[u.name]) for u in cur]
    raise RuntimeError("count_steps: no convergence")
