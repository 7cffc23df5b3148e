"""The ledger: ``assets/claims/<profile>.json``, read by the chapters and the README.

Written by :func:`reidbook.claims.run_claims` (``make claims``), read here:

* :func:`load_ledger` → :class:`Ledger` (``.verdicts``, ``.claim(id)``, ``.provenance`` …);
* :func:`is_stale` / :func:`stale_reasons`: was it made with other presets than the ones in this
  checkout? (The ledger stores a hash of every model's preset at its profile; a chapter that finds a
  stale ledger says "stale: run `make claims`" instead of mixing old numbers with new runs.)
* :func:`describe_claim`: the sentence a chapter prints under a claim's figure, generated from the verdict;
* :func:`chapter_claim`: what a chapter's claims section shows — that sentence and the seed distribution
  with the chapter's own run drawn over it (or only "stale: run `make claims`");
* :func:`claims_table_markdown`: the README's claims table (claim, the paper's numbers, ours ± std over
  seeds, verdict) with when and on what machine the ledger was made.

Schema (``"schema": 1``): ``settings`` (profile, seeds, data, test split, preset hashes), ``provenance``
(commit, date, CPU, torch, threads, jobs, command, wall time), ``runs`` (one record per configuration
and seed: metrics, images seen, seconds), ``failures`` (runs that raised; empty in a complete ledger),
``claims`` (per claim: the paper's numbers, per configuration the per-seed values, mean and std, the
difference with its standard error, the verdict, the budget).
"""
from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Iterable

__all__ = ["SCHEMA", "Ledger", "LedgerError", "assets_dir", "ledger_path", "load_ledger", "is_stale",
           "stale_reasons", "preset_hash", "preset_hashes", "claims_table_markdown", "describe_claim", "chapter_claim",
           "write_ledger"]

SCHEMA = 1


class LedgerError(RuntimeError):
    """A ledger cannot be read or used (missing, unreadable, another schema, other settings)."""


def assets_dir() -> Path:
    """The course's committed-artefacts folder: ``assets/`` at the top of the source checkout."""
    return Path(__file__).resolve().parents[2] / "assets"


def ledger_path(profile: str = "quick", root: str | Path | None = None) -> Path:
    """``<root or assets/>/claims/<profile>.json``."""
    from ..profiles import check_profile

    return Path(root or assets_dir()) / "claims" / f"{check_profile(profile)}.json"


def _digest(obj: Any) -> str:
    text = json.dumps(obj, sort_keys=True, default=str)
    return hashlib.sha256(text.encode()).hexdigest()[:16]


def preset_hash(name: str, profile: str) -> str:
    """A short hash of the preset of model ``name`` at ``profile`` (``"fd"``: every FD stage's preset)."""
    from .measures import preset_of

    measure = "fd" if name == "fd" else "zoo"
    return _digest(preset_of({"measure": measure, "model": "fd_student" if name == "fd" else name,
                              "overrides": {}, "options": {}}, profile))


def _models_of(claims: Iterable) -> list[str]:
    names = set()
    for c in claims:
        for cfg in c.configs:
            if cfg.measure == "fd":
                names.add("fd")
            elif cfg.measure not in ("paper_params", "latency"):  # those read the full presets: not a profile's
                names.add(cfg.model)
        if c.budget_from:
            names.add(c.budget_from)
    return sorted(names)


def preset_hashes(profile: str, claims: Iterable | None = None) -> dict[str, str]:
    """``{model: preset_hash(model, profile)}`` for every model the runnable ``claims`` (default all) train."""
    from .registry import CLAIMS

    claims = [c for c in (CLAIMS if claims is None else claims) if c.runnable]
    return {name: preset_hash(name, profile) for name in _models_of(claims)}


@dataclass
class Ledger:
    """A loaded ledger: the JSON as ``data`` plus its ``path``."""

    data: dict
    path: Path | None = None

    @property
    def profile(self) -> str:
        return self.data["settings"]["profile"]

    @property
    def provenance(self) -> dict:
        return self.data["provenance"]

    @property
    def claims(self) -> dict[str, dict]:
        return self.data["claims"]

    @property
    def verdicts(self) -> dict[str, str]:
        """``{claim id: "reproduced" | "contradicted" | "inconclusive" | "failed" | "not runnable" | "not run"}``."""
        def one(c: dict) -> str:
            if c.get("status") != "runnable":
                return "not runnable"
            return "failed" if c.get("failed") else c.get("verdict", {}).get("verdict", "not run")
        return {cid: one(c) for cid, c in self.claims.items()}

    def claim(self, claim_id: str) -> dict:
        if claim_id not in self.claims:
            raise KeyError(f"the ledger {self.path} has no claim {claim_id!r}; it has {', '.join(self.claims)}")
        return self.claims[claim_id]

    def per_seed(self, claim_id: str) -> dict[str, list[float]]:
        """``{configuration label: per-seed values}`` of a claim (in its metric)."""
        return {c["label"]: list(c.get("values", [])) for c in self.claim(claim_id)["configs"]}


