"""Paper claims measured over seeds at equal budgets, and the ledger that records them.

* :mod:`~reidbook.claims.registry` — every claim of the five papers as data (:data:`CLAIMS`);
* :mod:`~reidbook.claims.verdict` — the verdict rule (Welch's t interval over seeds);
* :mod:`~reidbook.claims.measures` — how one configuration and one seed become numbers;
* :mod:`~reidbook.claims.runner` — :func:`run_claims` (``reidbook claims``, ``make claims``);
* :mod:`~reidbook.claims.ledger` — :func:`load_ledger`, :func:`is_stale`, :func:`claims_table_markdown`.
"""
from .ledger import (Ledger, LedgerError, assets_dir, claims_table_markdown, is_stale, ledger_path, load_ledger,
                     preset_hashes, stale_reasons)
from .registry import CLAIMS, Claim, Config, claim_ids, get_claim, runnable_claims
from .runner import run_claims, select_claims
from .verdict import LEVEL, Verdict, verdict

__all__ = ["CLAIMS", "Claim", "Config", "Ledger", "LedgerError", "LEVEL", "Verdict", "assets_dir", "claim_ids",
           "claims_table_markdown", "get_claim", "is_stale", "ledger_path", "load_ledger", "preset_hashes",
           "run_claims", "runnable_claims", "select_claims", "stale_reasons", "verdict"]
