"""Channel-pruning criteria computed from **data**: feature maps, gradients, outputs (survey §3.2.2–3.2.3).

Masson et al. (paper 003), Table 2: ThiNet and Channel Pruning minimise the next layer's
reconstruction error; Entropy and Taylor score feature maps; NISP propagates importance back from
the final response. Each function is pure: it takes the statistics that
:mod:`reidbook.prune.activations` collects (patches, pooled activations, activation×gradient) and
returns one score per channel, **higher = kept longer**, or the reconstruction the method prescribes.
"""
from __future__ import annotations

import numpy as np
import torch
from torch import nn

__all__ = [
    "channel_contributions", "thinet_greedy", "thinet_scores", "thinet_scales",
    "lasso_fista", "channel_pruning_scores", "least_squares_weights",
    "entropy_scores", "taylor_scores", "nisp_final_scores", "nisp_propagate", "nisp_resnet",
]


# ---------------------------------------------------------------------------------------------
# Shared by ThiNet and Channel Pruning: each input channel's contribution to an output value
# ---------------------------------------------------------------------------------------------
def channel_contributions(patches: torch.Tensor, weight: torch.Tensor, n_rows: int | None = None,
                          one_output_per_position: bool = False, seed: int = 0) -> torch.Tensor:
    """Survey Eq. (24): an output value of the next conv is a sum over its input channels,

        y = Σ_{c=1}^{C} Σ_{k1,k2} W_{c,k1,k2} · x_{c,k1,k2}  =  Σ_c x̂_c

    Returns the matrix ``X̂ [rows, C]`` of per-channel contributions ``x̂_c`` for sampled (position,
    output channel) pairs (``patches [N, C, k·k]`` from :func:`~reidbook.prune.activations.collect_conv_samples`,
    ``weight [O, C, k, k]`` of the consumer conv). ThiNet draws one random output channel per position
    (``one_output_per_position=True``, Luo et al. §3.2); Channel Pruning uses every output channel
    (He et al. Eq. 1), subsampled to ``n_rows`` rows when given. Seeded, hence deterministic.
    """
    n, c, kk = patches.shape
    w = weight.detach().reshape(weight.shape[0], c, kk).to(patches)
    g = torch.Generator().manual_seed(seed)
    if one_output_per_position:
        outs = torch.randint(w.shape[0], (n,), generator=g)
        return torch.einsum("nck,nck->nc", patches, w[outs]).double()
    full = torch.einsum("nck,ock->noc", patches, w).reshape(-1, c)
    if n_rows is not None and n_rows < full.shape[0]:
        full = full[torch.randperm(full.shape[0], generator=g)[:n_rows]]
    return full.double()


# ---------------------------------------------------------------------------------------------
# ThiNet (Luo et al., ICCV 2017 [71]; survey Eq. 24–25)
# ---------------------------------------------------------------------------------------------
def thinet_greedy(contrib: torch.Tensor, n_remove: int) -> list[int]:
    """ThiNet's greedy channel selection (Luo et al. Alg. 1; survey Eq. 25).

    Builds the removed set ``T`` one channel at a time, each time adding the channel that keeps
    ``Σ_i (Σ_{j∈T} x̂_{i,j})²`` smallest, i.e. whose removal changes the next layer's output least.
    (The survey's Eq. 25, "Σ_i x̂²_{i,j}", shows only the inner square; we use ThiNet's objective.)
    Returns the removed channels in the order they were chosen.
    """
    x = contrib.double()
    n_ch = x.shape[1]
    if not 0 <= n_remove <= n_ch:
        raise ValueError(f"n_remove must be in [0, {n_ch}], got {n_remove}")
    s = torch.zeros(x.shape[0], dtype=torch.float64)
    col_sq = x.pow(2).sum(dim=0)
    left = torch.ones(n_ch, dtype=torch.bool)
    removed: list[int] = []
    for _ in range(n_remove):
        cost = 2.0 * (s @ x) + col_sq  # ‖s + x̂_c‖² − ‖s‖² for every candidate c
        cost[~left] = float("inf")
        c = int(torch.argmin(cost))
        removed.append(c)
        left[c] = False
        s = s + x[:, c]
    return removed


def thinet_scores(contrib: torch.Tensor) -> torch.Tensor:
    """Scores from ThiNet's full greedy order: the first channel removed scores 0, the last C−1.

    Keeping the top-k by score is exactly ThiNet's selection at any ratio (the greedy order does not
    depend on how many channels will be removed)."""
    order = thinet_greedy(contrib, contrib.shape[1])
    scores = torch.empty(contrib.shape[1], dtype=torch.float64)
    scores[torch.tensor(order)] = torch.arange(len(order), dtype=torch.float64)
    return scores


