"""``reidbook prune-scenario``: run one of the survey's design scenarios (paper 003, Fig. 2) end to end.

    reidbook prune-scenario --scenario 1 --method l1 --strategy once --target 0.5 --profile quick

A hook for the CLI layer (``reidbook/cli.py`` may call ``add_arguments`` and ``main``); it calls
:func:`reidbook.prune.scenarios.run_scenario` and prints (or saves) its report.
"""
from __future__ import annotations

import argparse
import json

from ..utils import atomic_write_json
from .api import METHODS
from .scenarios import SCENARIOS, STRATEGIES, run_scenario

__all__ = ["add_arguments", "main"]


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--scenario", type=int, required=True, choices=sorted(SCENARIOS))
    parser.add_argument("--method", default="l1", choices=list(METHODS), help="pruning criterion")
    parser.add_argument("--strategy", default="auto", choices=list(STRATEGIES),
                        help="auto: the survey's pairing (L1 once, Taylor iterative, Auto-Balanced, PSFP, ThiNet layer-wise)")
    parser.add_argument("--target", type=float, default=0.5, help="fraction of multiply-adds kept (C1 0.5, C2 0.333)")
    parser.add_argument("--model", default="baseline")
    parser.add_argument("--profile", default="quick", choices=["smoke", "quick", "full"])
    parser.add_argument("--data", default="synth", help="target data: synth or a data set name/path")
    parser.add_argument("--epochs", type=int, default=1, help="(re)training epochs per stage")
    parser.add_argument("--pretrain-epochs", type=int, default=1, help="source pre-training epochs (with --start scratch)")
    parser.add_argument("--start", default="source", choices=["source", "scratch"],
                        help="source: the zoo's cached source-domain backbone; scratch: pre-train here")
    parser.add_argument("--max-iters", type=int, default=None, help="cap on iterations per epoch (smoke runs)")
    parser.add_argument("--no-eval", action="store_true", help="skip the target evaluation")
    parser.add_argument("--device", default="auto")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--out", default=None, help="write the report here (.json)")


def main(args: argparse.Namespace) -> int:
    _, report = run_scenario(args.scenario, args.method, args.target, profile=args.profile, model=args.model,
                             strategy=args.strategy, epochs=args.epochs, pretrain_epochs=args.pretrain_epochs,
                             data=args.data, device=args.device, seed=args.seed,
                             max_iters_per_epoch=args.max_iters, evaluate=not args.no_eval,
                             start="source" if getattr(args, "start", "source") == "source" else None)
    if args.out:
        atomic_write_json(args.out, report)
    print(json.dumps(report, indent=2, default=float))
    return 0
