"""The survey's conclusions checked against a run, and sentences generated from measured tables (chapter 06).

A chapter states what it measured by printing these, never by typing an outcome into its prose:

* :func:`scenario_winners` / :func:`describe_scenarios` — which design scenario keeps the most accuracy per
  method and target (for the survey's Table 7 or for our own runs);
* :func:`survey_claims` — the survey's claims (Tables 5–8, §3.2.2, §5.1) and whether this run agrees;
* :func:`describe_latency`, :func:`describe_strategy_internals` — sentences about the measured latency table
  and about what happened inside Auto-Balanced and PSFP;
* :func:`describe_table5` — pruned ResNet-50s against the small networks (the survey's Fig. 3 question);
* :func:`describe_attention_change` — where the same queries' attention went after pruning (SynthReID's masks).
"""
from __future__ import annotations

__all__ = ["scenario_winners", "describe_scenarios", "survey_claims", "describe_latency", "describe_strategy_internals",
           "describe_attention_change", "describe_table5", "describe_reconstruction"]


def scenario_winners(df, value: str = "mAP", digits: int = 1):
    """Per ``(method, target)`` of a scenario table (columns ``scenario``, ``method``, ``target``, ``value``): the
    best scenarios (all within half a display unit, ``0.5·10^-digits``, of the best value: ties at the precision
    the numbers are shown with), the best value and every scenario's value → ``DataFrame`` (groups with one
    scenario are left out)."""
    import pandas as pd

    tol = 0.5 * 10 ** -digits
    rows = []
    for (method, target), g in df.groupby(["method", "target"], sort=False):
        if g["scenario"].nunique() < 2:
            continue
        top = float(g[value].max())
        rows.append({"method": method, "target": target,
                     "best": tuple(sorted(int(s) for s, v in zip(g["scenario"], g[value]) if top - float(v) < tol)),
                     "best_value": top, "values": {int(s): float(v) for s, v in zip(g["scenario"], g[value])}})
    return pd.DataFrame(rows, columns=["method", "target", "best", "best_value", "values"])


def describe_scenarios(df, value: str = "mAP", source: str = "", digits: int = 1) -> list[str]:
    """Sentences generated from :func:`scenario_winners` (values shown with ``digits`` decimals): the best
    scenario(s) per method and target, and — when several methods or targets were measured — whether one
    scenario is best for all of them. A table in which no method and target has two scenarios says so
    (one sentence naming the scenarios measured) instead of comparing anything."""
    win = scenario_winners(df, value, digits)
    if win.empty and len(df):
        measured = sorted({int(s) for s in df["scenario"]})
        return [f"{source}only scenario{'s' if len(measured) > 1 else ''} " + ", ".join(map(str, measured))
                + " measured for each method and target at this profile: no scenarios to compare"]

    def best(b):
        return f"scenario {b[0]} is best" if len(b) == 1 else "scenarios " + " and ".join(map(str, b)) + " tie"

    out = [f"{source}{r.method} at {r.target}: {best(r.best)} ("
           + ", ".join(f"S{s} {v:.{digits}f}" for s, v in sorted(r.values.items())) + ")" for r in win.itertuples()]
    if len(win) > 1:
        common = set.intersection(*(set(b) for b in win["best"]))
        firsts = sorted({b for bs in win["best"] for b in bs})
        out.append(f"{source}scenario {min(common)} is best for every method and target" if common else
                   f"{source}no scenario is best everywhere: the best is scenario "
                   + " or ".join(str(b) for b in firsts) + " depending on method and target")
    return out


