"""``run_claims``: train what every claim needs over seeds, decide each claim, write the ledger.

What it does, in order:

1. **Plan.** For each selected claim and seed, each configuration becomes a *run* (measure, model,
   overrides, options, seed); a claim's ``budget_from`` adds that model's input size, batch and epochs
   to every trained configuration's overrides (equal budgets, same source-domain initialisation).
   Identical runs are run once. Every run evaluates on **one test split**: SynthReID generated with
   ``split_seed`` (0), whatever the run's seed — the seed changes the initialisation (its source-domain
   pre-training) and the training's randomness, never the data. The seed-0 runs are the chapters' own
   (``data="synth"``, ``SEED = 0``): after ``make course`` they come from the zoo cache.
2. **Refuse to mix.** If the ledger file exists and was made with other settings (profile, seeds,
   data, or any model's preset hash), stop with a message (``fresh=True`` replaces it).
3. **Run** what is not done yet. A finished run's record is written at once (atomically) under
   ``$REIDBOOK_CACHE/claims/<profile>/runs/<key>.json``, where ``key`` hashes the run, its resolved
   preset and the package and zoo versions; an interrupted ``make claims`` resumes where it stopped, and
   the trainings themselves are cached by the zoo. Each record keeps the commit it was measured at
   (``provenance.run_commits`` lists them: a ledger for a commit should list only that one; delete the
   runs folder to measure everything again). A progress bar counts runs and estimates the time left.
   ``jobs > 1`` runs independent runs in ``jobs`` processes with ``cores // jobs`` threads each; the
   first run of each seed goes alone first, so that the shared source-domain pre-training is trained
   once rather than raced.
4. **Decide** each claim with :func:`reidbook.claims.verdicts.verdict` on the per-seed values; check the
   budgets (images seen per seed) are equal where the claim needs it — if not, the verdict is
   *inconclusive* and says why.
5. **Write** ``assets/claims/<profile>.json`` atomically with provenance (commit, date, CPU model,
   torch version, threads, jobs, the command, this invocation's wall time and the sum of every run's
   wall and CPU seconds — what the ledger costs from an empty cache; per configuration its wall time).
"""
from __future__ import annotations

import json
import platform
import subprocess
import sys
import time
from datetime import datetime, timezone
from pathlib import Path
from typing import Iterable, Sequence

from .ledger import SCHEMA, LedgerError, _digest, ledger_path, load_ledger, preset_hashes, write_ledger
from .measures import DETERMINISTIC, RunContext, measure, preset_of
from .registry import BUDGET_FIELDS, CLAIMS, Claim
from .verdicts import LEVEL, summarize, verdict

__all__ = ["run_claims", "plan_runs", "runs_dir", "select_claims", "settings_of", "cpu_model", "threads_per_job"]

_TRAINING_MEASURES = ("zoo", "dare_embeddings", "dare_routing", "anytime", "ensemble")  # take the claim's budget


def threads_per_job(jobs: int) -> int:
    """Threads each of ``jobs`` parallel runs gets (``reidbook.cli.threads_per_job``: cores // jobs, ≥ 1)."""
    from ..cli import threads_per_job as _tpj

    return _tpj(jobs)


def runs_dir(profile: str) -> Path:
    """Where finished runs' records live: ``$REIDBOOK_CACHE/claims/<profile>/runs``."""
    from ..utils import cache_dir

    return cache_dir() / "claims" / profile / "runs"


def select_claims(only: Sequence[str] | None = None, claims: Sequence[Claim] | None = None) -> list[Claim]:
    """The claims to run: all of ``claims`` (default the registry), or those whose id is in ``only``
    (an id ending in ``.`` or ``*`` selects a prefix, e.g. ``mgn.``); unknown ids raise a ``KeyError``."""
    pool = list(CLAIMS if claims is None else claims)
    if not only:
        return pool
    chosen = []
    for sel in only:
        prefix = sel.rstrip("*")
        hits = [c for c in pool if (c.id.startswith(prefix) if sel.endswith(("*", ".")) else c.id == sel)]
        if not hits:
            raise KeyError(f"no claim {sel!r}; claims are: {', '.join(c.id for c in pool)}")
        chosen += [c for c in hits if c not in chosen]
    return chosen


def _data_of(profile: str, data: str, split_seed: int) -> tuple[str, str | None]:
    """What the runs pass as ``data`` (SynthReID: the folder of the ``split_seed`` generation, so the test
    split is one for every seed) and a fingerprint of it."""
    from ..utils import file_sha256

    if data in ("synth", "synthreid"):
        from .. import zoo

        folder = zoo.synthreid(profile, split_seed)
        return str(folder), file_sha256(Path(folder) / "synthreid.json")
    return data, None