def load_ledger(profile: str = "quick", path: str | Path | None = None, missing_ok: bool = False) -> Ledger | None:
    """The ledger of ``profile`` (``assets/claims/<profile>.json``, or ``path``).

    A missing file raises :class:`LedgerError` saying to run ``make claims`` (``missing_ok=True``: returns
    ``None``); an unreadable one or another schema raises too.
    """
    p = Path(path) if path is not None else ledger_path(profile)
    if not p.is_file():
        if missing_ok:
            return None
        raise LedgerError(f"no claims ledger at {p}: run `make claims` (or `reidbook claims --profile {profile}`)")
    try:
        data = json.loads(p.read_text())
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise LedgerError(f"cannot read the claims ledger {p} ({exc}); delete it and run `make claims`") from None
    if not isinstance(data, dict) or data.get("schema") != SCHEMA:
        raise LedgerError(f"{p} is not a schema-{SCHEMA} claims ledger (schema {data.get('schema')!r} if any); "
                          "run `make claims` to regenerate it")
    return Ledger(data, p)


def stale_reasons(ledger: Ledger) -> list[str]:
    """Why ``ledger`` does not describe this checkout: one line per model whose preset at the ledger's
    profile changed since (claims added to the registry later do not make it stale; they are just not
    in it). Empty if it is current."""
    settings = ledger.data["settings"]
    reasons = []
    for m, h in settings.get("preset_hashes", {}).items():
        try:
            now = preset_hash(m, settings["profile"])
        except (KeyError, ImportError) as exc:  # the model or its presets are gone
            reasons.append(f"{m}: no longer has presets ({exc})")
            continue
        if now != h:
            reasons.append(f"{m}: preset changed ({h} in the ledger, {now} now)")
    return reasons


def is_stale(ledger: Ledger) -> bool:
    """True if the ledger was made with presets other than the current ones (see :func:`stale_reasons`)."""
    return bool(stale_reasons(ledger))


def write_ledger(data: dict, path: str | Path) -> Path:
    """Write ``data`` to ``path`` atomically (a reader never sees half a ledger)."""
    from ..utils import atomic_write_text

    return atomic_write_text(path, json.dumps(data, indent=1, sort_keys=False, default=str) + "\n")


# ----------------------------------------------------------------------------------------------
# The README table
# ----------------------------------------------------------------------------------------------
def _fmt(v, scale: float) -> str:
    return "–" if v is None else f"{v * scale:.1f}" if scale != 1 else f"{v:.3g}"


def _scale(metric: str) -> float:
    return 100.0 if metric.split("/")[-1] in ("mAP", "rank1", "rank5", "mINP") else 1.0


def claims_table_markdown(ledger: Ledger) -> str:
    """The README's claims table from ``ledger``: one row per claim — the statement, where in the paper,
    the paper's numbers (first vs second configuration), ours (mean ± std over seeds), the verdict —
    under a line saying when, on what machine and at which commit it was made."""
    prov, settings = ledger.provenance, ledger.data["settings"]
    lines = [f"Claims ledger `{settings['profile']}`: {len(settings['seeds'])} seeds, made {prov.get('date')} "
             f"on {prov.get('cpu')} ({prov.get('threads')} threads, {prov.get('jobs')} jobs) at commit "
             f"`{str(prov.get('commit'))[:10]}`; its runs took {prov.get('runs_wall_seconds', 0) / 60:.0f} min. "
             f"Verdict: Welch's t at {int(100 * settings.get('level', 0.95))} % over seeds.", "",
             "| claim | paper, where | paper's numbers | ours (± std over seeds) | verdict |",
             "|---|---|---|---|---|"]
    for cid, c in ledger.claims.items():
        pn = c.get("paper_numbers") or {}
        vals = pn.get("values") or [None, None]
        paper = (f"{_fmt(vals[0], 1)} vs {_fmt(vals[1], 1)} ({pn.get('source', '')})"
                 if any(v is not None for v in vals) else pn.get("source", "–"))
        cfgs = c.get("configs", [])
        if c.get("status") != "runnable":
            ours, verdict = "–", c.get("status", "")
        elif c.get("failed"):
            ours, verdict = "–", "failed (see the ledger's failures)"
        elif all(x.get("mean") is not None for x in cfgs):
            parts = []
            for x in cfgs:
                s = _scale(x.get("metric") or c["metric"])
                std = x.get("std")
                parts.append(f"{x['mean'] * s:.1f}" + (f" ± {std * s:.1f}" if std is not None else ""))
            ours, verdict = " vs ".join(parts), c.get("verdict", {}).get("verdict", "not run")
        else:
            ours, verdict = "–", "not run"
        labels = " vs ".join(x["label"] for x in cfgs)
        departure = f" **Declared departure**: {c['departure']}." if c.get("departure") else ""
        lines.append(f"| `{cid}`: {c['statement']} ({labels}){departure} | {c['paper']}, {c['where']} | {paper} | "
                     f"{ours} | {verdict} |")
    return "\n".join(lines) + "\n"


