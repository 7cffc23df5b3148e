"""Paper claims measured over seeds at equal budgets, and the ledger that records them.

* :mod:`~reidbook.claims.registry` — every claim of the five papers as data (:data:`CLAIMS`);
* :mod:`~reidbook.claims.verdicts` — the verdict rule (Welch's t interval over seeds);
* :mod:`~reidbook.claims.measures` — how one configuration and one seed become numbers;
* :mod:`~reidbook.claims.runner` — :func:`run_claims` (``reidbook claims``, ``make claims``);
* :mod:`~reidbook.claims.ledger` — :func:`load_ledger`, :func:`is_stale`, :func:`claims_table_markdown`,
  :func:`describe_claim` (what chapters and the README read).

Names are imported lazily (PEP 562): ``reidbook claims --help`` and the other commands do not build the
registry (which imports the models' presets) until a claim is needed.
"""
from __future__ import annotations

from ..utils import lazy_exports

_EXPORTS = {
    "CLAIMS": "registry", "Claim": "registry", "Config": "registry", "claim_ids": "registry", "get_claim": "registry",
    "runnable_claims": "registry",
    "LEVEL": "verdicts", "Verdict": "verdicts", "verdict": "verdicts",
    "run_claims": "runner", "select_claims": "runner",
    "Ledger": "ledger", "LedgerError": "ledger", "assets_dir": "ledger", "claims_table_markdown": "ledger",
    "describe_claim": "ledger", "chapter_claim": "ledger", "is_stale": "ledger", "ledger_path": "ledger",
    "load_ledger": "ledger", "preset_hashes": "ledger", "stale_reasons": "ledger",
}

__all__ = sorted(_EXPORTS)

__getattr__, __dir__ = lazy_exports(__name__, _EXPORTS)
