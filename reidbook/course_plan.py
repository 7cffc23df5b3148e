"""What ``reidbook course`` trains before the chapters, and how it runs them side by side on a laptop's cores.

Every chapter trains through the zoo (:func:`reidbook.zoo.get`, :func:`reidbook.store.cached`), so a
chapter run alone trains what it needs and a second run loads it. The course runner does the same work in
a better order: :func:`course_jobs` lists the trainings the chapters of a laptop profile will ask for —
SynthReID's source-domain backbones (the stand-in for downloading ImageNet weights), FD's seven teachers
(the stand-in for downloading trained teachers), and every model the chapters train — each with the
others it needs (:class:`Job`), and :func:`run_jobs` runs them in ``lanes`` processes with ``cores / lanes``
torch threads each. On this 2-core machine two trainings with one thread each finish in about 0.7× the
time of the same two one after the other with two threads (``benchmarks/bench_parallel.py``; MGN's quick
epoch measured 46.6 s for two side by side vs 33.6 s for one): small convolutions do not keep two threads
busy. The chapters then run two at a time too (:func:`reidbook.course.run_course`) and load what was
prepared; a chapter never depends on this plan being complete — what the plan missed, the chapter trains
(the index page lists it: ``trained in the chapter``).

Two processes that need the same entry at once do not both train it: the store locks an entry while it is
built (:func:`reidbook.store.building`), and jobs name what they need so that a lane rarely waits.

``full`` has no plan: its backbones are ImageNet's and its models train for hours on one GPU, where one
chapter at a time is the right order.
"""
from __future__ import annotations

import os
import time
from concurrent.futures import FIRST_COMPLETED, ProcessPoolExecutor, wait
from dataclasses import dataclass, field
from typing import Callable

from .utils import say

__all__ = ["Job", "course_jobs", "chapter_jobs", "CHAPTER_NEEDS", "critical_path", "run_jobs", "lanes_for",
           "prepare_in_lanes"]


@dataclass(frozen=True)
class Job:
    """One training the course prepares: ``name`` (shown on the index page), a module-level function
    ``fn(**kwargs)`` that trains or loads it through the store, the ``needs`` (names of jobs that must
    finish first) and a rough ``cost`` in seconds (quick, one lane of two on this 2-core CPU, measured at
    stop 18) from which :func:`run_jobs` orders the ready jobs."""

    name: str
    fn: Callable
    kwargs: dict = field(default_factory=dict)
    needs: tuple[str, ...] = ()
    cost: float = 30.0


# ----------------------------------------------------------------------------------------------
# The jobs (module-level functions, so that a worker process can run them)
# ----------------------------------------------------------------------------------------------
def _backbone(arch, width, profile, data, seed, device):
    from .pretrain import pretrained_backbone

    pretrained_backbone(arch, width, profile, seed, device=device)


def _zoo(name, overrides, profile, data, seed, device):
    from . import zoo

    zoo.get(name, profile, data, seed, device=device, **overrides)


def _teacher(view, profile, data, seed, device):
    from .distill.pipeline import train_teacher

    train_teacher(view, profile, data, seed, device)


def _fd(use, profile, data, seed, device):
    from .distill.pipeline import distilled_student, initial_student

    if use is None:
        initial_student(profile, data, seed, device)
    else:
        distilled_student(profile, data, seed, device, use=tuple(use))


def _contender(keys, profile, data, seed, device):
    """Chapter 08's models ``keys``, trained or loaded (:func:`reidbook.compare.collect`), and their background
    reliance measured (:func:`reidbook.compare.background_table`, cached per model): the chapter then loads both
    instead of measuring fifteen models at the end of the course, when nothing else can run beside it."""
    from . import compare, zoo

    contenders = compare.collect(profile, data, seed, device, include=list(keys))
    if zoo.dataset(profile, data, seed).has_masks:
        compare.background_table(contenders, profile, data, seed, device)