def thinet_scales(contrib: torch.Tensor, keep, ridge: float = 1e-6) -> torch.Tensor:
    """ThiNet's least-squares rescaling (Luo et al. Eq. 6): ``ŵ = argmin_w Σ_i (ŷ_i − wᵀ x̂_{i,S})²``,
    where ``ŷ = Σ_c x̂_c`` is the unpruned output and ``S`` the kept channels. Multiply the consumer's
    input-channel slices by ``ŵ`` to recover the output the removed channels contributed to."""
    x = contrib.double()
    keep = torch.as_tensor(keep, dtype=torch.long)
    y = x.sum(dim=1)
    xs = x[:, keep]
    a = xs.T @ xs + ridge * torch.eye(len(keep), dtype=torch.float64) * xs.pow(2).mean().clamp_min(1e-12)
    return torch.linalg.solve(a, xs.T @ y)


# ---------------------------------------------------------------------------------------------
# Channel Pruning (He, Zhang, Sun, ICCV 2017 [35]; survey Eq. 26)
# ---------------------------------------------------------------------------------------------
def lasso_fista(gram: torch.Tensor, corr: torch.Tensor, lams, iters: int = 500, tol: float = 1e-6) -> torch.Tensor:
    """Solve ``argmin_β 1/(2N)‖y − Zβ‖² + λ‖β‖₁`` for every λ in ``lams`` at once, by FISTA
    (Beck & Teboulle 2009) on ``G = ZᵀZ/N`` and ``r = Zᵀy/N`` → ``β [C, len(lams)]``:

        β ← soft(v − (G v − r)/L, λ/L),   L = largest eigenvalue of G,  v = the momentum point

    The soft-threshold ``soft(u, t) = sign(u)·max(|u| − t, 0)`` sets coefficients exactly to zero,
    which is how the LASSO *selects* channels. (He et al. use a generic LASSO solver; any solver of the
    same convex problem gives the same β.) NumPy, one column per λ: these problems are small (C×C).
    """
    g = gram.double().cpu().numpy()
    r = corr.double().cpu().numpy()[:, None]
    lam = np.atleast_1d(np.asarray(lams, dtype=np.float64))[None, :]
    lip = max(float(np.linalg.eigvalsh(g).max()), 1e-300)
    b = np.zeros((g.shape[0], lam.shape[1]))
    v, t, thr = b.copy(), 1.0, lam / lip
    for it in range(iters):
        u = v - (g @ v - r) / lip
        new = np.sign(u) * np.maximum(np.abs(u) - thr, 0.0)
        t_new = 0.5 * (1.0 + (1.0 + 4.0 * t * t) ** 0.5)
        v = new + ((t - 1.0) / t_new) * (new - b)
        done = it % 5 == 4 and np.abs(new - b).max() <= tol * max(np.abs(new).max(), 1e-12)
        b, t = new, t_new
        if done:
            break
    return torch.from_numpy(b)


def channel_pruning_scores(contrib: torch.Tensor, n_lambdas: int = 30, iters: int = 500) -> torch.Tensor:
    """Channel Pruning's LASSO selection (survey Eq. 26; He et al. 2017 Eq. 1–3), along the λ path.

        argmin_β 1/(2N) ‖Y − Σ_j β_j X_j W_jᵀ‖²_F + λ‖β‖₁    s.t. ‖β‖₀ ≤ n′

    With W fixed, ``X_j W_jᵀ`` is channel j's contribution (:func:`channel_contributions`), so this is a
    LASSO on ``β``. He et al. increase λ until at most ``n′`` coefficients are non-zero. We solve the
    path once (``n_lambdas`` values from ``λ_max = max|Zᵀy|/N``, where β = 0, down to 10⁻⁴·λ_max) and
    score each channel by the **largest λ at which it is still selected**; keeping the top ``n′``
    scores is then the selection at the λ where ``‖β‖₀`` first drops to ``n′``. Ties (channels leaving
    at the same grid step) are broken by ``|β|`` at that step; never-selected channels by ``|β|`` = 0.
    """
    z = contrib.double()
    return lasso_path_scores(z, z.sum(dim=1), n_lambdas=n_lambdas, iters=iters)


