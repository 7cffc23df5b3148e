"""How pruning is *done*: the survey's strategies (paper 003, §3.4 "Pruning strategies" and Table 2's
"strategy" column; §4 for the experimental protocol with targets C1 ≈ 1/2 and C2 ≈ 1/3 of the original
multiply-adds).

* :func:`prune_once` — **prune in one step, then fine-tune** (Li et al. 2017; Entropy, ThiNet): score,
  cut to the multiply-add target with :func:`reidbook.prune.prune`, retrain briefly.
* :func:`prune_iterative` — **iterative pruning** (Taylor, Molchanov et al. 2017; the survey's §4 protocol
  prunes "about 5 % of the channels" per iteration): re-rank on the current model, remove a small fraction,
  retrain for a few epochs, repeat until the multiply-add target is reached.
* :func:`progressive_soft_prune` — **soft pruning during training** (SFP / PSFP, He et al.; soft FPGM):
  after every epoch the lowest-ranked filters are *zeroed* (conv weight and BN γ/β, survey Eq. 11–12 for
  PSFP's progressive rate) but keep training and may recover; at the end the zeroed channels are removed
  (:func:`reidbook.prune.surgery.harden`), giving a physically smaller network.

Every strategy stops on multiply-adds (``target_macs`` = fraction of the original kept, measured at
``input_size`` by :class:`reidbook.prune.MacModel` / :func:`reidbook.profile.count_macs`) and returns
``(smaller model, StrategyReport)``. Retraining goes through :func:`reidbook.engine.fit` with the preset's
losses (:func:`reidbook.losses.build_criterion`). The other two families of the survey are in
:mod:`.strategies_reg` (pruning by regularisation: Auto-Balanced, Play-and-Prune's controller loop) and
:mod:`.strategies_recon` (layer-by-layer reconstruction: ThiNet, Channel Pruning); PCB's head in
:mod:`.strategies_pcb`.
"""
from __future__ import annotations

import copy
import math
from dataclasses import asdict, dataclass, field

import torch
from torch import nn

from ..profile import count_macs, count_params
from .api import DATA_METHODS, MacModel, _check_method, _top, _uniform_widths, finetune, prune, score_channels
from .surgery import find_units, harden, soft_prune_units

__all__ = ["StrategyReport", "prune_once", "prune_iterative", "progressive_soft_prune", "soft_prune_step",
           "SOFT_CRITERIA", "C1", "C2", "train_with_penalty", "harden_units"]

C1, C2 = 1 / 2, 1 / 3  # the survey's two compression targets (fraction of the multiply-adds kept, §4)
SOFT_CRITERIA = {"psfp": "l2", "l2": "l2", "l1": "l1", "fpgm": "fpgm"}  # soft pruning scores filters only


@dataclass
class StrategyReport:
    """What a strategy did: cost before/after and one record per pruning iteration (or PSFP epoch)."""

    strategy: str
    method: str
    target_macs: float
    input_size: tuple
    params_before: int
    params_after: int
    macs_before: int
    macs_after: int
    iterations: list[dict] = field(default_factory=list)

    @property
    def macs_ratio(self) -> float:
        return self.macs_after / self.macs_before

    @property
    def params_ratio(self) -> float:
        return self.params_after / self.params_before

    @property
    def reached(self) -> bool:
        """Whether the multiply-add target was met (small float slack)."""
        return self.macs_ratio <= self.target_macs + 1e-9

    def to_dict(self) -> dict:
        d = asdict(self)
        d.update(macs_ratio=self.macs_ratio, params_ratio=self.params_ratio, reached=self.reached)
        return d

    def summary(self) -> str:
        return (f"{self.strategy}/{self.method}: {len(self.iterations)} step(s), params "
                f"{self.params_before / 1e6:.3f}M → {self.params_after / 1e6:.3f}M (×{self.params_ratio:.3f}), "
                f"MACs ×{self.macs_ratio:.3f} (target ≤ {self.target_macs:.3f})")


def _check_target(target_macs: float) -> float:
    if not 0.0 < float(target_macs) <= 1.0:
        raise ValueError(f"target_macs must be in (0, 1] (fraction of the original multiply-adds kept; the survey's "
                         f"C1 = 1/2, C2 = 1/3), got {target_macs}")
    return float(target_macs)


def _retrain(model, dataset, preset, epochs, lr_scale, device, seed, max_iters_per_epoch):
    """Short retraining through :func:`reidbook.prune.finetune` (``engine.fit``); ``None`` when skipped."""
    if dataset is None or preset is None or epochs <= 0:
        return None
    hist = finetune(model, dataset, preset, epochs=epochs, lr_scale=lr_scale, device=device, seed=seed,
                    max_iters_per_epoch=max_iters_per_epoch)
    return _last_loss(hist)


def _last_loss(hist) -> float | None:
    recs = getattr(hist, "records", None) or []
    if not recs:
        return None
    rec = recs[-1]
    for k in ("loss", "train_loss", "total"):
        if k in rec:
            return float(rec[k])
    return None


