"""Factorized Distillation end to end: the three steps of §3.6, each cached in the zoo.

Paper 002, §3.6:

1. train a teacher for every view and the initial holistic student (Fig. 2's system, Eq. 1);
2. extract every teacher's supervisory representations of the training set (Eq. 2) into a store;
3. attach FMFBs and RFBs for the views to the student, initialise it from the initial student
   (weights *and* classifier, §3.6 after [28]) and train it with Eq. (6); deploy the plain student.

Every artefact is train-or-load through :func:`reidbook.store.cached`, keyed by its full configuration
(profile, data set and its fingerprint, seed, preset, and the keys of the artefacts it was made from):

=====================  ============================================================
zoo kind               what
=====================  ============================================================
``fd_teacher``         one teacher per view (``model.pt``, ``metrics.json``, ``history.json``)
``fd_student_initial`` the initial student = "the same student without FD"
``fd_srs``             the SR store of the teachers (:mod:`reidbook.distill.store`)
``fd_student``         a distilled (deployed) student for a choice of views and losses
=====================  ============================================================

The capstone reuses the distilled student through :func:`distilled_student` (same arguments → same
cache entry). Every model is scored on the data set's query/gallery (cosine distance, flip-averaged).
"""
from __future__ import annotations

import dataclasses
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Sequence

from torch import nn

from ..data.views import VIEW_NAMES, View, make_views
from ..presets.fd import distill_preset, fd_settings, student_preset, teacher_preset
from ..pretrain import resolve_pretrained
from ..store import (
    cached,
    data_fingerprint,
    data_key,
    dataset,
    entry_dir,
    load_model,
    save_model,
    tag_derived,
    tag_model,
)
from ..utils import resolve_device, say, seed_everything
from .store import SRStore, dataset_fingerprint, extract_srs, load_store, model_fingerprint, write_store
from .student import LOSS_CHOICES, distill_student
from .teachers import evaluate_view, train_view_model

__all__ = ["Trained", "FDResult", "views_for", "train_teacher", "train_teachers", "prepare_teachers",
           "initial_student", "supervisory_representations", "distilled_student", "run_pipeline"]


@dataclass
class Trained:
    """A trained FD network from the zoo: ``model`` (eval mode, CPU), test ``metrics``, training ``history``
    (list of per-epoch records), the zoo ``path`` and the ``config`` (whose hash is the cache key)."""

    model: nn.Module
    metrics: dict[str, float]
    history: list[dict]
    path: Path
    config: dict
    trained: nn.Module | None = None  # a distilled student *with* its FMFBs/RFBs (for Fig. 4); else None
    warmup: list[dict] = field(default_factory=list)  # a distilled student's branch warm-up records

    @property
    def key(self) -> str:
        return self.path.name


@dataclass
class FDResult:
    """Everything :func:`run_pipeline` produced."""

    teachers: dict[str, Trained]
    initial: Trained
    store: SRStore
    student: Trained
    views: list[View] = field(default_factory=list)


def views_for(profile: str, names: Sequence[str] = VIEW_NAMES) -> list[View]:
    """The views at ``profile``'s sizes (§4.1 in ``full``)."""
    s = fd_settings(profile)
    return make_views(s.holistic_size, s.partial_size, names)


def _base_config(profile: str, data: str, seed: int, settings: bool = True) -> dict:
    """What every FD cache key holds. ``settings=False`` (teachers, the initial student, their SRs) leaves
    out the profile's :class:`FDSettings`, whose distillation fields (α, β, regression, warm-up …) do not
    change those networks: their own presets and ``pretrained`` are in their keys instead, so tuning the
    distillation does not retrain seven teachers."""
    config = {"profile": profile, "data": data_key(data), "seed": seed,
              "data_sha256": data_fingerprint(profile, data, seed)}
    if settings:
        config["settings"] = dataclasses.asdict(fd_settings(profile))
    return config


