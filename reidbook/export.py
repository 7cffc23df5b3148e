"""Shipping a compressed re-ID model: its deployed form, exported to ONNX, checked and timed with onnxruntime.

Every compression in the course ends in a model that must run somewhere else. What is shipped is the
**deployed form** — only what the test-time embedding needs:

* GraftedNet without its accompanying branch (paper 000, §3.4: the branch "is removed in testing");
* a Factorized-Distillation student without its FMFBs and RFBs (paper 002, §3.6: training-only blocks);
* a pruned model **pruned for real** (paper 003, §3.1): fewer channels in every tensor, not zeroed
  filters — a soft-pruned model (PSFP, soft FPGM) is hardened first, which leaves its outputs unchanged;
* DaRe **at a chosen exit** (paper 004, §4.1): :class:`DaReExit` holds only the stages and heads up to
  that exit (and the fusion weights of Eq. (1) at the last one), so the exported graph is the cheap model.

The models' own ``deploy()`` methods do the first two (CONTRIBUTING.md, "Models"); :func:`deployed_model`
applies whichever form fits. :func:`export_onnx` writes the ONNX file atomically (a temporary file,
checked with ``onnx.checker``, then renamed), with a dynamic batch dimension.

**Parity** (:func:`check_parity`): the same images through PyTorch and onnxruntime; we report the largest
absolute difference of the embeddings and the smallest cosine similarity between the two embeddings of
an image. **Tolerance** (:data:`TOLERANCE`): ``max_abs ≤ 1e-4 × max(1, max |f|)`` (float32 kernels
accumulate in different orders; the relative form makes the bound independent of the embedding's
scale) and ``min cosine ≥ 0.9999`` (retrieval ranks by distance/angle, which this leaves unchanged for all
practical purposes). **Latency** (:func:`compare_latency`): onnxruntime's CPU execution beside
:func:`reidbook.profile.measure_latency` on PyTorch, measured interleaved in one run with the same
number of threads, batch size and input, median of repeats in milliseconds.
"""
from __future__ import annotations

import contextlib
import copy
import math
import os
import statistics
import time
import warnings
from dataclasses import asdict, dataclass
from pathlib import Path

import numpy as np
import torch
from torch import nn

from .models.base import deployed
from .models.dare import DaRe
from .profile import count_macs, measure_latency, run_once
from .store import tag_derived
from .utils import say

__all__ = ["TOLERANCE", "ExportError", "DaReExit", "deployed_model", "inference_params", "export_onnx", "onnx_session",
           "onnx_embed", "check_parity", "onnx_latency", "compare_latency", "ShipReport", "ship", "export_zoo_model"]

TOLERANCE = {"max_abs_rel": 1e-4, "min_cosine": 0.9999}

_ORT_MISSING = ("onnxruntime is not installed; install it with `pip install onnxruntime` "
                "(or `pip install -e \".[course]\"` in the reidbook checkout)")


class ExportError(RuntimeError):
    """A model cannot be exported or its export does not match PyTorch."""


# ----------------------------------------------------------------------------------------------
# The deployed form
# ----------------------------------------------------------------------------------------------
class DaReExit(nn.Module):
    """DaRe (paper 004) cut after exit ``s``: the backbone's stages up to stage ``s`` and heads ``1…s``.

    ``forward(x)`` returns the embedding exit ``s`` uses: ``φ_s`` for ``s < S``, the fusion of Eq. (1)
    for ``s = S`` (Fig. 2's caption) — the same as ``model.exit_embedding(model.anytime(x, upto=s))``.
    Only the modules needed are kept (shared, not copied), so parameters, multiply-adds and the ONNX
    graph are those of the exit.
    """

    def __init__(self, model: nn.Module, exit: int):
        super().__init__()
        if not isinstance(model, DaRe):
            raise TypeError(f"{type(model).__name__} has no exits; DaReExit needs a DaRe model (reidbook.models.dare)")
        n = model.num_exits
        if not 1 <= int(exit) <= n:
            raise ValueError(f"DaRe exit must be in 1..{n}, got {exit}")
        self.exit = int(exit)
        names = model.stage_names
        stage_list = list(model.backbone.stages().items())
        last = names[self.exit - 1]
        kept = []
        for name, stage in stage_list:
            kept.append((name, stage))
            if name == last:
                break
        self.stages = nn.ModuleDict(kept)
        self.tapped = list(names[: self.exit])
        self.heads = nn.ModuleList(model.heads[: self.exit])
        self.fusion_weights = model.fusion_weights if self.exit == n else None
        self.feature_dim = model.feature_dim
        self.train(model.training)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        fmaps = {}
        for name, stage in self.stages.items():
            x = stage(x)
            fmaps[name] = x
        phis = [head(fmaps[name]) for head, name in zip(self.heads, self.tapped)]
        if self.fusion_weights is not None:
            return sum(w * e for w, e in zip(self.fusion_weights, phis))
        return phis[-1]