def survey_claims(table5, recon_maps: dict, cost, scenarios, table8, c1: float = 1 / 2):
    """Chapter 06's verdicts: each claim of the survey, our measured numbers, and whether we agree → ``DataFrame``
    with columns ``survey's claim``, ``ours (measured)``, ``we agree``.

    ``table5``: rows ``ResNet-50``, ``ResNet-18`` (networks, ``kind == "network"``) and the pruned models (``L1``,
    ``Taylor``, …) with ``mAP`` and ``params_M``; ``recon_maps``: ThiNet's mAP with (``"auto"``) and without (``None``)
    reconstruction; ``cost``: :func:`reidbook.profile.cost_table` with ``latency_ratio_b1`` and ``macs_ratio``;
    ``scenarios``: the scenario rows; ``table8``: PCB's rows (``BFE, l2`` and ``LC`` in their names)."""
    import pandas as pd

    pr = table5[table5["kind"] != "network"]
    r50, r18 = table5.loc["ResNet-50", "mAP"], table5.loc["ResNet-18", "mAP"]
    checks = [
        ("Table 5: the un-pruned ResNet-50 beats ResNet-18 (mAP)", f"{r50:.1f} vs {r18:.1f}", r50 > r18),
        ("§5.1: a pruned ResNet-50 at C1 beats ResNet-18 (best pruned vs R18, mAP)",
         f"{pr['mAP'].max():.1f} vs {r18:.1f}", pr["mAP"].max() > r18),
        ("§5.1: pruned models stay within ~2 mAP points of ResNet-50 (best pruned)",
         f"{pr['mAP'].max():.1f} vs {r50:.1f}", r50 - pr["mAP"].max() <= 2.0),
        ("§5.1: L1 is the best or within 1 point of the best of the five methods",
         f"L1 {pr.loc['L1', 'mAP']:.1f}, best {pr['mAP'].idxmax()} {pr['mAP'].max():.1f}",
         pr.loc["L1", "mAP"] >= pr["mAP"].max() - 1.0),
        ("Table 5: Taylor (ranked across layers) ends with more parameters than the uniform L1 at the same target",
         f"{pr.loc['Taylor', 'params_M']:.3f} vs L1 {pr.loc['L1', 'params_M']:.3f} M",
         pr.loc["Taylor", "params_M"] > pr.loc["L1", "params_M"]),
        ("§3.2.2: least-squares reconstruction helps before fine-tuning (ThiNet, mAP)",
         f"{recon_maps['auto']:.1f} vs {recon_maps[None]:.1f}", recon_maps["auto"] > recon_maps[None]),
        ("latency falls less than multiply-adds (L1, batch 1)",
         f"latency ×{cost.loc['L1', 'latency_ratio_b1']:.2f} vs MACs ×{cost.loc['L1', 'macs_ratio']:.2f}",
         cost.loc["L1", "latency_ratio_b1"] > cost.loc["L1", "macs_ratio"]),
    ]
    s1 = scenarios[(scenarios["method"] == "l1") & (scenarios["target"] == round(c1, 3))].set_index("scenario")["mAP"]
    if 1 in s1 and len(s1) > 1:
        checks.append(("Table 7: scenario 1 is the best scenario for L1",
                       ", ".join(f"S{k} {v:.1f}" for k, v in s1.items()), s1.idxmax() == 1))
    if 4 in s1 and len(s1) > 1:
        checks.append(("Table 6: scenario 4 is the worst for L1", ", ".join(f"S{k} {v:.1f}" for k, v in s1.items()),
                       s1.idxmin() == 4))
    ps3 = scenarios[(scenarios["method"] == "psfp") & (scenarios["scenario"] == 3)]["mAP"]
    if len(ps3) and 3 in s1:
        checks.append(("Table 7: on the target (scenario 3) PSFP beats L1", f"PSFP {ps3.iloc[0]:.1f} vs L1 {s1[3]:.1f}",
                       ps3.iloc[0] > s1[3]))
    t8 = table8["mAP"]
    bfe, bfe_all = [k for k in t8.index if "BFE, l2" in k], [k for k in t8.index if "LC" in k]
    if bfe and bfe_all:
        checks.append(("Table 8: pruning LC + FC too costs little accuracy (< 2 mAP points vs BFE only)",
                       f"{t8[bfe_all[0]]:.1f} vs {t8[bfe[0]]:.1f}", abs(t8[bfe_all[0]] - t8[bfe[0]]) < 2.0))
        checks.append(("Table 8: BFE + LC + FC has fewer parameters than BFE, same test MACs",
                       f"{table8.loc[bfe_all[0], 'params_M']:.3f} vs {table8.loc[bfe[0], 'params_M']:.3f} M",
                       bool(table8.loc[bfe_all[0], "params_M"] < table8.loc[bfe[0], "params_M"]
                            and table8.loc[bfe_all[0], "MACs_M"] == table8.loc[bfe[0], "MACs_M"])))
    return pd.DataFrame([(c, o, bool(a)) for c, o, a in checks],
                        columns=["survey's claim", "ours (measured)", "we agree"])