def _budget(claim: Claim, profile: str) -> dict:
    if not claim.budget_from:
        return {}
    from ..presets import get_preset

    p = get_preset(claim.budget_from, profile)
    return {f: getattr(p, f) for f in BUDGET_FIELDS}


def _scaled(cfg, claim: Claim, profile: str, over: dict) -> dict:
    """A claim's declared departure: ``cfg`` trained ``claim.train_scale`` times as long (its epochs, after the
    claim's budget, and its schedule's times together; :func:`reidbook.presets.scaling.scaled_training`)."""
    import dataclasses

    from ..presets import get_preset
    from ..presets.scaling import scaled_training

    base = get_preset(cfg.model, profile)
    base = dataclasses.replace(base, **{k: over[k] for k in ("epochs", "schedule") if k in over})
    return scaled_training(base, claim.train_scale)


def _for_profile(claim: Claim, profile: str) -> Claim:
    """``claim`` as ``profile`` runs it: ``full`` is the papers' settings, so a declared departure of the laptop
    profiles (``train_scale ≠ 1``) is not run there (it stays in the ledger, marked not runnable)."""
    import dataclasses

    if profile == "full" and claim.train_scale != 1.0 and claim.runnable:
        return dataclasses.replace(claim, status="not runnable: a declared departure of the laptop profiles; full "
                                                 "trains with the paper's settings")
    return claim


def _config_run(cfg, claim: Claim, profile: str) -> dict:
    over = dict(cfg.overrides)
    if cfg.measure in _TRAINING_MEASURES:
        over.update(_budget(claim, profile))
        if claim.train_scale != 1.0:
            over.update(_scaled(cfg, claim, profile, over))
    return {"measure": cfg.measure, "model": cfg.model, "overrides": json.loads(json.dumps(over, default=list)),
            "options": dict(cfg.options)}


def _run_key(run: dict, profile: str, data_fp: str | None, data: str, seed: int) -> str:
    """Hash of the run, its resolved settings, the data and the package/zoo versions (a run recorded by
    another version of the training procedure is measured again, as the zoo retrains it)."""
    from .. import __version__
    from ..zoo import ZOO_VERSION

    return _digest({"run": run, "profile": profile, "data": data_fp or data, "seed": seed,
                    "preset": preset_of(run, profile), "reidbook": __version__, "zoo": ZOO_VERSION})


def _data_for_seed(seed: int, data: str, data_fp: str | None, split_seed: int) -> str:
    """How a run names the test split: the run whose seed *is* the split's seed names it ``"synth"`` — the
    very run (and zoo entry) the chapters train with ``SEED = 0`` — and the others name its folder (the
    zoo's ``seed`` also picks the SynthReID generation for ``"synth"``). Same images either way."""
    return "synth" if data_fp is not None and seed == split_seed else data


def plan_runs(claims: Sequence[Claim], profile: str, seeds: Sequence[int], data: str,
              data_fp: str | None, split_seed: int = 0) -> tuple[dict[str, dict], dict[str, list[list[str]]]]:
    """``(runs, keys)``: every distinct run ``{key: spec}`` and, per claim, per configuration, the run key
    of each seed. ``data`` is the split's folder (SynthReID) or the data set's name; each run's ``data``
    is what it passes to the zoo (:func:`_data_for_seed`)."""
    runs: dict[str, dict] = {}
    keys: dict[str, list[list[str]]] = {}
    for c in claims:
        if not c.runnable:
            continue
        keys[c.id] = []
        for cfg in c.configs:
            base = _config_run(cfg, c, profile)
            per_seed = []
            for s in seeds:
                k = _run_key(base, profile, data_fp, data, s)
                runs.setdefault(k, {**base, "seed": int(s), "key": k,
                                    "data": _data_for_seed(int(s), data, data_fp, split_seed)})
                per_seed.append(k)
            keys[c.id].append(per_seed)
    return runs, keys


def settings_of(profile: str, seeds: Sequence[int], data: str, data_fp: str | None, split_seed: int,
                claims: Iterable[Claim] | None = None) -> dict:
    """What must agree for two ledgers (or a ledger and a run) to be mixed."""
    return {"profile": profile, "seeds": [int(s) for s in seeds], "data": data if data_fp is None else "synth",
            "split": {"split_seed": split_seed, "synthreid_sha256": data_fp}, "level": LEVEL,
            "preset_hashes": preset_hashes(profile, claims)}


