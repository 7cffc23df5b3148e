"""The capstone's comparison: every model the course trained, on the same test split, in one table.

:func:`collect` gathers the course's models from the zoo for a profile (training what is missing):
the baseline, MGN, GraftedNet, the Factorized-Distillation student, the baseline pruned to the survey's
C1 and C2 (one-shot ℓ1 + short fine-tuning), PCB and PCB pruned with PSFP on its backbone (BFE, survey
Table 8), DaRe at each of its four exits — and **MGN compressed with the course's own tools**: its backbone
and branches pruned one-shot (ℓ1 to C1, :func:`pruned` with ``base="mgn"``, then the same short fine-tuning)
and distilled into a ResNet-18 (:func:`mgn_student`, :mod:`reidbook.distill.kd`), beside that ResNet-18
trained without a teacher (:func:`resnet18`, its equal-budget control). Each is taken in its **deployed form**
(:func:`reidbook.export.deployed_model`). :func:`measure` adds parameters (those the test-time forward
uses), multiply-adds and CPU latency — every model measured **in one run, interleaved** (round-robin,
so machine load affects all alike), batch 1, one thread. :func:`paper_rows` holds the papers' own
numbers (Market-1501, single query, no re-ranking) with the table they come from; :func:`with_paper`
puts them beside ours, labelled as the papers'. Every row says its training budget (``images_seen``: the
images its own trainings showed the optimiser, a compressed model's base model's included).

Beside accuracy and cost: :func:`background_table` (mAP under SynthReID's background swap, per model),
:func:`attention_and_background` / :func:`describe_attention` (measured attention, sentences generated from
it), :func:`departures_of` (every compared model's departures from its paper), :func:`mgn_compression` (MGN's
compressions in numbers), and the claims ledger's views (:func:`ledger_state`, :func:`budget_matched`,
:func:`claims_summary`: the budget-matched comparisons when ``assets/claims/<profile>.json`` exists).

Same test split: every accuracy is measured on ``zoo.dataset(profile, data, seed)``'s query and gallery,
by the function that trained the model (the zoo's :func:`reidbook.eval.evaluate_model`, FD's
``evaluate_view`` of the holistic view, :class:`reidbook.eval.anytime.AnytimeEval` for DaRe's exits),
each with its paper's distance (cosine for GraftedNet and FD, Euclidean otherwise), query and gallery
embeddings averaged with their horizontal flips. Cached results are reused only when the zoo
key — which includes the data set's fingerprint — matches.
"""
from __future__ import annotations

import json
import math
import statistics
from dataclasses import dataclass, field
from pathlib import Path

from torch import nn

from .export import deployed_model, inference_params
from .presets.finetune import FINETUNE
from .profile import count_macs, measure_latency
from .prune.strategies import C1, C2
from .store import tag_model
from .utils import atomic_write_json, say

__all__ = ["Contender", "PAPER", "collect", "is_cached", "pruned", "dare_exits", "inference_params", "measure",
           "paper_rows", "with_paper", "FINETUNE", "CONTENDERS", "resnet18", "mgn_student", "STUDENT_OVERRIDES",
           "background_table", "LEDGER_MODELS", "ledger_state", "budget_matched", "HEADLINE_CLAIMS",
           "budget_matched_headline", "claims_summary", "departures_of",
           "mgn_compression", "attention_and_background", "describe_attention"]

# Fine-tuning after one-shot pruning (and PSFP's soft-pruning epochs): a per-profile budget, kept with the
# presets (reidbook/presets/finetune.py); re-exported here for chapter 08's prose.

# The contenders, in table order: key → (label, family, what it compresses).
CONTENDERS = {
    "baseline": ("Baseline (ResNet-50)", "reference", None),
    "mgn": ("MGN", "multi-branch", None),
    "pcb": ("PCB", "part-based", None),
    "graftednet": ("GraftedNet", "grafting", "baseline"),
    "fd_student": ("FD student (R18a)", "distillation", "baseline"),
    "pruned_l1_c1": ("Baseline pruned L1 @C1", "pruning", "baseline"),
    "pruned_l1_c2": ("Baseline pruned L1 @C2", "pruning", "baseline"),
    "pcb_psfp_c1": ("PCB pruned PSFP @C1 (BFE)", "pruning", "pcb"),
    "mgn_pruned_l1_c1": ("MGN pruned L1 @C1", "pruning", "mgn"),
    "resnet18": ("ResNet-18 (baseline recipe)", "reference", None),
    "mgn_kd_r18": ("ResNet-18 ← MGN (SP-KD)", "distillation", "mgn"),
    "dare_exit1": ("DaRe exit 1", "anytime", "dare_exit4"),
    "dare_exit2": ("DaRe exit 2", "anytime", "dare_exit4"),
    "dare_exit3": ("DaRe exit 3", "anytime", "dare_exit4"),
    "dare_exit4": ("DaRe exit 4 (fusion)", "anytime", None),
}