def _erasing_overrides(profile: str) -> dict:
    """Chapter 02 §11's counterpart of the baseline: random erasing switched the other way (BoT's p = 0.5),
    with MGN's epochs and input size (the notebook's ``zoo.get("baseline", …, train_aug=…)``)."""
    from .presets import get_preset

    mgn, base = get_preset("mgn", profile), get_preset("baseline", profile)
    p = base.train_aug.get("random_erasing", 0.0)
    return {"epochs": mgn.epochs, "height": mgn.height, "width": mgn.width,
            "train_aug": {**base.train_aug, "random_erasing": 0.5 if p == 0 else 0.0}}


def course_jobs(profile: str = "quick") -> list[Job]:
    """The trainings chapters 01–08 of ``profile`` (smoke or quick) ask for, with what each needs.

    Kept beside the chapters' own calls: a job whose arguments drift from its chapter's call only costs
    time (the chapter trains its own entry, and the index page says so), never a wrong number.
    """
    from .data.views import VIEW_NAMES
    from .distill.student import LOSS_CHOICES
    from .models.seq_ensemble import ENSEMBLE_ARCHS
    from .presets import baseline as B, dare as D, graftednet as G, mgn as M, profile_width
    from .zoo import COURSE_BACKBONES

    if profile == "full":
        return []
    w = profile_width(profile)
    widths = dict.fromkeys((arch, w if width is None else width) for arch, width in COURSE_BACKBONES)
    bb = {aw: f"{aw[0]} x{aw[1]:g} (source domain)" for aw in widths}
    r50, r18, r34 = bb[("resnet50", w)], bb[("resnet18", w)], bb[("resnet34", w)]
    r18_8 = bb.get(("resnet18", 0.125), r18)
    jobs = [Job(name, _backbone, {"arch": a, "width": wd}, (),
                {"resnet50": 100, "resnet34": 73}.get(a, 43 if wd == w else 24))
            for (a, wd), name in bb.items()]
    jobs += [Job(f"FD teacher {v}", _teacher, {"view": v}, (r18,), {"holistic": 50, "mid1": 25}.get(v, 22))
             for v in VIEW_NAMES]
    teachers = tuple(f"FD teacher {v}" for v in VIEW_NAMES)
    z = {  # name → (zoo name, overrides, needs, cost)
        "baseline": ("baseline", {}, (r50,), 46),                                            # 01, 03, 05, 06, 08
        "baseline softmax": ("baseline", {"losses": B.loss_specs("softmax")}, (r50,), 46),   # 01
        "baseline triplet": ("baseline", {"losses": B.loss_specs("triplet")}, (r50,), 46),   # 01
        "MGN": ("mgn", {}, (r50,), 88),                                                       # 02, 08
        "baseline, random erasing switched": ("baseline", _erasing_overrides(profile), (r50,), 47),  # 02 §11
        "GraftedNet": ("graftednet", {}, (r50,), 55),                                         # 03, 08
        "GraftedNet(-AL)": ("graftednet", G.variant_overrides("no_al"), (r50,), 35),         # 03
        "DaRe": ("dare", {}, (r50,), 40),                                                     # 07, 08
        "DaRe, fusion loss only": ("dare", {"losses": D.loss_specs(deep_supervision=False)}, (r50,), 39),  # 07
    }
    for v in ["global"] + (["mgn_wo_tp"] if profile == "smoke" else []):                     # 02's ablations
        vp = M.variant_preset(v, profile)
        z[f"MGN {v}"] = ("mgn", {"model_options": vp.model_options, "losses": vp.losses}, (r50,), 36)
    if profile == "smoke":                                                                      # 03's Table 2
        for v in ("no_mf", "no_pf"):
            z[f"GraftedNet {v}"] = ("graftednet", G.variant_overrides(v), (r50,), 30)
    arch_bb = {"resnet18": r18, "resnet34": r34, "resnet50": r50}
    for a in ENSEMBLE_ARCHS:                                                                     # 07
        z[f"sequential ensemble {a}"] = ("seq_ensemble", {"model_options": {"arch": a}}, (arch_bb[a],),
                                         {"resnet50": 38, "resnet34": 25}.get(a, 17))
    z["ResNet-18 (baseline recipe)"] = ("baseline", {"model_options": {"arch": "resnet18"}}, (r18,), 24)  # 06, 08
    if profile == "smoke":
        z["ResNet-34 (baseline recipe)"] = ("baseline", {"model_options": {"arch": "resnet34"}}, (r34,), 15)
    jobs += [Job(name, _zoo, {"name": n, "overrides": o}, needs, cost) for name, (n, o, needs, cost) in z.items()]
    jobs += [Job("FD initial student", _fd, {"use": None}, (r18_8,), 17),                        # 04, 08
             Job("FD student", _fd, {"use": LOSS_CHOICES}, teachers + ("FD initial student",), 71),
             Job("FD control (L_cls only)", _fd, {"use": ()}, ("FD initial student",), 21)]
    # chapter 08's models: those only it trains, and the background reliance of every one (name → keys, needs, cost)
    contenders = {"pcb": (("pcb",), (r50,), 46), "pruned_l1_c1": (("pruned_l1_c1",), ("baseline",), 22),
                  "pruned_l1_c2": (("pruned_l1_c2",), ("baseline",), 18),
                  "pcb_psfp_c1": (("pcb_psfp_c1",), ("chapter 08: pcb",), 30),
                  "mgn_pruned_l1_c1": (("mgn_pruned_l1_c1",), ("MGN",), 30),
                  "mgn_kd_r18": (("mgn_kd_r18",), ("MGN", "ResNet-18 (baseline recipe)"), 48),
                  "DaRe exits": (("dare_exit1", "dare_exit2", "dare_exit3", "dare_exit4"), ("DaRe",), 30),
                  "baseline": (("baseline",), ("baseline",), 4), "MGN": (("mgn",), ("MGN",), 4),
                  "GraftedNet": (("graftednet",), ("GraftedNet",), 4),
                  "FD student": (("fd_student",), ("FD student",), 8),
                  "ResNet-18": (("resnet18",), ("ResNet-18 (baseline recipe)",), 4)}
    jobs += [Job(f"chapter 08: {k}", _contender, {"keys": keys}, needs, cost)
             for k, (keys, needs, cost) in contenders.items()]
    return jobs


