"""``reidbook claims`` end to end in ``smoke``: two claims (chapter 01's loss ablation), two seeds, real
trainings through the zoo; then an interrupted ledger resumes without training anything again."""
import json

import pytest

from reidbook import zoo
from reidbook.claims import load_ledger, measures
from reidbook.cli import main

pytestmark = pytest.mark.usefixtures("one_thread")

ONLY = ["baseline.triplet_helps_softmax", "baseline.softmax_helps_triplet"]


@pytest.fixture
def counted(monkeypatch):
    """Counts zoo trainings and claims measure calls."""
    counts = {"train": 0, "measure": 0}
    train, measure = zoo.train_entry, measures.MEASURES["zoo"]

    def counting_train(*a, **kw):
        counts["train"] += 1
        return train(*a, **kw)

    def counting_measure(*a, **kw):
        counts["measure"] += 1
        return measure(*a, **kw)

    monkeypatch.setattr(zoo, "train_entry", counting_train)
    monkeypatch.setitem(measures.MEASURES, "zoo", counting_measure)
    return counts


def test_claims_end_to_end_in_smoke_and_resume(tmp_path, counted, capsys, monkeypatch):
    from reidbook.claims import runner

    # the runs' records in this test's folder (the zoo cache, with its trained models, stays the session's)
    monkeypatch.setattr(runner, "runs_dir", lambda profile: tmp_path / "runs" / profile)
    out = tmp_path / "smoke.json"
    argv = ["claims", "--profile", "smoke", "--seeds", "2", "--only", *ONLY, "--out", str(out)]
    assert main(argv) == 0
    # three configurations (both, softmax, triplet) × two seeds; "both" is shared by the two claims
    assert counted["measure"] == 6 and counted["train"] <= 6
    ledger = load_ledger("smoke", out)
    data = ledger.data
    assert set(ledger.claims) == set(ONLY) and len(data["runs"]) == 6
    assert data["settings"]["seeds"] == [0, 1] and data["settings"]["split"]["synthreid_sha256"]
    assert data["provenance"]["command"].startswith("reidbook claims --profile smoke --seeds 2")
    for cid in ONLY:
        c = ledger.claim(cid)
        assert c["verdict"]["verdict"] in ("reproduced", "contradicted", "inconclusive")
        for cfg in c["configs"]:
            assert len(cfg["values"]) == 2 and all(0.0 <= v <= 1.0 for v in cfg["values"])
            assert cfg["mean"] == pytest.approx(sum(cfg["values"]) / 2)
            assert all(isinstance(n, int) and n > 0 for n in cfg["images_seen"])
        # equal budgets: both configurations saw the same number of images, seed by seed
        assert c["budget"]["equal"] is True
        assert c["budget"]["images_seen"][0] == c["budget"]["images_seen"][1]
        assert c["verdict"]["diff"] == pytest.approx(c["configs"][0]["mean"] - c["configs"][1]["mean"])
    # seeds differ (another initialisation), the test split does not: SynthReID(smoke, 0) for every run; the
    # seed-0 runs name it "synth" as the chapters do, so they *are* the chapters' zoo entries
    runs = list(data["runs"].values())
    assert {r["seed"] for r in runs} == {0, 1}
    assert {r["data"] for r in runs if r["seed"] == 0} == {"synth"}
    assert {r["data"] for r in runs if r["seed"] == 1} == {str(zoo.synthreid("smoke", 0))}
    counted.update(train=0)
    zoo.get("baseline", "smoke", "synth", 0)            # chapter 01's "both" run at SEED = 0
    assert counted["train"] == 0

    # an interruption: the ledger never written and one run's record lost
    key = ledger.claim(ONLY[0])["configs"][1]["run_keys"][1]
    out.unlink()
    (runner.runs_dir("smoke") / f"{key}.json").unlink()
    counted.update(train=0, measure=0)
    assert main(argv) == 0
    assert counted["measure"] == 1      # only the lost run is measured again ...
    assert counted["train"] == 0        # ... and its model comes from the zoo, not from a new training
    again = json.loads(out.read_text())
    assert again["claims"][ONLY[0]]["configs"][1]["values"] == ledger.claim(ONLY[0])["configs"][1]["values"]

    capsys.readouterr()
    assert main(["claims", "--table", "--profile", "smoke", "--out", str(out)]) == 0
    table = capsys.readouterr().out
    assert table.count("| `baseline.") == 2 and "75 vs 71.4" in table


def test_jobs_run_in_parallel_processes_with_their_share_of_threads(tmp_path, monkeypatch):
    """``--jobs 2``: runs go to two spawned processes, each with cores // 2 threads (a parameter count:
    no training, so the test costs the processes' start-up only)."""
    from reidbook.claims import get_claim, run_claims, runner
    from reidbook.cli import threads_per_job

    monkeypatch.setattr(runner, "runs_dir", lambda profile: tmp_path / "runs" / profile)
    claim = get_claim("graftednet.vs_resnet50_params")
    ledger = run_claims("smoke", seeds=2, jobs=2, claims=[claim], out=tmp_path / "p.json", command="test")
    runs = list(ledger["runs"].values())
    assert len(runs) == 4
    # the first run of each seed runs alone (it would train the seed's shared pre-training), the rest in workers
    assert sum(r["threads"] == threads_per_job(2) for r in runs) >= 2
    assert ledger["provenance"]["jobs"] == 2 and ledger["provenance"]["threads_per_job"] == threads_per_job(2)
    c = ledger["claims"][claim.id]
    assert c["verdict"]["verdict"] == "reproduced" and c["verdict"]["se"] == 0.0   # a count: no spread
    assert c["configs"][0]["values"] == pytest.approx([c["configs"][0]["values"][0]] * 2)
    assert c["configs"][0]["mean"] == pytest.approx(4.59, abs=0.02)                # GraftedNet, DESIGN.md
