"""Factorized Distillation: Eq. (3)/(4)/(6) with the 40 % rule, the SR store and its refusals, Eq. (2),
and the three steps end to end in the smoke profile."""
from __future__ import annotations

import json

import pytest
import torch

from reidbook.data.views import make_views
from reidbook.distill import (
    BatchContext,
    FDCriterion,
    SRStore,
    StoreError,
    dataset_fingerprint,
    extract_srs,
    load_store,
    model_fingerprint,
    regression_loss,
    write_store,
)
from reidbook.models.fd import build_student, build_teacher


def test_regression_loss_eq3_known_values():
    pred, target = torch.zeros(4, 6), torch.ones(4, 6)
    assert float(regression_loss(pred, target)) == pytest.approx(6 / 2)  # (1/2N) Σ_i ‖·‖² = N·6/(2N)
    keep = torch.tensor([True, False, True, False])
    assert float(regression_loss(pred, target, keep)) == pytest.approx(2 * 6 / 8)
    with pytest.raises(ValueError, match="store.dims"):
        regression_loss(torch.zeros(4, 5), target)
    # the laptop profiles' per-dimension reduction: the same sum divided by D = 6
    assert float(regression_loss(pred, target, reduction="mean")) == pytest.approx(6 / 2 / 6)
    assert float(regression_loss(pred, target, keep, "mean")) == pytest.approx(2 * 6 / 8 / 6)
    with pytest.raises(ValueError, match="reduction"):
        regression_loss(pred, target, reduction="max")


def test_branch_warmup_trains_only_the_branches(smoke_dataset):
    """warm_up_branches: FMFBs/RFBs move, every student parameter and BN statistic stays, and the student
    is trainable again afterwards."""
    from reidbook.distill.student import distill_student, is_branch_parameter, make_distill_loader, warm_up_branches
    from reidbook.presets.fd import distill_preset

    preset = distill_preset("smoke")
    views = make_views((preset.height, preset.width), (32, 32), ["holistic", "up1"])
    items = smoke_dataset.train[:96]
    torch.manual_seed(0)
    student = build_student(smoke_dataset.num_train_pids, arch="R18a", width=0.125)
    store = SRStore({"holistic": torch.randn(len(items), 64), "up1": torch.randn(len(items), 32)}, "fp")
    student.add_branches(store.dims, 64)
    before = {k: v.clone() for k, v in student.state_dict().items()}
    loader = make_distill_loader(items, views, preset)
    crit = FDCriterion(store, ["holistic", "up1"], loader.context, regression="mean")
    hist = warm_up_branches(student, loader, crit, preset, epochs=1, device="cpu")
    after = student.state_dict()
    moved = {k for k in before if not torch.equal(before[k], after[k])}
    assert moved and all(k.startswith(("fmfb.", "rfb.")) for k in moved), sorted(moved)[:5]
    assert any(is_branch_parameter(n) for n, _ in student.named_parameters())
    assert all(p.requires_grad for p in student.parameters())
    assert len(hist.records) == 1 and "attr" in hist.records[0]
    # the whole distillation with a warm-up returns the joint stage's history and the warm-up's
    h = distill_student(student, items, store, views, preset, device="cpu", regression="mean",
                        branch_warmup_epochs=1)
    assert h.warmup is not None and len(h.warmup.records) == 1 and len(h.records) == preset.epochs
    assert any(not torch.equal(after[k], v) for k, v in student.state_dict().items() if k.startswith("backbone."))
    with pytest.raises(ValueError, match="branch_warmup_epochs"):
        distill_student(student, items, store, views, preset, device="cpu", branch_warmup_epochs=-1)
    with pytest.raises(ValueError, match="learning rate"):  # the warm-up's own lr reaches warm_up_branches
        distill_student(student, items, store, views, preset, device="cpu", branch_warmup_epochs=1,
                        branch_warmup_lr=0.0)


