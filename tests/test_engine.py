"""The training engine: fit lowers a loss, lr groups, schedules at hand-computed iterations,
NaN detection, checkpoints (refusal, weights_only) and exact resume after an interruption."""
from __future__ import annotations

import io
import json
import math
import random

import numpy as np
import pytest
import torch
from support.distributed_demo import TinyReIDNet, ToyReIDData, toy_criterion, toy_loader
from torch import nn

from reidbook.engine import (
    CheckpointError,
    CheckpointMismatchError,
    History,
    build_optimizer,
    build_scheduler,
    fit,
    iters_per_epoch,
    load_checkpoint,
    save_checkpoint,
)
from reidbook.engine.checkpoint import capture_rng_state, read_checkpoint, restore_rng_state

torch.set_num_threads(1)


def _setup(seed=0, dropout=0.0, lr=0.05, schedule=None, epochs=4, triplet=True):
    data = ToyReIDData(num_ids=8, per_id=8, seed=0)
    loader = toy_loader(data, P=4, K=4, seed=0)
    torch.manual_seed(seed)
    model = TinyReIDNet(data.num_classes, dropout=dropout)
    opt = build_optimizer(model, {"name": "sgd", "lr": lr, "momentum": 0.9, "weight_decay": 5e-4})
    sched = build_scheduler(opt, schedule or {"name": "step", "milestones": [2, 3], "gamma": 0.5}, epochs,
                            iters_per_epoch(loader))
    return model, loader, toy_criterion(triplet), opt, sched


def _losses(history):
    return [{k: v for k, v in r.items() if k not in ("seconds", "images_per_s")} for r in history.records]


# ----------------------------------------------------------------------------------------------
# fit
# ----------------------------------------------------------------------------------------------
def test_fit_lowers_the_loss_and_records_history():
    model, loader, crit, opt, sched = _setup(schedule={"name": "constant"})
    hist = fit(model, loader, crit, opt, sched, epochs=5, device="cpu")
    assert isinstance(hist, History) and len(hist) == 5
    first, last = hist[0], hist[-1]
    assert last["loss"] < 0.6 * first["loss"], (first["loss"], last["loss"])
    for key in ("epoch", "loss", "ce", "triplet", "lr", "seconds", "images_per_s", "iters"):
        assert key in last
    assert [r["epoch"] for r in hist] == [1, 2, 3, 4, 5]
    assert last["iters"] == len(loader) and last["images"] == 16 * len(loader)
    json.loads(hist.to_json())  # plain JSON
    assert list(hist.to_frame().index) == [1, 2, 3, 4, 5]
    assert not model.training  # returned in eval mode


def test_fit_logs_lr_per_group_and_evaluates_every_n_epochs_and_at_the_end():
    data = ToyReIDData(num_ids=8, per_id=4)
    loader = toy_loader(data, P=4, K=2)
    model = TinyReIDNet(data.num_classes)
    opt = build_optimizer(model, {"name": "sgd", "lr": 0.01, "lr_groups": {"classifier": 0.1}})
    sched = build_scheduler(opt, {"name": "step", "milestones": [1], "gamma": 0.1}, 3, iters_per_epoch(loader))
    calls = []

    def evaluate(m):
        calls.append(m.training)
        return {"mAP": torch.tensor(0.5), "rank1": np.float64(0.25), "raw": object()}

    hist = fit(model, loader, toy_criterion(False), opt, sched, epochs=3, device="cpu",
               evaluate=evaluate, eval_every=2)
    assert calls == [False, False]  # epochs 2 and 3 (the last), in eval mode
    assert "mAP" not in hist[0] and hist[1]["mAP"] == 0.5 and hist[2]["rank1"] == 0.25
    assert "raw" not in hist[1]
    assert hist[0]["lr/base"] == pytest.approx(0.01) and hist[0]["lr/classifier"] == pytest.approx(0.1)
    assert hist[1]["lr/base"] == pytest.approx(0.001) and hist[1]["lr/classifier"] == pytest.approx(0.01)


def test_max_iters_per_epoch_and_grad_clip():
    model, loader, crit, opt, _ = _setup()
    hist = fit(model, loader, crit, opt, None, epochs=1, device="cpu", max_iters_per_epoch=2, grad_clip=1.0)
    assert hist[0]["iters"] == 2


