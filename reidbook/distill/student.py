"""Step 3 of Factorized Distillation (§3.6): train the holistic student with FMFBs and RFBs, Eq. (6).

Paper 002. For a batch of ``N`` images and the ``K`` views whose SRs are used:

* Eq. (3), §3.3: ``L_attr^k  = 1/(2N) Σ_i ‖SR_i^k − r_i^{a,k}‖²`` (FMFB ``k``'s output ``r^{a,k}``);
* Eq. (4), §3.4: ``L_metric^k = 1/(2N) Σ_i ‖SR_i^k − r_i^{m,k}‖²`` (RFB ``k``'s output ``r^{m,k}``);
* Eq. (6): ``L_total = L_cls + α/K Σ_k L_attr^k + β/K Σ_k L_metric^k`` with α = 4, β = 2 (§4.1), where
  ``L_cls`` is Eq. (1): ``−Σ_i log softmax(z_i)_{y_i}``, a **sum** over the batch (``cls_reduction="sum"``,
  ``full``), so against the regressions' ``1/(2N)`` it weighs N times its mean.

§4.1's 40 % rule: if random erasing covered more than 40 % of view ``k``'s region in sample ``i``, the two
regression terms of ``(i, k)`` are dropped. We drop the terms from the sums and keep Eq. (3)/(4)'s
``1/(2N)`` (the paper does not say whether ``N`` then shrinks).

Departures, all off in ``full`` (the paper as written) and on in the laptop profiles, measured in quick
(R18a width ⅛ student; control = the same initial student trained as long with ``L_cls`` only):

* ``cls_reduction="mean"`` averages Eq. (1) over the batch (as the teachers' and initial student's
  training does in those profiles): the learning rates, α and β below were all tuned with the mean; the
  paper's sum would multiply L_cls by N = 32 against the regressions (not measured in quick).

* ``regression="mean"`` divides each ‖SR − r‖² by the SR's dimension. Summed over dimensions, the seven
  regression terms start near 470 against ``L_cls`` ≈ 4.2, so in a run of a few hundred iterations the
  student only mimics and its ``L_cls`` rises: FD 33.3 % mAP vs 50.0 % for the control; per dimension,
  43.1 % (stop 14, two-epoch width-⅛ teachers). At full scale the paper's 50 epochs absorb the imbalance.
* ``branch_warmup_epochs`` / ``branch_warmup_lr`` first fit the freshly initialised FMFBs/RFBs alone to
  the SRs, every student parameter (and BN statistic) frozen: a warm-up of the new regression heads,
  nothing more. It is *not* FitNets' first stage (Romero et al., ICLR 2015, §2.2), which trains the
  student's layers up to the guided layer together with the regressor; here no student weight moves
  until the joint stage. Random branches otherwise send large, meaningless gradients into a student that
  is already trained.
  The warm-up must actually *fit*: a ridge regression from the initial student's embedding predicts the
  SRs with R² ≈ 0.6–0.75, but one epoch at the student's lr (5e-4) reached R² ≈ 0.1, so the joint stage
  still pushed the student toward noise (FD 46.3 % vs 50.2 %). Six epochs at lr 1e-2 reach R² ≈ 0.6 in
  about 18 s (no gradient flows through the frozen student).
* α = 1, β = 0.5 instead of 4 and 2 (the paper's 2 : 1 ratio kept): with per-dimension regression the
  paper's values have no meaning, and we measured (4-epoch distillation, width-¼ six-epoch teachers)
  FD − control = +0.7 (α = 4), +2.1 (α = 2), +2.6 and, with another batch order, +1.2 mAP points (α = 1);
  α = 8 lost 0.6. The teachers matter as much: with two-epoch width-⅛ teachers (no better than the
  student) the same recipe gained only +0.5.

All together, chapter 04's quick run (stop 15): FD 57.3 % mAP against 55.6 % for the control (+1.8; rank-1
61.2 vs 61.4); the holistic teacher alone (Table 8's "Hol" row) gave 56.1–56.5 %.

The engine's ``fit`` calls ``criterion(outputs, pids)``; the SR rows and the erased fractions of the
batch are not among those arguments. :class:`DistillLoader` therefore wraps the loader and, before
handing a batch to ``fit``, writes its item indices and erased fractions into a :class:`BatchContext`
that :class:`FDCriterion` reads (CONTRIBUTING.md: FD builds its own criterion with the same signature).
"""
from __future__ import annotations

