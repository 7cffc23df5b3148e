"""``reidbook prune-scenario``: run one of the survey's design scenarios (paper 003, Fig. 2) end to end.

    reidbook prune-scenario --scenario 1 --method l1 --strategy once --target 0.5 --profile quick

Calls :func:`reidbook.prune.scenarios.run_scenario` and prints (or saves) its report. Every stage trains
``--epochs`` ≥ 1 epochs: a scenario with no (re)training would report an untrained model as its result.
"""
from __future__ import annotations

import argparse
import json

from ..profiles import PROFILES
from ..prune import METHODS, STRATEGIES
from ..prune.scenarios import SCENARIOS, run_scenario
from ..utils import atomic_write_json

__all__ = ["add_arguments", "main"]


def _positive_int(text: str) -> int:
    value = int(text)
    if value < 1:
        raise argparse.ArgumentTypeError(f"must be ≥ 1 (epochs of training per stage), got {value}")
    return value


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--scenario", type=int, required=True, choices=sorted(SCENARIOS))
    parser.add_argument("--method", default="l1", choices=list(METHODS), help="pruning criterion")
    parser.add_argument("--strategy", default="auto", choices=["auto", *STRATEGIES],
                        help="auto: the survey's pairing (Table 2: L1/SIMC/Entropy once, Taylor and FPGM iterative, "
                             "Auto-Balanced, Play-and-Prune, PSFP, ThiNet and Channel Pruning layer-wise)")
    parser.add_argument("--target", type=float, default=0.5, help="fraction of multiply-adds kept (C1 0.5, C2 0.333)")
    parser.add_argument("--model", default="baseline")
    parser.add_argument("--profile", default="quick", choices=PROFILES)
    parser.add_argument("--data", default="synth", help="target data: synth or a data set name/path")
    parser.add_argument("--epochs", type=_positive_int, default=1, help="(re)training epochs per stage (≥ 1)")
    parser.add_argument("--pretrain-epochs", type=_positive_int, default=1,
                        help="source pre-training epochs (with --start scratch; ≥ 1)")
    parser.add_argument("--start", default="source", choices=["source", "scratch"],
                        help="source: the cached source-domain backbone; scratch: pre-train here")
    parser.add_argument("--max-iters", type=_positive_int, default=None,
                        help="cap on iterations per epoch (smoke runs)")
    parser.add_argument("--no-eval", action="store_true", help="skip the target evaluation")
    parser.add_argument("--device", default="auto")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--out", default=None, help="write the report here (.json)")


def main(args: argparse.Namespace) -> int:
    for name in ("epochs", "pretrain_epochs"):  # also when main is called with a Namespace built elsewhere
        if getattr(args, name) < 1:
            raise ValueError(f"--{name.replace('_', '-')} must be ≥ 1: a scenario stage with no training would save "
                             f"an untrained model; got {getattr(args, name)}")
    _, report = run_scenario(args.scenario, args.method, args.target, profile=args.profile, model=args.model,
                             strategy=args.strategy, epochs=args.epochs, pretrain_epochs=args.pretrain_epochs,
                             data=args.data, device=args.device, seed=args.seed,
                             max_iters_per_epoch=args.max_iters, evaluate=not args.no_eval,
                             start="source" if getattr(args, "start", "source") == "source" else None)
    if args.out:
        atomic_write_json(args.out, report)
    print(json.dumps(report, indent=2, default=float))
    return 0