def _pretrained(profile: str, arch: str, width: float, seed: int, device):
    """The backbone initialisation of :class:`FDSettings`: ``None``, ``"imagenet"`` (full, §4.1), or
    ``"source"``: the backbone pre-trained on SynthReID's source domain (:func:`reidbook.pretrain.resolve_pretrained`;
    cached, shared by every teacher and student of the same architecture and width)."""
    from ..models.fd import STUDENTS

    arch = STUDENTS[arch][0] if arch in STUDENTS else arch
    return resolve_pretrained(fd_settings(profile).pretrained, arch=arch, width=width, profile=profile, seed=seed,
                              device=device)[0]


def _save(folder: Path, obj: dict) -> list[str]:
    """The store's saved-model format (:func:`reidbook.store.save_model`), plus a distilled student's
    branch warm-up records (``warmup.json``)."""
    return save_model(folder, obj["model"], obj["metrics"], obj["history"], warmup=obj.get("warmup"))


def _loader(build):
    def load(folder: Path) -> dict:
        saved = load_model(folder, build(), extra=("warmup",))
        return {"model": saved.model, "metrics": saved.metrics, "history": saved.history,
                "warmup": saved.extra["warmup"] or []}
    return load


def _cached_model(kind: str, config: dict, build, train) -> Trained:
    obj = cached(kind, config, train, load_fn=_loader(build), save_fn=lambda o, f: _save(f, o))
    model = obj["model"].cpu().eval()
    if getattr(model, "has_branches", False):  # keep the branches for Fig. 4; the model is the deployed one
        deployed = tag_derived(model.deploy().eval(), model, "deployed")  # test features cached like the entry's
        return Trained(deployed, obj["metrics"], obj["history"], entry_dir(kind, config), config,
                       trained=model, warmup=obj.get("warmup") or [])
    return Trained(model, obj["metrics"], obj["history"], entry_dir(kind, config), config)


def _train_and_score(model: nn.Module, ds, view: View, preset, device, seed: int, folder: Path, desc: str) -> dict:
    seed_everything(seed)
    t0 = time.perf_counter()
    history = train_view_model(model, ds.train, view, preset, device=device, seed=seed,
                               checkpoint_dir=folder / "train", desc=desc)
    model = tag_model(model.cpu().eval(), folder)  # so this first evaluation's view features are kept (store)
    metrics = evaluate_view(model, ds, view, device=device)
    metrics["train_seconds"] = time.perf_counter() - t0
    return {"model": model.cpu().eval(), "metrics": metrics, "history": history.records}


# ----------------------------------------------------------------------------------------------
# Step 1
# ----------------------------------------------------------------------------------------------
def _view_network(kind: str, preset, view: View, config: dict, profile: str, data: str, seed: int, device,
                  desc: str) -> Trained:
    """Train-or-load one network of Fig. 2 (a teacher, or the initial student) of ``preset`` on ``view``:
    built with its backbone initialisation (:func:`_pretrained`), trained, scored on its view, cached."""
    from ..models import build_model

    ds = dataset(profile, data, seed)

    def build(pretrained=None):
        return build_model(preset.model, ds.num_train_pids, profile=profile, pretrained=pretrained,
                           **preset.model_options)

    def train():
        say(f"[fd] training the {desc} ({preset.model_options['arch']}, {view.height}x{view.width})")
        pre = _pretrained(profile, preset.model_options["arch"], preset.model_options["width"], seed, device)
        seed_everything(seed)  # the heads' initial weights, whatever ran (or was loaded) before in this process
        return _train_and_score(build(pre), ds, view, preset, device, seed, entry_dir(kind, config), desc)

    return _cached_model(kind, config, build, train)