from pathlib import Path
from typing import Sequence

import torch
from torch import nn

from ..data.views import DistillDataset, View
from ..losses import cross_entropy_loss
from ..presets import Preset
from .store import SRStore

__all__ = ["BatchContext", "DistillLoader", "FDCriterion", "regression_loss", "make_distill_loader",
           "distill_student", "warm_up_branches", "is_branch_parameter", "LOSS_CHOICES", "REGRESSIONS"]

LOSS_CHOICES = ("attr", "metric")


class BatchContext:
    """What the current batch is: item ``indices`` ``[N]`` and ``erased`` fractions ``[N, K]``."""

    def __init__(self):
        self.indices: torch.Tensor | None = None
        self.erased: torch.Tensor | None = None

    def set(self, indices: torch.Tensor, erased: torch.Tensor) -> None:
        self.indices, self.erased = indices, erased


class DistillLoader:
    """Wraps a loader of :class:`~reidbook.data.views.DistillDataset` batches ``(x, pid, cam, idx, erased)``:
    yields ``(x, pid, cam, idx)`` to the engine and puts ``idx`` and ``erased`` into :attr:`context`."""

    def __init__(self, loader, context: BatchContext | None = None):
        self.loader = loader
        self.sampler = loader.sampler  # the engine calls set_epoch / state_dict on it
        self.context = context or BatchContext()

    def __len__(self) -> int:
        return len(self.loader)

    def __iter__(self):
        for x, pid, cam, idx, erased in self.loader:
            self.context.set(idx, erased)
            yield x, pid, cam, idx


def make_distill_loader(items, views: Sequence[View], preset: Preset, seed: int = 0) -> DistillLoader:
    """P×K batches of holistic images with the final student's augmentation (Table 2: flip + erasing)."""
    from torch.utils.data import DataLoader

    from ..data import RandomIdentitySampler

    aug = preset.train_aug
    ds = DistillDataset(items, views, preset.height, preset.width, flip=aug.get("flip", True),
                        erasing=float(aug.get("random_erasing", 0.5)))
    sampler = RandomIdentitySampler(ds.items, batch_size=preset.P * preset.K, num_instances=preset.K, seed=seed)
    return DistillLoader(DataLoader(ds, batch_size=preset.P * preset.K, sampler=sampler, drop_last=True))


REGRESSIONS = ("sum", "mean")


def regression_loss(pred: torch.Tensor, target: torch.Tensor, keep: torch.Tensor | None = None,
                    reduction: str = "sum") -> torch.Tensor:
    """Eq. (3)/(4): ``1/(2N) Σ_i keep_i ‖target_i − pred_i‖²`` (``keep`` = the 40 % rule's mask, or all ones).

    ``reduction="sum"`` is the paper's squared norm (summed over the SR's ``D`` dimensions);
    ``"mean"`` divides it by ``D`` (our laptop-profile departure, see the module docstring).
    """
    if pred.shape != target.shape:
        raise ValueError(f"prediction {tuple(pred.shape)} and SR {tuple(target.shape)} differ in shape; the "
                         "student's branches must be built with the store's SR dimensions (store.dims)")
    if reduction not in REGRESSIONS:
        raise ValueError(f"unknown regression reduction {reduction!r}; choose from {REGRESSIONS}")
    per_sample = (target - pred).pow(2).sum(dim=1)
    if reduction == "mean":
        per_sample = per_sample / pred.shape[1]
    if keep is not None:
        per_sample = per_sample * keep.to(per_sample.dtype)
    return per_sample.sum() / (2 * pred.shape[0])


