"""The ``reidbook`` command.

::

    reidbook synth ROOT [--profile quick] [--seed 0]          generate SynthReID (Market-1501 layout)
    reidbook train MODEL [--profile --data --device --seed --epochs --out --pretrained --option k=v]
    reidbook eval MODEL|FOLDER [--profile --data --device --seed --rerank]
    reidbook course [--profile quick] [--data synth] [--out build/course] [--chapters 01 02]
    reidbook prune ...  /  reidbook distill ...                (see their --help)
    reidbook models                                            list model names and their presets

``train`` runs under ``torchrun --nproc_per_node=N`` unchanged (DistributedDataParallel; only rank
0 writes). Without ``--out`` it trains into (or loads from) the model zoo cache ``$REIDBOOK_CACHE``.
Every command takes ``--help``. :func:`main` returns the exit status, so tests call ``main([...])``.
"""
from __future__ import annotations

import argparse
import os
import importlib
import json
import sys
from pathlib import Path
from typing import Any, Sequence

from .profiles import PROFILES

__all__ = ["main", "build_parser"]


def _add_common(p: argparse.ArgumentParser, data: bool = True) -> None:
    p.add_argument("--profile", choices=PROFILES, default="quick",
                   help="smoke (tests), quick (CPU, minutes; default) or full (paper settings, GPU)")
    if data:
        p.add_argument("--data", default="synth",
                       help="'synth' (SynthReID, generated into the cache), a data set name (market1501, "
                            "dukemtmcreid, cuhk03np, msmt17; under $REIDBOOK_DATA) or a folder in Market naming")
    p.add_argument("--device", default="auto", help="auto (CUDA, then MPS, then CPU), cpu, cuda, cuda:1 …")
    p.add_argument("--seed", type=int, default=0, help="random seed (default 0)")


def _parse_option(text: str) -> tuple[str, Any]:
    """``key=value`` with ``value`` read as JSON when it parses (``3``, ``0.5``, ``true``), else as a string."""
    if "=" not in text:
        raise argparse.ArgumentTypeError(f"--option wants key=value, got {text!r}")
    key, value = text.split("=", 1)
    try:
        return key, json.loads(value)
    except json.JSONDecodeError:
        return key, value


# ----------------------------------------------------------------------------------------------
# Commands
# ----------------------------------------------------------------------------------------------
def cmd_synth(args) -> int:
    from .data import make_synthetic

    root = make_synthetic(args.root, profile=args.profile, seed=args.seed)
    print(f"SynthReID ({args.profile}, seed {args.seed}) at {root}")
    return 0


def _preset_from_args(args):
    from .models import list_models
    from .presets import get_preset

    if args.model not in list_models():
        raise KeyError(f"unknown model {args.model!r}; reidbook knows {', '.join(list_models())}")
    preset = get_preset(args.model, args.profile)
    changes: dict[str, Any] = {}
    if args.epochs is not None:
        if args.epochs < 1:
            raise ValueError(f"--epochs must be ≥ 1, got {args.epochs}")
        changes["epochs"] = args.epochs
    if args.option:
        changes["model_options"] = dict(args.option)
    return preset.replace(**changes) if changes else preset


def _pretrained_arg(value: str):
    return None if value in ("none", "None", "") else value


def _train(args, device="auto") -> dict:
    """Train (or load) under ``launch_train``, which passes this rank's ``device``."""
    from . import zoo

    preset = _preset_from_args(args)
    pretrained = _pretrained_arg(args.pretrained)
    if args.out:
        entry = zoo.train_entry(args.model, preset, args.data, args.seed, device, pretrained, folder=Path(args.out))
    else:
        overrides = {k: getattr(preset, k) for k in ("epochs", "model_options")}
        entry = zoo.get(args.model, args.profile, args.data, args.seed, device=device, pretrained=pretrained,
                        retrain=args.retrain, **overrides)
    return {"path": str(entry.path), **entry.metrics}


def cmd_train(args) -> int:
    from .engine import launch_train

    result = launch_train(_train, args, device=args.device)
    # launch_train has left the process group by now, so ask torchrun's environment who we were.
    if int(os.environ.get("RANK", "0")) == 0:
        _print_metrics(f"{args.model} ({args.profile}, {args.data}, seed {args.seed})", result)
    return 0


