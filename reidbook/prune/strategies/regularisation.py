"""Pruning by **regularisation** (paper 003, §3.2.1 and Table 2's "strategy" column; §4.2 for why the survey
runs Auto-Balanced): a penalty added to the training loss moves the information of the channels that will go
into the ones that stay, and the network is cut only afterwards.

* :func:`auto_balanced_prune` — Auto-Balanced filter pruning (Ding et al., AAAI 2018; survey Eq. 3–10,
  Alg. 3): split every layer's filters by their ℓ1 norm into a weak set P (to prune) and a strong set R,
  train with ``L = L₀ + α·S(P) + τ·S(R)``, ``τ = −α·S(P)/S(R)`` (weak filters shrink, strong ones grow,
  the two terms balance), re-split each epoch, then remove P for good and optionally fine-tune.
* :func:`play_and_prune` — Play-and-Prune (Singh et al., IJCAI 2019; survey Eq. 18–23, Alg. 6): rounds of
  *AFP* (mark the weakest filters U, train with ``λ_A‖U‖₁``, remove them) and *PRC* (measure accuracy on a
  held-out split, then adapt the pruning rate and ``λ_A`` to the slack ``C(#w) − (ξ − ε)``; a round with no
  slack prunes nothing and only retrains, the "play").

Both stop on a multiply-add target (the survey's C1 ≈ 1/2, C2 ≈ 1/3) and return ``(smaller model,
StrategyReport)``. Their criterion is ℓ1 by definition (both papers rank filters by their ℓ1 norm).
"""
from __future__ import annotations

import copy
import types

import torch
from torch import nn

from ...profile import count_macs, count_params
from ..api import prune
from ..criteria import AFPRegularizer, AutoBalancedRegularizer, PruningRateController, l1_norm
from ..report import StrategyReport
from ..selection import MacModel, uniform_rate_for_target, uniform_widths
from ..surgery import apply_selection, find_units
from ..training import last_loss, train_with_penalty
from .common import C1, check_target, retrain

__all__ = ["auto_balanced_prune", "BalancedPenalty", "weak_share", "play_and_prune", "holdout_split"]


def _single_conv_units(net: nn.Module, scope: str, who: str):
    units = find_units(net, scope)
    multi = [u.name for u in units if len(u.producers) != 1]
    if multi:
        raise ValueError(f"{who} regularises one conv per unit; units like {multi[0]} are written by several "
                         "coupled convs (residual channels). Use scope='bottleneck'.")
    return units


# ---------------------------------------------------------------------------------------------
# Auto-Balanced (Ding et al. 2018)
# ---------------------------------------------------------------------------------------------
class BalancedPenalty:
    """Auto-Balanced's penalty ``α·S(P) + τ·S(R)`` (Eq. 7–10) over the units' convs, optionally including
    each channel's BatchNorm scale γ.

    Departure (``bn_gamma=True``, the default): in a BN network a conv filter's scale is normalised away,
    so shrinking ``W_j`` alone does not shrink channel j's output. We add ``λ_j·γ_j²`` to the channel's term
    in Eq. (7) — the channel's parameters are its filter *and* its BN scale (γ is the channel's scale in
    Liu et al.'s network slimming) — so that the weak channels' outputs really fade before they are cut.
    ``bn_gamma=False`` is the paper's conv-only form. The P/R split and the λ factors come from
    :class:`reidbook.prune.criteria.AutoBalancedRegularizer` (ℓ1 norms, Eq. 3–6); ``split()`` re-draws them.
    """

    def __init__(self, net: nn.Module, units, keep: dict[str, int], alpha: float = 1e-3, bn_gamma: bool = True):
        mods = dict(net.named_modules())
        self.reg = AutoBalancedRegularizer({u.name: mods[u.conv] for u in units}, keep, alpha)
        self.bns = {u.name: mods[u.bn] for u in units if bn_gamma and u.bn is not None}
        self.alpha = float(alpha)

    def split(self) -> None:
        self.reg.split()

    @property
    def prune_masks(self) -> dict[str, torch.Tensor]:
        return self.reg.prune_masks

    def terms(self) -> tuple[torch.Tensor, torch.Tensor]:
        sp, sr = self.reg.terms()
        for name, bn in self.bns.items():
            lam = self.reg.lambdas[name].to(bn.weight.device, bn.weight.dtype)
            mask = self.reg.prune_masks[name].to(bn.weight.device)
            sq = bn.weight.pow(2)
            sp = sp + (lam * sq * mask).sum()
            sr = sr + (lam * sq * ~mask).sum()
        return sp, sr

    def __call__(self) -> torch.Tensor:
        sp, sr = self.terms()
        if not torch.is_tensor(sr) or float(sr.detach()) == 0.0:
            return self.alpha * sp
        tau = (-self.alpha * sp / sr).detach()  # Eq. (10), recomputed at every step from the current weights
        return self.alpha * sp + tau * sr


