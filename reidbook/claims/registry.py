"""Every claim the course teaches, as data: what the papers say, and which of our runs tests it.

A :class:`Claim` compares two :class:`Config` s — ``configs[0]`` is expected to be better than
``configs[1]`` in ``metric`` (``direction="greater"``: higher is better, e.g. mAP; ``"less"``: lower is
better, e.g. latency; ``"noninferior"``: ``configs[0]`` is at most ``margin`` worse). ``paper`` holds the
paper's own numbers for the two configurations, labelled with the table they come from; they are the
paper's (Market-1501 unless said), never ours.

A :class:`Config` names what to run: a ``measure`` (a procedure in :mod:`reidbook.claims.measures`:
``"zoo"`` trains with ``reidbook.zoo.get``; ``"fd"`` distils with ``reidbook.distill.pipeline``;
``"dare_embeddings"`` / ``"dare_routing"`` / ``"anytime"`` evaluate DaRe and its sequential ensemble;
``"prune"`` runs one of the pruning survey's design scenarios (``reidbook.prune.scenarios.run_scenario``);
``"prune_pcb"`` prunes PCB's parts softly while training (``reidbook.prune.prune_pcb``);
``"ensemble"`` concatenates the embeddings of separately trained networks;
``"paper_params"`` / ``"latency"`` count and time the paper-size networks), the zoo ``model`` name,
the preset ``overrides`` exactly as ``zoo.get(model, **overrides)`` takes them, and measure
``options``. Two configs whose measure, model, overrides and options agree are one run (DaRe's fusion
and its best stage are two metrics of one trained model).

Equal budgets: ``budget_from`` names the model whose preset (at the profile being run) gives every
trained config of the claim its input size, batch (P, K) and epochs — so both sides see the same
number of images from the same (source-domain pre-trained) initialisation. Claims within one model
(loss or branch ablations) share the preset already and leave it ``None``.

A **declared departure** (issue 19, item 6): where a claim fails only because the laptop profile is too short,
a second claim with the same configurations and ``train_scale = k`` trains each of them ``k`` times as long —
epochs and learning-rate schedule together (:func:`reidbook.presets.scaling.scaled_training`) — and says so
in ``departure``; its id ends in ``_x<k>``. The ledger keeps both, so the effect of the departure is measured.

``status`` is ``"runnable"`` or ``"not runnable: <why>"``: such claims stay in the ledger (and the
README table) with the paper's numbers and no measurement, rather than being dropped or faked.
"""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

__all__ = ["Config", "Claim", "CLAIMS", "PAPERS", "get_claim", "claim_ids", "runnable_claims",
           "BUDGET_FIELDS", "DIRECTIONS"]

#: Preset fields that make up a training budget (images seen = epochs × batches × P·K at that input).
BUDGET_FIELDS = ("height", "width", "P", "K", "epochs")
DIRECTIONS = ("greater", "less", "noninferior")

#: The five papers (``/work/shared/papers/INDEX.md``) and the baseline chapter's sources.
PAPERS = {
    "graftednet": "GraftedNet (paper 000): a light-weighted, high-accuracy grafted network for person re-ID",
    "mgn": "MGN (paper 001): Learning Discriminative Features with Multiple Granularities (ACM MM 2018)",
    "fd": "Factorized Distillation (paper 002): distilling an ensemble of partial re-ID models",
    "survey": "Pruning CNNs for person re-ID: a survey of criteria, strategies and design scenarios (paper 003)",
    "dare": "DaRe (paper 004): Resource Aware Person Re-ID across Multiple Resolutions (CVPR 2018)",
    "baseline": "the baseline chapter (BoT, Luo et al. CVPRW 2019), with MGN's Table 5 ResNet-50 rows",
}

_SCENARIOS_DIFFER = ("design scenarios (and strategies) are procedures with their own stages (survey Fig. 2, "
                     "Table 2): their training budgets differ by design, as in the survey")


