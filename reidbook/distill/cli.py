"""``reidbook distill``: Factorized Distillation's three steps (§3.6 of paper 002) from the command line.

::

    reidbook distill [--profile quick] [--data synth] [--views holistic up1 ...] [--losses attr metric]
                     [--control] [--device auto] [--seed 0]

Trains (or loads from the zoo cache) the teachers of the chosen views and the initial student, extracts
the supervisory representations into a checked store, distils the student with Eq. (6) and prints every
model's mAP / rank-1 and where each artefact is cached. ``--control`` also trains the student with
``L_cls`` only for the same epochs (what FD adds beyond more training).
"""
from __future__ import annotations

import argparse

from ..data.views import VIEW_NAMES
from ..profiles import PROFILES
from .student import LOSS_CHOICES

__all__ = ["add_arguments", "main"]


def add_arguments(parser: argparse.ArgumentParser) -> None:
    """Options of ``reidbook distill`` (called by ``reidbook.cli``)."""
    parser.add_argument("--profile", choices=PROFILES, default="quick",
                        help="smoke (tests), quick (CPU, minutes; default) or full (§4.1 settings, GPU)")
    parser.add_argument("--data", default="synth", help="'synth' (SynthReID), a data set name or a folder")
    parser.add_argument("--device", default="auto", help="auto, cpu, cuda, cuda:1 …")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--views", nargs="+", default=list(VIEW_NAMES), choices=VIEW_NAMES, metavar="VIEW",
                        help=f"teachers to distil from (default all seven: {' '.join(VIEW_NAMES)})")
    parser.add_argument("--losses", nargs="+", default=list(LOSS_CHOICES), choices=LOSS_CHOICES,
                        help="regression losses of Eq. (6): attr (FMFB, Eq. 3), metric (RFB, Eq. 4)")
    parser.add_argument("--control", action="store_true",
                        help="also continue the initial student with L_cls only (the no-FD control)")


def _row(name: str, m: dict) -> str:
    return f"  {name:18s} mAP {100 * m['mAP']:6.2f}  rank-1 {100 * m['rank1']:6.2f}"


def main(args) -> int:
    from .pipeline import distilled_student, run_pipeline

    res = run_pipeline(args.profile, args.data, args.seed, args.device, args.views, args.losses)
    print(f"Factorized Distillation ({args.profile}, {args.data}, seed {args.seed})")
    print("teachers (each on its own view):")
    for view, t in res.teachers.items():
        print(_row(view, t.metrics) + f"   [{t.path}]")
    print("student:")
    print(_row("without FD", res.initial.metrics) + f"   [{res.initial.path}]")
    if args.control:
        c = distilled_student(args.profile, args.data, args.seed, args.device, use=(), initial=res.initial)
        print(_row("+ L_cls only", c.metrics) + f"   [{c.path}]")
    print(_row("+ FD (" + "+".join(args.losses) + ")", res.student.metrics) + f"   [{res.student.path}]")
    print(f"SR store: {res.store.path} ({len(res.store)} images, views {res.store.views})")
    return 0