# ----------------------------------------------------------------------------------------------
# Executing runs
# ----------------------------------------------------------------------------------------------
def _execute(run: dict, profile: str, data: str, device: str, threads: int | None) -> dict:
    """One run (in this process or a worker): the measure's numbers plus wall and CPU seconds."""
    if threads:
        import torch

        torch.set_num_threads(threads)
    t0, c0 = time.perf_counter(), time.process_time()
    out = measure(run["measure"])(run, RunContext(profile, run.get("data", data), run["seed"], device))
    return {**{k: run[k] for k in ("key", "measure", "model", "overrides", "options", "seed") if k in run},
            "data": run.get("data", data), **out,
            "wall_seconds": time.perf_counter() - t0, "cpu_seconds": time.process_time() - c0,
            "threads": threads, "finished": datetime.now(timezone.utc).isoformat(timespec="seconds"),
            "commit": _git("rev-parse", "HEAD")}


def _load_record(path: Path, key: str) -> dict | None:
    try:
        rec = json.loads(path.read_text())
    except (OSError, ValueError):
        return None
    return rec if isinstance(rec, dict) and rec.get("key") == key and isinstance(rec.get("metrics"), dict) else None


def _failure(run: dict, exc: BaseException) -> str:
    text = " ".join(str(exc).split())
    return f"{run['measure']} {run['model']} seed {run['seed']}: {type(exc).__name__}: {text[:300]}"


def _run_all(pending: list[dict], done: int, total: int, folder: Path, profile: str, data: str, device: str,
             jobs: int) -> tuple[dict[str, dict], dict[str, str]]:
    """Run ``pending``; ``(records, failures)``. A run that raises is reported in ``failures`` (by key) and
    the others go on — a long ``make claims`` is not lost to one broken measure; a rerun retries it.
    Ctrl-C stops everything (finished runs are saved)."""
    from ..utils import atomic_write_json, progress, say

    results: dict[str, dict] = {}
    failures: dict[str, str] = {}
    bar = progress(total=total, initial=done, desc=f"claims ({profile})", unit="run")

    def finish(rec: dict) -> None:
        atomic_write_json(folder / f"{rec['key']}.json", rec)
        results[rec["key"]] = rec
        bar.update(1)

    def fail(run: dict, exc: Exception) -> None:
        failures[run["key"]] = _failure(run, exc)
        say(f"[claims] run failed (the others go on): {failures[run['key']]}")
        bar.update(1)

    def execute_here(run: dict, threads: int | None) -> None:
        bar.set_postfix_str(f"{run['model']} seed {run['seed']}")
        try:
            rec = _execute(run, profile, data, device, threads)
        except Exception as exc:  # noqa: BLE001 — recorded, reported, retried by the next run
            fail(run, exc)
        else:
            finish(rec)

    try:
        if jobs <= 1:
            for run in pending:
                execute_here(run, None)
            return results, failures
        # the first run of each seed alone (it trains the seed's shared pre-training), then the rest in parallel
        first = {}
        for run in pending:
            first.setdefault(run["seed"], run)
        for run in first.values():
            execute_here(run, threads_per_job(1))
        rest = [r for r in pending if r["key"] not in results and r["key"] not in failures]
        import multiprocessing as mp
        from concurrent.futures import ProcessPoolExecutor, as_completed

        threads = threads_per_job(jobs)
        with ProcessPoolExecutor(max_workers=jobs, mp_context=mp.get_context("spawn")) as pool:
            futures = {pool.submit(_execute, run, profile, data, device, threads): run for run in rest}
            try:
                for fut in as_completed(futures):
                    try:
                        rec = fut.result()
                    except Exception as exc:  # noqa: BLE001 — as in the sequential loop
                        fail(futures[fut], exc)
                    else:
                        finish(rec)
            except BaseException:
                for f in futures:
                    f.cancel()
                raise
        return results, failures
    finally:
        bar.close()


