"""Pruning **layer by layer by minimising the reconstruction error** of the next layer (paper 003, §3.2.2,
Eq. 24–26; Table 2's ThiNet and Channel Pruning rows).

ThiNet (Luo et al., ICCV 2017, §3) and Channel Pruning (He, Zhang & Sun, ICCV 2017, §3) prune one layer
at a time. For the unit ``u`` (the output channels of a bottleneck's ``conv1`` or ``conv2``) and its consumer
conv ``c`` (the next conv, which reads those channels):

1. sample input patches ``X`` of ``c`` from the **current, already partly pruned** network and the
   outputs ``Y`` of ``c`` in the **original** network at the same positions (He et al. §3.3: reconstructing
   the original outputs keeps errors from accumulating across layers);
2. **select** the channels to keep: ThiNet's greedy removal (Eq. 25) on the per-channel contributions
   ``x̂_c`` (Eq. 24), or Channel Pruning's LASSO on ``β`` (Eq. 26), whose path is solved against the
   original ``Y``; any other criterion may select too (scored on the current network);
3. cut the channels (physically) and **reconstruct** ``c``'s weights by least squares: ThiNet rescales
   each kept input channel (Luo et al. Eq. 6), Channel Pruning refits the whole kernel (He et al. Eq. 1);
4. next unit. At the end an optional fine-tuning (``epochs``).

Every unit keeps the same fraction of its channels, the one that meets the multiply-add target (the
survey's §4 protocol uses a single rate per layer). ``report.iterations`` records, per unit, the relative
reconstruction error ``‖Y − Ŷ‖² / ‖Y‖²`` of plain selection (kept channels, old weights) and after the
least-squares reconstruction, on the same samples — the quantity both papers minimise.
Departure: ThiNet and He et al. fine-tune briefly after every layer (ThiNet) or at the end (He et al.);
we fine-tune once at the end, as the survey's one-rate protocol does.
"""
from __future__ import annotations

import copy

import torch
import torch.nn.functional as F
from torch import nn

from ...profile import count_macs, count_params
from ...utils import progress
from .. import criteria as D
from ..activations import eval_mode, iter_batches
from ..report import StrategyReport
from ..scoring import check_method, score_channels
from ..selection import MacModel, top_channels, uniform_rate_for_target, uniform_widths
from ..surgery import apply_selection, find_units
from .common import C1, check_target, retrain

__all__ = ["prune_layerwise", "RECONSTRUCTIONS", "conv_samples", "lasso_path_scores", "relative_error",
           "reconstruct_weight"]

RECONSTRUCTIONS = ("auto", "scale", "ls", None)


class _Stop(Exception):
    """Raised by a hook once the samples are taken: the rest of the forward pass is not needed."""


