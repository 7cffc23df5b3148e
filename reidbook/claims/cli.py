"""``reidbook claims``: measure the papers' claims over seeds at equal budgets and write the ledger.

::

    reidbook claims [--profile quick] [--seeds 3] [--only ID ...] [--jobs N] [--data synth]
                    [--out assets/claims/PROFILE.json] [--fresh] [--device auto]
    reidbook claims --list            the claims, their paper, and whether they are runnable today
    reidbook claims --table           the README's claims table from the existing ledger
    reidbook claims --dry-run         runs recorded / to do / already trained in the zoo; runs nothing

Trains what each claim needs through the zoo (cached runs are reused; an interrupted run resumes),
decides each claim by Welch's t over seeds, and writes ``assets/claims/<profile>.json`` atomically.
``--only`` takes claim ids or prefixes ending in ``.`` (``--only mgn. baseline.``). A ledger made with
other settings (profile, seeds, data or presets) is refused rather than mixed: ``--fresh`` replaces it.
``make claims`` runs ``reidbook claims --profile quick --seeds 3``.
"""
from __future__ import annotations

import argparse
import sys

from ..profiles import PROFILES
from ..utils import positive_int_arg

__all__ = ["add_arguments", "main"]


def add_arguments(parser: argparse.ArgumentParser) -> None:
    """Options of ``reidbook claims`` (called by ``reidbook.cli``)."""
    parser.add_argument("--profile", choices=PROFILES, default="quick", help="profile of every run (default quick)")
    parser.add_argument("--seeds", type=positive_int_arg("--seeds"), default=3,
                        help="seeds 0 … N−1 per configuration (default 3)")
    parser.add_argument("--only", nargs="+", default=None, metavar="ID",
                        help="only these claim ids (or prefixes ending in '.', e.g. mgn.)")
    parser.add_argument("--jobs", type=positive_int_arg("--jobs"), default=1,
                        help="trainings run side by side, each with cores/N threads (default 1)")
    parser.add_argument("--data", default="synth",
                        help="'synth' (SynthReID, one test split for every seed) or a data set")
    parser.add_argument("--out", default=None, help="ledger file (default assets/claims/PROFILE.json)")
    parser.add_argument("--fresh", action="store_true", help="replace a ledger made with other settings")
    parser.add_argument("--device", default="auto", help="auto, cpu, cuda, cuda:1 …")
    parser.add_argument("--list", action="store_true",
                        help="list the claims and whether they are runnable; run nothing")
    parser.add_argument("--table", action="store_true", help="print the README claims table of the existing ledger")
    parser.add_argument("--dry-run", action="store_true",
                        help="say how many runs are recorded, pending, and already in the zoo; train nothing")


def main(args) -> int:
    from . import CLAIMS, claims_table_markdown, is_stale, load_ledger, run_claims, stale_reasons

    if args.list:
        for c in CLAIMS:
            print(f"{c.id:36s} {c.paper:10s} {c.where[:40]:40s} {c.status}")
        return 0
    if args.table:
        ledger = load_ledger(args.profile, args.out)
        if is_stale(ledger):
            print(f"<!-- stale: {'; '.join(stale_reasons(ledger))}; run `make claims` -->")
        print(claims_table_markdown(ledger), end="")
        return 0
    command = (f"reidbook claims --profile {args.profile} --seeds {args.seeds} --jobs {args.jobs} --data {args.data}"
               + (f" --only {' '.join(args.only)}" if args.only else "") + (" --fresh" if args.fresh else ""))
    if args.dry_run:
        plan = run_claims(args.profile, args.seeds, only=args.only, data=args.data, out=args.out, fresh=args.fresh,
                          device=args.device, dry_run=True)
        print(f"{plan['runs']} runs: {plan['recorded']} recorded, {plan['pending']} to do")
        for m, row in sorted(plan["by_measure"].items()):
            print(f"  {m:16s} {row['pending']:4d} to do, {row['zoo_cached']} of them already trained in the zoo")
        return 0
    ledger = run_claims(args.profile, args.seeds, only=args.only, jobs=args.jobs, data=args.data, out=args.out,
                        fresh=args.fresh, device=args.device, command=command)
    counts: dict[str, int] = {}
    for cid, c in ledger["claims"].items():
        v = c["verdict"]["verdict"] if "verdict" in c else "failed" if c.get("failed") else "not runnable"
        counts[v] = counts.get(v, 0) + 1
        if "verdict" in c:
            print(f"{cid:36s} {v:13s} {c['verdict']['why']}")
    print("; ".join(f"{n} {v}" for v, n in sorted(counts.items())) +
          f" — {ledger['provenance']['wall_seconds'] / 60:.1f} min now, "
          f"{ledger['provenance']['runs_wall_seconds'] / 60:.1f} min of runs in the ledger")
    if ledger["failures"]:
        for line in ledger["failures"]:
            print(f"failed: {line}", file=sys.stderr)
        print(f"{len(ledger['failures'])} run(s) failed; the ledger is incomplete. Fix the cause and run the same "
              "command again (finished runs are reused).", file=sys.stderr)
        return 1
    return 0