# ----------------------------------------------------------------------------------------------
# Running them
# ----------------------------------------------------------------------------------------------
def lanes_for(device: str = "auto", lanes: int | None = None) -> int:
    """How many jobs run side by side: ``lanes`` if given, else 2 on a CPU with ≥ 2 cores, else 1 (one
    GPU trains one model at a time best)."""
    from .cli import available_cores
    from .utils import resolve_device

    if lanes is not None:
        if isinstance(lanes, bool) or not isinstance(lanes, int) or lanes < 1:
            raise ValueError(f"lanes must be a whole number ≥ 1, got {lanes!r}")
        return lanes
    if resolve_device(device).type != "cpu":
        return 1
    return 2 if available_cores() >= 2 else 1


def _init_worker(threads: int, quiet: bool) -> None:
    """A lane's process: ``threads`` torch threads (and the libraries and chapter kernels that read
    ``OMP_NUM_THREADS``)."""
    os.environ["OMP_NUM_THREADS"] = os.environ["MKL_NUM_THREADS"] = str(threads)
    if quiet:
        os.environ["REIDBOOK_QUIET"] = "1"
    else:
        os.environ.pop("REIDBOOK_QUIET", None)
    import torch

    torch.set_num_threads(threads)


def _chapter(path, out, html_export, profile, data, seed, device):
    """A chapter as a job: :func:`reidbook.course.run_chapter` (its kernel inherits this lane's threads)."""
    from .course import run_chapter

    return run_chapter(path, out, profile, data, device, seed, html_export=html_export)


