"""BatchNorm folding for inference (reidbook/models/fold.py): same embeddings, fewer modules, model untouched."""
from __future__ import annotations

import pytest
import torch
from torch import nn

from reidbook.engine import extract_features
from reidbook.models import build_model
from reidbook.models.fold import fold_batchnorm


def _with_running_stats(model: nn.Module, seed: int = 0) -> nn.Module:
    """Give every BN non-trivial running statistics and affine parameters (fresh ones fold to the identity)."""
    g = torch.Generator().manual_seed(seed)
    for m in model.modules():
        if isinstance(m, nn.BatchNorm2d):
            m.running_mean.copy_(torch.randn(m.num_features, generator=g) * 0.1)
            m.running_var.copy_(torch.rand(m.num_features, generator=g) + 0.5)
            m.weight.data.copy_(torch.rand(m.num_features, generator=g) + 0.5)
            m.bias.data.copy_(torch.randn(m.num_features, generator=g) * 0.1)
    return model.eval()


def _bn_count(model: nn.Module) -> int:
    return sum(isinstance(m, nn.BatchNorm2d) for m in model.modules())


def test_folded_resnet50_baseline_gives_the_same_embedding_without_its_backbone_bns():
    model = _with_running_stats(build_model("baseline", 10, profile="smoke"))
    before = {k: v.clone() for k, v in model.state_dict().items()}
    folded, n = fold_batchnorm(model)
    # ResNet-50: the stem, 16 bottlenecks × 3, 4 downsamples = 53 conv → BN pairs; the BN-neck stays
    assert n == 53
    assert _bn_count(model) == 53 and _bn_count(folded) == 0
    assert any(isinstance(m, nn.BatchNorm1d) for m in folded.modules())  # the BN-neck is not a conv's
    x = torch.randn(4, 3, 64, 32)
    with torch.no_grad():
        torch.testing.assert_close(folded(x), model(x), rtol=1e-3, atol=1e-4)  # float rounding of the fold
    assert all(torch.equal(before[k], v) for k, v in model.state_dict().items())  # the model is not touched


def test_a_model_without_resnet_blocks_folds_nothing():
    net = nn.Sequential(nn.Conv2d(3, 4, 3), nn.BatchNorm2d(4), nn.Flatten())
    folded, n = fold_batchnorm(net)
    assert n == 0 and isinstance(folded[1], nn.BatchNorm2d)


def test_extraction_runs_the_folded_copy_and_matches_the_model():
    model = _with_running_stats(build_model("baseline", 10, profile="smoke"), seed=1)
    x = torch.randn(6, 3, 64, 32)
    loader = [(x, torch.arange(6), torch.zeros(6, dtype=torch.long), torch.arange(6))]
    feats, pids, _ = extract_features(model, loader, device="cpu", flip=False, cache=False)
    with torch.no_grad():
        torch.testing.assert_close(feats, model(x), rtol=1e-3, atol=1e-4)
    assert list(pids) == list(range(6)) and _bn_count(model) == 53  # still the unfolded model


def test_a_hooked_model_is_extracted_as_it_is():
    model = _with_running_stats(build_model("baseline", 10, profile="smoke"), seed=2)
    seen = []
    model.backbone.bn1.register_forward_hook(lambda m, i, o: seen.append(o.shape[0]))
    x = torch.randn(3, 3, 64, 32)
    extract_features(model, [(x, torch.arange(3), torch.zeros(3, dtype=torch.long), torch.arange(3))],
                     device="cpu", flip=False, cache=False)
    assert seen == [3]  # the hook on a BatchNorm saw the pass: nothing was folded away


def test_a_model_the_fold_does_not_reproduce_is_extracted_unfolded():
    model = _with_running_stats(build_model("baseline", 10, profile="smoke"), seed=3)
    with torch.no_grad():  # an exploded network: unfolded, conv1 overflows to inf; folded by 1/√1e30 it would not
        model.backbone.conv1.weight.mul_(1e37)
        model.backbone.bn1.running_var.fill_(1e30)
    x = 1e3 * torch.randn(2, 3, 64, 32)
    with torch.no_grad():
        assert not torch.isfinite(model(x)).all() and torch.isfinite(fold_batchnorm(model)[0](x)).all()
    with pytest.raises(ValueError, match="non-finite"):
        extract_features(model, [(x, torch.arange(2), torch.zeros(2, dtype=torch.long), torch.arange(2))],
                         device="cpu", flip=False, cache=False)
