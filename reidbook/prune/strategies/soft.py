"""Soft pruning while training (paper 003, §3.4 and Table 2's "prune progressively": PSFP, He et al. 2018,
Eq. 11–12; soft FPGM, He et al. 2019): after every epoch the lowest-ranked filters are *zeroed* (conv weight
and BN γ/β) but keep training and may recover; at the end the zeroed channels are removed
(:func:`reidbook.prune.surgery.harden`), giving a physically smaller network.
"""
from __future__ import annotations

import copy

import torch
from torch import nn

from ...profile import count_macs, count_params
from ..criteria import psfp_rate
from ..report import StrategyReport
from ..scoring import score_channels
from ..selection import MacModel, top_channels, uniform_rate_for_target, uniform_widths
from ..surgery import (
    find_units,
    harden,
    kept_after_zeroing,
    slice_bn_,
    slice_conv_in_,
    slice_conv_out_,
    soft_prune_units,
)
from ..training import last_loss, train_with_penalty
from .common import C1, check_target

__all__ = ["SOFT_CRITERIA", "soft_prune_step", "harden_units", "progressive_soft_prune"]

SOFT_CRITERIA = {"psfp": "l2", "l2": "l2", "l1": "l1", "fpgm": "fpgm"}  # soft pruning scores filters only


def soft_prune_step(model: nn.Module, units, criterion: str, rate: float,
                    min_channels: int = 1) -> dict[str, list[int]]:
    """One soft-pruning step (SFP/PSFP): in every unit zero the ``rate`` lowest-scored filters (with their
    BN γ/β) → ``{unit: zeroed indices}``. Scores are recomputed on the current weights, so a channel zeroed
    before can come back if training regrew it (He et al., SFP §3.2)."""
    scores = score_channels(model, criterion, units)
    widths = uniform_widths(units, rate, min_channels)
    zero = {}
    for u in units:
        keep = set(top_channels(scores[u.name], widths[u.name]))
        zero[u.name] = [c for c in range(u.channels) if c not in keep]
    soft_prune_units(model, units, zero)
    return zero


@torch.no_grad()
def harden_units(model: nn.Module, units, min_channels: int = 1) -> dict[str, list[int]]:
    """Remove the zeroed channels of ``units`` whose consumers may be convs **or linear layers** (a model's
    head, e.g. PCB's local conv → six classifiers), by slicing, in place → ``{unit: kept indices}``.

    :func:`reidbook.prune.surgery.harden` handles the backbone; a head read by ``nn.Linear`` layers is
    not traced by the surgery engines (PCB's test path does not even use its classifiers)."""
    mods = dict(model.named_modules())
    kept = kept_after_zeroing(model, units, min_channels)
    for u in units:
        keep = kept[u.name]
        if len(keep) == u.channels:
            continue
        for conv, bn in u.producers:
            slice_conv_out_(mods[conv], keep)
            if bn is not None:
                slice_bn_(mods[bn], keep)
        for c in u.consumers:
            m = mods[c]
            if isinstance(m, nn.Linear):
                idx = torch.as_tensor(keep, dtype=torch.long, device=m.weight.device)
                m.weight = nn.Parameter(m.weight[:, idx].clone())
                m.in_features = len(keep)
            else:
                slice_conv_in_(m, keep)
        u.channels = len(keep)
    return kept


def progressive_soft_prune(model: nn.Module, target_macs: float = C1, dataset=None, preset=None, epochs: int = 4,
                           criterion: str = "psfp", progressive: bool = True, decay: float = 0.125,
                           input_size=(256, 128), scope: str = "bottleneck", lr_scale: float = 1.0, device="auto",
                           seed: int = 0, max_iters_per_epoch: int | None = None, min_channels: int = 1,
                           engine: str = "torch_pruning", head_units=None) -> tuple[nn.Module, StrategyReport]:
    """Soft pruning while training (survey §3.4; PSFP: He et al., Eq. 11–12; soft FPGM: ``criterion="fpgm"``).

    The goal rate ``P_i`` is the uniform channel fraction whose widths meet ``target_macs``. Training runs
    ``epochs`` epochs through :func:`reidbook.engine.fit` (preset losses and optimiser, lr × ``lr_scale``);
    after epoch ``e`` the filters ranked lowest by ``criterion`` (``psfp``/``l2``, ``l1`` or ``fpgm``) are
    zeroed at rate ``P'(e)`` of Eq. (11) (``progressive=False``: the goal from the first epoch, as SFP and
    soft FPGM do). The last epoch applies exactly ``P_i``; the zeroed channels are then removed
    (:func:`reidbook.prune.surgery.harden`), which leaves the outputs unchanged. Without ``dataset`` /
    ``preset`` the schedule runs without training (zero-shot; useful for tests of the mechanics).
    ``head_units`` (e.g. :func:`reidbook.prune.strategies.pcb_head_units`) are soft-pruned at the same
    rate and removed by :func:`harden_units` (they do not count in the multiply-add target: a head read
    only in training costs nothing at test time). The input model is untouched.
    """
    target = check_target(target_macs)
    if criterion not in SOFT_CRITERIA:
        raise ValueError(f"soft pruning criterion {criterion!r} unknown; choose one of {', '.join(SOFT_CRITERIA)}")
    if epochs < 1:
        raise ValueError(f"progressive soft pruning needs epochs ≥ 1, got {epochs}")
    score = SOFT_CRITERIA[criterion]
    net = copy.deepcopy(model)
    units = find_units(net, scope)
    heads = [copy.deepcopy(u) for u in (head_units or [])]
    mm = MacModel(net, units, input_size)
    base_params = count_params(net)
    goal = uniform_rate_for_target(mm, units, target, min_channels)
    records: list[dict] = []

    def rate_at(e: int) -> float:  # e = epochs completed (1 … N)
        if e >= epochs or not progressive:
            return goal
        return psfp_rate(e, goal, epochs, decay) if 0 < goal else 0.0

    def on_epoch_end(e: int, record: dict, _model) -> None:  # e is 1-based, as engine.fit passes it
        r = rate_at(e)
        with torch.no_grad():
            zero = soft_prune_step(net, units + heads, score, r, min_channels)
        widths = {u.name: u.channels - len(zero[u.name]) for u in units}
        rec = {"step": e, "rate": r, "macs_ratio": mm.macs(widths) / mm.base, "loss": last_loss(record)}
        record["soft_rate"] = r
        records.append(rec)

    if dataset is not None and preset is not None:
        train_with_penalty(net, dataset, preset, epochs, None, lr_scale, device, seed, max_iters_per_epoch,
                           on_epoch_end, desc="soft prune")
    else:
        for ep in range(1, epochs + 1):
            on_epoch_end(ep, {}, net)
    net.eval()
    net = harden(net, scope=scope, engine=engine, input_size=input_size, min_channels=min_channels)
    if heads:
        harden_units(net, heads, min_channels)
    net.eval()
    return net, StrategyReport(method=criterion, input_size=tuple(input_size), params_before=base_params,
                               params_after=count_params(net), macs_before=mm.base,
                               macs_after=count_macs(net, input_size),
                               strategy="psfp" if progressive else "soft", target_macs=target, iterations=records)
