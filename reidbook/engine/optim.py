"""Optimisers with per-module learning-rate groups, and the papers' learning-rate schedules.

Two things the papers need and a plain ``torch.optim.SGD(model.parameters())`` cannot say:

* **Per-module learning rates.** GraftedNet (000, §4.2) trains the pre-trained rootstock at 0.01 and
  the freshly initialised scion and accompanying branch at 0.1; Factorized Distillation (002) treats
  the pre-trained backbone and the new embedding layers differently too. ``spec["lr_groups"]`` maps a
  module-name prefix to its learning rate; every other parameter keeps the base ``lr``.
* **Schedules defined per iteration.** DaRe (004, §5, Eq. (4)) decays its learning rate from
  iteration ``t0 = 30 000`` to ``t1 = 60 000`` and switches Adam's ``β1`` from 0.9 to 0.5 at ``t0``;
  the other papers decay in steps at given epochs (MGN 001 §4.2: ×0.1 at 40 and 60 of 80 epochs).
  So every schedule here is a function of the **iteration** ``t`` (the number of optimiser steps
  taken), and epoch-based ones convert their epochs to iterations with ``iters_per_epoch``. The
  engine steps the scheduler once per iteration.

Each schedule is a small ``LRScheduler`` subclass whose ``factor(t)`` multiplies every group's base
learning rate (like ``LambdaLR``, but with no lambdas, so ``state_dict()`` holds only numbers and
round-trips through a ``weights_only=True`` checkpoint).
"""
from __future__ import annotations

import math
from typing import Any, Iterable

import torch
from torch import nn
from torch.optim.lr_scheduler import LRScheduler

__all__ = [
    "build_optimizer", "build_scheduler", "param_groups", "OPTIMIZERS", "SCHEDULES",
    "IterationSchedule", "ConstantSchedule", "StepSchedule", "WarmupStepSchedule", "DaReSchedule",
    "CosineSchedule", "current_lrs",
]

OPTIMIZERS = ("sgd", "adam", "adamw")
_SPEC_KEYS = {"name", "lr", "momentum", "weight_decay", "nesterov", "dampening", "betas", "eps",
              "lr_groups", "no_decay_bn_bias"}


# ----------------------------------------------------------------------------------------------
# Optimisers
# ----------------------------------------------------------------------------------------------
def _strip_wrapper(name: str) -> str:
    """``module.layer1.0.conv1.weight`` (DDP) or ``_orig_mod.…`` (torch.compile) → ``layer1.0.conv1.weight``."""
    for wrapper in ("module.", "_orig_mod."):
        while name.startswith(wrapper):
            name = name[len(wrapper):]
    return name


def _matches(name: str, prefix: str) -> bool:
    """Does the parameter ``name`` belong to the module ``prefix``?

    Matching is at module boundaries, so ``"layer1"`` takes ``layer1.0.conv1.weight`` but not
    ``layer10.…``; a prefix ending in ``"."`` or ``"*"`` is matched as a plain string prefix
    (``"branch*"`` takes ``branch1.…`` and ``branch2.…``).
    """
    if prefix.endswith("*"):
        return name.startswith(prefix[:-1])
    if prefix.endswith("."):
        return name.startswith(prefix)
    return name == prefix or name.startswith(prefix + ".")


def _no_decay(name: str, p: torch.Tensor) -> bool:
    """BN/LayerNorm scales and shifts and all biases: every parameter with fewer than 2 dimensions."""
    return p.ndim <= 1