def describe_latency(cost, reference: str, pruned, small=()) -> list[str]:
    """Sentences from a cost table with ``macs_ratio`` and ``latency_ratio_b1`` / ``_b32`` (vs ``reference``): the
    spread of the pruned models' multiply-add ratios, and for each model of ``pruned`` + ``small`` how much of its
    multiply-add saving became speed at batch 1 (``(1 − latency ratio) / (1 − MAC ratio)``)."""
    pruned, small = list(pruned), list(small)
    macs = cost.loc[pruned, "macs_ratio"]
    out = [f"the pruned models keep {macs.min():.3f}–{macs.max():.3f} of {reference}'s multiply-adds"]
    for name in pruned + small:
        m, lat = float(cost.loc[name, "macs_ratio"]), float(cost.loc[name, "latency_ratio_b1"])
        share = (1 - lat) / (1 - m) if m < 1 else float("nan")
        out.append(f"{name}: MACs ×{m:.2f}, latency ×{lat:.2f} at batch 1 → {100 * share:.0f} % of the MAC saving "
                   "became speed")
    return out


def describe_strategy_internals(auto_balanced, psfp) -> list[str]:
    """Sentences from the reports of :func:`~reidbook.prune.strategies.auto_balanced_prune` (the weak set's share
    of the ℓ1 mass before the first and after the last regularised epoch) and
    :func:`~reidbook.prune.strategies.progressive_soft_prune` (the rates applied, the last one the goal)."""
    out = []
    ab = [r for r in auto_balanced.iterations if "weak_share_before" in r]
    if ab:
        a, b = ab[0]["weak_share_before"], ab[-1]["weak_share_after"]
        out.append(f"Auto-Balanced: the weak set's share of the ℓ1 mass went {a:.4f} → {b:.4f} "
                   f"({'down' if b < a else 'up' if b > a else 'unchanged'} "
                   f"by {abs(b - a) / max(a, 1e-12):.2%} of its value)")
    if psfp.iterations:
        rates = [r["rate"] for r in psfp.iterations]
        out.append("PSFP: rates applied after each epoch " + ", ".join(f"{r:.3f}" for r in rates)
                   + f"; the last is the goal rate that meets the target (MACs ×{psfp.macs_ratio:.3f})")
    return out