def lasso_path_scores(z: torch.Tensor, y: torch.Tensor, n_lambdas: int = 30, iters: int = 500) -> torch.Tensor:
    """The λ-path LASSO score of :func:`channel_pruning_scores` against any target ``y``:
    ``argmin_β 1/(2N)‖y − Zβ‖² + λ‖β‖₁``; a channel scores the largest λ at which it is still selected.
    Channel Pruning's target is the current output ``Σ_c z_c``; the reconstruction strategy passes the
    *original* network's output (:mod:`reidbook.prune.strategies.reconstruction`)."""
    z, y = z.double(), y.double()
    n = z.shape[0]
    gram, corr = z.T @ z / n, z.T @ y / n
    lam_max = float(corr.abs().max())
    if lam_max == 0.0:
        return torch.zeros(z.shape[1], dtype=torch.float64)
    lams = lam_max * torch.logspace(0, -4, n_lambdas, dtype=torch.float64)
    betas = lasso_fista(gram, corr, lams, iters=iters)  # [C, n_lambdas], λ decreasing
    scores = torch.zeros(z.shape[1], dtype=torch.float64)
    for i in range(n_lambdas):
        beta = betas[:, i]
        active = (beta != 0) & (scores == 0)
        # higher λ first (small i); within a step, larger |β| first (tie-break in [0, 0.5]).
        scores[active] = (n_lambdas - i) + beta[active].abs() / beta.abs().max().clamp_min(1e-300) * 0.5
    return scores


def least_squares_weights(patches: torch.Tensor, outputs: torch.Tensor, bias: torch.Tensor | None = None,
                          ridge: float = 1e-4) -> torch.Tensor:
    """Channel Pruning's second step (He et al. Eq. 1, with β absorbed): refit the consumer's weights on
    the kept input channels by (ridge-regularised) least squares, ``W′ = argmin ‖Y − X′W′ᵀ‖²_F``.

    ``patches [N, C′, k·k]`` are the kept channels' input patches, ``outputs [N, O]`` the *unpruned*
    consumer outputs. Returns ``W′ [O, C′·k·k]`` (reshape to the conv's kernel). The ridge term, scaled
    to the data, keeps the solve stable when N is not much larger than C′·k·k.
    """
    x = patches.reshape(patches.shape[0], -1).double()
    y = outputs.double() - (bias.double() if bias is not None else 0.0)
    a = x.T @ x
    a = a + ridge * a.diagonal().mean().clamp_min(1e-12) * torch.eye(a.shape[0], dtype=torch.float64)
    return torch.linalg.solve(a, x.T @ y).T


# ---------------------------------------------------------------------------------------------
# Entropy (Luo & Wu 2017 [34]; survey Eq. 27, Alg. 7)
# ---------------------------------------------------------------------------------------------
def entropy_scores(pooled: torch.Tensor, bins: int = 32) -> torch.Tensor:
    """Eq. (27): ``E_j = −Σ_{a=1}^{m} p_a log p_a`` of channel j's globally average-pooled activations.

    ``pooled [N, C]`` holds one pooled value per image and channel (Alg. 7, line 7); each channel's
    values are divided into ``m = bins`` equal bins over the channel's own range and ``p_a`` is the
    share of images in bin a. A channel whose response never changes (a dead channel) has entropy 0:
    it carries no information about the input and is pruned first.
    """
    if pooled.dim() != 2 or pooled.shape[0] < 2:
        raise ValueError(f"entropy needs pooled activations [N≥2, C], got {tuple(pooled.shape)}")
    x = pooled.double()
    lo, hi = x.min(dim=0).values, x.max(dim=0).values
    span = (hi - lo)
    idx = ((x - lo) / span.clamp_min(1e-12) * bins).floor().clamp(0, bins - 1).long()
    idx[:, span <= 1e-12 * (1 + hi.abs())] = 0
    counts = torch.zeros(bins, x.shape[1], dtype=torch.float64).scatter_add_(0, idx, torch.ones_like(x))
    p = counts / x.shape[0]
    return -(p * torch.log(p.clamp_min(1e-300))).sum(dim=0)


