import pytest
import torch

from reidbook.prune.scenarios import rehead, run_scenario

pytestmark = pytest.mark.usefixtures("one_thread")


@pytest.fixture(scope="module")
def source(smoke_root):
    from reidbook.data import load_dataset

    return load_dataset(smoke_root / "source", require_test=False)


@pytest.fixture(scope="module")
def start(source):
    from reidbook.models import build_model

    torch.manual_seed(0)
    return build_model("baseline", source.num_train_pids, profile="smoke")


@pytest.mark.parametrize("n,strategy", [(1, "once"), (2, "once"), (3, "psfp"), (4, "once")])
def test_scenarios_run_end_to_end(n, strategy, start, source, smoke_dataset):
    net, rep = run_scenario(n, "l1", 0.5, strategy=strategy, profile="smoke", start=start, source=source,
                            target_data=smoke_dataset,
                            epochs=1, device="cpu", max_iters_per_epoch=1, evaluate=(n == 4))
    assert rep["macs_ratio"] <= 0.5 + 1e-9 and rep["params_after"] < rep["params_before"]
    assert net.num_classes == smoke_dataset.num_train_pids
    assert rep["stages"][-1]["stage"] == ("prune on target" if n in (2, 3) else "fine-tune on target")
    if n == 4:
        assert 0.0 <= rep["mAP"] <= 1.0


def test_rehead_and_bad_scenario(start):
    import copy

    from reidbook.models import build_model

    pcb = rehead(build_model("pcb", 7, profile="smoke"), 3)
    assert all(c.out_features == 3 for c in pcb.classifiers)
    with pytest.raises(ValueError, match="scenario"):
        run_scenario(5, start=copy.deepcopy(start), source=object(), target_data=object())


def test_scenario_cli_smoke(smoke_root, tmp_path, capsys):
    import argparse
    import json

    from reidbook.commands import prune_scenario as scenario_cli

    p = argparse.ArgumentParser()
    scenario_cli.add_arguments(p)
    args = p.parse_args(["--scenario", "4", "--profile", "smoke", "--target", "0.6", "--max-iters", "1",
                         "--no-eval", "--device", "cpu", "--out", str(tmp_path / "r.json")])
    assert scenario_cli.main(args) == 0
    rep = json.loads((tmp_path / "r.json").read_text())
    assert rep["scenario"] == 4 and rep["macs_ratio"] <= 0.6 + 1e-9


@pytest.mark.parametrize("n,method", [(1, "auto_balanced"), (3, "thinet")])
def test_scenarios_with_the_surveys_pairing(n, method, start, source, smoke_dataset):
    """strategy="auto": Auto-Balanced trains with its regulariser, ThiNet prunes layer by layer."""
    from reidbook.prune.scenarios import default_strategy

    net, rep = run_scenario(n, method, 0.5, profile="smoke", start=start, source=source, target_data=smoke_dataset,
                            epochs=1, device="cpu", max_iters_per_epoch=1, evaluate=False)
    assert rep["strategy"] == default_strategy(method) in ("auto_balanced", "layerwise")
    assert rep["macs_ratio"] <= 0.5 + 1e-9 and rep["params_after"] < rep["params_before"]


def test_psfp_scenario_4_is_not_applicable(start):
    with pytest.raises(ValueError, match="not applicable"):
        run_scenario(4, "psfp", 0.5, strategy="auto", start=start, source=object(), target_data=object())


def test_survey_tables_and_chapter_06_figures():
    import matplotlib

    matplotlib.use("Agg")
    import pandas as pd

    from reidbook.prune.scenarios import survey_table
    from reidbook.viz import pruning as vp

    t5 = survey_table(5)
    assert t5.set_index("model").loc["ResNet-50", "mAP"] == 69.16 and len(t5) == 8
    assert len(survey_table(7)) == 20 and set(survey_table(8).columns) >= {"M", "T", "mAP", "rank1"}
    with pytest.raises(ValueError, match="tables"):
        survey_table(3)
    df = pd.DataFrame({"model": ["R50", "L1"], "kind": ["network", "pruned"], "MACs_M": [2.0, 1.0],
                       "params_M": [1.0, 0.5], "mAP": [50.0, 40.0], "rank1": [60.0, 55.0]})
    assert len(vp.plot_tradeoff(df).axes) == 2
    sc = pd.DataFrame({"scenario": [1, 3, 3], "method": ["l1", "l1", "psfp"], "target": [0.5, 0.5, 0.5],
                       "mAP": [1.0, 2.0, 3.0]})
    assert len(vp.plot_scenarios(sc).axes) == 1
    recs = [{"unit": "backbone.layer1.0.conv1", "err_plain": 0.5, "err_recon": 0.2}, {"unit": "fine-tune", "loss": 1.0}]
    assert vp.plot_reconstruction(recs).axes[0].get_yscale() == "log"
    assert vp.plot_strategy_curves({"rate": ([0, 1], [0.0, 0.5])}).axes


def test_negative_epochs_are_refused_before_any_work(start, capsys):
    """`prune-scenario --epochs -1` used to save an untrained model as the scenario's result."""
    import argparse

    from reidbook.commands import prune_scenario

    with pytest.raises(ValueError, match="epochs must be an integer ≥ 0"):
        run_scenario(1, "l1", 0.5, start=start, source=object(), target_data=object(), epochs=-1)
    p = argparse.ArgumentParser()
    prune_scenario.add_arguments(p)
    with pytest.raises(SystemExit):
        p.parse_args(["--scenario", "1", "--epochs", "-1"])
    assert "--epochs: must be ≥ 1" in capsys.readouterr().err
    args = p.parse_args(["--scenario", "1"])
    args.epochs = 0
    with pytest.raises(ValueError, match="untrained model"):
        prune_scenario.main(args)


