"""Does pruning half the multiply-adds halve the CPU latency? (paper 003, chapter 05)

A ResNet-50 re-ID backbone (torchvision layout, width 1, last stride 1 as in re-ID baselines unless
``--last-stride 2``) at 256×128 is pruned with L1 (Li et al.) in the default scope — conv1/conv2 of
every bottleneck — to about 50 % of its multiply-adds. Parameters, multiply-adds and measured CPU
latency of the original and the pruned model are measured **side by side in one run**
(``reidbook.profile.cost_table`` interleaves the models so machine load hits both alike), at
batch 1 and batch 32.

Goal (issue 7): latency ratio ≤ 0.75 at batch 1 and ≤ 0.6 at batch 32. Why not 0.5: see the
explanation printed at the end, computed from this run's numbers.

    .venv/bin/python benchmarks/bench_prune_latency.py [--threads 2] [--repeats 9] [--scope bottleneck]

On a machine shared with other jobs, oversubscribed intra-op threads spin and wait on each other and
batch-1 timings explode; ``--threads 1`` then gives the stable, comparable numbers.
"""
from __future__ import annotations

import argparse
import os
import sys

import torch

sys.path.insert(0, os.path.join(os.path.dirname(__file__), ".."))

from reidbook.models.backbones import resnet50  # noqa: E402
from reidbook.profile import cost_table  # noqa: E402
from reidbook.prune import MacModel, find_units, prune  # noqa: E402


def _share_of_pruned_macs(model, units, size) -> float:
    """Fraction of the conv multiply-adds spent in convs whose width the scope changes."""
    mm = MacModel(model, units, size)
    total = sum(cin * cout * per for cin, cout, per, _, _ in mm.convs.values())
    hit = sum(cin * cout * per for cin, cout, per, iu, ou in mm.convs.values() if iu or ou)
    return hit / total


def main(argv=None) -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--threads", type=int, default=None, help="torch threads (default: torch's, = cores)")
    ap.add_argument("--repeats", type=int, default=9)
    ap.add_argument("--target", type=float, default=0.5, help="fraction of multiply-adds to keep")
    ap.add_argument("--scope", default="bottleneck", choices=["bottleneck", "bottleneck+residual"])
    ap.add_argument("--last-stride", type=int, default=2, choices=[1, 2])
    ap.add_argument("--batches", default="1,32")
    ap.add_argument("--round-to", type=int, default=8,
                    help="round kept widths up to a multiple (1 = exact uniform ratio); the table shows both")
    args = ap.parse_args(argv)
    torch.manual_seed(0)
    size = (256, 128)
    batch_sizes = tuple(int(b) for b in args.batches.split(","))
    net = resnet50(width=1.0, last_stride=args.last_stride).eval()
    small, rep = prune(net, "l1", target_macs=args.target, input_size=size, scope=args.scope)
    print(rep.summary())
    models = {"resnet50": net, f"l1@{args.target:g}": small}
    if args.round_to > 1:
        small8, rep8 = prune(net, "l1", target_macs=args.target, input_size=size, scope=args.scope,
                             round_to=args.round_to)
        print(rep8.summary(), f"[widths multiples of {args.round_to}]")
        models[f"l1@{args.target:g}/r{args.round_to}"] = small8
    print(f"channels removed in scope: {rep.channel_ratio:.3f}; per-unit kept fraction "
          f"{min(rep.table()['kept']):.3f}–{max(rep.table()['kept']):.3f}")
    share = _share_of_pruned_macs(net, find_units(net, args.scope), size)
    df = cost_table(models, size, batch_sizes,
                    threads=args.threads, repeats=args.repeats)
    print(f"\nthreads={df.attrs['threads']}, input {size[0]}×{size[1]}, median of interleaved runs")
    print(df.round(3).to_string())
    for row in range(1, len(df)):
        ratios = df.iloc[row] / df.iloc[0]
        print(f"\n{df.index[row]} / original:")
        for col, r in ratios.items():
            goal = {"latency_ms_b1": 0.75, "latency_ms_b32": 0.6}.get(col)
            tag = f"  (goal ≤ {goal}: {'met' if r <= goal else 'NOT met'})" if goal else ""
            print(f"  {col:16s} {r:.3f}{tag}")
        for bs in batch_sizes:
            col = f"latency_ms_b{bs}"
            thr = [df["MACs_G"].iloc[i] * bs / (df[col].iloc[i] / 1000) for i in (0, row)]
            print(f"  throughput at b{bs}: {thr[0]:.1f} → {thr[1]:.1f} GMAC/s "
                  f"(the thinner convs run at {thr[1] / thr[0]:.2f}× the original's efficiency)")
    print(f"""
Why the latency ratio is not {rep.macs_ratio:.2f} (the multiply-add ratio):
  * only {share:.0%} of the original conv multiply-adds are in layers the scope touches (conv1/conv2 of
    the bottlenecks and the conv3 that reads conv2); the stem, every conv3 output, the downsample convs
    and the classifier-side layers keep their full cost, so the removed MACs come from a subset;
  * work that MACs do not count does not shrink in proportion: BatchNorm, ReLU, the residual additions
    and the max-pool run on the *unpruned* residual stream (256–2048 channels) and are memory-bound;
  * thinner convolutions use the CPU less efficiently (lower arithmetic intensity, odd channel counts
    that do not fill the SIMD/GEMM blocks, fixed per-layer dispatch cost) — the GMAC/s lines above; at
    batch 1 the per-layer overheads weigh most, at batch 32 the GEMMs are big enough to amortise them,
    which is why the batch-32 ratio is closer to the MAC ratio.""")


if __name__ == "__main__":
    main()
