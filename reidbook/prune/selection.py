"""Which channels to keep: the multiply-add model and the selection rules (paper 003, §3.2 and §4).

* :class:`MacModel` — a model's multiply-adds as a function of how many channels each unit keeps;
* :func:`select_channels` — keep the best-scored channels of every unit, the same fraction per unit (Li et
  al.'s layer-by-layer selection) or by one ranking across units (Taylor, survey Alg. 8), for a ratio of
  channels or a multiply-add target;
* small public helpers the strategies share: :func:`top_channels`, :func:`uniform_widths`,
  :func:`uniform_rate_for_target`.
"""
from __future__ import annotations

import math

import torch
from torch import nn

from ..profile import count_macs
from .surgery import PruneUnit, example_input

__all__ = ["MacModel", "select_channels", "top_channels", "uniform_widths", "uniform_rate_for_target", "ROUNDINGS"]

ROUNDINGS = ("floor", "total")


# ---------------------------------------------------------------------------------------------
# Multiply-add model: exact for convs, computed from one traced forward
# ---------------------------------------------------------------------------------------------
class MacModel:
    """Multiply-adds of ``model`` as a function of how many channels each unit keeps.

    One forward (with hooks) records every conv's output size; a conv's multiply-adds are then
    ``in·out/groups · k_h·k_w · H_out·W_out`` with ``in``/``out`` reduced by the units it consumes/produces.
    Everything else (linear layers; element-wise ops are not counted, profile.py's convention) is a
    constant, so ``macs(widths)`` equals :func:`reidbook.profile.count_macs` of the pruned model.
    """

    def __init__(self, model: nn.Module, units: list[PruneUnit], input_size=(256, 128)):
        self.units = units
        self.base = count_macs(model, input_size)
        mods = dict(model.named_modules())
        area: dict[str, int] = {}
        handles = [m.register_forward_hook(lambda m, i, o, n=n: area.__setitem__(n, o.shape[2] * o.shape[3]))
                   for n, m in mods.items() if isinstance(m, nn.Conv2d)]
        try:
            was = model.training
            model.eval()
            with torch.no_grad():
                model(example_input(model, input_size))
            model.train(was)
        finally:
            for h in handles:
                h.remove()
        self.convs = {}  # name → [in, out, k·k·area/groups, in_unit, out_unit]
        for n, m in mods.items():
            if isinstance(m, nn.Conv2d) and n in area:
                self.convs[n] = [m.in_channels, m.out_channels,
                                 m.kernel_size[0] * m.kernel_size[1] * area[n] / m.groups, None, None]
        for u in units:
            for conv, _ in u.producers:
                self.convs[conv][4] = u.name
            for conv in u.consumers:
                self.convs[conv][3] = u.name
        self.full = {u.name: u.channels for u in units}
        self.other = self.base - self._conv_macs(self.full)

    def _conv_macs(self, widths: dict[str, int]) -> float:
        total = 0.0
        for cin, cout, per, iu, ou in self.convs.values():
            i = widths[iu] if iu is not None else cin
            o = widths[ou] if ou is not None else cout
            total += i * o * per
        return total

    def macs(self, widths: dict[str, int]) -> int:
        """Multiply-adds of one image when unit ``u`` keeps ``widths[u]`` channels (others: all)."""
        w = dict(self.full)
        w.update(widths)
        return int(round(self.other + self._conv_macs(w)))


# ---------------------------------------------------------------------------------------------
# Selection
# ---------------------------------------------------------------------------------------------
def top_channels(scores: torch.Tensor, n_keep: int) -> list[int]:
    """The ``n_keep`` best-scored channel indices, sorted. Stable: among equal scores the lower index is kept."""
    order = torch.argsort(scores, descending=True, stable=True)
    return sorted(order[:n_keep].tolist())


def uniform_widths(units, ratio: float, min_channels: int = 1, round_to: int = 1,
                   rounding: str = "floor") -> dict[str, int]:
    """Channels each unit keeps when the fraction ``ratio`` of its channels is removed → ``{unit: kept}``.

    ``rounding="floor"``: every unit removes ``⌊ratio·n_u⌋`` channels (Li et al.'s one rate per layer; a
    unit of 8 channels loses none at 5 %). ``rounding="total"``: ``round(ratio·Σn_u)`` channels are removed
    in all, spread over the units in proportion to their widths (largest remainders first, ties to the
    earlier unit), so the realised fraction of the scope is ``ratio`` up to half a channel — what an
    iterative step of "5 % of the channels" means (:func:`reidbook.prune.strategies.prune_iterative`).
    Every unit keeps at least ``min_channels``. ``round_to`` > 1 rounds each kept count *up* to a multiple.
    """
    if rounding not in ROUNDINGS:
        raise ValueError(f"rounding must be one of {ROUNDINGS}, got {rounding!r}")
    if rounding == "floor":
        remove = {u.name: int(math.floor(ratio * u.channels + 1e-9)) for u in units}
    else:
        exact = [(ratio * u.channels, i, u) for i, u in enumerate(units)]
        remove = {u.name: int(math.floor(x + 1e-9)) for x, _, u in exact}
        left = int(round(ratio * sum(u.channels for u in units))) - sum(remove.values())
        for _, _, u in sorted(exact, key=lambda t: (-(t[0] - math.floor(t[0] + 1e-9)), t[1]))[:max(0, left)]:
            remove[u.name] += 1
    out = {}
    for u in units:
        n = u.channels - remove[u.name]
        if round_to > 1:  # round the kept count *up* to a multiple (monotone in ratio)
            n = min(u.channels, int(math.ceil(n / round_to)) * round_to)
        out[u.name] = max(min(min_channels, u.channels), n)
    return out


