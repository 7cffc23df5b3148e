"""The claims runner and the ledger with a stand-in measure (no training): planning, equal budgets,
resumption after an interruption, refusal to mix settings, schema and provenance, staleness, the
README table. The real trainings are in tests/test_claims_smoke.py."""
import json

import pytest

from reidbook import claims
from reidbook.claims import measures, runner
from reidbook.claims.ledger import (
    LedgerError,
    chapter_claim,
    claims_table_markdown,
    describe_claim,
    is_stale,
    load_ledger,
    stale_reasons,
)
from reidbook.claims.registry import Claim, Config

SHIFT = {"good": 0.10, "bad": 0.0, "same": 0.0}


class FakeMeasure:
    """Per-seed values that a claim can decide: ``options["kind"]`` shifts the mean; counts its calls and can
    stop (like Ctrl-C) after ``stop_after`` calls."""

    def __init__(self, stop_after=None, images=None):
        self.calls, self.stop_after, self.images = [], stop_after, images or {}

    def __call__(self, config, ctx):
        if self.stop_after is not None and len(self.calls) >= self.stop_after:
            raise KeyboardInterrupt
        self.calls.append((config["options"]["kind"], ctx.seed))
        kind = config["options"]["kind"]
        value = 0.5 + SHIFT[kind] + 0.005 * ctx.seed
        seen = self.images.get(kind, 32 * config["overrides"].get("epochs", 1))
        return {"metrics": {"mAP": value, "rank1": value + 0.1}, "images_seen": seen, "train_seconds": 1.0,
                "trained_now": True}


def _claim(cid, a="good", b="bad", **kw):
    return Claim(cid, "baseline", "test", f"{a} beats {b}",
                 (Config(a, "baseline", {"epochs": 2}, measure="fake", options={"kind": a}),
                  Config(b, "baseline", {"epochs": 2}, measure="fake", options={"kind": b})),
                 paper_numbers={"source": "test", "values": [1.0, 0.5]}, **kw)


@pytest.fixture
def fake(monkeypatch, tmp_path):
    monkeypatch.setenv("REIDBOOK_CACHE", str(tmp_path / "cache"))
    m = FakeMeasure()
    monkeypatch.setitem(measures.MEASURES, "fake", m)
    monkeypatch.setattr(runner, "_TRAINING_MEASURES", (*runner._TRAINING_MEASURES, "fake"))  # it "trains"
    return m


def _run(tmp_path, reg, **kw):
    kw.setdefault("seeds", 3)
    return claims.run_claims("smoke", data="fake-data", out=tmp_path / "ledger.json", claims=reg,
                             command="test", **kw)


