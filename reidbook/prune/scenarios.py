"""The survey's four design scenarios for pruning (paper 003, §3.4 "Design scenarios with pruning", Fig. 2).

A network is pre-trained on a large *source* data set and fine-tuned on the *target* re-ID task; pruning
can happen in either phase:

1. prune (and retrain) on the **source**, then fine-tune on the target;
2. prune on the source, fine-tune on the target, then **prune again** on the target (removes channels
   that do not serve the task);
3. fine-tune on the target, then prune and retrain on the target (no pruning on the costly source);
4. prune on the **target before** fine-tuning (the source-trained model is pruned with target data).

Source = SynthReID's source domain (``<synth root>/source``, train only; our stand-in for ImageNet),
target = :func:`reidbook.store.dataset` at the profile. Departure: in scenario 2 the multiply-add target is
split evenly (in log scale) between the two pruning rounds — each keeps ``√target`` — since the survey
does not say how it splits the budget. Moving between domains replaces the identity classifiers (their
classes differ); everything else carries over.
"""
from __future__ import annotations

import math

import torch
from torch import nn

from ..models.layers import classifier_init
from ..profile import count_macs, count_params
from .scoring import get_scorer
from .strategies import (
    C1,
    SOFT_CRITERIA,
    STRATEGIES,
    auto_balanced_prune,
    default_strategy,
    play_and_prune,
    progressive_soft_prune,
    prune_iterative,
    prune_layerwise,
    prune_once,
)
from .training import finetune

__all__ = ["SCENARIOS", "STRATEGIES", "default_strategy", "run_scenario", "rehead", "source_model", "SURVEY_MARKET",
           "survey_table", "check_pairing"]

SCENARIOS = {
    1: "prune + retrain on source → fine-tune on target",
    2: "prune on source → fine-tune on target → prune again on target",
    3: "fine-tune on target → prune + retrain on target",
    4: "prune on target → fine-tune on target",
}
# The survey's own numbers on Market-1501 (paper 003, §5), for side-by-side display; never mixed with ours.
# M = parameters (millions), T = GFLOPs as the paper reports them, mAP and rank-1 in %.
SURVEY_MARKET = {
    5: {"columns": ["model", "M", "T", "mAP", "rank1"],
        "rows": [["ResNet-50", 23.48, 6.32, 69.16, 85.07], ["ResNet-34", 21.28, 6.67, 67.44, 84.09],
                 ["ResNet-18", 11.12, 3.09, 61.23, 81.18], ["L1", 11.90, 2.96, 67.04, 84.71],
                 ["Taylor", 12.09, 3.21, 66.35, 84.44], ["Auto-Balanced", 11.90, 2.96, 65.46, 83.64],
                 ["Entropy", 11.90, 2.96, 65.16, 82.39], ["PSFP", 11.90, 2.96, 65.92, 83.72]]},
    7: {"columns": ["scenario", "target", "method", "mAP", "rank1"],
        "rows": [[sc, tg, m, a, r] for sc, tg, vals in [
            (1, "C1", (67.04, 84.71, 65.46, 83.64, 65.92, 83.72)),
            (2, "C1", (47.46, 69.36, 47.57, 70.46, 65.55, 82.69)),
            (3, "C1", (53.22, 72.21, 54.73, 74.05, 65.88, 82.19)),
            (1, "C2", (63.63, 81.95, 63.16, 81.29, 63.58, 82.47)),
            (2, "C2", (49.18, 70.67, 47.36, 68.74, 65.03, 80.85)),
            (3, "C2", (41.93, 62.62, 48.30, 69.00, 65.88, 82.91))]
            for m, a, r in zip(("L1", "Auto-Balanced", "PSFP"), vals[0::2], vals[1::2])]
        # Table 6, scenario 4 (a milder compression, T 5.08 GFLOPs); PSFP is "N/A" there.
        + [[4, "T=5.08", "L1", 31.41, 55.70], [4, "T=5.08", "Auto-Balanced", 59.27, 78.80]]},
    8: {"columns": ["model", "M", "T", "mAP", "rank1"],
        "rows": [["PCB (baseline)", 27.2, 6.1, 77.3, 92.4], ["PSFP + PCB (BFE)", 12.0, 2.6, 69.4, 90.4],
                 ["PSFP + PCB (BFE + LC + FC)", 11.16, 2.6, 69.1, 89.1]]},
    9: {"columns": ["criterion", "M", "T", "mAP", "rank1"],
        "rows": [["l1-norm", 12.0, 2.6, 68.7, 90.0], ["l2-norm", 12.0, 2.6, 69.4, 90.4]]},
}


