"""Toy jobs for tests/test_course_plan.py: module-level (a spawned lane imports them), each records when
it started and ended in ``folder`` so a test can check the order the runner kept."""
from __future__ import annotations

import json
import os
import time
from pathlib import Path


def stamp(folder, label, seconds=0.3, fail=False, profile=None, data=None, seed=None, device=None):
    """Sleep ``seconds`` between two timestamps written to ``folder/label.json``; raise if ``fail``."""
    start = time.time()
    time.sleep(seconds)
    if fail:
        raise RuntimeError(f"job {label} fails on purpose")
    Path(folder, f"{label}.json").write_text(json.dumps({"start": start, "end": time.time(), "pid": os.getpid(),
                                                         "threads": os.environ.get("OMP_NUM_THREADS")}))


def build_once(cache, log, profile=None, data=None, seed=None, device=None):
    """Ask the store for one entry whose training takes a second and appends this process's id to ``log``."""
    os.environ["REIDBOOK_CACHE"] = str(cache)
    from reidbook.store import cached

    def train():
        with open(log, "a") as fh:
            fh.write(f"{os.getpid()}\n")
        time.sleep(1.0)
        return {"value": 42}

    return cached("locktest", {"what": "one entry"}, train)["value"]
