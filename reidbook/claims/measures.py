"""The procedures that turn one configuration and one seed into numbers (a *run*).

Each measure is ``fn(config, ctx) -> dict`` with ``config`` a :class:`~reidbook.claims.registry.Config`
as a dict (its ``overrides`` already hold the claim's budget) and ``ctx`` a :class:`RunContext`; it
returns ``{"metrics": {name: float}, "images_seen": int | None, "train_seconds": float | None,
"trained_now": bool | None}``. Everything is trained through the public training paths (``reidbook.zoo.get``,
``reidbook.distill.pipeline``), so the zoo caches every training under its full configuration, the seed
included, and a run that was trained before (by a chapter, or an interrupted ledger) is loaded. Two
measures are not cached by the zoo (their runs are kept by the runner only): ``"prune"`` (a design
scenario of ``reidbook.prune.scenarios``) and the paper-size counts and timings.

``images_seen`` is the sum of the training history's per-epoch ``images`` (what the optimiser saw),
the budget the ledger checks for equality within a claim.

:func:`preset_of` gives the settings a run depends on (for its key and the ledger's staleness check).
"""
from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Any, Callable

__all__ = ["RunContext", "MEASURES", "measure", "preset_of", "images_seen", "DETERMINISTIC"]


@dataclass(frozen=True)
class RunContext:
    """Where a run happens: ``profile``, ``data`` (what ``zoo.get`` takes), ``seed``, ``device``."""

    profile: str
    data: str
    seed: int
    device: str = "auto"


#: Measures whose numbers do not depend on the seed (a count): the verdict uses no spread for them.
DETERMINISTIC = {"paper_params"}


def images_seen(history: Any) -> int | None:
    """Images the optimiser saw: the sum of the history's per-epoch ``images`` (``None`` without records)."""
    records = getattr(history, "records", history) or []
    counts = [r.get("images") for r in records if isinstance(r, dict)]
    if not counts or any(c is None for c in counts):
        return None
    return int(sum(counts))


def _zoo_get(model: str, ctx: RunContext, overrides: dict):
    from .. import zoo

    try:
        before = (zoo.entry_path(model, ctx.profile, ctx.data, ctx.seed, **overrides) / "entry.json").exists()
    except Exception:  # noqa: BLE001 — only a hint for the ledger; zoo.get raises the real error below
        before = None
    entry = zoo.get(model, ctx.profile, ctx.data, ctx.seed, device=ctx.device, **overrides)
    return entry, (None if before is None else not before)


def _run(entry, trained_now, metrics: dict) -> dict:
    return {"metrics": {k: float(v) for k, v in metrics.items()}, "images_seen": images_seen(entry.history),
            "train_seconds": entry.metrics.get("train_seconds"), "trained_now": trained_now}


def measure_zoo(config: dict, ctx: RunContext) -> dict:
    """``zoo.get(model, **overrides)``: its test metrics (mAP, rank1 …) and ``params_M`` (no classifier)."""
    from ..profile import count_params

    entry, now = _zoo_get(config["model"], ctx, config["overrides"])
    metrics = {k: v for k, v in entry.metrics.items() if isinstance(v, (int, float)) and k != "train_seconds"}
    metrics["params_M"] = count_params(entry.model, exclude=("classifier",)) / 1e6
    return _run(entry, now, metrics)


def _stage_key(name: str) -> str:
    return re.sub(r"\s+", "", name.split("(")[0].strip())  # "stage 1" → "stage1", "fusion" → "fusion"


def measure_dare_embeddings(config: dict, ctx: RunContext) -> dict:
    """DaRe (Fig. 3/4): mAP and Rank-1 of every embedding (``stage1/mAP`` … ``fusion/mAP``) and of the
    best single stage (``best_stage/mAP``, ``best_stage/rank1``)."""
    from .. import zoo
    from ..eval import anytime as A

    entry, now = _zoo_get(config["model"], ctx, config["overrides"])
    ds = zoo.dataset(ctx.profile, ctx.data, ctx.seed)
    ev = A.AnytimeEval.from_model(entry.model, ds, entry.preset.height, entry.preset.width, device=ctx.device)
    metrics = {}
    for row in ev.per_embedding().to_dict("records"):
        key = _stage_key(row["embedding"])
        metrics[f"{key}/mAP"], metrics[f"{key}/rank1"] = row["mAP"], row["rank1"]
    for m in ("mAP", "rank1"):
        metrics[f"best_stage/{m}"] = max(v for k, v in metrics.items() if k.startswith("stage") and k.endswith(m))
    return _run(entry, now, metrics)