def inference_params(model: nn.Module, input_size) -> int:
    """Parameters the test-time forward actually uses: those owned by the modules that run on one
    image (classifiers, accompanying branches and later exits never run, so they do not count — and
    they are not in the exported graph either)."""
    ran: list[nn.Module] = []
    run_once(model, input_size, lambda mod, args: ran.append(mod), pre=True)
    seen: set[int] = set()
    total = 0
    for mod in ran:
        for q in mod.parameters(recurse=False):
            if id(q) not in seen:
                seen.add(id(q))
                total += q.numel()
    return total


def _harden_if_soft(model: nn.Module) -> nn.Module:
    """Remove zeroed channels of a soft-pruned ResNet model (no change to its outputs); else the model."""
    from .prune import find_units, harden, zeroed_channels

    try:
        units = find_units(model)
    except ValueError:  # find_units: no torchvision ResNet blocks in the model, so nothing to harden
        return model
    if units and any(zeroed_channels(model, units).values()):
        say(f"[export] {type(model).__name__} has zeroed (soft-pruned) channels: removing them for real")
        return harden(model)
    return model


def deployed_model(model: nn.Module, exit: int | None = None) -> nn.Module:
    """The inference form of ``model`` as a new module in ``eval()`` mode (``model`` is left untouched).

    ``model.deploy()`` where the model has training-only parts; a soft-pruned model hardened; DaRe cut
    at ``exit`` (1 … 4) when given (:class:`DaReExit`). ``exit`` on a model without exits is an error.
    """
    if not isinstance(model, nn.Module):
        raise TypeError(f"deployed_model needs a torch.nn.Module, got {type(model).__name__}")
    net = deployed(model)
    if net is model:  # some deploy() return the model itself (CONTRIBUTING: "Default: the model itself")
        net = copy.deepcopy(model)
    net = _harden_if_soft(net.eval())
    if exit is not None:
        net = DaReExit(net, exit)
    # a stored model's deployed form keeps its entry (as a variant), so its test features are cached too
    return tag_derived(net.eval(), model, "deployed" if exit is None else f"deployed:exit{exit}")


# ----------------------------------------------------------------------------------------------
# ONNX
# ----------------------------------------------------------------------------------------------
def _example(input_size, batch_size: int = 1, seed: int = 0) -> torch.Tensor:
    size = tuple(input_size)
    if len(size) == 2:
        size = (3, *size)
    if len(size) != 3:
        raise ValueError(f"input_size must be (H, W) or (C, H, W), got {input_size}")
    g = torch.Generator().manual_seed(seed)
    return torch.randn(batch_size, *size, generator=g)


def _pool_by_slices(x: torch.Tensor, output_size, reduce: str) -> torch.Tensor:
    """``adaptive_{avg,max}_pool2d`` written as slices: bin ``i`` of ``n`` over a length ``h`` spans
    ``floor(i·h/n)`` … ``ceil((i+1)·h/n)`` (PyTorch's adaptive pooling boundaries), so the result is the
    same; ONNX's exporter only supports adaptive pooling whose output divides the input."""
    h, w = x.shape[-2:]
    oh, ow = (output_size, output_size) if isinstance(output_size, int) else output_size
    oh, ow = oh or h, ow or w
    rows = []
    for i in range(oh):
        r0, r1 = math.floor(i * h / oh), math.ceil((i + 1) * h / oh)
        cols = []
        for j in range(ow):
            c0, c1 = math.floor(j * w / ow), math.ceil((j + 1) * w / ow)
            cell = x[..., r0:r1, c0:c1]
            cols.append(cell.mean(dim=(-2, -1), keepdim=True) if reduce == "avg"
                        else cell.amax(dim=(-2, -1), keepdim=True))
        rows.append(torch.cat(cols, dim=-1))
    return torch.cat(rows, dim=-2)


@contextlib.contextmanager
def _exportable_adaptive_pooling():
    """Within the block, adaptive pooling to a size that does not divide the input (e.g. 3 stripes of a
    map 8 rows tall: GraftedNet/MGN at small inputs) is traced as the equivalent slices."""
    import torch.nn.functional as F

    orig = {"avg": F.adaptive_avg_pool2d, "max": F.adaptive_max_pool2d}

    def make(kind):
        def pool(x, output_size, *args, **kwargs):
            h, w = x.shape[-2:]
            oh, ow = (output_size, output_size) if isinstance(output_size, int) else output_size
            if args or kwargs or ((oh is None or h % oh == 0) and (ow is None or w % ow == 0)):
                return orig[kind](x, output_size, *args, **kwargs)
            return _pool_by_slices(x, (oh, ow), kind)
        return pool

    F.adaptive_avg_pool2d, F.adaptive_max_pool2d = make("avg"), make("max")
    try:
        yield
    finally:
        F.adaptive_avg_pool2d, F.adaptive_max_pool2d = orig["avg"], orig["max"]