def prune_once(model: nn.Module, method: str, target_macs: float = C1, dataset=None, preset=None, epochs: int = 1,
               data=None, input_size=(256, 128), scope: str = "bottleneck", lr_scale: float = 0.1, device="auto",
               seed: int = 0, max_iters_per_epoch: int | None = None, **options) -> tuple[nn.Module, StrategyReport]:
    """Prune once to ``target_macs`` with ``method``, then fine-tune ``epochs`` epochs on ``dataset.train``
    (survey §3.4, "one-step pruning": Li et al. 2017 §4; Table 2). ``data`` feeds data criteria;
    ``options`` go to :func:`reidbook.prune.prune`. Fine-tuning is skipped without ``dataset``/``preset``.
    The input model is untouched."""
    target = _check_target(target_macs)
    small, rep = prune(model, method, target_macs=target, data=data, input_size=input_size, scope=scope, seed=seed,
                       **options)
    loss = _retrain(small, dataset, preset, epochs, lr_scale, device, seed, max_iters_per_epoch)
    small.eval()
    report = StrategyReport("once", method, target, tuple(input_size), rep.params_before, count_params(small),
                            rep.macs_before, count_macs(small, input_size),
                            [{"step": 1, "macs_ratio": rep.macs_ratio, "params_ratio": rep.params_ratio,
                              "channel_ratio": rep.channel_ratio, "loss": loss}])
    return small, report


def prune_iterative(model: nn.Module, method: str, target_macs: float = C1, step: float = 0.05, dataset=None,
                    preset=None, epochs_per_step: int = 1, data=None, input_size=(256, 128), scope: str = "bottleneck",
                    lr_scale: float = 0.1, device="auto", seed: int = 0, max_iters_per_epoch: int | None = None,
                    max_steps: int = 200, **options) -> tuple[nn.Module, StrategyReport]:
    """Iterative pruning (survey §3.4 and §4: "≈5 % of the channels per iteration", Taylor's Alg. 8):
    repeat *re-rank on the current model → remove a ``step`` of channels → retrain ``epochs_per_step``*
    until the multiply-adds reach ``target_macs`` of the original.

    A step of channel fraction ``s`` is applied as a multiply-add cut of ``1 − (1 − s)²`` of the current
    model (a bottleneck's middle conv loses ``s`` of its inputs *and* outputs), selected by
    :func:`reidbook.prune.select_channels`' bisection — so a step always removes at least one channel,
    also at smoke widths where ``5 % · 8`` channels would round to none. The last step is clipped so
    the model lands on the target. Data criteria re-score on ``data`` each step.
    """
    target = _check_target(target_macs)
    _check_method(method)
    if not 0.0 < step < 1.0:
        raise ValueError(f"step must be in (0, 1) (fraction of channels removed per iteration), got {step}")
    if method in DATA_METHODS and data is None:
        raise ValueError(f"method {method!r} scores channels from data: pass data= (images or a loader)")
    base_macs, base_params = count_macs(model, input_size), count_params(model)
    goal = target * base_macs
    mac_step = 1.0 - (1.0 - step) ** 2
    cur, cur_macs, records = copy.deepcopy(model), base_macs, []
    for i in range(1, max_steps + 1):
        if cur_macs <= goal:
            break
        rel = max(goal / cur_macs, 1.0 - mac_step)
        cur, rep = prune(cur, method, target_macs=min(1.0, rel), data=data, input_size=input_size, scope=scope,
                         inplace=True, seed=seed, **options)
        cur_macs = rep.macs_after
        loss = _retrain(cur, dataset, preset, epochs_per_step, lr_scale, device, seed + i, max_iters_per_epoch)
        records.append({"step": i, "macs_ratio": cur_macs / base_macs, "params_ratio": rep.params_after / base_params,
                        "channel_ratio": rep.channel_ratio, "loss": loss})
        if rep.macs_after >= rep.macs_before:
            raise RuntimeError(f"iterative pruning stalled at step {i} (MACs ×{cur_macs / base_macs:.3f}); the target "
                               f"{target} may be out of reach in scope {scope!r}")
    else:
        raise RuntimeError(f"iterative pruning did not reach target_macs={target} in {max_steps} steps; raise max_steps")
    cur.eval()
    return cur, StrategyReport("iterative", method, target, tuple(input_size), base_params, count_params(cur),
                               base_macs, count_macs(cur, input_size), records)


def _rate_for_target(mm: MacModel, units, target: float, min_channels: int) -> float:
    """Smallest uniform channel rate whose widths cost ≤ ``target`` of the multiply-adds (bisection)."""
    goal = target * mm.base
    if mm.macs(_uniform_widths(units, 1.0 - 1e-9, min_channels)) > goal:
        raise ValueError(f"target_macs={target} is out of reach in this scope even at {min_channels} channel(s) a unit")
    lo, hi = 0.0, 1.0 - 1e-9
    if mm.macs(_uniform_widths(units, 0.0, min_channels)) <= goal:
        return 0.0
    total = sum(u.channels for u in units)
    while hi - lo > 1.0 / (4 * total):
        mid = 0.5 * (lo + hi)
        lo, hi = (lo, mid) if mm.macs(_uniform_widths(units, mid, min_channels)) <= goal else (mid, hi)
    return hi


