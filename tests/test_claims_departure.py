"""Declared departures (issue 19, item 6): a claim may train its configurations k times as long — epochs and
learning-rate schedule together — and must say so; the ledger and the chapters show it."""
import pytest

from reidbook.claims import runner
from reidbook.claims.registry import Claim, Config, get_claim
from reidbook.presets import get_preset
from reidbook.presets.scaling import scale_schedule, scaled_training


def test_scale_schedule_stretches_every_time_and_nothing_else():
    dare = {"name": "dare_exp", "t0": 2, "t1": 4, "unit": "epochs", "decay_to": 0.001, "beta1": 0.9,
            "beta1_after": 0.5}
    assert scale_schedule(dare, 3) == {**dare, "t0": 6, "t1": 12}
    warm = {"name": "warmup_step", "warmup": 0.3, "warmup_factor": 0.1, "milestones": [3, 5], "gamma": 0.5}
    assert scale_schedule(warm, 2) == {**warm, "warmup": 0.6, "milestones": [6, 10]}
    assert scale_schedule({"name": "step", "step_size": 20, "gamma": 0.5}, 1.5)["step_size"] == 30
    assert scale_schedule(None, 2) is None
    with pytest.raises(ValueError, match="> 0"):
        scale_schedule(dare, 0)


def test_scaled_training_is_what_the_zoo_takes():
    p = get_preset("dare", "quick")
    over = scaled_training(p, 3)
    assert over["epochs"] == 3 * p.epochs
    assert (over["schedule"]["t0"], over["schedule"]["t1"]) == (3 * p.schedule["t0"], 3 * p.schedule["t1"])
    assert scaled_training(p, 0.01)["epochs"] == 1  # never fewer than one epoch


def test_a_departure_must_be_declared():
    cfg = Config("a", "baseline", {})
    with pytest.raises(ValueError, match="declare"):
        Claim("t.x2", "baseline", "test", "longer", (cfg, cfg), train_scale=2.0)
    with pytest.raises(ValueError, match="> 0"):
        Claim("t.x0", "baseline", "test", "never", (cfg, cfg), train_scale=0.0, departure="none")


def test_the_dare_departure_claim_trains_three_times_as_long_as_its_twin():
    twin, longer = get_claim("dare.fusion_vs_best_stage"), get_claim("dare.fusion_vs_best_stage_x3")
    assert longer.departure and longer.train_scale == 3.0 and longer.configs == twin.configs
    p = get_preset("dare", "quick")
    runs, keys = runner.plan_runs([twin, longer], "quick", [0], "d", None)
    short, long_ = runs[keys[twin.id][0][0]], runs[keys[longer.id][0][0]]
    assert short["overrides"] == {} and long_["overrides"]["epochs"] == 3 * p.epochs
    assert long_["overrides"]["schedule"]["t1"] == 3 * p.schedule["t1"]
    assert keys[twin.id] != keys[longer.id]  # other runs, not the twin's reused
    assert longer.to_dict()["departure"] == longer.departure


def test_a_declared_departure_is_said_in_the_sentence_and_the_table(tmp_path, monkeypatch):
    from reidbook import claims
    from reidbook.claims import measures
    from reidbook.claims.ledger import claims_table_markdown, describe_claim, load_ledger

    monkeypatch.setenv("REIDBOOK_CACHE", str(tmp_path / "cache"))
    seen = []

    def fake(config, ctx):  # a stand-in training: images seen = 32 per epoch
        seen.append(config["overrides"]["epochs"])
        value = 0.5 + 0.1 * (config["options"]["kind"] == "a") + 0.005 * ctx.seed
        return {"metrics": {"mAP": value}, "images_seen": 32 * config["overrides"]["epochs"],
                "train_seconds": 1.0, "trained_now": True}

    monkeypatch.setitem(measures.MEASURES, "fake", fake)
    monkeypatch.setattr(runner, "_TRAINING_MEASURES", (*runner._TRAINING_MEASURES, "fake"))
    cfgs = tuple(Config(k, "baseline", {"epochs": 2}, measure="fake", options={"kind": k}) for k in "ab")
    claim = Claim("t.x2", "baseline", "test", "a beats b", cfgs, paper_numbers={"source": "t", "values": [1, 0]},
                  train_scale=2.0, departure="trained twice as long")
    out = tmp_path / "ledger.json"
    claims.run_claims("smoke", data="fake-data", out=out, claims=[claim], seeds=2, command="test")
    assert seen == [4, 4, 4, 4]  # 2 epochs × 2
    ledger = load_ledger("smoke", out)
    assert "[declared departure: trained twice as long]" in describe_claim(ledger, "t.x2")
    assert "**Declared departure**: trained twice as long." in claims_table_markdown(ledger)


def test_a_departure_is_not_run_in_full():
    longer = get_claim("dare.fusion_vs_best_stage_x3")
    assert runner._for_profile(longer, "quick") is longer
    full = runner._for_profile(longer, "full")
    assert not full.runnable and "declared departure" in full.status and full.id == longer.id
    assert runner._for_profile(get_claim("dare.fusion_vs_best_stage"), "full").runnable