def measure_dare_routing(config: dict, ctx: RunContext) -> dict:
    """DaRe's budgeted stream (§5.3.2, Fig. 6) at the budget halfway between the first and the last exit's
    cost, with ``options["rule"]`` (distance / margin / random) and the run's seed for the random draws."""
    from .. import zoo
    from ..eval import anytime as A

    entry, now = _zoo_get(config["model"], ctx, config["overrides"])
    ds = zoo.dataset(ctx.profile, ctx.data, ctx.seed)
    ev = A.AnytimeEval.from_model(entry.model, ds, entry.preset.height, entry.preset.width, device=ctx.device)
    budget = float((ev.costs[0] + ev.costs[-1]) / 2)
    stream = A.budgeted_stream(ev, budget, config["options"].get("rule", "distance"), seed=ctx.seed)
    return _run(entry, now, {"rank1": stream.rank1, "mAP": stream.mAP, "realised_cost_M": stream.realised_cost / 1e6,
                             "budget_M": budget / 1e6})


def _dare_full_cost(ctx: RunContext, overrides: dict) -> float:
    """Multiply-adds of DaRe's last exit at the (budget-matched) DaRe preset's input."""
    from ..eval import anytime as A
    from ..models import build_model
    from ..presets import get_preset

    p = get_preset("dare", ctx.profile).replace(**{k: v for k, v in overrides.items() if k in ("height", "width")})
    return float(A.exit_costs(build_model("dare", 8, profile=ctx.profile, **p.model_options), (p.height, p.width))[-1])


def measure_anytime(config: dict, ctx: RunContext) -> dict:
    """Anytime re-ID (§5.3.1, Fig. 5): Rank-1 and mAP of the deepest exit that fits DaRe's full test-time
    cost. ``model="dare"``: DaRe's exits; ``model="seq_ensemble"``: ResNet-18, -34, -50 trained separately
    and chained in ascending size (``reidbook.models.seq_ensemble``)."""
    from .. import zoo
    from ..eval import anytime as A

    over = config["overrides"]
    budget = _dare_full_cost(ctx, over)
    ds = zoo.dataset(ctx.profile, ctx.data, ctx.seed)
    if config["model"] == "seq_ensemble":
        from ..models.seq_ensemble import ENSEMBLE_ARCHS, SequentialEnsemble

        got = [_zoo_get("seq_ensemble", ctx, {**over, "model_options": {**over.get("model_options", {}), "arch": a}})
               for a in ENSEMBLE_ARCHS]
        entries = [e for e, _ in got]
        model, preset = SequentialEnsemble.chain(*[e.model for e in entries]), entries[-1].preset
        seen = [images_seen(e.history) for e in entries]
        run = {"images_seen": None if None in seen else sum(seen),
               "train_seconds": sum(e.metrics.get("train_seconds", 0.0) for e in entries),
               "trained_now": None if any(n is None for _, n in got) else any(n for _, n in got)}
    else:
        entry, now = _zoo_get(config["model"], ctx, over)
        model, preset = entry.model, entry.preset
        run = {"images_seen": images_seen(entry.history), "train_seconds": entry.metrics.get("train_seconds"),
               "trained_now": now}
    ev = A.AnytimeEval.from_model(model, ds, preset.height, preset.width, device=ctx.device)
    row = A.anytime_curve(ev, [budget]).iloc[0]
    return {"metrics": {"rank1": float(row["rank1"]), "mAP": float(row["mAP"]), "exit": float(row["exit"]),
                        "budget_M": budget / 1e6}, **run}


def measure_fd(config: dict, ctx: RunContext) -> dict:
    """Factorized Distillation (paper 002): the distilled student of ``options`` (``views``, ``use``; the
    defaults are the full method) via ``reidbook.distill.pipeline.distilled_student``; ``use=[]`` is the
    control (L_cls only, as many epochs). Teachers and the initial student are shared, per seed."""
    from ..distill import pipeline as P

    opts = dict(config["options"])
    kwargs = {}
    if "views" in opts:
        kwargs["views"] = list(opts["views"])
    if "use" in opts:
        kwargs["use"] = tuple(opts["use"])
    trained = P.distilled_student(ctx.profile, ctx.data, ctx.seed, ctx.device, **kwargs)
    initial = P.initial_student(ctx.profile, ctx.data, ctx.seed, ctx.device)
    a, b = images_seen(initial.history), images_seen(trained.history)
    metrics = {k: float(v) for k, v in trained.metrics.items() if isinstance(v, (int, float)) and k != "train_seconds"}
    return {"metrics": metrics, "images_seen": None if a is None or b is None else a + b,
            "train_seconds": trained.metrics.get("train_seconds"), "trained_now": None}


def _paper_model(name: str):
    from ..models import build_paper_model
    from ..models.base import deployed
    from ..presets import get_preset

    return deployed(build_paper_model(name, **get_preset(name, "full").model_options))


