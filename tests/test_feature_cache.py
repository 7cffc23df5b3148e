"""Each test split is extracted once per model (issue 22): a stored model's features are kept in the store,
keyed by its entry and weights, the split, the input transform and flip/normalise — and never reused for a
changed model or split."""
from __future__ import annotations

import os

import numpy as np
import pytest
import torch
from PIL import Image
from torch import nn
from torch.utils.data import DataLoader

from reidbook.data import ImageDataset, build_transforms
from reidbook.engine import extract_features
from reidbook.store import ENTRY_ATTR, entry_tag, load_model, save_model, weights_digest

H, W = 32, 16


class CountingNet(nn.Module):
    """A tiny embedding model that counts its forward passes."""

    def __init__(self):
        super().__init__()
        self.conv = nn.Conv2d(3, 4, 3, padding=1)
        self.bn = nn.BatchNorm1d(4)
        self.calls = 0

    def forward(self, x):
        self.calls += 1
        return self.bn(self.conv(x).amax(dim=(2, 3)))


@pytest.fixture()
def split(tmp_path, monkeypatch):
    """Six small images (two identities, two cameras) in a private cache."""
    monkeypatch.setenv("REIDBOOK_CACHE", str(tmp_path / "cache"))
    monkeypatch.delenv("REIDBOOK_FEATURE_CACHE", raising=False)
    rng = np.random.default_rng(0)
    items = []
    for i in range(6):
        path = tmp_path / "img" / f"{i:04d}.png"
        path.parent.mkdir(exist_ok=True)
        Image.fromarray(rng.integers(0, 255, (H, W, 3), dtype=np.uint8)).save(path)
        items.append((str(path), i % 2 + 1, i % 3 + 1))
    return items


def _loader(items, shuffle=False):
    return DataLoader(ImageDataset(items, build_transforms(H, W, is_train=False)), batch_size=4, shuffle=shuffle)


def _stored(tmp_path, seed=0) -> CountingNet:
    torch.manual_seed(seed)
    model = CountingNet().eval()
    save_model(tmp_path / "zoo" / "toy" / "0123abcd", model, {}, [])  # tags it with its entry
    return model


def test_second_extraction_of_a_stored_model_runs_no_forward_pass(tmp_path, split):
    model = _stored(tmp_path)
    f1, p1, c1 = extract_features(model, _loader(split), device="cpu")
    assert model.calls == 4  # 2 batches × (image + flip)
    f2, p2, c2 = extract_features(model, _loader(split), device="cpu")
    assert model.calls == 4, "the second extraction ran the model"
    assert torch.equal(f1, f2) and np.array_equal(p1, p2) and np.array_equal(c1, c2)
    assert p2.dtype == np.int64 and list(p2) == [it[1] for it in split] and f2.dtype == torch.float32
    # the same entry loaded elsewhere (another chapter's zoo.get) reads the same features
    again = load_model(tmp_path / "zoo" / "toy" / "0123abcd", CountingNet())
    f3, _, _ = extract_features(again.model, _loader(split), device="cpu")
    assert again.model.calls == 0 and torch.equal(f1, f3)


def test_options_and_split_are_part_of_the_key(tmp_path, split):
    model = _stored(tmp_path)
    base, _, _ = extract_features(model, _loader(split), device="cpu")
    n = model.calls
    no_flip, _, _ = extract_features(model, _loader(split), device="cpu", flip=False)
    assert model.calls == n + 2 and not torch.equal(no_flip, base)
    normed, _, _ = extract_features(model, _loader(split), device="cpu", normalize=True)
    assert model.calls == n + 6 and torch.allclose(normed.norm(dim=1), torch.ones(len(split)))
    sub, _, _ = extract_features(model, _loader(split[:3]), device="cpu")  # another split
    assert model.calls == n + 8 and torch.allclose(sub, base[:3], atol=1e-6)
    other_size = DataLoader(ImageDataset(split, build_transforms(2 * H, 2 * W, is_train=False)), batch_size=4)
    extract_features(model, other_size, device="cpu")
    assert model.calls == n + 12
    # regenerated images (same paths, new files) are a new split
    os.utime(split[0][0], ns=(1, 1))
    extract_features(model, _loader(split), device="cpu")
    assert model.calls == n + 16


def test_a_changed_model_is_never_served_stale_features(tmp_path, split):
    model = _stored(tmp_path)
    old, _, _ = extract_features(model, _loader(split), device="cpu")
    with torch.no_grad():  # fine-tuned (or pruned) in place: the tag no longer holds
        model.conv.weight.mul_(-1)
    assert entry_tag(model) is None
    changed, _, _ = extract_features(model, _loader(split), device="cpu")
    n = model.calls
    assert not torch.allclose(changed, old)
    extract_features(model, _loader(split), device="cpu")
    assert model.calls == n + 4  # not cached: computed every time


def test_retraining_the_entry_invalidates_its_features(tmp_path, split):
    first = _stored(tmp_path, seed=0)
    old, _, _ = extract_features(first, _loader(split), device="cpu")
    retrained = _stored(tmp_path, seed=1)  # the same entry folder written again with new weights
    assert getattr(retrained, ENTRY_ATTR)["key"] == getattr(first, ENTRY_ATTR)["key"]
    assert weights_digest(retrained) != weights_digest(first)
    new, _, _ = extract_features(retrained, _loader(split), device="cpu")
    assert retrained.calls == 4 and not torch.allclose(new, old)