def export_onnx(model: nn.Module, path: str | os.PathLike, input_size=(256, 128), exit: int | None = None,
                opset: int = 17, deploy: bool = True) -> Path:
    """Export the deployed form of ``model`` (see :func:`deployed_model`) to ONNX at ``path``, atomically.

    Input ``images`` ``[N, 3, H, W]`` (dynamic ``N``), output ``embedding`` ``[N, D]``. The file is written
    to a temporary name, checked with ``onnx.checker`` and only then renamed, so ``path`` never holds
    half a model. ``deploy=False`` exports ``model`` as it is (already deployed).
    """
    import onnx

    path = Path(path)
    net = deployed_model(model, exit) if deploy else model.eval()
    x = _example(input_size, 2)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    try:
        with warnings.catch_warnings(), torch.no_grad(), _exportable_adaptive_pooling():
            warnings.simplefilter("ignore")  # the TorchScript exporter's deprecation and tracer notes
            torch.onnx.export(net, (x,), str(tmp), input_names=["images"], output_names=["embedding"],
                              dynamic_axes={"images": {0: "batch"}, "embedding": {0: "batch"}},
                              opset_version=opset, dynamo=False)
        onnx.checker.check_model(str(tmp))
        os.replace(tmp, path)
    except Exception as exc:
        tmp.unlink(missing_ok=True)
        raise ExportError(f"exporting {type(net).__name__} to {path} failed: {type(exc).__name__}: {exc}") from exc
    return path


def onnx_session(path: str | os.PathLike, threads: int | None = 1):
    """An onnxruntime CPU ``InferenceSession`` for ``path`` with ``threads`` intra-op threads."""
    try:
        import onnxruntime as ort
    except ImportError as exc:
        raise ImportError(_ORT_MISSING) from exc
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"no ONNX model at {path}; write one with reidbook.export.export_onnx(model, path)")
    opts = ort.SessionOptions()
    if threads is not None:
        opts.intra_op_num_threads = int(threads)
        opts.inter_op_num_threads = 1
    return ort.InferenceSession(str(path), sess_options=opts, providers=["CPUExecutionProvider"])


def onnx_embed(session, images: torch.Tensor | np.ndarray) -> np.ndarray:
    """Embeddings ``[N, D]`` of ``images`` from an onnxruntime session (or an ONNX file path)."""
    if isinstance(session, (str, os.PathLike)):
        session = onnx_session(session)
    x = images.detach().cpu().numpy() if isinstance(images, torch.Tensor) else np.asarray(images)
    return session.run(None, {session.get_inputs()[0].name: x.astype(np.float32)})[0]


def check_parity(model: nn.Module, path: str | os.PathLike, images: torch.Tensor | None = None,
                 input_size=(256, 128), batch_size: int = 4, seed: int = 0, exit: int | None = None,
                 deploy: bool = True) -> dict:
    """Compare PyTorch's and onnxruntime's embeddings of the same ``images`` (default: ``batch_size``
    random images of ``input_size``, fixed by ``seed``) → ``{"max_abs", "mean_abs", "min_cosine",
    "scale", "ok", "tolerance"}``; ``ok`` applies :data:`TOLERANCE` (see the module docstring)."""
    net = deployed_model(model, exit) if deploy else model.eval()
    x = images if images is not None else _example(input_size, batch_size, seed)
    with torch.no_grad():
        ref = net(x.to(next(net.parameters()).device)).float().cpu().numpy()
    got = onnx_embed(onnx_session(path), x)
    if got.shape != ref.shape:
        raise ExportError(f"ONNX model {path} returns {got.shape}, PyTorch {ref.shape}: is it another model's file?")
    diff = np.abs(got - ref)
    cos = (got * ref).sum(1) / np.maximum(np.linalg.norm(got, axis=1) * np.linalg.norm(ref, axis=1), 1e-12)
    scale = float(max(1.0, np.abs(ref).max()))
    out = {"max_abs": float(diff.max()), "mean_abs": float(diff.mean()), "min_cosine": float(cos.min()),
           "scale": scale, "tolerance": dict(TOLERANCE)}
    out["ok"] = bool(out["max_abs"] <= TOLERANCE["max_abs_rel"] * scale
                     and out["min_cosine"] >= TOLERANCE["min_cosine"])
    return out


