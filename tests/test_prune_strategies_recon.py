"""Layer-by-layer pruning with reconstruction (ThiNet, Channel Pruning; survey Eq. 24–26)."""
import pytest
import torch
from prune_checks import SIZE, check_smaller

from reidbook.models import build_model
from reidbook.presets import get_preset
from reidbook.prune import C1, C2, prune_layerwise
from reidbook.prune.strategies.reconstruction import conv_samples, reconstruct_weight, relative_error

pytestmark = pytest.mark.usefixtures("one_thread")


@pytest.fixture(scope="module")
def calib():
    g = torch.Generator().manual_seed(1)
    return [(torch.randn(16, 3, *SIZE, generator=g), torch.randint(0, 10, (16,), generator=g)) for _ in range(2)]


@pytest.mark.parametrize("method,target", [("thinet", C1), ("channel_pruning", C2), ("l1", C1), ("taylor", C2)])
def test_layerwise_reaches_target_and_reconstruction_beats_plain_selection(net, calib, method, target):
    small, rep = prune_layerwise(net, method, target, data=calib, input_size=SIZE, n_positions=256)
    check_smaller(net, small, rep, target)
    recs = rep.iterations
    assert len(recs) == 32  # every conv1/conv2 of the 16 bottlenecks, one at a time
    # least squares on the layer's samples: never worse than keeping the old weights, better overall
    assert all(r["err_recon"] <= r["err_plain"] * (1 + 1e-6) + 1e-12 for r in recs)
    assert sum(r["err_recon"] for r in recs) < sum(r["err_plain"] for r in recs)


def test_reconstruction_brings_the_embedding_closer_to_the_original(net):
    g = torch.Generator().manual_seed(1)
    calib = [torch.randn(16, 3, *SIZE, generator=g) for _ in range(4)]
    held = torch.randn(8, 3, *SIZE, generator=torch.Generator().manual_seed(5))
    with torch.no_grad():
        ref = net(held)
    errs = {}
    for method in ("thinet", "channel_pruning"):
        for rc in ("auto", None):
            small, rep = prune_layerwise(net, method, C1, data=calib, input_size=SIZE, reconstruction=rc,
                                         n_positions=1024)
            with torch.no_grad():
                errs[method, rc] = relative_error(ref, small(held))
        assert errs[method, "auto"] < errs[method, None]
    assert errs["channel_pruning", "auto"] < errs["thinet", "auto"]  # the full refit has more freedom


def test_samples_are_aligned_between_pruned_and_original(net, calib):
    """The same positions are drawn whatever the channel counts, and the stop-early forward returns the
    conv's true outputs: patches · W reproduces them."""
    p, y = conv_samples(net, "backbone.layer2.0.conv2", calib, n_positions=64, seed=3)
    _, y2 = conv_samples(net, "backbone.layer2.0.conv2", calib, n_positions=64, seed=3, want_patches=False)
    w = net.get_submodule("backbone.layer2.0.conv2").weight
    assert torch.allclose(y, y2)
    assert torch.allclose(p.flatten(1) @ w.flatten(1).T, y, atol=1e-4)


def test_thinet_scaling_is_the_least_squares_optimum():
    """ThiNet's per-channel scales (Eq. 6), solved in closed form, equal a direct least-squares fit."""
    g = torch.Generator().manual_seed(0)
    patches, weight = torch.randn(50, 6, 9, generator=g), torch.randn(4, 6, 3, 3, generator=g)
    y = torch.randn(50, 4, generator=g)
    keep = [0, 2, 3]
    new = reconstruct_weight("scale", patches, y, weight, None, keep, ridge=0.0)
    z = torch.einsum("nck,ock->noc", patches[:, keep].double(), weight[:, keep].reshape(4, 3, 9).double())
    s = torch.linalg.lstsq(z.reshape(-1, 3), y.double().reshape(-1, 1)).solution.flatten()
    assert torch.allclose(new / weight[:, keep], s.float().view(1, -1, 1, 1).expand_as(new), atol=1e-4)


def test_layerwise_fine_tunes_and_works_on_pcb(smoke_dataset):
    from reidbook.prune.activations import calibration_batches

    preset = get_preset("pcb", "smoke")
    size = (preset.height, preset.width)
    torch.manual_seed(0)
    pcb = build_model("pcb", smoke_dataset.num_train_pids, profile="smoke")
    data = calibration_batches(smoke_dataset.train, *size, n_images=16, seed=0)
    small, rep = prune_layerwise(pcb, "thinet", C1, data=data, dataset=smoke_dataset, preset=preset, epochs=1,
                                 input_size=size, n_positions=128, device="cpu", max_iters_per_epoch=1)
    check_smaller(pcb, small, rep, C1, size)
    assert rep.iterations[-1]["unit"] == "fine-tune"


def test_bad_arguments_are_named(net, calib):
    with pytest.raises(ValueError, match="data="):
        prune_layerwise(net, "thinet", C1, input_size=SIZE)
    with pytest.raises(ValueError, match="reconstruction"):
        prune_layerwise(net, "thinet", C1, data=calib, reconstruction="magic", input_size=SIZE)
    with pytest.raises(ValueError, match="unknown pruning method"):
        prune_layerwise(net, "random", C1, data=calib, input_size=SIZE)