# ---------------------------------------------------------------------------------------------
# Taylor (Molchanov et al., ICLR 2017 [32]; survey Eq. 28–29, Alg. 8)
# ---------------------------------------------------------------------------------------------
def taylor_scores(raw: torch.Tensor) -> torch.Tensor:
    """Eq. (29) and the layer-wise ℓ2 normalisation: ``Θ̂_j = Θ_j / ‖Θ‖₂``.

    ``raw`` is ``|ΔC(H_j)| ≈ |∂C/∂H_j · H_j|`` per channel, averaged over the data (first-order Taylor
    expansion of Eq. 28, :func:`~reidbook.prune.activations.collect_taylor`). Normalising per layer
    makes scores of different layers comparable, because Taylor ranks channels **across** layers.
    """
    raw = raw.double()
    return raw / raw.norm().clamp_min(1e-300)


# ---------------------------------------------------------------------------------------------
# NISP (Yu et al., CVPR 2018 [72]; survey Eq. 30)
# ---------------------------------------------------------------------------------------------
def nisp_final_scores(pooled: torch.Tensor | None, dim: int | None = None) -> torch.Tensor:
    """Importance of the final response layer (the embedding), from which NISP starts.

    NISP ranks the final responses with Inf-FS (Roffo et al. 2015). We use a simpler, documented
    stand-in: each embedding dimension's standard deviation over the data, normalised to sum 1 — a
    dimension that never varies cannot tell identities apart. Without data, all dimensions are equal.
    """
    if pooled is None:
        if dim is None:
            raise ValueError("nisp_final_scores needs pooled features or dim")
        return torch.full((dim,), 1.0 / dim, dtype=torch.float64)
    s = pooled.double().std(dim=0)
    return s / s.sum().clamp_min(1e-300)


def _bn_scale(bn: nn.BatchNorm2d | None) -> torch.Tensor | None:
    if bn is None:
        return None
    return (bn.weight.detach() / torch.sqrt(bn.running_var + bn.eps)).abs().double()


def nisp_propagate(conv: nn.Conv2d, s_out: torch.Tensor, bn: nn.BatchNorm2d | None = None) -> torch.Tensor:
    """Eq. (30): ``s_in[c] = Σ_o |W_{o,c}| · s_out[o]`` (summed over the kernel too), one layer back.

    Departure: NISP treats every layer as ``y = Wx``; in a BN network the BN after a conv rescales each
    output channel by ``γ/σ``, so we fold ``|γ/σ|`` into ``|W|`` — otherwise the conv weights' scale, which
    BN makes arbitrary, would decide the ranking. ReLUs are ignored, as in NISP's bound.
    """
    w = conv.weight.detach().abs().double().sum(dim=(2, 3))  # [O, C]
    s = s_out.double()
    scale = _bn_scale(bn)
    if scale is not None:
        s = s * scale
    return w.T @ s


def _blocks(stage: nn.Module) -> list[tuple[str, nn.Module]]:
    return [(n, m) for n, m in stage.named_children()]


def nisp_resnet(resnet: nn.Module, final: torch.Tensor, prefix: str = "") -> dict[str, torch.Tensor]:
    """Propagate final-response importance ``final [C_out]`` back through a ResNet (``layer4`` … ``layer1``).

    Returns ``{qualified conv name: importance of its output channels}`` for every conv1/conv2 (/conv3)
    of every block, plus ``"<prefix>conv1"`` (the stem). Through a block the residual sum adds the
    importance of the identity (or downsample) path to that of the main path. Scores are renormalised
    to sum 1 at every block input (a rescaling per layer, so no ranking changes) to avoid overflow.
    """
    s = final.double()
    out: dict[str, torch.Tensor] = {}
    for lname in ("layer4", "layer3", "layer2", "layer1"):
        stage = getattr(resnet, lname)
        for bname, block in reversed(_blocks(stage)):
            p = f"{prefix}{lname}.{bname}."
            s_out = s
            if hasattr(block, "conv3"):  # Bottleneck
                out[p + "conv3"] = s_out
                s2 = nisp_propagate(block.conv3, s_out, block.bn3)
                out[p + "conv2"] = s2
                s1 = nisp_propagate(block.conv2, s2, block.bn2)
            else:  # BasicBlock
                out[p + "conv2"] = s_out
                s1 = nisp_propagate(block.conv2, s_out, block.bn2)
            out[p + "conv1"] = s1
            s_main = nisp_propagate(block.conv1, s1, block.bn1)
            if block.downsample is not None:
                out[p + "downsample.0"] = s_out
                s_id = nisp_propagate(block.downsample[0], s_out, block.downsample[1])
            else:
                s_id = s_out
            s = s_main + s_id
            s = s / s.sum().clamp_min(1e-300)
    out[prefix + "conv1"] = s
    return out
