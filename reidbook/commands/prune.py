"""``reidbook prune``: prune a trained model with any criterion of the survey, physically.

    reidbook prune --model baseline --profile quick --method l1 --target-macs 0.5 --out pruned.pt
    reidbook prune --model baseline --method taylor --ratio 0.3 --eval
    reidbook prune --model baseline --method psfp --target-macs 0.5 --epochs 2

Loads (or trains) the model from the zoo, scores its channels (data criteria use a fixed, seeded
sample of training images), cuts them out, prints parameters / multiply-adds before and after,
optionally evaluates the pruned model, and saves it with :func:`reidbook.prune.save_pruned`.
The training procedures (``auto_balanced``, ``psfp``, ``play_and_prune``) are not one cut: for them the
command runs the method's own strategy (:func:`reidbook.prune.auto_balanced_prune`,
:func:`~reidbook.prune.progressive_soft_prune`, :func:`~reidbook.prune.play_and_prune`) to ``--target-macs``
on the training split for ``--epochs`` epochs.
"""
from __future__ import annotations

import argparse
import json

from ..profiles import PROFILES
from ..prune import METHODS, SCORERS, TRAINING_PROCEDURES, prune, save_pruned
from ..prune.surgery import SCOPES

__all__ = ["add_arguments", "main"]


def _non_negative_int(text: str) -> int:
    value = int(text)
    if value < 0:
        raise argparse.ArgumentTypeError(f"must be ≥ 0, got {value}")
    return value


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--model", default="baseline", help="zoo model name (default: baseline)")
    parser.add_argument("--profile", default="quick", choices=PROFILES)
    parser.add_argument("--data", default="synth", help="synth or a data set name/path")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--method", default="l1", choices=list(METHODS),
                        help=f"pruning criterion; {', '.join(TRAINING_PROCEDURES)} run their own training strategy")
    amount = parser.add_mutually_exclusive_group(required=True)
    amount.add_argument("--ratio", type=float, help="fraction of the scoped channels to remove, in [0, 1)")
    amount.add_argument("--target-macs", type=float, help="fraction of the multiply-adds to keep, in (0, 1]")
    parser.add_argument("--scope", default="bottleneck", choices=list(SCOPES))
    parser.add_argument("--engine", default="torch_pruning", choices=["torch_pruning", "hand"])
    parser.add_argument("--global-ranking", action="store_true", help="rank channels across layers")
    parser.add_argument("--calib-images", type=int, default=128, help="training images for data criteria")
    parser.add_argument("--epochs", type=_non_negative_int, default=1,
                        help="training epochs of a training procedure (auto_balanced, psfp, play_and_prune)")
    parser.add_argument("--max-iters", type=int, default=None, help="cap on iterations per epoch (smoke runs)")
    parser.add_argument("--eval", action="store_true", help="evaluate the pruned model (mAP, rank-1)")
    parser.add_argument("--device", default="auto")
    parser.add_argument("--out", default=None, help="save the pruned model here (.pt)")
    parser.add_argument("--json", action="store_true", help="print the report as JSON")


def _run_procedure(args, entry, size):
    """A training procedure runs its own strategy (the survey's pairing), never a one-shot cut in its name."""
    from .. import zoo
    from ..prune import auto_balanced_prune, play_and_prune, progressive_soft_prune

    ds = zoo.dataset(args.profile, args.data, args.seed)
    common = dict(input_size=size, device=args.device, seed=args.seed, max_iters_per_epoch=args.max_iters,
                  scope=args.scope)
    if args.method == "psfp":
        return progressive_soft_prune(entry.model, args.target_macs, ds, entry.preset, epochs=args.epochs, **common)
    if args.method == "auto_balanced":
        return auto_balanced_prune(entry.model, args.target_macs, ds, entry.preset, epochs=args.epochs, **common)
    return play_and_prune(entry.model, args.target_macs, ds, entry.preset, epochs_per_round=args.epochs, **common)


def main(args: argparse.Namespace) -> int:
    from .. import zoo
    from ..eval import evaluate_model
    from ..prune.activations import calibration_batches

    if args.method in TRAINING_PROCEDURES:  # checked before anything is loaded or trained
        if args.target_macs is None:
            raise ValueError(f"--method {args.method} prunes while training to a multiply-add target: give "
                             f"--target-macs (fraction kept, e.g. 0.5), not --ratio")
        if args.epochs < 1:
            raise ValueError(f"--method {args.method} prunes while training: --epochs must be ≥ 1, got {args.epochs}")
    entry = zoo.get(args.model, args.profile, args.data, args.seed, device=args.device)
    preset = entry.preset
    size = (preset.height, preset.width)
    if args.method in TRAINING_PROCEDURES:
        small, report = _run_procedure(args, entry, size)
        widths = None
    else:
        data = None
        if SCORERS[args.method].needs != "weights":
            ds = zoo.dataset(args.profile, args.data, args.seed)
            data = calibration_batches(ds.train, *size, n_images=args.calib_images, seed=args.seed)
        small, report = prune(entry.model, args.method, ratio=args.ratio, target_macs=args.target_macs, data=data,
                              input_size=size, scope=args.scope, engine=args.engine,
                              global_ranking=True if args.global_ranking else None, seed=args.seed)
        widths = report.widths_after
    result = {"model": args.model, "profile": args.profile, "method": args.method,
              "strategy": getattr(report, "strategy", "once"),
              "params": report.params_after, "params_ratio": report.params_ratio,
              "macs": report.macs_after, "macs_ratio": report.macs_ratio, "unpruned_mAP": entry.metrics.get("mAP")}
    if args.eval:
        ds = zoo.dataset(args.profile, args.data, args.seed)
        m = evaluate_model(small, ds, *size, device=args.device)
        result.update(mAP=m["mAP"], rank1=m["rank1"])
    if args.out:
        extra = {k: v for k, v in result.items() if v is not None} | {"scope": args.scope}
        if widths is not None:
            extra["widths"] = widths
        path = save_pruned(small, args.out, extra=extra)
        result["path"] = str(path)
    if args.json:
        print(json.dumps(result, indent=2, default=float))
    else:
        print(report.summary())
        for k, v in result.items():
            print(f"  {k:14s} {v:.4g}" if isinstance(v, float) else f"  {k:14s} {v}")
    return 0