def test_branch_warmup_lr_sets_the_step(smoke_dataset):
    """The warm-up's ``lr`` replaces the preset's: ten times the learning rate moves the branches further
    (Adam's step is proportional to it), and leaves the student untouched either way."""
    from reidbook.distill.student import make_distill_loader, warm_up_branches
    from reidbook.presets.fd import distill_preset

    preset = distill_preset("smoke")
    views = make_views((preset.height, preset.width), (32, 32), ["holistic"])
    items = smoke_dataset.train[:64]
    store = SRStore({"holistic": torch.randn(len(items), 64)}, "fp")
    moved = {}
    for lr in (1e-4, 1e-3):
        torch.manual_seed(0)
        student = build_student(smoke_dataset.num_train_pids, arch="R18a", width=0.125)
        student.add_branches(store.dims, 64)
        before = {k: v.clone() for k, v in student.state_dict().items()}
        loader = make_distill_loader(items, views, preset)
        warm_up_branches(student, loader, FDCriterion(store, ["holistic"], loader.context, regression="mean"),
                         preset, epochs=1, device="cpu", lr=lr)
        after = student.state_dict()
        moved[lr] = sum(float((after[k] - before[k]).abs().sum()) for k in before
                        if k.startswith("rfb.") and after[k].is_floating_point() and "running" not in k)
        assert all(torch.equal(before[k], after[k]) for k in before if not k.startswith(("fmfb.", "rfb.")))
    assert moved[1e-3] > 5 * moved[1e-4] > 0


def _criterion(use=("attr", "metric"), n=6, dims=(4, 3)):
    torch.manual_seed(0)
    views = ["holistic", "up1"]
    store = SRStore({v: torch.randn(20, d) for v, d in zip(views, dims)}, "fp")
    ctx = BatchContext()
    return FDCriterion(store, views, ctx, alpha=4.0, beta=2.0, use=use), store, ctx


def test_eq6_total_and_the_40_percent_rule():
    crit, store, ctx = _criterion()
    n = 6
    idx = torch.tensor([0, 3, 5, 7, 9, 11])
    erased = torch.zeros(n, 2)
    erased[2, 1] = 0.5   # > 40 % of Up1 erased in sample 2: its Up1 regressions are dropped
    erased[3, 1] = 0.4   # exactly 40 %: kept ("more than 40 %" is dropped)
    ctx.set(idx, erased)
    out = {"logits": [torch.randn(n, 5)], "attr": [torch.randn(n, 4), torch.randn(n, 3)],
           "metric": [torch.randn(n, 4), torch.randn(n, 3)]}
    pids = torch.randint(0, 5, (n,))
    total, parts = crit(out, pids)
    keep = torch.ones(n, 2, dtype=torch.bool)
    keep[2, 1] = False
    attr = sum(regression_loss(out["attr"][k], store.srs[v][idx], keep[:, k]) for k, v in enumerate(store.views))
    metric = sum(regression_loss(out["metric"][k], store.srs[v][idx], keep[:, k]) for k, v in enumerate(store.views))
    cls = torch.nn.functional.cross_entropy(out["logits"][0], pids, reduction="sum")  # Eq. (1): Σ over the batch
    assert float(total) == pytest.approx(float(cls + 4 / 2 * attr + 2 / 2 * metric), rel=1e-5)
    assert parts["attr"] == pytest.approx(float(attr), rel=1e-5) and parts["kept"] == pytest.approx(11 / 12)
    # the dropped pair has no influence at all: change its prediction, the loss stays
    out["attr"][1][2] += 100.0
    out["metric"][1][2] -= 100.0
    assert float(crit(out, pids)[0]) == pytest.approx(float(total), rel=1e-6)
    # ... while a kept pair does
    out["attr"][1][3] += 1.0
    assert float(crit(out, pids)[0]) > float(total)