@torch.no_grad()
def weak_share(net: nn.Module, units, masks: dict[str, torch.Tensor]) -> float:
    """Share of the units' ℓ1 filter mass held by the weak set P: ``Σ_P ‖W_j‖₁ / Σ_all ‖W_j‖₁``.

    Auto-Balanced's penalty should drive it down while training (the information moves to R)."""
    mods = dict(net.named_modules())
    weak = total = 0.0
    for u in units:
        m = l1_norm(mods[u.conv].weight)
        weak += float(m[masks[u.name].to(m.device)].sum())
        total += float(m.sum())
    return weak / max(total, 1e-300)


def auto_balanced_prune(model: nn.Module, target_macs: float = C1, dataset=None, preset=None, epochs: int = 2,
                        alpha: float = 1e-3, bn_gamma: bool = True, finetune_epochs: int = 0,
                        input_size=(256, 128), scope: str = "bottleneck", lr_scale: float = 0.1, device="auto",
                        seed: int = 0, max_iters_per_epoch: int | None = None, min_channels: int = 1,
                        engine: str = "torch_pruning") -> tuple[nn.Module, StrategyReport]:
    """Auto-Balanced filter pruning to ``target_macs`` (survey Eq. 3–10, Alg. 3; Ding et al. 2018).

    1. ``r`` (channels each unit keeps) = the uniform rate that meets ``target_macs`` (the survey's §4 uses
       one rate for every layer);
    2. split each unit's filters into P / R by ℓ1 (Eq. 3–5), λ factors (Eq. 6);
    3. train ``epochs`` epochs with ``L₀ + α·S(P) + τ·S(R)`` (:class:`BalancedPenalty`), re-splitting after
       every epoch (Ding et al. re-derive the subsets as the weights move);
    4. remove P (physically, :func:`reidbook.prune.surgery.apply_selection`), then fine-tune
       ``finetune_epochs`` epochs without the penalty.

    Without ``dataset``/``preset`` steps 3–4 are skipped (then it equals one-shot ℓ1 pruning; tests use it
    for the mechanics). ``report.iterations`` holds, per epoch, the loss, the penalty and
    :func:`weak_share` before and after the epoch. The input model is untouched.
    """
    target = check_target(target_macs)
    if alpha < 0:
        raise ValueError(f"Auto-Balanced alpha (regularisation factor) must be ≥ 0, got {alpha}")
    net = copy.deepcopy(model)
    units = _single_conv_units(net, scope, "Auto-Balanced")
    mm = MacModel(net, units, input_size)
    base_params = count_params(net)
    keep_n = uniform_widths(units, uniform_rate_for_target(mm, units, target, min_channels), min_channels)
    pen = BalancedPenalty(net, units, keep_n, alpha, bn_gamma)
    records: list[dict] = []
    state = {"before": weak_share(net, units, pen.prune_masks)}

    def on_epoch_end(e: int, record: dict, _model) -> None:
        after = weak_share(net, units, pen.prune_masks)
        records.append({"step": e, "loss": last_loss(record), "penalty": record.get("penalty"),
                        "weak_share_before": state["before"], "weak_share_after": after})
        pen.split()
        state["before"] = weak_share(net, units, pen.prune_masks)

    if dataset is not None and preset is not None and epochs > 0:
        train_with_penalty(net, dataset, preset, epochs, pen, lr_scale, device, seed, max_iters_per_epoch,
                           on_epoch_end, desc="auto-balanced")
    pen.split()  # the final P/R split on the trained weights decides what goes
    keep = {u.name: torch.nonzero(~pen.prune_masks[u.name]).flatten().tolist() for u in units}
    net.eval()
    apply_selection(net, units, keep, engine=engine, input_size=input_size)
    loss = retrain(net, dataset, preset, finetune_epochs, lr_scale, device, seed + 1, max_iters_per_epoch)
    if finetune_epochs > 0 and loss is not None:
        records.append({"step": "fine-tune", "loss": loss})
    net.eval()
    return net, StrategyReport(method="l1", input_size=tuple(input_size), params_before=base_params,
                               params_after=count_params(net), macs_before=mm.base,
                               macs_after=count_macs(net, input_size),
                               strategy="auto_balanced", target_macs=target, iterations=records)