def test_ledger_schema_verdicts_and_provenance(fake, tmp_path):
    reg = [_claim("t.good_vs_bad"), _claim("t.same_vs_bad", "same", "bad"),
           Claim("t.later", "baseline", "test", "not yet", (Config("a", "baseline"), Config("b", "baseline")),
                 paper_numbers={"source": "test", "values": [None, None]}, status="not runnable: test")]
    ledger = _run(tmp_path, reg)
    assert set(ledger) == {"schema", "settings", "provenance", "runs", "failures", "claims"}
    assert ledger["failures"] == []
    on_disk = json.loads((tmp_path / "ledger.json").read_text())
    assert on_disk["claims"] == json.loads(json.dumps(ledger["claims"]))
    # 3 distinct configurations (good, bad, same) × 3 seeds; "bad" is shared by two claims and run once
    assert len(ledger["runs"]) == 9 and len(fake.calls) == 9
    c = ledger["claims"]["t.good_vs_bad"]
    good = c["configs"][0]
    assert good["values"] == pytest.approx([0.60, 0.605, 0.61]) and good["mean"] == pytest.approx(0.605)
    assert good["std"] == pytest.approx(0.005)
    assert c["verdict"]["verdict"] == "reproduced" and c["verdict"]["diff"] == pytest.approx(0.10)
    assert c["paper_numbers"]["values"] == [1.0, 0.5]
    assert ledger["claims"]["t.same_vs_bad"]["verdict"]["verdict"] == "inconclusive"
    assert ledger["claims"]["t.later"]["status"] == "not runnable: test"
    prov = ledger["provenance"]
    for key in ("commit", "date", "cpu", "torch", "threads", "jobs", "wall_seconds", "command"):
        assert prov[key] is not None, key
    assert prov["command"] == "test" and prov["jobs"] == 1
    assert prov["run_commits"] and all(len(c) == 40 for c in prov["run_commits"])   # each run's commit
    assert all(cfg["wall_seconds"] >= 0 and len(cfg["images_seen"]) == 3 for cfg in c["configs"])
    loaded = load_ledger("smoke", tmp_path / "ledger.json")
    assert loaded.verdicts == {"t.good_vs_bad": "reproduced", "t.same_vs_bad": "inconclusive",
                               "t.later": "not runnable"}
    assert loaded.per_seed("t.good_vs_bad")["good"] == pytest.approx([0.60, 0.605, 0.61])
    table = claims_table_markdown(loaded)
    assert "| `t.good_vs_bad`" in table and "60.5 ± 0.5 vs 50.5 ± 0.5" in table and "reproduced" in table
    assert "not runnable: test" in table
    sentence = describe_claim(loaded, "t.good_vs_bad")
    assert "Over 3 seeds: good 60.5 ± 0.5 and bad 50.5 ± 0.5 (mAP); difference +10.0 points" in sentence
    assert "reproduced: the claim holds here" in sentence and "The paper: 1 vs 0.5 (test)." in sentence
    assert "within the seed-to-seed noise" in describe_claim(loaded, "t.same_vs_bad")
    assert "Not measured (not runnable: test)" in describe_claim(loaded, "t.later")
    assert describe_claim(loaded, "t.good_vs_bad", stale=True).startswith("stale ledger")
    assert "run `make claims`" in describe_claim(None, "t.good_vs_bad")


def test_equal_budgets_recorded_and_unequal_ones_refused(fake, tmp_path, monkeypatch):
    ledger = _run(tmp_path, [_claim("t.c")], seeds=2)
    budget = ledger["claims"]["t.c"]["budget"]
    assert budget["equal"] is True and budget["images_seen"] == [[64, 64], [64, 64]]
    fake.images["bad"] = 32  # "bad" trained on half the images: the claim cannot be decided
    monkeypatch.setenv("REIDBOOK_CACHE", str(tmp_path / "cache2"))  # not the runs recorded above
    ledger = _run(tmp_path / "other", [_claim("t.c2")], seeds=2)
    c = ledger["claims"]["t.c2"]
    assert c["budget"]["equal"] is False and c["verdict"]["verdict"] == "inconclusive"
    assert "unequal training budgets" in c["verdict"]["why"]


def test_budget_from_puts_one_models_budget_on_every_config(fake, tmp_path):
    from reidbook.presets import get_preset

    claim = _claim("t.budget", budget_from="mgn")
    runs, keys = runner.plan_runs([claim], "smoke", [0], "d", None)
    mgn = get_preset("mgn", "smoke")
    for run in runs.values():
        assert {k: run["overrides"][k] for k in ("height", "width", "P", "K", "epochs")} == \
            {"height": mgn.height, "width": mgn.width, "P": mgn.P, "K": mgn.K, "epochs": mgn.epochs}


def test_dry_run_plans_without_running(fake, tmp_path):
    reg = [_claim("t.c"), _claim("t.d", "same", "bad")]
    plan = _run(tmp_path, reg, dry_run=True)
    assert plan["runs"] == 9 and plan["recorded"] == 0 and plan["pending"] == 9
    assert plan["by_measure"] == {"fake": {"pending": 9, "zoo_cached": 0}}
    assert fake.calls == [] and not (tmp_path / "ledger.json").exists()
    _run(tmp_path, reg, only=["t.c"])
    plan = _run(tmp_path, reg, dry_run=True)
    assert plan["recorded"] == 6 and plan["pending"] == 3