def train_teacher(view: str, profile: str = "quick", data: str = "synth", seed: int = 0, device="auto") -> Trained:
    """The teacher of ``view`` (cached as zoo kind ``fd_teacher``), scored on its view of query/gallery."""
    preset = teacher_preset(view, profile)
    (v,) = views_for(profile, [view])
    config = {**_base_config(profile, data, seed, settings=False), "view": v.to_dict(),
              "pretrained": fd_settings(profile).pretrained, "preset": preset.to_dict()}
    return _view_network("fd_teacher", preset, v, config, profile, data, seed, device, f"teacher {view}")


def train_teachers(views: Sequence[str] = VIEW_NAMES, profile: str = "quick", data: str = "synth", seed: int = 0,
                   device="auto") -> dict[str, Trained]:
    """:func:`train_teacher` for every view, in order."""
    return {v: train_teacher(v, profile, data, seed, device) for v in views}


def prepare_teachers(profile: str = "quick", data: str = "synth", seed: int = 0, device="auto") -> dict[str, float]:
    """Train (or load) every teacher before the course's chapters run; seconds spent per teacher (0 if cached).

    The laptop profiles' stand-in for downloading trained teachers: FD needs teachers that know clearly
    more than the student (:mod:`reidbook.distill.student` measured why), and seven of them cost more
    than a chapter's three minutes. ``reidbook course`` calls this after :func:`reidbook.zoo.prepare_course`;
    chapter 04 then loads them from the zoo (and trains them itself if they are missing).
    """
    spent = {}
    for view in VIEW_NAMES:
        t0 = time.perf_counter()
        train_teacher(view, profile, data, seed, device)
        spent[f"FD teacher {view}"] = time.perf_counter() - t0
    return spent


def initial_student(profile: str = "quick", data: str = "synth", seed: int = 0, device="auto") -> Trained:
    """The initial holistic student (cached as ``fd_student_initial``): the student *without* FD."""
    preset = student_preset(profile)
    config = {**_base_config(profile, data, seed, settings=False), "pretrained": fd_settings(profile).pretrained,
              "preset": preset.to_dict()}
    (v,) = views_for(profile, ["holistic"])
    return _view_network("fd_student_initial", preset, v, config, profile, data, seed, device, "initial student")


# ----------------------------------------------------------------------------------------------
# Step 2
# ----------------------------------------------------------------------------------------------
def supervisory_representations(teachers: dict[str, Trained], profile: str = "quick", data: str = "synth",
                                seed: int = 0, device="auto") -> SRStore:
    """Eq. (2) for every teacher over the training set, as a checked store (zoo kind ``fd_srs``)."""
    ds = dataset(profile, data, seed)
    views = views_for(profile, list(teachers))
    data_fp = dataset_fingerprint(ds.train)
    teacher_fp = {v: model_fingerprint(t.model) for v, t in teachers.items()}
    config = {**_base_config(profile, data, seed, settings=False), "teachers": {v: t.key for v, t in teachers.items()},
              "teacher_sha256": teacher_fp, "views": [v.to_dict() for v in views]}
    expect = dict(data_fingerprint=data_fp, teachers=teacher_fp, views={v.name: v.to_dict() for v in views})

    def extract() -> dict:
        say(f"[fd] extracting supervisory representations of {len(ds.train)} images for {len(views)} views")
        return {v.name: extract_srs(teachers[v.name].model, ds.train, v, device=device) for v in views}

    def save(srs: dict, folder: Path) -> list[str]:
        prov = {v.name: {"teacher_sha256": teacher_fp[v.name], "view": v.to_dict(),
                         "teacher_entry": teachers[v.name].key} for v in views}
        return write_store(folder, srs, data_fp, prov)

    out = cached("fd_srs", config, extract, load_fn=lambda f: load_store(f, **expect), save_fn=save)
    if isinstance(out, SRStore):
        return out
    return load_store(entry_dir("fd_srs", config), **expect)