class _NaNAt:
    """Wraps a criterion; returns a NaN total at (epoch, iteration), both 1-based."""

    def __init__(self, crit, epoch, it, per_epoch):
        self.crit, self.at, self.calls, self.per_epoch = crit, (epoch - 1) * per_epoch + it, 0, per_epoch

    def __call__(self, outputs, pids):
        self.calls += 1
        total, parts = self.crit(outputs, pids)
        if self.calls == self.at:
            return total * float("nan"), {**parts, "ce": float("nan")}
        return total, parts


def test_nan_loss_stops_with_where_and_keeps_the_last_good_checkpoint(tmp_path):
    model, loader, crit, opt, sched = _setup()
    n = len(loader)
    with pytest.raises(FloatingPointError) as err:
        fit(model, loader, _NaNAt(crit, 2, 3, n), opt, sched, epochs=3, device="cpu", checkpoint_dir=tmp_path)
    msg = str(err.value)
    assert "epoch 2/3" in msg and f"iteration 3/{n}" in msg and "'ce': nan" in msg
    assert "learning rate" in msg and "last good checkpoint" in msg
    ckpt = read_checkpoint(tmp_path / "last.pt")
    assert ckpt["epoch"] == 1 and len(ckpt["history"]) == 1
    assert [p.name for p in tmp_path.iterdir()] == ["last.pt"]  # no half-written temp file


def test_a_criterion_raising_floating_point_error_is_reported_with_the_epoch():
    model, loader, _, opt, _ = _setup()

    def crit(outputs, pids):
        raise FloatingPointError("loss term 'ce' is nan")

    with pytest.raises(FloatingPointError, match=r"epoch 1/1, iteration 1/.*loss term 'ce' is nan"):
        fit(model, loader, crit, opt, epochs=1, device="cpu")


# ----------------------------------------------------------------------------------------------
# optimisers and lr groups
# ----------------------------------------------------------------------------------------------
class _Grafted(nn.Module):
    def __init__(self):
        super().__init__()
        self.rootstock = nn.Sequential(nn.Conv2d(3, 4, 3), nn.BatchNorm2d(4))
        self.scion = nn.Sequential(nn.Conv2d(4, 4, 1), nn.BatchNorm2d(4))
        self.layer1 = nn.Linear(4, 4)
        self.layer10 = nn.Linear(4, 4)


def test_lr_groups_give_each_module_its_lr():
    m = _Grafted()
    opt = build_optimizer(m, {"name": "sgd", "lr": 0.01, "momentum": 0.9, "weight_decay": 5e-4,
                              "lr_groups": {"scion": 0.1, "layer1": 0.5}})
    by_name = {g["name"]: g for g in opt.param_groups}
    assert set(by_name) == {"base", "scion", "layer1"}
    ids = lambda mod: {id(p) for p in mod.parameters()}  # noqa: E731
    assert {id(p) for p in by_name["scion"]["params"]} == ids(m.scion) and by_name["scion"]["lr"] == 0.1
    assert {id(p) for p in by_name["layer1"]["params"]} == ids(m.layer1)  # not layer10
    assert {id(p) for p in by_name["base"]["params"]} == ids(m.rootstock) | ids(m.layer10)
    assert by_name["base"]["lr"] == 0.01 and by_name["base"]["momentum"] == 0.9
    assert sum(len(g["params"]) for g in opt.param_groups) == len(list(m.parameters()))


def test_lr_group_prefix_matching_nothing_is_an_error():
    with pytest.raises(ValueError, match=r"'sicon'.*match no parameter.*rootstock"):
        build_optimizer(_Grafted(), {"name": "sgd", "lr": 0.01, "lr_groups": {"sicon": 0.1}})
    opt = build_optimizer(_Grafted(), {"name": "sgd", "lr": 0.01, "lr_groups": {"layer*": 0.2}})
    assert len({g["name"]: g for g in opt.param_groups}["layer*"]["params"]) == 4


def test_no_decay_on_bn_and_bias_and_adam_betas():
    m = _Grafted()
    opt = build_optimizer(m, {"name": "adam", "lr": 3e-4, "betas": (0.9, 0.99), "weight_decay": 1e-4,
                              "no_decay_bn_bias": True, "lr_groups": {"scion": 1e-3}})
    for g in opt.param_groups:
        assert g["betas"] == (0.9, 0.99)
        if g["name"].endswith("/no_decay"):
            assert g["weight_decay"] == 0 and all(p.ndim == 1 for p in g["params"])
        else:
            assert g["weight_decay"] == 1e-4 and all(p.ndim > 1 for p in g["params"])
    assert {g["name"] for g in opt.param_groups} == {"base", "base/no_decay", "scion", "scion/no_decay"}
    with pytest.raises(ValueError, match="unknown optimizer"):
        build_optimizer(m, {"name": "rmsprop", "lr": 0.1})
    with pytest.raises(ValueError, match="momentun"):
        build_optimizer(m, {"name": "sgd", "lr": 0.1, "momentun": 0.9})