def param_groups(named_params: Iterable[tuple[str, nn.Parameter]], base_lr: float, weight_decay: float,
                 lr_groups: dict[str, float | dict] | None = None, no_decay_bn_bias: bool = False) -> list[dict]:
    """Split parameters into optimiser groups by module-name prefix.

    Returns a list of ``{"name", "params", "lr", "weight_decay", ...}`` dicts; the group of the
    parameters no prefix claims is called ``"base"`` and comes first. When several prefixes match
    a parameter the longest wins (``{"scion": 0.1, "scion.fire5": 0.05}`` works as expected). A
    prefix's value is a learning rate or a dict of per-group options (``{"lr": 0.1,
    "weight_decay": 0}``). Frozen parameters (``requires_grad=False``) are left out.

    Raises ``ValueError`` naming a prefix that matches no parameter at all (a typo would otherwise
    silently train that module at the base rate).
    """
    lr_groups = dict(lr_groups or {})
    named = [(_strip_wrapper(n), p) for n, p in named_params]
    prefixes = sorted(lr_groups, key=len, reverse=True)
    unmatched = [pre for pre in prefixes if not any(_matches(n, pre) for n, _ in named)]
    if unmatched:
        tops = sorted({n.split(".")[0] for n, _ in named})
        raise ValueError(
            f"lr_groups prefix(es) {unmatched} match no parameter of the model; top-level modules are "
            f"{tops}. Use a module's qualified name (e.g. 'layer1' or 'branch1.reduction'), or end the "
            "prefix with '*' for a plain string prefix")

    groups: dict[str, dict] = {"base": {"name": "base", "params": [], "lr": float(base_lr),
                                        "weight_decay": float(weight_decay)}}
    for pre in sorted(lr_groups):  # deterministic group order: base, then prefixes alphabetically
        opts = lr_groups[pre]
        opts = {"lr": float(opts)} if not isinstance(opts, dict) else dict(opts)
        if "lr" not in opts:
            raise ValueError(f"lr_groups[{pre!r}] = {lr_groups[pre]!r} needs an 'lr'")
        groups[pre] = {"name": pre, "params": [], "weight_decay": float(weight_decay), **opts}
    seen: set[int] = set()
    for name, p in named:
        if not p.requires_grad or id(p) in seen:  # shared (tied) parameters go in once
            continue
        seen.add(id(p))
        owner = next((pre for pre in prefixes if _matches(name, pre)), "base")
        groups[owner]["params"].append(p)

    out = []
    for g in groups.values():
        if no_decay_bn_bias:
            decay = [p for p in g["params"] if not _no_decay("", p)]
            nodecay = [p for p in g["params"] if _no_decay("", p)]
            if decay:
                out.append({**g, "params": decay})
            if nodecay:
                out.append({**g, "name": g["name"] + "/no_decay", "params": nodecay, "weight_decay": 0.0})
        elif g["params"]:
            out.append(g)
    if not out:
        raise ValueError("the model has no trainable parameters (all have requires_grad=False)")
    return out


def build_optimizer(model: nn.Module, spec: dict[str, Any],
                    criterion: nn.Module | None = None) -> torch.optim.Optimizer:
    """An optimiser from a preset's ``optimizer`` dict (CONTRIBUTING.md, "Presets").

    ``spec``: ``name`` (``sgd`` | ``adam`` | ``adamw``), ``lr``, ``momentum`` (SGD, default 0.9),
    ``weight_decay`` (default 0), ``nesterov`` (SGD, default False), ``dampening``, ``betas`` and
    ``eps`` (Adam/AdamW), ``lr_groups`` ({module-name prefix: lr}, see :func:`param_groups`) and
    ``no_decay_bn_bias`` (default False: no weight decay on BN parameters and biases).

    ``criterion``: a loss with its own parameters (e.g. a cosine-softmax classifier); its parameters
    join as ``criterion.*`` (so ``lr_groups`` can address them as ``"criterion"``).

    Every param group carries a ``"name"`` (``"base"``, a prefix, or ``"<prefix>/no_decay"``), which
    the engine logs learning rates under.
    """
    spec = dict(spec)
    unknown = set(spec) - _SPEC_KEYS
    if unknown:
        raise ValueError(f"unknown optimizer option(s) {sorted(unknown)}; known: {sorted(_SPEC_KEYS)}")
    name = str(spec.get("name", "sgd")).lower()
    if name not in OPTIMIZERS:
        raise ValueError(f"unknown optimizer {spec.get('name')!r}; choose one of {', '.join(OPTIMIZERS)}")
    if "lr" not in spec:
        raise ValueError(f"optimizer spec {spec} has no 'lr'")
    lr, wd = float(spec["lr"]), float(spec.get("weight_decay", 0.0))
    if not lr > 0:
        raise ValueError(f"learning rate must be > 0, got {lr}")
    named = list(model.named_parameters())
    if criterion is not None:
        named += [(f"criterion.{n}", p) for n, p in criterion.named_parameters()]
    groups = param_groups(named, lr, wd, spec.get("lr_groups"), bool(spec.get("no_decay_bn_bias", False)))
    if name == "sgd":
        return torch.optim.SGD(groups, lr=lr, momentum=float(spec.get("momentum", 0.9)), weight_decay=wd,
                               nesterov=bool(spec.get("nesterov", False)),
                               dampening=float(spec.get("dampening", 0.0)))
    cls = torch.optim.Adam if name == "adam" else torch.optim.AdamW
    betas = tuple(float(b) for b in spec.get("betas", (0.9, 0.999)))
    return cls(groups, lr=lr, betas=betas, eps=float(spec.get("eps", 1e-8)), weight_decay=wd)


