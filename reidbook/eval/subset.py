"""The evaluation subset of the pruning chapters (05 and 06): many evaluations in a laptop budget.

A chapter that evaluates a dozen pruned models cannot afford the whole test split in ``quick``; it scores
them on the test split restricted to its first identities (their queries and gallery images). One function
builds that set for both chapters, so they restrict the same way and say so in the same words:

    evalset = evaluation_set(dataset, PROFILE, quick_ids=40)
    print(evalset.summary())

The ranking is then *easier* than on the whole split (fewer, and no distractor, gallery images): absolute
mAPs of a subset are not comparable with the whole split's, differences between models on it are.
"""
from __future__ import annotations

from dataclasses import dataclass

__all__ = ["EvaluationSet", "evaluation_subset", "evaluation_set"]


@dataclass(frozen=True)
class EvaluationSet:
    """What :func:`reidbook.eval.evaluate_model` reads (``query``, ``gallery``: lists of (path, pid, camid)),
    plus how it was made: ``n_ids`` (``None``: the whole test split)."""
    query: list
    gallery: list
    n_ids: int | None = None

    def summary(self) -> str:
        """One line for the chapter's setup cell, generated from the set itself."""
        which = ("the whole test split" if self.n_ids is None
                 else f"the first {self.n_ids} test identities (their queries and gallery images; no distractors)")
        return f"evaluation set: {len(self.query)} queries, {len(self.gallery)} gallery images — {which}"


def evaluation_subset(dataset, n_ids: int | None) -> EvaluationSet:
    """The test split restricted to its first ``n_ids`` query identities (their queries and gallery images;
    distractors and other gallery identities are left out). ``None``: the whole test split, distractors
    included. ``dataset`` is anything with ``.query`` and ``.gallery`` lists of (path, pid, camid)."""
    for part in ("query", "gallery"):
        if not hasattr(dataset, part):
            raise TypeError(f"evaluation_subset needs a data set with .query and .gallery (e.g. "
                            f"reidbook.zoo.dataset(...)); {type(dataset).__name__} has no .{part}")
    if n_ids is None:
        return EvaluationSet(query=list(dataset.query), gallery=list(dataset.gallery), n_ids=None)
    if isinstance(n_ids, bool) or not isinstance(n_ids, int) or n_ids < 1:
        raise ValueError(f"n_ids must be a positive number of identities or None (all), got {n_ids!r}")
    keep = set(sorted({pid for _, pid, _ in dataset.query})[:n_ids])
    return EvaluationSet(query=[q for q in dataset.query if q[1] in keep],
                         gallery=[g for g in dataset.gallery if g[1] in keep], n_ids=n_ids)


def evaluation_set(dataset, profile: str, quick_ids: int = 40) -> EvaluationSet:
    """The evaluation set of a pruning chapter at ``profile``: the whole test split in ``smoke`` (already tiny)
    and ``full`` (the paper's protocol); in ``quick`` the first ``quick_ids`` test identities
    (:func:`evaluation_subset`), so that the chapter's many evaluations fit its time budget."""
    from ..profiles import check_profile

    check_profile(profile)
    return evaluation_subset(dataset, quick_ids if profile == "quick" else None)