# ---------------------------------------------------------------------------------------------
# Play and Prune (Singh et al. 2019)
# ---------------------------------------------------------------------------------------------
def holdout_split(dataset, n_ids: int = 20, seed: int = 0):
    """Hold out ``n_ids`` training identities as a small validation set for Play-and-Prune's controller.

    Returns ``(train, val)``: ``train`` is ``dataset`` without those identities (labels unchanged),
    ``val`` has ``.query`` (the first image of each held-out identity) and ``.gallery`` (the others), the
    layout :func:`reidbook.eval.evaluate_model` reads. The controller's accuracy is measured on
    identities the pruning never trains on."""
    pids = sorted({pid for _, pid, _ in dataset.train})
    if not 1 <= n_ids < len(pids):
        raise ValueError(f"holdout_split: n_ids must be in [1, {len(pids) - 1}] for {len(pids)} training identities, "
                         f"got {n_ids}")
    g = torch.Generator().manual_seed(seed)
    held = {pids[i] for i in torch.randperm(len(pids), generator=g)[:n_ids].tolist()}
    query, gallery, seen = [], [], set()
    for item in dataset.train:
        if item[1] in held:
            (gallery if item[1] in seen else query).append(item)
            seen.add(item[1])
    train = copy.copy(dataset)
    train.train = [it for it in dataset.train if it[1] not in held]
    return train, types.SimpleNamespace(query=query, gallery=gallery, train=[])


def _default_evaluate(val, preset, device):
    from ...eval import evaluate_model

    def evaluate(m: nn.Module) -> float:
        return 100.0 * float(evaluate_model(m, val, preset.height, preset.width, device=device, flip=False)["mAP"])

    return evaluate


