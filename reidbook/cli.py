"""The ``reidbook`` command.

::

    reidbook synth ROOT [--profile quick] [--seed 0] [--workers N]   generate SynthReID (Market-1501 layout)
    reidbook train MODEL [--profile --data --device --seed --epochs --out --force --pretrained --option k=v
                          --threads N --retrain]
    reidbook eval MODEL|FOLDER [--profile --data --device --seed --rerank]
    reidbook course [--profile quick] [--data synth] [--out build/course] [--chapters 01 02]
    reidbook prune ...  /  reidbook distill ...                (see their --help)
    reidbook claims [--profile quick] [--seeds 3] [--only ID ...] [--jobs N]   the claims ledger (assets/claims/)
    reidbook models                                            list model names and their presets
    reidbook --debug COMMAND ...                               show the traceback of an error

``train`` runs under ``torchrun --nproc_per_node=N`` unchanged (DistributedDataParallel; only rank
0 writes). Without ``--out`` it trains into (or loads from) the model zoo cache ``$REIDBOOK_CACHE``.
Every command takes ``--help``. :func:`main` returns the exit status, so tests call ``main([...])``.

Faults a user can fix (a bad argument, a missing or corrupt file, a folder that cannot be written, a
diverged training …) end in **one line** on stderr — what went wrong, where, how to fix it — and exit
status 1 (2 for a bad command line); ``--debug`` (or ``REIDBOOK_DEBUG=1``) shows the traceback instead.
Ctrl-C (SIGINT) and SIGTERM end in one line too, with status 130 / 143: a training keeps the checkpoint
of its last finished epoch and the same command resumes from it; ``synth`` removes its partial output.

``train --out DIR`` never deletes or overwrites what reidbook did not create: it writes only into a
new or empty folder, or one it marked as its own (``.reidbook-folder``), and replaces a trained model
there only with ``--force``.
"""
from __future__ import annotations

import argparse
import importlib
import inspect
import json
import os
import pickle
import signal
import sys
import threading
from pathlib import Path
from typing import Any, Sequence

from .profiles import PROFILES
from .utils import positive_int_arg

__all__ = ["main", "build_parser", "threads_per_job", "available_cores", "set_threads", "Interrupted",
           "NOT_TRAINED_BY_TRAIN", "OUT_MARKER"]

#: Names ``reidbook models`` lists that ``reidbook train`` does not train on its own, and what does.
NOT_TRAINED_BY_TRAIN = {
    "fd_student": "reidbook distill (Factorized Distillation trains the teachers, then distils the student)",
}

#: The file that marks a folder as created by ``reidbook train --out`` (so only such folders are written).
OUT_MARKER = ".reidbook-folder"


class Interrupted(KeyboardInterrupt):
    """A termination signal (SIGTERM) raised as an exception, so clean-up code runs as for Ctrl-C."""

    def __init__(self, signum: int):
        super().__init__(signal.Signals(signum).name)
        self.signum = signum


class _Parser(argparse.ArgumentParser):
    """argparse, but a bad command line is one line on stderr (exit status 2), not usage + error."""

    def error(self, message: str):  # noqa: D401 - argparse's API
        self.exit(2, f"{self.prog}: error: {message} (see `{self.prog} --help`)\n")


# ----------------------------------------------------------------------------------------------
# Threads: one training per core set
# ----------------------------------------------------------------------------------------------
def available_cores() -> int:
    """CPU cores this process may run on (its affinity mask where the OS has one)."""
    try:
        return max(1, len(os.sched_getaffinity(0)))
    except AttributeError:  # macOS, Windows
        return max(1, os.cpu_count() or 1)


