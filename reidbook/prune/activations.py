"""Collecting what the data-driven criteria need, with forward/backward hooks (survey §3.2.2–3.2.3).

* :func:`collect_pooled` — globally average-pooled activations ``[N, C]`` of chosen layers (Entropy, NISP).
* :func:`collect_taylor` — Molchanov et al.'s per-channel ``|mean(activation × gradient)|`` (Taylor).
* :func:`collect_conv_samples` — input patches and outputs of a *consumer* conv at random positions
  (ThiNet and Channel Pruning reconstruct the next layer's output from them).

Activations are read at a conv's **BatchNorm output** ``z`` and passed through ReLU here: torchvision's
blocks reuse one ``ReLU`` module three times, so it cannot be hooked per position. For Taylor the
product is the same: ``relu(z)·∂C/∂relu(z) = z·∂C/∂z`` wherever ``z > 0`` and 0 elsewhere.

``data`` is an image tensor ``[N, 3, H, W]``, or an iterable of batches that are tensors or tuples
``(images, pids, ...)`` (a ``DataLoader`` over :class:`reidbook.data.ImageDataset`). Everything runs
in ``eval()`` mode (BN uses its running statistics and is never updated); the model's mode is restored.
"""
from __future__ import annotations

import contextlib
from typing import Callable, Iterable, Iterator

import torch
import torch.nn.functional as F
from torch import nn

from ..utils import progress

__all__ = ["calibration_batches", "iter_batches", "collect_pooled", "collect_taylor", "collect_conv_samples",
           "classification_loss",
           "frozen_bn_train_mode", "eval_mode"]


def calibration_batches(items, height: int, width: int, n_images: int = 128, batch_size: int = 32,
                        seed: int = 0) -> list[tuple[torch.Tensor, torch.Tensor]]:
    """A fixed, seeded sample of ``n_images`` training images as ``[(images, pids), ...]`` batches.

    ``items`` is a split of a :class:`reidbook.data.ReIDDataset` (``ds.train``); images get the test
    transform (no augmentation), so data-driven scores are deterministic given ``seed``.
    """
    from ..data import ImageDataset, build_transforms

    if not items:
        raise ValueError("calibration_batches: the split is empty")
    g = torch.Generator().manual_seed(seed)
    pick = torch.randperm(len(items), generator=g)[:n_images].tolist()
    ds = ImageDataset([items[i] for i in pick], build_transforms(height, width, is_train=False))
    out = []
    for start in range(0, len(ds), batch_size):
        rows = [ds[i] for i in range(start, min(start + batch_size, len(ds)))]
        out.append((torch.stack([r[0] for r in rows]), torch.tensor([int(r[1]) for r in rows])))
    return out


def iter_batches(data, max_batches: int | None = None,
                 batch_size: int = 32) -> Iterator[tuple[torch.Tensor, torch.Tensor | None]]:
    """Yield ``(images, pids or None)`` from a tensor or an iterable of batches, at most ``max_batches``."""
    if data is None:
        raise ValueError("this criterion needs data: pass data= an image tensor [N,3,H,W] or a DataLoader")
    if isinstance(data, torch.Tensor):
        batches: Iterable = (data[i:i + batch_size] for i in range(0, len(data), batch_size))
    else:
        batches = data
    for i, batch in enumerate(batches):
        if max_batches is not None and i >= max_batches:
            break
        if isinstance(batch, torch.Tensor):
            yield batch, None
        elif isinstance(batch, (tuple, list)) and batch and isinstance(batch[0], torch.Tensor):
            pids = batch[1] if len(batch) > 1 and isinstance(batch[1], torch.Tensor) else None
            yield batch[0], pids
        else:
            raise TypeError(f"cannot read batch {i}: expected a tensor or (images, pids, ...), "
                            f"got {type(batch).__name__}")


def _device(model: nn.Module) -> torch.device:
    try:
        return next(model.parameters()).device
    except StopIteration:
        return torch.device("cpu")


@contextlib.contextmanager
def eval_mode(model: nn.Module):
    """``model.eval()`` inside the block; the model's previous mode is restored after it."""
    was = model.training
    model.train(False)
    try:
        yield
    finally:
        model.train(was)


@contextlib.contextmanager
def frozen_bn_train_mode(model: nn.Module):
    """``model.train()`` (so it returns its training outputs, e.g. logits) with every BatchNorm in eval
    mode: running statistics are used and not updated, so collecting gradients changes nothing."""
    was = model.training
    model.train()
    bns = [m for m in model.modules() if isinstance(m, nn.modules.batchnorm._BatchNorm)]
    for m in bns:
        m.eval()
    try:
        yield
    finally:
        model.train(was)


def classification_loss(model: nn.Module, images: torch.Tensor, pids: torch.Tensor | None) -> torch.Tensor:
    """The default cost ``C`` for Taylor: cross-entropy of the model's training logits (summed over
    branches when ``"logits"`` holds a list), called with BN frozen (see :func:`frozen_bn_train_mode`)."""
    if pids is None:
        raise ValueError("Taylor's default loss needs identity labels: give data as (images, pids, ...) batches "
                         "or pass loss_fn=callable(model, images, pids) -> scalar")
    out = model(images)
    if not isinstance(out, dict) or "logits" not in out:
        raise ValueError("Taylor's default loss needs a model whose train() output is a dict with 'logits'; "
                         f"got {type(out).__name__}. Pass loss_fn=callable(model, images, pids) -> scalar")
    logits = out["logits"] if isinstance(out["logits"], (list, tuple)) else [out["logits"]]
    return sum(F.cross_entropy(lg, pids.to(lg.device)) for lg in logits)