# ----------------------------------------------------------------------------------------------
# schedules: lr (and DaRe's beta1) at key iterations, stepping a real optimiser
# ----------------------------------------------------------------------------------------------
def _trace(spec, epochs, ipe, opt_spec=None, upto=None):
    p = nn.Parameter(torch.zeros(1))
    opt = build_optimizer(nn.ParameterList([p]), opt_spec or {"name": "sgd", "lr": 0.1})
    sched = build_scheduler(opt, spec, epochs, ipe)
    lrs, betas = [], []
    for _ in range((upto or epochs * ipe) + 1):
        lrs.append(opt.param_groups[0]["lr"])
        betas.append(opt.param_groups[0].get("betas", (None,))[0])
        opt.step()
        sched.step()
    return lrs, betas


def test_step_schedule_converts_epoch_milestones_to_iterations():
    lrs, _ = _trace({"name": "step", "milestones": [2, 3], "gamma": 0.1}, epochs=4, ipe=10)
    assert lrs[0] == lrs[19] == pytest.approx(0.1)
    assert lrs[20] == lrs[29] == pytest.approx(0.01)
    assert lrs[30] == lrs[39] == pytest.approx(0.001)
    lrs, _ = _trace({"name": "step", "step_size": 20, "gamma": 0.5}, epochs=80, ipe=1)  # FD: halve every 20
    assert (lrs[19], lrs[20], lrs[40], lrs[60], lrs[79]) == pytest.approx((0.1, 0.05, 0.025, 0.0125, 0.0125))


def test_warmup_step_schedule():
    lrs, _ = _trace({"name": "warmup_step", "warmup": 2, "warmup_factor": 0.1, "milestones": [4], "gamma": 0.1},
                    epochs=5, ipe=5)
    assert lrs[0] == pytest.approx(0.01)  # 0.1 × base
    assert lrs[5] == pytest.approx(0.1 * (0.1 + 0.9 * 5 / 10))  # half-way through the warm-up
    assert lrs[10] == lrs[19] == pytest.approx(0.1)
    assert lrs[20] == pytest.approx(0.01)


def test_dare_schedule_decays_exponentially_and_switches_beta1():
    """DaRe §5, Eq. (4): α0 until t0, α0·0.001^((t−t0)/(t1−t0)) until t1, β1 0.9 → 0.5 from t0."""
    adam = {"name": "adam", "lr": 3e-4}
    lrs, betas = _trace({"name": "dare_exp", "t0": 100, "t1": 200, "unit": "iters"}, epochs=1, ipe=250,
                        opt_spec=adam)
    assert lrs[0] == lrs[100] == pytest.approx(3e-4)
    assert lrs[150] == pytest.approx(3e-4 * 0.001 ** 0.5)
    assert lrs[175] == pytest.approx(3e-4 * 0.001 ** 0.75)
    assert lrs[200] == lrs[250] == pytest.approx(3e-7)
    assert betas[99] == 0.9 and betas[100] == betas[250] == 0.5
    # the same schedule in epochs (t0 = 2, t1 = 4 epochs of 50 iterations)
    lrs_e, betas_e = _trace({"name": "dare_exp", "t0": 2, "t1": 4}, epochs=5, ipe=50, opt_spec=adam)
    assert lrs_e == pytest.approx(lrs[: len(lrs_e)]) and betas_e == betas[: len(betas_e)]
    with pytest.raises(ValueError, match="beta1"):
        _trace({"name": "dare_exp", "t0": 1, "t1": 2}, epochs=2, ipe=1)  # SGD has no betas


def test_cosine_and_constant_schedules():
    lrs, _ = _trace({"name": "cosine", "min_factor": 0.0}, epochs=10, ipe=10)
    assert lrs[0] == pytest.approx(0.1) and lrs[50] == pytest.approx(0.05) and lrs[100] == pytest.approx(0.0)
    assert lrs[25] == pytest.approx(0.05 * (1 + math.cos(math.pi / 4)))
    lrs, _ = _trace({"name": "constant"}, epochs=2, ipe=3)
    assert set(lrs) == {0.1}
    with pytest.raises(ValueError, match="unknown schedule"):
        _trace({"name": "poly"}, 1, 1)
    with pytest.raises(ValueError, match="milestone"):
        _trace({"name": "step", "milestone": [1]}, 1, 1)