def survey_table(n: int):
    """The survey's Table ``n`` ∈ {5, 7, 8, 9} on Market-1501 as a ``pandas.DataFrame`` (the *paper's*
    numbers; Table 7 also holds Table 6's scenario-4 rows for L1 and Auto-Balanced)."""
    import pandas as pd

    if n not in SURVEY_MARKET:
        raise ValueError(f"survey_table: tables {sorted(SURVEY_MARKET)} are stored, not {n}")
    return pd.DataFrame(SURVEY_MARKET[n]["rows"], columns=SURVEY_MARKET[n]["columns"])


def rehead(model: nn.Module, num_classes: int) -> nn.Module:
    """Replace every identity classifier (a ``Linear`` named ``classifier…`` with ``model.num_classes``
    outputs) by a freshly initialised one with ``num_classes`` outputs (in place)."""
    old = getattr(model, "num_classes", None)
    names = [n for n, m in model.named_modules()
             if isinstance(m, nn.Linear) and "classifier" in n and (old is None or m.out_features == old)]
    if not names:
        raise ValueError(f"{type(model).__name__} has no Linear named 'classifier…' to re-head for "
                         f"{num_classes} classes")
    for name in names:
        parent_name, _, child = name.rpartition(".")
        parent = model.get_submodule(parent_name) if parent_name else model
        lin = getattr(parent, child) if not child.isdigit() else parent[int(child)]
        new = nn.Linear(lin.in_features, num_classes, bias=lin.bias is not None).to(lin.weight.device)
        classifier_init(new)
        if child.isdigit():
            parent[int(child)] = new
        else:
            setattr(parent, child, new)
    model.num_classes = num_classes
    return model


def check_pairing(method: str, strategy: str) -> None:
    """Refuse a strategy that cannot run ``method`` as its paper does, instead of running something else under its
    name: soft pruning scores filters (``psfp``, ``l2``, ``l1``, ``fpgm``); Auto-Balanced and Play-and-Prune
    rank by ℓ1 by definition; the cutting strategies cannot run a training procedure."""
    scorer = get_scorer(method)
    if strategy not in STRATEGIES:
        raise ValueError(f"unknown pruning strategy {strategy!r}; choose one of auto, {', '.join(STRATEGIES)}")
    if strategy == "psfp" and method not in SOFT_CRITERIA:
        raise ValueError(f"soft pruning (strategy 'psfp') scores filters by weight; method {method!r} is not one of "
                         f"{', '.join(SOFT_CRITERIA)}. Use its own strategy: {scorer.strategy!r}")
    if strategy in ("auto_balanced", "play_and_prune") and method not in (strategy, "l1"):
        raise ValueError(f"strategy {strategy!r} ranks filters by ℓ1 by definition; it cannot run method {method!r} "
                         f"(use method={strategy!r} or 'l1', or {method!r}'s own strategy {scorer.strategy!r})")
    if scorer.procedure is not None and strategy != scorer.strategy:
        raise ValueError(f"method {method!r} is a training procedure; it runs only as strategy {scorer.strategy!r} "
                         f"({scorer.procedure})")


