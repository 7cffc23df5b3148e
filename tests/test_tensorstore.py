"""The tensor path (decode once, augment whole batches) against the PIL path it replaces."""
from __future__ import annotations

import dataclasses

import pytest
import torch

from reidbook.data import build_transforms, make_train_loader
from reidbook.data.tensorstore import (
    BatchAugment,
    TensorStore,
    batch_generator,
    make_tensor_loader,
    tensor_aug_supported,
)

pytestmark = pytest.mark.usefixtures("one_thread")
H, W = 64, 32


@pytest.fixture(scope="module")
def items(smoke_dataset):
    return smoke_dataset.train


def test_store_holds_the_pil_paths_resized_images(items, tmp_path):
    from torchvision.transforms import v2

    from reidbook.data import crop_view, make_views, read_image

    store = TensorStore.build(items[:12], H, W, cache=tmp_path)
    assert store.images.dtype == torch.uint8 and tuple(store.images.shape) == (12, 3, H, W)
    resize = v2.Compose([v2.ToImage(), v2.Resize((H, W), antialias=True)])
    for i in (0, 5, 11):
        assert torch.equal(store.images[i], resize(read_image(items[i][0])).as_subclass(torch.Tensor))
    assert store.pids.tolist() == [p for _, p, _ in items[:12]]
    # an FD band: crop_view, then the same resize
    view = make_views((H, W), (32, 32), names=["mid1"])[0]
    band = TensorStore.build(items[:3], 32, 32, band=(view.top, view.bottom), cache=False)
    ref = v2.Compose([v2.ToImage(), v2.Resize((32, 32), antialias=True)])(crop_view(read_image(items[2][0]), view))
    assert torch.equal(band.images[2], ref.as_subclass(torch.Tensor))
    # cached: loaded, not decoded again; a corrupt file is rebuilt
    (cached,) = list(tmp_path.glob("*.pt"))
    again = TensorStore.build(items[:12], H, W, cache=tmp_path)
    assert torch.equal(again.images, store.images)
    cached.write_bytes(b"not a tensor")
    assert torch.equal(TensorStore.build(items[:12], H, W, cache=tmp_path).images, store.images)


def test_without_augmentation_the_batches_equal_the_pil_paths(items, tmp_path):
    aug = {"flip": False}
    pil = make_train_loader(items, build_transforms(H, W, is_train=True, **aug), P=4, K=4, seed=3)
    ten = make_tensor_loader(items, H, W, P=4, K=4, seed=3, cache=tmp_path, **aug)
    assert len(pil) == len(ten)
    for (xa, pa, ca, ia), (xb, pb, cb, ib) in zip(pil, ten):
        assert torch.equal(ia, ib) and torch.equal(pa, pb) and torch.equal(ca, cb)
        torch.testing.assert_close(xa, xb, rtol=0, atol=1e-6)


@pytest.mark.parametrize("aug", [
    {"flip": True, "pad": 5, "random_crop": True, "random_erasing": 0.5},  # the BoT baseline's
    {"flip": True, "random_crop": True, "resize_scale": 1.125},  # DaRe's
    {"flip": True, "pad": 3, "random_crop": True, "random_erasing": 0.5, "color_jitter": 0.2, "rotation": 5.0},  # FD's
])
def test_augmented_batches_have_the_pil_paths_shapes_dtypes_and_labels(items, tmp_path, aug):
    pil = make_train_loader(items, build_transforms(H, W, is_train=True, **aug), P=4, K=4, seed=1)
    ten = make_tensor_loader(items, H, W, P=4, K=4, seed=1, cache=tmp_path, **aug)
    for (xa, pa, ca, ia), (xb, pb, cb, ib) in zip(pil, ten):
        assert xa.shape == xb.shape == (16, 3, H, W) and xa.dtype == xb.dtype == torch.float32
        assert torch.equal(ia, ib) and torch.equal(pa, pb) and torch.equal(ca, cb)
        assert torch.isfinite(xb).all()


def test_augmentation_is_a_function_of_seed_epoch_and_step(items, tmp_path):
    aug = BatchAugment(H, W, flip=True, pad=4, random_crop=True, random_erasing=0.5, color_jitter=0.2, rotation=5)
    raw = TensorStore.build(items[:16], H, W, cache=tmp_path).images
    a = aug(raw, batch_generator(0, 2, 7))
    torch.manual_seed(123)  # the global RNG plays no part
    b = aug(raw, batch_generator(0, 2, 7))
    assert torch.equal(a, b)
    for other in (batch_generator(1, 2, 7), batch_generator(0, 3, 7), batch_generator(0, 2, 8)):
        assert not torch.equal(a, aug(raw, other))
    assert torch.equal(raw, TensorStore.build(items[:16], H, W, cache=tmp_path).images)  # the store is untouched