def threads_per_job(jobs: int, cores: int | None = None) -> int:
    """Intra-op threads for each of ``jobs`` trainings run side by side: ``cores // jobs``, at least 1.

    Every torch process asks for every core by default, so two trainings at once on two cores run far
    slower than one after the other (issue 25 measured > 6× on this machine); giving each job its share
    (``reidbook train --threads N``, or ``OMP_NUM_THREADS=N``) lets them finish in about the time of one.
    """
    if isinstance(jobs, bool) or not isinstance(jobs, int) or jobs < 1:
        raise ValueError(f"jobs must be a whole number ≥ 1, got {jobs!r}")
    cores = available_cores() if cores is None else int(cores)
    return max(1, cores // jobs)


def set_threads(threads: int | None = None) -> int:
    """Set torch's intra-op threads: ``threads``, else ``$OMP_NUM_THREADS`` if set, else torch's default.

    Returns the number now in use. ``threads`` must be ≥ 1.
    """
    import torch

    if threads is None:
        env = os.environ.get("OMP_NUM_THREADS", "").strip()
        if not env:
            return torch.get_num_threads()
        try:
            threads = int(env)
        except ValueError:
            raise ValueError(f"OMP_NUM_THREADS={env!r} is not a whole number; set it to e.g. 1, or unset it") from None
        if threads < 1:
            raise ValueError(f"OMP_NUM_THREADS={env!r} must be ≥ 1; set it to e.g. 1, or unset it")
    if isinstance(threads, bool) or not isinstance(threads, int) or threads < 1:
        raise ValueError(f"--threads must be a whole number ≥ 1, got {threads!r}")
    torch.set_num_threads(threads)
    return torch.get_num_threads()


# ----------------------------------------------------------------------------------------------
# Argument types
# ----------------------------------------------------------------------------------------------
def _add_common(p: argparse.ArgumentParser, data: bool = True) -> None:
    p.add_argument("--profile", choices=PROFILES, default="quick",
                   help="smoke (tests), quick (CPU, minutes; default) or full (paper settings, GPU)")
    if data:
        p.add_argument("--data", default="synth",
                       help="'synth' (SynthReID, generated into the cache), a data set name (market1501, "
                            "dukemtmcreid, cuhk03np, msmt17; under $REIDBOOK_DATA) or a folder in Market naming")
    p.add_argument("--device", default="auto", help="auto (CUDA, then MPS, then CPU), cpu, cuda, cuda:1 …")
    p.add_argument("--seed", type=_seed, default=0, help="random seed, a whole number ≥ 0 (default 0)")


def _seed(text: str) -> int:
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"--seed wants a whole number ≥ 0, got {text!r}") from None
    if not 0 <= value < 2**32:
        raise argparse.ArgumentTypeError(f"--seed must be between 0 and 2**32 - 1 (NumPy's range), got {value}")
    return value


def _parse_option(text: str) -> tuple[str, Any]:
    """``key=value`` with ``value`` read as JSON when it parses (``3``, ``0.5``, ``true``), else as a string."""
    if "=" not in text:
        raise argparse.ArgumentTypeError(f"--option wants key=value, got {text!r}")
    key, value = text.split("=", 1)
    if not key.strip():
        raise argparse.ArgumentTypeError(f"--option wants key=value with a key, got {text!r}")
    try:
        return key.strip(), json.loads(value)
    except json.JSONDecodeError:
        return key.strip(), value


_RESERVED_OPTIONS = {"num_classes": "it is the number of training identities of --data",
                     "profile": "use --profile", "pretrained": "use --pretrained"}


def _check_options(name: str, options: dict) -> None:
    """Refuse ``--option`` keys the model's builder does not take (before any work), naming the valid ones."""
    from .models.registry import MODELS

    for key in options:
        if key in _RESERVED_OPTIONS:
            raise ValueError(f"--option {key}=… cannot be set: {_RESERVED_OPTIONS[key]}")
    module_name, fn_name = MODELS[name].split(":")
    builder = getattr(importlib.import_module(module_name), fn_name)
    params = inspect.signature(builder).parameters
    if any(p.kind is inspect.Parameter.VAR_KEYWORD for p in params.values()):
        return  # the builder passes options on; it checks them itself
    accepted = [k for k, p in params.items() if k not in _RESERVED_OPTIONS and
                p.kind in (inspect.Parameter.POSITIONAL_OR_KEYWORD, inspect.Parameter.KEYWORD_ONLY)]
    unknown = [k for k in options if k not in accepted]
    if unknown:
        raise ValueError(f"unknown --option {', '.join(unknown)} for model {name!r}; it accepts "
                         f"{', '.join(accepted) or 'no options'} "
                         f"(e.g. --option {accepted[0] if accepted else 'key'}=VALUE)")