def test_scheduler_state_round_trips_through_weights_only():
    def build():
        p = nn.Parameter(torch.ones(2))
        opt = build_optimizer(nn.ParameterList([p]), {"name": "adam", "lr": 1e-3})
        return p, opt, build_scheduler(opt, {"name": "dare_exp", "t0": 10, "t1": 30, "unit": "iters"}, 1, 40)

    p, opt, sched = build()
    for _ in range(17):
        p.grad = torch.ones_like(p)
        opt.step()
        sched.step()
    buf = io.BytesIO()
    torch.save({"opt": opt.state_dict(), "sched": sched.state_dict()}, buf)
    buf.seek(0)
    state = torch.load(buf, weights_only=True)
    _, opt2, sched2 = build()
    opt2.load_state_dict(state["opt"])
    sched2.load_state_dict(state["sched"])
    assert sched2.last_epoch == 17 and opt2.param_groups[0]["lr"] == pytest.approx(opt.param_groups[0]["lr"])
    assert opt2.param_groups[0]["betas"][0] == 0.5
    sched.step()
    sched2.step()
    assert sched2.get_last_lr() == pytest.approx(sched.get_last_lr())


# ----------------------------------------------------------------------------------------------
# checkpoints
# ----------------------------------------------------------------------------------------------
def test_rng_state_round_trip():
    torch.manual_seed(3)
    np.random.seed(3)
    random.seed(3)
    state = capture_rng_state()
    a = (random.random(), np.random.rand(), torch.rand(1).item())
    buf = io.BytesIO()
    torch.save(state, buf)
    buf.seek(0)
    restore_rng_state(torch.load(buf, weights_only=True))
    assert (random.random(), np.random.rand(), torch.rand(1).item()) == a


def test_checkpoint_refuses_another_model_or_config(tmp_path):
    model, _, _, opt, sched = _setup()
    path = save_checkpoint(tmp_path / "c.pt", model, opt, sched, epoch=3, history=History([{"epoch": 1}]),
                           config={"model": "tiny", "optimizer": {"lr": 0.05}})
    ckpt = load_checkpoint(path, TinyReIDNet(8), expected_config={"model": "tiny", "optimizer": {"lr": 0.05}})
    assert ckpt["epoch"] == 3 and ckpt["history"] == [{"epoch": 1}]
    with pytest.raises(CheckpointMismatchError, match=r"classifier\.weight: checkpoint \(8, 16\) vs model \(9, 16\)"):
        load_checkpoint(path, TinyReIDNet(9))
    with pytest.raises(CheckpointMismatchError, match=r"written for .*TinyReIDNet, this model is .*Sequential"):
        load_checkpoint(path, nn.Sequential(nn.Linear(2, 2)))
    with pytest.raises(CheckpointMismatchError, match=r"optimizer\.lr: checkpoint=0\.05, here=0\.1"):
        load_checkpoint(path, TinyReIDNet(8), expected_config={"model": "tiny", "optimizer": {"lr": 0.1}})
    other = TinyReIDNet(8)
    before = {k: v.clone() for k, v in other.state_dict().items()}
    with pytest.raises(CheckpointMismatchError):
        load_checkpoint(path, other, expected_config={"model": "other"})
    assert all(torch.equal(before[k], v) for k, v in other.state_dict().items())  # untouched when refused
    (tmp_path / "bad.pt").write_bytes(b"not a checkpoint")
    with pytest.raises(CheckpointError, match="corrupt"):
        load_checkpoint(tmp_path / "bad.pt", model)
    with pytest.raises(CheckpointError, match="does not exist"):
        load_checkpoint(tmp_path / "missing.pt", model)