def test_flip_and_erasing_do_what_they_say(items, tmp_path):
    raw = TensorStore.build(items[:64], H, W, cache=tmp_path).images
    plain = BatchAugment(H, W)(raw, batch_generator(0, 0, 0))
    flipped = BatchAugment(H, W, flip=True)(raw, batch_generator(0, 0, 0))
    same = [torch.equal(f, p) for f, p in zip(flipped, plain)]
    mirror = [torch.equal(f, p.flip(-1)) for f, p in zip(flipped, plain)]
    assert all(s or m for s, m in zip(same, mirror)) and 16 < sum(mirror) < 48  # p = 0.5 of 64
    erased = BatchAugment(H, W, random_erasing=1.0)(raw, batch_generator(0, 0, 0))
    changed = (erased != plain).any(dim=1)  # pixels set to the mean (0 once normalised)
    frac = changed.float().mean(dim=(1, 2))
    assert (erased[changed.unsqueeze(1).expand_as(erased)] == 0).all()
    assert (frac > 0).float().mean() > 0.9 and frac.max() <= 0.34  # Alg. 1: area 2-33 %


def test_unsupported_augmentation_is_refused(items):
    assert tensor_aug_supported({"flip": True, "rotation": 5}) and not tensor_aug_supported({"hue": 0.1})
    with pytest.raises(ValueError, match="make_train_loader"):
        make_tensor_loader(items, H, W, P=4, K=4, hue=0.1)


def test_resume_is_bit_exact(items, tmp_path):
    from reidbook.engine import build_optimizer, fit
    from reidbook.losses import build_criterion
    from reidbook.models import build_model
    from reidbook.presets import get_preset

    preset = get_preset("baseline", "smoke")
    n_cls = max(p for _, p, _ in items) + 1

    def run(epochs, ckpt):
        torch.manual_seed(0)
        model = build_model("baseline", n_cls, profile="smoke")
        loader = make_tensor_loader(items, preset.height, preset.width, P=4, K=4, seed=0, cache=tmp_path,
                                    flip=True, pad=2, random_crop=True, random_erasing=0.5)
        crit = build_criterion(preset.losses)
        opt = build_optimizer(model, {"name": "sgd", "lr": 0.01, "momentum": 0.9, "weight_decay": 5e-4})
        fit(model, loader, crit, opt, epochs=epochs, device="cpu", checkpoint_dir=ckpt, seed=0,
            max_iters_per_epoch=3)
        return {k: v.clone() for k, v in model.state_dict().items()}

    straight = run(2, tmp_path / "a")
    run(1, tmp_path / "b")  # killed after epoch 1 …
    resumed = run(2, tmp_path / "b")  # … and resumed
    assert straight.keys() == resumed.keys()
    for k in straight:
        assert torch.equal(straight[k], resumed[k]), k


def test_preset_loader_picks_the_tensor_path_unless_told_otherwise(items, monkeypatch):
    from torch.utils.data import DataLoader

    from reidbook.data.tensorstore import TensorBatchLoader
    from reidbook.engine import preset_loader
    from reidbook.presets import get_preset

    preset = get_preset("baseline", "smoke")
    monkeypatch.delenv("REIDBOOK_LOADER", raising=False)
    assert isinstance(preset_loader(items, preset), TensorBatchLoader)
    assert isinstance(preset_loader(items, preset, transform=build_transforms(H, W, True)), DataLoader)
    monkeypatch.setenv("REIDBOOK_LOADER", "pil")
    assert isinstance(preset_loader(items, preset), DataLoader)
    with pytest.raises(ValueError, match="band= needs the tensor loader"):
        preset_loader(items, preset, band=(0.25, 0.5))
    monkeypatch.setenv("REIDBOOK_LOADER", "fast")
    with pytest.raises(ValueError, match="REIDBOOK_LOADER"):
        preset_loader(items, preset)


def test_fd_view_loader_crops_the_band_on_the_tensor_path(items, monkeypatch):
    from reidbook.data import make_views
    from reidbook.data.tensorstore import TensorBatchLoader
    from reidbook.distill.teachers import view_loader
    from reidbook.presets.fd import teacher_preset

    monkeypatch.delenv("REIDBOOK_LOADER", raising=False)
    preset = dataclasses.replace(teacher_preset("up1", "smoke"), train_aug={})  # no augmentation: exact pixels
    view = make_views((preset.height, preset.width), (preset.height, preset.width), names=["up1"])[0]
    tensor = view_loader(items, view, preset, seed=0)
    monkeypatch.setenv("REIDBOOK_LOADER", "pil")
    pil = view_loader(items, view, preset, seed=0)
    assert isinstance(tensor, TensorBatchLoader) and not isinstance(pil, TensorBatchLoader)
    (xa, pa, _, ia), (xb, pb, _, ib) = next(iter(pil)), next(iter(tensor))
    assert torch.equal(ia, ib) and torch.equal(pa, pb)
    torch.testing.assert_close(xa, xb, rtol=0, atol=1e-6)  # the same band, resized the same way