def _prune(model, strategy, method, target, dataset, preset, epochs, size, device, seed, max_iters):
    """One pruning round on ``dataset`` with its retraining (the strategies of :mod:`.strategies`)."""
    common = dict(input_size=size, device=device, seed=seed, max_iters_per_epoch=max_iters)
    if strategy == "psfp":
        return progressive_soft_prune(model, target, dataset, preset, epochs=max(1, epochs), criterion=method, **common)
    if strategy == "auto_balanced":  # regularised epochs, then the cut and a fine-tuning epoch each
        return auto_balanced_prune(model, target, dataset, preset, epochs=max(1, epochs), finetune_epochs=epochs,
                                   **common)
    if strategy == "play_and_prune":
        return play_and_prune(model, target, dataset, preset, epochs_per_round=max(1, epochs), **common)
    data = None
    if get_scorer(method).needs_data or strategy == "layerwise":
        from .activations import calibration_batches

        data = calibration_batches(dataset.train, *size, n_images=32, seed=seed)
    if strategy == "layerwise":
        return prune_layerwise(model, method, target, data=data, dataset=dataset, preset=preset, epochs=epochs,
                               **common)
    if strategy == "once":
        return prune_once(model, method, target, dataset, preset, epochs=epochs, data=data, **common)
    return prune_iterative(model, method, target, dataset=dataset, preset=preset, epochs_per_step=epochs, data=data,
                           **common)


def _finetune(model, dataset, preset, epochs, device, seed, max_iters):
    if epochs > 0:
        finetune(model, dataset, preset, epochs=epochs, lr_scale=1.0, device=device, seed=seed,
                 max_iters_per_epoch=max_iters)
    return model


def source_model(model: str = "baseline", num_classes: int = 1, profile: str = "quick", seed: int = 0,
                 device="auto") -> nn.Module:
    """``model`` at ``profile`` on the cached source-domain pre-trained backbone
    (:func:`reidbook.pretrain.pretrained_backbone`; SynthReID's source stands in for ImageNet, the same backbone
    the zoo's target models start from) with a fresh head of ``num_classes`` identities."""
    from ..models import build_model
    from ..presets import get_preset
    from ..pretrain import backbone_of, pretrained_backbone

    preset = get_preset(model, profile)
    opts = dict(preset.model_options)
    arch, width = backbone_of(model, preset)
    state = pretrained_backbone(arch, width, profile, seed, device=device)
    torch.manual_seed(seed)
    return build_model(model, num_classes, profile=profile, pretrained=state, **opts)