def play_and_prune(model: nn.Module, target_macs: float = C1, dataset=None, preset=None, evaluate=None,
                   eps: float = 2.0, step: float = 0.05, max_step: float = 0.25, lam: float = 1e-4,
                   epochs_per_round: int = 1, max_rounds: int = 40, force_target: bool = True, holdout_ids: int = 20,
                   input_size=(256, 128), scope: str = "bottleneck", lr_scale: float = 0.1, device="auto",
                   seed: int = 0, max_iters_per_epoch: int | None = None,
                   min_channels: int = 1) -> tuple[nn.Module, StrategyReport]:
    """Play-and-Prune's controller loop to ``target_macs`` (survey Eq. 18–23, Alg. 6; Singh et al. 2019).

    ``ξ`` = ``evaluate(model)`` of the unpruned model (default: mAP in % on :func:`holdout_split` of
    ``dataset``, whose other identities are used for training). Each round:

    * **AFP** (Eq. 18–19): mark the ``rate`` fraction of lowest-ℓ1 filters of every unit as U, train
      ``epochs_per_round`` epochs with ``λ_A‖U‖₁`` added to the loss (pushing U towards zero), then remove
      ``round(rate · C)`` of the ``C`` current channels (as a step of
      :func:`~reidbook.prune.strategies.prune_iterative`; the last round at most down to the target) ranked
      by ℓ1 — the filters U the penalty has just weakened;
    * **PRC** (Eq. 21–23): measure ``C(#w)`` = ``evaluate`` and update the controller with the slack
      ``C(#w) − (ξ − ε)``: ``rate ← δ_w·T_r·rate`` with ``δ_w = 1/ε`` (no accuracy lost → same rate; better →
      faster; worse → slower; beyond the tolerance ε → 0), ``λ_A ← slack·λ``.

    A round at rate 0 prunes nothing and only retrains ("play") until the accuracy is back within ε.
    Departures: Play-and-Prune prunes by a *threshold* on filter norms (``W_A``) and has no cost target; we
    let the controller drive a *rate* (the same role, in units the multiply-add target understands), the rate
    restarts at ``step`` after a play round (Eq. 21 read literally would stay at 0 for ever), and if the
    target is not reached after ``max_rounds`` a last round prunes to it (``force_target``; recorded as
    ``forced``). Without ``dataset``/``preset`` rounds do not train (mechanics only; ``evaluate`` required).
    """
    target = check_target(target_macs)
    if eps <= 0:
        raise ValueError(f"Play-and-Prune tolerance eps must be > 0 (accuracy points you accept to lose), got {eps}")
    if not 0.0 < step <= max_step < 1.0:
        raise ValueError(f"need 0 < step ≤ max_step < 1 (fractions of channels per round), got {step}, {max_step}")
    train_ds = dataset
    if evaluate is None:
        if dataset is None or preset is None:
            raise ValueError("Play-and-Prune measures accuracy each round: pass evaluate=callable(model) -> accuracy, "
                             "or dataset= and preset= (a held-out split of the training identities is used)")
        train_ds, val = holdout_split(dataset, holdout_ids, seed)
        evaluate = _default_evaluate(val, preset, device)
    train = train_ds is not None and preset is not None
    net = copy.deepcopy(model).eval()
    _single_conv_units(net, scope, "Play-and-Prune")  # refuses units written by several coupled convs
    base_macs, base_params = count_macs(net, input_size), count_params(net)
    goal = target * base_macs
    xi = float(evaluate(net))
    ctrl = PruningRateController(xi=xi, eps=eps, delta_w=1.0 / eps, lam=lam, threshold=step)
    rate, lambda_a, cur_macs = step, eps * lam, base_macs
    records: list[dict] = []
    for k in range(1, max_rounds + 2):
        if cur_macs <= goal:
            break
        forced = k > max_rounds
        if forced and not force_target:
            raise RuntimeError(f"Play-and-Prune did not reach target_macs={target} in {max_rounds} rounds "
                               f"(MACs ×{cur_macs / base_macs:.3f}); raise max_rounds or eps")
        mods = dict(net.named_modules())
        convs = {u.name: mods[u.conv] for u in find_units(net, scope)}
        loss = None
        if train:
            afp = AFPRegularizer(convs, alpha=rate, lambda_a=lambda_a) if rate > 0 else None
            hist = train_with_penalty(net, train_ds, preset, epochs_per_round, afp, lr_scale, device, seed + k,
                                      max_iters_per_epoch, desc="play-and-prune")
            loss = last_loss(hist.records[-1]) if hist.records else None
        before = cur_macs
        if rate > 0 or forced:
            common = dict(input_size=input_size, scope=scope, seed=seed, min_channels=min_channels)
            rep = None
            if not forced:  # remove `rate` of the current channels (round(rate·C), as prune_iterative's step)
                cand, rep = prune(net, "l1", ratio=rate, rounding="total", **common)
            if rep is None or rep.macs_after <= goal:  # forced, or the last round: no further than the target
                cand, rep = prune(net, "l1", target_macs=min(1.0, goal / cur_macs), **common)
            net, cur_macs = cand, rep.macs_after
        net.eval()
        acc = float(evaluate(net))
        rec = {"step": k, "rate": rate, "lambda_A": lambda_a, "accuracy": acc, "slack": ctrl.slack(acc),
               "macs_ratio": cur_macs / base_macs, "pruned": cur_macs < before, "forced": forced, "loss": loss}
        threshold, lambda_a = ctrl.update(acc)
        if threshold == 0.0 and ctrl.slack(acc) > 0:  # recovered after a play round: restart (departure)
            threshold = ctrl.threshold = step
        rate = min(threshold, max_step)
        rec["next_rate"] = rate
        records.append(rec)
    net.eval()
    return net, StrategyReport(method="l1", input_size=tuple(input_size), params_before=base_params,
                               params_after=count_params(net), macs_before=base_macs,
                               macs_after=count_macs(net, input_size), strategy="play_and_prune", target_macs=target,
                               iterations=records, notes={"xi": xi})