_PRETRAINED_WORDS = ("auto", "source", "imagenet", "none", "None", "")


def _pretrained_arg(value: str):
    return None if value in ("none", "None", "") else value


def _check_pretrained_file(value: str) -> None:
    """``--pretrained FILE`` must be a readable weights file, checked before any training (weights_only)."""
    if value in _PRETRAINED_WORDS:
        return
    import torch

    path = Path(value).expanduser()
    if not path.is_file():
        raise FileNotFoundError(f"--pretrained {value}: no such file; give auto, source, imagenet, none or a "
                                ".pth file of backbone weights")
    try:
        state = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as exc:  # noqa: BLE001 - pickle/zip errors vary by torch version
        raise ValueError(f"--pretrained {path} is not a PyTorch weights file that can be loaded safely "
                         f"({type(exc).__name__}); give a .pth file written by torch.save(model.state_dict(), "
                         "path), or auto / source / imagenet / none") from None
    tensors = dict(_tensors(state)) if isinstance(state, dict) else {}
    if not tensors:
        raise ValueError(f"--pretrained {path} holds no state dict of tensors (it holds a {type(state).__name__}); "
                         "give a .pth file written by torch.save(model.state_dict(), path)")
    bad = [k for k, v in tensors.items() if v.is_floating_point() and not bool(torch.isfinite(v).all())]
    if bad:
        raise FloatingPointError(f"--pretrained {path} holds NaN or infinite values in {len(bad)} of {len(tensors)} "
                                 f"tensors (e.g. {bad[0]}), so training from it cannot work; export the weights "
                                 "again from a model that trained well, or use --pretrained auto")


def _tensors(obj: Any, prefix: str = "", depth: int = 0):
    """``(name, tensor)`` pairs of a (possibly nested, e.g. ``{"state_dict": ...}``) state dict."""
    import torch

    if torch.is_tensor(obj):
        yield prefix.rstrip("."), obj
    elif isinstance(obj, dict) and depth < 3:
        for k, v in obj.items():
            yield from _tensors(v, f"{prefix}{k}.", depth + 1)


# ----------------------------------------------------------------------------------------------
# Folders: write only where reidbook may
# ----------------------------------------------------------------------------------------------
def _check_writable(folder: Path, what: str, fix: str) -> None:
    """Create ``folder`` if needed and prove a file can be written there (a real probe: root ignores modes)."""
    import tempfile

    try:
        folder.mkdir(parents=True, exist_ok=True)
        fd, probe = tempfile.mkstemp(prefix=".reidbook-probe-", dir=folder)
        os.close(fd)
        os.unlink(probe)
    except OSError as exc:
        raise PermissionError(exc.errno, f"{what} {folder} cannot be written ({exc.strerror or exc}); {fix}",
                              None) from None


def _write_marker(folder: Path) -> None:
    from .utils import atomic_write_json

    atomic_write_json(folder / OUT_MARKER, {"created_by": "reidbook train", "pid": os.getpid()})