# ----------------------------------------------------------------------------------------------
# Deciding claims
# ----------------------------------------------------------------------------------------------
def _decide(claim: Claim, keys: list[list[str]], records: dict[str, dict], seeds: Sequence[int], profile: str) -> dict:
    entry = claim.to_dict()
    configs = []
    for i, (cfg, per_seed) in enumerate(zip(claim.configs, keys)):
        metric = claim.metric_of(i)
        recs = [records[k] for k in per_seed]
        missing = [r["seed"] for r in recs if metric not in r["metrics"]]
        if missing:
            raise LedgerError(f"claim {claim.id}: the runs of {cfg.label!r} have no metric {metric!r} "
                              f"(seeds {missing}); metrics are {sorted(recs[0]['metrics'])}")
        stats = summarize([r["metrics"][metric] for r in recs])
        configs.append({**cfg.to_dict(), "metric": metric, "run_keys": per_seed, "seeds": [int(s) for s in seeds],
                        **stats, "images_seen": [r.get("images_seen") for r in recs],
                        "train_seconds": [r.get("train_seconds") for r in recs],
                        "wall_seconds": sum(r.get("wall_seconds", 0.0) for r in recs),
                        "cpu_seconds": sum(r.get("cpu_seconds", 0.0) for r in recs)})
    entry["configs"] = configs
    deterministic = all(c.measure in DETERMINISTIC for c in claim.configs)
    v = verdict(configs[0]["values"], configs[1]["values"], claim.direction, claim.margin, claim.factor,
                deterministic=deterministic).to_dict()
    seen = [c["images_seen"] for c in configs]
    equal = None
    if claim.equal_training and all(x is not None for s in seen for x in s):
        equal = all(a == b for a, b in zip(*seen))
        if not equal:
            v = {**v, "verdict": "inconclusive",
                 "why": f"unequal training budgets (images seen {seen[0]} vs {seen[1]}); " + v["why"]}
    entry["budget"] = {"from": claim.budget_from, "fields": _budget(claim, profile), "images_seen": seen,
                       "equal": equal}
    entry["verdict"] = v
    return entry


def _git(*args: str) -> str | None:
    try:
        out = subprocess.run(["git", *args], cwd=Path(__file__).resolve().parents[2], capture_output=True,
                             text=True, timeout=10)
    except (OSError, subprocess.SubprocessError):
        return None
    return out.stdout.strip() if out.returncode == 0 else None


def cpu_model() -> str:
    """The CPU's model name (``/proc/cpuinfo``; else ``platform.processor()``)."""
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.lower().startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or platform.machine() or "unknown"


def _provenance(jobs: int, command: str | None, wall: float, started: str, runs: dict) -> dict:
    import torch

    from .. import __version__
    from ..cli import available_cores

    dirty = _git("status", "--porcelain", "--untracked-files=no")
    return {"commit": _git("rev-parse", "HEAD"), "dirty": bool(dirty) if dirty is not None else None,
            "date": started, "finished": datetime.now(timezone.utc).isoformat(timespec="seconds"),
            "cpu": cpu_model(), "cores": available_cores(), "torch": torch.__version__,
            "python": platform.python_version(), "reidbook": __version__, "threads": torch.get_num_threads(),
            "jobs": jobs, "threads_per_job": threads_per_job(jobs) if jobs > 1 else torch.get_num_threads(),
            "run_commits": sorted({str(r.get("commit")) for r in runs.values()}),
            "wall_seconds": wall, "runs_wall_seconds": sum(r.get("wall_seconds", 0.0) for r in runs.values()),
            "runs_cpu_seconds": sum(r.get("cpu_seconds", 0.0) for r in runs.values()),
            "command": command or " ".join(["reidbook", *sys.argv[1:]])}


def _zoo_cached(run: dict, profile: str) -> bool | None:
    """Whether the zoo already holds the training a pending run needs (``None``: not a single zoo training)."""
    if run["measure"] not in ("zoo", "dare_embeddings", "dare_routing") and not (
            run["measure"] == "anytime" and run["model"] == "dare"):
        return None
    from .. import zoo

    try:
        return (zoo.entry_path(run["model"], profile, run["data"], run["seed"], **run["overrides"])
                / "entry.json").exists()
    except Exception:  # noqa: BLE001 — only a hint in a plan
        return None


def _plan_summary(runs: dict, records: dict, pending: list[dict], profile: str) -> dict:
    """What ``run_claims`` would do: runs in all, already recorded, pending (with whether the zoo holds
    the training a pending run needs), per measure."""
    by_measure: dict[str, dict] = {}
    for run in pending:
        row = by_measure.setdefault(run["measure"], {"pending": 0, "zoo_cached": 0})
        row["pending"] += 1
        row["zoo_cached"] += bool(_zoo_cached(run, profile))
    return {"plan": True, "runs": len(runs), "recorded": len(records), "pending": len(pending),
            "by_measure": by_measure}