def test_loss_choices_table7():
    out = {"logits": [torch.randn(6, 5)], "attr": [torch.randn(6, 4), torch.randn(6, 3)],
           "metric": [torch.randn(6, 4), torch.randn(6, 3)]}
    pids = torch.randint(0, 5, (6,))
    results = {}
    for use in [("attr", "metric"), ("attr",), ("metric",), ()]:
        crit, _, ctx = _criterion(use)
        ctx.set(torch.arange(6), torch.zeros(6, 2))
        results[use] = crit(out, pids)
    full, attr, metric, cls = (results[u][0] for u in [("attr", "metric"), ("attr",), ("metric",), ()])
    assert float(full) == pytest.approx(float(attr + metric - cls), rel=1e-5)
    assert set(results[()][1]) == {"cls"}
    with pytest.raises(ValueError, match="unknown FD loss"):
        _criterion(("triplet",))


def test_sr_extraction_is_eq2(smoke_dataset):
    torch.manual_seed(0)
    (up1,) = make_views((64, 32), (16, 16), ["up1"])
    teacher = build_teacher(smoke_dataset.num_train_pids, arch="resnet18", view="up1", width=0.125).eval()
    items = smoke_dataset.train[:6]
    srs = extract_srs(teacher, items, up1, device="cpu")
    from reidbook.data.views import ViewDataset

    x = torch.stack([ViewDataset(items, up1)[i][0] for i in range(6)])
    with torch.no_grad():
        manual = (teacher(x) + teacher(torch.flip(x, dims=[3]))) / 2
    assert srs.shape == (6, teacher.feature_dim) and torch.allclose(srs, manual, atol=1e-5)


def _write(tmp_path, smoke_dataset, teacher):
    views = make_views((64, 32), (16, 16), ["holistic", "up1"])
    fp = dataset_fingerprint(smoke_dataset.train)
    srs = {v.name: torch.randn(len(smoke_dataset.train), 8) for v in views}
    prov = {v.name: {"teacher_sha256": model_fingerprint(teacher), "view": v.to_dict()} for v in views}
    folder = tmp_path / "store"
    files = write_store(folder, srs, fp, prov)
    return folder, files, fp, srs, views


def test_store_round_trip_and_refusals(tmp_path, smoke_dataset):
    teacher = build_teacher(5, arch="resnet18", width=0.125)
    folder, files, fp, srs, views = _write(tmp_path, smoke_dataset, teacher)
    sha = model_fingerprint(teacher)
    store = load_store(folder, fp, {"holistic": sha, "up1": sha}, {v.name: v.to_dict() for v in views})
    assert store.views == ["holistic", "up1"] and len(store) == len(smoke_dataset.train)
    assert torch.equal(store.srs["up1"], srs["up1"]) and store.dims == {"holistic": 8, "up1": 8}
    assert store.provenance["up1"]["teacher_sha256"] == sha
    # another data set (reordered training list)
    with pytest.raises(StoreError, match="another training set"):
        load_store(folder, dataset_fingerprint(smoke_dataset.train[::-1]))
    # another teacher (one weight changed)
    other = build_teacher(5, arch="resnet18", width=0.125)
    with torch.no_grad():
        other.embedding.fc.bias[0] += 1
    assert model_fingerprint(other) != sha
    with pytest.raises(StoreError, match="another teacher"):
        load_store(folder, fp, {"up1": model_fingerprint(other)})
    # another view specification / a view it lacks
    with pytest.raises(StoreError, match="expected"):
        load_store(folder, fp, views={"up1": {**views[1].to_dict(), "height": 32}})
    with pytest.raises(StoreError, match="no view 'dn2'"):
        load_store(folder, fp, {"dn2": sha})
    with pytest.raises(StoreError, match="no views"):
        store.subset(["mid1"])
    # a corrupt file
    data = bytearray((folder / "sr_up1.pt").read_bytes())
    data[-20] ^= 0xFF
    (folder / "sr_up1.pt").write_bytes(bytes(data))
    with pytest.raises(StoreError, match="SHA-256"):
        load_store(folder, fp)