# The papers' numbers on Market-1501 (single query, no re-ranking). Parameters in millions; "cost" as the
# paper reports it (the survey's T is GFLOPs; DaRe's exits are its released code's multiply-adds).
PAPER = {
    "baseline": {"mAP": 69.16, "rank1": 85.07, "params_M": 23.48, "cost": "6.32 GFLOPs",
                 "source": "paper 003 (pruning survey), Table 5, ResNet50"},
    "mgn": {"mAP": 86.9, "rank1": 95.7, "params_M": 70.3, "cost": None,
            "source": "paper 001 (MGN), Table 2; parameters as quoted by paper 002, Table 5"},
    "pcb": {"mAP": 77.3, "rank1": 92.4, "params_M": 27.2, "cost": "6.1 GFLOPs",
            "source": "paper 003 (pruning survey), Table 8, PCB (Baseline), ResNet50"},
    "graftednet": {"mAP": 81.58, "rank1": 93.02, "params_M": 4.60, "cost": "268.57 ms (16-core Xeon)",
                   "source": "paper 000 (GraftedNet), Table 3"},
    "fd_student": {"mAP": 82.50, "rank1": 93.11, "params_M": 11.4, "cost": None,
                   "source": "paper 002 (Factorized Distillation), Table 3, R18a+FD"},
    "pruned_l1_c1": {"mAP": 67.04, "rank1": 84.71, "params_M": 11.90, "cost": "2.96 GFLOPs",
                     "source": "paper 003 (pruning survey), Table 5, L1"},
    "pcb_psfp_c1": {"mAP": 69.4, "rank1": 90.4, "params_M": 12.0, "cost": "2.6 GFLOPs",
                    "source": "paper 003 (pruning survey), Table 8, PSFP + PCB (BFE), ResNet50"},
    "dare_exit1": {"mAP": None, "rank1": None, "params_M": None, "cost": "523.6 M MACs",
                   "source": "paper 004 (DaRe), released code's multiply-adds per exit"},
    "dare_exit2": {"mAP": None, "rank1": None, "params_M": None, "cost": "1150.1 M MACs",
                   "source": "paper 004 (DaRe), released code's multiply-adds per exit"},
    "dare_exit3": {"mAP": None, "rank1": None, "params_M": None, "cost": "2060.9 M MACs",
                   "source": "paper 004 (DaRe), released code's multiply-adds per exit"},
    "dare_exit4": {"mAP": 69.3, "rank1": 86.4, "params_M": 27.98, "cost": "2542.3 M MACs",
                   "source": "paper 004 (DaRe), Table 1, DaRe(R); 27.98 M parameters, §3.1"},
}


@dataclass
class Contender:
    """One row of the comparison: a deployed ``model`` with its test ``metrics`` (fractions) and input size."""

    key: str
    label: str
    family: str
    model: nn.Module
    input_size: tuple
    metrics: dict
    source: str = ""
    compresses: str | None = None
    extra: dict = field(default_factory=dict)


def _metrics(m: dict) -> dict:
    return {k: float(m[k]) for k in ("mAP", "rank1", "rank5", "mINP") if k in m}


# ----------------------------------------------------------------------------------------------
# Models that are not a plain preset run: pruned ones and DaRe's exits (cached in the zoo)
# ----------------------------------------------------------------------------------------------
def _pruned_config(base: str, base_path: Path, method: str, target: float, strategy: str, profile: str,
                   seed: int) -> dict:
    epochs, iters = FINETUNE[profile]
    return {"base": base, "base_key": Path(base_path).name, "method": method, "target": float(target),
            "strategy": strategy, "epochs": epochs, "max_iters": iters, "seed": seed}


def pruned(base: str = "baseline", method: str = "l1", target: float = 0.5, strategy: str = "once",
           profile: str = "quick", data: str = "synth", seed: int = 0, device="auto") -> Contender:
    """``base`` (a zoo model with a ResNet backbone) pruned to ``target`` (fraction of its multiply-adds
    kept; the survey's C1 = 1/2, C2 = 1/3) — ``strategy="once"``: one-shot ``method`` + fine-tuning,
    ``"psfp"``: progressive soft pruning (survey §3.4) of the backbone, hardened — then evaluated on the
    test split. Cached in the zoo (kind ``pruned``; saved with :func:`reidbook.prune.save_pruned`)."""
    from . import zoo
    from .eval import evaluate_model
    from .models import build_model
    from .prune import load_pruned, save_pruned
    from .prune.strategies import progressive_soft_prune, prune_once

    entry = zoo.get(base, profile, data, seed, device=device)
    preset = entry.preset
    size = (preset.height, preset.width)
    epochs, iters = FINETUNE[profile]
    num_classes = int(json.loads((entry.path / "entry.json").read_text())["num_classes"])
    config = _pruned_config(base, entry.path, method, target, strategy, profile, seed)

    def train() -> dict:
        ds = zoo.dataset(profile, data, seed)
        say(f"[compare] pruning {base} with {strategy}/{method} to {target:.2f} of its multiply-adds")
        if strategy == "psfp":
            net, rep = progressive_soft_prune(entry.model, target, ds, preset, epochs=max(epochs, 2), criterion=method,
                                              input_size=size, device=device, seed=seed, max_iters_per_epoch=iters)
        else:
            net, rep = prune_once(entry.model, method, target, ds, preset, epochs=epochs, input_size=size,
                                  device=device, seed=seed, max_iters_per_epoch=iters)
        net = tag_model(net.cpu().eval(), zoo.entry_dir("pruned", config))  # this evaluation's features are kept
        res = evaluate_model(net, ds, *size, device=device)  # the model's own metric (reidbook.eval.model_metric)
        return {"model": net, "metrics": {k: float(v) for k, v in res.items() if isinstance(v, (int, float))},
                "report": rep.to_dict()}

    def save(obj: dict, folder: Path) -> list[str]:
        save_pruned(obj["model"], folder / "model.pt")
        atomic_write_json(folder / "metrics.json", {"metrics": obj["metrics"], "report": obj["report"]})
        return ["model.pt", "metrics.json"]

    def load(folder: Path) -> dict:
        net = build_model(base, num_classes, profile=preset.profile, **preset.model_options)
        net = load_pruned(folder / "model.pt", net).eval()
        saved = json.loads((folder / "metrics.json").read_text())
        return {"model": net, "metrics": saved["metrics"], "report": saved["report"]}

    obj = zoo.cached("pruned", config, train, load_fn=load, save_fn=save)
    tag_model(obj["model"], zoo.entry_dir("pruned", config))  # loaded: its test features are read, not recomputed
    tuned = (max(epochs, 2) if strategy == "psfp" else epochs) * _epoch_images(zoo.dataset(profile, data, seed).train,
                                                                              preset, iters)
    return Contender(f"{base}:{strategy}:{method}:{target:.3f}", f"{base} pruned {method} → {target:.2f}", "pruning",
                     obj["model"].eval(), size, _metrics(obj["metrics"]), str(zoo.entry_dir("pruned", config)), base,
                     {"report": obj["report"], "images_seen": _images_seen(entry.history) + tuned})