def test_resumes_after_interruption_without_redoing_finished_runs(fake, tmp_path, monkeypatch):
    reg = [_claim("t.c")]
    stopping = FakeMeasure(stop_after=3)
    monkeypatch.setitem(measures.MEASURES, "fake", stopping)
    with pytest.raises(KeyboardInterrupt):
        _run(tmp_path, reg)
    assert len(stopping.calls) == 3
    assert not (tmp_path / "ledger.json").exists()          # no half ledger
    assert len(list(runner.runs_dir("smoke").glob("*.json"))) == 3
    again = FakeMeasure()
    monkeypatch.setitem(measures.MEASURES, "fake", again)
    ledger = _run(tmp_path, reg)
    assert len(again.calls) == 3                             # only the three unfinished runs
    assert set(again.calls).isdisjoint(stopping.calls)
    assert ledger["claims"]["t.c"]["verdict"]["verdict"] == "reproduced"
    third = FakeMeasure()
    monkeypatch.setitem(measures.MEASURES, "fake", third)
    _run(tmp_path, reg)
    assert third.calls == []                                 # everything reused


def test_refuses_to_mix_settings(fake, tmp_path, monkeypatch):
    reg = [_claim("t.c"), _claim("t.d", "same", "bad")]
    _run(tmp_path, reg, only=["t.c"])
    ledger = _run(tmp_path, reg, only=["t.d"])               # same settings: merged
    assert set(ledger["claims"]) == {"t.c", "t.d"}
    with pytest.raises(LedgerError, match="seeds"):
        _run(tmp_path, reg, seeds=2)
    monkeypatch.setattr(runner, "preset_hashes", lambda profile, claims=None: {"baseline": "changed"})
    with pytest.raises(LedgerError, match="preset_hashes"):
        _run(tmp_path, reg)
    ledger = _run(tmp_path, reg, fresh=True, only=["t.d"])
    assert set(ledger["claims"]) == {"t.d"}


def test_stale_ledger_is_reported(fake, tmp_path):
    _run(tmp_path, [_claim("t.c")], seeds=2)
    ledger = load_ledger("smoke", tmp_path / "ledger.json")
    assert not is_stale(ledger) and stale_reasons(ledger) == []
    ledger.data["settings"]["preset_hashes"]["baseline"] = "0" * 16
    assert is_stale(ledger)
    assert any(r.startswith("baseline: preset changed") for r in stale_reasons(ledger))


def test_only_selects_and_unknown_ids_are_refused(fake, tmp_path):
    reg = [_claim("a.one"), _claim("a.two"), _claim("b.one")]
    assert [c.id for c in runner.select_claims(["a."], reg)] == ["a.one", "a.two"]
    with pytest.raises(KeyError, match="a.one"):
        runner.select_claims(["nope"], reg)
    with pytest.raises(ValueError, match="jobs"):
        _run(tmp_path, reg, jobs=0)


def test_load_ledger_errors(tmp_path):
    with pytest.raises(LedgerError, match="make claims"):
        load_ledger("smoke", tmp_path / "none.json")
    assert load_ledger("smoke", tmp_path / "none.json", missing_ok=True) is None
    (tmp_path / "bad.json").write_text("{")
    with pytest.raises(LedgerError, match="cannot read"):
        load_ledger("smoke", tmp_path / "bad.json")
    (tmp_path / "old.json").write_text('{"schema": 0}')
    with pytest.raises(LedgerError, match="schema"):
        load_ledger("smoke", tmp_path / "old.json")


def test_command_line_help_list_and_faults(fake, tmp_path, capsys):
    from reidbook.cli import main

    with pytest.raises(SystemExit) as exc:
        main(["claims", "--help"])
    assert exc.value.code == 0 and "usage: reidbook claims" in capsys.readouterr().out
    assert main(["claims", "--list"]) == 0
    listed = capsys.readouterr().out.splitlines()
    assert len(listed) == len(claims.CLAIMS)
    assert sum(line.rstrip().endswith(" runnable") for line in listed) == len(claims.runnable_claims())
    with pytest.raises(SystemExit) as exc:
        main(["claims", "--seeds", "0"])
    assert exc.value.code == 2 and "--seeds must be a whole number" in capsys.readouterr().err
    assert main(["claims", "--table", "--profile", "smoke", "--out", str(tmp_path / "none.json")]) == 1
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "make claims" in err                     # one line, with the fix
    assert main(["claims", "--only", "no.such.claim", "--out", str(tmp_path / "x.json")]) == 1
    assert "no claim 'no.such.claim'" in capsys.readouterr().err