def run_scenario(n: int, method: str = "l1", target: float = C1, profile: str = "quick", model: str = "baseline",
                 strategy: str = "auto", epochs: int = 1, pretrain_epochs: int = 1, data: str = "synth",
                 source=None, target_data=None, start: nn.Module | None = None, device="auto", seed: int = 0,
                 max_iters_per_epoch: int | None = None, evaluate: bool = True) -> tuple[nn.Module, dict]:
    """Run design scenario ``n`` ∈ {1, 2, 3, 4} (Fig. 2) end to end → ``(pruned model, report)``.

    ``start`` is a source-trained model, ``"source"`` (:func:`source_model`: the cached source-domain
    backbone, the one the zoo's target models start from) or ``None``: ``model`` is then built at ``profile``
    and trained ``pretrain_epochs`` epochs on the source (the "pre-training" stage). Pruning uses ``strategy``
    (:data:`STRATEGIES`; ``"auto"`` = the survey's pairing, :func:`default_strategy`) with ``method`` to
    ``target`` (fraction of the multiply-adds kept); PSFP is not applicable to scenario 4 (survey §3.4:
    pruning, retraining and fine-tuning are one step, so there is no "prune on target, then fine-tune"); a
    strategy that cannot run ``method`` is refused (:func:`check_pairing`). Fine-tuning and retraining run
    ``epochs`` ≥ 0 epochs with the model's preset (0: none — the report says so). ``source`` / ``target_data``
    override the data sets (default: SynthReID source / :func:`reidbook.store.dataset` of ``data``).
    The report lists each stage, the cost before/after and, with ``evaluate``, the target's mAP/Rank-1.
    """
    from ..models import build_model
    from ..presets import get_preset
    from ..store import dataset as store_dataset

    if n not in SCENARIOS:
        raise ValueError(f"unknown design scenario {n!r}; the survey's Fig. 2 has 1, 2, 3, 4: {SCENARIOS}")
    if not 0.0 < target <= 1.0:
        raise ValueError(f"target must be in (0, 1] (fraction of the multiply-adds kept), got {target}")
    for name, value in (("epochs", epochs), ("pretrain_epochs", pretrain_epochs)):
        if isinstance(value, bool) or not isinstance(value, int) or value < 0:
            raise ValueError(f"{name} must be an integer ≥ 0 (epochs of (re)training per stage; 0 = none), "
                             f"got {value!r}")
    if strategy != "auto" and strategy not in STRATEGIES:
        raise ValueError(f"unknown pruning strategy {strategy!r}; choose one of auto, {', '.join(STRATEGIES)}")
    strategy = default_strategy(method) if strategy == "auto" else strategy
    check_pairing(method, strategy)
    if n == 4 and strategy == "psfp":
        raise ValueError("scenario 4 with PSFP is not applicable (survey §3.4 and Table 6 'N/A'): PSFP prunes while "
                         "fine-tuning, so it cannot prune on the target *before* fine-tuning. Use scenario 1, 2 or 3.")
    preset = get_preset(model, profile)
    size = (preset.height, preset.width)
    src = source if source is not None else store_dataset(profile, "synth-source", seed=seed)
    tgt = target_data if target_data is not None else store_dataset(profile, data, seed=seed)
    stages: list[dict] = []
    if isinstance(start, str):
        if start != "source":
            raise ValueError(f"start must be a model, None (pre-train here) or 'source' (the cached "
                             f"source-domain backbone), got {start!r}")
        start = source_model(model, src.num_train_pids, profile, seed, device)
        stages.append({"stage": "cached source-domain backbone (reidbook.pretrain.pretrained_backbone)"})
    if start is None:
        torch.manual_seed(seed)
        net = build_model(model, src.num_train_pids, profile=profile, **preset.model_options)
        _finetune(net, src, preset, pretrain_epochs, device, seed, max_iters_per_epoch)
        stages.append({"stage": "pre-train on source", "epochs": pretrain_epochs})
    else:
        import copy

        net = copy.deepcopy(start)
    base_macs, base_params = count_macs(net, size), count_params(net)
    args = dict(strategy=strategy, method=method, preset=preset, epochs=epochs, size=size, device=device, seed=seed,
                max_iters=max_iters_per_epoch)

    def prune_on(m, ds, where, goal):
        out, rep = _prune(m, target=goal, dataset=ds, **args)
        stages.append({"stage": f"prune on {where}", "macs_ratio": count_macs(out, size) / base_macs,
                       "steps": len(rep.iterations)})
        return out

    def tune_on_target(m, new_head=True):
        if new_head:  # scenario 4 re-heads before pruning on the target and keeps that head
            rehead(m, tgt.num_train_pids)
        _finetune(m, tgt, preset, epochs, device, seed, max_iters_per_epoch)
        stages.append({"stage": "fine-tune on target", "epochs": epochs})
        return m

    if n == 1:
        net = tune_on_target(prune_on(net, src, "source", target))
    elif n == 2:
        half = math.sqrt(target)
        net = tune_on_target(prune_on(net, src, "source", half))
        now = count_macs(net, size) / base_macs
        net = prune_on(net, tgt, "target", min(1.0, target / now))
    elif n == 3:
        net = prune_on(tune_on_target(net), tgt, "target", target)
    else:
        net = rehead(net, tgt.num_train_pids)
        net = tune_on_target(prune_on(net, tgt, "target", target), new_head=False)
    net.eval()
    report = {"scenario": n, "description": SCENARIOS[n], "method": method, "strategy": strategy, "target": target,
              "epochs": epochs, "profile": profile, "model": model, "stages": stages, "macs_before": base_macs,
              "macs_after": count_macs(net, size), "params_before": base_params, "params_after": count_params(net)}
    report["macs_ratio"] = report["macs_after"] / base_macs
    if evaluate:
        from ..eval import evaluate_model

        res = evaluate_model(net, tgt, *size, device=device)
        report.update({k: float(res[k]) for k in ("mAP", "rank1") if k in res})
    return net, report