def dare_exits(profile: str = "quick", data: str = "synth", seed: int = 0, device="auto") -> list[Contender]:
    """DaRe at each exit: the deployed exit models (:class:`reidbook.export.DaReExit`) and each exit's
    accuracy on the test split (one extraction of every embedding, :class:`AnytimeEval`; cached)."""
    from . import zoo
    from .eval.anytime import AnytimeEval

    entry = zoo.get("dare", profile, data, seed, device=device)
    size = (entry.preset.height, entry.preset.width)
    model = entry.model

    def evaluate() -> dict:
        ev = AnytimeEval.from_model(model, zoo.dataset(profile, data, seed), *size, device=device, costs=[1, 2, 3, 4])
        return {"mAP": [float(r.mAP) for r in ev.results], "rank1": [float(r.cmc[0]) for r in ev.results]}

    res = zoo.cached("dare_exit_metrics", {"dare_key": entry.path.name, "flip": True, "metric": "euclidean"}, evaluate)
    out = []
    for s in range(1, model.num_exits + 1):
        key = f"dare_exit{s}"
        out.append(Contender(key, CONTENDERS[key][0], "anytime", deployed_model(model, exit=s), size,
                             {"mAP": float(res["mAP"][s - 1]), "rank1": float(res["rank1"][s - 1])}, str(entry.path),
                             extra={"images_seen": _images_seen(entry.history)}))
    return out


# ----------------------------------------------------------------------------------------------
# MGN compressed with the course's own tools: pruned (above, ``mgn_pruned_l1_c1``) and distilled
# ----------------------------------------------------------------------------------------------
#: The small student's zoo run: chapter 06's ResNet-18 trained with the baseline's recipe (its control).
STUDENT_OVERRIDES = {"model_options": {"arch": "resnet18"}}


def resnet18(profile: str = "quick", data: str = "synth", seed: int = 0, device="auto") -> Contender:
    """ResNet-18 trained with the baseline's preset (the zoo run chapter 06 trains for the survey's Fig. 3):
    the MGN-distilled student's control — same network, same preset, same initialisation, no teacher."""
    from . import zoo

    e = zoo.get("baseline", profile, data, seed, device=device, **STUDENT_OVERRIDES)
    return Contender("resnet18", CONTENDERS["resnet18"][0], "reference", deployed_model(e.model),
                     (e.preset.height, e.preset.width), _metrics(e.metrics), str(e.path),
                     extra={"images_seen": _images_seen(e.history)})


