"""``reidbook prune``: prune a trained model once with any criterion of the survey, physically.

    reidbook prune --model baseline --profile quick --method l1 --target-macs 0.5 --out pruned.pt
    reidbook prune --model baseline --method taylor --ratio 0.3 --eval

Loads (or trains) the model from the zoo, scores its channels (data criteria use a fixed, seeded
sample of training images), cuts them out, prints parameters / multiply-adds before and after,
optionally evaluates the pruned model, and saves it with :func:`reidbook.prune.save_pruned`.
This module is the CLI layer's hook (``reidbook/cli.py`` calls ``add_arguments`` and ``main``), so it
may use the zoo, which sits above the pruning package.
"""
from __future__ import annotations

import argparse
import json

from .api import METHODS, prune
from .surgery import SCOPES, save_pruned

__all__ = ["add_arguments", "main"]


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--model", default="baseline", help="zoo model name (default: baseline)")
    parser.add_argument("--profile", default="quick", choices=["smoke", "quick", "full"])
    parser.add_argument("--data", default="synth", help="synth or a data set name/path")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--method", default="l1", choices=list(METHODS), help="pruning criterion")
    amount = parser.add_mutually_exclusive_group(required=True)
    amount.add_argument("--ratio", type=float, help="fraction of the scoped channels to remove, in [0, 1)")
    amount.add_argument("--target-macs", type=float, help="fraction of the multiply-adds to keep, in (0, 1]")
    parser.add_argument("--scope", default="bottleneck", choices=list(SCOPES))
    parser.add_argument("--engine", default="torch_pruning", choices=["torch_pruning", "hand"])
    parser.add_argument("--global-ranking", action="store_true", help="rank channels across layers")
    parser.add_argument("--calib-images", type=int, default=128, help="training images for data criteria")
    parser.add_argument("--eval", action="store_true", help="evaluate the pruned model (mAP, rank-1)")
    parser.add_argument("--device", default="auto")
    parser.add_argument("--out", default=None, help="save the pruned model here (.pt)")
    parser.add_argument("--json", action="store_true", help="print the report as JSON")


def main(args: argparse.Namespace) -> int:
    from .. import zoo
    from ..eval import evaluate_model
    from .activations import calibration_batches

    entry = zoo.get(args.model, args.profile, args.data, args.seed, device=args.device)
    preset = entry.preset
    size = (preset.height, preset.width)
    data = None
    if args.method not in ("l1", "l2", "simc", "auto_balanced", "psfp", "fpgm", "play_and_prune"):
        ds = zoo.dataset(args.profile, args.data, args.seed)
        data = calibration_batches(ds.train, *size, n_images=args.calib_images, seed=args.seed)
    small, report = prune(entry.model, args.method, ratio=args.ratio, target_macs=args.target_macs, data=data,
                          input_size=size, scope=args.scope, engine=args.engine,
                          global_ranking=True if args.global_ranking else None, seed=args.seed)
    result = {"model": args.model, "profile": args.profile, "method": args.method,
              "params": report.params_after, "params_ratio": report.params_ratio,
              "macs": report.macs_after, "macs_ratio": report.macs_ratio, "unpruned_mAP": entry.metrics.get("mAP")}
    if args.eval:
        ds = zoo.dataset(args.profile, args.data, args.seed)
        m = evaluate_model(small, ds, *size, device=args.device)
        result.update(mAP=m["mAP"], rank1=m["rank1"])
    if args.out:
        path = save_pruned(small, args.out, extra={k: v for k, v in result.items() if v is not None}
                           | {"scope": args.scope, "widths": report.widths_after})
        result["path"] = str(path)
    if args.json:
        print(json.dumps(result, indent=2, default=float))
    else:
        print(report.summary())
        for k, v in result.items():
            print(f"  {k:14s} {v:.4g}" if isinstance(v, float) else f"  {k:14s} {v}")
    return 0