def test_survey_table7_has_no_single_best_scenario():
    """Chapter 06 said "scenario 1 is best for every method"; the survey's Table 7 has PSFP at C2 best in
    scenario 3. The chapter now prints what the table says."""
    from reidbook.prune.scenarios import survey_table
    from reidbook.prune.verdicts import describe_scenarios, scenario_winners

    win = scenario_winners(survey_table(7), digits=2).set_index(["method", "target"])["best"]
    assert win[("PSFP", "C2")] == (3,) and win[("L1", "C1")] == (1,) and win[("Auto-Balanced", "C2")] == (1,)
    lines = describe_scenarios(survey_table(7), source="survey: ", digits=2)
    assert lines[-1] == ("survey: no scenario is best everywhere: the best is scenario 1 or 3 depending on method "
                         "and target")
    assert "survey: PSFP at C2: scenario 3 is best (S1 63.58, S2 65.03, S3 65.88)" in lines
    assert "survey: PSFP at C1: scenario 1 is best (S1 65.92, S2 65.55, S3 65.88)" in lines
    # at one decimal PSFP's C1 values 65.92 and 65.88 are shown alike: a tie, not a winner
    shown_at_one_decimal = describe_scenarios(survey_table(7), "mAP", "survey: ")
    assert "survey: PSFP at C1: scenarios 1 and 3 tie (S1 65.9, S2 65.5, S3 65.9)" in shown_at_one_decimal
    import pandas as pd

    one = pd.DataFrame({"scenario": [1, 3], "method": ["l1", "l1"], "target": [0.5, 0.5], "mAP": [4.6, 4.7]})
    assert describe_scenarios(one) == ["l1 at 0.5: scenario 3 is best (S1 4.6, S3 4.7)"]  # no "for every method"


def test_chapter_06_verdicts_and_sentences_come_from_the_tables():
    import matplotlib

    matplotlib.use("Agg")
    import pandas as pd

    from reidbook.prune import C1
    from reidbook.prune.report import StrategyReport
    from reidbook.prune.verdicts import describe_latency, describe_strategy_internals, survey_claims
    from reidbook.viz import pruning as vp

    t5 = pd.DataFrame({"kind": ["network", "network", "pruned R50", "pruned R50"], "mAP": [50.0, 40.0, 45.0, 49.0],
                       "params_M": [2.0, 1.0, 1.0, 1.2]}, index=["ResNet-50", "ResNet-18", "L1", "Taylor"])
    cost = pd.DataFrame({"latency_ratio_b1": [1.0, 0.7, 0.8, 0.5], "macs_ratio": [1.0, 0.5, 0.49, 0.45]},
                        index=["ResNet-50", "L1", "Taylor", "ResNet-18"])
    sc = pd.DataFrame({"scenario": [1, 3], "method": ["l1", "l1"], "target": [round(C1, 3)] * 2, "mAP": [30.0, 35.0]})
    t8 = pd.DataFrame({"mAP": [40.0, 39.0], "params_M": [1.0, 0.9], "MACs_M": [5.0, 5.0]},
                      index=["PSFP + PCB (BFE, l2)", "PSFP + PCB (BFE + LC + FC, l2)"])
    v = survey_claims(t5, {"auto": 30.0, None: 20.0}, cost, sc, t8, C1).set_index("survey's claim")["we agree"]
    assert v["Table 5: the un-pruned ResNet-50 beats ResNet-18 (mAP)"]
    assert not v["§5.1: L1 is the best or within 1 point of the best of the five methods"]  # 45 vs Taylor 49
    assert not v["Table 7: scenario 1 is the best scenario for L1"]
    assert v["Table 8: BFE + LC + FC has fewer parameters than BFE, same test MACs"]
    lines = describe_latency(cost, "ResNet-50", ["L1", "Taylor"], ["ResNet-18"])
    assert lines[0] == "the pruned models keep 0.490–0.500 of ResNet-50's multiply-adds"
    assert "L1: MACs ×0.50, latency ×0.70 at batch 1 → 60 % of the MAC saving became speed" in lines
    ab = StrategyReport("l1", (64, 32), 10, 5, 10, 5, "auto_balanced", 0.5,
                        [{"step": 1, "weak_share_before": 0.2, "weak_share_after": 0.1}])
    ps = StrategyReport("l2", (64, 32), 10, 5, 10, 5, "psfp", 0.5, [{"step": 1, "rate": 0.1}, {"step": 2, "rate": 0.3}])
    text = describe_strategy_internals(ab, ps)
    assert "0.2000 → 0.1000 (down by 50.00% of its value)" in text[0] and "0.100, 0.300" in text[1]
    assert len(vp.plot_strategy_internals(ab, ps).axes) == 2


def test_prune_command_never_cuts_a_training_procedure_once(monkeypatch):
    """`reidbook prune --method psfp` ran a one-shot ℓ2 cut labelled "psfp"; it now runs PSFP's strategy, and a
    --ratio (which a training procedure cannot honour) is refused before the model is loaded."""
    import argparse

    from reidbook import zoo
    from reidbook.commands import prune as prune_cmd

    def no_zoo(*a, **k):
        raise AssertionError("the zoo must not be reached")

    monkeypatch.setattr(zoo, "get", no_zoo)
    p = argparse.ArgumentParser()
    prune_cmd.add_arguments(p)
    for method in ("psfp", "auto_balanced", "play_and_prune"):
        with pytest.raises(ValueError, match="give --target-macs"):
            prune_cmd.main(p.parse_args(["--method", method, "--ratio", "0.3"]))
    with pytest.raises(ValueError, match="--epochs must be ≥ 1"):
        prune_cmd.main(p.parse_args(["--method", "psfp", "--target-macs", "0.5", "--epochs", "0"]))