def mgn_student(profile: str = "quick", data: str = "synth", seed: int = 0, device="auto",
                weight: float | None = None) -> Contender:
    """MGN distilled into a ResNet-18 (:mod:`reidbook.distill.kd`: similarity-preserving KD on the embedding,
    Tung & Mori 2019 — not FD's pipeline, whose per-view partial teachers an MGN teacher does not have).

    The student is :func:`resnet18`'s network, preset and source-domain initialisation, trained for the
    same epochs with ``γ · L_SP`` towards the cached MGN added to its own losses: the two see exactly the
    same images, so the difference between them is the teacher's. Cached in the zoo (kind ``kd_student``).
    """
    from . import zoo
    from .distill.kd import KD_WEIGHT, distill_into
    from .eval import evaluate_model, scalar_metrics
    from .models import build_model
    from .pretrain import backbone_of, resolve_pretrained
    from .store import load_model, save_model
    from .utils import seed_everything

    weight = KD_WEIGHT if weight is None else float(weight)
    teacher = zoo.get("mgn", profile, data, seed, device=device)
    control = zoo.get("baseline", profile, data, seed, device=device, **STUDENT_OVERRIDES)
    preset = control.preset
    size = (preset.height, preset.width)
    num_classes = int(json.loads((control.path / "entry.json").read_text())["num_classes"])
    config = {"teacher": teacher.path.name, "control": control.path.name, "preset": preset.to_dict(),
              "loss": "similarity_preserving", "weight": weight, "seed": seed}

    def build(pretrained=None):
        return build_model("baseline", num_classes, profile=preset.profile, pretrained=pretrained,
                           **preset.model_options)

    def train() -> dict:
        ds = zoo.dataset(profile, data, seed)
        arch, width = backbone_of("baseline", preset)
        pre, _ = resolve_pretrained("auto", arch=arch, width=width, profile=preset.profile, seed=seed, device=device)
        seed_everything(seed)
        student = build(pre)
        say(f"[compare] distilling MGN into a ResNet-18 (similarity-preserving KD, γ = {weight:g})")
        hist = distill_into(student, teacher.model, ds.train, preset, teacher_size=(teacher.preset.height,
                            teacher.preset.width), weight=weight, seed=seed, device=device,
                            checkpoint_dir=zoo.entry_dir("kd_student", config) / "train")
        net = deployed_model(student.cpu().eval())
        return {"model": net, "metrics": scalar_metrics(evaluate_model(net, ds, *size, device=device)),
                "history": hist.records}

    def save(obj: dict, folder: Path) -> list[str]:
        return save_model(folder, obj["model"], obj["metrics"], obj["history"])

    def load(folder: Path) -> dict:
        saved = load_model(folder, build())
        return {"model": saved.model, "metrics": saved.metrics, "history": saved.history}

    obj = zoo.cached("kd_student", config, train, load_fn=load, save_fn=save)
    return Contender("mgn_kd_r18", CONTENDERS["mgn_kd_r18"][0], "distillation", obj["model"].eval(), size,
                     _metrics(obj["metrics"]), str(zoo.entry_dir("kd_student", config)), "mgn",
                     {"images_seen": _images_seen(obj["history"]), "teacher_images_seen": _images_seen(teacher.history),
                      "kd_weight": weight})


# ----------------------------------------------------------------------------------------------
# Budgets: how many training images each model saw
# ----------------------------------------------------------------------------------------------
def _images_seen(history) -> float:
    """Images the optimiser saw in one training (the history's per-epoch ``images``), NaN if unrecorded."""
    from .claims.measures import images_seen

    n = images_seen(history)
    return float("nan") if n is None else float(n)


def _epoch_images(items, preset, iters: int | None = None) -> int:
    """Images one epoch of ``preset``'s P×K sampler shows (``iters`` caps the batches)."""
    from .data import RandomIdentitySampler

    n = len(RandomIdentitySampler(items, num_instances=preset.K, batch_size=preset.P * preset.K))
    return n if iters is None else min(n, iters * preset.P * preset.K)


# ----------------------------------------------------------------------------------------------
# Collect
# ----------------------------------------------------------------------------------------------
def _from_zoo(key: str, profile: str, data: str, seed: int, device) -> Contender:
    from . import zoo

    e = zoo.get(key, profile, data, seed, device=device)
    return Contender(key, CONTENDERS[key][0], CONTENDERS[key][1], deployed_model(e.model),
                     (e.preset.height, e.preset.width), _metrics(e.metrics), str(e.path),
                     extra={"images_seen": _images_seen(e.history)})


def _fd_student(profile: str, data: str, seed: int, device) -> Contender:
    from .distill.pipeline import distilled_student, initial_student
    from .presets.fd import fd_settings

    s = distilled_student(profile, data, seed, device)
    # the student's own trainings (initial student, branch warm-up, distillation); the teachers' are not counted
    seen = _images_seen(initial_student(profile, data, seed, device).history) + _images_seen(s.history) + \
        (_images_seen(s.warmup) if s.warmup else 0.0)
    return Contender("fd_student", CONTENDERS["fd_student"][0], "distillation", deployed_model(s.model),
                     tuple(fd_settings(profile).holistic_size), _metrics(s.metrics), str(s.path),
                     extra={"images_seen": seen})


# key → (base, strategy, method, target): the survey's C1 = 1/2 and C2 = 1/3 of the multiply-adds kept.
_PRUNED = {"pruned_l1_c1": ("baseline", "once", "l1", C1), "pruned_l1_c2": ("baseline", "once", "l1", C2),
           "pcb_psfp_c1": ("pcb", "psfp", "psfp", C1), "mgn_pruned_l1_c1": ("mgn", "once", "l1", C1)}