def current_lrs(optimizer: torch.optim.Optimizer) -> dict[str, float]:
    """``{group name: current lr}`` (groups without a name are called ``group<i>``)."""
    return {g.get("name", f"group{i}"): float(g["lr"]) for i, g in enumerate(optimizer.param_groups)}


# ----------------------------------------------------------------------------------------------
# Schedules: lr_t = base_lr · factor(t), t = optimiser steps taken so far
# ----------------------------------------------------------------------------------------------
class IterationSchedule(LRScheduler):
    """Base class: ``lr(t) = base_lr · factor(t)`` for every group; step once per iteration.

    ``last_epoch`` (torch's name) counts iterations here. Subclasses store only numbers, so
    ``state_dict()``/``load_state_dict()`` round-trip through a ``weights_only`` checkpoint.
    """

    def __init__(self, optimizer: torch.optim.Optimizer, last_epoch: int = -1):
        super().__init__(optimizer, last_epoch)

    def factor(self, t: int) -> float:  # pragma: no cover - abstract
        raise NotImplementedError

    def get_lr(self) -> list[float]:
        f = self.factor(self.last_epoch)
        return [base * f for base in self.base_lrs]

    def lr_at(self, t: int) -> list[float]:
        """The learning rates of iteration ``t`` without stepping (for plots and tests)."""
        return [base * self.factor(t) for base in self.base_lrs]

    @property
    def iteration(self) -> int:
        return self.last_epoch


class ConstantSchedule(IterationSchedule):
    """``factor(t) = 1``."""

    def factor(self, t: int) -> float:
        return 1.0


def _step_factor(t: int, milestones: list[int], gamma: float) -> float:
    return gamma ** sum(t >= m for m in milestones)


class StepSchedule(IterationSchedule):
    """Step decay: ``factor(t) = γ^{#milestones ≤ t}`` (milestones in iterations).

    MGN (001, §4.2): lr 0.01, ×0.1 after 40 and 60 of 80 epochs; GraftedNet (000, §4.2) the same
    at 40 and 60; FD (002, §5) halves every 20 epochs.
    """

    def __init__(self, optimizer, milestones: list[int], gamma: float = 0.1, last_epoch: int = -1):
        self.milestones, self.gamma = sorted(int(m) for m in milestones), float(gamma)
        super().__init__(optimizer, last_epoch)

    def factor(self, t: int) -> float:
        return _step_factor(t, self.milestones, self.gamma)


class WarmupStepSchedule(IterationSchedule):
    """Linear warm-up from ``warmup_factor`` to 1 over ``warmup_iters``, then step decay.

    The "bag of tricks" baseline (Luo et al., CVPR-W 2019, §3.1) warms up over 10 epochs from
    0.1× to the base lr, then decays ×0.1 at epochs 40 and 70. Departure: we raise the lr every
    iteration (a straight line) rather than once an epoch (a staircase); both end where they start.
    """

    def __init__(self, optimizer, warmup_iters: int, milestones: list[int], gamma: float = 0.1,
                 warmup_factor: float = 0.1, last_epoch: int = -1):
        self.warmup_iters, self.warmup_factor = int(warmup_iters), float(warmup_factor)
        self.milestones, self.gamma = sorted(int(m) for m in milestones), float(gamma)
        super().__init__(optimizer, last_epoch)

    def factor(self, t: int) -> float:
        step = _step_factor(t, self.milestones, self.gamma)
        if t < self.warmup_iters:
            return step * (self.warmup_factor + (1.0 - self.warmup_factor) * t / self.warmup_iters)
        return step