def onnx_latency(session, input_size=(256, 128), batch_size: int = 1, warmup: int = 3, repeats: int = 10) -> dict:
    """Median onnxruntime CPU latency in milliseconds (same keys as :func:`reidbook.profile.measure_latency`)."""
    if isinstance(session, (str, os.PathLike)):
        session = onnx_session(session)
    x = _example(input_size, batch_size).numpy()
    name = session.get_inputs()[0].name
    for _ in range(warmup):
        session.run(None, {name: x})
    times = []
    for _ in range(repeats):
        t0 = time.perf_counter()
        session.run(None, {name: x})
        times.append((time.perf_counter() - t0) * 1000.0)
    med = statistics.median(times)
    threads = session.get_session_options().intra_op_num_threads
    return {"median_ms": med, "mean_ms": statistics.fmean(times), "min_ms": min(times),
            "per_image_ms": med / batch_size,
            "batch_size": batch_size, "threads": threads, "repeats": repeats, "device": "cpu (onnxruntime)"}


def compare_latency(model: nn.Module, path: str | os.PathLike, input_size=(256, 128), batch_size: int = 1,
                    threads: int = 1, rounds: int = 5, repeats: int = 3, exit: int | None = None,
                    deploy: bool = True) -> dict:
    """PyTorch vs onnxruntime CPU latency of the same deployed model, measured interleaved (round-robin,
    ``rounds`` × ``repeats``) in one run with ``threads`` threads: ``{"torch_ms", "onnx_ms", "speedup",
    "batch_size", "threads"}`` (medians; ``speedup`` = torch / onnx)."""
    net = (deployed_model(model, exit) if deploy else model.eval()).cpu()
    session = onnx_session(path, threads)
    t, o = [], []
    for _ in range(max(1, rounds)):
        t.append(measure_latency(net, input_size, batch_size, threads=threads, warmup=1, repeats=repeats)["median_ms"])
        o.append(onnx_latency(session, input_size, batch_size, warmup=1, repeats=repeats)["median_ms"])
    torch_ms, onnx_ms = statistics.median(t), statistics.median(o)
    return {"torch_ms": torch_ms, "onnx_ms": onnx_ms, "speedup": torch_ms / onnx_ms, "batch_size": batch_size,
            "threads": threads}


# ----------------------------------------------------------------------------------------------
# All of it
# ----------------------------------------------------------------------------------------------
@dataclass
class ShipReport:
    """What :func:`ship` measured for one model."""

    path: str
    input_size: tuple
    params: int  # used at test time (inference_params)
    macs: int
    onnx_bytes: int
    max_abs: float
    min_cosine: float
    parity_ok: bool
    torch_ms: float
    onnx_ms: float
    batch_size: int
    threads: int

    def to_dict(self) -> dict:
        d = asdict(self)
        d["speedup"] = self.torch_ms / self.onnx_ms
        return d


def ship(model: nn.Module, path: str | os.PathLike, input_size=(256, 128), exit: int | None = None,
         batch_size: int = 1, threads: int = 1, rounds: int = 5, repeats: int = 3, strict: bool = True) -> ShipReport:
    """Deploy, export, check parity and time ``model`` → :class:`ShipReport`.

    ``strict``: raise :class:`ExportError` when parity fails the tolerance (else only report it).
    """
    net = deployed_model(model, exit)
    path = export_onnx(net, path, input_size, deploy=False)
    par = check_parity(net, path, input_size=input_size, deploy=False)
    if strict and not par["ok"]:
        raise ExportError(f"ONNX parity failed for {path}: max |diff| {par['max_abs']:.2e} (allowed "
                          f"{TOLERANCE['max_abs_rel'] * par['scale']:.2e}), min cosine {par['min_cosine']:.6f} "
                          f"(allowed ≥ {TOLERANCE['min_cosine']})")
    lat = compare_latency(net, path, input_size, batch_size, threads, rounds, repeats, deploy=False)
    return ShipReport(str(path), tuple(input_size), inference_params(net, input_size), count_macs(net, input_size),
                      Path(path).stat().st_size, par["max_abs"], par["min_cosine"], par["ok"], lat["torch_ms"],
                      lat["onnx_ms"], batch_size, threads)


def export_zoo_model(name: str, path: str | os.PathLike, profile: str = "quick", data: str = "synth", seed: int = 0,
                     exit: int | None = None, device="auto") -> tuple[Path, nn.Module, tuple]:
    """Export the zoo's trained ``name`` (trained now if missing) → ``(path, deployed model, input size)``.

    Unknown names raise a ``KeyError`` listing the models the zoo can train.
    """
    from . import zoo
    from .models import list_models

    if name not in list_models():
        raise KeyError(f"unknown model {name!r}; the zoo trains {', '.join(list_models())} "
                       "(FD students: reidbook.distill.distilled_student; pruned models: reidbook.compare)")
    entry = zoo.get(name, profile, data, seed, device=device)
    size = (entry.preset.height, entry.preset.width)
    net = deployed_model(entry.model, exit)
    return export_onnx(net, path, size, deploy=False), net, size
