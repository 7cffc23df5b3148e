"""The P×K identity sampler (invariants, DDP slices, determinism, resume) and the v2 transforms."""
from __future__ import annotations

from collections import Counter

import numpy as np
import pytest
import torch
from PIL import Image

from reidbook.data import (
    IMAGENET_MEAN,
    IMAGENET_STD,
    RandomIdentitySampler,
    build_transforms,
    make_train_loader,
)
from reidbook.data.transforms import denormalize


def fake_items(counts):
    """Items with ``counts[j]`` images for identity ``j`` (paths are never opened by the sampler)."""
    return [(f"{pid}_{i}.jpg", pid, i % 3) for pid, n in enumerate(counts) for i in range(n)]


# uneven identities: some below K (sampled with replacement), some with leftovers
COUNTS = [1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 20, 4, 4, 2, 9]


def check_pk(items, batch, P, K):
    pids = Counter(items[i][1] for i in batch)
    assert len(batch) == P * K and len(pids) == P and set(pids.values()) == {K}


def test_every_batch_is_p_identities_times_k():
    items = fake_items(COUNTS)
    P, K = 4, 4
    s = RandomIdentitySampler(items, batch_size=P * K, num_instances=K, seed=0)
    chunks = sum(max(1, n // K) for n in COUNTS)
    assert s.batches_per_epoch == chunks // P and len(s) == s.batches_per_epoch * P * K
    for epoch in range(5):
        flat = list(s)  # iterating moves the sampler to the next epoch
        assert len(flat) == len(s)
        for b in range(0, len(flat), P * K):
            check_pk(items, flat[b:b + P * K], P, K)
        assert s.epoch == epoch + 1
    # an identity with fewer than K images appears K times (with replacement) when drawn
    one = [i for i, it in enumerate(items) if it[1] == 0]
    assert any(Counter(b)[one[0]] == K for b in s.batches(0) if one[0] in b)


def test_determinism_and_epochs():
    items = fake_items(COUNTS)
    a = RandomIdentitySampler(items, 8, 2, seed=3)
    b = RandomIdentitySampler(items, 8, 2, seed=3)
    assert list(a) == list(b)  # same seed, epoch 0
    assert list(a) == list(b)  # both advanced to epoch 1
    assert list(a) != list(RandomIdentitySampler(items, 8, 2, seed=4))
    c = RandomIdentitySampler(items, 8, 2, seed=3)
    e0 = list(c)
    assert list(c) != e0  # a fresh shuffle each epoch without set_epoch
    c.set_epoch(0)
    assert list(c) == e0


def test_ddp_ranks_take_disjoint_slices():
    items = fake_items(COUNTS * 3)
    R, P, K = 3, 4, 2
    full = RandomIdentitySampler(items, P * K, K, seed=1, num_replicas=1, rank=0)
    ranks = [RandomIdentitySampler(items, P * K, K, seed=1, num_replicas=R, rank=r) for r in range(R)]
    assert full.num_replicas == 1 and len({len(s) for s in ranks}) == 1
    assert len(ranks[0]) == (full.batches_per_epoch // R) * P * K
    all_batches = full.batches(2)
    for r, s in enumerate(ranks):
        assert s.batches(2) == all_batches[r::R][: s.batches_per_rank]
    # with one chunk per identity (and #ids a multiple of P) no image repeats in an epoch,
    # so the ranks' index sets are disjoint
    items = fake_items([K] * 24)
    ranks = [RandomIdentitySampler(items, P * K, K, seed=5, num_replicas=R, rank=r) for r in range(R)]
    sets = [set(s) for s in ranks]
    assert sum(map(len, sets)) == len(set().union(*sets)) == len(items)
    with pytest.raises(ValueError, match="rank"):
        RandomIdentitySampler(items, P * K, K, num_replicas=2, rank=2)


def test_resume_reproduces_batches():
    items = fake_items(COUNTS)
    a = RandomIdentitySampler(items, 8, 4, seed=7)
    list(a)  # epoch 0
    it = iter(a)
    head = [next(it) for _ in range(3 * 8)]  # three batches of epoch 1 trained, then a "crash"
    state = a.state_dict(batches_done=3)
    assert state["epoch"] == 1 and state["start_batch"] == 3

    b = RandomIdentitySampler(items, 8, 4, seed=0)  # seed comes from the state
    b.load_state_dict(state)
    assert len(b) == len(a) - 3 * 8
    rest = list(b)
    assert head + rest == sum(a.batches(1), [])
    assert list(b) == sum(a.batches(2), [])  # and the following epoch too
    with pytest.raises(ValueError, match="num_instances"):
        RandomIdentitySampler(items, 8, 2).load_state_dict(state)
    with pytest.raises(ValueError, match="different training set"):
        RandomIdentitySampler(fake_items(COUNTS[:-1]), 8, 4).load_state_dict(state)


def test_sampler_errors():
    items = fake_items([4, 4, 4])
    with pytest.raises(ValueError, match="multiple of num_instances"):
        RandomIdentitySampler(items, batch_size=10, num_instances=4)
    with pytest.raises(ValueError, match="P=4 distinct identities"):
        RandomIdentitySampler(items, batch_size=16, num_instances=4)


def test_train_loader_batches(tmp_path):
    torch.manual_seed(0)
    items = []
    for pid, n in enumerate([3, 5, 2, 6, 4, 4]):
        for i in range(n):
            p = tmp_path / f"{pid:04d}_c{i % 2 + 1}s1_{i:06d}_01.jpg"
            Image.new("RGB", (4, 8), (40 * pid, 10 * i, 90)).save(p)
            items.append((str(p), pid, i % 2))
    P, K = 3, 2
    loader = make_train_loader(items, build_transforms(16, 8, is_train=True), P=P, K=K, seed=0, cache=True)
    assert len(loader) == loader.sampler.batches_per_rank
    epochs = []
    for _ in range(2):
        seen = []
        for x, pids, _camids, idx in loader:
            assert x.shape == (P * K, 3, 16, 8) and x.dtype == torch.float32
            assert sorted(Counter(pids.tolist()).values()) == [K] * P
            assert [items[i][1] for i in idx.tolist()] == pids.tolist()
            seen.append(idx.tolist())
        assert len(seen) == len(loader)
        epochs.append(seen)
    assert epochs[0] != epochs[1] and loader.sampler.epoch == 2


# ---------------------------------------------------------------------------------------------
def gradient_image(w=20, h=44):
    a = np.zeros((h, w, 3), dtype=np.uint8)
    a[..., 0] = np.linspace(0, 255, w, dtype=np.uint8)[None, :]
    a[..., 1] = np.linspace(0, 255, h, dtype=np.uint8)[:, None]
    a[..., 2] = 128
    return Image.fromarray(a)


@pytest.mark.parametrize("aug", [
    {}, {"random_erasing": 0.5, "color_jitter": 0.3, "rotation": 10}, {"resize_scale": 1.125, "pad": 0},
    {"flip": False, "random_crop": False}, {"normalize": False},
])
def test_transform_shapes_and_dtypes(aug):
    img = gradient_image()
    for is_train in (True, False):
        t = build_transforms(32, 16, is_train=is_train, **aug)
        x = t(img)
        assert type(x) is torch.Tensor and x.shape == (3, 32, 16) and x.dtype == torch.float32
    y = t(torch.from_numpy(np.array(img)).permute(2, 0, 1).contiguous())  # uint8 CHW input works too
    assert y.shape == (3, 32, 16)


def test_test_time_is_deterministic_resize_and_normalize():
    t = build_transforms(16, 8, is_train=False, random_erasing=1.0, color_jitter=0.5)  # augment args ignored
    img = Image.new("RGB", (5, 9), (255, 128, 0))
    x = t(img)
    assert torch.equal(x, t(img))
    expect = (torch.tensor([255, 128, 0]) / 255 - torch.tensor(IMAGENET_MEAN)) / torch.tensor(IMAGENET_STD)
    assert torch.allclose(x[:, 5, 3], expect, atol=1e-5)
    assert torch.allclose(denormalize(x)[:, 0, 0], torch.tensor([1.0, 128 / 255, 0.0]), atol=1e-5)


def test_random_augmentation_changes_images():
    img = gradient_image()
    torch.manual_seed(0)
    for aug in ({"pad": 10, "random_crop": True}, {"resize_scale": 1.125, "random_crop": True}, {"flip": True},
                {"color_jitter": 0.4, "random_crop": False, "flip": False},
                {"rotation": 20, "random_crop": False, "flip": False}):
        t = build_transforms(32, 16, is_train=True, **aug)
        outs = [t(img) for _ in range(6)]
        assert any(not torch.equal(outs[0], o) for o in outs[1:]), aug
    plain = build_transforms(32, 16, is_train=True, flip=False, random_crop=False)
    assert torch.equal(plain(img), build_transforms(32, 16, is_train=False)(img))


def test_random_erasing_erases():
    img = Image.new("RGB", (16, 32), (250, 250, 250))  # white: never 0 after normalisation
    base = build_transforms(32, 16, is_train=True, flip=False, random_crop=False)
    assert (base(img) == 0).all(dim=0).sum() == 0
    torch.manual_seed(0)
    t = build_transforms(32, 16, is_train=True, flip=False, random_crop=False, random_erasing=1.0)
    fractions = [(t(img) == 0).all(dim=0).float().mean().item() for _ in range(20)]
    erased = [f for f in fractions if f > 0]
    assert len(erased) >= 18 and max(erased) <= 0.34 and min(erased) >= 0.015
    # without normalisation the rectangle holds the mean pixel
    t = build_transforms(32, 16, is_train=True, flip=False, random_crop=False, random_erasing=1.0, normalize=False)
    x = t(img)
    mask = (x - torch.tensor(IMAGENET_MEAN).view(3, 1, 1)).abs().max(dim=0).values < 1e-6
    assert mask.any()
    never = build_transforms(32, 16, is_train=True, flip=False, random_crop=False, random_erasing=0.0)
    assert torch.equal(never(img), base(img))


def test_transform_argument_errors():
    for bad in ({"random_erasing": 1.5}, {"rotation": -1}, {"resize_scale": 0.9}, {"pad": -2}):
        with pytest.raises(ValueError):
            build_transforms(32, 16, is_train=True, **bad)
    with pytest.raises(ValueError, match="positive"):
        build_transforms(0, 16, is_train=False)


def test_to_float_matches_torchvision():
    from torchvision.transforms import v2

    from reidbook.data.transforms import ToFloat

    x = torch.randint(0, 256, (3, 9, 5), dtype=torch.uint8)
    ref = v2.Normalize(IMAGENET_MEAN, IMAGENET_STD)(v2.ToDtype(torch.float32, scale=True)(x))
    assert torch.allclose(ToFloat(IMAGENET_MEAN, IMAGENET_STD)(x), ref, atol=1e-6)
    f = torch.rand(3, 4, 4)
    keep = f.clone()
    assert torch.equal(ToFloat()(f), keep) and torch.equal(f, keep)  # input untouched


def test_resume_with_another_world_size_at_epoch_boundary():
    items = fake_items(COUNTS * 2)
    one = RandomIdentitySampler(items, 8, 4, seed=2, num_replicas=1, rank=0)
    one.set_epoch(3)
    two = RandomIdentitySampler(items, 8, 4, seed=0, num_replicas=2, rank=1)
    two.load_state_dict(one.state_dict())
    assert two.epoch == 3 and two.batches() == one.batches(3)[1::2][: two.batches_per_rank]
    with pytest.raises(ValueError, match="num_replicas"):
        two.load_state_dict(one.state_dict(batches_done=1))


# --------------------------------------------------------------------------------------------- no hidden defaults
def test_training_augmentation_is_off_unless_asked_for():
    """``build_transforms(..., is_train=True)`` with no options is the test transform: nothing is added
    behind a preset's back (PCB's ``{"flip": True}`` once trained with a pad-10 crop too)."""
    img = gradient_image()
    plain = build_transforms(32, 16, is_train=True)
    assert torch.equal(plain(img), build_transforms(32, 16, is_train=False)(img))
    names = [type(op).__name__ for op in build_transforms(32, 16, is_train=True, flip=True).transforms]
    assert "RandomHorizontalFlip" in names and "RandomCrop" not in names
    with pytest.raises(ValueError, match="pad > 0"):
        build_transforms(32, 16, is_train=True, random_crop=True)


def _all_presets():
    """Every model preset of the package at every profile: ``PRESETS`` of each module, FD's stages."""
    import importlib
    import pkgutil

    import reidbook.presets as P
    from reidbook.presets import fd

    out = []
    for info in pkgutil.iter_modules(P.__path__):
        mod = importlib.import_module(f"reidbook.presets.{info.name}")
        for prof, preset in getattr(mod, "PRESETS", {}).items():
            out.append((f"{info.name}/{prof}", preset))
    for prof in ("smoke", "quick", "full"):
        out += [(f"fd.teacher[{v}]/{prof}", fd.teacher_preset(v, prof)) for v in ("holistic", "upper")]
        out += [(f"fd.student/{prof}", fd.student_preset(prof)), (f"fd.distill/{prof}", fd.distill_preset(prof))]
    return out


@pytest.mark.parametrize("name,preset", _all_presets(), ids=lambda v: v if isinstance(v, str) else "")
def test_each_presets_transform_is_exactly_what_it_states(name, preset):
    """Every preset names flip, crop and erasing itself (the pad too when it crops by padding), and the
    training transform built from it contains those operations and no others."""
    aug = dict(preset.train_aug)
    missing = {"flip", "random_crop", "random_erasing"} - set(aug)
    if aug.get("random_crop") and aug.get("resize_scale") is None:
        missing |= {"pad"} - set(aug)
    assert not missing, f"{name}: train_aug does not state {sorted(missing)}"
    ops = [type(op).__name__ for op in build_transforms(preset.height, preset.width, is_train=True, **aug).transforms]
    want = {"RandomHorizontalFlip": bool(aug["flip"]), "RandomCrop": bool(aug["random_crop"]),
            "RandomErasing": aug["random_erasing"] > 0, "ColorJitter": aug.get("color_jitter", 0) > 0,
            "RandomRotation": aug.get("rotation", 0) > 0}
    for op, present in want.items():
        assert (op in ops) == present, f"{name}: {op} {'missing' if present else 'added'} ({aug})"


def test_pcb_trains_with_flip_only():
    from reidbook.presets import get_preset

    for prof in ("smoke", "quick", "full"):
        p = get_preset("pcb", prof)
        ops = [type(op).__name__ for op in build_transforms(p.height, p.width, is_train=True, **p.train_aug).transforms]
        assert ops == ["ToImage", "Resize", "RandomHorizontalFlip", "ToFloat"], (prof, ops)