def cmd_eval(args) -> int:
    from . import zoo
    from .eval import evaluate_model, scalar_metrics

    target = Path(args.model).expanduser()
    if target.exists():
        entry = zoo.load_entry(target)
        data = args.data or entry.config.get("data", "synth")
        profile = entry.preset.profile
        seed = entry.config.get("seed", args.seed) if args.data is None else args.seed
    elif "/" in args.model or args.model.endswith((".pt", ".pth")):
        raise FileNotFoundError(f"no model folder {target}; give a folder written by `reidbook train --out` "
                                "or a model name (see `reidbook models`)")
    else:
        data, profile, seed = args.data or "synth", args.profile, args.seed
        entry = zoo.get(args.model, profile, data, seed, device=args.device)
    ds = zoo.dataset(profile, data, seed)
    metrics = evaluate_model(entry.model, ds, entry.preset.height, entry.preset.width, device=args.device,
                             rerank=args.rerank)
    metrics = scalar_metrics(metrics)
    _print_metrics(f"{entry.config.get('name', args.model)} on {data}" + (" (re-ranked)" if args.rerank else ""),
                   {"path": str(entry.path), **metrics})
    return 0


def cmd_course(args) -> int:
    from .course import run_course

    run_course(args.profile, args.data, args.out, chapters=args.chapters or None, device=args.device, seed=args.seed)
    return 0


def cmd_models(args) -> int:
    from .models import list_models
    from .presets import get_preset

    for name in list_models():
        try:
            p = get_preset(name, "full")
            note = p.notes.split(";")[0][:90]
        except KeyError:
            note = "(no presets yet)"
        print(f"{name:12s} {note}")
    return 0


def _print_metrics(title: str, metrics: dict) -> None:
    print(title)
    for k, v in metrics.items():
        if k in ("mAP", "mINP", "mAP_official") or k.startswith("rank"):
            print(f"  {k:14s} {100 * v:6.2f} %")
        elif isinstance(v, float):
            print(f"  {k:14s} {v:.4g}")
        else:
            print(f"  {k:14s} {v}")


# ----------------------------------------------------------------------------------------------
# Sub-commands that live in other modules (pruning, distillation)
# ----------------------------------------------------------------------------------------------
_EXTERNAL = {"prune": ("reidbook.commands.prune", "prune a trained model (criteria, strategies, real surgery)"),
             "prune-scenario": ("reidbook.commands.prune_scenario",
                                "run one of the pruning survey's design scenarios (Fig. 2) end to end"),
             "distill": ("reidbook.distill.cli", "Factorized Distillation: teachers → a holistic student")}


def _add_external(sub, name: str) -> None:
    module_name, help_text = _EXTERNAL[name]
    try:
        module = importlib.import_module(module_name)
    except ImportError as exc:
        p = sub.add_parser(name, help=f"{help_text} [unavailable]", description=help_text)
        p.add_argument("rest", nargs=argparse.REMAINDER)
        p.set_defaults(func=lambda args, exc=exc: _unavailable(name, module_name, exc))
        return
    p = sub.add_parser(name, help=help_text, description=(module.__doc__ or help_text).strip().split("\n\n")[0],
                       formatter_class=argparse.RawDescriptionHelpFormatter)
    module.add_arguments(p)
    p.set_defaults(func=module.main)


def _unavailable(name: str, module_name: str, exc: Exception) -> int:
    print(f"reidbook {name}: this command needs the module {module_name}, which could not be imported "
          f"({type(exc).__name__}: {exc}). Is your reidbook installation complete? "
          f"(`pip install -e .` from the source checkout)", file=sys.stderr)
    return 2