@dataclass(frozen=True)
class Config:
    """One side of a claim (see the module docstring)."""

    label: str
    model: str
    overrides: dict[str, Any] = field(default_factory=dict)
    measure: str = "zoo"
    options: dict[str, Any] = field(default_factory=dict)
    metric: str | None = None  # this side's metric when it differs from the claim's (DaRe fusion vs stage)

    def to_dict(self) -> dict[str, Any]:
        return {"label": self.label, "model": self.model, "overrides": self.overrides, "measure": self.measure,
                "options": self.options, "metric": self.metric}


@dataclass(frozen=True)
class Claim:
    """A paper's claim as a comparison of two configurations (see the module docstring)."""

    id: str
    paper: str
    where: str
    statement: str
    configs: tuple[Config, Config]
    metric: str = "mAP"
    direction: str = "greater"
    margin: float = 0.0
    factor: float = 1.0          # compare configs[0] with factor × configs[1] (e.g. "~1/5 of the parameters")
    paper_numbers: dict[str, Any] = field(default_factory=dict)
    budget_from: str | None = None
    equal_training: bool = True  # False: the claim is about test-time budget; training images may differ
    status: str = "runnable"
    notes: str = ""
    train_scale: float = 1.0     # a declared departure: every trained config this many times as long
    departure: str = ""          # that departure in words (required when train_scale ≠ 1)

    def __post_init__(self):
        if self.direction not in DIRECTIONS:
            raise ValueError(f"claim {self.id}: direction must be one of {DIRECTIONS}, got {self.direction!r}")
        if not self.train_scale > 0:
            raise ValueError(f"claim {self.id}: train_scale must be > 0, got {self.train_scale}")
        if self.train_scale != 1.0 and not self.departure:
            raise ValueError(f"claim {self.id}: training {self.train_scale}× as long is a departure from the profile; "
                             "declare it (departure='…')")
        if len(self.configs) != 2:
            raise ValueError(f"claim {self.id}: a claim compares exactly two configs, got {len(self.configs)}")
        if self.paper not in PAPERS:
            raise ValueError(f"claim {self.id}: unknown paper {self.paper!r}; one of {', '.join(PAPERS)}")

    @property
    def runnable(self) -> bool:
        return self.status == "runnable"

    def metric_of(self, i: int) -> str:
        return self.configs[i].metric or self.metric

    def to_dict(self) -> dict[str, Any]:
        return {"id": self.id, "paper": self.paper, "where": self.where, "statement": self.statement,
                "configs": [c.to_dict() for c in self.configs], "metric": self.metric,
                "direction": self.direction, "margin": self.margin, "factor": self.factor,
                "paper_numbers": self.paper_numbers, "budget_from": self.budget_from,
                "equal_training": self.equal_training, "status": self.status, "notes": self.notes,
                "train_scale": self.train_scale, "departure": self.departure}


def _paper(source: str, a: float | None, b: float | None, unit: str = "mAP (%)", **more) -> dict[str, Any]:
    """The paper's numbers for ``configs[0]`` (``a``) and ``configs[1]`` (``b``)."""
    return {"source": source, "unit": unit, "values": [a, b], **more}


# ----------------------------------------------------------------------------------------------
# Configurations (overrides are what zoo.get takes; they are resolved from the presets' helpers)
# ----------------------------------------------------------------------------------------------
def _baseline(kind: str) -> Config:
    from ..presets.baseline import loss_specs

    label = {"both": "softmax + triplet (BoT)", "softmax": "softmax only (IDE)", "triplet": "triplet only (TriNet)"}
    return Config(label[kind], "baseline", {} if kind == "both" else {"losses": loss_specs(kind)})


def _mgn(variant: str) -> Config:
    from ..models.mgn import VARIANT_LABELS
    from ..presets.mgn import loss_specs

    over = {} if variant == "mgn" else {"model_options": {"variant": variant}, "losses": loss_specs(variant)}
    return Config(VARIANT_LABELS.get(variant, variant), "mgn", over)


def _grafted(variant: str) -> Config:
    from ..models.graftednet import VARIANT_LABELS
    from ..presets.graftednet import variant_overrides

    return Config(VARIANT_LABELS.get(variant, variant), "graftednet",
                  {} if variant == "graftednet" else variant_overrides(variant))