def soft_prune_step(model: nn.Module, units, criterion: str, rate: float, min_channels: int = 1) -> dict[str, list[int]]:
    """One soft-pruning step (SFP/PSFP): in every unit zero the ``rate`` lowest-scored filters (with their
    BN γ/β) → ``{unit: zeroed indices}``. Scores are recomputed on the current weights, so a channel zeroed
    before can come back if training regrew it (He et al., SFP §3.2)."""
    scores = score_channels(model, criterion, units)
    widths = _uniform_widths(units, rate, min_channels)
    zero = {}
    for u in units:
        keep = set(_top(scores[u.name], widths[u.name]))
        zero[u.name] = [c for c in range(u.channels) if c not in keep]
    soft_prune_units(model, units, zero)
    return zero


class _Penalised:
    """``criterion(outputs, pids) + penalty()``: how a regulariser joins the training loss (survey Eq. 9, 19).

    The penalty's value is reported as the loss part ``name`` so that it shows in the training history."""

    def __init__(self, criterion, penalty, name: str = "penalty"):
        self.criterion, self.penalty, self.name = criterion, penalty, name

    def __call__(self, outputs, pids):
        total, parts = self.criterion(outputs, pids)
        p = self.penalty()
        parts = dict(parts)
        parts[self.name] = float(p.detach()) if torch.is_tensor(p) else float(p)
        return total + p, parts


def train_with_penalty(model: nn.Module, dataset, preset, epochs: int, penalty=None, lr_scale: float = 1.0,
                       device="auto", seed: int = 0, max_iters_per_epoch: int | None = None, on_epoch_end=None,
                       desc: str = "train"):
    """Train ``model`` on ``dataset.train`` with the preset's losses **plus** ``penalty()`` (a callable → scalar
    tensor, e.g. :class:`reidbook.prune.criteria.AutoBalancedRegularizer`) through :func:`reidbook.engine.fit`;
    constant learning rate = preset lr × ``lr_scale``. ``on_epoch_end(epoch, record, model)`` gets 1-based
    epochs (as from ``fit``). Returns the ``History``."""
    from ..data import build_transforms, make_train_loader
    from ..engine import build_optimizer, fit
    from ..losses import build_criterion
    from ..utils import resolve_device

    tf = build_transforms(preset.height, preset.width, is_train=True, **preset.train_aug)
    loader = make_train_loader(dataset.train, tf, preset.P, preset.K, seed=seed, cache=True)
    crit = build_criterion(preset.losses)
    if isinstance(crit, nn.Module):
        crit.to(resolve_device(device))
    spec = dict(preset.optimizer)
    spec["lr"] = spec["lr"] * lr_scale
    spec.pop("lr_groups", None)
    opt = build_optimizer(model, spec, crit)
    loss = _Penalised(crit, penalty) if penalty is not None else crit
    return fit(model, loader, loss, opt, None, epochs=epochs, device=device, seed=seed,
               max_iters_per_epoch=max_iters_per_epoch, on_epoch_end=on_epoch_end, desc=desc)


@torch.no_grad()
def harden_units(model: nn.Module, units, min_channels: int = 1) -> dict[str, list[int]]:
    """Remove the zeroed channels of ``units`` whose consumers may be convs **or linear layers** (a model's
    head, e.g. PCB's local conv → six classifiers), by slicing, in place → ``{unit: kept indices}``.

    :func:`reidbook.prune.surgery.harden` handles the backbone; a head read by ``nn.Linear`` layers is
    not traced by the surgery engines (PCB's test path does not even use its classifiers)."""
    from .surgery import kept_after_zeroing, slice_bn_, slice_conv_in_, slice_conv_out_

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
    ``head_units`` (e.g. :func:`reidbook.prune.strategies_pcb.pcb_head_units`) are soft-pruned at the same
    rate and removed by :func:`harden_units` (they do not count in the multiply-add target: a head read
    only in training costs nothing at test time). The input model is untouched.
    """
    from .criteria import psfp_rate

    target = _check_target(target_macs)
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
    goal = _rate_for_target(mm, units, target, min_channels)
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
        rec = {"step": e, "rate": r, "macs_ratio": mm.macs(widths) / mm.base, "loss": _last_loss_rec(record)}
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
    name = "psfp" if progressive else "soft"
    return net, StrategyReport(name, criterion, target, tuple(input_size), base_params, count_params(net), mm.base,
                               count_macs(net, input_size), records)


def _last_loss_rec(record: dict) -> float | None:
    for k in ("loss", "train_loss", "total"):
        if k in record and isinstance(record[k], (int, float)) and math.isfinite(record[k]):
            return float(record[k])
    return None