def _prepare_out(out: Path, force: bool) -> Path:
    """Check that ``reidbook train --out OUT`` may write ``OUT`` (refusing otherwise), then mark it as ours.

    Allowed: a new or empty folder; a folder this command marked (an interrupted run resumes there); a
    trained model folder (``entry.json``) only with ``--force``. Refused: a file; a non-empty folder that
    reidbook did not create; a ``train/`` sub-folder it did not create (it is deleted when training ends).
    """
    import shutil

    out = out.expanduser()
    if out.exists() and not out.is_dir():
        raise NotADirectoryError(20, f"--out {out} is a file, not a folder; give the path of a new or empty "
                                     "folder (it is created)", None)
    for parent in out.parents:
        if parent.exists() and not parent.is_dir():
            raise NotADirectoryError(20, f"--out {out}: {parent} is a file, not a folder; give a folder path", None)
    if out.is_dir():
        names = {p.name for p in out.iterdir()} - {OUT_MARKER}
        ours = (out / OUT_MARKER).is_file()
        model = (out / "entry.json").is_file()
        if model and not force:
            raise FileExistsError(f"--out {out} already holds a trained model (entry.json); pass --force to "
                                  "replace it, or choose another --out folder")
        if names and not ours and not model:
            raise FileExistsError(f"--out {out} is not empty and was not created by reidbook (no {OUT_MARKER}); "
                                  "reidbook never writes into other folders: choose a new or empty --out folder")
        train = out / "train"
        if train.exists() and not (train / OUT_MARKER).is_file():
            raise FileExistsError(f"{train} exists and was not created by reidbook (no {OUT_MARKER}); it would be "
                                  "deleted when training ends: move it elsewhere or choose another --out folder")
        if force and model:  # ours: a new run replaces it, from the start
            (out / "entry.json").unlink()
            shutil.rmtree(train, ignore_errors=True)
    _check_writable(out.parent if not out.exists() else out, "the --out folder" if out.exists() else
                    "the parent folder of --out", "choose a folder you can write")
    out.mkdir(parents=True, exist_ok=True)
    (out / "train").mkdir(exist_ok=True)
    _write_marker(out)
    _write_marker(out / "train")
    return out


# ----------------------------------------------------------------------------------------------
# Commands
# ----------------------------------------------------------------------------------------------
# What the running command is doing, for the one-line message of an interruption.
_RUN: dict[str, Any] = {}


def cmd_synth(args) -> int:
    from .data import make_synthetic

    _RUN.update(kind="synth", root=Path(args.root).expanduser())
    root = make_synthetic(args.root, profile=args.profile, seed=args.seed, num_workers=args.workers, verify=True)
    print(f"SynthReID ({args.profile}, seed {args.seed}) at {root}")
    return 0


def _preset_from_args(args):
    from .models import list_models
    from .presets import get_preset

    if args.model not in list_models():
        raise KeyError(f"unknown model {args.model!r}; reidbook knows {', '.join(list_models())}")
    if args.model in NOT_TRAINED_BY_TRAIN:
        raise ValueError(f"{args.model!r} is not trained by `reidbook train`: use "
                         f"{NOT_TRAINED_BY_TRAIN[args.model]}, e.g. `reidbook distill --profile {args.profile}`")
    preset = get_preset(args.model, args.profile)
    changes: dict[str, Any] = {}
    if args.epochs is not None:
        if args.epochs < 1:
            raise ValueError(f"--epochs must be ≥ 1, got {args.epochs}")
        changes["epochs"] = args.epochs
    if args.option:
        options = dict(args.option)
        _check_options(args.model, options)
        changes["model_options"] = options
    return preset.replace(**changes) if changes else preset


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


def _checkpoint_folder(args, preset) -> Path | None:
    """Where this run's resume checkpoint lives (for the interruption message); ``None`` if unknown."""
    from . import zoo

    if args.out:
        return Path(args.out).expanduser() / "train"
    try:
        overrides = {k: getattr(preset, k) for k in ("epochs", "model_options")}
        return zoo.entry_path(args.model, args.profile, args.data, args.seed,
                              pretrained=_pretrained_arg(args.pretrained), **overrides) / "train"
    except Exception:  # noqa: BLE001 - only used to word a message
        return None


def cmd_train(args) -> int:
    from .engine import launch_train
    from .utils import cache_dir

    set_threads(args.threads)
    preset = _preset_from_args(args)  # bad model name / options / epochs: refused before any work
    _check_pretrained_file(args.pretrained)
    if args.out and int(os.environ.get("RANK", "0")) == 0:  # under torchrun, rank 0 checks and marks; others follow
        _prepare_out(Path(args.out), args.force)
    elif args.force and not args.out:
        raise ValueError("--force only applies with --out (it replaces a model folder); to train a cached model "
                         "again use --retrain")
    try:
        cache = cache_dir()
    except OSError as exc:
        raise PermissionError(exc.errno, f"the cache folder {os.environ.get('REIDBOOK_CACHE', '~/.cache/reidbook')} "
                                         f"cannot be created ({exc.strerror or exc}); set REIDBOOK_CACHE to a "
                                         "folder you can write", None) from None
    _check_writable(cache, "the cache folder", "set REIDBOOK_CACHE to a folder you can write")
    _RUN.update(kind="train", epochs=preset.epochs, checkpoints=_checkpoint_folder(args, preset))
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
        entry = _load_folder(target)
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