@torch.no_grad()
def collect_pooled(model: nn.Module, modules: dict[str, nn.Module], data, max_batches: int | None = None,
                   relu: bool = True) -> dict[str, torch.Tensor]:
    """Global-average-pooled outputs of ``modules`` (name → module), ``relu`` applied first → ``{name: [N, C]}``."""
    dev = _device(model)
    store: dict[str, list[torch.Tensor]] = {n: [] for n in modules}

    def hook(name):
        def fn(mod, inp, out):
            out = F.relu(out) if relu else out
            x = out.detach().float()
            store[name].append(x.mean(dim=(2, 3)).cpu() if x.dim() == 4 else x.cpu())
        return fn

    handles = [m.register_forward_hook(hook(n)) for n, m in modules.items()]
    try:
        with eval_mode(model):
            for images, _ in progress(iter_batches(data, max_batches), desc="activations"):
                model(images.to(dev))
    finally:
        for h in handles:
            h.remove()
    return {n: torch.cat(v) for n, v in store.items()}


def collect_taylor(model: nn.Module, modules: dict[str, nn.Module], data, loss_fn: Callable | None = None,
                   max_batches: int | None = None) -> dict[str, torch.Tensor]:
    """Taylor criterion statistics (Molchanov et al., ICLR 2017; survey Eq. 29) before normalisation:

        Θ(z_c) = | (1/M) Σ_m z_{c,m} · ∂C/∂z_{c,m} |   per example, averaged over the examples

    where ``m`` runs over the ``M`` spatial positions of channel ``c`` (Molchanov's Eq. 8: the mean over
    positions is taken *inside* the absolute value, per example). Returns ``{name: [C]}``.
    """
    loss_fn = loss_fn or classification_loss
    dev = _device(model)
    sums: dict[str, torch.Tensor] = {}
    count = 0
    acts: dict[str, torch.Tensor] = {}

    def hook(name):
        def fn(mod, inp, out):
            if out.requires_grad:
                out.retain_grad()
            acts[name] = out
        return fn

    handles = [m.register_forward_hook(hook(n)) for n, m in modules.items()]
    try:
        with frozen_bn_train_mode(model), torch.enable_grad():
            for images, pids in progress(iter_batches(data, max_batches), desc="taylor"):
                acts.clear()
                model.zero_grad(set_to_none=True)
                loss = loss_fn(model, images.to(dev), pids)
                loss.backward()
                for name, z in acts.items():
                    if z.grad is None:
                        raise RuntimeError(f"no gradient reached layer {name}: is it used by the loss?")
                    theta = (z.detach() * z.grad).mean(dim=(2, 3)).abs().sum(dim=0).double().cpu()
                    sums[name] = sums.get(name, 0) + theta
                count += images.shape[0]
    finally:
        for h in handles:
            h.remove()
        model.zero_grad(set_to_none=True)
    if count == 0:
        raise ValueError("Taylor: the data yielded no batches")
    return {n: s / count for n, s in sums.items()}


@torch.no_grad()
def collect_conv_samples(model: nn.Module, convs: dict[str, nn.Conv2d], data, n_positions: int = 1024,
                         max_batches: int | None = None, seed: int = 0) -> dict[str, tuple[torch.Tensor, torch.Tensor]]:
    """Input patches and outputs of each conv at ``n_positions`` random output positions (seeded).

    Returns ``{name: (patches [N, C_in, k·k], outputs [N, C_out])}`` with ``outputs[n] = W ⊛ patches[n]``
    (+ bias): the "x" and "y" of ThiNet (Luo et al. 2017, §3.2) and Channel Pruning (He et al. 2017, Eq. 1).
    Positions are drawn uniformly over (image, row, column) of every batch, the same number per batch.
    """
    dev = _device(model)
    batches = list(iter_batches(data, max_batches))
    if not batches:
        raise ValueError("collect_conv_samples: the data yielded no batches")
    per_batch = max(1, -(-n_positions // len(batches)))
    g = torch.Generator().manual_seed(seed)
    store: dict[str, list[tuple[torch.Tensor, torch.Tensor]]] = {n: [] for n in convs}

    def hook(name):
        def fn(conv, inp, out):
            x = inp[0]
            cols = F.unfold(x, conv.kernel_size, conv.dilation, conv.padding, conv.stride)  # [B, C·k·k, L]
            b, _, length = cols.shape
            pick = torch.randint(b * length, (per_batch,), generator=g)
            bi, li = pick // length, pick % length
            patches = cols[bi.to(x.device), :, li.to(x.device)]  # [P, C·k·k]
            ys = out.flatten(2)[bi.to(x.device), :, li.to(x.device)]  # [P, C_out]
            kk = conv.kernel_size[0] * conv.kernel_size[1]
            store[name].append((patches.reshape(per_batch, -1, kk).float().cpu(), ys.float().cpu()))
        return fn

    handles = [m.register_forward_hook(hook(n)) for n, m in convs.items()]
    try:
        with eval_mode(model):
            for images, _ in progress(batches, desc="samples"):
                model(images.to(dev))
    finally:
        for h in handles:
            h.remove()
    return {n: (torch.cat([p for p, _ in v])[:n_positions], torch.cat([y for _, y in v])[:n_positions])
            for n, v in store.items()}