class FDCriterion(nn.Module):
    """Eq. (6) with the 40 % rule: ``criterion(outputs, pids) -> (total, parts)``.

    ``outputs`` is the student's train-mode dict (``logits``, ``attr``, ``metric``, lists in ``views``
    order). ``parts`` holds ``cls``, ``attr`` and ``metric`` (each Σ_k over views, unweighted) and ``kept``
    (the fraction of (sample, view) pairs the 40 % rule kept). ``regression`` is
    :func:`regression_loss`'s reduction; ``cls_reduction`` is Eq. (1)'s: ``"sum"`` over the batch as written,
    or ``"mean"`` (the laptop profiles' departure). ``use`` selects the terms (Table 7):
    ``("attr", "metric")`` is FD, ``("attr",)`` / ``("metric",)`` its halves, ``()`` the student alone.
    """

    def __init__(self, store: SRStore, views: Sequence[str], context: BatchContext, alpha: float = 4.0,
                 beta: float = 2.0, use: Sequence[str] = LOSS_CHOICES, erase_threshold: float = 0.4,
                 regression: str = "sum", cls_reduction: str = "sum"):
        super().__init__()
        if regression not in REGRESSIONS:
            raise ValueError(f"unknown regression reduction {regression!r}; choose from {REGRESSIONS}")
        if cls_reduction not in REGRESSIONS:
            raise ValueError(f"unknown cls_reduction {cls_reduction!r}; choose from {REGRESSIONS}")
        bad = [u for u in use if u not in LOSS_CHOICES]
        if bad:
            raise ValueError(f"unknown FD loss(es) {bad}; choose from {LOSS_CHOICES}")
        if not 0.0 <= erase_threshold <= 1.0:
            raise ValueError(f"erase_threshold is a fraction in [0, 1], got {erase_threshold}")
        self.views = list(views)
        for i, v in enumerate(self.views):
            self.register_buffer(f"sr_{i}", store.srs[v].float(), persistent=False)
        self.context, self.alpha, self.beta = context, float(alpha), float(beta)
        self.use, self.erase_threshold = tuple(use), float(erase_threshold)
        self.regression, self.cls_reduction = regression, cls_reduction

    def srs(self, k: int) -> torch.Tensor:
        return getattr(self, f"sr_{k}")

    def forward(self, outputs, pids):
        logits = outputs["logits"][0]
        l_cls = cross_entropy_loss(logits, pids)  # Eq. (1) averaged over the batch ...
        if self.cls_reduction == "sum":
            l_cls = l_cls * logits.shape[0]  # ... or summed, as written
        total, parts = l_cls, {"cls": float(l_cls.detach())}
        if not self.use:
            return total, parts
        idx, erased = self.context.indices, self.context.erased
        if idx is None:
            raise RuntimeError("FDCriterion: no batch context; train with the DistillLoader from make_distill_loader")
        dev = l_cls.device
        idx = idx.to(dev)
        keep = (erased.to(dev) <= self.erase_threshold)  # [N, K]: the 40 % rule
        K = len(self.views)
        for name, weight in (("attr", self.alpha), ("metric", self.beta)):
            if name not in self.use:
                continue
            terms = [regression_loss(outputs[name][k], self.srs(k)[idx], keep[:, k], self.regression) for k in range(K)]
            s = torch.stack(terms).sum()
            total = total + weight / K * s
            parts[name] = float(s.detach())
        parts["kept"] = float(keep.float().mean())
        return total, parts