def _load_folder(target: Path):
    """``zoo.load_entry`` with an unreadable ``model.pt`` named (torch's own text suggests unsafe loading)."""
    from . import zoo
    from .store import StoreError

    try:
        return zoo.load_entry(target)
    except StoreError:  # ZooError included: already names the folder and the fix
        raise
    except (pickle.UnpicklingError, EOFError, RuntimeError) as exc:
        folder = target.parent if target.is_file() else target
        raise ValueError(f"cannot read the weights {folder / 'model.pt'} ({type(exc).__name__}: the file is corrupt, "
                         "truncated or not written by reidbook); delete the folder and train it again with "
                         f"`reidbook train MODEL --out {folder}`") from None


def cmd_course(args) -> int:
    from .course import run_course

    run_course(args.profile, args.data, args.out, chapters=args.chapters or None, device=args.device, seed=args.seed,
               timings=args.timings, lanes=args.lanes)
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
        if name in NOT_TRAINED_BY_TRAIN:
            print(f"{'':12s} not trained by `reidbook train`: use {NOT_TRAINED_BY_TRAIN[name]}")
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
             "distill": ("reidbook.distill.cli", "Factorized Distillation: teachers → a holistic student"),
             "claims": ("reidbook.claims.cli", "measure every paper claim over seeds and write the ledger")}


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
    parser = _Parser(
        prog="reidbook", description="Compressing person re-ID models: data, training, evaluation, the course.",
        formatter_class=argparse.RawDescriptionHelpFormatter,
        epilog="Profiles: smoke (seconds), quick (minutes on a CPU), full (paper settings). "
               "Models are cached in $REIDBOOK_CACHE (default ~/.cache/reidbook).")
    parser.add_argument("--debug", action="store_true",
                        help="show the full traceback of an error instead of the one-line message "
                             "(or REIDBOOK_DEBUG=1)")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")
    sub.required = True

    p = sub.add_parser("synth", help="generate the SynthReID data set (Market-1501 layout)",
                       description="Generate SynthReID into ROOT (and its source domain into ROOT/source). Over an "
                                   "existing SynthReID it checks every file against the data set's manifest.")
    p.add_argument("root", help="folder to write (created; must be empty or this very data set)")
    p.add_argument("--profile", choices=PROFILES, default="quick", help="data set size (default quick)")
    p.add_argument("--seed", type=_seed, default=0, help="random seed, a whole number ≥ 0 (default 0)")
    p.add_argument("--workers", type=positive_int_arg("--workers"), default=None,
                   help="render processes (default: 1 for small sets, else up to 8 cores); the output does not "
                        "depend on it")
    p.set_defaults(func=cmd_synth)

    p = sub.add_parser("train", help="train a model with its preset (works under torchrun)",
                       description="Train MODEL with the preset of --profile on --data, evaluate it, and save it "
                                   "to --out (or the model zoo cache). Launch with `torchrun --nproc_per_node=N "
                                   "-m reidbook.cli train ...` for multi-process training. Interrupted (Ctrl-C, "
                                   "SIGTERM), the same command resumes from the last finished epoch.")
    p.add_argument("model", help="model name (see `reidbook models`), e.g. baseline, mgn, graftednet")
    _add_common(p)
    p.add_argument("--epochs", type=int, default=None, help="override the preset's number of epochs")
    p.add_argument("--out", default=None, help="output folder: new, empty, or one written by an earlier "
                                               "`reidbook train --out` "
                                               "(default: the zoo cache, reused if already trained)")
    p.add_argument("--force", action="store_true", help="with --out: replace the model already trained in that folder")
    p.add_argument("--pretrained", default="auto",
                   help="auto (SynthReID source-domain pre-training in smoke/quick, ImageNet in full), source, "
                        "imagenet, none, or a .pth file of backbone weights")
    p.add_argument("--option", action="append", type=_parse_option, metavar="KEY=VALUE",
                   help="model option, e.g. --option arch=resnet18 --option last_stride=2 (repeatable)")
    p.add_argument("--retrain", action="store_true", help="ignore a cached zoo entry and train again")
    p.add_argument("--threads", type=positive_int_arg("--threads"), default=None,
                   help="torch threads (default: $OMP_NUM_THREADS if set, else every core); give each of N "
                        "trainings run side by side cores/N")
    p.set_defaults(func=cmd_train)

    p = sub.add_parser("eval", help="evaluate a trained model (mAP, CMC, mINP; optional re-ranking)",
                       description="Evaluate MODEL (a name: taken from the zoo, trained if missing) or a model "
                                   "folder written by `reidbook train --out`.")
    p.add_argument("model", help="model name or model folder")
    p.add_argument("--profile", choices=PROFILES, default="quick", help="profile (for a model name)")
    p.add_argument("--data", default=None, help="data set to evaluate on (default: the one it was trained on / synth)")
    p.add_argument("--device", default="auto", help="auto, cpu, cuda …")
    p.add_argument("--seed", type=_seed, default=0, help="random seed, a whole number ≥ 0 (default 0)")
    p.add_argument("--rerank", action="store_true", help="k-reciprocal re-ranking (Zhong et al. 2017)")
    p.set_defaults(func=cmd_eval)

    p = sub.add_parser("course", help="run every chapter and write an HTML index",
                       description="Execute the chapters with papermill under --profile and write OUT/index.html.")
    _add_common(p)
    p.add_argument("--out", default="build/course", help="output folder (default build/course)")
    p.add_argument("--chapters", nargs="*", default=None, help="only chapters whose file name starts with these")
    p.add_argument("--timings", action="store_true",
                   help="print each chapter's time per cell (always kept in OUT/index.html and OUT/course.json)")
    p.add_argument("--lanes", type=positive_int_arg("--lanes"), default=None,
                   help="trainings and chapters run side by side, each with cores/LANES threads (default: 2 on a "
                        "CPU with ≥ 2 cores, 1 on a GPU)")
    p.set_defaults(func=cmd_course)

    for name in _EXTERNAL:
        _add_external(sub, name)

    p = sub.add_parser("models", help="list the model names", description="List every model name and its paper.")
    p.set_defaults(func=cmd_models)
    return parser