def test_a_failing_run_does_not_stop_the_others(fake, tmp_path, monkeypatch):
    def broken(config, ctx):
        raise RuntimeError("this measure is broken")

    monkeypatch.setitem(measures.MEASURES, "broken", broken)
    bad = Claim("t.broken", "baseline", "test", "broken",
                (Config("x", "baseline", {}, measure="broken", options={"kind": "good"}),
                 Config("bad", "baseline", {"epochs": 2}, measure="fake", options={"kind": "bad"})),
                paper_numbers={"source": "test", "values": [None, None]})
    ledger = _run(tmp_path, [bad, _claim("t.ok")], seeds=2)
    assert ledger["claims"]["t.ok"]["verdict"]["verdict"] in ("reproduced", "inconclusive")
    assert "verdict" not in ledger["claims"]["t.broken"]
    assert len(ledger["failures"]) == 2 and "this measure is broken" in ledger["failures"][0]
    loaded = load_ledger("smoke", tmp_path / "ledger.json")
    assert loaded.verdicts["t.broken"] == "failed"
    assert "its runs failed" in describe_claim(loaded, "t.broken")
    assert "failed" in claims_table_markdown(loaded)
    # the failed runs are retried next time, the finished ones are not
    fake.calls.clear()
    monkeypatch.setitem(measures.MEASURES, "broken", lambda config, ctx: {"metrics": {"mAP": 0.9}, "images_seen": 64,
                                                                          "train_seconds": 1.0, "trained_now": True})
    ledger = _run(tmp_path, [bad, _claim("t.ok")], seeds=2)
    assert fake.calls == [] and ledger["failures"] == []
    assert ledger["claims"]["t.broken"]["verdict"]["verdict"] == "reproduced"


def test_chapter_claim_draws_the_live_run_or_says_stale(fake, tmp_path, monkeypatch):
    import matplotlib.pyplot as plt

    path = tmp_path / "ledger.json"
    sentence, fig = chapter_claim("smoke", "t.c", live=(0.62, 0.5), path=path)
    assert fig is None and "stale: run `make claims`" in sentence          # no ledger yet
    _run(tmp_path, [_claim("t.c")], seeds=2)
    sentence, fig = chapter_claim("smoke", "t.c", live=(0.62, None), data="fake-data", path=path)
    assert sentence.startswith("good beats bad Over 2 seeds") and fig is not None
    live = [c for c in fig.axes[0].collections if c.get_gid() == "live"]
    assert len(live) == 1 and live[0].get_offsets().tolist() == [[0.0, pytest.approx(62.0)]]
    plt.close(fig)
    with pytest.raises(ValueError, match="compares 2"):
        chapter_claim("smoke", "t.c", live=(0.6,), data="fake-data", path=path)
    assert chapter_claim("smoke", "t.other", path=path)[1] is None
    sentence, fig = chapter_claim("smoke", "t.c", live=(0.62, 0.5), data="market1501", path=path)
    assert "not drawn" in sentence and not [c for c in fig.axes[0].collections if c.get_gid() == "live"]
    plt.close(fig)
    monkeypatch.setattr("reidbook.claims.ledger.preset_hash", lambda name, profile: "0" * 16)  # presets changed since
    sentence, fig = chapter_claim("smoke", "t.c", live=(0.62, 0.5), path=path)
    assert fig is None and sentence.startswith("stale ledger (made with other presets; run `make claims`)")


def test_a_claim_whose_metric_is_missing_is_marked_failed(fake, tmp_path):
    c = Claim("t.metric", "baseline", "test", "no such metric",
              (Config("good", "baseline", {}, measure="fake", options={"kind": "good"}),
               Config("bad", "baseline", {}, measure="fake", options={"kind": "bad"})),
              metric="mINP", paper_numbers={"source": "test", "values": [None, None]})
    ledger = _run(tmp_path, [c, _claim("t.ok")], seeds=2)
    assert ledger["claims"]["t.metric"]["failed"] and "no metric 'mINP'" in ledger["claims"]["t.metric"]["failed"][0]
    assert ledger["failures"] and "verdict" in ledger["claims"]["t.ok"]