def test_half_written_store_is_never_used(tmp_path, smoke_dataset, monkeypatch):
    teacher = build_teacher(5, arch="resnet18", width=0.125)
    folder, files, fp, srs, views = _write(tmp_path, smoke_dataset, teacher)
    assert json.loads((folder / "store.json").read_text())["num_items"] == len(smoke_dataset.train)
    # an extraction killed after the first view's file: no manifest is written
    import reidbook.distill.store as S

    calls = {"n": 0}
    real = S.atomic_torch_save

    def dying_save(obj, path):
        calls["n"] += 1
        if calls["n"] == 2:
            raise KeyboardInterrupt("killed")
        return real(obj, path)

    monkeypatch.setattr(S, "atomic_torch_save", dying_save)
    with pytest.raises(KeyboardInterrupt):
        write_store(folder, srs, fp, {v.name: {"teacher_sha256": "x", "view": v.to_dict()} for v in views})
    assert not (folder / "store.json").exists()
    with pytest.raises(StoreError, match="incomplete"):
        load_store(folder, fp)
    with pytest.raises(StoreError, match="no SR store"):
        load_store(tmp_path / "nowhere")


def test_pipeline_end_to_end_smoke(smoke_dataset):
    from reidbook.data.views import VIEW_NAMES
    from reidbook.distill.pipeline import distilled_student, run_pipeline

    res = run_pipeline("smoke", device="cpu")
    assert list(res.teachers) == list(VIEW_NAMES)
    for t in res.teachers.values():
        assert 0 <= t.metrics["mAP"] <= 1 and t.history and t.path.is_dir()
    assert len(res.store) == len(smoke_dataset.train) and res.store.views == list(VIEW_NAMES)
    assert res.store.dims["holistic"] == res.teachers["holistic"].model.feature_dim
    rec = res.student.history[-1]
    assert {"cls", "attr", "metric", "kept"} <= set(rec) and 0.5 < rec["kept"] <= 1.0
    s = res.student.model
    assert s.fmfb is None and s(torch.randn(2, 3, 64, 32)).shape == (2, s.feature_dim)
    assert sum(p.numel() for p in s.parameters()) == sum(p.numel() for p in res.initial.model.parameters())
    # cached: the same call loads the same entry
    again = distilled_student("smoke", device="cpu")
    assert again.path == res.student.path and again.metrics == res.student.metrics
    # the branch warm-up's records are saved beside the joint stage's, and come back with it
    assert len(res.student.warmup) == 1 and "attr" in res.student.warmup[0] and "cls" in res.student.warmup[0]
    assert again.warmup == res.student.warmup and (res.student.path / "warmup.json").is_file()
    for a, b in zip(again.model.state_dict().values(), s.state_dict().values()):
        assert torch.equal(a, b)


def test_distillation_settings_do_not_retrain_the_teachers(smoke_dataset, monkeypatch):
    """Teachers, the initial student and the SRs are keyed by what made them, not by α, β or the warm-up:
    tuning the distillation reuses them; the distilled student itself gets a new key."""
    import dataclasses

    from reidbook.distill import pipeline as pl
    from reidbook.presets import fd as pfd

    before = pl.run_pipeline("smoke", device="cpu")
    monkeypatch.setitem(pfd.SETTINGS, "smoke",
                        dataclasses.replace(pfd.SETTINGS["smoke"], alpha=2.0, branch_warmup_lr=3e-3))
    trained = []
    monkeypatch.setattr(pl, "_train_and_score", lambda *a, **k: trained.append(a) or pytest.fail("retrained"))
    teacher = pl.train_teacher("up1", "smoke", device="cpu")
    assert teacher.path == before.teachers["up1"].path and not trained
    assert pl.initial_student("smoke", device="cpu").path == before.initial.path
    store = pl.supervisory_representations(before.teachers, "smoke", device="cpu")
    assert store.path == before.store.path
    key = pl._base_config("smoke", "synth", 0)["settings"]
    assert key["alpha"] == 2.0 and key["branch_warmup_lr"] == 3e-3  # …while the student's key sees them


def test_cli_distill_smoke(capsys):
    from reidbook.cli import main

    assert main(["distill", "--profile", "smoke", "--device", "cpu"]) == 0
    out = capsys.readouterr().out
    assert "teachers" in out and "without FD" in out and "SR store" in out