# ----------------------------------------------------------------------------------------------
# Errors and interruptions: one line each
# ----------------------------------------------------------------------------------------------
def _one_line(text: str) -> str:
    return " ".join(part.strip() for part in str(text).splitlines() if part.strip())


_OS_FIXES = {
    "PermissionError": "make it writable (chmod/chown) or choose another folder "
                       "(--out, or REIDBOOK_CACHE for the cache)",
    "NotADirectoryError": "a part of this path is a file, not a folder: give a folder path",
    "IsADirectoryError": "a folder is where a file was expected: give a file path",
    "FileNotFoundError": "check the path (does the folder exist?)",
}


def _describe(exc: BaseException) -> str | None:
    """The one-line message of an expected fault, or ``None`` for an unexpected one (a bug: traceback)."""
    if isinstance(exc, KeyError):
        return _one_line(exc.args[0] if exc.args else exc)
    if isinstance(exc, pickle.UnpicklingError):  # torch's text suggests weights_only=False: never repeat it
        return ("a file could not be read as a safe PyTorch file (UnpicklingError: corrupt, truncated or not "
                "written by reidbook); delete the model folder or file it belongs to and train again "
                "(run with --debug to see which file)")
    if isinstance(exc, OSError) and exc.filename is not None:
        import errno

        what = exc.strerror or type(exc).__name__
        where = f"{exc.filename}" + (f" -> {exc.filename2}" if exc.filename2 else "")
        if exc.errno == errno.ENOSPC:
            fix = "free some disk space, or set REIDBOOK_CACHE / --out to a disk with room"
        elif exc.errno == errno.EROFS:
            fix = "the file system is read-only: choose a writable folder (--out, or REIDBOOK_CACHE for the cache)"
        else:
            fix = _OS_FIXES.get(type(exc).__name__, "check the path and its permissions")
        return _one_line(f"{what}: {where}; {fix}")
    if isinstance(exc, OSError) and exc.errno is not None and exc.strerror and len(exc.args) >= 2:
        return _one_line(exc.strerror)  # our own OSError(errno, message) with the fix inside
    if isinstance(exc, (OSError, ValueError, TypeError, RuntimeError, FloatingPointError, EOFError)):
        return _one_line(exc)
    return None