# ----------------------------------------------------------------------------------------------
# Step 3
# ----------------------------------------------------------------------------------------------
def distilled_student(profile: str = "quick", data: str = "synth", seed: int = 0, device="auto",
                      views: Sequence[str] = VIEW_NAMES, use: Sequence[str] = LOSS_CHOICES,
                      teachers: dict[str, Trained] | None = None, initial: Trained | None = None,
                      store: SRStore | None = None) -> Trained:
    """The final student distilled from the teachers of ``views`` with the losses ``use`` (zoo kind
    ``fd_student``); deployed (no FMFB/RFB) and scored. Missing steps are run (or loaded) first.

    ``use=()`` continues the initial student with ``L_cls`` only for the same epochs: the control that
    shows what FD adds beyond more training (our Table 7 first row).
    """
    from ..models import build_model

    views = list(views)
    use = tuple(u for u in LOSS_CHOICES if u in use)
    s = fd_settings(profile)
    preset = distill_preset(profile)
    ds = dataset(profile, data, seed)
    initial = initial or initial_student(profile, data, seed, device)
    if use:
        teachers = teachers or train_teachers(VIEW_NAMES, profile, data, seed, device)
        store = store or supervisory_representations(teachers, profile, data, seed, device)
        store = store.subset(views)
    config = {**_base_config(profile, data, seed), "preset": preset.to_dict(), "initial": initial.key,
              "views": views if use else [], "use": list(use),
              "srs": {v: store.provenance[v]["teacher_sha256"] for v in views} if use else {}}

    def build(branches: bool = True):
        from ..models.fd import FEATSEL_CHANNELS, scaled_dim

        net = build_model("fd_student", ds.num_train_pids, profile=profile, **preset.model_options)
        if use and branches:
            net.add_branches(store.dims, scaled_dim(FEATSEL_CHANNELS, s.s_width))
        return net

    def train():
        student = build(branches=False)
        student.load_state_dict(initial.model.state_dict())  # §3.6: initialised from the initial student
        vs = views_for(profile, views)
        seed_everything(seed)  # the branches' initial weights, whatever ran before in this process
        if use:
            from ..models.fd import FEATSEL_CHANNELS, scaled_dim

            student.add_branches(store.dims, scaled_dim(FEATSEL_CHANNELS, s.s_width))
        say(f"[fd] distilling {preset.model_options['arch']} with {'+'.join(use) or 'L_cls only'} "
            f"from {len(views) if use else 0} views")
        seed_everything(seed)
        t0 = time.perf_counter()
        history = distill_student(student, ds.train, store if use else SRStore({}, ""), vs, preset, use=use,
                                  alpha=s.alpha, beta=s.beta, erase_threshold=s.erase_threshold, device=device,
                                  regression=s.regression, cls_reduction=s.cls_reduction,
                                  branch_warmup_epochs=s.branch_warmup_epochs,
                                  branch_warmup_lr=s.branch_warmup_lr,
                                  seed=seed, checkpoint_dir=entry_dir("fd_student", config) / "train",
                                  desc=f"distill {'+'.join(use) or 'cls'}")
        student = student.cpu().eval()
        (hol,) = views_for(profile, ["holistic"])
        metrics = evaluate_view(student.deploy(), ds, hol, device=device)  # the deployed student is scored
        metrics["train_seconds"] = time.perf_counter() - t0
        return {"model": student, "metrics": metrics, "history": history.records,
                "warmup": history.warmup.records if history.warmup is not None else []}

    return _cached_model("fd_student", config, build, train)


def run_pipeline(profile: str = "quick", data: str = "synth", seed: int = 0, device="auto",
                 views: Sequence[str] = VIEW_NAMES, use: Sequence[str] = LOSS_CHOICES) -> FDResult:
    """All three steps of §3.6 (each loaded from the zoo when cached)."""
    resolve_device(device)
    teachers = train_teachers(views, profile, data, seed, device)
    initial = initial_student(profile, data, seed, device)
    store = supervisory_representations(teachers, profile, data, seed, device)
    student = distilled_student(profile, data, seed, device, views, use, teachers, initial, store)
    return FDResult(teachers, initial, store, student, views_for(profile, views))