def test_interrupted_and_resumed_training_equals_uninterrupted(tmp_path):
    """4 epochs straight vs 2½ epochs, a crash, and a fresh process-like model resuming to 4."""
    epochs = 4
    model_a, loader_a, crit_a, opt_a, sched_a = _setup(seed=0, dropout=0.2, epochs=epochs)
    hist_a = fit(model_a, loader_a, crit_a, opt_a, sched_a, epochs=epochs, device="cpu", seed=7,
                 checkpoint_dir=tmp_path / "a")

    model_b, loader_b, crit_b, opt_b, sched_b = _setup(seed=0, dropout=0.2, epochs=epochs)
    n = len(loader_b)

    class Crash(Exception):
        pass

    calls = {"n": 0}

    def crashing(outputs, pids):
        calls["n"] += 1
        if calls["n"] == 2 * n + 2:  # during epoch 3, after the epoch-2 checkpoint
            raise Crash
        return crit_b(outputs, pids)

    with pytest.raises(Crash):
        fit(model_b, loader_b, crashing, opt_b, sched_b, epochs=epochs, device="cpu", seed=7,
            checkpoint_dir=tmp_path / "b")
    assert read_checkpoint(tmp_path / "b" / "last.pt")["epoch"] == 2

    # a "new process": different initial weights, fresh optimiser, scheduler, sampler and RNG
    torch.manual_seed(123)
    np.random.seed(123)
    model_c, loader_c, crit_c, opt_c, sched_c = _setup(seed=99, dropout=0.2, epochs=epochs)
    hist_c = fit(model_c, loader_c, crit_c, opt_c, sched_c, epochs=epochs, device="cpu", seed=7,
                 checkpoint_dir=tmp_path / "b")

    sa, sc = model_a.state_dict(), model_c.state_dict()
    assert sa.keys() == sc.keys()
    for k in sa:
        assert torch.equal(sa[k], sc[k]), k
    assert _losses(hist_a) == _losses(hist_c)
    assert opt_a.state_dict()["state"][0]["momentum_buffer"].equal(opt_c.state_dict()["state"][0]["momentum_buffer"])
    # a finished run resumes to a no-op
    hist_d = fit(model_c, loader_c, crit_c, opt_c, sched_c, epochs=epochs, device="cpu", seed=7,
                 checkpoint_dir=tmp_path / "b")
    assert _losses(hist_d) == _losses(hist_a)


def test_resume_refuses_a_checkpoint_of_another_config(tmp_path):
    model, loader, crit, opt, sched = _setup()
    fit(model, loader, crit, opt, sched, epochs=1, device="cpu", checkpoint_dir=tmp_path, config={"lr": 0.05},
        max_iters_per_epoch=1)
    model, loader, crit, opt, sched = _setup()
    with pytest.raises(CheckpointMismatchError, match=r"lr: checkpoint=0\.05, here=0\.1"):
        fit(model, loader, crit, opt, sched, epochs=2, device="cpu", checkpoint_dir=tmp_path, config={"lr": 0.1},
            max_iters_per_epoch=1)


def test_history_json_round_trip_and_best(tmp_path):
    hist = History()
    hist.append({"epoch": 1, "loss": torch.tensor(2.0), "mAP": np.float32(0.25), "raw": [1, 2]})
    hist.append({"epoch": 2, "loss": 1.5, "mAP": 0.5})
    assert hist[0] == {"epoch": 1, "loss": 2.0, "mAP": 0.25}  # scalars made plain, non-scalars dropped
    hist.to_json(tmp_path / "h.json")
    again = History.from_json(tmp_path / "h.json")
    assert again.records == hist.records and again.best("mAP")["epoch"] == 2
    assert hist.column("loss") == [2.0, 1.5]


def test_launch_train_runs_in_a_single_process_without_torchrun():
    from reidbook.engine import get_world_size, launch_train

    def train(x, device="auto"):
        return x, get_world_size(), str(device)

    assert launch_train(train, 3, device="cpu") == (3, 1, "cpu")


def test_channels_last_trains_the_same_and_returns_a_contiguous_model():
    runs = {}
    for cl in (False, True):
        model, loader, crit, opt, sched = _setup(epochs=2)
        hist = fit(model, loader, crit, opt, sched, epochs=2, device="cpu", channels_last=cl)
        runs[cl] = (model, [r["loss"] for r in hist.records])
    assert any(p.dim() == 4 for p in runs[True][0].parameters())  # the test means something: conv weights
    np.testing.assert_allclose(runs[True][1], runs[False][1], rtol=1e-4)
    for a, b in zip(runs[True][0].parameters(), runs[False][0].parameters()):
        assert a.is_contiguous() and torch.allclose(a, b, atol=1e-4)


def test_extract_features_in_channels_last_matches_the_default_layout():
    from reidbook.engine import extract_features

    model, loader, *_ = _setup()
    batches = list(torch.utils.data.DataLoader(loader.dataset, batch_size=16))  # the toy data is drawn afresh
    loader = batches                                                            # on every read: fix it once
    f_cl, p_cl, _ = extract_features(model, loader, device="cpu", channels_last=True)
    f, p, _ = extract_features(model, loader, device="cpu", channels_last=False)
    assert torch.allclose(f_cl, f, atol=1e-5) and (p_cl == p).all()
    assert all(q.is_contiguous() for q in model.parameters())