def test_teacher_ensemble_of_one_is_the_teacher(smoke_dataset):
    """evaluate_ensemble: one model equals evaluate_view (cosine of normalised features is unchanged), and a
    model without a view is refused."""
    from reidbook.distill.teachers import evaluate_ensemble, evaluate_view

    (hol,) = make_views((64, 32), (32, 32), ["holistic"])
    torch.manual_seed(0)
    t = build_teacher(smoke_dataset.num_train_pids, arch="resnet18", view="holistic", width=0.125).eval()
    one = evaluate_view(t, smoke_dataset, hol, device="cpu")
    # float rounding of the re-normalised features can swap near-tied gallery items of this untrained net
    # (measured: 2e-5 mAP apart), so equality is up to that, far below any real difference between models
    assert evaluate_ensemble({"holistic": t}, smoke_dataset, [hol], device="cpu")["mAP"] == pytest.approx(
        one["mAP"], abs=1e-3)
    with pytest.raises(ValueError, match="no view"):
        evaluate_ensemble({"up1": t}, smoke_dataset, [hol], device="cpu")


def test_teachers_train_on_the_tensor_path(smoke_dataset, monkeypatch):
    """A teacher's batches are cropped to its band and augmented as whole tensors (issue 22), not per sample."""
    from reidbook.data.tensorstore import TensorBatchLoader
    from reidbook.distill.pipeline import views_for
    from reidbook.distill.teachers import train_view_model
    from reidbook.presets.fd import teacher_preset

    monkeypatch.delenv("REIDBOOK_LOADER", raising=False)
    seen = {}
    monkeypatch.setattr("reidbook.engine.fit_preset", lambda model, items, preset, **kw: seen.update(kw))
    for name in ("up1", "holistic"):
        (view,) = views_for("smoke", [name])
        train_view_model(torch.nn.Identity(), smoke_dataset.train, view, teacher_preset(name, "smoke"), device="cpu")
        loader = seen["loader"]
        assert isinstance(loader, TensorBatchLoader)
        x = next(iter(loader))[0]
        assert tuple(x.shape[-2:]) == (view.height, view.width)


def test_teachers_view_features_are_kept_for_the_ensemble(smoke_dataset, monkeypatch):
    """Each teacher's first evaluation (on its view, at training time) keeps its view features in the store, so
    chapter 04's ensemble of all seven reads them instead of running seven networks again."""
    from reidbook.distill import pipeline as pl
    from reidbook.distill.teachers import evaluate_ensemble
    from reidbook.engine import extract

    teachers = pl.train_teachers(profile="smoke", device="cpu")
    monkeypatch.setattr(extract, "_extract", lambda *a, **k: pytest.fail("a teacher ran again"))
    res = evaluate_ensemble({v: t.model for v, t in teachers.items()}, smoke_dataset, pl.views_for("smoke"),
                            device="cpu")
    assert 0 <= res["mAP"] <= 1


# ----------------------------------------------------------------------------------------------
# issue 18 item 8: Eq. (1)'s sum, stabilised GMP on small maps, conv4_1
# ----------------------------------------------------------------------------------------------
def test_eq1_is_a_sum_in_full_and_a_declared_mean_in_the_laptop_profiles():
    from reidbook.presets.fd import distill_preset, fd_settings, student_preset, teacher_preset

    n = 6
    out = {"logits": [torch.randn(n, 5)]}
    pids = torch.randint(0, 5, (n,))
    store = SRStore({}, "")
    summed = FDCriterion(store, [], BatchContext(), use=())(out, pids)[0]
    mean = FDCriterion(store, [], BatchContext(), use=(), cls_reduction="mean")(out, pids)[0]
    expect = -torch.log_softmax(out["logits"][0], 1).gather(1, pids[:, None]).sum()  # Eq. (1) by hand
    assert float(summed) == pytest.approx(float(expect), rel=1e-6)
    assert float(mean) == pytest.approx(float(expect) / n, rel=1e-6)
    with pytest.raises(ValueError, match="cls_reduction"):
        FDCriterion(store, [], BatchContext(), cls_reduction="max")
    full = fd_settings("full")
    assert full.cls_reduction == "sum"
    n_batch = full.P * full.K  # the paper's batch of 32
    for preset in (teacher_preset("up1", "full"), student_preset("full"), distill_preset("full")):
        (ce,) = [t for t in preset.losses if t["loss"] == "cross_entropy"]
        assert ce["weight"] == n_batch == 32  # a fixed batch: the mean × N is Eq. (1)'s sum
    for profile in ("quick", "smoke"):
        assert fd_settings(profile).cls_reduction == "mean"
        (ce,) = [t for t in teacher_preset("up1", profile).losses if t["loss"] == "cross_entropy"]
        assert ce["weight"] == 1.0