def _interrupted_message(command: str, signum: int) -> str:
    name = signal.Signals(signum).name
    if _RUN.get("kind") == "train":
        return f"interrupted ({name}) {_train_progress()}"
    if _RUN.get("kind") == "synth":
        if _RUN["root"].exists():  # interrupted while checking an existing data set: nothing was written
            return f"interrupted ({name}); {_RUN['root']} was not changed; run the same command again"
        return (f"interrupted ({name}); nothing was left at {_RUN['root']} (the partial data set was removed); "
                "run the same command again to generate it")
    return f"interrupted ({name}); run the same command again"


def _train_progress() -> str:
    """``at epoch 3/12; …`` from the run's resume checkpoint (the last finished epoch)."""
    epochs, folder = _RUN.get("epochs"), _RUN.get("checkpoints")
    ckpt = folder / "last.pt" if folder is not None else None
    done = None
    if ckpt is not None and ckpt.is_file():
        try:
            from .engine.checkpoint import read_checkpoint

            done = int(read_checkpoint(ckpt)["epoch"])
        except Exception:  # noqa: BLE001 - only words a message
            done = None
    if done:
        saved = "epoch 1 is" if done == 1 else f"epochs 1-{done} are"
        return (f"at epoch {min(done + 1, epochs)}/{epochs}; {saved} saved in {ckpt}; "
                "run the same command again to resume")
    return f"at epoch 1/{epochs}, before its first checkpoint; run the same command again to start it again"


def _on_signal(signum, frame):
    raise Interrupted(signum)


def main(argv: Sequence[str] | None = None) -> int:
    """Run the ``reidbook`` command with ``argv`` (default ``sys.argv[1:]``); returns the exit status.

    Errors a user can fix (unknown model, missing or corrupt data, bad checkpoint, unwritable folder,
    diverged training …) are printed as one line with status 1 instead of a traceback (``--debug`` or
    ``REIDBOOK_DEBUG=1`` shows it). SIGINT / SIGTERM: one line, status 130 / 143.
    """
    parser = build_parser()
    args = parser.parse_args(list(argv) if argv is not None else None)
    debug = args.debug or os.environ.get("REIDBOOK_DEBUG", "") not in ("", "0")
    _RUN.clear()
    handlers = {}
    if threading.current_thread() is threading.main_thread():
        handlers[signal.SIGTERM] = signal.signal(signal.SIGTERM, _on_signal)
    try:
        return int(args.func(args) or 0)
    except KeyboardInterrupt as exc:
        signum = getattr(exc, "signum", signal.SIGINT)
        if debug:
            import traceback

            traceback.print_exc()
        print(f"reidbook {args.command}: {_interrupted_message(args.command, signum)}", file=sys.stderr)
        return 128 + int(signum)
    except Exception as exc:  # noqa: BLE001 - expected faults become one line; others keep their traceback
        msg = None if debug else _describe(exc)
        if msg is None:
            raise
        print(f"reidbook {args.command}: error: {msg}", file=sys.stderr)
        return 1
    finally:
        for sig, old in handlers.items():
            signal.signal(sig, old)


if __name__ == "__main__":
    sys.exit(main())