def uniform_rate_for_target(mm: MacModel, units, target: float, min_channels: int = 1) -> float:
    """Smallest uniform channel rate whose widths cost ≤ ``target`` of the multiply-adds (bisection)."""
    goal = target * mm.base
    if mm.macs(uniform_widths(units, 1.0 - 1e-9, min_channels)) > goal:
        raise ValueError(f"target_macs={target} is out of reach in this scope even at {min_channels} channel(s) a unit")
    lo, hi = 0.0, 1.0 - 1e-9
    if mm.macs(uniform_widths(units, 0.0, min_channels)) <= goal:
        return 0.0
    total = sum(u.channels for u in units)
    while hi - lo > 1.0 / (4 * total):
        mid = 0.5 * (lo + hi)
        lo, hi = (lo, mid) if mm.macs(uniform_widths(units, mid, min_channels)) <= goal else (mid, hi)
    return hi


def _global_order(units, scores) -> list[str]:
    """Unit names of all channels sorted from least to most important (ties: unit order, index)."""
    flat = [(float(s), ui, ci) for ui, u in enumerate(units) for ci, s in enumerate(scores[u.name].tolist())]
    flat.sort()
    return [units[ui].name for _, ui, _ in flat]


def _global_widths(units, order: list[str], n_remove: int, min_channels: int) -> dict[str, int]:
    widths = {u.name: u.channels for u in units}
    removed = 0
    for name in order:
        if removed >= n_remove:
            break
        if widths[name] > min_channels:
            widths[name] -= 1
            removed += 1
    return widths


def select_channels(units: list[PruneUnit], scores: dict[str, torch.Tensor], ratio: float | None = None,
                    target_macs: float | None = None, mac_model: MacModel | None = None,
                    global_ranking: bool = False, min_channels: int = 1, round_to: int = 1,
                    rounding: str = "floor") -> dict[str, list[int]]:
    """Which channels each unit keeps → ``{unit: sorted kept indices}``.

    ``ratio`` ∈ [0, 1): fraction of channels removed (per unit, or of all channels with
    ``global_ranking``). ``target_macs`` ∈ (0, 1]: fraction of the original multiply-adds to keep
    (needs ``mac_model``); the smallest uniform ratio / number of globally ranked removals that
    reaches it is found by bisection. Every unit keeps at least ``min_channels``. ``round_to`` > 1
    rounds each unit's kept count up to a multiple (hardware-friendly widths; uniform ranking only).
    ``rounding`` (uniform ranking with ``ratio``): ``"floor"`` per unit, or ``"total"`` — exactly
    ``round(ratio · channels)`` in all (:func:`uniform_widths`); global ranking removes
    ``⌊ratio · channels⌋`` (``"floor"``) or ``round(ratio · channels)`` (``"total"``).
    """
    if round_to > 1 and global_ranking:
        raise ValueError("round_to works with per-layer (uniform) selection only; use global_ranking=False")
    if (ratio is None) == (target_macs is None):
        raise ValueError("give exactly one of ratio= (fraction of channels to remove, in [0, 1)) "
                         "or target_macs= (fraction of multiply-adds to keep, in (0, 1])")
    if ratio is not None and not (0.0 <= ratio < 1.0):
        raise ValueError(f"pruning ratio must be in [0, 1) (fraction of channels removed), got {ratio}")
    if target_macs is not None and not (0.0 < target_macs <= 1.0):
        raise ValueError(f"target_macs must be in (0, 1] (fraction of the original multiply-adds kept), "
                         f"got {target_macs}")
    if min_channels < 1:
        raise ValueError(f"min_channels must be ≥ 1, got {min_channels}")
    if rounding not in ROUNDINGS:
        raise ValueError(f"rounding must be one of {ROUNDINGS}, got {rounding!r}")
    order = _global_order(units, scores) if global_ranking else None
    total = sum(u.channels for u in units)

    def widths_for(x: float, how: str = "floor") -> dict[str, int]:
        if global_ranking:
            n = int(round(x * total)) if how == "total" else int(math.floor(x * total + 1e-9))
            return _global_widths(units, order, n, min_channels)
        return uniform_widths(units, x, min_channels, round_to, how)

    if target_macs is not None:
        if mac_model is None:
            raise ValueError("target_macs needs a MacModel (prune() builds one)")
        goal = target_macs * mac_model.base
        if mac_model.macs(widths_for(1.0 - 1e-9)) > goal:
            floor = mac_model.macs(widths_for(1.0 - 1e-9)) / mac_model.base
            raise ValueError(f"target_macs={target_macs} is out of reach in this scope: keeping {min_channels} "
                             f"channel(s) per unit still costs {floor:.3f} of the original multiply-adds. "
                             "Ask for more, or widen the scope (scope='bottleneck+residual').")
        lo, hi = 0.0, 1.0 - 1e-9
        if mac_model.macs(widths_for(0.0)) <= goal:
            hi = 0.0
        for _ in range(40):
            if hi - lo < 1.0 / (4 * total):
                break
            mid = 0.5 * (lo + hi)
            lo, hi = (lo, mid) if mac_model.macs(widths_for(mid)) <= goal else (mid, hi)
        widths = widths_for(hi)
    else:
        widths = widths_for(ratio, rounding)
    return {u.name: top_channels(scores[u.name], widths[u.name]) for u in units}