# ----------------------------------------------------------------------------------------------
# The entry point
# ----------------------------------------------------------------------------------------------
def run_claims(profile: str = "quick", seeds: int | Sequence[int] = 3, only: Sequence[str] | None = None,
               jobs: int = 1, data: str = "synth", out: str | Path | None = None, fresh: bool = False,
               device: str = "auto", split_seed: int = 0, claims: Sequence[Claim] | None = None,
               command: str | None = None, dry_run: bool = False) -> dict:
    """Run the claims (all, or ``only`` these ids) over ``seeds`` (a count → ``0 … seeds−1``, or a list),
    and write the ledger to ``out`` (default ``assets/claims/<profile>.json``). Returns the ledger dict.

    An existing ledger with the same settings is updated (the claims run now replace theirs); one with
    other settings is refused (:class:`~reidbook.claims.ledger.LedgerError`) unless ``fresh=True``.
    A run that fails does not stop the others: its claims are written with ``"failed"`` (no verdict), the
    ledger's ``"failures"`` lists them, and running again retries only what is missing.
    ``claims`` replaces the registry (tests). ``dry_run=True`` runs and writes nothing and returns the plan
    (:func:`_plan_summary`). See the module docstring for the whole procedure.
    """
    from ..profiles import check_profile

    check_profile(profile)
    if isinstance(jobs, bool) or not isinstance(jobs, int) or jobs < 1:
        raise ValueError(f"jobs must be a whole number ≥ 1, got {jobs!r}")
    seed_list = list(range(seeds)) if isinstance(seeds, int) else [int(s) for s in seeds]
    if not seed_list or len(set(seed_list)) != len(seed_list):
        raise ValueError(f"seeds must be a positive count or distinct integers, got {seeds!r}")
    pool = [_for_profile(c, profile) for c in (CLAIMS if claims is None else claims)]
    chosen = select_claims(only, pool)
    started = datetime.now(timezone.utc).isoformat(timespec="seconds")
    t0 = time.perf_counter()

    run_data, data_fp = _data_of(profile, data, split_seed)
    settings = settings_of(profile, seed_list, data, data_fp, split_seed, pool)
    path = Path(out) if out is not None else ledger_path(profile)
    previous = load_ledger(profile, path, missing_ok=True) if path.exists() and not fresh else None
    if previous is not None and previous.data.get("settings") != settings:
        old = previous.data.get("settings", {})
        diff = sorted(k for k in set(old) | set(settings) if old.get(k) != settings.get(k))
        raise LedgerError(f"{path} was made with other settings ({', '.join(diff)} differ); refusing to mix runs. "
                          "Run all claims again with --fresh (`make claims FRESH=1`; replaces it), "
                          "or write elsewhere with --out.")

    runs, keys = plan_runs(chosen, profile, seed_list, run_data, data_fp, split_seed)
    folder = runs_dir(profile)
    folder.mkdir(parents=True, exist_ok=True)
    records = {k: r for k in runs if (r := _load_record(folder / f"{k}.json", k)) is not None}
    pending = [runs[k] for k in runs if k not in records]
    if dry_run:
        return _plan_summary(runs, records, pending, profile)
    done, failures = _run_all(pending, len(records), len(runs), folder, profile, run_data, device, jobs)
    records.update(done)

    claims_out = dict(previous.claims) if previous is not None else {}
    for c in chosen:
        if not c.runnable:
            claims_out[c.id] = c.to_dict()
            continue
        failed = [failures[k] for per_seed in keys[c.id] for k in per_seed if k in failures]
        if not failed:
            try:
                claims_out[c.id] = _decide(c, keys[c.id], records, seed_list, profile)
                continue
            except (LedgerError, ValueError) as exc:  # a metric the measure does not give, a non-finite value
                failed = [f"claim {c.id}: {exc}"]
                failures[f"claim:{c.id}"] = failed[0]
        claims_out[c.id] = {**c.to_dict(), "failed": sorted(set(failed))}
    all_runs = {**(previous.data.get("runs", {}) if previous is not None else {}),
                **{k: records[k] for k in runs if k in records}}
    ledger = {"schema": SCHEMA, "settings": settings,
              "provenance": _provenance(jobs, command, time.perf_counter() - t0, started, all_runs),
              "runs": all_runs, "failures": sorted(set(failures.values())),
              "claims": {c.id: claims_out[c.id] for c in pool if c.id in claims_out}}
    write_ledger(ledger, path)
    return ledger