def measure_paper_params(config: dict, ctx: RunContext) -> dict:
    """Parameters (M, classifiers excluded) of the paper-size network (width 1, the ``full`` preset's options)."""
    from ..profile import count_params

    return {"metrics": {"params_M": count_params(_paper_model(config["model"]), exclude=("classifier",)) / 1e6},
            "images_seen": None, "train_seconds": None, "trained_now": None}


def measure_latency(config: dict, ctx: RunContext) -> dict:
    """Median CPU latency (ms) of one image through the paper-size network, one thread, at the ``full``
    input of ``options["input_from"]`` (default the model itself). The weights do not matter for timing."""
    import torch

    from ..presets import get_preset
    from ..profile import measure_latency as _latency

    p = get_preset(config["options"].get("input_from", config["model"]), "full")
    torch.manual_seed(ctx.seed)
    out = _latency(_paper_model(config["model"]), (p.height, p.width), batch_size=1, threads=1, warmup=2, repeats=5)
    return {"metrics": {"latency_ms": out["median_ms"]}, "images_seen": None, "train_seconds": None,
            "trained_now": None}


def measure_prune_pcb(config: dict, ctx: RunContext) -> dict:
    """PSFP on PCB (survey §5.3, Table 8): PCB on the zoo's source-domain backbone with a fresh head, pruned
    softly to ``options["target"]`` (C1 default) while training ``options.get("epochs", preset.epochs)``
    epochs on the target, pruning ``options["part"]`` (``"bfe"`` or ``"bfe+lc+fc"``) with
    ``options.get("criterion", "l2")`` (``reidbook.prune.prune_pcb``), then evaluated like a zoo model."""
    from .. import zoo
    from ..eval import evaluate_model, scalar_metrics
    from ..presets import get_preset
    from ..prune import C1, C2, prune_pcb
    from ..prune.scenarios import source_model

    o = config["options"]
    preset = get_preset("pcb", ctx.profile)
    epochs = int(o.get("epochs", preset.epochs))
    ds = zoo.dataset(ctx.profile, ctx.data, ctx.seed)
    start = source_model("pcb", ds.num_train_pids, ctx.profile, ctx.seed, ctx.device)
    small, rep = prune_pcb(start, {"C1": C1, "C2": C2}[o.get("target", "C1")], o["part"], o.get("criterion", "l2"),
                           ds, preset, epochs=epochs, input_size=(preset.height, preset.width), device=ctx.device,
                           seed=ctx.seed)
    metrics = scalar_metrics(evaluate_model(small, ds, preset.height, preset.width, device=ctx.device))
    from ..profile import count_params

    metrics["params_M"] = count_params(small, exclude=("classifier",)) / 1e6
    return {"metrics": {k: float(v) for k, v in metrics.items()},
            "images_seen": epochs * _epoch_images(ctx.profile, ctx.data, ctx.seed, preset),
            "train_seconds": None, "trained_now": True}


def measure_ensemble(config: dict, ctx: RunContext) -> dict:
    """An ensemble of separately trained networks (MGN §4.4 "Multiple branch vs Multiple networks", Table 5's
    G+P2+P3): ``zoo.get(model, **member)`` for each of ``options["members"]`` (overrides), every query and
    gallery image embedded by each (flip-averaged, L2-normalised), the embeddings concatenated and ranked by
    Euclidean distance. ``images_seen`` sums the members' (they are trained one by one)."""
    import torch
    from torch.utils.data import DataLoader

    from .. import zoo
    from ..data import ImageDataset, build_transforms
    from ..engine import extract_features
    from ..eval import evaluate_features, scalar_metrics

    over = config["overrides"]
    got = [_zoo_get(config["model"], ctx, {**over, **member}) for member in config["options"]["members"]]
    ds = zoo.dataset(ctx.profile, ctx.data, ctx.seed)
    feats = {"query": [], "gallery": []}
    for entry, _ in got:
        tf = build_transforms(entry.preset.height, entry.preset.width, is_train=False)
        for split in feats:
            loader = DataLoader(ImageDataset(getattr(ds, split), tf), batch_size=64)
            f, pids, cams = extract_features(entry.model, loader, device=ctx.device, flip=True, normalize=True)
            feats[split].append((torch.as_tensor(f), pids, cams))
    (qf, q_pids, q_cams), (gf, g_pids, g_cams) = [
        (torch.cat([f for f, _, _ in feats[s]], dim=1), feats[s][0][1], feats[s][0][2]) for s in ("query", "gallery")]
    metrics = scalar_metrics(evaluate_features(qf, gf, q_pids, g_pids, q_cams, g_cams))
    seen = [images_seen(e.history) for e, _ in got]
    return {"metrics": {k: float(v) for k, v in metrics.items()}, "images_seen": None if None in seen else sum(seen),
            "train_seconds": sum(e.metrics.get("train_seconds", 0.0) for e, _ in got),
            "trained_now": None if any(n is None for _, n in got) else any(n for _, n in got)}