_MEANING = {
    "reproduced": "the claim holds here: the interval lies wholly on the paper's side",
    "contradicted": "the claim is contradicted here: on our data the interval lies wholly on the other side "
                    "(a result about SynthReID and this profile, not a bug)",
    "inconclusive": "our seeds do not decide it: the difference is within the seed-to-seed noise",
}


def describe_claim(ledger: Ledger | None, claim_id: str, stale: bool | None = None) -> str:
    """One sentence about ``claim_id`` generated from ``ledger``: each side's mean ± std over seeds, the
    difference with its interval, the verdict in words, the paper's numbers. ``ledger=None`` (no ledger
    yet) or a stale one (``stale=None``: checked with :func:`is_stale`) say "run `make claims`" instead."""
    if ledger is None:
        return f"{claim_id}: no claims ledger yet (stale: run `make claims`)."
    c = ledger.claim(claim_id)
    if stale is None:
        stale = is_stale(ledger)
    prefix = "stale ledger (made with other presets; run `make claims`): " if stale else ""
    if c.get("departure"):
        prefix += f"[declared departure: {c['departure']}] "
    pn = c.get("paper_numbers") or {}
    vals = pn.get("values") or [None, None]
    paper = (f" The paper: {_fmt(vals[0], 1)} vs {_fmt(vals[1], 1)} ({pn.get('source', '')})."
             if any(v is not None for v in vals) else "")
    if c.get("status") != "runnable":
        return f"{prefix}{c['statement']} Not measured ({c.get('status')}).{paper}"
    cfgs, v = c.get("configs", []), c.get("verdict")
    if c.get("failed"):
        return f"{prefix}{c['statement']} Not measured: its runs failed ({c['failed'][0]}).{paper}"
    if not v or any(x.get("mean") is None for x in cfgs):
        return f"{prefix}{c['statement']} Not run yet: run `make claims`.{paper}"
    scale = _scale(c["metric"])
    unit = " points" if scale == 100.0 else ""
    sides = " and ".join(f"{x['label']} {x['mean'] * _scale(x.get('metric') or c['metric']):.1f}"
                         + (f" ± {x['std'] * _scale(x.get('metric') or c['metric']):.1f}"
                            if x.get("std") is not None else "")
                         for x in cfgs)
    lo, hi = v["ci"]
    interval = (f", {int(100 * v['level'])} % interval [{lo * scale:+.1f}, {hi * scale:+.1f}]"
                if lo is not None and lo == lo else "")
    why = _MEANING.get(v["verdict"], v["verdict"])
    if v["verdict"] == "inconclusive" and "unequal" in v.get("why", ""):
        why = "not decided: the two sides were trained on unequal budgets"
    elif v["verdict"] == "inconclusive" and "fewer than two seeds" in v.get("why", ""):
        why = "one seed cannot decide it (no spread to compare the difference with)"
    n = len(cfgs[0].get("values", []))
    return (f"{prefix}{c['statement']} Over {n} seed{'s' if n != 1 else ''}: {sides} ({c['metric']}); "
            f"difference {v['diff'] * scale:+.1f}"
            f"{unit}{interval} — {v['verdict']}: {why}.{paper}")


def chapter_claim(profile: str, claim_id: str, live=None, data: str = "synth", path: str | Path | None = None):
    """A chapter's claims section for ``claim_id``: ``(sentence, figure or None)``.

    ``live`` is the chapter's own single-seed run: a sequence of values in the order of the claim's
    configurations (or ``{label: value}``), in the ledger's units (fractions for mAP). The figure
    (:func:`reidbook.viz.claims.claim_figure`) draws it over the ledger's seed distribution. Without a
    ledger, with a stale one (other presets) or without values for this claim the figure is ``None`` and
    the sentence says "stale: run `make claims`" — a chapter never runs the ledger nor mixes it with
    numbers from other settings. ``data`` is the chapter's data set: a live run on another data set than
    the ledger's is not drawn.
    """
    ledger = load_ledger(profile, path, missing_ok=True)
    if ledger is None:
        return f"{claim_id}: no claims ledger for the {profile!r} profile yet (stale: run `make claims`).", None
    if claim_id not in ledger.claims:
        return f"{claim_id}: not in the claims ledger {ledger.path} (stale: run `make claims`).", None
    stale = is_stale(ledger)
    sentence = describe_claim(ledger, claim_id, stale=stale)
    c = ledger.claim(claim_id)
    if stale or not c.get("verdict") or c.get("failed"):
        return sentence, None
    from ..viz.claims import claim_figure

    labels = [x["label"] for x in c["configs"]]
    if live is not None and str(data).replace("synthreid", "synth") != ledger.data["settings"].get("data"):
        sentence += (f" (This chapter's run on {data!r} is not drawn: "
                     f"the ledger is on {ledger.data['settings'].get('data')!r}.)")
        live = None
    if live is not None and not isinstance(live, dict):
        live = list(live)
        if len(live) != len(labels):
            raise ValueError(f"live has {len(live)} values but claim {claim_id} compares {len(labels)} "
                             f"configurations ({labels})")
        live = {lab: v for lab, v in zip(labels, live) if v is not None}
    return sentence, claim_figure(c, live)