def test_untagged_hooked_or_shuffled_or_opted_out_extractions_run_the_model(tmp_path, split, monkeypatch):
    plain = CountingNet().eval()  # not from the store
    extract_features(plain, _loader(split), device="cpu")
    extract_features(plain, _loader(split), device="cpu")
    assert plain.calls == 8
    model = _stored(tmp_path)
    extract_features(model, _loader(split), device="cpu")
    extract_features(model, _loader(split, shuffle=True), device="cpu")  # not in dataset order
    assert model.calls == 8
    dropped = DataLoader(ImageDataset(split, build_transforms(H, W, is_train=False)), batch_size=4, drop_last=True)
    f, _, _ = extract_features(model, dropped, device="cpu")  # not the whole split
    assert model.calls == 10 and len(f) == 4
    assert len(extract_features(model, _loader(split), device="cpu")[0]) == 6 and model.calls == 10
    extract_features(model, _loader(split), device="cpu", cache=False)
    assert model.calls == 14
    monkeypatch.setenv("REIDBOOK_FEATURE_CACHE", "0")
    extract_features(model, _loader(split), device="cpu")
    assert model.calls == 18
    monkeypatch.delenv("REIDBOOK_FEATURE_CACHE")
    handle = model.conv.register_forward_hook(lambda m, i, o: o * 2)  # e.g. Grad-CAM, a pruning mask
    hooked, _, _ = extract_features(model, _loader(split), device="cpu")
    handle.remove()
    assert model.calls == 22
    cached, _, _ = extract_features(model, _loader(split), device="cpu")
    assert model.calls == 22 and not torch.allclose(hooked, cached)
    model.conv.forward = lambda x: torch.zeros(x.shape[0], 4, x.shape[2], x.shape[3])  # a patched layer
    patched, _, _ = extract_features(model, _loader(split), device="cpu")
    assert model.calls == 26 and not torch.allclose(patched, cached)


def test_evaluate_model_reuses_the_features_of_a_stored_model(tmp_path, split):
    from types import SimpleNamespace

    from reidbook.eval import evaluate_model

    model = _stored(tmp_path)
    ds = SimpleNamespace(query=split[:2], gallery=split[2:])
    first = evaluate_model(model, ds, H, W, device="cpu")
    n = model.calls
    second = evaluate_model(model, ds, H, W, device="cpu")
    assert model.calls == n and second["mAP"] == first["mAP"]
    assert np.array_equal(second["distmat"], first["distmat"])


class Halved(nn.Module):
    """A network derived from another (as a deployed form or an exit is): its embedding, halved."""

    def __init__(self, inner: nn.Module, scale: float = 0.5):
        super().__init__()
        self.inner, self.scale = inner, scale

    def forward(self, x):
        return self.inner(x) * self.scale


def test_a_derived_network_of_a_stored_model_is_cached_per_variant(tmp_path, split):
    from reidbook.store import tag_derived

    model = _stored(tmp_path)
    a = tag_derived(Halved(model), model, "half")
    tag = entry_tag(a)
    assert tag["variant"] == "half" and tag["class"] == "Halved" and tag["key"] == "0123abcd"
    fa, _, _ = extract_features(a, _loader(split), device="cpu")
    n = model.calls
    again, _, _ = extract_features(tag_derived(Halved(model), model, "half"), _loader(split), device="cpu")
    assert model.calls == n and torch.equal(fa, again)  # the same derivation elsewhere reads the features
    # another variant with the same weights (DaRe's exits share them) is another key
    b = tag_derived(Halved(model, scale=0.25), model, "quarter")
    fb, _, _ = extract_features(b, _loader(split), device="cpu")
    assert model.calls == n + 4 and torch.allclose(fb, fa / 2, atol=1e-6)
    # deriving the same network again (a deployed model deployed again) keeps the source's key
    twin = _stored(tmp_path)
    copy = CountingNet().eval()
    copy.load_state_dict(twin.state_dict())
    assert entry_tag(tag_derived(copy, twin, "deployed")) == entry_tag(twin)
    # nothing is tagged when the source is not an unchanged stored model
    assert entry_tag(tag_derived(Halved(CountingNet()), CountingNet(), "half")) is None
    with torch.no_grad():
        model.conv.weight.mul_(-1)
    assert entry_tag(tag_derived(Halved(model), model, "half")) is None


def test_fd_view_features_of_a_stored_model_are_cached_per_view(tmp_path, split):
    from reidbook.data.views import ViewDataset, make_views

    model = _stored(tmp_path)
    up1, dn1 = make_views((H, W), (H, H), names=["up1", "dn1"])
    loader = lambda v: DataLoader(ViewDataset(split, v), batch_size=4)  # noqa: E731
    f_up, _, _ = extract_features(model, loader(up1), device="cpu")
    n = model.calls
    assert torch.equal(extract_features(model, loader(up1), device="cpu")[0], f_up) and model.calls == n
    f_dn, _, _ = extract_features(model, loader(dn1), device="cpu")  # another band: another key
    assert model.calls == n + 4 and not torch.allclose(f_dn, f_up)


def test_every_exit_of_a_stored_anytime_model_is_extracted_once(tmp_path, split, monkeypatch):
    """AnytimeEval's features of a stored DaRe (chapter 07, and chapter 08's exits) come from the store the
    second time."""
    from reidbook.engine import extract
    from reidbook.eval.anytime import exit_features
    from reidbook.models import build_model

    torch.manual_seed(0)
    dare = build_model("dare", 2, profile="smoke").eval()
    save_model(tmp_path / "zoo" / "dare" / "0123abcd", dare, {}, [])
    first = exit_features(dare, split, 64, 32, device="cpu")
    monkeypatch.setattr(extract, "_extract", lambda *a, **k: pytest.fail("the model ran again"))
    again = exit_features(dare, split, 64, 32, device="cpu")
    assert torch.equal(first, again) and first.shape[:2] == (5, len(split))