class DaReSchedule(IterationSchedule):
    """DaRe (004), §5, Eq. (4), after Hermans et al. (2017):

        α(t) = α0                                   if t ≤ t0
        α(t) = α0 · 0.001^((t − t0) / (t1 − t0))    if t0 ≤ t ≤ t1

    and Adam's ``β1`` drops from ``beta1`` (default: the optimiser's, 0.9) to ``beta1_after`` (0.5) from
    iteration ``t0`` on.
    The paper uses t0 = 30 000, t1 = 60 000 iterations (α0 = 3·10⁻⁴, batch 18×4). The paper stops
    at t1; if training runs past it we hold the final value α0·0.001.
    """

    def __init__(self, optimizer, t0: int, t1: int, decay_to: float = 0.001, beta1: float | None = None,
                 beta1_after: float | None = 0.5, last_epoch: int = -1):
        if not 0 <= t0 < t1:
            raise ValueError(f"dare_exp needs 0 <= t0 < t1, got t0={t0}, t1={t1}")
        self.t0, self.t1, self.decay_to = int(t0), int(t1), float(decay_to)
        self.beta1_after = None if beta1_after is None else float(beta1_after)
        if self.beta1_after is not None and not all("betas" in g for g in optimizer.param_groups):
            raise ValueError("dare_exp switches Adam's beta1, but the optimizer has no 'betas' "
                             "(use name='adam' or 'adamw', or set beta1_after=None)")
        # β1 before t0: given, else the optimiser's own (0.9 for Adam's default betas)
        self.beta1 = float(beta1) if beta1 is not None else (
            float(optimizer.param_groups[0]["betas"][0]) if self.beta1_after is not None else None)
        super().__init__(optimizer, last_epoch)

    def factor(self, t: int) -> float:
        if t <= self.t0:
            return 1.0
        return self.decay_to ** ((min(t, self.t1) - self.t0) / (self.t1 - self.t0))

    def beta1_at(self, t: int) -> float | None:
        if self.beta1_after is None:
            return None
        return self.beta1_after if t >= self.t0 else self.beta1

    def _apply_beta1(self) -> None:
        b1 = self.beta1_at(self.last_epoch)
        if b1 is None:
            return
        for g in self.optimizer.param_groups:
            g["betas"] = (b1, g["betas"][1])

    def _initial_step(self) -> None:
        super()._initial_step()
        self._apply_beta1()

    def step(self, epoch: int | None = None) -> None:
        super().step(epoch)
        self._apply_beta1()

    def load_state_dict(self, state_dict: dict[str, Any]) -> None:
        super().load_state_dict(state_dict)
        self._apply_beta1()


class CosineSchedule(IterationSchedule):
    """Cosine annealing from the base lr to ``min_factor``·base over ``total_iters`` (Loshchilov &
    Hutter, ICLR 2017, without restarts), optionally after a linear warm-up of ``warmup_iters``."""

    def __init__(self, optimizer, total_iters: int, min_factor: float = 0.0, warmup_iters: int = 0,
                 warmup_factor: float = 0.1, last_epoch: int = -1):
        self.total_iters, self.min_factor = max(1, int(total_iters)), float(min_factor)
        self.warmup_iters, self.warmup_factor = int(warmup_iters), float(warmup_factor)
        super().__init__(optimizer, last_epoch)

    def factor(self, t: int) -> float:
        if t < self.warmup_iters:
            return self.warmup_factor + (1.0 - self.warmup_factor) * t / self.warmup_iters
        span = max(1, self.total_iters - self.warmup_iters)
        progress = min(1.0, (t - self.warmup_iters) / span)
        return self.min_factor + (1.0 - self.min_factor) * 0.5 * (1.0 + math.cos(math.pi * progress))


# ----------------------------------------------------------------------------------------------
# Building a schedule from a preset's spec
# ----------------------------------------------------------------------------------------------
SCHEDULES = ("constant", "step", "warmup_step", "dare_exp", "cosine")