# ----------------------------------------------------------------------------------------------
# hooks and fit_preset
# ----------------------------------------------------------------------------------------------
def test_hooks_see_every_step_and_epoch_and_what_they_write_is_checkpointed(tmp_path):
    from reidbook.engine import Hook

    class Count(Hook):
        def __init__(self):
            self.calls = []

        def before_train(self, s):
            self.calls.append(("train", s.start_epoch))

        def before_epoch(self, s):
            self.calls.append(("epoch", s.epoch))

        def after_step(self, s):
            assert math.isfinite(s.loss) and s.parts
            self.calls.append(("step", s.epoch, s.step))

        def after_epoch(self, s):
            s.history.records[-1]["hooked"] = s.epoch + 1  # kept in the history and in the checkpoint

        def after_train(self, s):
            self.calls.append(("done", len(s.history)))

    model, loader, crit, opt, sched = _setup(epochs=2)
    hook = Count()
    hist = fit(model, loader, crit, opt, sched, epochs=2, device="cpu", checkpoint_dir=tmp_path, hooks=[hook],
               max_iters_per_epoch=3)
    steps = [c for c in hook.calls if c[0] == "step"]
    assert steps == [("step", e, i) for e in range(2) for i in range(3)]
    assert hook.calls[0] == ("train", 0) and hook.calls[-1] == ("done", 2)
    assert [r["hooked"] for r in hist] == [1, 2]
    assert [r["hooked"] for r in read_checkpoint(tmp_path / "last.pt")["history"]] == [1, 2]


def _toy_preset(**kw):
    from types import SimpleNamespace

    base = dict(model="toy", profile="smoke", height=16, width=8, train_aug={}, P=4, K=4, epochs=2,
                losses=[{"name": "ce", "loss": "cross_entropy", "key": "logits"}],
                optimizer={"name": "sgd", "lr": 0.05, "momentum": 0.9}, schedule={"name": "step", "milestones": [1],
                                                                               "gamma": 0.5},
                eval_every=0)
    base.update(kw)
    return SimpleNamespace(**base, to_dict=lambda: dict(base))


def test_fit_preset_equals_the_recipe_written_out():
    """fit_preset = loader + build_criterion + build_optimizer + build_scheduler + fit, in that order."""
    from reidbook.engine import fit_preset
    from reidbook.losses import build_criterion

    preset = _toy_preset()
    data = ToyReIDData(num_ids=8, per_id=8, seed=0)
    torch.manual_seed(0)
    a = TinyReIDNet(data.num_classes)
    b = TinyReIDNet(data.num_classes)
    b.load_state_dict(a.state_dict())
    ha = fit_preset(a, None, preset, loader=toy_loader(data, P=4, K=4, seed=0), device="cpu")
    loader = toy_loader(data, P=4, K=4, seed=0)
    crit = build_criterion(preset.losses)
    opt = build_optimizer(b, preset.optimizer, crit)
    sched = build_scheduler(opt, preset.schedule, preset.epochs, iters_per_epoch(loader))
    hb = fit(b, loader, crit, opt, sched, epochs=preset.epochs, device="cpu")
    assert _losses(ha) == _losses(hb)
    for k, v in a.state_dict().items():
        assert torch.equal(v, b.state_dict()[k]), k


def test_fit_preset_penalty_lr_scale_and_no_schedule():
    from reidbook.engine import fit_preset

    preset = _toy_preset(epochs=1)
    data = ToyReIDData(num_ids=8, per_id=8, seed=0)
    model = TinyReIDNet(data.num_classes)
    hist = fit_preset(model, None, preset, loader=toy_loader(data, P=4, K=4), device="cpu", lr_scale=0.1,
                      schedule=None, penalty=lambda: torch.tensor(2.5))
    rec = hist[-1]
    assert rec["penalty"] == 2.5 and rec["loss"] == pytest.approx(rec["ce"] + 2.5)
    assert rec["lr"] == pytest.approx(0.005)  # 0.05 × 0.1, constant (no scheduler)
    with pytest.raises(ValueError, match="epochs must be an integer ≥ 1"):
        fit_preset(model, None, preset, loader=toy_loader(data, P=4, K=4), epochs=0)