def is_cached(key: str, profile: str = "quick", data: str = "synth", seed: int = 0) -> bool:
    """Whether contender ``key`` is already in the zoo (nothing is loaded or trained)."""
    from . import zoo

    if key not in CONTENDERS:
        raise KeyError(f"unknown contender {key!r}; the comparison knows {', '.join(CONTENDERS)}")
    if key == "fd_student":
        raise ValueError("whether the FD student is cached depends on its teachers' and store's files; "
                         "is_cached cannot tell without loading them (leave fd_student out of only_cached)")
    if key == "mgn_kd_r18":
        raise ValueError("whether the MGN-distilled student is cached depends on its teacher's and control's "
                         "entries; is_cached cannot tell without loading them (leave mgn_kd_r18 out of only_cached)")
    if key.startswith("dare_exit"):
        key = "dare"
    if key == "resnet18":
        return (zoo.entry_path("baseline", profile, data, seed, **STUDENT_OVERRIDES) / "entry.json").exists()
    if key in _PRUNED:
        base, strategy, method, target = _PRUNED[key]
        base_path = zoo.entry_path(base, profile, data, seed)
        return (base_path / "entry.json").exists() and \
            (zoo.entry_dir("pruned", _pruned_config(base, base_path, method, target, strategy, profile, seed))
             / "entry.json").exists()
    return (zoo.entry_path(key, profile, data, seed) / "entry.json").exists()


def collect(profile: str = "quick", data: str = "synth", seed: int = 0, device="auto",
            include: list[str] | None = None, only_cached=()) -> list[Contender]:
    """Every model the course trained (:data:`CONTENDERS`, or those in ``include``), loaded from the zoo
    (trained now if missing), deployed, with its accuracy on the test split, in table order.

    Keys in ``only_cached`` are taken only if the zoo already holds them (:func:`is_cached`) and left
    out otherwise — for models too slow to train inside a time budget; the caller says what is missing.
    """
    keys = list(CONTENDERS) if include is None else list(include)
    unknown = [k for k in keys if k not in CONTENDERS]
    if unknown:
        raise KeyError(f"unknown contender(s) {unknown}; the comparison knows {', '.join(CONTENDERS)}")
    keys = [k for k in keys if k not in set(only_cached) or is_cached(k, profile, data, seed)]
    args = (profile, data, seed, device)
    out: dict[str, Contender] = {}
    for key in keys:
        if key in out:
            continue
        if key in ("baseline", "mgn", "pcb", "graftednet"):
            c = _from_zoo(key, *args)
        elif key == "resnet18":
            c = resnet18(*args)
        elif key == "mgn_kd_r18":
            c = mgn_student(*args)
        elif key == "fd_student":
            c = _fd_student(*args)
        elif key.startswith("dare_exit"):
            for d in dare_exits(*args):
                if d.key in keys:
                    out[d.key] = d
            continue
        else:
            base, strategy, method, target = _PRUNED[key]
            c = pruned(base, method, target, strategy, *args)
            c.key, c.label = key, CONTENDERS[key][0]
        c.family, c.compresses = CONTENDERS[key][1], CONTENDERS[key][2]
        out[key] = c
    return [out[k] for k in keys]


# ----------------------------------------------------------------------------------------------
# Measure
# ----------------------------------------------------------------------------------------------
def measure(contenders: list[Contender], threads: int = 1, rounds: int = 3, repeats: int = 3,
            batch_size: int = 1):
    """The comparison table (a ``pandas.DataFrame`` indexed by key): label, family, what it compresses,
    mAP and Rank-1 (%), parameters (M, used at test time), multiply-adds (M) and CPU latency (ms, median,
    ``batch_size`` images, ``threads`` threads; all models measured interleaved in one run), input size."""
    import pandas as pd

    rows = {}
    for c in contenders:
        rows[c.key] = {"label": c.label, "family": c.family, "compresses": c.compresses,
                       "mAP": 100 * c.metrics.get("mAP", float("nan")),
                       "rank1": 100 * c.metrics.get("rank1", float("nan")),
                       "params_M": inference_params(c.model, c.input_size) / 1e6,
                       "MACs_M": count_macs(c.model, c.input_size) / 1e6,
                       "input": f"{c.input_size[0]}×{c.input_size[1]}",
                       "images_seen": float(c.extra.get("images_seen", float("nan")))}
    samples: dict[str, list[float]] = {c.key: [] for c in contenders}
    for _ in range(max(1, rounds)):
        for c in contenders:
            samples[c.key].append(measure_latency(c.model, c.input_size, batch_size, threads=threads, warmup=1,
                                                  repeats=repeats)["median_ms"])
    for c in contenders:
        rows[c.key]["latency_ms"] = statistics.median(samples[c.key])
    df = pd.DataFrame.from_dict(rows, orient="index")
    df.index.name = "key"
    df.attrs.update(threads=threads, batch_size=batch_size, rounds=rounds)
    return df


# ----------------------------------------------------------------------------------------------
# The papers' numbers
# ----------------------------------------------------------------------------------------------
def paper_rows(keys=None):
    """:data:`PAPER` as a ``DataFrame`` (``paper_mAP``, ``paper_rank1``, ``paper_params_M``, ``paper_cost``,
    ``paper_source``), Market-1501; rows for ``keys`` (default: all)."""
    import pandas as pd

    keys = list(PAPER) if keys is None else [k for k in keys if k in PAPER]
    df = pd.DataFrame.from_dict({k: {f"paper_{f}": v for f, v in PAPER[k].items()} for k in keys}, orient="index")
    df.index.name = "key"
    return df


def with_paper(table):
    """``table`` (from :func:`measure`) with the papers' columns beside ours (NaN where a paper has none)."""
    return table.join(paper_rows(list(table.index)), how="left")