def _run_one(job: Job, profile: str, data: str, seed: int, device: str, threads: int | None = None):
    """Run ``job`` (with ``threads`` torch threads, also for a chapter's kernel); ``(seconds, its result)``."""
    if threads:
        _init_worker(threads, quiet=os.environ.get("REIDBOOK_QUIET", "0") not in ("", "0"))
    t0 = time.perf_counter()
    result = job.fn(**job.kwargs, profile=profile, data=data, seed=seed, device=device)
    return time.perf_counter() - t0, result


def critical_path(jobs: list[Job]) -> dict[str, float]:
    """Each job's upward rank: its ``cost`` plus the largest rank among the jobs that need it — the length
    of the longest chain of work it holds up. Starting the ready job of highest rank first keeps the chains
    that end the plan (the source backbone → FD teachers → student → chapter 04 → chapter 08) moving."""
    needed_by: dict[str, list[str]] = {j.name: [] for j in jobs}
    for j in jobs:
        for n in j.needs:
            needed_by.setdefault(n, []).append(j.name)
    cost = {j.name: j.cost for j in jobs}
    rank: dict[str, float] = {}

    def up(name: str) -> float:
        if name not in rank:
            rank[name] = cost.get(name, 0.0) + max((up(m) for m in needed_by.get(name, ())), default=0.0)
        return rank[name]

    for j in jobs:
        up(j.name)
    return rank


def run_jobs(jobs: list[Job], profile: str, data: str = "synth", seed: int = 0, device: str = "auto",
             lanes: int = 2, threads: int | None = None, quiet: bool = True,
             on_done: Callable[[Job, float, object], None] | None = None) -> dict[str, float]:
    """Run ``jobs`` respecting their ``needs``, ``lanes`` at a time, the ready job with the longest path to
    the end first (:func:`critical_path`: list scheduling by upward rank, as HEFT orders tasks); seconds per
    job (a cached job takes about a second: it is loaded). Each lane has ``threads`` torch threads (default
    cores / lanes); a job that starts with nothing running beside it and no other job ready gets every core
    (it runs alone until it ends: chapter 07 with 08 waiting for it, then 08, would otherwise leave a core idle).
    ``on_done(job, seconds, result)`` is called as each job finishes. A job that fails is reported with its
    error and its dependants are skipped (the chapters then train or fail on their own, visibly); the others
    go on. ``lanes=1`` runs everything in this process, in order."""
    from .cli import available_cores, threads_per_job

    names = [j.name for j in jobs]
    unknown = {n for j in jobs for n in j.needs if n not in names}
    if unknown:
        raise ValueError(f"jobs need unknown jobs {sorted(unknown)}; known: {names}")
    spent: dict[str, float] = {}
    failed: dict[str, str] = {}

    def finished(j: Job, seconds: float, result) -> None:
        spent[j.name] = seconds
        if on_done is not None:
            on_done(j, seconds, result)

    if lanes == 1:
        for j in jobs:
            if any(n in failed for n in j.needs):
                failed[j.name] = "skipped: " + ", ".join(n for n in j.needs if n in failed) + " failed"
                continue
            try:
                finished(j, *_run_one(j, profile, data, seed, device))
            except Exception as exc:  # noqa: BLE001 - reported, and the chapter will meet it again
                failed[j.name] = f"{type(exc).__name__}: {exc}"
        _report_failed(failed)
        return spent
    import multiprocessing

    threads = threads or threads_per_job(lanes)
    rank = critical_path(jobs)
    pending = list(jobs)
    running: dict = {}
    t0 = time.perf_counter()
    with ProcessPoolExecutor(lanes, mp_context=multiprocessing.get_context("spawn"), initializer=_init_worker,
                             initargs=(threads, quiet)) as pool:
        while pending or running:
            done_names = set(spent) | set(failed)
            for j in [j for j in pending if any(n in failed for n in j.needs)]:
                failed[j.name] = "skipped: " + ", ".join(n for n in j.needs if n in failed) + " failed"
                pending.remove(j)
            ready = sorted((j for j in pending if all(n in done_names for n in j.needs)), key=lambda j: -rank[j.name])
            for j in ready[: max(0, lanes - len(running))]:
                pending.remove(j)
                # alone until it ends: nothing runs beside it and nothing else could start before it ends
                alone = not running and len(ready) == 1
                running[pool.submit(_run_one, j, profile, data, seed, device,
                                    available_cores() if alone else threads)] = j
            if not running:
                break
            done, _ = wait(running, return_when=FIRST_COMPLETED)
            for fut in done:
                j = running.pop(fut)
                try:
                    finished(j, *fut.result())
                    say(f"[reidbook course] done: {j.name} in {spent[j.name]:.0f} s "
                        f"({len(spent) + len(failed)}/{len(jobs)}, {time.perf_counter() - t0:.0f} s so far)")
                except Exception as exc:  # noqa: BLE001
                    failed[j.name] = f"{type(exc).__name__}: {exc}"
    _report_failed(failed)
    return spent