def _iters(value, unit: str, iters_per_epoch: int) -> int:
    return int(round(float(value) * iters_per_epoch)) if unit == "epochs" else int(value)


def _milestones(spec: dict, epochs: int, unit: str, ipe: int) -> list[int]:
    if "milestones" in spec and "step_size" in spec:
        raise ValueError("give either 'milestones' or 'step_size', not both")
    if "step_size" in spec:
        size = int(spec["step_size"])
        if size <= 0:
            raise ValueError(f"step_size must be > 0, got {size}")
        ms = list(range(size, epochs if unit == "epochs" else epochs * ipe, size))
    else:
        ms = list(spec.get("milestones", []))
    return [_iters(m, unit, ipe) for m in ms]


def build_scheduler(optimizer: torch.optim.Optimizer, spec: dict[str, Any] | None, epochs: int,
                    iters_per_epoch: int) -> IterationSchedule:
    """A per-iteration schedule from a preset's ``schedule`` dict.

    Every spec may say ``unit``: ``"epochs"`` (default) or ``"iters"`` for its times.

    - ``{"name": "constant"}``
    - ``{"name": "step", "milestones": [40, 60], "gamma": 0.1}`` or ``{"name": "step", "step_size": 20,
      "gamma": 0.5}`` (FD: halve every 20 epochs)
    - ``{"name": "warmup_step", "warmup": 10, "warmup_factor": 0.1, "milestones": [40, 70], "gamma": 0.1}``
    - ``{"name": "dare_exp", "t0": 30000, "t1": 60000, "unit": "iters", "decay_to": 0.001,
      "beta1": 0.9, "beta1_after": 0.5}`` (DaRe §5; ``beta1_after: None`` keeps β1)
    - ``{"name": "cosine", "min_factor": 0.0, "warmup": 0, "warmup_factor": 0.1}``
    """
    spec = dict(spec or {"name": "constant"})
    name = spec.pop("name", "constant")
    unit = spec.pop("unit", "epochs")
    if unit not in ("epochs", "iters"):
        raise ValueError(f"schedule unit must be 'epochs' or 'iters', got {unit!r}")
    ipe = int(iters_per_epoch)
    if ipe <= 0:
        raise ValueError(f"iters_per_epoch must be > 0, got {iters_per_epoch}")

    def take(*keys):
        unknown = set(spec) - set(keys)
        if unknown:
            raise ValueError(f"unknown option(s) {sorted(unknown)} for schedule {name!r}; known: {sorted(keys)}")

    if name == "constant":
        take()
        return ConstantSchedule(optimizer)
    if name == "step":
        take("milestones", "step_size", "gamma")
        return StepSchedule(optimizer, _milestones(spec, epochs, unit, ipe), float(spec.get("gamma", 0.1)))
    if name == "warmup_step":
        take("milestones", "step_size", "gamma", "warmup", "warmup_factor")
        return WarmupStepSchedule(optimizer, _iters(spec.get("warmup", 10), unit, ipe),
                                  _milestones(spec, epochs, unit, ipe), float(spec.get("gamma", 0.1)),
                                  float(spec.get("warmup_factor", 0.1)))
    if name == "dare_exp":
        take("t0", "t1", "decay_to", "beta1", "beta1_after")
        if "t0" not in spec or "t1" not in spec:
            raise ValueError("dare_exp needs 't0' and 't1' (DaRe §5: t0=30000, t1=60000 with unit='iters')")
        return DaReSchedule(optimizer, _iters(spec["t0"], unit, ipe), _iters(spec["t1"], unit, ipe),
                            float(spec.get("decay_to", 0.001)), spec.get("beta1"), spec.get("beta1_after", 0.5))
    if name == "cosine":
        take("min_factor", "warmup", "warmup_factor")
        return CosineSchedule(optimizer, epochs * ipe, float(spec.get("min_factor", 0.0)),
                              _iters(spec.get("warmup", 0), unit, ipe), float(spec.get("warmup_factor", 0.1)))
    raise ValueError(f"unknown schedule {name!r}; choose one of {', '.join(SCHEDULES)}")