# ----------------------------------------------------------------------------------------------
# Where each model's accuracy comes from: background reliance, and the claims ledger's view
# ----------------------------------------------------------------------------------------------
def background_table(contenders: list[Contender], profile: str = "quick", data: str = "synth", seed: int = 0,
                     device="auto"):
    """:func:`reidbook.eval.background.background_reliance` for every contender (mAP on SynthReID's query and
    on its background-swapped query, and the drop), each with its own input size and metric; cached in the zoo
    per model (kind ``bg_reliance``). A ``DataFrame`` indexed by key, in percent."""
    import pandas as pd

    from . import zoo
    from .eval.background import background_reliance

    ds = zoo.dataset(profile, data, seed)
    rows = {}
    for c in contenders:
        config = {"entry": Path(c.source).name, "key": c.key, "input": list(c.input_size), "flip": True,
                  "profile": profile, "data": data, "seed": seed}
        res = zoo.cached("bg_reliance", config, lambda c=c: {
            k: float(v) for k, v in background_reliance(c.model, ds, *c.input_size, device=device).items()
            if isinstance(v, (int, float))})
        rows[c.key] = {"label": c.label, **{k: 100 * v for k, v in res.items()}}
    df = pd.DataFrame.from_dict(rows, orient="index")
    df.index.name = "key"
    return df


#: The zoo models of the ledger's runs that are rows of the comparison (ledger model name → contender key).
LEDGER_MODELS = {"baseline": "baseline", "mgn": "mgn", "graftednet": "graftednet", "fd_student": "fd_student",
                 "dare": "dare_exit4", "pcb": "pcb"}


def ledger_state(profile: str = "quick", path=None) -> tuple[object, str]:
    """``(ledger or None, sentence)``: the claims ledger of ``profile`` if it exists and matches this
    checkout's presets, else ``None`` with a sentence saying why (not yet run, or stale: run `make claims`)."""
    from .claims.ledger import LedgerError, is_stale, load_ledger

    try:
        ledger = load_ledger(profile, path, missing_ok=True)
    except LedgerError as exc:
        return None, f"The claims ledger cannot be read ({exc})."
    if ledger is None:
        return None, (f"The claims ledger for `{profile}` is not yet run (`make claims` writes "
                      f"assets/claims/{profile}.json): there is no budget-matched view yet.")
    if is_stale(ledger):
        return None, ("The claims ledger was made with other presets than this checkout's (stale: run `make claims`); "
                      "its numbers are not mixed with these runs.")
    prov = ledger.provenance
    return ledger, (f"Claims ledger `{profile}`: {len(ledger.data['settings']['seeds'])} seeds, made "
                    f"{prov.get('date')} on {prov.get('cpu')} at commit `{str(prov.get('commit'))[:10]}`.")


def budget_matched(ledger) -> "object":
    """The ledger's budget-matched comparisons of the capstone's models: for every claim whose two sides
    were trained for the same number of images (``budget.equal``) and involve a model of the comparison,
    one row per side — mean ± std of its metric over seeds, images seen per seed, CPU seconds, the verdict.
    A ``DataFrame`` (empty if no claim qualifies)."""
    import pandas as pd

    rows = []
    for cid, c in ledger.claims.items():
        budget = c.get("budget") or {}
        cfgs = c.get("configs") or []
        if not budget.get("equal") or not any(x.get("model") in LEDGER_MODELS for x in cfgs):
            continue
        for x in cfgs:
            metric = x.get("metric") or c["metric"]
            scale = 100.0 if metric.split("/")[-1] in ("mAP", "rank1") else 1.0
            seen = [n for n in x.get("images_seen") or [] if n is not None]
            rows.append({"claim": cid, "configuration": x["label"], "metric": metric,
                         "mean": None if x.get("mean") is None else x["mean"] * scale,
                         "std": None if x.get("std") is None else x["std"] * scale,
                         "seeds": len(x.get("values") or []), "images_seen": seen[0] if seen else None,
                         "cpu_seconds": x.get("cpu_seconds"),
                         "verdict": (c.get("verdict") or {}).get("verdict", "not run")})
    return pd.DataFrame(rows)


#: The ledger's claims that answer the comparison's question at equal budgets — does a compression beat, or stay
#: near, what it compresses when both are trained on the same images? (MGN is the strong model compressed.)
HEADLINE_CLAIMS = ("mgn.vs_baseline", "graftednet.vs_resnet50_accuracy", "fd.vs_control", "survey.pruned_near_r50",
                   "survey.pruned_r50_vs_r18")