def describe_attention_change(rows, reference: str, pruned, tolerance: float = 0.02) -> list[str]:
    """Sentences from :func:`reidbook.eval.attention.compare_attention`'s rows (a list of dicts or a
    ``DataFrame``): where ``reference`` (the un-pruned network) looks, then for each model of ``pruned`` its
    on-person share, the change in points, how much its maps agree with the reference's and on how many of
    the images the share rose; last, a verdict: pruning *barely moved* attention when every pruned model's
    mean on-person share is within ``tolerance`` (a fraction; 0.02 = 2 points) of the reference's, else
    which models moved towards and which away from the person."""
    import pandas as pd

    df = (rows if isinstance(rows, pd.DataFrame) else pd.DataFrame(list(rows))).set_index("model")
    pruned = list(pruned)
    missing = [n for n in [reference, *pruned] if n not in df.index]
    if missing:
        raise KeyError(f"no attention row for {missing}; the rows have {list(df.index)}")
    r = df.loc[reference]
    out = [f"{reference} puts {r.on_person:.0%} of its response energy on the person, who covers {r.chance:.0%} of "
           f"the pixels ({r.lift:.2f}× what a map that looks everywhere gets); the body part with the most "
           f"energy: {r.top_part}"]
    for name in pruned:
        p = df.loc[name]
        out.append(f"{name}: {p.on_person:.0%} on the person ({100 * (p.on_person - r.on_person):+.1f} points), "
                   f"maps agree with {reference}'s at r = {p.agreement:.2f}, share higher than {reference}'s on "
                   f"{p.more_on_person:.0%} of the images")
    if not pruned:
        return out
    delta = {n: float(df.loc[n, "on_person"] - r.on_person) for n in pruned}
    if all(abs(d) <= tolerance for d in delta.values()):
        out.append(f"pruning barely moved attention: every pruned model's on-person share is within "
                   f"{100 * tolerance:.0f} points of {reference}'s (largest change "
                   f"{100 * max(delta.values(), key=abs):+.1f} points)")
    else:
        up = [n for n, d in delta.items() if d > tolerance]
        down = [n for n, d in delta.items() if d < -tolerance]
        same = [n for n, d in delta.items() if abs(d) <= tolerance]
        parts = ([f"towards the person for {', '.join(up)}"] if up else []) + \
                ([f"away from it for {', '.join(down)}"] if down else []) + \
                ([f"within {100 * tolerance:.0f} points for {', '.join(same)}"] if same else [])
        out.append("pruning moved attention " + "; ".join(parts))
    return out


def describe_table5(table5, small: str = "ResNet-18", reference: str = "ResNet-50") -> list[str]:
    """Sentences from our Table 5 (index: model names; columns ``kind`` — ``"network"`` for un-pruned ones —,
    ``mAP``, ``MACs_M``): the survey's Fig. 3 question — does a pruned ``reference`` beat the ``small`` network
    at a similar cost? — answered from the measured rows: the best pruned model against ``small`` (mAP and
    multiply-adds), how many pruned models beat it, and where ``reference`` itself stands."""
    for name in (small, reference):
        if name not in table5.index:
            raise KeyError(f"{name!r} is not a row of the table (rows: {list(table5.index)})")
    pr = table5[table5["kind"] != "network"]
    if pr.empty:
        raise ValueError("the table has no pruned rows (kind != 'network')")
    s, ref = table5.loc[small], table5.loc[reference]
    best = pr["mAP"].idxmax()
    b = pr.loc[best]
    diff = float(b["mAP"] - s["mAP"])
    n_win = int((pr["mAP"] > s["mAP"]).sum())
    return [f"best pruned {reference}: {best}, mAP {b['mAP']:.1f} at {b['MACs_M']:.3g} M multiply-adds; {small}: "
            f"mAP {s['mAP']:.1f} at {s['MACs_M']:.3g} M → the pruned model is {abs(diff):.1f} points "
            f"{'above' if diff > 0 else 'below' if diff < 0 else 'level with'} {small}",
            f"{n_win} of {len(pr)} pruned {reference}s beat {small}; the un-pruned {reference} itself: mAP "
            f"{ref['mAP']:.1f} ({float(ref['mAP'] - s['mAP']):+.1f} points vs {small})"]


def describe_reconstruction(records) -> list[str]:
    """Sentences from a layer-wise report's ``iterations`` (:func:`~reidbook.prune.strategies.prune_layerwise`,
    records with ``err_plain`` and ``err_recon``): at how many units the least-squares step lowered the next
    layer's relative error on the calibration samples, and the median error before and after."""
    import statistics

    recs = [r for r in records if "err_plain" in r and "err_recon" in r]
    if not recs:
        return ["no unit was reconstructed (selection only)"]
    lower = sum(r["err_recon"] < r["err_plain"] for r in recs)
    before, after = statistics.median(r["err_plain"] for r in recs), statistics.median(r["err_recon"] for r in recs)
    worst = max(recs, key=lambda r: r["err_recon"])
    return [f"least squares lowered the next layer's relative error at {lower} of {len(recs)} units (median "
            f"{before:.3f} → {after:.3f} on the calibration samples)",
            f"hardest unit after reconstruction: {worst['unit']} ({worst['err_plain']:.3f} → {worst['err_recon']:.3f})"]