@torch.no_grad()
def conv_samples(model: nn.Module, conv_name: str, data, n_positions: int = 1024, max_batches: int | None = 4,
                 seed: int = 0, want_patches: bool = True):
    """Input patches ``[N, C, k·k]`` (or ``None``) and outputs ``[N, O]`` of the conv ``conv_name`` at
    ``n_positions`` random positions. The positions depend only on ``seed`` and the data (not on channel
    counts), so the pruned and the original network are sampled **at the same positions**. The forward
    pass stops at the conv (later layers are not run)."""
    conv = model.get_submodule(conv_name)
    batches = list(iter_batches(data, max_batches))
    if not batches:
        raise ValueError("layer-wise pruning: the data yielded no batches")
    per_batch = max(1, -(-n_positions // len(batches)))
    g = torch.Generator().manual_seed(seed)
    xs, ys = [], []

    def hook(mod, inp, out):
        x = inp[0]
        b, _, h, w = out.shape
        pick = torch.randint(b * h * w, (per_batch,), generator=g)
        bi, li = pick // (h * w), pick % (h * w)
        ys.append(out.flatten(2)[bi.to(x.device), :, li.to(x.device)].float().cpu())
        if want_patches:
            cols = F.unfold(x, mod.kernel_size, mod.dilation, mod.padding, mod.stride)  # [B, C·k·k, L]
            kk = mod.kernel_size[0] * mod.kernel_size[1]
            xs.append(cols[bi.to(x.device), :, li.to(x.device)].reshape(per_batch, -1, kk).float().cpu())
        raise _Stop

    dev = next(model.parameters()).device
    handle = conv.register_forward_hook(hook)
    try:
        with eval_mode(model):
            for images, _ in batches:
                try:
                    model(images.to(dev))
                except _Stop:
                    pass
    finally:
        handle.remove()
    y = torch.cat(ys)[:n_positions]
    return (torch.cat(xs)[:n_positions] if want_patches else None), y


def relative_error(y: torch.Tensor, y_hat: torch.Tensor) -> float:
    """``‖Y − Ŷ‖²_F / ‖Y‖²_F`` (0 = perfect reconstruction)."""
    y, y_hat = y.double(), y_hat.double()
    return float((y - y_hat).pow(2).sum() / y.pow(2).sum().clamp_min(1e-300))


def _predict(patches: torch.Tensor, weight: torch.Tensor, bias) -> torch.Tensor:
    """The conv's output at the sampled positions: ``patches [N, C, kk]`` · ``weight [O, C, k, k]``."""
    w = weight.detach().reshape(weight.shape[0], -1).double()
    out = patches.reshape(patches.shape[0], -1).double() @ w.T
    return out + bias.detach().double() if bias is not None else out


def lasso_path_scores(z: torch.Tensor, y: torch.Tensor, n_lambdas: int = 30, iters: int = 500) -> torch.Tensor:
    """Channel Pruning's LASSO selection (He et al. Eq. 3; survey Eq. 26) against a given target ``y``
    (here the *original* network's output): :func:`reidbook.prune.criteria.data.lasso_path_scores`."""
    return D.lasso_path_scores(z, y, n_lambdas=n_lambdas, iters=iters)


def _select(method: str, net, unit, patches, y_orig, weight, bias, n_keep: int, data, seed: int, n_rows: int,
            max_batches):
    """Kept channel indices of ``unit`` (sorted), by ThiNet, Channel Pruning or another criterion."""
    n, c, kk = patches.shape
    if n_keep >= c:
        return list(range(c))
    g = torch.Generator().manual_seed(seed)
    w = weight.detach().reshape(weight.shape[0], c, kk).to(patches)
    target = y_orig.double() - (bias.detach().double() if bias is not None else 0.0)
    if method == "thinet":  # one random output channel per position (Luo et al. §3.2), Eq. (24)–(25)
        outs = torch.randint(w.shape[0], (n,), generator=g)
        contrib = torch.einsum("nck,nck->nc", patches, w[outs]).double()
        removed = set(D.thinet_greedy(contrib, c - n_keep))
        return [i for i in range(c) if i not in removed]
    if method == "channel_pruning":  # every (position, output) pair, subsampled, Eq. (26)
        z = torch.einsum("nck,ock->noc", patches, w).reshape(-1, c).double()
        t = target.reshape(-1)
        if n_rows < z.shape[0]:
            rows = torch.randperm(z.shape[0], generator=g)[:n_rows]
            z, t = z[rows], t[rows]
        return top_channels(lasso_path_scores(z, t), n_keep)
    scores = score_channels(net, method, [unit], data=data, max_batches=max_batches, seed=seed)[unit.name]
    return top_channels(scores, n_keep)


def reconstruct_weight(kind: str, patches, y_orig, weight, bias, keep, ridge: float) -> torch.Tensor:
    """The consumer's new weight on the kept input channels ``[O, C′, k, k]``, fitted to the *original* outputs.

    ``scale`` — ThiNet's Eq. (6): one factor ``ŵ_c`` per kept input channel,
    ``ŵ = argmin Σ_{i,o} (y_{i,o} − Σ_{c∈S} ŵ_c x̂_{i,o,c})²`` with ``x̂_{i,o,c} = ⟨W_{o,c}, x_{i,c}⟩`` (Eq. 24).
    Departure: Luo et al. fit it on one random output channel per position; we solve the same least squares
    over *all* output channels of the sampled positions, in closed form: with ``P = XᵀX`` (patch second
    moments) and ``Q = WᵀW`` (kernel products), ``(X̂ᵀX̂)_{cc′} = Σ_{k,k′} P_{ck,c′k′}·Q_{ck,c′k′}`` and
    ``(X̂ᵀy)_c = Σ_k (X ⊙ YW)_{ck}`` — no tensor of size positions × outputs × channels is ever built.
    ``ls`` — Channel Pruning's least-squares refit of the whole kernel (He et al. Eq. 1;
    :func:`reidbook.prune.criteria.least_squares_weights`). ``ridge`` (relative to the data) keeps
    both solves stable."""
    w_keep = weight.detach()[:, keep]
    if kind == "ls":
        w = D.least_squares_weights(patches[:, keep], y_orig, bias=bias, ridge=ridge)
        return w.reshape(w_keep.shape).to(weight)
    n, c, kk = patches[:, keep].shape
    x = patches[:, keep].reshape(n, c * kk).double()
    w = w_keep.reshape(w_keep.shape[0], c * kk).double()
    y = y_orig.double() - (bias.detach().double() if bias is not None else 0.0)
    a = ((x.T @ x) * (w.T @ w)).reshape(c, kk, c, kk).sum(dim=(1, 3))
    b = (x * (y @ w)).sum(dim=0).reshape(c, kk).sum(dim=1)
    a = a + ridge * a.diagonal().mean().clamp_min(1e-12) * torch.eye(c, dtype=torch.float64)
    scale = torch.linalg.solve(a, b)
    return (w_keep * scale.to(weight).view(1, -1, 1, 1)).to(weight)


def prune_layerwise(model: nn.Module, method: str = "thinet", target_macs: float = C1, data=None, dataset=None,
                    preset=None, epochs: int = 0, reconstruction: str | None = "auto", input_size=(256, 128),
                    n_positions: int = 1024, n_rows: int = 4000, max_batches: int | None = 4, ridge: float = 1e-4,
                    lr_scale: float = 0.1, device="auto", seed: int = 0, max_iters_per_epoch: int | None = None,
                    min_channels: int = 1) -> tuple[nn.Module, StrategyReport]:
    """Prune ``model`` unit by unit to ``target_macs``, reconstructing each next layer (see the module docstring).

    ``method``: ``"thinet"`` (greedy, Eq. 25), ``"channel_pruning"`` (LASSO, Eq. 26) or any criterion of
    :data:`reidbook.prune.METHODS` that scores a single conv's channels (selection on the current network).
    ``reconstruction``: ``"auto"`` (ThiNet → per-channel ``"scale"``, otherwise full ``"ls"``), ``"scale"``,
    ``"ls"``, or ``None`` (plain selection, for comparison). A unit whose samples hold fewer than 4 distinct
    patches per unknown of the full refit (deep layers with little calibration data) falls back to ``"scale"``
    (recorded per unit): a least-squares kernel fitted on too few positions reconstructs them and nothing else.
    ``ridge`` is relative to the data (the ``scale`` solve uses ``ridge/100``). ``data``: calibration images or
    ``(images, pids)`` batches (:func:`reidbook.prune.activations.calibration_batches`). ``epochs`` of
    fine-tuning at the end need ``dataset`` and ``preset``. Scope: the bottleneck units (a unit's single
    consumer is the conv whose output is reconstructed). The input model is untouched.
    """
    target = check_target(target_macs)
    check_method(method)
    if reconstruction not in RECONSTRUCTIONS:
        raise ValueError(f"reconstruction must be one of {RECONSTRUCTIONS}, got {reconstruction!r}")
    if data is None:
        raise ValueError("layer-wise reconstruction samples the layers' inputs and outputs: pass data= "
                         "(calibration images, e.g. reidbook.prune.activations.calibration_batches(ds.train, H, W))")
    kind = ("scale" if method == "thinet" else "ls") if reconstruction == "auto" else reconstruction
    original = copy.deepcopy(model).eval()
    net = copy.deepcopy(model).eval()
    units = find_units(net, "bottleneck")
    mm = MacModel(net, units, input_size)
    widths = uniform_widths(units, uniform_rate_for_target(mm, units, target, min_channels), min_channels)
    base_params = count_params(net)
    records: list[dict] = []
    for i, u in enumerate(progress(units, desc=f"layer-wise {method}")):
        if widths[u.name] >= u.channels:
            continue
        cname = u.consumers[0]
        s = seed + 7919 * i  # same positions in both networks, different ones per unit
        patches, _ = conv_samples(net, cname, data, n_positions, max_batches, s)
        _, y_orig = conv_samples(original, cname, data, n_positions, max_batches, s, want_patches=False)
        consumer = net.get_submodule(cname)
        weight, bias = consumer.weight.detach().clone(), consumer.bias
        keep = _select(method, net, u, patches, y_orig, weight, bias, widths[u.name], data, s, n_rows, max_batches)
        err_plain = relative_error(y_orig, _predict(patches[:, keep], weight[:, keep], bias))
        apply_selection(net, [u], {u.name: keep}, engine="hand")
        rec = {"unit": u.name, "kept": len(keep), "channels": u.channels, "err_plain": err_plain}
        if kind is not None:
            how = kind
            distinct = torch.unique(patches[:, keep].flatten(1), dim=0).shape[0]
            if kind == "ls" and distinct < 4 * len(keep) * patches.shape[2]:
                how = "scale"  # too few distinct samples to refit a whole kernel without over-fitting them
            new_w = reconstruct_weight(how, patches, y_orig, weight, bias, keep, ridge if how == "ls" else ridge * 1e-2)
            with torch.no_grad():
                net.get_submodule(cname).weight.copy_(new_w)
            rec["reconstruction"] = how
            rec["err_recon"] = relative_error(y_orig, _predict(patches[:, keep], new_w, bias))
        records.append(rec)
    loss = retrain(net, dataset, preset, epochs, lr_scale, device, seed, max_iters_per_epoch)
    if epochs > 0 and loss is not None:
        records.append({"unit": "fine-tune", "loss": loss})
    net.eval()
    name = method if method in ("thinet", "channel_pruning") else f"{method}+{kind or 'none'}"
    return net, StrategyReport(method=name, input_size=tuple(input_size), params_before=base_params,
                               params_after=count_params(net), macs_before=mm.base,
                               macs_after=count_macs(net, input_size),
                               strategy="layerwise", target_macs=target, iterations=records)