def budget_matched_headline(ledger, claims=HEADLINE_CLAIMS) -> str:
    """The README's headline, at equal budgets: one line per claim of ``claims`` that the ledger measured with
    equal training budgets — both sides' mean ± std over seeds, the images each run saw, its training time per
    seed (measured), the verdict and what the claim says. Generated from the ledger; a claim missing from it,
    or not measured at equal budgets, is left out and counted at the end."""
    seeds = len(ledger.data.get("settings", {}).get("seeds", []))
    lines = [f"**At equal training budgets** (the claims ledger, {seeds} seeds; both sides of each line trained on "
             "the same number of images from the same initialisation):", ""]
    left_out = []
    for cid in claims:
        c = ledger.claims.get(cid)
        cfgs = (c or {}).get("configs") or []
        if (c is None or not (c.get("budget") or {}).get("equal") or len(cfgs) != 2
                or any(x.get("mean") is None for x in cfgs)):
            left_out.append(cid)
            continue
        sides = []
        for x in cfgs:
            metric = x.get("metric") or c["metric"]
            scale = 100.0 if metric.split("/")[-1] in ("mAP", "rank1") else 1.0
            std = f" ± {x['std'] * scale:.1f}" if x.get("std") is not None else ""
            secs = [t for t in x.get("train_seconds") or [] if t is not None]
            time = f", {statistics.mean(secs):.0f} s of training a seed" if secs else ""
            seen = [n for n in x.get("images_seen") or [] if n is not None]
            images = f"{seen[0]:,} images" if seen else "images not recorded"
            sides.append(f"{x['label']} {x['mean'] * scale:.1f}{std} % {metric.split('/')[-1]} ({images}{time})")
        verdict = (c.get("verdict") or {}).get("verdict", "not run")
        lines.append(f"- {sides[0]} vs {sides[1]}: **{verdict}** — “{c['statement']}” (`{cid}`)")
    if left_out:
        missing = ", ".join(f"`{x}`" for x in left_out)
        lines += ["", f"Not in the ledger at equal budgets yet: {missing} (`make claims`)."]
    return "\n".join(lines)


def claims_summary(ledger) -> tuple[str, "object"]:
    """``(sentence, DataFrame)``: every claim of the ledger with its paper and verdict, and a sentence
    counting the verdicts (generated from the ledger)."""
    import collections

    import pandas as pd

    verdicts = ledger.verdicts
    df = pd.DataFrame([{"claim": cid, "paper": c["paper"], "where": c["where"], "statement": c["statement"],
                        "verdict": verdicts[cid]} for cid, c in ledger.claims.items()])
    counts = collections.Counter(verdicts.values())
    sentence = (f"{len(verdicts)} claims in the ledger: " +
                ", ".join(f"{n} {v}" for v, n in counts.most_common()) + ".")
    return sentence, df


# ----------------------------------------------------------------------------------------------
# Sentences and tables the chapter prints (every number in them computed here, from the run)
# ----------------------------------------------------------------------------------------------
def _compression_departures(profile: str) -> list:
    from .presets.departures import Departure

    epochs, iters = FINETUNE[profile]
    tune = f"{epochs} epoch(s)" + (f", at most {iters} iterations each" if iters else "")
    return [
        ("pruned models", Departure("fine-tuning after pruning", "30 epochs (survey §4)", tune,
                                    "a short fine-tune that fits the chapter's time budget (compare.FINETUNE)")),
        ("ResNet-18 ← MGN", Departure("distillation loss", "activation maps of chosen layers, γ = 3000 (Tung & Mori "
                                      "2019, CIFAR-10)", "the final embeddings, γ = 100 (reidbook.distill.kd)",
                                      "a re-ID network's output is its embedding; γ sized against the student's "
                                      "own loss")),
        ("ResNet-18 ← MGN", Departure("teacher input", "the student's images", "the student's batch resized to "
                                      "MGN's input size", "MGN was trained at its own input size")),
    ]


def departures_of(profile: str, keys) -> "object":
    """The departures from the papers of every model in ``keys`` (contender keys), as one table: the
    presets' own (:mod:`reidbook.presets.departures`) for the trained models, plus how the compressed
    models' procedures depart from theirs (fine-tuning budget, the distillation loss). Columns: model,
    what, paper, ours, why, measured effect."""
    import pandas as pd

    from .presets import departures_table, get_preset
    from .presets.fd import distill_preset

    presets = {"baseline": "baseline", "mgn": "mgn", "pcb": "pcb", "graftednet": "graftednet"}
    frames, seen = [], set()
    for key in keys:
        name = "dare" if str(key).startswith("dare_exit") else "fd" if key == "fd_student" else presets.get(key)
        if name is None or name in seen:
            continue
        seen.add(name)
        preset = distill_preset(profile) if name == "fd" else get_preset(name, profile)
        if name == "fd" and not preset.departures:
            from .presets.fd_departures import fd_departures

            preset = preset.replace(departures=fd_departures(profile, "distill"))
        frames.append(departures_table(preset).assign(model=name))
    extra = [(m, d) for m, d in _compression_departures(profile)
             if (m == "pruned models" and any(k in _PRUNED for k in keys)) or (m != "pruned models" and
                                                                                 "mgn_kd_r18" in keys)]
    if extra:
        frames.append(pd.DataFrame([{"model": m, "what": d.what, "paper": d.paper, "ours": d.ours, "why": d.why,
                                     "measured effect": d.effect or "—"} for m, d in extra]))
    if not frames:
        return pd.DataFrame(columns=["model", "what", "paper", "ours", "why", "measured effect"])
    df = pd.concat(frames, ignore_index=True)
    return df[["model", "what", "paper", "ours", "why", "measured effect"]]