def distill_student(student: nn.Module, items, store: SRStore, views: Sequence[View], preset: Preset,
                    use: Sequence[str] = LOSS_CHOICES, alpha: float = 4.0, beta: float = 2.0,
                    erase_threshold: float = 0.4, device="auto", seed: int = 0, checkpoint_dir=None,
                    grad_clip: float | None = None, desc: str = "distill", regression: str = "sum",
                    branch_warmup_epochs: int = 0, branch_warmup_lr: float | None = None,
                    cls_reduction: str = "sum"):
    """Train ``student`` (with branches for ``views``, see :meth:`FDNet.add_branches`) on ``items`` with
    :class:`FDCriterion`; ``views`` must match the store's rows. Returns the engine's History of the
    joint stage; the branch warm-up's (if any, ``branch_warmup_epochs`` at ``branch_warmup_lr``, default the
    preset's lr) is its attribute ``warmup`` (a History, or ``None``)."""
    from ..engine import fit_preset

    if not use:  # the student alone (Table 7's L_cls row): no views, no SRs
        views, store = [], SRStore({}, "")
    names = [v.name for v in views]
    if use and list(getattr(student, "view_names", [])) != names:
        raise ValueError(f"the student's branches are for views {getattr(student, 'view_names', [])}, but the "
                         f"distillation uses {names}; call student.add_branches(store.subset(views).dims)")
    if use and len(store) != len(items):
        raise ValueError(f"the SR store has {len(store)} rows but the training list {len(items)} items")
    if branch_warmup_epochs < 0:
        raise ValueError(f"branch_warmup_epochs must be ≥ 0, got {branch_warmup_epochs}")
    _check_warmup_lr(branch_warmup_lr)
    loader = make_distill_loader(items, views, preset, seed)
    criterion = FDCriterion(store, names, loader.context, alpha, beta, use, erase_threshold, regression,
                            cls_reduction)
    config = {**preset.to_dict(), "use": list(use), "views": names, "regression": regression,
              "cls_reduction": cls_reduction,
              "branch_warmup_epochs": branch_warmup_epochs, "branch_warmup_lr": branch_warmup_lr}
    warmup = None
    if use and branch_warmup_epochs:
        warmup = warm_up_branches(student, loader, criterion, preset, branch_warmup_epochs, device, seed,
                                  None if checkpoint_dir is None else Path(checkpoint_dir) / "branches",
                                  config, grad_clip, desc, lr=branch_warmup_lr)
    history = fit_preset(student, None, preset, loader=loader, criterion=criterion, seed=seed, device=device,
                         checkpoint_dir=checkpoint_dir, config=config, grad_clip=grad_clip, desc=desc)
    history.warmup = warmup
    return history


def is_branch_parameter(name: str) -> bool:
    """Whether ``name`` (from ``named_parameters()`` or ``named_modules()``) belongs to an FMFB or an RFB."""
    return name.startswith(("fmfb.", "rfb."))


def _check_warmup_lr(lr: float | None) -> None:
    if lr is not None and not lr > 0:  # also refuses NaN
        raise ValueError(f"the branch warm-up's learning rate must be > 0 (or None: the preset's), got {lr}")


def warm_up_branches(student: nn.Module, loader, criterion: FDCriterion, preset: Preset, epochs: int,
                     device="auto", seed: int = 0, checkpoint_dir=None, config: dict | None = None,
                     grad_clip: float | None = None, desc: str = "distill", lr: float | None = None):
    """Train only the FMFBs and RFBs for ``epochs`` epochs, the student frozen: a warm-up of the new branches.

    Not FitNets' first stage (which also trains the student up to its guided layer): no student weight moves.

    The student's parameters get no gradient, so backbone, embedding and classifier keep their values;
    its BatchNorm layers keep their running statistics too (momentum 0 for the stage).
    The branches' optimiser is the preset's, at a constant learning rate: ``lr``, or the preset's if ``None``
    (fresh layers fitting fixed targets take a larger step than a trained student). Returns the History.
    """
    from ..engine import fit_preset

    _check_warmup_lr(lr)
    frozen = [p for n, p in student.named_parameters() if not is_branch_parameter(n) and p.requires_grad]
    for p in frozen:
        p.requires_grad_(False)
    # BatchNorm still normalises with batch statistics (as in the joint stage); momentum 0 keeps the
    # student's running statistics as they are.
    body_bns = [m for n, m in student.named_modules() if isinstance(m, nn.modules.batchnorm._BatchNorm)
                and not is_branch_parameter(n)]
    momenta = [m.momentum for m in body_bns]
    counts = [None if m.num_batches_tracked is None else m.num_batches_tracked.clone() for m in body_bns]
    for m in body_bns:
        m.momentum = 0.0
    try:
        return fit_preset(student, None, preset, loader=loader, criterion=criterion, epochs=epochs,
                          optimizer=preset.optimizer if lr is None else {**preset.optimizer, "lr": lr},
                          schedule={"name": "constant"}, seed=seed, device=device, checkpoint_dir=checkpoint_dir,
                          config={**(config or {}), "stage": "branch warm-up"}, grad_clip=grad_clip,
                          desc=f"{desc} (branches)")
    finally:
        for p in frozen:
            p.requires_grad_(True)
        for m, mom, n in zip(body_bns, momenta, counts):
            m.momentum = mom
            if n is not None:  # the step counter, too: the student's state is exactly what it was
                m.num_batches_tracked.copy_(n)