# ----------------------------------------------------------------------------------------------
# Parser and entry point
# ----------------------------------------------------------------------------------------------
def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="reidbook", description="Compressing person re-ID models: data, training, evaluation, the course.",
        formatter_class=argparse.RawDescriptionHelpFormatter,
        epilog="Profiles: smoke (seconds), quick (minutes on a CPU), full (paper settings). "
               "Models are cached in $REIDBOOK_CACHE (default ~/.cache/reidbook).")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")
    sub.required = True

    p = sub.add_parser("synth", help="generate the SynthReID data set (Market-1501 layout)",
                       description="Generate SynthReID into ROOT (and its source domain into ROOT/source).")
    p.add_argument("root", help="folder to write (created; must be empty or this very data set)")
    p.add_argument("--profile", choices=PROFILES, default="quick", help="data set size (default quick)")
    p.add_argument("--seed", type=int, default=0, help="random seed (default 0)")
    p.set_defaults(func=cmd_synth)

    p = sub.add_parser("train", help="train a model with its preset (works under torchrun)",
                       description="Train MODEL with the preset of --profile on --data, evaluate it, and save it "
                                   "to --out (or the model zoo cache). Launch with `torchrun --nproc_per_node=N "
                                   "-m reidbook.cli train ...` for multi-process training.")
    p.add_argument("model", help="model name (see `reidbook models`), e.g. baseline, mgn, graftednet")
    _add_common(p)
    p.add_argument("--epochs", type=int, default=None, help="override the preset's number of epochs")
    p.add_argument("--out", default=None, help="output folder (default: the zoo cache, reused if already trained)")
    p.add_argument("--pretrained", default="auto",
                   help="auto (SynthReID source-domain pre-training in smoke/quick, ImageNet in full), source, "
                        "imagenet, none, or a .pth file of backbone weights")
    p.add_argument("--option", action="append", type=_parse_option, metavar="KEY=VALUE",
                   help="model option, e.g. --option arch=resnet18 --option last_stride=2 (repeatable)")
    p.add_argument("--retrain", action="store_true", help="ignore a cached zoo entry and train again")
    p.set_defaults(func=cmd_train)

    p = sub.add_parser("eval", help="evaluate a trained model (mAP, CMC, mINP; optional re-ranking)",
                       description="Evaluate MODEL (a name: taken from the zoo, trained if missing) or a model "
                                   "folder written by `reidbook train --out`.")
    p.add_argument("model", help="model name or model folder")
    p.add_argument("--profile", choices=PROFILES, default="quick", help="profile (for a model name)")
    p.add_argument("--data", default=None, help="data set to evaluate on (default: the one it was trained on / synth)")
    p.add_argument("--device", default="auto", help="auto, cpu, cuda …")
    p.add_argument("--seed", type=int, default=0, help="random seed (default 0)")
    p.add_argument("--rerank", action="store_true", help="k-reciprocal re-ranking (Zhong et al. 2017)")
    p.set_defaults(func=cmd_eval)

    p = sub.add_parser("course", help="run every chapter and write an HTML index",
                       description="Execute the chapters with papermill under --profile and write OUT/index.html.")
    _add_common(p)
    p.add_argument("--out", default="build/course", help="output folder (default build/course)")
    p.add_argument("--chapters", nargs="*", default=None, help="only chapters whose file name starts with these")
    p.set_defaults(func=cmd_course)

    for name in _EXTERNAL:
        _add_external(sub, name)

    p = sub.add_parser("models", help="list the model names", description="List every model name and its paper.")
    p.set_defaults(func=cmd_models)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    """Run the ``reidbook`` command with ``argv`` (default ``sys.argv[1:]``); returns the exit status.

    Errors a user can fix (unknown model, missing data set, bad checkpoint, unavailable weights …) are
    printed as one clear message with status 1 instead of a traceback (``REIDBOOK_DEBUG=1`` re-raises).
    """
    import os

    parser = build_parser()
    args = parser.parse_args(list(argv) if argv is not None else None)
    try:
        return int(args.func(args) or 0)
    except (KeyError, ValueError, FileNotFoundError, FileExistsError, RuntimeError, TypeError) as exc:
        if os.environ.get("REIDBOOK_DEBUG"):
            raise
        msg = exc.args[0] if isinstance(exc, KeyError) and exc.args else exc
        print(f"reidbook {args.command}: error: {msg}", file=sys.stderr)
        return 1


if __name__ == "__main__":
    sys.exit(main())