def mgn_compression(table) -> tuple["object", str]:
    """MGN and what the course made of it — pruned (``mgn_pruned_l1_c1``), distilled (``mgn_kd_r18``) and the
    student's control (``resnet18``) — as ``(rows of table, Markdown)``; every number in the text is read from
    ``table`` (from :func:`measure`). Rows that are missing are left out of the text."""
    keys = [k for k in ("mgn", "mgn_pruned_l1_c1", "resnet18", "mgn_kd_r18") if k in table.index]
    rows = table.loc[keys, ["label", "mAP", "rank1", "params_M", "MACs_M", "latency_ms", "images_seen"]]
    if "mgn" not in keys:
        return rows, "MGN is not in the table: nothing to compare its compressions with."
    m = table.loc["mgn"]
    out = []
    if "mgn_pruned_l1_c1" in keys:
        p = table.loc["mgn_pruned_l1_c1"]
        out.append(f"**Pruned** (one-shot L1 over MGN's backbone and branches, then fine-tuned): "
                   f"{p['MACs_M'] / m['MACs_M']:.0%} of MGN's multiply-adds and {p['params_M'] / m['params_M']:.0%} "
                   f"of its parameters, mAP {p['mAP']:.1f} % against MGN's {m['mAP']:.1f} % "
                   f"({p['mAP'] - m['mAP']:+.1f} points).")
    if "mgn_kd_r18" in keys:
        s = table.loc["mgn_kd_r18"]
        text = (f"**Distilled** into a ResNet-18: {s['params_M'] / m['params_M']:.0%} of MGN's parameters and "
                f"{s['MACs_M'] / m['MACs_M']:.0%} of its multiply-adds, mAP {s['mAP']:.1f} % "
                f"({s['mAP'] - m['mAP']:+.1f} points against MGN).")
        if "resnet18" in keys:
            c = table.loc["resnet18"]
            same = math.isclose(float(s["images_seen"]), float(c["images_seen"]))
            budget = (f"the same {int(c['images_seen']):,} training images" if same else
                      f"{s['images_seen']:,.0f} vs {c['images_seen']:,.0f} training images (unequal)")
            text += (f" The same ResNet-18 without a teacher ({budget}) reaches {c['mAP']:.1f} %: the teacher adds "
                     f"{s['mAP'] - c['mAP']:+.1f} points in this run (one seed).")
        out.append(text)
    return rows, "\n\n".join(out)


def attention_and_background(att, bg) -> "object":
    """One table per model (indexed by label): :func:`reidbook.viz.compare.attention_table`'s on-person shares,
    chance and map agreement beside :func:`background_table`'s mAP, swapped-background mAP and drop (in %)."""
    a = att.copy()
    for col in ("on_person_response", "chance_query", "on_person_gradcam", "chance_match"):
        a[col] = 100 * a[col]
    b = bg.set_index("label")[["mAP", "mAP_swap", "drop"]].rename(
        columns={"mAP": "mAP (query)", "mAP_swap": "mAP (swapped background)", "drop": "drop (points)"})
    return a.join(b, how="left")


def describe_attention(joined, reference: str) -> str:
    """Sentences generated from :func:`attention_and_background`'s table: which model puts the most and the
    least of its response on the person (against chance), which leans most and least on the background
    (the mAP drop under the swap), whether the two measures go together across models (Spearman's ρ), and
    how the maps of compressed models agree with the ``reference``'s."""
    from scipy.stats import spearmanr

    j = joined.dropna(subset=["on_person_response"])
    if j.empty:
        return "No model's response could be measured."
    hi, lo = j["on_person_response"].idxmax(), j["on_person_response"].idxmin()
    chance = float(j["chance_query"].mean())
    out = [f"On the person (chance {chance:.0f} % of the pixels): most **{hi}** "
           f"({j.loc[hi, 'on_person_response']:.0f} % of its response energy), least **{lo}** "
           f"({j.loc[lo, 'on_person_response']:.0f} %); {int((j['on_person_response'] > 1.1 * chance).sum())} of "
           f"{len(j)} models put more than 1.1× chance on the person."]
    d = j.dropna(subset=["drop (points)"])
    if len(d):
        most, least = d["drop (points)"].idxmax(), d["drop (points)"].idxmin()
        out.append(f"Background reliance: swapping the query's background costs **{most}** "
                   f"{d.loc[most, 'drop (points)']:.1f} mAP points (the most) and **{least}** "
                   f"{d.loc[least, 'drop (points)']:.1f} (the least).")
        if len(d) >= 3:
            rho = float(spearmanr(d["on_person_response"], d["drop (points)"]).statistic)
            way = ("models that look more at the person lose less to the swap" if rho < -0.3 else
                   "models that look more at the person lose *more* to the swap" if rho > 0.3 else
                   "the two measures hardly go together across models")
            out.append(f"Across the {len(d)} models, Spearman's ρ between on-person share and drop is {rho:+.2f}: "
                       f"{way}.")
    others = j.drop(index=reference, errors="ignore")["agreement_response"].dropna()
    if len(others):
        out.append(f"Agreement with {reference}'s response maps: highest **{others.idxmax()}** "
                   f"({others.max():+.2f}), lowest **{others.idxmin()}** ({others.min():+.2f}).")
    return " ".join(out)