def _report_failed(failed: dict[str, str]) -> None:
    for name, why in failed.items():
        print(f"[reidbook course] preparing {name} failed: {why[-1500:]} — the chapter that needs it will "
              "train it itself (or fail with the same error, reported on the index page)", flush=True)


# What each chapter loads from the preparation (job names); chapter 08 compares them all, so it comes last.
CHAPTER_NEEDS: dict[str, tuple[str, ...]] = {
    "00": (),
    "01": ("baseline", "baseline softmax", "baseline triplet"),
    "02": ("MGN", "MGN global", "MGN mgn_wo_tp", "baseline", "baseline, random erasing switched"),
    "03": ("GraftedNet", "GraftedNet(-AL)", "GraftedNet no_mf", "GraftedNet no_pf", "baseline"),
    "04": ("FD teacher *", "FD initial student", "FD student", "FD control (L_cls only)"),
    "05": ("baseline",),
    "06": ("baseline", "ResNet-18 (baseline recipe)", "ResNet-34 (baseline recipe)", "resnet50 *"),
    "07": ("DaRe", "DaRe, fusion loss only", "sequential ensemble *"),
}


def chapter_jobs(paths, out, profile: str, html_export: bool = True, prepared: list[Job] = (),
                 costs: dict[str, float] | None = None) -> list[Job]:
    """One job per chapter, needing the ``prepared`` jobs it loads (:data:`CHAPTER_NEEDS`: names, or
    ``"start *"`` for every name that starts so; names the profile lacks are ignored): a chapter starts as
    soon as they are done, beside the rest of the preparation. A chapter not listed (08, the capstone)
    needs every prepared job and every other chapter. ``costs``: seconds per chapter of the last run."""
    names = [j.name for j in prepared]
    jobs = []
    for path in paths:
        number = path.stem[:2]
        if number in CHAPTER_NEEDS:
            needs = tuple(n for n in names if any(n == w or (w.endswith(" *") and n.startswith(w[:-1]))
                                                  for w in CHAPTER_NEEDS[number]))
        else:
            needs = tuple(names) + tuple(f"chapter {p.stem}" for p in paths if p != path)
        jobs.append(Job(f"chapter {path.stem}", _chapter, {"path": path, "out": out, "html_export": html_export},
                        needs, (costs or {}).get(path.stem, 60.0)))
    return jobs


def prepare_in_lanes(profile: str = "quick", data: str = "synth", seed: int = 0, device: str = "auto",
                     lanes: int | None = None) -> dict[str, float]:
    """SynthReID (in this process: every lane reads it), then :func:`course_jobs` in :func:`lanes_for` lanes.
    Returns seconds per item, like :func:`reidbook.zoo.prepare_course`."""
    from .store import synthreid

    t0 = time.perf_counter()
    synthreid(profile, seed)
    spent = {"SynthReID": time.perf_counter() - t0}
    jobs = course_jobs(profile)
    if jobs:
        spent.update(run_jobs(jobs, profile, data, seed, device, lanes=lanes_for(device, lanes)))
    return spent