def _fd(label: str, **options) -> Config:
    return Config(label, "fd_student", {}, measure="fd", options=options)


def _dare(label: str, metric: str | None = None, deep_supervision: bool = True, measure: str = "dare_embeddings",
          **options) -> Config:
    from ..presets.dare import loss_specs

    over = {} if deep_supervision else {"losses": loss_specs(deep_supervision=False)}
    return Config(label, "dare", over, measure=measure, options=options, metric=metric)


def _resnet(arch: str) -> Config:
    return Config(f"ResNet-{arch[6:]} (baseline recipe)", "baseline",
                  {} if arch == "resnet50" else {"model_options": {"arch": arch}})


def _pruned(label: str, **options) -> Config:
    return Config(label, "baseline", {}, measure="prune", options=options)


# ----------------------------------------------------------------------------------------------
# The claims
# ----------------------------------------------------------------------------------------------
def _claims() -> list[Claim]:
    T5 = "MGN Table 5, Market-1501 mAP (%)"
    G2 = "GraftedNet Table 2, Market-1501 mAP (%)"
    FD7, FD8 = "FD Table 7, R50b student, Market-1501 mAP (%)", "FD Table 8, R50b student, Market-1501 mAP (%)"
    S = "survey Table 5 (scenario 1), Market-1501 mAP (%)"
    S7 = "survey Table 7, Market-1501 mAP (%)"
    both, mgn, grafted = _baseline("both"), _mgn("mgn"), _grafted("graftednet")
    return [
        # --- chapter 01: the baseline's losses -------------------------------------------------
        Claim("baseline.triplet_helps_softmax", "baseline", "chapter 01; MGN §4.4 'Triplet Loss', Table 5",
              "Adding the batch-hard triplet loss to softmax improves the ResNet-50 baseline.",
              (both, _baseline("softmax")),
              paper_numbers=_paper("MGN Table 5: ResNet-50+TP vs ResNet-50, Market-1501 mAP (%)", 75.0, 71.4)),
        Claim("baseline.softmax_helps_triplet", "baseline", "chapter 01 (BoT §3, Luo et al. 2019)",
              "Softmax + triplet beats the triplet loss alone (TriNet).",
              (both, _baseline("triplet")),
              paper_numbers=_paper("not reported by the five papers", None, None)),
        # --- MGN --------------------------------------------------------------------------------
        Claim("mgn.vs_global", "mgn", "§4.4, Table 5",
              "MGN beats its Global-only network (ResNet-50+TP, 'Global (Single)').",
              (mgn, _mgn("global")), paper_numbers=_paper(T5, 86.9, 75.0)),
        Claim("mgn.vs_baseline", "mgn", "§4.4 'MGN vs ResNet-50', Table 5",
              "MGN beats the ResNet-50 baseline trained for the same budget.",
              (mgn, both), budget_from="mgn",
              paper_numbers=_paper("MGN Table 5: MGN w/o TP vs ResNet-50 (softmax), Market-1501 mAP (%)", 86.2, 71.4),
              notes="our baseline is chapter 01's BoT recipe at MGN's input, batch and epochs"),
        Claim("mgn.part3_helps", "mgn", "§4.4 'Multi-branch architecture settings', Table 5",
              "Removing the Part-3 branch hurts MGN.", (mgn, _mgn("mgn_wo_part3")),
              paper_numbers=_paper(T5, 86.9, 85.7)),
        Claim("mgn.triplet_helps", "mgn", "§4.4 'Triplet Loss', Table 5",
              "The triplet loss helps MGN (MGN vs MGN w/o TP).", (mgn, _mgn("mgn_wo_tp")),
              paper_numbers=_paper(T5, 86.9, 86.2)),
        Claim("mgn.part3_single_vs_global", "mgn", "§4.4, Table 5",
              "A single Part-3 network beats the single Global network (part features help).",
              (_mgn("part3"), _mgn("global")), paper_numbers=_paper(T5, 82.1, 75.0)),
        Claim("mgn.vs_ensemble", "mgn", "§4.4 'Multiple branch vs Multiple networks', Table 5",
              "MGN beats the ensemble of three independent single networks (G+P2+P3).",
              (mgn, Config("G+P2+P3 (ensemble of singles)", "mgn", {}, measure="ensemble",
                           options={"members": [_mgn(v).overrides for v in ("global", "part2", "part3")]})),
              paper_numbers=_paper(T5, 86.9, 85.2), equal_training=False,
              notes="the paper's ensemble uses the Part-3 branch of MGN as its third member; ours uses three single "
                    "networks trained separately (three times MGN's training images), as the section describes"),
        # --- GraftedNet -------------------------------------------------------------------------
        Claim("graftednet.al_helps", "graftednet", "§4.4.2, Table 2",
              "Accompanying learning helps: GraftedNet beats GraftedNet(-AL).",
              (grafted, _grafted("no_al")), paper_numbers=_paper(G2, 81.58, 78.28)),
        Claim("graftednet.mf_helps", "graftednet", "§4.4.1, Table 2",
              "The multi-level feature helps: GraftedNet beats GraftedNet(-MF).",
              (grafted, _grafted("no_mf")), paper_numbers=_paper(G2, 81.58, 74.27)),
        Claim("graftednet.pf_helps", "graftednet", "§4.4.1, Table 2",
              "The part-based feature helps: GraftedNet beats GraftedNet(-PF).",
              (grafted, _grafted("no_pf")), paper_numbers=_paper(G2, 81.58, 72.14)),
        Claim("graftednet.mf_pf_help", "graftednet", "§4.4.1, Table 2",
              "Removing both features hurts most: GraftedNet beats GraftedNet(-MF-PF).",
              (grafted, _grafted("no_mf_pf")), paper_numbers=_paper(G2, 81.58, 67.19)),
        Claim("graftednet.g8_vs_g1", "graftednet", "§4.4.3, Table 2",
              "Grouped reductions (g = 8) cost little accuracy against g = 1 (within 1 mAP point).",
              (grafted, _grafted("g1")), direction="noninferior", margin=0.01,
              paper_numbers=_paper(G2, 81.58, 82.01, reduction_params_M=[0.218, 1.709])),
        Claim("graftednet.vs_resnet50_accuracy", "graftednet", "§4.5, Table 3",
              "GraftedNet is near ResNet-50's accuracy (within 2 mAP points) at the same training budget.",
              (grafted, _resnet("resnet50")), direction="noninferior", margin=0.02, budget_from="graftednet",
              paper_numbers=_paper("GraftedNet Table 3, Market-1501 mAP (%)", 81.58, 78.67),
              notes="ResNet-50 is chapter 01's BoT baseline at GraftedNet's input, batch and epochs"),
        Claim("graftednet.vs_resnet50_params", "graftednet", "§4.5, Table 3",
              "GraftedNet has under a quarter of ResNet-50's parameters (paper: 4.60 vs 24.23 M, about 1/5).",
              (Config("GraftedNet", "graftednet", {}, measure="paper_params"),
               Config("ResNet-50 (baseline)", "baseline", {}, measure="paper_params")),
              metric="params_M", direction="less", factor=0.25, equal_training=False,
              paper_numbers=_paper("GraftedNet Table 3 (parameters, M)", 4.60, 24.23, unit="parameters (M)"),
              notes="paper-size networks (width 1, classifiers excluded); a count, identical over seeds"),
        Claim("graftednet.vs_resnet50_latency", "graftednet", "§4.5, Table 3",
              "GraftedNet has a lower CPU latency than ResNet-50 (one image, paper-size networks).",
              (Config("GraftedNet", "graftednet", {}, measure="latency"),
               Config("ResNet-50 (baseline)", "baseline", {}, measure="latency", options={"input_from": "graftednet"})),
              metric="latency_ms", direction="less", equal_training=False,
              paper_numbers=_paper("GraftedNet Table 3 (ms per image, 16-core Xeon)", 268.57, 408.64,
                                   unit="latency (ms)"),
              notes="width-1 networks at GraftedNet's full input, batch 1, one thread; seeds repeat the timing"),
        # --- Factorized Distillation --------------------------------------------------------------
        Claim("fd.vs_control", "fd", "§4.3, Tables 3 and 7",
              "The FD student beats the same student trained as long without FD (L_cls only).",
              (_fd("FD (all views, L_cls + L_attr + L_metric)"), _fd("L_cls only (control)", use=[])),
              paper_numbers=_paper(FD7, 85.08, 78.2)),
        Claim("fd.all_views_vs_holistic", "fd", "§4.5, Table 8",
              "Distilling from all views beats distilling from the holistic teacher alone.",
              (_fd("all views (FD)"), _fd("holistic teacher only", views=["holistic"])),
              paper_numbers=_paper(FD8, 85.08, 82.64)),
        Claim("fd.partial_g1_helps", "fd", "§4.5, Table 8",
              "Adding Partial Group 1's teachers to the holistic teacher helps.",
              (_fd("Hol + PartialG1", views=["holistic", "up1", "mid1", "dn1"]), _fd("Hol", views=["holistic"])),
              paper_numbers=_paper(FD8, 84.4, 82.64)),
        Claim("fd.attr_helps", "fd", "§4.5, Table 7",
              "L_attr (the FMFBs' regression) helps over L_cls alone.",
              (_fd("L_cls + L_attr", use=["attr"]), _fd("L_cls only", use=[])), paper_numbers=_paper(FD7, 84.69, 78.2)),
        Claim("fd.metric_helps", "fd", "§4.5, Table 7",
              "L_metric (the RFBs' regression) helps over L_cls alone.",
              (_fd("L_cls + L_metric", use=["metric"]), _fd("L_cls only", use=[])),
              paper_numbers=_paper(FD7, 83.76, 78.2)),
        # --- the pruning survey -------------------------------------------------------------------
        Claim("survey.pruned_r50_vs_r18", "survey", "§5.1, Table 5, Fig. 3",
              "A ResNet-50 pruned to C1 (about ResNet-18's cost) beats ResNet-18.",
              (_pruned("ResNet-50, L1 to C1", method="l1", target="C1", scenario=1), _resnet("resnet18")),
              paper_numbers=_paper(S, 67.04, 61.23),
              notes="scenario 1 from the zoo's source-domain backbone; the fine-tuning on the target has the "
                    "preset's epochs, as ResNet-18's training"),
        Claim("survey.pruned_near_r50", "survey", "§5.1, Table 5",
              "The pruned ResNet-50 (L1, C1) stays near the unpruned one (within about 2 mAP points).",
              (_pruned("ResNet-50, L1 to C1", method="l1", target="C1", scenario=1), _resnet("resnet50")),
              direction="noninferior", margin=0.025, paper_numbers=_paper(S, 67.04, 69.16)),
        Claim("survey.l1_vs_entropy_c1", "survey", "§5.1, Table 5",
              "One-shot criteria at C1: L1 beats Entropy.",
              (_pruned("L1 to C1", method="l1", target="C1", scenario=1),
               _pruned("Entropy to C1", method="entropy", target="C1", scenario=1)),
              paper_numbers=_paper(S, 67.04, 65.16)),
        Claim("survey.oneshot_vs_iterative_c1", "survey", "§5.1, Table 5",
              "One-shot L1 is at least as good as iterative Taylor at C1 (within 1 mAP point).",
              (_pruned("L1 one-shot to C1", method="l1", target="C1", scenario=1),
               _pruned("Taylor iterative to C1", method="taylor", strategy="iterative", target="C1", scenario=1)),
              direction="noninferior", margin=0.01, paper_numbers=_paper(S, 67.04, 66.35),
              status="not runnable: run_scenario retrains every iterative step for the fine-tuning's epochs "
                     "(tens of steps × the preset's epochs); a per-step budget is needed first"),
        Claim("survey.criteria_c2", "survey", "§5.2, Table 7 (scenario 1, C2)",
              "At C2, L1 is at least as good as Auto-Balanced (within 1 mAP point).",
              (_pruned("L1 to C2", method="l1", target="C2", scenario=1),
               _pruned("Auto-Balanced to C2", method="auto_balanced", target="C2", scenario=1)),
              direction="noninferior", margin=0.01, paper_numbers=_paper(S7, 63.63, 63.16), equal_training=False,
              notes=_SCENARIOS_DIFFER),
        Claim("survey.soft_vs_oneshot_scenario2", "survey", "§5.3, Table 7 (scenario 2, C2)",
              "Soft pruning (PSFP) beats one-shot L1 when pruning on the source domain (scenario 2).",
              (_pruned("PSFP, scenario 2, C2", method="psfp", target="C2", scenario=2),
               _pruned("L1, scenario 2, C2", method="l1", target="C2", scenario=2)),
              paper_numbers=_paper(S7, 65.03, 49.18), equal_training=False, notes=_SCENARIOS_DIFFER),
        Claim("survey.scenario1_vs_2", "survey", "§5.2, Table 7 (L1, C1)",
              "Scenario 1 (prune on the target after pre-training) beats scenario 2.",
              (_pruned("L1, scenario 1", method="l1", target="C1", scenario=1),
               _pruned("L1, scenario 2", method="l1", target="C1", scenario=2)),
              paper_numbers=_paper(S7, 67.04, 47.46), equal_training=False, notes=_SCENARIOS_DIFFER),
        Claim("survey.scenario1_vs_3", "survey", "§5.2, Table 7 (L1, C1)",
              "Scenario 1 beats scenario 3.",
              (_pruned("L1, scenario 1", method="l1", target="C1", scenario=1),
               _pruned("L1, scenario 3", method="l1", target="C1", scenario=3)),
              paper_numbers=_paper(S7, 67.04, 53.22), equal_training=False, notes=_SCENARIOS_DIFFER),
        Claim("survey.scenario1_vs_4", "survey", "§5.2, Table 6 (L1)",
              "Scenario 1 beats scenario 4.",
              (_pruned("L1, scenario 1", method="l1", target="C1", scenario=1),
               _pruned("L1, scenario 4", method="l1", target="C1", scenario=4)),
              paper_numbers=_paper("survey Table 6 (L1), Market-1501 mAP (%)", 67.04, 31.41), equal_training=False,
              notes=_SCENARIOS_DIFFER),
        Claim("survey.pcb_bfe_vs_all", "survey", "§5.3, Table 8 (ResNet-50)",
              "PSFP on PCB: pruning the backbone only is as good as also pruning LC + FC (within 1 mAP point).",
              (Config("PSFP + PCB (BFE)", "pcb", {}, measure="prune_pcb", options={"part": "bfe"}),
               Config("PSFP + PCB (BFE + LC + FC)", "pcb", {}, measure="prune_pcb", options={"part": "bfe+lc+fc"})),
              direction="noninferior", margin=0.01,
              paper_numbers=_paper("survey Table 8 (ResNet-50), Market-1501 mAP (%)", 69.4, 69.1),
              notes="both from the zoo's source-domain backbone, PSFP (l2) while training the preset's epochs on "
                    "the target"),
        # --- DaRe -------------------------------------------------------------------------------------
        Claim("dare.fusion_vs_best_stage", "dare", "§5.2 'The impact of fusion', Fig. 3",
              "The fused embedding is at least as good as the best single stage's.",
              (_dare("fusion", metric="fusion/mAP"), _dare("best single stage", metric="best_stage/mAP")),
              paper_numbers=_paper("DaRe Fig. 3 (figure only; stage 1 has a 33.3 % Rank-1 error)", None, None),
              notes="one trained model per seed: both sides are embeddings of it (Welch's t ignores the pairing)"),
        Claim("dare.fusion_vs_best_stage_x3", "dare", "§5.2 'The impact of fusion', Fig. 3",
              "The fused embedding is at least as good as the best single stage's, with DaRe trained 3× as long.",
              (_dare("fusion", metric="fusion/mAP"), _dare("best single stage", metric="best_stage/mAP")),
              paper_numbers=_paper("DaRe Fig. 3 (figure only; stage 1 has a 33.3 % Rank-1 error)", None, None),
              train_scale=3.0,
              departure="DaRe trained 3× the profile's epochs with its learning-rate schedule stretched to match "
                        "(t0 and t1 × 3): in quick the rate has decayed by t1 = 4 epochs while the early stages are "
                        "still weak, and a weak stage pulls the learnt sum of Eq. (1) below stage 4",
              notes="one trained model per seed: both sides are embeddings of it (Welch's t ignores the pairing)"),
        Claim("dare.deep_supervision_early", "dare", "§5.2 'The impact of deep supervision', Fig. 4",
              "Deep supervision helps the early exits: stage 1 with deep supervision beats stage 1 without.",
              (_dare("stage 1, deep supervision", metric="stage1/mAP"),
               _dare("stage 1, fusion loss only", metric="stage1/mAP", deep_supervision=False)),
              paper_numbers=_paper("DaRe Fig. 4 (figure only; 'error rates increase by 2 %' without)", None, None)),
        Claim("dare.deep_supervision_fusion", "dare", "§5.2 'The impact of deep supervision', Fig. 4",
              "Deep supervision helps the fused embedding.",
              (_dare("fusion, deep supervision", metric="fusion/mAP"),
               _dare("fusion, fusion loss only", metric="fusion/mAP", deep_supervision=False)),
              paper_numbers=_paper("DaRe Fig. 4 (figure only)", None, None)),
        Claim("dare.vs_seq_ensemble", "dare", "§5.3.1, Fig. 5",
              "At equal test-time budget (DaRe's full cost), DaRe beats the sequential ensemble of ResNet-18/34/50.",
              (Config("DaRe", "dare", {}, measure="anytime"),
               Config("sequential ensemble (ResNet-18, -34, -50)", "seq_ensemble", {}, measure="anytime")),
              metric="rank1", budget_from="dare", equal_training=False,
              paper_numbers=_paper("DaRe Fig. 5 (figure only; 3-5 points higher above 2.5e9 Mul-Adds)", None, None,
                                   unit="Rank-1 (%)"),
              notes="each member ResNet is trained separately with the same recipe (§5.3.1), so the ensemble sees "
                    "three times the training images; the budget compared is test-time multiply-adds"),
        Claim("dare.distance_vs_random", "dare", "§5.3.2, Fig. 6",
              "In the budgeted stream, distance routing beats random routing at the same average budget.",
              (_dare("distance routing", metric="rank1", measure="dare_routing", rule="distance"),
               _dare("random routing", metric="rank1", measure="dare_routing", rule="random")),
              metric="rank1", paper_numbers=_paper("DaRe Fig. 6 (figure only)", None, None, unit="Rank-1 (%)")),
        Claim("dare.margin_vs_random", "dare", "§5.3.2, Fig. 6",
              "In the budgeted stream, margin routing beats random routing at the same average budget.",
              (_dare("margin routing", metric="rank1", measure="dare_routing", rule="margin"),
               _dare("random routing", metric="rank1", measure="dare_routing", rule="random")),
              metric="rank1", paper_numbers=_paper("DaRe Fig. 6 (figure only)", None, None, unit="Rank-1 (%)")),
        Claim("dare.margin_vs_distance", "dare", "§5.3.2, Fig. 6",
              "With gallery labels, margin routing beats distance routing.",
              (_dare("margin routing", metric="rank1", measure="dare_routing", rule="margin"),
               _dare("distance routing", metric="rank1", measure="dare_routing", rule="distance")),
              metric="rank1", paper_numbers=_paper("DaRe Fig. 6 (figure only)", None, None, unit="Rank-1 (%)")),
    ]


CLAIMS: list[Claim] = _claims()


def claim_ids() -> list[str]:
    return [c.id for c in CLAIMS]


def get_claim(claim_id: str) -> Claim:
    """The claim ``claim_id``; a ``KeyError`` listing the ids for an unknown one."""
    for c in CLAIMS:
        if c.id == claim_id:
            return c
    raise KeyError(f"unknown claim {claim_id!r}; claims are: {', '.join(claim_ids())}")


def runnable_claims() -> list[Claim]:
    return [c for c in CLAIMS if c.runnable]