def _epoch_images(profile: str, data: str, seed: int, preset) -> int:
    """Images one training epoch of ``preset`` shows (P×K batches of the data set's training split)."""
    from .. import zoo
    from ..engine.recipe import preset_loader

    return len(preset_loader(zoo.dataset(profile, data, seed).train, preset, seed=seed)) * preset.batch_size


def measure_prune(config: dict, ctx: RunContext) -> dict:
    """The pruning survey's design scenario ``options["scenario"]`` (Fig. 2) with ``options["method"]``
    (strategy ``options.get("strategy", "auto")``: the survey's pairing) to ``options["target"]``
    (``"C1"``: ½ of the multiply-adds, ``"C2"``: ⅓), through ``reidbook.prune.scenarios.run_scenario``,
    starting from the zoo's cached source-domain backbone (the initialisation the zoo's target models
    start from) and fine-tuning ``options.get("epochs", preset.epochs)`` epochs with the model's preset.

    ``images_seen`` counts the target-domain training of scenario 1 (one fine-tuning of ``epochs`` epochs:
    the same as a zoo model trained with the preset); the pruning stage's training on the source domain is
    not counted. Other scenarios have more target stages by design (``None``: not compared)."""
    from ..presets import get_preset
    from ..prune import C1, C2
    from ..prune.scenarios import run_scenario

    o = config["options"]
    preset = get_preset(config["model"], ctx.profile)
    epochs = int(o.get("epochs", preset.epochs))
    scenario = int(o.get("scenario", 1))
    _, rep = run_scenario(scenario, o.get("method", "l1"), {"C1": C1, "C2": C2}[o.get("target", "C1")], ctx.profile,
                          model=config["model"], strategy=o.get("strategy", "auto"), epochs=epochs, data=ctx.data,
                          start="source", device=ctx.device, seed=ctx.seed)
    seen = epochs * _epoch_images(ctx.profile, ctx.data, ctx.seed, preset) if scenario == 1 else None
    return {"metrics": {"mAP": rep["mAP"], "rank1": rep["rank1"], "macs_ratio": rep["macs_ratio"],
                        "params_M": rep["params_after"] / 1e6},
            "images_seen": seen, "train_seconds": None, "trained_now": True}


MEASURES: dict[str, Callable[[dict, RunContext], dict]] = {
    "zoo": measure_zoo,
    "dare_embeddings": measure_dare_embeddings,
    "dare_routing": measure_dare_routing,
    "anytime": measure_anytime,
    "fd": measure_fd,
    "paper_params": measure_paper_params,
    "latency": measure_latency,
    "prune": measure_prune,
    "ensemble": measure_ensemble,
    "prune_pcb": measure_prune_pcb,
}


def measure(name: str) -> Callable[[dict, RunContext], dict]:
    """The measure ``name``; a ``KeyError`` listing the known ones."""
    if name not in MEASURES:
        raise KeyError(f"no claims measure {name!r}; measures are {', '.join(MEASURES)}")
    return MEASURES[name]


# ----------------------------------------------------------------------------------------------
# What a run depends on
# ----------------------------------------------------------------------------------------------
def preset_of(config: dict, profile: str) -> dict:
    """The settings a run of ``config`` at ``profile`` depends on, as plain data: the resolved preset
    (with the overrides) for the zoo measures, every FD stage's preset for ``"fd"``, the ``full`` preset
    for the paper-size measures."""
    from ..presets import get_preset

    m, name = config["measure"], config["model"]
    if m == "fd":
        from ..data.views import VIEW_NAMES
        from ..presets import fd

        return {"settings": repr(fd.fd_settings(profile)), "student": fd.student_preset(profile).to_dict(),
                "distill": fd.distill_preset(profile).to_dict(),
                "teachers": {v: fd.teacher_preset(v, profile).to_dict() for v in VIEW_NAMES}}
    if m in ("paper_params", "latency"):
        src = config["options"].get("input_from", name)
        return {"model": get_preset(name, "full").model_options, "input": get_preset(src, "full").to_dict()}
    if m == "anytime" and name == "seq_ensemble":
        from ..models.seq_ensemble import ENSEMBLE_ARCHS

        base = get_preset(name, profile)
        over = config["overrides"]
        return {a: base.replace(**{**over, "model_options": {**over.get("model_options", {}), "arch": a}}).to_dict()
                for a in ENSEMBLE_ARCHS} | {"dare": get_preset("dare", profile).to_dict()}
    preset = get_preset(name, profile)
    return preset.replace(**config["overrides"]).to_dict() if config["overrides"] else preset.to_dict()