def test_stabilised_gmp_on_a_map_no_larger_than_its_kernel_is_average_pooling_and_is_said():
    from reidbook.distill.teachers import pooling_note
    from reidbook.models.layers import StabilizedGMP

    torch.manual_seed(0)
    x = torch.randn(2, 3, 3, 3)
    assert torch.allclose(StabilizedGMP(4)(x), x.mean(dim=(2, 3)), atol=1e-6)  # quick's 3×3 partial maps
    big = torch.randn(2, 3, 14, 14)
    assert not torch.allclose(StabilizedGMP(4)(big), big.mean(dim=(2, 3)))  # full's 224×224 views: 14×14
    quick = {v.name: v for v in make_views((128, 64), (48, 48))}
    assert pooling_note(quick["up1"]) is not None and "3×3" in pooling_note(quick["up1"])
    assert pooling_note(quick["holistic"]) is None  # 8×4 maps: a real max over local means
    full = {v.name: v for v in make_views((256, 128), (224, 224))}
    assert all(pooling_note(v) is None for v in full.values())


def test_conv4_1_names_one_stage_in_fd_and_mgn():
    """FD's "reset the stride of conv4_1" is read as the last down-sampling (torchvision layer4[0], conv5_1 in
    the ResNet paper's names that MGN's res_conv4_1 = layer3[0] uses); both docstrings say so."""
    import re

    from reidbook.models import fd, mgn

    student = build_student(5, arch="R18a", width=0.125)
    assert student.backbone.layer3[0].conv1.stride == (2, 2)
    assert student.backbone.layer4[0].conv1.stride == (1, 1)
    with torch.no_grad():
        assert student.eval().backbone(torch.zeros(1, 3, 256, 128)).shape[-2:] == (16, 8)  # stride 16
    flat = {m.__name__: re.sub(r"\s+", " ", m.__doc__) for m in (fd, mgn)}
    assert "``res_conv4_1`` (torchvision ``layer3[0]``)" in flat["reidbook.models.mgn"]
    assert "``res_conv4_1`` = torchvision ``layer3[0]``" in flat["reidbook.models.fd"]
    assert "**conv5_1** (torchvision ``layer4[0]``)" in flat["reidbook.models.fd"]


def test_fd_networks_start_from_the_seed_not_from_what_ran_before(smoke_root, monkeypatch):
    """A teacher's (and the initial student's) fresh heads are drawn after seeding: two runs in different
    global RNG states build the same network (they did not, so a teacher depended on what the process had
    trained or loaded before it)."""
    from reidbook.distill import pipeline as pl

    built = []

    def capture(model, *a, **kw):
        built.append({k: v.clone() for k, v in model.state_dict().items()})
        return {"model": model, "metrics": {}, "history": []}

    monkeypatch.setattr(pl, "cached", lambda kind, config, train_fn, **kw: train_fn())  # always "train"
    monkeypatch.setattr(pl, "_train_and_score", capture)
    for state in (1, 2):
        torch.manual_seed(state)
        pl.train_teacher("up1", "smoke", device="cpu")
        torch.manual_seed(state)
        pl.initial_student("smoke", device="cpu")
    assert len(built) == 4
    for a, b in ((built[0], built[2]), (built[1], built[3])):
        assert all(torch.equal(a[k], b[k]) for k in a)
